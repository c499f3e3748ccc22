-- Scenario 3: acquire -> release cycles. Each acquire's token is parsed from its answer and
-- released by the next request the thread sends (normally on the same connection).
--
-- wrk's response() does not say which connection or request an answer belongs to, so the
-- acquire carries its slot in the ttl (BASE + slot) and the answer's "expiresIn" (the
-- granted ttl) brings it back: slot -> resource name.
local run, counter = "0", 0
local BASE = 60000
local headers = { ["Content-Type"] = "application/json" }
local inflight, free = {}, {}
local queue, qh, qt = {}, 1, 0
acquired, released, other = 0, 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  run = args[1] or run
  for i = 0, 999 do free[#free + 1] = i end
end

function request()
  if qh <= qt then
    local e = queue[qh]
    queue[qh] = nil
    qh = qh + 1
    return wrk.format("POST", "/api/locks/release", headers,
      '{"resource":"' .. e[1] .. '","token":"' .. e[2] .. '"}')
  end
  counter = counter + 1
  local slot = table.remove(free)
  local res = string.format("c%s:%d:%09d", run, tid, counter)
  inflight[slot] = res
  return wrk.format("POST", "/api/locks/acquire", headers,
    string.format('{"resource":"%s","clientId":"bench-client","ttl":%d}', res, BASE + slot))
end

function response(status, hdrs, body)
  local tok = body:match('"token":"([^"]+)"')
  if tok then
    local slot = tonumber(body:match('"expiresIn":(%d+)')) - BASE
    qt = qt + 1
    queue[qt] = { inflight[slot], tok }
    inflight[slot] = nil
    free[#free + 1] = slot
    acquired = acquired + 1
  elseif body:find('"released":true', 1, true) then
    released = released + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local a, r, o = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("acquired"); r = r + t:get("released"); o = o + t:get("other")
  end
  io.write(string.format("lua: acquired=%d released=%d other=%d\n", a, r, o))
end

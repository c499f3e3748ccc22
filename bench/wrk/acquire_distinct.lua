-- Scenario 2: every request acquires a resource nobody has asked for before.
-- Names: d<run>:<thread>:<counter>; args: run id, ttl in ms.
local run, ttl, counter = "0", 120000, 0
local headers = { ["Content-Type"] = "application/json" }
local nthreads = 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

function init(args)
  run = args[1] or run
  ttl = tonumber(args[2]) or ttl
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/api/locks/acquire", headers,
    string.format('{"resource":"d%s:%d:%09d","clientId":"bench-client","ttl":%d}',
      run, tid, counter, ttl))
end

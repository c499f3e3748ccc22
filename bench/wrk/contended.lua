-- Scenario 4: everyone asks for the same resource; the first request gets it (ttl 300 s),
-- every later one is answered acquired:false / LOCKED.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"resource":"bench:hot:0000000001","clientId":"bench-client","ttl":300000}'

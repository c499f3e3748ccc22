-- Scenario 1, the reference: a fixed POST with a 70-byte JSON body (sent to candado-bare).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"resource":"bench:ref:0000000001","clientId":"bench-client","ttl":3000}'

-- wrk script of make heartbeat-vs-noop (loadtest/wrk.go runs it): every
-- request is a one-instance heartbeat.json of one of the seeded instances,
-- spread over all of them. Arguments (after --): instances, services,
-- region. Instance i is inst-i of service svc-(i % services), as
-- loadtest's seed registers them.
--
-- Every request is formatted in init, so request() only picks one: the
-- generator's per-request cost is the same against the registry and
-- against the no-op twin. The order steps by a prime that does not divide
-- the instance count, so consecutive requests hit unrelated instances and
-- every instance is renewed once per lap.
--
-- done() prints one "wrk-result" line the driver parses: requests done,
-- duration, socket errors, non-2xx/3xx answers and latency quantiles (us).
-- Whether the answers were in-band successes the driver checks with the
-- registry's renewal counter (a response callback would cost the generator
-- a Lua call and a body copy per answer).

local reqs = {}
local n = 0
local step = 7919
local idx = 0

init = function(args)
  n = tonumber(args[1] or "100000")
  local services = tonumber(args[2] or "1000")
  local region = args[3] or "default"
  if n % step == 0 then step = 7907 end
  local headers = { ["Content-Type"] = "application/json" }
  for i = 0, n - 1 do
    local body = '{"instances":[{"regionId":"' .. region .. '","serviceId":"svc-' .. (i % services) ..
      '","instanceId":"inst-' .. i .. '"}]}'
    reqs[i + 1] = wrk.format("POST", "/api/registry/heartbeat.json", headers, body)
  end
  idx = math.random(0, n - 1)
end

request = function()
  idx = (idx + step) % n
  return reqs[idx + 1]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "wrk-result requests=%d duration_us=%d connect=%d read=%d write=%d timeout=%d status=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end

-- wrk script for bench/ingest.ts: POSTs one signed GitHub push with a fresh
-- X-GitHub-Delivery per request, and prints the figures as one JSON line.
local body_file, signature = os.getenv("BENCH_BODY"), os.getenv("BENCH_SIGNATURE")
local f = assert(io.open(body_file, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "push"
wrk.headers["X-Hub-Signature-256"] = signature

local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local n = 0
function request()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("wrk-%s-%d-%d", os.getenv("BENCH_RUN"), tid, n)
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"seconds":%.3f,"p50":%.3f,"p90":%.3f,"p99":%.3f,"non2xx":%d,"errors":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end

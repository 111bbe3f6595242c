-- wrk script for bench/ingest.ts: POSTs one signed GitHub push with a fresh
-- X-GitHub-Delivery per request, and prints the figures as one JSON line.
-- With BENCH_RATE set, each thread sends on a fixed schedule (BENCH_RATE requests per
-- second across BENCH_THREADS threads) instead of as fast as the server answers, so the
-- latency is what a sender at that rate sees, not the queueing of a saturated server.
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

local rate = tonumber(os.getenv("BENCH_RATE") or "")
local interval, next_slot
if rate then
  -- wrk's LuaJIT has no millisecond clock of its own; gettimeofday through the FFI is one.
  local ffi = require("ffi")
  ffi.cdef("typedef struct { long tv_sec; long tv_usec; } hoist_timeval; int gettimeofday(hoist_timeval *tv, void *tz);")
  local tv = ffi.new("hoist_timeval")
  function now_ms()
    ffi.C.gettimeofday(tv, nil)
    return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
  end
  interval = 1000 * tonumber(os.getenv("BENCH_THREADS") or "1") / rate
end

function delay()
  if not interval then return 0 end
  local now = now_ms()
  -- Each request takes the thread's next slot; a late slot is sent at once, never bunched.
  next_slot = math.max((next_slot or now) + interval, now)
  return math.max(0, math.floor(next_slot - now))
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

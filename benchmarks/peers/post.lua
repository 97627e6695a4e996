-- wrk script for benchmarks.serving: POST the same JSON body on every request, and print the
-- latency percentiles wrk's own report leaves out (p99.9), in microseconds, when the run ends.
-- The body is read from the file named by WRK_BODY_FILE, written by the benchmark.
local path = os.getenv("WRK_BODY_FILE")
local file = assert(io.open(path, "rb"), "WRK_BODY_FILE is not a readable file")
wrk.method = "POST"
wrk.body = file:read("*a")
wrk.headers["Content-Type"] = "application/json"
file:close()

function done(summary, latency, requests)
  for _, p in ipairs({50, 99, 99.9}) do
    io.write(string.format("percentile %g %d\n", p, latency:percentile(p)))
  end
end

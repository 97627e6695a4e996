-- wrk script for benchmarks.serving: POST the same JSON body on every request.
-- The body is read from the file named by WRK_BODY_FILE, written by the benchmark.
local path = os.getenv("WRK_BODY_FILE")
local file = assert(io.open(path, "rb"), "WRK_BODY_FILE is not a readable file")
wrk.method = "POST"
wrk.body = file:read("*a")
wrk.headers["Content-Type"] = "application/json"
file:close()

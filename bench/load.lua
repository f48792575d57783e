-- wrk script for the benchmark: every request is a same-origin fetch() GET
-- with the session cookie (read from the file named by BENCH_COOKIE_FILE),
-- X-CSRF: 1 and Sec-Fetch-Site: same-origin. It counts responses that are
-- not 2xx per thread and prints one machine-readable line at the end:
-- RESULT requests=N duration_us=N non2xx=N connect=N read=N write=N timeout=N status=N p50_us=N p99_us=N
--
-- With BENCH_COOKIES_FILE (one Cookie header per line: bench/cmd/mint), each
-- thread sends the sessions in turn instead, the threads starting evenly
-- spread over the population (BENCH_THREADS of them), so that no thread sends
-- a session another sent shortly before.
local path = os.getenv("BENCH_COOKIE_FILE")
local cookie = nil
if path and path ~= "" then
  local f = assert(io.open(path, "r"))
  cookie = f:read("*l")
  f:close()
end

wrk.method = "GET"
wrk.headers["Accept"] = "application/json"
wrk.headers["X-CSRF"] = "1"
wrk.headers["Sec-Fetch-Site"] = "same-origin"
wrk.headers["Sec-Fetch-Mode"] = "cors"
wrk.headers["Sec-Fetch-Dest"] = "empty"
if cookie and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

local threads = {}

local population = os.getenv("BENCH_COOKIES_FILE")
local cookies = {}
if population and population ~= "" then
  for line in io.lines(population) do
    if line ~= "" then table.insert(cookies, line) end
  end
end

function setup(thread)
  table.insert(threads, thread)
  local spread = math.floor(#cookies / (tonumber(os.getenv("BENCH_THREADS")) or 1))
  thread:set("offset", (#threads - 1) * spread)
end

if #cookies > 0 then
  local n = #cookies
  local i = 0
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  request = function()
    i = i + 1
    headers["Cookie"] = cookies[((offset or 0) + i) % n + 1]
    return wrk.format(nil, nil, headers)
  end
end

non2xx = 0

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d status=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end

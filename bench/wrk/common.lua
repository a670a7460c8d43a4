-- Shared by the scenario scripts: per-thread ids, a pool of values read from a file, and a
-- JSON report written by done() (requests/s, latency percentiles in ms, errors).
local common = {}
local threads = {}

function common.setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function common.read_lines(path)
  local values = {}
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if #line > 0 then table.insert(values, line) end
  end
  file:close()
  return values
end

function common.done(summary, latency, requests)
  -- done() runs in the main state, where init() never ran: the threads know the path
  local report_path = threads[1]:get("report_path")
  local bad, reviewed = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("bad") or 0)
    reviewed = reviewed + (thread:get("reviewed") or 0)
  end
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  local out = assert(io.open(report_path, "w"))
  out:write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, ' ..
    '"socket_errors": %d, "http_errors": %d, "bad_answers": %d, "reviewed": %d}\n',
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, errors.connect + errors.read + errors.write + errors.timeout,
    errors.status, bad, reviewed))
  out:close()
end

return common

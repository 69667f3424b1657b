-- A Codex-shaped model call: POST /responses with the headers Codex 0.169 sends.
wrk.method = "POST"
wrk.path = "/responses"
-- BODY_BYTES=2048 pads the user text so the body is about that many bytes (default: ~200).
local pad = math.max(0, (tonumber(os.getenv("BODY_BYTES") or "0") or 0) - 190)
wrk.body = '{"model":"gpt-5-codex","instructions":"You are Codex.","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi' .. string.rep("x", pad) .. '"}]}],"stream":true,"store":false}'
wrk.headers["content-type"] = "application/json"
wrk.headers["accept"] = "text/event-stream"
wrk.headers["authorization"] = "Bearer client-token"
wrk.headers["chatgpt-account-id"] = "client-account"
wrk.headers["originator"] = "codex_exec"
wrk.headers["session-id"] = "bench-session"

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end

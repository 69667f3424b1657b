# Shared helpers for the bench scripts (sourced). Everything listens on 127.0.0.1 only and every
# process started here is stopped on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# CAO_BIN=/path/to/cao compares another build (no build then), e.g. before/after a change.
CAO="${CAO_BIN:-$ROOT/target/release/cao}"
WORK="$(mktemp -d /tmp/cao-bench-XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

need() { # need <command> <debian package>
  if ! command -v "$1" >/dev/null; then
    echo "bench: installing $2" >&2
    (apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y "$2" >/dev/null; })
  fi
}

build_release() {
  [ -n "${CAO_BIN:-}" ] && return 0
  (cd "$ROOT" && cargo build --release --quiet "$@")
}

machine() {
  echo "- $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -sr)"
  echo "- $(rustc --version), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), nginx $(nginx -v 2>&1 | cut -d/ -f2)"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared; numbers are noisy)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# rss <pid>: "VmRSS VmHWM" in MB
rss() {
  awk '/VmRSS/{r=$2} /VmHWM/{h=$2} END{printf "%.1f %.1f\n", r/1024, h/1024}' "/proc/$1/status"
}

# A data dir with N logged-in accounts (unsigned JWTs valid 9 days).
make_accounts() { # make_accounts <dir> <n>
  python3 - "$1" "$2" <<'PY'
import base64, json, os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def jwt(c): return b64(b'{"alg":"none","typ":"JWT"}') + "." + b64(json.dumps(c).encode()) + "." + b64(b"sig")
now = int(time.time())
os.makedirs(d, mode=0o700, exist_ok=True)
names = [f"acct-{i}" for i in range(n)]
for i, name in enumerate(names):
    os.makedirs(f"{d}/{name}", mode=0o700, exist_ok=True)
    a = {"chatgpt_account_id": f"acc-{i}", "chatgpt_plan_type": "plus"}
    auth = {"OPENAI_API_KEY": None, "tokens": {
        "id_token": jwt({"email": f"{name}@example.com", "exp": now + 86400 * 9, "https://api.openai.com/auth": a}),
        "access_token": jwt({"exp": now + 86400 * 9, "https://api.openai.com/auth": a}),
        "refresh_token": f"rt-acc-{i}-0", "account_id": f"acc-{i}"}, "last_refresh": "2026-11-01T00:00:00Z"}
    p = f"{d}/{name}/auth.json"
    with open(p, "w") as f: json.dump(auth, f)
    os.chmod(p, 0o600)
with open(f"{d}/registry.json", "w") as f: json.dump({"default_account": names[0], "accounts": names}, f)
PY
}

# A fixed Codex-shaped SSE answer (response.created, two deltas, response.completed).
SSE_BODY='event: response.created\ndata: {"type":"response.created","response":{"id":"resp_1","status":"in_progress"}}\n\nevent: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hello"}\n\nevent: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":" world"}\n\nevent: response.completed\ndata: {"type":"response.completed","response":{"id":"resp_1","status":"completed","usage":{"input_tokens":10,"output_tokens":2,"total_tokens":12}}}\n\n'

# run_nginx <name> <workers> <http block body>: an nginx in $WORK/<name>, logging nothing,
# keeping connections open for the whole run.
run_nginx() {
  local dir="$WORK/$1"
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<CONF
worker_processes $2;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
  keepalive_requests 10000000;
$3
}
CONF
  nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
  PIDS+=($!)
}

# start_nginx <port>: one worker answering every request with SSE_BODY.
start_nginx() {
  run_nginx nginx 1 "  server {
    listen 127.0.0.1:$1;
    location / { default_type text/event-stream; return 200 '$SSE_BODY'; }
  }"
  wait_http "http://127.0.0.1:$1/health"
}

# start_nginx_proxy <port> <upstream port>: nginx as a reverse proxy in front of the upstream,
# the way nginx is usually put in front of an app: proxy_pass to a keepalive upstream block,
# HTTP/1.1 to upstream, unbuffered (like the gateway, which streams), NGINX_PROXY_WORKERS
# workers (default 1, the same as the upstream).
start_nginx_proxy() {
  run_nginx nginx-proxy "${NGINX_PROXY_WORKERS:-1}" "  upstream app { server 127.0.0.1:$2; keepalive 1024; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$1;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_buffering off;
      client_body_buffer_size 64k;
    }
  }"
  wait_http "http://127.0.0.1:$1/health"
}

# wrk_post <url> <conns> <threads>: wrk sending Codex-shaped POST /responses (bench/post.lua;
# BODY_BYTES sets the body size) for DURATION seconds -> "rps p50 p99 errors non2xx"
wrk_post() {
  wrk -t"$3" -c"$2" -d"${DURATION}s" --latency -s "$ROOT/bench/post.lua" "$1" 2>&1 |
    awk -F'[ =]' '/^RESULT/{print $3, $5, $7, $9, $11}'
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", 100*a/b}'; } # pct <a> <b>: a as % of b
# median: of stdin's words (empty ones, like a trailing space's, are not values)
median() { tr ' ' '\n' | sort -g | awk 'NF{v[++n]=$1} END{print v[int((n+1)/2)]}'; }

wait_http() { # wait_http <url>: until it answers (any status), 20 s at most
  for _ in $(seq 200); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  echo "bench: $1 did not come up" >&2
  return 1
}

# start_gateway <data dir> <port> <base url> [extra args]: sets GW_PID
start_gateway() {
  local data=$1 port=$2 base=$3; shift 3
  "$CAO" --data-dir "$data" gateway start --port "$port" --base-url "$base" \
    --token-url "$base/oauth/token" "$@" >"$WORK/gateway-$port.out" 2>"$WORK/gateway-$port.log" &
  GW_PID=$!
  PIDS+=("$GW_PID")
  wait_http "http://127.0.0.1:$port/health"
}

#!/usr/bin/env bash
# Gateway vs direct, side by side at the same fast upstream (nginx, one worker, a fixed
# Codex-shaped SSE answer): requests/s, p50/p99 latency and the gateway's memory, at 1, 32 and
# 256 connections, with wrk sending Codex-shaped POST /responses.
#
#   bench/gateway.sh                 # 10 s per run
#   DURATION=30 CONNS="32" bench/gateway.sh
#   TS=1 bench/gateway.sh            # also the TypeScript gateway (CAO 1.4.2), if installed
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-10}
CONNS=${CONNS:-"1 32 256"}
need wrk wrk
need nginx nginx-light
need curl curl
build_release
ulimit -n 65536 2>/dev/null || true

UP_PORT=$(free_port)
start_nginx "$UP_PORT"
UP="http://127.0.0.1:$UP_PORT"
make_accounts "$WORK/data" 3
GW_PORT=$(free_port)
start_gateway "$WORK/data" "$GW_PORT" "$UP"
GW="http://127.0.0.1:$GW_PORT"
CAO_PID=$GW_PID

TS_BIN="${TS_BIN:-$ROOT/../tools/node_modules/.bin/codex-account-orchestrator}"
TS_PORT=""
if [ "${TS:-0}" = 1 ] && [ -x "$TS_BIN" ]; then
  TS_PORT=$(free_port)
  mkdir -p "$WORK/ts-home"
  make_accounts "$WORK/ts-data" 3
  HOME="$WORK/ts-home" "$TS_BIN" --data-dir "$WORK/ts-data" gateway start --port "$TS_PORT" \
    --base-url "$UP" >"$WORK/ts.log" 2>&1 &
  TS_PID=$!
  PIDS+=("$TS_PID")
  wait_http "http://127.0.0.1:$TS_PORT/health" || TS_PORT=""
fi

run() { # run <url> <conns> -> "rps p50 p99 errors non2xx"
  local t=$(( $2 < 2 ? 1 : 2 ))
  wrk -t"$t" -c"$2" -d"${DURATION}s" --latency -s "$ROOT/bench/post.lua" "$1" 2>&1 |
    awk -F'[ =]' '/^RESULT/{print $3, $5, $7, $9, $11}'
}

echo "## Gateway vs direct (nginx upstream, ${DURATION}s per run)"
echo
machine
echo
echo "| conns | target | req/s | p50 ms | p99 ms | errors | non-2xx | % of direct | gateway RSS / peak MB |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
for c in $CONNS; do
  read -r d_rps d_p50 d_p99 d_err d_bad < <(run "$UP" "$c")
  echo "| $c | direct (nginx) | $d_rps | $d_p50 | $d_p99 | $d_err | $d_bad | 100 | |"
  read -r g_rps g_p50 g_p99 g_err g_bad < <(run "$GW" "$c")
  read -r r h < <(rss "$CAO_PID")
  echo "| $c | cao gateway | $g_rps | $g_p50 | $g_p99 | $g_err | $g_bad | $(awk -v a="$g_rps" -v b="$d_rps" 'BEGIN{printf "%.1f", 100*a/b}') | $r / $h |"
  if [ -n "$TS_PORT" ]; then
    read -r t_rps t_p50 t_p99 t_err t_bad < <(run "http://127.0.0.1:$TS_PORT" "$c")
    read -r tr th < <(rss "$TS_PID")
    echo "| $c | TS gateway 1.4.2 | $t_rps | $t_p50 | $t_p99 | $t_err | $t_bad | $(awk -v a="$t_rps" -v b="$d_rps" 'BEGIN{printf "%.1f", 100*a/b}') | $tr / $th (node) |"
  fi
done
echo
echo "gateway log lines written: $(wc -l <"$WORK/gateway-$GW_PORT.log")"

#!/usr/bin/env bash
# Gateway vs direct vs nginx as a reverse proxy, side by side at the same fast upstream (nginx,
# one worker, a fixed Codex-shaped SSE answer): requests/s, p50/p99 latency and the gateway's
# memory, at 1, 32 and 256 connections, with wrk sending Codex-shaped POST /responses. Then the
# issue-10 comparison: gateway vs nginx proxy_pass (keepalive upstream), wrk 1 thread x 32
# connections, 2 KB POST, ROUNDS interleaved rounds, medians.
#
#   bench/gateway.sh                 # 10 s per run
#   DURATION=30 CONNS="32" bench/gateway.sh
#   CONNS="" ROUNDS=3 bench/gateway.sh   # only the gateway vs nginx proxy_pass comparison
#   TS=1 bench/gateway.sh            # also the TypeScript gateway (CAO 1.4.2), if installed
#   CAO_BEFORE=/tmp/cao-old bench/gateway.sh   # the comparison also runs an older build
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-10}
CONNS=${CONNS-"1 32 256"}
ROUNDS=${ROUNDS:-3}
need wrk wrk
need nginx nginx-light
need curl curl
build_release
ulimit -n 65536 2>/dev/null || true

UP_PORT=$(free_port)
start_nginx "$UP_PORT"
UP="http://127.0.0.1:$UP_PORT"
PX_PORT=$(free_port)
start_nginx_proxy "$PX_PORT" "$UP_PORT"
PX="http://127.0.0.1:$PX_PORT"
make_accounts "$WORK/data" 3
GW_PORT=$(free_port)
start_gateway "$WORK/data" "$GW_PORT" "$UP"
GW="http://127.0.0.1:$GW_PORT"
CAO_PID=$GW_PID

BEFORE_PID=""
if [ -n "${CAO_BEFORE:-}" ]; then
  BF_PORT=$(free_port)
  make_accounts "$WORK/data-before" 3
  CAO="$CAO_BEFORE" start_gateway "$WORK/data-before" "$BF_PORT" "$UP"
  BF="http://127.0.0.1:$BF_PORT"
  BEFORE_PID=$GW_PID
fi

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

run() { # run <url> <conns> [threads] -> "rps p50 p99 errors non2xx"
  wrk_post "$1" "$2" "${3:-$(( $2 < 2 ? 1 : 2 ))}"
}

echo "## Gateway vs direct (nginx upstream, ${DURATION}s per run)"
echo
machine
echo
if [ -n "$CONNS" ]; then
echo "| conns | target | req/s | p50 ms | p99 ms | errors | non-2xx | % of direct | gateway RSS / peak MB |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
fi
for c in $CONNS; do
  read -r d_rps d_p50 d_p99 d_err d_bad < <(run "$UP" "$c")
  echo "| $c | direct (nginx) | $d_rps | $d_p50 | $d_p99 | $d_err | $d_bad | 100 | |"
  read -r p_rps p_p50 p_p99 p_err p_bad < <(run "$PX" "$c")
  echo "| $c | nginx proxy_pass | $p_rps | $p_p50 | $p_p99 | $p_err | $p_bad | $(pct "$p_rps" "$d_rps") | |"
  read -r g_rps g_p50 g_p99 g_err g_bad < <(run "$GW" "$c")
  read -r r h < <(rss "$CAO_PID")
  echo "| $c | cao gateway | $g_rps | $g_p50 | $g_p99 | $g_err | $g_bad | $(pct "$g_rps" "$d_rps") | $r / $h |"
  if [ -n "$TS_PORT" ]; then
    read -r t_rps t_p50 t_p99 t_err t_bad < <(run "http://127.0.0.1:$TS_PORT" "$c")
    read -r tr th < <(rss "$TS_PID")
    echo "| $c | TS gateway 1.4.2 | $t_rps | $t_p50 | $t_p99 | $t_err | $t_bad | $(pct "$t_rps" "$d_rps") | $tr / $th (node) |"
  fi
done

if [ "$ROUNDS" -gt 0 ]; then
  echo
  echo "## Gateway vs nginx proxy_pass (wrk -t1 -c32, 2 KB POST, ${DURATION}s per run, $ROUNDS interleaved rounds)"
  echo
  echo "| round | target | req/s | p99 ms | % of nginx proxy_pass | RSS / peak MB |"
  echo "|---:|---|---:|---:|---:|---:|"
  P_RPS=(); P_P99=(); G_RPS=(); G_P99=(); B_RPS=(); B_P99=()
  for i in $(seq "$ROUNDS"); do
    read -r p_rps _ p_p99 _ _ < <(BODY_BYTES=2048 run "$PX" 32 1)
    echo "| $i | nginx proxy_pass | $p_rps | $p_p99 | 100 | |"
    if [ -n "$BEFORE_PID" ]; then
      read -r b_rps _ b_p99 _ _ < <(BODY_BYTES=2048 run "$BF" 32 1)
      read -r r h < <(rss "$BEFORE_PID")
      B_RPS+=("$b_rps"); B_P99+=("$b_p99")
      echo "| $i | cao gateway (before) | $b_rps | $b_p99 | $(pct "$b_rps" "$p_rps") | $r / $h |"
    fi
    read -r g_rps _ g_p99 _ _ < <(BODY_BYTES=2048 run "$GW" 32 1)
    read -r r h < <(rss "$CAO_PID")
    P_RPS+=("$p_rps"); P_P99+=("$p_p99"); G_RPS+=("$g_rps"); G_P99+=("$g_p99")
    echo "| $i | cao gateway | $g_rps | $g_p99 | $(pct "$g_rps" "$p_rps") | $r / $h |"
  done
  mp=$(echo "${P_RPS[@]}" | median); mpp=$(echo "${P_P99[@]}" | median)
  mg=$(echo "${G_RPS[@]}" | median); mgp=$(echo "${G_P99[@]}" | median)
  echo "| median | nginx proxy_pass | $mp | $mpp | 100 | |"
  if [ -n "$BEFORE_PID" ]; then
    mb=$(echo "${B_RPS[@]}" | median); mbp=$(echo "${B_P99[@]}" | median)
    echo "| median | cao gateway (before) | $mb | $mbp | $(pct "$mb" "$mp") | |"
  fi
  echo "| median | cao gateway | $mg | $mgp | $(pct "$mg" "$mp") | |"
  echo
  echo "goal (issue 10): gateway req/s >= 75 % of nginx's: $(pct "$mg" "$mp") %; gateway p99 <= 2x nginx's: $(awk -v a="$mgp" -v b="$mpp" 'BEGIN{printf "%.2f", a/b}')x"
fi
echo
echo "gateway log lines written: $(wc -l <"$WORK/gateway-$GW_PORT.log")"

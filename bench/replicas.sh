#!/usr/bin/env bash
# Issue 17: what sharing the pool through Redis costs. One gateway without --state vs one with
# --state redis:// (a real redis-server on loopback), and three gateways with --state behind
# nginx (round robin) vs one, all at the same fast nginx upstream, wrk -t2 -c32 POST /responses
# with a session id per connection, ROUNDS interleaved rounds, medians.
#
#   bench/replicas.sh                 # 10 s per run, 3 rounds
#   DURATION=20 ROUNDS=5 bench/replicas.sh
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
need wrk wrk
need nginx nginx-light
need curl curl
need redis-server redis-server
build_release
ulimit -n 65536 2>/dev/null || true

UP_PORT=$(free_port)
start_nginx "$UP_PORT"
UP="http://127.0.0.1:$UP_PORT"
R_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$R_PORT" --save "" --appendonly yes --dir "$WORK" \
  >"$WORK/redis.log" 2>&1 &
PIDS+=("$!")
sleep 0.5
STATE="redis://127.0.0.1:$R_PORT/0"
"$CAO" gateway state-key "$WORK/state.key" >/dev/null 2>&1

make_accounts "$WORK/plain" 3
P_PORT=$(free_port); start_gateway "$WORK/plain" "$P_PORT" "$UP"; P_PID=$GW_PID
S_PORTS=()
for i in 1 2 3; do
  make_accounts "$WORK/shared-$i" 3
  port=$(free_port)
  start_gateway "$WORK/shared-$i" "$port" "$UP" --state "$STATE" --state-key-file "$WORK/state.key" \
    --allowed-host app
  S_PORTS+=("$port")
  [ "$i" = 1 ] && S_PID=$GW_PID
done
LB_PORT=$(free_port)
run_nginx lb 2 "  upstream app { server 127.0.0.1:${S_PORTS[0]}; server 127.0.0.1:${S_PORTS[1]}; server 127.0.0.1:${S_PORTS[2]}; keepalive 1024; }
  server {
    listen 127.0.0.1:$LB_PORT;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; }
  }"
wait_http "http://127.0.0.1:$LB_PORT/health"

run() { wrk_post "$1" 32 2; } # run <url> -> "rps p50 p99 errors non2xx"

declare -A RPS P99 BAD
targets="plain shared lb"
url_of() { case $1 in plain) echo "http://127.0.0.1:$P_PORT";; shared) echo "http://127.0.0.1:${S_PORTS[0]}";; lb) echo "http://127.0.0.1:$LB_PORT";; esac; }
for r in $(seq "$ROUNDS"); do
  for t in $targets; do
    read -r rps p50 p99 err bad < <(run "$(url_of "$t")")
    RPS[$t]+="$rps "; P99[$t]+="$p99 "; BAD[$t]+="$((err + bad)) "
  done
done
echo "## Shared state on Redis (wrk -t2 -c32, ${DURATION}s per run, $ROUNDS interleaved rounds, medians)"
echo
machine
echo
echo "| target | req/s | p99 ms | errors + non-2xx (per run) | vs one gateway without --state |"
echo "|---|---:|---:|---|---:|"
base=$(echo "${RPS[plain]}" | median)
label() { case $1 in plain) echo "one gateway, no --state";; shared) echo "one gateway, --state redis://";; lb) echo "three gateways (--state) behind nginx";; esac; }
for t in $targets; do
  m=$(echo "${RPS[$t]}" | median)
  echo "| $(label "$t") | $m | $(echo "${P99[$t]}" | median) | ${BAD[$t]}| $(pct "$m" "$base") % |"
done
read -r r h < <(rss "$S_PID")
echo
echo "RSS of one --state gateway after the runs: $r MB (peak $h MB)."

#!/usr/bin/env bash
# 1,000 concurrent SSE streams through the gateway and straight to the same upstream: gateway
# memory with every stream open, and the time from an upstream event to the client.
#
#   bench/sse.sh                    # 1000 streams x 20 events, one every 500 ms
#   STREAMS=200 EVENTS=10 bench/sse.sh
source "$(dirname "$0")/lib.sh"
STREAMS=${STREAMS:-1000}
EVENTS=${EVENTS:-20}
INTERVAL=${INTERVAL:-500}
need curl curl
build_release --example sse_load
ulimit -n 65536 2>/dev/null || true
LOAD="$ROOT/target/release/examples/sse_load"

UP_PORT=$(free_port)
make_accounts "$WORK/data" 3
GW_PORT=$(free_port)
# The upstream lives inside sse_load; the gateway only connects when requests come.
"$CAO" --data-dir "$WORK/data" gateway start --port "$GW_PORT" --base-url "http://127.0.0.1:$UP_PORT" \
  >"$WORK/gw.out" 2>"$WORK/gw.log" &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/health"
read -r idle_rss idle_hwm < <(rss "$GW_PID")

echo "## $STREAMS concurrent SSE streams ($EVENTS events each, one every ${INTERVAL} ms)"
echo
machine
echo "- gateway RSS idle: $idle_rss MB"
echo
common=(--streams "$STREAMS" --events "$EVENTS" --interval-ms "$INTERVAL")
echo '```'
echo "direct : $("$LOAD" --upstream-port 0 "${common[@]}" | tr '\n' ' ')"
echo "gateway: $("$LOAD" --upstream-port "$UP_PORT" --target "http://127.0.0.1:$GW_PORT" --rss-pid "$GW_PID" "${common[@]}" | tr '\n' ' ')"
echo '```'
read -r r h < <(rss "$GW_PID")
echo "gateway RSS after the streams closed: $r MB (peak $h MB)"

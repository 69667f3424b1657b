#!/usr/bin/env bash
# Responses over WebSocket through the gateway (issue 13), against upstreams inside
# bench/ws_load.rs, everything on 127.0.0.1:
#  1. bytes sent upstream over a 20-turn Codex-shaped session: straight to the mock, through the
#     gateway over WebSocket (deltas), and through the gateway over HTTP (Codex's fallback: every
#     turn re-sends the whole conversation); over WebSocket with permessage-deflate offered (as
#     Codex does: the bytes decoded and the bytes on the wire into the mock) and without;
#  2. the time from an upstream frame to the client, one socket (p50/p99), gateway vs direct;
#  3. SESSIONS (1,000) sockets held at once through the gateway: its RSS with all of them open
#     (goal: <= 100 MB) and the per-frame time under that load, with deflate and without.
#
#   bench/ws.sh
#   SESSIONS=200 TURNS=10 bench/ws.sh
source "$(dirname "$0")/lib.sh"
SESSIONS=${SESSIONS:-1000}
TURNS=${TURNS:-20}
EVENTS=${EVENTS:-20}
INTERVAL=${INTERVAL:-500}
build_release --example ws_load
ulimit -n 65536 2>/dev/null || true
# WS_LOAD=target/debug/examples/ws_load (with CAO_BIN=target/debug/cao) runs without a release build.
LOAD="${WS_LOAD:-$ROOT/target/release/examples/ws_load}"
make_accounts "$WORK/data" 3

start_gateway() { # start_gateway <upstream port> [extra args]: sets GW_PORT, GW_PID
  GW_PORT=$(free_port)
  "$CAO" --data-dir "$WORK/data" gateway start --port "$GW_PORT" --base-url "http://127.0.0.1:$1" \
    --usage-poll 0 "${@:2}" >"$WORK/gw.out" 2>"$WORK/gw.log" &
  GW_PID=$!
  PIDS+=("$GW_PID")
  wait_http "http://127.0.0.1:$GW_PORT/health"
}
stop_gateway() { kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; }

echo "## Responses over WebSocket"
echo
machine
echo
echo "### Bytes sent upstream, $TURNS-turn session"
echo '```'
for d in "" --no-deflate; do
  tag=$([ -z "$d" ] && echo "deflate" || echo "plain  ")
  P=$(free_port)
  echo "direct (WebSocket, $tag)  : $("$LOAD" session --upstream-port "$P" --turns "$TURNS" $d)"
  P=$(free_port); start_gateway "$P"
  echo "gateway (WebSocket, $tag) : $("$LOAD" session --upstream-port "$P" --target "http://127.0.0.1:$GW_PORT" --turns "$TURNS" $d)"
  stop_gateway
done
P=$(free_port); start_gateway "$P" --no-websocket
echo "gateway (HTTP)      : $("$LOAD" session --upstream-port "$P" --target "http://127.0.0.1:$GW_PORT" --turns "$TURNS" --http)"
stop_gateway
echo '```'
echo
echo "### Time from an upstream frame to the client"
echo '```'
one=(--sessions 1 --events 200 --interval-ms 10)
P=$(free_port)
echo "1 socket, direct   : $("$LOAD" frames --upstream-port "$P" "${one[@]}")"
P=$(free_port); start_gateway "$P"
echo "1 socket, gateway  : $("$LOAD" frames --upstream-port "$P" --target "http://127.0.0.1:$GW_PORT" --rss-pid "$GW_PID" "${one[@]}")"
stop_gateway
many=(--sessions "$SESSIONS" --events "$EVENTS" --interval-ms "$INTERVAL")
for d in "" --no-deflate; do
  tag=$([ -z "$d" ] && echo "deflate" || echo "plain")
  P=$(free_port)
  echo "$SESSIONS sockets, direct, $tag : $("$LOAD" frames --upstream-port "$P" "${many[@]}" $d)"
  P=$(free_port); start_gateway "$P"
  read -r idle_rss _ < <(rss "$GW_PID")
  echo "$SESSIONS sockets, gateway, $tag: $("$LOAD" frames --upstream-port "$P" --target "http://127.0.0.1:$GW_PORT" --rss-pid "$GW_PID" "${many[@]}" $d)"
  read -r r h < <(rss "$GW_PID")
  echo "gateway RSS ($tag) idle $idle_rss MB; after the sockets closed $r MB (peak $h MB)"
  stop_gateway
done
echo '```'

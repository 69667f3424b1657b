#!/usr/bin/env bash
# Instructions per forwarded request in the gateway, counted by valgrind's callgrind: unlike
# req/s this does not move with the load of a shared machine, so it shows what a change to the
# hot path does. The same load as bench/gateway.sh's comparison (wrk, Codex-shaped 2 KB POST
# /responses, the nginx upstream's small SSE answer), at 4 connections for DURATION seconds after
# a warm-up; only those seconds are counted.
#
#   bench/instructions.sh                    # the release build (built first)
#   CAO_BIN=/tmp/cao-old bench/instructions.sh   # another build, e.g. before a change
#   TOP=30 bench/instructions.sh             # also the 30 costliest functions (inclusive)
#   SELF=30 bench/instructions.sh            # the 30 costliest by their own instructions
#   KEEP=/tmp/cg.out bench/instructions.sh   # keep the callgrind dump for callgrind_annotate
#
# Needs valgrind and a build with symbols for TOP (CARGO_PROFILE_RELEASE_STRIP=false
# CARGO_PROFILE_RELEASE_DEBUG=line-tables-only); the count itself works on a stripped build.
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-8}
need wrk wrk
need nginx nginx-light
need curl curl
need valgrind valgrind
build_release

UP_PORT=$(free_port)
start_nginx "$UP_PORT"
UP="http://127.0.0.1:$UP_PORT"
make_accounts "$WORK/data" 3
GW_PORT=$(free_port)
OUT="$WORK/callgrind.out"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT" \
  "$CAO" --data-dir "$WORK/data" gateway start --port "$GW_PORT" --base-url "$UP" \
  --token-url "$UP/oauth/token" >"$WORK/gateway.out" 2>"$WORK/gateway.log" &
GW_PID=$!
PIDS+=("$GW_PID")
GW="http://127.0.0.1:$GW_PORT"
for _ in $(seq 300); do curl -s -o /dev/null --max-time 1 "$GW/health" && break; sleep 0.2; done
BODY_BYTES=2048 wrk -t1 -c4 -d3s -s "$ROOT/bench/post.lua" "$GW" >/dev/null 2>&1 # warm-up
callgrind_control -i on "$GW_PID" >/dev/null 2>&1 || true
N=$(BODY_BYTES=2048 wrk -t1 -c4 -d"${DURATION}s" -s "$ROOT/bench/post.lua" "$GW" 2>&1 |
  awk '/requests in/{print $1}')
callgrind_control -i off "$GW_PID" >/dev/null 2>&1 || true
callgrind_control -d "$GW_PID" >/dev/null 2>&1 || true
sleep 1
DUMP=$(ls -t "$OUT".* | head -1)
IR=$(callgrind_annotate "$DUMP" 2>/dev/null | awk '/PROGRAM TOTALS/ && !d {gsub(",","",$1); print $1; d=1}')
[ -n "${KEEP:-}" ] && cp "$DUMP" "$KEEP"
echo "requests=$N instructions=$IR per_request=$(awk -v i="$IR" -v n="$N" 'BEGIN{printf "%.0f", i/n}')"
if [ -n "${TOP:-}" ]; then
  callgrind_annotate --inclusive=yes --auto=no "$DUMP" 2>/dev/null | awk 'NR>24' |
    grep -E "cao::|hyper|axum" | awk -v t="$TOP" 'NR<=t' |
    awk -v n="$N" '{gsub(",","",$1); printf "%8.0f  ", $1/n; $1=""; $2=""; print}' |
    sed "s|/root/.cargo/registry/src/[^/]*/||; s|$ROOT/||" | cut -c1-160
fi
if [ -n "${SELF:-}" ]; then
  callgrind_annotate --auto=no "$DUMP" 2>/dev/null | awk 'NR>24' | awk -v t="$SELF" 'NR<=t' |
    awk -v n="$N" '{gsub(",","",$1); printf "%8.0f  ", $1/n; $1=""; $2=""; print}' |
    sed "s|/root/.cargo/registry/src/[^/]*/||; s|$ROOT/||" | cut -c1-160
fi

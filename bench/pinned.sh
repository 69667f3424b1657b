#!/usr/bin/env bash
# Gateway builds vs nginx proxy_pass with each side on its own core: wrk and the upstream nginx
# on CPU 0, the proxies under test on CPU 1 (taskset). On a shared 2-core machine this moves
# much less from run to run than bench/gateway.sh (where everything competes for both cores),
# so it is the one to compare builds with: every round runs nginx proxy_pass and then each
# build, back to back, and prints each one's req/s, its % of nginx's in that round, and p99.
#
#   bench/pinned.sh                                   # the release build (built first)
#   BINS="/tmp/cao-before /tmp/cao-after" bench/pinned.sh   # builds side by side
#   ROUNDS=5 DURATION=6 bench/pinned.sh
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-6}
ROUNDS=${ROUNDS:-5}
need wrk wrk
need nginx nginx-light
need curl curl
need taskset util-linux
if [ -z "${BINS:-}" ]; then
  build_release
  BINS="$CAO"
fi
[ "$(nproc)" -ge 2 ] || { echo "bench: pinned.sh needs 2 cores" >&2; exit 1; }

taskset -p -c 0 $$ >/dev/null
UP_PORT=$(free_port)
start_nginx "$UP_PORT"
UP="http://127.0.0.1:$UP_PORT"
taskset -p -c 1 $$ >/dev/null
PX_PORT=$(free_port)
start_nginx_proxy "$PX_PORT" "$UP_PORT"
PORTS=()
n=0
for b in $BINS; do
  n=$((n + 1))
  make_accounts "$WORK/data-$n" 3
  p=$(free_port)
  CAO=$b start_gateway "$WORK/data-$n" "$p" "$UP"
  PORTS+=("$p")
done
taskset -p -c 0 $$ >/dev/null

run() { BODY_BYTES=2048 wrk_post "$1" 32 1; } # run <url> -> "rps p50 p99 errors non2xx"

echo "## Pinned: wrk + upstream on CPU 0, proxies on CPU 1 (wrk -t1 -c32, 2 KB POST, ${DURATION}s per run)"
echo
machine
echo
run "http://127.0.0.1:$PX_PORT" >/dev/null # warm-up
for p in "${PORTS[@]}"; do run "http://127.0.0.1:$p" >/dev/null; done
echo "| round | target | req/s | p99 ms | % of nginx proxy_pass |"
echo "|---:|---|---:|---:|---:|"
for i in $(seq "$ROUNDS"); do
  read -r n_rps _ n_p99 _ _ < <(run "http://127.0.0.1:$PX_PORT")
  echo "| $i | nginx proxy_pass | $n_rps | $n_p99 | 100 |"
  j=0
  for b in $BINS; do
    read -r g_rps _ g_p99 _ _ < <(run "http://127.0.0.1:${PORTS[$j]}")
    echo "| $i | $b | $g_rps | $g_p99 | $(pct "$g_rps" "$n_rps") |"
    j=$((j + 1))
  done
done

#!/usr/bin/env bash
# Gateway builds vs nginx proxy_pass with each side on its own core: wrk and the upstream nginx
# on CPU 0, the proxies under test on CPU 1 (taskset). On a shared 2-core machine this moves
# much less from run to run than bench/gateway.sh (where everything competes for both cores),
# so it is the one to compare builds with: every round runs nginx proxy_pass and then each
# build, back to back, and prints each one's req/s, its % of nginx's in that round, and p99,
# and the CPU time each proxy spent per request (user + system, all its threads, from
# /proc/PID/stat): on a machine whose neighbours take cycles at random the req/s of one round
# moves by 20 %, the CPU per request much less. At the end, medians over the rounds.
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
GW_PIDS=()
n=0
for b in $BINS; do
  n=$((n + 1))
  make_accounts "$WORK/data-$n" 3
  p=$(free_port)
  CAO=$b start_gateway "$WORK/data-$n" "$p" "$UP"
  PORTS+=("$p")
  GW_PIDS+=("$GW_PID")
done
taskset -p -c 0 $$ >/dev/null

run() { BODY_BYTES=2048 wrk_post "$1" 32 1; } # run <url> -> "rps p50 p99 errors non2xx"
# ticks <pid...>: user + system clock ticks the processes have used so far
ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{t += $1} END {print t}'; }
HZ=$(getconf CLK_TCK)
# measured <url> <pid...> -> "rps p99 cpu_us_per_request"
measured() {
  local url=$1; shift
  local t0 t1 rps p99
  t0=$(ticks "$@")
  read -r rps _ p99 _ _ < <(run "$url")
  t1=$(ticks "$@")
  echo "$rps $p99 $(awk -v t="$((t1 - t0))" -v hz="$HZ" -v r="$rps" -v d="$DURATION" 'BEGIN{printf "%.1f", t / hz * 1e6 / (r * d)}')"
}
NGINX_MASTER=$(cat "$WORK/nginx-proxy/nginx.pid")
NGINX_PIDS=("$NGINX_MASTER" $(pgrep -P "$NGINX_MASTER"))

echo "## Pinned: wrk + upstream on CPU 0, proxies on CPU 1 (wrk -t1 -c32, 2 KB POST, ${DURATION}s per run)"
echo
machine
echo
run "http://127.0.0.1:$PX_PORT" >/dev/null # warm-up
for p in "${PORTS[@]}"; do run "http://127.0.0.1:$p" >/dev/null; done
echo "| round | target | req/s | p99 ms | % of nginx proxy_pass | CPU µs/request | nginx's CPU/request as % of it |"
echo "|---:|---|---:|---:|---:|---:|---:|"
declare -A RPS CPU PCT P99
for i in $(seq "$ROUNDS"); do
  read -r n_rps n_p99 n_cpu < <(measured "http://127.0.0.1:$PX_PORT" "${NGINX_PIDS[@]}")
  echo "| $i | nginx proxy_pass | $n_rps | $n_p99 | 100 | $n_cpu | 100 |"
  RPS[nginx]+="$n_rps "; P99[nginx]+="$n_p99 "; CPU[nginx]+="$n_cpu "
  j=0
  for b in $BINS; do
    read -r g_rps g_p99 g_cpu < <(measured "http://127.0.0.1:${PORTS[$j]}" "${GW_PIDS[$j]}")
    echo "| $i | $b | $g_rps | $g_p99 | $(pct "$g_rps" "$n_rps") | $g_cpu | $(pct "$n_cpu" "$g_cpu") |"
    RPS[$b]+="$g_rps "; P99[$b]+="$g_p99 "; CPU[$b]+="$g_cpu "; PCT[$b]+="$(pct "$g_rps" "$n_rps") "
    j=$((j + 1))
  done
done
echo
echo "Medians over $ROUNDS rounds:"
echo
echo "| target | req/s | % of nginx's req/s (median of medians) | median of per-round % | p99 ms | CPU µs/request | nginx's CPU/request as % of it |"
echo "|---|---:|---:|---:|---:|---:|---:|"
m_rps=$(echo "${RPS[nginx]}" | median); m_cpu=$(echo "${CPU[nginx]}" | median)
echo "| nginx proxy_pass | $m_rps | 100 | 100 | $(echo "${P99[nginx]}" | median) | $m_cpu | 100 |"
for b in $BINS; do
  g_rps=$(echo "${RPS[$b]}" | median); g_cpu=$(echo "${CPU[$b]}" | median)
  echo "| $b | $g_rps | $(pct "$g_rps" "$m_rps") | $(echo "${PCT[$b]}" | median) | $(echo "${P99[$b]}" | median) | $g_cpu | $(pct "$m_cpu" "$g_cpu") |"
done

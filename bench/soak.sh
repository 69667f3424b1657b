#!/usr/bin/env bash
# Soak: 100,000 requests through the real gateway (release build) at the mock upstream, 32 at a
# time, 5 % of them with an injected fault (5xx once, a short 429 on most accounts, a disconnect
# mid-stream, a client hanging up mid-stream). Prints outcomes by kind and the gateway's RSS every
# 10,000 requests; fails if any outcome is unexpected or memory grows.
#
#   bench/soak.sh                  # 100,000 requests
#   SOAK_REQUESTS=20000 bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_REQUESTS=${SOAK_REQUESTS:-100000}
ulimit -n 65536 2>/dev/null || true
start=$(date +%s)
cargo test --release --test it faults::soak_100k -- --ignored --nocapture 2>&1 | grep -E "^SOAK|test result|panicked|assert"
echo "soak: $SOAK_REQUESTS requests in $(( $(date +%s) - start )) s (including the release build)"

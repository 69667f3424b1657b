#!/usr/bin/env bash
# permessage-deflate on the Responses WebSocket (issue 13), measured on the wire with the real
# `codex exec` (CODEX_BIN, default node_modules/.bin/codex): its prewarm and first turn (the real
# instructions, tools and context), everything on 127.0.0.1. bench/ws_deflate.py relays each
# hop and prints what was offered and answered and, per direction, the bytes on the wire and
# the bytes they decode to.
#  1. direct: codex -> relay -> cao's mock upstream (deflate between Codex and the "backend");
#  2. through the gateway: codex -> relay -> gateway -> relay -> mock (each hop negotiates on its
#     own; the upstream hop is what the gateway sends the backend).
#
#   CAO_BIN=$PWD/target/debug/cao bench/ws_deflate.sh
source "$(dirname "$0")/lib.sh"
CODEX="${CODEX_BIN:-$ROOT/node_modules/.bin/codex}"
build_release
make_accounts "$WORK/data" 2

relay() { # relay <name> <listen port> <target port> <label>: sets <name>_PID
  : >"$WORK/$1.out"
  python3 "$ROOT/bench/ws_deflate.py" "$2" "$3" "$4" >"$WORK/$1.out" &
  eval "$1_PID=$!"
  PIDS+=("$!")
  until grep -q ready "$WORK/$1.out" 2>/dev/null; do sleep 0.1; done
}
report() { # report <name>
  local pid_var="$1_PID"
  kill -TERM "${!pid_var}"; wait "${!pid_var}" 2>/dev/null || true; grep -v '^ready' "$WORK/$1.out"
}
codex_exec() { # codex_exec <port Codex is routed to>
  local home="$WORK/codex-home-$1"; mkdir -p "$home" "$WORK/work"
  cp "$WORK/data/acct-0/auth.json" "$home/auth.json"
  printf 'cli_auth_credentials_store = "file"\nforced_login_method = "chatgpt"\n' >"$home/config.toml"
  (cd "$WORK/work" && env -u OPENAI_API_KEY -u CODEX_API_KEY CODEX_HOME="$home" HOME="$home" \
    CODEX_REFRESH_TOKEN_URL_OVERRIDE="http://127.0.0.1:$MOCK_PORT/oauth/token" \
    CODEX_REVOKE_TOKEN_URL_OVERRIDE="http://127.0.0.1:$MOCK_PORT/oauth/token" \
    "$CODEX" -c model_provider='"openai"' -c openai_base_url="\"http://127.0.0.1:$1\"" \
    -c chatgpt_base_url="\"http://127.0.0.1:$1/backend-api\"" \
    exec --skip-git-repo-check "hello" </dev/null >"$WORK/codex.out" 2>"$WORK/codex.err") || cat "$WORK/codex.err"
  grep -q "Mock reply" "$WORK/codex.out" && echo "codex exec answered over WebSocket: $(grep -m1 'Mock reply' "$WORK/codex.out")"
}

echo "## permessage-deflate on the Responses WebSocket"
echo
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
MOCK_PORT=$(free_port)
"$CAO" mock-upstream --port "$MOCK_PORT" >"$WORK/mock.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$MOCK_PORT/health"

echo "### The real codex exec ($("$CODEX" --version)), prewarm + one turn, direct to the mock"
echo '```'
DIRECT_PORT=$(free_port)
relay DIRECT "$DIRECT_PORT" "$MOCK_PORT" "codex->mock"
codex_exec "$DIRECT_PORT"
report DIRECT
echo '```'
echo
echo "### The same through the gateway"
echo '```'
GW_PORT=$(free_port); DOWN_PORT=$(free_port); UP_PORT=$(free_port)
relay UP "$UP_PORT" "$MOCK_PORT" "gateway->mock"
"$CAO" --data-dir "$WORK/data" gateway start --port "$GW_PORT" --base-url "http://127.0.0.1:$UP_PORT" \
  --allowed-host "127.0.0.1:$DOWN_PORT" --token-url "http://127.0.0.1:$MOCK_PORT/oauth/token" --usage-poll 0 >"$WORK/gw.out" 2>"$WORK/gw.log" &
PIDS+=("$!")
wait_http "http://127.0.0.1:$GW_PORT/health"
relay DOWN "$DOWN_PORT" "$GW_PORT" "codex->gateway"
codex_exec "$DOWN_PORT"
report DOWN
report UP
echo '```'

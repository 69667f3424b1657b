#!/usr/bin/env bash
# What permessage-deflate would save on the Responses WebSocket (issue 13), measured on the
# bytes that actually go through (bench/ws_deflate.py relays them and compresses each message as
# RFC 7692 would), everything on 127.0.0.1:
# the real `codex exec` (CODEX_BIN, default node_modules/.bin/codex) through the gateway to cao's
# mock upstream: the Sec-WebSocket-Extensions it offers, its prewarm and its first turn (the
# real instructions, tools and context). (bench/ws_load.rs's synthetic session is no measure of
# this: its filler text compresses ~80x.)
#
#   CAO_BIN=$PWD/target/debug/cao bench/ws_deflate.sh
source "$(dirname "$0")/lib.sh"
CODEX="${CODEX_BIN:-$ROOT/node_modules/.bin/codex}"
build_release
make_accounts "$WORK/data" 2

relay() { # relay <target port>: on RELAY_PORT (the gateway allows that Host); sets RELAY_PID
  : >"$WORK/relay.out"
  python3 "$ROOT/bench/ws_deflate.py" "$RELAY_PORT" "$1" >"$WORK/relay.out" &
  RELAY_PID=$!
  PIDS+=("$RELAY_PID")
  until grep -q ready "$WORK/relay.out" 2>/dev/null; do sleep 0.1; done
}
report() { kill -TERM "$RELAY_PID"; wait "$RELAY_PID" 2>/dev/null || true; grep -v '^ready' "$WORK/relay.out"; }

echo "## permessage-deflate on the Responses WebSocket"
echo
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
MOCK_PORT=$(free_port)
"$CAO" mock-upstream --port "$MOCK_PORT" >"$WORK/mock.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$MOCK_PORT/health"
GW_PORT=$(free_port); RELAY_PORT=$(free_port)
"$CAO" --data-dir "$WORK/data" gateway start --port "$GW_PORT" --base-url "http://127.0.0.1:$MOCK_PORT" \
  --allowed-host "127.0.0.1:$RELAY_PORT" --token-url "http://127.0.0.1:$MOCK_PORT/oauth/token" --usage-poll 0 >"$WORK/gw.out" 2>"$WORK/gw.log" &
PIDS+=("$!")
wait_http "http://127.0.0.1:$GW_PORT/health"

echo "### The real codex exec ($("$CODEX" --version)), prewarm + one turn"
echo '```'
relay "$GW_PORT"
HOME_DIR="$WORK/codex-home"; mkdir -p "$HOME_DIR" "$WORK/work"
cp "$WORK/data/acct-0/auth.json" "$HOME_DIR/auth.json"
printf 'cli_auth_credentials_store = "file"\nforced_login_method = "chatgpt"\n' >"$HOME_DIR/config.toml"
(cd "$WORK/work" && env -u OPENAI_API_KEY -u CODEX_API_KEY CODEX_HOME="$HOME_DIR" HOME="$HOME_DIR" \
  CODEX_REFRESH_TOKEN_URL_OVERRIDE="http://127.0.0.1:$MOCK_PORT/oauth/token" \
  CODEX_REVOKE_TOKEN_URL_OVERRIDE="http://127.0.0.1:$MOCK_PORT/oauth/token" \
  "$CODEX" -c model_provider='"openai"' -c openai_base_url="\"http://127.0.0.1:$RELAY_PORT\"" \
  -c chatgpt_base_url="\"http://127.0.0.1:$RELAY_PORT/backend-api\"" \
  exec --skip-git-repo-check "hello" </dev/null >"$WORK/codex.out" 2>"$WORK/codex.err") || cat "$WORK/codex.err"
grep -q "Mock reply" "$WORK/codex.out" && echo "codex exec answered over WebSocket: $(grep -m1 'Mock reply' "$WORK/codex.out")"
report
echo '```'

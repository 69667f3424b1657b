#!/usr/bin/env bash
# Time `cao status --json` over 50 and 1,000 accounts (and the TypeScript tool on the same dirs
# when it is installed), then write the numbers into the "## cao status --json" section of
# BENCHMARKS.md.
#
#   bench/status.sh            # build release, measure, update BENCHMARKS.md
#   TS_TOOL=/path/to/codex-account-orchestrator bench/status.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v hyperfine >/dev/null; then
  echo "bench/status.sh: installing hyperfine" >&2
  apt-get install -y hyperfine >/dev/null 2>&1 || sudo apt-get install -y hyperfine >/dev/null
fi

cargo build --release --quiet
CAO="$PWD/target/release/cao"
TS_TOOL="${TS_TOOL:-$PWD/../tools/node_modules/.bin/codex-account-orchestrator}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# A data dir with N logged-in accounts: auth.json with unsigned JWTs as Codex writes it, a
# status entry per account (some cooling), like a real set-up.
make_dir() {
  local dir=$1 n=$2
  python3 - "$dir" "$n" <<'PY'
import base64, json, os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def jwt(c): return b64(b'{"alg":"none","typ":"JWT"}') + "." + b64(json.dumps(c).encode()) + "." + b64(b"sig")
now = int(time.time())
os.makedirs(d, mode=0o700, exist_ok=True)
names = [f"acct-{i:04d}" for i in range(n)]
statuses = {}
for i, name in enumerate(names):
    os.makedirs(f"{d}/{name}", mode=0o700, exist_ok=True)
    a = {"chatgpt_account_id": f"acc-{i}", "chatgpt_plan_type": "plus", "chatgpt_user_id": f"u-{i}"}
    auth = {"OPENAI_API_KEY": None, "tokens": {
        "id_token": jwt({"email": f"{name}@example.com", "exp": now + 86400 * 9, "https://api.openai.com/auth": a}),
        "access_token": jwt({"exp": now + 86400 * 9, "https://api.openai.com/auth": a}),
        "refresh_token": f"rt-{i}", "account_id": f"acc-{i}"}, "last_refresh": "2026-11-01T00:00:00Z"}
    p = f"{d}/{name}/auth.json"
    with open(p, "w") as f: json.dump(auth, f, indent=2)
    os.chmod(p, 0o600)
    with open(f"{d}/{name}/config.toml", "w") as f:
        f.write('cli_auth_credentials_store = "file"\nforced_login_method = "chatgpt"\n')
    statuses[name] = {"lastAttemptAtMs": now * 1000 - 60000, "consecutiveFailures": i % 3}
    if i % 5 == 0:
        statuses[name].update({"lastQuotaAtMs": now * 1000 - 1000, "cooldownUntilMs": now * 1000 + 900000, "lastError": "usage_limit_reached"})
with open(f"{d}/registry.json", "w") as f: json.dump({"default_account": names[0], "accounts": names}, f, indent=2)
with open(f"{d}/account_status.json", "w") as f: json.dump({"statuses": statuses}, f, indent=2)
PY
}

load="$(cut -d' ' -f1-3 /proc/loadavg)"
results=""
for n in 50 1000; do
  dir="$WORK/accounts-$n"
  make_dir "$dir" "$n"
  cmds=("$CAO --data-dir $dir status --json")
  names=("cao")
  if [ -x "$TS_TOOL" ]; then
    cmds+=("$TS_TOOL --data-dir $dir status --json")
    names+=("TypeScript CAO v1.4.2")
  fi
  args=()
  for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
  hyperfine --warmup 5 --min-runs 30 -N --export-markdown "$WORK/md-$n" \
    --export-json "$WORK/json-$n" "${args[@]}" >&2
  # The median and CPU time per run (user + system) move much less with the machine's load than wall time.
  cpu_times="$(python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("- %s: median %.1f ms wall, %.1f ms CPU per run (user %.1f + system %.1f)" % (r["command"], r["median"]*1000, (r["user"]+r["system"])*1000, r["user"]*1000, r["system"]*1000))' "$WORK/json-$n")"
  results+=$'\n'"### $n accounts"$'\n\n'"$(sed 's/`//g' "$WORK/md-$n")"$'\n\n'"${cpu_times}"$'\n'
done

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
section="## cao status --json

Command: \`bench/status.sh\` (release build; \`hyperfine --warmup 5 --min-runs 30 -N\`; data dirs
with N logged-in accounts, each an auth.json with two JWTs, a config.toml and a status entry).
Goal: under 5 ms for 50 accounts.

Machine: $(nproc) cores, ${cpu}, $(uname -sr). Measured $(date -u +%Y-%m-%d), load average
before the run: ${load} (other jobs on the machine inflate every number; compare the rows of
one table, which ran interleaved on the same dirs).
${results}"

# Replace (or append) only this section of BENCHMARKS.md; other sections belong to other scripts.
python3 - "$section" <<'PY'
import re, sys, pathlib
section = sys.argv[1].rstrip() + "\n"
p = pathlib.Path("BENCHMARKS.md")
text = p.read_text() if p.exists() else "# Benchmarks\n"
pat = re.compile(r"^## cao status --json\n.*?(?=^## |\Z)", re.S | re.M)
if pat.search(text):
    text = pat.sub(lambda m: section + "\n", text, count=1)
else:
    text = text.rstrip() + "\n\n" + section
p.write_text(text.rstrip() + "\n")
PY
echo "bench/status.sh: updated the '## cao status --json' section of BENCHMARKS.md" >&2

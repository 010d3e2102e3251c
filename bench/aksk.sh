#!/usr/bin/env bash
# AK/SK cost, measured against the sandbox on loopback (issue #9): the
# rename benchmark with a token and with AK/SK signing (the sandbox then
# checks every signature), the requests one edit sends with AK/SK (from the
# sandbox's journal: one PATCH, nothing added by signing once the project ID
# is cached), and the time to sign one PATCH in-process.
# Needs hyperfine (apt-get install hyperfine). Usage: bench/aksk.sh [hyperfine options]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "bench: needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }

cargo build --release --quiet
bin=$PWD/target/release/ims-patch
id=33ad552d-1149-471c-8190-ff6776174a00
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT

# start NAME ARGS...: a sandbox on a free port; its export lines in $tmp/NAME.env
start() {
  local name=$1; shift
  "$bin" sandbox --port 0 --journal "$tmp/$name.jsonl" "$@" >"$tmp/$name.env" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ "$(wc -l <"$tmp/$name.env")" -ge 2 ] && return; sleep 0.05; done
  echo "bench: the $name sandbox did not start" >&2; exit 1
}
start token
start aksk --access-key AKBENCH0000000000001 --secret-key sk-bench-0000000000000000000000000000000

mapfile -t token_env < <(sed 's/^export //' "$tmp/token.env")
mapfile -t aksk_env < <(sed 's/^export //' "$tmp/aksk.env")
aksk_env+=("IMS_PATCH_CACHE_DIR=$tmp/cache")

# Warm the project cache (the one lookup, GET /v3/projects?name=eu-de).
env -i "${aksk_env[@]}" "$bin" -q rename $id warm
: >"$tmp/aksk.jsonl"
for i in $(seq 10); do env -i "${aksk_env[@]}" "$bin" -q rename $id "edit $i"; done
echo "requests for 10 AK/SK renames (sandbox journal):"
python3 - "$tmp/aksk.jsonl" <<'PY'
import collections, json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
count = collections.Counter("%s %s -> %s, %s" % (r["method"], r["path"], r["status"],
        r["headers"].get("authorization", "").split(",")[0]) for r in lines)
for what, n in count.items():
    print("  %3d x %s" % (n, what))
PY

hyperfine -N --warmup 20 --min-runs 200 "$@" \
  -n "rename, token" "env -i ${token_env[*]} $bin -q rename $id bench" \
  -n "rename, AK/SK" "env -i ${aksk_env[*]} $bin -q rename $id bench"

cargo test --release --quiet --lib bench_signing_an_edit -- --ignored --nocapture 2>/dev/null | grep 'signing one PATCH'

#!/usr/bin/env bash
# Benchmarks ims-patch against its own sandbox on loopback: process start,
# one edit (one PATCH), one read, a four-attribute set-attr, and peak memory
# for a small and a large image. Needs hyperfine and GNU time
# (apt-get install hyperfine time). Usage: bench/run.sh [hyperfine options]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "bench: needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (apt-get install time)" >&2; exit 1; }

cargo build --release --quiet
bin=$PWD/target/release/ims-patch
id=33ad552d-1149-471c-8190-ff6776174a00
tmp=$(mktemp -d)
"$bin" sandbox --port 0 >"$tmp/env" 2>/dev/null &
sandbox=$!
trap 'kill $sandbox 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [ -s "$tmp/env" ] && break; sleep 0.05; done
# shellcheck disable=SC1091
. "$tmp/env"
export IMS_PATCH_ENDPOINT IMS_PATCH_TOKEN

echo "binary: $(du -h "$bin" | cut -f1), $("$bin" --version)"
hyperfine -N --warmup 20 --min-runs 200 "$@" \
  "$bin --version" \
  "$bin -q rename $id bench" \
  "$bin -q show $id" \
  "$bin -q set-attr $id __os_bit=64 min_ram=2048 protected=false __bench=1"

rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }
echo "peak RSS, show of the seed image (-o json): $(rss "$bin" show $id -o json) KiB"
# A large image: 100 custom attributes of 60 000 characters (6 MB of JSON).
big=$(python3 -c 'import json; print(json.dumps([{"op":"add","path":"/big%03d"%i,"value":"v"*60000} for i in range(100)]))')
printf '%s' "$big" | "$bin" -q patch $id
echo "peak RSS, show of a 6 MB image (-o json):   $(rss "$bin" show $id -o json) KiB"
echo "peak RSS, show of a 6 MB image (table):     $(rss "$bin" show $id) KiB"

#!/usr/bin/env bash
# Benchmark of keep-alive against the sandbox: 500 requests (GET and PATCH
# alternating) on one connection, as a client that reuses connections sends
# them. Each used to take ~44 ms (a response in several small segments meeting
# the client's delayed ACK). Needs python3. Usage: bench/keepalive.sh [COUNT]
# IMS_PATCH_BENCH_BIN=path uses that ims-patch binary instead of a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${IMS_PATCH_BENCH_BIN:-}" ]; then
  bin=$IMS_PATCH_BENCH_BIN
else
  cargo build --release --quiet
  bin=$PWD/target/release/ims-patch
fi
id=33ad552d-1149-471c-8190-ff6776174a00
tmp=$(mktemp -d)
"$bin" sandbox --port 0 >"$tmp/env" 2>/dev/null &
sandbox=$!
trap 'kill $sandbox 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [ -s "$tmp/env" ] && break; sleep 0.05; done
# shellcheck disable=SC1091
. "$tmp/env"
python3 bench/keepalive.py "$IMS_PATCH_ENDPOINT" "$id" "${1:-500}"

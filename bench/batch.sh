#!/usr/bin/env bash
# Batch editing benchmarks (issue #10). Against the sandbox with N images
# (default 1000): a shell loop of curl doing the same PATCHes, then
# ims-patch set-attr --images-from with --jobs 1 and --jobs 8. With
# IMS_PATCH_GLANCE_URL set (tests/glance/up.sh), the same sequential run
# against the real Glance next to the server-bound floor (bench/floor.py:
# one client sending the PATCHes back to back). Last, the peak RSS of
# --images-from - with 100,000 IDs and -o json (GNU time).
#
#   bench/batch.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (apt-get install time)" >&2; exit 1; }
n=${1:-1000}
cargo build --release --quiet
bin=$PWD/target/release/ims-patch
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

sandbox() { # $1: env file
  "$bin" sandbox --port 0 >"$1" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$1" ] && break; sleep 0.05; done
}

# N images on $1, their IDs in $2 (one POST each, with one client).
create() {
  python3 - "$1" "$n" >"$2" <<'PY'
import http.client, json, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
for i in range(int(sys.argv[2])):
    body = json.dumps({"name": "bench-%d" % i, "disk_format": "raw", "container_format": "bare"})
    conn.request("POST", "/v2/images", body=body,
                 headers={"Content-Type": "application/json", "X-Auth-Token": "bench"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 201:
        sys.exit("POST answered %d: %s" % (r.status, data))
    if (r.getheader("Connection") or "").lower() == "close":
        conn.close()
    print(json.loads(data)["id"])
PY
}

seconds() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l | xargs printf '%.3f'; }

curl_loop() { # $1 endpoint, $2 ids, $3 value
  while read -r id; do
    curl -sf -o /dev/null -X PATCH -H "X-Auth-Token: bench" \
      -H "Content-Type: application/openstack-images-v2.1-json-patch" \
      --data "[{\"op\":\"add\",\"path\":\"/__bench\",\"value\":\"$3\"}]" "$1/v2/images/$id"
  done <"$2"
}

run_ims() { # $1 endpoint, $2 ids, $3 jobs, $4 value
  IMS_PATCH_ENDPOINT=$1 IMS_PATCH_TOKEN=bench "$bin" -q set-attr --images-from "$2" --jobs "$3" -o json "__bench=$4"
}

sandbox "$tmp/sb.env"
sb=$(sed -n 's/^export IMS_PATCH_ENDPOINT=//p' "$tmp/sb.env")
create "$sb" "$tmp/ids"
echo "sandbox, $n images ($("$bin" --version))"
loop=$(seconds curl_loop "$sb" "$tmp/ids" loop)
echo "  curl loop:        ${loop} s"
# Five runs each, with the slowest and its speed-up over the loop: a run
# that took 4 s (one request answered seconds late) was tiny_http's pool
# leaving a connection unread (crates/sandbox/vendor/tiny_http/PATCHED.md).
for jobs in 1 8; do
  times=$(for r in 1 2 3 4 5; do seconds run_ims "$sb" "$tmp/ids" "$jobs" "j$jobs-$r"; echo; done | sort -n)
  median=$(echo "$times" | sed -n 3p) slowest=$(echo "$times" | tail -1)
  echo "  ims-patch -j $jobs:   median ${median} s ($(echo "$loop / $median" | bc -l | xargs printf '%.0f')x faster)," \
    "slowest ${slowest} s ($(echo "$loop / $slowest" | bc -l | xargs printf '%.0f')x)"
done

if [ -n "${IMS_PATCH_GLANCE_URL:-}" ]; then
  g=$IMS_PATCH_GLANCE_URL
  create "$g" "$tmp/gids"
  # Alternate the runs, so that a drift of the machine hits both alike.
  floor=0 ims=0
  for r in 1 2 3; do
    f=$(seconds python3 bench/floor.py "$g" "$tmp/gids" __bench "floor$r")
    i=$(seconds run_ims "$g" "$tmp/gids" 1 "ims$r")
    echo "  glance run $r: floor ${f} s, ims-patch -j 1 ${i} s"
    floor=$(echo "$floor + $f" | bc -l) ims=$(echo "$ims + $i" | bc -l)
  done
  echo "real Glance, $n images, sequential: floor $(echo "$floor / 3" | bc -l | xargs printf '%.3f') s," \
    "ims-patch $(echo "$ims / 3" | bc -l | xargs printf '%.3f') s ($(echo "$ims / $floor" | bc -l | xargs printf '%.3f')x the floor)"
fi

# Peak memory: 100,000 IDs on standard input (all the same 4 images, so
# each resolves to an image that exists; repeats are edited once, but every
# line is read, and every result line printed).
sandbox "$tmp/sb2.env"
sb2=$(sed -n 's/^export IMS_PATCH_ENDPOINT=//p' "$tmp/sb2.env")
python3 -c 'import uuid
for i in range(100000): print(uuid.UUID(int=i, version=4))' >"$tmp/100k"
IMS_PATCH_ENDPOINT=$sb2 IMS_PATCH_TOKEN=bench /usr/bin/time -f '%M' -o "$tmp/rss" \
  "$bin" -q set-attr --images-from - --jobs 8 -o json __bench=m <"$tmp/100k" >"$tmp/100k.out" 2>/dev/null || true
rss=$(tail -1 "$tmp/rss")
lines=$(wc -l <"$tmp/100k.out")
echo "100,000 IDs from stdin, -o json: peak RSS ${rss} KiB, ${lines} result lines"

#!/usr/bin/env bash
# Issue #8's measurement: `ims-patch rename` with a Keystone login, cold (no
# token cache: login + PATCH) and warm (cached token: the PATCH alone),
# versus `openstack image set --name`, all with the same clouds.yaml against
# the real Keystone 30 + token-checking Glance 33 of tests/keystone.
# Prints wall times (hyperfine), requests per edit (ims-patch -v lines; the
# openstack side from tests/osc/bench-image-set.py) and peak memory (GNU time).
#
# Needs: the exported lines of tests/keystone/up.sh, IMS_PATCH_OPENSTACK
# (tests/osc/setup.sh), hyperfine and GNU time.
#   bench/login.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
command -v hyperfine >/dev/null || { echo "bench: needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (apt-get install time)" >&2; exit 1; }
for v in IMS_PATCH_KEYSTONE_URL IMS_PATCH_KEYSTONE_IMAGE_ID IMS_PATCH_OPENSTACK; do
  [ -n "${!v:-}" ] || { echo "bench: $v is not set (tests/keystone/up.sh, tests/osc/setup.sh)" >&2; exit 1; }
done

cargo build --release --quiet --bin ims-patch
bin=$PWD/target/release/ims-patch
id=$IMS_PATCH_KEYSTONE_IMAGE_ID
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash tests/osc/clouds-yaml.sh >"$tmp/clouds.yaml"
chmod 600 "$tmp/clouds.yaml"
export OS_CLIENT_CONFIG_FILE=$tmp/clouds.yaml OS_CLOUD=ims-demo IMS_PATCH_CACHE_DIR=$tmp/cache
unset OS_AUTH_URL OS_USERNAME OS_PASSWORD OS_REGION_NAME IMS_PATCH_ENDPOINT IMS_PATCH_TOKEN

requests() { "$@" -v 2>&1 >/dev/null | grep -c '^> ' || true; }
rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }

"$bin" -q auth login
echo "requests per edit: cold $(requests "$bin" --no-token-cache -q rename "$id" bench-cold)," \
  "warm $(requests "$bin" -q rename "$id" bench-warm)"
echo "peak RSS (KiB): cold $(rss "$bin" --no-token-cache -q rename "$id" bench-cold)," \
  "warm $(rss "$bin" -q rename "$id" bench-warm)," \
  "openstack $(rss "$IMS_PATCH_OPENSTACK" image set --name bench-osc "$id")"

hyperfine -N --warmup 2 --runs "$runs" \
  -n "ims-patch rename, cold (--no-token-cache)" "$bin --no-token-cache -q rename $id bench-cold" \
  -n "ims-patch rename, warm (cached token)" "$bin -q rename $id bench-warm"
hyperfine -N --warmup 1 --runs "$(( runs < 10 ? runs : 10 ))" \
  -n "openstack image set --name" "$IMS_PATCH_OPENSTACK image set --name bench-osc $id"
python3 tests/osc/bench-image-set.py "$IMS_PATCH_OPENSTACK" ims-demo "$id" 3

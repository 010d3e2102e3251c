#!/usr/bin/env bash
# Create (or reuse) the virtualenv with the vendor's own AK/SK signer,
# huaweicloudsdkcore 3.1.219 (requirements.txt, every package pinned), for
# ims-patch's AK/SK proof tests.
#
#   IMS_PATCH_AKSK_PYTHON=$(bash tests/aksk/setup.sh)
#   "$IMS_PATCH_AKSK_PYTHON" tests/aksk/vendor_sign.py --help
#
# stdout: exactly one line, the venv's python.  stderr: progress.
#
# Environment (all optional):
#   IMS_PATCH_AKSK_VENV  virtualenv to create or reuse.  Default:
#                        $HOME/.cache/ims-patch/aksk-venv-<hash of requirements>
#   IMS_PATCH_PYTHON     Python to build the venv with (default python3)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[aksk-setup] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

umask 022
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

PYTHON=${IMS_PATCH_PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found (set IMS_PATCH_PYTHON)"
PY_ID=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2], sys.version.split()[0], sys.base_prefix)') \
  || die "'$PYTHON' does not run"
PY_MM=${PY_ID%% *}
[ "$PY_MM" = 3.11 ] || log "WARNING: $PYTHON is Python $PY_MM; requirements.txt was frozen with 3.11"

REQS=$HERE/requirements.txt
REQ_HASH=$({ cat "$REQS"; printf '%s\n' "$PY_ID"; } | sha256sum | cut -c1-16)

cache_root() {
  local home=${HOME:-}
  if [ -n "$home" ] && mkdir -p "$home/.cache/ims-patch" 2>/dev/null \
     && [ -w "$home/.cache/ims-patch" ]; then
    printf '%s' "$home/.cache/ims-patch"
  else
    local alt
    alt="${TMPDIR:-/tmp}/ims-patch-cache-$(id -u)"
    mkdir -p "$alt" || die "cannot create a cache dir ($alt)"
    log "HOME ('$home') is not usable for the cache; using $alt"
    printf '%s' "$alt"
  fi
}

VENV=${IMS_PATCH_AKSK_VENV:-$(cache_root)/aksk-venv-$REQ_HASH}
mkdir -p "$(dirname "$VENV")"
VENV=$(cd "$(dirname "$VENV")" && pwd)/$(basename "$VENV")
READY=$VENV/.ims-patch-ready

ensure_venv() {
  if [ -f "$READY" ] && [ "$(cat "$READY")" = "$REQ_HASH" ]; then
    log "reusing venv $VENV"
    return 0
  fi
  local t0=$SECONDS ilog="$VENV.install.log"
  log "creating venv $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" >"$ilog" 2>&1 || { tail -n 40 "$ilog" >&2; die "python -m venv failed"; }
  if ! "$VENV/bin/python" -m pip install -q --no-input -r "$REQS" >>"$ilog" 2>&1; then
    tail -n 60 "$ilog" >&2
    die "pip install failed (full log: $ilog)"
  fi
  "$VENV/bin/python" -c 'from huaweicloudsdkcore.signer.signer import Signer' >>"$ilog" 2>&1 \
    || { tail -n 40 "$ilog" >&2; die "the venv does not import huaweicloudsdkcore"; }
  printf '%s\n' "$REQ_HASH" >"$READY"
  log "venv ready in $((SECONDS - t0)) s"
}

# Two concurrent runs must not build the same venv at once.
exec 9>"$VENV.lock"
flock -w 600 9 || die "timed out waiting for the venv lock $VENV.lock"
ensure_venv
exec 9>&-

# The vendor's signer must still produce the issue's vectors here.
"$VENV/bin/python" "$HERE/vendor_sign.py" selftest >&2 || die "vendor_sign.py selftest failed"
printf '%s\n' "$VENV/bin/python"

# shellcheck shell=bash
# The pinned, cached Python virtualenvs of the real servers and tools the tests
# run (Glance, Keystone, the openstack CLI, the vendor's AK/SK signer): one
# implementation for every setup script. Sourced after a file that defines
# log and die; everything here logs to stderr.

# The cache root: $HOME/.cache/ims-patch, or a per-user dir under TMPDIR.
ims_cache_root() {
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

# ims_ensure_venv PYTHON VENV REQS HASH IMPORT_CHECK BIN...: build VENV from
# the pinned REQS unless VENV/.ims-patch-ready holds HASH.  Call it under a
# flock.  The pip output goes to VENV.install.log.
ims_ensure_venv() {
  local python=$1 venv=$2 reqs=$3 hash=$4 check=$5 ready=$2/.ims-patch-ready b
  shift 5
  if [ -f "$ready" ] && [ "$(cat "$ready")" = "$hash" ]; then
    log "reusing venv $venv"
    return 0
  fi
  local t0=$SECONDS ilog="$venv.install.log"
  log "creating venv $venv (cold install, about a minute)"
  rm -rf "$venv"
  "$python" -m venv "$venv" >"$ilog" 2>&1 || { tail -n 40 "$ilog" >&2; die "python -m venv failed"; }
  if ! "$venv/bin/python" -m pip install -q --no-input -r "$reqs" >>"$ilog" 2>&1; then
    tail -n 60 "$ilog" >&2
    die "pip install failed (full log: $ilog)"
  fi
  "$venv/bin/python" -c "$check" >>"$ilog" 2>&1 \
    || { tail -n 40 "$ilog" >&2; die "the venv fails: python -c '$check'"; }
  for b in "$@"; do
    [ -x "$venv/bin/$b" ] || die "$b missing in $venv/bin"
  done
  printf '%s\n' "$hash" >"$ready"
  log "venv ready in $((SECONDS - t0)) s"
}

# ims_venv NAME REQS OVERRIDE IMPORT_CHECK BIN...: set PYTHON and VENV to a
# ready virtualenv built with $IMS_PATCH_PYTHON (default python3) from the
# pinned REQS: OVERRIDE if given, else <cache root>/NAME-venv-<hash of REQS
# and the Python>. Concurrent callers wait for each other on a lock.
ims_venv() {
  local name=$1 reqs=$2 override=$3 check=$4 py_id hash
  shift 4
  PYTHON=${IMS_PATCH_PYTHON:-python3}
  command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found (set IMS_PATCH_PYTHON)"
  py_id=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2], sys.version.split()[0], sys.base_prefix)') \
    || die "'$PYTHON' does not run"
  [ "${py_id%% *}" = 3.11 ] || log "WARNING: $PYTHON is Python ${py_id%% *}; $reqs was frozen with 3.11"
  hash=$({ cat "$reqs"; printf '%s\n' "$py_id"; } | sha256sum | cut -c1-16)
  VENV=${override:-$(ims_cache_root)/$name-venv-$hash}
  mkdir -p "$(dirname "$VENV")"
  VENV=$(cd "$(dirname "$VENV")" && pwd)/$(basename "$VENV")
  export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
  exec 9>"$VENV.lock"
  flock -w 1200 9 || die "timed out waiting for the venv lock $VENV.lock"
  ims_ensure_venv "$PYTHON" "$VENV" "$reqs" "$hash" "$check" "$@"
  exec 9>&-
}

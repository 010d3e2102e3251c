#!/usr/bin/env bash
# Start a real OpenStack Keystone 30.0.0 (Identity API v3.14) on 127.0.0.1,
# plus a Glance 33.0.0 that checks tokens against it, with the users,
# projects, regions, endpoints and application credential that ims-patch's
# login tests need.
#
#   env=$(tests/keystone/up.sh)      # IMS_PATCH_KEYSTONE_*=... lines
#   while IFS= read -r l; do export "$l"; done <<<"$env"
#   ...
#   tests/keystone/down.sh           # stops both again
#
# stdout: the IMS_PATCH_KEYSTONE_* lines, one NAME=value a line (values have
# no spaces or quotes).  stderr: progress.  See README.md in this folder.
#
# Environment (all optional):
#   IMS_PATCH_KEYSTONE_DIR      work dir (config, keys, sqlite db, logs, pid,
#                               and glance/ for the Glance).  Default: a new
#                               mktemp -d dir, which down.sh deletes.
#   IMS_PATCH_KEYSTONE_VENV     virtualenv to create or reuse.  Default:
#                               $HOME/.cache/ims-patch/keystone-venv-<hash>
#   IMS_PATCH_KEYSTONE_PORT     port to listen on (default: a free one)
#   IMS_PATCH_KEYSTONE_TOKEN_EXPIRATION  token lifetime in s (default 3600)
#   IMS_PATCH_KEYSTONE_TIMEOUT  seconds to wait for GET /v3 -> 200 (default 90)
#   IMS_PATCH_PYTHON            Python to build the venv with (default python3)
# The Glance is started by tests/glance/up.sh (IMS_PATCH_GLANCE_AUTH=keystone)
# with its own cached venv (IMS_PATCH_GLANCE_VENV is honoured).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GLANCE_TAG=keystone-up
# shellcheck source=../glance/common.sh
. "$HERE/../glance/common.sh"
# shellcheck source=common.sh
. "$HERE/common.sh"
# shellcheck source=../lib/venv.sh
. "$HERE/../lib/venv.sh"

umask 022
T0=$SECONDS

# ------------------------------------------------------------------ venv ---
ims_venv keystone "$HERE/requirements.txt" "${IMS_PATCH_KEYSTONE_VENV:-}" \
  'import keystone, pyuwsgi' keystone-manage uwsgi

# -------------------------------------------------------------- work dir ---
if [ -n "${IMS_PATCH_KEYSTONE_DIR:-}" ]; then
  WORK=$IMS_PATCH_KEYSTONE_DIR
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/ims-patch-keystone.XXXXXX")
  : >"$WORK/.created-by-up-sh"   # down.sh deletes such a dir
fi
WORK=$(cd "$WORK" && pwd)
PIDFILE=$WORK/keystone.pid
URLFILE=$WORK/keystone.url
LOGFILE=$WORK/keystone.log
ENVFILE=$WORK/env

# Already running from this dir, with its fixtures?  Then print them again.
if [ -f "$PIDFILE" ] && [ -f "$URLFILE" ] && [ -s "$ENVFILE" ] \
   && keystone_pid_is_ours "$(cat "$PIDFILE")" "$WORK" \
   && keystone_answers "$VENV/bin/python" "$(cat "$URLFILE")" 5; then
  GURL=$(sed -n 's/^IMS_PATCH_KEYSTONE_GLANCE_URL=//p' "$ENVFILE")
  if [ -n "$GURL" ] && glance_answers "$VENV/bin/python" "$GURL"; then
    log "already running in $WORK (pid $(cat "$PIDFILE"))"
    cat "$ENVFILE"
    exit 0
  fi
fi
if [ -f "$PIDFILE" ]; then
  log "stale or partial server in $WORK: stopping it and starting afresh"
  bash "$HERE/down.sh" --keep "$WORK" || true
fi
# A fresh start: bootstrap needs an empty database and new keys.
rm -rf "${WORK:?}/etc" "$WORK/fernet-keys" "$WORK/credential-keys" "$WORK/lock" \
  "$WORK/glance" "$WORK/keystone.sqlite" "$ENVFILE" "$PIDFILE" "$URLFILE"

# ------------------------------------------------------------------ port ---
if [ -n "${IMS_PATCH_KEYSTONE_PORT:-}" ]; then
  PORT=$IMS_PATCH_KEYSTONE_PORT
else
  PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
fi
URL=http://127.0.0.1:$PORT/v3
EXPIRATION=${IMS_PATCH_KEYSTONE_TOKEN_EXPIRATION:-3600}
case $EXPIRATION in '' | *[!0-9]*) die "IMS_PATCH_KEYSTONE_TOKEN_EXPIRATION='$EXPIRATION' is not a number of seconds" ;; esac

# ---------------------------------------------------------------- config ---
mkdir -p "$WORK/etc" "$WORK/lock"
"$VENV/bin/python" - "$HERE" "$WORK" "$PORT" "$EXPIRATION" <<'PY'
import os, sys
here, work, port, expiration = sys.argv[1:]
subst = {"@WORK_DIR@": work, "@PORT@": port, "@TOKEN_EXPIRATION@": expiration}
for name in ("keystone.conf", "keystone-uwsgi.ini"):
    text = open(os.path.join(here, name), encoding="utf-8").read()
    for key, value in subst.items():
        text = text.replace(key, value)
    with open(os.path.join(work, "etc", name), "w", encoding="utf-8") as f:
        f.write(text)
PY

# ----------------------------------------------------- db, keys, bootstrap ---
manage() {
  local what=$1
  shift
  if ! (cd "$WORK" && "$VENV/bin/keystone-manage" --config-file "$WORK/etc/keystone.conf" "$@") \
       >>"$WORK/manage.log" 2>&1; then
    tail -n 40 "$WORK/manage.log" >&2
    die "keystone-manage $what failed (log: $WORK/manage.log)"
  fi
}
log "db_sync, fernet_setup, credential_setup, bootstrap ($WORK)"
T1=$SECONDS
manage db_sync db_sync
ME=$(id -un)
MYGROUP=$(id -gn)
manage fernet_setup fernet_setup --keystone-user "$ME" --keystone-group "$MYGROUP"
manage credential_setup credential_setup --keystone-user "$ME" --keystone-group "$MYGROUP"
# Keystone warns when the key repositories are readable by others.
chmod 700 "$WORK/fernet-keys" "$WORK/credential-keys"
manage bootstrap bootstrap \
  --bootstrap-username "$KS_ADMIN_USER" --bootstrap-password "$KS_ADMIN_PASSWORD" \
  --bootstrap-project-name "$KS_ADMIN_PROJECT" --bootstrap-role-name admin \
  --bootstrap-service-name keystone --bootstrap-region-id "$KS_REGION" \
  --bootstrap-admin-url "$URL/" --bootstrap-internal-url "$URL/" --bootstrap-public-url "$URL/"

# ---------------------------------------------------------------- start ---
log "keystone-manage took $((SECONDS - T1)) s; starting uWSGI on $URL"
T1=$SECONDS
cd "$WORK"
# setsid: own session and process group (down.sh stops the whole group);
# stdin/stdout/stderr detached, so $(up.sh) returns once this script exits.
OS_KEYSTONE_CONFIG_DIR=$WORK/etc setsid "$VENV/bin/uwsgi" --ini "$WORK/etc/keystone-uwsgi.ini" \
  </dev/null >>"$LOGFILE" 2>&1 &
PID=$!
printf '%s\n' "$PID" >"$PIDFILE"

fail() {
  log "$1; last lines of $2:"
  tail -n 60 "$2" >&2 || true
  bash "$HERE/down.sh" --keep "$WORK" || true
  die "$1 (work dir kept: $WORK)"
}

TIMEOUT=${IMS_PATCH_KEYSTONE_TIMEOUT:-90}
keystone_wait "$VENV/bin/python" "$URL" "$PID" "$TIMEOUT" \
  || fail "Keystone did not come up" "$LOGFILE"
printf '%s\n' "$URL" >"$URLFILE"
log "Keystone 30.0.0 is up at $URL (pid $PID): uWSGI start $((SECONDS - T1)) s, $((SECONDS - T0)) s in all"
T1=$SECONDS

# ---------------------------------------------- the token-checking Glance ---
log "starting a Glance 33.0.0 that checks tokens against it"
if ! GURL_LINE=$(env -u IMS_PATCH_GLANCE_URL -u IMS_PATCH_GLANCE_PORT \
    IMS_PATCH_GLANCE_DIR="$WORK/glance" IMS_PATCH_GLANCE_AUTH=keystone \
    IMS_PATCH_GLANCE_KEYSTONE_URL="$URL" IMS_PATCH_GLANCE_KEYSTONE_USER="$KS_GLANCE_USER" \
    IMS_PATCH_GLANCE_KEYSTONE_PASSWORD="$KS_GLANCE_PASSWORD" \
    IMS_PATCH_GLANCE_KEYSTONE_PROJECT="$KS_SERVICE_PROJECT" \
    bash "$HERE/../glance/up.sh"); then
  fail "the keystone Glance did not start" "$WORK/glance/glance-api.log"
fi
GURL=${GURL_LINE#IMS_PATCH_GLANCE_URL=}
log "the Glance took $((SECONDS - T1)) s"
T1=$SECONDS

# -------------------------------------------------------------- fixtures ---
log "creating the fixtures (users, projects, regions, endpoints, app credential)"
if ! "$VENV/bin/python" "$HERE/fixtures.py" "$URL" "$GURL" >"$ENVFILE.tmp" 2>"$WORK/fixtures.log"; then
  fail "creating the fixtures failed" "$WORK/fixtures.log"
fi
log "fixtures took $((SECONDS - T1)) s"
printf 'IMS_PATCH_KEYSTONE_DIR=%s\n' "$WORK" >>"$ENVFILE.tmp"
chmod 600 "$ENVFILE.tmp"
mv "$ENVFILE.tmp" "$ENVFILE"

STATE=$(keystone_state_dir)
mkdir -p "$STATE"
printf '%s\n' "$WORK" >"$STATE/last"
log "ready after $((SECONDS - T0)) s: Keystone $URL, Glance $GURL (work dir $WORK)"
cat "$ENVFILE"

#!/usr/bin/env bash
# Start a real OpenStack Glance 33.0.0 API server (Images API v2.18) on
# 127.0.0.1 for ims-patch's CI and conformance tests.
#
#   eval "export $(tests/glance/up.sh)"    # -> IMS_PATCH_GLANCE_URL=http://127.0.0.1:PORT
#   ...
#   tests/glance/down.sh                   # stops it again
#
# stdout: exactly one line, IMS_PATCH_GLANCE_URL=http://127.0.0.1:PORT.
# stderr: progress.  See README.md in this folder.
#
# Environment (all optional):
#   IMS_PATCH_GLANCE_DIR      work dir (config, sqlite db, file store, log,
#                             pid).  Default: a new mktemp -d dir, which
#                             down.sh deletes.  A given dir is kept.
#   IMS_PATCH_GLANCE_VENV     virtualenv to create or reuse.  Default:
#                             $HOME/.cache/ims-patch/glance-venv-<hash>
#   IMS_PATCH_GLANCE_PORT     port to listen on (default: a free one)
#   IMS_PATCH_GLANCE_WORKERS  uWSGI worker processes (default 1: sqlite takes one
#                             writer, and concurrent writes from two processes fail
#                             with "database is locked" as a 500)
#   IMS_PATCH_GLANCE_TIMEOUT  seconds to wait for GET / -> 300 (default 60)
#   IMS_PATCH_PYTHON          Python to build the venv with (default python3)
#   IMS_PATCH_GLANCE_AUTH     noauth (default: any token is accepted) or
#                             keystone (keystonemiddleware checks every token
#                             against IMS_PATCH_GLANCE_KEYSTONE_URL, logging
#                             in as IMS_PATCH_GLANCE_KEYSTONE_USER (default
#                             glance) / _PASSWORD in project _PROJECT (default
#                             service), domain Default).  tests/keystone/up.sh
#                             starts such a Glance.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GLANCE_TAG=glance-up
# shellcheck source=common.sh
. "$HERE/common.sh"
# shellcheck source=../lib/venv.sh
. "$HERE/../lib/venv.sh"

umask 022

# ------------------------------------------------------------------ venv ---
ims_venv glance "$HERE/requirements.txt" "${IMS_PATCH_GLANCE_VENV:-}" \
  'import glance, glance_store, pyuwsgi, paste.deploy' uwsgi glance-manage

# -------------------------------------------------------------- work dir ---
if [ -n "${IMS_PATCH_GLANCE_DIR:-}" ]; then
  WORK=$IMS_PATCH_GLANCE_DIR
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/ims-patch-glance.XXXXXX")
  : >"$WORK/.created-by-up-sh"   # down.sh deletes such a dir
fi
WORK=$(cd "$WORK" && pwd)
PIDFILE=$WORK/glance-api.pid
URLFILE=$WORK/glance-api.url
LOGFILE=$WORK/glance-api.log

# Already running from this dir?  Then this is a no-op.
if [ -f "$PIDFILE" ] && [ -f "$URLFILE" ] && glance_pid_is_ours "$(cat "$PIDFILE")" "$WORK"; then
  URL=$(cat "$URLFILE")
  if "$VENV/bin/python" - "$URL" <<'PY' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1] + "/", timeout=5)
    sys.exit(1)
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code == 300 else 1)
except Exception:
    sys.exit(1)
PY
  then
    log "already running in $WORK (pid $(cat "$PIDFILE"))"
    printf 'IMS_PATCH_GLANCE_URL=%s\n' "$URL"
    exit 0
  fi
  log "stale server in $WORK: stopping it"
  glance_stop_group "$(cat "$PIDFILE")" || true
fi
rm -f "$PIDFILE" "$URLFILE"

# ------------------------------------------------------------------ port ---
if [ -n "${IMS_PATCH_GLANCE_PORT:-}" ]; then
  PORT=$IMS_PATCH_GLANCE_PORT
else
  PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
fi
WORKERS=${IMS_PATCH_GLANCE_WORKERS:-1}
URL=http://127.0.0.1:$PORT

AUTH=${IMS_PATCH_GLANCE_AUTH:-noauth}
case $AUTH in
  noauth) ;;
  keystone)
    [ -n "${IMS_PATCH_GLANCE_KEYSTONE_URL:-}" ] || die "IMS_PATCH_GLANCE_AUTH=keystone needs IMS_PATCH_GLANCE_KEYSTONE_URL"
    [ -n "${IMS_PATCH_GLANCE_KEYSTONE_PASSWORD:-}" ] || die "IMS_PATCH_GLANCE_AUTH=keystone needs IMS_PATCH_GLANCE_KEYSTONE_PASSWORD"
    ;;
  *) die "IMS_PATCH_GLANCE_AUTH='$AUTH': expected noauth or keystone" ;;
esac

# ---------------------------------------------------------------- config ---
mkdir -p "$WORK/etc" "$WORK/images" "$WORK/staging" "$WORK/tasks" "$WORK/lock" "$WORK/image-cache"
"$VENV/bin/python" - "$HERE" "$WORK" "$PORT" "$WORKERS" <<'PY'
import os, shutil, sys
here, work, port, workers = sys.argv[1:]
auth = os.environ.get("IMS_PATCH_GLANCE_AUTH") or "noauth"
subst = {"@WORK_DIR@": work, "@PORT@": port, "@WORKERS@": workers, "@FLAVOR@": auth}
for name in ("glance-api.conf", "glance-api-paste.ini", "glance-api-uwsgi.ini"):
    text = open(os.path.join(here, name), encoding="utf-8").read()
    for key, value in subst.items():
        text = text.replace(key, value)
    if name == "glance-api.conf" and auth == "keystone":
        # keystonemiddleware (the "authtoken" filter of the keystone flavour).
        # No region_name: it selects the region of the *identity* endpoint,
        # and set to an image region it breaks every request with a 500.
        # token_cache_time = -1: validate every token with Keystone, so a
        # revoked token is refused at once (the default caches it for 300 s).
        ks = os.environ["IMS_PATCH_GLANCE_KEYSTONE_URL"].rstrip("/")
        text += "\n".join([
            "",
            "[keystone_authtoken]",
            "www_authenticate_uri = " + ks,
            "auth_url = " + ks,
            "auth_type = password",
            "username = " + (os.environ.get("IMS_PATCH_GLANCE_KEYSTONE_USER") or "glance"),
            "password = " + os.environ["IMS_PATCH_GLANCE_KEYSTONE_PASSWORD"],
            "project_name = " + (os.environ.get("IMS_PATCH_GLANCE_KEYSTONE_PROJECT") or "service"),
            "user_domain_name = Default",
            "project_domain_name = Default",
            "token_cache_time = -1",
            "http_connect_timeout = 10",
            "",
        ])
    with open(os.path.join(work, "etc", name), "w", encoding="utf-8") as f:
        f.write(text)
# schema-image.json: etc/schema-image.json of the glance 33.0.0 sdist, as
# devstack installs it; glance_noauth.py: the paste filter.
for name in ("schema-image.json", "glance_noauth.py"):
    shutil.copyfile(os.path.join(here, name), os.path.join(work, "etc", name))
PY

# ------------------------------------------------------------------- db ---
log "db_sync ($WORK/glance.sqlite)"
if ! (cd "$WORK" && "$VENV/bin/glance-manage" --config-file "$WORK/etc/glance-api.conf" db_sync) \
     >"$WORK/db_sync.log" 2>&1; then
  tail -n 40 "$WORK/db_sync.log" >&2
  die "glance-manage db_sync failed (log: $WORK/db_sync.log)"
fi

# ---------------------------------------------------------------- start ---
log "starting uWSGI on $URL (work dir $WORK)"
cd "$WORK"
# setsid: own session and process group (down.sh stops the whole group);
# stdin/stdout/stderr detached, so $(up.sh) returns once this script exits.
OS_GLANCE_CONFIG_DIR=$WORK/etc setsid "$VENV/bin/uwsgi" --ini "$WORK/etc/glance-api-uwsgi.ini" \
  </dev/null >>"$LOGFILE" 2>&1 &
PID=$!
printf '%s\n' "$PID" >"$PIDFILE"

TIMEOUT=${IMS_PATCH_GLANCE_TIMEOUT:-60}
if ! "$VENV/bin/python" "$HERE/../lib/wait_uwsgi.py" "$URL/" "$PID" "$TIMEOUT" 300; then
  log "server did not come up; last lines of $LOGFILE:"
  tail -n 60 "$LOGFILE" >&2 || true
  glance_stop_group "$PID" || true
  rm -f "$PIDFILE"
  die "Glance failed to start (work dir kept: $WORK)"
fi

printf '%s\n' "$URL" >"$URLFILE"
printf 'IMS_PATCH_GLANCE_URL=%s\nIMS_PATCH_GLANCE_DIR=%s\n' "$URL" "$WORK" >"$WORK/env"
STATE=$(glance_state_dir)
mkdir -p "$STATE"
printf '%s\n' "$WORK" >"$STATE/port-$PORT"
# "last" stays the noauth Glance: down.sh without arguments stops that one.
[ "$AUTH" = keystone ] || printf '%s\n' "$WORK" >"$STATE/last"
log "Glance 33.0.0 ($AUTH) is up at $URL (pid $PID, log $LOGFILE, work dir $WORK)"
printf 'IMS_PATCH_GLANCE_URL=%s\n' "$URL"

#!/usr/bin/env bash
# Stop the Keystone and its token-checking Glance that tests/keystone/up.sh
# started.
#
#   tests/keystone/down.sh [WORK_DIR]
#   tests/keystone/down.sh --keep WORK_DIR   # stop, but keep the work dir
#
# Which server: WORK_DIR if given, else $IMS_PATCH_KEYSTONE_DIR, else the
# last one up.sh started (for this user and TMPDIR).  Stops the Glance in
# WORK_DIR/glance (tests/glance/down.sh), then the Keystone uWSGI master and
# its process group (SIGTERM, then SIGKILL after 15 s), and deletes the work
# dir if up.sh created it as a temp dir.  Idempotent: exits 0 when nothing
# is running.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GLANCE_TAG=keystone-down
# shellcheck source=../glance/common.sh
. "$HERE/../glance/common.sh"
# shellcheck source=common.sh
. "$HERE/common.sh"

KEEP=false
if [ "${1:-}" = --keep ]; then
  KEEP=true
  shift
fi
STATE=$(keystone_state_dir)
WORK=${1:-${IMS_PATCH_KEYSTONE_DIR:-}}
if [ -z "$WORK" ] && [ -f "$STATE/last" ]; then
  WORK=$(cat "$STATE/last")
fi
if [ -z "$WORK" ]; then
  log "no work dir given and no server recorded: nothing to stop"
  exit 0
fi
forget_record() {
  if [ -f "$STATE/last" ] && [ "$(cat "$STATE/last" 2>/dev/null)" = "$1" ]; then rm -f "$STATE/last"; fi
}
if [ ! -d "$WORK" ]; then
  log "$WORK does not exist: nothing to stop"
  forget_record "$WORK"
  exit 0
fi
WORK=$(cd "$WORK" && pwd)

rc=0
# The Glance first (it would only log errors once Keystone is gone).
if [ -d "$WORK/glance" ]; then
  env -u IMS_PATCH_GLANCE_URL bash "$HERE/../glance/down.sh" "$WORK/glance" || rc=1
fi

PIDFILE=$WORK/keystone.pid
if [ -f "$PIDFILE" ]; then
  pid=$(cat "$PIDFILE")
  if keystone_pid_is_ours "$pid" "$WORK"; then
    log "stopping Keystone (pid $pid, work dir $WORK)"
    glance_stop_group "$pid" || rc=1
  elif case $pid in '' | *[!0-9]*) false ;; *) glance_group_alive "$pid" ;; esac; then
    log "master $pid is gone; stopping what is left of its process group"
    kill -KILL -- "-$pid" 2>/dev/null || true
  else
    log "Keystone (pid $pid) is not running"
  fi
  if [ "$rc" = 0 ]; then rm -f "$PIDFILE"; fi
else
  log "no pid file in $WORK: no Keystone to stop"
fi

if [ "$rc" = 0 ] && [ "$KEEP" = false ]; then
  forget_record "$WORK"
  if [ -f "$WORK/.created-by-up-sh" ]; then
    rm -rf "$WORK"
    log "removed $WORK"
  fi
fi
exit "$rc"

#!/usr/bin/env bash
# Stop the Glance server that tests/glance/up.sh started.
#
#   tests/glance/down.sh [WORK_DIR]
#   tests/glance/down.sh --all      # every server up.sh started (this user/TMPDIR)
#
# Which server: WORK_DIR if given, else $IMS_PATCH_GLANCE_DIR, else the one
# whose port is in $IMS_PATCH_GLANCE_URL, else the last one up.sh started
# (for this user and TMPDIR).  Stops the uWSGI master and its workers (the
# whole process group: SIGTERM, then SIGKILL after 15 s), and deletes the
# work dir if up.sh created it as a temp dir (a dir you passed in via
# IMS_PATCH_GLANCE_DIR is kept, with its log).  Idempotent: exits 0 when
# nothing is running.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GLANCE_TAG=glance-down
# shellcheck source=common.sh
. "$HERE/common.sh"

STATE=$(glance_state_dir)

# --all: every server that up.sh recorded (for this user and TMPDIR).
if [ "${1:-}" = --all ]; then
  rc=0
  dirs=$(cat "$STATE"/port-* 2>/dev/null | sort -u) || true
  while IFS= read -r d; do
    [ -n "$d" ] || continue
    IMS_PATCH_GLANCE_URL="" bash "$HERE/down.sh" "$d" || rc=1
  done <<<"$dirs"
  rm -f "$STATE/last"
  exit "$rc"
fi

WORK=${1:-${IMS_PATCH_GLANCE_DIR:-}}
if [ -z "$WORK" ] && [ -n "${IMS_PATCH_GLANCE_URL:-}" ]; then
  port=$(glance_url_port "$IMS_PATCH_GLANCE_URL")
  if [ -n "$port" ] && [ -f "$STATE/port-$port" ]; then
    WORK=$(cat "$STATE/port-$port")
  fi
fi
if [ -z "$WORK" ] && [ -f "$STATE/last" ]; then
  WORK=$(cat "$STATE/last")
fi
if [ -z "$WORK" ]; then
  log "no work dir given and no server recorded: nothing to stop"
  exit 0
fi

# Forget the runtime records that point at this dir.
forget_records() {
  local f
  [ -d "$STATE" ] || return 0
  for f in "$STATE"/port-* "$STATE/last"; do
    if [ -f "$f" ] && [ "$(cat "$f" 2>/dev/null)" = "$1" ]; then rm -f "$f"; fi
  done
}

if [ ! -d "$WORK" ]; then
  log "$WORK does not exist: nothing to stop"
  forget_records "$WORK"
  exit 0
fi
WORK=$(cd "$WORK" && pwd)

rc=0
PIDFILE=$WORK/glance-api.pid
if [ -f "$PIDFILE" ]; then
  pid=$(cat "$PIDFILE")
  if glance_pid_is_ours "$pid" "$WORK"; then
    log "stopping Glance (pid $pid, work dir $WORK)"
    glance_stop_group "$pid" || rc=1
  elif case $pid in '' | *[!0-9]*) false ;; *) glance_group_alive "$pid" ;; esac; then
    # The master is gone but workers of its process group are left over.
    log "master $pid is gone; stopping what is left of its process group"
    kill -KILL -- "-$pid" 2>/dev/null || true
  else
    log "Glance (pid $pid) is not running"
  fi
  if [ "$rc" = 0 ]; then rm -f "$PIDFILE"; fi
else
  log "no pid file in $WORK: nothing to stop"
fi

if [ "$rc" = 0 ]; then forget_records "$WORK"; fi

if [ "$rc" = 0 ] && [ -f "$WORK/.created-by-up-sh" ]; then
  rm -rf "$WORK"
  log "removed $WORK"
fi
exit "$rc"

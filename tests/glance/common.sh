# shellcheck shell=bash
# Shared helpers for tests/glance/up.sh and tests/glance/down.sh.
# Sourced, not executed.  Everything here logs to stderr.

GLANCE_TAG=${GLANCE_TAG:-glance}

log() { printf '[%s] %s\n' "$GLANCE_TAG" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Directory for small runtime records (port -> work dir), so that down.sh
# without arguments can find the server that belongs to $IMS_PATCH_GLANCE_URL.
glance_state_dir() {
  printf '%s/ims-patch-glance-state-%s' "${TMPDIR:-/tmp}" "$(id -u)"
}

# Port number of an http://127.0.0.1:PORT URL (empty if none).
glance_url_port() {
  local url=${1%/}
  url=${url##*:}
  case $url in '' | *[!0-9]*) return 0 ;; esac
  printf '%s' "$url"
}

# True when a live (non-zombie) process is in process group $1.
glance_group_alive() {
  local pgid=$1 stat rest state pgrp f
  for f in /proc/[0-9]*/stat; do
    stat=$(cat "$f" 2>/dev/null) || continue
    rest=${stat##*) }           # after "pid (comm) "
    read -r state _ pgrp _ <<<"$rest" || continue
    if [ "$pgrp" = "$pgid" ] && [ "$state" != Z ] && [ "$state" != X ]; then
      return 0
    fi
  done
  return 1
}

# True when pid $1 is alive and is the uWSGI master started for work dir $2.
glance_pid_is_ours() {
  local pid=$1 dir=$2 cmd
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case $cmd in *uwsgi*"$dir/etc/glance-api-uwsgi.ini"*) return 0 ;; esac
  return 1
}

# Stop the uWSGI master $1 (started with setsid, so it leads its own process
# group) and everything in its group: SIGTERM, wait, then SIGKILL.
glance_stop_group() {
  local pid=$1 _
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do            # up to 15 s
    glance_group_alive "$pid" || return 0
    sleep 0.25
  done
  log "server (pgid $pid) still running after 15 s: sending SIGKILL"
  kill -KILL -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do
    glance_group_alive "$pid" || return 0
    sleep 0.25
  done
  log "WARNING: processes of group $pid are still alive"
  return 1
}

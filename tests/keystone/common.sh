# shellcheck shell=bash
# Shared helpers for tests/keystone/up.sh and down.sh (and tests/osc/setup.sh).
# Sourced after tests/glance/common.sh (log, die, glance_stop_group, ...).
# Everything here logs to stderr.

# The fixed identities of the test Keystone (test-only secrets; fixtures.py
# reads them from the environment).
export KS_ADMIN_USER=admin KS_ADMIN_PASSWORD=adminpass KS_ADMIN_PROJECT=admin
export KS_REGION=RegionOne KS_REGION_TWO=RegionTwo
export KS_DEMO_USER=demo KS_DEMO_PASSWORD=demopass KS_DEMO_PROJECT=demo
export KS_SERVICE_PROJECT=service KS_GLANCE_USER=glance KS_GLANCE_PASSWORD=glancepass

# Directory for the small runtime record of the last Keystone up.sh started.
keystone_state_dir() {
  printf '%s/ims-patch-keystone-state-%s' "${TMPDIR:-/tmp}" "$(id -u)"
}

# True when pid $1 is alive and is the uWSGI master started for work dir $2.
keystone_pid_is_ours() {
  local pid=$1 dir=$2 cmd
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case $cmd in *uwsgi*"$dir/etc/keystone-uwsgi.ini"*) return 0 ;; esac
  return 1
}

# keystone_answers PYTHON URL TIMEOUT: true when GET URL (…/v3) answers 200.
keystone_answers() {
  "$1" - "$2" "$3" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

# glance_answers PYTHON URL: true when GET URL/ answers 300 (the version list).
glance_answers() {
  "$1" - "$2" <<'PY' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1] + "/", timeout=5)
    sys.exit(1)
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code == 300 else 1)
except Exception:
    sys.exit(1)
PY
}

# keystone_wait PYTHON URL PID TIMEOUT: wait until GET URL answers 200, or
# fail when uWSGI (PID) exits or TIMEOUT seconds pass.
keystone_wait() {
  "$1" "$(dirname "${BASH_SOURCE[0]}")/../lib/wait_uwsgi.py" "$2" "$3" "$4" 200
}

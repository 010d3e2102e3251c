#!/usr/bin/env bash
# Install python-openstackclient (pinned, tests/osc/requirements.txt) in its
# own cached venv and print where the `openstack` command is.
#
#   line=$(tests/osc/setup.sh)   # IMS_PATCH_OPENSTACK=/…/osc-venv-<hash>/bin/openstack
#   export "$line"
#
# stdout: exactly one line, IMS_PATCH_OPENSTACK=PATH.  stderr: progress.
# Environment (optional):
#   IMS_PATCH_OSC_VENV   venv to create or reuse.  Default:
#                        $HOME/.cache/ims-patch/osc-venv-<hash>
#   IMS_PATCH_PYTHON     Python to build the venv with (default python3)
# Idempotent: a ready venv is reused (about 0.1 s).  See README.md here.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GLANCE_TAG=osc-setup
# shellcheck source=../glance/common.sh
. "$HERE/../glance/common.sh"
# shellcheck source=../keystone/common.sh
. "$HERE/../keystone/common.sh"

umask 022
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

PYTHON=${IMS_PATCH_PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found (set IMS_PATCH_PYTHON)"
PY_ID=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2], sys.version.split()[0], sys.base_prefix)') \
  || die "'$PYTHON' does not run"
[ "${PY_ID%% *}" = 3.11 ] || log "WARNING: $PYTHON is Python ${PY_ID%% *}; requirements.txt was frozen with 3.11"

REQS=$HERE/requirements.txt
REQ_HASH=$({ cat "$REQS"; printf '%s\n' "$PY_ID"; } | sha256sum | cut -c1-16)
if [ -n "${IMS_PATCH_OSC_VENV:-}" ]; then
  VENV=$IMS_PATCH_OSC_VENV
else
  VENV=$(ims_cache_root)/osc-venv-$REQ_HASH
fi
mkdir -p "$(dirname "$VENV")"
VENV=$(cd "$(dirname "$VENV")" && pwd)/$(basename "$VENV")

exec 9>"$VENV.lock"
flock -w 1200 9 || die "timed out waiting for the venv lock $VENV.lock"
ims_ensure_venv "$PYTHON" "$VENV" "$REQS" "$REQ_HASH" 'import openstackclient.shell, openstack' openstack
exec 9>&-

printf 'IMS_PATCH_OPENSTACK=%s\n' "$VENV/bin/openstack"

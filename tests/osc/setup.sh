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
# shellcheck source=../lib/venv.sh
. "$HERE/../lib/venv.sh"

umask 022

ims_venv osc "$HERE/requirements.txt" "${IMS_PATCH_OSC_VENV:-}" \
  'import openstackclient.shell, openstack' openstack

printf 'IMS_PATCH_OPENSTACK=%s\n' "$VENV/bin/openstack"

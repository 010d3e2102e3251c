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
# shellcheck source=../lib/venv.sh
. "$HERE/../lib/venv.sh"

umask 022

ims_venv aksk "$HERE/requirements.txt" "${IMS_PATCH_AKSK_VENV:-}" \
  'from huaweicloudsdkcore.signer.signer import Signer'

# The vendor's signer must still produce the issue's vectors here.
"$VENV/bin/python" "$HERE/vendor_sign.py" selftest >&2 || die "vendor_sign.py selftest failed"
printf '%s\n' "$VENV/bin/python"

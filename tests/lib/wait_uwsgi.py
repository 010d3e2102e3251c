"""Wait until a freshly started uWSGI server answers GET URL with STATUS.

    python wait_uwsgi.py URL PID TIMEOUT STATUS

Exits 0 once it does; exits 1 when the uWSGI master (PID) exits or is a
zombie, or when TIMEOUT seconds pass. Shared by tests/glance/up.sh (Glance
answers its version list with 300) and tests/keystone/up.sh (200).
"""
import os
import sys
import time
import urllib.error
import urllib.request

url, pid, timeout, want = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                raise ProcessLookupError
    except (ProcessLookupError, FileNotFoundError):
        print("uWSGI exited", file=sys.stderr)
        sys.exit(1)
    # uWSGI accepts connections before its worker has loaded the
    # application, so one attempt may block for a while.
    left = deadline - time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=max(1.0, min(15.0, left))) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except Exception:
        status = None
    if status == want:
        sys.exit(0)
    time.sleep(0.2)
print("no %d from GET %s within %g s" % (want, url, timeout), file=sys.stderr)
sys.exit(1)

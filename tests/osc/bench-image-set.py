"""Time `openstack image set --name` (issue #8's baseline): wall time, requests, peak memory.

    python3 tests/osc/bench-image-set.py OPENSTACK CLOUD IMAGE_ID [RUNS]

OPENSTACK is $IMS_PATCH_OPENSTACK (tests/osc/setup.sh), CLOUD a cloud of the
clouds.yaml in $OS_CLIENT_CONFIG_FILE (tests/osc/clouds-yaml.sh), IMAGE_ID an
image the cloud's user may edit ($IMS_PATCH_KEYSTONE_IMAGE_ID).  Each run
renames the image (bench-0, bench-1, ...) with --debug and counts the HTTP
requests that keystoneauth logs (its "REQ: curl" lines plus the
authentication request, which it logs without them).  Prints one summary
line and the requests of the last run (method and URL, never a header).
Peak memory is the largest resident set of one `openstack` process.
"""

import resource
import subprocess
import sys
import time


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    osc, cloud, image = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) == 5 else 5
    walls, reqs = [], []
    for i in range(runs):
        t = time.monotonic()
        p = subprocess.run([osc, "--debug", "--os-cloud", cloud, "image", "set", "--name", "bench-%d" % i, image],
                           capture_output=True, text=True, timeout=120)
        walls.append(time.monotonic() - t)
        if p.returncode != 0:
            sys.exit("openstack exited %d:\n%s" % (p.returncode, p.stderr[-2000:]))
        reqs = []
        for line in p.stderr.splitlines():
            if line.startswith("REQ: curl"):
                words = line.split()
                reqs.append(words[words.index("-X") + 1] + " " + words[words.index("-X") + 2])
            elif line.startswith("Making authentication request to "):
                reqs.append("POST " + line.split()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    walls.sort()
    print("openstack image set --name: runs=%d median=%.2fs min=%.2fs max=%.2fs requests/edit=%d peak_rss=%.0fMiB"
          % (runs, walls[runs // 2], walls[0], walls[-1], len(reqs), peak))
    for r in reqs:
        print("  " + r)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Run the issue #13 python-openstackclient sequence against one image
service and print a normalised JSON summary on stdout.

    tests/osc/sequence.py URL            # e.g. http://127.0.0.1:9292
    IMS_PATCH_OPENSTACK=/path/to/openstack tests/osc/sequence.py URL

The `openstack` command is $IMS_PATCH_OPENSTACK (tests/osc/setup.sh prints
it), or `openstack` on PATH. It talks to the endpoint without Keystone:
`--os-auth-type none --os-endpoint URL`.

The summary is one entry per step: the step's name, the exit code, and
what it printed as JSON (an image, field by field), leaving out what two
servers cannot share: IDs, timestamps, owner, `file`/`self` links and store
locations. Downloads are reported as "same bytes"/"different bytes". Two
runs against servers that behave alike print the same text, so a caller
compares them byte for byte. stderr carries progress and each command's
stderr, for a human reading a failure.
"""

import json
import os
import subprocess
import sys
import tempfile

DROP = {"id", "created_at", "updated_at", "owner", "file", "self",
        "locations", "direct_url"}


def normalise(value, image_id):
    if isinstance(value, dict):
        return {k: normalise(v, image_id) for k, v in sorted(value.items())
                if k not in DROP}
    if isinstance(value, list):
        items = [normalise(v, image_id) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, str) and image_id:
        return value.replace(image_id, "{id}")
    return value


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: sequence.py ENDPOINT_URL")
    endpoint = sys.argv[1]
    osc = os.environ.get("IMS_PATCH_OPENSTACK") or "openstack"
    work = tempfile.mkdtemp(prefix="ims-osc-seq-")
    disk = os.path.join(work, "disk.raw")
    # Fixed bytes (not random): both servers must report the same checksum.
    data = bytes(range(256)) * 12 + b"ims-patch #13"
    with open(disk, "wb") as f:
        f.write(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    base = [osc, "--os-auth-type", "none", "--os-endpoint", endpoint]
    steps = []
    state = {"id": None}
    _, tty = os.openpty()

    def run(name, *args, json_out=False):
        argv = base + [a.replace("{id}", state["id"] or "") for a in args]
        if json_out:
            argv += ["-f", "json"]
        print("+ " + " ".join(argv[5:]), file=sys.stderr)
        # stdin is a terminal, as for a person typing: `image create` would
        # upload any other stdin as the image data (and a closed fd 0 gets
        # reused by the client's first socket).
        p = subprocess.run(argv, env=env, capture_output=True, text=True,
                           timeout=120, stdin=tty)
        if p.stderr:
            sys.stderr.write(p.stderr)
        entry = {"step": name, "exit": p.returncode}
        if json_out and p.returncode == 0:
            doc = json.loads(p.stdout)
            if state["id"] is None and isinstance(doc, dict):
                state["id"] = doc.get("id")
            entry["output"] = normalise(doc, state["id"])
        steps.append(entry)
        return p.returncode

    def save(name):
        out = os.path.join(work, "out-%d" % len(steps))
        code = run(name, "image", "save", "--file", out, "{id}")
        got = open(out, "rb").read() if os.path.exists(out) else None
        steps[-1]["bytes"] = ("same bytes" if got == data else
                              "no file" if got is None else
                              "%d other bytes" % len(got))
        return code

    def show(name):
        return run(name, "image", "show", "{id}", json_out=True)

    run("create with a file", "image", "create", "--file", disk,
        "--disk-format", "raw", "--container-format", "bare",
        "--property", "purpose=ims-patch-osc", "seq-image", json_out=True)
    if state["id"] is None:
        print(json.dumps({"steps": steps}, indent=1, sort_keys=True))
        return
    show("show")
    save("download")
    run("set name, properties, tags", "image", "set", "--name", "seq-renamed",
        "--property", "os_distro=ubuntu", "--property", "foo=bar",
        "--tag", "t1", "--tag", "t2", "{id}")
    show("show after set")
    run("unset a property and a tag", "image", "unset", "--property", "foo",
        "--tag", "t1", "{id}")
    show("show after unset")
    run("unset a missing property", "image", "unset", "--property",
        "missing", "{id}")
    run("deactivate", "image", "set", "--deactivate", "{id}")
    show("show deactivated")
    save("download while deactivated")
    run("reactivate", "image", "set", "--activate", "{id}")
    run("protect", "image", "set", "--protected", "{id}")
    show("show protected")
    run("delete while protected", "image", "delete", "{id}")
    run("unprotect", "image", "set", "--unprotected", "{id}")
    run("delete", "image", "delete", "{id}")
    run("show the deleted image", "image", "show", "{id}", json_out=True)
    state["id"] = None
    run("create without data", "image", "create", "--disk-format", "raw",
        "--container-format", "bare", "seq-empty", json_out=True)
    if state["id"]:
        save("download without data")
        run("delete the empty image", "image", "delete", "{id}")
    print(json.dumps({"steps": steps}, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()

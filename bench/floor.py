#!/usr/bin/env python3
"""The server-bound floor of a batch edit: ONE client that sends the same
PATCHes back to back, reusing its connection when the server allows it
(http.client reconnects after a "Connection: close" answer, as the real
Glance of tests/glance sends), with nothing else in between. Prints the
seconds it took.

    bench/floor.py http://127.0.0.1:PORT IDS_FILE KEY VALUE
"""
import http.client
import json
import sys
import time
import urllib.parse

url, ids_file, key, value = sys.argv[1:5]
ids = [line.strip() for line in open(ids_file) if line.strip()]
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
headers = {
    "X-Auth-Token": "bench",
    "Accept": "application/json",
    "Content-Type": "application/openstack-images-v2.1-json-patch",
}
body = json.dumps([{"op": "add", "path": "/" + key, "value": value}])
start = time.perf_counter()
for image in ids:
    conn.request("PATCH", "/v2/images/" + image, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit("PATCH %s answered %d" % (image, response.status))
    if response.getheader("Connection", "").lower() == "close":
        conn.close()
print("%.3f" % (time.perf_counter() - start))

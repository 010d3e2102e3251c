#!/usr/bin/env python3
"""500 requests on ONE kept-alive connection to a sandbox (or any Glance):
GET of an image, then PATCH of its name, as a reusing client (batch editing,
the openstack CLI, an SDK) sends them. Prints per-request latency figures.

    bench/keepalive.py http://127.0.0.1:PORT IMAGE_ID [COUNT]
"""
import http.client
import json
import statistics
import sys
import time
import urllib.parse

url, image = sys.argv[1], sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 500
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
headers = {"X-Auth-Token": "bench", "Accept": "application/json"}
patch_headers = dict(headers, **{"Content-Type": "application/openstack-images-v2.1-json-patch"})

times = []
start = time.perf_counter()
for i in range(count):
    t = time.perf_counter()
    if i % 2:
        body = json.dumps([{"op": "replace", "path": "/name", "value": "bench-%d" % i}])
        conn.request("PATCH", "/v2/images/" + image, body=body, headers=patch_headers)
    else:
        conn.request("GET", "/v2/images/" + image, headers=headers)
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("request %d: status %d" % (i, r.status))
    if r.getheader("Connection", "").lower() == "close":
        sys.exit("the server closed the connection: nothing to measure")
    times.append((time.perf_counter() - t) * 1000)
total = time.perf_counter() - start
times_sorted = sorted(times)
print("%d kept-alive requests in %.3f s: first %.2f ms, median %.2f ms, p95 %.2f ms, max %.2f ms"
      % (count, total, times[0], statistics.median(times[1:]),
         times_sorted[int(len(times) * 0.95)], times_sorted[-1]))

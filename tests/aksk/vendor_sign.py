#!/usr/bin/env python3
"""The vendor's own AK/SK signer (huaweicloudsdkcore 3.1.219) for ims-patch's
proof tests.  Run it with the venv from tests/aksk/setup.sh.

  vendor_sign.py selftest
      sign the issue's two vectors and check the signatures; exit 1 if not.

  vendor_sign.py sign < requests.json > signed.json
      sign each described request with the vendor's Signer.  Input: one JSON
      object or a list of them:
        {"method": "PATCH", "url": "https://host/v2/images/ID?x=1",
         "headers": [["Content-Type", "..."]], "body": "text",
         "ak": "...", "sk": "...", "project_id": null, "security_token": null,
         "date": "20261201T120000Z", "payload": "hash"}
      "payload": "hash" (default) hashes the body as OTC's Java and Go signers
      and the API Gateway do; "vendor" keeps the Python SDK's shortcut (an
      X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD header for content types other
      than JSON).  Output: a list of {"headers": {...}, "uri": "/path?query"}:
      every header the vendor set (Authorization included) and the path with
      the query as the vendor sends it.

  vendor_sign.py send < requests.json > answers.json
      sign each described request (as for "sign"; "date" defaults to now)
      with the vendor's Signer and send it over HTTP to its URL, then alter
      it as "alter" says after signing (or not): "body" (a byte added),
      "path" (a segment added), "query" (a pair added), "header" (X-Sdk-Date
      one second later), "method" (another method), "key" (signed with
      another secret key), "stale" (signed 20 minutes ago).  Output: a list
      of {"status": N, "body": "text"}.

  vendor_sign.py proxy --ak AK --sk SK [--target URL] [--record FILE]
      a recording HTTP proxy on 127.0.0.1 (first stdout line: its URL).  For
      each request it recomputes the signature with the vendor's Signer from
      the request as received (the headers named in SignedHeaders, the raw
      path and query, the body) and records one JSON line: "result" is "ok",
      "mismatch" or "unsigned", "query_canonical" says whether the query sent
      is the canonical one.  It then forwards the request to --target (Host
      header kept) or answers a canned 200 {}; either way the response
      carries X-Vendor-Check: <result>.
"""

import argparse
import hashlib
import json
import sys
import threading
import time
import urllib.parse
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from huaweicloudsdkcore.signer.algorithm import SigningAlgorithm

MAX_BODY = 16 * 1024 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
              "te", "trailer", "transfer-encoding", "upgrade", "content-length"}


class HashingSigner(Signer):
    """The vendor's Signer without the UNSIGNED-PAYLOAD shortcut: the body
    is hashed, as OTC's Java and Go signers and the gateway do.  This is the
    only change: canonicalisation, hashing and HMAC are the vendor's."""

    @classmethod
    def _process_content_header(cls, request):
        pass


class HashingCredentials(BasicCredentials):
    _SIGNER_CASE = {**BasicCredentials._SIGNER_CASE, SigningAlgorithm.HMAC_SHA256: HashingSigner}


def credentials(ak, sk, project_id=None, security_token=None, payload="hash"):
    cls = HashingCredentials if payload == "hash" else BasicCredentials
    cred = cls(ak, sk, project_id)
    if security_token is not None:
        cred = cred.with_security_token(security_token)
    return cred


def host_of(parts):
    """The Host header a client sends: the port only when not the default."""
    default = {"http": 80, "https": 443}.get(parts.scheme)
    name = parts.hostname or ""
    if ":" in name:
        name = "[%s]" % name
    return name if parts.port in (None, default) else "%s:%d" % (name, parts.port)


def sign(desc):
    parts = urllib.parse.urlsplit(desc["url"])
    headers = {name: value for name, value in desc.get("headers", [])}
    headers["X-Sdk-Date"] = desc["date"]
    body = desc.get("body", "").encode("utf-8")
    request = SdkRequest(
        method=desc["method"], schema=parts.scheme, host=host_of(parts),
        resource_path=parts.path or "/",
        query_params=urllib.parse.parse_qsl(parts.query, keep_blank_values=True),
        header_params=headers, body=body)
    cred = credentials(desc["ak"], desc["sk"], desc.get("project_id"),
                       desc.get("security_token"), desc.get("payload", "hash"))
    signed = cred.sign_request(request)
    return {"headers": dict(signed.header_params), "uri": signed.uri}


def sdk_date(seconds):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))


def send(desc):
    """Signs with the vendor's Signer, alters, sends; the answer."""
    alter = desc.get("alter")
    desc = dict(desc)
    now = time.time()
    desc.setdefault("date", sdk_date(now - 1200 if alter == "stale" else now))
    if alter == "key":
        desc["sk"] = desc["sk"] + "x"
    signed = sign(desc)
    headers = dict(signed["headers"])
    uri = signed["uri"]
    method = desc["method"]
    body = desc.get("body", "").encode("utf-8")
    if alter == "body":
        body += b" "
    elif alter == "path":
        path, sep, query = uri.partition("?")
        uri = path.rstrip("/") + "/x" + sep + query
    elif alter == "query":
        uri += ("&" if "?" in uri else "?") + "limit=1"
    elif alter == "header":
        headers["X-Sdk-Date"] = sdk_date(now + 1)
    elif alter == "method":
        method = "HEAD" if method == "GET" else "GET"
    parts = urllib.parse.urlsplit(desc["url"])
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    try:
        conn.putrequest(method, uri, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Accept", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        text = resp.read(MAX_BODY).decode("utf-8", "replace")
        return {"status": resp.status, "body": text}
    finally:
        conn.close()


VECTORS = [
    ({"method": "PATCH", "url": "https://ims.eu-de.otc.t-systems.com/v2/images/33ad552d-1149-471c-8190-ff6776174a00",
      "headers": [["Content-Type", "application/openstack-images-v2.1-json-patch"]],
      "body": '[{"op":"replace","path":"/name","value":"ims_test01"}]'},
     "content-type;host;x-project-id;x-sdk-date",
     "233e96f59af07370148b47b207a92c24bd694a164b7902e1cab044d01712f454"),
    ({"method": "GET", "url": "https://ims.eu-de.otc.t-systems.com/v2/images?name=ims%20test&__imagetype=private&limit=10"},
     "host;x-project-id;x-sdk-date",
     "d019fdd212bb1562a1f9d998b57bded4dd3b32f67a22e20adf8d2d5eba34a9ae"),
]


def selftest():
    ok = True
    for desc, signed_headers, signature in VECTORS:
        desc = dict(desc, ak="AKIDEXAMPLE0000000000", sk="SKEXAMPLE0000000000000000000000000000000",
                    project_id="0b1e494e2660441a957313163095fe5c", date="20261201T120000Z")
        got = sign(desc)["headers"]["Authorization"]
        want = "SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=%s, Signature=%s" % (
            signed_headers, signature)
        print("%s %s %s" % ("ok" if got == want else "MISMATCH", desc["method"], got))
        ok = ok and got == want
    return 0 if ok else 1


def parse_authorization(value):
    """Access, signed header names and signature of an Authorization value."""
    prefix = "SDK-HMAC-SHA256 "
    if not value or not value.startswith(prefix):
        return None
    fields = {}
    for part in value[len(prefix):].split(","):
        name, _, val = part.strip().partition("=")
        fields[name] = val
    if not {"Access", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return fields["Access"], fields["SignedHeaders"].split(";"), fields["Signature"]


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    # Set on the class by main().
    opts = None
    lock = threading.Lock()

    def log_message(self, fmt, *args):
        pass

    def check(self, body):
        """The vendor's verdict on the request as received."""
        path, _, query = self.path.partition("?")
        received = self.headers.get("Authorization")
        auth = parse_authorization(received)
        record = {"method": self.command, "path": path, "query": query}
        if auth is None:
            return dict(record, result="unsigned")
        access, signed, _ = auth
        headers = {}
        for name in signed:
            values = self.headers.get_all(name) or []
            if len(values) != 1:
                return dict(record, result="mismatch", why="signed header %r sent %d times" % (name, len(values)))
            headers[name] = values[0]
        if "x-sdk-date" not in headers or "host" not in headers:
            return dict(record, result="mismatch", why="host or x-sdk-date not signed")
        request = SdkRequest(
            method=self.command, schema="http", host=headers["host"], resource_path=path,
            query_params=urllib.parse.parse_qsl(query, keep_blank_values=True),
            header_params=headers, body=body)
        canonical_query = Signer.process_canonical_query_string(request)
        try:
            expected = credentials(access, self.opts.sk).sign_request(request).header_params["Authorization"]
        except Exception as e:  # a date the vendor cannot parse, ...
            return dict(record, result="mismatch", why="vendor signer failed: %s" % e)
        result = "ok" if access == self.opts.ak and expected == received else "mismatch"
        record.update(result=result, query_canonical=(query == canonical_query),
                      signed_headers=";".join(signed))
        if result != "ok":
            record.update(expected=expected, received=received)
        return record

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY or self.headers.get("Transfer-Encoding"):
            self.send_error(413, "body too large or chunked")
            return
        body = self.rfile.read(length) if length else b""
        record = self.check(body)
        record["body_sha256"] = hashlib.sha256(body).hexdigest()
        if self.opts.record:
            with self.lock, open(self.opts.record, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.opts.target:
            status, headers, payload = self.forward(body)
        else:
            status, headers, payload = 200, [("Content-Type", "application/json")], b"{}"
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("X-Vendor-Check", record["result"])
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def forward(self, body):
        target = urllib.parse.urlsplit(self.opts.target)
        conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=60)
        try:
            conn.putrequest(self.command, target.path.rstrip("/") + self.path,
                            skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            payload = resp.read(MAX_BODY)
            return resp.status, resp.getheaders(), payload
        finally:
            conn.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("selftest")
    sub.add_parser("sign")
    sub.add_parser("send")
    proxy = sub.add_parser("proxy")
    proxy.add_argument("--ak", required=True)
    proxy.add_argument("--sk", required=True)
    proxy.add_argument("--target", help="http://HOST:PORT to forward to (default: answer 200 {})")
    proxy.add_argument("--record", help="append one JSON line per request to this file")
    proxy.add_argument("--port", type=int, default=0)
    opts = parser.parse_args()

    if opts.command == "selftest":
        return selftest()
    if opts.command in ("sign", "send"):
        descs = json.load(sys.stdin)
        single = isinstance(descs, dict)
        act = sign if opts.command == "sign" else send
        out = [act(d) for d in ([descs] if single else descs)]
        json.dump(out[0] if single else out, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    Proxy.opts = opts
    server = ThreadingHTTPServer(("127.0.0.1", opts.port), Proxy)
    server.daemon_threads = True
    print("http://127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

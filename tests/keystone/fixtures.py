"""Create the fixtures of the ims-patch test Keystone, check the Glance, print env lines.

Called by tests/keystone/up.sh as ``python fixtures.py KEYSTONE_URL GLANCE_URL``
after ``keystone-manage bootstrap``.  Uses only the REST API (standard
library, no client library), as the admin that bootstrap created:

* project ``service``, user ``glance`` with role ``service`` there
  (keystonemiddleware's service user for the token-checking Glance);
* project ``demo``, user ``demo`` (default project ``demo``) with role
  ``member`` on it (``reader`` is implied);
* region ``RegionTwo``; service ``image`` (name ``glance``) with public,
  internal and admin endpoints in ``RegionOne`` at the token-checking Glance
  and one public endpoint in ``RegionTwo`` at the same Glance under another
  host name (``http://localhost:PORT``), so that the catalog has two image
  regions with different URLs;
* an application credential of ``demo`` (all of its roles on ``demo``);
* a private image owned by project ``demo`` in the token-checking Glance.

It then checks that this Glance refuses a request without a token (401).
stdout: ``NAME=value`` lines; stderr: what it did.  The fixed names and
test passwords come from the environment (tests/keystone/common.sh).
"""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT = 30


def log(msg):
    print("[keystone-fixtures] " + msg, file=sys.stderr)


def call(method, url, body=None, token=None, ok=(200, 201, 204), ctype="application/json"):
    """One HTTP request; returns (status, headers, parsed JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", ctype)
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            status, headers, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    if status not in ok:
        raise SystemExit("%s %s -> %d: %s" % (method, url, status, raw[:500].decode("utf-8", "replace")))
    parsed = json.loads(raw) if raw and "json" in (headers.get("Content-Type") or "") else None
    return status, headers, parsed


def password_token(ks, user, password, project):
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    _, headers, parsed = call("POST", ks + "/auth/tokens", body)
    return headers["X-Subject-Token"], parsed["token"]


def find(ks, token, collection, **query):
    """The one entity of /v3/COLLECTION matching the query, or None."""
    _, _, parsed = call("GET", ks + "/" + collection + "?" + urllib.parse.urlencode(query), token=token)
    items = parsed[collection]
    return items[0] if items else None


def ensure(ks, token, collection, singular, query, body):
    found = find(ks, token, collection, **query)
    if found:
        return found
    _, _, parsed = call("POST", ks + "/" + collection, {singular: body}, token=token)
    log("created %s %s" % (singular, body.get("name") or body.get("id")))
    return parsed[singular]


def grant(ks, token, project_id, user_id, role_name):
    role = find(ks, token, "roles", name=role_name)
    if role is None:
        raise SystemExit("role %r does not exist" % role_name)
    call("PUT", "%s/projects/%s/users/%s/roles/%s" % (ks, project_id, user_id, role["id"]), token=token)


def main():
    ks, glance = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/")
    env = os.environ
    region_one, region_two = env["KS_REGION"], env["KS_REGION_TWO"]
    admin_token, _ = password_token(ks, env["KS_ADMIN_USER"], env["KS_ADMIN_PASSWORD"], env["KS_ADMIN_PROJECT"])

    # keystonemiddleware's service user.
    service = ensure(ks, admin_token, "projects", "project", {"name": env["KS_SERVICE_PROJECT"]},
                     {"name": env["KS_SERVICE_PROJECT"], "domain_id": "default"})
    glance_user = ensure(ks, admin_token, "users", "user", {"name": env["KS_GLANCE_USER"]},
                         {"name": env["KS_GLANCE_USER"], "domain_id": "default",
                          "password": env["KS_GLANCE_PASSWORD"], "default_project_id": service["id"]})
    grant(ks, admin_token, service["id"], glance_user["id"], "service")

    # The user the tests log in as.
    demo_project = ensure(ks, admin_token, "projects", "project", {"name": env["KS_DEMO_PROJECT"]},
                          {"name": env["KS_DEMO_PROJECT"], "domain_id": "default",
                           "description": "ims-patch test project"})
    demo = ensure(ks, admin_token, "users", "user", {"name": env["KS_DEMO_USER"]},
                  {"name": env["KS_DEMO_USER"], "domain_id": "default", "password": env["KS_DEMO_PASSWORD"],
                   "default_project_id": demo_project["id"]})
    grant(ks, admin_token, demo_project["id"], demo["id"], "member")

    # The image service in two regions.
    if not any(r["id"] == region_two for r in call("GET", ks + "/regions", token=admin_token)[2]["regions"]):
        call("POST", ks + "/regions", {"region": {"id": region_two, "description": "second test region"}},
             token=admin_token)
        log("created region " + region_two)
    image = ensure(ks, admin_token, "services", "service", {"type": "image"},
                   {"type": "image", "name": "glance", "description": "Glance 33 (token-checking)"})
    port = urllib.parse.urlsplit(glance).port
    region_two_url = "http://localhost:%d" % port
    wanted = [(region_one, "public", glance), (region_one, "internal", glance),
              (region_one, "admin", glance), (region_two, "public", region_two_url)]
    have = call("GET", ks + "/endpoints?service_id=" + image["id"], token=admin_token)[2]["endpoints"]
    for region, interface, url in wanted:
        if not any(e["region_id"] == region and e["interface"] == interface for e in have):
            call("POST", ks + "/endpoints", {"endpoint": {
                "service_id": image["id"], "region_id": region, "interface": interface, "url": url}},
                token=admin_token)
            log("created image endpoint %s %s %s" % (region, interface, url))

    # An application credential of demo (it holds demo's roles on demo).
    demo_token, token_body = password_token(ks, env["KS_DEMO_USER"], env["KS_DEMO_PASSWORD"], env["KS_DEMO_PROJECT"])
    ac_name = "ims-patch-test"
    acs = call("GET", "%s/users/%s/application_credentials?name=%s" % (ks, demo["id"], ac_name),
               token=demo_token)[2]["application_credentials"]
    for ac in acs:  # the secret cannot be read back: make a new one
        call("DELETE", "%s/users/%s/application_credentials/%s" % (ks, demo["id"], ac["id"]), token=demo_token)
    _, _, parsed = call("POST", "%s/users/%s/application_credentials" % (ks, demo["id"]),
                        {"application_credential": {"name": ac_name, "description": "ims-patch tests"}},
                        token=demo_token)
    ac = parsed["application_credential"]
    log("created application credential %s (%s)" % (ac_name, ac["id"]))

    # The token-checking Glance: no token is refused, demo's token works.
    status = call("GET", glance + "/v2/images", ok=(401,))[0]
    log("Glance without a token: %d (expected 401)" % status)
    _, _, img = call("POST", glance + "/v2/images",
                     {"name": "ims-patch-keystone-fixture", "disk_format": "raw",
                      "container_format": "bare", "visibility": "private"}, token=demo_token)
    log("created image %s in project demo" % img["id"])

    lines = [
        ("IMS_PATCH_KEYSTONE_URL", ks),
        ("IMS_PATCH_KEYSTONE_GLANCE_URL", glance),
        ("IMS_PATCH_KEYSTONE_REGION", region_one),
        ("IMS_PATCH_KEYSTONE_REGION_TWO", region_two),
        ("IMS_PATCH_KEYSTONE_REGION_TWO_GLANCE_URL", region_two_url),
        ("IMS_PATCH_KEYSTONE_DOMAIN", "Default"),
        ("IMS_PATCH_KEYSTONE_USER", env["KS_DEMO_USER"]),
        ("IMS_PATCH_KEYSTONE_USER_ID", demo["id"]),
        ("IMS_PATCH_KEYSTONE_PASSWORD", env["KS_DEMO_PASSWORD"]),
        ("IMS_PATCH_KEYSTONE_PROJECT", env["KS_DEMO_PROJECT"]),
        ("IMS_PATCH_KEYSTONE_PROJECT_ID", token_body["project"]["id"]),
        ("IMS_PATCH_KEYSTONE_APP_CRED_ID", ac["id"]),
        ("IMS_PATCH_KEYSTONE_APP_CRED_NAME", ac_name),
        ("IMS_PATCH_KEYSTONE_APP_CRED_SECRET", ac["secret"]),
        ("IMS_PATCH_KEYSTONE_ADMIN_USER", env["KS_ADMIN_USER"]),
        ("IMS_PATCH_KEYSTONE_ADMIN_PASSWORD", env["KS_ADMIN_PASSWORD"]),
        ("IMS_PATCH_KEYSTONE_ADMIN_PROJECT", env["KS_ADMIN_PROJECT"]),
        ("IMS_PATCH_KEYSTONE_IMAGE_ID", img["id"]),
    ]
    for name, value in lines:
        if not value or any(c.isspace() or c in "'\"\\$`" for c in value):
            raise SystemExit("%s: unusable value %r" % (name, value))
        print("%s=%s" % (name, value))


if __name__ == "__main__":
    main()

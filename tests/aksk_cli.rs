//! AK/SK through the binary: every command signed and accepted by a sandbox
//! that checks each signature with its own verifier, one PATCH per edit, the
//! project lookup and its cache, the key's sources (environment, profile
//! command and file, clouds.yaml), the gateway's refusals and their hints,
//! and nothing secret printed. The vendor cross-checks (ignored without
//! `IMS_PATCH_AKSK_PYTHON`) send the vendor's signed requests to the sandbox
//! and the binary's through the vendor's recording proxy.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::support::fault::{Fault, Reply};
use crate::support::vendor::{self, VendorProxy};
use crate::support::{raw_request, Ims, Run, Sandbox, SEED_ID};

const AK: &str = "AKSANDBOX00000000001";
const SK: &str = "sk-sandbox-secret-that-must-never-be-printed";
/// The project the sandbox's IAM gives every region (its image owner).
const PROJECT: &str = "0123456789abcdef0123456789abcdef";
/// Names that need encoding, in the path, the query and the body.
const NAMES: &[&str] = &["ims test é 日本", "a+b=c&d/e?f #1 ~ ß%20"];

fn sandbox() -> Sandbox {
    Sandbox::start_with(&["--access-key", AK, "--secret-key", SK])
}

/// The binary pointed at `sb` with the key pair, the region and a cache.
fn ims(sb: &Sandbox, cache: &Path) -> Ims {
    Ims::new()
        .env("IMS_PATCH_ENDPOINT", &sb.endpoint)
        .env("IMS_PATCH_ACCESS_KEY", AK)
        .env("IMS_PATCH_SECRET_KEY", SK)
        .env("IMS_PATCH_REGION", "eu-de")
        .env("IMS_PATCH_CACHE_DIR", cache)
}

/// Neither the secret key nor any 64-hex-digit signature was printed.
#[track_caller]
fn no_secret(run: &Run, also: &[&str]) {
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(SK), "the secret key was printed:\n{text}");
        for secret in also {
            assert!(!text.contains(secret), "{secret} was printed:\n{text}");
        }
        let hex_run = text
            .split(|c: char| !c.is_ascii_hexdigit())
            .any(|w| w.len() == 64);
        assert!(!hex_run, "a signature was printed:\n{text}");
    }
}

/// Every request the sandbox got was signed and accepted.
#[track_caller]
fn all_signed_and_accepted(sb: &Sandbox) {
    for r in sb.requests() {
        let auth = r["headers"]["authorization"].as_str().unwrap_or("");
        assert!(auth.starts_with("SDK-HMAC-SHA256 Access="), "{r}");
        let status = r["status"].as_u64().unwrap();
        assert!((200..300).contains(&status), "refused: {r}");
    }
}

/// The edits of every command, in both patch formats: each sends exactly
/// the requests listed (one PATCH per edit, nothing added by signing).
#[test]
fn every_command_is_signed_and_accepted_in_both_patch_formats() {
    let sb = sandbox();
    let cache = tempfile::tempdir().unwrap();
    let patch_path = format!("PATCH /v2/images/{SEED_ID}");
    // The project lookup, once; every run after uses the cache.
    ims(&sb, cache.path()).args(["show", SEED_ID]).run().ok();
    for format in ["v2.1", "v2.0"] {
        for name in NAMES {
            let run = |args: &[&str], stdin: Option<&str>| {
                let mut cmd = ims(&sb, cache.path())
                    .args(["--patch-format", format])
                    .args(args);
                if let Some(text) = stdin {
                    cmd = cmd.stdin(text);
                }
                let out = cmd.run();
                out.ok();
                no_secret(&out, &[]);
                out
            };
            sb.clear_journal();
            let out = run(&["-o", "json", "rename", SEED_ID, name], None);
            assert_eq!(out.json()["name"], *name);
            assert_eq!(sb.request_lines(), std::slice::from_ref(&patch_path));
            assert_eq!(
                sb.requests()[0]["headers"]["content-type"],
                format!("application/openstack-images-{format}-json-patch")
            );

            // Found by its name: the query string is signed as sent.
            sb.clear_journal();
            run(&["describe", name, &format!("about {name}")], None);
            let lines = sb.request_lines();
            assert_eq!(lines.len(), 2, "{lines:?}");
            assert!(lines[0].starts_with("GET /v2/images?name="), "{lines:?}");
            assert_eq!(lines[1], patch_path);
            assert_eq!(
                sb.requests()[0]["query"],
                format!("name={}", encode(&format!("eq:{name}"))),
                "the canonical query is the one sent"
            );

            sb.clear_journal();
            run(
                &["set-attr", SEED_ID, &format!("note={name}"), "min_ram:=512"],
                None,
            );
            run(&["unset-attr", SEED_ID, "note"], None);
            run(&["describe", "--clear", SEED_ID], None);
            let ops = json!([{"op": "replace", "path": "/__os_version", "value": name}]);
            run(&["patch", SEED_ID], Some(&ops.to_string()));
            // One PATCH per edit (set-attr of a base attribute reads first).
            let lines = sb.request_lines();
            assert_eq!(lines.iter().filter(|l| **l == patch_path).count(), 4);
            assert!(
                lines
                    .iter()
                    .all(|l| *l == patch_path || l.starts_with("GET /v2/images")),
                "{lines:?}"
            );

            sb.clear_journal();
            let out = run(&["unset-attr", "--ignore-missing", name, "note"], None);
            assert!(out.stderr.contains("nothing to change"), "{}", out.stderr);
            let out = run(&["-o", "json", "show", name], None);
            assert_eq!(out.json()["__os_version"], *name);
            assert!(sb.request_lines().iter().all(|l| l.starts_with("GET ")));
            all_signed_and_accepted(&sb);
            let r = sb.requests();
            assert!(r.iter().all(|r| r["headers"]["x-project-id"] == PROJECT));
        }
    }
}

/// Percent-encoding as the canonical query has it (`%20` for a space).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn the_project_is_looked_up_once_then_cached() {
    let sb = sandbox();
    let cache = tempfile::tempdir().unwrap();
    ims(&sb, cache.path()).args(["show", SEED_ID]).run().ok();
    assert_eq!(
        sb.request_lines(),
        [
            "GET /v3/projects?name=eu-de".to_string(),
            format!("GET /v2/images/{SEED_ID}")
        ]
    );
    let lookup = &sb.requests()[0];
    assert!(lookup["headers"].get("x-project-id").is_none(), "{lookup}");
    let files: Vec<PathBuf> = std::fs::read_dir(cache.path().join("ims-patch/projects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(std::fs::read_to_string(&files[0])
        .unwrap()
        .contains(PROJECT));
    sb.clear_journal();
    ims(&sb, cache.path())
        .args(["rename", SEED_ID, "x"])
        .run()
        .ok();
    assert_eq!(sb.request_lines(), [format!("PATCH /v2/images/{SEED_ID}")]);
    // A given project ID needs no lookup.
    sb.clear_journal();
    let empty = tempfile::tempdir().unwrap();
    ims(&sb, empty.path())
        .env("IMS_PATCH_PROJECT_ID", "given-project")
        .args(["show", SEED_ID])
        .run()
        .ok();
    assert_eq!(sb.request_lines(), [format!("GET /v2/images/{SEED_ID}")]);
    assert_eq!(sb.requests()[0]["headers"]["x-project-id"], "given-project");
    all_signed_and_accepted(&sb);
}

#[test]
fn a_region_without_a_project_of_its_name_asks_for_the_project_id() {
    let sb = sandbox();
    let cache = tempfile::tempdir().unwrap();
    let out = ims(&sb, cache.path())
        .env("IMS_PATCH_REGION", "sandbox")
        .args(["show", SEED_ID])
        .run();
    out.code(3);
    assert!(
        out.stderr.contains("no project named 'sandbox'"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: a sub-project needs its project_id given"),
        "{}",
        out.stderr
    );
    no_secret(&out, &[]);
}

#[test]
fn dry_run_and_verbose_show_the_signing_headers_redacted() {
    let sb = sandbox();
    let cache = tempfile::tempdir().unwrap();
    let out = ims(&sb, cache.path())
        .args(["--dry-run", "rename", SEED_ID, "new"])
        .run();
    out.ok();
    assert!(out.stdout.contains("\nX-Sdk-Date: 20"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("\nX-Project-Id: {PROJECT}\n")));
    assert!(
        out.stdout.contains(&format!(
            "\nAuthorization: SDK-HMAC-SHA256 Access={AK}, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=<redacted>\n"
        )),
        "{}",
        out.stdout
    );
    no_secret(&out, &[]);
    let out = ims(&sb, cache.path())
        .args(["-v", "rename", SEED_ID, "new"])
        .run();
    out.ok();
    assert!(
        out.stderr.contains("Signature=<redacted>") && out.stderr.contains("X-Sdk-Date: 20"),
        "{}",
        out.stderr
    );
    no_secret(&out, &[]);
}

#[test]
fn auth_status_names_the_keys_sources_never_the_secret() {
    let sb = sandbox();
    let cache = tempfile::tempdir().unwrap();
    let out = ims(&sb, cache.path()).args(["auth", "status"]).run();
    out.ok();
    assert!(
        out.stdout.contains("credential: aksk")
            && out.stdout.contains(&format!(
                "access key '{AK}' (from IMS_PATCH_ACCESS_KEY), secret key (from IMS_PATCH_SECRET_KEY)"
            )),
        "{}",
        out.stdout
    );
    no_secret(&out, &[]);
    assert!(sb.requests().is_empty(), "status sends nothing");
}

#[test]
fn auth_token_says_a_key_pair_has_no_token() {
    let sb = sandbox();
    let cache = tempfile::tempdir().unwrap();
    for what in ["token", "login"] {
        let out = ims(&sb, cache.path()).args(["auth", what]).run();
        assert_eq!(out.code, 3, "{}", out.stderr);
        assert!(
            out.stderr
                .contains("the access key pair signs each request: there is no login and no token"),
            "{}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
        no_secret(&out, &[]);
    }
    assert!(sb.requests().is_empty(), "nothing is sent");
}

#[test]
fn refused_signatures_exit_4_with_what_to_check() {
    let sb = sandbox();
    let cache = tempfile::tempdir().unwrap();
    let wrong = "wrong-secret-key-also-never-printed";
    let out = ims(&sb, cache.path())
        .env("IMS_PATCH_SECRET_KEY", wrong)
        .env("IMS_PATCH_PROJECT_ID", PROJECT)
        .args(["rename", SEED_ID, "x"])
        .run();
    out.code(4);
    assert!(
        out.stderr.contains("verify aksk signature fail"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "hint: the signature was refused: check access key '{AK}' (from IMS_PATCH_ACCESS_KEY), secret key (from IMS_PATCH_SECRET_KEY), and the system clock"
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("canonicalRequest"), "{}", out.stderr);
    no_secret(&out, &[wrong]);
    let out = ims(&sb, cache.path())
        .env("IMS_PATCH_ACCESS_KEY", "AKUNKNOWN")
        .env("IMS_PATCH_PROJECT_ID", PROJECT)
        .args(["show", SEED_ID])
        .run();
    out.code(4);
    assert!(
        out.stderr
            .contains("hint: the access key 'AKUNKNOWN' is not known to the cloud"),
        "{}",
        out.stderr
    );
    no_secret(&out, &[]);
    let requests = sb.requests();
    assert_eq!(requests.len(), 2, "no renewal, no lookup: {requests:?}");
    assert!(requests.iter().all(|r| r["status"] == 401), "{requests:?}");
}

#[test]
fn a_stale_date_gets_a_hint_to_fix_the_clock() {
    let date = "Tue, 01 Dec 2026 13:00:00 GMT";
    let body = r#"{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information: calc ak sk signature fail:signature expired","request_id":"r1"}"#;
    let server = Fault::always(Reply::json(401, body).header("Date", date));
    let out = Ims::new()
        .env("IMS_PATCH_ENDPOINT", &server.endpoint)
        .env("IMS_PATCH_ACCESS_KEY", AK)
        .env("IMS_PATCH_SECRET_KEY", SK)
        .env("IMS_PATCH_PROJECT_ID", PROJECT)
        .args(["rename", SEED_ID, "x"])
        .run();
    out.code(4);
    assert!(
        out.stderr
            .contains(&format!("the server's Date header says '{date}'")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("fix the system clock"),
        "{}",
        out.stderr
    );
    no_secret(&out, &[]);
}

/// A request to the sandbox signed by the client's signer at `time`.
fn signed_raw(sb: &Sandbox, method: &str, path: &str, time: SystemTime) -> (u16, Value) {
    signed_with_body(sb, method, path, time, None, None)
}

/// The same with a body (`sent` differs from `signed` to alter it).
fn signed_with_body(
    sb: &Sandbox,
    method: &str,
    path: &str,
    time: SystemTime,
    body: Option<(&str, &str)>,
    sent: Option<&str>,
) -> (u16, Value) {
    let url = url::Url::parse(&format!("{}{path}", sb.endpoint)).unwrap();
    let key = ims_patch::aksk::AkSk {
        access_key: AK.into(),
        secret_key: ims_patch::secret::Secret::new(SK),
        project_id: Some(PROJECT.into()),
        security_token: None,
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some((content_type, _)) = body {
        headers.push(("Content-Type".into(), content_type.into()));
    }
    let given: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let signed_body = body.map_or("", |(_, b)| b);
    let signed = ims_patch::aksk::sign(method, &url, &given, signed_body.as_bytes(), &key, time);
    headers.extend(
        signed
            .headers()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v)),
    );
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let target = match signed.url.query() {
        Some(q) => format!("{}?{q}", signed.url.path()),
        None => signed.url.path().to_string(),
    };
    let sent = sent.or(body.map(|(_, b)| b));
    let (status, body) = raw_request(&sb.endpoint, method, &target, &headers, sent);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn image_data_uploads_are_signed_over_their_bytes() {
    let sb = sandbox();
    let now = SystemTime::now();
    let create = json!({"name": "data é", "disk_format": "raw", "container_format": "bare"});
    let (status, image) = signed_with_body(
        &sb,
        "POST",
        "/v2/images",
        now,
        Some(("application/json", &create.to_string())),
        None,
    );
    assert_eq!(status, 201, "{image}");
    let file = format!("/v2/images/{}/file", image["id"].as_str().unwrap());
    let data = Some(("application/octet-stream", "some image bytes"));
    let (status, body) = signed_with_body(&sb, "PUT", &file, now, data, Some("other image bytes"));
    assert_eq!(status, 401, "an altered upload: {body}");
    let (status, body) = signed_with_body(&sb, "PUT", &file, now, data, None);
    assert_eq!(status, 204, "{body}");
    let (status, _) = raw_request(&sb.endpoint, "GET", &file, &[], None);
    assert_eq!(status, 401, "an unsigned download");
    let (status, _) = signed_raw(&sb, "GET", &file, now);
    assert_eq!(status, 200);
}

#[test]
fn the_sandbox_answers_the_gateways_refusals() {
    let sb = sandbox();
    let now = SystemTime::now();
    let (status, _) = signed_raw(&sb, "GET", &format!("/v2/images/{SEED_ID}"), now);
    assert_eq!(status, 200);
    // raw_request sends only an X-Auth-Token: no signature.
    let (status, body) = raw_request(&sb.endpoint, "GET", "/v2/images", &[], None);
    assert_eq!(status, 401);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error_code"], "APIGW.0301");
    assert_eq!(
        body["error_msg"],
        "Incorrect IAM authentication information: x-auth-token not found"
    );
    let stale = now - Duration::from_secs(16 * 60);
    let (status, body) = signed_raw(&sb, "GET", "/v2/images", stale);
    assert_eq!(status, 401);
    assert!(
        body["error_msg"]
            .as_str()
            .unwrap()
            .ends_with("signature expired"),
        "{body}"
    );
    let (status, body) = raw_request(
        &sb.endpoint,
        "GET",
        "/v2/images",
        &[(
            "Authorization",
            "SDK-HMAC-SHA256 Access=AKSANDBOX00000000001, SignedHeaders=host, Signature=00",
        )],
        None,
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("verify aksk signature fail"), "{body}");
    // IAM's project lookup is signed too.
    let (status, body) = signed_raw(&sb, "GET", "/v3/projects?name=eu-nl", now);
    assert_eq!(status, 200);
    assert_eq!(body["projects"][0]["name"], "eu-nl");
    assert_eq!(body["projects"][0]["id"], PROJECT);
    let (status, _) = raw_request(&sb.endpoint, "GET", "/v3/projects?name=eu-de", &[], None);
    assert_eq!(status, 401);
}

#[test]
fn the_secret_key_from_a_profile_command_or_file() {
    let sb = sandbox();
    let cache = tempfile::tempdir().unwrap();
    let base = |config: &str| {
        Ims::new()
            .env("IMS_PATCH_ENDPOINT", &sb.endpoint)
            .env("IMS_PATCH_CACHE_DIR", cache.path())
            .write_config(config)
    };
    let command = format!(
        "default_profile = \"otc\"\n[profiles.otc]\naccess_key = \"{AK}\"\nsecret_key_command = \"printf '%s\\\\n' {SK}\"\nregion = \"eu-de\"\n"
    );
    let out = base(&command).args(["show", SEED_ID]).run();
    out.ok();
    no_secret(&out, &[]);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("sk");
    std::fs::write(&key_file, format!("{SK}\n")).unwrap();
    crate::support::set_mode(&key_file, 0o600);
    let file = format!(
        "default_profile = \"otc\"\n[profiles.otc]\naccess_key = \"{AK}\"\nsecret_key_file = \"{}\"\nproject_id = \"{PROJECT}\"\n",
        key_file.display()
    );
    let out = base(&file).args(["rename", SEED_ID, "from a file"]).run();
    out.ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let failing = format!(
        "default_profile = \"otc\"\n[profiles.otc]\naccess_key = \"{AK}\"\nsecret_key_command = \"echo {SK} >&2; exit 7\"\nproject_id = \"p\"\n"
    );
    let out = base(&failing).args(["show", SEED_ID]).run();
    out.code(3);
    no_secret(&out, &[]);
    assert!(
        out.stderr
            .contains("the secret_key_command (from profile 'otc'"),
        "{}",
        out.stderr
    );
    all_signed_and_accepted(&sb);
}

#[test]
fn clouds_yaml_and_openstack_variables() {
    let sb = sandbox();
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clouds = dir.path().join("clouds.yaml");
    std::fs::write(
        &clouds,
        format!(
            "clouds:\n  otc-ak:\n    region_name: eu-de\n    auth:\n      ak: {AK}\n      sk: {SK}\n  otc-long:\n    auth_type: aksk\n    auth:\n      access_key: {AK}\n      secret_key: {SK}\n      project_id: {PROJECT}\n"
        ),
    )
    .unwrap();
    crate::support::set_mode(&clouds, 0o600);
    for cloud in ["otc-ak", "otc-long"] {
        let out = Ims::new()
            .env("IMS_PATCH_ENDPOINT", &sb.endpoint)
            .env("IMS_PATCH_CACHE_DIR", cache.path())
            .env("OS_CLIENT_CONFIG_FILE", &clouds)
            .env("OS_CLOUD", cloud)
            .args(["rename", SEED_ID, cloud])
            .run();
        out.ok();
        no_secret(&out, &[]);
    }
    let out = Ims::new()
        .env("IMS_PATCH_ENDPOINT", &sb.endpoint)
        .env("IMS_PATCH_CACHE_DIR", cache.path())
        .env("OS_ACCESS_KEY", AK)
        .env("OS_SECRET_KEY", SK)
        .env("OS_REGION_NAME", "eu-de")
        .args(["show", SEED_ID])
        .run();
    out.ok();
    all_signed_and_accepted(&sb);
}

#[test]
fn a_temporary_key_sends_its_security_token() {
    let token = "security-token-never-printed";
    let sb = Sandbox::start_with(&[
        "--access-key",
        AK,
        "--secret-key",
        SK,
        "--security-token",
        token,
    ]);
    let cache = tempfile::tempdir().unwrap();
    let out = ims(&sb, cache.path())
        .env("IMS_PATCH_SECURITY_TOKEN", token)
        .args(["-v", "rename", SEED_ID, "temporary"])
        .run();
    out.ok();
    no_secret(&out, &[token]);
    let out = ims(&sb, cache.path())
        .env("IMS_PATCH_SECURITY_TOKEN", token)
        .args(["--dry-run", "rename", SEED_ID, "temporary"])
        .run();
    out.ok();
    assert!(
        out.stdout.contains("X-Security-Token: <redacted>"),
        "{}",
        out.stdout
    );
    no_secret(&out, &[token]);
    let out = ims(&sb, cache.path())
        .env("IMS_PATCH_PROJECT_ID", PROJECT)
        .args(["show", SEED_ID])
        .run();
    out.code(4);
}

// ---- the vendor's signer (huaweicloudsdkcore 3.1.219) ----

/// Runs `vendor_sign.py send` on the described requests.
fn vendor_send(descriptions: &[Value]) -> Vec<Value> {
    let mut child = Command::new(vendor::python())
        .arg(vendor::script())
        .arg("send")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run vendor_sign.py send");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::from(descriptions.to_vec()).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "vendor_sign.py send failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs huaweicloudsdkcore: run by .ci/run"]
fn the_sandbox_accepts_the_vendors_signed_requests_and_refuses_altered_ones() {
    let sb = sandbox();
    let image = format!("{}/v2/images/{SEED_ID}", sb.endpoint);
    let mut requests = Vec::new();
    for name in NAMES {
        let list = url::Url::parse_with_params(
            &format!("{}/v2/images", sb.endpoint),
            &[("name", *name), ("limit", "5"), ("sort", "name:asc")],
        )
        .unwrap();
        requests.push(json!({"method": "GET", "url": list.as_str()}));
        requests.push(json!({"method": "GET", "url": image}));
        for (media, body) in [
            (
                "application/openstack-images-v2.1-json-patch",
                json!([{"op": "replace", "path": "/name", "value": name}]),
            ),
            (
                "application/openstack-images-v2.0-json-patch",
                json!([{"replace": "/__description", "value": name}]),
            ),
        ] {
            requests.push(json!({
                "method": "PATCH", "url": image,
                "headers": [["Content-Type", media]], "body": body.to_string(),
            }));
        }
        let projects = url::Url::parse_with_params(
            &format!("{}/v3/projects", sb.endpoint),
            &[("name", "eu-de")],
        )
        .unwrap();
        requests.push(json!({"method": "GET", "url": projects.as_str()}));
    }
    let alterations = ["body", "path", "query", "header", "method", "key", "stale"];
    let mut descriptions = Vec::new();
    for r in &requests {
        for payload in ["hash", "vendor"] {
            for project in [Some(PROJECT), None] {
                let mut d = r.clone();
                d["ak"] = json!(AK);
                d["sk"] = json!(SK);
                d["project_id"] = json!(project);
                d["payload"] = json!(payload);
                descriptions.push(d.clone());
                for alter in alterations {
                    let unsigned_body = payload == "vendor" && r["method"] == "PATCH";
                    if alter == "body" && (unsigned_body || r["method"] == "GET") {
                        continue; // an unsigned (or absent) payload is not covered
                    }
                    let mut a = d.clone();
                    a["alter"] = json!(alter);
                    descriptions.push(a);
                }
            }
        }
    }
    let answers = vendor_send(&descriptions);
    assert_eq!(answers.len(), descriptions.len());
    let mut accepted = 0;
    for (d, a) in descriptions.iter().zip(&answers) {
        let status = a["status"].as_u64().unwrap();
        if d.get("alter").is_none() {
            assert!((200..300).contains(&status), "{d}\n{a}");
            accepted += 1;
        } else {
            assert_eq!(status, 401, "altered and accepted: {d}\n{a}");
            // A HEAD answer has no body.
            let text = a["body"].as_str().unwrap();
            if !text.is_empty() {
                let body: Value = serde_json::from_str(text).unwrap();
                assert_eq!(body["error_code"], "APIGW.0301", "{a}");
            }
        }
    }
    assert_eq!(accepted, requests.len() * 4);
}

#[test]
#[ignore = "needs huaweicloudsdkcore: run by .ci/run"]
fn the_vendor_recomputes_every_signature_the_binary_sends() {
    let sb = sandbox();
    let proxy = VendorProxy::start(AK, SK, Some(&sb.endpoint));
    let cache = tempfile::tempdir().unwrap();
    let mut commands: Vec<(Vec<String>, Option<String>)> = Vec::new();
    for format in ["v2.1", "v2.0"] {
        for name in NAMES {
            let f = |args: &[&str]| {
                let mut v = vec!["--patch-format".to_string(), format.to_string()];
                v.extend(args.iter().map(|a| a.to_string()));
                v
            };
            let ops = json!([{"op": "add", "path": "/__os_version", "value": name}]).to_string();
            commands.push((f(&["rename", SEED_ID, name]), None));
            commands.push((f(&["describe", name, name]), None));
            commands.push((
                f(&["set-attr", name, &format!("note={name}"), "min_ram:=1"]),
                None,
            ));
            commands.push((
                f(&["unset-attr", "--ignore-missing", name, "note", "nope"]),
                None,
            ));
            commands.push((f(&["describe", "--clear", name]), None));
            commands.push((f(&["patch", name]), Some(ops)));
            commands.push((f(&["show", name, "-o", "json"]), None));
        }
    }
    for (args, stdin) in &commands {
        let mut cmd = Ims::new()
            .env("IMS_PATCH_ENDPOINT", &proxy.url)
            .env("IMS_PATCH_ACCESS_KEY", AK)
            .env("IMS_PATCH_SECRET_KEY", SK)
            .env("IMS_PATCH_REGION", "eu-de")
            .env("IMS_PATCH_CACHE_DIR", cache.path())
            .args(args);
        if let Some(text) = stdin {
            cmd = cmd.stdin(text);
        }
        let out = cmd.run();
        out.ok();
        no_secret(&out, &[]);
    }
    let records = proxy.records();
    let patches = records.iter().filter(|r| r["method"] == "PATCH").count();
    // Six edits per name and format; unset-attr --ignore-missing sends one
    // (note is set), show none.
    assert_eq!(patches, NAMES.len() * 2 * 6, "{records:#?}");
    assert!(records.iter().any(|r| r["path"] == "/v3/projects"));
    assert!(records.iter().any(|r| r["query"]
        .as_str()
        .is_some_and(|q| q.starts_with("name=") && q.contains("%20"))));
    for r in &records {
        assert_eq!(r["result"], "ok", "{r}");
        assert_eq!(r["query_canonical"], true, "{r}");
    }
    // And the sandbox's own check accepted them all, behind the proxy.
    all_signed_and_accepted(&sb);
}

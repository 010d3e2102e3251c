//! Conformance: the same request sequences against the sandbox and a real
//! Glance 33, comparing status codes and the resulting image (timestamps and
//! IDs aside). Each case starts from a fresh image made with POST.
//!
//! The expected statuses are the ones measured on Glance 33 (the reference
//! server of `tests/glance/`, whose measurements each step records). Plain
//! `cargo test` checks the sandbox against them; the tests that need a real
//! Glance are `#[ignore]`d and `.ci/run` runs them with
//! `IMS_PATCH_GLANCE_URL` set (from `tests/glance/up.sh`). Besides the PATCH
//! cases, `GET /v2/images` is compared query by query: filters, operators,
//! errors, sorting and `next` chains.

use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::support::Sandbox;

const V21: &str = "application/openstack-images-v2.1-json-patch";
const V20: &str = "application/openstack-images-v2.0-json-patch";

/// One HTTP request of a case. In `path`, `{id}` is the case's image,
/// `{ID}` its upper-case form and `{id_nodash}` its form without dashes.
#[derive(Clone)]
struct Step {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Option<String>,
    /// The status measured on Glance 33 (and required of the sandbox).
    expect: u16,
    /// Where Glance itself misbehaves: its status, with the reason.
    glance_bug: Option<(u16, &'static str)>,
}

struct Case {
    name: String,
    steps: Vec<Step>,
}

fn step(
    method: &'static str,
    path: &str,
    content_type: Option<&'static str>,
    body: Option<String>,
    expect: u16,
) -> Step {
    Step {
        method,
        path: path.to_string(),
        content_type,
        body,
        expect,
        glance_bug: None,
    }
}

/// A v2.1 PATCH of the case image with `body` (raw text).
fn p21(body: &str, expect: u16) -> Step {
    step(
        "PATCH",
        "/v2/images/{id}",
        Some(V21),
        Some(body.to_string()),
        expect,
    )
}

fn p20(body: &str, expect: u16) -> Step {
    step(
        "PATCH",
        "/v2/images/{id}",
        Some(V20),
        Some(body.to_string()),
        expect,
    )
}

fn pj(body: Value, expect: u16) -> Step {
    p21(&body.to_string(), expect)
}

const OCTET: &str = "application/octet-stream";
/// Image data whose checksums were measured on Glance 33.
const DATA: &str = "hello world, this is data";

/// `PUT /v2/images/{id}/file` with `data`.
fn upload(data: &str, expect: u16) -> Step {
    step(
        "PUT",
        "/v2/images/{id}/file",
        Some(OCTET),
        Some(data.to_string()),
        expect,
    )
}

fn download(expect: u16) -> Step {
    step("GET", "/v2/images/{id}/file", None, None, expect)
}

fn case(name: impl Into<String>, steps: Vec<Step>) -> Case {
    Case {
        name: name.into(),
        steps,
    }
}

fn op(op: &str, path: &str, value: Value) -> Value {
    json!([{"op": op, "path": path, "value": value}])
}

fn remove(path: &str) -> Value {
    json!([{"op": "remove", "path": path}])
}

fn cases() -> Vec<Case> {
    let mut c = vec![
        // Basic edits, both formats.
        case(
            "v2.1 replace /name",
            vec![pj(op("replace", "/name", json!("test01")), 200)],
        ),
        case(
            "v2.0 replace /name",
            vec![p20(r#"[{"replace": "/name", "value": "test01"}]"#, 200)],
        ),
        case(
            "add /__description",
            vec![pj(op("add", "/__description", json!("desc")), 200)],
        ),
        case(
            "add new /foo",
            vec![pj(op("add", "/foo", json!("bar")), 200)],
        ),
        case(
            "v2.1 add existing acts as replace",
            vec![pj(op("add", "/existing", json!("new")), 200)],
        ),
        case(
            "v2.1 add /name (base)",
            vec![pj(op("add", "/name", json!("added")), 200)],
        ),
        case(
            "v2.0 add existing is 409",
            vec![p20(r#"[{"add": "/existing", "value": "x"}]"#, 409)],
        ),
        case(
            "v2.0 add /name is 409",
            vec![p20(r#"[{"add": "/name", "value": "x"}]"#, 409)],
        ),
        case(
            "v2.0 add new",
            vec![p20(r#"[{"add": "/new20", "value": "v"}]"#, 200)],
        ),
        case(
            "replace existing",
            vec![pj(op("replace", "/existing", json!("r")), 200)],
        ),
        case(
            "replace missing is 409",
            vec![pj(op("replace", "/missing", json!("x")), 409)],
        ),
        case(
            "v2.0 replace missing is 409",
            vec![p20(r#"[{"replace": "/missing", "value": "x"}]"#, 409)],
        ),
        case("remove existing", vec![pj(remove("/existing"), 200)]),
        case("remove missing is 409", vec![pj(remove("/missing"), 409)]),
        case(
            "v2.0 remove missing is 409",
            vec![p20(r#"[{"remove": "/missing"}]"#, 409)],
        ),
        case(
            "v2.0 remove existing",
            vec![p20(r#"[{"remove": "/existing"}]"#, 200)],
        ),
        case(
            "remove ignores a value member",
            vec![p21(
                r#"[{"op": "remove", "path": "/existing", "value": "w"}]"#,
                200,
            )],
        ),
        case(
            "add without value",
            vec![p21(r#"[{"op": "add", "path": "/nv"}]"#, 400)],
        ),
        case(
            "replace without value",
            vec![p21(r#"[{"op": "replace", "path": "/name"}]"#, 400)],
        ),
        case(
            "replace /name null",
            vec![pj(op("replace", "/name", Value::Null), 200)],
        ),
        case(
            "custom null is 400",
            vec![pj(op("add", "/nullprop", Value::Null), 400)],
        ),
        case(
            "custom empty string",
            vec![pj(op("add", "/empty", json!("")), 200)],
        ),
        case(
            "schema property description",
            vec![pj(op("add", "/description", json!("d")), 200)],
        ),
        case(
            "kernel_id must be a UUID",
            vec![pj(op("add", "/kernel_id", json!("abc")), 400)],
        ),
        case(
            "enum property",
            vec![pj(
                op(
                    "add",
                    "/cinder_encryption_key_deletion_policy",
                    json!("sometimes"),
                ),
                400,
            )],
        ),
        case(
            "missing op",
            vec![p21(r#"[{"path": "/name", "value": "x"}]"#, 400)],
        ),
        case(
            "missing path",
            vec![p21(r#"[{"op": "replace", "value": "x"}]"#, 400)],
        ),
        case(
            "extra member ignored",
            vec![p21(
                r#"[{"op": "replace", "path": "/name", "value": "xm", "extra": 1}]"#,
                200,
            )],
        ),
        case(
            "op is a number",
            vec![p21(r#"[{"op": 1, "path": "/x", "value": "x"}]"#, 400)],
        ),
        // Several ops: in order, all or nothing.
        case(
            "three good ops",
            vec![p21(
                r#"[{"op":"add","path":"/a","value":"1"},{"op":"add","path":"/b","value":"2"},{"op":"replace","path":"/name","value":"multi"}]"#,
                200,
            )],
        ),
        case(
            "good ops then remove missing",
            vec![p21(
                r#"[{"op":"add","path":"/c","value":"1"},{"op":"remove","path":"/missing"},{"op":"replace","path":"/name","value":"no"}]"#,
                409,
            )],
        ),
        case(
            "good op then replace missing",
            vec![p21(
                r#"[{"op":"add","path":"/c2","value":"1"},{"op":"replace","path":"/missing","value":"x"}]"#,
                409,
            )],
        ),
        case(
            "good op then read-only",
            vec![p21(
                r#"[{"op":"add","path":"/d","value":"1"},{"op":"replace","path":"/id","value":"00000000-0000-0000-0000-000000000000"}]"#,
                403,
            )],
        ),
        case(
            "good op then bad op name",
            vec![p21(
                r#"[{"op":"add","path":"/e","value":"1"},{"op":"bogus","path":"/x","value":"1"}]"#,
                400,
            )],
        ),
        case(
            "good op then type error",
            vec![p21(
                r#"[{"op":"add","path":"/h","value":"1"},{"op":"replace","path":"/min_ram","value":"abc"}]"#,
                400,
            )],
        ),
        case(
            "good op then bad enum",
            vec![p21(
                r#"[{"op":"add","path":"/h2","value":"1"},{"op":"replace","path":"/visibility","value":"bogus"}]"#,
                400,
            )],
        ),
        case(
            "add then replace same path",
            vec![p21(
                r#"[{"op":"add","path":"/f","value":"1"},{"op":"replace","path":"/f","value":"2"}]"#,
                200,
            )],
        ),
        case(
            "add then remove",
            vec![p21(
                r#"[{"op":"add","path":"/g","value":"1"},{"op":"remove","path":"/g"}]"#,
                200,
            )],
        ),
        case(
            "remove then add (missing)",
            vec![p21(
                r#"[{"op":"remove","path":"/g2"},{"op":"add","path":"/g2","value":"1"}]"#,
                409,
            )],
        ),
        case(
            "replace twice, last wins",
            vec![p21(
                r#"[{"op":"replace","path":"/name","value":"first"},{"op":"replace","path":"/name","value":"second"}]"#,
                200,
            )],
        ),
        case(
            "v2.0 and v2.1 objects mixed",
            vec![p21(
                r#"[{"op":"add","path":"/m1","value":"1"},{"add":"/m2","value":"2"}]"#,
                400,
            )],
        ),
        case(
            "property quota",
            vec![pj(
                Value::Array(
                    (0..130)
                        .map(|i| json!({"op": "add", "path": format!("/q{i:03}"), "value": "v"}))
                        .collect(),
                ),
                413,
            )],
        ),
        case(
            "property quota reached over two requests",
            vec![
                pj(
                    Value::Array(
                        (0..120)
                            .map(
                                |i| json!({"op": "add", "path": format!("/r{i:03}"), "value": "v"}),
                            )
                            .collect(),
                    ),
                    200,
                ),
                pj(
                    Value::Array(
                        (120..130)
                            .map(
                                |i| json!({"op": "add", "path": format!("/r{i:03}"), "value": "v"}),
                            )
                            .collect(),
                    ),
                    413,
                ),
                pj(remove("/r000"), 200),
            ],
        ),
        // Base attributes.
        case(
            "replace /owner",
            vec![pj(op("replace", "/owner", json!("otherproject")), 200)],
        ),
        case(
            "replace min_ram and min_disk",
            vec![
                pj(op("replace", "/min_ram", json!(512)), 200),
                pj(op("replace", "/min_disk", json!(10)), 200),
                pj(op("add", "/min_disk", json!(20)), 200),
            ],
        ),
        case(
            "visibility values",
            vec![
                pj(op("replace", "/visibility", json!("private")), 200),
                pj(op("replace", "/visibility", json!("shared")), 200),
                pj(op("replace", "/visibility", json!("community")), 200),
                pj(op("replace", "/visibility", json!("public")), 200),
            ],
        ),
        case(
            "protected and os_hidden",
            vec![
                pj(op("replace", "/protected", json!(true)), 200),
                pj(op("replace", "/name", json!("still editable")), 200),
                step("DELETE", "/v2/images/{id}", None, None, 403),
                pj(op("replace", "/os_hidden", json!(true)), 200),
            ],
        ),
        case(
            "tags through PATCH",
            vec![
                pj(op("replace", "/tags", json!(["a", "b", "a"])), 200),
                pj(op("add", "/tags", json!(["c"])), 200),
                pj(op("add", "/tags/-", json!("d")), 400),
                pj(op("replace", "/tags", json!("x")), 400),
                pj(op("replace", "/tags", json!(["тег", "b"])), 200),
            ],
        ),
        case(
            "tag quota",
            vec![pj(
                op(
                    "replace",
                    "/tags",
                    json!((0..129).map(|i| format!("t{i:03}")).collect::<Vec<_>>()),
                ),
                413,
            )],
        ),
        case(
            "formats while queued",
            vec![
                pj(op("replace", "/container_format", json!("ovf")), 200),
                pj(op("replace", "/disk_format", json!("qcow2")), 200),
                pj(op("replace", "/disk_format", json!("floppy")), 400),
            ],
        ),
        case(
            "locations",
            vec![
                pj(op("replace", "/locations", json!([])), 403),
                pj(remove("/locations/0"), 403),
            ],
        ),
        case(
            "replace /stores",
            vec![pj(op("replace", "/stores", json!("fs")), 409)],
        ),
        case(
            "add /id and /status",
            vec![
                pj(
                    op("add", "/id", json!("00000000-0000-0000-0000-000000000000")),
                    403,
                ),
                pj(op("add", "/status", json!("active")), 403),
            ],
        ),
        case("remove /checksum", vec![pj(remove("/checksum"), 403)]),
        // Types.
        case(
            "min_ram types and range",
            vec![
                pj(op("replace", "/min_ram", json!("abc")), 400),
                pj(op("replace", "/min_ram", json!("512")), 400),
                pj(op("replace", "/min_ram", json!(-1)), 400),
                pj(op("replace", "/min_ram", json!(1.5)), 400),
                pj(op("replace", "/min_ram", Value::Null), 400),
                pj(op("replace", "/min_ram", json!(2147483648i64)), 400),
                pj(op("replace", "/min_ram", json!(2147483647i64)), 200),
            ],
        ),
        case(
            "protected types",
            vec![
                pj(op("replace", "/protected", json!("yes")), 400),
                pj(op("replace", "/protected", json!("true")), 400),
                pj(op("replace", "/protected", json!(1)), 400),
            ],
        ),
        case(
            "name must be a string",
            vec![pj(op("replace", "/name", json!(123)), 400)],
        ),
        case(
            "custom values must be strings",
            vec![
                pj(op("add", "/num", json!(42)), 400),
                pj(op("add", "/flag", json!(true)), 400),
                pj(op("add", "/obj", json!({"a": "b"})), 400),
                pj(op("add", "/arr", json!(["a"])), 400),
                pj(op("add", "/numstr", json!("42")), 200),
            ],
        ),
        case(
            "name length",
            vec![
                pj(op("replace", "/name", json!("n".repeat(255))), 200),
                pj(op("replace", "/name", json!("m".repeat(256))), 400),
                pj(op("replace", "/name", json!("o".repeat(300))), 400),
            ],
        ),
        case(
            "long custom values",
            vec![
                pj(op("add", "/long256", json!("v".repeat(256))), 200),
                pj(op("add", "/long65536", json!("v".repeat(65536))), 200),
            ],
        ),
        case(
            "unicode in the BMP",
            vec![
                pj(op("replace", "/name", json!("тест-画像-✓-ü")), 200),
                pj(op("add", "/ключ-キー", json!("значение-値")), 200),
                p21(
                    r#"[{"op": "replace", "path": "/name", "value": "\u00e9-\u00e9-\u263a"}]"#,
                    200,
                ),
            ],
        ),
        case(
            "4-byte UTF-8",
            vec![
                pj(op("replace", "/name", json!("тест-😀")), 400),
                pj(op("add", "/emoji", json!("smile 😀")), 400),
                pj(op("add", "/key😀", json!("v")), 400),
            ],
        ),
        case(
            "control characters",
            vec![
                pj(op("replace", "/name", json!("a\nb\tc\u{1}")), 200),
                pj(op("add", "/nul", json!("a\u{0}b")), 200),
            ],
        ),
        case(
            "pointer escapes",
            vec![
                pj(op("add", "/foo~1bar", json!("slash")), 200),
                pj(op("add", "/foo~0bar", json!("tilde")), 200),
                pj(op("add", "/foo~01", json!("t1")), 200),
                pj(op("add", "/foo~2", json!("x")), 400),
                pj(op("add", "/foo~", json!("x")), 400),
                pj(remove("/foo~1bar"), 200),
            ],
        ),
        case(
            "pointer shapes",
            vec![
                pj(op("add", "foo", json!("x")), 400),
                p20(r#"[{"replace": "name", "value": "x"}]"#, 400),
                pj(op("add", "", json!("x")), 400),
                pj(op("add", "/a/b", json!("x")), 400),
                pj(op("add", "/a/", json!("x")), 400),
                pj(op("add", "/ spaced ", json!("x")), 200),
                pj(op("add", "/with space", json!("x")), 200),
                pj(op("add", "/UPPER", json!("x")), 200),
                pj(op("replace", "/Name", json!("x")), 409),
            ],
        ),
        case(
            "path / (Glance creates an empty key)",
            vec![Step {
                glance_bug: Some((
                    200,
                    "Glance stores a property whose key is the empty string",
                )),
                ..pj(op("add", "/", json!("x")), 400)
            }],
        ),
        case(
            "path that is not a string (Glance fails)",
            vec![Step {
                glance_bug: Some((500, "Glance raises an internal error")),
                ..p21(r#"[{"op": "add", "path": 5, "value": "x"}]"#, 400)
            }],
        ),
        // Bodies and media types.
        case(
            "415 for other media types",
            vec![
                step(
                    "PATCH",
                    "/v2/images/{id}",
                    Some("application/json"),
                    Some(op("replace", "/name", json!("ct")).to_string()),
                    415,
                ),
                step(
                    "PATCH",
                    "/v2/images/{id}",
                    Some("application/json-patch+json"),
                    Some(op("replace", "/name", json!("ct")).to_string()),
                    415,
                ),
                step(
                    "PATCH",
                    "/v2/images/{id}",
                    Some("text/plain"),
                    Some(op("replace", "/name", json!("ct")).to_string()),
                    415,
                ),
                step(
                    "PATCH",
                    "/v2/images/{id}",
                    Some("APPLICATION/OPENSTACK-IMAGES-V2.1-JSON-PATCH"),
                    Some(op("replace", "/name", json!("ct")).to_string()),
                    415,
                ),
                step(
                    "PATCH",
                    "/v2/images/{id}",
                    Some("application/openstack-images-v2.2-json-patch"),
                    Some(op("replace", "/name", json!("ct")).to_string()),
                    415,
                ),
                step(
                    "PATCH",
                    "/v2/images/{id}",
                    None,
                    Some(op("replace", "/name", json!("ct")).to_string()),
                    415,
                ),
            ],
        ),
        case(
            "media type parameters",
            vec![step(
                "PATCH",
                "/v2/images/{id}",
                Some("application/openstack-images-v2.1-json-patch; charset=UTF-8"),
                Some(op("replace", "/name", json!("ct")).to_string()),
                200,
            )],
        ),
        case(
            "bad bodies",
            vec![
                p21(r#"[{"op":"replace","path":"/name","value":"x""#, 400),
                p21("", 400),
                p21(
                    "{\"op\": \"replace\", \"path\": \"/name\", \"value\": \"x\"}",
                    400,
                ),
                p21("[\"x\"]", 400),
                p21("null", 400),
            ],
        ),
        case("empty op list", vec![p21("[]", 200)]),
        case(
            "format and body mismatch",
            vec![
                p21(r#"[{"replace": "/name", "value": "x"}]"#, 400),
                p20(r#"[{"op": "replace", "path": "/name", "value": "x"}]"#, 400),
                p20(r#"[{"replace": "/name", "add": "/x", "value": "x"}]"#, 400),
                p21(
                    r#"[{"op": "replace", "path": "/name", "replace": "/min_ram", "value": "both"}]"#,
                    200,
                ),
            ],
        ),
        // Image IDs and resources.
        case(
            "unknown and malformed ids",
            vec![
                step(
                    "PATCH",
                    "/v2/images/11111111-2222-3333-4444-555555555555",
                    Some(V21),
                    Some(op("replace", "/name", json!("x")).to_string()),
                    404,
                ),
                step(
                    "GET",
                    "/v2/images/11111111-2222-3333-4444-555555555555",
                    None,
                    None,
                    404,
                ),
                step(
                    "PATCH",
                    "/v2/images/not-a-uuid",
                    Some(V21),
                    Some(op("replace", "/name", json!("x")).to_string()),
                    404,
                ),
                step(
                    "PATCH",
                    "/v2/images/{ID}",
                    Some(V21),
                    Some(op("replace", "/name", json!("x")).to_string()),
                    404,
                ),
                step(
                    "PATCH",
                    "/v2/images/{id_nodash}",
                    Some(V21),
                    Some(op("replace", "/name", json!("x")).to_string()),
                    404,
                ),
            ],
        ),
        case(
            "wrong resources and methods",
            vec![
                step(
                    "PATCH",
                    "/v2/images",
                    Some(V21),
                    Some(op("replace", "/name", json!("x")).to_string()),
                    405,
                ),
                step(
                    "PATCH",
                    "/v2/images/{id}/",
                    Some(V21),
                    Some(op("replace", "/name", json!("x")).to_string()),
                    404,
                ),
                step(
                    "PUT",
                    "/v2/images/{id}",
                    Some("application/json"),
                    Some("{}".into()),
                    405,
                ),
                step(
                    "PATCH",
                    "/v1/images/{id}",
                    Some(V21),
                    Some(op("replace", "/name", json!("x")).to_string()),
                    300,
                ),
            ],
        ),
        case(
            "deleted image",
            vec![
                step("DELETE", "/v2/images/{id}", None, None, 204),
                pj(op("replace", "/name", json!("x")), 404),
                step("GET", "/v2/images/{id}", None, None, 404),
            ],
        ),
        // Tags API.
        case(
            "tags API",
            vec![
                step("PUT", "/v2/images/{id}/tags/alpha", None, None, 204),
                step("PUT", "/v2/images/{id}/tags/alpha", None, None, 204),
                step("PUT", "/v2/images/{id}/tags/a%20b", None, None, 204),
                step("PUT", "/v2/images/{id}/tags/a%2Fb", None, None, 404),
                step("DELETE", "/v2/images/{id}/tags/alpha", None, None, 204),
                step("DELETE", "/v2/images/{id}/tags/nope", None, None, 404),
                step(
                    "PUT",
                    "/v2/images/11111111-2222-3333-4444-555555555555/tags/x",
                    None,
                    None,
                    404,
                ),
                step(
                    "PUT",
                    &format!("/v2/images/{{id}}/tags/{}", "t".repeat(256)),
                    None,
                    None,
                    400,
                ),
            ],
        ),
        // Image data (issue 13): upload, download, status transitions.
        case(
            "data: upload raw data, then show",
            vec![upload(DATA, 204), download(200)],
        ),
        case(
            "data: upload twice",
            vec![upload(DATA, 204), upload(DATA, 409)],
        ),
        case(
            "data: upload with a JSON content type",
            vec![step(
                "PUT",
                "/v2/images/{id}/file",
                Some("application/json"),
                Some(DATA.into()),
                415,
            )],
        ),
        case(
            "data: upload without a content type",
            vec![step(
                "PUT",
                "/v2/images/{id}/file",
                None,
                Some(DATA.into()),
                415,
            )],
        ),
        case("data: download without data", vec![download(204)]),
        case(
            "data: POST to the file",
            vec![step("POST", "/v2/images/{id}/file", None, None, 405)],
        ),
        case(
            "data: upload to an unknown image",
            vec![step(
                "PUT",
                "/v2/images/11111111-2222-3333-4444-555555555555/file",
                Some(OCTET),
                Some(DATA.into()),
                404,
            )],
        ),
        case(
            "data: deactivate a queued image",
            vec![step(
                "POST",
                "/v2/images/{id}/actions/deactivate",
                None,
                None,
                403,
            )],
        ),
        case(
            "data: deactivate, download as admin, reactivate",
            vec![
                upload(DATA, 204),
                step(
                    "POST",
                    "/v2/images/{id}/actions/deactivate",
                    None,
                    None,
                    204,
                ),
                download(200),
                upload(DATA, 409),
                step(
                    "POST",
                    "/v2/images/{id}/actions/reactivate",
                    None,
                    None,
                    204,
                ),
                download(200),
            ],
        ),
        case(
            "data: protected image with data cannot be deleted",
            vec![
                upload(DATA, 204),
                pj(op("replace", "/protected", json!(true)), 200),
                step("DELETE", "/v2/images/{id}", None, None, 403),
            ],
        ),
        case(
            "data: raw data for a qcow2 image",
            vec![pj(op("replace", "/disk_format", json!("qcow2")), 200), {
                let mut s = upload(DATA, 415);
                s.glance_bug = Some((
                    415,
                    "keeps the checksum of the rejected data on the queued image",
                ));
                s
            }],
        ),
        // Discovery.
        case(
            "discovery",
            vec![
                step("GET", "/", None, None, 300),
                step("GET", "/v2/", None, None, 404),
                step("GET", "/v2/schemas/image", None, None, 200),
                step("GET", "/v2/images?name=ims_test", None, None, 200),
            ],
        ),
    ];
    for attr in [
        "id",
        "status",
        "created_at",
        "updated_at",
        "size",
        "virtual_size",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "self",
        "file",
        "schema",
        "direct_url",
    ] {
        c.push(case(
            format!("read-only /{attr}"),
            vec![pj(op("replace", &format!("/{attr}"), json!("x")), 403)],
        ));
    }
    for attr in ["location", "deleted", "deleted_at", "os_glance_foo"] {
        c.push(case(
            format!("reserved /{attr}"),
            vec![pj(op("replace", &format!("/{attr}"), json!("x")), 403)],
        ));
    }
    for attr in [
        "name",
        "min_ram",
        "min_disk",
        "owner",
        "tags",
        "visibility",
        "protected",
        "os_hidden",
    ] {
        c.push(case(
            format!("remove base /{attr}"),
            vec![pj(remove(&format!("/{attr}")), 403)],
        ));
    }
    for bad in ["test", "move", "copy", "Replace"] {
        c.push(case(
            format!("op {bad}"),
            vec![p21(
                &format!(r#"[{{"op": "{bad}", "path": "/name", "from": "/name", "value": "x"}}]"#),
                400,
            )],
        ));
    }
    c
}

/// What a server did with a case: the statuses and the image afterwards.
#[derive(Debug, PartialEq)]
struct Outcome {
    statuses: Vec<u16>,
    image: Option<Value>,
    schema: Option<Value>,
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Clears `protected` on an image, so the test leaves it deletable.
fn unprotect(http: &Client, base: &str, id: &str) {
    send(
        http,
        base,
        "PATCH",
        &format!("/v2/images/{id}"),
        Some(V21),
        Some(&op("replace", "/protected", json!(false)).to_string()),
    );
}

fn send(
    http: &Client,
    base: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = http
        .request(method, format!("{base}{path}"))
        .header("Accept", "application/json")
        .header("X-Auth-Token", "conformance");
    if let Some(ct) = content_type {
        request = request.header("Content-Type", ct);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

/// The image without what differs between any two servers.
fn normalise(mut image: Value) -> Value {
    let obj = image.as_object_mut().unwrap();
    for key in ["id", "created_at", "updated_at", "self", "file"] {
        obj.remove(key);
    }
    if let Some(Value::Array(tags)) = obj.get_mut("tags") {
        tags.sort_by_key(|t| t.to_string());
    }
    image
}

fn run_case(http: &Client, base: &str, case: &Case) -> Outcome {
    let (status, text) = send(
        http,
        base,
        "POST",
        "/v2/images",
        Some("application/json"),
        Some(
            r#"{"name": "ims_test", "container_format": "bare", "disk_format": "raw", "existing": "old"}"#,
        ),
    );
    assert_eq!(status, 201, "{}: creating the image: {text}", case.name);
    let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut statuses = Vec::new();
    let mut schema = None;
    for s in &case.steps {
        let path = s
            .path
            .replace("{id}", &id)
            .replace("{ID}", &id.to_uppercase())
            .replace("{id_nodash}", &id.replace('-', ""));
        let (status, text) = send(
            http,
            base,
            s.method,
            &path,
            s.content_type,
            s.body.as_deref(),
        );
        if path == "/v2/schemas/image" {
            schema = serde_json::from_str(&text).ok();
        }
        statuses.push(status);
    }
    let (status, text) = send(http, base, "GET", &format!("/v2/images/{id}"), None, None);
    let image = (status == 200).then(|| normalise(serde_json::from_str(&text).unwrap()));
    // Leave nothing protected behind, so the servers can be cleaned up.
    if image
        .as_ref()
        .is_some_and(|i| i["protected"] == json!(true))
    {
        unprotect(http, base, &id);
    }
    Outcome {
        statuses,
        image,
        schema,
    }
}

fn expected(case: &Case, glance: bool) -> Vec<u16> {
    case.steps
        .iter()
        .map(|s| match (glance, s.glance_bug) {
            (true, Some((status, _))) => status,
            _ => s.expect,
        })
        .collect()
}

#[test]
fn the_suite_covers_the_reference() {
    let all = cases();
    let steps: usize = all.iter().map(|c| c.steps.len()).sum();
    assert!(all.len() >= 60, "{} cases", all.len());
    assert!(steps >= 150, "{steps} requests");
}

#[test]
fn sandbox_answers_as_glance_was_measured() {
    let sb = Sandbox::start();
    let http = client();
    let mut failures = Vec::new();
    for case in cases() {
        let outcome = run_case(&http, &sb.endpoint, &case);
        if outcome.statuses != expected(&case, false) {
            failures.push(format!(
                "{}: got {:?}, expected {:?}",
                case.name,
                outcome.statuses,
                expected(&case, false)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The real Glance that `IMS_PATCH_GLANCE_URL` names. The tests that call
/// this are ignored by plain `cargo test`; run them with a Glance started
/// (`.ci/run` does), and they fail when none is given.
pub fn glance_url() -> String {
    match std::env::var("IMS_PATCH_GLANCE_URL") {
        Ok(url) if !url.is_empty() => url.trim_end_matches('/').to_string(),
        _ => panic!(
            "IMS_PATCH_GLANCE_URL is not set: this test needs a real Glance 33; start one with `bash tests/glance/up.sh` (see .ci/run)"
        ),
    }
}

#[test]
#[ignore = "needs a real Glance 33: run by .ci/run"]
fn sandbox_and_real_glance_agree() {
    let glance = glance_url();
    let sb = Sandbox::start();
    let http = client();
    let mut failures = Vec::new();
    let mut known = Vec::new();
    for case in cases() {
        let real = run_case(&http, &glance, &case);
        let ours = run_case(&http, &sb.endpoint, &case);
        if real.statuses != expected(&case, true) {
            failures.push(format!(
                "{}: Glance answered {:?}, the reference says {:?}",
                case.name,
                real.statuses,
                expected(&case, true)
            ));
        }
        if ours.statuses != expected(&case, false) {
            failures.push(format!(
                "{}: the sandbox answered {:?}",
                case.name, ours.statuses
            ));
        }
        for s in case.steps.iter().filter_map(|s| s.glance_bug) {
            known.push(format!("{}: {}", case.name, s.1));
        }
        if case.steps.iter().any(|s| s.glance_bug.is_some()) {
            continue;
        }
        if real.image != ours.image {
            failures.push(format!(
                "{}: the images differ\n  glance:  {}\n  sandbox: {}",
                case.name,
                serde_json::to_string(&real.image).unwrap(),
                serde_json::to_string(&ours.image).unwrap()
            ));
        }
        if real.schema != ours.schema {
            failures.push(format!("{}: the schemas differ", case.name));
        }
    }
    eprintln!(
        "known differences (Glance bugs; the sandbox answers 400):\n  {}",
        known.join("\n  ")
    );
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The images each listing run creates (on both servers, tagged with the
/// run's own custom property so that other images do not interfere).
fn listing_images() -> Vec<Value> {
    vec![
        json!({"name": "web", "__os_type": "Linux", "tags": ["a", "b"], "min_ram": 512}),
        json!({"name": "in:web"}),
        json!({"name": "a:b", "disk_format": "qcow2", "container_format": "bare"}),
        json!({"name": "x,y"}),
        json!({"name": "web2", "__os_type": "Windows", "tags": ["a"], "protected": true}),
        json!({"name": "", "disk_format": "raw"}),
        json!({"name": "2020-01-01T00:00:00"}),
        json!({"name": "p1", "os_hidden": true}),
        json!({"name": "p2", "visibility": "private"}),
    ]
}

/// The queries compared between the servers (each gets `&run=RUN`).
const LISTING_QUERIES: &[&str] = &[
    "",
    "name=web",
    "name=in:web",
    "name=eq:in:web",
    "name=in:web,web2",
    "name=in:web,in:web",
    "name=a:b",
    "name=eq:a:b",
    "name=gt:a",
    "name=neq:web",
    "name=EQ:web",
    "name=x,y",
    "name=in:x,y",
    "name=in:%22x,y%22,web",
    "name=in:%22x,y",
    "name=in:a%22b%22",
    "name=",
    "name=eq:",
    "name=in:,",
    "name=in:web,",
    "name=2020-01-01T00:00:00",
    "name=eq:x&name=in:web",
    "id=gt:x",
    "status=in:queued,active",
    "status=queued",
    "status=neq:queued",
    "disk_format=in:raw,qcow2",
    "container_format=eq:bare",
    "owner=in:x",
    "__os_type=Linux",
    "__os_type=in:Linux,Windows",
    "__os_type=eq:Linux",
    "tag=a",
    "tag=a&tag=b",
    "tag=in:a",
    "tag=",
    "min_ram=512",
    "min_ram=eq:512",
    "min_ram_min=100",
    "min_ram_max=x",
    "size_min=abc",
    "size_max=10",
    "os_hidden=true",
    "os_hidden=TRUE",
    "os_hidden=yes",
    "protected=true",
    "protected=True",
    "visibility=private",
    "visibility=all",
    "visibility=in:shared",
    "visibility=",
    "member_status=bogus",
    "member_status=all",
    "created_at=gt:2020-01-01T00:00:00Z",
    "created_at=lt:2020-01-01T00:00:00Z",
    "updated_at=neq:2020-01-01T00:00:00Z",
    "created_at=bad",
    "created_at=xx:2020-01-01T00:00:00Z",
    "limit=-1",
    "limit=x",
    "limit=1.5",
    "limit=0",
    "limit=%2B2",
    "limit=2&limit=3",
    "sort=name:asc",
    "sort=name",
    "sort=name:asc,status:desc",
    "sort_key=name&sort_dir=asc",
    "sort_key=name&sort_key=disk_format&sort_dir=asc&sort_dir=desc",
    "sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&sort_dir=asc",
    "sort=bogus:asc",
    "sort=name:up",
    "sort_key=bogus&sort_dir=up",
    "sort=name:asc&sort_key=name",
    "sort=name:asc,",
    "marker=11111111-2222-3333-4444-555555555555",
    "marker=nope",
    "marker=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

/// What a list answer says, without what differs between servers (IDs in
/// markers): status, image names in order, the links, the error message.
fn list_summary(http: &Client, base: &str, path: &str) -> Value {
    let (status, text) = send(http, base, "GET", path, None, None);
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let strip_marker = |link: &Value| {
        link.as_str().map(|l| {
            l.split('&')
                .filter(|p| !p.starts_with("marker="))
                .collect::<Vec<_>>()
                .join("&")
        })
    };
    json!({
        "status": status,
        "names": body["images"].as_array().map(|images| {
            images.iter().map(|i| i["name"].clone()).collect::<Vec<_>>()
        }),
        "first": body["first"],
        "next": strip_marker(&body["next"]),
        "message": body["message"],
    })
}

/// Follows `next` from `path` to the end: the names of each page.
fn page_chain(http: &Client, base: &str, path: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut next = Some(path.to_string());
    while let Some(path) = next.take() {
        assert!(pages.len() < 20, "{path}: more than 20 pages");
        let (status, text) = send(http, base, "GET", &path, None, None);
        assert_eq!(status, 200, "{path}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        pages.push(
            body["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].clone())
                .collect(),
        );
        next = body["next"].as_str().map(str::to_string);
    }
    pages
}

/// Creates the listing images on a server, marked with `run`.
fn create_listing_images(http: &Client, base: &str, run: &str) -> Vec<String> {
    listing_images()
        .into_iter()
        .map(|mut image| {
            image["run"] = json!(run);
            let (status, text) = send(
                http,
                base,
                "POST",
                "/v2/images",
                Some("application/json"),
                Some(&image.to_string()),
            );
            assert_eq!(status, 201, "{base}: creating {image}: {text}");
            serde_json::from_str::<Value>(&text).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
#[ignore = "needs a real Glance 33: run by .ci/run"]
fn image_lists_agree_with_real_glance() {
    let glance = glance_url();
    let sb = Sandbox::start();
    let http = client();
    let run = format!(
        "listing-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let created = [
        create_listing_images(&http, &glance, &run),
        create_listing_images(&http, &sb.endpoint, &run),
    ];
    let mut failures = Vec::new();
    for query in LISTING_QUERIES {
        let path = if query.is_empty() {
            format!("/v2/images?run={run}")
        } else {
            format!("/v2/images?{query}&run={run}")
        };
        let real = list_summary(&http, &glance, &path);
        let ours = list_summary(&http, &sb.endpoint, &path);
        if real != ours {
            failures.push(format!("{path}\n  glance:  {real}\n  sandbox: {ours}"));
        }
    }
    // Pagination: `next` chains across several pages, under several orders.
    for query in [
        "limit=2",
        "limit=2&sort=name:asc",
        "limit=3&sort_key=name&sort_dir=desc",
        "limit=1&sort=disk_format:asc,name:desc",
        "limit=4&visibility=all&os_hidden=false",
        "limit=1&tag=a",
        "limit=1&tag=a&tag=b",
    ] {
        let path = format!("/v2/images?{query}&run={run}");
        let real = page_chain(&http, &glance, &path);
        let ours = page_chain(&http, &sb.endpoint, &path);
        if real != ours {
            failures.push(format!(
                "{path} (pages)\n  glance:  {real:?}\n  sandbox: {ours:?}"
            ));
        }
        if real.len() < 2 && !query.contains("tag") {
            failures.push(format!("{path}: only {} page(s)", real.len()));
        }
    }
    // A marker in the middle of the list, by each server's own ID.
    for (base, ids) in [(&glance, &created[0]), (&sb.endpoint, &created[1])] {
        let path = format!("/v2/images?sort=name:asc&marker={}&run={run}", ids[4]);
        let names = &list_summary(&http, base, &path)["names"];
        if names != &json!(["x,y"]) {
            failures.push(format!("{base}{path}: {names}"));
        }
    }
    // Leave nothing protected behind.
    for (base, ids) in [(&glance, &created[0]), (&sb.endpoint, &created[1])] {
        unprotect(&http, base, &ids[4]);
    }
    assert!(
        failures.is_empty(),
        "{} listings differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Image data and image actions (#13): upload, download, deactivate,
// reactivate, delete protected. Each case starts from a fresh image; every
// answer is compared (status, the headers a client reads, the body), and so
// is the image afterwards. The statuses are the ones measured on Glance 33.

/// 1029 bytes (1 KiB of 0..=255, then "hello"), as measured on Glance 33:
/// checksum 23f07ef5f66d2af3e6f8e7786fc9effb.
fn payload() -> Vec<u8> {
    let mut data: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    data.extend_from_slice(b"hello");
    data
}

#[derive(Clone)]
struct DataStep {
    method: &'static str,
    /// `{id}` is the case's image.
    path: &'static str,
    content_type: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    body: Option<Vec<u8>>,
    /// Send the body with `Transfer-Encoding: chunked`.
    chunked: bool,
    expect: u16,
}

fn ds(method: &'static str, path: &'static str, expect: u16) -> DataStep {
    DataStep {
        method,
        path,
        content_type: None,
        headers: &[],
        body: None,
        chunked: false,
        expect,
    }
}

fn data_upload(body: Vec<u8>, expect: u16) -> DataStep {
    DataStep {
        content_type: Some(OCTET),
        body: Some(body),
        ..ds("PUT", "/v2/images/{id}/file", expect)
    }
}

fn data_download(expect: u16) -> DataStep {
    ds("GET", "/v2/images/{id}/file", expect)
}

fn action(name: &'static str, expect: u16) -> DataStep {
    let path = if name == "deactivate" {
        "/v2/images/{id}/actions/deactivate"
    } else {
        "/v2/images/{id}/actions/reactivate"
    };
    ds("POST", path, expect)
}

fn protect(on: bool) -> DataStep {
    DataStep {
        content_type: Some(V21),
        body: Some(
            op("replace", "/protected", json!(on))
                .to_string()
                .into_bytes(),
        ),
        ..ds("PATCH", "/v2/images/{id}", 200)
    }
}

const MEMBER: &[(&str, &str)] = &[("X-Roles", "reader,member")];
const READER: &[(&str, &str)] = &[("X-Roles", "reader")];
const OTHER: &[(&str, &str)] = &[("X-Roles", "reader,member"), ("X-Project-Id", "other")];

struct DataCase {
    name: &'static str,
    create: Value,
    steps: Vec<DataStep>,
}

fn raw_bare() -> Value {
    json!({"name": "data", "disk_format": "raw", "container_format": "bare"})
}

fn data_cases() -> Vec<DataCase> {
    let dc = |name, steps| DataCase {
        name,
        create: raw_bare(),
        steps,
    };
    vec![
        dc(
            "upload, then download the bytes",
            vec![data_upload(payload(), 204), data_download(200)],
        ),
        dc(
            "chunked upload",
            vec![
                DataStep {
                    chunked: true,
                    ..data_upload(payload(), 204)
                },
                data_download(200),
            ],
        ),
        dc(
            "upload twice (active: 409)",
            vec![data_upload(payload(), 204), data_upload(b"x".to_vec(), 409)],
        ),
        dc(
            "upload with a wrong Content-Type",
            vec![
                DataStep {
                    content_type: Some("application/json"),
                    ..data_upload(payload(), 415)
                },
                DataStep {
                    content_type: Some("text/plain"),
                    ..data_upload(payload(), 415)
                },
                DataStep {
                    content_type: None,
                    ..data_upload(payload(), 415)
                },
                DataStep {
                    content_type: Some("application/octet-stream; charset=x"),
                    ..data_upload(payload(), 204)
                },
            ],
        ),
        dc(
            "download an image without data (204)",
            vec![data_download(204)],
        ),
        dc(
            "upload nothing",
            vec![data_upload(Vec::new(), 204), data_download(200)],
        ),
        DataCase {
            name: "raw bytes for a qcow2 image (415)",
            create: json!({"name": "q", "disk_format": "qcow2", "container_format": "bare"}),
            steps: vec![data_upload(payload(), 415)],
        },
        DataCase {
            name: "ami: no inspection, no virtual_size",
            create: json!({"name": "a", "disk_format": "ami", "container_format": "ami"}),
            steps: vec![data_upload(payload(), 204)],
        },
        DataCase {
            name: "upload before the formats are set (400)",
            create: json!({"name": "nf"}),
            steps: vec![data_upload(payload(), 400)],
        },
        dc(
            "upload policy",
            vec![
                DataStep {
                    headers: READER,
                    ..data_upload(payload(), 403)
                },
                DataStep {
                    headers: OTHER,
                    ..data_upload(payload(), 404)
                },
                DataStep {
                    headers: MEMBER,
                    ..data_upload(payload(), 204)
                },
            ],
        ),
        dc(
            "deactivate and reactivate",
            vec![
                data_upload(payload(), 204),
                action("deactivate", 204),
                action("deactivate", 204),
                data_download(200),
                DataStep {
                    headers: MEMBER,
                    ..data_download(403)
                },
                data_upload(b"x".to_vec(), 409),
                action("reactivate", 204),
                action("reactivate", 204),
                DataStep {
                    headers: MEMBER,
                    ..action("deactivate", 204)
                },
                DataStep {
                    headers: READER,
                    ..action("reactivate", 403)
                },
                DataStep {
                    headers: MEMBER,
                    ..action("reactivate", 204)
                },
                ds("GET", "/v2/images/{id}/actions/deactivate", 405),
            ],
        ),
        dc(
            "actions on a queued image (403)",
            vec![action("deactivate", 403), action("reactivate", 403)],
        ),
        dc(
            "delete protected, unprotect, delete, show the deleted image",
            vec![
                data_upload(payload(), 204),
                protect(true),
                ds("DELETE", "/v2/images/{id}", 403),
                protect(false),
                ds("DELETE", "/v2/images/{id}", 204),
                ds("GET", "/v2/images/{id}", 404),
                data_download(404),
                data_upload(payload(), 404),
                action("deactivate", 404),
            ],
        ),
        dc(
            "ranged downloads",
            vec![
                data_upload(payload(), 204),
                DataStep {
                    headers: &[("Range", "bytes=0-9")],
                    ..data_download(206)
                },
                DataStep {
                    headers: &[("Range", "bytes=1020-")],
                    ..data_download(206)
                },
                DataStep {
                    headers: &[("Range", "bytes=-5")],
                    ..data_download(206)
                },
                DataStep {
                    headers: &[("Range", "bytes=1025-2000")],
                    ..data_download(206)
                },
                DataStep {
                    headers: &[("Range", "bytes=2000-3000")],
                    ..data_download(416)
                },
                DataStep {
                    headers: &[("Range", "bytes=5-2")],
                    ..data_download(416)
                },
                DataStep {
                    headers: &[("Range", "bytes=0-1,5-6")],
                    ..data_download(400)
                },
            ],
        ),
        dc(
            "other methods on /file",
            vec![
                ds("DELETE", "/v2/images/{id}/file", 405),
                ds("HEAD", "/v2/images/{id}/file", 405),
                ds("OPTIONS", "/v2/images/{id}/file", 200),
            ],
        ),
    ]
}

/// One answer: status, the headers a client reads, and the body (the bytes
/// of a download, the message of an error).
fn answer(response: reqwest::blocking::Response) -> Value {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .map_or(Value::Null, |v| json!(v.to_str().unwrap_or("<binary>")))
    };
    let bytes = response.bytes().map(|b| b.to_vec()).unwrap_or_default();
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if v.get("message").is_some() => v["message"].clone(),
        Ok(v) => normalise(v),
        Err(_) => json!(String::from_utf8_lossy(&bytes)),
    };
    let mut a = json!({
        "status": status,
        "content-type": header("content-type"),
        "content-md5": header("content-md5"),
        "content-range": header("content-range"),
        "allow": header("allow"),
        "body": body,
    });
    // A 204 carries no length on Glance; the sandbox says 0.
    if status != 204 {
        a["content-length"] = header("content-length");
    }
    a
}

/// A chunked PUT over a raw socket (reqwest sends a length for bytes).
fn chunked_put(base: &str, path: &str, data: &[u8]) -> Value {
    use std::io::{Read, Write};
    let hostport = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "PUT {path} HTTP/1.1\r\nHost: {hostport}\r\nAccept: application/json\r\nX-Auth-Token: conformance\r\nContent-Type: {OCTET}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for part in data.chunks(100) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    s.write_all(&req).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    json!({"status": status})
}

#[derive(Debug, PartialEq)]
struct DataOutcome {
    answers: Vec<Value>,
    image: Option<Value>,
}

impl DataOutcome {
    fn statuses(&self) -> Vec<u16> {
        self.answers
            .iter()
            .map(|a| a["status"].as_u64().unwrap() as u16)
            .collect()
    }
}

fn run_data_case(http: &Client, base: &str, case: &DataCase) -> DataOutcome {
    let (status, text) = send(
        http,
        base,
        "POST",
        "/v2/images",
        Some("application/json"),
        Some(&case.create.to_string()),
    );
    assert_eq!(status, 201, "{}: creating the image: {text}", case.name);
    let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut answers = Vec::new();
    for s in &case.steps {
        let path = s.path.replace("{id}", &id);
        if s.chunked {
            answers.push(chunked_put(base, &path, s.body.as_deref().unwrap()));
            continue;
        }
        let method = reqwest::Method::from_bytes(s.method.as_bytes()).unwrap();
        let mut rq = http
            .request(method, format!("{base}{path}"))
            .header("Accept", "application/json")
            .header("X-Auth-Token", "conformance");
        if let Some(ct) = s.content_type {
            rq = rq.header("Content-Type", ct);
        }
        for (k, v) in s.headers {
            rq = rq.header(*k, *v);
        }
        if let Some(body) = &s.body {
            rq = rq.body(body.clone());
        }
        let response = rq.send().unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut a = answer(response);
        if let Some(msg) = a["body"].as_str() {
            a["body"] = json!(msg.replace(&id, "{id}"));
        }
        answers.push(a);
    }
    let (status, text) = send(http, base, "GET", &format!("/v2/images/{id}"), None, None);
    let image = (status == 200).then(|| normalise(serde_json::from_str(&text).unwrap()));
    if image
        .as_ref()
        .is_some_and(|i| i["protected"] == json!(true))
    {
        unprotect(http, base, &id);
    }
    DataOutcome { answers, image }
}

fn data_expected(case: &DataCase) -> Vec<u16> {
    case.steps.iter().map(|s| s.expect).collect()
}

#[test]
fn sandbox_image_data_as_glance_was_measured() {
    let sb = Sandbox::start();
    let http = client();
    let mut failures = Vec::new();
    for case in data_cases() {
        let outcome = run_data_case(&http, &sb.endpoint, &case);
        if outcome.statuses() != data_expected(&case) {
            failures.push(format!(
                "{}: got {:?}, expected {:?}",
                case.name,
                outcome.statuses(),
                data_expected(&case)
            ));
        }
    }
    // The figures measured on Glance 33 for payload().
    let one = run_data_case(&http, &sb.endpoint, &data_cases()[0]);
    let image = one.image.unwrap();
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], 1029);
    assert_eq!(image["virtual_size"], 1029);
    assert_eq!(image["checksum"], "23f07ef5f66d2af3e6f8e7786fc9effb");
    assert_eq!(image["os_hash_algo"], "sha512");
    assert!(image["os_hash_value"]
        .as_str()
        .unwrap()
        .starts_with("1668a0c5277b08881cda1cc965377e942c5ef7de"));
    assert_eq!(
        one.answers[1]["content-md5"],
        "23f07ef5f66d2af3e6f8e7786fc9effb"
    );
    assert_eq!(one.answers[1]["content-length"], "1029");
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// While an upload streams in, the image is `saving` (queued → saving →
/// active). Not compared with the test Glance: it runs one uWSGI worker, so
/// the GET waits behind the upload; Glance 33 saves `saving` before it
/// reads the data (`ImageDataController.upload`).
fn saving_while_uploading(http: &Client, base: &str) -> Vec<String> {
    use std::io::{Read, Write};
    let (_, text) = send(
        http,
        base,
        "POST",
        "/v2/images",
        Some("application/json"),
        Some(&raw_bare().to_string()),
    );
    let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = |http: &Client| {
        let (_, t) = send(http, base, "GET", &format!("/v2/images/{id}"), None, None);
        serde_json::from_str::<Value>(&t).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut seen = vec![status(http)];
    let hostport = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: {hostport}\r\nX-Auth-Token: conformance\r\nContent-Type: {OCTET}\r\nContent-Length: 200000\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // More than a server buffers before it hands the request on.
    s.write_all(&[1u8; 100_000]).unwrap();
    s.flush().unwrap();
    // The server has half; poll until it has moved on from queued.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = status(http);
        if now != "queued" || std::time::Instant::now() > deadline {
            seen.push(now);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    s.write_all(&[2u8; 100_000]).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    seen.push(status(http));
    seen
}

#[test]
fn sandbox_image_goes_queued_saving_active() {
    let sb = Sandbox::start();
    assert_eq!(
        saving_while_uploading(&client(), &sb.endpoint),
        ["queued", "saving", "active"]
    );
}

/// `--max-image-size` bounds all image data together: an upload past it is
/// answered as Glance answers its `image_size_cap` (message from Glance 33's
/// `image_data.py`: not measurable on the test Glance, whose cap is 1 TiB),
/// and the image is queued again; deleting an image frees its share.
#[test]
fn sandbox_bounds_image_data() {
    let sb = Sandbox::start_with(&["--max-image-size", "1500"]);
    let http = client();
    let first = run_data_case(&http, &sb.endpoint, &data_cases()[0]);
    assert_eq!(first.statuses(), [204, 200]);
    let case = DataCase {
        name: "second image over the total",
        create: raw_bare(),
        steps: vec![
            data_upload(payload(), 413),
            ds("GET", "/v2/images/{id}", 200),
        ],
    };
    let second = run_data_case(&http, &sb.endpoint, &case);
    assert_eq!(second.statuses(), [413, 200]);
    assert_eq!(
        second.answers[0]["body"],
        "The incoming image is too large: The provided image is too large.<br /><br />\n\n\n"
    );
    assert_eq!(second.image.unwrap()["status"], "queued");
    // A chunked upload (no length) is cut off at the cap too.
    let chunked = DataCase {
        name: "chunked over the cap",
        create: raw_bare(),
        steps: vec![DataStep {
            chunked: true,
            ..data_upload(vec![7u8; 4000], 413)
        }],
    };
    assert_eq!(
        run_data_case(&http, &sb.endpoint, &chunked).statuses(),
        [413]
    );
    // Deleting every image frees the data: the same upload fits again.
    let (_, list) = send(&http, &sb.endpoint, "GET", "/v2/images", None, None);
    for img in serde_json::from_str::<Value>(&list).unwrap()["images"]
        .as_array()
        .unwrap()
    {
        if img["name"] == "data" && img["size"].is_number() {
            let path = format!("/v2/images/{}", img["id"].as_str().unwrap());
            assert_eq!(
                send(&http, &sb.endpoint, "DELETE", &path, None, None).0,
                204
            );
        }
    }
    assert_eq!(
        run_data_case(&http, &sb.endpoint, &data_cases()[0]).statuses(),
        [204, 200]
    );
}

#[test]
#[ignore = "needs a real Glance 33: run by .ci/run"]
fn sandbox_and_real_glance_agree_on_image_data() {
    let glance = glance_url();
    let sb = Sandbox::start();
    let http = client();
    let mut failures = Vec::new();
    for case in data_cases() {
        let real = run_data_case(&http, &glance, &case);
        let ours = run_data_case(&http, &sb.endpoint, &case);
        if real.statuses() != data_expected(&case) {
            failures.push(format!(
                "{}: Glance answered {:?}, the reference says {:?}",
                case.name,
                real.statuses(),
                data_expected(&case)
            ));
        }
        if real != ours {
            failures.push(format!(
                "{}: the servers differ\n  glance:  {}\n  sandbox: {}",
                case.name,
                serde_json::to_string(&(&real.answers, &real.image)).unwrap(),
                serde_json::to_string(&(&ours.answers, &ours.image)).unwrap()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The images `ims-patch list --where ... -o json` prints (their names, in
/// order), against the image service at `endpoint`.
fn where_list(endpoint: &str, filters: &[&str]) -> (i32, Vec<Value>) {
    let mut ims = crate::support::Ims::new()
        .env("IMS_PATCH_ENDPOINT", endpoint)
        .env("IMS_PATCH_TOKEN", "t")
        .args(["list", "-o", "json"]);
    for f in filters {
        ims = ims.args(["--where", f]);
    }
    let run = ims.run();
    let names = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["name"].clone())
        .collect();
    (run.code, names)
}

#[test]
#[ignore = "needs a real Glance 33: run by .ci/run"]
fn where_lists_agree_with_real_glance() {
    let glance = glance_url();
    let sb = Sandbox::start();
    let http = client();
    let run = format!(
        "where-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let created = [
        create_listing_images(&http, &glance, &run),
        create_listing_images(&http, &sb.endpoint, &run),
    ];
    let run_filter = format!("run={run}");
    let mut failures = Vec::new();
    for filters in [
        vec![],
        vec!["__os_type=Linux"],
        vec!["__os_type=in:Linux,Windows"],
        vec!["name=in:web,web2"],
        vec!["name=in:web"],
        vec!["tag=a", "tag=b"],
        vec!["status=queued", "limit=2"],
        vec!["visibility=all", "os_hidden=false", "limit=3"],
        vec!["os_hidden=true"],
        vec!["min_ram=512"],
        vec!["protected=true"],
        vec!["__os_type=nothing-such"],
    ] {
        let mut all = filters.clone();
        all.push(&run_filter);
        let real = where_list(&glance, &all);
        let ours = where_list(&sb.endpoint, &all);
        if real != ours {
            failures.push(format!("{all:?}\n  glance:  {real:?}\n  sandbox: {ours:?}"));
        }
    }
    for (base, ids) in [(&glance, &created[0]), (&sb.endpoint, &created[1])] {
        unprotect(&http, base, &ids[4]);
    }
    assert!(
        failures.is_empty(),
        "{} --where lists differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

//! Routing: version negotiation, authentication, and the table that maps each `(method, path)` to its endpoint module (images, tags, listing, schemas).
//!
//! Image data (`/v2/images/{id}/file`, any method) never gets here: the
//! server streams it through `data` (`server::serve_file`), which
//! authenticates with `context::authenticate` like the routes below.
//!
//! To add a service (as the Keystone v3 emulation under `/v3`), add
//! an arm to `route_public` for its prefix (those routes do their own auth,
//! as `POST /v3/auth/tokens` must work without a token) or to `route_v2`
//! for Glance routes that need an authenticated `Ctx`.

use serde_json::{json, Value};

use crate::context::{self, Ctx};
use crate::http::{ApiError, Request, Response};
use crate::state::State;
use crate::{images, keystone, listing, schema, tags};

/// Newest Images API minor version the sandbox claims (Glance 33: v2.18).
pub const CURRENT_MINOR: u32 = 18;

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base_url(state: &State, req: &Request) -> String {
    match req.get_header("Host") {
        Some(host) if !host.is_empty() => format!("http://{host}"),
        _ => state.base_url.clone(),
    }
}

fn versions(base: &str, status: u16) -> Response {
    let list: Vec<Value> = (0..=CURRENT_MINOR)
        .rev()
        .map(|minor| {
            json!({
                "id": format!("v2.{minor}"),
                "status": if minor == CURRENT_MINOR { "CURRENT" } else { "SUPPORTED" },
                "links": [{"rel": "self", "href": format!("{base}/v2/")}],
            })
        })
        .collect();
    Response::json(status, &json!({ "versions": list }), true)
}

/// Handles one request. Pure: no sockets, no files; changes to the images
/// Handles one request. Pure: no sockets, no files; changes to the images
/// set `state.dirty`.
pub fn handle(state: &mut State, req: &Request) -> Response {
    let request_id = match req.get_header("X-Openstack-Request-Id") {
        Some(id) => id.to_string(),
        None => format!("req-{}", uuid::Uuid::new_v4()),
    };
    let mut resp = dispatch(state, req);
    resp.headers
        .push(("x-openstack-request-id".to_string(), request_id));
    resp
}

fn dispatch(state: &mut State, req: &Request) -> Response {
    let base = base_url(state, req);
    let path = percent_decode(req.raw_path());
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    if req.body_too_large {
        // The server read only the start of the body (its own limit; a
        // Glance behind a proxy answers such bodies 413 too).
        return ApiError::explained(413, "The request body is larger than the sandbox reads.")
            .render(req);
    }
    if let Some(resp) = iam_route(state, req, &base, &segs) {
        return resp;
    }
    if let Some(result) = route_public(state, req, &base, &segs) {
        return result.unwrap_or_else(|e| e.render(req));
    }
    let ctx = match context::authenticate(state, req, &base) {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    if req.method == "OPTIONS" {
        return Response::empty(200);
    }
    route_glance(state, req, &ctx, &base, &segs).unwrap_or_else(|e| e.render(req))
}

/// With an AK/SK pair, `/v3` is OTC's IAM: every request there is verified
/// as the image API's are, and `GET /v3/projects` answers the project of a
/// region. `None`: not an AK/SK sandbox, or another `/v3` route.
fn iam_route(state: &State, req: &Request, base: &str, segs: &[&str]) -> Option<Response> {
    let gateway = state.aksk.as_ref()?;
    if segs.first() != Some(&"v3") {
        return None;
    }
    if let Err(refused) = crate::aksk::verify(gateway, req, std::time::SystemTime::now()) {
        return Some(refused);
    }
    match (req.method.as_str(), segs) {
        ("GET", ["v3", "projects"]) => Some(crate::aksk::projects(
            req,
            base,
            crate::image::DEFAULT_PROJECT,
        )),
        _ => None,
    }
}

/// Routes that authenticate by themselves: the Keystone v3 emulation
/// (`/v3` and below; a login needs no token). `None`: not one of them.
fn route_public(
    state: &mut State,
    req: &Request,
    base: &str,
    segs: &[&str],
) -> Option<Result<Response, ApiError>> {
    match segs {
        ["v3", ..] => keystone::route(state, req, base).map(Ok),
        _ => None,
    }
}

fn is_v2_version(seg: &str) -> bool {
    if seg == "v2" {
        return true;
    }
    seg.strip_prefix("v2.")
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| m <= CURRENT_MINOR)
}

fn method_not_allowed(allowed: &str) -> ApiError {
    ApiError::bare(405).with_header("Allow", allowed)
}

/// Glance's version negotiation, then the v2 routes.
fn route_glance(
    state: &mut State,
    req: &Request,
    ctx: &Ctx,
    base: &str,
    segs: &[&str],
) -> Result<Response, ApiError> {
    let first = segs.first().copied().unwrap_or("");
    // Glance's version-negotiation middleware: `/versions` lists versions
    // explicitly (200); any path that does not start with a known version
    // gets the version list as 300 Multiple Choices, whatever the method.
    if first == "versions" {
        return Ok(versions(base, 200));
    }
    if !is_v2_version(first) {
        return Ok(versions(base, 300));
    }
    route_v2(state, req, ctx, base, &segs[1..])
}

/// The Images API v2 routes (the path after `/v2`).
fn route_v2(
    state: &mut State,
    req: &Request,
    ctx: &Ctx,
    base: &str,
    rest: &[&str],
) -> Result<Response, ApiError> {
    let m = req.method.as_str();
    let nonempty = |s: &&str| !s.is_empty();
    match rest {
        ["images"] => match m {
            "GET" => listing::list_images(state, req, ctx),
            "POST" => images::create_image(state, req, ctx, base),
            _ => Err(method_not_allowed("GET, POST")),
        },
        [images, id] if *images == "images" && nonempty(id) => match m {
            "GET" => images::show_image(state, ctx, id),
            "PATCH" => images::patch_image(state, req, ctx, id),
            "DELETE" => images::delete_image(state, ctx, id),
            _ => Err(method_not_allowed("GET, PATCH, DELETE")),
        },
        [images, id, tags, tag]
            if *images == "images" && *tags == "tags" && nonempty(id) && nonempty(tag) =>
        {
            // Known difference: Glance decodes the URL as Latin-1, so a UTF-8
            // tag given in the URL comes back mis-decoded ("Ñ\u{82}ÐµÐ³" for
            // "тег"); the sandbox decodes it as UTF-8.
            match m {
                "PUT" => tags::put_tag(state, ctx, id, tag),
                "DELETE" => tags::delete_tag(state, ctx, id, tag),
                _ => Err(method_not_allowed("PUT, DELETE")),
            }
        }
        [images, id, actions, action]
            if *images == "images"
                && *actions == "actions"
                && nonempty(id)
                && matches!(*action, "deactivate" | "reactivate") =>
        {
            match m {
                "POST" => crate::actions::image_action(state, ctx, id, action),
                _ => Err(method_not_allowed("POST")),
            }
        }
        ["schemas", "image"] => match m {
            "GET" => Ok(Response::json(200, schema::image_schema(), true)),
            _ => Err(method_not_allowed("GET")),
        },
        ["schemas", "images"] => match m {
            "GET" => Ok(Response::json(200, &schema::images_schema(), true)),
            _ => Err(method_not_allowed("GET")),
        },
        [images, id, what, ..]
            if *images == "images"
                && nonempty(id)
                && matches!(*what, "stage" | "import" | "members" | "tasks") =>
        {
            Err(not_implemented(req))
        }
        [top, ..] if matches!(*top, "info" | "tasks" | "metadefs" | "cache" | "stores") => {
            Err(not_implemented(req))
        }
        _ => Err(ApiError::bare(404)),
    }
}

fn not_implemented(req: &Request) -> ApiError {
    ApiError::explained(
        501,
        format!(
            "The ims-patch sandbox does not implement {} {}; it serves images, their data, tags and schemas.",
            req.method,
            req.raw_path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn a_body_the_server_did_not_read_whole_is_413() {
        let mut s = state();
        let mut req = Request::new("POST", "/v2/images").header("Accept", "application/json");
        req.body_too_large = true;
        let r = handle(&mut s, &req);
        assert_eq!(r.status, 413);
        assert!(message(&r).contains("larger than the sandbox reads"));
        assert_eq!(s.images.len(), State::seeded("").images.len());
    }

    #[test]
    fn routing_and_methods() {
        let mut s = state();
        for m in ["PUT", "HEAD"] {
            let r = handle(&mut s, &Request::new(m, &format!("/v2/images/{SEED}")));
            assert_eq!(r.status, 405);
            assert_eq!(r.get_header("Allow"), Some("GET, PATCH, DELETE"));
        }
        let r = handle(
            &mut s,
            &Request::new("PUT", &format!("/v2/images/{SEED}"))
                .header("Accept", "application/json"),
        );
        assert_eq!(
            message(&r),
            "The method PUT is not allowed for this resource. <br /><br />\n"
        );
        let r = handle(
            &mut s,
            &Request::new("PATCH", "/v2/images").header("Accept", "application/json"),
        );
        assert_eq!((r.status, r.get_header("Allow")), (405, Some("GET, POST")));
        let r = get(&mut s, &format!("/v2/images/{SEED}/"));
        assert_eq!(
            (r.status, message(&r)),
            (
                404,
                "The resource could not be found.<br /><br />\n\n\n".into()
            )
        );
        assert_eq!(get(&mut s, "/v2/").status, 404);
        let r = get(&mut s, "/");
        assert_eq!(r.status, 300);
        let v = r.body_json();
        assert_eq!(v["versions"].as_array().unwrap().len(), 19);
        assert_eq!(
            v["versions"][0],
            json!({"id": "v2.18", "status": "CURRENT", "links": [{"rel": "self", "href": "http://127.0.0.1:9292/v2/"}]})
        );
        assert_eq!(v["versions"][18]["id"], "v2.0");
        let r = handle(
            &mut s,
            &Request::new("PATCH", "/v1/images/x").header("Host", "localhost:1234"),
        );
        assert_eq!(r.status, 300);
        assert_eq!(
            r.body_json()["versions"][0]["links"][0]["href"],
            "http://localhost:1234/v2/"
        );
        assert_eq!(get(&mut s, "/versions").status, 200);
        assert_eq!(get(&mut s, &format!("/v2.1/images/{SEED}")).status, 200);
        assert_eq!(
            handle(&mut s, &Request::new("OPTIONS", "/v2/images/x")).status,
            200
        );
        let r = get(&mut s, "/v2/schemas/image");
        assert_eq!(r.body_json(), *schema::image_schema());
        assert_eq!(get(&mut s, "/v2/schemas/images").status, 200);
        // A seed image is active without data in the sandbox.
        assert_eq!(get(&mut s, &format!("/v2/images/{SEED}/file")).status, 404);
        assert_eq!(
            get(&mut s, &format!("/v2/images/{SEED}/members")).status,
            501
        );
    }

    #[test]
    fn token_and_request_id() {
        let mut s = state();
        s.token = Some("secret".into());
        let r = get(&mut s, "/v2/images");
        assert_eq!(r.status, 401);
        assert_eq!(
            r.body_text(),
            r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#
        );
        assert!(r
            .get_header("WWW-Authenticate")
            .unwrap()
            .starts_with("Keystone uri=\""));
        let r = handle(
            &mut s,
            &Request::new("GET", "/v2/images")
                .header("X-Auth-Token", "secret")
                .header("X-Openstack-Request-Id", "req-my-own-id"),
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            r.get_header("x-openstack-request-id"),
            Some("req-my-own-id")
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::testutil::{state, QUEUED, SEED};
    use proptest::prelude::*;

    fn method() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"
            ])
            .prop_map(String::from),
            "[A-Za-z]{0,8}",
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        let prefixes = vec![
            String::new(),
            "/".into(),
            "/v2/images".into(),
            format!("/v2/images/{SEED}"),
            format!("/v2/images/{QUEUED}/tags/"),
            format!("/v2/images/{SEED}/actions/"),
            format!("/v2/images/{SEED}/file"),
            "/v2/schemas/".into(),
            "/v2.1/images?".into(),
            "/v2/images?name=".into(),
            "/v2/images?limit=1&marker=".into(),
            "/v2/images?sort=".into(),
            "/versions".into(),
            "/v3/".into(),
        ];
        (
            prop::sample::select(prefixes),
            "([a-z0-9<>:,\"&=?/%~.-]|%[0-9A-Fa-f]{2}|\\PC){0,24}",
        )
            .prop_map(|(p, s)| p + &s)
    }

    fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
        let names = prop::sample::select(vec![
            "Accept",
            "Content-Type",
            "X-Roles",
            "X-Project-Id",
            "X-Auth-Token",
            "Host",
            "X-Openstack-Request-Id",
            "Transfer-Encoding",
        ]);
        let values = prop_oneof![
            prop::sample::select(vec![
                "application/json",
                "text/html",
                "text/plain",
                "*/*",
                "application/json;q=0",
                "application/openstack-images-v2.1-json-patch",
                "application/openstack-images-v2.0-json-patch",
                "reader,member",
                "reader",
            ])
            .prop_map(String::from),
            "\\PC{0,30}",
        ];
        prop::collection::vec((names.prop_map(String::from), values), 0..5)
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        let op = (
            prop::sample::select(vec!["add", "remove", "replace", "test", ""]),
            "(/[a-z_<>é~01]{0,8}){0,2}",
            prop_oneof![
                Just(serde_json::Value::Null),
                "\\PC{0,12}".prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<bool>().prop_map(serde_json::Value::from),
            ],
        )
            .prop_map(|(op, path, value)| json!({"op": op, "path": path, "value": value}));
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(op, 0..4)
                .prop_map(|ops| serde_json::to_vec(&ops).unwrap_or_default()),
            "\\PC{0,40}".prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The handler answers every request, whatever its method, path,
        /// headers and body, and never panics.
        #[test]
        fn the_handler_never_panics(
            method in method(),
            path in path(),
            headers in headers(),
            body in body(),
        ) {
            let mut s = state();
            let req = Request { method, url: path, headers, body, body_too_large: false };
            let resp = handle(&mut s, &req);
            prop_assert!((100..600).contains(&resp.status));
        }
    }
}

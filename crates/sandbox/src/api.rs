//! The request handler: auth, version negotiation, routing, and every endpoint except the PATCH logic itself (versions, schemas, image list/create/show/delete, tags, deactivate/reactivate), plus the caller's policy context.

use std::cmp::Ordering;

use serde_json::{json, Value};

use super::http::{self, ApiError, Request, Response};
use super::image::{dedup_tags, Image, DEFAULT_PROJECT, STORE_ID};
use super::keystone;
use super::patch;
use super::pyfmt;
use super::schema;
use super::state::State;

/// Newest Images API minor version the sandbox claims (Glance 33: v2.18).
pub const CURRENT_MINOR: u32 = 18;

/// Who is asking, as Glance's context middleware would see it. Without
/// `X-Roles` the caller is a project admin (like the reference server's
/// no-auth shim); `X-Roles: reader,member` makes it a plain member and
/// `X-Project-Id` changes its project.
#[derive(Debug, Clone, PartialEq)]
pub struct Ctx {
    pub is_admin: bool,
    /// Has the `member` (or `admin`) role.
    pub can_write: bool,
    pub project: String,
}

fn forbidden_action(action: &str) -> ApiError {
    ApiError::explained(
        403,
        format!("You are not authorized to complete {action} action."),
    )
}

impl Ctx {
    #[cfg(test)]
    pub fn admin() -> Ctx {
        Ctx {
            is_admin: true,
            can_write: true,
            project: DEFAULT_PROJECT.to_string(),
        }
    }

    pub fn from_request(req: &Request) -> Ctx {
        let roles: Vec<String> = req
            .get_header("X-Roles")
            .unwrap_or("admin,member,reader")
            .split(',')
            .map(|r| r.trim().to_ascii_lowercase())
            .collect();
        let is_admin = roles.iter().any(|r| r == "admin");
        let project = req
            .get_header("X-Project-Id")
            .or_else(|| req.get_header("X-Tenant-Id"))
            .unwrap_or(DEFAULT_PROJECT)
            .to_string();
        Ctx {
            is_admin,
            can_write: is_admin || roles.iter().any(|r| r == "member"),
            project,
        }
    }

    fn owns(&self, img: &Image) -> bool {
        img.owner.as_deref() == Some(self.project.as_str())
    }

    /// Glance's `is_image_visible` (the sandbox has no image members).
    pub fn can_see(&self, img: &Image) -> bool {
        self.is_admin || self.owns(img) || matches!(img.visibility.as_str(), "public" | "community")
    }

    /// The `modify_image` policy.
    pub fn modify_image(&self, img: &Image) -> Result<(), ApiError> {
        if self.can_write && (self.is_admin || self.owns(img)) {
            Ok(())
        } else {
            Err(forbidden_action("modify_image"))
        }
    }

    /// `ImageAPIPolicy.update_property`: publicizing needs admin, anything
    /// else needs `modify_image`.
    pub fn update_property(
        &self,
        img: &Image,
        name: &str,
        value: Option<&Value>,
    ) -> Result<(), ApiError> {
        if name == "visibility" && value == Some(&json!("public")) && !self.is_admin {
            return Err(forbidden_action("publicize_image"));
        }
        self.modify_image(img)
    }
}

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

/// Python's `urllib.parse.quote_plus`.
fn quote_plus(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn urlencode(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn base_url(state: &State, req: &Request) -> String {
    match req.get_header("Host") {
        Some(host) if !host.is_empty() => format!("http://{host}"),
        _ => state.base_url.clone(),
    }
}

fn image_response(status: u16, img: &Image) -> Response {
    Response::json(status, &Value::Object(img.view()), false)
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
    // Keystone v3 (`/v3...`) authenticates by itself; then keystonemiddleware
    // (`--require-auth`), else the static `--token` check.
    if let Some(resp) = keystone::route(state, req, &base) {
        return resp;
    }
    let authed = match keystone::guard_image_api(state, req, &base) {
        Some(Ok(authed)) => authed,
        Some(Err(resp)) => return resp,
        None => {
            if let Some(token) = &state.token {
                if req.get_header("X-Auth-Token") != Some(token.as_str()) {
                    return http::unauthorized(&base);
                }
            }
            std::borrow::Cow::Borrowed(req)
        }
    };
    let req: &Request = &authed;
    if req.method == "OPTIONS" {
        return Response::empty(200);
    }
    match route(state, req, &base) {
        Ok(resp) => resp,
        Err(e) => e.render(req),
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

fn route(state: &mut State, req: &Request, base: &str) -> Result<Response, ApiError> {
    let path = percent_decode(req.raw_path());
    let segs: Vec<&str> = path.split('/').skip(1).collect();
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
    let rest = &segs[1..];
    let m = req.method.as_str();
    let ctx = Ctx::from_request(req);
    let nonempty = |s: &&str| !s.is_empty();
    match rest {
        ["images"] => match m {
            "GET" => list_images(state, req, &ctx),
            "POST" => create_image(state, req, &ctx, base),
            _ => Err(method_not_allowed("GET, POST")),
        },
        [images, id] if *images == "images" && nonempty(id) => match m {
            "GET" => show_image(state, &ctx, id),
            "PATCH" => patch_image(state, req, &ctx, id),
            "DELETE" => delete_image(state, &ctx, id),
            _ => Err(method_not_allowed("GET, PATCH, DELETE")),
        },
        [images, id, tags, tag]
            if *images == "images" && *tags == "tags" && nonempty(id) && nonempty(tag) =>
        {
            // Known difference: Glance decodes the URL as Latin-1, so a UTF-8
            // tag given in the URL comes back mis-decoded ("Ñ\u{82}ÐµÐ³" for
            // "тег"); the sandbox decodes it as UTF-8.
            match m {
                "PUT" => put_tag(state, &ctx, id, tag),
                "DELETE" => delete_tag(state, &ctx, id, tag),
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
                "POST" => image_action(state, &ctx, id, action),
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
                && matches!(*what, "file" | "stage" | "import" | "members" | "tasks") =>
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
            "The ims-patch sandbox does not implement {} {}; it serves image metadata only (images, tags, schemas).",
            req.method,
            req.raw_path()
        ),
    )
}

fn visible_index(state: &State, ctx: &Ctx, id: &str) -> Option<usize> {
    state
        .position(id)
        .filter(|&i| ctx.can_see(&state.images[i]))
}

/// The image whose tags a caller edits: visible and modifiable by them
/// (the tags API words its 404 differently from the image API).
fn tag_target(state: &State, ctx: &Ctx, id: &str) -> Result<usize, ApiError> {
    let i = visible_index(state, ctx, id)
        .ok_or_else(|| ApiError::explained(404, format!("Image {id} not found.")))?;
    ctx.modify_image(&state.images[i])?;
    Ok(i)
}

fn no_image(id: &str) -> ApiError {
    ApiError::explained(404, format!("No image found with ID {id}"))
}

fn show_image(state: &State, ctx: &Ctx, id: &str) -> Result<Response, ApiError> {
    let i = visible_index(state, ctx, id).ok_or_else(|| no_image(id))?;
    Ok(image_response(200, &state.images[i]))
}

fn patch_image(
    state: &mut State,
    req: &Request,
    ctx: &Ctx,
    id: &str,
) -> Result<Response, ApiError> {
    // Order as in Glance: the deserializer (content type, body, every op)
    // runs before the image is looked up and before anything is applied.
    let dialect = patch::dialect_for(req.get_header("Content-Type"))?;
    let body = patch::parse_body(req)?;
    let changes = patch::parse_changes(&body, dialect)?;
    let i = visible_index(state, ctx, id).ok_or_else(|| no_image(id))?;
    let now = state.now();
    let updated = patch::apply_changes(&state.images[i], &changes, ctx, &now)?;
    if !changes.is_empty() {
        state.images[i] = updated;
        state.dirty = true;
    }
    Ok(image_response(200, &state.images[i]))
}

fn delete_image(state: &mut State, ctx: &Ctx, id: &str) -> Result<Response, ApiError> {
    let i = visible_index(state, ctx, id)
        .ok_or_else(|| ApiError::explained(404, format!("Failed to find image {id} to delete")))?;
    let img = &state.images[i];
    if !(ctx.can_write && (ctx.is_admin || img.owner.as_deref() == Some(ctx.project.as_str()))) {
        return Err(forbidden_action("delete_image"));
    }
    if img.protected {
        return Err(ApiError::explained(
            403,
            format!("Image {id} is protected and cannot be deleted."),
        ));
    }
    state.images.remove(i);
    state.dirty = true;
    Ok(Response::empty(204))
}

fn put_tag(state: &mut State, ctx: &Ctx, id: &str, tag: &str) -> Result<Response, ApiError> {
    let probe = json!({ "tags": [tag] });
    if let Some(err) = schema::validate_image(&probe) {
        return Err(ApiError::explained(400, err.glance_message()));
    }
    let i = tag_target(state, ctx, id)?;
    let now = state.now();
    let img = &mut state.images[i];
    if !img.tags.iter().any(|t| t == tag) {
        let attempted = img.tags.len() + 1;
        if let Err(e) = patch::check_tag_quota(attempted) {
            return Err(ApiError::explained(
                413,
                format!("Image tag limit exceeded for image {id}: {}:", e.text()),
            ));
        }
        img.tags.push(tag.to_string());
    }
    img.updated_at = now;
    state.dirty = true;
    Ok(Response::empty(204))
}

fn delete_tag(state: &mut State, ctx: &Ctx, id: &str, tag: &str) -> Result<Response, ApiError> {
    let i = tag_target(state, ctx, id)?;
    let now = state.now();
    let img = &mut state.images[i];
    let Some(pos) = img.tags.iter().position(|t| t == tag) else {
        return Err(ApiError::bare(404));
    };
    img.tags.remove(pos);
    img.updated_at = now;
    state.dirty = true;
    Ok(Response::empty(204))
}

fn image_action(
    state: &mut State,
    ctx: &Ctx,
    id: &str,
    action: &str,
) -> Result<Response, ApiError> {
    let i = visible_index(state, ctx, id).ok_or_else(|| no_image(id))?;
    if !ctx.is_admin {
        return Err(forbidden_action(action));
    }
    let now = state.now();
    let img = &mut state.images[i];
    let (from, to) = if action == "deactivate" {
        ("active", "deactivated")
    } else {
        ("deactivated", "active")
    };
    if img.status == from {
        img.status = to.to_string();
    } else if img.status != to {
        return Err(ApiError::explained(
            403,
            format!("Not allowed to {action} image in status '{}'", img.status),
        ));
    }
    img.updated_at = now;
    state.dirty = true;
    Ok(Response::empty(204))
}

const CREATE_BASE_KEYS: &[&str] = &[
    "checksum",
    "created_at",
    "container_format",
    "disk_format",
    "id",
    "min_disk",
    "min_ram",
    "name",
    "size",
    "virtual_size",
    "status",
    "tags",
    "owner",
    "updated_at",
    "visibility",
    "protected",
    "os_hidden",
];

fn create_image(
    state: &mut State,
    req: &Request,
    ctx: &Ctx,
    base: &str,
) -> Result<Response, ApiError> {
    let body = patch::parse_body(req)?;
    // Known difference: Glance fails with 500 for a JSON array here.
    let Value::Object(body) = body else {
        return Err(ApiError::explained(
            400,
            "Request body must be a JSON object.",
        ));
    };
    for key in ["direct_url", "self", "file", "schema", "stores"] {
        if body.contains_key(key) {
            return Err(ApiError::explained(
                403,
                format!("Attribute '{key}' is read-only."),
            ));
        }
    }
    if let Some(err) = schema::validate_image(&Value::Object(body.clone())) {
        return Err(ApiError::explained(400, err.glance_message()));
    }
    let mut extra = serde_json::Map::new();
    for (k, v) in &body {
        if !CREATE_BASE_KEYS.contains(&k.as_str()) {
            extra.insert(k.clone(), v.clone());
        }
    }
    for key in extra.keys() {
        if key.chars().count() > 255 {
            return Err(ApiError::explained(
                400,
                "Custom property should not be greater than 255 characters.",
            ));
        }
        if ["location", "deleted", "deleted_at"].contains(&key.as_str())
            || key.starts_with("os_glance")
        {
            return Err(ApiError::detailed(
                403,
                format!("Attribute '{key}' is reserved."),
            ));
        }
    }
    if !ctx.can_write {
        return Err(forbidden_action("add_image"));
    }
    let tags: Vec<&str> = body
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    patch::check_tag_quota(tags.len())?;
    // Glance keeps os_hash_* in the extra properties here (and then shows
    // them overwritten by the real, null, attribute); the sandbox refuses
    // them like the other read-only attributes.
    for key in [
        "created_at",
        "updated_at",
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
    ] {
        if body.contains_key(key) {
            return Err(ApiError::explained(
                403,
                format!("Attribute '{key}' is read-only."),
            ));
        }
    }
    // ImageFactory._check_reserved on the extra properties.
    if extra.contains_key("locations") {
        return Err(ApiError::explained(
            403,
            "Attribute 'locations' is reserved.",
        ));
    }
    for key in ["min_disk", "min_ram"] {
        if let Some(v) = body.get(key) {
            if v.as_f64().is_some_and(|f| f < 0.0) {
                return Err(ApiError::explained(
                    400,
                    format!(
                        "Invalid value '{}' for parameter '{key}': Cannot be a negative value",
                        pyfmt::py_str(v)
                    ),
                ));
            }
        }
    }
    let id = match body.get("id").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let owner = match body.get("owner") {
        Some(v) => v.as_str().map(str::to_string),
        None => Some(ctx.project.clone()),
    };
    let now = state.now();
    let mut img = Image::new_queued(id.clone(), owner, &now);
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let int = |k: &str| {
        body.get(k)
            .and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_u64().map(|_| i64::MAX))
                    .or_else(|| v.as_f64().map(|f| f as i64))
            })
            .unwrap_or(0)
    };
    img.name = text("name");
    img.disk_format = text("disk_format");
    img.container_format = text("container_format");
    if let Some(v) = text("visibility") {
        img.visibility = v;
    }
    img.protected = body
        .get("protected")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    img.os_hidden = body
        .get("os_hidden")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    img.min_ram = int("min_ram");
    img.min_disk = int("min_disk");
    img.tags = dedup_tags(tags);
    for (k, v) in extra {
        img.properties.set(&k, v);
    }
    if img.properties.len() > patch::PROPERTY_QUOTA {
        return Err(patch::property_quota_error(img.properties.len()));
    }
    patch::check_db_values(&img)?;
    if img.owner.as_deref() == Some("") {
        img.owner = None;
    }
    if state.position(&id).is_some() {
        return Err(ApiError::explained(
            409,
            format!("Image ID {id} already exists!"),
        ));
    }
    let resp = image_response(201, &img)
        .with_header("Location", &format!("{base}/v2/images/{id}"))
        .with_header("OpenStack-image-import-methods", "glance-direct")
        .with_header("OpenStack-image-store-ids", STORE_ID);
    state.images.push(img);
    state.dirty = true;
    Ok(resp)
}

const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
];

fn sort_value(img: &Image, key: &str) -> (u8, String, i64) {
    // NULLs sort first in ascending order (sqlite).
    match key {
        "size" => img
            .size
            .map_or((0, String::new(), 0), |s| (1, String::new(), s)),
        other => match img
            .base_value(other)
            .or_else(|| (other == "id").then(|| json!(img.id)))
        {
            Some(Value::String(s)) => (1, s, 0),
            _ => (0, String::new(), 0),
        },
    }
}

fn compare(a: &Image, b: &Image, keys: &[(String, bool)]) -> Ordering {
    for (key, desc) in keys {
        let ord = sort_value(a, key).cmp(&sort_value(b, key));
        let ord = if *desc { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError::explained(400, msg)
}

fn list_images(state: &State, req: &Request, ctx: &Ctx) -> Result<Response, ApiError> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(req.raw_query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    // dict(request.params): first position, last value.
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in &pairs {
        match params.iter_mut().find(|(pk, _)| pk == k) {
            Some(slot) => slot.1 = v.clone(),
            None => params.push((k.clone(), v.clone())),
        }
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.as_str())
    };

    let limit = match get("limit") {
        None => 25,
        Some(l) => {
            let n: i64 = l
                .trim()
                .parse()
                .map_err(|_| bad_request("limit param must be an integer"))?;
            if n < 0 {
                return Err(bad_request("limit param must be positive"));
            }
            n.min(1000) as usize
        }
    };
    let mut sort: Vec<(String, bool)> = Vec::new();
    if let Some(spec) = get("sort") {
        if get("sort_key").is_some() || get("sort_dir").is_some() {
            return Err(bad_request("Old and new sorting syntax cannot be combined"));
        }
        for part in spec.trim().split(',') {
            let (key, dir) = part.split_once(':').unwrap_or((part, "desc"));
            sort.push((key.trim().to_string(), dir.trim() != "asc"));
            if !["asc", "desc"].contains(&dir.trim()) {
                return Err(bad_request(format!(
                    "Invalid sort direction: {}",
                    dir.trim()
                )));
            }
        }
    } else {
        let dirs: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "sort_dir")
            .map(|(_, v)| v.trim())
            .collect();
        for d in &dirs {
            if !["asc", "desc"].contains(d) {
                return Err(bad_request(format!("Invalid sort direction: {d}")));
            }
        }
        let keys: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "sort_key")
            .map(|(_, v)| v.trim())
            .collect();
        if dirs.len() > 1 && dirs.len() != keys.len() {
            return Err(bad_request(
                "Number of sort dirs does not match the number of sort keys",
            ));
        }
        for (i, k) in keys.iter().enumerate() {
            let d = dirs.get(i).or(dirs.first()).copied().unwrap_or("desc");
            sort.push((k.to_string(), d == "desc"));
        }
    }
    for (key, _) in &sort {
        if !SORT_KEYS.contains(&key.as_str()) {
            return Err(bad_request(format!(
                "Invalid sort key: {key}. It must be one of the following: {}.",
                SORT_KEYS.join(", ")
            )));
        }
    }
    if sort.is_empty() {
        sort.push(("created_at".into(), true));
    }
    if !sort.iter().any(|(k, _)| k == "id") {
        sort.push(("id".into(), true));
    }

    let visibility = get("visibility");
    if let Some(v) = visibility {
        if !["community", "public", "private", "shared", "all"].contains(&v) {
            return Err(bad_request(format!("Invalid visibility value: {v}")));
        }
    }
    if get("changes-since").is_some() {
        return Err(bad_request(
            "The \"changes-since\" filter is no longer available on v2.",
        ));
    }
    let os_hidden = get("os_hidden").unwrap_or("false").to_lowercase();
    if !["true", "false"].contains(&os_hidden.as_str()) {
        return Err(bad_request(format!(
            "Invalid value '{os_hidden}' for 'os_hidden' filter. Valid values are 'true' or 'false'."
        )));
    }
    let protected = get("protected");
    if let Some(p) = protected {
        if !["true", "false"].contains(&p) {
            return Err(bad_request(format!(
                "Invalid value '{p}' for 'protected' filter. Valid values are 'true' or 'false'."
            )));
        }
    }
    let tags: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| v.trim())
        .collect();
    const HANDLED: &[&str] = &[
        "limit",
        "marker",
        "sort",
        "sort_key",
        "sort_dir",
        "visibility",
        "os_hidden",
        "protected",
        "tag",
        "member_status",
        "name",
        "status",
        "owner",
        "id",
        "container_format",
        "disk_format",
    ];

    let matches = |img: &Image| -> bool {
        if !ctx.can_see(img) {
            return false;
        }
        match visibility {
            Some("all") => {}
            Some(v) => {
                if img.visibility != v {
                    return false;
                }
            }
            None => {
                if img.visibility == "community"
                    && img.owner.as_deref() != Some(ctx.project.as_str())
                {
                    return false;
                }
            }
        }
        if img.os_hidden != (os_hidden == "true") {
            return false;
        }
        if let Some(p) = protected {
            if img.protected != (p == "true") {
                return false;
            }
        }
        if !tags.iter().all(|t| img.tags.iter().any(|x| x == t)) {
            return false;
        }
        for key in ["name", "status", "owner", "container_format", "disk_format"] {
            if let Some(want) = get(key) {
                if img.base_value(key).as_ref().and_then(Value::as_str) != Some(want) {
                    return false;
                }
            }
        }
        if let Some(want) = get("id") {
            if img.id != want {
                return false;
            }
        }
        for (k, v) in &params {
            if !HANDLED.contains(&k.as_str())
                && img.properties.get(k).and_then(Value::as_str) != Some(v.as_str())
            {
                return false;
            }
        }
        true
    };

    let mut found: Vec<&Image> = state.images.iter().filter(|i| matches(i)).collect();
    found.sort_by(|a, b| compare(a, b, &sort));
    if let Some(marker) = get("marker") {
        let m = state
            .get(marker)
            .filter(|i| ctx.can_see(i))
            .ok_or_else(|| bad_request(format!("No image found with ID {marker}")))?;
        found.retain(|img| compare(img, m, &sort) == Ordering::Greater);
    }
    let page: Vec<&Image> = found.into_iter().take(limit).collect();

    let mut without_marker = params.clone();
    without_marker.retain(|(k, _)| k != "marker");
    let query = urlencode(&without_marker);
    let first = if query.is_empty() {
        "/v2/images".to_string()
    } else {
        format!("/v2/images?{query}")
    };
    let mut body = serde_json::Map::new();
    body.insert(
        "images".into(),
        Value::Array(page.iter().map(|i| Value::Object(i.view())).collect()),
    );
    body.insert("first".into(), Value::String(first));
    body.insert("schema".into(), Value::String("/v2/schemas/images".into()));
    if !page.is_empty() && page.len() == limit {
        let mut next = without_marker;
        next.push(("marker".into(), page[page.len() - 1].id.clone()));
        body.insert(
            "next".into(),
            Value::String(format!("/v2/images?{}", urlencode(&next))),
        );
    }
    Ok(Response::json(200, &Value::Object(body), false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::PATCH_V21;

    const SEED: &str = "33ad552d-1149-471c-8190-ff6776174a00";
    const QUEUED: &str = "5d8f2c4e-1f7a-4b9e-9c3d-2a6b8e4f0c11";

    fn state() -> State {
        let mut s = State::seeded("http://127.0.0.1:9292");
        s.fixed_now = Some("2030-01-01T00:00:00Z".into());
        s
    }

    fn patch(s: &mut State, id: &str, body: &str) -> Response {
        let req = Request::new("PATCH", &format!("/v2/images/{id}"))
            .header("Content-Type", PATCH_V21)
            .header("Accept", "application/json")
            .body(body.as_bytes().to_vec());
        handle(s, &req)
    }

    fn get(s: &mut State, url: &str) -> Response {
        handle(
            s,
            &Request::new("GET", url).header("Accept", "application/json"),
        )
    }

    fn message(r: &Response) -> String {
        r.body_json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn patch_returns_the_same_document_as_get() {
        let mut s = state();
        let r = patch(
            &mut s,
            SEED,
            r#"[{"op": "replace", "path": "/name", "value": "test01"}]"#,
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.get_header("Content-Type"), Some("application/json"));
        assert!(r
            .get_header("x-openstack-request-id")
            .unwrap()
            .starts_with("req-"));
        let g = get(&mut s, &format!("/v2/images/{SEED}"));
        assert_eq!(r.body, g.body);
        assert_eq!(g.body_json()["name"], "test01");
        assert_eq!(g.body_json()["updated_at"], "2030-01-01T00:00:00Z");
        assert!(s.dirty);
        // Python json.dumps separators
        assert!(g
            .body_text()
            .starts_with(r#"{"__os_bit": "64", "__os_version": "#));
    }

    #[test]
    fn empty_patch_does_not_touch_updated_at() {
        let mut s = state();
        let r = patch(&mut s, SEED, "[]");
        assert_eq!(r.status, 200);
        assert_eq!(r.body_json()["updated_at"], "2015-12-08T02:30:49Z");
        assert!(!s.dirty);
    }

    #[test]
    fn failed_patch_changes_nothing() {
        let mut s = state();
        let before = s.images.clone();
        let r = patch(
            &mut s,
            SEED,
            r#"[{"op": "add", "path": "/c", "value": "1"}, {"op": "remove", "path": "/missing"}, {"op": "replace", "path": "/name", "value": "x"}]"#,
        );
        assert_eq!(r.status, 409);
        assert_eq!(
            message(&r),
            "There was a conflict when trying to complete your request.<br /><br />\nProperty missing does not exist.\n\n"
        );
        assert_eq!(s.images, before);
        assert!(!s.dirty);
    }

    #[test]
    fn order_of_checks() {
        let mut s = state();
        // bad body beats unknown image
        let r = patch(&mut s, "nope", "{");
        assert_eq!(r.status, 400);
        // unknown image after a valid body
        let r = patch(&mut s, "nope", "[]");
        assert_eq!(
            (r.status, message(&r)),
            (404, "No image found with ID nope<br /><br />\n\n\n".into())
        );
        // 415 before anything
        let req = Request::new("PATCH", "/v2/images/nope")
            .header("Content-Type", "application/json")
            .body("x");
        let r = handle(&mut s, &req);
        assert_eq!(r.status, 415);
        assert_eq!(
            r.get_header("Accept-Patch"),
            Some("application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch")
        );
        assert_eq!(
            r.body_text(),
            "415 Unsupported Media Type\n\nThe request media type application/json is not supported by this server. \n\n Image PATCH expects Content-Type one of: application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch"
        );
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
        assert_eq!(get(&mut s, &format!("/v2/images/{SEED}/file")).status, 501);
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

    #[test]
    fn list_filters_and_pagination() {
        let mut s = state();
        let r = get(&mut s, "/v2/images");
        let v = r.body_json();
        assert_eq!(v["images"].as_array().unwrap().len(), 4);
        assert_eq!(v["first"], "/v2/images");
        assert_eq!(v["schema"], "/v2/schemas/images");
        assert!(v.get("next").is_none());
        // newest first
        assert_eq!(v["images"][0]["name"], "debian-12");
        let v = get(&mut s, "/v2/images?name=ims_test").body_json();
        assert_eq!(v["images"].as_array().unwrap().len(), 1);
        assert_eq!(v["images"][0]["id"], SEED);
        assert_eq!(v["first"], "/v2/images?name=ims_test");
        let v = get(&mut s, "/v2/images?name=nothing").body_json();
        assert_eq!(v["images"], json!([]));
        let v = get(&mut s, "/v2/images?limit=2").body_json();
        assert_eq!(v["images"].as_array().unwrap().len(), 2);
        let next = v["next"].as_str().unwrap().to_string();
        assert!(next.starts_with("/v2/images?limit=2&marker="), "{next}");
        let v2 = get(&mut s, &next).body_json();
        assert_eq!(v2["images"].as_array().unwrap().len(), 2);
        assert_ne!(v2["images"][0]["id"], v["images"][1]["id"]);
        let v = get(&mut s, "/v2/images?tag=eol").body_json();
        assert_eq!(v["images"][0]["name"], "centos-7-legacy");
        let v = get(&mut s, "/v2/images?__platform=Windows").body_json();
        assert_eq!(v["images"][0]["name"], "windows-server-2022");
        assert_eq!(get(&mut s, "/v2/images?limit=x").status, 400);
        assert_eq!(get(&mut s, "/v2/images?marker=nope").status, 400);
    }

    #[test]
    fn create_show_delete() {
        let mut s = state();
        let req = Request::new("POST", "/v2/images")
            .header("Content-Type", "application/json")
            .header("Host", "127.0.0.1:9292")
            .body(r#"{"name": "ims_test", "container_format": "bare", "disk_format": "raw", "foo": "bar"}"#);
        let r = handle(&mut s, &req);
        assert_eq!(r.status, 201);
        let v = r.body_json();
        let id = v["id"].as_str().unwrap().to_string();
        assert_eq!(
            r.get_header("Location"),
            Some(format!("http://127.0.0.1:9292/v2/images/{id}").as_str())
        );
        assert_eq!(
            r.get_header("OpenStack-image-import-methods"),
            Some("glance-direct")
        );
        assert_eq!(v["status"], "queued");
        assert_eq!(v["visibility"], "shared");
        assert_eq!(v["owner"], DEFAULT_PROJECT);
        assert_eq!(v["size"], Value::Null);
        assert_eq!(v["tags"], json!([]));
        assert_eq!(v["foo"], "bar");
        assert!(v.get("stores").is_none());
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "foo");
        assert_eq!(get(&mut s, &format!("/v2/images/{id}")).body, r.body);
        // id given, then duplicated
        let body = r#"{"id": "11111111-2222-3333-4444-555555555555", "name": "x"}"#;
        let req = Request::new("POST", "/v2/images").body(body);
        assert_eq!(handle(&mut s, &req).status, 201);
        assert_eq!(handle(&mut s, &req).status, 409);
        let req = Request::new("POST", "/v2/images").body(r#"{"name": 5}"#);
        assert_eq!(handle(&mut s, &req).status, 400);
        let req = Request::new("POST", "/v2/images").body(r#"{"status": "active"}"#);
        assert_eq!(handle(&mut s, &req).status, 403);
        let post = |s: &mut State, body: &str| {
            let r = handle(
                s,
                &Request::new("POST", "/v2/images")
                    .header("Accept", "application/json")
                    .body(body.to_string()),
            );
            (r.status, message(&r))
        };
        assert_eq!(
            post(&mut s, r#"{"min_ram": -1}"#),
            (400, "Invalid value '-1' for parameter 'min_ram': Cannot be a negative value<br /><br />\n\n\n".into())
        );
        assert_eq!(post(&mut s, r#"{"deleted": "x"}"#).0, 403);
        assert_eq!(post(&mut s, r#"{"stores": "x"}"#).0, 403);
        assert_eq!(post(&mut s, r#"{"locations": []}"#).0, 403);
        assert_eq!(post(&mut s, r#"{"n": "😀"}"#).0, 400);
        assert_eq!(post(&mut s, r#"[]"#).0, 400);
        assert_eq!(
            post(&mut s, "").1,
            "Body expected in request.<br /><br />\n\n\n"
        );
        let tags: Vec<String> = (0..129).map(|i| format!("t{i}")).collect();
        assert_eq!(post(&mut s, &json!({"tags": tags}).to_string()).0, 413);
        // delete
        let del = |s: &mut State, id: &str| {
            handle(
                s,
                &Request::new("DELETE", &format!("/v2/images/{id}"))
                    .header("Accept", "application/json"),
            )
        };
        assert_eq!(del(&mut s, &id).status, 204);
        let r = get(&mut s, &format!("/v2/images/{id}"));
        assert_eq!(
            (r.status, message(&r)),
            (
                404,
                format!("No image found with ID {id}<br /><br />\n\n\n")
            )
        );
        let r = del(&mut s, "c7e3b5a2-6d14-4e8f-a0b9-5f2c8d7e1a36");
        assert_eq!(
            (r.status, message(&r)),
            (403, "Image c7e3b5a2-6d14-4e8f-a0b9-5f2c8d7e1a36 is protected and cannot be deleted.<br /><br />\n\n\n".into())
        );
        assert_eq!(del(&mut s, "nope").status, 404);
    }

    #[test]
    fn tags_api() {
        let mut s = state();
        let put = |s: &mut State, id: &str, tag: &str| {
            handle(
                s,
                &Request::new("PUT", &format!("/v2/images/{id}/tags/{tag}"))
                    .header("Accept", "application/json"),
            )
        };
        assert_eq!(put(&mut s, QUEUED, "alpha").status, 204);
        assert_eq!(put(&mut s, QUEUED, "alpha").status, 204);
        assert_eq!(put(&mut s, QUEUED, "a%20b").status, 204);
        assert_eq!(put(&mut s, QUEUED, "%D1%82%D0%B5%D0%B3").status, 204);
        assert_eq!(put(&mut s, QUEUED, "a%2Fb").status, 404);
        assert_eq!(s.get(QUEUED).unwrap().tags, vec!["alpha", "a b", "тег"]);
        assert_eq!(put(&mut s, QUEUED, &"t".repeat(255)).status, 204);
        let r = put(&mut s, QUEUED, &"t".repeat(256));
        assert_eq!(r.status, 400);
        assert!(message(&r).starts_with("Provided object does not match schema 'image': 'tttt"));
        let r = put(&mut s, "11111111-2222-3333-4444-555555555555", "x");
        assert_eq!(
            message(&r),
            "Image 11111111-2222-3333-4444-555555555555 not found.<br /><br />\n\n\n"
        );
        let del = |s: &mut State, tag: &str| {
            handle(
                s,
                &Request::new("DELETE", &format!("/v2/images/{QUEUED}/tags/{tag}"))
                    .header("Accept", "application/json"),
            )
        };
        assert_eq!(del(&mut s, "alpha").status, 204);
        let r = del(&mut s, "nope");
        assert_eq!(
            (r.status, message(&r)),
            (
                404,
                "The resource could not be found.<br /><br />\n\n\n".into()
            )
        );
        for i in 0..125 {
            assert_eq!(put(&mut s, QUEUED, &format!("q{i}")).status, 204);
        }
        assert_eq!(s.get(QUEUED).unwrap().tags.len(), 128);
        let r = put(&mut s, QUEUED, "one-too-many");
        assert_eq!(r.status, 413);
        assert_eq!(
            message(&r),
            format!("Image tag limit exceeded for image {QUEUED}: The limit has been exceeded on the number of allowed image tags. Attempted: 129, Maximum: 128:<br /><br />\n\n\n")
        );
    }

    #[test]
    fn rbac_headers() {
        let mut s = state();
        let member = |req: Request| {
            req.header("X-Roles", "reader,member")
                .header("Accept", "application/json")
        };
        let body =
            |v: &str| format!(r#"[{{"op": "replace", "path": "/visibility", "value": "{v}"}}]"#);
        let mk = |b: String| {
            Request::new("PATCH", &format!("/v2/images/{QUEUED}"))
                .header("Content-Type", PATCH_V21)
                .body(b)
        };
        let r = handle(&mut s, &member(mk(body("public"))));
        assert_eq!(
            (r.status, message(&r)),
            (
                403,
                "You are not authorized to complete publicize_image action.<br /><br />\n\n\n"
                    .into()
            )
        );
        assert_eq!(handle(&mut s, &member(mk(body("community")))).status, 200);
        let r = handle(
            &mut s,
            &member(mk(
                r#"[{"op": "replace", "path": "/owner", "value": "x"}]"#.into()
            )),
        );
        assert_eq!((r.status, message(&r)), (403, "Access was denied to this resource.<br /><br />\nOwner can't be updated by non admin.\n\n".into()));
        let r = handle(&mut s, &mk(body("private")).header("X-Roles", "reader"));
        assert_eq!(r.status, 403);
        // another project's private image is invisible
        let other =
            Request::new("GET", &format!("/v2/images/{SEED}")).header("X-Roles", "reader,member");
        assert_eq!(handle(&mut s, &other).status, 404);
    }
}

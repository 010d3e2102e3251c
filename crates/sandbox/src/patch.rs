//! `PATCH /v2/images/{id}`: content types, body parsing in both JSON-patch dialects, JSON-pointer rules, per-op validation, then all-or-nothing application with Glance's save-time checks (quotas, 4-byte UTF-8, integer range).

use serde_json::Value;

use super::context::Ctx;
use super::http::{ApiError, Request};
use super::image::{dedup_tags, is_base_attribute, Image};
use super::pyfmt;
use super::schema;

/// Content type of the v2.0 (JSON-schema draft 4 style) patch dialect.
pub const PATCH_V20: &str = "application/openstack-images-v2.0-json-patch";
/// Content type of the v2.1 (RFC 6902 style) patch dialect.
pub const PATCH_V21: &str = "application/openstack-images-v2.1-json-patch";

/// `image_property_quota` and `image_tag_quota` of a default Glance.
pub const PROPERTY_QUOTA: usize = 128;
pub const TAG_QUOTA: usize = 128;
/// Glance's database integer limit (`2**31 - 1`).
pub const MAX_DB_INT: i64 = 2_147_483_647;

/// Which of the two body dialects a PATCH uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `application/openstack-images-v2.0-json-patch`: `{"replace": "/name", "value": ...}`.
    V20,
    /// `application/openstack-images-v2.1-json-patch`: `{"op": "replace", "path": "/name", "value": ...}`.
    V21,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Replace => "replace",
        }
    }

    fn parse(s: &str) -> Option<Op> {
        match s {
            "add" => Some(Op::Add),
            "remove" => Some(Op::Remove),
            "replace" => Some(Op::Replace),
            _ => None,
        }
    }
}

/// One validated operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub op: Op,
    /// Decoded pointer parts (one, or two for `/locations/N`).
    pub path: Vec<String>,
    /// Present for add/replace.
    pub value: Option<Value>,
    pub dialect: Dialect,
}

const READ_ONLY: &[&str] = &[
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "direct_url",
    "self",
    "file",
    "schema",
    "id",
    "os_hash_algo",
    "os_hash_value",
];
const RESERVED: &[&str] = &["location", "deleted", "deleted_at"];
const RESERVED_NAMESPACE: &str = "os_glance";

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError::explained(400, msg)
}

/// The dialect for a `Content-Type`, or Glance's 415. Like webob's
/// `request.content_type`, only what precedes the first `;` is compared,
/// case-sensitively and without trimming.
pub fn dialect_for(content_type: Option<&str>) -> Result<Dialect, ApiError> {
    let media = content_type.map(|ct| ct.split(';').next().unwrap_or(""));
    match media {
        Some(PATCH_V20) => Ok(Dialect::V20),
        Some(PATCH_V21) => Ok(Dialect::V21),
        _ => Err(ApiError::detailed(
            415,
            format!("Image PATCH expects Content-Type one of: {PATCH_V20}, {PATCH_V21}"),
        )
        .with_header("Accept-Patch", &format!("{PATCH_V20}, {PATCH_V21}"))),
    }
}

/// Glance's `JSONRequestDeserializer.default` + `_get_request_body`.
pub fn parse_body(req: &Request) -> Result<Value, ApiError> {
    if !req.has_body() {
        return Err(bad_request("Body expected in request."));
    }
    let value: Value = serde_json::from_slice(&req.body)
        .map_err(|_| bad_request("Malformed JSON in request body."))?;
    if !(value.is_array() || value.is_object()) {
        return Err(bad_request("Unexpected body type. Expected list/dict."));
    }
    Ok(value)
}

fn has_adjacent_slashes(s: &str) -> bool {
    // re.search(r'/\s*?/', s)
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '/' {
            let rest = chars[i + 1..].iter().skip_while(|c| pyfmt::is_space(**c));
            if rest.clone().next() == Some(&'/') {
                return true;
            }
        }
    }
    false
}

fn has_bad_tilde(s: &str) -> bool {
    // re.search('~[^01]', s) or s.endswith('~')
    let chars: Vec<char> = s.chars().collect();
    chars
        .iter()
        .enumerate()
        .any(|(i, &c)| c == '~' && !matches!(chars.get(i + 1), Some('0') | Some('1')))
}

/// Glance's `_validate_json_pointer` + `_decode_json_pointer`: checks the
/// pointer, then splits it and unescapes `~1`/`~0`, stripping each part.
pub fn decode_pointer(pointer: &str) -> Result<Vec<String>, ApiError> {
    if !pointer.starts_with('/') {
        return Err(bad_request(format!(
            "Pointer `{pointer}` does not start with \"/\"."
        )));
    }
    let tail = &pointer[1..];
    if has_adjacent_slashes(tail) {
        return Err(bad_request(format!(
            "Pointer `{pointer}` contains adjacent \"/\"."
        )));
    }
    if pointer.len() > 1 && pointer.ends_with('/') {
        return Err(bad_request(format!("Pointer `{pointer}` end with \"/\".")));
    }
    if pyfmt::strip(tail) == "/" {
        return Err(bad_request(format!(
            "Pointer `{pointer}` does not contains valid token."
        )));
    }
    if has_bad_tilde(pointer) {
        return Err(bad_request(format!(
            "Pointer `{pointer}` contains \"~\" not part of a recognized escape sequence."
        )));
    }
    Ok(pointer
        .trim_start_matches('/')
        .split('/')
        .map(|part| pyfmt::strip(&part.replace("~1", "/").replace("~0", "~")).to_string())
        .collect())
}

const OPS_LIST: &str = "add, remove, replace";

fn parse_op_and_path(
    raw: &serde_json::Map<String, Value>,
    dialect: Dialect,
) -> Result<(Op, &Value), ApiError> {
    match dialect {
        Dialect::V21 => {
            let op = match raw.get("op") {
                None | Some(Value::Null) => {
                    return Err(bad_request(format!(
                        "Unable to find `op` in JSON Schema change. It must be one of the following: {OPS_LIST}."
                    )))
                }
                Some(v) => v,
            };
            let op = op.as_str().and_then(Op::parse).ok_or_else(|| {
                bad_request(format!(
                    "Invalid operation: `{}`. It must be one of the following: {OPS_LIST}.",
                    pyfmt::py_str(op)
                ))
            })?;
            let path = raw
                .get("path")
                .ok_or_else(|| bad_request("Unable to find 'path' in JSON Schema change"))?;
            Ok((op, path))
        }
        Dialect::V20 => {
            let mut found: Option<Op> = None;
            for op in [Op::Add, Op::Remove, Op::Replace] {
                if raw.contains_key(op.name()) {
                    if found.is_some() {
                        return Err(bad_request(
                            "Operation objects must contain only one member named \"add\", \"remove\", or \"replace\".",
                        ));
                    }
                    found = Some(op);
                }
            }
            let op = found.ok_or_else(|| {
                bad_request(
                    "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".",
                )
            })?;
            Ok((op, &raw[op.name()]))
        }
    }
}

/// Glance's `_validate_change`: read-only/reserved attributes, then the
/// schema type of the new value.
fn validate_change(change: &Change) -> Result<(), ApiError> {
    let root = change.path[0].as_str();
    if READ_ONLY.contains(&root) {
        return Err(ApiError::explained(
            403,
            format!("Attribute '{root}' is read-only."),
        ));
    }
    if RESERVED.contains(&root) || root.starts_with(RESERVED_NAMESPACE) {
        return Err(ApiError::explained(
            403,
            format!("Attribute '{root}' is reserved."),
        ));
    }
    let Some(value) = &change.value else {
        return Ok(());
    };
    let partial = if change.path.len() == 1 {
        Some(value.clone())
    } else if schema::property_schema(root).and_then(|s| s.get("type"))
        == Some(&Value::from("array"))
    {
        Some(Value::Array(vec![value.clone()]))
    } else {
        None
    };
    if let Some(v) = partial {
        let mut obj = serde_json::Map::new();
        obj.insert(root.to_string(), v);
        if let Some(err) = schema::validate_image(&Value::Object(obj)) {
            return Err(bad_request(err.glance_message()));
        }
    }
    Ok(())
}

/// Glance's `RequestDeserializer.update` after the content-type check: every
/// operation is checked (syntax, pointer, read-only/reserved, schema) before
/// anything is looked up or applied.
pub fn parse_changes(body: &Value, dialect: Dialect) -> Result<Vec<Change>, ApiError> {
    let Value::Array(items) = body else {
        return Err(bad_request(
            "Request body must be a JSON array of operation objects.",
        ));
    };
    let mut changes = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(raw) = item else {
            return Err(bad_request("Operations must be JSON objects."));
        };
        let (op, path) = parse_op_and_path(raw, dialect)?;
        // Known difference: Glance answers 500 for a path that is not a
        // string (it calls `.startswith` on it); the sandbox says 400.
        let Value::String(pointer) = path else {
            return Err(bad_request(format!(
                "Pointer `{}` is not a string.",
                pyfmt::py_str(path)
            )));
        };
        let parts = decode_pointer(pointer)?;
        let limit = match (parts[0].as_str(), op) {
            ("locations", Op::Add | Op::Remove) => 2,
            _ => 1,
        };
        if parts.len() != limit {
            return Err(bad_request(format!(
                "Invalid JSON pointer for this resource: '/{}'",
                parts.join("/")
            )));
        }
        // Known difference: for `/` (or `/ `) Glance creates a property whose
        // name is the empty string; the sandbox refuses the pointer.
        if parts[0].is_empty() {
            return Err(bad_request(format!(
                "Pointer `{pointer}` does not contain a valid key."
            )));
        }
        let value = if op == Op::Remove {
            None
        } else {
            Some(raw.get("value").cloned().ok_or_else(|| {
                bad_request(format!(
                    "Operation \"{}\" requires a member named \"value\".",
                    op.name()
                ))
            })?)
        };
        let change = Change {
            op,
            path: parts,
            value,
            dialect,
        };
        validate_change(&change)?;
        changes.push(change);
    }
    Ok(changes)
}

/// Python truthiness of a JSON value.
fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// An integer the schema already accepted, saturated into `i64` (anything
/// that large fails the database range check anyway).
fn as_int(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
        _ => 0,
    }
}

fn opt_string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// `setattr(image, name, value)` on Glance's domain image, with its setters'
/// checks (negative sizes, formats only while queued, the tag quota).
fn set_base(img: &mut Image, name: &str, value: &Value) -> Result<(), ApiError> {
    match name {
        "name" => img.name = opt_string(value),
        "owner" => img.owner = opt_string(value),
        "visibility" => img.visibility = value.as_str().unwrap_or("shared").to_string(),
        "protected" => img.protected = value.as_bool().unwrap_or(false),
        "os_hidden" => img.os_hidden = value.as_bool().unwrap_or(false),
        "min_ram" | "min_disk" => {
            let n = as_int(value);
            if n < 0 {
                return Err(bad_request(format!(
                    "Invalid value '{}' for parameter '{name}': Cannot be a negative value",
                    pyfmt::py_str(value)
                )));
            }
            if name == "min_ram" {
                img.min_ram = n;
            } else {
                img.min_disk = n;
            }
        }
        "disk_format" | "container_format" => {
            if img.status != "queued" && img.status != "importing" {
                return Err(ApiError::explained(
                    403,
                    format!("Attribute {name} can be only replaced for a queued image."),
                ));
            }
            if name == "disk_format" {
                img.disk_format = opt_string(value);
            } else {
                img.container_format = opt_string(value);
            }
        }
        "tags" => {
            let tags: Vec<&str> = value
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            check_tag_quota(tags.len())?;
            img.tags = dedup_tags(tags);
        }
        other => {
            return Err(ApiError::explained(
                403,
                format!("Attribute '{other}' is read-only."),
            ))
        }
    }
    Ok(())
}

/// `_enforce_image_tag_quota` (counted before duplicates are removed).
pub fn check_tag_quota(attempted: usize) -> Result<(), ApiError> {
    if attempted > TAG_QUOTA {
        return Err(ApiError::explained(
            413,
            format!(
                "The limit has been exceeded on the number of allowed image tags. Attempted: {attempted}, Maximum: {TAG_QUOTA}"
            ),
        ));
    }
    Ok(())
}

/// The image-property quota message.
pub fn property_quota_error(attempted: usize) -> ApiError {
    ApiError::explained(
        413,
        format!(
            "The limit has been exceeded on the number of allowed image properties. Attempted: {attempted}, Maximum: {PROPERTY_QUOTA}"
        ),
    )
}

fn apply_one(img: &mut Image, change: &Change, ctx: &Ctx) -> Result<(), ApiError> {
    let root = change.path[0].as_str();
    match change.op {
        Op::Replace => {
            let value = change.value.as_ref().unwrap_or(&Value::Null);
            if root == "locations" {
                if is_falsy(value) {
                    return Err(ApiError::detailed(
                        403,
                        "Cannot set locations to empty list.",
                    ));
                }
                ctx.modify_image(img)?;
                return Err(ApiError::explained(
                    403,
                    "It's not allowed to update locations if locations are invisible.",
                ));
            }
            if root == "owner" && !ctx.is_admin {
                return Err(ApiError::detailed(
                    403,
                    "Owner can't be updated by non admin.",
                ));
            }
            ctx.update_property(img, root, Some(value))?;
            if is_base_attribute(root) {
                set_base(img, root, value)
            } else if img.properties.contains(root) {
                img.properties.set(root, value.clone());
                Ok(())
            } else {
                Err(ApiError::detailed(
                    409,
                    format!("Property {root} does not exist."),
                ))
            }
        }
        Op::Add => {
            let value = change.value.as_ref().unwrap_or(&Value::Null);
            if root == "locations" {
                ctx.modify_image(img)?;
                return Err(ApiError::explained(
                    403,
                    "It's not allowed to add locations if locations are invisible.",
                ));
            }
            ctx.update_property(img, root, Some(value))?;
            let exists = is_base_attribute(root) || img.properties.contains(root);
            if exists && change.dialect == Dialect::V20 {
                return Err(ApiError::detailed(
                    409,
                    format!("Property {root} already present."),
                ));
            }
            if is_base_attribute(root) {
                set_base(img, root, value)
            } else {
                img.properties.set(root, value.clone());
                Ok(())
            }
        }
        Op::Remove => {
            if root == "locations" {
                ctx.modify_image(img)?;
                return Err(ApiError::explained(
                    403,
                    "It's not allowed to remove locations if locations are invisible.",
                ));
            }
            ctx.update_property(img, root, None)?;
            if is_base_attribute(root) {
                Err(ApiError::detailed(
                    403,
                    format!("Property {root} may not be removed."),
                ))
            } else if img.properties.remove(root).is_some() {
                Ok(())
            } else {
                Err(ApiError::detailed(
                    409,
                    format!("Property {root} does not exist."),
                ))
            }
        }
    }
}

fn has_4byte(s: &str) -> bool {
    s.chars().any(|c| c as u32 >= 0x10000)
}

/// The database layer's checks, in Glance's order: `no_4byte_params` over
/// the saved values (name, owner, then each property's key and value), then
/// `_validate_db_int(min_disk, min_ram)`.
pub fn check_db_values(img: &Image) -> Result<(), ApiError> {
    for (field, value) in [("name", &img.name), ("owner", &img.owner)] {
        if value.as_deref().is_some_and(has_4byte) {
            return Err(bad_request(format!(
                "{} can't contain 4 byte unicode characters.",
                pyfmt::title(field)
            )));
        }
    }
    for (key, value) in img.properties.iter() {
        if has_4byte(key) {
            return Err(bad_request("Property names can't contain 4 byte unicode."));
        }
        if value.as_str().is_some_and(has_4byte) {
            return Err(bad_request(format!(
                "{} can't contain 4 byte unicode characters.",
                pyfmt::title(key)
            )));
        }
    }
    for (param, value) in [("min_disk", img.min_disk), ("min_ram", img.min_ram)] {
        if value > MAX_DB_INT {
            return Err(bad_request(format!(
                "'{param}' value out of range, must not exceed {MAX_DB_INT}."
            )));
        }
    }
    Ok(())
}

/// Glance's `ImagesController.update` after the image was found: applies
/// the changes in order to a copy and, when there was at least one change,
/// runs the save-time checks (property quota when properties were added,
/// then the database checks) and refreshes `updated_at`. Any error leaves
/// `image` untouched: the caller commits the returned copy or nothing.
pub fn apply_changes(
    image: &Image,
    changes: &[Change],
    ctx: &Ctx,
    now: &str,
) -> Result<Image, ApiError> {
    let mut img = image.clone();
    for change in changes {
        apply_one(&mut img, change, ctx)?;
    }
    if changes.is_empty() {
        return Ok(img);
    }
    let added = img.properties.keys().any(|k| !image.properties.contains(k));
    if added && img.properties.len() > PROPERTY_QUOTA {
        return Err(property_quota_error(img.properties.len()));
    }
    check_db_values(&img)?;
    // The database stores an empty owner as NULL.
    if img.owner.as_deref() == Some("") {
        img.owner = None;
    }
    img.updated_at = now.to_string();
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::seed_images;
    use serde_json::json;

    fn msg(e: ApiError) -> (u16, String) {
        (e.status, e.text())
    }

    fn parse21(v: Value) -> Result<Vec<Change>, (u16, String)> {
        parse_changes(&v, Dialect::V21).map_err(msg)
    }

    fn parse20(v: Value) -> Result<Vec<Change>, (u16, String)> {
        parse_changes(&v, Dialect::V20).map_err(msg)
    }

    fn queued() -> Image {
        seed_images()[1].clone()
    }

    fn active() -> Image {
        seed_images()[0].clone()
    }

    fn run(img: &Image, v: Value, d: Dialect) -> Result<Image, (u16, String)> {
        let changes = parse_changes(&v, d).map_err(msg)?;
        apply_changes(img, &changes, &Ctx::admin(), "2030-01-01T00:00:00Z").map_err(msg)
    }

    #[test]
    fn content_types() {
        assert_eq!(dialect_for(Some(PATCH_V21)).unwrap(), Dialect::V21);
        assert_eq!(dialect_for(Some(PATCH_V20)).unwrap(), Dialect::V20);
        assert_eq!(
            dialect_for(Some(
                "application/openstack-images-v2.1-json-patch; charset=UTF-8"
            ))
            .unwrap(),
            Dialect::V21
        );
        for bad in [
            Some("application/json"),
            Some("application/json-patch+json"),
            Some("APPLICATION/OPENSTACK-IMAGES-V2.1-JSON-PATCH"),
            Some("application/openstack-images-v2.2-json-patch"),
            Some("application/openstack-images-v2.1-json-patch ; charset=UTF-8"),
            None,
        ] {
            let e = dialect_for(bad).unwrap_err();
            assert_eq!(e.status, 415);
            assert_eq!(
                e.headers,
                vec![(
                    "Accept-Patch".to_string(),
                    "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch".to_string()
                )]
            );
        }
    }

    #[test]
    fn body_errors() {
        let req = |b: &str| Request::new("PATCH", "/").body(b.as_bytes().to_vec());
        let text = |b: &str| parse_body(&req(b)).map_err(msg).unwrap_err().1;
        assert_eq!(text(""), "Body expected in request.");
        assert_eq!(text("[{\"op\":"), "Malformed JSON in request body.");
        assert_eq!(text("   "), "Malformed JSON in request body.");
        assert_eq!(text("null"), "Unexpected body type. Expected list/dict.");
        assert_eq!(text("5"), "Unexpected body type. Expected list/dict.");
        assert!(parse_body(&req("[]")).is_ok());
        let chunked = Request::new("PATCH", "/").header("Transfer-Encoding", "chunked");
        assert_eq!(
            parse_body(&chunked).map_err(msg).unwrap_err().1,
            "Malformed JSON in request body."
        );
        assert_eq!(
            parse21(json!({"op": "replace"})).unwrap_err().1,
            "Request body must be a JSON array of operation objects."
        );
        assert_eq!(
            parse21(json!(["x"])).unwrap_err().1,
            "Operations must be JSON objects."
        );
    }

    #[test]
    fn v21_op_errors() {
        let e = |v| parse21(v).unwrap_err();
        assert_eq!(
            e(json!([{"replace": "/name", "value": "x"}])).1,
            "Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace."
        );
        for (op, shown) in [
            (json!("test"), "test"),
            (json!("Replace"), "Replace"),
            (json!(1), "1"),
            (json!(["add"]), "['add']"),
        ] {
            assert_eq!(
                e(json!([{"op": op, "path": "/x", "value": "v"}])),
                (400, format!("Invalid operation: `{shown}`. It must be one of the following: add, remove, replace."))
            );
        }
        assert_eq!(
            e(json!([{"op": "replace", "value": "x"}])).1,
            "Unable to find 'path' in JSON Schema change"
        );
        assert_eq!(
            e(json!([{"op": "add", "path": "/nv"}])).1,
            "Operation \"add\" requires a member named \"value\"."
        );
        assert_eq!(
            e(json!([{"op": "replace", "path": "/name"}])).1,
            "Operation \"replace\" requires a member named \"value\"."
        );
        assert_eq!(
            e(json!([{"op": "add", "path": 5, "value": "x"}])),
            (400, "Pointer `5` is not a string.".into())
        );
        // value on remove is ignored, extra members are ignored
        let ok = parse21(json!([
            {"op": "remove", "path": "/foo", "value": "whatever"},
            {"op": "replace", "path": "/name", "value": "xm", "extra": 1, "replace": "/min_ram"}
        ]))
        .unwrap();
        assert_eq!(ok[0].value, None);
        assert_eq!(ok[1].path, vec!["name"]);
    }

    #[test]
    fn v20_op_errors() {
        assert_eq!(
            parse20(json!([{"op": "replace", "path": "/name", "value": "x"}])).unwrap_err().1,
            "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\"."
        );
        assert_eq!(
            parse20(json!([{"replace": "/name", "add": "/x", "value": "x"}])).unwrap_err().1,
            "Operation objects must contain only one member named \"add\", \"remove\", or \"replace\"."
        );
        assert_eq!(
            parse20(json!([{"replace": "name", "value": "x"}]))
                .unwrap_err()
                .1,
            "Pointer `name` does not start with \"/\"."
        );
        let ok = parse20(json!([{"remove": "/x"}, {"add": "/y", "value": "1"}])).unwrap();
        assert_eq!(ok[0].op, Op::Remove);
        assert_eq!(ok[1].value, Some(json!("1")));
    }

    #[test]
    fn pointers() {
        let ok = |p: &str| decode_pointer(p).unwrap();
        let err = |p: &str| decode_pointer(p).map_err(msg).unwrap_err().1;
        assert_eq!(ok("/foo~1bar"), vec!["foo/bar"]);
        assert_eq!(ok("/foo~0bar"), vec!["foo~bar"]);
        assert_eq!(ok("/foo~01"), vec!["foo~1"]);
        assert_eq!(ok("/ spaced "), vec!["spaced"]);
        assert_eq!(ok("/a/b"), vec!["a", "b"]);
        assert_eq!(ok("/"), vec![""]);
        assert_eq!(err("foo"), "Pointer `foo` does not start with \"/\".");
        assert_eq!(err(""), "Pointer `` does not start with \"/\".");
        assert_eq!(err("/a/"), "Pointer `/a/` end with \"/\".");
        assert_eq!(err("/a//b"), "Pointer `/a//b` contains adjacent \"/\".");
        assert_eq!(err("/a/ /b"), "Pointer `/a/ /b` contains adjacent \"/\".");
        assert_eq!(err("/ / "), "Pointer `/ / ` does not contains valid token.");
        assert_eq!(
            err("/foo~2"),
            "Pointer `/foo~2` contains \"~\" not part of a recognized escape sequence."
        );
        assert_eq!(
            err("/foo~"),
            "Pointer `/foo~` contains \"~\" not part of a recognized escape sequence."
        );
        let e = |v| parse21(v).unwrap_err().1;
        assert_eq!(
            e(json!([{"op": "add", "path": "/a/b", "value": "x"}])),
            "Invalid JSON pointer for this resource: '/a/b'"
        );
        assert_eq!(
            e(json!([{"op": "add", "path": "/tags/-", "value": "d"}])),
            "Invalid JSON pointer for this resource: '/tags/-'"
        );
        assert_eq!(
            e(json!([{"op": "add", "path": "/", "value": "x"}])),
            "Pointer `/` does not contain a valid key."
        );
        assert_eq!(
            e(json!([{"op": "replace", "path": "/locations/0", "value": "x"}])),
            "Invalid JSON pointer for this resource: '/locations/0'"
        );
    }

    #[test]
    fn read_only_reserved_and_schema_checks() {
        let e = |v| parse21(v).unwrap_err();
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
            for op in ["add", "replace", "remove"] {
                assert_eq!(
                    e(json!([{"op": op, "path": format!("/{attr}"), "value": "x"}])),
                    (403, format!("Attribute '{attr}' is read-only."))
                );
            }
        }
        for attr in ["location", "deleted", "deleted_at", "os_glance_foo"] {
            assert_eq!(
                e(json!([{"op": "replace", "path": format!("/{attr}"), "value": "x"}])),
                (403, format!("Attribute '{attr}' is reserved."))
            );
        }
        let (status, text) = e(json!([{"op": "replace", "path": "/min_ram", "value": "abc"}]));
        assert_eq!(status, 400);
        assert!(text.starts_with(
            "Provided object does not match schema 'image': 'abc' is not of type 'integer'\n\nFailed validating 'type' in schema['properties']['min_ram']:"
        ));
        let (_, text) = e(json!([{"op": "add", "path": "/nullprop", "value": null}]));
        assert!(text.starts_with(
            "Provided object does not match schema 'image': None is not of type 'string'"
        ));
        // All ops are checked before anything else: a later bad op wins over
        // an earlier missing property.
        let (status, _) = e(json!([
            {"op": "remove", "path": "/missing"},
            {"op": "replace", "path": "/protected", "value": "yes"}
        ]));
        assert_eq!(status, 400);
    }

    #[test]
    fn replace_add_remove_semantics() {
        let img = active();
        let out = run(
            &img,
            json!([{"op": "replace", "path": "/name", "value": "test01"}]),
            Dialect::V21,
        )
        .unwrap();
        assert_eq!(out.name.as_deref(), Some("test01"));
        assert_eq!(out.updated_at, "2030-01-01T00:00:00Z");
        let out = run(
            &img,
            json!([{"replace": "/name", "value": "test02"}]),
            Dialect::V20,
        )
        .unwrap();
        assert_eq!(out.name.as_deref(), Some("test02"));
        // v2.1 add on existing = replace, also for base attributes
        let out = run(&img, json!([{"op": "add", "path": "/__os_bit", "value": "32"}, {"op": "add", "path": "/min_disk", "value": 20}]), Dialect::V21).unwrap();
        assert_eq!(out.properties.get("__os_bit"), Some(&json!("32")));
        assert_eq!(out.min_disk, 20);
        // v2.0 add on existing
        assert_eq!(
            run(
                &img,
                json!([{"add": "/__os_bit", "value": "x"}]),
                Dialect::V20
            )
            .unwrap_err(),
            (409, "Property __os_bit already present.".into())
        );
        assert_eq!(
            run(&img, json!([{"add": "/name", "value": "x"}]), Dialect::V20).unwrap_err(),
            (409, "Property name already present.".into())
        );
        for p in ["missing", "stores", "Name"] {
            assert_eq!(
                run(
                    &img,
                    json!([{"op": "replace", "path": format!("/{p}"), "value": "x"}]),
                    Dialect::V21
                )
                .unwrap_err(),
                (409, format!("Property {p} does not exist."))
            );
        }
        assert_eq!(
            run(
                &img,
                json!([{"op": "remove", "path": "/missing"}]),
                Dialect::V21
            )
            .unwrap_err(),
            (409, "Property missing does not exist.".into())
        );
        for p in ["name", "min_ram", "owner", "tags"] {
            assert_eq!(
                run(
                    &img,
                    json!([{"op": "remove", "path": format!("/{p}")}]),
                    Dialect::V21
                )
                .unwrap_err(),
                (403, format!("Property {p} may not be removed."))
            );
        }
        let out = run(
            &img,
            json!([{"op": "remove", "path": "/__backup_id"}]),
            Dialect::V21,
        )
        .unwrap();
        assert!(!out.properties.contains("__backup_id"));
        let out = run(
            &img,
            json!([{"op": "add", "path": "/ spaced ", "value": "x"}]),
            Dialect::V21,
        )
        .unwrap();
        assert_eq!(out.properties.get("spaced"), Some(&json!("x")));
        let out = run(
            &img,
            json!([{"op": "replace", "path": "/name", "value": null}]),
            Dialect::V21,
        )
        .unwrap();
        assert_eq!(out.name, None);
    }

    #[test]
    fn formats_only_while_queued() {
        assert_eq!(
            run(
                &active(),
                json!([{"op": "replace", "path": "/disk_format", "value": "qcow2"}]),
                Dialect::V21
            )
            .unwrap_err(),
            (
                403,
                "Attribute disk_format can be only replaced for a queued image.".into()
            )
        );
        assert_eq!(
            run(
                &active(),
                json!([{"op": "replace", "path": "/container_format", "value": "ovf"}]),
                Dialect::V21
            )
            .unwrap_err(),
            (
                403,
                "Attribute container_format can be only replaced for a queued image.".into()
            )
        );
        let out = run(
            &queued(),
            json!([{"op": "replace", "path": "/disk_format", "value": "raw"}]),
            Dialect::V21,
        )
        .unwrap();
        assert_eq!(out.disk_format.as_deref(), Some("raw"));
    }

    #[test]
    fn integer_limits() {
        assert_eq!(
            run(
                &active(),
                json!([{"op": "replace", "path": "/min_ram", "value": -1}]),
                Dialect::V21
            )
            .unwrap_err(),
            (
                400,
                "Invalid value '-1' for parameter 'min_ram': Cannot be a negative value".into()
            )
        );
        assert_eq!(
            run(
                &active(),
                json!([{"op": "replace", "path": "/min_ram", "value": 2147483648u64}]),
                Dialect::V21
            )
            .unwrap_err(),
            (
                400,
                "'min_ram' value out of range, must not exceed 2147483647.".into()
            )
        );
        let out = run(
            &active(),
            json!([{"op": "replace", "path": "/min_ram", "value": 2147483647}]),
            Dialect::V21,
        )
        .unwrap();
        assert_eq!(out.min_ram, 2147483647);
    }

    #[test]
    fn four_byte_unicode() {
        assert_eq!(
            run(
                &active(),
                json!([{"op": "replace", "path": "/name", "value": "тест-😀"}]),
                Dialect::V21
            )
            .unwrap_err(),
            (400, "Name can't contain 4 byte unicode characters.".into())
        );
        assert_eq!(
            run(
                &active(),
                json!([{"op": "add", "path": "/emoji", "value": "smile 😀"}]),
                Dialect::V21
            )
            .unwrap_err(),
            (400, "Emoji can't contain 4 byte unicode characters.".into())
        );
        assert_eq!(
            run(
                &active(),
                json!([{"op": "add", "path": "/key😀", "value": "v"}]),
                Dialect::V21
            )
            .unwrap_err(),
            (400, "Property names can't contain 4 byte unicode.".into())
        );
        let out = run(
            &active(),
            json!([{"op": "add", "path": "/ключ-キー", "value": "значение-値 ✓"}]),
            Dialect::V21,
        )
        .unwrap();
        assert!(out.properties.contains("ключ-キー"));
    }

    #[test]
    fn tags_and_locations() {
        let out = run(
            &active(),
            json!([{"op": "replace", "path": "/tags", "value": ["x", "x", "y"]}]),
            Dialect::V21,
        )
        .unwrap();
        assert_eq!(out.tags, vec!["x", "y"]);
        let out = run(
            &active(),
            json!([{"op": "add", "path": "/tags", "value": ["c"]}]),
            Dialect::V21,
        )
        .unwrap();
        assert_eq!(out.tags, vec!["c"]);
        let many: Vec<String> = (0..129).map(|i| format!("t{i:03}")).collect();
        assert_eq!(
            run(&active(), json!([{"op": "replace", "path": "/tags", "value": many}]), Dialect::V21).unwrap_err(),
            (413, "The limit has been exceeded on the number of allowed image tags. Attempted: 129, Maximum: 128".into())
        );
        assert_eq!(
            run(
                &active(),
                json!([{"op": "replace", "path": "/locations", "value": []}]),
                Dialect::V21
            )
            .unwrap_err(),
            (403, "Cannot set locations to empty list.".into())
        );
        assert_eq!(
            run(
                &active(),
                json!([{"op": "remove", "path": "/locations/0"}]),
                Dialect::V21
            )
            .unwrap_err(),
            (
                403,
                "It's not allowed to remove locations if locations are invisible.".into()
            )
        );
    }

    #[test]
    fn ops_apply_in_order_and_atomically() {
        let img = active();
        let out = run(&img, json!([{"op": "add", "path": "/f", "value": "1"}, {"op": "replace", "path": "/f", "value": "2"}]), Dialect::V21).unwrap();
        assert_eq!(out.properties.get("f"), Some(&json!("2")));
        let out = run(
            &img,
            json!([{"op": "add", "path": "/g", "value": "1"}, {"op": "remove", "path": "/g"}]),
            Dialect::V21,
        )
        .unwrap();
        assert!(!out.properties.contains("g"));
        assert_eq!(
            run(&img, json!([{"op": "remove", "path": "/g2"}, {"op": "add", "path": "/g2", "value": "1"}]), Dialect::V21).unwrap_err(),
            (409, "Property g2 does not exist.".into())
        );
        let out = run(&img, json!([{"op": "replace", "path": "/name", "value": "first"}, {"op": "replace", "path": "/name", "value": "second"}]), Dialect::V21).unwrap();
        assert_eq!(out.name.as_deref(), Some("second"));
        // Empty list: nothing saved, updated_at unchanged.
        let out = run(&img, json!([]), Dialect::V21).unwrap();
        assert_eq!(out, img);
    }

    #[test]
    fn property_quota_counts_after_all_ops() {
        let img = queued(); // 8 properties
        let ops: Vec<Value> = (0..130)
            .map(|i| json!({"op": "add", "path": format!("/q{i:03}"), "value": "v"}))
            .collect();
        assert_eq!(
            run(&img, Value::Array(ops), Dialect::V21).unwrap_err(),
            (413, "The limit has been exceeded on the number of allowed image properties. Attempted: 138, Maximum: 128".into())
        );
        let ops: Vec<Value> = (0..120)
            .map(|i| json!({"op": "add", "path": format!("/q{i:03}"), "value": "v"}))
            .collect();
        let full = run(&img, Value::Array(ops), Dialect::V21).unwrap();
        assert_eq!(full.properties.len(), 128);
        // Replacing on a full image is fine; adding one more is not.
        assert!(run(
            &full,
            json!([{"op": "replace", "path": "/q000", "value": "w"}]),
            Dialect::V21
        )
        .is_ok());
        assert_eq!(
            run(
                &full,
                json!([{"op": "add", "path": "/one-more", "value": "w"}]),
                Dialect::V21
            )
            .unwrap_err()
            .0,
            413
        );
    }
}

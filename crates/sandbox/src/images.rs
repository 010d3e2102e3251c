//! The image endpoints: show, PATCH (through `patch`), create, delete (the deactivate/reactivate actions are in `actions`).

use serde_json::Value;

use crate::context::{forbidden_action, Ctx};
use crate::http::{ApiError, Request, Response};
use crate::image::{dedup_tags, Image, STORE_ID};
use crate::patch;
use crate::pyfmt;
use crate::schema;
use crate::state::State;

pub fn image_response(status: u16, img: &Image) -> Response {
    Response::json(status, &Value::Object(img.view()), false)
}

pub fn visible_index(state: &State, ctx: &Ctx, id: &str) -> Option<usize> {
    state
        .position(id)
        .filter(|&i| ctx.can_see(&state.images[i]))
}

pub fn no_image(id: &str) -> ApiError {
    ApiError::explained(404, format!("No image found with ID {id}"))
}

pub fn show_image(state: &State, ctx: &Ctx, id: &str) -> Result<Response, ApiError> {
    let i = visible_index(state, ctx, id).ok_or_else(|| no_image(id))?;
    Ok(image_response(200, &state.images[i]))
}

pub fn patch_image(
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

pub fn delete_image(state: &mut State, ctx: &Ctx, id: &str) -> Result<Response, ApiError> {
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
    // Measured on Glance 33: the 204 carries an HTML content type.
    Ok(Response::empty(204).with_header("Content-Type", "text/html; charset=UTF-8"))
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

pub fn create_image(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::DEFAULT_PROJECT;
    use crate::patch::PATCH_V21;
    use crate::router::handle;
    use crate::testutil::*;
    use serde_json::json;

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

//! Image data: `PUT` and `GET /v2/images/{id}/file` (upload with Glance's checksums, size, virtual size and the queued → active transition; download with `Content-MD5`), kept in memory within a cap.
//!
//! Measured on Glance 33: the upload takes only `application/octet-stream`
//! (parameters allowed; else 415 `Invalid content type X`), needs
//! `disk_format` and `container_format` (400), a queued image (409 `Image
//! status transition from active to saving is not allowed`) and the
//! `upload_image` policy (403); it answers 204 and leaves the image active
//! with `size`, `checksum` (MD5), `os_hash_algo` `sha512`, `os_hash_value`,
//! `virtual_size` (raw: the size; none for empty data) and `stores`. The data
//! must be in the declared `disk_format` (Glance's format inspector): raw
//! data uploaded as `qcow2` is 415 `Image disk_format qcow2 does not match
//! stream data raw`. A download answers 204 without data, 200 with the
//! bytes and `Content-MD5`, and 403 to a non-admin while deactivated.
//!
//! Known differences: the sandbox recognises raw and qcow2 data only (data
//! of another format is taken as raw); a rejected upload leaves the image
//! untouched (Glance keeps the rejected data's checksum); data is kept in
//! memory and, with `--state`, beside the state file (`STATE.data/`), at
//! most `MAX_DATA_BYTES` in all; a seed image is active without data (its
//! download answers 404) (413 with the
//! sandbox's own text: the test Glance has no size cap to measure); the
//! journal records an upload's size, not its bytes.

use md5::{Digest, Md5};
use sha2::Sha512;

use crate::context::{forbidden_action, Ctx};
use crate::http::{ApiError, Request, Response};
use crate::image::STORE_ID;
use crate::images::{no_image, visible_index};
use crate::state::State;

/// The most image data the sandbox holds (all images together), and so the
/// largest upload it reads.
pub const MAX_DATA_BYTES: usize = 256 * 1024 * 1024;

/// What Glance's format inspector makes of the first bytes: the format and,
/// when the header says it, the virtual size.
fn inspect(data: &[u8]) -> (&'static str, Option<i64>) {
    if data.len() >= 32 && data.starts_with(b"QFI\xfb") {
        let size = u64::from_be_bytes(data[24..32].try_into().unwrap_or_default());
        return ("qcow2", i64::try_from(size).ok());
    }
    let size = i64::try_from(data.len()).ok().filter(|&s| s > 0);
    ("raw", size)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn upload(state: &mut State, req: &Request, ctx: &Ctx, id: &str) -> Result<Response, ApiError> {
    // The deserializer checks the media type before the image is looked up.
    let content_type = req.get_header("Content-Type");
    let media = content_type.map(|ct| ct.split(';').next().unwrap_or(""));
    if media != Some("application/octet-stream") {
        return Err(ApiError::detailed(
            415,
            format!("Invalid content type {}", content_type.unwrap_or("None")),
        ));
    }
    let i = visible_index(state, ctx, id).ok_or_else(|| no_image(id))?;
    let img = &state.images[i];
    if !(ctx.can_write && (ctx.is_admin || ctx.owns(img))) {
        return Err(forbidden_action("upload_image"));
    }
    if img.status != "queued" {
        return Err(ApiError::explained(
            409,
            format!(
                "Image status transition from {} to saving is not allowed",
                img.status
            ),
        ));
    }
    let missing: Vec<&str> = [
        ("disk_format", &img.disk_format),
        ("container_format", &img.container_format),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_none())
    .map(|(k, _)| k)
    .collect();
    match missing.as_slice() {
        [] => {}
        [one] => {
            return Err(ApiError::explained(
                400,
                format!("Property {one} must be set prior to saving data."),
            ))
        }
        many => {
            return Err(ApiError::explained(
                400,
                format!(
                    "Properties {} must be set prior to saving data.",
                    many.join(", ")
                ),
            ))
        }
    }
    let held: usize = state.data.values().map(Vec::len).sum();
    if req.body_too_large || held + req.body.len() > MAX_DATA_BYTES {
        return Err(ApiError::explained(
            413,
            format!(
                "The incoming image is too large: the sandbox holds at most {MAX_DATA_BYTES} bytes of image data."
            ),
        ));
    }
    let (format, virtual_size) = inspect(&req.body);
    let disk_format = img.disk_format.clone().unwrap_or_default();
    if disk_format != format && disk_format != "raw" {
        return Err(ApiError::detailed(
            415,
            format!("Image disk_format {disk_format} does not match stream data {format}"),
        ));
    }
    let virtual_size = if disk_format == "raw" {
        i64::try_from(req.body.len()).ok().filter(|&s| s > 0)
    } else {
        virtual_size
    };
    let now = state.now();
    let img = &mut state.images[i];
    img.size = i64::try_from(req.body.len()).ok();
    img.virtual_size = virtual_size;
    img.checksum = Some(hex(&Md5::digest(&req.body)));
    img.os_hash_algo = Some("sha512".to_string());
    img.os_hash_value = Some(hex(&Sha512::digest(&req.body)));
    img.status = "active".to_string();
    img.stores = Some(STORE_ID.to_string());
    img.updated_at = now;
    state.data.insert(id.to_string(), req.body.clone());
    state.dirty = true;
    Ok(Response::empty(204).with_header("Content-Type", "text/html; charset=UTF-8"))
}

pub fn download(state: &State, ctx: &Ctx, id: &str) -> Result<Response, ApiError> {
    let i = visible_index(state, ctx, id).ok_or_else(|| no_image(id))?;
    let img = &state.images[i];
    if img.status == "deactivated" && !ctx.is_admin {
        return Err(ApiError::explained(
            403,
            "The requested image has been deactivated. Image data download is forbidden.",
        ));
    }
    if img.checksum.is_none() && img.size.is_none() {
        return Ok(Response::empty(204));
    }
    let Some(data) = state.data.get(id) else {
        return Err(ApiError::explained(
            404,
            format!("The data of image {id} is not in the sandbox (a seed image has none)."),
        ));
    };
    let mut resp = Response::empty(200).with_header("Content-Type", "application/octet-stream");
    if let Some(md5) = &img.checksum {
        resp = resp.with_header("Content-MD5", md5);
    }
    resp.body = data.clone();
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::handle;
    use crate::testutil::*;

    fn put(s: &mut State, id: &str, ct: Option<&str>, body: &[u8]) -> Response {
        let mut req = Request::new("PUT", &format!("/v2/images/{id}/file"))
            .header("Accept", "application/json")
            .body(body.to_vec());
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct);
        }
        handle(s, &req)
    }

    fn create(s: &mut State, body: &str) -> String {
        let r = handle(s, &Request::new("POST", "/v2/images").body(body));
        r.body_json()["id"].as_str().unwrap().to_string()
    }

    #[test]
    fn upload_then_download() {
        let mut s = state();
        let id = create(
            &mut s,
            r#"{"name": "up", "disk_format": "raw", "container_format": "bare"}"#,
        );
        assert_eq!(get(&mut s, &format!("/v2/images/{id}/file")).status, 204);
        let data = b"hello world, this is data";
        let r = put(&mut s, &id, Some("application/octet-stream"), data);
        assert_eq!(r.status, 204, "{}", r.body_text());
        let v = get(&mut s, &format!("/v2/images/{id}")).body_json();
        // As Glance 33 answered for the same bytes.
        assert_eq!(v["status"], "active");
        assert_eq!(v["size"], 25);
        assert_eq!(v["virtual_size"], 25);
        assert_eq!(v["checksum"], "92cda3bcff707bf446092b6d0638b4e2");
        assert_eq!(v["os_hash_algo"], "sha512");
        assert_eq!(v["os_hash_value"], "0c65717c05d7d6a897dd640caf27f6f761cd0c313f6ea63e37306bd69322903cb79448e9c0e03281c9f8be83b66a44f78966b7e1a14914169bc8035deedc0d98");
        assert_eq!(v["stores"], "fs");
        let r = get(&mut s, &format!("/v2/images/{id}/file"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, data);
        assert_eq!(
            r.get_header("Content-MD5"),
            Some("92cda3bcff707bf446092b6d0638b4e2")
        );
        assert_eq!(
            r.get_header("Content-Type"),
            Some("application/octet-stream")
        );
        let r = put(&mut s, &id, Some("application/octet-stream"), data);
        assert_eq!(
            (r.status, message(&r)),
            (
                409,
                "Image status transition from active to saving is not allowed<br /><br />\n\n\n"
                    .into()
            )
        );
        // deactivated: admins may still download, members may not
        let action = |s: &mut State, a: &str| {
            handle(
                s,
                &Request::new("POST", &format!("/v2/images/{id}/actions/{a}")),
            )
            .status
        };
        assert_eq!(action(&mut s, "deactivate"), 204);
        assert_eq!(get(&mut s, &format!("/v2/images/{id}/file")).status, 200);
        let r = handle(
            &mut s,
            &Request::new("GET", &format!("/v2/images/{id}/file"))
                .header("Accept", "application/json")
                .header("X-Roles", "reader,member"),
        );
        assert_eq!(
            (r.status, message(&r)),
            (403, "The requested image has been deactivated. Image data download is forbidden.<br /><br />\n\n\n".into())
        );
        assert_eq!(action(&mut s, "reactivate"), 204);
        // deleting the image drops its data
        let r = handle(&mut s, &Request::new("DELETE", &format!("/v2/images/{id}")));
        assert_eq!(r.status, 204);
        assert!(s.data.is_empty());
    }

    #[test]
    fn upload_errors() {
        let mut s = state();
        let id = create(&mut s, r#"{"name": "up", "disk_format": "raw"}"#);
        let r = put(&mut s, &id, Some("application/json"), b"x");
        assert_eq!(
            (r.status, message(&r)),
            (415, "The request media type application/json is not supported by this server.\n<br /><br />\nInvalid content type application/json".into())
        );
        let r = put(&mut s, &id, None, b"x");
        assert_eq!(
            message(&r),
            "The request media type ${CONTENT_TYPE} is not supported by this server.\n<br /><br />\nInvalid content type None"
        );
        let r = put(&mut s, "nope", Some("application/octet-stream"), b"x");
        assert_eq!(
            (r.status, message(&r)),
            (404, "No image found with ID nope<br /><br />\n\n\n".into())
        );
        let r = put(
            &mut s,
            &id,
            Some("application/octet-stream; charset=x"),
            b"x",
        );
        assert_eq!(
            (r.status, message(&r)),
            (
                400,
                "Property container_format must be set prior to saving data.<br /><br />\n\n\n"
                    .into()
            )
        );
        let bare = create(&mut s, r#"{"name": "none"}"#);
        let r = put(&mut s, &bare, Some("application/octet-stream"), b"x");
        assert_eq!(
            message(&r),
            "Properties disk_format, container_format must be set prior to saving data.<br /><br />\n\n\n"
        );
        let q = create(
            &mut s,
            r#"{"name": "q", "disk_format": "qcow2", "container_format": "bare"}"#,
        );
        let r = put(&mut s, &q, Some("application/octet-stream"), b"abc");
        assert_eq!(
            (r.status, message(&r)),
            (415, "The request media type application/octet-stream is not supported by this server.\n<br /><br />\nImage disk_format qcow2 does not match stream data raw".into())
        );
        assert_eq!(
            s.images.iter().find(|i| i.id == q).unwrap().status,
            "queued"
        );
        // a real qcow2 header: the virtual size comes from it
        let mut qcow = b"QFI\xfb\0\0\0\x03".to_vec();
        qcow.resize(24, 0);
        qcow.extend_from_slice(&(1u64 << 30).to_be_bytes());
        qcow.resize(512, 0);
        assert_eq!(
            put(&mut s, &q, Some("application/octet-stream"), &qcow).status,
            204
        );
        let v = get(&mut s, &format!("/v2/images/{q}")).body_json();
        assert_eq!(
            (v["size"].clone(), v["virtual_size"].clone()),
            (512.into(), (1i64 << 30).into())
        );
        // empty data: active, size 0, no virtual size
        let e = create(
            &mut s,
            r#"{"name": "e", "disk_format": "raw", "container_format": "bare"}"#,
        );
        assert_eq!(
            put(&mut s, &e, Some("application/octet-stream"), b"").status,
            204
        );
        let v = get(&mut s, &format!("/v2/images/{e}")).body_json();
        assert_eq!(v["size"], 0);
        assert_eq!(v["virtual_size"], serde_json::Value::Null);
        assert_eq!(v["checksum"], "d41d8cd98f00b204e9800998ecf8427e");
        // a body longer than the server reads is refused, nothing kept
        let big = create(
            &mut s,
            r#"{"name": "big", "disk_format": "raw", "container_format": "bare"}"#,
        );
        let mut req = Request::new("PUT", &format!("/v2/images/{big}/file"))
            .header("Content-Type", "application/octet-stream");
        req.body_too_large = true;
        assert_eq!(handle(&mut s, &req).status, 413);
        assert!(!s.data.contains_key(&big));
        // other methods
        let r = handle(
            &mut s,
            &Request::new("POST", &format!("/v2/images/{e}/file")),
        );
        assert_eq!((r.status, r.get_header("Allow")), (405, Some("GET, PUT")));
        // a reader may not upload
        let id2 = create(
            &mut s,
            r#"{"name": "r", "disk_format": "raw", "container_format": "bare"}"#,
        );
        let r = handle(
            &mut s,
            &Request::new("PUT", &format!("/v2/images/{id2}/file"))
                .header("Content-Type", "application/octet-stream")
                .header("X-Roles", "reader")
                .header("Accept", "application/json")
                .body("x"),
        );
        assert_eq!(
            (r.status, message(&r)),
            (
                403,
                "You are not authorized to complete upload_image action.<br /><br />\n\n\n".into()
            )
        );
    }
}

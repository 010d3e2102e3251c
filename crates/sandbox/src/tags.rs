//! The tags API: `PUT` and `DELETE /v2/images/{id}/tags/{tag}`.

use serde_json::json;

use crate::context::Ctx;
use crate::http::{ApiError, Response};
use crate::images::visible_index;
use crate::patch;
use crate::schema;
use crate::state::State;

/// The image whose tags a caller edits: visible and modifiable by them
/// (the tags API words its 404 differently from the image API).
fn tag_target(state: &State, ctx: &Ctx, id: &str) -> Result<usize, ApiError> {
    let i = visible_index(state, ctx, id)
        .ok_or_else(|| ApiError::explained(404, format!("Image {id} not found.")))?;
    ctx.modify_image(&state.images[i])?;
    Ok(i)
}

pub fn put_tag(state: &mut State, ctx: &Ctx, id: &str, tag: &str) -> Result<Response, ApiError> {
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

pub fn delete_tag(state: &mut State, ctx: &Ctx, id: &str, tag: &str) -> Result<Response, ApiError> {
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

#[cfg(test)]
mod tests {
    use crate::http::Request;
    use crate::router::handle;
    use crate::state::State;
    use crate::testutil::*;

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
}

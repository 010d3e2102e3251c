//! The image actions `POST /v2/images/{id}/actions/deactivate` and `.../reactivate`: Glance 33's policy (admin, or a member of the owning project) and status rules.

use crate::context::{forbidden_action, Ctx};
use crate::http::{ApiError, Response};
use crate::images::{no_image, visible_index};
use crate::state::State;

/// Which status an action moves an image from, and to. Glance answers 204
/// without a change when the image is already in the target status, and
/// 403 from any other status (measured: deactivate/reactivate of a queued
/// image is 403 `Not allowed to deactivate image in status 'queued'`).
fn transition(action: &str) -> (&'static str, &'static str) {
    if action == "deactivate" {
        ("active", "deactivated")
    } else {
        ("deactivated", "active")
    }
}

/// Applies `action` (`deactivate` or `reactivate`) to image `id`.
pub fn image_action(
    state: &mut State,
    ctx: &Ctx,
    id: &str,
    action: &str,
) -> Result<Response, ApiError> {
    let i = visible_index(state, ctx, id).ok_or_else(|| no_image(id))?;
    let now = state.now();
    let img = &mut state.images[i];
    // `ADMIN_OR_PROJECT_MEMBER`: role admin, or role member in the project
    // that owns the image (measured: a member deactivates its own image).
    let owns = img.owner.as_deref() == Some(ctx.project.as_str());
    if !(ctx.is_admin || (ctx.can_write && owns)) {
        return Err(forbidden_action(action));
    }
    let (from, to) = transition(action);
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
    Ok(Response::empty(204).with_header("Content-Type", "text/html; charset=UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Request;
    use crate::image::seed_images;

    const SEED: &str = "33ad552d-1149-471c-8190-ff6776174a00";

    fn ctx(roles: &str, project: Option<&str>) -> Ctx {
        let mut req = Request::new("POST", "/").header("X-Roles", roles);
        if let Some(p) = project {
            req = req.header("X-Project-Id", p);
        }
        Ctx::from_request(&req)
    }

    #[test]
    fn statuses_and_policy_as_measured() {
        let mut s = State::new(seed_images(), "http://x", None);
        let i = s.position(SEED).unwrap();
        s.images[i].status = "active".into();
        s.images[i].visibility = "public".into();
        s.images[i].owner = Some(crate::image::DEFAULT_PROJECT.into());
        let member = ctx("reader,member", None);
        let other = ctx("reader,member", Some("other"));
        let reader = ctx("reader", None);
        let admin = ctx("admin,member,reader", None);
        let text =
            |r: Result<Response, ApiError>| r.map(|r| r.status).map_err(|e| (e.status, e.text()));
        assert_eq!(
            text(image_action(&mut s, &admin, SEED, "reactivate")),
            Ok(204)
        );
        assert_eq!(
            text(image_action(&mut s, &other, SEED, "deactivate")),
            Err((
                403,
                "You are not authorized to complete deactivate action.".into()
            ))
        );
        assert!(image_action(&mut s, &reader, SEED, "deactivate").is_err());
        assert_eq!(
            text(image_action(&mut s, &member, SEED, "deactivate")),
            Ok(204)
        );
        assert_eq!(s.images[i].status, "deactivated");
        assert_eq!(
            text(image_action(&mut s, &admin, SEED, "deactivate")),
            Ok(204)
        );
        assert_eq!(
            text(image_action(&mut s, &admin, SEED, "reactivate")),
            Ok(204)
        );
        s.images[i].status = "queued".into();
        assert_eq!(
            text(image_action(&mut s, &admin, SEED, "deactivate")),
            Err((
                403,
                "Not allowed to deactivate image in status 'queued'".into()
            ))
        );
        assert_eq!(
            text(image_action(&mut s, &admin, "nope", "reactivate"))
                .unwrap_err()
                .0,
            404
        );
    }
}

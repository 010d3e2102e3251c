//! Who is asking and what they may do: authentication of a request (the `--token` check, or the Keystone emulation's tokens with `--require-auth`) and Glance's image policies (visibility, modify, publicize).

use serde_json::{json, Value};

use crate::http::{self, ApiError, Request, Response};
use crate::image::{Image, DEFAULT_PROJECT};
use crate::keystone;
use crate::state::State;

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

/// Authenticates a request to a protected route: `Err` carries the answer
/// (401) to send instead.
///
/// With `--require-auth`, the token must be one the Keystone emulation
/// issued (or the static `--token`), and the caller is the token's user,
/// project and roles, as keystonemiddleware passes them on; else the static
/// `--token` check, and the caller comes from `X-Roles`/`X-Project-Id`.
pub fn authenticate(state: &State, req: &Request, base_url: &str) -> Result<Ctx, Response> {
    // With an AK/SK pair, the API Gateway's check replaces the token's;
    // the caller's project is the signed X-Project-Id.
    if let Some(gateway) = &state.aksk {
        crate::aksk::verify(gateway, req, std::time::SystemTime::now())?;
        return Ok(Ctx::from_request(req));
    }
    if let Some(authed) = keystone::guard_image_api(state, req, base_url) {
        return authed.map(|req| Ctx::from_request(&req));
    }
    if let Some(token) = &state.token {
        if req.get_header("X-Auth-Token") != Some(token.as_str()) {
            return Err(http::unauthorized(base_url));
        }
    }
    Ok(Ctx::from_request(req))
}

pub fn forbidden_action(action: &str) -> ApiError {
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

    pub fn owns(&self, img: &Image) -> bool {
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

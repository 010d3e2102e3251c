//! Test helpers shared by the handler's unit tests: a seeded state with a fixed clock and one-line requests.

use crate::http::{Request, Response};
use crate::patch::PATCH_V21;
use crate::router::handle;
use crate::state::State;

pub const SEED: &str = "33ad552d-1149-471c-8190-ff6776174a00";
pub const QUEUED: &str = "5d8f2c4e-1f7a-4b9e-9c3d-2a6b8e4f0c11";

pub fn state() -> State {
    let mut s = State::seeded("http://127.0.0.1:9292");
    s.fixed_now = Some("2030-01-01T00:00:00Z".into());
    s
}

pub fn patch(s: &mut State, id: &str, body: &str) -> Response {
    let req = Request::new("PATCH", &format!("/v2/images/{id}"))
        .header("Content-Type", PATCH_V21)
        .header("Accept", "application/json")
        .body(body.as_bytes().to_vec());
    handle(s, &req)
}

pub fn get(s: &mut State, url: &str) -> Response {
    handle(
        s,
        &Request::new("GET", url).header("Accept", "application/json"),
    )
}

pub fn message(r: &Response) -> String {
    r.body_json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

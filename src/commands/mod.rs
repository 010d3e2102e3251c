//! The steps every command shares: resolving IMAGE (an ID or a name), and
//! the one runner of an edit (local checks, the reads it needs, one PATCH)
//! that returns an [`Outcome`] instead of printing. Each `<verb>.rs` turns
//! its arguments into an [`Edit`] (pure). The runner holds no state: several
//! threads may run it at once with one shared `Client`.

pub mod auth;
pub mod describe;
pub mod generate;
pub mod patch;
pub mod rename;
pub mod sandbox;
pub mod set_attr;
pub mod show;
pub mod unset_attr;

use std::collections::HashSet;

use serde_json::Value;

use crate::client::Client;
use crate::error::{Error, Kind, Result};
use crate::patch::{is_core, Op, OpKind, PatchFormat, CORE};
use crate::sanitize;
use crate::wire::WireRequest;

/// An image as the server returned it: parsed, and the bytes it came in
/// (for an image found by name, its entry of the list, as written).
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub value: Value,
    pub raw: Vec<u8>,
}

impl Image {
    fn from_response(value: Value, raw: Vec<u8>) -> Image {
        Image { value, raw }
    }

    pub fn id(&self) -> Option<&str> {
        self.value.get("id").and_then(Value::as_str)
    }
}

/// What a command did, for its caller to print or collect.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The image ID, once known.
    pub id: Option<String>,
    /// The image as last returned: the PATCH's answer, or what was read.
    pub image: Option<Image>,
    /// Keys whose removal was skipped because they are not set.
    pub skipped: Vec<String>,
    /// The edit needed no request (every op was skipped).
    pub unchanged: bool,
    /// The requests sent, in order, without credentials.
    pub sent: Vec<WireRequest>,
    /// With `--dry-run`: the request that was not sent.
    pub planned: Option<WireRequest>,
    /// The ops sent (or planned), after skipping and v2.0's replaces.
    pub ops: Vec<Op>,
    /// With `RunSettings::read_first` (`--diff`): the image before the edit.
    pub before: Option<Image>,
}

/// How the runner sends.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunSettings {
    pub patch_format: PatchFormat,
    pub dry_run: bool,
    /// Read the image before editing it, into `Outcome::before` (`--diff`).
    pub read_first: bool,
}

/// Whether `image` is written as an image ID (a hyphenated UUID); anything
/// else is taken as a name.
pub fn is_image_id(image: &str) -> bool {
    let bytes = image.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Sends a request that must answer an image (a JSON object): anything
/// else in a 2xx answer (`[1,2,3]`, `42`, `null`) is an error, not an
/// empty image.
fn send_for_image(client: &Client, request: WireRequest, outcome: &mut Outcome) -> Result<Image> {
    let what = format!("{} {}", request.method, request.url);
    let result = client.send(&request);
    outcome.sent.push(request);
    let response = result?;
    let status = crate::client::status_line(response.status);
    let not_image = |detail: String| {
        Error::runtime(format!(
            "{what} answered {status} with something that is not an image{detail}"
        ))
        .hint("check that the endpoint is the image service")
    };
    let value: Value = serde_json::from_slice(&response.body).map_err(|e| {
        let content_type = sanitize::escape(response.header("content-type").unwrap_or(""));
        not_image(format!(" (not JSON: {e}; content type '{content_type}')"))
    })?;
    if !value.is_object() {
        return Err(not_image(String::new()));
    }
    Ok(Image::from_response(value, response.body))
}

/// The most pages of a list followed when looking up a name (25 images a
/// page by default: a thousand images).
pub const MAX_NAME_PAGES: usize = 40;

/// One page of an image list: its entries as the server wrote them.
#[derive(serde::Deserialize)]
struct ListPage<'a> {
    #[serde(borrow)]
    images: Vec<&'a serde_json::value::RawValue>,
    #[serde(default)]
    next: Option<String>,
}

/// The images of a list page whose `name` is exactly `name` (a server
/// that reads the filter otherwise, or ignores it, returns others: they
/// are dropped), each with its entry's bytes; and the `next` link.
fn named_in_page(body: &[u8], name: &str, what: &str) -> Result<(Vec<Image>, Option<String>)> {
    let page: ListPage = serde_json::from_slice(body).map_err(|e| {
        Error::runtime(format!("{what} answered without an \"images\" list ({e})"))
            .hint("check that the endpoint is the image service")
    })?;
    let mut found = Vec::new();
    for entry in page.images {
        let Ok(value) = serde_json::from_str::<Value>(entry.get()) else {
            continue;
        };
        if value.get("name").and_then(Value::as_str) == Some(name) {
            found.push(Image {
                value,
                raw: entry.get().as_bytes().to_vec(),
            });
        }
    }
    Ok((found, page.next.filter(|n| !n.is_empty())))
}

/// Every image named exactly `name`, following `next` links (at most
/// [`MAX_NAME_PAGES`] pages): the visible ones, or when there is none, the
/// hidden ones (`os_hidden`), which Glance lists only when asked.
fn find_by_name(client: &Client, name: &str, outcome: &mut Outcome) -> Result<Vec<Image>> {
    for hidden in [false, true] {
        let mut request = client.find_by_name_request(name, hidden)?;
        let mut found = Vec::new();
        for page in 1.. {
            let what = format!("GET {}", request.url);
            let result = client.send(&request);
            outcome.sent.push(request);
            let (images, next) = named_in_page(&result?.body, name, &what)?;
            found.extend(images);
            let Some(next) = next else { break };
            if page == MAX_NAME_PAGES {
                return Err(Error::runtime(format!(
                    "the list of images named '{name}' did not end after {MAX_NAME_PAGES} pages"
                ))
                .hint("pass the image ID instead of its name"));
            }
            request = client.next_page_request(&next)?;
        }
        if !found.is_empty() || hidden {
            return Ok(found);
        }
    }
    unreachable!("the loop returns on its second round")
}

/// The image ID for `image` and, when a lookup by name was needed, the image
/// itself as the lookup returned it (its entry's bytes, as the server wrote
/// them).
pub fn resolve(
    client: &Client,
    image: &str,
    outcome: &mut Outcome,
) -> Result<(String, Option<Image>)> {
    if is_image_id(image) {
        return Ok((image.to_string(), None));
    }
    if image.trim().is_empty() {
        return Err(Error::usage(
            "IMAGE cannot be empty; give an image ID or name",
        ));
    }
    let mut found = find_by_name(client, image, outcome)?;
    match found.len() {
        0 => Err(
            Error::new(Kind::NotFound, format!("no image is named '{image}'"))
                .hint("IMAGE is an image ID or an exact name (names are case-sensitive)"),
        ),
        1 => {
            let image = found.remove(0);
            let id = image
                .id()
                .ok_or_else(|| {
                    Error::runtime("the image list answered an image without an \"id\"")
                })?
                .to_string();
            Ok((id, Some(image)))
        }
        n => {
            let ids: Vec<String> = found
                .iter()
                .map(|i| sanitize::escape(i.id().unwrap_or("(no id)")).into_owned())
                .collect();
            Err(Error::usage(format!(
                "{n} images are named '{image}': {}",
                ids.join(", ")
            ))
            .hint("pass the ID of the one you mean"))
        }
    }
}

/// `GET /v2/images/{id}`, recorded.
pub fn read_image(client: &Client, id: &str, outcome: &mut Outcome) -> Result<Image> {
    let request = client.get_image_request(id)?;
    send_for_image(client, request, outcome).map_err(|e| id_hint(e, id))
}

/// A change to one image, as a command built it.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    pub ops: Vec<Op>,
    /// Drop removes of attributes that are not set (needs a read first).
    pub ignore_missing: bool,
}

impl Edit {
    pub fn new(ops: Vec<Op>) -> Edit {
        Edit {
            ops,
            ignore_missing: false,
        }
    }
}

/// The ops to send, given what is known to be set on the image: removes of
/// missing keys are dropped with `ignore_missing` (and returned as skipped),
/// and in v2.0, where `add` on an existing attribute is a conflict, adds of
/// existing attributes become replaces.
pub fn plan(
    edit: &Edit,
    present: &mut HashSet<String>,
    format: PatchFormat,
) -> (Vec<Op>, Vec<String>) {
    let mut ops = Vec::with_capacity(edit.ops.len());
    let mut skipped = Vec::new();
    for op in &edit.ops {
        let mut op = op.clone();
        match op.kind {
            OpKind::Remove => {
                if edit.ignore_missing && !present.contains(&op.key) {
                    skipped.push(op.key);
                    continue;
                }
                present.remove(&op.key);
            }
            OpKind::Add => {
                if format == PatchFormat::V20 && present.contains(&op.key) {
                    op.kind = OpKind::Replace;
                }
                present.insert(op.key.clone());
            }
            OpKind::Replace => {
                present.insert(op.key.clone());
            }
        }
        ops.push(op);
    }
    (ops, skipped)
}

/// The first key that `edit` removes while it is not set (after the edit's
/// own earlier ops), unless `--ignore-missing` skips those: Glance refuses
/// such a PATCH with 409.
pub fn first_missing_remove(edit: &Edit, present: &HashSet<String>) -> Option<String> {
    if edit.ignore_missing {
        return None;
    }
    let mut present = present.clone();
    for op in &edit.ops {
        match op.kind {
            OpKind::Remove if !present.remove(&op.key) => return Some(op.key.clone()),
            OpKind::Remove => {}
            OpKind::Add | OpKind::Replace => {
                present.insert(op.key.clone());
            }
        }
    }
    None
}

/// Whether sending `edit` needs the image's current attributes first.
pub fn needs_read(edit: &Edit, format: PatchFormat) -> bool {
    edit.ignore_missing
        || (format == PatchFormat::V20
            && edit
                .ops
                .iter()
                .any(|op| op.kind == OpKind::Add && !is_core(&op.key)))
}

/// Checks, resolves, reads what must be read, and sends one PATCH (or,
/// with `dry_run`, plans it). Returns what happened; prints nothing.
pub fn run_edit(
    client: &Client,
    settings: RunSettings,
    image: &str,
    edit: &Edit,
) -> Result<Outcome> {
    run_edit_with(client, settings, image, edit, None)
}

/// [`run_edit`] of an image already read (`known`, as `GET` returned it),
/// which is not read again.
pub fn run_edit_with(
    client: &Client,
    settings: RunSettings,
    image: &str,
    edit: &Edit,
    known: Option<Image>,
) -> Result<Outcome> {
    crate::patch::validate(&edit.ops)?;
    let format = settings.patch_format;
    let mut outcome = Outcome::default();
    let (id, mut current) = resolve(client, image, &mut outcome)?;
    if known.is_some() {
        current = known;
    }
    outcome.id = Some(id.clone());
    if (settings.read_first || needs_read(edit, format)) && current.is_none() {
        current = Some(read_image(client, &id, &mut outcome)?);
    }
    if settings.read_first {
        outcome.before = current.clone();
    }
    let mut present: HashSet<String> = match current.as_ref().map(|i| &i.value) {
        Some(Value::Object(obj)) => obj.keys().cloned().collect(),
        _ => CORE.iter().map(|k| k.to_string()).collect(),
    };
    let read = current.is_some();
    if settings.dry_run && read {
        // The real edit would be refused (409): a dry run must not say it is fine.
        if let Some(key) = first_missing_remove(edit, &present) {
            return Err(Error::new(
                Kind::Conflict,
                format!(
                    "'{key}' is not set on image {id}, so the server would refuse to remove it (409); nothing was sent"
                ),
            )
            .hint("--ignore-missing skips attributes that are not set"));
        }
    }
    let (ops, skipped) = plan(edit, &mut present, format);
    outcome.skipped = skipped;
    outcome.ops = ops.clone();
    if ops.is_empty() && !edit.ops.is_empty() {
        outcome.unchanged = true;
        outcome.image = current;
        return Ok(outcome);
    }
    let body = crate::patch::to_body(&ops, format).to_string().into_bytes();
    let request = client.patch_request(&id, format.content_type(), body)?;
    if settings.dry_run {
        outcome.planned = Some(request);
        outcome.image = current;
        return Ok(outcome);
    }
    let image = send_for_image(client, request, &mut outcome)
        .map_err(|e| format_hint(conflict_detail(id_hint(e, &id), &ops), format))?;
    outcome.image = Some(image);
    Ok(outcome)
}

/// A 415 names the other patch format.
fn format_hint(err: Error, format: PatchFormat) -> Error {
    if err.status() != Some(415) {
        return err;
    }
    let other = match format {
        PatchFormat::V21 => "v2.0",
        PatchFormat::V20 => "v2.1",
    };
    err.hint(format!(
        "the server does not accept the {} patch format; try --patch-format {other}",
        format.as_str()
    ))
}

/// Glance's IDs are lower-case; it answers 404 to any other spelling.
pub fn id_hint(err: Error, id: &str) -> Error {
    if err.kind == Kind::NotFound && id.chars().any(|c| c.is_ascii_uppercase()) {
        err.hint(format!(
            "image IDs are lower-case; try '{}'",
            id.to_ascii_lowercase()
        ))
    } else {
        err
    }
}

/// Says which op a 409 came from, read from Glance's message ("Property X
/// does not exist." or "Property X already present.").
fn conflict_detail(err: Error, ops: &[Op]) -> Error {
    if err.kind != Kind::Conflict {
        return err;
    }
    let missing = ops.iter().find(|op| {
        op.kind != OpKind::Add
            && err
                .message
                .contains(&format!("Property {} does not exist.", op.key))
    });
    match missing {
        Some(op) => err.hint(format!(
            "'{}' is not set on the image, and {} needs it to be",
            op.key,
            op.kind.as_str()
        )),
        None => err,
    }
}

/// The hint for commands that have --ignore-missing.
pub fn ignore_missing_hint(err: Error) -> Error {
    if err.kind == Kind::Conflict {
        err.hint("--ignore-missing skips attributes that are not set")
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_list_page_keeps_exact_names_with_their_bytes() {
        let body = br#"{"images": [{"id": "1", "name": "web", "n": 1.10}, {"id": "2", "name": "in:web"}, 42, {"id": "3"}, {"id": "4", "name": "in:web ", "x": 1}], "next": "/v2/images?marker=2"}"#;
        let (found, next) = named_in_page(body, "in:web", "GET x").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id(), Some("2"));
        assert_eq!(found[0].raw, br#"{"id": "2", "name": "in:web"}"#);
        assert_eq!(next.as_deref(), Some("/v2/images?marker=2"));
        let (found, next) = named_in_page(
            br#"{"images": [{"id": "1", "name": "web", "n": 1.10}]}"#,
            "web",
            "GET x",
        )
        .unwrap();
        assert_eq!(found[0].raw, br#"{"id": "1", "name": "web", "n": 1.10}"#);
        assert_eq!(next, None);
        for bad in [&b"[]"[..], b"{}", b"{\"images\": 1}", b"null"] {
            let e = named_in_page(bad, "web", "GET x").unwrap_err();
            assert!(
                e.message
                    .contains("GET x answered without an \"images\" list"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn ids_and_names() {
        assert!(is_image_id("33ad552d-1149-471c-8190-ff6776174a00"));
        assert!(is_image_id("33AD552D-1149-471C-8190-FF6776174A00"));
        assert!(!is_image_id("33ad552d11494 71c8190ff6776174a00"));
        assert!(!is_image_id("33ad552d1149471c8190ff6776174a00"));
        assert!(!is_image_id("ims_test"));
        assert!(!is_image_id("33ad552d-1149-471c-8190-ff6776174a0g"));
    }

    fn keys(list: &[&str]) -> HashSet<String> {
        list.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn v20_turns_adds_of_existing_keys_into_replaces() {
        let edit = Edit::new(vec![
            Op::add("name", json!("n")),
            Op::add("__os_bit", json!("64")),
            Op::add("new", json!("1")),
            Op::add("new", json!("2")),
        ]);
        let (ops, skipped) = plan(&edit, &mut keys(&["name", "__os_bit"]), PatchFormat::V20);
        let kinds: Vec<OpKind> = ops.iter().map(|o| o.kind).collect();
        assert_eq!(
            kinds,
            [
                OpKind::Replace,
                OpKind::Replace,
                OpKind::Add,
                OpKind::Replace
            ]
        );
        assert!(skipped.is_empty());
        let (ops, _) = plan(&edit, &mut keys(&["name", "__os_bit"]), PatchFormat::V21);
        assert!(ops.iter().all(|o| o.kind == OpKind::Add));
    }

    #[test]
    fn ignore_missing_drops_removes_of_unset_keys() {
        let mut edit = Edit::new(vec![Op::remove("a"), Op::remove("b"), Op::remove("a")]);
        edit.ignore_missing = true;
        let (ops, skipped) = plan(&edit, &mut keys(&["a"]), PatchFormat::V21);
        assert_eq!(ops, vec![Op::remove("a")]);
        assert_eq!(skipped, ["b", "a"]);
    }

    #[test]
    fn a_remove_of_an_unset_key_is_found_in_edit_order() {
        let present = keys(&["a"]);
        let edit = Edit::new(vec![Op::remove("a"), Op::remove("a")]);
        assert_eq!(first_missing_remove(&edit, &present).as_deref(), Some("a"));
        let edit = Edit::new(vec![
            Op::add("b", json!("1")),
            Op::remove("b"),
            Op::remove("a"),
        ]);
        assert_eq!(first_missing_remove(&edit, &present), None);
        let mut edit = Edit::new(vec![Op::remove("c")]);
        assert_eq!(first_missing_remove(&edit, &present).as_deref(), Some("c"));
        edit.ignore_missing = true;
        assert_eq!(first_missing_remove(&edit, &present), None);
    }

    #[test]
    fn reads_only_when_needed() {
        let add_custom = Edit::new(vec![Op::add("__os_bit", json!("64"))]);
        let add_core = Edit::new(vec![Op::add("min_ram", json!(1))]);
        assert!(!needs_read(&add_custom, PatchFormat::V21));
        assert!(needs_read(&add_custom, PatchFormat::V20));
        assert!(!needs_read(&add_core, PatchFormat::V20));
        let mut remove = Edit::new(vec![Op::remove("x")]);
        assert!(!needs_read(&remove, PatchFormat::V21));
        remove.ignore_missing = true;
        assert!(needs_read(&remove, PatchFormat::V21));
    }
}

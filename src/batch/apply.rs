//! `ims-patch apply FILE|-`: JSON Lines of per-image edits. Each line
//! becomes one image and one op list, checked like the single-image
//! commands; problems carry the line number. A file is checked whole before
//! anything is sent ([`check_all`]); standard input is read as a stream
//! ([`ApplyLines`]), where a bad line fails only itself.

use std::fmt;
use std::io::BufRead;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::lines::{BoundedLines, LineError};
use super::select::SeenImages;
use crate::commands::describe::KEY as DESCRIPTION;
use crate::error::{Error, Kind};
use crate::patch::{parse_op_list, validate, Op};

/// The longest line accepted (128 tags of 255 characters fit many times).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The members a line may have.
pub const MEMBERS: &[&str] = &["image", "name", "description", "set", "unset", "patch"];

const SHAPE: &str = "a line looks like {\"image\": \"ID or name\", \"name\": ..., \"description\": ..., \"set\": {\"KEY\": \"VALUE\"}, \"unset\": [\"KEY\"], \"patch\": [{\"op\": ..., \"path\": ..., \"value\": ...}]}";

/// One image's edit, read from one line.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyEdit {
    pub line: usize,
    /// An image ID or an exact name, as written.
    pub image: String,
    /// All of the line's changes, in this order: `name` (replace),
    /// `description` (add, or remove for null), `set` (one add per member,
    /// in line order), `unset` (one remove per key), then the `patch` ops.
    pub ops: Vec<Op>,
}

/// A JSON object's members in order, each one as often as it is given (a
/// map would silently keep only the last).
struct Members<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Members<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Members<T>, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Members<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<T>, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// serde_json's message without its "at line 1 column N" (every line is
/// line 1 to it), with the column kept.
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let message = text.rsplit_once(" at line ").map_or(&*text, |(m, _)| m);
    format!("not valid JSON at column {}: {message}", e.column())
}

fn wrong(member: &str, expected: &str, value: &Value) -> String {
    let mut shown = value.to_string();
    if shown.chars().count() > 40 {
        shown = format!("{}...", shown.chars().take(37).collect::<String>());
    }
    format!("\"{member}\" must be {expected}, not {shown}")
}

/// Reads one line's text (not blank) into the image and its op list.
pub fn parse_line(line: usize, text: &str) -> Result<ApplyEdit, LineError> {
    let fail = |message: String| LineError::new(line, message);
    let Members(raw) = serde_json::from_str::<Members<&RawValue>>(text).map_err(|e| {
        let hint = if e.is_data() {
            SHAPE
        } else {
            "each line is one JSON object"
        };
        fail(json_error(&e)).hint(hint)
    })?;
    for (i, (key, _)) in raw.iter().enumerate() {
        if !MEMBERS.contains(&key.as_str()) {
            return Err(fail(format!("unknown member '{key}'")).hint(SHAPE));
        }
        if raw[..i].iter().any(|(k, _)| k == key) {
            return Err(fail(format!("member '{key}' is given twice")));
        }
    }
    let get_raw = |name: &str| raw.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let members: Vec<(&str, Value)> = raw
        .iter()
        .map(|(k, v)| {
            let value = serde_json::from_str(v.get()).expect("a raw value is valid JSON");
            (k.as_str(), value)
        })
        .collect();
    let get = |name: &str| members.iter().find(|(k, _)| *k == name).map(|(_, v)| v);
    let image = match get("image") {
        None => {
            return Err(fail(
                "\"image\" is missing: which image does this line edit?".into(),
            ))
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(fail(
                "\"image\" cannot be empty; give an image ID or name".into(),
            ))
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(fail(wrong("image", "an image ID or name", other))),
    };

    // Who changes what, to refuse a key changed by two members.
    let mut changed: Vec<(String, &str)> = Vec::new();
    let mut claim = |key: &str, by: &'static str| -> Result<(), LineError> {
        if let Some((_, first)) = changed.iter().find(|(k, _)| k == key) {
            let message = if *first == by {
                format!("'{key}' is given twice in \"{by}\"")
            } else {
                format!("'{key}' is changed by both \"{first}\" and \"{by}\"")
            };
            return Err(fail(message).hint("change each attribute once a line"));
        }
        changed.push((key.to_string(), by));
        Ok(())
    };

    let mut ops = Vec::new();
    if let Some(name) = get("name") {
        claim("name", "name")?;
        ops.push(Op::replace("name", name.clone()));
    }
    match get("description") {
        None => {}
        Some(Value::String(text)) => {
            claim(DESCRIPTION, "description")?;
            ops.push(Op::add(DESCRIPTION, Value::String(text.clone())));
        }
        Some(Value::Null) => {
            claim(DESCRIPTION, "description")?;
            ops.push(Op::remove(DESCRIPTION));
        }
        Some(other) => {
            return Err(fail(wrong(
                "description",
                "text, or null to remove it",
                other,
            )))
        }
    }
    if let (Some(set), Some(raw_set)) = (get("set"), get_raw("set")) {
        // Read again from the text, so that a key given twice is seen.
        let Members(pairs) = serde_json::from_str::<Members<Value>>(raw_set.get())
            .map_err(|_| fail(wrong("set", "an object of KEY: VALUE", set)))?;
        for (key, value) in pairs {
            claim(&key, "set")?;
            ops.push(Op::add(key, value));
        }
    }
    if let Some(unset) = get("unset") {
        let keys = unset
            .as_array()
            .filter(|keys| keys.iter().all(Value::is_string))
            .ok_or_else(|| fail(wrong("unset", "a list of attribute names", unset)))?;
        for key in keys.iter().filter_map(Value::as_str) {
            claim(key, "unset")?;
            ops.push(Op::remove(key));
        }
    }
    if let Some(patch) = get_raw("patch") {
        let listed = parse_op_list(patch.get()).map_err(|e| {
            fail(format!("\"patch\": {e}")).hint(
                "\"patch\" is a list of {\"op\": \"add\"|\"remove\"|\"replace\", \"path\": \"/key\", \"value\": ...}",
            )
        })?;
        ops.extend(listed);
    }
    if ops.is_empty() {
        return Err(fail(format!("nothing to change for '{image}'")).hint(
            "give at least one of \"name\", \"description\", \"set\", \"unset\" or \"patch\"",
        ));
    }
    validate(&ops).map_err(|e| LineError {
        line,
        message: e.message,
        hints: e.hints,
    })?;
    Ok(ApplyEdit { line, image, ops })
}

/// The edits of a JSON Lines input, one per non-blank line, in order. A
/// line that is malformed, or names an image an earlier line named, yields
/// its error and reading goes on (an I/O error ends it).
pub struct ApplyLines<R> {
    lines: BoundedLines<R>,
    seen: SeenImages,
}

impl<R: BufRead> ApplyLines<R> {
    pub fn new(reader: R) -> ApplyLines<R> {
        ApplyLines {
            lines: BoundedLines::new(reader, MAX_LINE_BYTES),
            seen: SeenImages::default(),
        }
    }
}

impl<R: BufRead> Iterator for ApplyLines<R> {
    type Item = Result<ApplyEdit, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (line, text) = match self.lines.next()? {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            if text.trim().is_empty() {
                continue;
            }
            let edit = match parse_line(line, &text) {
                Ok(edit) => edit,
                Err(e) => return Some(Err(e)),
            };
            // Two requests for one image could run at once and race; and an
            // undo journal is only right when each image is edited once.
            if let Err(first) = self.seen.first_time(&edit.image, line) {
                return Some(Err(LineError::new(
                    line,
                    format!("image '{}' is also edited on line {first}", edit.image),
                )
                .hint("put all of an image's changes on one line")));
            }
            return Some(Ok(edit));
        }
    }
}

/// What checking a whole file found wrong: the first few problems and how
/// many lines had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileErrors {
    pub errors: Vec<LineError>,
    pub total: usize,
}

/// How many problems [`check_all`] keeps to show.
pub const MAX_SHOWN_ERRORS: usize = 20;

impl FileErrors {
    /// The usage error to report, naming `origin` (e.g. `'edits.jsonl'`).
    pub fn to_error(&self, origin: &str) -> Error {
        let lines = if self.total == 1 { "line" } else { "lines" };
        let mut message = format!(
            "{} {lines} of {origin} cannot be applied; nothing was sent",
            self.total
        );
        for e in &self.errors {
            message.push_str(&format!("\n  {e}"));
            for hint in &e.hints {
                message.push_str(&format!("\n    hint: {hint}"));
            }
        }
        if self.total > self.errors.len() {
            message.push_str(&format!(
                "\n  ... and {} more",
                self.total - self.errors.len()
            ));
        }
        Error::new(Kind::Usage, message)
    }
}

/// Checks every line of a file before anything is sent, holding no edit:
/// the number of edits (the total to show progress against), or the
/// problems. The caller then reads the file again with [`ApplyLines`].
pub fn check_all<R: BufRead>(reader: R) -> Result<usize, FileErrors> {
    let mut edits = 0;
    let mut errors = FileErrors {
        errors: Vec::new(),
        total: 0,
    };
    for item in ApplyLines::new(reader) {
        match item {
            Ok(_) => edits += 1,
            Err(e) => {
                errors.total += 1;
                if errors.errors.len() < MAX_SHOWN_ERRORS {
                    errors.errors.push(e);
                }
            }
        }
    }
    if errors.total == 0 {
        Ok(edits)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::undo::journal_line;
    use serde_json::json;

    const A: &str = "33ad552d-1149-471c-8190-ff6776174a00";

    fn ok(text: &str) -> ApplyEdit {
        parse_line(7, text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> String {
        let e = parse_line(7, text).unwrap_err();
        assert_eq!(e.line, 7);
        e.to_string()
    }

    #[test]
    fn every_member_in_one_op_list_in_a_defined_order() {
        let edit = ok(
            r#"{"patch": [{"op": "replace", "path": "/min_ram", "value": 512}],
            "unset": ["__support_kvm", "a/b"], "set": {"z": "1", "hw_firmware_type": "uefi", "tags": ["x"]},
            "description": "fixed", "name": "n", "image": "ubuntu"}"#,
        );
        assert_eq!(edit.image, "ubuntu");
        assert_eq!(edit.line, 7);
        assert_eq!(
            edit.ops,
            vec![
                Op::replace("name", json!("n")),
                Op::add("__description", json!("fixed")),
                Op::add("z", json!("1")),
                Op::add("hw_firmware_type", json!("uefi")),
                Op::add("tags", json!(["x"])),
                Op::remove("__support_kvm"),
                Op::remove("a/b"),
                Op::replace("min_ram", json!(512)),
            ]
        );
        assert_eq!(
            ok(r#"{"image": "i", "description": null}"#).ops,
            vec![Op::remove("__description")]
        );
        assert_eq!(
            ok(r#"{"image": "i", "name": null}"#).ops,
            vec![Op::replace("name", Value::Null)]
        );
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        assert!(err("{").starts_with("line 7: not valid JSON at column 1: "));
        assert!(err("[1]").contains("not valid JSON at column"));
        assert!(err(r#"{"image": "i", "set": {"a": "1"}, "bogus": 1}"#)
            .contains("unknown member 'bogus'"));
        assert!(err(r#"{"image": "i", "image": "j", "name": "n"}"#)
            .contains("member 'image' is given twice"));
        assert!(err(r#"{"name": "n"}"#).contains("\"image\" is missing"));
        assert!(err(r#"{"image": " ", "name": "n"}"#).contains("cannot be empty"));
        assert!(err(r#"{"image": 5, "name": "n"}"#).contains("\"image\" must be"));
        assert!(err(r#"{"image": "i"}"#).contains("nothing to change for 'i'"));
        assert!(
            err(r#"{"image": "i", "set": {}, "unset": [], "patch": []}"#)
                .contains("nothing to change")
        );
        assert!(err(r#"{"image": "i", "set": ["a"]}"#).contains("\"set\" must be an object"));
        assert!(err(r#"{"image": "i", "set": {"a": "1", "a": "2"}}"#)
            .contains("'a' is given twice in \"set\""));
        assert!(err(r#"{"image": "i", "unset": "a"}"#).contains("\"unset\" must be a list"));
        assert!(err(r#"{"image": "i", "unset": [1]}"#).contains("\"unset\" must be a list"));
        assert!(err(r#"{"image": "i", "unset": ["a", "a"]}"#)
            .contains("'a' is given twice in \"unset\""));
        assert!(err(r#"{"image": "i", "set": {"a": "1"}, "unset": ["a"]}"#)
            .contains("'a' is changed by both \"set\" and \"unset\""));
        assert!(err(r#"{"image": "i", "name": "n", "set": {"name": "m"}}"#)
            .contains("both \"name\" and \"set\""));
        assert!(
            err(r#"{"image": "i", "description": "d", "set": {"__description": "m"}}"#)
                .contains("both \"description\" and \"set\"")
        );
        assert!(err(r#"{"image": "i", "description": 5}"#).contains("text, or null"));
        assert!(
            err(r#"{"image": "i", "patch": [{"op": "move", "path": "/a"}]}"#)
                .starts_with("line 7: \"patch\": operation 1: op 'move'")
        );
        assert!(err(r#"{"image": "i", "patch": {"op": "add"}}"#)
            .contains("\"patch\": expected a JSON array"));
    }

    #[test]
    fn the_single_image_checks_apply() {
        assert!(err(r#"{"image": "i", "set": {"__os_bit": 64}}"#)
            .contains("custom attributes hold text only"));
        assert!(err(r#"{"image": "i", "set": {"min_ram": "512"}}"#).contains("whole number"));
        assert!(err(r#"{"image": "i", "unset": ["name"]}"#).contains("cannot be removed"));
        assert!(err(
            r#"{"image": "i", "patch": [{"op": "replace", "path": "/status", "value": "active"}]}"#
        )
        .contains("read-only"));
        let e = parse_line(1, r#"{"image": "i", "unset": ["tags"]}"#).unwrap_err();
        assert!(e.hints.iter().any(|h| h.contains("empty list")), "{e:?}");
    }

    #[test]
    fn undo_lines_are_valid_input() {
        let undo = [
            Op::replace("name", json!("old")),
            Op::remove("added"),
            Op::add("removed/with~slash", json!("v")),
            Op::replace("tags", json!(["a", "b"])),
        ];
        let line = journal_line(A, &undo);
        let edit = ok(&line);
        assert_eq!(edit.image, A);
        assert_eq!(edit.ops, undo);
    }

    const FILE: &str = r#"
{"image": "33ad552d-1149-471c-8190-ff6776174a00", "set": {"a": "1"}}

{"image": "web", "unset": ["b"]}
{"image": "33AD552D-1149-471C-8190-FF6776174A00", "name": "again"}
{"image": "db", "set": {"n": 1}}
{"image": "ok", "name": "x"}
"#;

    #[test]
    fn a_stream_fails_only_the_bad_lines() {
        let got: Vec<Result<usize, String>> = ApplyLines::new(FILE.as_bytes())
            .map(|r| r.map(|e| e.line).map_err(|e| e.to_string()))
            .collect();
        assert_eq!(got.len(), 5);
        assert_eq!(got[0], Ok(2));
        assert_eq!(got[1], Ok(4));
        assert_eq!(
            got[2],
            Err(
                "line 5: image '33AD552D-1149-471C-8190-FF6776174A00' is also edited on line 2"
                    .into()
            )
        );
        assert!(got[3].as_ref().unwrap_err().starts_with("line 6: "));
        assert_eq!(got[4], Ok(7));
    }

    #[test]
    fn a_file_is_checked_whole_first() {
        let errors = check_all(FILE.as_bytes()).unwrap_err();
        assert_eq!(errors.total, 2);
        assert_eq!(
            errors.errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            [5, 6]
        );
        let e = errors.to_error("'edits.jsonl'");
        assert_eq!(e.kind, Kind::Usage);
        assert!(
            e.message.starts_with(
                "2 lines of 'edits.jsonl' cannot be applied; nothing was sent\n  line 5: "
            ),
            "{}",
            e.message
        );
        assert!(e
            .message
            .contains("\n    hint: put all of an image's changes on one line"));
        assert_eq!(
            check_all("\n{\"image\": \"a\", \"name\": \"b\"}\n".as_bytes()),
            Ok(1)
        );
        let many: String = (0..30)
            .map(|i| format!("{{\"image\": \"i{i}\"}}\n"))
            .collect();
        let errors = check_all(many.as_bytes()).unwrap_err();
        assert_eq!((errors.total, errors.errors.len()), (30, MAX_SHOWN_ERRORS));
        assert!(errors
            .to_error("standard input")
            .message
            .ends_with("... and 10 more"));
    }
}

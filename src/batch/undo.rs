//! The undo journal: from an image as read before an edit and the ops the
//! edit applied, the v2.1 ops that restore exactly what the edit touched;
//! and the writer that appends one durable JSON line per changed image.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::patch::{is_core, to_body, Op, OpKind, PatchFormat, READ_ONLY, RESERVED};

/// Whether two values of attribute `key` are the same to the service:
/// tags are a set (Glance drops repeats and does not keep the order).
pub fn same_value(key: &str, a: &Value, b: &Value) -> bool {
    match (key, a, b) {
        ("tags", Value::Array(x), Value::Array(y)) => {
            let set = |v: &[Value]| {
                let mut s: Vec<String> = v.iter().map(Value::to_string).collect();
                s.sort_unstable();
                s.dedup();
                s
            };
            set(x) == set(y)
        }
        _ => a == b,
    }
}

fn untouchable(key: &str) -> bool {
    READ_ONLY.contains(&key) || RESERVED.contains(&key) || key.starts_with("os_glance")
}

/// The ops that undo `ops` on the image `before` (its attributes as read
/// just before the edit): for each attribute the edit touched, in the order
/// first touched, `replace` with the old value if it changed, `remove` if
/// the edit added it, `add` with the old value if the edit removed it.
/// Attributes left as they were, and read-only ones, are not in it; an
/// empty list means the edit changed nothing.
///
/// Fails when the edit touched a base attribute that `before` does not
/// show: its old value is unknown, and base attributes cannot be removed.
pub fn undo_ops(before: &Map<String, Value>, ops: &[Op]) -> Result<Vec<Op>, String> {
    // What the edit leaves for each touched key: a value, or nothing.
    let mut after: Vec<(&str, Option<&Value>)> = Vec::new();
    for op in ops {
        let value = match op.kind {
            OpKind::Add | OpKind::Replace => op.value.as_ref(),
            OpKind::Remove => None,
        };
        match after.iter_mut().find(|(k, _)| *k == op.key) {
            Some(slot) => slot.1 = value,
            None => after.push((&op.key, value)),
        }
    }
    let mut undo = Vec::new();
    for (key, new) in after {
        if untouchable(key) {
            continue;
        }
        match (before.get(key), new) {
            (Some(old), Some(new)) if same_value(key, old, new) => {}
            (Some(old), Some(_)) => undo.push(Op::replace(key, old.clone())),
            (Some(old), None) => undo.push(Op::add(key, old.clone())),
            (None, Some(_)) if is_core(key) => {
                return Err(format!(
                    "the image as read shows no '{key}', so its old value is unknown"
                ))
            }
            (None, Some(_)) => undo.push(Op::remove(key)),
            (None, None) => {}
        }
    }
    Ok(undo)
}

/// The journal line for one image: `{"image": ID, "patch": [v2.1 ops]}`,
/// which `ims-patch apply` reads back.
pub fn journal_line(image_id: &str, undo: &[Op]) -> String {
    json!({"image": image_id, "patch": to_body(undo, PatchFormat::V21)}).to_string()
}

/// How to open the journal file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalMode {
    /// Refuse a file that exists: one run, one journal, so that replaying it
    /// never has to care about the order of its lines.
    CreateNew,
    /// Add to the end of the file, creating it if needed.
    Append,
}

/// The undo journal. [`Journal::record`] may be called from several threads;
/// each line is on disk (written and fsynced) when it returns.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<JournalFile>,
}

#[derive(Debug)]
struct JournalFile {
    file: File,
    /// Set when a write failed and the file could not be put back as it was.
    broken: bool,
}

impl Journal {
    pub fn open(path: &Path, mode: JournalMode) -> Result<Journal, Error> {
        let mut options = OpenOptions::new();
        options.append(true);
        match mode {
            JournalMode::CreateNew => options.create_new(true),
            JournalMode::Append => options.create(true),
        };
        let file = options.open(path).map_err(|e| {
            let err = Error::usage(format!("cannot open undo file '{}': {e}", path.display()));
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                err.hint("an undo file is written once: give a new name, or move the old one away")
            } else {
                err
            }
        })?;
        sync_parent(path);
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(JournalFile {
                file,
                broken: false,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the undo line of `image_id` and makes it durable (fsync)
    /// before returning; nothing is written for an empty `undo`. Returns
    /// whether a line was written. After a failed write the journal refuses
    /// further lines rather than leave a torn one in the middle.
    pub fn record(&self, image_id: &str, undo: &[Op]) -> Result<bool, Error> {
        if undo.is_empty() {
            return Ok(false);
        }
        let mut line = journal_line(image_id, undo);
        line.push('\n');
        let fail = |e: std::io::Error| {
            Error::runtime(format!(
                "cannot write undo file '{}': {e}",
                self.path.display()
            ))
        };
        // A panic elsewhere while holding the lock leaves the file as good
        // as any write left it: lines are whole or cut off, see `broken`.
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.broken {
            return Err(Error::runtime(format!(
                "undo file '{}' failed earlier and may end in a torn line; no further undo lines are written",
                self.path.display()
            )));
        }
        let start = guard.file.metadata().map_err(fail)?.len();
        let written = guard
            .file
            .write_all(line.as_bytes())
            .and_then(|()| guard.file.sync_data());
        if let Err(e) = written {
            // Take back a partial line, so the file stays valid JSON Lines.
            let restored = guard
                .file
                .set_len(start)
                .and_then(|()| guard.file.sync_data());
            guard.broken = restored.is_err();
            return Err(fail(e));
        }
        Ok(true)
    }
}

/// Makes a new file's directory entry durable too (best effort; a no-op
/// where directories cannot be opened).
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

/// Applies `ops` to an image's attributes as the Images API does in v2.1:
/// `add` sets (an array replaces the whole tag list), `replace` needs the
/// attribute to be there, `remove` too; tags are stored without repeats.
/// On failure nothing is changed, as with the service.
pub fn apply_ops(image: &mut Map<String, Value>, ops: &[Op]) -> Result<(), String> {
    let mut next = image.clone();
    for op in ops {
        let key = op.key.as_str();
        // Glance answers 403 to any op on a read-only or reserved
        // attribute, and to removing a base one.
        if untouchable(key) {
            return Err(format!("Attribute '{key}' is read-only."));
        }
        if op.kind == OpKind::Remove && is_core(key) {
            return Err(format!("Attribute '{key}' cannot be removed."));
        }
        match op.kind {
            OpKind::Add | OpKind::Replace => {
                if op.kind == OpKind::Replace && !next.contains_key(key) {
                    return Err(format!("Property {key} does not exist."));
                }
                let mut value = op.value.clone().ok_or("add and replace need a value")?;
                if key == "tags" {
                    if let Value::Array(tags) = &mut value {
                        let mut seen = std::collections::HashSet::new();
                        tags.retain(|t| seen.insert(t.to_string()));
                    }
                }
                next.insert(key.to_string(), value);
            }
            OpKind::Remove => {
                if next.shift_remove(key).is_none() {
                    return Err(format!("Property {key} does not exist."));
                }
            }
        }
    }
    *image = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::apply::parse_line;
    use crate::patch::validate;
    use proptest::prelude::*;

    fn image() -> Map<String, Value> {
        let v = json!({
            "id": "33ad552d-1149-471c-8190-ff6776174a00", "name": "ubuntu", "status": "active",
            "visibility": "private", "protected": false, "os_hidden": false, "min_ram": 0,
            "min_disk": 0, "owner": "p1", "container_format": "bare", "disk_format": "qcow2",
            "tags": ["b", "a"], "updated_at": "2026-11-26T18:23:26Z",
            "__os_bit": "64", "__support_kvm": "true", "kernel_id": null,
        });
        v.as_object().unwrap().clone()
    }

    #[test]
    fn restores_exactly_what_was_touched() {
        let before = image();
        let ops = [
            Op::replace("name", json!("new")),
            Op::add("__os_bit", json!("32")),
            Op::add("hw_firmware_type", json!("uefi")),
            Op::remove("__support_kvm"),
            Op::add("tags", json!(["a", "b", "a"])),
            Op::replace("min_ram", json!(0)),
            Op::add("tmp", json!("x")),
            Op::remove("tmp"),
            Op::add("name", json!("newer")),
        ];
        let undo = undo_ops(&before, &ops).unwrap();
        assert_eq!(
            undo,
            vec![
                Op::replace("name", json!("ubuntu")),
                Op::replace("__os_bit", json!("64")),
                Op::remove("hw_firmware_type"),
                Op::add("__support_kvm", json!("true")),
            ]
        );
        assert!(validate(&undo).is_ok());
        let mut img = before.clone();
        apply_ops(&mut img, &ops).unwrap();
        apply_ops(&mut img, &undo).unwrap();
        assert_eq!(without_tag_order(img), without_tag_order(before));
    }

    #[test]
    fn tags_and_nothing_changed() {
        let before = image();
        assert_eq!(
            undo_ops(&before, &[Op::replace("tags", json!(["c"]))]).unwrap(),
            vec![Op::replace("tags", json!(["b", "a"]))]
        );
        assert_eq!(
            undo_ops(&before, &[Op::add("tags", json!(["a", "b"]))]).unwrap(),
            vec![]
        );
        assert_eq!(
            undo_ops(&before, &[Op::add("__os_bit", json!("64"))]).unwrap(),
            vec![]
        );
        assert_eq!(
            undo_ops(
                &before,
                &[Op::replace(
                    "kernel_id",
                    json!("33ad552d-1149-471c-8190-ff6776174a00")
                )]
            )
            .unwrap(),
            vec![Op::replace("kernel_id", Value::Null)]
        );
    }

    #[test]
    fn read_only_attributes_never_and_unknown_base_values_refused() {
        let before = image();
        let undo = undo_ops(
            &before,
            &[Op::replace("status", json!("x")), Op::remove("id")],
        )
        .unwrap();
        assert_eq!(undo, vec![]);
        let mut partial = before.clone();
        partial.remove("min_ram");
        let e = undo_ops(&partial, &[Op::replace("min_ram", json!(1))]).unwrap_err();
        assert!(e.contains("'min_ram'"), "{e}");
    }

    #[test]
    fn the_model_refuses_what_glance_refuses() {
        let mut img = image();
        assert!(apply_ops(
            &mut img,
            &[Op::add("a", json!("1")), Op::replace("missing", json!("x"))]
        )
        .is_err());
        assert!(apply_ops(&mut img, &[Op::remove("missing")]).is_err());
        assert!(apply_ops(&mut img, &[Op::remove("id")]).is_err());
        assert!(apply_ops(&mut img, &[Op::replace("status", json!("x"))]).is_err());
        assert!(apply_ops(&mut img, &[Op::remove("name")]).is_err());
        assert_eq!(img, image(), "a failed patch changes nothing");
    }

    #[test]
    fn journal_lines_are_durable_whole_and_from_many_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("undo.jsonl");
        let journal = Journal::open(&path, JournalMode::CreateNew).unwrap();
        std::thread::scope(|s| {
            for t in 0..8 {
                let journal = &journal;
                s.spawn(move || {
                    for i in 0..25 {
                        let id = format!("{t:08}-0000-0000-0000-{i:012}");
                        let undo = [
                            Op::replace("name", json!(format!("n{t}-{i}"))),
                            Op::remove("x"),
                        ];
                        assert!(journal.record(&id, &undo).unwrap());
                    }
                });
            }
        });
        assert!(!journal.record("i", &[]).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 200);
        for (i, line) in lines.iter().enumerate() {
            let edit = parse_line(i + 1, line).unwrap();
            assert_eq!(edit.ops.len(), 2);
        }
        let e = Journal::open(&path, JournalMode::CreateNew).unwrap_err();
        assert!(e.message.contains("undo.jsonl"), "{}", e.message);
        assert!(!e.hints.is_empty());
        let again = Journal::open(&path, JournalMode::Append).unwrap();
        again.record("i", &[Op::remove("x")]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 201);
    }

    #[test]
    fn a_failed_write_is_reported_and_stops_the_journal() {
        let full = Path::new("/dev/full");
        if !full.exists() {
            return;
        }
        let journal = Journal::open(full, JournalMode::Append).unwrap();
        let e = journal.record("i", &[Op::remove("x")]).unwrap_err();
        assert!(
            e.message.contains("cannot write undo file '/dev/full'"),
            "{}",
            e.message
        );
        // A device cannot be cut back to its old length: nothing more is written.
        let e = journal.record("j", &[Op::remove("x")]).unwrap_err();
        assert!(e.message.contains("failed earlier"), "{}", e.message);
    }

    // Property: edit, then undo, gives back the image (for every edit the
    // service would accept).
    fn custom_key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("__os_bit".to_string()),
            Just("__support_kvm".to_string()),
            Just("a/b~c".to_string()),
            "[a-z_]{1,6}",
        ]
    }

    fn text() -> impl Strategy<Value = Value> {
        "[a-z0-9 ]{0,5}".prop_map(Value::String)
    }

    fn any_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (custom_key(), text()).prop_map(|(k, v)| Op::add(k, v)),
            (custom_key(), text()).prop_map(|(k, v)| Op::replace(k, v)),
            custom_key().prop_map(Op::remove),
            text().prop_map(|v| Op::replace("name", v)),
            Just(Op::add("name", Value::Null)),
            (0i64..4).prop_map(|n| Op::replace("min_ram", json!(n))),
            proptest::collection::vec("[abc]", 0..4).prop_map(|t| Op::add("tags", json!(t))),
            any::<bool>().prop_map(|b| Op::replace("protected", json!(b))),
        ]
    }

    fn any_image() -> impl Strategy<Value = Map<String, Value>> {
        proptest::collection::vec((custom_key(), text()), 0..5).prop_map(|props| {
            let mut img = image();
            img.remove("__os_bit");
            img.remove("__support_kvm");
            for (k, v) in props {
                img.insert(k, v);
            }
            img
        })
    }

    fn without_tag_order(mut img: Map<String, Value>) -> Map<String, Value> {
        if let Some(Value::Array(tags)) = img.get_mut("tags") {
            tags.sort_by_key(Value::to_string);
        }
        img.sort_keys();
        img
    }

    proptest! {
        #[test]
        fn edit_then_undo_gives_back_the_image(
            before in any_image(),
            ops in proptest::collection::vec(any_op(), 1..8),
        ) {
            let mut img = before.clone();
            // Only edits the service accepts change an image.
            prop_assume!(apply_ops(&mut img, &ops).is_ok());
            let undo = undo_ops(&before, &ops).unwrap();
            prop_assert!(validate(&undo).is_ok(), "{:?}", undo);
            prop_assert!(undo.iter().all(|op| op.kind != OpKind::Remove || !is_core(&op.key)));
            let touched: Vec<&str> = ops.iter().map(|o| o.key.as_str()).collect();
            prop_assert!(undo.iter().all(|op| touched.contains(&op.key.as_str())));
            apply_ops(&mut img, &undo).unwrap();
            prop_assert_eq!(without_tag_order(img), without_tag_order(before.clone()));
        }
    }
}

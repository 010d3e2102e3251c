//! Output for people and for scripts beyond the plain table (issue #12):
//! `-o value` lines, the table width on a terminal (with a fallback for
//! terminals that report 0x0), which attributes an edit touched or removed
//! (marked in the table on a terminal), and `--diff` (before → after).
//! The decisions are pure functions; `lib::print_outcome` does the printing.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::{self, Write};

use serde_json::{Map, Value};

use crate::patch::{Op, OpKind};

/// The width a table gets when nothing tells it (no size from the
/// terminal, no usable `COLUMNS`).
pub const DEFAULT_WIDTH: u16 = 80;

/// Columns a two-column condensed table spends on borders and padding:
/// `│ key │ value │`.
const TABLE_CHROME: usize = 7;

/// The least room kept for the Value column beside the longest key.
const MIN_VALUE_WIDTH: usize = 16;

/// One `-o value` line: text as it is, any other value as compact JSON, a
/// missing attribute as an empty line.
pub fn value_text(value: Option<&Value>) -> String {
    match value {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The `-o value` lines of an image: the values of `fields` in that order,
/// or, without fields, of every attribute in table order (keys sorted).
pub fn value_lines(image: &Value, fields: &[String]) -> Vec<String> {
    if !fields.is_empty() {
        return fields
            .iter()
            .map(|f| value_text(image.get(f.as_str())))
            .collect();
    }
    let mut entries: Vec<(&String, &Value)> = image
        .as_object()
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
        .into_iter()
        .map(|(_, v)| value_text(Some(v)))
        .collect()
}

/// Prints the `-o value` lines. Raw when stdout is not a terminal (what a
/// script reads); on a terminal, control and bidirectional characters are
/// escaped (`crate::sanitize`), as in the table.
pub fn write_values(
    out: &mut dyn Write,
    image: &Value,
    fields: &[String],
    terminal: bool,
) -> io::Result<()> {
    for line in value_lines(image, fields) {
        if terminal {
            writeln!(out, "{}", crate::sanitize::escape(&line))?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// `list -o value`: for each image, the values of `fields`, or of its ID,
/// name and status (the table's columns) without them, one per line; raw
/// when stdout is not a terminal, escaped on one.
pub fn write_list_values(out: &mut dyn Write, image: &Value, fields: &[String]) -> io::Result<()> {
    let columns: Vec<String> = if fields.is_empty() {
        ["id", "name", "status"].map(String::from).to_vec()
    } else {
        fields.to_vec()
    };
    write_values(
        out,
        image,
        &columns,
        std::io::IsTerminal::is_terminal(&io::stdout()),
    )
}

/// A batch result with `-o value`: the members of its JSON record (image,
/// name, result, http_status, attempts, error, exit_code), or those named
/// by `fields`, one per line.
pub fn write_result_values(
    out: &mut dyn Write,
    record: &Value,
    fields: &[String],
) -> io::Result<()> {
    let columns: Vec<String> = if fields.is_empty() {
        record
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    } else {
        fields.to_vec()
    };
    write_values(
        out,
        record,
        &columns,
        std::io::IsTerminal::is_terminal(&io::stdout()),
    )
}

/// The line under the table after an edit on a terminal that names the
/// attributes it removed (nothing when it removed none).
pub fn write_removed(out: &mut dyn Write, removed: &[String]) -> io::Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    let names: Vec<_> = removed.iter().map(|k| crate::sanitize::escape(k)).collect();
    writeln!(out, "Removed: {}", names.join(", "))
}

/// The width of a table on a terminal: the size the terminal reports; if it
/// reports none or 0 (as under `script`, `docker exec -t` and some CI
/// runners), `COLUMNS`; else [`DEFAULT_WIDTH`]. Never below what fits the
/// longest property name with some room for its value.
pub fn table_width(reported: Option<u16>, columns: Option<&OsStr>, longest_key: usize) -> u16 {
    let from_env = || {
        columns
            .and_then(OsStr::to_str)
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|&c| c > 0)
    };
    let width = reported
        .filter(|&w| w > 0)
        .or_else(from_env)
        .unwrap_or(DEFAULT_WIDTH);
    let least = longest_key.saturating_add(TABLE_CHROME + MIN_VALUE_WIDTH);
    width.max(u16::try_from(least).unwrap_or(u16::MAX))
}

/// The number of columns the terminal on file descriptor `fd` reports
/// (`None` if it is no terminal or says nothing).
pub fn terminal_columns(fd: i32) -> Option<u16> {
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(size.ws_col)
}

/// Whether escape codes (bold) may be written: only to a terminal, and
/// not when `NO_COLOR` is set to anything but the empty text
/// (<https://no-color.org>).
pub fn styled(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

/// What an edit did to the image's attributes, from its ops and the
/// image after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Attributes set (added or replaced), as in the image after the edit.
    pub touched: BTreeSet<String>,
    /// Attributes removed: no longer in the image.
    pub removed: Vec<String>,
}

/// The attributes `ops` touched: those set, and those removed that the
/// image `after` no longer has (in op order, each once).
pub fn changes(ops: &[Op], after: &Value) -> Changes {
    let mut out = Changes::default();
    for op in ops {
        let present = after.get(op.key.as_str()).is_some();
        match op.kind {
            OpKind::Add | OpKind::Replace if present => {
                out.touched.insert(op.key.clone());
            }
            OpKind::Remove if !present && !out.removed.contains(&op.key) => {
                out.removed.push(op.key.clone());
            }
            _ => {}
        }
    }
    out
}

/// The image as `ops` would leave it (for `--diff --dry-run`): sets and
/// removes applied in order, as the server applies them.
pub fn apply(before: &Value, ops: &[Op]) -> Value {
    let mut image = before.as_object().cloned().unwrap_or_default();
    for op in ops {
        match (&op.kind, &op.value) {
            (OpKind::Remove, _) => {
                image.shift_remove(&op.key);
            }
            (_, Some(v)) => {
                image.insert(op.key.clone(), v.clone());
            }
            (_, None) => {}
        }
    }
    Value::Object(image)
}

/// One attribute of `--diff`: its value before and after (`None`: not set).
#[derive(Debug, Clone, PartialEq)]
pub struct DiffEntry {
    pub key: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The attributes `ops` touch, in op order (each once), before and after.
pub fn diff(before: &Value, after: &Value, ops: &[Op]) -> Vec<DiffEntry> {
    let mut seen = BTreeSet::new();
    ops.iter()
        .filter(|op| seen.insert(op.key.as_str()))
        .map(|op| DiffEntry {
            key: op.key.clone(),
            before: before.get(op.key.as_str()).cloned(),
            after: after.get(op.key.as_str()).cloned(),
        })
        .collect()
}

/// `--diff` as text: `key: before → after`, values as JSON (so `"64"` and
/// `64` differ), `(not set)` for a missing one, and `(unchanged)` when the
/// edit set the value it already had.
pub fn diff_text(entries: &[DiffEntry]) -> String {
    let show = |v: &Option<Value>| v.as_ref().map_or("(not set)".to_string(), Value::to_string);
    let mut out = String::new();
    for e in entries {
        let line = if e.before == e.after {
            format!("{}: {} (unchanged)\n", e.key, show(&e.after))
        } else {
            format!("{}: {} → {}\n", e.key, show(&e.before), show(&e.after))
        };
        out.push_str(&line);
    }
    out
}

/// `--diff -o json`: `{"key": {"before": ..., "after": ...}}`, a side left
/// out when the attribute is not set there.
pub fn diff_json(entries: &[DiffEntry]) -> Value {
    let mut out = Map::new();
    for e in entries {
        let mut sides = Map::new();
        if let Some(v) = &e.before {
            sides.insert("before".into(), v.clone());
        }
        if let Some(v) = &e.after {
            sides.insert("after".into(), v.clone());
        }
        out.insert(e.key.clone(), Value::Object(sides));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn values_follow_the_fields_or_the_table_order() {
        let image = json!({"name": "a b", "min_ram": 0, "tags": ["x", "y"], "checksum": null, "__os_bit": "64"});
        let fields: Vec<String> = ["tags", "nope", "name", "min_ram", "checksum"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            value_lines(&image, &fields),
            [r#"["x","y"]"#, "", "a b", "0", "null"]
        );
        assert_eq!(
            value_lines(&image, &[]),
            ["64", "null", "0", "a b", r#"["x","y"]"#]
        );
    }

    #[test]
    fn width_falls_back_when_the_terminal_reports_zero() {
        let cols = |s: &'static str| Some(OsStr::new(s));
        assert_eq!(table_width(Some(120), cols("90"), 10), 120);
        assert_eq!(table_width(Some(0), cols("90"), 10), 90);
        assert_eq!(table_width(None, cols("90"), 10), 90);
        assert_eq!(table_width(Some(0), None, 10), 80);
        assert_eq!(table_width(Some(0), cols("0"), 10), 80);
        assert_eq!(table_width(Some(0), cols("wide"), 10), 80);
        // Never below the longest key plus borders and some room.
        assert_eq!(table_width(Some(5), None, 30), 30 + 7 + 16);
        assert_eq!(table_width(Some(0), cols("12"), 30), 53);
    }

    #[test]
    fn no_color_and_non_terminals_get_no_escape_codes() {
        assert!(styled(true, None));
        assert!(styled(true, Some(OsStr::new(""))));
        assert!(!styled(true, Some(OsStr::new("1"))));
        assert!(!styled(false, None));
    }

    #[test]
    fn changes_name_set_and_removed_attributes() {
        let ops = vec![
            Op::add("__os_bit", json!("64")),
            Op::remove("__support_kvm"),
            Op::remove("__support_kvm"),
            Op::replace("name", json!("n")),
        ];
        let after = json!({"name": "n", "__os_bit": "64"});
        let c = changes(&ops, &after);
        assert_eq!(
            c.touched.into_iter().collect::<Vec<_>>(),
            ["__os_bit", "name"]
        );
        assert_eq!(c.removed, ["__support_kvm"]);
    }

    #[test]
    fn diff_shows_before_and_after_of_touched_keys_only() {
        let before = json!({"name": "a", "__os_bit": "32", "x": "1", "min_ram": 0});
        let ops = vec![
            Op::replace("name", json!("b")),
            Op::remove("x"),
            Op::add("__new", json!("v")),
            Op::add("min_ram", json!(0)),
        ];
        let after = apply(&before, &ops);
        assert_eq!(
            after,
            json!({"name": "b", "__os_bit": "32", "min_ram": 0, "__new": "v"})
        );
        let d = diff(&before, &after, &ops);
        assert_eq!(
            diff_text(&d),
            "name: \"a\" → \"b\"\nx: \"1\" → (not set)\n__new: (not set) → \"v\"\nmin_ram: 0 (unchanged)\n"
        );
        assert_eq!(
            diff_json(&d),
            json!({"name": {"before": "a", "after": "b"}, "x": {"before": "1"}, "__new": {"after": "v"}, "min_ram": {"before": 0, "after": 0}})
        );
    }

    proptest! {
        #[test]
        fn one_line_per_field_and_text_unquoted(fields in proptest::collection::vec("[a-z_]{1,8}", 0..6), text in "[^\n]*") {
            let image = json!({"a": text.clone(), "b": 1});
            let lines = value_lines(&image, &fields);
            if fields.is_empty() {
                prop_assert_eq!(lines, vec![text, "1".to_string()]);
            } else {
                prop_assert_eq!(lines.len(), fields.len());
            }
        }

        #[test]
        fn width_never_squeezes_the_keys(reported in proptest::option::of(any::<u16>()), key in 0usize..300) {
            let w = table_width(reported, None, key) as usize;
            prop_assert!(w >= (key + TABLE_CHROME + MIN_VALUE_WIDTH).min(u16::MAX as usize));
            prop_assert!(w >= DEFAULT_WIDTH as usize || reported.is_some_and(|r| r > 0));
        }
    }
}

//! Printing an image: a Property/Value table (server text escaped) or the
//! JSON the server returned (its own bytes, re-indented), optionally
//! limited to some fields.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};

use comfy_table::{presets, Attribute, Cell, ColumnConstraint, ContentArrangement, Table};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::sanitize;

use clap::ValueEnum;

/// How the image is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Two columns, Property and Value, keys sorted; control and bidi
    /// characters shown as escapes
    #[default]
    Table,
    /// The image exactly as the server returned it, re-indented (numbers,
    /// key order and repeated keys kept); with --field, those keys' values
    /// as the server wrote them
    Json,
    /// The values alone, one per line, in --field order (see `present`)
    Value,
}

/// What to print and how.
#[derive(Debug, Clone, Default)]
pub struct Style {
    pub format: OutputFormat,
    pub fields: Vec<String>,
    pub quiet: bool,
    /// On a terminal: the attributes an edit set, marked in the table
    /// (bold) unless `NO_COLOR`, and those it removed, named below it.
    pub changes: Option<crate::present::Changes>,
}

/// Keeps only `fields` (in the order given); names those that the image
/// does not have, so the caller can warn about them.
pub fn select<'a>(image: &Value, fields: &'a [String]) -> (Value, Vec<&'a str>) {
    let mut picked = Map::new();
    let mut missing = Vec::new();
    for field in fields {
        match image.get(field) {
            Some(v) => {
                picked.insert(field.clone(), v.clone());
            }
            None => missing.push(field.as_str()),
        }
    }
    (Value::Object(picked), missing)
}

/// A cell's text: strings as they are, everything else as compact JSON;
/// control and bidi characters escaped (see [`sanitize::escape`]).
fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => sanitize::escape(s).into_owned(),
        other => sanitize::escape(&other.to_string()).into_owned(),
    }
}

/// The image as a two-column table; keys sorted unless `keep_order`.
pub fn table(image: &Value, keep_order: bool, terminal: bool) -> Table {
    table_marked(image, keep_order, terminal, &|_| false)
}

/// A table of several columns (`list`, batch results) with `header`: on a
/// terminal it fits the terminal's width as the image table does (cells
/// wrap, except the first column, the image ID, kept whole for copying);
/// elsewhere plain ASCII that never changes shape.
pub fn rows_table_with<S: ToString>(terminal: bool, header: &[S]) -> Table {
    let mut t = rows_table_plain(terminal);
    if !header.is_empty() {
        t.set_header(header.iter().map(ToString::to_string));
        if let Some(first) = t.column_mut(0) {
            first.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
    }
    t
}

fn rows_table_plain(terminal: bool) -> Table {
    let mut t = Table::new();
    if terminal {
        let width = crate::present::table_width(
            crate::present::terminal_columns(1),
            std::env::var_os("COLUMNS").as_deref(),
            0,
        );
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width);
    } else {
        t.load_style(presets::ASCII_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled);
    }
    t
}

/// Like [`table`], with the rows whose key is `marked` in bold (the caller
/// decides whether escape codes may be written) and, on a terminal, a
/// width that survives a terminal reporting 0x0 (`present::table_width`).
pub fn table_marked(
    image: &Value,
    keep_order: bool,
    terminal: bool,
    marked: &dyn Fn(&str) -> bool,
) -> Table {
    let mut rows: Vec<(&String, &Value)> = image
        .as_object()
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    if !keep_order {
        rows.sort_by(|a, b| a.0.cmp(b.0));
    }
    let mut t = Table::new();
    if terminal {
        let longest = rows.iter().map(|(k, _)| k.chars().count()).max();
        let width = crate::present::table_width(
            crate::present::terminal_columns(1),
            std::env::var_os("COLUMNS").as_deref(),
            longest.unwrap_or(0).max("Property".len()),
        );
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width);
    } else {
        t.load_style(presets::ASCII_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled);
    }
    t.set_header(["Property", "Value"]);
    for (k, v) in rows {
        let row = [Cell::new(sanitize::escape(k)), Cell::new(cell(v))];
        if marked(k) {
            t.enforce_styling();
            t.add_row(row.map(|c| c.add_attribute(Attribute::Bold)));
        } else {
            t.add_row(row);
        }
    }
    if terminal {
        // Property names are never broken; the width leaves room for them.
        if let Some(keys) = t.column_mut(0) {
            keys.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    t
}

/// `raw` (valid JSON, as the server wrote it) re-indented as
/// `serde_json`'s pretty printer would, every token kept as written: a
/// number such as `1.10` or a 30-digit integer, a repeated key, a string's
/// own escapes. Characters that must not reach a terminal raw
/// ([`sanitize::is_unsafe`]) inside strings become `\uXXXX` escapes, which
/// JSON reads as the same string. Whitespace between tokens is replaced.
pub fn reindent(raw: &str) -> String {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 4);
    reindent_to(raw, &mut out).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("reindent writes UTF-8")
}

/// [`reindent`], written to `sink` in pieces of about 64 KiB: a large
/// image is never held a second time.
pub fn reindent_to(raw: &str, sink: &mut dyn Write) -> io::Result<()> {
    const PIECE: usize = 64 << 10;
    let mut out = String::with_capacity(PIECE + 64);
    let mut depth = 0usize;
    let mut chars = raw.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while let Some(c) = chars.next() {
        if out.len() >= PIECE {
            sink.write_all(out.as_bytes())?;
            out.clear();
        }
        match c {
            '"' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    if out.len() >= PIECE {
                        sink.write_all(out.as_bytes())?;
                        out.clear();
                    }
                    match c {
                        '"' => break,
                        '\\' => {
                            out.push('\\');
                            if let Some(escaped) = chars.next() {
                                out.push(escaped);
                            }
                            continue;
                        }
                        c if sanitize::is_unsafe(c) => {
                            // Every unsafe character is in the BMP.
                            out.push_str(&format!("\\u{:04x}", c as u32));
                            continue;
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.extend(chars.next());
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    sink.write_all(out.as_bytes())
}

/// The JSON printed for `raw` (the image as the server wrote it): all of
/// it, or a new object of `fields` in that order, each value as the server
/// wrote it (when the server repeated a key, its last value). Names the
/// fields the image does not have.
pub fn json_text<'a>(raw: &[u8], fields: &'a [String]) -> io::Result<(String, Vec<&'a str>)> {
    let text = std::str::from_utf8(raw).map_err(io::Error::other)?;
    if fields.is_empty() {
        return Ok((reindent(text), Vec::new()));
    }
    let all: HashMap<String, &RawValue> = serde_json::from_str(text).map_err(io::Error::other)?;
    let mut picked = String::from("{");
    let mut missing = Vec::new();
    for field in fields {
        match all.get(field) {
            Some(value) => {
                if picked.len() > 1 {
                    picked.push(',');
                }
                picked.push_str(&serde_json::to_string(field).map_err(io::Error::other)?);
                picked.push(':');
                picked.push_str(value.get());
            }
            None => missing.push(field.as_str()),
        }
    }
    picked.push('}');
    Ok((reindent(&picked), missing))
}

/// Prints the image to stdout as `style` says: `value` parsed, `raw` the
/// bytes the server sent it in; warnings go to stderr.
pub fn print_image(image: &Value, raw: &[u8], style: &Style) -> io::Result<()> {
    if style.quiet {
        return Ok(());
    }
    let warn = |missing: Vec<&str>| {
        for field in missing {
            log::warn!("the image has no attribute '{field}'");
        }
    };
    let stdout = io::stdout();
    let terminal = stdout.is_terminal();
    match style.format {
        OutputFormat::Json if style.fields.is_empty() => {
            let text = std::str::from_utf8(raw).map_err(io::Error::other)?;
            let mut out = io::BufWriter::with_capacity(64 << 10, stdout.lock());
            reindent_to(text, &mut out)?;
            writeln!(out)?;
            out.flush()
        }
        OutputFormat::Json => {
            let (text, missing) = json_text(raw, &style.fields)?;
            warn(missing);
            let mut out = stdout.lock();
            out.write_all(text.as_bytes())?;
            writeln!(out)?;
            out.flush()
        }
        OutputFormat::Value => {
            let (_, missing) = select(image, &style.fields);
            warn(missing);
            let mut out = stdout.lock();
            crate::present::write_values(&mut out, image, &style.fields, terminal)?;
            out.flush()
        }
        OutputFormat::Table => {
            let selected;
            let shown = if style.fields.is_empty() {
                image
            } else {
                let (picked, missing) = select(image, &style.fields);
                warn(missing);
                selected = picked;
                &selected
            };
            let mut out = stdout.lock();
            let changes = style.changes.as_ref().filter(|_| terminal);
            let bold = crate::present::styled(terminal, std::env::var_os("NO_COLOR").as_deref());
            let marked = |k: &str| bold && changes.is_some_and(|c| c.touched.contains(k));
            // Line by line: a table of a large image is never held twice.
            for line in table_marked(shown, !style.fields.is_empty(), terminal, &marked).lines() {
                writeln!(out, "{line}")?;
            }
            if let Some(changes) = changes {
                crate::present::write_removed(&mut out, &changes.removed)?;
            }
            out.flush()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_sorts_keys_and_shows_lists_compactly() {
        let image = json!({"name": "ims_test", "tags": ["a", "b"], "min_ram": 0, "checksum": null, "__os_bit": "64"});
        let text = table(&image, false, false).to_string();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("| "))
            .map(|l| l.split('|').nth(1).unwrap().trim())
            .collect();
        assert_eq!(
            keys,
            ["Property", "__os_bit", "checksum", "min_ram", "name", "tags"]
        );
        assert!(text.contains(r#"["a","b"]"#));
        assert!(text.contains("| null "));
    }

    #[test]
    fn table_cells_and_keys_are_escaped() {
        let image = json!({"evil\u{1b}[2J": "a\u{1b}]0;t\u{7}b\rc\u{202e}d", "n": ["\u{9b}"]});
        let text = table(&image, false, false).to_string();
        assert!(
            !text.chars().any(|c| sanitize::is_unsafe(c) && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains("evil\\u001b[2J"), "{text}");
        assert!(text.contains("a\\u001b]0;t\\u0007b\\rc\\u202ed"), "{text}");
    }

    #[test]
    fn reindent_keeps_every_token_as_written() {
        let raw = r#"{"ratio":1.10, "big" : 123456789012345678901234567890,"dup":1,"dup":2,"e":1E+2,"s":"a\"b\\","u":"\u00e9","x":{},"y":[ ],"z":[{"a":null}]}"#;
        assert_eq!(
            reindent(raw),
            "{\n  \"ratio\": 1.10,\n  \"big\": 123456789012345678901234567890,\n  \"dup\": 1,\n  \"dup\": 2,\n  \"e\": 1E+2,\n  \"s\": \"a\\\"b\\\\\",\n  \"u\": \"\\u00e9\",\n  \"x\": {},\n  \"y\": [],\n  \"z\": [\n    {\n      \"a\": null\n    }\n  ]\n}"
        );
        // Raw bidi and C1 characters in a string become escapes.
        assert_eq!(
            reindent("[\"a\u{202e}\u{9b}\"]"),
            "[\n  \"a\\u202e\\u009b\"\n]"
        );
    }

    #[test]
    fn fields_keep_the_servers_values() {
        let raw = br#"{"a": 1.10, "b": 2, "dup": 1, "dup": 2}"#;
        let fields: Vec<String> = ["dup", "x", "a"].iter().map(|f| f.to_string()).collect();
        let (text, missing) = json_text(raw, &fields).unwrap();
        assert_eq!(text, "{\n  \"dup\": 2,\n  \"a\": 1.10\n}");
        assert_eq!(missing, ["x"]);
    }

    proptest::proptest! {
        #[test]
        fn reindent_matches_serde_json_pretty(value in arbitrary_json()) {
            let compact = value.to_string();
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            proptest::prop_assert_eq!(reindent(&compact), pretty.clone());
            proptest::prop_assert_eq!(reindent(&pretty), pretty);
        }
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z\"\\\\ {}\\[\\],:]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("[a-z:,]{0,4}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn select_keeps_given_order_and_reports_missing() {
        let image = json!({"a": 1, "b": 2, "c": 3});
        let fields = vec!["c".to_string(), "x".to_string(), "a".to_string()];
        let (shown, missing) = select(&image, &fields);
        assert_eq!(shown.to_string(), r#"{"c":3,"a":1}"#);
        assert_eq!(missing, ["x"]);
    }
}

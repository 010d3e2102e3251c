//! Printing an image: a Property/Value table or the JSON the server returned,
//! optionally limited to some fields.

use std::io::{self, IsTerminal, Write};

use comfy_table::{presets, Attribute, Cell, ColumnConstraint, ContentArrangement, Table};
use serde_json::{Map, Value};

use clap::ValueEnum;

/// How the image is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Two columns, Property and Value, keys sorted
    #[default]
    Table,
    /// The image exactly as the server returned it, pretty-printed
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

/// A cell's text: strings as they are, everything else as compact JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The image as a two-column table; keys sorted unless `keep_order`.
pub fn table(image: &Value, keep_order: bool, terminal: bool) -> Table {
    table_marked(image, keep_order, terminal, &|_| false)
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
        let row = [Cell::new(k), Cell::new(cell(v))];
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

/// Prints the image to stdout as `style` says; warnings go to stderr.
pub fn print_image(image: &Value, style: &Style) -> io::Result<()> {
    if style.quiet {
        return Ok(());
    }
    let selected;
    let shown = if style.fields.is_empty() {
        image
    } else {
        let (picked, missing) = select(image, &style.fields);
        for field in missing {
            eprintln!("ims-patch: warning: the image has no attribute '{field}'");
        }
        selected = picked;
        &selected
    };
    let stdout = io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = stdout.lock();
    match style.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, shown)?;
            writeln!(out)?;
        }
        OutputFormat::Value => {
            crate::present::write_values(&mut out, image, &style.fields, terminal)?
        }
        OutputFormat::Table => {
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
        }
    }
    out.flush()
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
    fn select_keeps_given_order_and_reports_missing() {
        let image = json!({"a": 1, "b": 2, "c": 3});
        let fields = vec!["c".to_string(), "x".to_string(), "a".to_string()];
        let (shown, missing) = select(&image, &fields);
        assert_eq!(shown.to_string(), r#"{"c":3,"a":1}"#);
        assert_eq!(missing, ["x"]);
    }
}

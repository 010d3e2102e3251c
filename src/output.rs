//! Printing an image: a Property/Value table or the JSON the server returned,
//! optionally limited to some fields.

use std::io::{self, IsTerminal, Write};

use comfy_table::{presets, ContentArrangement, Table};
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
}

/// What to print and how.
#[derive(Debug, Clone, Default)]
pub struct Style {
    pub format: OutputFormat,
    pub fields: Vec<String>,
    pub quiet: bool,
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
    let mut rows: Vec<(&String, &Value)> = image
        .as_object()
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    if !keep_order {
        rows.sort_by(|a, b| a.0.cmp(b.0));
    }
    let mut t = Table::new();
    if terminal {
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        t.load_style(presets::ASCII_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled);
    }
    t.set_header(["Property", "Value"]);
    for (k, v) in rows {
        t.add_row([k.clone(), cell(v)]);
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
        OutputFormat::Table => {
            // Line by line: a table of a large image is never held twice.
            for line in table(shown, !style.fields.is_empty(), terminal).lines() {
                writeln!(out, "{line}")?;
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

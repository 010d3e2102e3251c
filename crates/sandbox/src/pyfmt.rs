//! Python-compatible text formatting (repr, str, json.dumps, pprint, str.title, str.strip) so sandbox messages read byte-for-byte like Glance's.

use serde_json::Value;

/// Python's `str.isspace()` for one character.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Python's `str.title()` (close enough for the ASCII and common Unicode cases).
pub fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_cased = false;
    for c in s.chars() {
        let cased = c.is_uppercase() || c.is_lowercase();
        if cased {
            if prev_cased {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
        } else {
            out.push(c);
        }
        prev_cased = cased;
    }
    out
}

/// Python's `str.isprintable()` for one non-ASCII character (approximated
/// without Unicode tables: control, format, separator, private-use and
/// non-characters are treated as unprintable).
fn is_printable(c: char) -> bool {
    let u = c as u32;
    !matches!(u,
        0x80..=0xa0
        | 0xad
        | 0x600..=0x605
        | 0x61c
        | 0x6dd
        | 0x70f
        | 0x1680
        | 0x180e
        | 0x2000..=0x200f
        | 0x2028..=0x202f
        | 0x205f..=0x206f
        | 0x3000
        | 0xd800..=0xf8ff
        | 0xfdd0..=0xfdef
        | 0xfeff
        | 0xfff9..=0xfffb
        | 0xfffe..=0xffff
        | 0x110bd
        | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a
        | 0xe0001
        | 0xe0020..=0xe007f
        | 0xf0000..=0x10ffff)
}

/// Python's `repr()` of a `str`.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x7f => out.push(c),
            c if is_printable(c) => out.push(c),
            c if (c as u32) <= 0xff => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a float.
pub fn repr_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{f:?}");
    match s.split_once('e') {
        None => s,
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            let mantissa = mantissa.strip_suffix(".0").unwrap_or(mantissa);
            format!("{mantissa}e{sign}{digits:0>2}")
        }
    }
}

fn repr_number(n: &serde_json::Number) -> String {
    if n.is_f64() {
        repr_float(n.as_f64().unwrap_or(f64::NAN))
    } else {
        n.to_string()
    }
}

/// Python's `repr()` of the object `json.loads` would have produced.
pub fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => repr_number(n),
        Value::String(s) => repr_str(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", repr_str(k), repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Python's `str()`: strings as they are, everything else as `repr()`.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

fn dumps_str(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ensure_ascii && (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn dumps_into(v: &Value, ensure_ascii: bool, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap_or(0.0);
                out.push_str(&repr_float(f));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => dumps_str(s, ensure_ascii, out),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dumps_into(item, ensure_ascii, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dumps_str(k, ensure_ascii, out);
                out.push_str(": ");
                dumps_into(item, ensure_ascii, out);
            }
            out.push('}');
        }
    }
}

/// Python's `json.dumps(v, ensure_ascii=...)` with the default separators
/// (`", "` and `": "`), which is what Glance and webob send.
pub fn dumps(v: &Value, ensure_ascii: bool) -> String {
    let mut out = String::new();
    dumps_into(v, ensure_ascii, &mut out);
    out
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Python's `str.splitlines(keepends=True)`.
fn splitlines_keep(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{b}'
                | '\u{c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = iter.peek() {
                    end = j + 1;
                    iter.next();
                }
            }
            lines.push(&s[start..end]);
            start = end;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// `re.findall(r'\S*\s*', line)` without the trailing empty match.
fn word_parts(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in line.char_indices() {
        let space = is_space(c);
        if !space && in_space {
            parts.push(&line[start..i]);
            start = i;
        }
        in_space = space;
    }
    if start < line.len() {
        parts.push(&line[start..]);
    }
    parts
}

const WIDTH: usize = 72;

fn pformat_str(s: &str, out: &mut String, mut indent: usize, mut allowance: usize, level: usize) {
    if s.is_empty() {
        out.push_str(&repr_str(s));
        return;
    }
    let lines = splitlines_keep(s);
    if level == 1 {
        indent += 1;
        allowance += 1;
    }
    let max_width = WIDTH.saturating_sub(indent);
    let mut max_width1 = max_width;
    let mut chunks: Vec<String> = Vec::new();
    let mut last_rep = String::new();
    for (i, line) in lines.iter().enumerate() {
        let rep = repr_str(line);
        if i == lines.len() - 1 {
            max_width1 = max_width1.saturating_sub(allowance);
        }
        if char_len(&rep) <= max_width1 {
            chunks.push(rep.clone());
        } else {
            let parts = word_parts(line);
            let mut max_width2 = max_width;
            let mut current = String::new();
            for (j, part) in parts.iter().enumerate() {
                let candidate = format!("{current}{part}");
                if j == parts.len() - 1 && i == lines.len() - 1 {
                    max_width2 = max_width2.saturating_sub(allowance);
                }
                if char_len(&repr_str(&candidate)) > max_width2 {
                    if !current.is_empty() {
                        chunks.push(repr_str(&current));
                    }
                    current = (*part).to_string();
                } else {
                    current = candidate;
                }
            }
            if !current.is_empty() {
                chunks.push(repr_str(&current));
            }
        }
        last_rep = rep;
    }
    if chunks.len() == 1 {
        out.push_str(&last_rep);
        return;
    }
    if level == 1 {
        out.push('(');
    }
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(chunk);
    }
    if level == 1 {
        out.push(')');
    }
}

fn pformat_into(v: &Value, out: &mut String, indent: usize, allowance: usize, level: usize) {
    let rep = repr(v);
    let max_width = WIDTH as isize - indent as isize - allowance as isize;
    if (char_len(&rep) as isize) <= max_width {
        out.push_str(&rep);
        return;
    }
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('{');
            let indent = indent + 1;
            let last_index = m.len() - 1;
            for (i, (k, item)) in m.iter().enumerate() {
                let last = i == last_index;
                let krep = repr_str(k);
                out.push_str(&krep);
                out.push_str(": ");
                let item_allowance = if last { allowance + 1 } else { 1 };
                pformat_into(
                    item,
                    out,
                    indent + char_len(&krep) + 2,
                    item_allowance,
                    level + 1,
                );
                if !last {
                    out.push_str(",\n");
                    out.push_str(&" ".repeat(indent));
                }
            }
            out.push('}');
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('[');
            let indent = indent + 1;
            let last_index = a.len() - 1;
            for (i, item) in a.iter().enumerate() {
                let last = i == last_index;
                if i > 0 {
                    out.push_str(",\n");
                    out.push_str(&" ".repeat(indent));
                }
                let item_allowance = if last { allowance + 1 } else { 1 };
                pformat_into(item, out, indent, item_allowance, level + 1);
            }
            out.push(']');
        }
        Value::String(s) => pformat_str(s, out, indent, allowance, level + 1),
        _ => out.push_str(&rep),
    }
}

/// Python's `pprint.pformat(v, width=72, sort_dicts=False)`, as used by
/// jsonschema for the "Failed validating ..." part of its messages.
pub fn pformat(v: &Value) -> String {
    let mut out = String::new();
    pformat_into(v, &mut out, 0, 0, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repr_matches_python() {
        assert_eq!(repr(&json!("abc")), "'abc'");
        assert_eq!(repr(&json!("it's")), "\"it's\"");
        assert_eq!(repr(&json!("a'b\"c")), "'a\\'b\"c'");
        assert_eq!(repr(&json!("a\nb\tc\u{1}")), "'a\\nb\\tc\\x01'");
        assert_eq!(repr(&json!("тест ✓ \u{a0}")), "'тест ✓ \\xa0'");
        assert_eq!(repr(&json!(null)), "None");
        assert_eq!(repr(&json!(true)), "True");
        assert_eq!(repr(&json!(1.5)), "1.5");
        assert_eq!(repr(&json!(100.0)), "100.0");
        assert_eq!(repr(&json!(1e20)), "1e+20");
        assert_eq!(repr(&json!(42)), "42");
        assert_eq!(repr(&json!(["a"])), "['a']");
        assert_eq!(
            repr(&json!({"a": "b", "c": [1, null]})),
            "{'a': 'b', 'c': [1, None]}"
        );
        assert_eq!(py_str(&json!("x")), "x");
        assert_eq!(py_str(&json!(1)), "1");
    }

    #[test]
    fn title_and_strip_match_python() {
        assert_eq!(title("emoji"), "Emoji");
        assert_eq!(title("__description"), "__Description");
        assert_eq!(title("hw_firmware_TYPE"), "Hw_Firmware_Type");
        assert_eq!(title("x2y"), "X2Y");
        assert_eq!(strip("  spaced \u{1f}"), "spaced");
    }

    #[test]
    fn dumps_matches_python() {
        let v = json!({"message": "é\n\"x\"", "code": "409 Conflict", "n": [1, 2.5]});
        assert_eq!(
            dumps(&v, true),
            r#"{"message": "\u00e9\n\"x\"", "code": "409 Conflict", "n": [1, 2.5]}"#
        );
        assert_eq!(dumps(&json!({"k": "é😀"}), false), "{\"k\": \"é😀\"}");
        assert_eq!(dumps(&json!("😀"), true), "\"\\ud83d\\ude00\"");
    }

    #[test]
    fn pformat_wraps_like_pprint() {
        let short = json!({"type": "string"});
        assert_eq!(pformat(&short), "{'type': 'string'}");
        let v = json!({"type": "integer", "description": "Amount of ram (in MB) required to boot image."});
        assert_eq!(
            pformat(&v),
            "{'type': 'integer',\n 'description': 'Amount of ram (in MB) required to boot image.'}"
        );
        let long = json!("word ".repeat(20));
        let out = pformat(&long);
        assert!(out.starts_with("('word "), "{out}");
        assert!(out.ends_with("')"), "{out}");
        assert!(out.lines().all(|l| l.chars().count() <= 72), "{out}");
    }
}

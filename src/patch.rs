//! The patch operation model: both wire formats, JSON Pointer escaping, the
//! v2.1 op-list reader and the local checks that refuse what Glance would.

use std::fmt;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// The two PATCH media types of the Images API v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PatchFormat {
    /// `[{"op":"replace","path":"/name","value":"x"}]` (RFC 6902 style)
    #[default]
    #[value(name = "v2.1")]
    V21,
    /// `[{"replace":"/name","value":"x"}]` (the older OpenStack form)
    #[value(name = "v2.0")]
    V20,
}

impl PatchFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            PatchFormat::V21 => "application/openstack-images-v2.1-json-patch",
            PatchFormat::V20 => "application/openstack-images-v2.0-json-patch",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PatchFormat::V21 => "v2.1",
            PatchFormat::V20 => "v2.0",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Remove => "remove",
            OpKind::Replace => "replace",
        }
    }
}

/// One change to one top-level image attribute. `key` is the attribute name
/// as stored (unescaped); escaping happens only when it is put on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub kind: OpKind,
    pub key: String,
    pub value: Option<Value>,
}

impl Op {
    pub fn add(key: impl Into<String>, value: Value) -> Op {
        Op {
            kind: OpKind::Add,
            key: key.into(),
            value: Some(value),
        }
    }

    pub fn replace(key: impl Into<String>, value: Value) -> Op {
        Op {
            kind: OpKind::Replace,
            key: key.into(),
            value: Some(value),
        }
    }

    pub fn remove(key: impl Into<String>) -> Op {
        Op {
            kind: OpKind::Remove,
            key: key.into(),
            value: None,
        }
    }

    /// The op as one element of a request body in the given format.
    pub fn to_wire(&self, format: PatchFormat) -> Value {
        let path = encode_pointer(&self.key);
        let mut obj = Map::new();
        match format {
            PatchFormat::V21 => {
                obj.insert("op".into(), json!(self.kind.as_str()));
                obj.insert("path".into(), json!(path));
            }
            PatchFormat::V20 => {
                obj.insert(self.kind.as_str().into(), json!(path));
            }
        }
        if let Some(value) = &self.value {
            obj.insert("value".into(), value.clone());
        }
        Value::Object(obj)
    }
}

/// The request body for `ops` in `format`.
pub fn to_body(ops: &[Op], format: PatchFormat) -> Value {
    Value::Array(ops.iter().map(|op| op.to_wire(format)).collect())
}

/// `key` as a one-level JSON Pointer (RFC 6901): `~` → `~0`, `/` → `~1`.
pub fn encode_pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The attribute name a one-level JSON Pointer names.
pub fn decode_pointer(path: &str) -> std::result::Result<String, String> {
    let Some(token) = path.strip_prefix('/') else {
        return Err(format!("path '{path}' must start with '/'"));
    };
    if token.contains('/') {
        return Err(format!(
            "path '{path}' points below the top level; image attributes are flat, so a path names one attribute (write '/' inside a key as '~1')"
        ));
    }
    let mut key = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            key.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => key.push('~'),
            Some('1') => key.push('/'),
            _ => {
                return Err(format!(
                    "path '{path}' has a '~' that is not part of '~0' or '~1'"
                ))
            }
        }
    }
    Ok(key)
}

/// Attributes the service computes; no request may touch them.
pub const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "created_at",
    "updated_at",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "self",
    "file",
    "schema",
    "direct_url",
    "stores",
];

/// Attributes Glance reserves for itself.
pub const RESERVED: &[&str] = &["location", "locations", "deleted", "deleted_at"];

/// Base attributes every image has: they can be changed but never removed.
pub const CORE: &[&str] = &[
    "name",
    "min_ram",
    "min_disk",
    "visibility",
    "protected",
    "os_hidden",
    "tags",
    "owner",
    "container_format",
    "disk_format",
];

pub const VISIBILITIES: &[&str] = &["public", "private", "shared", "community"];

/// The largest value Glance accepts for `min_ram` and `min_disk`.
pub const MAX_INT: i64 = 2_147_483_647;
/// Glance's length limit for a name and for a tag.
pub const MAX_NAME_CHARS: usize = 255;
/// Glance's default `image_tag_quota`.
pub const MAX_TAGS: usize = 128;

/// The JSON type a known attribute takes; everything else is a custom
/// attribute, whose values Glance requires to be strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    Integer,
    Boolean,
    Visibility,
    Tags,
    /// A string that may also be null (name, owner, formats, kernel_id, ...).
    NullableString,
    /// A string, as the schema demands for custom attributes.
    String,
}

pub fn attr_type(key: &str) -> AttrType {
    match key {
        "min_ram" | "min_disk" => AttrType::Integer,
        "protected" | "os_hidden" => AttrType::Boolean,
        "visibility" => AttrType::Visibility,
        "tags" => AttrType::Tags,
        "name" | "owner" | "container_format" | "disk_format" | "kernel_id" | "ramdisk_id" => {
            AttrType::NullableString
        }
        _ => AttrType::String,
    }
}

pub fn is_core(key: &str) -> bool {
    CORE.contains(&key)
}

/// Turns the text of `KEY=VALUE` into the JSON value the attribute takes.
pub fn typed_value(key: &str, text: &str) -> Result<Value> {
    match attr_type(key) {
        AttrType::Integer => text.trim().parse::<i64>().map(Value::from).map_err(|_| {
            Error::usage(format!(
                "'{key}' takes a whole number of {}, not '{text}'",
                unit(key)
            ))
            .hint(format!("for example: {key}=1024"))
        }),
        AttrType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(
                Error::usage(format!("'{key}' takes true or false, not '{text}'"))
                    .hint(format!("for example: {key}=true")),
            ),
        },
        AttrType::Tags => Ok(Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| Value::String(t.to_string()))
                .collect(),
        )),
        AttrType::Visibility | AttrType::NullableString | AttrType::String => {
            Ok(Value::String(text.to_string()))
        }
    }
}

fn unit(key: &str) -> &'static str {
    if key == "min_ram" {
        "MiB"
    } else {
        "GiB"
    }
}

fn has_4byte_utf8(s: &str) -> bool {
    s.chars().any(|c| c.len_utf8() == 4)
}

fn show_value(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

/// Refuses, before anything is sent, every op that Glance is known to refuse
/// (and whitespace-padded keys, which Glance silently strips).
pub fn validate(ops: &[Op]) -> Result<()> {
    ops.iter().try_for_each(validate_op)
}

fn validate_op(op: &Op) -> Result<()> {
    let key = op.key.as_str();
    if key.trim().is_empty() {
        return Err(Error::usage("an attribute name cannot be empty"));
    }
    if key.trim() != key {
        return Err(Error::usage(format!(
            "attribute name '{key}' starts or ends with white space, which the service would strip"
        ))
        .hint(format!("write it as '{}'", key.trim())));
    }
    if has_4byte_utf8(key) {
        return Err(Error::usage(format!(
            "attribute name '{key}' contains a 4-byte UTF-8 character (such as an emoji), which the service refuses"
        )));
    }
    if READ_ONLY.contains(&key) {
        return Err(Error::usage(format!(
            "'{key}' is read-only: the image service sets it and refuses any change"
        )));
    }
    if RESERVED.contains(&key) || key.starts_with("os_glance") {
        return Err(Error::usage(format!(
            "'{key}' is reserved by the image service and cannot be changed through a patch"
        )));
    }
    match (op.kind, &op.value) {
        (OpKind::Remove, _) => {
            if is_core(key) {
                let hint = match attr_type(key) {
                    AttrType::Tags => {
                        "to clear the tags, set them to an empty list: tags:='[]'".to_string()
                    }
                    _ => format!(
                        "set it to another value instead: ims-patch set-attr IMAGE {key}=..."
                    ),
                };
                return Err(Error::usage(format!(
                    "'{key}' is a base attribute of every image and cannot be removed"
                ))
                .hint(hint));
            }
            Ok(())
        }
        (_, None) => Err(Error::usage(format!(
            "'{}' on '{key}' needs a value",
            op.kind.as_str()
        ))),
        (_, Some(value)) => validate_value(key, value),
    }
}

fn validate_value(key: &str, value: &Value) -> Result<()> {
    let wrong_type = |expected: &str| {
        Error::usage(format!(
            "'{key}' takes {expected}, not {}",
            show_value(value)
        ))
    };
    match attr_type(key) {
        AttrType::Integer => {
            let Some(n) = value.as_i64() else {
                return Err(wrong_type("a whole number"));
            };
            if !(0..=MAX_INT).contains(&n) {
                return Err(Error::usage(format!(
                    "'{key}' must be between 0 and {MAX_INT}, not {n}"
                )));
            }
        }
        AttrType::Boolean => {
            if !value.is_boolean() {
                return Err(wrong_type("true or false"));
            }
        }
        AttrType::Visibility => {
            let ok = value.as_str().is_some_and(|v| VISIBILITIES.contains(&v));
            if !ok {
                return Err(wrong_type("one of public, private, shared, community"));
            }
        }
        AttrType::Tags => {
            let Some(tags) = value.as_array() else {
                return Err(
                    wrong_type("a list of strings").hint("write tags=a,b or tags:='[\"a\",\"b\"]'")
                );
            };
            for tag in tags {
                let Some(tag) = tag.as_str() else {
                    return Err(wrong_type("a list of strings"));
                };
                check_text(key, tag)?;
                if tag.chars().count() > MAX_NAME_CHARS {
                    return Err(Error::usage(format!(
                        "tag '{}...' is longer than {MAX_NAME_CHARS} characters",
                        tag.chars().take(20).collect::<String>()
                    )));
                }
            }
            let mut unique: Vec<&str> = tags.iter().filter_map(Value::as_str).collect();
            unique.sort_unstable();
            unique.dedup();
            if unique.len() > MAX_TAGS {
                return Err(Error::usage(format!(
                    "{} tags are more than the {MAX_TAGS} an image may have",
                    unique.len()
                )));
            }
        }
        AttrType::NullableString | AttrType::String => {
            let nullable = attr_type(key) == AttrType::NullableString;
            match value {
                Value::String(s) => {
                    check_text(key, s)?;
                    if key == "name" && s.chars().count() > MAX_NAME_CHARS {
                        return Err(Error::usage(format!(
                            "the name is {} characters long; the service allows at most {MAX_NAME_CHARS}",
                            s.chars().count()
                        )));
                    }
                }
                Value::Null if nullable => {}
                _ if nullable => return Err(wrong_type("a string or null")),
                _ => {
                    return Err(wrong_type("a string (custom attributes hold text only)")
                        .hint(format!("quote it as text: {key}={}", plain_text(value))))
                }
            }
        }
    }
    Ok(())
}

fn plain_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn check_text(key: &str, text: &str) -> Result<()> {
    if has_4byte_utf8(text) {
        return Err(Error::usage(format!(
            "the value of '{key}' contains a 4-byte UTF-8 character (such as an emoji), which the service refuses"
        )));
    }
    Ok(())
}

/// A problem in a v2.1 op list read from a file, located by op number.
#[derive(Debug)]
pub struct OpListError {
    pub index: Option<usize>,
    pub message: String,
}

impl fmt::Display for OpListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "operation {}: {}", i + 1, self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Reads an op list written in the v2.1 form:
/// `[{"op": "add"|"remove"|"replace", "path": "/key", "value": ...}]`.
pub fn parse_op_list(text: &str) -> std::result::Result<Vec<Op>, OpListError> {
    let top = |message: String| OpListError {
        index: None,
        message,
    };
    let doc: Value = serde_json::from_str(text).map_err(|e| top(format!("not valid JSON: {e}")))?;
    let Value::Array(items) = doc else {
        return Err(top(
            "expected a JSON array of operations, like [{\"op\": \"replace\", \"path\": \"/name\", \"value\": \"x\"}]".into(),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            parse_op(item).map_err(|message| OpListError {
                index: Some(i),
                message,
            })
        })
        .collect()
}

fn parse_op(item: &Value) -> std::result::Result<Op, String> {
    let Value::Object(obj) = item else {
        return Err(format!("expected an object, found {item}"));
    };
    for old in ["add", "remove", "replace"] {
        if obj.contains_key(old) && !obj.contains_key("op") {
            return Err(format!(
                "this is the v2.0 form; write it as {{\"op\": \"{old}\", \"path\": ..., ...}} (the file is always in the v2.1 form; --patch-format picks what is sent)"
            ));
        }
    }
    if let Some(extra) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "op" | "path" | "value"))
    {
        return Err(format!(
            "unknown member '{extra}' (an operation has only \"op\", \"path\" and \"value\")"
        ));
    }
    let kind = match obj.get("op") {
        None => return Err("missing \"op\"".into()),
        Some(Value::String(s)) => match s.as_str() {
            "add" => OpKind::Add,
            "remove" => OpKind::Remove,
            "replace" => OpKind::Replace,
            other => {
                return Err(format!(
                    "op '{other}' is not supported by the Images API (only add, remove and replace)"
                ))
            }
        },
        Some(other) => return Err(format!("\"op\" must be a string, not {other}")),
    };
    let path = match obj.get("path") {
        None => return Err("missing \"path\"".into()),
        Some(Value::String(s)) => s,
        Some(other) => return Err(format!("\"path\" must be a string, not {other}")),
    };
    let key = decode_pointer(path)?;
    let value = obj.get("value").cloned();
    match (kind, &value) {
        (OpKind::Remove, Some(_)) => {
            return Err("\"remove\" takes no \"value\"".into());
        }
        (OpKind::Add | OpKind::Replace, None) => {
            return Err(format!("\"{}\" needs a \"value\"", kind.as_str()));
        }
        _ => {}
    }
    Ok(Op { kind, key, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_escaping_round_trips() {
        for key in [
            "name",
            "foo/bar",
            "foo~bar",
            "~1",
            "a~0/b",
            "ключ-キー",
            "with space",
        ] {
            let path = encode_pointer(key);
            assert_eq!(decode_pointer(&path).unwrap(), key, "{path}");
        }
        assert_eq!(encode_pointer("foo/bar"), "/foo~1bar");
        assert_eq!(encode_pointer("foo~bar"), "/foo~0bar");
        assert_eq!(encode_pointer("~1"), "/~01");
    }

    #[test]
    fn bad_pointers_are_refused() {
        for path in ["name", "", "/a/b", "/foo~2", "/foo~", "/tags/-"] {
            assert!(decode_pointer(path).is_err(), "{path}");
        }
        assert_eq!(decode_pointer("/foo~01").unwrap(), "foo~1");
    }

    #[test]
    fn wire_formats() {
        let ops = [
            Op::replace("name", json!("x")),
            Op::add("a/b", json!("1")),
            Op::remove("c"),
        ];
        assert_eq!(
            to_body(&ops, PatchFormat::V21),
            json!([
                {"op": "replace", "path": "/name", "value": "x"},
                {"op": "add", "path": "/a~1b", "value": "1"},
                {"op": "remove", "path": "/c"}
            ])
        );
        assert_eq!(
            to_body(&ops, PatchFormat::V20),
            json!([
                {"replace": "/name", "value": "x"},
                {"add": "/a~1b", "value": "1"},
                {"remove": "/c"}
            ])
        );
        // Member order on the wire is op, path, value, like the API page.
        assert_eq!(
            ops[0].to_wire(PatchFormat::V21).to_string(),
            r#"{"op":"replace","path":"/name","value":"x"}"#
        );
    }

    #[test]
    fn typed_values_from_text() {
        assert_eq!(typed_value("min_ram", "1024").unwrap(), json!(1024));
        assert_eq!(typed_value("protected", "True").unwrap(), json!(true));
        assert_eq!(
            typed_value("tags", "a, b,,c").unwrap(),
            json!(["a", "b", "c"])
        );
        assert_eq!(typed_value("tags", "").unwrap(), json!([]));
        assert_eq!(typed_value("__os_bit", "64").unwrap(), json!("64"));
        assert_eq!(
            typed_value("visibility", "private").unwrap(),
            json!("private")
        );
        let e = typed_value("min_ram", "lots").unwrap_err();
        assert!(e.message.contains("'lots'"), "{}", e.message);
        assert!(typed_value("os_hidden", "yes").is_err());
    }

    fn refused(op: Op) -> String {
        validate(&[op]).unwrap_err().message
    }

    #[test]
    fn local_checks_refuse_what_glance_refuses() {
        for key in READ_ONLY.iter().chain(RESERVED) {
            assert!(refused(Op::replace(*key, json!("x"))).contains(key));
            assert!(validate(&[Op::remove(*key)]).is_err());
        }
        assert!(refused(Op::add("os_glance_x", json!("1"))).contains("reserved"));
        for key in CORE {
            assert!(refused(Op::remove(*key)).contains("cannot be removed"));
        }
        assert!(refused(Op::add("num", json!(42))).contains("string"));
        assert!(refused(Op::add("n", Value::Null)).contains("string"));
        assert!(refused(Op::add("", json!("x"))).contains("empty"));
        assert!(refused(Op::add(" a", json!("x"))).contains("white space"));
        assert!(refused(Op::replace("name", json!("n".repeat(256)))).contains("256"));
        assert!(validate(&[Op::replace("name", json!("n".repeat(255)))]).is_ok());
        assert!(validate(&[Op::replace("name", Value::Null)]).is_ok());
        assert!(refused(Op::replace("name", json!("a😀"))).contains("4-byte"));
        assert!(refused(Op::add("k😀", json!("v"))).contains("4-byte"));
        assert!(refused(Op::add("k", json!("v😀"))).contains("4-byte"));
        assert!(refused(Op::replace("min_ram", json!(-1))).contains("-1"));
        assert!(refused(Op::replace("min_ram", json!(2147483648i64))).contains("2147483648"));
        assert!(refused(Op::replace("min_ram", json!(1.5))).contains("whole number"));
        assert!(refused(Op::replace("min_ram", json!("512"))).contains("whole number"));
        assert!(refused(Op::replace("protected", json!("true"))).contains("true or false"));
        assert!(refused(Op::replace("visibility", json!("bogus"))).contains("public"));
        assert!(refused(Op::replace("tags", json!("x"))).contains("list"));
        let many: Vec<String> = (0..129).map(|i| format!("t{i}")).collect();
        assert!(refused(Op::replace("tags", json!(many))).contains("129"));
        assert!(validate(&[
            Op::add("ключ-キー", json!("значение-値 ✓")),
            Op::replace("min_ram", json!(2147483647)),
            Op::replace("tags", json!(["x", "x"])),
            Op::add("foo/bar", json!("")),
            Op::remove("__support_kvm"),
        ])
        .is_ok());
    }

    #[test]
    fn op_lists_in_v21_form() {
        let ops = parse_op_list(
            r#"[{"op":"replace","path":"/name","value":"n"},{"op":"remove","path":"/a~1b"},{"op":"add","path":"/t","value":["x"]}]"#,
        )
        .unwrap();
        assert_eq!(
            ops,
            vec![
                Op::replace("name", json!("n")),
                Op::remove("a/b"),
                Op::add("t", json!(["x"]))
            ]
        );
        let err = |text: &str| parse_op_list(text).unwrap_err().to_string();
        assert!(err("{").contains("not valid JSON"));
        assert!(err(r#"{"op":"add"}"#).contains("array"));
        assert!(
            err(r#"[{"op":"test","path":"/a","value":"1"}]"#).starts_with("operation 1: op 'test'")
        );
        assert!(
            err(r#"[{"op":"add","path":"/a","value":"1"},{"replace":"/name","value":"x"}]"#)
                .starts_with("operation 2: this is the v2.0 form")
        );
        assert!(err(r#"[{"op":"add","path":"/a"}]"#).contains("needs a \"value\""));
        assert!(err(r#"[{"op":"remove","path":"/a","value":"1"}]"#).contains("takes no"));
        assert!(err(r#"[{"op":"add","path":"a","value":"1"}]"#).contains("start with '/'"));
        assert!(err(r#"[{"op":"add","path":5,"value":"1"}]"#).contains("string"));
        assert!(err(r#"[{"op":"add","path":"/a","value":"1","from":"/b"}]"#).contains("'from'"));
        assert!(err(r#"["x"]"#).contains("object"));
        assert_eq!(parse_op_list("[]").unwrap(), vec![]);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,16}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("\\PC{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn op() -> impl Strategy<Value = Op> {
        ("\\PC{1,16}", 0..3u8, json_value()).prop_map(|(key, kind, value)| match kind {
            0 => Op::add(key, value),
            1 => Op::replace(key, value),
            _ => Op::remove(key),
        })
    }

    proptest! {
        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse_op_list(&text);
        }

        #[test]
        fn parsing_any_json_never_panics(value in json_value()) {
            let _ = parse_op_list(&value.to_string());
        }

        #[test]
        fn valid_op_lists_round_trip(ops in prop::collection::vec(op(), 0..6)) {
            let text = to_body(&ops, PatchFormat::V21).to_string();
            prop_assert_eq!(parse_op_list(&text).unwrap(), ops);
        }
    }
}

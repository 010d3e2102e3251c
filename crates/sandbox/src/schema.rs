//! The Glance image JSON schema (`schema-image.json`, served at `/v2/schemas/image`) and a small validator for exactly the keywords it uses, with jsonschema-style error messages.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::pyfmt;

/// `GET /v2/schemas/image` of the reference Glance 33 (glance sdist's
/// `schema-image.json` merged in, as devstack does).
pub const IMAGE_SCHEMA_JSON: &str = include_str!("schema-image.json");

/// The parsed image schema.
pub fn image_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(IMAGE_SCHEMA_JSON).expect("schema-image.json is valid JSON")
    })
}

/// `GET /v2/schemas/images`, built from the image schema the way Glance
/// builds its collection schema.
pub fn images_schema() -> Value {
    let mut item = image_schema().clone();
    if let Value::Object(m) = &mut item {
        m.remove("links");
    }
    serde_json::json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": item},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

/// The schema of one base attribute, if the image schema declares it.
pub fn property_schema(name: &str) -> Option<&'static Value> {
    image_schema().get("properties")?.get(name)
}

/// One step of a schema or instance path.
#[derive(Debug, Clone, PartialEq)]
pub enum PathItem {
    Key(String),
    Index(usize),
}

impl PathItem {
    fn repr(&self) -> String {
        match self {
            PathItem::Key(k) => pyfmt::repr_str(k),
            PathItem::Index(i) => i.to_string(),
        }
    }
}

fn format_as_index(container: &str, path: &[PathItem]) -> String {
    if path.is_empty() {
        return container.to_string();
    }
    let parts: Vec<String> = path.iter().map(PathItem::repr).collect();
    format!("{container}[{}]", parts.join("]["))
}

/// A validation failure, carrying what jsonschema's `ValidationError` carries.
#[derive(Debug, Clone)]
pub struct SchemaError {
    /// First line, e.g. `'abc' is not of type 'integer'`.
    pub message: String,
    /// The failing keyword (`type`, `enum`, `maxLength`, ...).
    pub keyword: String,
    /// Path to the subschema holding the keyword.
    pub schema_path: Vec<PathItem>,
    /// Path to the failing part of the instance.
    pub instance_path: Vec<PathItem>,
    /// The subschema holding the keyword.
    pub subschema: Value,
    /// The failing part of the instance.
    pub instance: Value,
    matches_type: bool,
}

fn indent_continuation(s: &str) -> String {
    s.replace('\n', "\n    ")
}

impl SchemaError {
    /// `str(ValidationError)` of jsonschema 4.x (message, then where it failed).
    pub fn jsonschema_str(&self) -> String {
        let text = format!(
            "{}\n\nFailed validating {} in {}:\n    {}\n\nOn {}:\n    {}",
            self.message,
            pyfmt::repr_str(&self.keyword),
            format_as_index("schema", &self.schema_path),
            indent_continuation(&pyfmt::pformat(&self.subschema)),
            format_as_index("instance", &self.instance_path),
            indent_continuation(&pyfmt::pformat(&self.instance)),
        );
        text.trim_end().to_string()
    }

    /// Glance's `InvalidObject` text.
    pub fn glance_message(&self) -> String {
        format!(
            "Provided object does not match schema 'image': {}",
            self.jsonschema_str()
        )
    }
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "number" => v.is_number(),
        // jsonschema's latest draft (which Glance gets by default) counts a
        // float with no fractional part as an integer.
        "integer" => match v {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        _ => true,
    }
}

fn schema_types(schema: &Map<String, Value>) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

const UUID_PATTERN: &str =
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";

/// `re.search(pattern, s)` for the patterns the image schema uses. Only the
/// UUID pattern occurs; any other pattern is accepted without checking.
fn pattern_matches(pattern: &str, s: &str) -> bool {
    if pattern != UUID_PATTERN {
        return true;
    }
    // Python's `$` also matches right before one trailing newline.
    let s = s.strip_suffix('\n').unwrap_or(s);
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

struct Walker {
    errors: Vec<SchemaError>,
}

impl Walker {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        message: String,
        keyword: &str,
        schema: &Map<String, Value>,
        spath: &[PathItem],
        ipath: &[PathItem],
        instance: &Value,
    ) {
        let matches_type = schema_types(schema)
            .map(|types| types.iter().any(|t| type_matches(t, instance)))
            .unwrap_or(true);
        self.errors.push(SchemaError {
            message,
            keyword: keyword.to_string(),
            schema_path: spath.to_vec(),
            instance_path: ipath.to_vec(),
            subschema: Value::Object(schema.clone()),
            instance: instance.clone(),
            matches_type,
        });
    }

    fn walk(&mut self, schema: &Value, instance: &Value, spath: &[PathItem], ipath: &[PathItem]) {
        let schema = match schema {
            Value::Object(m) => m,
            Value::Bool(false) => {
                self.push(
                    format!("False schema does not allow {}", pyfmt::repr(instance)),
                    "False",
                    &Map::new(),
                    spath,
                    ipath,
                    instance,
                );
                return;
            }
            _ => return,
        };
        for (keyword, arg) in schema {
            match keyword.as_str() {
                "type" => {
                    let types = schema_types(schema).unwrap_or_default();
                    if !types.iter().any(|t| type_matches(t, instance)) {
                        let names: Vec<String> = types.iter().map(|t| pyfmt::repr_str(t)).collect();
                        self.push(
                            format!(
                                "{} is not of type {}",
                                pyfmt::repr(instance),
                                names.join(", ")
                            ),
                            "type",
                            schema,
                            spath,
                            ipath,
                            instance,
                        );
                    }
                }
                "enum" => {
                    if let Value::Array(options) = arg {
                        if !options.iter().any(|o| json_equal(o, instance)) {
                            self.push(
                                format!(
                                    "{} is not one of {}",
                                    pyfmt::repr(instance),
                                    pyfmt::repr(arg)
                                ),
                                "enum",
                                schema,
                                spath,
                                ipath,
                                instance,
                            );
                        }
                    }
                }
                "maxLength" | "minLength" => {
                    if let (Value::String(s), Some(limit)) = (instance, arg.as_u64()) {
                        let len = s.chars().count() as u64;
                        let failed = if keyword == "maxLength" {
                            len > limit
                        } else {
                            len < limit
                        };
                        if failed {
                            let what = match (keyword.as_str(), limit) {
                                ("maxLength", 1) => "should be non-empty",
                                ("maxLength", _) => "is too long",
                                ("minLength", 1) => "should be non-empty",
                                _ => "is too short",
                            };
                            self.push(
                                format!("{} {what}", pyfmt::repr(instance)),
                                keyword,
                                schema,
                                spath,
                                ipath,
                                instance,
                            );
                        }
                    }
                }
                "pattern" => {
                    if let (Value::String(s), Value::String(p)) = (instance, arg) {
                        if !pattern_matches(p, s) {
                            self.push(
                                format!(
                                    "{} does not match {}",
                                    pyfmt::repr(instance),
                                    pyfmt::repr_str(p)
                                ),
                                "pattern",
                                schema,
                                spath,
                                ipath,
                                instance,
                            );
                        }
                    }
                }
                "items" => {
                    if let Value::Array(items) = instance {
                        let mut sp = spath.to_vec();
                        sp.push(PathItem::Key("items".into()));
                        for (i, item) in items.iter().enumerate() {
                            let mut ip = ipath.to_vec();
                            ip.push(PathItem::Index(i));
                            self.walk(arg, item, &sp, &ip);
                        }
                    }
                }
                "properties" => {
                    if let (Value::Object(props), Value::Object(obj)) = (arg, instance) {
                        for (name, sub) in props {
                            if let Some(v) = obj.get(name) {
                                let mut sp = spath.to_vec();
                                sp.push(PathItem::Key("properties".into()));
                                sp.push(PathItem::Key(name.clone()));
                                let mut ip = ipath.to_vec();
                                ip.push(PathItem::Key(name.clone()));
                                self.walk(sub, v, &sp, &ip);
                            }
                        }
                    }
                }
                "required" => {
                    if let (Value::Array(names), Value::Object(obj)) = (arg, instance) {
                        for name in names.iter().filter_map(Value::as_str) {
                            if !obj.contains_key(name) {
                                self.push(
                                    format!("{} is a required property", pyfmt::repr_str(name)),
                                    "required",
                                    schema,
                                    spath,
                                    ipath,
                                    instance,
                                );
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    if let Value::Object(obj) = instance {
                        let declared = schema.get("properties").and_then(Value::as_object);
                        let extras: Vec<&String> = obj
                            .keys()
                            .filter(|k| declared.is_none_or(|d| !d.contains_key(*k)))
                            .collect();
                        match arg {
                            Value::Bool(false) if !extras.is_empty() => {
                                let names: Vec<String> =
                                    extras.iter().map(|k| pyfmt::repr_str(k)).collect();
                                let verb = if extras.len() == 1 { "was" } else { "were" };
                                self.push(
                                    format!(
                                        "Additional properties are not allowed ({} {verb} unexpected)",
                                        names.join(", ")
                                    ),
                                    "additionalProperties",
                                    schema,
                                    spath,
                                    ipath,
                                    instance,
                                );
                            }
                            Value::Object(_) => {
                                let mut sp = spath.to_vec();
                                sp.push(PathItem::Key("additionalProperties".into()));
                                for k in extras {
                                    let mut ip = ipath.to_vec();
                                    ip.push(PathItem::Key(k.clone()));
                                    self.walk(arg, &obj[k.as_str()], &sp, &ip);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// JSON equality the way jsonschema compares enum members (numbers by value,
/// booleans never equal to numbers).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Validates `instance` against `schema` and returns the error jsonschema's
/// `best_match` would pick (shallowest first, then errors whose instance at
/// least has the right type, then document order).
pub fn validate(schema: &Value, instance: &Value) -> Option<SchemaError> {
    let mut walker = Walker { errors: Vec::new() };
    walker.walk(schema, instance, &[], &[]);
    let mut best: Option<SchemaError> = None;
    for e in walker.errors {
        let better = match &best {
            None => true,
            Some(b) => {
                let key = |x: &SchemaError| (-(x.instance_path.len() as isize), !x.matches_type);
                key(&e) > key(b)
            }
        };
        if better {
            best = Some(e);
        }
    }
    best
}

/// Validates a partial image (`{attribute: value}`) against the image schema.
pub fn validate_image(instance: &Value) -> Option<SchemaError> {
    validate(image_schema(), instance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first_line(v: Value) -> String {
        validate_image(&v)
            .map(|e| e.message)
            .unwrap_or_else(|| "ok".into())
    }

    #[test]
    fn schema_file_is_the_reference() {
        let s = image_schema();
        assert_eq!(s["name"], "image");
        assert_eq!(s["properties"].as_object().unwrap().len(), 34);
        assert_eq!(s["additionalProperties"], json!({"type": "string"}));
    }

    #[test]
    fn type_errors_read_like_jsonschema() {
        assert_eq!(
            first_line(json!({"min_ram": "abc"})),
            "'abc' is not of type 'integer'"
        );
        assert_eq!(
            first_line(json!({"min_ram": 1.5})),
            "1.5 is not of type 'integer'"
        );
        assert_eq!(
            first_line(json!({"min_ram": null})),
            "None is not of type 'integer'"
        );
        assert_eq!(first_line(json!({"min_ram": 512})), "ok");
        assert_eq!(
            first_line(json!({"protected": 1})),
            "1 is not of type 'boolean'"
        );
        assert_eq!(
            first_line(json!({"name": 123})),
            "123 is not of type 'null', 'string'"
        );
        assert_eq!(first_line(json!({"name": null})), "ok");
        assert_eq!(first_line(json!({"num": 42})), "42 is not of type 'string'");
        assert_eq!(
            first_line(json!({"flag": true})),
            "True is not of type 'string'"
        );
        assert_eq!(
            first_line(json!({"obj": {"a": "b"}})),
            "{'a': 'b'} is not of type 'string'"
        );
        assert_eq!(
            first_line(json!({"tags": "x"})),
            "'x' is not of type 'array'"
        );
        assert_eq!(
            first_line(json!({"tags": ["a", 5]})),
            "5 is not of type 'string'"
        );
    }

    #[test]
    fn enum_length_and_pattern() {
        assert_eq!(
            first_line(json!({"visibility": "bogus"})),
            "'bogus' is not one of ['community', 'public', 'private', 'shared']"
        );
        assert_eq!(
            first_line(json!({"disk_format": "floppy"})),
            "'floppy' is not one of [None, 'ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop']"
        );
        assert_eq!(first_line(json!({"disk_format": null})), "ok");
        assert_eq!(first_line(json!({"name": "n".repeat(255)})), "ok");
        assert!(first_line(json!({"name": "n".repeat(256)})).ends_with("' is too long"));
        assert_eq!(
            first_line(json!({"kernel_id": "abc"})),
            format!("'abc' does not match '{UUID_PATTERN}'")
        );
        assert_eq!(
            first_line(json!({"kernel_id": "33ad552d-1149-471c-8190-ff6776174a00"})),
            "ok"
        );
        assert_eq!(
            first_line(json!({"cinder_encryption_key_deletion_policy": "sometimes"})),
            "'sometimes' is not one of ['on_image_deletion', 'do_not_delete']"
        );
        assert_eq!(
            first_line(json!({"locations": [{"url": "x"}]})),
            "'metadata' is a required property"
        );
    }

    #[test]
    fn full_message_has_the_jsonschema_dump() {
        let e = validate_image(&json!({"min_ram": "abc"})).unwrap();
        assert_eq!(
            e.glance_message(),
            "Provided object does not match schema 'image': 'abc' is not of type 'integer'\n\n\
             Failed validating 'type' in schema['properties']['min_ram']:\n    \
             {'type': 'integer',\n     'description': 'Amount of ram (in MB) required to boot image.'}\n\n\
             On instance['min_ram']:\n    'abc'"
        );
        let e = validate_image(&json!({"num": 42})).unwrap();
        assert!(e
            .glance_message()
            .contains("Failed validating 'type' in schema['additionalProperties']:\n    {'type': 'string'}\n\nOn instance['num']:\n    42"));
        let e = validate_image(&json!({"tags": ["ok", 7]})).unwrap();
        assert!(e
            .glance_message()
            .contains("schema['properties']['tags']['items']"));
        assert!(e.glance_message().contains("On instance['tags'][1]:"));
    }
}

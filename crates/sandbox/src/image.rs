//! The image record (base attributes plus ordered custom properties), its Glance JSON representation, and the seed images.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The project every sandbox request acts for unless it sends `X-Project-Id`
/// (the reference Glance's no-auth shim uses the same value).
pub const DEFAULT_PROJECT: &str = "0123456789abcdef0123456789abcdef";

/// The store id active images report (`enabled_backends = fs:file`).
pub const STORE_ID: &str = "fs";

/// Glance's timestamp format: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Custom (extra) properties in insertion order. Values are strings, as
/// Glance's `additionalProperties: {"type": "string"}` demands, or null for
/// the schema-declared `["null", "string"]` ones (`kernel_id`, `ramdisk_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "Map<String, Value>")]
pub struct Props(Vec<(String, Value)>);

impl Props {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets a value, keeping the position of an existing key.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let pos = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(pos).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

impl TryFrom<Map<String, Value>> for Props {
    type Error = String;

    fn try_from(map: Map<String, Value>) -> Result<Self, Self::Error> {
        let mut props = Props::default();
        for (k, v) in map {
            match v {
                Value::String(_) | Value::Null => props.0.push((k, v)),
                other => {
                    return Err(format!(
                        "custom property {k:?} must be a string, found {other}"
                    ))
                }
            }
        }
        Ok(props)
    }
}

impl From<Props> for Map<String, Value> {
    fn from(p: Props) -> Self {
        p.0.into_iter().collect()
    }
}

impl<const N: usize> From<[(&str, &str); N]> for Props {
    fn from(items: [(&str, &str); N]) -> Self {
        Props(
            items
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect(),
        )
    }
}

/// One image, as the sandbox stores it (and as the `--state` file holds it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub visibility: String,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub status: String,
    pub checksum: Option<String>,
    pub protected: bool,
    pub min_ram: i64,
    pub min_disk: i64,
    pub owner: Option<String>,
    pub os_hidden: bool,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub tags: Vec<String>,
    /// Comma-separated store ids; shown as `stores` when the image has data.
    #[serde(default)]
    pub stores: Option<String>,
    #[serde(default)]
    pub properties: Props,
}

/// Base attributes: what `hasattr(image, name)` is true for on Glance's
/// domain image (`id` is `image_id` there and read-only anyway).
pub const BASE_ATTRIBUTES: &[&str] = &[
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "size",
    "virtual_size",
    "status",
    "checksum",
    "protected",
    "min_ram",
    "min_disk",
    "owner",
    "os_hidden",
    "os_hash_algo",
    "os_hash_value",
    "created_at",
    "updated_at",
    "tags",
    "locations",
];

pub fn is_base_attribute(name: &str) -> bool {
    BASE_ATTRIBUTES.contains(&name)
}

fn opt_str(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

fn opt_int(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

/// Tags with duplicates removed, first occurrence kept (Glance stores tags
/// as a set, so it also loses the order; the sandbox keeps it).
pub fn dedup_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        if !out.iter().any(|x| x == t) {
            out.push(t.to_string());
        }
    }
    out
}

impl Image {
    /// A new `queued` image with Glance's defaults.
    pub fn new_queued(id: String, owner: Option<String>, now: &str) -> Image {
        Image {
            id,
            name: None,
            disk_format: None,
            container_format: None,
            visibility: "shared".into(),
            size: None,
            virtual_size: None,
            status: "queued".into(),
            checksum: None,
            protected: false,
            min_ram: 0,
            min_disk: 0,
            owner,
            os_hidden: false,
            os_hash_algo: None,
            os_hash_value: None,
            created_at: now.to_string(),
            updated_at: now.to_string(),
            tags: Vec::new(),
            stores: None,
            properties: Props::default(),
        }
    }

    /// Value of a base attribute as JSON (for `hasattr`-style checks).
    pub fn base_value(&self, name: &str) -> Option<Value> {
        Some(match name {
            "name" => opt_str(&self.name),
            "disk_format" => opt_str(&self.disk_format),
            "container_format" => opt_str(&self.container_format),
            "visibility" => Value::String(self.visibility.clone()),
            "size" => opt_int(self.size),
            "virtual_size" => opt_int(self.virtual_size),
            "status" => Value::String(self.status.clone()),
            "checksum" => opt_str(&self.checksum),
            "protected" => Value::Bool(self.protected),
            "min_ram" => Value::from(self.min_ram),
            "min_disk" => Value::from(self.min_disk),
            "owner" => opt_str(&self.owner),
            "os_hidden" => Value::Bool(self.os_hidden),
            "os_hash_algo" => opt_str(&self.os_hash_algo),
            "os_hash_value" => opt_str(&self.os_hash_value),
            "created_at" => Value::String(self.created_at.clone()),
            "updated_at" => Value::String(self.updated_at.clone()),
            "tags" => json!(self.tags),
            _ => return None,
        })
    }

    /// The representation Glance's `ResponseSerializer._format_image` builds:
    /// custom properties first, then the base attributes in Glance's order,
    /// then the links, then `stores` (added last, after the schema filter).
    pub fn view(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for (k, v) in self.properties.iter() {
            m.insert(k.to_string(), v.clone());
        }
        for key in [
            "name",
            "disk_format",
            "container_format",
            "visibility",
            "size",
            "virtual_size",
            "status",
            "checksum",
            "protected",
            "min_ram",
            "min_disk",
            "owner",
            "os_hidden",
            "os_hash_algo",
            "os_hash_value",
        ] {
            m.insert(key.into(), self.base_value(key).unwrap_or(Value::Null));
        }
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert("created_at".into(), Value::String(self.created_at.clone()));
        m.insert("updated_at".into(), Value::String(self.updated_at.clone()));
        m.insert("tags".into(), json!(self.tags));
        m.insert(
            "self".into(),
            Value::String(format!("/v2/images/{}", self.id)),
        );
        m.insert(
            "file".into(),
            Value::String(format!("/v2/images/{}/file", self.id)),
        );
        m.insert("schema".into(), Value::String("/v2/schemas/image".into()));
        if let Some(stores) = &self.stores {
            // An existing custom property called `stores` keeps its place and
            // is overwritten, as Glance's dict assignment does.
            m.insert("stores".into(), Value::String(stores.clone()));
        }
        m
    }
}

/// The four images a fresh sandbox serves.
pub fn seed_images() -> Vec<Image> {
    vec![
        // The example response of the IMS "Updating Image Information (Native
        // OpenStack API)" page, with its `__` attributes in the page's order.
        // The page shows `"__data_origin": null`, but Glance custom
        // properties must be strings (and Glance itself turns v1-era null
        // properties into "" when it shows them), so it is stored as "".
        // The page predates multihash, so os_hash_algo/os_hash_value are null;
        // os_hidden and `stores: "fs"` are what Glance 33 (multi-store, as
        // measured) adds to every active image.
        Image {
            id: "33ad552d-1149-471c-8190-ff6776174a00".into(),
            name: Some("ims_test".into()),
            disk_format: Some("vhd".into()),
            container_format: Some("bare".into()),
            visibility: "private".into(),
            size: Some(2),
            virtual_size: Some(0),
            status: "active".into(),
            checksum: Some("99914b932bd37a50b983c5e7c90ae93b".into()),
            protected: false,
            min_ram: 0,
            min_disk: 40,
            owner: Some("0b1e494e2660441a957313163095fe5c".into()),
            os_hidden: false,
            os_hash_algo: None,
            os_hash_value: None,
            created_at: "2015-12-04T09:45:33Z".into(),
            updated_at: "2015-12-08T02:30:49Z".into(),
            tags: vec![],
            stores: Some(STORE_ID.into()),
            properties: Props::from([
                ("__os_bit", "64"),
                ("__os_version", "Ubuntu 14.04 server 64bit"),
                ("__description", "ims test"),
                ("__isregistered", "true"),
                ("__platform", "Ubuntu"),
                ("__os_type", "Linux"),
                ("virtual_env_type", "FusionCompute"),
                ("__image_source_type", "uds"),
                ("__imagetype", "private"),
                (
                    "__originalimagename",
                    "33ad552d-1149-471c-8190-ff6776174a00",
                ),
                ("__backup_id", ""),
                ("__productcode", ""),
                ("__image_size", "449261568"),
                ("__data_origin", ""),
                ("hw_firmware_type", "bios"),
                // Not in the page's example response, but in its attribute
                // table; an image that supports KVM carries it, and the
                // README's `unset-attr ims_test __support_kvm` needs it.
                ("__support_kvm", "true"),
            ]),
        },
        Image {
            id: "5d8f2c4e-1f7a-4b9e-9c3d-2a6b8e4f0c11".into(),
            name: Some("debian-12".into()),
            disk_format: Some("qcow2".into()),
            container_format: Some("bare".into()),
            visibility: "private".into(),
            size: None,
            virtual_size: None,
            status: "queued".into(),
            checksum: None,
            protected: false,
            min_ram: 1024,
            min_disk: 10,
            owner: Some(DEFAULT_PROJECT.into()),
            os_hidden: false,
            os_hash_algo: None,
            os_hash_value: None,
            created_at: "2025-06-10T08:00:00Z".into(),
            updated_at: "2025-06-10T08:00:00Z".into(),
            tags: vec![],
            stores: None,
            properties: Props::from([
                ("__os_type", "Linux"),
                ("__platform", "Debian"),
                ("__os_version", "Debian GNU/Linux 12.0.0 64bit"),
                ("__os_bit", "64"),
                ("__imagetype", "private"),
                ("__isregistered", "true"),
                ("virtual_env_type", "FusionCompute"),
                ("hw_firmware_type", "uefi"),
            ]),
        },
        Image {
            id: "8a41c0b9-3e6d-4f52-b7a8-91d2e0c3f6a4".into(),
            name: Some("windows-server-2022".into()),
            disk_format: Some("vhd".into()),
            container_format: Some("bare".into()),
            visibility: "private".into(),
            size: Some(34359738368),
            virtual_size: Some(42949672960),
            status: "active".into(),
            checksum: Some("0b08bd98d279b88859b628cd8c061ae0".into()),
            protected: false,
            min_ram: 4096,
            min_disk: 40,
            owner: Some(DEFAULT_PROJECT.into()),
            os_hidden: false,
            os_hash_algo: Some("sha512".into()),
            os_hash_value: Some(
                "d8988c9174986e393cd7d06f861301bd4ef64d21b84a8df58d85e4ba140a141e\
                 4b2ac6acc48e7c66d1f9b14460fef6ae1a3ebf43b0d7d5ca612ba823c829126c"
                    .into(),
            ),
            created_at: "2025-03-02T14:21:07Z".into(),
            updated_at: "2025-03-02T15:02:44Z".into(),
            tags: vec![],
            stores: Some(STORE_ID.into()),
            properties: Props::from([
                ("__os_type", "Windows"),
                ("__platform", "Windows"),
                ("__os_version", "Windows Server 2022 Datacenter 64bit"),
                ("__os_bit", "64"),
                ("__imagetype", "private"),
                ("__isregistered", "true"),
                ("__image_source_type", "uds"),
                ("__support_kvm", "true"),
                ("virtual_env_type", "FusionCompute"),
                ("hw_firmware_type", "uefi"),
                ("hw_vif_multiqueue_enabled", "true"),
                ("__description", "Windows Server 2022 Datacenter, English"),
            ]),
        },
        Image {
            id: "c7e3b5a2-6d14-4e8f-a0b9-5f2c8d7e1a36".into(),
            name: Some("centos-7-legacy".into()),
            disk_format: Some("qcow2".into()),
            container_format: Some("bare".into()),
            visibility: "private".into(),
            size: Some(8589934592),
            virtual_size: Some(21474836480),
            status: "active".into(),
            checksum: Some("cdc872db616ac66adb3166c75e9ad183".into()),
            protected: true,
            min_ram: 1024,
            min_disk: 20,
            owner: Some(DEFAULT_PROJECT.into()),
            os_hidden: false,
            os_hash_algo: Some("sha512".into()),
            os_hash_value: Some(
                "5434c557ea56b0650da249024bdd2f849684e08652441a132499a1c88612704f\
                 afd83bd5bc693000bbf35e6b760138105d43a37c4efd7c8e500ac32635777e6e"
                    .into(),
            ),
            created_at: "2019-11-20T10:12:55Z".into(),
            updated_at: "2024-06-30T23:59:59Z".into(),
            tags: vec!["legacy".into(), "eol".into(), "centos".into()],
            stores: Some(STORE_ID.into()),
            properties: Props::from([
                ("__os_type", "Linux"),
                ("__platform", "CentOS"),
                ("__os_version", "CentOS 7.9 64bit"),
                ("__os_bit", "64"),
                ("__imagetype", "private"),
                ("__isregistered", "true"),
                ("virtual_env_type", "FusionCompute"),
                ("hw_firmware_type", "bios"),
                ("__description", "End of life; kept for old workloads"),
            ]),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_keeps_glance_key_order() {
        let img = &seed_images()[0];
        let keys: Vec<String> = img.view().keys().cloned().collect();
        let tail = [
            "name",
            "disk_format",
            "container_format",
            "visibility",
            "size",
            "virtual_size",
            "status",
            "checksum",
            "protected",
            "min_ram",
            "min_disk",
            "owner",
            "os_hidden",
            "os_hash_algo",
            "os_hash_value",
            "id",
            "created_at",
            "updated_at",
            "tags",
            "self",
            "file",
            "schema",
            "stores",
        ];
        assert_eq!(keys[0], "__os_bit");
        assert_eq!(keys[14], "hw_firmware_type");
        assert_eq!(keys[15], "__support_kvm");
        assert_eq!(&keys[16..], tail.map(String::from).as_slice());
        assert_eq!(img.view()["__data_origin"], "");
    }

    #[test]
    fn props_serde_round_trip_keeps_order() {
        let p = Props::from([("z", "1"), ("a", "2")]);
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(s, r#"{"z":"1","a":"2"}"#);
        let back: Props = serde_json::from_str(&s).unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<Props>(r#"{"n": 1}"#).is_err());
    }

    #[test]
    fn seeds_are_valid_against_the_schema() {
        for img in seed_images() {
            let v = Value::Object(img.view());
            // `stores`, `self`, ... are read-only but type-valid.
            assert!(
                super::super::schema::validate_image(&v).is_none(),
                "{}",
                img.id
            );
        }
    }
}

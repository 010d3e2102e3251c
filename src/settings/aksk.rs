//! The AK/SK settings (pure): the access key, where the secret key comes
//! from, the security token, the project ID, the region (which gives the
//! OTC endpoint) and the IAM URL of the project lookup, resolved into an
//! [`AkSkSource`]; and the AK/SK keys of a `clouds.yaml` cloud as a
//! resolution [`Layer`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use url::Url;

use super::resolve::Layer;
use super::{Resolved, Source, Sourced};
use crate::auth::clouds::AuthConfig;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Where the secret key comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretKey {
    /// Given as it is (`IMS_PATCH_SECRET_KEY`, `OS_SECRET_KEY`, `secret_key`).
    Given(Sourced<Secret>),
    /// A profile's `secret_key_file`.
    File(Sourced<PathBuf>),
    /// A profile's `secret_key_command`, run with the bounded helper runner.
    Command(Sourced<String>),
}

/// Everything an AK/SK credential needs, before any file is read or
/// command run.
#[derive(Debug, Clone, PartialEq)]
pub struct AkSkSource {
    pub access_key: Sourced<String>,
    pub secret_key: SecretKey,
    pub security_token: Option<Sourced<Secret>>,
    /// Sent as `X-Project-Id`; without it, the project named as the
    /// region is looked up on IAM (once, then cached).
    pub project_id: Option<Sourced<String>>,
    pub region: Option<Sourced<String>>,
    /// The IAM base URL for the project lookup (without `/v3`); `None`
    /// when a project ID is given.
    pub iam: Option<Sourced<Url>>,
    /// The root of the cache (`IMS_PATCH_CACHE_DIR`), else the user cache dir.
    pub cache_dir: Option<PathBuf>,
}

impl AkSkSource {
    /// `IMS_PATCH_ACCESS_KEY` or the like, for hints.
    pub fn describe(&self) -> String {
        let secret = match &self.secret_key {
            SecretKey::Given(s) => s.source.to_string(),
            SecretKey::File(f) => format!("secret_key_file {}", f.source),
            SecretKey::Command(c) => format!("secret_key_command {}", c.source),
        };
        format!(
            "access key '{}' ({}), secret key ({secret})",
            self.access_key.value, self.access_key.source
        )
    }
}

/// The OTC image endpoint of a region.
pub fn ims_url(region: &str) -> String {
    format!("https://ims.{region}.otc.t-systems.com")
}

/// The OTC IAM URL of a region.
pub fn iam_url(region: &str) -> String {
    format!("https://iam.{region}.otc.t-systems.com")
}

/// A region name goes into host names: lower-case letters, digits, `-`.
fn check_region(region: &Sourced<String>) -> Result<()> {
    let ok = !region.value.is_empty()
        && region.value.len() <= 63
        && region
            .value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(region
            .source
            .bad_value(format!(
                "region '{}' ({}) is not a region name",
                region.value, region.source
            ))
            .hint("an OTC region looks like eu-de or eu-nl"))
    }
}

/// The IAM base URL: `iam_endpoint` (a trailing `/v3` dropped), else a
/// loopback image endpoint itself (the sandbox answers the lookup there),
/// else the region's OTC IAM.
fn iam_base(
    r: &Resolved,
    region: Option<&Sourced<String>>,
    endpoint: Option<&Sourced<Endpoint>>,
) -> Result<Option<Sourced<Url>>> {
    if let Some(text) = r.text("iam_endpoint") {
        let parsed = Endpoint::parse(text.value.trim_end_matches('/').trim_end_matches("/v3"))
            .map_err(|why| {
                text.source.bad_value(format!(
                    "invalid iam_endpoint '{}' ({}): {why}",
                    text.value, text.source
                ))
            })?;
        if !parsed.is_https() && !parsed.is_loopback() && r.switched_on("allow_http").is_none() {
            return Err(text.source.bad_value(format!(
                "iam_endpoint '{}' ({}) uses plain http to another machine",
                text.value, text.source
            )));
        }
        return Ok(Some(text.with(base_url(&parsed))));
    }
    // A local image service (the sandbox) is never OTC: it answers too.
    if let Some(e) = endpoint.filter(|e| e.value.is_loopback()) {
        return Ok(Some(e.with(base_url(&e.value))));
    }
    Ok(region.map(|region| {
        region.with(Url::parse(&iam_url(&region.value)).expect("a checked region makes a URL"))
    }))
}

fn base_url(e: &Endpoint) -> Url {
    Url::parse(&e.to_string()).expect("an endpoint is a URL")
}

/// The AK/SK source of the resolved settings, when an access key or a
/// secret key is set; `endpoint` is the configured image endpoint.
pub fn source(r: &Resolved, endpoint: Option<&Sourced<Endpoint>>) -> Result<Option<AkSkSource>> {
    let access_key = r.text("access_key");
    let given = r.secret("secret_key");
    let file = r.path("secret_key_file");
    let command = r.text("secret_key_command");
    if access_key.is_none() {
        let stray = [
            given.as_ref().map(|s| ("secret_key", s.source.clone())),
            file.as_ref().map(|s| ("secret_key_file", s.source.clone())),
            command
                .as_ref()
                .map(|s| ("secret_key_command", s.source.clone())),
        ];
        if let Some((name, source)) = stray.into_iter().flatten().next() {
            return Err(Error::config(format!(
                "a {name} is set ({source}) but no access key"
            ))
            .hint("set IMS_PATCH_ACCESS_KEY (or access_key in the profile) to sign requests with AK/SK"));
        }
        return Ok(None);
    }
    let access_key = access_key.expect("checked above");
    let key = access_key.value.trim();
    if key.chars().any(|c| !c.is_ascii_graphic() || c == ',') {
        return Err(access_key.source.bad_value(format!(
            "the access key '{}' ({}) holds characters an access key cannot have",
            access_key.value, access_key.source
        )));
    }
    let access_key = access_key.with(key.to_string());
    let mut secrets: Vec<SecretKey> = Vec::new();
    secrets.extend(given.map(SecretKey::Given));
    secrets.extend(file.map(SecretKey::File));
    secrets.extend(command.map(SecretKey::Command));
    // The environment's secret key wins over a profile's file or command.
    if secrets.len() > 1 {
        if let Some(SecretKey::Given(s)) = secrets.first() {
            if matches!(s.source, Source::Env(_) | Source::Flag(_)) {
                secrets.truncate(1);
            }
        }
    }
    let secret_key = match secrets.len() {
        0 => {
            return Err(Error::config(format!(
                "the access key '{}' ({}) has no secret key",
                access_key.value, access_key.source
            ))
            .hint("set IMS_PATCH_SECRET_KEY, or give the profile a secret_key_command (or secret_key_file)"))
        }
        1 => secrets.remove(0),
        _ => {
            let (profile, file) = r.profile.clone().unwrap_or_default();
            let names: Vec<&str> = secrets
                .iter()
                .map(|s| match s {
                    SecretKey::Given(_) => "secret_key",
                    SecretKey::File(_) => "secret_key_file",
                    SecretKey::Command(_) => "secret_key_command",
                })
                .collect();
            return Err(Error::config(format!(
                "{} sets {}; keep only one",
                Source::Profile { profile, file },
                names.join(" and ")
            )));
        }
    };
    let region = r
        .text("region")
        .or_else(|| r.text("os_region_name"))
        .map(|s| s.with(s.value.trim().to_string()));
    if let Some(region) = &region {
        check_region(region)?;
    }
    let project_id = r
        .text("project_id")
        .or_else(|| r.text("os_project_id"))
        .map(|s| s.with(s.value.trim().to_string()));
    if let Some(p) = &project_id {
        if p.value.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(p.source.bad_value(format!(
                "project_id '{}' ({}) is not a project ID",
                p.value, p.source
            )));
        }
    }
    let iam = match &project_id {
        Some(_) => None,
        None => iam_base(r, region.as_ref(), endpoint)?,
    };
    if project_id.is_none() && (region.is_none() || iam.is_none()) {
        return Err(Error::config(format!(
            "the access key '{}' ({}) needs a project ID or a region",
            access_key.value, access_key.source
        ))
        .hint("set IMS_PATCH_REGION (region = \"eu-de\" in the profile) to use the region's default project, or IMS_PATCH_PROJECT_ID (project_id) for a sub-project"));
    }
    Ok(Some(AkSkSource {
        access_key,
        secret_key,
        security_token: r.secret("security_token"),
        project_id,
        region,
        iam,
        cache_dir: r.path("cache_dir").map(|p| p.value),
    }))
}

/// The image endpoint AK/SK gives when none is configured: the region's
/// OTC IMS, named after the region's source.
pub fn endpoint(source: &AkSkSource) -> Option<Sourced<Endpoint>> {
    let region = source.region.as_ref()?;
    Endpoint::parse(&ims_url(&region.value))
        .ok()
        .map(|e| region.with(e))
}

/// The AK/SK keys of a `clouds.yaml` cloud (`auth: {ak, sk}` or
/// `{access_key, secret_key}`, and `security_token`) as resolution layers
/// ranked after the profile, one per value so that each error names its
/// own source. The cloud's `project_id`, `region_name` and `auth_type`
/// come through the login's layers (`settings::login::cloud_layers`).
pub fn cloud_layers(config: &AuthConfig) -> Vec<Layer> {
    let text = |v: &str| toml::Value::String(v.to_string());
    let mut layers = Vec::new();
    if let Some(ak) = &config.access_key {
        layers.push(Layer {
            source: ak.source.clone(),
            values: BTreeMap::from([("access_key", (text(&ak.value), None))]),
        });
    }
    for (name, v) in [
        ("secret_key", &config.secret_key),
        ("security_token", &config.security_token),
    ] {
        if let Some(v) = v {
            layers.push(Layer {
                source: v.source.clone(),
                values: BTreeMap::from([(name, (text(v.value.expose()), None))]),
            });
        }
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{connection, file, resolve, CredentialSource};
    use std::ffi::OsString;
    use std::path::Path;

    fn resolved(config: &str, env: &[(&str, &str)]) -> Result<Resolved> {
        let file = file::parse(config, Path::new("/c.toml")).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        };
        resolve::resolve(&resolve::Flags::new(), &lookup, &file)
    }

    fn aksk(config: &str, env: &[(&str, &str)]) -> Result<AkSkSource> {
        match connection(&resolved(config, env)?)?.credential {
            CredentialSource::AkSk(s) => Ok(*s),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn environment_keys_with_a_region_give_the_otc_endpoint() {
        let env = [
            ("IMS_PATCH_ACCESS_KEY", "AK1"),
            ("IMS_PATCH_SECRET_KEY", "SK1"),
            ("IMS_PATCH_REGION", "eu-nl"),
        ];
        let c = connection(&resolved("", &env).unwrap()).unwrap();
        let e = c.endpoint.unwrap();
        assert_eq!(e.value.to_string(), "https://ims.eu-nl.otc.t-systems.com");
        assert_eq!(e.source, Source::Env("IMS_PATCH_REGION"));
        let s = aksk("", &env).unwrap();
        assert_eq!(s.access_key.value, "AK1");
        assert!(matches!(s.secret_key, SecretKey::Given(ref k) if k.value.expose() == "SK1"));
        assert_eq!(
            s.iam.as_ref().unwrap().value.as_str(),
            "https://iam.eu-nl.otc.t-systems.com/"
        );
        assert!(!s.describe().contains("SK1"));
    }

    #[test]
    fn openstack_variables_are_read_after_ours() {
        let env = [
            ("OS_ACCESS_KEY", "OSAK"),
            ("OS_SECRET_KEY", "OSSK"),
            ("OS_SECURITY_TOKEN", "tok"),
            ("IMS_PATCH_PROJECT_ID", "p1"),
            ("IMS_PATCH_ENDPOINT", "https://ims.example"),
        ];
        let s = aksk("", &env).unwrap();
        assert_eq!(s.access_key.source, Source::Env("OS_ACCESS_KEY"));
        assert_eq!(s.security_token.unwrap().value.expose(), "tok");
        assert_eq!(s.project_id.unwrap().value, "p1");
        assert_eq!(s.iam, None);
        let mut env = env.to_vec();
        env.push(("IMS_PATCH_ACCESS_KEY", "MINE"));
        assert_eq!(aksk("", &env).unwrap().access_key.value, "MINE");
    }

    #[test]
    fn a_profile_with_a_secret_key_command() {
        let config = "default_profile = \"otc\"\n[profiles.otc]\naccess_key = \"AK\"\nsecret_key_command = \"pass otc/sk\"\nregion = \"eu-de\"\n";
        let s = aksk(config, &[]).unwrap();
        assert!(matches!(s.secret_key, SecretKey::Command(ref c) if c.value == "pass otc/sk"));
        // The environment's secret key wins over the profile's command.
        let s = aksk(config, &[("IMS_PATCH_SECRET_KEY", "env")]).unwrap();
        assert!(matches!(s.secret_key, SecretKey::Given(_)));
        let both = format!("{config}secret_key_file = \"/sk\"\n");
        let e = connection(&resolved(&both, &[]).unwrap()).unwrap_err();
        assert!(
            e.message
                .contains("sets secret_key_file and secret_key_command; keep only one"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_pieces_are_named() {
        let e = connection(&resolved("", &[("IMS_PATCH_ACCESS_KEY", "AK")]).unwrap()).unwrap_err();
        assert!(e.message.contains("has no secret key"), "{}", e.message);
        let e = connection(&resolved("", &[("IMS_PATCH_SECRET_KEY", "SK")]).unwrap()).unwrap_err();
        assert_eq!(
            e.message,
            "a secret_key is set (from IMS_PATCH_SECRET_KEY) but no access key"
        );
        let e = connection(
            &resolved(
                "",
                &[
                    ("IMS_PATCH_ACCESS_KEY", "AK"),
                    ("IMS_PATCH_SECRET_KEY", "SK"),
                    ("IMS_PATCH_ENDPOINT", "https://ims.example"),
                ],
            )
            .unwrap(),
        )
        .unwrap_err();
        assert!(
            e.message.contains("needs a project ID or a region"),
            "{}",
            e.message
        );
        assert!(e.hints[0].contains("sub-project"), "{:?}", e.hints);
        let e = connection(
            &resolved(
                "",
                &[
                    ("IMS_PATCH_ACCESS_KEY", "AK"),
                    ("IMS_PATCH_SECRET_KEY", "SK"),
                    ("IMS_PATCH_REGION", "eu.de/x"),
                ],
            )
            .unwrap(),
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("region 'eu.de/x' (from IMS_PATCH_REGION)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_loopback_endpoint_answers_the_lookup_unless_iam_is_given() {
        let env = [
            ("IMS_PATCH_ACCESS_KEY", "AK"),
            ("IMS_PATCH_SECRET_KEY", "SK"),
            ("IMS_PATCH_REGION", "eu-de"),
            ("IMS_PATCH_ENDPOINT", "http://127.0.0.1:9292/v2"),
        ];
        let s = aksk("", &env).unwrap();
        assert_eq!(s.iam.unwrap().value.as_str(), "http://127.0.0.1:9292/");
        let mut with_iam = env.to_vec();
        with_iam.push(("IMS_PATCH_IAM_ENDPOINT", "http://127.0.0.1:5000/v3/"));
        let s = aksk("", &with_iam).unwrap();
        assert_eq!(s.iam.unwrap().value.as_str(), "http://127.0.0.1:5000/");
        let e = connection(
            &resolved(
                "",
                &[
                    ("IMS_PATCH_ACCESS_KEY", "AK"),
                    ("IMS_PATCH_SECRET_KEY", "SK"),
                    ("IMS_PATCH_REGION", "eu-de"),
                    ("IMS_PATCH_IAM_ENDPOINT", "http://iam.example"),
                ],
            )
            .unwrap(),
        )
        .unwrap_err();
        assert!(e.message.contains("plain http"), "{}", e.message);
    }

    #[test]
    fn a_profile_token_and_access_key_conflict_but_the_environment_decides() {
        let config = "default_profile = \"p\"\n[profiles.p]\ntoken = \"t\"\naccess_key = \"AK\"\nsecret_key = \"SK\"\nproject_id = \"p1\"\n";
        let e = connection(&resolved(config, &[]).unwrap()).unwrap_err();
        assert!(e.message.contains("keep only one"), "{}", e.message);
        let c = connection(&resolved(config, &[("IMS_PATCH_TOKEN", "x")]).unwrap()).unwrap();
        assert!(matches!(c.credential, CredentialSource::Token(_)));
    }

    #[test]
    fn clouds_yaml_keys_become_layers() {
        let source = Source::Cloud {
            cloud: "otc".into(),
            file: "/h/clouds.yaml".into(),
        };
        let s = |v: &str| {
            Some(crate::source::Sourced {
                value: v.to_string(),
                source: source.clone(),
            })
        };
        let secret = |v: &str| {
            Some(crate::source::Sourced {
                value: Secret::new(v),
                source: source.clone(),
            })
        };
        let config = AuthConfig {
            cloud: Some("otc".into()),
            access_key: s("AK"),
            secret_key: secret("SK"),
            region_name: s("eu-nl"),
            ..AuthConfig::default()
        };
        let layers_of = |c: &AuthConfig| {
            let mut layers = crate::settings::login::cloud_layers(c);
            layers.extend(cloud_layers(c));
            layers
        };
        let mine = cloud_layers(&config);
        assert_eq!(mine.len(), 2);
        assert_eq!(
            mine[0].source.to_string(),
            "from cloud 'otc' in /h/clouds.yaml"
        );
        let file = file::parse("", Path::new("/c.toml")).unwrap();
        let resolve_cloud = |c: &AuthConfig| {
            resolve::resolve_layers(&resolve::Flags::new(), &|_| None, &file, &layers_of(c))
                .and_then(|r| connection(&r))
        };
        let c = resolve_cloud(&config).unwrap();
        assert_eq!(
            c.endpoint.unwrap().value.to_string(),
            "https://ims.eu-nl.otc.t-systems.com"
        );
        let CredentialSource::AkSk(a) = c.credential else {
            panic!()
        };
        assert_eq!(a.access_key.value, "AK");
        assert_eq!(a.region.unwrap().source, source);
        let named = AuthConfig {
            auth_type: s("aksk"),
            access_key: None,
            ..config.clone()
        };
        let e = resolve_cloud(&named).unwrap_err();
        assert!(
            e.message.contains("auth_type 'aksk' (from cloud 'otc'"),
            "{}",
            e.message
        );
        let with_project = AuthConfig {
            auth_type: s("aksk"),
            project_id: s("p-sub"),
            ..config
        };
        let c = resolve_cloud(&with_project).unwrap();
        let CredentialSource::AkSk(a) = c.credential else {
            panic!()
        };
        assert_eq!(a.project_id.unwrap().value, "p-sub");
    }
}

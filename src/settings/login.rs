//! Logging in, from the settings: a clouds.yaml cloud turned into
//! resolution layers (after the profile, before the default), and the
//! resolved table turned into the [`Login`] a Keystone session makes: the
//! login settings with their sources, where the secrets that come from a
//! command or a file are read, and the token cache. Pure.

use std::path::PathBuf;

use url::Url;

use super::{Layer, Resolved, Source, Sourced};
use crate::auth::clouds::AuthConfig;
use crate::auth::keystone::{AuthRequest, AuthType};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The resolution layers of a clouds.yaml cloud: one per source (the
/// clouds.yaml file, secure.yaml, a vendor profile), keyed by setting name.
/// The AK/SK keys (`access_key`, `secret_key`, `security_token`) are left in
/// the `AuthConfig` for the signing credential's rows.
pub fn cloud_layers(config: &AuthConfig) -> Vec<Layer> {
    let mut layers: Vec<Layer> = Vec::new();
    let mut put = |name: &'static str, value: toml::Value, source: &Source| match layers
        .iter_mut()
        .find(|l| &l.source == source)
    {
        Some(layer) => {
            layer.values.insert(name, (value, None));
        }
        None => {
            let mut layer = Layer {
                source: source.clone(),
                values: Default::default(),
            };
            layer.values.insert(name, (value, None));
            layers.push(layer);
        }
    };
    let text = [
        ("os_auth_type", &config.auth_type),
        ("os_auth_url", &config.auth_url),
        ("os_username", &config.username),
        ("os_user_id", &config.user_id),
        ("os_user_domain_name", &config.user_domain_name),
        ("os_user_domain_id", &config.user_domain_id),
        ("os_project_name", &config.project_name),
        ("os_project_id", &config.project_id),
        ("os_project_domain_name", &config.project_domain_name),
        ("os_project_domain_id", &config.project_domain_id),
        ("os_domain_name", &config.domain_name),
        ("os_domain_id", &config.domain_id),
        (
            "os_application_credential_id",
            &config.application_credential_id,
        ),
        (
            "os_application_credential_name",
            &config.application_credential_name,
        ),
        ("os_region_name", &config.region_name),
        ("os_interface", &config.interface),
        ("endpoint", &config.image_endpoint_override),
    ];
    for (name, value) in text {
        if let Some(v) = value {
            put(name, toml::Value::String(v.value.clone()), &v.source);
        }
    }
    let secrets = [
        ("os_password", &config.password),
        ("os_token", &config.token),
        (
            "os_application_credential_secret",
            &config.application_credential_secret,
        ),
    ];
    for (name, value) in secrets {
        if let Some(v) = value {
            put(
                name,
                toml::Value::String(v.value.expose().to_string()),
                &v.source,
            );
        }
    }
    if let Some(c) = &config.cacert {
        put(
            "cacert",
            toml::Value::String(c.value.to_string_lossy().into_owned()),
            &c.source,
        );
    }
    // openstacksdk: `insecure` wins; else `verify: false` means insecure.
    match (&config.insecure, &config.verify) {
        (Some(i), _) => put("insecure", toml::Value::Boolean(i.value), &i.source),
        (None, Some(v)) => put("insecure", toml::Value::Boolean(!v.value), &v.source),
        (None, None) => {}
    }
    if let Some(t) = &config.api_timeout {
        put(
            "timeout",
            toml::Value::Float(t.value.as_secs_f64()),
            &t.source,
        );
    }
    layers
}

/// Where a secret that is not given as a value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretFrom {
    /// A shell command whose standard output it is (`password_command`).
    Command {
        setting: &'static str,
        command: Sourced<String>,
    },
    /// A file whose content it is (`password_file`).
    File(Sourced<PathBuf>),
}

impl SecretFrom {
    pub fn source(&self) -> &Source {
        match self {
            SecretFrom::Command { command, .. } => &command.source,
            SecretFrom::File(f) => &f.source,
        }
    }
}

/// A login to make with Keystone (or OTC IAM).
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    /// The login settings, each with its source. A secret that comes from a
    /// command or a file is an empty placeholder here until it is read.
    pub config: AuthConfig,
    /// Where the password is read, when not given as a value.
    pub password_from: Option<SecretFrom>,
    /// Where the application credential secret is read, likewise.
    pub app_secret_from: Option<SecretFrom>,
    /// The token cache's root (`<root>/ims-patch/tokens`); `None` with
    /// `--no-token-cache`.
    pub cache_root: Option<Sourced<PathBuf>>,
    /// Whether a plain-http image endpoint on another machine is allowed.
    pub allow_http: bool,
    /// Print each login request (redacted) on stderr even without `-v`:
    /// `--dry-run` shows what it sends.
    pub show_login: bool,
}

impl Login {
    /// The login request, with `password`/`secret` in place of the
    /// placeholders when given (the cache key needs none of them).
    pub fn request(
        &self,
        password: Option<Secret>,
        app_secret: Option<Secret>,
    ) -> Result<AuthRequest> {
        let mut config = self.config.clone();
        if let (Some(p), Some(slot)) = (password, config.password.as_mut()) {
            slot.value = p;
        }
        if let (Some(s), Some(slot)) = (app_secret, config.application_credential_secret.as_mut()) {
            slot.value = s;
        }
        AuthRequest::from_config(&config)
    }
}

/// How strongly a source ranks: flag, environment, profile, cloud.
fn rank(source: &Source) -> u8 {
    match source {
        Source::Flag(_) => 0,
        Source::Env(_) => 1,
        Source::Profile { .. } => 2,
        Source::Cloud { .. } | Source::Vendor { .. } => 3,
        Source::Catalog | Source::Default => 4,
    }
}

/// The secret of `value`, or of a command or file that ranks higher
/// (a profile's `password_command` beats a clouds.yaml password; an
/// `OS_PASSWORD` beats both). A command and a file both set is an error.
fn secret_source(
    r: &Resolved,
    value: &str,
    command: &'static str,
    file: Option<&'static str>,
) -> Result<(Option<Sourced<Secret>>, Option<SecretFrom>)> {
    let given = r.secret(value);
    let command_set = r.text(command).map(|c| SecretFrom::Command {
        setting: command,
        command: c,
    });
    let file_set = file.and_then(|f| r.path(f)).map(SecretFrom::File);
    let from = match (command_set, file_set) {
        (Some(c), Some(f)) => {
            return Err(Error::config(format!(
                "{command} ({}) and {} ({}) are both set; keep only one",
                c.source(),
                file.unwrap_or_default(),
                f.source()
            )))
        }
        (c, f) => c.or(f),
    };
    Ok(match (given, from) {
        (Some(g), Some(f)) if rank(&g.source) > rank(f.source()) => (
            Some(Sourced {
                value: Secret::new(""),
                source: f.source().clone(),
            }),
            Some(f),
        ),
        (Some(g), _) => (Some(g), None),
        (None, Some(f)) => (
            Some(Sourced {
                value: Secret::new(""),
                source: f.source().clone(),
            }),
            Some(f),
        ),
        (None, None) => (None, None),
    })
}

/// The Keystone login the resolved settings describe, if any: when a cloud
/// is selected or an identity URL is set, and the auth type is not
/// `admin_token`/`token_endpoint` (today's endpoint and token). Checks what
/// it can without a request: the auth type, a user and a secret, the scope.
pub fn login(r: &Resolved) -> Result<Option<Login>> {
    let cloud = r.text("os_cloud");
    if cloud.is_none() && r.text("os_auth_url").is_none() {
        return Ok(None);
    }
    let t = |name: &str| r.text(name);
    let (password, password_from) =
        secret_source(r, "os_password", "password_command", Some("password_file"))?;
    let (app_secret, app_secret_from) = secret_source(
        r,
        "os_application_credential_secret",
        "application_credential_secret_command",
        None,
    )?;
    let mut config = AuthConfig {
        cloud: cloud.map(|c| c.value),
        auth_type: t("os_auth_type"),
        auth_url: t("os_auth_url"),
        username: t("os_username"),
        user_id: t("os_user_id"),
        password,
        user_domain_name: t("os_user_domain_name"),
        user_domain_id: t("os_user_domain_id"),
        project_name: t("os_project_name"),
        project_id: t("os_project_id"),
        project_domain_name: t("os_project_domain_name"),
        project_domain_id: t("os_project_domain_id"),
        domain_name: t("os_domain_name"),
        domain_id: t("os_domain_id"),
        token: r.secret("os_token"),
        application_credential_id: t("os_application_credential_id"),
        application_credential_name: t("os_application_credential_name"),
        application_credential_secret: app_secret,
        region_name: t("os_region_name"),
        interface: t("os_interface"),
        image_endpoint_override: t("endpoint"),
        cacert: r.path("cacert"),
        ..AuthConfig::default()
    };
    config.fold_domain();
    let auth_type = AuthType::of(&config)?;
    if auth_type == AuthType::AdminToken {
        return Ok(None);
    }
    // A token to exchange may also be a profile's `token`.
    if auth_type == AuthType::Token && config.token.is_none() {
        config.token = r.secret("token");
    }
    let login = Login {
        config,
        password_from,
        app_secret_from,
        cache_root: match r.switched_on("no_token_cache") {
            Some(_) => None,
            None => r.path("cache_dir").or_else(|| {
                dirs::cache_dir().map(|d| Sourced {
                    value: d,
                    source: Source::Default,
                })
            }),
        },
        allow_http: r.switched_on("allow_http").is_some(),
        show_login: false,
    };
    // Everything that can be checked without a request fails now.
    let request = login.request(None, None)?;
    check_plain_http(&request.auth_url, &login)?;
    Ok(Some(login))
}

/// A password sent over plain http to another machine is refused unless
/// allowed, as for the endpoint.
fn check_plain_http(auth_url: &str, login: &Login) -> Result<()> {
    let Ok(url) = Url::parse(auth_url) else {
        return Ok(()); // tokens_url reports it
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback && !login.allow_http {
        let source = login
            .config
            .auth_url
            .as_ref()
            .map(|s| s.source.to_string())
            .unwrap_or_default();
        return Err(Error::config(format!(
            "auth_url '{auth_url}' ({source}) uses plain http to another machine, which would send the password unencrypted"
        ))
        .hint("use https://, or pass --allow-http (allow_http = true in the profile) if the network is trusted"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keystone::{Method, Scope};
    use crate::settings::{file, resolve};
    use std::ffi::OsString;
    use std::path::Path;

    fn resolved(
        config: &str,
        env: &'static [(&'static str, &'static str)],
        layers: &[Layer],
    ) -> Result<Resolved> {
        let file = file::parse(config, Path::new("/c.toml")).unwrap();
        let lookup = move |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        };
        resolve::resolve_layers(&resolve::Flags::new(), &lookup, &file, layers)
    }

    fn cloud() -> AuthConfig {
        let src = Source::Cloud {
            cloud: "c".into(),
            file: "/clouds.yaml".into(),
        };
        let s = |v: &str| {
            Some(Sourced {
                value: v.to_string(),
                source: src.clone(),
            })
        };
        AuthConfig {
            cloud: Some("c".into()),
            auth_url: s("https://id.example.com/v3"),
            username: s("u"),
            user_domain_name: s("Default"),
            project_name: s("p"),
            project_domain_name: s("Default"),
            password: Some(Sourced {
                value: Secret::new("cloudpw"),
                source: src.clone(),
            }),
            region_name: s("RegionOne"),
            image_endpoint_override: s("https://ims.example.com"),
            verify: Some(Sourced {
                value: false,
                source: src.clone(),
            }),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn a_cloud_ranks_after_environment_and_profile() {
        let layers = cloud_layers(&cloud());
        assert_eq!(layers.len(), 1);
        let r = resolved(
            "default_profile = \"x\"\n[profiles.x]\ncloud = \"c\"\nproject_name = \"fromprofile\"\n",
            &[("OS_USERNAME", "envuser")],
            &layers,
        )
        .unwrap();
        let login = login(&r).unwrap().unwrap();
        let c = &login.config;
        assert_eq!(c.username.as_ref().unwrap().value, "envuser");
        assert_eq!(
            c.username.as_ref().unwrap().source,
            Source::Env("OS_USERNAME")
        );
        assert_eq!(c.project_name.as_ref().unwrap().value, "fromprofile");
        assert!(c
            .auth_url
            .as_ref()
            .unwrap()
            .source
            .to_string()
            .contains("cloud 'c'"));
        assert_eq!(c.cloud.as_deref(), Some("c"));
        assert!(r.switched_on("insecure").is_some(), "verify: false");
        assert_eq!(r.text("endpoint").unwrap().value, "https://ims.example.com");
        let req = login.request(None, None).unwrap();
        assert!(
            matches!(req.method, Method::Password { ref password, .. } if password.expose() == "cloudpw")
        );
        assert!(matches!(req.scope, Scope::ProjectName { ref name, .. } if name == "fromprofile"));
    }

    #[test]
    fn a_profile_password_command_beats_the_cloud_password_but_not_the_environment() {
        let layers = cloud_layers(&cloud());
        let profile = "default_profile = \"x\"\n[profiles.x]\ncloud = \"c\"\npassword_command = \"pass show os\"\n";
        let r = resolved(profile, &[], &layers).unwrap();
        let login = login(&r).unwrap().unwrap();
        assert!(matches!(
            login.password_from,
            Some(SecretFrom::Command {
                setting: "password_command",
                ..
            })
        ));
        let req = login.request(Some(Secret::new("fromcmd")), None).unwrap();
        assert!(
            matches!(req.method, Method::Password { ref password, .. } if password.expose() == "fromcmd")
        );
        let r = resolved(profile, &[("OS_PASSWORD", "envpw")], &layers).unwrap();
        let login = super::login(&r).unwrap().unwrap();
        assert_eq!(login.password_from, None);
        let both = "default_profile = \"x\"\n[profiles.x]\ncloud = \"c\"\npassword_command = \"a\"\npassword_file = \"/pw\"\n";
        let e = super::login(&resolved(both, &[], &layers).unwrap()).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.message.contains("keep only one"), "{}", e.message);
    }

    #[test]
    fn os_variables_with_legacy_spellings() {
        let r = resolved(
            "",
            &[
                ("OS_AUTH_URL", "http://127.0.0.1:5000"),
                ("OS_USERNAME", "demo"),
                ("OS_PASSWORD", "pw"),
                ("OS_DOMAIN_NAME", "Default"),
                ("OS_TENANT_NAME", "demo"),
                ("OS_ENDPOINT_TYPE", "internalURL"),
                ("IMS_PATCH_NO_TOKEN_CACHE", "1"),
            ],
            &[],
        )
        .unwrap();
        let login = login(&r).unwrap().unwrap();
        let c = &login.config;
        assert_eq!(
            c.project_name.as_ref().unwrap().source,
            Source::Env("OS_TENANT_NAME")
        );
        assert_eq!(c.user_domain_name.as_ref().unwrap().value, "Default");
        assert_eq!(c.project_domain_name.as_ref().unwrap().value, "Default");
        assert!(
            c.domain_name.is_none(),
            "folded into user and project domains"
        );
        assert_eq!(c.interface.as_ref().unwrap().value, "internalURL");
        assert_eq!(login.cache_root, None);
    }

    #[test]
    fn auth_types_admin_token_unknown_and_plain_http() {
        let r = resolved(
            "",
            &[
                ("OS_AUTH_URL", "https://id"),
                ("OS_AUTH_TYPE", "admin_token"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(login(&r).unwrap(), None);
        let r = resolved(
            "",
            &[
                ("OS_AUTH_URL", "https://id"),
                ("OS_AUTH_TYPE", "v3oidcpassword"),
            ],
            &[],
        )
        .unwrap();
        let e = login(&r).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(
            e.message.contains("'v3oidcpassword' (from OS_AUTH_TYPE)"),
            "{}",
            e.message
        );
        let r = resolved(
            "",
            &[
                ("OS_AUTH_URL", "http://id.example.com/v3"),
                ("OS_USER_ID", "u"),
                ("OS_PASSWORD", "secretpw"),
            ],
            &[],
        )
        .unwrap();
        let e = login(&r).unwrap_err();
        assert!(e.message.contains("plain http"), "{}", e.message);
        assert!(!e.message.contains("secretpw"));
        assert_eq!(login(&resolved("", &[], &[]).unwrap()).unwrap(), None);
    }
}

//! Settings: the table of settings, the config file, the environment and
//! the flags resolved (purely) into connection settings, which the client
//! gets, and run options, which the caller keeps; the source of every value
//! is kept so each error can name it.

pub mod aksk;
pub mod env;
pub mod file;
pub mod login;
pub mod resolve;
pub mod retry;
pub mod table;

use std::path::PathBuf;
use std::time::Duration;

use crate::endpoint::{self, Endpoint};
use crate::error::{Error, Result};
use crate::output::OutputFormat;
use crate::patch::PatchFormat;
use crate::secret::Secret;

pub use crate::source::{Source, Sourced};
pub use resolve::{resolve, resolve_layers, Layer, Resolved};

/// Where the credential comes from; turned into a `client::Credential`
/// (which may read a file or run a command) only when the client is built.
#[derive(Debug, Clone, PartialEq)]
pub enum CredentialSource {
    /// A token given as it is (`--token`, `IMS_PATCH_TOKEN`, `token`).
    Token(Sourced<Secret>),
    /// A profile's `token_file`.
    TokenFile(Sourced<PathBuf>),
    /// A profile's `token_command`.
    TokenCommand(Sourced<String>),
    /// An OTC access key pair: each request is signed (SDK-HMAC-SHA256).
    AkSk(Box<aksk::AkSkSource>),
    /// A Keystone (OTC IAM) login: clouds.yaml, `OS_*`, profile keys.
    Keystone(Box<login::Login>),
    /// Nothing configured.
    None,
}

impl CredentialSource {
    /// Whether logging in with it yields the endpoint (a service catalog),
    /// so that no endpoint need be configured.
    pub fn yields_endpoint(&self) -> bool {
        matches!(self, CredentialSource::Keystone(_))
    }
}

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tls {
    pub cacert: Option<Sourced<PathBuf>>,
    /// Where verification was switched off, if it was.
    pub insecure: Option<Source>,
}

/// Everything the client needs: where, who, TLS and how long to wait.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionSettings {
    /// Optional: with a service catalog it is an output of logging in.
    pub endpoint: Option<Sourced<Endpoint>>,
    pub credential: CredentialSource,
    pub tls: Tls,
    /// The deadline of each exchange, body included.
    pub timeout: Sourced<Duration>,
}

impl ConnectionSettings {
    /// The endpoint, or the error that says how to set one.
    pub fn require_endpoint(&self) -> Result<&Sourced<Endpoint>> {
        self.endpoint.as_ref().ok_or_else(no_endpoint)
    }
}

/// The error for a missing endpoint, naming every way to set it.
pub fn no_endpoint() -> Error {
    let s = table::setting("endpoint");
    Error::config("no endpoint is set").hint(format!(
        "pass {} URL, set {}, or put {} = \"...\" in a profile of the config file (try 'ims-patch sandbox' for a local one)",
        s.flag.map_or("--endpoint", |f| f.0),
        s.env.unwrap_or_default(),
        s.profile_key.unwrap_or_default(),
    ))
}

/// How this run behaves; the client never sees these.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunOptions {
    pub patch_format: PatchFormat,
    pub output: OutputFormat,
    pub fields: Vec<String>,
    pub quiet: bool,
    pub dry_run: bool,
    pub verbose: bool,
    /// `--diff` (an editing command's flag): print before → after.
    pub diff: bool,
    /// Batch runs and retries (issue #10).
    pub batch: BatchOptions,
}

/// `--jobs`, `--retries`, `--retry-max-wait`, `--undo-file`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOptions {
    pub jobs: usize,
    pub retry: retry::RetryPolicy,
    pub undo_file: Option<Sourced<std::path::PathBuf>>,
}

impl Default for BatchOptions {
    fn default() -> BatchOptions {
        BatchOptions {
            jobs: 4,
            retry: Default::default(),
            undo_file: None,
        }
    }
}

/// The connection settings from the resolved table (pure).
pub fn connection(r: &Resolved) -> Result<ConnectionSettings> {
    let endpoint = match r.text("endpoint") {
        None => None,
        Some(text) => {
            let parsed = Endpoint::parse(&text.value).map_err(|why| {
                text.source
                    .bad_value(format!(
                        "invalid endpoint '{}' ({}): {why}",
                        endpoint::shown(&text.value),
                        text.source
                    ))
                    .hint("an endpoint looks like https://ims.eu-de.otc.t-systems.com")
            })?;
            // Plain-http endpoints to other hosts are refused unless allowed.
            if !parsed.is_https() && !parsed.is_loopback() && r.switched_on("allow_http").is_none()
            {
                return Err(text.source.bad_value(format!(
                    "endpoint '{}' ({}) uses plain http to another machine, which would send the token unencrypted",
                    endpoint::shown(&text.value), text.source
                ))
                .hint("use https://, or pass --allow-http (allow_http = true in the profile) if the network is trusted"));
            }
            Some(text.with(parsed))
        }
    };
    let credential = credential_source(r, endpoint.as_ref())?;
    // With AK/SK and a region, the endpoint is the region's OTC IMS.
    let endpoint = match (&endpoint, &credential) {
        (None, CredentialSource::AkSk(a)) => aksk::endpoint(a),
        _ => endpoint,
    };
    Ok(ConnectionSettings {
        endpoint,
        credential,
        tls: Tls {
            cacert: r.path("cacert"),
            insecure: r.switched_on("insecure"),
        },
        timeout: r
            .seconds("timeout")
            .map(|s| s.with(Duration::from_secs_f64(s.value)))
            .expect("timeout has a default"),
    })
}

/// A flag or environment token wins, then an access key from the
/// environment; a profile may set only one of token, token_file,
/// token_command and access_key.
fn credential_source(
    r: &Resolved,
    endpoint: Option<&Sourced<Endpoint>>,
) -> Result<CredentialSource> {
    let token = r.secret("token");
    if let Some(t) = &token {
        if matches!(t.source, Source::Flag(_) | Source::Env(_)) {
            return Ok(CredentialSource::Token(t.clone()));
        }
    }
    let access_key = r.text("access_key");
    let file = r.path("token_file");
    let command = r.text("token_command");
    let from_profile = |s: &Source| matches!(s, Source::Profile { .. });
    let token_set = token.is_some() || file.is_some() || command.is_some();
    // AK/SK: an access key, unless auth_type names another method or a
    // profile sets both it and a token (an error below).
    let auth_type = r.text("os_auth_type");
    let aksk_named = auth_type
        .as_ref()
        .is_some_and(|t| t.value.eq_ignore_ascii_case("aksk"));
    if let (true, None, Some(t)) = (aksk_named, &access_key, &auth_type) {
        return Err(Error::config(format!(
            "auth_type 'aksk' ({}) needs an access key and a secret key",
            t.source
        ))
        .hint("set IMS_PATCH_ACCESS_KEY and IMS_PATCH_SECRET_KEY, or ak and sk under auth: in the cloud"));
    }
    match &access_key {
        Some(ak)
            if (auth_type.is_none() || aksk_named) && (!token_set || !from_profile(&ak.source)) =>
        {
            let source = aksk::source(r, endpoint)?.expect("an access key is set");
            return Ok(CredentialSource::AkSk(Box::new(source)));
        }
        Some(_) => {}
        // A secret key without an access key is an error.
        None => {
            aksk::source(r, endpoint)?;
        }
    }
    if let Some(login) = login::login(r)? {
        // A profile's own token setting loses to a login the environment
        // or a flag selects: say so, since it used to be what was sent.
        let shadowed = ["token", "token_file", "token_command"]
            .into_iter()
            .find(|name| r.get(name).is_some());
        if let (Some(name), Some(by)) = (shadowed, r.text("os_cloud").or(r.text("os_auth_url"))) {
            log::warn!(
                "the profile's {name} is not used: {} logs in with Keystone ({}); set auth_type = \"admin_token\" in the profile to send the token as before",
                if r.text("os_cloud").is_some() { "the cloud selected" } else { "auth_url" },
                by.source
            );
        }
        return Ok(CredentialSource::Keystone(Box::new(login)));
    }
    // auth_type admin_token/token_endpoint: OS_TOKEN is today's token.
    if let (None, Some(t)) = (&token, r.secret("os_token")) {
        return Ok(CredentialSource::Token(t));
    }
    let set: Vec<&str> = [
        ("token", token.is_some()),
        ("token_file", file.is_some()),
        ("token_command", command.is_some()),
        ("access_key", access_key.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, is_set)| is_set.then_some(name))
    .collect();
    if set.len() > 1 {
        let (profile, path) = r.profile.clone().unwrap_or_default();
        let source = Source::Profile {
            profile,
            file: path,
        };
        return Err(Error::config(format!(
            "{source} sets {}; keep only one",
            set.join(" and ")
        )));
    }
    Ok(match (token, file, command) {
        (Some(t), _, _) => CredentialSource::Token(t),
        (_, Some(f), _) => CredentialSource::TokenFile(f),
        (_, _, Some(c)) => CredentialSource::TokenCommand(c),
        _ => CredentialSource::None,
    })
}

/// The run options from the resolved table and the flag-only options.
pub fn run_options(
    r: &Resolved,
    fields: Vec<String>,
    quiet: bool,
    dry_run: bool,
    verbose: bool,
) -> RunOptions {
    let word = |name: &str| r.text(name).map(|s| s.value).unwrap_or_default();
    RunOptions {
        patch_format: clap::ValueEnum::from_str(&word("patch_format"), true).unwrap_or_default(),
        output: clap::ValueEnum::from_str(&word("output"), true).unwrap_or_default(),
        fields,
        quiet,
        dry_run,
        verbose,
        diff: false,
        batch: BatchOptions {
            jobs: r.count("jobs").map_or(4, |c| c.value as usize),
            retry: retry::RetryPolicy {
                retries: r
                    .count("retries")
                    .map_or(retry::DEFAULT_RETRIES, |c| c.value as u32),
                max_wait: r
                    .seconds("retry_max_wait")
                    .map_or(retry::DEFAULT_MAX_WAIT, |s| {
                        Duration::from_secs_f64(s.value)
                    }),
                ..Default::default()
            },
            undo_file: r.path("undo_file"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::path::Path;

    fn resolved(config: &str, env: &'static [(&'static str, &'static str)]) -> Result<Resolved> {
        let file = file::parse(config, Path::new("/c.toml")).unwrap();
        let lookup = move |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        };
        resolve(&resolve::Flags::new(), &lookup, &file)
    }

    #[test]
    fn the_endpoint_is_optional_until_needed() {
        let c = connection(&resolved("", &[("IMS_PATCH_TOKEN", "t")]).unwrap()).unwrap();
        assert_eq!(c.endpoint, None);
        let e = c.require_endpoint().unwrap_err();
        assert_eq!(e.message, "no endpoint is set");
        assert!(e.hints[0].contains("--endpoint URL, set IMS_PATCH_ENDPOINT, or put endpoint"));
        assert!(
            matches!(c.credential, CredentialSource::Token(ref t) if t.source == Source::Env("IMS_PATCH_TOKEN"))
        );
    }

    #[test]
    fn credential_sources_and_their_conflicts() {
        let both =
            "default_profile = \"p\"\n[profiles.p]\ntoken = \"a\"\ntoken_command = \"echo b\"\n";
        let e = connection(&resolved(both, &[]).unwrap()).unwrap_err();
        assert!(
            e.message
                .contains("from profile 'p' in /c.toml sets token and token_command"),
            "{}",
            e.message
        );
        // The environment's token wins over the profile's.
        let c = connection(&resolved(both, &[("IMS_PATCH_TOKEN", "t")]).unwrap()).unwrap();
        assert!(matches!(c.credential, CredentialSource::Token(ref t) if t.value.expose() == "t"));
        let cmd = "default_profile = \"p\"\n[profiles.p]\ntoken_command = \"echo b\"\n";
        let c = connection(&resolved(cmd, &[]).unwrap()).unwrap();
        assert!(
            matches!(c.credential, CredentialSource::TokenCommand(ref s) if s.value == "echo b")
        );
        let c = connection(&resolved("", &[]).unwrap()).unwrap();
        assert_eq!(c.credential, CredentialSource::None);
    }

    #[test]
    fn endpoint_errors_name_their_source() {
        let e =
            connection(&resolved("", &[("IMS_PATCH_ENDPOINT", "http://ims.example.com")]).unwrap())
                .unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(
            e.message
                .contains("(from IMS_PATCH_ENDPOINT) uses plain http"),
            "{}",
            e.message
        );
        let ok = connection(
            &resolved(
                "",
                &[
                    ("IMS_PATCH_ENDPOINT", "http://ims.example.com"),
                    ("IMS_PATCH_ALLOW_HTTP", "1"),
                ],
            )
            .unwrap(),
        )
        .unwrap();
        assert!(ok.endpoint.is_some());
        let e =
            connection(&resolved("", &[("IMS_PATCH_ENDPOINT", "https://u:hunter2@x")]).unwrap())
                .unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }

    #[test]
    fn run_options_come_from_the_table() {
        let r = resolved(
            "",
            &[
                ("IMS_PATCH_OUTPUT", "json"),
                ("IMS_PATCH_PATCH_FORMAT", "v2.0"),
            ],
        )
        .unwrap();
        let o = run_options(&r, vec![], true, false, false);
        assert_eq!(o.output, OutputFormat::Json);
        assert_eq!(o.patch_format, PatchFormat::V20);
        assert!(o.quiet);
    }
}

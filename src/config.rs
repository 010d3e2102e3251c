//! Settings: the config file, the environment and the flags resolved into one
//! value, with the source of each setting kept so every error can name it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::Deserialize;
use url::Url;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::error::{Error, Result};
use crate::patch::PatchFormat;
pub use crate::secret::Secret as Token;

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    Env(&'static str),
    Profile { profile: String, file: PathBuf },
    Default,
}

impl Source {
    /// The error for a bad value from this source: a flag's value is a usage
    /// error (exit 2, as clap's own checks), any other a configuration error.
    pub fn bad_value(&self, message: String) -> Error {
        match self {
            Source::Flag(_) => Error::usage(message),
            _ => Error::config(message),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "from {flag}"),
            Source::Env(var) => write!(f, "from {var}"),
            Source::Profile { profile, file } => {
                write!(f, "from profile '{profile}' in {}", file.display())
            }
            Source::Default => f.write_str("by default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

/// The image service base URL, normalised to end before `/v2`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    base: Url,
}

impl Endpoint {
    /// Accepts `https://host`, `https://host/`, `https://host/v2`,
    /// `https://host/prefix/v2/` and the like.
    pub fn parse(text: &str) -> std::result::Result<Endpoint, String> {
        let mut url = Url::parse(text.trim()).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("it must start with https:// (or http://)".into());
        }
        if url.host().is_none() {
            return Err("it has no host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "it must not hold a user name or password (they would show up in messages); use a token".into(),
            );
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("it must not have a query or fragment".into());
        }
        let path = url.path().trim_end_matches('/');
        let path = path.strip_suffix("/v2").unwrap_or(path).to_string();
        url.set_path(&path);
        Ok(Endpoint { base: url })
    }

    /// `{base}/v2/{segments...}`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("an http(s) URL has path segments");
            path.pop_if_empty().push("v2");
            path.extend(segments);
        }
        url
    }

    pub fn is_https(&self) -> bool {
        self.base.scheme() == "https"
    }

    /// Whether the host is this machine (127.0.0.0/8, ::1 or localhost).
    pub fn is_loopback(&self) -> bool {
        match self.base.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base.as_str().trim_end_matches('/'))
    }
}

/// `text` without any password in it, for messages.
fn without_credentials(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => text.to_string(),
    }
}

/// Everything a command needs to talk to the service, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoint: Sourced<Endpoint>,
    pub token: Sourced<Token>,
    pub patch_format: PatchFormat,
    pub output: OutputFormat,
    pub timeout: Duration,
    pub cacert: Option<Sourced<PathBuf>>,
    /// Where TLS verification was switched off, if it was.
    pub insecure: Option<Source>,
    pub fields: Vec<String>,
    pub quiet: bool,
    pub dry_run: bool,
    pub verbose: bool,
}

/// One `[profiles.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    endpoint: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    token_command: Option<String>,
    patch_format: Option<String>,
    output: Option<String>,
    timeout: Option<f64>,
    cacert: Option<PathBuf>,
    insecure: Option<bool>,
    allow_http: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// The default config file: `<user config dir>/ims-patch/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("ims-patch").join("config.toml"))
}

fn parse_config(text: &str, path: &Path) -> Result<ConfigFile> {
    toml::from_str(text).map_err(|e| {
        let place = e
            .span()
            .map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" at line {line}, column {column}")
            })
            .unwrap_or_default();
        // A mistyped token must not be echoed in the message.
        let on_token_line = e.span().is_some_and(|span| {
            let start = text[..span.start.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
            let line = text[start..].lines().next().unwrap_or("");
            let key = line.split('=').next().unwrap_or("").trim();
            key == "token" || key.starts_with("token ") || line.trim_start().starts_with("token=")
        });
        let detail = if on_token_line {
            "the token must be a quoted string (value not shown)".to_string()
        } else {
            e.message().trim().to_string()
        };
        Error::config(format!(
            "invalid config file '{}'{place}: {detail}",
            path.display(),
        ))
        .hint("profile keys are: endpoint, token, token_file, token_command, patch_format, output, timeout, cacert, insecure, allow_http")
    })
}

/// Reads the config file; a missing default file is an empty config.
fn load_config(path: &Path, explicit: Option<&Source>) -> Result<Option<ConfigFile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok(None)
        }
        Err(e) => {
            let source = explicit.map(|s| format!(" ({s})")).unwrap_or_default();
            return Err(Error::config(format!(
                "cannot read config file '{}'{source}: {e}",
                path.display()
            )));
        }
    };
    let config = parse_config(&text, path)?;
    if config.profiles.values().any(|p| p.token.is_some()) {
        warn_if_shared(path, "holds a token");
    }
    Ok(Some(config))
}

/// Warns on stderr when a file with a secret in it is readable by others.
fn warn_if_shared(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "ims-patch: warning: '{}' {what} and is readable by group or others; run: chmod 600 '{}'",
                    path.display(),
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
}

/// Where the value of the global argument `id` came from, if it was given
/// on the command line or (through clap's `env`) in the environment.
pub fn given(
    matches: &ArgMatches,
    id: &str,
    flag: &'static str,
    var: &'static str,
) -> Option<Source> {
    let mut m = Some(matches);
    while let Some(current) = m {
        match current.value_source(id) {
            Some(ValueSource::CommandLine) => return Some(Source::Flag(flag)),
            Some(ValueSource::EnvVariable) => return Some(Source::Env(var)),
            _ => m = current.subcommand().map(|(_, sub)| sub),
        }
    }
    None
}

/// A text argument that clap read from its flag or its environment
/// variable; a blank environment variable counts as unset.
fn text_arg(
    value: Option<&str>,
    matches: &ArgMatches,
    id: &str,
    flag: &'static str,
    var: &'static str,
) -> Option<Sourced<String>> {
    let value = value?;
    let source = given(matches, id, flag, var).unwrap_or(Source::Flag(flag));
    if matches!(source, Source::Env(_)) && value.trim().is_empty() {
        return None;
    }
    Some(Sourced {
        value: value.to_string(),
        source,
    })
}

/// A typed setting from the environment, parsed here (not by clap) so that
/// a bad value is a configuration error that names the variable.
fn env_setting<T>(
    var: &'static str,
    parse: fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>> {
    let Some(text) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    parse(text.trim()).map(Some).ok_or_else(|| {
        Error::config(format!("{var}='{text}' is not {expected}"))
            .hint(format!("fix or unset {var}"))
    })
}

fn parse_format(text: &str) -> Option<PatchFormat> {
    clap::ValueEnum::from_str(text, false).ok()
}

fn parse_output(text: &str) -> Option<OutputFormat> {
    clap::ValueEnum::from_str(text, false).ok()
}

fn parse_seconds(text: &str) -> Option<f64> {
    text.parse().ok()
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A profile's text value for a typed setting, parsed.
fn in_profile<T>(
    value: Option<&str>,
    expected: &str,
    parse: fn(&str) -> Option<T>,
    source: &Source,
) -> Result<Option<T>> {
    value
        .map(|text| {
            parse(text)
                .ok_or_else(|| Error::config(format!("'{text}' ({source}) is not {expected}")))
        })
        .transpose()
}

/// The first of flag, environment and profile that sets a typed value.
fn layered<T>(
    flag: Option<(T, &'static str)>,
    env: Option<(T, &'static str)>,
    profile: Option<(T, Source)>,
) -> Option<Sourced<T>> {
    flag.map(|(value, name)| Sourced {
        value,
        source: Source::Flag(name),
    })
    .or_else(|| {
        env.map(|(value, var)| Sourced {
            value,
            source: Source::Env(var),
        })
    })
    .or_else(|| profile.map(|(value, source)| Sourced { value, source }))
}

fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), dirs::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

impl Settings {
    /// Resolves the settings: flag, then environment, then profile, then default.
    pub fn resolve(args: &GlobalArgs, matches: &ArgMatches) -> Result<Settings> {
        let config_arg = text_arg(
            args.config.as_deref().and_then(Path::to_str),
            matches,
            "config",
            "--config",
            "IMS_PATCH_CONFIG",
        );
        let (config_path, config_source) = match config_arg {
            Some(arg) => (PathBuf::from(arg.value), Some(arg.source)),
            None => (
                default_config_path().ok_or_else(|| {
                    Error::config("cannot find the user config directory")
                        .hint("pass --config PATH or set IMS_PATCH_CONFIG")
                })?,
                None,
            ),
        };
        let config = load_config(&config_path, config_source.as_ref())?;

        let profile_arg = text_arg(
            args.profile.as_deref(),
            matches,
            "profile",
            "--profile",
            "IMS_PATCH_PROFILE",
        );
        let (profile_name, profile_origin) = match (profile_arg, &config) {
            (Some(arg), _) => (Some(arg.value), format!("({})", arg.source)),
            (None, Some(c)) => (
                c.default_profile.clone(),
                "(from default_profile)".to_string(),
            ),
            (None, None) => (None, String::new()),
        };
        let empty = Profile::default();
        let profile = match &profile_name {
            None => &empty,
            Some(name) => config
                .as_ref()
                .and_then(|c| c.profiles.get(name))
                .ok_or_else(|| {
                    let known: Vec<&str> = config
                        .iter()
                        .flat_map(|c| c.profiles.keys().map(String::as_str))
                        .collect();
                    let err = Error::config(format!(
                        "profile '{name}' {profile_origin} is not defined in '{}'",
                        config_path.display()
                    ));
                    if known.is_empty() {
                        err.hint(format!(
                            "add a [profiles.{name}] table to '{}'",
                            config_path.display()
                        ))
                    } else {
                        err.hint(format!("defined profiles: {}", known.join(", ")))
                    }
                })?,
        };
        let from_profile = || Source::Profile {
            profile: profile_name.clone().unwrap_or_default(),
            file: config_path.clone(),
        };

        let endpoint = text_arg(args.endpoint.as_deref(), matches, "endpoint", "--endpoint", "IMS_PATCH_ENDPOINT")
            .or_else(|| {
                profile.endpoint.clone().map(|value| Sourced {
                    value,
                    source: from_profile(),
                })
            })
            .ok_or_else(|| {
                Error::config("no endpoint is set").hint(
                    "pass --endpoint URL, set IMS_PATCH_ENDPOINT, or put endpoint = \"...\" in a profile of the config file (try 'ims-patch sandbox' for a local one)",
                )
            })?;
        let parsed = Endpoint::parse(&endpoint.value).map_err(|why| {
            endpoint
                .source
                .bad_value(format!(
                    "invalid endpoint '{}' ({}): {why}",
                    without_credentials(&endpoint.value),
                    endpoint.source
                ))
                .hint("an endpoint looks like https://ims.eu-de.otc.t-systems.com")
        })?;

        // Plain-http endpoints to other hosts are refused unless allowed.
        let allow_http = layered(
            args.allow_http.then_some((true, "--allow-http")),
            env_setting("IMS_PATCH_ALLOW_HTTP", parse_bool, "true or false")?
                .map(|v| (v, "IMS_PATCH_ALLOW_HTTP")),
            profile.allow_http.map(|v| (v, from_profile())),
        )
        .is_some_and(|s| s.value);
        if !parsed.is_https() && !parsed.is_loopback() && !allow_http {
            return Err(endpoint.source.bad_value(format!(
                "endpoint '{}' ({}) uses plain http to another machine, which would send the token unencrypted",
                endpoint.value, endpoint.source
            ))
            .hint("use https://, or pass --allow-http (allow_http = true in the profile) if the network is trusted"));
        }
        let endpoint = Sourced {
            value: parsed,
            source: endpoint.source,
        };

        let token = resolve_token(args, matches, profile, &from_profile)?;

        let patch_format = layered(
            args.patch_format.map(|v| (v, "--patch-format")),
            env_setting("IMS_PATCH_PATCH_FORMAT", parse_format, "v2.1 or v2.0")?
                .map(|v| (v, "IMS_PATCH_PATCH_FORMAT")),
            in_profile(
                profile.patch_format.as_deref(),
                "a patch_format (v2.1 or v2.0)",
                parse_format,
                &from_profile(),
            )?
            .map(|v| (v, from_profile())),
        )
        .map(|s| s.value)
        .unwrap_or_default();
        let output = layered(
            args.output.map(|v| (v, "--output")),
            env_setting("IMS_PATCH_OUTPUT", parse_output, "table or json")?
                .map(|v| (v, "IMS_PATCH_OUTPUT")),
            in_profile(
                profile.output.as_deref(),
                "an output (table or json)",
                parse_output,
                &from_profile(),
            )?
            .map(|v| (v, from_profile())),
        )
        .map(|s| s.value)
        .unwrap_or_default();
        let timeout = layered(
            args.timeout.map(|v| (v, "--timeout")),
            env_setting("IMS_PATCH_TIMEOUT", parse_seconds, "a number of seconds")?
                .map(|v| (v, "IMS_PATCH_TIMEOUT")),
            profile.timeout.map(|v| (v, from_profile())),
        )
        .unwrap_or(Sourced {
            value: 30.0,
            source: Source::Default,
        });
        if !(timeout.value.is_finite() && timeout.value > 0.0 && timeout.value <= 86_400.0) {
            return Err(timeout.source.bad_value(format!(
                "timeout {} ({}) must be a number of seconds above 0 and at most 86400",
                timeout.value, timeout.source
            )));
        }
        let insecure = layered(
            args.insecure.then_some((true, "--insecure")),
            env_setting("IMS_PATCH_INSECURE", parse_bool, "true or false")?
                .map(|v| (v, "IMS_PATCH_INSECURE")),
            profile.insecure.map(|v| (v, from_profile())),
        )
        .filter(|s| s.value)
        .map(|s| s.source);
        let cacert = text_arg(
            args.cacert.as_deref().and_then(Path::to_str),
            matches,
            "cacert",
            "--cacert",
            "IMS_PATCH_CACERT",
        )
        .map(|arg| Sourced {
            value: PathBuf::from(arg.value),
            source: arg.source,
        })
        .or_else(|| {
            profile.cacert.as_deref().map(|p| Sourced {
                value: expand_home(p),
                source: from_profile(),
            })
        });

        Ok(Settings {
            endpoint,
            token,
            patch_format,
            output,
            timeout: Duration::from_secs_f64(timeout.value),
            cacert,
            insecure,
            fields: args.fields.clone(),
            quiet: args.quiet,
            dry_run: args.dry_run,
            verbose: args.verbose,
        })
    }
}

fn resolve_token(
    args: &GlobalArgs,
    matches: &ArgMatches,
    profile: &Profile,
    from_profile: &dyn Fn() -> Source,
) -> Result<Sourced<Token>> {
    let no_token = || {
        Error::config("no token is set").hint(
            "pass --token, set IMS_PATCH_TOKEN, or give a profile token_command (or token_file) in the config file",
        )
    };
    if let Some(t) = text_arg(
        args.token.as_deref(),
        matches,
        "token",
        "--token",
        "IMS_PATCH_TOKEN",
    ) {
        if t.value.trim().is_empty() {
            return Err(Error::usage(format!("the token ({}) is empty", t.source)));
        }
        return Ok(Sourced {
            value: Token::new(t.value.trim()),
            source: t.source,
        });
    }
    let set: Vec<&str> = [
        ("token", profile.token.is_some()),
        ("token_file", profile.token_file.is_some()),
        ("token_command", profile.token_command.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, is_set)| is_set.then_some(name))
    .collect();
    if set.len() > 1 {
        return Err(Error::config(format!(
            "{} sets {}; keep only one",
            from_profile(),
            set.join(" and ")
        )));
    }
    let source = from_profile();
    let value = if let Some(t) = &profile.token {
        t.trim().to_string()
    } else if let Some(path) = &profile.token_file {
        let path = expand_home(path);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::config(format!(
                "cannot read token_file '{}' ({source}): {e}",
                path.display()
            ))
        })?;
        warn_if_shared(&path, "holds a token");
        text.trim().to_string()
    } else if let Some(command) = &profile.token_command {
        run_token_command(command, &source)?
    } else {
        return Err(no_token());
    };
    if value.is_empty() {
        return Err(Error::config(format!("the token ({source}) is empty")));
    }
    Ok(Sourced {
        value: Token::new(value),
        source,
    })
}

/// Runs a profile's `token_command` through the shell; its stdout is the token.
fn run_token_command(command: &str, source: &Source) -> Result<String> {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| {
            Error::config(format!(
                "cannot run token_command '{command}' ({source}): {e}"
            ))
        })?;
    if !output.status.success() {
        return Err(Error::config(format!(
            "token_command '{command}' ({source}) failed ({})",
            output.status
        ))
        .hint("run the command by hand to see why; its standard output must be the token"));
    }
    let text = String::from_utf8(output.stdout).map_err(|_| {
        Error::config(format!(
            "token_command '{command}' ({source}) printed something that is not UTF-8 text"
        ))
    })?;
    Ok(text.trim().to_string())
}

/// Profile names from the config file, for shell completion of `--profile`.
pub fn profile_candidates() -> Vec<clap_complete::CompletionCandidate> {
    let path = std::env::var_os("IMS_PATCH_CONFIG")
        .map(PathBuf::from)
        .or_else(default_config_path);
    let Some(config) = path
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| toml::from_str::<ConfigFile>(&text).ok())
    else {
        return Vec::new();
    };
    config
        .profiles
        .keys()
        .map(clap_complete::CompletionCandidate::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted() {
        let t = Token::new("gAAAAAsecret");
        assert_eq!(format!("{t}"), "<redacted>");
        assert!(!format!("{t:?}").contains("secret"));
        let s = Sourced {
            value: t,
            source: Source::Default,
        };
        assert!(!format!("{s:?}").contains("secret"));
    }

    #[test]
    fn endpoints_with_and_without_v2() {
        for text in [
            "https://ims.eu-de.otc.t-systems.com",
            "https://ims.eu-de.otc.t-systems.com/",
            "https://ims.eu-de.otc.t-systems.com/v2",
            "https://ims.eu-de.otc.t-systems.com/v2/",
        ] {
            let e = Endpoint::parse(text).unwrap();
            assert_eq!(
                e.url(&["images", "33ad552d-1149-471c-8190-ff6776174a00"]).as_str(),
                "https://ims.eu-de.otc.t-systems.com/v2/images/33ad552d-1149-471c-8190-ff6776174a00"
            );
        }
        let e = Endpoint::parse("http://127.0.0.1:9292/image/v2").unwrap();
        assert_eq!(
            e.url(&["images"]).as_str(),
            "http://127.0.0.1:9292/image/v2/images"
        );
        assert_eq!(
            e.url(&["images", "a b/c"]).as_str(),
            "http://127.0.0.1:9292/image/v2/images/a%20b%2Fc"
        );
        assert!(e.is_loopback());
        assert!(Endpoint::parse("http://localhost:9292")
            .unwrap()
            .is_loopback());
        assert!(Endpoint::parse("http://[::1]:9292").unwrap().is_loopback());
        assert!(!Endpoint::parse("http://10.0.0.1").unwrap().is_loopback());
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("https://user:pw@ims.example.com").is_err());
        assert!(Endpoint::parse("ims.example.com").is_err());
    }

    #[test]
    fn config_errors_name_the_line() {
        let path = Path::new("/etc/x.toml");
        let text =
            "default_profile = \"a\"\n[profiles.a]\nendpoint = \"https://x\"\ntokn = \"t\"\n";
        let e = parse_config(text, path).unwrap_err();
        assert!(
            e.message.contains("'/etc/x.toml' at line 4"),
            "{}",
            e.message
        );
        assert!(e.message.contains("tokn"), "{}", e.message);
        let e = parse_config("[profiles.a\n", path).unwrap_err();
        assert!(e.message.contains("line 1"), "{}", e.message);
        let e = parse_config("[profiles.a]\ntoken = 12345678\n", path).unwrap_err();
        assert!(e.message.contains("line 2"), "{}", e.message);
        assert!(!e.message.contains("12345678"), "{}", e.message);
        let ok = parse_config(text.replace("tokn", "token").as_str(), path).unwrap();
        assert_eq!(ok.profiles["a"].token.as_deref(), Some("t"));
    }
}

//! Resolution, a pure function: flag values, an environment lookup and the
//! parsed config file in; each table setting's value and source out. The
//! first of flag, environment variable, profile and default wins.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::file::ConfigFile;
use super::table::{Parse, Setting, SETTINGS};
use super::{Source, Sourced};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The values given on the command line, by setting name (switches as
/// `"true"`), as clap read them: any bytes.
pub type Flags = BTreeMap<&'static str, OsString>;

/// Looks up an environment variable.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// A setting's value before parsing.
#[derive(Debug, Clone)]
pub enum Raw {
    /// From a flag or the environment: any bytes.
    Os(OsString),
    /// A default from the table.
    Text(String),
    /// From a profile.
    Toml(toml::Value),
}

/// A parsed setting.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Secret(Secret),
    Path(PathBuf),
    Bool(bool),
    Seconds(f64),
    Count(u64),
}

/// Why a raw value was refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// It does not read as the setting's kind (the text is shown unless secret).
    NotA,
    /// It reads, but is out of range.
    OutOfRange(String),
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Reads `raw` as `setting` says.
pub fn parse_raw(setting: &Setting, raw: &Raw) -> std::result::Result<Value, Refusal> {
    if setting.parse == Parse::Path {
        return match raw {
            Raw::Os(os) if !os.is_empty() => Ok(Value::Path(PathBuf::from(os))),
            Raw::Text(t) if !t.is_empty() => Ok(Value::Path(PathBuf::from(t))),
            Raw::Toml(toml::Value::String(t)) if !t.is_empty() => {
                Ok(Value::Path(expand_home(Path::new(t))))
            }
            _ => Err(Refusal::NotA),
        };
    }
    let text = match raw {
        Raw::Os(os) => os.to_str().ok_or(Refusal::NotA)?.to_string(),
        Raw::Text(t) => t.clone(),
        Raw::Toml(toml::Value::String(t)) => t.clone(),
        Raw::Toml(toml::Value::Boolean(b)) if setting.parse == Parse::Bool => b.to_string(),
        Raw::Toml(v @ (toml::Value::Integer(_) | toml::Value::Float(_)))
            if matches!(setting.parse, Parse::Seconds { .. } | Parse::Count { .. }) =>
        {
            v.to_string()
        }
        Raw::Toml(_) => return Err(Refusal::NotA),
    };
    match setting.parse {
        Parse::Text | Parse::Secret if text.trim().is_empty() => Err(Refusal::NotA),
        Parse::Text => Ok(Value::Text(text)),
        Parse::Secret => Ok(Value::Secret(Secret::new(text.trim()))),
        Parse::Path => unreachable!("handled above"),
        Parse::Bool => parse_bool(&text).map(Value::Bool).ok_or(Refusal::NotA),
        Parse::Seconds { max } => {
            let s: f64 = text.trim().parse().map_err(|_| Refusal::NotA)?;
            if s.is_finite() && s > 0.0 && s <= max {
                Ok(Value::Seconds(s))
            } else {
                Err(Refusal::OutOfRange(format!(
                    "must be a number of seconds above 0 and at most {max}"
                )))
            }
        }
        Parse::Count { min, max } => {
            let n: u64 = text.trim().parse().map_err(|_| Refusal::NotA)?;
            if (min..=max).contains(&n) {
                Ok(Value::Count(n))
            } else {
                Err(Refusal::OutOfRange(format!("must be from {min} to {max}")))
            }
        }
        Parse::Choice(words) => words
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(text.trim()))
            .map(|(w, _)| Value::Text(w.to_string()))
            .ok_or(Refusal::NotA),
    }
}

fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), dirs::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

/// The error for a refused value, naming its source (and line in a file);
/// a flag's is a usage error (exit 2, as clap's own checks), any other a
/// configuration error.
fn refused(
    setting: &Setting,
    raw: &Raw,
    source: &Source,
    line: Option<usize>,
    why: Refusal,
) -> Error {
    let secret = setting.parse == Parse::Secret;
    let text = match raw {
        Raw::Os(os) => os.to_string_lossy().into_owned(),
        Raw::Text(t) => t.clone(),
        Raw::Toml(toml::Value::String(t)) => t.clone(),
        Raw::Toml(v) => v.to_string(),
    };
    let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
    let name = setting.name;
    if let Refusal::OutOfRange(rule) = why {
        return source.bad_value(format!("{name} {text} ({source}){at} {rule}"));
    }
    if secret {
        let what = match raw {
            Raw::Toml(v) if !v.is_str() => "is not a quoted string (value not shown)",
            Raw::Os(os) if os.to_str().is_none() => "is not UTF-8 text",
            _ => "is empty",
        };
        return source.bad_value(format!("the {name} ({source}){at} {what}"));
    }
    let expected = setting.parse.expected();
    match source {
        Source::Env(var) => Error::config(format!("{var}='{text}' is not {expected}"))
            .hint(format!("fix or unset {var}")),
        Source::Profile { .. } | Source::Cloud { .. } => Error::config(format!(
            "'{text}' ({source}){at} is not a {name} ({expected})"
        )),
        _ => source.bad_value(format!("'{text}' ({source}) is not {expected}")),
    }
}

/// Where the config file is: `--config`, `IMS_PATCH_CONFIG`, or `default`.
pub fn config_path(
    flags: &Flags,
    env: Env,
    default: Option<PathBuf>,
) -> Result<(PathBuf, Option<Source>)> {
    let setting = super::table::setting("config");
    match layer(setting, flags, env, None)? {
        Some(Sourced {
            value: Value::Path(p),
            source,
        }) => Ok((p, Some(source))),
        _ => default.map(|p| (p, None)).ok_or_else(|| {
            Error::config("cannot find the user config directory")
                .hint("pass --config PATH or set IMS_PATCH_CONFIG")
        }),
    }
}

/// The profile in use: its name, where it was chosen, and its table.
struct Chosen<'f> {
    name: String,
    table: &'f super::file::Profile,
}

fn choose_profile<'f>(flags: &Flags, env: Env, file: &'f ConfigFile) -> Result<Option<Chosen<'f>>> {
    let setting = super::table::setting("profile");
    let (name, origin) = match layer(setting, flags, env, None)? {
        Some(Sourced {
            value: Value::Text(name),
            source,
        }) => (name, format!("({source})")),
        _ => match &file.default_profile {
            Some(name) => (name.clone(), "(from default_profile)".to_string()),
            None => return Ok(None),
        },
    };
    match file.profiles.get(&name) {
        Some(table) => Ok(Some(Chosen { name, table })),
        None => {
            let err = Error::config(format!(
                "profile '{name}' {origin} is not defined in '{}'",
                file.path.display()
            ));
            Err(if file.profiles.is_empty() {
                err.hint(format!(
                    "add a [profiles.{name}] table to '{}'",
                    file.path.display()
                ))
            } else {
                let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
                err.hint(format!("defined profiles: {}", known.join(", ")))
            })
        }
    }
}

/// One setting from flag, then environment (blank means unset), then the
/// profile; `None` when none of them sets it.
fn layer(
    setting: &Setting,
    flags: &Flags,
    env: Env,
    profile: Option<(&Chosen, &ConfigFile)>,
) -> Result<Option<Sourced<Value>>> {
    layer_with(setting, flags, env, profile, &[])
}

/// Values from another source that sits after the profile and before the
/// default, such as a cloud of `clouds.yaml`: by setting name, each value
/// with its line in that file.
#[derive(Debug, Clone)]
pub struct Layer {
    pub source: Source,
    pub values: BTreeMap<&'static str, (toml::Value, Option<usize>)>,
}

fn layer_with(
    setting: &Setting,
    flags: &Flags,
    env: Env,
    profile: Option<(&Chosen, &ConfigFile)>,
    extra: &[Layer],
) -> Result<Option<Sourced<Value>>> {
    let mut candidates: Vec<(Raw, Source, Option<usize>)> = Vec::new();
    if let (Some((flag, _)), Some(value)) = (setting.flag, flags.get(setting.name)) {
        candidates.push((Raw::Os(value.clone()), Source::Flag(flag), None));
    }
    for var in setting.env.iter().chain(setting.env_aliases) {
        if let Some(value) = env(var).filter(|v| !v.to_string_lossy().trim().is_empty()) {
            candidates.push((Raw::Os(value), Source::Env(var), None));
        }
    }
    if let (Some(key), Some((chosen, file))) = (setting.profile_key, profile) {
        if let Some(value) = chosen.table.get(key) {
            let source = Source::Profile {
                profile: chosen.name.clone(),
                file: file.path.clone(),
            };
            let line = file.place(value.span().start).0;
            candidates.push((Raw::Toml(value.get_ref().clone()), source, Some(line)));
        }
    }
    for l in extra {
        if let Some((value, line)) = l.values.get(setting.name) {
            candidates.push((Raw::Toml(value.clone()), l.source.clone(), *line));
        }
    }
    let Some((raw, source, line)) = candidates.into_iter().next() else {
        return Ok(None);
    };
    match parse_raw(setting, &raw) {
        Ok(value) => Ok(Some(Sourced { value, source })),
        Err(why) => Err(refused(setting, &raw, &source, line, why)),
    }
}

/// Every table setting, resolved: what was set and where.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub values: BTreeMap<&'static str, Sourced<Value>>,
    /// The profile in use and its file, for messages.
    pub profile: Option<(String, PathBuf)>,
}

impl Resolved {
    pub fn get(&self, name: &str) -> Option<&Sourced<Value>> {
        debug_assert!(SETTINGS.iter().any(|s| s.name == name), "{name}");
        self.values.get(name)
    }

    pub fn text(&self, name: &str) -> Option<Sourced<String>> {
        self.get(name).and_then(|s| match &s.value {
            Value::Text(t) => Some(s.with(t.clone())),
            _ => None,
        })
    }

    pub fn secret(&self, name: &str) -> Option<Sourced<Secret>> {
        self.get(name).and_then(|s| match &s.value {
            Value::Secret(t) => Some(s.with(t.clone())),
            _ => None,
        })
    }

    pub fn path(&self, name: &str) -> Option<Sourced<PathBuf>> {
        self.get(name).and_then(|s| match &s.value {
            Value::Path(p) => Some(s.with(p.clone())),
            _ => None,
        })
    }

    /// Where a switch was turned on, if it is on.
    pub fn switched_on(&self, name: &str) -> Option<Source> {
        self.get(name).and_then(|s| match s.value {
            Value::Bool(true) => Some(s.source.clone()),
            _ => None,
        })
    }

    pub fn seconds(&self, name: &str) -> Option<Sourced<f64>> {
        self.get(name).and_then(|s| match s.value {
            Value::Seconds(v) => Some(s.with(v)),
            _ => None,
        })
    }

    pub fn count(&self, name: &str) -> Option<Sourced<u64>> {
        self.get(name).and_then(|s| match s.value {
            Value::Count(v) => Some(s.with(v)),
            _ => None,
        })
    }
}

/// Resolves every setting of the table: flag, environment, profile, default.
pub fn resolve(flags: &Flags, env: Env, file: &ConfigFile) -> Result<Resolved> {
    resolve_layers(flags, env, file, &[])
}

/// [`resolve`] with more layers between the profile and the default, in
/// order (a cloud of `clouds.yaml`).
pub fn resolve_layers(
    flags: &Flags,
    env: Env,
    file: &ConfigFile,
    extra: &[Layer],
) -> Result<Resolved> {
    let chosen = choose_profile(flags, env, file)?;
    let mut resolved = Resolved {
        values: BTreeMap::new(),
        profile: chosen.as_ref().map(|c| (c.name.clone(), file.path.clone())),
    };
    for setting in SETTINGS {
        let value = match layer_with(
            setting,
            flags,
            env,
            chosen.as_ref().map(|c| (c, file)),
            extra,
        )? {
            Some(v) => Some(v),
            None => match setting.default {
                Some(text) => {
                    let raw = Raw::Text(text.to_string());
                    let value = parse_raw(setting, &raw)
                        .map_err(|why| refused(setting, &raw, &Source::Default, None, why))?;
                    Some(Sourced {
                        value,
                        source: Source::Default,
                    })
                }
                None => None,
            },
        };
        if let Some(value) = value {
            resolved.values.insert(setting.name, value);
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    fn file(text: &str) -> ConfigFile {
        super::super::file::parse(text, Path::new("/cfg.toml")).unwrap()
    }

    fn flags(pairs: &[(&'static str, &str)]) -> Flags {
        pairs.iter().map(|(k, v)| (*k, OsString::from(v))).collect()
    }

    const PROFILE: &str = "default_profile = \"p\"\n[profiles.p]\nendpoint = \"https://profile\"\ntimeout = 5\noutput = \"json\"\ninsecure = true\n\n[profiles.q]\nendpoint = \"https://q\"\n";

    #[test]
    fn flag_beats_environment_beats_profile_beats_default() {
        let f = file(PROFILE);
        let env = env_of(&[
            ("IMS_PATCH_ENDPOINT", "https://env"),
            ("IMS_PATCH_TIMEOUT", "7"),
        ]);
        let r = resolve(&flags(&[("endpoint", "https://flag")]), &env, &f).unwrap();
        let e = r.text("endpoint").unwrap();
        assert_eq!(
            (e.value.as_str(), e.source),
            ("https://flag", Source::Flag("--endpoint"))
        );
        let t = r.seconds("timeout").unwrap();
        assert_eq!((t.value, t.source), (7.0, Source::Env("IMS_PATCH_TIMEOUT")));
        let o = r.text("output").unwrap();
        assert_eq!(o.value, "json");
        assert!(matches!(o.source, Source::Profile { ref profile, .. } if profile == "p"));
        let p = r.text("patch_format").unwrap();
        assert_eq!((p.value.as_str(), p.source), ("v2.1", Source::Default));

        let r = resolve(&flags(&[]), &env_of(&[]), &f).unwrap();
        assert_eq!(r.text("endpoint").unwrap().value, "https://profile");
        assert_eq!(r.seconds("timeout").unwrap().value, 5.0);
        assert!(r.switched_on("insecure").is_some());
    }

    #[test]
    fn blank_environment_is_unset_and_false_switches_off_a_profile() {
        let f = file(PROFILE);
        let env = env_of(&[
            ("IMS_PATCH_ENDPOINT", "  "),
            ("IMS_PATCH_INSECURE", "false"),
        ]);
        let r = resolve(&flags(&[]), &env, &f).unwrap();
        assert_eq!(r.text("endpoint").unwrap().value, "https://profile");
        assert_eq!(r.switched_on("insecure"), None);
    }

    #[test]
    fn profile_is_chosen_by_flag_environment_or_default() {
        let f = file(PROFILE);
        let r = resolve(&flags(&[]), &env_of(&[("IMS_PATCH_PROFILE", "q")]), &f).unwrap();
        assert_eq!(r.text("endpoint").unwrap().value, "https://q");
        assert_eq!(r.text("output").unwrap().source, Source::Default);
        let e = resolve(&flags(&[("profile", "nope")]), &env_of(&[]), &f).unwrap_err();
        assert!(
            e.message
                .contains("profile 'nope' (from --profile) is not defined in '/cfg.toml'"),
            "{}",
            e.message
        );
        assert!(e.hints[0].contains("p, q"), "{:?}", e.hints);
        let f = file("default_profile = \"gone\"\n");
        let e = resolve(&flags(&[]), &env_of(&[]), &f).unwrap_err();
        assert!(
            e.message.contains("profile 'gone' (from default_profile)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn every_error_names_its_source() {
        let f = file("default_profile = \"a\"\n[profiles.a]\npatch_format = \"v3\"\n");
        let e = resolve(&flags(&[]), &env_of(&[]), &f).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.message.contains("'v3' (from profile 'a' in /cfg.toml) at line 3 is not a patch_format (v2.1 or v2.0)"), "{}", e.message);

        let empty = ConfigFile::default();
        let e = resolve(&flags(&[]), &env_of(&[("IMS_PATCH_OUTPUT", "xml")]), &empty).unwrap_err();
        assert_eq!(
            (e.exit_code(), e.message.as_str()),
            (3, "IMS_PATCH_OUTPUT='xml' is not table or json or value")
        );
        assert_eq!(e.hints, ["fix or unset IMS_PATCH_OUTPUT"]);

        let e = resolve(&flags(&[("timeout", "-1")]), &env_of(&[]), &empty).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.message.contains("timeout -1 (from --timeout) must be"),
            "{}",
            e.message
        );
        let e = resolve(&flags(&[]), &env_of(&[("IMS_PATCH_TIMEOUT", "0")]), &empty).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(
            e.message.contains("timeout 0 (from IMS_PATCH_TIMEOUT)"),
            "{}",
            e.message
        );

        let e = resolve(&flags(&[("token", " ")]), &env_of(&[]), &empty).unwrap_err();
        assert_eq!(
            (e.exit_code(), e.message.as_str()),
            (2, "the token (from --token) is empty")
        );

        let f = file("[profiles.a]\ntoken = 12345678\n");
        let e = resolve(&flags(&[("profile", "a")]), &env_of(&[]), &f).unwrap_err();
        assert!(
            e.message.contains("at line 2 is not a quoted string"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("12345678"), "{}", e.message);
    }

    #[test]
    fn extra_layers_sit_between_the_profile_and_the_default() {
        let f = file(PROFILE);
        let cloud = Layer {
            source: Source::Cloud {
                cloud: "otc".into(),
                file: "/clouds.yaml".into(),
            },
            values: [
                ("endpoint", (toml::Value::from("https://cloud"), Some(3))),
                ("patch_format", (toml::Value::from("v2.0"), Some(4))),
                ("output", (toml::Value::from("xml"), None)),
            ]
            .into_iter()
            .collect(),
        };
        let mut one = cloud.clone();
        one.values.remove("output");
        let r = resolve_layers(&flags(&[]), &env_of(&[]), &f, &[one]).unwrap();
        assert_eq!(r.text("endpoint").unwrap().value, "https://profile");
        let p = r.text("patch_format").unwrap();
        assert_eq!(p.value, "v2.0");
        assert_eq!(p.source.to_string(), "from cloud 'otc' in /clouds.yaml");
        let e =
            resolve_layers(&flags(&[("profile", "q")]), &env_of(&[]), &f, &[cloud]).unwrap_err();
        assert!(
            e.message
                .contains("'xml' (from cloud 'otc' in /clouds.yaml) is not a output"),
            "{}",
            e.message
        );
    }

    #[test]
    fn variables_are_read_in_order_and_named() {
        let setting = Setting {
            env_aliases: &["OS_ENDPOINT_TYPE"],
            ..*super::super::table::setting("endpoint")
        };
        let env = env_of(&[("OS_ENDPOINT_TYPE", "https://alias")]);
        let v = layer(&setting, &flags(&[]), &env, None).unwrap().unwrap();
        assert_eq!(v.source, Source::Env("OS_ENDPOINT_TYPE"));
    }

    #[test]
    fn non_utf8_paths_are_used_as_they_are() {
        use std::os::unix::ffi::OsStringExt;
        let raw = OsString::from_vec(b"/tmp/\xff.toml".to_vec());
        let mut f = Flags::new();
        f.insert("config", raw.clone());
        let (path, source) = config_path(&f, &env_of(&[]), None).unwrap();
        assert_eq!(path.as_os_str(), raw.as_os_str());
        assert_eq!(source, Some(Source::Flag("--config")));
        let e = config_path(&Flags::new(), &env_of(&[]), None).unwrap_err();
        assert!(e.message.contains("user config directory"));
    }
}

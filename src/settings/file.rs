//! The config file: TOML with `default_profile` and `[profiles.NAME]`
//! tables whose keys are the table's profile keys. Parsing is pure; loading
//! reads the file and warns when a file holding a secret is shared.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::table::{Parse, SETTINGS};
use crate::error::{Error, Result};

/// One `[profiles.NAME]` table: each key with its value and place.
pub type Profile = BTreeMap<String, Spanned<toml::Value>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
}

/// A parsed config file.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// The file's text, to turn a value's place into a line number.
    pub text: String,
    pub default_profile: Option<String>,
    pub profiles: BTreeMap<String, Profile>,
}

impl ConfigFile {
    /// Line and column (1-based) of a byte offset.
    pub fn place(&self, offset: usize) -> (usize, usize) {
        place(&self.text, offset)
    }
}

fn place(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

fn keys_hint() -> String {
    format!(
        "profile keys are: {}",
        super::table::profile_keys().join(", ")
    )
}

/// Whether the key on the line at `offset` is the profile key of a secret.
fn on_secret_line(text: &str, offset: usize) -> bool {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    let key = line.split('=').next().unwrap_or("").trim();
    SETTINGS
        .iter()
        .any(|s| s.parse == Parse::Secret && s.profile_key == Some(key))
}

/// Parses a config file's text; unknown keys are errors naming their line.
pub fn parse(text: &str, path: &Path) -> Result<ConfigFile> {
    let invalid = |offset: Option<usize>, detail: String| {
        let at = offset
            .map(|o| {
                let (line, column) = place(text, o);
                format!(" at line {line}, column {column}")
            })
            .unwrap_or_default();
        Error::config(format!(
            "invalid config file '{}'{at}: {detail}",
            path.display()
        ))
        .hint(keys_hint())
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let start = e.span().map(|s| s.start);
        // A mistyped secret must not be echoed in the message.
        let detail = if start.is_some_and(|o| on_secret_line(text, o)) {
            "the value must be a quoted string (value not shown)".to_string()
        } else {
            e.message().trim().to_string()
        };
        invalid(start, detail)
    })?;
    let known = super::table::profile_keys();
    let mut profiles = BTreeMap::new();
    for (name, table) in raw.profiles {
        let mut profile = Profile::new();
        for (key, value) in table {
            if !known.contains(&key.get_ref().as_str()) {
                return Err(invalid(
                    Some(key.span().start),
                    format!("unknown key `{}` in profile '{name}'", key.get_ref()),
                ));
            }
            profile.insert(key.into_inner(), value);
        }
        profiles.insert(name, profile);
    }
    Ok(ConfigFile {
        path: path.to_path_buf(),
        text: text.to_string(),
        default_profile: raw.default_profile,
        profiles,
    })
}

/// The default config file: `<user config dir>/ims-patch/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("ims-patch").join("config.toml"))
}

/// Reads and parses the config file; a missing file that was not asked for
/// (`explicit` is where it was asked for) is no file.
pub fn load(path: &Path, explicit: Option<&super::Source>) -> Result<Option<ConfigFile>> {
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
    let config = parse(&text, path)?;
    let secret_keys: Vec<&str> = SETTINGS
        .iter()
        .filter(|s| s.parse == Parse::Secret)
        .filter_map(|s| s.profile_key)
        .collect();
    if config
        .profiles
        .values()
        .any(|p| p.keys().any(|k| secret_keys.contains(&k.as_str())))
    {
        warn_if_shared(path, "holds a secret");
    }
    Ok(Some(config))
}

/// Warns when a file with a secret in it is readable by others.
pub fn warn_if_shared(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                log::warn!(
                    "'{}' {what} and is readable by group or others; run: chmod 600 '{}'",
                    path.display(),
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
}

/// Profile names from the config file, for shell completion of `--profile`.
pub fn profile_candidates() -> Vec<clap_complete::CompletionCandidate> {
    let path = std::env::var_os("IMS_PATCH_CONFIG")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(default_path);
    let Some(config) = path
        .and_then(|p| std::fs::read_to_string(&p).ok().map(|t| (t, p)))
        .and_then(|(text, p)| parse(&text, &p).ok())
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
    fn errors_name_the_line() {
        let path = Path::new("/etc/x.toml");
        let text =
            "default_profile = \"a\"\n[profiles.a]\nendpoint = \"https://x\"\ntokn = \"t\"\n";
        let e = parse(text, path).unwrap_err();
        assert!(
            e.message.contains("'/etc/x.toml' at line 4"),
            "{}",
            e.message
        );
        assert!(e.message.contains("tokn"), "{}", e.message);
        let e = parse("[profiles.a\n", path).unwrap_err();
        assert!(e.message.contains("line 1"), "{}", e.message);
        let e = parse("[profiles.a]\ntoken = 12345678x\n", path).unwrap_err();
        assert!(e.message.contains("line 2"), "{}", e.message);
        assert!(!e.message.contains("12345678"), "{}", e.message);
        let ok = parse(text.replace("tokn", "token").as_str(), path).unwrap();
        assert_eq!(ok.profiles["a"]["token"].get_ref().as_str(), Some("t"));
        assert_eq!(ok.place(ok.profiles["a"]["token"].span().start), (4, 9));
    }
}

//! clouds.yaml and secure.yaml, read as openstacksdk reads them
//! (openstack/config/loader.py, 4.x), into one [`AuthConfig`] whose every
//! value names where it came from. The `OS_*` variables are read by the
//! settings table (src/settings/), not here.
//!
//! Deliberate differences from openstacksdk: a malformed file is an error
//! naming the file and line (openstacksdk skips it with a log line), and an
//! `OS_CLIENT_CONFIG_FILE` naming a missing file is an error (openstacksdk
//! silently searches on).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::Value;

use crate::error::{Error, Result};
use crate::secret::Secret;
pub use crate::source::{Source, Sourced};

/// The largest clouds.yaml or secure.yaml read; a bigger one is an error.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reading config files, abstracted so the search can be unit-tested.
pub trait ConfigFs {
    /// The file's text, or `None` when it does not exist.
    fn read(&self, path: &Path) -> io::Result<Option<String>>;
    /// The file's Unix permission bits, when known.
    fn mode(&self, path: &Path) -> Option<u32>;
}

/// The real file system.
pub struct RealFs;

impl ConfigFs for RealFs {
    fn read(&self, path: &Path) -> io::Result<Option<String>> {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(io::Error::other("it is larger than 1 MiB"));
        }
        Ok(Some(text))
    }

    fn mode(&self, path: &Path) -> Option<u32> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path)
                .ok()
                .map(|m| m.permissions().mode() & 0o7777)
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
    }
}

/// The login settings of one cloud (or of the `OS_*` variables), each with its
/// source. Legacy spellings are already folded in (`tenant_*` → `project_*`,
/// `auth_token` → `token`, `endpoint_type` → `interface`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthConfig {
    /// The cloud's name; `None` for the `OS_*` variables.
    pub cloud: Option<String>,
    pub auth_type: Option<Sourced<String>>,
    pub auth_url: Option<Sourced<String>>,
    pub username: Option<Sourced<String>>,
    pub user_id: Option<Sourced<String>>,
    pub password: Option<Sourced<Secret>>,
    pub user_domain_name: Option<Sourced<String>>,
    pub user_domain_id: Option<Sourced<String>>,
    pub project_name: Option<Sourced<String>>,
    pub project_id: Option<Sourced<String>>,
    pub project_domain_name: Option<Sourced<String>>,
    pub project_domain_id: Option<Sourced<String>>,
    /// Domain scope; only kept when no project is given (else copied to the
    /// user and project domains, as openstacksdk's `_handle_domain_id`).
    pub domain_name: Option<Sourced<String>>,
    pub domain_id: Option<Sourced<String>>,
    pub token: Option<Sourced<Secret>>,
    pub application_credential_id: Option<Sourced<String>>,
    pub application_credential_name: Option<Sourced<String>>,
    pub application_credential_secret: Option<Sourced<Secret>>,
    pub region_name: Option<Sourced<String>>,
    /// `image_interface`, else `interface`, as written (`publicURL` is
    /// normalised when the catalog is searched).
    pub interface: Option<Sourced<String>>,
    pub image_endpoint_override: Option<Sourced<String>>,
    pub cacert: Option<Sourced<PathBuf>>,
    pub verify: Option<Sourced<bool>>,
    pub insecure: Option<Sourced<bool>>,
    pub api_timeout: Option<Sourced<Duration>>,
    /// OTC AK/SK (otcextensions: `ak`/`access_key`, `sk`/`secret_key`).
    pub access_key: Option<Sourced<String>>,
    pub secret_key: Option<Sourced<Secret>>,
    pub security_token: Option<Sourced<Secret>>,
    /// Warnings for the caller to print on stderr (a secret in a file that
    /// others can read, an unknown vendor profile).
    pub warnings: Vec<String>,
}

impl AuthConfig {
    /// loader.py `_handle_domain_id`: with a project, domain_* is the
    /// default of user_domain_* and project_domain_*, not a scope.
    pub fn fold_domain(&mut self) {
        if self.project_id.is_some() || self.project_name.is_some() {
            if let Some(d) = self.domain_id.take() {
                self.user_domain_id.get_or_insert(d.clone());
                self.project_domain_id.get_or_insert(d);
            }
            if let Some(d) = self.domain_name.take() {
                self.user_domain_name.get_or_insert(d.clone());
                self.project_domain_name.get_or_insert(d);
            }
        }
    }

    /// One line per setting that is set, for hints and `auth status`:
    /// the value of plain settings, only the name and source of secrets.
    pub fn describe_used(&self) -> Vec<String> {
        let plain = [
            ("auth_type", &self.auth_type),
            ("auth_url", &self.auth_url),
            ("username", &self.username),
            ("user_id", &self.user_id),
            ("user_domain_name", &self.user_domain_name),
            ("user_domain_id", &self.user_domain_id),
            ("project_name", &self.project_name),
            ("project_id", &self.project_id),
            ("project_domain_name", &self.project_domain_name),
            ("project_domain_id", &self.project_domain_id),
            ("domain_name", &self.domain_name),
            ("domain_id", &self.domain_id),
            ("application_credential_id", &self.application_credential_id),
            (
                "application_credential_name",
                &self.application_credential_name,
            ),
            ("region_name", &self.region_name),
            ("interface", &self.interface),
            ("access_key", &self.access_key),
        ];
        let secret = [
            ("password", &self.password),
            ("token", &self.token),
            (
                "application_credential_secret",
                &self.application_credential_secret,
            ),
            ("secret_key", &self.secret_key),
            ("security_token", &self.security_token),
        ];
        let mut lines: Vec<String> = plain
            .iter()
            .filter_map(|(name, v)| {
                v.as_ref()
                    .map(|s| format!("{name} '{}' ({})", s.value, s.source))
            })
            .collect();
        lines.extend(
            secret
                .iter()
                .filter_map(|(name, v)| v.as_ref().map(|s| format!("{name} ({})", s.source))),
        );
        lines
    }
}

/// The files searched, in order: `OS_CLIENT_CONFIG_FILE` (resp.
/// `OS_CLIENT_SECURE_FILE`) first, then `clouds`/`secure` with `.yaml`,
/// `.yml`, `.json` in the current directory, `$XDG_CONFIG_HOME/openstack`,
/// `~/.config/openstack`, `/etc/xdg/openstack`, `/etc/openstack`
/// (loader.py's CONFIG_SEARCH_PATH: platformdirs' user and site config
/// dirs plus the Unix spellings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPaths {
    pub clouds: Vec<PathBuf>,
    pub secure: Vec<PathBuf>,
    /// The explicit `OS_CLIENT_CONFIG_FILE`, which must exist.
    pub clouds_override: Option<PathBuf>,
    /// The explicit `OS_CLIENT_SECURE_FILE`, which must exist.
    pub secure_override: Option<PathBuf>,
}

/// The clouds and secure files to look for, in order (see [`SearchPaths`]).
pub fn search_paths(
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
    home: Option<&Path>,
) -> SearchPaths {
    let mut dirs: Vec<PathBuf> = vec![cwd.to_path_buf()];
    if let Some(xdg) = env("XDG_CONFIG_HOME").filter(|x| Path::new(x).is_absolute()) {
        dirs.push(Path::new(&xdg).join("openstack"));
    }
    if let Some(home) = home {
        dirs.push(home.join(".config").join("openstack"));
    }
    dirs.push(PathBuf::from("/etc/xdg/openstack"));
    dirs.push(PathBuf::from("/etc/openstack"));
    let mut unique: Vec<PathBuf> = Vec::new();
    for d in dirs {
        if !unique.contains(&d) {
            unique.push(d);
        }
    }
    let files = |stem: &str| -> Vec<PathBuf> {
        unique
            .iter()
            .flat_map(|d| ["yaml", "yml", "json"].map(|ext| d.join(format!("{stem}.{ext}"))))
            .collect()
    };
    let explicit = |var: &str| {
        env(var)
            .filter(|v| !v.is_empty())
            .map(|v| cwd.join(expand_home(&v, home)))
    };
    let clouds_override = explicit("OS_CLIENT_CONFIG_FILE");
    let secure_override = explicit("OS_CLIENT_SECURE_FILE");
    let mut clouds = files("clouds");
    let mut secure = files("secure");
    if let Some(p) = &clouds_override {
        clouds.insert(0, p.clone());
    }
    if let Some(p) = &secure_override {
        secure.insert(0, p.clone());
    }
    SearchPaths {
        clouds,
        secure,
        clouds_override,
        secure_override,
    }
}

fn expand_home(text: &str, home: Option<&Path>) -> PathBuf {
    match (text.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        (None, Some(home)) if text == "~" => home.to_path_buf(),
        _ => PathBuf::from(text),
    }
}

/// One parsed file: its path, its clouds and its permission bits.
#[derive(Debug, Clone)]
struct LoadedFile {
    path: PathBuf,
    clouds: serde_yaml_ng::Mapping,
    mode: Option<u32>,
}

/// The clouds.yaml and secure.yaml found (either may be absent).
#[derive(Debug, Clone)]
pub struct CloudFiles {
    clouds: Option<LoadedFile>,
    secure: Option<LoadedFile>,
    searched: Vec<PathBuf>,
    /// For `~` in `cacert`.
    home: Option<PathBuf>,
}

impl CloudFiles {
    /// Finds and parses the first clouds file and the first secure file.
    pub fn discover(
        env: &dyn Fn(&str) -> Option<String>,
        cwd: &Path,
        home: Option<&Path>,
        fs: &dyn ConfigFs,
    ) -> Result<CloudFiles> {
        let paths = search_paths(env, cwd, home);
        let clouds = first_file(
            &paths.clouds,
            paths.clouds_override.as_deref(),
            "OS_CLIENT_CONFIG_FILE",
            fs,
        )?;
        let secure = first_file(
            &paths.secure,
            paths.secure_override.as_deref(),
            "OS_CLIENT_SECURE_FILE",
            fs,
        )?;
        Ok(CloudFiles {
            clouds,
            secure,
            searched: paths.clouds,
            home: home.map(Path::to_path_buf),
        })
    }

    /// The clouds.yaml used, if one was found.
    pub fn clouds_path(&self) -> Option<&Path> {
        self.clouds.as_ref().map(|f| f.path.as_path())
    }

    /// The secure.yaml merged in, if one was found.
    pub fn secure_path(&self) -> Option<&Path> {
        self.secure.as_ref().map(|f| f.path.as_path())
    }

    /// The names of the clouds defined in either file, sorted.
    pub fn cloud_names(&self) -> Vec<String> {
        let mut names: Vec<String> = [&self.clouds, &self.secure]
            .into_iter()
            .flatten()
            .flat_map(|f| f.clouds.keys().filter_map(scalar))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The settings of cloud `name`: secure.yaml's entry merged over
    /// clouds.yaml's, over the vendor profile, with the legacy spellings
    /// folded in.
    pub fn cloud(&self, name: &str) -> Result<AuthConfig> {
        self.cloud_in_region(name, None)
    }

    /// [`CloudFiles::cloud`] with the region given elsewhere (`--os-region-name`,
    /// `OS_REGION_NAME`), which wins over the file's and, as in openstacksdk,
    /// is the region a vendor profile's `auth_url` is made for.
    pub fn cloud_in_region(
        &self,
        name: &str,
        region: Option<Sourced<String>>,
    ) -> Result<AuthConfig> {
        let main = cloud_entry(self.clouds.as_ref(), name);
        let secure = cloud_entry(self.secure.as_ref(), name);
        if main.is_none() && secure.is_none() {
            return Err(self.unknown_cloud(name));
        }
        let mut raw = Raw::default();
        let mut profile_file = None;
        for (file, value) in [main, secure].into_iter().flatten() {
            let source = Source::Cloud {
                cloud: name.to_string(),
                file: file.path.clone(),
            };
            raw.add_cloud(value, &source, file.mode)?;
            profile_file.get_or_insert(file.path.clone());
        }
        if let Some(r) = region {
            raw.top.insert(
                "region_name".into(),
                RawValue {
                    text: r.value,
                    source: r.source,
                    mode: None,
                },
            );
        }
        let mut warnings = Vec::new();
        if let Some(path) = profile_file {
            raw.apply_profile(name, &path, &mut warnings)?;
        }
        let mut config = raw.resolve()?;
        config.cloud = Some(name.to_string());
        // loader.py expands `~` in cacert.
        if let Some(cacert) = &mut config.cacert {
            cacert.value = expand_home(&cacert.value.to_string_lossy(), self.home.as_deref());
        }
        config.warnings.extend(warnings);
        Ok(config)
    }

    fn unknown_cloud(&self, name: &str) -> Error {
        let names = self.cloud_names();
        match (&self.clouds, &self.secure) {
            (None, None) => {
                let searched: Vec<String> = self
                    .searched
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                Error::config(format!(
                    "cloud '{name}' was selected but no clouds.yaml was found"
                ))
                .hint(format!("searched: {}", searched.join(", ")))
                .hint("set OS_CLIENT_CONFIG_FILE to the file that defines it")
            }
            _ => {
                let files: Vec<String> = [&self.clouds, &self.secure]
                    .into_iter()
                    .flatten()
                    .map(|f| f.path.display().to_string())
                    .collect();
                let list = if names.is_empty() {
                    "it defines no clouds".to_string()
                } else {
                    format!("clouds there: {}", names.join(", "))
                };
                Error::config(format!(
                    "cloud '{name}' is not defined in {} ({list})",
                    files.join(" or ")
                ))
                .hint("pick one of those with --os-cloud or OS_CLOUD (names are case-sensitive)")
            }
        }
    }
}

fn cloud_entry<'a>(
    file: Option<&'a LoadedFile>,
    name: &str,
) -> Option<(&'a LoadedFile, &'a Value)> {
    let file = file?;
    file.clouds
        .iter()
        .find(|(k, _)| scalar(k).as_deref() == Some(name))
        .map(|(_, v)| (file, v))
}

fn first_file(
    paths: &[PathBuf],
    explicit: Option<&Path>,
    var: &str,
    fs: &dyn ConfigFs,
) -> Result<Option<LoadedFile>> {
    for path in paths {
        let text = match fs.read(path) {
            Ok(Some(text)) => text,
            Ok(None) if Some(path.as_path()) == explicit => {
                return Err(Error::config(format!(
                    "{var} names '{}', which does not exist",
                    path.display()
                ))
                .hint(format!("fix or unset {var}")));
            }
            Ok(None) => continue,
            Err(e) => {
                return Err(
                    Error::config(format!("cannot read '{}': {e}", path.display())).hint(
                        "fix its permissions, or point OS_CLIENT_CONFIG_FILE at another file",
                    ),
                );
            }
        };
        let clouds = parse_file(&text, path)?;
        return Ok(Some(LoadedFile {
            path: path.clone(),
            clouds,
            mode: fs.mode(path),
        }));
    }
    Ok(None)
}

/// Parses a clouds/secure file (JSON when its name ends in `json`, as
/// loader.py) and returns its `clouds:` mapping.
fn parse_file(text: &str, path: &Path) -> Result<serde_yaml_ng::Mapping> {
    let malformed = |line: usize, column: usize, what: String| {
        Error::config(format!(
            "'{}' is not valid {}: line {line}, column {column}: {what}",
            path.display(),
            if is_json(path) { "JSON" } else { "YAML" }
        ))
        .hint(format!("fix line {line} of '{}'", path.display()))
    };
    let root: Value = if is_json(path) {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| {
                let what = strip_location(&e.to_string());
                malformed(e.line(), e.column(), what)
            })
            .and_then(|v| serde_yaml_ng::to_value(v).map_err(|e| Error::config(e.to_string())))?
    } else {
        let mut root: Value = serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            malformed(line, column, strip_location(&e.to_string()))
        })?;
        // PyYAML's safe_load applies `<<: *anchor` merge keys; so do we.
        root.apply_merge().map_err(|e| {
            Error::config(format!("'{}': {e}", path.display()))
                .hint("a `<<:` merge key must name a mapping or a list of mappings")
        })?;
        root
    };
    match root {
        Value::Null => Ok(Default::default()),
        Value::Mapping(mut map) => match map.remove("clouds") {
            None | Some(Value::Null) => Ok(Default::default()),
            Some(Value::Mapping(clouds)) => Ok(clouds),
            Some(_) => Err(Error::config(format!(
                "'clouds' in '{}' must be a mapping of cloud names to settings",
                path.display()
            ))),
        },
        _ => Err(Error::config(format!(
            "'{}' must hold a mapping with a 'clouds' key",
            path.display()
        ))),
    }
}

fn is_json(path: &Path) -> bool {
    path.to_string_lossy().ends_with("json")
}

/// Drops the " at line N column M" both parsers append: the error says it
/// once, in its own words.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// A YAML scalar as the string openstacksdk would make of it (`str(v)`);
/// `None` for null, empty strings and non-scalars.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "true" } else { "false" }.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Tagged(t) => scalar(&t.value),
        _ => None,
    }
}

/// One raw value: its text, source and the permission bits of its file.
#[derive(Debug, Clone)]
struct RawValue {
    text: String,
    source: Source,
    mode: Option<u32>,
}

/// The cloud's keys before the legacy spellings are folded: the top level
/// and the `auth:` section, keys with `-` turned into `_` (normalize_keys).
#[derive(Debug, Default)]
struct Raw {
    top: BTreeMap<String, RawValue>,
    auth: BTreeMap<String, RawValue>,
    /// The first entry of `regions:`, when given as a list.
    first_region: Option<RawValue>,
}

impl Raw {
    fn add_cloud(&mut self, value: &Value, source: &Source, mode: Option<u32>) -> Result<()> {
        let Value::Mapping(map) = value else {
            if value.is_null() {
                return Ok(());
            }
            return Err(Error::config(format!(
                "cloud settings {source} must be a mapping"
            )));
        };
        for (k, v) in map {
            let Some(key) = scalar(k).map(|k| k.replace('-', "_")) else {
                continue;
            };
            if key == "auth" {
                if let Value::Mapping(auth) = v {
                    for (ak, av) in auth {
                        let (Some(ak), Some(text)) = (scalar(ak), scalar(av)) else {
                            continue;
                        };
                        let raw = RawValue {
                            text,
                            source: source.clone(),
                            mode,
                        };
                        self.auth.insert(ak.replace('-', "_"), raw);
                    }
                }
            } else if key == "regions" {
                // A list of names or of {name, values} (loader.py _expand_regions).
                if let Value::Sequence(list) = v {
                    let first = list.first().and_then(|r| match r {
                        Value::Mapping(m) => m.get("name").and_then(scalar),
                        other => scalar(other),
                    });
                    if let Some(text) = first {
                        self.first_region = Some(RawValue {
                            text,
                            source: source.clone(),
                            mode,
                        });
                    }
                }
            } else if let Some(text) = scalar(v) {
                let raw = RawValue {
                    text,
                    source: source.clone(),
                    mode,
                };
                self.top.insert(key, raw);
            }
        }
        Ok(())
    }

    /// Layers a built-in vendor profile under the cloud's own settings
    /// (loader.py `_expand_vendor_profile`; `cloud:` is the old key).
    fn apply_profile(
        &mut self,
        cloud: &str,
        path: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        let Some(profile) = self
            .top
            .get("profile")
            .or_else(|| self.top.get("cloud"))
            .cloned()
        else {
            return Ok(());
        };
        let name = profile.text.as_str();
        let source = Source::Vendor {
            profile: name.to_string(),
            cloud: cloud.to_string(),
            file: path.to_path_buf(),
        };
        // openstack/config/vendors/otc.json: regions [eu-de], auth_url
        // https://iam.%(region_name)s.otc.t-systems.com/v3; eu-nl is the other
        // OTC region. otc-swiss.json lacks the scheme: the URL here has it.
        let (regions, template): (&[&str], &str) = match name {
            "otc" => (
                &["eu-de", "eu-nl"],
                "https://iam.{region_name}.otc.t-systems.com/v3",
            ),
            "otc-swiss" => (
                &["eu-ch2"],
                "https://iam-pub.eu-ch2.sc.otc.t-systems.com/v3",
            ),
            _ => {
                warnings.push(format!(
                    "profile '{name}' of cloud '{cloud}' in {} is not built into ims-patch (it knows otc and otc-swiss); set auth_url in the cloud",
                    path.display()
                ));
                return Ok(());
            }
        };
        let region = match self.top.get("region_name").or(self.first_region.as_ref()) {
            Some(r) => r.text.clone(),
            None => {
                let region = regions[0].to_string();
                self.top.insert(
                    "region_name".into(),
                    RawValue {
                        text: region.clone(),
                        source: source.clone(),
                        mode: None,
                    },
                );
                region
            }
        };
        if !regions.contains(&region.as_str()) {
            return Err(Error::config(format!(
                "region '{region}' is not a region of profile '{name}' (cloud '{cloud}' in {}); its regions are {}",
                path.display(),
                regions.join(", ")
            )));
        }
        self.auth.entry("auth_url".into()).or_insert(RawValue {
            text: template.replace("{region_name}", &region),
            source,
            mode: None,
        });
        Ok(())
    }

    /// loader.py `_fix_backwards_auth`: for each candidate spelling in order
    /// the last present wins, and a top-level value beats the `auth:` one.
    fn legacy(&self, candidates: &[&str]) -> Option<RawValue> {
        let mut found = None;
        for key in candidates {
            if let Some(v) = self.auth.get(*key) {
                found = Some(v.clone());
            }
            if let Some(v) = self.top.get(*key) {
                found = Some(v.clone());
            }
        }
        found
    }

    /// An auth plugin option: `auth:` wins, the top level is the fallback
    /// (loader.py `_validate_auth`); later candidates are deprecated names.
    fn auth_opt(&self, candidates: &[&str]) -> Option<RawValue> {
        candidates
            .iter()
            .find_map(|k| self.auth.get(*k))
            .or_else(|| candidates.iter().find_map(|k| self.top.get(*k)))
            .cloned()
    }

    fn top_opt(&self, candidates: &[&str]) -> Option<RawValue> {
        candidates.iter().find_map(|k| self.top.get(*k)).cloned()
    }

    fn resolve(&self) -> Result<AuthConfig> {
        let s = |v: Option<RawValue>| {
            v.map(|v| Sourced {
                value: v.text,
                source: v.source,
            })
        };
        let mut shared_files: Vec<PathBuf> = Vec::new();
        let mut secret = |v: Option<RawValue>| {
            v.map(|v| {
                if let (Some(mode), Source::Cloud { file: path, .. }) = (v.mode, &v.source) {
                    if mode & 0o077 != 0 && !shared_files.contains(path) {
                        shared_files.push(path.clone());
                    }
                }
                Sourced {
                    value: Secret::new(v.text),
                    source: v.source,
                }
            })
        };
        let mut c = AuthConfig {
            auth_type: s(self.top_opt(&["auth_type", "auth_plugin"])),
            auth_url: s(self.auth_opt(&["auth_url"])),
            username: s(self.auth_opt(&["username", "user_name"])),
            user_id: s(self.auth_opt(&["user_id"])),
            password: secret(self.auth_opt(&["password"])),
            user_domain_name: s(self.legacy(&["user_domain_name"])),
            user_domain_id: s(self.legacy(&["user_domain_id"])),
            project_name: s(self.legacy(&["tenant_name", "project_name"])),
            project_id: s(self.legacy(&["tenant_id", "project_id"])),
            project_domain_name: s(self.legacy(&["project_domain_name"])),
            project_domain_id: s(self.legacy(&["project_domain_id"])),
            domain_name: s(self.legacy(&["domain_name"])),
            domain_id: s(self.legacy(&["domain_id"])),
            token: secret(self.legacy(&["auth_token", "token"])),
            application_credential_id: s(self.auth_opt(&["application_credential_id"])),
            application_credential_name: s(self.auth_opt(&["application_credential_name"])),
            application_credential_secret: secret(
                self.auth_opt(&["application_credential_secret"]),
            ),
            region_name: s(self.top_opt(&["region_name"]).or(self.first_region.clone())),
            // loader.py `_fix_backwards_interface`: *endpoint_type → *interface.
            interface: s(self.top_opt(&[
                "image_interface",
                "image_endpoint_type",
                "interface",
                "endpoint_type",
            ])),
            image_endpoint_override: s(self.top_opt(&["image_endpoint_override", "image_endpoint"])),
            access_key: s(self.auth_opt(&["access_key", "ak"])),
            secret_key: secret(self.auth_opt(&["secret_key", "sk"])),
            security_token: secret(self.auth_opt(&["security_token"])),
            ..AuthConfig::default()
        };
        c.cacert = self.top_opt(&["cacert"]).map(|v| Sourced {
            value: PathBuf::from(&v.text),
            source: v.source,
        });
        c.verify = boolean(self.top_opt(&["verify"]), "verify")?;
        c.insecure = boolean(self.top_opt(&["insecure"]), "insecure")?;
        c.api_timeout = match self.top_opt(&["api_timeout"]) {
            None => None,
            Some(v) => match v.text.trim().parse::<f64>() {
                Ok(secs) if secs > 0.0 && secs.is_finite() && secs < 1e9 => Some(Sourced {
                    value: Duration::from_secs_f64(secs),
                    source: v.source,
                }),
                _ => {
                    return Err(Error::config(format!(
                        "api_timeout '{}' ({}) is not a positive number of seconds",
                        v.text, v.source
                    )))
                }
            },
        };
        c.fold_domain();
        for path in shared_files {
            c.warnings.push(format!(
                "'{}' holds a secret and is readable by group or others; run: chmod 600 '{}'",
                path.display(),
                path.display()
            ));
        }
        Ok(c)
    }
}

/// A boolean setting: YAML booleans, or the strings true/false/yes/no/1/0.
fn boolean(v: Option<RawValue>, name: &str) -> Result<Option<Sourced<bool>>> {
    let Some(v) = v else { return Ok(None) };
    let value = match v.text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => true,
        "false" | "no" | "0" | "off" => false,
        _ => {
            return Err(Error::config(format!(
                "{name} '{}' ({}) is not true or false",
                v.text, v.source
            )))
        }
    };
    Ok(Some(Sourced {
        value,
        source: v.source,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An in-memory file system: path → (text, mode); `None` text means
    /// "exists but cannot be read".
    #[derive(Default)]
    struct MemFs(HashMap<PathBuf, (Option<String>, u32)>);

    impl MemFs {
        fn with(mut self, path: &str, text: &str) -> Self {
            self.0.insert(path.into(), (Some(text.into()), 0o600));
            self
        }
        fn with_mode(mut self, path: &str, text: &str, mode: u32) -> Self {
            self.0.insert(path.into(), (Some(text.into()), mode));
            self
        }
    }

    impl ConfigFs for MemFs {
        fn read(&self, path: &Path) -> io::Result<Option<String>> {
            match self.0.get(path) {
                None => Ok(None),
                Some((Some(t), _)) => Ok(Some(t.clone())),
                Some((None, _)) => Err(io::Error::from(io::ErrorKind::PermissionDenied)),
            }
        }
        fn mode(&self, path: &Path) -> Option<u32> {
            self.0.get(path).map(|(_, m)| *m)
        }
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn discover(fs: &MemFs, vars: &[(&str, &str)]) -> Result<CloudFiles> {
        let env = env_of(vars);
        CloudFiles::discover(&env, Path::new("/work"), Some(Path::new("/home/u")), fs)
    }

    const DEMO: &str = "\
clouds:
  demo:
    auth:
      auth_url: http://127.0.0.1:5000/v3/
      username: demo
      password: demopass
      user_domain_name: Default
      project_name: demo
      project_domain_id: default
    region_name: RegionTwo
    interface: public
    some_unknown_key: [1, 2]
";

    #[test]
    fn search_order_is_openstacksdks() {
        let env = env_of(&[("OS_CLIENT_CONFIG_FILE", "my.yaml")]);
        let p = search_paths(&env, Path::new("/w"), Some(Path::new("/h")));
        let shown: Vec<String> = p.clouds.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            shown,
            [
                "/w/my.yaml",
                "/w/clouds.yaml",
                "/w/clouds.yml",
                "/w/clouds.json",
                "/h/.config/openstack/clouds.yaml",
                "/h/.config/openstack/clouds.yml",
                "/h/.config/openstack/clouds.json",
                "/etc/xdg/openstack/clouds.yaml",
                "/etc/xdg/openstack/clouds.yml",
                "/etc/xdg/openstack/clouds.json",
                "/etc/openstack/clouds.yaml",
                "/etc/openstack/clouds.yml",
                "/etc/openstack/clouds.json",
            ]
        );
        assert_eq!(p.secure[0], Path::new("/w/secure.yaml"));
        assert_eq!(p.secure.len(), 12);
    }

    #[test]
    fn first_file_found_wins() {
        let fs = MemFs::default()
            .with(
                "/etc/openstack/clouds.yaml",
                "clouds: {site: {auth: {auth_url: http://s}}}",
            )
            .with("/home/u/.config/openstack/clouds.yml", DEMO);
        let files = discover(&fs, &[]).unwrap();
        assert_eq!(
            files.clouds_path(),
            Some(Path::new("/home/u/.config/openstack/clouds.yml"))
        );
        assert_eq!(files.cloud_names(), ["demo"]);
        // The explicit file comes first.
        let fs = fs.with(
            "/tmp/c.json",
            r#"{"clouds": {"j": {"auth": {"auth_url": "http://j"}}}}"#,
        );
        let files = discover(&fs, &[("OS_CLIENT_CONFIG_FILE", "/tmp/c.json")]).unwrap();
        assert_eq!(files.cloud_names(), ["j"]);
        assert_eq!(
            files.cloud("j").unwrap().auth_url.unwrap().value,
            "http://j"
        );
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        let fs = MemFs::default().with("/work/clouds.yaml", DEMO);
        let err = discover(&fs, &[("OS_CLIENT_CONFIG_FILE", "/nope.yaml")]).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.message
                .contains("OS_CLIENT_CONFIG_FILE names '/nope.yaml'"),
            "{}",
            err.message
        );
    }

    #[test]
    fn reads_all_keys_with_their_source() {
        let fs = MemFs::default().with("/work/clouds.yaml", DEMO);
        let c = discover(&fs, &[]).unwrap().cloud("demo").unwrap();
        assert_eq!(c.cloud.as_deref(), Some("demo"));
        assert_eq!(
            c.auth_url.as_ref().unwrap().value,
            "http://127.0.0.1:5000/v3/"
        );
        assert_eq!(c.username.as_ref().unwrap().value, "demo");
        assert_eq!(c.password.as_ref().unwrap().value.expose(), "demopass");
        assert_eq!(c.user_domain_name.as_ref().unwrap().value, "Default");
        assert_eq!(c.project_name.as_ref().unwrap().value, "demo");
        assert_eq!(c.project_domain_id.as_ref().unwrap().value, "default");
        assert_eq!(c.region_name.as_ref().unwrap().value, "RegionTwo");
        assert_eq!(c.interface.as_ref().unwrap().value, "public");
        assert_eq!(
            c.username.as_ref().unwrap().source.to_string(),
            "from cloud 'demo' in /work/clouds.yaml"
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let used = c.describe_used().join("\n");
        assert!(used.contains("username 'demo' (from cloud 'demo' in /work/clouds.yaml)"));
        assert!(used.contains("password (from cloud 'demo' in /work/clouds.yaml)"));
        assert!(!used.contains("demopass"), "{used}");
        assert!(!format!("{c:?}").contains("demopass"));
    }

    #[test]
    fn other_keys_and_types() {
        let yaml = "\
clouds:
  x:
    auth:
      auth-url: https://id
      user_id: 12345
      application_credential_id: abc
      application_credential_secret: s3
      ak: AK1
      sk: SK1
      security_token: ST
      project_id: p1
    auth_type: v3applicationcredential
    image_endpoint_override: https://img/v2
    cacert: ~/ca.pem
    verify: false
    insecure: 'True'
    api_timeout: 2.5
";
        let fs = MemFs::default().with("/work/clouds.yaml", yaml);
        let c = discover(&fs, &[]).unwrap().cloud("x").unwrap();
        assert_eq!(c.auth_url.unwrap().value, "https://id");
        assert_eq!(c.user_id.unwrap().value, "12345");
        assert_eq!(c.auth_type.unwrap().value, "v3applicationcredential");
        assert_eq!(c.application_credential_id.unwrap().value, "abc");
        assert_eq!(
            c.application_credential_secret.unwrap().value.expose(),
            "s3"
        );
        assert_eq!(c.access_key.unwrap().value, "AK1");
        assert_eq!(c.secret_key.unwrap().value.expose(), "SK1");
        assert_eq!(c.security_token.unwrap().value.expose(), "ST");
        assert_eq!(c.project_id.unwrap().value, "p1");
        assert_eq!(c.image_endpoint_override.unwrap().value, "https://img/v2");
        assert_eq!(c.cacert.unwrap().value, PathBuf::from("/home/u/ca.pem"));
        assert!(!c.verify.unwrap().value);
        assert!(c.insecure.unwrap().value);
        assert_eq!(c.api_timeout.unwrap().value, Duration::from_millis(2500));
    }

    #[test]
    fn legacy_spellings_fold_in() {
        let yaml = "\
clouds:
  old:
    auth:
      auth_url: https://id
      tenant_name: t
      tenant_id: tid
      auth_token: tok
      access_key: AK
      secret_key: SK
    endpoint_type: internalURL
  both:
    auth:
      tenant_name: old
      project_name: new
      auth_token: a
      token: b
    project_id: top
";
        let fs = MemFs::default().with("/work/clouds.yaml", yaml);
        let files = discover(&fs, &[]).unwrap();
        let c = files.cloud("old").unwrap();
        assert_eq!(c.project_name.unwrap().value, "t");
        assert_eq!(c.project_id.unwrap().value, "tid");
        assert_eq!(c.token.unwrap().value.expose(), "tok");
        assert_eq!(c.interface.unwrap().value, "internalURL");
        assert_eq!(c.access_key.unwrap().value, "AK");
        assert_eq!(c.secret_key.unwrap().value.expose(), "SK");
        let c = files.cloud("both").unwrap();
        assert_eq!(c.project_name.unwrap().value, "new");
        assert_eq!(c.token.unwrap().value.expose(), "b");
        // A top-level value beats the auth: one (loader.py, story 2010784).
        assert_eq!(c.project_id.unwrap().value, "top");
    }

    #[test]
    fn domain_is_copied_to_user_and_project_domains_when_project_scoped() {
        let yaml = "\
clouds:
  p:
    auth: {auth_url: https://id, username: u, password: pw, project_name: pr, domain_name: D, user_domain_name: UD}
  d:
    auth: {auth_url: https://id, username: u, password: pw, domain_id: did, user_domain_id: default}
";
        let fs = MemFs::default().with("/work/clouds.yaml", yaml);
        let files = discover(&fs, &[]).unwrap();
        let c = files.cloud("p").unwrap();
        assert_eq!(c.user_domain_name.unwrap().value, "UD");
        assert_eq!(c.project_domain_name.unwrap().value, "D");
        assert!(c.domain_name.is_none());
        let c = files.cloud("d").unwrap();
        assert_eq!(c.domain_id.unwrap().value, "did");
        assert!(c.project_domain_id.is_none());
    }

    #[test]
    fn secure_yaml_is_merged_in() {
        let fs = MemFs::default()
            .with("/work/clouds.yaml", "clouds:\n  demo:\n    auth:\n      auth_url: https://id\n      username: demo\n      password: old\n")
            .with_mode(
                "/home/u/.config/openstack/secure.yaml",
                "clouds:\n  demo:\n    auth:\n      password: fromsecure\n",
                0o644,
            );
        let files = discover(&fs, &[]).unwrap();
        assert_eq!(
            files.secure_path(),
            Some(Path::new("/home/u/.config/openstack/secure.yaml"))
        );
        let c = files.cloud("demo").unwrap();
        assert_eq!(c.username.as_ref().unwrap().value, "demo");
        let pw = c.password.unwrap();
        assert_eq!(pw.value.expose(), "fromsecure");
        assert_eq!(
            pw.source,
            Source::Cloud {
                cloud: "demo".into(),
                file: "/home/u/.config/openstack/secure.yaml".into()
            }
        );
        // Readable by others: a warning naming that file.
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("'/home/u/.config/openstack/secure.yaml' holds a secret"));
        assert!(c.warnings[0].contains("chmod 600"));
    }

    #[test]
    fn a_shared_file_without_secrets_gives_no_warning() {
        let fs = MemFs::default().with_mode(
            "/work/clouds.yaml",
            "clouds: {a: {auth: {auth_url: https://id, username: u}}}",
            0o644,
        );
        let c = discover(&fs, &[]).unwrap().cloud("a").unwrap();
        assert!(c.warnings.is_empty());
        let fs = MemFs::default().with_mode(
            "/work/clouds.yaml",
            "clouds: {a: {auth: {auth_url: https://id, username: u, password: p}}}",
            0o640,
        );
        let c = discover(&fs, &[]).unwrap().cloud("a").unwrap();
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn otc_profile_builds_the_iam_url() {
        let yaml = "\
clouds:
  de: {profile: otc, auth: {username: u, password: p, user_domain_name: OTC-EU-DE-1, project_name: eu-de_sub}}
  nl: {profile: otc, region_name: eu-nl, auth: {username: u}}
  own: {profile: otc, auth: {auth_url: https://proxy/v3}}
  ch: {profile: otc-swiss}
  bad: {profile: otc, region_name: us-east}
  old: {cloud: otc, regions: [eu-nl]}
";
        let fs = MemFs::default().with("/work/clouds.yaml", yaml);
        let files = discover(&fs, &[]).unwrap();
        let c = files.cloud("de").unwrap();
        let url = c.auth_url.unwrap();
        assert_eq!(url.value, "https://iam.eu-de.otc.t-systems.com/v3");
        assert_eq!(
            url.source.to_string(),
            "from profile 'otc' of cloud 'de' in /work/clouds.yaml"
        );
        assert_eq!(c.region_name.unwrap().value, "eu-de");
        let c = files.cloud("nl").unwrap();
        assert_eq!(
            c.auth_url.unwrap().value,
            "https://iam.eu-nl.otc.t-systems.com/v3"
        );
        assert_eq!(
            files.cloud("own").unwrap().auth_url.unwrap().value,
            "https://proxy/v3"
        );
        assert_eq!(
            files.cloud("ch").unwrap().auth_url.unwrap().value,
            "https://iam-pub.eu-ch2.sc.otc.t-systems.com/v3"
        );
        let env_region = Sourced {
            value: "eu-nl".to_string(),
            source: Source::Env("OS_REGION_NAME"),
        };
        let c = files.cloud_in_region("de", Some(env_region)).unwrap();
        assert_eq!(
            c.auth_url.unwrap().value,
            "https://iam.eu-nl.otc.t-systems.com/v3"
        );
        assert_eq!(
            c.region_name.unwrap().source.to_string(),
            "from OS_REGION_NAME"
        );
        let err = files.cloud("bad").unwrap_err();
        assert!(err.message.contains("region 'us-east'"), "{}", err.message);
        let c = files.cloud("old").unwrap();
        assert_eq!(
            c.auth_url.unwrap().value,
            "https://iam.eu-nl.otc.t-systems.com/v3"
        );
        assert_eq!(c.region_name.unwrap().value, "eu-nl");
    }

    #[test]
    fn unknown_profile_warns() {
        let fs = MemFs::default().with("/work/clouds.yaml", "clouds: {v: {profile: vexxhost}}");
        let c = discover(&fs, &[]).unwrap().cloud("v").unwrap();
        assert!(
            c.warnings[0].contains("profile 'vexxhost'"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn malformed_yaml_names_file_and_line() {
        let fs = MemFs::default().with(
            "/work/clouds.yaml",
            "clouds:\n  demo:\n    auth:\n      username: [unclosed\n    region_name: x\n",
        );
        let err = discover(&fs, &[]).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.message
                .starts_with("'/work/clouds.yaml' is not valid YAML: line "),
            "{}",
            err.message
        );
        assert!(!err.message.contains(" at line "), "{}", err.message);
        let fs = MemFs::default().with("/work/clouds.json", "{\"clouds\": {\n  \"a\": ,\n}}");
        let err = discover(&fs, &[]).unwrap_err();
        assert!(
            err.message
                .starts_with("'/work/clouds.json' is not valid JSON: line 2, column"),
            "{}",
            err.message
        );
    }

    #[test]
    fn malformed_yaml_line_is_the_bad_line() {
        let fs = MemFs::default().with("/work/clouds.yaml", "clouds:\n  a:\n    b: c\n   d: e\n");
        let err = discover(&fs, &[]).unwrap_err();
        assert!(err.message.contains("line 4"), "{}", err.message);
    }

    #[test]
    fn wrong_shapes_are_errors() {
        let fs = MemFs::default().with("/work/clouds.yaml", "- a\n- b\n");
        assert!(discover(&fs, &[])
            .unwrap_err()
            .message
            .contains("must hold a mapping"));
        let fs = MemFs::default().with("/work/clouds.yaml", "clouds: [a]\n");
        assert!(discover(&fs, &[]).unwrap_err().message.contains("'clouds'"));
        let fs = MemFs::default().with("/work/clouds.yaml", "clouds: {a: {verify: maybe}}\n");
        let err = discover(&fs, &[]).unwrap().cloud("a").unwrap_err();
        assert!(err.message.contains("verify 'maybe'"), "{}", err.message);
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let mut fs = MemFs::default();
        fs.0.insert("/work/clouds.yaml".into(), (None, 0));
        let err = discover(&fs, &[]).unwrap_err();
        assert!(
            err.message.starts_with("cannot read '/work/clouds.yaml'"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unknown_cloud_lists_the_clouds() {
        let fs = MemFs::default().with("/work/clouds.yaml", "clouds: {b: {}, a: {}}");
        let err = discover(&fs, &[]).unwrap().cloud("c").unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert_eq!(
            err.message,
            "cloud 'c' is not defined in /work/clouds.yaml (clouds there: a, b)"
        );
        let err = discover(&MemFs::default(), &[])
            .unwrap()
            .cloud("c")
            .unwrap_err();
        assert!(err.message.contains("no clouds.yaml was found"));
        assert!(err.hints[0].contains("/work/clouds.yaml"));
    }

    #[test]
    fn yaml_anchors_and_merge_keys_work() {
        let yaml = "\
common: &common
  auth_url: https://id/v3
  user_domain_name: Default
clouds:
  a:
    auth:
      <<: *common
      username: u
      project_name: p
";
        let fs = MemFs::default().with("/work/clouds.yaml", yaml);
        let c = discover(&fs, &[]).unwrap().cloud("a").unwrap();
        assert_eq!(c.auth_url.unwrap().value, "https://id/v3");
        assert_eq!(c.user_domain_name.unwrap().value, "Default");
        assert_eq!(c.username.unwrap().value, "u");
    }

    #[test]
    fn real_fs_reads_and_reports_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clouds.yaml");
        assert!(RealFs.read(&path).unwrap().is_none());
        std::fs::write(&path, DEMO).unwrap();
        assert_eq!(RealFs.read(&path).unwrap().unwrap(), DEMO);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            assert_eq!(RealFs.mode(&path), Some(0o640));
        }
        std::fs::write(&path, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(RealFs.read(&path).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_file_text_gives_a_result_not_a_panic(text in "[ -~\n]{0,200}", json in proptest::bool::ANY) {
            let path = if json { "/work/clouds.json" } else { "/work/clouds.yaml" };
            let fs = MemFs::default().with(path, &text);
            if let Ok(files) = discover(&fs, &[]) {
                for name in files.cloud_names() {
                    let _ = files.cloud(&name);
                }
            }
        }
    }
}

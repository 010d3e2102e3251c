//! The one table of settings: for each, its flag, environment variable,
//! profile key, parser, default and help. Resolution, the flags' help text,
//! the ENVIRONMENT and profile-key help and the README's table all come
//! from [`SETTINGS`]. Adding a setting is one row here plus its use.

/// How a setting's text (or TOML value, in a profile) is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Parse {
    /// Any non-blank text.
    Text,
    /// Text that is a secret: never shown in a message.
    Secret,
    /// A file path (`~/` expanded in a profile); any bytes from a flag or
    /// the environment, so a non-UTF-8 path is used as it is.
    Path,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off` as text); a
    /// flag is a switch that means true.
    Bool,
    /// Seconds, above 0 and at most the bound.
    Seconds { max: f64 },
    /// A whole number within the bounds.
    Count { min: u64, max: u64 },
    /// One of these words (each with its help).
    Choice(&'static [(&'static str, &'static str)]),
}

impl Parse {
    /// What a valid value looks like, for messages.
    pub fn expected(&self) -> String {
        match self {
            Parse::Text | Parse::Secret => "non-empty text".into(),
            Parse::Path => "a file path".into(),
            Parse::Bool => "true or false".into(),
            Parse::Seconds { .. } => "a number of seconds".into(),
            Parse::Count { min, max } => format!("a whole number from {min} to {max}"),
            Parse::Choice(words) => words
                .iter()
                .map(|(w, _)| *w)
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }
}

/// Whether a setting configures the connection (the client gets it) or
/// how this run behaves (the caller keeps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Where the config file and profile come from.
    Config,
    Connection,
    Run,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The name resolution knows it by; also the clap argument id of its flag.
    pub name: &'static str,
    /// The flag, with its value name (`None` for a switch).
    pub flag: Option<(&'static str, Option<&'static str>)>,
    /// The flag's one-letter form.
    pub short: Option<char>,
    /// The flag's section in `--help`.
    pub heading: &'static str,
    /// The environment variable, as documented.
    pub env: Option<&'static str>,
    /// Other variables read after it when it is unset, in order (for
    /// example `OS_ENDPOINT_TYPE` after `OS_INTERFACE`).
    pub env_aliases: &'static [&'static str],
    pub profile_key: Option<&'static str>,
    pub parse: Parse,
    /// The default, as text that `parse` reads.
    pub default: Option<&'static str>,
    /// One line of help, for `--help` and the README.
    pub help: &'static str,
    pub group: Group,
}

impl Setting {
    const fn new(name: &'static str, parse: Parse, group: Group, help: &'static str) -> Setting {
        Setting {
            name,
            flag: None,
            short: None,
            heading: "Connection",
            env: None,
            env_aliases: &[],
            profile_key: None,
            parse,
            default: None,
            help,
            group,
        }
    }
    const fn flag(mut self, flag: &'static str, value: Option<&'static str>) -> Setting {
        self.flag = Some((flag, value));
        self
    }
    const fn short(mut self, letter: char) -> Setting {
        self.short = Some(letter);
        self
    }
    const fn heading(mut self, heading: &'static str) -> Setting {
        self.heading = heading;
        self
    }
    const fn env(mut self, var: &'static str) -> Setting {
        self.env = Some(var);
        self
    }
    /// Variables also read, after the documented one (see `env_aliases`).
    const fn env_aliases(mut self, vars: &'static [&'static str]) -> Setting {
        self.env_aliases = vars;
        self
    }
    const fn key(mut self, key: &'static str) -> Setting {
        self.profile_key = Some(key);
        self
    }
    const fn default(mut self, text: &'static str) -> Setting {
        self.default = Some(text);
        self
    }

    /// The flag's help text: the help, the default and the variable, the
    /// way clap writes them.
    pub fn flag_help(&self) -> String {
        let mut text = self.help.to_string();
        if let Some(d) = self.default {
            text.push_str(&format!(" [default: {d}]"));
        }
        if let Some(var) = self.env {
            text.push_str(&format!(" [env: {var}=]"));
        }
        text
    }
}

use Group::{Config, Connection, Run};

/// Every setting that has a variable or a profile key. Flag-only options
/// (`--field`, `-q`, `--dry-run`, `-v`) are clap's alone.
pub const SETTINGS: &[Setting] = &[
    Setting::new("endpoint", Parse::Text, Connection, "Image service URL, with or without a trailing /v2")
        .flag("--endpoint", Some("URL"))
        .env("IMS_PATCH_ENDPOINT")
        .env_aliases(&["OS_IMAGE_ENDPOINT_OVERRIDE"])
        .key("endpoint"),
    Setting::new("token", Parse::Secret, Connection, "Token sent as X-Auth-Token (prefer the environment or a profile's token_command); for sandbox, the token it requires")
        .flag("--token", Some("TOKEN"))
        .env("IMS_PATCH_TOKEN")
        .key("token"),
    Setting::new("token_file", Parse::Path, Connection, "File whose content is the token")
        .key("token_file"),
    Setting::new("token_command", Parse::Text, Connection, "Shell command whose standard output is the token")
        .key("token_command"),
    Setting::new("profile", Parse::Text, Config, "Profile of the config file to use (default: default_profile at the top of the file)")
        .flag("--profile", Some("NAME"))
        .env("IMS_PATCH_PROFILE"),
    Setting::new("config", Parse::Path, Config, "Config file [default: <user config dir>/ims-patch/config.toml]")
        .flag("--config", Some("PATH"))
        .env("IMS_PATCH_CONFIG"),
    Setting::new("patch_format", Parse::Choice(&[
        ("v2.1", "`[{\"op\":\"replace\",\"path\":\"/name\",\"value\":\"x\"}]` (RFC 6902 style)"),
        ("v2.0", "`[{\"replace\":\"/name\",\"value\":\"x\"}]` (the older OpenStack form)"),
    ]), Run, "PATCH body format and media type")
        .flag("--patch-format", Some("FORMAT"))
        .heading("Request")
        .env("IMS_PATCH_PATCH_FORMAT")
        .key("patch_format")
        .default("v2.1"),
    Setting::new("output", Parse::Choice(&[
        ("table", "Two columns, Property and Value, keys sorted; control and bidi characters shown as escapes"),
        ("json", "The image exactly as the server returned it, re-indented (numbers, key order and repeated keys kept); with --field, those keys' values as the server wrote them"),
        ("value", "The values alone, one per line, in --field order (all in table order without it); text raw (escaped on a terminal), other values as JSON, a missing one as an empty line"),
    ]), Run, "Output format of the image")
        .flag("--output", Some("FORMAT"))
        .short('o')
        .heading("Output")
        .env("IMS_PATCH_OUTPUT")
        .key("output")
        .default("table"),
    Setting::new("timeout", Parse::Seconds { max: 86_400.0 }, Connection, "Deadline for each request and its answer, in seconds")
        .flag("--timeout", Some("SECONDS"))
        .env("IMS_PATCH_TIMEOUT")
        .key("timeout")
        .default("30"),
    Setting::new("cacert", Parse::Path, Connection, "PEM file with the CA certificate(s) to trust for the endpoint, or with its own self-signed certificate")
        .flag("--cacert", Some("PEM"))
        .env("IMS_PATCH_CACERT")
        .env_aliases(&["OS_CACERT"])
        .key("cacert"),
    Setting::new("insecure", Parse::Bool, Connection, "Do not verify the server's TLS certificate (unsafe; prints a warning)")
        .flag("--insecure", None)
        .env("IMS_PATCH_INSECURE")
        .env_aliases(&["OS_INSECURE"])
        .key("insecure"),
    Setting::new("allow_http", Parse::Bool, Connection, "Allow a plain http:// endpoint that is not on this machine")
        .flag("--allow-http", None)
        .env("IMS_PATCH_ALLOW_HTTP")
        .key("allow_http"),
    // Logging in (issue #8): clouds.yaml, `OS_*` variables (with the legacy
    // spellings as aliases) and profile keys; a clouds.yaml cloud ranks
    // after the profile (settings::login).
    Setting::new("os_cloud", Parse::Text, Connection, "Cloud of clouds.yaml to log in with (OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/, /etc/openstack/)")
        .flag("--os-cloud", Some("NAME"))
        .heading("Login")
        .env("OS_CLOUD")
        .key("cloud"),
    Setting::new("os_region_name", Parse::Text, Connection, "Region whose image endpoint the service catalog gives")
        .flag("--os-region-name", Some("REGION"))
        .heading("Login")
        .env("OS_REGION_NAME")
        .key("region_name"),
    Setting::new("os_auth_url", Parse::Text, Connection, "Identity service (Keystone v3, OTC IAM) URL to log in at")
        .flag("--os-auth-url", Some("URL"))
        .heading("Login")
        .env("OS_AUTH_URL")
        .key("auth_url"),
    Setting::new("os_auth_type", Parse::Text, Connection, "Login method: password, v3applicationcredential, v3token, or admin_token (endpoint and token as given)")
        .flag("--os-auth-type", Some("TYPE"))
        .heading("Login")
        .env("OS_AUTH_TYPE")
        .key("auth_type"),
    Setting::new("os_username", Parse::Text, Connection, "User name to log in as")
        .flag("--os-username", Some("NAME"))
        .heading("Login")
        .env("OS_USERNAME")
        .key("username"),
    Setting::new("os_user_id", Parse::Text, Connection, "User id to log in as (instead of a name and domain)")
        .env("OS_USER_ID")
        .key("user_id"),
    Setting::new("os_password", Parse::Secret, Connection, "Password (prefer password_command or password_file in a profile)")
        .env("OS_PASSWORD")
        .key("password"),
    Setting::new("password_command", Parse::Text, Connection, "Shell command whose standard output is the password (run only when a login is needed)")
        .key("password_command"),
    Setting::new("password_file", Parse::Path, Connection, "File whose content is the password")
        .key("password_file"),
    Setting::new("os_user_domain_name", Parse::Text, Connection, "Domain of the user")
        .flag("--os-user-domain-name", Some("NAME"))
        .heading("Login")
        .env("OS_USER_DOMAIN_NAME")
        .key("user_domain_name"),
    Setting::new("os_user_domain_id", Parse::Text, Connection, "Domain of the user, by id")
        .env("OS_USER_DOMAIN_ID")
        .key("user_domain_id"),
    Setting::new("os_project_name", Parse::Text, Connection, "Project to scope the login to")
        .flag("--os-project-name", Some("NAME"))
        .heading("Login")
        .env("OS_PROJECT_NAME")
        .env_aliases(&["OS_TENANT_NAME"])
        .key("project_name"),
    Setting::new("os_project_id", Parse::Text, Connection, "Project to scope the login to, by id")
        .flag("--os-project-id", Some("ID"))
        .heading("Login")
        .env("OS_PROJECT_ID")
        .env_aliases(&["OS_TENANT_ID"])
        .key("project_id"),
    Setting::new("os_project_domain_name", Parse::Text, Connection, "Domain of the project")
        .flag("--os-project-domain-name", Some("NAME"))
        .heading("Login")
        .env("OS_PROJECT_DOMAIN_NAME")
        .key("project_domain_name"),
    Setting::new("os_project_domain_id", Parse::Text, Connection, "Domain of the project, by id")
        .env("OS_PROJECT_DOMAIN_ID")
        .key("project_domain_id"),
    Setting::new("os_domain_name", Parse::Text, Connection, "Domain of user and project (with no project: the domain to scope to)")
        .env("OS_DOMAIN_NAME")
        .key("domain_name"),
    Setting::new("os_domain_id", Parse::Text, Connection, "As OS_DOMAIN_NAME, by id")
        .env("OS_DOMAIN_ID")
        .key("domain_id"),
    Setting::new("os_token", Parse::Secret, Connection, "Token to exchange for a project-scoped one (auth_type v3token)")
        .env("OS_TOKEN")
        .env_aliases(&["OS_AUTH_TOKEN"]),
    Setting::new("os_application_credential_id", Parse::Text, Connection, "Application credential id")
        .env("OS_APPLICATION_CREDENTIAL_ID")
        .key("application_credential_id"),
    Setting::new("os_application_credential_name", Parse::Text, Connection, "Application credential name (with the user's name and domain)")
        .env("OS_APPLICATION_CREDENTIAL_NAME")
        .key("application_credential_name"),
    Setting::new("os_application_credential_secret", Parse::Secret, Connection, "Application credential secret (prefer application_credential_secret_command)")
        .env("OS_APPLICATION_CREDENTIAL_SECRET")
        .key("application_credential_secret"),
    Setting::new("application_credential_secret_command", Parse::Text, Connection, "Shell command whose standard output is the application credential secret")
        .key("application_credential_secret_command"),
    Setting::new("os_interface", Parse::Text, Connection, "Catalog interface of the image endpoint: public, internal or admin [default: public]")
        .flag("--os-interface", Some("INTERFACE"))
        .heading("Login")
        .env("OS_INTERFACE")
        .env_aliases(&["OS_ENDPOINT_TYPE"])
        .key("interface"),
    Setting::new("no_token_cache", Parse::Bool, Connection, "Neither read nor write the token cache: log in on every run")
        .flag("--no-token-cache", None)
        .heading("Login")
        .env("IMS_PATCH_NO_TOKEN_CACHE")
        .key("no_token_cache"),
    Setting::new("cache_dir", Parse::Path, Connection, "Directory of the token cache (tokens in ims-patch/tokens/ below it) [default: the user cache dir]")
        .env("IMS_PATCH_CACHE_DIR")
        .key("cache_dir"),
    // AK/SK signing (OTC): src/settings/aksk.rs turns these into a credential.
    Setting::new("access_key", Parse::Text, Connection, "OTC access key (AK): sign requests with AK/SK instead of sending a token")
        .env("IMS_PATCH_ACCESS_KEY")
        .env_aliases(&["OS_ACCESS_KEY"])
        .key("access_key"),
    Setting::new("secret_key", Parse::Secret, Connection, "OTC secret key (SK) of the access key (prefer secret_key_command or secret_key_file in a profile)")
        .env("IMS_PATCH_SECRET_KEY")
        .env_aliases(&["OS_SECRET_KEY"])
        .key("secret_key"),
    Setting::new("secret_key_file", Parse::Path, Connection, "File whose content is the secret key")
        .key("secret_key_file"),
    Setting::new("secret_key_command", Parse::Text, Connection, "Shell command whose standard output is the secret key")
        .key("secret_key_command"),
    Setting::new("security_token", Parse::Secret, Connection, "Security token of a temporary AK/SK, sent as X-Security-Token")
        .env("IMS_PATCH_SECURITY_TOKEN")
        .env_aliases(&["OS_SECURITY_TOKEN"])
        .key("security_token"),
    Setting::new("project_id", Parse::Text, Connection, "Project ID sent as X-Project-Id with AK/SK, before --os-project-id and the profile's project_id (needed for sub-projects; else the region's project is looked up once)")
        .env("IMS_PATCH_PROJECT_ID"),
    Setting::new("region", Parse::Text, Connection, "OTC region (eu-de, eu-nl), before --os-region-name: with AK/SK and no endpoint, the endpoint is https://ims.REGION.otc.t-systems.com")
        .env("IMS_PATCH_REGION")
        .key("region"),
    Setting::new("iam_endpoint", Parse::Text, Connection, "IAM URL for the AK/SK project lookup [default: https://iam.REGION.otc.t-systems.com, or a loopback endpoint itself]")
        .env("IMS_PATCH_IAM_ENDPOINT")
        .key("iam_endpoint"),
    // Batch runs and retries (issue #10).
    Setting::new("jobs", Parse::Count { min: 1, max: 64 }, Run, "Images edited at once with --images-from, --where or apply (at most N requests in flight)")
        .flag("--jobs", Some("N"))
        .short('j')
        .heading("Batch")
        .env("IMS_PATCH_JOBS")
        .key("jobs")
        .default("4"),
    Setting::new("retries", Parse::Count { min: 0, max: 100 }, Run, "Further attempts after a transient failure (refused connection, 429, 502, 503, 504; 500 and dropped connections only for requests safe to repeat)")
        .flag("--retries", Some("N"))
        .heading("Request")
        .env("IMS_PATCH_RETRIES")
        .key("retries")
        .default("3"),
    Setting::new("retry_max_wait", Parse::Seconds { max: 3_600.0 }, Run, "Longest wait before a retry, in seconds (backoff with full jitter; Retry-After is honoured up to this)")
        .flag("--retry-max-wait", Some("SECONDS"))
        .heading("Request")
        .env("IMS_PATCH_RETRY_MAX_WAIT")
        .key("retry_max_wait")
        .default("30"),
    Setting::new("undo_file", Parse::Path, Run, "Write to FILE (a new file), for each changed image, the patch that restores it, on disk before the image's result is reported (reads each image first: two requests an image); replay with 'ims-patch apply FILE'")
        .flag("--undo-file", Some("FILE"))
        .heading("Batch")
        .env("IMS_PATCH_UNDO_FILE")
        .key("undo_file"),
];

/// The row of `name`; a name that is not in the table is a bug.
pub fn setting(name: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no setting named {name}"))
}

/// The help text of the flag of setting `name`, for cli.rs.
pub fn flag_help(name: &str) -> String {
    setting(name).flag_help()
}

/// Every profile key, in table order.
pub fn profile_keys() -> Vec<&'static str> {
    SETTINGS.iter().filter_map(|s| s.profile_key).collect()
}

/// The "Environment:" section of the long help.
pub fn environment_help() -> String {
    let rows: Vec<(&str, String)> = SETTINGS
        .iter()
        .filter_map(|s| {
            let var = s.env?;
            let text = match (s.flag, s.parse) {
                (Some((flag, _)), Parse::Bool) => format!("as {flag} (true or false)"),
                (Some((flag, _)), _) => format!("as {flag}"),
                (None, _) => s.help.to_string(),
            };
            let mut rows = vec![(var, text)];
            rows.extend(s.env_aliases.iter().map(|a| (*a, format!("as {var}"))));
            Some(rows)
        })
        .flatten()
        .collect();
    let width = rows.iter().map(|(v, _)| v.len()).max().unwrap_or(0);
    let mut out = String::from("Environment:");
    for (var, text) in rows {
        out.push_str(&format!("\n  {var:<width$}  {text}"));
    }
    out
}

/// The README's configuration table, as Markdown.
pub fn readme_table() -> String {
    let mut out = String::from("| flag | environment | profile key | |\n|---|---|---|---|\n");
    let code = |t: &str| format!("`{t}`");
    for s in SETTINGS {
        let flag = match s.flag {
            Some((flag, Some(value))) => code(&format!("{flag} {value}")),
            Some((flag, None)) => code(flag),
            None => String::new(),
        };
        let mut help = s.help.replace('|', "\\|");
        if let (Some(d), false) = (s.default, help.contains("[default")) {
            help.push_str(&format!("; default `{d}`"));
        }
        out.push_str(&format!(
            "| {flag} | {} | {} | {help} |\n",
            s.env
                .iter()
                .chain(s.env_aliases)
                .map(|v| code(v))
                .collect::<Vec<_>>()
                .join(", "),
            s.profile_key.map(code).unwrap_or_default(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_flags_variables_and_keys_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in SETTINGS {
            assert!(seen.insert(s.name), "{}", s.name);
            if let Some((flag, _)) = s.flag {
                assert!(seen.insert(flag), "{flag}");
                assert_eq!(flag.trim_start_matches("--").replace('-', "_"), s.name);
            }
            for var in s.env.iter().chain(s.env_aliases) {
                assert!(seen.insert(var), "{var}");
                assert!(
                    var.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                    "{var}"
                );
            }
            assert!(s.env.is_some() || s.profile_key.is_some(), "{}", s.name);
        }
    }

    #[test]
    fn defaults_parse() {
        for s in SETTINGS {
            if let Some(d) = s.default {
                let raw = super::super::resolve::Raw::Text(d.into());
                assert!(
                    super::super::resolve::parse_raw(s, &raw).is_ok(),
                    "{}",
                    s.name
                );
            }
        }
    }

    #[test]
    fn help_names_every_variable() {
        let env = environment_help();
        for s in SETTINGS {
            if let Some(var) = s.env {
                assert!(env.contains(var), "{var}");
            }
        }
        assert!(flag_help("timeout").ends_with("[default: 30] [env: IMS_PATCH_TIMEOUT=]"));
    }
}

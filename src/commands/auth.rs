//! `auth login | status | token | logout [--revoke]`: the Keystone login
//! and its cached token, outside of an edit. Data (the login, the status
//! with -o json, the token) goes to stdout; notes to stderr.

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::auth::cache::CachedToken;
use crate::cli::{AuthArgs, AuthCommand};
use crate::client::session::KeystoneSession;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::output::OutputFormat;
use crate::settings::{ConnectionSettings, CredentialSource, RunOptions};

pub fn run(connection: ConnectionSettings, options: &RunOptions, args: &AuthArgs) -> Result<()> {
    let transport = Arc::new(Client::transport_for(&connection)?);
    let session = match &connection.credential {
        CredentialSource::Keystone(login) => Some(KeystoneSession::new(
            (**login).clone(),
            Arc::clone(&transport),
        )?),
        _ => None,
    };
    let json = options.output == OutputFormat::Json;
    if let AuthCommand::Status = args.what {
        print(&status(&connection, session.as_ref()), json, options)?;
        if matches!(connection.credential, CredentialSource::None) && !options.quiet {
            eprintln!("ims-patch: no endpoint, token, key pair or login is configured");
            eprintln!("hint: {NO_LOGIN_HINT}");
        }
        return Ok(());
    }
    let Some(session) = session else {
        return Err(no_login(&connection.credential));
    };
    match args.what {
        AuthCommand::Login => {
            let token = session.login_fresh()?;
            let value = describe_token(&connection, &session, &token)?;
            print(&value, json, options)
        }
        AuthCommand::Token => {
            let token = session.token()?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", token.token.expose())?;
            out.flush().map_err(Error::from)
        }
        AuthCommand::Logout { revoke } => {
            let had = session.logout(revoke)?;
            if !options.quiet {
                let text = match (had, revoke) {
                    (true, true) => "revoked and deleted the cached token",
                    (true, false) => "deleted the cached token",
                    (false, _) => "no cached token to delete",
                };
                eprintln!("ims-patch: {text}");
            }
            Ok(())
        }
        AuthCommand::Status => unreachable!("handled above"),
    }
}

/// How to configure a Keystone login.
const NO_LOGIN_HINT: &str = "select a cloud of clouds.yaml with --os-cloud NAME or OS_CLOUD, or set OS_AUTH_URL with OS_USERNAME, OS_PASSWORD, ... (an openrc file), or put auth_url and its keys in a profile";

fn no_login(credential: &CredentialSource) -> Error {
    let hint = NO_LOGIN_HINT;
    match credential {
        CredentialSource::AkSk(_) => Error::config(
            "the access key pair signs each request: there is no login and no token to show",
        )
        .hint("'ims-patch auth status' shows which key pair is used and where it came from")
        .hint(format!("to log in with Keystone instead: {hint}")),
        CredentialSource::Token(_)
        | CredentialSource::TokenFile(_)
        | CredentialSource::TokenCommand(_) => {
            Error::config("a token is given as it is: there is no login to run")
                .hint("'ims-patch auth status' shows where the token comes from")
                .hint(format!("to log in with Keystone instead: {hint}"))
        }
        _ => Error::config("no login is configured").hint(hint),
    }
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn owner(o: &Option<crate::auth::keystone::Owner>) -> Value {
    match o {
        None => Value::Null,
        Some(o) => json!({
            "id": o.id,
            "name": o.name,
            "domain": o.domain.as_ref().and_then(|d| d.name.clone().or(d.id.clone())),
        }),
    }
}

/// What `auth login` prints: who, where, until when (no token).
fn describe_token(
    connection: &ConnectionSettings,
    session: &KeystoneSession,
    token: &CachedToken,
) -> Result<Value> {
    let endpoint = match &connection.endpoint {
        Some(e) => json!({"url": e.value.to_string(), "source": e.source.to_string()}),
        None => {
            json!({"url": session.image_endpoint(token)?.to_string(), "source": "from the service catalog"})
        }
    };
    let region = session.login_settings().config.region_name.as_ref();
    Ok(json!({
        "user": owner(&token.user),
        "project": owner(&token.project),
        "region": region.map(|r| r.value.clone()),
        "image_endpoint": endpoint,
        "expires_at": time(token.expires_at),
        "cache_file": session.cache_path().map(|p| p.display().to_string()),
    }))
}

/// What `auth status` shows: the credential, its settings with their
/// sources (never a secret value), the endpoint, the cached token.
fn status(connection: &ConnectionSettings, session: Option<&KeystoneSession>) -> Value {
    let endpoint = connection
        .endpoint
        .as_ref()
        .map(|e| json!({"url": e.value.to_string(), "source": e.source.to_string()}));
    let (credential, settings) = match &connection.credential {
        CredentialSource::Token(t) => (format!("token ({})", t.source), vec![]),
        CredentialSource::TokenFile(f) => (
            format!("token_file '{}' ({})", f.value.display(), f.source),
            vec![],
        ),
        CredentialSource::TokenCommand(c) => (format!("token_command ({})", c.source), vec![]),
        CredentialSource::Keystone(login) => {
            let mut used = login.config.describe_used();
            for from in [&login.password_from, &login.app_secret_from]
                .into_iter()
                .flatten()
            {
                used.push(match from {
                    crate::settings::login::SecretFrom::Command { setting, command } => {
                        format!("{setting} ({})", command.source)
                    }
                    crate::settings::login::SecretFrom::File(f) => {
                        format!("password_file '{}' ({})", f.value.display(), f.source)
                    }
                });
            }
            (
                format!(
                    "keystone login, auth_type {}",
                    login
                        .request(None, None)
                        .map(|r| r.auth_type().name())
                        .unwrap_or("?")
                ),
                used,
            )
        }
        CredentialSource::AkSk(a) => {
            let mut used = vec![a.describe()];
            if let Some(t) = &a.security_token {
                used.push(format!("security_token ({})", t.source));
            }
            match (&a.project_id, &a.region) {
                (Some(p), _) => used.push(format!("project_id '{}' ({})", p.value, p.source)),
                (None, Some(r)) => used.push(format!(
                    "project of region '{}' ({}), looked up once and cached",
                    r.value, r.source
                )),
                (None, None) => {}
            }
            ("aksk (each request signed, SDK-HMAC-SHA256)".into(), used)
        }
        CredentialSource::None => ("none".into(), vec![]),
    };
    let cache = session.map(|s| {
        let cached = s.cached();
        json!({
            "enabled": s.login_settings().cache_root.is_some(),
            "file": s.cache_path().map(|p| p.display().to_string()),
            "token": cached.as_ref().map(|t| json!({
                "expires_at": time(t.expires_at),
                "fresh": t.is_fresh(SystemTime::now()),
            })),
        })
    });
    json!({
        "credential": credential,
        "settings": settings,
        "endpoint": endpoint,
        "token_cache": cache,
    })
}

/// `key=value` words of an object, nested objects flattened as
/// `outer.inner=value`, null members left out.
fn pairs(prefix: &str, map: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut words = Vec::new();
    for (k, v) in map {
        match v {
            Value::Null => {}
            Value::Object(inner) => words.extend(pairs(&format!("{prefix}{k}."), inner)),
            Value::String(s) => words.push(format!("{prefix}{k}={s}")),
            other => words.push(format!("{prefix}{k}={other}")),
        }
    }
    words
}

/// JSON with -o json; else `key: value` lines.
fn print(value: &Value, json: bool, options: &RunOptions) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        )?;
        return out.flush().map_err(Error::from);
    }
    if options.quiet {
        return Ok(());
    }
    let Some(map) = value.as_object() else {
        return Ok(());
    };
    for (key, v) in map {
        let text = match v {
            Value::Null => "-".to_string(),
            Value::Array(items) if items.is_empty() => "-".to_string(),
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .map(|i| format!("\n  {i}"))
                .collect(),
            Value::Object(o) if o.contains_key("url") => format!(
                "{} ({})",
                o["url"].as_str().unwrap_or(""),
                o["source"].as_str().unwrap_or("")
            ),
            Value::Object(o) => pairs("", o).join(" "),
            other => other.to_string(),
        };
        let sep = if text.starts_with('\n') { ":" } else { ": " };
        writeln!(out, "{key}{sep}{text}")?;
    }
    out.flush().map_err(Error::from)
}

//! The Keystone session credential: logs in lazily on first use (or takes
//! a fresh token from the on-disk cache, so a cached edit is one request),
//! adds `X-Auth-Token`, logs in again once after a 401 to a cached token,
//! and gives the image endpoint from the token's catalog. Its login and
//! revoke requests go through the client's [`Transport`] (same TLS,
//! deadline and size cap); the password is shown redacted in `-v`.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::auth::cache::{CacheKey, CachedToken, TokenCache};
use crate::auth::keystone::{self, AuthRequest};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::helper_command::{self, Limits};
use crate::secret::Secret;
use crate::settings::login::{Login, SecretFrom};
use crate::wire::{Header, WireRequest};

use super::{Credential, Transport, USER_AGENT_VALUE};

/// The most bytes of a password or secret file read.
const SECRET_FILE_MAX: u64 = 64 * 1024;

/// A Keystone (OTC IAM) login shared by every request of one client.
pub struct KeystoneSession {
    login: Login,
    transport: Arc<Transport>,
    cache: Option<TokenCache>,
    key: Option<CacheKey>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    token: Option<CachedToken>,
    /// Whether `token` was read from the cache (a 401 then means: log in).
    from_cache: bool,
    /// Whether a 401 already made it log in again (once per run).
    renewed: bool,
}

impl fmt::Debug for KeystoneSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoneSession")
            .field("auth_url", &self.login.config.auth_url)
            .field("cache", &self.cache.as_ref().map(|c| c.dir().to_path_buf()))
            .finish_non_exhaustive()
    }
}

impl KeystoneSession {
    pub fn new(login: Login, transport: Arc<Transport>) -> Result<KeystoneSession> {
        // The key needs no secret: the placeholders do.
        let key = CacheKey::of(&login.request(None, None)?);
        let cache = login.cache_root.as_ref().map(|r| TokenCache::new(&r.value));
        Ok(KeystoneSession {
            login,
            transport,
            cache,
            key,
            state: Mutex::new(State::default()),
        })
    }

    pub fn login_settings(&self) -> &Login {
        &self.login
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cache file of this login, when the cache is on and the login is
    /// cacheable (a token exchange is not).
    pub fn cache_path(&self) -> Option<PathBuf> {
        Some(self.cache.as_ref()?.path(self.key.as_ref()?))
    }

    /// The cached entry, fresh or not (for `auth status`).
    pub fn cached(&self) -> Option<CachedToken> {
        self.cache.as_ref()?.load(self.key.as_ref()?)
    }

    /// A usable token: the one in hand, a fresh cached one, or a new login.
    pub fn token(&self) -> Result<CachedToken> {
        let mut state = self.state();
        let now = SystemTime::now();
        // The token in hand: from the cache, while fresh; from a login of
        // this run, until it expires (a lifetime under the cache's margin
        // must not make every request log in again).
        let usable = |t: &CachedToken, from_cache: bool| {
            if from_cache {
                t.is_fresh(now)
            } else {
                now < t.expires_at
            }
        };
        if let Some(t) = state.token.as_ref().filter(|t| usable(t, state.from_cache)) {
            return Ok(t.clone());
        }
        if let Some(t) = self.cached().filter(|t| t.is_fresh(now)) {
            log::info!(
                "using the cached token (expires {})",
                humantime::format_rfc3339_seconds(t.expires_at)
            );
            state.token = Some(t.clone());
            state.from_cache = true;
            return Ok(t);
        }
        let t = self.login_now()?;
        state.token = Some(t.clone());
        state.from_cache = false;
        Ok(t)
    }

    /// Logs in now, whatever is cached, and caches the new token.
    pub fn login_fresh(&self) -> Result<CachedToken> {
        let mut state = self.state();
        let t = self.login_now()?;
        state.token = Some(t.clone());
        state.from_cache = false;
        Ok(t)
    }

    /// Reads a secret that comes from a command or a file.
    fn read_secret(&self, from: &Option<SecretFrom>) -> Result<Option<Secret>> {
        match from {
            None => Ok(None),
            Some(SecretFrom::Command { setting, command }) => {
                let limits = Limits {
                    time: self.transport.timeout(),
                    ..Limits::default()
                };
                helper_command::run(setting, &command.source, &command.value, limits).map(Some)
            }
            Some(SecretFrom::File(f)) => {
                use std::io::Read;
                let mut text = String::new();
                std::fs::File::open(&f.value)
                    .and_then(|file| file.take(SECRET_FILE_MAX).read_to_string(&mut text))
                    .map_err(|e| {
                        Error::config(format!(
                            "cannot read password_file '{}' ({}): {e}",
                            f.value.display(),
                            f.source
                        ))
                    })?;
                crate::settings::file::warn_if_shared(&f.value, "holds a password");
                let text = text.trim_end_matches(['\n', '\r']);
                if text.is_empty() {
                    return Err(Error::config(format!(
                        "password_file '{}' ({}) is empty",
                        f.value.display(),
                        f.source
                    )));
                }
                Ok(Some(Secret::new(text)))
            }
        }
    }

    /// `POST {auth_url}/auth/tokens`, then the cache is updated.
    fn login_now(&self) -> Result<CachedToken> {
        let password = self.read_secret(&self.login.password_from)?;
        let app_secret = self.read_secret(&self.login.app_secret_from)?;
        let request = self.login.request(password, app_secret)?;
        let url = request.tokens_url()?;
        let wire = login_request(&request, url.clone(), false);
        let shown = login_request(&request, url.clone(), true).render();
        if self.login.show_login {
            let _ = writeln!(
                std::io::stderr().lock(),
                "ims-patch: logging in (a read, for the token and the catalog):\n{}",
                shown.trim_end()
            );
        } else {
            log::info!("logging in:\n{}", shown.trim_end());
        }
        let source = self
            .login
            .config
            .auth_url
            .as_ref()
            .map(|s| format!(" ({})", s.source))
            .unwrap_or_default();
        let target = format!("the identity service '{url}'{source}");
        let response = self.transport.exchange(&wire, &target)?;
        let used = self.login.config.describe_used();
        if !response.is_success() {
            return Err(keystone::login_error(
                response.status,
                &response.body,
                &url,
                &used,
            ));
        }
        let token =
            keystone::parse_token_response(response.header("x-subject-token"), &response.body)?;
        let entry = CachedToken::new(&token, &request);
        if let (Some(cache), Some(key)) = (&self.cache, &self.key) {
            if let Err(e) = cache.store(key, &entry) {
                log::warn!(
                    "cannot cache the token in '{}': {e}; the next run logs in again",
                    cache.dir().display()
                );
            }
        }
        Ok(entry)
    }

    /// The image endpoint of `token`'s catalog for the configured interface
    /// and region.
    pub fn image_endpoint(&self, token: &CachedToken) -> Result<Endpoint> {
        let c = &self.login.config;
        let url = keystone::select_image_endpoint(
            &token.catalog,
            c.interface.as_ref().map(|s| s.value.as_str()),
            c.region_name.as_ref().map(|s| s.value.as_str()),
        )
        .map_err(|e| {
            // Name where the chosen region and interface were set.
            [("region_name", &c.region_name), ("interface", &c.interface)]
                .into_iter()
                .filter_map(|(name, v)| v.as_ref().map(|v| (name, v)))
                .fold(e, |e, (name, v)| {
                    e.hint(format!("{name} '{}' was set ({})", v.value, v.source))
                })
        })?;
        let endpoint = Endpoint::parse(&url)
            .map_err(|why| Error::config(format!("the catalog's image URL '{url}': {why}")))?;
        if !endpoint.is_https() && !endpoint.is_loopback() && !self.login.allow_http {
            return Err(Error::config(format!(
                "the catalog's image endpoint '{url}' uses plain http to another machine, which would send the token unencrypted"
            ))
            .hint("pass --allow-http (allow_http = true in the profile) if the network is trusted, or set image_endpoint_override"));
        }
        Ok(endpoint)
    }

    /// Deletes the cached token; with `revoke`, also revokes it
    /// (`DELETE /auth/tokens`). Says whether there was one.
    pub fn logout(&self, revoke: bool) -> Result<bool> {
        let Some(entry) = self.cached() else {
            return Ok(false);
        };
        if revoke {
            let r = keystone::revoke_request(&entry.auth_url, &entry.token, &entry.token)?;
            let mut wire = WireRequest::new("DELETE", r.url.clone())
                .header("Accept", "application/json")
                .header("User-Agent", USER_AGENT_VALUE);
            for (name, value) in &r.headers {
                wire.headers
                    .push(Header::sensitive(*name, value.expose(), "<redacted>"));
            }
            let target = format!("the identity service '{}'", r.url);
            let response = self.transport.exchange(&wire, &target)?;
            match response.status {
                200..=299 => {}
                // Already expired or revoked: nothing left to revoke.
                401 | 404 => log::warn!("the cached token was no longer valid; nothing to revoke"),
                status => {
                    return Err(keystone::login_error(status, &response.body, &r.url, &[]));
                }
            }
        }
        if let (Some(cache), Some(key)) = (&self.cache, &self.key) {
            cache.remove(key).map_err(|e| {
                Error::runtime(format!(
                    "cannot delete the cached token '{}': {e}",
                    cache.path(key).display()
                ))
            })?;
        }
        Ok(true)
    }
}

/// The login request; `shown` puts `<redacted>` where the secrets are.
fn login_request(request: &AuthRequest, url: url::Url, shown: bool) -> WireRequest {
    let body = if shown {
        request.redacted_body()
    } else {
        request.body()
    };
    WireRequest::new("POST", url)
        .header("Accept", "application/json")
        .header("User-Agent", USER_AGENT_VALUE)
        .with_body("application/json", body.to_string().into_bytes())
}

impl Credential for KeystoneSession {
    fn apply(&self, request: &mut WireRequest) -> Result<()> {
        let token = self.token()?;
        request.headers.push(Header::sensitive(
            "X-Auth-Token",
            token.token.expose(),
            "<redacted>",
        ));
        Ok(())
    }

    /// After a 401 to a cached token (revoked, or expired early): drop it,
    /// log in again, and let the request go once more. Once per run.
    fn renew(&self) -> Result<bool> {
        let mut state = self.state();
        if state.renewed || !state.from_cache {
            return Ok(false);
        }
        state.renewed = true;
        if let (Some(cache), Some(key)) = (&self.cache, &self.key) {
            let _ = cache.remove(key);
        }
        log::info!("the cached token was refused; logging in again");
        let t = self.login_now()?;
        state.token = Some(t);
        state.from_cache = false;
        Ok(true)
    }

    fn endpoint(&self) -> Result<Option<Endpoint>> {
        let token = self.token()?;
        self.image_endpoint(&token).map(Some)
    }

    fn source(&self) -> String {
        let c = &self.login.config;
        let who = c
            .username
            .as_ref()
            .or(c.user_id.as_ref())
            .or(c.application_credential_id.as_ref())
            .or(c.application_credential_name.as_ref())
            .map(|s| format!(" as '{}'", s.value))
            .unwrap_or_default();
        let at = c
            .auth_url
            .as_ref()
            .map(|s| format!(" at '{}' ({})", s.value, s.source))
            .unwrap_or_default();
        format!("from the login{who}{at}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::clouds::{AuthConfig, Source, Sourced};

    fn login() -> Login {
        let s = |v: &str| {
            Some(Sourced {
                value: v.to_string(),
                source: Source::Env("OS_X"),
            })
        };
        Login {
            config: AuthConfig {
                auth_url: s("http://127.0.0.1:5000/v3"),
                user_id: s("u"),
                password: Some(Sourced {
                    value: Secret::new("hunter2"),
                    source: Source::Env("OS_PASSWORD"),
                }),
                project_id: s("p"),
                ..AuthConfig::default()
            },
            password_from: None,
            app_secret_from: None,
            cache_root: None,
            allow_http: false,
            show_login: false,
        }
    }

    #[test]
    fn the_login_request_shows_no_password() {
        let request = login().request(None, None).unwrap();
        let url = request.tokens_url().unwrap();
        let shown = login_request(&request, url.clone(), true).render();
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let wire = login_request(&request, url, false);
        assert!(String::from_utf8(wire.body.clone().unwrap())
            .unwrap()
            .contains("hunter2"));
        assert_eq!(wire.get("Content-Type"), Some("application/json"));
    }

    #[test]
    fn no_cache_means_no_cache_path_and_debug_has_no_secret() {
        let t = Arc::new(
            Transport::new(
                &crate::settings::Tls::default(),
                std::time::Duration::from_secs(1),
                false,
            )
            .unwrap(),
        );
        let s = KeystoneSession::new(login(), t).unwrap();
        assert_eq!(s.cache_path(), None);
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(
            s.source(),
            "from the login as 'u' at 'http://127.0.0.1:5000/v3' (from OS_X)"
        );
    }
}

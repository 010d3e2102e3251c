//! Credentials: what authenticates a request, applied by the client in one
//! place to the fully built [`WireRequest`] just before it is sent (and
//! before it is rendered for `--dry-run`/`-v`, redacted). A static token is
//! one header; a Keystone session would log in lazily and renew once on
//! 401; an AK/SK signer sees the exact method, URL, headers and body bytes.

use std::fmt;
use std::sync::Arc;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::helper_command;
use crate::secret::Secret;
use crate::settings::{CredentialSource, Source};
use crate::wire::{Header, WireRequest};

use super::Transport;

/// What authenticates requests. Implementations must be `Send + Sync`: one
/// client serves several threads (batch editing).
pub trait Credential: Send + Sync + fmt::Debug {
    /// Adds what authenticates `request` (a header, or a signature over the
    /// request as it is). Called once per attempt, after every other header
    /// is in place; each added header carries its redacted form in `shown`.
    fn apply(&self, request: &mut WireRequest) -> Result<()>;

    /// After the server answered 401 to a request this credential
    /// authorised: renew (log in again) and say whether the request may be
    /// sent once more. A static token cannot be renewed.
    fn renew(&self) -> Result<bool> {
        Ok(false)
    }

    /// The image endpoint this credential found (a service catalog), for
    /// when none is configured.
    fn endpoint(&self) -> Result<Option<Endpoint>> {
        Ok(None)
    }

    /// Where it comes from, for hints: "from IMS_PATCH_TOKEN".
    fn source(&self) -> String;

    /// The hint for a 401 answer to a request it authorised, when it can
    /// say more than "missing, invalid or expired" (a refused signature).
    fn refusal_hint(&self, _response: &crate::wire::WireResponse) -> Option<String> {
        None
    }
}

/// A token sent as `X-Auth-Token`: given, read from a file, or printed by
/// a command (all resolved once, when the client is built).
#[derive(Debug)]
pub struct StaticToken {
    token: Secret,
    source: Source,
}

impl StaticToken {
    pub fn new(token: Secret, source: Source) -> Result<StaticToken> {
        if token.expose().is_empty() {
            return Err(Error::config(format!("the token ({source}) is empty")));
        }
        if reqwest::header::HeaderValue::from_str(token.expose()).is_err() {
            return Err(Error::config(format!(
                "the token ({source}) contains characters that cannot go in an HTTP header"
            )));
        }
        Ok(StaticToken { token, source })
    }
}

impl Credential for StaticToken {
    fn apply(&self, request: &mut WireRequest) -> Result<()> {
        request.headers.push(Header::sensitive(
            "X-Auth-Token",
            self.token.expose(),
            "<redacted>",
        ));
        Ok(())
    }

    fn source(&self) -> String {
        self.source.to_string()
    }
}

/// The error when no credential is configured.
pub fn no_token() -> Error {
    Error::config("no token is set").hint(
        "pass --token, set IMS_PATCH_TOKEN, or give a profile token_command (or token_file) in the config file",
    )
}

/// Builds the credential a source describes: reads a token file, runs a
/// token command ([`helper_command::run`], bounded by the transport's
/// timeout, never echoed). A new kind of credential is a new
/// `CredentialSource` variant and one arm here.
/// `transport` is there for credentials that make requests of their own
/// (a Keystone login); its timeout bounds a token command.
pub fn build(source: &CredentialSource, transport: &Arc<Transport>) -> Result<Box<dyn Credential>> {
    let timeout = transport.timeout();
    Ok(match source {
        CredentialSource::Token(t) => {
            Box::new(StaticToken::new(t.value.clone(), t.source.clone())?)
        }
        CredentialSource::TokenFile(f) => {
            let text = std::fs::read_to_string(&f.value).map_err(|e| {
                Error::config(format!(
                    "cannot read token_file '{}' ({}): {e}",
                    f.value.display(),
                    f.source
                ))
            })?;
            crate::settings::file::warn_if_shared(&f.value, "holds a token");
            Box::new(StaticToken::new(
                Secret::new(text.trim()),
                f.source.clone(),
            )?)
        }
        CredentialSource::TokenCommand(c) => {
            let limits = helper_command::Limits {
                time: timeout,
                ..helper_command::Limits::default()
            };
            let token = helper_command::run("token_command", &c.source, &c.value, limits)?;
            Box::new(StaticToken::new(token, c.source.clone())?)
        }
        CredentialSource::AkSk(source) => {
            Box::new(super::aksk::AkSkCredential::build(source, transport)?)
        }
        CredentialSource::Keystone(login) => Box::new(super::session::KeystoneSession::new(
            (**login).clone(),
            Arc::clone(transport),
        )?),
        CredentialSource::None => return Err(no_token()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    #[test]
    fn a_static_token_is_one_redacted_header() {
        let t = StaticToken::new(Secret::new("s3cret"), Source::Env("IMS_PATCH_TOKEN")).unwrap();
        let mut r = WireRequest::new("GET", Url::parse("http://x/v2/images").unwrap());
        t.apply(&mut r).unwrap();
        assert_eq!(r.get("X-Auth-Token"), Some("s3cret"));
        assert!(r.render().contains("X-Auth-Token: <redacted>"));
        assert!(!r.render().contains("s3cret"));
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(t.source(), "from IMS_PATCH_TOKEN");
        assert!(StaticToken::new(Secret::new("a\nb"), Source::Default).is_err());
    }
}

//! The client of one image service: builds each request as a
//! [`WireRequest`], applies the credential in one place
//! ([`Client::authorize`]), sends it through the [`Transport`] (no
//! redirects, one deadline for the whole exchange, at most [`MAX_BODY`]
//! bytes read), and turns an error status into an error that keeps the
//! answer. `Client` is `Send + Sync`: one client serves several threads.

pub mod aksk;
pub mod credential;
pub mod message;
pub mod retry;
pub mod session;
pub mod tls;
pub mod transport;

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

pub use credential::Credential;
pub use transport::Transport;

use crate::endpoint::Endpoint;
use crate::error::{Error, Kind, Result, WireFailure};
use crate::sanitize;
use crate::settings::{no_endpoint, ConnectionSettings, Sourced};
use crate::wire::{Reach, WireRequest, WireResponse};

pub const USER_AGENT_VALUE: &str = concat!("ims-patch/", env!("CARGO_PKG_VERSION"));

/// The most bytes read of any answer, success or error: far above any real
/// image (Glance caps an image at 128 properties and 128 tags).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// A client for one image service.
pub struct Client {
    transport: Arc<Transport>,
    credential: Box<dyn Credential>,
    settings: ConnectionSettings,
    retry: crate::settings::retry::RetryPolicy,
}

thread_local! {
    /// HTTP exchanges this thread has sent, retries included (a batch
    /// reports them per image).
    static EXCHANGES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The number of exchanges this thread has sent so far; a batch worker
/// reads it before and after an image.
pub fn exchanges_on_this_thread() -> u32 {
    EXCHANGES.with(|c| c.get())
}

impl Client {
    /// Builds the HTTP transport and the credential (which may read a
    /// token file or run a token command). Fails with "no endpoint" when
    /// neither the settings nor the credential can give one.
    pub fn new(settings: ConnectionSettings) -> Result<Client> {
        if settings.endpoint.is_none() && !settings.credential.yields_endpoint() {
            return Err(no_endpoint());
        }
        let transport = Arc::new(Client::transport_for(&settings)?);
        let credential = credential::build(&settings.credential, &transport)?;
        Ok(Client::with_credential(settings, transport, credential))
    }

    /// The transport the settings call for.
    pub fn transport_for(settings: &ConnectionSettings) -> Result<Transport> {
        let https = settings
            .endpoint
            .as_ref()
            .is_none_or(|e| e.value.is_https());
        Transport::new(&settings.tls, settings.timeout.value, https)
    }

    /// A client with a credential built elsewhere (a Keystone session, an
    /// AK/SK signer), sharing `transport` with it.
    pub fn with_credential(
        settings: ConnectionSettings,
        transport: Arc<Transport>,
        credential: Box<dyn Credential>,
    ) -> Client {
        Client {
            transport,
            credential,
            settings,
            retry: crate::settings::retry::RetryPolicy::default(),
        }
    }

    /// Sets `--retries` and `--retry-max-wait`.
    pub fn set_retry(&mut self, policy: crate::settings::retry::RetryPolicy) {
        self.retry = policy;
    }

    pub fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    pub fn credential(&self) -> &dyn Credential {
        self.credential.as_ref()
    }

    /// The image endpoint: configured, or from the credential's catalog.
    pub fn endpoint(&self) -> Result<Sourced<Endpoint>> {
        if let Some(e) = &self.settings.endpoint {
            return Ok(e.clone());
        }
        match self.credential.endpoint()? {
            Some(e) => Ok(Sourced {
                value: e,
                source: crate::settings::Source::Catalog,
            }),
            None => Err(no_endpoint()),
        }
    }

    /// `{endpoint}/v2/{segments...}`.
    pub fn url(&self, segments: &[&str]) -> Result<Url> {
        Ok(self.endpoint()?.value.url(segments))
    }

    /// A request with the headers every request carries; the credential's
    /// are added by [`Client::authorize`].
    pub fn request(&self, method: &str, url: Url) -> WireRequest {
        WireRequest::new(method, url)
            .header("Accept", "application/json")
            .header("User-Agent", USER_AGENT_VALUE)
    }

    /// `GET /v2/images/{id}`.
    pub fn get_image_request(&self, id: &str) -> Result<WireRequest> {
        Ok(self.request("GET", self.url(&["images", id])?))
    }

    /// `GET /v2/images?name=eq:NAME`, and with `os_hidden=true`, which
    /// Glance needs to list hidden images. Glance reads `in:a,b`, `eq:x`
    /// and other `op:` prefixes of a name as filter operators; behind
    /// `eq:` it takes the rest literally, so a name such as `in:web` is
    /// looked up as written.
    pub fn find_by_name_request(&self, name: &str, hidden: bool) -> Result<WireRequest> {
        let mut url = self.url(&["images"])?;
        url.query_pairs_mut()
            .append_pair("name", &format!("eq:{name}"));
        if hidden {
            url.query_pairs_mut().append_pair("os_hidden", "true");
        }
        Ok(self.request("GET", url))
    }

    /// The next page of an image list, from the `next` link of the last
    /// one (`/v2/images?name=...&marker=...`). Only the link's query is
    /// used, on this endpoint's `/v2/images`: a link to another host or
    /// path never gets the credential.
    pub fn next_page_request(&self, next: &str) -> Result<WireRequest> {
        let mut url = self.url(&["images"])?;
        let query = next.split_once('?').map(|(_, q)| q).unwrap_or("");
        let query = query.split('#').next().unwrap_or("");
        url.set_query((!query.is_empty()).then_some(query));
        Ok(self.request("GET", url))
    }

    /// `PATCH /v2/images/{id}` with a body in `content_type`.
    pub fn patch_request(
        &self,
        id: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<WireRequest> {
        Ok(self
            .request("PATCH", self.url(&["images", id])?)
            .with_body(content_type, body))
    }

    /// The one place a credential is applied: to the fully built request.
    pub fn authorize(&self, request: &WireRequest) -> Result<WireRequest> {
        let mut request = request.clone();
        self.credential.apply(&mut request)?;
        Ok(request)
    }

    /// The request as it would be sent, credentials redacted (`--dry-run`).
    pub fn render(&self, request: &WireRequest) -> Result<String> {
        Ok(self.authorize(request)?.render())
    }

    /// The same as one JSON object (`--dry-run -o json`).
    pub fn render_json(&self, request: &WireRequest) -> Result<serde_json::Value> {
        Ok(self.authorize(request)?.to_json())
    }

    /// Sends `request`; a 2xx answer is returned, any other is an error
    /// that keeps the answer. A transient failure is retried as the
    /// [`crate::settings::retry::RetryPolicy`] decides (never a request that is not safe to
    /// repeat once it may have reached the server); the final error says
    /// how many attempts were made. After a 401, a credential that can renew
    /// itself does, and the request is sent once more.
    pub fn send(&self, request: &WireRequest) -> Result<WireResponse> {
        let safety = retry::safety_of_request(request);
        let mut attempt = 1;
        loop {
            let err = match self.send_once(request) {
                Ok(response) => return Ok(response),
                Err(err) => err,
            };
            let Some(failure) = retry::failure_of(&err, std::time::SystemTime::now()) else {
                return Err(err);
            };
            match self
                .retry
                .decide(failure, safety, attempt, &mut retry::RandomJitter)
            {
                retry::Decision::Retry { wait, reason } => {
                    log::info!("{} {}: {reason}", request.method, request.url);
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                retry::Decision::GiveUp(give_up) => {
                    return Err(match give_up.note() {
                        Some(note) => {
                            let mut err = err;
                            err.message.push_str(&format!(" ({note})"));
                            err
                        }
                        None => err,
                    });
                }
            }
        }
    }

    /// One attempt: the exchange, and once more after a renewal on 401.
    fn send_once(&self, request: &WireRequest) -> Result<WireResponse> {
        let target = match self.endpoint() {
            Ok(e) => format!("'{}' ({})", e.value, e.source),
            Err(_) => format!("'{}'", request.url),
        };
        EXCHANGES.with(|c| c.set(c.get().saturating_add(1)));
        let mut response = self
            .transport
            .exchange(&self.authorize(request)?, &target)?;
        if response.status == 401 && self.credential.renew()? {
            log::info!("renewed the credential after 401; sending again");
            EXCHANGES.with(|c| c.set(c.get().saturating_add(1)));
            response = self
                .transport
                .exchange(&self.authorize(request)?, &target)?;
        }
        if response.is_success() {
            return Ok(response);
        }
        Err(self.status_error(request, response))
    }

    /// Sends `request` and reads a 2xx answer as a JSON value.
    pub fn send_json(&self, request: &WireRequest) -> Result<(Value, WireResponse)> {
        let response = self.send(request)?;
        let value = serde_json::from_slice(&response.body).map_err(|e| {
            let content_type = sanitize::escape(response.header("content-type").unwrap_or(""))
                .into_owned();
            let hint = match self.endpoint() {
                Ok(e) => format!("check that the endpoint '{}' ({}) is the image service", e.value, e.source),
                Err(_) => "check that the endpoint is the image service".into(),
            };
            Error::runtime(format!(
                "{} {} answered {} with a body that is not JSON ({e}; content type '{content_type}')",
                request.method,
                request.url,
                status_line(response.status),
            ))
            .hint(hint)
        })?;
        Ok((value, response))
    }

    fn status_error(&self, request: &WireRequest, response: WireResponse) -> Error {
        let status = response.status;
        let what = format!("{} {}", request.method, request.url);
        let id = response
            .request_id()
            .map(|id| format!(" [{}]", sanitize::escape(id)))
            .unwrap_or_default();
        let endpoint = self.endpoint().ok();
        let endpoint_text = endpoint
            .as_ref()
            .map(|e| format!("'{}' ({})", e.value, e.source))
            .unwrap_or_else(|| "the endpoint".into());
        let err = if (300..400).contains(&status) {
            let to = response
                .header("location")
                .map(|l| format!(" to '{}'", sanitize::escape(l)))
                .unwrap_or_default();
            let err = Error::new(
                Kind::Config,
                format!("{what} was redirected{to} ({}){id}", status_line(status)),
            );
            if status == 300 {
                err.hint(format!(
                    "the endpoint {endpoint_text} answered with a list of API versions; it should be the image service root, such as https://ims.eu-de.otc.t-systems.com"
                ))
            } else {
                err.hint("redirects are not followed, so the token is never sent to another address; set the endpoint to the final URL")
            }
        } else {
            let content_type = response.header("content-type").unwrap_or("");
            let body = String::from_utf8_lossy(&response.body);
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            // Server text: escaped before it can reach a terminal.
            let message =
                sanitize::escape(&message::server_message(content_type, &body, code)).into_owned();
            // Glance's answer for a path it has no route for, as opposed to
            // "No image found with ID ...": the endpoint is wrong, and a
            // script must not read this as "the image is gone".
            let wrong_path = status == 404 && message.starts_with(message::NO_ROUTE);
            let kind = if wrong_path {
                Kind::Config
            } else {
                Kind::from_status(status)
            };
            let text = if message.is_empty() {
                format!("{what} failed: {}{id}", status_line(status))
            } else {
                format!("{what} failed: {}: {message}{id}", status_line(status))
            };
            let err = Error::new(kind, text);
            match status {
                401 => err.hint(self.credential.refusal_hint(&response).unwrap_or_else(|| {
                    format!(
                        "the token ({}) is missing, invalid or expired; get a new one",
                        self.credential.source()
                    )
                })),
                403 if message.contains("queued image") => err.hint(
                    "disk_format and container_format can only change while the image is queued, before its data is uploaded",
                ),
                403 if message.contains("read-only") || message.contains("reserved") => {
                    err.hint("this attribute is managed by the image service and cannot be changed")
                }
                403 => err.hint("your role may not allow this change, or the image belongs to another project"),
                404 if wrong_path => err.hint(format!(
                    "the endpoint {endpoint_text} has no such path, so it is not the image service root; it should look like https://ims.eu-de.otc.t-systems.com (with at most /v2 behind it, not /v2/images)"
                )),
                404 => err.hint(format!(
                    "check the image ID and that the endpoint '{}' is the right region and project",
                    endpoint.as_ref().map(|e| e.value.to_string()).unwrap_or_default()
                )),
                413 => err.hint("an image may have at most 128 custom attributes and 128 tags by default"),
                500..=599 => err.hint("the image service failed; try again later, and quote the request id if it persists"),
                _ => err,
            }
        };
        err.with_wire(WireFailure {
            reach: Reach::Reached,
            response: Some(response),
            timed_out: false,
            cause: None,
        })
    }
}

/// `200 OK`, or the bare code when it has no reason phrase.
pub fn status_line(status: u16) -> String {
    match StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

#[cfg(test)]
mod tests;

//! The HTTP client for one image service: builds each request as a
//! [`WireRequest`], applies the credential in one place
//! ([`Client::authorize`]), sends it without following redirects within one
//! deadline for the whole exchange, reads at most [`MAX_BODY`] bytes of the
//! answer, and turns a failure into an error that says how far the request
//! got. `Client` is `Send + Sync`: one client serves several threads.

pub mod credential;
pub mod message;

use std::io::Read;
use std::time::Instant;

use reqwest::blocking::Client as Http;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

pub use credential::Credential;

use crate::endpoint::Endpoint;
use crate::error::{Error, Kind, Result, WireFailure};
use crate::settings::{no_endpoint, ConnectionSettings, Sourced};
use crate::wire::{Reach, WireRequest, WireResponse};

pub const USER_AGENT_VALUE: &str = concat!("ims-patch/", env!("CARGO_PKG_VERSION"));

/// The most bytes read of any answer, success or error: far above any real
/// image (Glance caps an image at 128 properties and 128 tags).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// A client for one image service.
pub struct Client {
    http: Http,
    credential: Box<dyn Credential>,
    settings: ConnectionSettings,
    max_body: usize,
}

impl Client {
    /// Builds the HTTP client and the credential (which may read a token
    /// file or run a token command). Fails with "no endpoint" when neither
    /// the settings nor the credential can give one.
    pub fn new(settings: ConnectionSettings) -> Result<Client> {
        if settings.endpoint.is_none() && !settings.credential.yields_endpoint() {
            return Err(no_endpoint());
        }
        let credential = credential::build(&settings.credential, settings.timeout.value)?;
        Client::with_credential(settings, credential)
    }

    /// A client with a credential built elsewhere (a Keystone session, an
    /// AK/SK signer).
    pub fn with_credential(
        settings: ConnectionSettings,
        credential: Box<dyn Credential>,
    ) -> Result<Client> {
        let timeout = settings.timeout.value;
        let https = settings
            .endpoint
            .as_ref()
            .is_none_or(|e| e.value.is_https());
        let mut builder = Http::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            // Loading the system's root certificates costs time that a plain
            // http endpoint (the sandbox) does not need.
            .tls_built_in_root_certs(https);
        if let Some(cacert) = &settings.tls.cacert {
            for cert in read_certificates(cacert)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(source) = &settings.tls.insecure {
            log::warn!("TLS certificates are not verified (insecure {source}); the token can be intercepted");
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| Error::runtime(format!("cannot set up the HTTP client: {}", chain(&e))))?;
        Ok(Client {
            http,
            credential,
            settings,
            max_body: MAX_BODY,
        })
    }

    /// Caps what is read of each answer (tests; the default is [`MAX_BODY`]).
    pub fn set_max_body(&mut self, bytes: usize) {
        self.max_body = bytes;
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
                source: crate::settings::Source::Default,
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

    /// `GET /v2/images?name=NAME`, and with `os_hidden=true`, which Glance
    /// needs to list hidden images.
    pub fn find_by_name_request(&self, name: &str, hidden: bool) -> Result<WireRequest> {
        let mut url = self.url(&["images"])?;
        url.query_pairs_mut().append_pair("name", name);
        if hidden {
            url.query_pairs_mut().append_pair("os_hidden", "true");
        }
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

    /// Sends `request`; a 2xx answer is returned, any other is an error
    /// that keeps the answer. After a 401, a credential that can renew
    /// itself does, and the request is sent once more.
    pub fn send(&self, request: &WireRequest) -> Result<WireResponse> {
        let mut response = self.exchange(&self.authorize(request)?)?;
        if response.status == 401 && self.credential.renew()? {
            log::info!("renewed the credential after 401; sending again");
            response = self.exchange(&self.authorize(request)?)?;
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
            let content_type = response.header("content-type").unwrap_or("").to_string();
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

    /// One exchange as it is: any status is an answer. Errors are failures
    /// to send or to read, and say how far the request got.
    pub fn exchange(&self, request: &WireRequest) -> Result<WireResponse> {
        let size = request
            .body
            .as_ref()
            .map(|b| format!(" ({} bytes)", b.len()))
            .unwrap_or_default();
        log::info!("> {} {}{size}", request.method, request.url);
        let timeout = self.settings.timeout.value;
        let started = Instant::now();
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| Error::usage(format!("'{}' is not an HTTP method", request.method)))?;
        let mut builder = self
            .http
            .request(method, request.url.clone())
            // A deadline for the whole exchange, body included.
            .timeout(timeout);
        for h in &request.headers {
            let name = HeaderName::from_bytes(h.name.as_bytes());
            let value = HeaderValue::from_str(&h.value);
            let (Ok(name), Ok(mut value)) = (name, value) else {
                return Err(Error::runtime(format!(
                    "the header '{}: {}' cannot be sent",
                    h.name,
                    h.display_value()
                )));
            };
            value.set_sensitive(h.shown.is_some());
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut response = builder
            .send()
            .map_err(|e| self.transport_error(request, e, started))?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let answered = WireResponse {
            status,
            headers,
            body: Vec::new(),
        };
        let id = answered
            .request_id()
            .map(|id| format!(", {id}"))
            .unwrap_or_default();
        log::info!(
            "< {} ({} ms{id})",
            status_line(status),
            started.elapsed().as_millis()
        );
        let too_large = |got: String| {
            Error::runtime(format!(
                "the answer to {} {} is larger than {} MiB ({got}); not read",
                request.method,
                request.url,
                self.max_body / (1024 * 1024)
            ))
            .hint("this is no image the image service would send; check the endpoint")
            .with_wire(WireFailure {
                reach: Reach::Reached,
                response: Some(answered.clone()),
                timed_out: false,
                cause: None,
            })
        };
        if let Some(length) = response.content_length() {
            if length > self.max_body as u64 {
                return Err(too_large(format!("Content-Length {length}")));
            }
        }
        // Sized up front: each read is a round trip to reqwest's runtime.
        let expected = response.content_length().unwrap_or(0) as usize;
        let mut body = Vec::with_capacity(expected.clamp(8 * 1024, self.max_body + 1));
        let read = (&mut response)
            .take(self.max_body as u64 + 1)
            .read_to_end(&mut body);
        if let Err(e) = read {
            return Err(self.read_error(request, e, started, answered));
        }
        if body.len() > self.max_body {
            return Err(too_large("and more".into()));
        }
        Ok(WireResponse { body, ..answered })
    }

    fn status_error(&self, request: &WireRequest, response: WireResponse) -> Error {
        let status = response.status;
        let what = format!("{} {}", request.method, request.url);
        let id = response
            .request_id()
            .map(|id| format!(" [{id}]"))
            .unwrap_or_default();
        let endpoint = self.endpoint().ok();
        let endpoint_text = endpoint
            .as_ref()
            .map(|e| format!("'{}' ({})", e.value, e.source))
            .unwrap_or_else(|| "the endpoint".into());
        let err = if (300..400).contains(&status) {
            let to = response
                .header("location")
                .map(|l| format!(" to '{l}'"))
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
            let message = message::server_message(content_type, &body, code);
            let kind = Kind::from_status(status);
            let text = if message.is_empty() {
                format!("{what} failed: {}{id}", status_line(status))
            } else {
                format!("{what} failed: {}: {message}{id}", status_line(status))
            };
            let err = Error::new(kind, text);
            match status {
                401 => err.hint(format!(
                    "the token ({}) is missing, invalid or expired; get a new one",
                    self.credential.source()
                )),
                403 if message.contains("queued image") => err.hint(
                    "disk_format and container_format can only change while the image is queued, before its data is uploaded",
                ),
                403 if message.contains("read-only") || message.contains("reserved") => {
                    err.hint("this attribute is managed by the image service and cannot be changed")
                }
                403 => err.hint("your role may not allow this change, or the image belongs to another project"),
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

    /// A failure while reading an answer's body: the server answered, so
    /// the request reached it.
    fn read_error(
        &self,
        request: &WireRequest,
        e: std::io::Error,
        started: Instant,
        answered: WireResponse,
    ) -> Error {
        let timed_out = is_timeout(&e) || started.elapsed() >= self.settings.timeout.value;
        let err = if timed_out {
            Error::runtime(format!(
                "reading the answer to {} {} timed out after {} s",
                request.method,
                request.url,
                self.settings.timeout.value.as_secs_f64()
            ))
            .hint("the service is slow or the answer does not end; raise --timeout or try again")
        } else {
            Error::runtime(format!(
                "reading the answer to {} {} failed: {}",
                request.method,
                request.url,
                chain(&e)
            ))
            .hint("the connection broke; try again")
        };
        err.with_wire(WireFailure {
            reach: Reach::Reached,
            response: Some(answered),
            timed_out,
            cause: Some(Box::new(e)),
        })
    }

    /// A failure before any answer: "cannot reach" only when nothing was
    /// sent; once the request may have reached the server, its outcome is
    /// unknown.
    fn transport_error(&self, request: &WireRequest, e: reqwest::Error, started: Instant) -> Error {
        let detail = chain(&e);
        let timed_out = e.is_timeout() || started.elapsed() >= self.settings.timeout.value;
        let reach = if e.is_connect() {
            Reach::NotSent
        } else {
            Reach::MaybeReached
        };
        let what = format!("{} {}", request.method, request.url);
        let seconds = self.settings.timeout.value.as_secs_f64();
        let mut err = match (reach, timed_out) {
            (Reach::NotSent, false) => {
                let endpoint = self
                    .endpoint()
                    .map(|e| format!("'{}' ({})", e.value, e.source))
                    .unwrap_or_else(|_| format!("'{}'", request.url));
                let err = Error::runtime(format!("cannot reach {endpoint}: {detail}"));
                if detail.contains("certificate") || detail.contains("Certificate") {
                    err.hint("the server's TLS certificate is not trusted; pass its CA with --cacert PEM")
                } else {
                    err.hint("check the endpoint and that the image service is up and reachable from here")
                }
            }
            (Reach::NotSent, true) => Error::runtime(format!(
                "{what} timed out after {seconds} s while connecting; nothing was sent"
            ))
            .hint("the service is slow or unreachable; raise --timeout or try again"),
            (_, true) => Error::runtime(format!("{what} timed out after {seconds} s"))
                .hint("the service is slow or unreachable; raise --timeout or try again"),
            (_, false) => Error::runtime(format!(
                "{what} failed after the request was sent: {detail}"
            )),
        };
        if reach != Reach::NotSent && !request.is_read() {
            let id = request
                .url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .unwrap_or("IMAGE");
            err.message
                .push_str("; the server may have applied it, so the outcome is unknown");
            err = err.hint(format!(
                "check whether the change was made: ims-patch show {id}"
            ));
        }
        err.with_wire(WireFailure {
            reach,
            response: None,
            timed_out,
            cause: Some(Box::new(e)),
        })
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return true;
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|e| e as _);
    while let Some(err) = current {
        if let Some(r) = err.downcast_ref::<reqwest::Error>() {
            if r.is_timeout() {
                return true;
            }
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        current = err.source();
    }
    false
}

fn read_certificates(cacert: &Sourced<std::path::PathBuf>) -> Result<Vec<reqwest::Certificate>> {
    let path = &cacert.value;
    let bytes = std::fs::read(path).map_err(|e| {
        Error::config(format!(
            "cannot read CA file '{}' ({}): {e}",
            path.display(),
            cacert.source
        ))
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&bytes).unwrap_or_default();
    if certs.is_empty() {
        return Err(Error::config(format!(
            "CA file '{}' ({}) holds no PEM certificate",
            path.display(),
            cacert.source
        )));
    }
    Ok(certs)
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

/// The error chain of `e` as one line, outermost first, without repeats.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = current {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    // reqwest's outermost message repeats the URL, which the caller shows.
    if parts.len() > 1 {
        parts.remove(0);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests;

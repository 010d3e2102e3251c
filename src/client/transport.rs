//! One HTTP exchange, with no credential: a [`WireRequest`] in, the
//! [`WireResponse`] out, within one deadline for the whole exchange (body
//! included) and at most `max_body` bytes read. Shared (in an `Arc`) by the
//! image client and by credentials that make requests of their own (a
//! Keystone login). Errors say how far the request got.

use std::io::Read;
use std::time::{Duration, Instant};

use reqwest::blocking::Client as Http;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;

use super::{status_line, MAX_BODY};
use crate::error::{Error, Result, WireFailure};
use crate::settings::{Sourced, Tls};
use crate::wire::{Reach, WireRequest, WireResponse};

/// How long an idle kept-alive connection stays in the pool: below the
/// idle timeouts of common servers (uWSGI 4 s, Apache 5 s), so that a
/// connection the server closed silently is not reused.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// The HTTP machinery: TLS settings, the deadline, the size cap.
pub struct Transport {
    http: Http,
    timeout: Duration,
    max_body: usize,
    /// The --cacert file and its source, for the hint of a TLS failure.
    cacert: Option<String>,
}

impl Transport {
    /// `https` loads the system's root certificates (a plain-http endpoint,
    /// such as the sandbox, does not need them).
    pub fn new(tls: &Tls, timeout: Duration, https: bool) -> Result<Transport> {
        let mut builder = Http::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            // Some servers close idle keep-alive connections without a
            // word (uWSGI's http-socket, after its socket-timeout, 4 s by
            // default). A request written into such a connection meets a
            // close before any answer, which a remove must not repeat; so
            // a pooled connection is dropped well before that.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tls_built_in_root_certs(https);
        if let Some(source) = &tls.insecure {
            log::warn!("TLS certificates are not verified (insecure {source}); the token can be intercepted");
            builder = builder.danger_accept_invalid_certs(true);
        } else if let Some(cacert) = &tls.cacert {
            let config = super::tls::config_with_cacert(read_certificates(cacert)?, https)
                .map_err(|e| {
                    Error::config(format!(
                        "cannot use the CA file '{}' ({}): {e}",
                        cacert.value.display(),
                        cacert.source
                    ))
                })?;
            builder = builder.use_preconfigured_tls(config);
        }
        let http = builder
            .build()
            .map_err(|e| Error::runtime(format!("cannot set up the HTTP client: {}", chain(&e))))?;
        Ok(Transport {
            http,
            timeout,
            max_body: MAX_BODY,
            cacert: tls
                .cacert
                .as_ref()
                .map(|c| format!("'{}' ({})", c.value.display(), c.source)),
        })
    }

    /// Caps what is read of each answer (tests; the default is [`MAX_BODY`]).
    pub fn set_max_body(&mut self, bytes: usize) {
        self.max_body = bytes;
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// One exchange as it is: any status is an answer. Errors are failures
    /// to send or to read, and say how far the request got; `target` names
    /// the service for "cannot reach" ("'URL' (from --endpoint)").
    pub fn exchange(&self, request: &WireRequest, target: &str) -> Result<WireResponse> {
        let size = request
            .body
            .as_ref()
            .map(|b| format!(" ({} bytes)", b.len()))
            .unwrap_or_default();
        log::info!("> {} {}{size}", request.method, request.url);
        let timeout = self.timeout;
        let started = Instant::now();
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| Error::usage(format!("'{}' is not an HTTP method", request.method)))?;
        let mut builder = self
            .http
            .request(method, request.url.clone())
            // A deadline for the whole exchange, body included (reqwest's
            // total timeout; it costs two more wake-ups of its runtime,
            // about 0.2 ms a request on loopback).
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
            .map_err(|e| self.transport_error(request, e, started, target))?;
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
            .map(|id| format!(", {}", crate::sanitize::escape(id)))
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
        // With a Content-Length, exactly that many bytes: no last read that
        // waits for the end of the body (one more round trip).
        let limit = response
            .content_length()
            .unwrap_or(self.max_body as u64 + 1);
        let read = (&mut response).take(limit).read_to_end(&mut body);
        if let Err(e) = read {
            return Err(self.read_error(request, e, started, answered));
        }
        if body.len() > self.max_body {
            return Err(too_large("and more".into()));
        }
        Ok(WireResponse { body, ..answered })
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
        let timed_out = is_timeout(&e) || started.elapsed() >= self.timeout;
        let err = if timed_out {
            Error::runtime(format!(
                "reading the answer to {} {} timed out after {} s",
                request.method,
                request.url,
                self.timeout.as_secs_f64()
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
    fn transport_error(
        &self,
        request: &WireRequest,
        e: reqwest::Error,
        started: Instant,
        target: &str,
    ) -> Error {
        let detail = chain(&e);
        let timed_out = e.is_timeout() || started.elapsed() >= self.timeout;
        let reach = if e.is_connect() {
            Reach::NotSent
        } else {
            Reach::MaybeReached
        };
        let what = format!("{} {}", request.method, request.url);
        let seconds = self.timeout.as_secs_f64();
        let mut err = match (reach, timed_out) {
            (Reach::NotSent, false) => {
                let err = Error::runtime(format!("cannot reach {target}: {detail}"));
                let tls = detail.contains("certificate") || detail.contains("Certificate");
                if let (true, Some(cacert)) = (tls, &self.cacert) {
                    err.hint(format!(
                        "the server's TLS certificate is not trusted with the CA file {cacert}: it must hold the CA that issued the server's certificate, or that very certificate, and the certificate must name the endpoint's host and be within its dates"
                    ))
                } else if tls {
                    err.hint("the server's TLS certificate is not trusted; pass its CA with --cacert PEM")
                } else {
                    err.hint("check the URL and that the service is up and reachable from here")
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

fn read_certificates(
    cacert: &Sourced<std::path::PathBuf>,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let path = &cacert.value;
    let bytes = std::fs::read(path).map_err(|e| {
        Error::config(format!(
            "cannot read CA file '{}' ({}): {e}",
            path.display(),
            cacert.source
        ))
    })?;
    let certs = super::tls::pem_certificates(&bytes);
    if certs.is_empty() {
        return Err(Error::config(format!(
            "CA file '{}' ({}) holds no PEM certificate",
            path.display(),
            cacert.source
        )));
    }
    Ok(certs)
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

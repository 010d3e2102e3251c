//! The HTTP layer: builds each request once (so `--dry-run` shows exactly what
//! would be sent), sends it without following redirects, and turns error
//! answers into typed errors with the server's message cleaned up.

use std::io::Write;
use std::time::Instant;

use reqwest::blocking::Client as Http;
use reqwest::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::config::{Settings, Sourced};
use crate::error::{Error, Kind, Result};
use crate::patch::{self, Op, PatchFormat};

pub const USER_AGENT_VALUE: &str = concat!("ims-patch/", env!("CARGO_PKG_VERSION"));

/// One request, fully built but not yet sent.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub content_type: Option<&'static str>,
    pub body: Option<String>,
}

/// A header value, or the token, which only `send` ever puts in writing.
enum Header<'a> {
    Text(&'a str),
    Token,
}

impl Request {
    fn get(url: Url) -> Request {
        Request {
            method: Method::GET,
            url,
            content_type: None,
            body: None,
        }
    }

    /// Every header this request is sent with: the one list that both
    /// `send` and `render` use.
    fn headers(&self) -> Vec<(&'static str, Header<'_>)> {
        let mut headers = vec![("Accept", Header::Text("application/json"))];
        if let Some(ct) = self.content_type {
            headers.push(("Content-Type", Header::Text(ct)));
        }
        headers.push(("User-Agent", Header::Text(USER_AGENT_VALUE)));
        headers.push(("X-Auth-Token", Header::Token));
        headers
    }

    /// The request as text: method and URL, headers (token redacted), body.
    pub fn render(&self) -> String {
        let mut out = format!("{} {}\n", self.method, self.url);
        for (name, value) in self.headers() {
            let value = match value {
                Header::Text(text) => text,
                Header::Token => "<redacted>",
            };
            out.push_str(&format!("{name}: {value}\n"));
        }
        if let Some(body) = &self.body {
            let pretty = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| body.clone());
            out.push('\n');
            out.push_str(&pretty);
            out.push('\n');
        }
        out
    }
}

/// A client for one image service endpoint.
pub struct Client {
    http: Http,
    token: HeaderValue,
    settings: Settings,
}

impl Client {
    pub fn new(settings: &Settings) -> Result<Client> {
        let mut token = HeaderValue::from_str(settings.token.value.expose()).map_err(|_| {
            Error::config(format!(
                "the token ({}) contains characters that cannot go in an HTTP header",
                settings.token.source
            ))
        })?;
        token.set_sensitive(true);
        let mut builder = Http::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // Loading the system's root certificates costs time that a plain
            // http endpoint (the sandbox) does not need.
            .tls_built_in_root_certs(settings.endpoint.value.is_https());
        if let Some(cacert) = &settings.cacert {
            for cert in read_certificates(cacert)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(source) = &settings.insecure {
            eprintln!("ims-patch: warning: TLS certificates are not verified (insecure {source}); the token can be intercepted");
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| Error::runtime(format!("cannot set up the HTTP client: {}", chain(&e))))?;
        Ok(Client {
            http,
            token,
            settings: settings.clone(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn image_url(&self, id: &str) -> Url {
        self.settings.endpoint.value.url(&["images", id])
    }

    pub fn get_image_request(&self, id: &str) -> Request {
        Request::get(self.image_url(id))
    }

    /// `GET /v2/images?name=NAME`, and with `os_hidden=true`, which Glance
    /// needs to list hidden images.
    pub fn find_by_name_request(&self, name: &str, hidden: bool) -> Request {
        let mut url = self.settings.endpoint.value.url(&["images"]);
        url.query_pairs_mut().append_pair("name", name);
        if hidden {
            url.query_pairs_mut().append_pair("os_hidden", "true");
        }
        Request::get(url)
    }

    pub fn patch_request(&self, id: &str, ops: &[Op], format: PatchFormat) -> Request {
        Request {
            method: Method::PATCH,
            url: self.image_url(id),
            content_type: Some(format.content_type()),
            body: Some(patch::to_body(ops, format).to_string()),
        }
    }

    /// `GET /v2/images/{id}`.
    pub fn get_image(&self, id: &str) -> Result<Value> {
        self.send(&self.get_image_request(id))
    }

    /// Every image with exactly that name: the visible ones, or when there
    /// is none, the hidden ones (`os_hidden`), which Glance lists only when
    /// asked.
    pub fn find_by_name(&self, name: &str) -> Result<Vec<Value>> {
        let images = self.list(&self.find_by_name_request(name, false))?;
        if !images.is_empty() {
            return Ok(images);
        }
        self.list(&self.find_by_name_request(name, true))
    }

    fn list(&self, request: &Request) -> Result<Vec<Value>> {
        let list = self.send(request)?;
        match list.get("images") {
            Some(Value::Array(images)) => Ok(images.clone()),
            _ => Err(Error::runtime(format!(
                "GET {} answered without an \"images\" list",
                request.url
            ))),
        }
    }

    /// Sends `request` and returns the JSON object of a 2xx answer.
    pub fn send(&self, request: &Request) -> Result<Value> {
        let verbose = self.settings.verbose;
        if verbose {
            let size = request
                .body
                .as_ref()
                .map(|b| format!(" ({} bytes)", b.len()))
                .unwrap_or_default();
            eprintln!("> {} {}{size}", request.method, request.url);
        }
        let started = Instant::now();
        let mut builder = self
            .http
            .request(request.method.clone(), request.url.clone());
        for (name, value) in request.headers() {
            builder = match value {
                Header::Text(text) => builder.header(name, text),
                Header::Token => builder.header(name, self.token.clone()),
            };
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = builder
            .send()
            .map_err(|e| self.transport_error(request, &e))?;
        let status = response.status();
        let request_id = response
            .headers()
            .get("x-openstack-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if verbose {
            let id = request_id
                .as_deref()
                .map(|id| format!(", {id}"))
                .unwrap_or_default();
            let _ = writeln!(
                std::io::stderr(),
                "< {} ({} ms{id})",
                status_line(status),
                started.elapsed().as_millis()
            );
        }
        if status.is_success() {
            // Parsed straight from the socket: a large image is not also
            // held as text.
            let mut body = std::io::BufReader::new(response);
            return serde_json::from_reader(&mut body).map_err(|e| {
                if e.is_io() {
                    return self.read_error(request, &e);
                }
                Error::runtime(format!(
                    "{} {} answered {} with a body that is not JSON ({e}; content type '{content_type}')",
                    request.method,
                    request.url,
                    status_line(status),
                ))
                .hint(format!(
                    "check that the endpoint '{}' ({}) is the image service",
                    self.settings.endpoint.value, self.settings.endpoint.source
                ))
            });
        }
        let text = response
            .text()
            .map_err(|e| self.transport_error(request, &e))?;
        Err(self.status_error(
            request,
            status,
            &content_type,
            &text,
            request_id.as_deref(),
            location.as_deref(),
        ))
    }

    fn status_error(
        &self,
        request: &Request,
        status: StatusCode,
        content_type: &str,
        body: &str,
        request_id: Option<&str>,
        location: Option<&str>,
    ) -> Error {
        let what = format!("{} {}", request.method, request.url);
        let id = request_id.map(|id| format!(" [{id}]")).unwrap_or_default();
        if status.is_redirection() {
            let to = location.map(|l| format!(" to '{l}'")).unwrap_or_default();
            let err = Error::new(
                Kind::Config,
                format!("{what} was redirected{to} ({}){id}", status_line(status)),
            );
            return if status == StatusCode::MULTIPLE_CHOICES {
                err.hint(format!(
                    "the endpoint '{}' ({}) answered with a list of API versions; it should be the image service root, such as https://ims.eu-de.otc.t-systems.com",
                    self.settings.endpoint.value, self.settings.endpoint.source
                ))
            } else {
                err.hint("redirects are not followed, so the token is never sent to another address; set the endpoint to the final URL")
            };
        }
        let message = server_message(content_type, body, status);
        let kind = Kind::from_status(status.as_u16());
        let text = if message.is_empty() {
            format!("{what} failed: {}{id}", status_line(status))
        } else {
            format!("{what} failed: {}: {message}{id}", status_line(status))
        };
        let err = Error::new(kind, text);
        match status.as_u16() {
            401 => err.hint(format!(
                "the token ({}) is missing, invalid or expired; get a new one",
                self.settings.token.source
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
                self.settings.endpoint.value
            )),
            413 => err.hint("an image may have at most 128 custom attributes and 128 tags by default"),
            415 => err.hint(format!(
                "the server does not accept the {} patch format; try --patch-format {}",
                self.settings.patch_format.as_str(),
                match self.settings.patch_format {
                    PatchFormat::V21 => "v2.0",
                    PatchFormat::V20 => "v2.1",
                }
            )),
            500..=599 => err.hint("the image service failed; try again later, and quote the request id if it persists"),
            _ => err,
        }
    }

    /// A failure while reading an answer's body.
    fn read_error(&self, request: &Request, e: &dyn std::error::Error) -> Error {
        Error::runtime(format!(
            "reading the answer to {} {} failed: {}",
            request.method,
            request.url,
            chain(e)
        ))
        .hint("the connection broke or timed out; try again (raise --timeout for a slow service)")
    }

    fn transport_error(&self, request: &Request, e: &reqwest::Error) -> Error {
        let endpoint = &self.settings.endpoint;
        let detail = chain(e);
        if e.is_timeout() {
            return Error::runtime(format!(
                "{} {} timed out after {} s",
                request.method,
                request.url,
                self.settings.timeout.as_secs_f64()
            ))
            .hint("the service is slow or unreachable; raise --timeout or try again");
        }
        let err = Error::runtime(format!(
            "cannot reach '{}' ({}): {detail}",
            endpoint.value, endpoint.source
        ));
        if detail.contains("certificate") || detail.contains("Certificate") {
            err.hint("the server's TLS certificate is not trusted; pass its CA with --cacert PEM")
        } else {
            err.hint("check the endpoint and that the image service is up and reachable from here")
        }
    }
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

fn status_line(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
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

fn shorten(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(max).collect::<String>())
    }
}

/// The human part of an error body: Glance's JSON `message` without its
/// webob preamble and `<br />`, Keystone's and IMS's `error.message`, or the
/// text of a plain or HTML body.
pub fn server_message(content_type: &str, body: &str, status: StatusCode) -> String {
    if let Ok(json) = serde_json::from_str::<Value>(body) {
        let message = json
            .get("message")
            .or_else(|| json.get("error").and_then(|e| e.get("message")))
            .or_else(|| json.get("error_msg"))
            .or_else(|| {
                json.as_object()
                    .and_then(|o| o.values().next())
                    .and_then(|v| v.get("message"))
            })
            .and_then(Value::as_str);
        if let Some(message) = message {
            return clean(message);
        }
        return shorten(body, 300);
    }
    let text = if content_type.contains("html") {
        strip_tags(body)
    } else {
        body.to_string()
    };
    // Webob's plain bodies are "409 Conflict", the explanation, the detail,
    // as paragraphs: the last one says what was wrong.
    let last = text
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .last()
        .unwrap_or("");
    let code = status.as_u16().to_string();
    let mut text = last.split_whitespace().collect::<Vec<_>>().join(" ");
    // Drop the "409 Conflict" title that webob puts before the detail.
    if text.starts_with(&code) {
        text = text
            .trim_start_matches(&status_line(status))
            .trim_start_matches(&code)
            .trim()
            .to_string();
    }
    shorten(&text, 300)
}

/// Webob writes `explanation<br /><br />detail`: the last non-empty part is
/// the one that says what was wrong; of that, its first paragraph (Glance
/// follows a schema error with a multi-line dump of the schema).
fn clean(message: &str) -> String {
    let part = message
        .split("<br /><br />")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .last()
        .unwrap_or("");
    let paragraph = part.split("\n\n").next().unwrap_or(part);
    paragraph
        .replace("<br />", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn strip_tags(html: &str) -> String {
    let body = html.split("<body>").nth(1).unwrap_or(html);
    let mut out = String::with_capacity(body.len());
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glance_json_message_is_cleaned() {
        let body = r#"{"message": "There was a conflict when trying to complete your request.<br /><br />\nProperty nope does not exist.\n\n", "code": "409 Conflict", "title": "Conflict"}"#;
        assert_eq!(
            server_message("application/json", body, StatusCode::CONFLICT),
            "Property nope does not exist."
        );
    }

    #[test]
    fn glance_schema_errors_keep_their_first_paragraph() {
        let body = r#"{"message": "Provided object does not match schema 'image': 'abc' is not of type 'integer'\n\nFailed validating 'type' in schema['properties']['min_ram']:\n    {'type': 'integer'}\n\nOn instance['min_ram']:\n    'abc'<br /><br />\n\n\n", "code": "400 Bad Request", "title": "Bad Request"}"#;
        assert_eq!(
            server_message("application/json", body, StatusCode::BAD_REQUEST),
            "Provided object does not match schema 'image': 'abc' is not of type 'integer'"
        );
    }

    #[test]
    fn plain_html_keystone_and_ims_bodies() {
        assert_eq!(
            server_message(
                "text/plain; charset=UTF-8",
                "409 Conflict\n\nProperty missing does not exist.\n\n",
                StatusCode::CONFLICT
            ),
            "Property missing does not exist."
        );
        assert_eq!(
            server_message(
                "text/plain; charset=UTF-8",
                "409 Conflict\n\nThere was a conflict when trying to complete your request.\n\n Property missing does not exist.  ",
                StatusCode::CONFLICT
            ),
            "Property missing does not exist."
        );
        assert_eq!(
            server_message("text/plain", "oops", StatusCode::INTERNAL_SERVER_ERROR),
            "oops"
        );
        let html = "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  No image found with ID x<br /><br />\n\n\n\n </body>\n</html>";
        assert_eq!(
            server_message("text/html", html, StatusCode::NOT_FOUND),
            "No image found with ID x"
        );
        let keystone = r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#;
        assert_eq!(
            server_message("application/json", keystone, StatusCode::UNAUTHORIZED),
            "The request you have made requires authentication."
        );
        let ims = r#"{"error": {"code": "IMG.0001", "message": "The image does not exist."}}"#;
        assert_eq!(
            server_message("application/json", ims, StatusCode::NOT_FOUND),
            "The image does not exist."
        );
    }

    #[test]
    fn rendered_request_redacts_the_token() {
        let r = Request {
            method: Method::PATCH,
            url: Url::parse("https://ims.example/v2/images/x").unwrap(),
            content_type: Some(PatchFormat::V21.content_type()),
            body: Some(r#"[{"op":"replace","path":"/name","value":"n"}]"#.into()),
        };
        let text = r.render();
        assert!(text.starts_with("PATCH https://ims.example/v2/images/x\n"));
        assert!(text.contains("X-Auth-Token: <redacted>\n"));
        assert!(text.contains("Content-Type: application/openstack-images-v2.1-json-patch\n"));
        assert!(text.contains("\"op\": \"replace\""));
    }
}

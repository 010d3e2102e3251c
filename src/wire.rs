//! What goes on the wire and comes back: the request as built (method, URL,
//! headers, body bytes), its rendering for `--dry-run` and `-v` with
//! credentials redacted, the response as received (status, headers, the
//! server's exact body bytes), and what a failure knows about whether the
//! request reached the server and when to try again.

use std::fmt;
use std::time::{Duration, SystemTime};

use url::Url;

/// One header of a request. `shown` is what rendering prints instead of
/// `value` (a credential's header carries its redacted form there).
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
    pub shown: Option<String>,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
            shown: None,
        }
    }

    /// A header whose value is secret: rendered as `shown`.
    pub fn sensitive(
        name: impl Into<String>,
        value: impl Into<String>,
        shown: impl Into<String>,
    ) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
            shown: Some(shown.into()),
        }
    }

    /// The value as rendering shows it.
    pub fn display_value(&self) -> &str {
        self.shown.as_deref().unwrap_or(&self.value)
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.display_value())
    }
}

/// One request exactly as it goes on the wire, once a credential has been
/// applied (see `client::Credential`). Nothing else adds headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRequest {
    pub method: String,
    pub url: Url,
    pub headers: Vec<Header>,
    pub body: Option<Vec<u8>>,
}

impl WireRequest {
    pub fn new(method: &str, url: Url) -> WireRequest {
        WireRequest {
            method: method.to_string(),
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> WireRequest {
        self.headers.push(Header::new(name, value));
        self
    }

    pub fn with_body(mut self, content_type: &str, body: Vec<u8>) -> WireRequest {
        self.headers.push(Header::new("Content-Type", content_type));
        self.body = Some(body);
        self
    }

    /// The first header of that name (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Whether sending this twice leaves the same state as sending it once,
    /// as far as the method tells (a PATCH decides by its ops: the caller).
    pub fn is_read(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD")
    }

    /// The request as text: method and URL, headers (credentials redacted),
    /// then the body, pretty-printed when it is JSON.
    pub fn render(&self) -> String {
        let mut out = format!("{} {}\n", self.method, self.url);
        for h in &self.headers {
            out.push_str(&format!("{}: {}\n", h.name, h.display_value()));
        }
        if let Some(body) = &self.body {
            let pretty = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
            out.push('\n');
            out.push_str(&pretty);
            out.push('\n');
        }
        out
    }

    /// The request as one JSON object (`--dry-run -o json`): `method`,
    /// `url`, `headers` (name to value, credentials redacted) and `body`
    /// (the JSON it holds, else its text; null when none).
    pub fn to_json(&self) -> serde_json::Value {
        let headers: serde_json::Map<String, serde_json::Value> = self
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.display_value().into()))
            .collect();
        let body = self.body.as_ref().map(|body| {
            serde_json::from_slice::<serde_json::Value>(body)
                .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned().into())
        });
        serde_json::json!({
            "method": self.method,
            "url": self.url.as_str(),
            "headers": headers,
            "body": body,
        })
    }
}

/// A response as received: status, headers, and the body bytes exactly as
/// the server sent them (read whole, within the size cap and deadline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WireResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Retry-After`, when the server sent one that can be read.
    pub fn retry_after(&self) -> Option<RetryAfter> {
        self.header("retry-after").and_then(RetryAfter::parse)
    }

    pub fn request_id(&self) -> Option<&str> {
        self.header("x-openstack-request-id")
    }
}

/// How far a request got before it failed. Retries and error messages
/// depend on it: only `NotSent` means the server certainly did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Nothing was sent (connection refused, DNS, TLS handshake, a
    /// credential that could not be applied).
    NotSent,
    /// The request was (perhaps partly) written but no answer came: the
    /// server may have applied it.
    MaybeReached,
    /// The server answered (its status line at least was read).
    Reached,
}

/// A `Retry-After` value: seconds, or an HTTP date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Seconds(u64),
    Date(SystemTime),
}

impl RetryAfter {
    pub fn parse(text: &str) -> Option<RetryAfter> {
        let text = text.trim();
        if let Ok(seconds) = text.parse::<u64>() {
            return Some(RetryAfter::Seconds(seconds));
        }
        httpdate::parse_http_date(text).ok().map(RetryAfter::Date)
    }

    /// How long to wait from `now`; a date in the past is no wait.
    pub fn wait_from(&self, now: SystemTime) -> Duration {
        match self {
            RetryAfter::Seconds(s) => Duration::from_secs(*s),
            RetryAfter::Date(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_redacts_sensitive_headers() {
        let mut r = WireRequest::new(
            "PATCH",
            Url::parse("https://ims.example/v2/images/x").unwrap(),
        )
        .header("Accept", "application/json")
        .with_body(
            "application/openstack-images-v2.1-json-patch",
            br#"[{"op":"replace","path":"/name","value":"n"}]"#.to_vec(),
        );
        r.headers
            .push(Header::sensitive("X-Auth-Token", "s3cret", "<redacted>"));
        let text = r.render();
        assert!(text.starts_with("PATCH https://ims.example/v2/images/x\n"));
        assert!(text.contains("X-Auth-Token: <redacted>\n"));
        let json = r.to_json();
        assert_eq!(json["headers"]["X-Auth-Token"], "<redacted>");
        assert_eq!(json["method"], "PATCH");
        assert!(!json.to_string().contains("s3cret"));
        assert!(!text.contains("s3cret"));
        assert!(!format!("{r:?}").contains("s3cret"));
        assert!(text.contains("\"op\": \"replace\""));
        assert_eq!(r.get("x-auth-token"), Some("s3cret"));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(RetryAfter::parse(" 7 "), Some(RetryAfter::Seconds(7)));
        let date = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let at = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:07 GMT").unwrap();
        assert_eq!(date.wait_from(at), Duration::from_secs(30));
        assert_eq!(date.wait_from(at + Duration::from_secs(60)), Duration::ZERO);
        assert_eq!(RetryAfter::parse("soon"), None);
        assert_eq!(RetryAfter::parse("-1"), None);
    }

    #[test]
    fn response_headers_are_case_insensitive() {
        let r = WireResponse {
            status: 503,
            headers: vec![("Retry-After".into(), "2".into())],
            body: Vec::new(),
        };
        assert_eq!(r.retry_after(), Some(RetryAfter::Seconds(2)));
        assert!(!r.is_success());
    }
}

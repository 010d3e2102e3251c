//! Socket-free request/response types and the webob-style error responses (JSON / plain text / HTML chosen by `Accept`, exactly as Glance renders them).

use serde_json::{json, Value};

use super::pyfmt;

/// One HTTP request, as the pure handler sees it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Method as sent (`GET`, `PATCH`, ...).
    pub method: String,
    /// Request target as sent (raw, still percent-encoded), including any query.
    pub url: String,
    /// Headers in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was longer than the server reads (`body` holds its start).
    pub body_too_large: bool,
}

impl Request {
    #[cfg(test)]
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_string(),
            url: url.to_string(),
            ..Request::default()
        }
    }

    #[cfg(test)]
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    #[cfg(test)]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// First value of a header (names compared case-insensitively).
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The raw path (before `?`).
    pub fn raw_path(&self) -> &str {
        self.url
            .split_once('?')
            .map_or(self.url.as_str(), |(p, _)| p)
    }

    /// The raw query string (after `?`), if any.
    pub fn raw_query(&self) -> Option<&str> {
        self.url.split_once('?').map(|(_, q)| q)
    }

    /// Whether webob would consider the request to carry a body.
    pub fn has_body(&self) -> bool {
        !self.body.is_empty() || self.get_header("Transfer-Encoding").is_some()
    }
}

/// One HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON body serialised the way Glance does (`json.dumps`, keys in
    /// insertion order, `ensure_ascii=False` for image documents).
    pub fn json(status: u16, body: &Value, ensure_ascii: bool) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: pyfmt::dumps(body, ensure_ascii).into_bytes(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    #[cfg(test)]
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[cfg(test)]
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[cfg(test)]
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Status line text (`409 Conflict`) as webob spells it.
pub fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        300 => "Multiple Choices",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Request Range Not Satisfiable",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        _ => "Error",
    }
}

/// webob's default `explanation` for each error class.
fn default_explanation(status: u16) -> &'static str {
    match status {
        400 => "The server could not comply with the request since\r\nit is either malformed or otherwise incorrect.\r\n",
        401 => "This server could not verify that you are authorized to\r\naccess the document you requested.  Either you supplied the\r\nwrong credentials (e.g., bad password), or your browser\r\ndoes not understand how to supply the credentials required.\r\n",
        403 => "Access was denied to this resource.",
        404 => "The resource could not be found.",
        409 => "There was a conflict when trying to complete your request.",
        413 => "The body of your request was too large for this server.",
        500 => "The server has either erred or is incapable of performing\r\nthe requested operation.\r\n",
        _ => "",
    }
}

/// An error response in the making: a webob `HTTPException`.
///
/// Glance raises these two ways, and the body differs:
/// * `HTTPConflict(msg)`: `msg` is the *detail*, shown after webob's
///   per-status explanation ("There was a conflict when trying to complete
///   your request.<br /><br />\nProperty x does not exist.\n\n");
/// * `HTTPBadRequest(explanation=msg)`: `msg` replaces the explanation and
///   the detail is empty ("Malformed JSON in request body.<br /><br />\n\n\n").
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub explanation: Option<String>,
    pub detail: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl ApiError {
    /// `webob.exc.HTTPxxx(explanation=msg)`.
    pub fn explained(status: u16, msg: impl Into<String>) -> ApiError {
        ApiError {
            status,
            explanation: Some(msg.into()),
            detail: None,
            headers: Vec::new(),
        }
    }

    /// `webob.exc.HTTPxxx(msg)` (the message is the detail).
    pub fn detailed(status: u16, msg: impl Into<String>) -> ApiError {
        ApiError {
            status,
            explanation: None,
            detail: Some(msg.into()),
            headers: Vec::new(),
        }
    }

    /// `webob.exc.HTTPxxx()` with neither.
    pub fn bare(status: u16) -> ApiError {
        ApiError {
            status,
            explanation: None,
            detail: None,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> ApiError {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The text an error carries, without webob's framing (what a user
    /// would call "the message").
    pub fn text(&self) -> String {
        match (&self.detail, &self.explanation) {
            (Some(d), _) => d.clone(),
            (None, Some(e)) => e.clone(),
            (None, None) => default_explanation(self.status).to_string(),
        }
    }

    /// webob `_make_body`: the body template filled in, with `escape`
    /// applied to every substituted value.
    fn make_body(&self, req: &Request, escape: fn(&str) -> String) -> String {
        let detail = escape(self.detail.as_deref().unwrap_or(""));
        match self.status {
            // HTTPMethodNotAllowed and HTTPUnsupportedMediaType have their own
            // templates that substitute from the WSGI environ
            // (`safe_substitute`: a missing variable stays as `${NAME}`).
            405 => format!(
                "The method {} is not allowed for this resource. <br /><br />\n{detail}",
                escape(&req.method)
            ),
            415 => {
                let ct = match req.get_header("Content-Type") {
                    Some(ct) => escape(ct),
                    None => "${CONTENT_TYPE}".to_string(),
                };
                format!(
                    "The request media type {ct} is not supported by this server.\n<br /><br />\n{detail}"
                )
            }
            _ => {
                let explanation = escape(
                    self.explanation
                        .as_deref()
                        .unwrap_or_else(|| default_explanation(self.status)),
                );
                format!("{explanation}<br /><br />\n{detail}\n\n")
            }
        }
    }

    /// Renders the response as webob's `generate_response` does.
    pub fn render(&self, req: &Request) -> Response {
        let status_line = format!("{} {}", self.status, status_text(self.status));
        let (content_type, body) = if req.method.eq_ignore_ascii_case("HEAD") {
            ("text/html; charset=UTF-8".to_string(), String::new())
        } else {
            match negotiate(req.get_header("Accept")) {
                Offer::Html => {
                    let body = self.make_body(req, html_escape);
                    (
                        "text/html; charset=UTF-8".to_string(),
                        format!(
                            "<html>\n <head>\n  <title>{status_line}</title>\n </head>\n <body>\n  <h1>{status_line}</h1>\n  {body}\n </body>\n</html>"
                        ),
                    )
                }
                Offer::Json => {
                    let body = self.make_body(req, |s| s.to_string());
                    let doc = json!({
                        "message": body,
                        "code": status_line,
                        "title": status_text(self.status),
                    });
                    ("application/json".to_string(), pyfmt::dumps(&doc, true))
                }
                Offer::Plain => {
                    let body = strip_tags(&self.make_body(req, |s| s.to_string()));
                    (
                        "text/plain; charset=UTF-8".to_string(),
                        format!("{status_line}\n\n{body}"),
                    )
                }
            }
        };
        let mut headers = self.headers.clone();
        headers.push(("Content-Type".into(), content_type));
        Response {
            status: self.status,
            headers,
            body: body.into_bytes(),
        }
    }
}

/// webob's `html_escape`: `html.escape(s, quote=True)`, then non-ASCII as
/// `&#NNN;` character references.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c if !c.is_ascii() => out.push_str(&format!("&#{};", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// webob's `strip_tags` for the text/plain body.
pub fn strip_tags(s: &str) -> String {
    let s = s.replace('\n', " ").replace('\r', "");
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(inside) = after.strip_prefix("<!--") {
            rest = inside;
            continue;
        }
        match after.find('>') {
            Some(end) => {
                let tag = &after[..=end];
                // `get`, not `[1..3]`: the tag may start with a multi-byte
                // character, and "br" is ASCII anyway.
                if tag.get(1..3).is_some_and(|t| t.eq_ignore_ascii_case("br")) {
                    out.push('\n');
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(after);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("-->", "")
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Offer {
    Html,
    Json,
    Plain,
}

/// The q-value the `Accept` header gives to `offer` (most specific range wins).
fn accept_quality(ranges: &[(String, String, f32)], offer: (&str, &str)) -> Option<f32> {
    let mut best: Option<(u8, f32)> = None;
    for (t, s, q) in ranges {
        let specificity = if t == offer.0 && s == offer.1 {
            3
        } else if t == offer.0 && s == "*" {
            2
        } else if t == "*" && s == "*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(b, _)| specificity > b) {
            best = Some((specificity, *q));
        }
    }
    best.map(|(_, q)| q)
}

/// webob's `acceptable_offers(['text/html', 'application/json'])[0]`.
fn negotiate(accept: Option<&str>) -> Offer {
    let Some(accept) = accept else {
        return Offer::Plain;
    };
    let mut ranges = Vec::new();
    for part in accept.split(',') {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        if media.is_empty() {
            continue;
        }
        let (t, s) = media.split_once('/').unwrap_or((media.as_str(), ""));
        let mut q = 1.0f32;
        for p in pieces {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v.trim().parse().unwrap_or(1.0);
                }
            }
        }
        ranges.push((t.trim().to_string(), s.trim().to_string(), q));
    }
    let mut offers: Vec<(Offer, f32)> = [
        (Offer::Html, ("text", "html")),
        (Offer::Json, ("application", "json")),
    ]
    .into_iter()
    .filter_map(|(o, mt)| accept_quality(&ranges, mt).map(|q| (o, q)))
    .filter(|(_, q)| *q > 0.0)
    .collect();
    // Stable sort: for equal q the order of the offers list decides.
    offers.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    offers.first().map_or(Offer::Plain, |(o, _)| *o)
}

/// A Keystone-style 401 (what keystonemiddleware answers for a bad token).
pub fn unauthorized(base_url: &str) -> Response {
    let body = json!({"error": {
        "code": 401,
        "title": "Unauthorized",
        "message": "The request you have made requires authentication.",
    }});
    Response::json(401, &body, true).with_header(
        "WWW-Authenticate",
        &format!("Keystone uri=\"{base_url}/identity\""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_tags_never_splits_a_character() {
        // `<` then a multi-byte character used to panic (byte slicing).
        assert_eq!(strip_tags("remove /<aé> now"), "remove / now");
        assert_eq!(strip_tags("<é>x<BR/>y"), "x\ny");
        assert_eq!(strip_tags("<bré"), "<bré");
    }

    fn patch_with_accept(accept: Option<&str>) -> Request {
        let mut r = Request::new("PATCH", "/v2/images/x");
        if let Some(a) = accept {
            r = r.header("Accept", a);
        }
        r
    }

    #[test]
    fn json_error_body_matches_the_reference() {
        let e = ApiError::detailed(409, "Property nope does not exist.");
        let resp = e.render(&patch_with_accept(Some("application/json")));
        assert_eq!(resp.get_header("Content-Type"), Some("application/json"));
        assert_eq!(
            resp.body_text(),
            r#"{"message": "There was a conflict when trying to complete your request.<br /><br />\nProperty nope does not exist.\n\n", "code": "409 Conflict", "title": "Conflict"}"#
        );
    }

    #[test]
    fn explanation_style_replaces_the_preamble() {
        let e = ApiError::explained(400, "Malformed JSON in request body.");
        let resp = e.render(&patch_with_accept(Some("application/json")));
        assert_eq!(
            resp.body_json()["message"],
            "Malformed JSON in request body.<br /><br />\n\n\n"
        );
        let plain = e.render(&patch_with_accept(None));
        assert_eq!(
            plain.body_text(),
            "400 Bad Request\n\nMalformed JSON in request body.\n\n   "
        );
    }

    #[test]
    fn plain_and_html_bodies() {
        let e = ApiError::detailed(409, "Property missing does not exist.");
        for accept in [None, Some("text/plain")] {
            let resp = e.render(&patch_with_accept(accept));
            assert_eq!(
                resp.get_header("Content-Type"),
                Some("text/plain; charset=UTF-8")
            );
            assert_eq!(
                resp.body_text(),
                "409 Conflict\n\nThere was a conflict when trying to complete your request.\n\n Property missing does not exist.  "
            );
        }
        for accept in ["*/*", "text/html", "text/*"] {
            let resp = e.render(&patch_with_accept(Some(accept)));
            assert_eq!(
                resp.get_header("Content-Type"),
                Some("text/html; charset=UTF-8")
            );
            assert!(resp
                .body_text()
                .starts_with("<html>\n <head>\n  <title>409 Conflict</title>"));
        }
        let resp = e.render(&patch_with_accept(Some(
            "text/html;q=0.5, application/json",
        )));
        assert_eq!(resp.get_header("Content-Type"), Some("application/json"));
        let resp = e.render(&patch_with_accept(Some("application/*")));
        assert_eq!(resp.get_header("Content-Type"), Some("application/json"));
    }

    #[test]
    fn media_type_template_substitutes_the_header() {
        let e = ApiError::detailed(415, "Image PATCH expects Content-Type one of: a, b");
        let req = patch_with_accept(Some("application/json"));
        assert_eq!(
            e.render(&req).body_json()["message"],
            "The request media type ${CONTENT_TYPE} is not supported by this server.\n<br /><br />\nImage PATCH expects Content-Type one of: a, b"
        );
        let req = req.header("Content-Type", "application/json");
        assert!(e.render(&req).body_json()["message"]
            .as_str()
            .unwrap()
            .starts_with("The request media type application/json is not supported"));
    }

    #[test]
    fn html_escape_and_strip_tags() {
        assert_eq!(
            html_escape("<a href=\"x\">'é'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&#233;&#x27;&lt;/a&gt;"
        );
        assert_eq!(
            strip_tags("a<br /><br />\nb<i>c</i><!-- d -->"),
            "a\n\n bc d "
        );
    }
}

//! The human part of a server's error body: Glance's webob messages,
//! Keystone's and IMS's JSON errors, plain text and HTML.

use reqwest::StatusCode;
use serde_json::Value;

use super::status_line;

/// Glance's (webob's) 404 message for a path that no route serves, such as
/// an endpoint that already ends in `/v2/images`.
pub const NO_ROUTE: &str = "The resource could not be found.";

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
            // The API Gateway appends its canonical request to a refused
            // AK/SK signature: long, and it holds the security token.
            let message = message.split(",canonicalRequest:").next().unwrap_or("");
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
            .trim_start_matches(&status_line(status.as_u16()))
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
    use reqwest::StatusCode;

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
        let gateway = r#"{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information: verify aksk signature fail,canonicalRequest:GET|/v2/|x-security-token:s3cret|","request_id":"r"}"#;
        assert_eq!(
            server_message("application/json", gateway, StatusCode::UNAUTHORIZED),
            "Incorrect IAM authentication information: verify aksk signature fail"
        );
        let ims = r#"{"error": {"code": "IMG.0001", "message": "The image does not exist."}}"#;
        assert_eq!(
            server_message("application/json", ims, StatusCode::NOT_FOUND),
            "The image does not exist."
        );
    }
}

//! The API Gateway's AK/SK check (SDK-HMAC-SHA256), the sandbox's own
//! implementation: it shares nothing with the client's signer, so each
//! checks the other. [`Gateway::check`] accepts a received request or gives
//! the [`Refusal`] the gateway answers with.
//!
//! Refusals, as OTC's / Huawei Cloud's API Gateway documents them (HTTP 401,
//! body `{"error_code", "error_msg", "request_id"}`):
//! * no `Authorization`: `APIGW.0301` "Incorrect IAM authentication
//!   information: x-auth-token not found" (Huawei Cloud OCR FAQ "How Do I
//!   Handle the Error APIG.0301?", ocr_01_0063);
//! * an access key the gateway does not know: `APIGW.0301` "Incorrect IAM
//!   authentication information: Get secretKey failed,ak:AK,err:ak not
//!   exist" (APIG FAQ "Common Errors Related to IAM Authentication
//!   Information", apig-faq-0003);
//! * a signature that does not verify: `APIGW.0301` "Incorrect IAM
//!   authentication information: verify aksk signature fail" followed by
//!   `,canonicalRequest:` and the gateway's canonical request with `|` for
//!   newlines (API Request Signing Guide, api-sign-0001); a malformed
//!   `Authorization` or `X-Sdk-Date` gets the same message (no text of its
//!   own is documented);
//! * an `X-Sdk-Date` more than 15 minutes off: `APIGW.0301` "Incorrect IAM
//!   authentication information: calc ak sk signature fail:signature
//!   expired" (Huawei Cloud SIS FAQ sis_04_0087);
//! * a body over 12 MB: 413 `APIGW.0201` "Request entity too large." (API
//!   Request Signing Guide, "Error Codes", api-sign-errorcode).
//!
//! The body hash may also be the literal `UNSIGNED-PAYLOAD` when the client
//! signed an `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` header, as the
//! vendor's Python SDK does for content types other than JSON.

use std::fmt;
use std::time::{Duration, SystemTime};

use ring::{digest, hmac};
use serde_json::{json, Value};

/// The largest body the gateway takes: 12 MB.
pub const MAX_BODY: usize = 12 * 1024 * 1024;

/// How far `X-Sdk-Date` may be from the gateway's clock, either way.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

const SCHEME: &str = "SDK-HMAC-SHA256";
const UNSIGNED: &str = "UNSIGNED-PAYLOAD";

/// The one access key pair the sandbox accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    pub access_key: String,
    pub secret_key: String,
    /// When set, requests must send (and sign) this `X-Security-Token`.
    pub security_token: Option<String>,
}

/// A request as it arrived: the path and query exactly as on the request
/// line (still percent-encoded), the headers as received.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: Option<&'a str>,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Why the gateway refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` or `X-Sdk-Date` that cannot be read, or one that
    /// leaves a required header unsigned.
    Malformed(String),
    /// `Access=` names a key the gateway does not know.
    UnknownKey(String),
    /// `X-Sdk-Date` more than [`MAX_SKEW`] from the gateway's clock.
    Expired { date: String, off_by: Duration },
    /// The security token is missing or not the configured one.
    BadToken,
    /// The signature does not verify; the gateway's canonical request.
    Mismatch { canonical_request: String },
    /// The body is over [`MAX_BODY`].
    TooLarge(usize),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::TooLarge(_) => 413,
            _ => 401,
        }
    }

    pub fn error_code(&self) -> &'static str {
        match self {
            Refusal::TooLarge(_) => "APIGW.0201",
            _ => "APIGW.0301",
        }
    }

    pub fn error_msg(&self) -> String {
        const IAM: &str = "Incorrect IAM authentication information";
        match self {
            Refusal::Missing => format!("{IAM}: x-auth-token not found"),
            Refusal::UnknownKey(ak) => {
                format!("{IAM}: Get secretKey failed,ak:{ak},err:ak not exist")
            }
            Refusal::Expired { .. } => {
                format!("{IAM}: calc ak sk signature fail:signature expired")
            }
            Refusal::Malformed(_) | Refusal::BadToken => {
                format!("{IAM}: verify aksk signature fail")
            }
            Refusal::Mismatch { canonical_request } => format!(
                "{IAM}: verify aksk signature fail,canonicalRequest:{}",
                canonical_request.replace('\n', "|")
            ),
            Refusal::TooLarge(_) => "Request entity too large.".to_string(),
        }
    }

    /// The gateway's JSON error body.
    pub fn body(&self, request_id: &str) -> Value {
        json!({
            "error_code": self.error_code(),
            "error_msg": self.error_msg(),
            "request_id": request_id,
        })
    }
}

impl fmt::Display for Refusal {
    /// The reason in plain words, for the sandbox's log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Missing => f.write_str("no Authorization header"),
            Refusal::Malformed(why) => write!(f, "malformed AK/SK signature: {why}"),
            Refusal::UnknownKey(ak) => write!(f, "unknown access key {ak:?}"),
            Refusal::Expired { date, off_by } => write!(
                f,
                "X-Sdk-Date {date} is {} s off the sandbox clock (at most {} s allowed)",
                off_by.as_secs(),
                MAX_SKEW.as_secs()
            ),
            Refusal::BadToken => f.write_str("X-Security-Token missing or not the configured one"),
            Refusal::Mismatch { .. } => f.write_str("the signature does not verify"),
            Refusal::TooLarge(n) => write!(f, "body of {n} bytes is over {MAX_BODY}"),
        }
    }
}

/// The three parts of `Authorization: SDK-HMAC-SHA256 Access=.., SignedHeaders=.., Signature=..`.
struct Authorization<'a> {
    access: &'a str,
    signed: Vec<&'a str>,
    signature: Vec<u8>,
}

impl<'a> Authorization<'a> {
    fn parse(value: &'a str) -> Result<Self, Refusal> {
        let bad = |why: &str| Refusal::Malformed(why.to_string());
        let rest = value
            .trim()
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| bad("Authorization does not start with SDK-HMAC-SHA256"))?;
        let (mut access, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (name, val) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| bad("an Authorization part has no '='"))?;
            let slot = match name {
                "Access" => &mut access,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                _ => return Err(bad("unknown Authorization part")),
            };
            if slot.replace(val).is_some() {
                return Err(bad("an Authorization part appears twice"));
            }
        }
        let access = access
            .filter(|a| !a.is_empty())
            .ok_or_else(|| bad("no Access"))?;
        let signed: Vec<&str> = signed
            .ok_or_else(|| bad("no SignedHeaders"))?
            .split(';')
            .collect();
        if signed
            .iter()
            .any(|n| n.is_empty() || n.bytes().any(|b| b.is_ascii_uppercase()))
        {
            return Err(bad("SignedHeaders must be lower-case names"));
        }
        if signed.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("SignedHeaders must be sorted, each name once"));
        }
        let signature = unhex(signature.ok_or_else(|| bad("no Signature"))?)
            .filter(|s| s.len() == 32)
            .ok_or_else(|| bad("Signature is not 64 hex digits"))?;
        Ok(Authorization {
            access,
            signed,
            signature,
        })
    }
}

impl Gateway {
    /// Accepts the request or says why the gateway refuses it; `now` is the
    /// gateway's clock.
    pub fn check(&self, req: &Received<'_>, now: SystemTime) -> Result<(), Refusal> {
        if req.body.len() > MAX_BODY {
            return Err(Refusal::TooLarge(req.body.len()));
        }
        let header = |name: &str| -> Vec<&str> {
            req.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let auth = match header("authorization").as_slice() {
            [] => return Err(Refusal::Missing),
            [one] => Authorization::parse(one)?,
            _ => return Err(Refusal::Malformed("more than one Authorization".into())),
        };
        if auth.access != self.access_key {
            return Err(Refusal::UnknownKey(auth.access.to_string()));
        }

        // Each signed header must be there once; some must be signed.
        let mut lines = String::new();
        for name in &auth.signed {
            match header(name).as_slice() {
                [value] => {
                    lines.push_str(name);
                    lines.push(':');
                    lines.push_str(value.trim());
                    lines.push('\n');
                }
                [] => return Err(Refusal::Malformed(format!("signed header {name} not sent"))),
                _ => {
                    return Err(Refusal::Malformed(format!(
                        "signed header {name} sent twice"
                    )))
                }
            }
        }
        let mut required = vec!["host", "x-sdk-date"];
        for optional in ["x-project-id", "x-security-token"] {
            if !header(optional).is_empty() {
                required.push(optional);
            }
        }
        if !req.body.is_empty() && !header("content-type").is_empty() {
            required.push("content-type");
        }
        if let Some(missing) = required.iter().find(|r| !auth.signed.contains(r)) {
            return Err(Refusal::Malformed(format!("{missing} is not signed")));
        }

        let date = header("x-sdk-date")[0].trim();
        let signed_at = parse_sdk_date(date).ok_or_else(|| {
            Refusal::Malformed(format!("X-Sdk-Date {date:?} is not YYYYMMDDTHHMMSSZ"))
        })?;
        let off_by = now
            .duration_since(signed_at)
            .or_else(|e| Ok::<_, ()>(e.duration()))
            .unwrap_or_default();
        if off_by > MAX_SKEW {
            return Err(Refusal::Expired {
                date: date.to_string(),
                off_by,
            });
        }

        let head = format!(
            "{}\n{}\n{}\n{lines}\n{}\n",
            req.method.to_ascii_uppercase(),
            uri_of(req.raw_path),
            query_of(req.raw_query.unwrap_or("")),
            auth.signed.join(";"),
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.secret_key.as_bytes());
        let verifies = |payload: &str| {
            let to_sign = format!(
                "{SCHEME}\n{date}\n{}",
                hex_sha256(format!("{head}{payload}").as_bytes())
            );
            hmac::verify(&key, to_sign.as_bytes(), &auth.signature).is_ok()
        };
        let body_hash = hex_sha256(req.body);
        let unsigned_payload = auth.signed.contains(&"x-sdk-content-sha256")
            && header("x-sdk-content-sha256")[0].trim() == UNSIGNED;
        if !(verifies(&body_hash) || unsigned_payload && verifies(UNSIGNED)) {
            return Err(Refusal::Mismatch {
                canonical_request: format!("{head}{body_hash}"),
            });
        }

        if let Some(token) = &self.security_token {
            if header("x-security-token").first().map(|t| t.trim()) != Some(token.as_str()) {
                return Err(Refusal::BadToken);
            }
        }
        Ok(())
    }
}

/// `YYYYMMDDTHHMMSSZ` as a time.
fn parse_sdk_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !digits(0..8) || !digits(9..15) {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    humantime::parse_rfc3339(&rfc3339).ok()
}

/// The value of one hex digit.
fn nibble(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

fn hex_sha256(data: &[u8]) -> String {
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Percent-decodes bytes; `plus_is_space` for query strings. A `%` not
/// followed by two hex digits stays as it is.
fn unescape(s: &str, plus_is_space: bool) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = match b.get(i..i + 3) {
            Some([b'%', hi, lo]) => nibble(*hi).zip(nibble(*lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (b[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', None) if plus_is_space => out.push(b' '),
            (c, None) => out.push(c),
        }
        i += 1;
    }
    out
}

/// Percent-encodes every byte but `A-Z a-z 0-9 - _ . ~`, upper-case hex.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &c in bytes {
        if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// The canonical URI of a raw path: decoded whole, split at `/`, each piece
/// escaped; always ending in `/`.
fn uri_of(raw_path: &str) -> String {
    let mut uri: String = unescape(raw_path, false)
        .split(|&c| c == b'/')
        .map(escape)
        .collect::<Vec<_>>()
        .join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// The canonical query of a raw query string: decoded pairs (empty pieces
/// dropped, a piece without `=` has an empty value) sorted by decoded key
/// then value, re-escaped.
fn query_of(raw_query: &str) -> String {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = raw_query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            (unescape(k, true), unescape(v, true))
        })
        .collect();
    pairs.sort();
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect();
    parts.join("&")
}

/// Checks a request the sandbox received (its body already read within the
/// server's cap); `Err` is the gateway's answer: 401 (413 for a body over
/// [`MAX_BODY`]) with its JSON error body. The reason goes to stderr.
pub fn verify(
    gateway: &Gateway,
    req: &crate::http::Request,
    now: SystemTime,
) -> Result<(), crate::http::Response> {
    let received = Received {
        method: &req.method,
        raw_path: req.raw_path(),
        raw_query: req.raw_query(),
        headers: &req.headers,
        body: &req.body,
    };
    gateway.check(&received, now).map_err(|refusal| {
        crate::note(&format!(
            "refused {} {}: {refusal}",
            req.method,
            req.raw_path()
        ));
        let id = uuid::Uuid::new_v4().simple().to_string();
        crate::http::Response::json(refusal.status(), &refusal.body(&id), false)
    })
}

/// IAM's `GET /v3/projects?name=NAME` as a signed client asks it to find a
/// region's project: one project named as asked when the name looks like a
/// region (`eu-de`; a sub-project `eu-de_x` is not found, as its ID must be
/// given), with `project_id` as its ID; none otherwise.
pub fn projects(req: &crate::http::Request, base: &str, project_id: &str) -> crate::http::Response {
    let name = req.raw_query().unwrap_or("").split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == "name").then(|| decode(v))
    });
    let is_region = |n: &str| {
        let mut parts = n.splitn(2, '-');
        let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_lowercase())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    let list: Vec<Value> = match name {
        Some(n) if !is_region(&n) => Vec::new(),
        n => {
            let name = n.unwrap_or_else(|| "eu-de".to_string());
            vec![json!({
                "id": project_id,
                "name": name,
                "description": "",
                "domain_id": "sandbox-domain",
                "enabled": true,
                "is_domain": false,
                "parent_id": "sandbox-domain",
                "links": {"self": format!("{base}/v3/projects/{project_id}")},
            })]
        }
    };
    crate::http::Response::json(
        200,
        &json!({
            "projects": list,
            "links": {"self": format!("{base}/v3/projects"), "previous": null, "next": null},
        }),
        false,
    )
}

/// Percent-decodes a query value (`+` is a space), as UTF-8 text.
fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    const AK: &str = "AKIDEXAMPLE0000000000";
    const SK: &str = "SKEXAMPLE0000000000000000000000000000000";
    const PROJECT: &str = "0b1e494e2660441a957313163095fe5c";
    const HOST: &str = "ims.eu-de.otc.t-systems.com";
    const DATE: &str = "20261201T120000Z";
    const PATCH_TYPE: &str = "application/openstack-images-v2.1-json-patch";
    const BODY: &[u8] = br#"[{"op":"replace","path":"/name","value":"ims_test01"}]"#;
    const SIG1: &str = "233e96f59af07370148b47b207a92c24bd694a164b7902e1cab044d01712f454";
    const SIG2: &str = "d019fdd212bb1562a1f9d998b57bded4dd3b32f67a22e20adf8d2d5eba34a9ae";

    fn gateway() -> Gateway {
        Gateway {
            access_key: AK.into(),
            secret_key: SK.into(),
            security_token: None,
        }
    }

    /// 2026-12-01T12:00:00Z.
    fn at(offset_secs: i64) -> SystemTime {
        let base = UNIX_EPOCH + Duration::from_secs(1_796_126_400);
        if offset_secs >= 0 {
            base + Duration::from_secs(offset_secs as u64)
        } else {
            base - Duration::from_secs(offset_secs.unsigned_abs())
        }
    }

    fn auth(signed: &str, sig: &str) -> String {
        format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders={signed}, Signature={sig}")
    }

    /// A request under test: its parts, owned, so each case can alter one.
    #[derive(Clone)]
    struct Req {
        method: String,
        path: String,
        query: Option<String>,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Req {
        fn set(mut self, name: &str, value: &str) -> Req {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            self.headers.push((name.into(), value.into()));
            self
        }

        fn check(&self, g: &Gateway, now: SystemTime) -> Result<(), Refusal> {
            g.check(
                &Received {
                    method: &self.method,
                    raw_path: &self.path,
                    raw_query: self.query.as_deref(),
                    headers: &self.headers,
                    body: &self.body,
                },
                now,
            )
        }
    }

    fn vector1() -> Req {
        Req {
            method: "PATCH".into(),
            path: "/v2/images/33ad552d-1149-471c-8190-ff6776174a00".into(),
            query: None,
            headers: vec![
                ("Host".into(), HOST.into()),
                ("Content-Type".into(), PATCH_TYPE.into()),
                ("X-Sdk-Date".into(), DATE.into()),
                ("X-Project-Id".into(), PROJECT.into()),
                (
                    "Authorization".into(),
                    auth("content-type;host;x-project-id;x-sdk-date", SIG1),
                ),
                ("User-Agent".into(), "anything/1.0".into()),
            ],
            body: BODY.to_vec(),
        }
    }

    fn vector2() -> Req {
        Req {
            method: "GET".into(),
            path: "/v2/images".into(),
            query: Some("name=ims%20test&__imagetype=private&limit=10".into()),
            headers: vec![
                ("host".into(), HOST.into()),
                ("x-sdk-date".into(), DATE.into()),
                ("x-project-id".into(), PROJECT.into()),
                (
                    "authorization".into(),
                    auth("host;x-project-id;x-sdk-date", SIG2),
                ),
            ],
            body: Vec::new(),
        }
    }

    fn mismatch(r: Result<(), Refusal>) -> bool {
        matches!(r, Err(Refusal::Mismatch { .. }))
    }

    #[test]
    fn the_vectors_verify() {
        assert_eq!(vector1().check(&gateway(), at(0)), Ok(()));
        assert_eq!(vector2().check(&gateway(), at(0)), Ok(()));
        // Any order of the query, `+` for a space: the same canonical query.
        let mut v2 = vector2();
        v2.query = Some("limit=10&name=ims+test&__imagetype=private".into());
        assert_eq!(v2.check(&gateway(), at(0)), Ok(()));
    }

    #[test]
    fn each_alteration_is_refused() {
        let g = gateway();
        let mut body = vector1();
        body.body = br#"[{"op":"replace","path":"/name","value":"ims_test02"}]"#.to_vec();
        assert!(mismatch(body.check(&g, at(0))));
        let mut path = vector1();
        path.path = "/v2/images/33ad552d-1149-471c-8190-ff6776174a01".into();
        assert!(mismatch(path.check(&g, at(0))));
        let mut method = vector1();
        method.method = "PUT".into();
        assert!(mismatch(method.check(&g, at(0))));
        let mut query = vector2();
        query.query = Some("name=ims%20test&__imagetype=private&limit=11".into());
        assert!(mismatch(query.check(&g, at(0))));
        let mut extra = vector2();
        extra.query = Some("name=ims%20test&__imagetype=private&limit=10&x=".into());
        assert!(mismatch(extra.check(&g, at(0))));
        let header = vector1().set("Content-Type", "application/json");
        assert!(mismatch(header.check(&g, at(0))));
        let host = vector2().set("Host", "ims.eu-de.otc.t-systems.com:8443");
        assert!(mismatch(host.check(&g, at(0))));
        let project = vector2().set("X-Project-Id", "another");
        assert!(mismatch(project.check(&g, at(0))));
        let date = vector2().set("X-Sdk-Date", "20261201T120001Z");
        assert!(mismatch(date.check(&g, at(0))));
        let other_key = Gateway {
            secret_key: "SK-other".into(),
            ..gateway()
        };
        assert!(mismatch(vector2().check(&other_key, at(0))));
        let sig = vector2().set("Authorization", &auth("host;x-project-id;x-sdk-date", SIG1));
        assert!(mismatch(sig.check(&g, at(0))));
        // An unsigned header may change: it is not part of the signature.
        let ua = vector1().set("User-Agent", "other/2.0");
        assert_eq!(ua.check(&g, at(0)), Ok(()));
    }

    #[test]
    fn the_mismatch_body_shows_the_canonical_request() {
        let mut r = vector2();
        r.query = Some("limit=11".into());
        let refusal = r.check(&gateway(), at(0)).unwrap_err();
        assert_eq!(refusal.status(), 401);
        let body = refusal.body("0123");
        assert_eq!(body["error_code"], "APIGW.0301");
        assert_eq!(body["request_id"], "0123");
        assert_eq!(
            body["error_msg"],
            format!(
                "Incorrect IAM authentication information: verify aksk signature fail,canonicalRequest:GET|/v2/images/|limit=11|host:{HOST}|x-project-id:{PROJECT}|x-sdk-date:{DATE}||host;x-project-id;x-sdk-date|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            )
        );
    }

    #[test]
    fn dates_more_than_15_minutes_off_are_refused() {
        let g = gateway();
        for secs in [-900, 0, 900] {
            assert_eq!(vector1().check(&g, at(secs)), Ok(()), "{secs}");
        }
        for secs in [-901, 901, 86_400, -86_400] {
            let refusal = vector1().check(&g, at(secs)).unwrap_err();
            assert_eq!(
                refusal,
                Refusal::Expired {
                    date: DATE.into(),
                    off_by: Duration::from_secs(secs.unsigned_abs())
                }
            );
            assert_eq!(
                refusal.body("r")["error_msg"],
                "Incorrect IAM authentication information: calc ak sk signature fail:signature expired"
            );
        }
    }

    #[test]
    fn missing_unknown_and_malformed_authorization() {
        let g = gateway();
        let mut none = vector2();
        none.headers.retain(|(n, _)| n != "authorization");
        let refusal = none.check(&g, at(0)).unwrap_err();
        assert_eq!(refusal, Refusal::Missing);
        assert_eq!(
            refusal.body("r")["error_msg"],
            "Incorrect IAM authentication information: x-auth-token not found"
        );

        let unknown = vector2().set(
            "Authorization",
            &format!("SDK-HMAC-SHA256 Access=AKOTHER, SignedHeaders=host;x-project-id;x-sdk-date, Signature={SIG2}"),
        );
        let refusal = unknown.check(&g, at(0)).unwrap_err();
        assert_eq!(refusal, Refusal::UnknownKey("AKOTHER".into()));
        assert_eq!(
            refusal.body("r")["error_msg"],
            "Incorrect IAM authentication information: Get secretKey failed,ak:AKOTHER,err:ak not exist"
        );

        let malformed = [
            format!("Bearer {SIG2}"),
            format!("SDK-HMAC-SHA1 Access={AK}, SignedHeaders=host;x-project-id;x-sdk-date, Signature={SIG2}"),
            format!("SDK-HMAC-SHA256 Access={AK}, Signature={SIG2}"),
            format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;x-project-id;x-sdk-date"),
            format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;x-project-id;x-sdk-date, Signature=abc"),
            format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;x-project-id;x-sdk-date, Signature={}", &SIG2.replace('d', "g")),
            format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=x-project-id;host;x-sdk-date, Signature={SIG2}"),
            format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=Host;x-project-id;x-sdk-date, Signature={SIG2}"),
            // Date or project not signed, a signed header not sent.
            format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;x-project-id, Signature={SIG2}"),
            format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;x-sdk-date, Signature={SIG2}"),
            format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;x-project-id;x-sdk-date;x-z, Signature={SIG2}"),
            format!("SDK-HMAC-SHA256 Access={AK}, Access={AK}, SignedHeaders=host;x-project-id;x-sdk-date, Signature={SIG2}"),
        ];
        for value in malformed {
            let refusal = vector2()
                .set("Authorization", &value)
                .check(&g, at(0))
                .unwrap_err();
            assert!(
                matches!(refusal, Refusal::Malformed(_)),
                "{value}: {refusal:?}"
            );
            assert_eq!(
                refusal.body("r")["error_msg"],
                "Incorrect IAM authentication information: verify aksk signature fail"
            );
        }
        for date in [
            "2026-12-01T12:00:00Z",
            "20261201T120000",
            "20261301T120000Z",
            "",
        ] {
            let refusal = vector2()
                .set("X-Sdk-Date", date)
                .check(&g, at(0))
                .unwrap_err();
            assert!(
                matches!(refusal, Refusal::Malformed(_)),
                "{date}: {refusal:?}"
            );
        }
        // A body with a content type must sign the content type.
        let unsigned_type =
            vector1().set("Authorization", &auth("host;x-project-id;x-sdk-date", SIG1));
        assert!(matches!(
            unsigned_type.check(&g, at(0)),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn bodies_over_12_mb_are_refused() {
        let mut big = vector1();
        big.body = vec![b' '; MAX_BODY + 1];
        let refusal = big.check(&gateway(), at(0)).unwrap_err();
        assert_eq!(refusal.status(), 413);
        assert_eq!(refusal.body("r")["error_code"], "APIGW.0201");
        let mut fits = vector1();
        fits.body = vec![b' '; MAX_BODY];
        assert!(mismatch(fits.check(&gateway(), at(0))));
    }

    #[test]
    fn the_vendors_unsigned_payload_form_is_accepted() {
        // huaweicloudsdkcore 3.1.219's plain Signer on vector 1: it adds
        // X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD and signs that literal.
        let r = vector1().set("X-Sdk-Content-Sha256", UNSIGNED).set(
            "Authorization",
            &auth(
                "content-type;host;x-project-id;x-sdk-content-sha256;x-sdk-date",
                "2c70ce22e906d07349b15cb2c8cb2840c8c9a8e0b37c42839ec1e64b89df448f",
            ),
        );
        assert_eq!(r.check(&gateway(), at(0)), Ok(()));
        // Not when the header is not signed.
        let mut unsigned = vector1().set("X-Sdk-Content-Sha256", UNSIGNED);
        unsigned.body = b"[]".to_vec();
        assert!(mismatch(unsigned.check(&gateway(), at(0))));
    }

    #[test]
    fn a_configured_security_token_is_required() {
        let g = Gateway {
            security_token: Some("T1".into()),
            ..gateway()
        };
        let refusal = vector2().check(&g, at(0)).unwrap_err();
        assert_eq!(refusal, Refusal::BadToken);
        // A token sent but not signed is malformed.
        let unsigned = vector2().set("X-Security-Token", "T1");
        assert!(matches!(
            unsigned.check(&g, at(0)),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn canonical_parts() {
        assert_eq!(uri_of("/v2/images"), "/v2/images/");
        assert_eq!(uri_of("/"), "/");
        assert_eq!(uri_of("/a%2Fb/caf%c3%a9 x/+"), "/a/b/caf%C3%A9%20x/%2B/");
        assert_eq!(uri_of("/100%"), "/100%25/");
        assert_eq!(query_of(""), "");
        assert_eq!(
            query_of("b=2&a=%2B&a=&&flag&c=1+1"),
            "a=&a=%2B&b=2&c=1%201&flag="
        );
        assert_eq!(
            query_of("n=%E6%97%A5%20x&%C3%A9=1"),
            "n=%E6%97%A5%20x&%C3%A9=1"
        );
        assert_eq!(query_of("a%2F=1&a.=2"), "a.=2&a%2F=1");
        assert_eq!(parse_sdk_date(DATE), Some(at(0)));
        assert_eq!(unhex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(unhex("0"), None);
    }

    #[test]
    fn the_iam_project_lookup_answers_region_names_only() {
        let req = crate::http::Request::new("GET", "/v3/projects?name=eu%2Dnl&x=1");
        let v = projects(&req, "http://h", PROJECT).body_json();
        assert_eq!(v["projects"][0]["name"], "eu-nl");
        assert_eq!(v["projects"][0]["id"], PROJECT);
        for sub in ["eu-de_sub", "local", "EU-DE", "eu-"] {
            let q = format!("/v3/projects?name={sub}");
            let v =
                projects(&crate::http::Request::new("GET", &q), "http://h", PROJECT).body_json();
            assert_eq!(v["projects"], json!([]), "{sub}");
        }
        assert_eq!(decode("a+b%20c%C3%A9%zz%"), "a b cé%zz%");
    }

    #[test]
    fn an_aksk_sandbox_refuses_unsigned_requests_everywhere() {
        let mut state = crate::state::State::seeded("http://127.0.0.1:9292");
        state.aksk = Some(gateway());
        for path in [
            "/v2/images",
            "/v3/projects?name=eu-de",
            "/v3/auth/tokens",
            "/versions",
        ] {
            let req = crate::http::Request::new("GET", path).header("X-Auth-Token", "t");
            let resp = crate::router::handle(&mut state, &req);
            assert_eq!(resp.status, 401, "{path}");
            assert_eq!(resp.body_json()["error_code"], "APIGW.0301", "{path}");
            assert_eq!(
                resp.body_json()["error_msg"],
                "Incorrect IAM authentication information: x-auth-token not found"
            );
        }
    }
}

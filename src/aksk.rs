//! AK/SK request signing (SDK-HMAC-SHA256) as OTC's API Gateway verifies it:
//! pure functions of the request, the keys and the time, with no I/O.
//!
//! The canonical request is six lines: the method; the canonical URI (the
//! path decoded, then each segment encoded keeping only `A-Za-z0-9-_.~`,
//! upper-case hex, always ending in `/`); the canonical query (pairs sorted
//! by key then value, `%20` for space); the canonical headers (`name:value`
//! lines, lower-case names, trimmed values, sorted, the block ending in a
//! newline); the signed header names joined by `;`; the hex SHA-256 of the
//! body. The string to sign is `SDK-HMAC-SHA256\n<X-Sdk-Date>\n<hex SHA-256
//! of the canonical request>`, signed with HMAC-SHA256 keyed by the secret key.
//!
//! The path is decoded as a whole before it is split into segments, so an
//! encoded `/` (`%2F`) separates segments, as the vendor's signers do
//! (`huaweicloudsdkcore` `Signer._process_canonical_uri`, OTC's Go signer).

use std::fmt;
use std::time::SystemTime;

use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ring::{digest, hmac};
use url::Url;

use crate::secret::Secret;

/// The algorithm name, first word of the `Authorization` header.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// Every byte but the unreserved `A-Z a-z 0-9 - _ . ~` is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An access key pair, with what goes with it on every signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkSk {
    pub access_key: String,
    pub secret_key: Secret,
    /// Sent and signed as `X-Project-Id` (required for sub-projects).
    pub project_id: Option<String>,
    /// Sent and signed as `X-Security-Token` (temporary credentials).
    pub security_token: Option<Secret>,
}

/// What signing a request gives: the URL to send and the headers to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The URL to send: the one given with its query rewritten to the
    /// canonical query, so the query sent is exactly the one signed.
    pub url: Url,
    /// `X-Sdk-Date`, `YYYYMMDDTHHMMSSZ` in UTC.
    pub sdk_date: String,
    pub project_id: Option<String>,
    pub security_token: Option<Secret>,
    pub access_key: String,
    /// The signed header names joined by `;`, as in the `Authorization` header.
    pub signed_headers: String,
    /// Hex HMAC-SHA256; replayable for 15 minutes, so never shown.
    pub signature: Secret,
}

impl Signed {
    /// The headers to add, with their values as they go on the wire.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        self.render(
            self.signature.expose(),
            self.security_token.as_ref().map(Secret::expose),
        )
    }

    /// The same headers for `-v` and `--dry-run`: the signature and the
    /// security token redacted, everything else as sent.
    pub fn redacted_headers(&self) -> Vec<(&'static str, String)> {
        let token = self.security_token.as_ref().map(|t| t.to_string());
        self.render(&self.signature.to_string(), token.as_deref())
    }

    fn render(&self, signature: &str, token: Option<&str>) -> Vec<(&'static str, String)> {
        let mut out = vec![("X-Sdk-Date", self.sdk_date.clone())];
        if let Some(project) = &self.project_id {
            out.push(("X-Project-Id", project.clone()));
        }
        if let Some(token) = token {
            out.push(("X-Security-Token", token.to_string()));
        }
        out.push((
            "Authorization",
            format!(
                "{ALGORITHM} Access={}, SignedHeaders={}, Signature={signature}",
                self.access_key, self.signed_headers
            ),
        ));
        out
    }
}

impl fmt::Display for Signed {
    /// The added headers, redacted, one `Name: value` line each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.redacted_headers() {
            writeln!(f, "{name}: {value}")?;
        }
        Ok(())
    }
}

/// Signs a request. `url` is the full URL to send (send [`Signed::url`]:
/// the same URL with its query in canonical form); `headers` are the
/// request's other headers, of which `Host` (else the URL's host, with the
/// port when it is not the scheme's default) and `Content-Type` are signed
/// along with the added `X-Sdk-Date`, `X-Project-Id` and `X-Security-Token`;
/// `body` is hashed (empty for a request without one).
pub fn sign(
    method: &str,
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
    key: &AkSk,
    time: SystemTime,
) -> Signed {
    let sdk_date = sdk_date(time);
    let mut signed: Vec<(String, String)> = Vec::new();
    let given = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    signed.push(("host".into(), given("host").unwrap_or_else(|| host(url))));
    if let Some(content_type) = given("content-type") {
        signed.push(("content-type".into(), content_type));
    }
    signed.push(("x-sdk-date".into(), sdk_date.clone()));
    if let Some(project) = &key.project_id {
        signed.push(("x-project-id".into(), project.trim().to_string()));
    }
    if let Some(token) = &key.security_token {
        signed.push(("x-security-token".into(), token.expose().trim().to_string()));
    }
    signed.sort();

    let query = canonical_query(url.query_pairs());
    let request = canonical_request(method, url.path(), &query, &signed, body);
    let to_sign = string_to_sign(&sdk_date, &request);
    let mac = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key.secret_key.expose().as_bytes()),
        to_sign.as_bytes(),
    );

    let mut send = url.clone();
    send.set_query(if query.is_empty() { None } else { Some(&query) });
    Signed {
        url: send,
        sdk_date,
        project_id: key.project_id.clone(),
        security_token: key.security_token.clone(),
        access_key: key.access_key.clone(),
        signed_headers: signed
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(";"),
        signature: Secret::new(hex::encode(mac.as_ref())),
    }
}

/// `X-Sdk-Date` for a time: `YYYYMMDDTHHMMSSZ`, UTC.
pub fn sdk_date(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

/// The `Host` header a client sends for this URL: the host, and the port
/// when it is not the scheme's default (`url` drops default ports).
pub fn host(url: &Url) -> String {
    let name = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{name}:{port}"),
        None => name.to_string(),
    }
}

/// The canonical URI of an (encoded) path: decoded, each segment encoded
/// keeping only unreserved characters, always ending in `/`.
pub fn canonical_uri(path: &str) -> String {
    let decoded: Vec<u8> = percent_decode_str(path).collect();
    let mut out = decoded
        .split(|b| *b == b'/')
        .map(|segment| percent_encode(segment, UNRESERVED).to_string())
        .collect::<Vec<_>>()
        .join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// The canonical query of decoded pairs: sorted by key then value, each
/// encoded keeping only unreserved characters (`%20` for a space), joined
/// by `&`; empty when there are none. It is also the query string to send.
pub fn canonical_query<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> String
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut pairs: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encode(k.as_bytes(), UNRESERVED),
                percent_encode(v.as_bytes(), UNRESERVED)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Hex SHA-256.
fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data).as_ref())
}

/// The six-line canonical request; `signed` holds lower-case names and
/// trimmed values, sorted by name.
fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    signed: &[(String, String)],
    body: &[u8],
) -> String {
    let mut headers = String::new();
    for (name, value) in signed {
        headers.push_str(name);
        headers.push(':');
        headers.push_str(value);
        headers.push('\n');
    }
    let names = signed
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    format!(
        "{}\n{}\n{query}\n{headers}\n{names}\n{}",
        method.to_ascii_uppercase(),
        canonical_uri(path),
        sha256_hex(body)
    )
}

/// `SDK-HMAC-SHA256\n<date>\n<hex SHA-256 of the canonical request>`.
fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const AK: &str = "AKIDEXAMPLE0000000000";
    const SK: &str = "SKEXAMPLE0000000000000000000000000000000";
    const PROJECT: &str = "0b1e494e2660441a957313163095fe5c";
    const HOST: &str = "https://ims.eu-de.otc.t-systems.com";
    const PATCH_TYPE: &str = "application/openstack-images-v2.1-json-patch";
    const PATCH_BODY: &[u8] = br#"[{"op":"replace","path":"/name","value":"ims_test01"}]"#;

    /// 2026-12-01T12:00:00Z, the vectors' `X-Sdk-Date`.
    fn vector_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_126_400)
    }

    fn key(project: Option<&str>, token: Option<&str>) -> AkSk {
        AkSk {
            access_key: AK.into(),
            secret_key: Secret::new(SK),
            project_id: project.map(String::from),
            security_token: token.map(Secret::new),
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn signature(s: &Signed) -> &str {
        s.signature.expose()
    }

    /// The canonical request `sign` hashes, rebuilt from the same parts.
    fn request_of(method: &str, u: &Url, signed: &[(&str, &str)], body: &[u8]) -> String {
        let signed: Vec<(String, String)> = signed
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        canonical_request(
            method,
            u.path(),
            &canonical_query(u.query_pairs()),
            &signed,
            body,
        )
    }

    #[test]
    fn vector_1_patch() {
        let u = url(&format!(
            "{HOST}/v2/images/33ad552d-1149-471c-8190-ff6776174a00"
        ));
        assert_eq!(PATCH_BODY.len(), 54);
        assert_eq!(
            sha256_hex(PATCH_BODY),
            "0ce28249ea66fb950db30c21c14762287c7dbe6b876fe76d326790e13262dcaa"
        );
        let s = sign(
            "PATCH",
            &u,
            &[("Content-Type", PATCH_TYPE)],
            PATCH_BODY,
            &key(Some(PROJECT), None),
            vector_time(),
        );
        assert_eq!(s.sdk_date, "20261201T120000Z");
        assert_eq!(
            s.signed_headers,
            "content-type;host;x-project-id;x-sdk-date"
        );
        let request = request_of(
            "PATCH",
            &u,
            &[
                ("content-type", PATCH_TYPE),
                ("host", "ims.eu-de.otc.t-systems.com"),
                ("x-project-id", PROJECT),
                ("x-sdk-date", "20261201T120000Z"),
            ],
            PATCH_BODY,
        );
        assert_eq!(
            sha256_hex(request.as_bytes()),
            "0e39b147f4d70f2374b160c6fcd021c8aa1bc68656533c0ef2f40df7436f0341"
        );
        assert_eq!(
            signature(&s),
            "233e96f59af07370148b47b207a92c24bd694a164b7902e1cab044d01712f454"
        );
        assert_eq!(s.url, u, "a URL without a query is sent unchanged");
    }

    #[test]
    fn vector_2_get_with_query() {
        let u = url(&format!(
            "{HOST}/v2/images?name=ims%20test&__imagetype=private&limit=10"
        ));
        let s = sign(
            "GET",
            &u,
            &[],
            b"",
            &key(Some(PROJECT), None),
            vector_time(),
        );
        assert_eq!(s.signed_headers, "host;x-project-id;x-sdk-date");
        assert_eq!(
            s.url.query(),
            Some("__imagetype=private&limit=10&name=ims%20test")
        );
        let request = request_of(
            "GET",
            &u,
            &[
                ("host", "ims.eu-de.otc.t-systems.com"),
                ("x-project-id", PROJECT),
                ("x-sdk-date", "20261201T120000Z"),
            ],
            b"",
        );
        assert_eq!(
            request.lines().nth(2),
            Some("__imagetype=private&limit=10&name=ims%20test")
        );
        assert_eq!(
            sha256_hex(request.as_bytes()),
            "e23fa28aed30f83ba27072f4e872d0760c998185fe002a912ed6e321197d3361"
        );
        assert_eq!(
            signature(&s),
            "d019fdd212bb1562a1f9d998b57bded4dd3b32f67a22e20adf8d2d5eba34a9ae"
        );
        // The URL sent, signed again, signs the same.
        let again = sign(
            "GET",
            &s.url,
            &[],
            b"",
            &key(Some(PROJECT), None),
            vector_time(),
        );
        assert_eq!(again, s);
    }

    #[test]
    fn rendered_headers_hide_signature_and_token() {
        let u = url(&format!("{HOST}/v2/images/x"));
        let s = sign(
            "GET",
            &u,
            &[],
            b"",
            &key(Some(PROJECT), Some("tok-secret")),
            vector_time(),
        );
        let sig = signature(&s).to_string();
        let shown = s.to_string();
        assert!(
            !shown.contains(&sig) && !shown.contains("tok-secret"),
            "{shown}"
        );
        assert!(shown.contains("X-Sdk-Date: 20261201T120000Z\n"), "{shown}");
        assert!(
            shown.contains(&format!("X-Project-Id: {PROJECT}\n")),
            "{shown}"
        );
        assert!(shown.contains("X-Security-Token: <redacted>\n"), "{shown}");
        assert!(
            shown.contains(&format!(
                "Authorization: SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;x-project-id;x-sdk-date;x-security-token, Signature=<redacted>"
            )),
            "{shown}"
        );
        assert!(!format!("{s:?}").contains(&sig));
        let wire = s.headers();
        assert_eq!(wire[2], ("X-Security-Token", "tok-secret".to_string()));
        assert!(wire[3].1.ends_with(&format!("Signature={sig}")));
    }

    #[test]
    fn canonical_uri_encoding() {
        assert_eq!(canonical_uri("/v2/images"), "/v2/images/");
        assert_eq!(canonical_uri("/v2/images/"), "/v2/images/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri(""), "/");
        // Decoded, then encoded with upper-case hex and only unreserved kept.
        assert_eq!(canonical_uri("/a%2cb/c,d/~x_y.z-"), "/a%2Cb/c%2Cd/~x_y.z-/");
        assert_eq!(
            canonical_uri("/tags/caf%C3%A9%20bar"),
            "/tags/caf%C3%A9%20bar/"
        );
        assert_eq!(canonical_uri("/tags/a+b"), "/tags/a%2Bb/");
        // An encoded slash separates segments, as in the vendor's signers.
        assert_eq!(canonical_uri("/tags/a%2Fb"), "/tags/a/b/");
    }

    #[test]
    fn unicode_image_names_in_the_path_and_the_query() {
        let u = url(&format!(
            "{HOST}/v2/images/ü-id/tags/日本?name=Ubuntu 24.04 – ü"
        ));
        assert_eq!(
            canonical_uri(u.path()),
            "/v2/images/%C3%BC-id/tags/%E6%97%A5%E6%9C%AC/"
        );
        assert_eq!(
            canonical_query(u.query_pairs()),
            "name=Ubuntu%2024.04%20%E2%80%93%20%C3%BC"
        );
    }

    #[test]
    fn canonical_query_encoding() {
        let pairs = [
            ("b", "2"),
            ("a", "x=y&z"),
            ("a", "1+1"),
            ("a", ""),
            ("name", "ims test"),
            ("é", "ß"),
            ("_", "~"),
        ];
        assert_eq!(
            canonical_query(pairs),
            "_=~&a=&a=1%2B1&a=x%3Dy%26z&b=2&name=ims%20test&%C3%A9=%C3%9F"
        );
        assert_eq!(canonical_query(Vec::<(String, String)>::new()), "");
        // Sorted by the decoded keys (as the vendor's signers sort), not by
        // their encoded form: `a.` < `a/` although `a%2F` < `a.`.
        assert_eq!(canonical_query([("a/", "1"), ("a.", "2")]), "a.=2&a%2F=1");
    }

    #[test]
    fn query_from_the_url_is_decoded_as_a_server_does() {
        // `+` is a space in a query; `%2B` a plus; keys without `=` are empty.
        let u = url("http://h/p?b=1+2&a=%2B&flag&&c=");
        assert_eq!(canonical_query(u.query_pairs()), "a=%2B&b=1%202&c=&flag=");
        let s = sign("GET", &u, &[], b"", &key(None, None), vector_time());
        assert_eq!(s.url.as_str(), "http://h/p?a=%2B&b=1%202&c=&flag=");
        let resent = sign("GET", &s.url, &[], b"", &key(None, None), vector_time());
        assert_eq!(signature(&resent), signature(&s));
    }

    #[test]
    fn repeated_keys_sort_by_value() {
        let a = url("http://h/p?tag=b&tag=a&tag=c");
        let b = url("http://h/p?tag=c&tag=a&tag=b");
        let k = key(None, None);
        let (sa, sb) = (
            sign("GET", &a, &[], b"", &k, vector_time()),
            sign("GET", &b, &[], b"", &k, vector_time()),
        );
        assert_eq!(sa.url.query(), Some("tag=a&tag=b&tag=c"));
        assert_eq!(sa, sb);
    }

    #[test]
    fn host_has_the_port_only_when_not_default() {
        assert_eq!(host(&url("https://ims.example:443/v2")), "ims.example");
        assert_eq!(host(&url("http://ims.example:80/v2")), "ims.example");
        assert_eq!(
            host(&url("https://ims.example:8443/v2")),
            "ims.example:8443"
        );
        assert_eq!(host(&url("http://127.0.0.1:9292/v2")), "127.0.0.1:9292");
        assert_eq!(host(&url("http://[::1]:9292/v2")), "[::1]:9292");
        let k = key(None, None);
        let a = sign("GET", &url("https://h:443/v2"), &[], b"", &k, vector_time());
        let b = sign("GET", &url("https://h/v2"), &[], b"", &k, vector_time());
        let c = sign(
            "GET",
            &url("https://h:8443/v2"),
            &[],
            b"",
            &k,
            vector_time(),
        );
        assert_eq!(a, b);
        assert_ne!(signature(&a), signature(&c));
        // A Host header given wins over the URL's.
        let d = sign(
            "GET",
            &url("https://h:8443/v2"),
            &[("HOST", " h ")],
            b"",
            &k,
            vector_time(),
        );
        assert_eq!(signature(&d), signature(&b));
    }

    #[test]
    fn empty_body_hashes_nothing() {
        let u = url("http://h/p");
        let signed = [("host", "h"), ("x-sdk-date", "20261201T120000Z")];
        let request = request_of("DELETE", &u, &signed, b"");
        assert!(request.ends_with(
            "\nhost;x-sdk-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ));
        let k = key(None, None);
        let empty = sign("DELETE", &u, &[], b"", &k, vector_time());
        let body = sign("DELETE", &u, &[], b"x", &k, vector_time());
        assert_ne!(signature(&empty), signature(&body));
    }

    #[test]
    fn temporary_token_is_signed() {
        let u = url("http://h/p");
        let with = sign("GET", &u, &[], b"", &key(None, Some("T1")), vector_time());
        let other = sign("GET", &u, &[], b"", &key(None, Some("T2")), vector_time());
        let without = sign("GET", &u, &[], b"", &key(None, None), vector_time());
        assert_eq!(with.signed_headers, "host;x-sdk-date;x-security-token");
        assert_ne!(signature(&with), signature(&other));
        assert_ne!(signature(&with), signature(&without));
    }

    #[test]
    fn header_values_are_trimmed_and_names_case_insensitive() {
        let u = url("http://h/p");
        let k = key(Some(PROJECT), None);
        let a = sign(
            "PUT",
            &u,
            &[("content-type", "application/json")],
            b"{}",
            &k,
            vector_time(),
        );
        let b = sign(
            "put",
            &u,
            &[("Content-TYPE", " \tapplication/json  "), ("Accept", "x/y")],
            b"{}",
            &k,
            vector_time(),
        );
        assert_eq!(
            a, b,
            "only host, content-type and the added headers are signed"
        );
        assert_eq!(
            a.signed_headers,
            "content-type;host;x-project-id;x-sdk-date"
        );
    }

    #[test]
    fn every_part_changes_the_signature() {
        let k = key(Some(PROJECT), None);
        let base = || {
            sign(
                "PATCH",
                &url("http://h:1/v2/images/a?x=1"),
                &[("Content-Type", PATCH_TYPE)],
                PATCH_BODY,
                &k,
                vector_time(),
            )
        };
        let s0 = base();
        assert_eq!(s0, base());
        let variants = [
            sign(
                "PUT",
                &url("http://h:1/v2/images/a?x=1"),
                &[("Content-Type", PATCH_TYPE)],
                PATCH_BODY,
                &k,
                vector_time(),
            ),
            sign(
                "PATCH",
                &url("http://h:1/v2/images/b?x=1"),
                &[("Content-Type", PATCH_TYPE)],
                PATCH_BODY,
                &k,
                vector_time(),
            ),
            sign(
                "PATCH",
                &url("http://h:1/v2/images/a?x=2"),
                &[("Content-Type", PATCH_TYPE)],
                PATCH_BODY,
                &k,
                vector_time(),
            ),
            sign(
                "PATCH",
                &url("http://h:2/v2/images/a?x=1"),
                &[("Content-Type", PATCH_TYPE)],
                PATCH_BODY,
                &k,
                vector_time(),
            ),
            sign(
                "PATCH",
                &url("http://h:1/v2/images/a?x=1"),
                &[("Content-Type", "application/json")],
                PATCH_BODY,
                &k,
                vector_time(),
            ),
            sign(
                "PATCH",
                &url("http://h:1/v2/images/a?x=1"),
                &[("Content-Type", PATCH_TYPE)],
                b"[]",
                &k,
                vector_time(),
            ),
            sign(
                "PATCH",
                &url("http://h:1/v2/images/a?x=1"),
                &[("Content-Type", PATCH_TYPE)],
                PATCH_BODY,
                &k,
                vector_time() + Duration::from_secs(1),
            ),
            sign(
                "PATCH",
                &url("http://h:1/v2/images/a?x=1"),
                &[("Content-Type", PATCH_TYPE)],
                PATCH_BODY,
                &key(Some("other"), None),
                vector_time(),
            ),
            sign(
                "PATCH",
                &url("http://h:1/v2/images/a?x=1"),
                &[("Content-Type", PATCH_TYPE)],
                PATCH_BODY,
                &AkSk {
                    secret_key: Secret::new("SK2"),
                    ..k.clone()
                },
                vector_time(),
            ),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(signature(v), signature(&s0), "variant {i}");
        }
    }

    #[test]
    fn sdk_date_format() {
        assert_eq!(sdk_date(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(
            sdk_date(vector_time() + Duration::from_millis(59_999)),
            "20261201T120059Z"
        );
    }
}

//! The image service endpoint: parsed, checked (scheme, host, no
//! credentials, no query) and normalised to the base before `/v2`.

use std::fmt;

use url::Url;

/// The image service base URL, normalised to end before `/v2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: Url,
}

impl Endpoint {
    /// Accepts `https://host`, `https://host/`, `https://host/v2`,
    /// `https://host/prefix/v2/` and the like.
    pub fn parse(text: &str) -> std::result::Result<Endpoint, String> {
        let mut url = Url::parse(text.trim()).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("it must start with https:// (or http://)".into());
        }
        if url.host().is_none() {
            return Err("it has no host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("it must not hold a user name or password; use a token".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("it must not have a query or fragment".into());
        }
        let path = url.path().trim_end_matches('/');
        let path = path.strip_suffix("/v2").unwrap_or(path).to_string();
        url.set_path(&path);
        Ok(Endpoint { base: url })
    }

    /// `{base}/v2/{segments...}`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("an http(s) URL has path segments");
            path.pop_if_empty().push("v2");
            path.extend(segments);
        }
        url
    }

    pub fn is_https(&self) -> bool {
        self.base.scheme() == "https"
    }

    /// Whether the host is this machine (127.0.0.0/8, ::1 or localhost).
    pub fn is_loopback(&self) -> bool {
        match self.base.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base.as_str().trim_end_matches('/'))
    }
}

/// An endpoint as typed, for messages: only its scheme, host, port and
/// path. User name, password, query and fragment may hold credentials
/// (a signed URL, `user:password@`) and are dropped, even when `text` is
/// not a valid URL.
pub fn shown(text: &str) -> String {
    let text = text.trim();
    let text = text.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = text.split_once("://") else {
        // No authority to hide: a user name needs "scheme://".
        return text.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_with_and_without_v2() {
        for text in [
            "https://ims.eu-de.otc.t-systems.com",
            "https://ims.eu-de.otc.t-systems.com/",
            "https://ims.eu-de.otc.t-systems.com/v2",
            "https://ims.eu-de.otc.t-systems.com/v2/",
        ] {
            let e = Endpoint::parse(text).unwrap();
            assert_eq!(
                e.url(&["images", "33ad552d-1149-471c-8190-ff6776174a00"]).as_str(),
                "https://ims.eu-de.otc.t-systems.com/v2/images/33ad552d-1149-471c-8190-ff6776174a00"
            );
        }
        let e = Endpoint::parse("http://127.0.0.1:9292/image/v2").unwrap();
        assert_eq!(
            e.url(&["images"]).as_str(),
            "http://127.0.0.1:9292/image/v2/images"
        );
        assert_eq!(
            e.url(&["images", "a b/c"]).as_str(),
            "http://127.0.0.1:9292/image/v2/images/a%20b%2Fc"
        );
        assert!(e.is_loopback());
        assert!(Endpoint::parse("http://localhost:9292")
            .unwrap()
            .is_loopback());
        assert!(Endpoint::parse("http://[::1]:9292").unwrap().is_loopback());
        assert!(!Endpoint::parse("http://10.0.0.1").unwrap().is_loopback());
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("https://user:pw@ims.example.com").is_err());
        assert!(Endpoint::parse("ims.example.com").is_err());
    }

    #[test]
    fn shown_keeps_only_scheme_host_port_and_path() {
        for (text, expected) in [
            (
                "https://alice:pw@glance.example:9292/v2",
                "https://glance.example:9292/v2",
            ),
            (
                "https://alice@glance.example/v2",
                "https://glance.example/v2",
            ),
            (
                "https://glance.example:9292/v2?sig=s3cret#frag",
                "https://glance.example:9292/v2",
            ),
            ("https://a:b@c@host?x", "https://host"),
            ("https://a:b@", "https://"),
            ("not a url ?q=secret", "not a url "),
            ("https://ims.example.com/", "https://ims.example.com/"),
        ] {
            assert_eq!(shown(text), expected, "{text}");
        }
    }
}

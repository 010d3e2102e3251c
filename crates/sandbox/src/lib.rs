//! `ims-patch sandbox`: a local, faithful OpenStack Glance Images API v2 server (as measured against Glance 33) for trying and testing `PATCH /v2/images/{id}` without a cloud.
//!
//! Layout:
//! * `router`: version negotiation and the route table (the place to add
//!   `/v3` routes); `context`: authentication and Glance's policies;
//! * `images`, `tags`, `listing`: the endpoints (`listing` is `GET /v2/images`
//!   with Glance's filters, operators and pagination);
//! * `data`: image data: the bounded store (memory, or files beside
//!   `--state`), checksums, and the streamed `/v2/images/{id}/file`;
//! * `actions`: deactivate/reactivate;
//! * `patch`: the PATCH deserializer and all-or-nothing application;
//! * `schema` (+ `schema-image.json`): the image schema and its validator;
//! * `image`: the image record, its JSON form and the seed images;
//! * `http`: socket-free request/response types and webob-style errors;
//! * `pyfmt`: Python-compatible repr/json/pprint so messages match Glance;
//! * `keystone`: the Keystone v3 emulation (`/v3`) and `--require-auth`;
//! * `users`: its users, projects and application credentials (`--users`);
//! * `state`: the shared state and the atomic `--state` file;
//! * `server`: tiny_http workers, the journal, persistence.
//!
//! Known differences from Glance 33 (each is a Glance bug or an artefact of
//! its deployment; the sandbox gives the sensible answer):
//! * path `/` (or `/ `): Glance creates a property named `""`; the sandbox
//!   answers 400 ``Pointer `/` does not contain a valid key.``;
//! * a `path` that is not a string: Glance 500; the sandbox 400;
//! * a UTF-8 tag in the tags URL: Glance stores it mis-decoded as Latin-1;
//!   the sandbox decodes it as UTF-8;
//! * tags keep their order (Glance stores a set and returns any order);
//! * `POST /v2/images` with a JSON array (Glance 500) or with `os_hash_algo`
//!   / `os_hash_value` (Glance stores them as custom properties): 400 / 403;
//! * the response never carries `Connection: close` (uWSGI adds it; tiny_http
//!   manages keep-alive itself);
//! * `GET /v2/images` with a range filter on anything but an integer
//!   attribute (`name_min=1`) or an empty `changes-since`: Glance 500; the
//!   sandbox 400.
//!
//! Every other list filter, operator, sort and marker answer is Glance's:
//! see `listing` and the conformance suite.

mod actions;
pub mod aksk;
mod context;
mod data;
mod http;
mod image;
mod images;
mod keystone;
mod listing;
mod patch;
mod pyfmt;
mod router;
mod schema;
mod server;
mod state;
mod tags;
#[cfg(test)]
mod testutil;
mod users;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// How to run the sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// Address to listen on (default 127.0.0.1).
    pub bind: IpAddr,
    /// Keep the images in this JSON file (created from the seed if missing,
    /// rewritten atomically after every change).
    pub state: Option<PathBuf>,
    /// When set, every request whose `X-Auth-Token` differs gets 401.
    pub token: Option<String>,
    /// Append one JSON line per request received to this file.
    pub journal: Option<PathBuf>,
    /// Most image data held, in bytes, over all images (in memory, or in
    /// files beside `state`); an upload past it is answered 413.
    pub max_image_size: u64,
    /// Lifetime of the tokens its Keystone v3 issues (`--token-ttl SECONDS`).
    pub token_ttl: Duration,
    /// Keystone users file, TOML or `.json` (`--users FILE`); `None`: the
    /// user `demo` / `demopass` in project `demo`, domain `Default`.
    pub users: Option<PathBuf>,
    /// The image API answers 401 unless `X-Auth-Token` is a valid token of
    /// its Keystone (or the static `token`) (`--require-auth`).
    pub require_auth: bool,
    /// When set, every request must carry a valid AK/SK signature of this
    /// key pair (the API Gateway's check, `aksk`), and `GET /v3/projects`
    /// answers a region's project as IAM does.
    pub aksk: Option<aksk::Gateway>,
}

/// Default of [`Options::max_image_size`]: 512 MiB.
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = data::DEFAULT_MAX_IMAGE_SIZE;

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 9292,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            state: None,
            token: None,
            journal: None,
            max_image_size: DEFAULT_MAX_IMAGE_SIZE,
            token_ttl: keystone::DEFAULT_TOKEN_TTL,
            users: None,
            require_auth: false,
            aksk: None,
        }
    }
}

/// A value as it can be pasted after `export NAME=` in a POSIX shell.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:/@%+=".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Runs the sandbox until the process is killed.
///
/// Prints `export IMS_PATCH_ENDPOINT=...` and `export IMS_PATCH_TOKEN=...`
/// on stdout (flushed at once, so a caller can read the port from the first
/// line), and status on stderr.
pub fn run(opts: Options) -> anyhow::Result<()> {
    let running = server::start(&opts)?;
    // One write, so a reader sees both lines together; and a stdout closed
    // after reading the first line (as test harnesses do) must not stop
    // the server, so write errors are ignored.
    let exports = exports(&running.endpoint, &opts);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(exports.as_bytes()).and_then(|()| out.flush());
    drop(out);
    let storage = match &opts.state {
        Some(path) => format!("state in {}", path.display()),
        None => "in memory".to_string(),
    };
    note(&format!(
        "serving {} images on {} ({storage}; Ctrl-C to stop)",
        running.image_count, running.endpoint
    ));
    if !opts.bind.is_loopback() {
        note(&format!(
            "warning: listening on {}, so other machines can reach it; the sandbox is for tests and has no real authentication",
            running.addr
        ));
    }
    let identities = match &opts.users {
        Some(path) => format!("users from {}", path.display()),
        None => "user demo, domain Default, project demo".to_string(),
    };
    note(&format!(
        "Keystone v3 at {}/v3 ({identities}; tokens last {} s)",
        running.endpoint,
        opts.token_ttl.as_secs()
    ));
    if opts.aksk.is_some() {
        note("every request must be signed with the --access-key/--secret-key pair (SDK-HMAC-SHA256); GET /v3/projects?name=REGION answers the region's project");
    } else {
        note(match (&opts.token, opts.require_auth) {
        (Some(_), true) => "image requests must send a token of its Keystone, or the --token value, as X-Auth-Token",
        (None, true) => "image requests must send a token of its Keystone as X-Auth-Token",
        (Some(_), false) => "requests must send X-Auth-Token equal to the --token value",
        (None, false) => "any X-Auth-Token (or none) is accepted",
    });
    }
    if let Some(journal) = &opts.journal {
        note(&format!("journal of requests in {}", journal.display()));
    }
    running.serve(server::WORKERS)
}

/// A sandbox serving on background threads of this process, for running
/// something against it (`ims-patch sandbox -- COMMAND`).
pub struct Background {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub image_count: usize,
    shared: std::sync::Arc<server::Shared>,
}

/// Binds, loads and starts serving on background threads; returns at once.
pub fn start_background(opts: &Options) -> anyhow::Result<Background> {
    let running = server::start(opts)?;
    let background = Background {
        endpoint: running.endpoint.clone(),
        image_count: running.image_count,
        shared: std::sync::Arc::clone(&running.shared),
    };
    std::thread::Builder::new()
        .name("sandbox".into())
        .spawn(move || running.serve(server::WORKERS))?;
    Ok(background)
}

impl Background {
    /// Stops answering: waits for the request being handled (its state
    /// file and journal line are written under the same lock) and keeps
    /// the lock, so that no other starts, until the process exits.
    pub fn stop(self) {
        let guard = self
            .shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::forget(guard);
    }
}

/// The `export` lines for a client of an AK/SK sandbox: the endpoint, the
/// key pair and a region (whose project the client looks up here).
fn aksk_exports(endpoint: &str, gw: &aksk::Gateway) -> String {
    let mut out = format!(
        "export IMS_PATCH_ENDPOINT={endpoint}\nexport IMS_PATCH_ACCESS_KEY={}\nexport IMS_PATCH_SECRET_KEY={}\nexport IMS_PATCH_REGION=eu-de\n",
        shell_word(&gw.access_key),
        shell_word(&gw.secret_key)
    );
    if let Some(t) = &gw.security_token {
        out.push_str(&format!(
            "export IMS_PATCH_SECURITY_TOKEN={}\n",
            shell_word(t)
        ));
    }
    out
}

/// The `export` lines printed on start. With `require_auth` and no static
/// token, no `IMS_PATCH_TOKEN` line: any made-up token would be refused, a
/// client must log in at `{endpoint}/v3`.
fn exports(endpoint: &str, opts: &Options) -> String {
    if let Some(gw) = &opts.aksk {
        // No token line: a token in the environment would win over AK/SK.
        return aksk_exports(endpoint, gw);
    }
    let mut out = format!("export IMS_PATCH_ENDPOINT={endpoint}\n");
    let token = match (&opts.token, opts.require_auth) {
        (Some(t), _) => Some(t.as_str()),
        (None, false) => Some("sandbox"),
        (None, true) => None,
    };
    if let Some(t) = token {
        out.push_str(&format!("export IMS_PATCH_TOKEN={}\n", shell_word(t)));
    }
    out
}

/// A status line on stderr; a closed stderr is not an error worth dying for.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "ims-patch sandbox: {text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aksk_export_lines() {
        let gw = aksk::Gateway {
            access_key: "AK".into(),
            secret_key: "S K".into(),
            security_token: Some("tok".into()),
        };
        assert_eq!(
            aksk_exports("http://h:1", &gw),
            "export IMS_PATCH_ENDPOINT=http://h:1\nexport IMS_PATCH_ACCESS_KEY=AK\nexport IMS_PATCH_SECRET_KEY='S K'\nexport IMS_PATCH_REGION=eu-de\nexport IMS_PATCH_SECURITY_TOKEN=tok\n"
        );
    }

    #[test]
    fn export_lines() {
        let mut o = Options::default();
        assert_eq!(
            exports("http://h:1", &o),
            "export IMS_PATCH_ENDPOINT=http://h:1\nexport IMS_PATCH_TOKEN=sandbox\n"
        );
        o.require_auth = true;
        assert_eq!(
            exports("http://h:1", &o),
            "export IMS_PATCH_ENDPOINT=http://h:1\n"
        );
        o.token = Some("a b".into());
        assert!(exports("http://h:1", &o).ends_with("export IMS_PATCH_TOKEN='a b'\n"));
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_word("sandbox"), "sandbox");
        assert_eq!(shell_word("gAAAA-b_c.d"), "gAAAA-b_c.d");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }
}

//! The socket side: binding, the tiny_http worker threads sharing one server and one state mutex, the request journal, and persisting the state after each change.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use anyhow::anyhow;
use serde_json::{Map, Value};

use super::data;
use super::http::{ApiError, Request, Response};
use super::image;
use super::router;
use super::state::{self, State};
use super::Options;
use super::{keystone, users};

/// Worker threads pulling requests from the shared server.
pub const WORKERS: usize = 4;

/// The pure request handler the workers call (`router::handle`; tests
/// put in one that misbehaves).
pub type Handler = fn(&mut State, &Request) -> Response;

/// The largest request body read for the JSON API (image data is streamed
/// and bounded by `--max-image-size` instead).
pub const MAX_REQUEST_BODY: u64 = 16 * 1024 * 1024;

/// What the workers share.
pub struct Shared {
    pub state: Mutex<State>,
    pub handler: Handler,
    pub state_path: Option<PathBuf>,
    pub journal: Option<Mutex<File>>,
    /// Image data (`PUT`/`GET .../file`), bounded by `--max-image-size`.
    pub data: data::Store,
}

/// A bound, loaded sandbox that has not started serving yet.
pub struct Running {
    pub server: Arc<tiny_http::Server>,
    pub shared: Arc<Shared>,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`: what clients should use.
    pub endpoint: String,
    pub image_count: usize,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic in one request must not take the whole sandbox down.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn bind_error(addr: SocketAddr, e: std::io::Error) -> anyhow::Error {
    match e.kind() {
        ErrorKind::AddrInUse => anyhow!(
            "cannot listen on {addr}: address in use; stop whatever holds port {} (maybe another sandbox), pick another port with --port, or use --port 0 for a free one",
            addr.port()
        ),
        ErrorKind::AddrNotAvailable => anyhow!(
            "cannot listen on {addr}: address not available on this machine; use --bind with a local address such as 127.0.0.1"
        ),
        ErrorKind::PermissionDenied => anyhow!(
            "cannot listen on {addr}: permission denied; ports below 1024 need privileges, pick another with --port"
        ),
        _ => anyhow!(
            "cannot listen on {addr}: {}; try another --port or --bind",
            e.to_string().to_lowercase()
        ),
    }
}

/// A listening socket whose accepted connections have `TCP_NODELAY` (on
/// Linux and the BSDs they inherit it from the listener). tiny_http writes a
/// response through a 1 KiB buffer, so a larger one leaves in two segments;
/// with Nagle's algorithm the second waits for the client's delayed ACK,
/// and every request after the first on a kept-alive connection took ~44 ms.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// The host part clients should use for a bind address.
fn endpoint_host(bind: IpAddr) -> String {
    match bind {
        IpAddr::V4(a) if a.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
        IpAddr::V6(a) if a.is_unspecified() => format!("[{}]", Ipv6Addr::LOCALHOST),
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// Binds the port, loads (or creates) the state file and opens the journal.
pub fn start(opts: &Options) -> anyhow::Result<Running> {
    let wanted = SocketAddr::new(opts.bind, opts.port);
    let listener = listen(wanted).map_err(|e| bind_error(wanted, e))?;
    let addr = listener.local_addr()?;
    let endpoint = format!("http://{}:{}", endpoint_host(opts.bind), addr.port());

    let images = match &opts.state {
        None => image::seed_images(),
        Some(path) => match state::load(path)? {
            Some(images) => images,
            None => {
                let seed = image::seed_images();
                state::save(path, &seed)?;
                seed
            }
        },
    };
    let journal = match &opts.journal {
        None => None,
        Some(path) => Some(Mutex::new(open_journal(path).map_err(|e| {
            anyhow!(
                "cannot open journal \"{}\": {}; check that its directory exists and is writable, or drop --journal",
                path.display(),
                e.to_string().to_lowercase()
            )
        })?)),
    };
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| anyhow!("cannot serve on {addr}: {e}"))?;
    let image_count = images.len();
    let store = data::Store::new(opts.max_image_size, opts.state.as_deref());
    store.load(&images);
    if store.held() > store.cap() {
        // Main's first data module refused to start here; starting is more
        // useful (metadata and downloads work), but say why uploads fail.
        super::note(&format!(
            "warning: the image data kept beside the state ({} bytes) is over --max-image-size ({} bytes), so every upload will be refused (413); raise --max-image-size or delete some images",
            store.held(),
            store.cap()
        ));
    }
    let mut state = State::new(images, &endpoint, opts.token.clone());
    state.aksk = opts.aksk.clone();
    let users = match &opts.users {
        Some(path) => users::load(path)?,
        None => users::Directory::default(),
    };
    state.keystone = keystone::Keystone::new(users, opts.token_ttl, opts.require_auth);
    Ok(Running {
        server: Arc::new(server),
        shared: Arc::new(Shared {
            state: Mutex::new(state),
            handler: router::handle,
            state_path: opts.state.clone(),
            journal,
            data: store,
        }),
        addr,
        endpoint,
        image_count,
    })
}

impl Running {
    /// Serves forever with `workers` threads.
    pub fn serve(self, workers: usize) -> anyhow::Result<()> {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|n| {
                let server = Arc::clone(&self.server);
                let shared = Arc::clone(&self.shared);
                thread::Builder::new()
                    .name(format!("sandbox-worker-{n}"))
                    .spawn(move || worker(&server, &shared))
            })
            .collect::<Result<_, _>>()?;
        for h in handles {
            let _ = h.join();
        }
        Err(anyhow!("all sandbox workers stopped"))
    }
}

fn worker(server: &tiny_http::Server, shared: &Shared) {
    loop {
        match server.recv() {
            Ok(rq) => {
                // A panic while reading or answering one request must not
                // end the worker (the handler itself is guarded in
                // `process`; this catches the socket side).
                let served = panic::catch_unwind(AssertUnwindSafe(|| serve_one(shared, rq)));
                if served.is_err() {
                    super::note("a request panicked outside the handler; the worker goes on");
                }
            }
            Err(e) => {
                super::note(&format!("error receiving a request: {e}"));
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Turns a tiny_http request into the handler's request (reads the body).
/// Reads at most `MAX_REQUEST_BODY` bytes of the body (memory stays bounded
/// whatever a client sends); a longer body is marked and answered 413.
/// (Image data never comes here: `serve_file` streams it.)
fn to_request(rq: &mut tiny_http::Request) -> std::io::Result<Request> {
    use std::io::Read;
    let limit = MAX_REQUEST_BODY;
    let mut body = Vec::new();
    rq.as_reader().take(limit + 1).read_to_end(&mut body)?;
    let body_too_large = body.len() as u64 > limit;
    if body_too_large {
        body.truncate(0);
    }
    Ok(Request {
        method: rq.method().to_string(),
        url: rq.url().to_string(),
        headers: rq
            .headers()
            .iter()
            .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
            .collect(),
        body,
        body_too_large,
    })
}

/// Opens the journal for appending, readable by its owner only (it records
/// requests, and even redacted they are nobody else's business).
fn open_journal(path: &std::path::Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // An existing journal keeps its mode on open: tighten it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// What the journal shows instead of a credential.
pub const REDACTED: &str = "<redacted>";

/// Headers whose whole value is a credential.
const SECRET_HEADERS: &[&str] = &[
    "x-auth-token",
    "x-subject-token",
    "x-security-token",
    "x-service-token",
    "cookie",
    "proxy-authorization",
];

/// A header value as the journal records it: credentials redacted. An
/// `Authorization` header keeps its scheme and the AK/SK parameters that
/// are not secret (`Access=`, `SignedHeaders=`), never the signature.
pub fn redact_header(name: &str, value: &str) -> String {
    if SECRET_HEADERS.contains(&name) {
        return REDACTED.to_string();
    }
    if name != "authorization" {
        return value.to_string();
    }
    let (scheme, params) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let kept: Vec<String> = params
        .split(',')
        .filter_map(|p| {
            let (k, _) = p.trim().split_once('=')?;
            ["Access", "SignedHeaders"]
                .iter()
                .any(|keep| k.trim().eq_ignore_ascii_case(keep))
                .then(|| p.trim().to_string())
        })
        .collect();
    if kept.is_empty() {
        format!("{scheme} {REDACTED}")
    } else {
        format!("{scheme} {}, Signature={REDACTED}", kept.join(", "))
    }
}

/// A JSON body as the journal records it: the values of `password`,
/// `secret` and the token method's `id` (Keystone's auth body) redacted.
/// Anything that is not JSON is recorded as received.
pub fn redact_body(body: &[u8]) -> String {
    fn walk(v: &mut Value, in_token: bool) {
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    let secret =
                        matches!(k.as_str(), "password" | "secret") || (in_token && k == "id");
                    if secret && !child.is_object() && !child.is_array() {
                        *child = Value::String(REDACTED.to_string());
                    } else {
                        walk(child, k == "token");
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|c| walk(c, false)),
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(body).into_owned();
    match serde_json::from_str::<Value>(&text) {
        Ok(mut v) if v.is_object() || v.is_array() => {
            let before = v.clone();
            walk(&mut v, false);
            if v == before {
                text
            } else {
                v.to_string()
            }
        }
        _ => text,
    }
}

/// One journal line: what was received and the status it got, with every
/// credential redacted; image data (`data_len` when it was streamed) is
/// recorded as its size.
pub fn journal_line(req: &Request, status: u16, data_len: Option<u64>) -> String {
    let mut headers = Map::new();
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        let value = &redact_header(&name, value);
        let joined = match headers.get(&name).and_then(Value::as_str) {
            Some(prev) => format!("{prev}, {value}"),
            None => value.clone(),
        };
        headers.insert(name, Value::String(joined));
    }
    let mut m = Map::new();
    m.insert("method".into(), Value::String(req.method.clone()));
    m.insert("path".into(), Value::String(req.raw_path().to_string()));
    m.insert(
        "query".into(),
        req.raw_query()
            .map_or(Value::Null, |q| Value::String(q.to_string())),
    );
    m.insert("headers".into(), Value::Object(headers));
    let body = if req
        .get_header("Content-Type")
        .is_some_and(|ct| ct.starts_with("application/octet-stream"))
    {
        // Image data: its size, not megabytes of bytes as text.
        let len = data_len.unwrap_or(req.body.len() as u64);
        format!("<{len} bytes of image data>")
    } else if keystone::is_identity_path(req.raw_path())
        && !req.body.is_empty()
        && serde_json::from_slice::<Value>(&req.body).is_err()
    {
        // An identity body that is not JSON may hold anything (a
        // password in a form): not recorded.
        format!("<redacted: {} bytes, not JSON>", req.body.len())
    } else {
        redact_body(&req.body)
    };
    m.insert("body".into(), Value::String(body));
    m.insert("status".into(), Value::from(status));
    Value::Object(m).to_string()
}

/// The answer to a request whose handler panicked: Glance's own 500.
fn internal_error(req: &Request) -> Response {
    panic::catch_unwind(|| ApiError::bare(500).render(req)).unwrap_or_else(|_| {
        Response::empty(500).with_header("Content-Type", "text/plain; charset=UTF-8")
    })
}

/// Handles a request under the state lock: apply, persist, journal. A
/// panic in the handler is answered 500 and leaves the worker running.
pub fn process(shared: &Shared, req: &Request) -> Response {
    let mut state = lock(&shared.state);
    let handler = shared.handler;
    let resp =
        panic::catch_unwind(AssertUnwindSafe(|| handler(&mut state, req))).unwrap_or_else(|_| {
            super::note(&format!(
                "the handler panicked on {} {}; answered 500",
                req.method,
                req.raw_path()
            ));
            internal_error(req)
        });
    record(shared, &mut state, req, resp, None)
}

/// Persists a change (dropping the data of deleted images) and journals;
/// `data_len` is the size of an upload streamed past `req.body`.
fn record(
    shared: &Shared,
    state: &mut State,
    req: &Request,
    resp: Response,
    data_len: Option<u64>,
) -> Response {
    if state.dirty {
        shared.data.prune(&state.images);
        state.dirty = false;
        if let Some(path) = &shared.state_path {
            // The data is already in its file (`data::Store` writes it
            // before the image turns active).
            if let Err(e) = state::save(path, &state.images) {
                super::note(&format!("{e:#}"));
            }
        }
    }
    if let Some(journal) = &shared.journal {
        let line = journal_line(req, resp.status, data_len);
        let mut f = journal.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = writeln!(f, "{line}").and_then(|()| f.flush()) {
            super::note(&format!("cannot write the journal: {e}"));
        }
    }
    resp
}

/// The request line and headers only (the body is left to be streamed).
fn head_of(rq: &tiny_http::Request) -> Request {
    Request {
        method: rq.method().to_string(),
        url: rq.url().to_string(),
        headers: rq
            .headers()
            .iter()
            .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
            .collect(),
        body: Vec::new(),
        body_too_large: false,
    }
}

/// Counts the bytes read through it (for the journal).
struct Counting<'a> {
    inner: &'a mut dyn std::io::Read,
    count: u64,
}

impl std::io::Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// `/v2/images/{id}/file`: the upload streams into the bounded store, the
/// download streams out of it.
fn serve_file(shared: &Shared, mut rq: tiny_http::Request, id: &str) {
    let mut req = head_of(&rq);
    let signed = lock(&shared.state).aksk.is_some();
    // An AK/SK signature covers the body: read it first, within the
    // gateway's 12 MB (more is the gateway's 413), then check and store it.
    let mut signed_body: Option<std::io::Cursor<Vec<u8>>> = None;
    if signed && req.method == "PUT" {
        use std::io::Read;
        let cap = super::aksk::MAX_BODY as u64;
        let mut body = Vec::new();
        if let Err(e) = rq.as_reader().take(cap + 1).read_to_end(&mut body) {
            super::note(&format!("cannot read a request body: {e}"));
            let _ = rq.respond(tiny_http::Response::empty(400));
            return;
        }
        req.body = body.clone();
        signed_body = Some(std::io::Cursor::new(body));
    }
    let (resp, body, data_len) = if req.method == "PUT" {
        let inner: &mut dyn std::io::Read = match signed_body.as_mut() {
            Some(cursor) => cursor,
            None => rq.as_reader(),
        };
        let mut counting = Counting { inner, count: 0 };
        let resp = data::upload(&shared.state, &shared.data, &req, id, &mut counting);
        (resp, None, Some(counting.count))
    } else {
        let state = lock(&shared.state);
        let d = data::download(&state, &shared.data, &req, id);
        (d.response, d.body, None)
    };
    let resp = record(shared, &mut lock(&shared.state), &req, resp, data_len);
    let headers: Vec<tiny_http::Header> = resp
        .headers
        .iter()
        .filter_map(|(n, v)| tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()).ok())
        .collect();
    let sent = match body {
        Some((reader, len)) => rq.respond(tiny_http::Response::new(
            resp.status.into(),
            headers,
            reader,
            usize::try_from(len).ok(),
            None,
        )),
        None => rq.respond(tiny_http::Response::new(
            resp.status.into(),
            headers,
            &resp.body[..],
            Some(resp.body.len()),
            None,
        )),
    };
    if let Err(e) = sent {
        super::note(&format!("cannot send a response: {e}"));
    }
}

fn serve_one(shared: &Shared, mut rq: tiny_http::Request) {
    if let Some(id) = data::file_target(rq.url()).map(str::to_string) {
        return serve_file(shared, rq, &id);
    }
    let req = match to_request(&mut rq) {
        Ok(r) => r,
        Err(e) => {
            super::note(&format!("cannot read a request body: {e}"));
            let _ = rq.respond(tiny_http::Response::empty(400));
            return;
        }
    };
    let resp = process(shared, &req);
    let mut out = tiny_http::Response::from_data(resp.body)
        .with_status_code(resp.status)
        .with_chunked_threshold(usize::MAX);
    for (name, value) in &resp.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            out.add_header(h);
        }
    }
    if let Err(e) = rq.respond(out) {
        super::note(&format!("cannot send a response: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Read};
    use std::net::{Ipv4Addr, TcpStream};

    fn raw_http(addr: SocketAddr, request: &str) -> (u16, String, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_string(), body.to_string())
    }

    #[test]
    fn serves_real_http_with_state_and_journal() {
        let dir = std::env::temp_dir().join(format!("ims-sandbox-srv-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let state_path = dir.join("state.json");
        let journal_path = dir.join("journal.jsonl");
        let opts = Options {
            port: 0,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            state: Some(state_path.clone()),
            token: Some("tok".into()),
            journal: Some(journal_path.clone()),
            ..Options::default()
        };
        let running = start(&opts).unwrap();
        let addr = running.addr;
        assert!(running.endpoint.starts_with("http://127.0.0.1:"));
        assert!(state_path.exists(), "state file created from the seed");
        thread::spawn(move || running.serve(2));

        let (status, head, body) = raw_http(
            addr,
            "GET /v2/images/33ad552d-1149-471c-8190-ff6776174a00 HTTP/1.1\r\nHost: x\r\nX-Auth-Token: tok\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200, "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("x-openstack-request-id: req-"),
            "{head}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["name"], "ims_test");

        let patch = r#"[{"op": "replace", "path": "/name", "value": "renamed"}]"#;
        let (status, _, body) = raw_http(
            addr,
            &format!(
                "PATCH /v2/images/33ad552d-1149-471c-8190-ff6776174a00?x=1 HTTP/1.1\r\nHost: x\r\nX-Auth-Token: tok\r\nContent-Type: application/openstack-images-v2.1-json-patch\r\nUser-Agent: test-agent/1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{patch}",
                patch.len()
            ),
        );
        assert_eq!(status, 200, "{body}");
        let saved = state::load(&state_path).unwrap().unwrap();
        assert_eq!(saved[0].name.as_deref(), Some("renamed"));

        let (status, head, _) = raw_http(addr, "GET /v2/images HTTP/1.1\r\nHost: x\r\nX-Auth-Token: wrong\r\nConnection: close\r\n\r\n");
        assert_eq!(status, 401);
        assert!(head.contains("WWW-Authenticate: Keystone uri="), "{head}");

        let lines: Vec<Value> = std::io::BufReader::new(File::open(&journal_path).unwrap())
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["method"], "GET");
        assert_eq!(lines[0]["query"], Value::Null);
        assert_eq!(lines[1]["method"], "PATCH");
        assert_eq!(
            lines[1]["path"],
            "/v2/images/33ad552d-1149-471c-8190-ff6776174a00"
        );
        assert_eq!(lines[1]["query"], "x=1");
        // The token is never written down, and the file is private.
        assert_eq!(lines[1]["headers"]["x-auth-token"], REDACTED);
        let journal_text = std::fs::read_to_string(&journal_path).unwrap();
        assert!(!journal_text.contains("tok\""), "{journal_text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&journal_path)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            lines[1]["headers"]["content-type"],
            "application/openstack-images-v2.1-json-patch"
        );
        assert_eq!(lines[1]["headers"]["user-agent"], "test-agent/1.0");
        assert_eq!(lines[1]["body"], patch);
        assert_eq!(lines[1]["status"], 200);
        assert_eq!(lines[2]["status"], 401);

        // Image data is kept beside the state file and read back on start.
        let create = r#"{"id": "11111111-2222-3333-4444-555555555555", "disk_format": "raw", "container_format": "bare"}"#;
        let (status, _, body) = raw_http(
            addr,
            &format!(
                "POST /v2/images HTTP/1.1\r\nHost: x\r\nX-Auth-Token: tok\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{create}",
                create.len()
            ),
        );
        assert_eq!(status, 201, "{body}");
        let (status, _, body) = raw_http(
            addr,
            "PUT /v2/images/11111111-2222-3333-4444-555555555555/file HTTP/1.1\r\nHost: x\r\nX-Auth-Token: tok\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbytes",
        );
        assert_eq!(status, 204, "{body}");
        let data_dir = state::data_dir(&state_path);
        let files: Vec<_> = std::fs::read_dir(&data_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            files,
            ["31313131313131312d323232322d333333332d343434342d353535353535353535353535"],
            "the file is named by the hex of the id"
        );
        let reloaded = State::new(state::load(&state_path).unwrap().unwrap(), "", None);
        let store = data::Store::new(1 << 20, Some(&state_path));
        store.load(&reloaded.images);
        let mut back = Vec::new();
        store
            .open("11111111-2222-3333-4444-555555555555", 0)
            .expect("data read back")
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, b"bytes");

        let (status, _, _) = raw_http(
            addr,
            "DELETE /v2/images/11111111-2222-3333-4444-555555555555 HTTP/1.1\r\nHost: x\r\nX-Auth-Token: tok\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 204);
        let journal = std::fs::read_to_string(&journal_path).unwrap();
        assert!(
            journal.contains(r#""body":"<5 bytes of image data>""#),
            "{journal}"
        );
        assert_eq!(
            std::fs::read_dir(&data_dir).unwrap().count(),
            0,
            "data deleted with its image"
        );

        // A second sandbox on the same port is refused with a helpful error.
        let busy = Options {
            port: addr.port(),
            state: None,
            journal: None,
            ..opts
        };
        let err = start(&busy).err().unwrap().to_string();
        assert!(
            err.starts_with(&format!("cannot listen on {addr}: address in use")),
            "{err}"
        );
        assert!(err.contains("--port"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_panicking_request_leaves_every_worker_running() {
        fn boom(state: &mut State, req: &Request) -> Response {
            if req.raw_path() == "/boom" {
                panic!("a handler bug");
            }
            router::handle(state, req)
        }
        let mut running = start(&Options {
            port: 0,
            ..Options::default()
        })
        .unwrap();
        Arc::get_mut(&mut running.shared).unwrap().handler = boom;
        let addr = running.addr;
        thread::spawn(move || running.serve(2));
        for _ in 0..5 {
            let (status, _, body) = raw_http(
                addr,
                "GET /boom HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
            );
            assert_eq!(status, 500, "{body}");
            assert!(body.contains("The server has either erred"), "{body}");
        }
        let (status, _, _) = raw_http(
            addr,
            "GET /v2/images HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200);
    }

    /// Removing `/<aé>` without an `Accept` header used to panic in
    /// `strip_tags`, and four of them killed every worker.
    #[test]
    fn a_multibyte_character_after_lt_in_an_error_is_answered() {
        let running = start(&Options {
            port: 0,
            ..Options::default()
        })
        .unwrap();
        let addr = running.addr;
        thread::spawn(move || running.serve(4));
        let patch = r#"[{"op": "remove", "path": "/<aé>"}]"#;
        for _ in 0..5 {
            let (status, _, body) = raw_http(
                addr,
                &format!(
                    "PATCH /v2/images/33ad552d-1149-471c-8190-ff6776174a00 HTTP/1.1\r\nHost: x\r\nContent-Type: application/openstack-images-v2.1-json-patch\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{patch}",
                    patch.len()
                ),
            );
            assert_eq!(status, 409, "{body}");
            // The body measured on Glance 33 for the same request.
            assert_eq!(body, "409 Conflict\n\nThere was a conflict when trying to complete your request.\n\n Property  does not exist.  ");
        }
        let (status, _, _) = raw_http(
            addr,
            "GET /v2/images HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200);
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(redact_header("x-auth-token", "gAAAAsecret"), REDACTED);
        assert_eq!(redact_header("x-security-token", "s"), REDACTED);
        assert_eq!(redact_header("content-type", "a/b"), "a/b");
        assert_eq!(
            redact_header(
                "authorization",
                "SDK-HMAC-SHA256 Access=AKID, SignedHeaders=host;x-sdk-date, Signature=abc123"
            ),
            "SDK-HMAC-SHA256 Access=AKID, SignedHeaders=host;x-sdk-date, Signature=<redacted>"
        );
        assert_eq!(
            redact_header("authorization", "Bearer xyz"),
            "Bearer <redacted>"
        );
        let auth = br#"{"auth": {"identity": {"methods": ["password", "token"], "password": {"user": {"name": "u", "password": "hunter2"}}, "token": {"id": "gAAAtok"}}}}"#;
        let redacted = redact_body(auth);
        assert!(
            !redacted.contains("hunter2") && !redacted.contains("gAAAtok"),
            "{redacted}"
        );
        let v: Value = serde_json::from_str(&redacted).unwrap();
        assert_eq!(
            v["auth"]["identity"]["password"]["user"]["password"],
            REDACTED
        );
        assert_eq!(v["auth"]["identity"]["password"]["user"]["name"], "u");
        assert_eq!(v["auth"]["identity"]["token"]["id"], REDACTED);
        // Image bodies are recorded byte for byte.
        let patch = r#"[{"op": "add", "path": "/password", "value": "x"}]"#;
        assert_eq!(redact_body(patch.as_bytes()), patch);
        let create = r#"{"name": "a",  "id": "b"}"#;
        assert_eq!(redact_body(create.as_bytes()), create);
    }

    // From the Keystone emulation's branch: every secret of every login
    // method, in the one redaction the journal uses.
    #[test]
    fn journal_bodies_hide_every_secret() {
        let body = serde_json::json!({"auth": {"identity": {"methods": ["password", "token", "application_credential"],
            "password": {"user": {"name": "demo", "password": "hunter2"}},
            "token": {"id": "gAAAAABsecret"},
            "application_credential": {"id": "acid", "secret": "s3cr3t"}}}});
        let text = redact_body(body.to_string().as_bytes());
        for secret in ["hunter2", "gAAAAABsecret", "s3cr3t"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(
            text.contains("\"acid\""),
            "ids that are not secrets stay: {text}"
        );
        assert!(text.contains("\"demo\""), "{text}");
        // A secret that is not a string is hidden too.
        assert!(!redact_body(br#"{"password": 12345}"#).contains("12345"));
        // An identity body that is not JSON is not recorded at all.
        let login = Request::new("POST", "/v3/auth/tokens").body("password=hunter2");
        let line: Value = serde_json::from_str(&journal_line(&login, 400, None)).unwrap();
        assert_eq!(line["body"], "<redacted: 16 bytes, not JSON>");
        let empty = Request::new("GET", "/v3");
        let line: Value = serde_json::from_str(&journal_line(&empty, 200, None)).unwrap();
        assert_eq!(line["body"], "");
        assert!(keystone::is_identity_path("/v3/auth/tokens"));
        assert!(!keystone::is_identity_path("/v2/images"));
    }

    /// Reads one HTTP/1.1 response with a Content-Length from `s`.
    fn read_response(s: &mut std::io::BufReader<TcpStream>) -> u16 {
        let mut status_line = String::new();
        s.read_line(&mut status_line).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            s.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        s.read_exact(&mut body).unwrap();
        status_line.split(' ').nth(1).unwrap().parse().unwrap()
    }

    /// Requests after the first on a kept-alive connection used to wait
    /// ~44 ms each (a response in two segments, Nagle, delayed ACK). The
    /// connections the server accepts have `TCP_NODELAY`: checked on the
    /// socket itself, not by timing (bench/keepalive.sh measures the effect).
    #[test]
    fn accepted_connections_have_no_delay() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }

    /// More kept-alive connections than tiny_http's idle threads, opened
    /// at once, are all answered. tiny_http runs each connection as one
    /// pool task for its whole kept-alive life, and its pool queued a new
    /// connection whenever a thread looked idle, counting threads already
    /// woken for earlier connections: the extra connections were read by
    /// nobody until another one closed (in a batch run, when the client
    /// dropped its idle connections 2-4 s later). Here no connection closes
    /// within a round, so a stranded one waits out the read timeout.
    #[test]
    fn many_kept_alive_connections_opened_at_once_are_all_served() {
        let running = start(&Options {
            port: 0,
            ..Options::default()
        })
        .unwrap();
        let addr = running.addr;
        thread::spawn(move || running.serve(WORKERS));
        for round in 0..20 {
            // Connected back to back: the accept thread takes them from
            // the backlog faster than the pool's threads wake up.
            let streams: Vec<TcpStream> =
                (0..12).map(|_| TcpStream::connect(addr).unwrap()).collect();
            for mut s in &streams {
                s.write_all(b"GET /v2/images HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
            }
            for (n, s) in streams.iter().enumerate() {
                // Generous: an answer takes milliseconds, a stranded
                // connection forever.
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let answered = s.peek(&mut [0; 1]);
                assert!(
                    matches!(answered, Ok(1)),
                    "round {round}: connection {n} of 12 not answered within 5 s: {answered:?}"
                );
                let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
                assert_eq!(read_response(&mut reader), 200);
            }
        }
    }

    #[test]
    fn endpoint_hosts() {
        assert_eq!(endpoint_host("0.0.0.0".parse().unwrap()), "127.0.0.1");
        assert_eq!(endpoint_host("::".parse().unwrap()), "[::1]");
        assert_eq!(endpoint_host("::1".parse().unwrap()), "[::1]");
        assert_eq!(endpoint_host("192.168.1.5".parse().unwrap()), "192.168.1.5");
    }
}

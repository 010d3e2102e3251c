//! The socket side: binding, the tiny_http worker threads sharing one server and one state mutex, the request journal, and persisting the state after each change.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use anyhow::anyhow;
use serde_json::{Map, Value};

use super::api;
use super::http::{Request, Response};
use super::image;
use super::state::{self, State};
use super::Options;
use super::{keystone, users};

/// Worker threads pulling requests from the shared server.
pub const WORKERS: usize = 4;

/// What the workers share.
pub struct Shared {
    pub state: Mutex<State>,
    pub state_path: Option<PathBuf>,
    pub journal: Option<Mutex<File>>,
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
    let listener = TcpListener::bind(wanted).map_err(|e| bind_error(wanted, e))?;
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
        Some(path) => Some(Mutex::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    anyhow!(
                        "cannot open journal \"{}\": {}; check that its directory exists and is writable, or drop --journal",
                        path.display(),
                        e.to_string().to_lowercase()
                    )
                })?,
        )),
    };
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| anyhow!("cannot serve on {addr}: {e}"))?;
    let image_count = images.len();
    let mut state = State::new(images, &endpoint, opts.token.clone());
    let users = match &opts.users {
        Some(path) => users::load(path)?,
        None => users::Directory::default(),
    };
    state.keystone = keystone::Keystone::new(users, opts.token_ttl, opts.require_auth);
    Ok(Running {
        server: Arc::new(server),
        shared: Arc::new(Shared {
            state: Mutex::new(state),
            state_path: opts.state.clone(),
            journal,
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
            Ok(rq) => serve_one(shared, rq),
            Err(e) => {
                super::note(&format!("error receiving a request: {e}"));
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Turns a tiny_http request into the handler's request (reads the body).
fn to_request(rq: &mut tiny_http::Request) -> std::io::Result<Request> {
    let mut body = Vec::new();
    rq.as_reader().read_to_end(&mut body)?;
    Ok(Request {
        method: rq.method().to_string(),
        url: rq.url().to_string(),
        headers: rq
            .headers()
            .iter()
            .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
            .collect(),
        body,
    })
}

/// One journal line: what was received and the status it got.
pub fn journal_line(req: &Request, status: u16) -> String {
    let mut headers = Map::new();
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
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
    let body = if keystone::is_identity_path(req.raw_path()) {
        keystone::redact_body(&req.body)
    } else {
        String::from_utf8_lossy(&req.body).into_owned()
    };
    m.insert("body".into(), Value::String(body));
    m.insert("status".into(), Value::from(status));
    Value::Object(m).to_string()
}

/// Handles a request under the state lock: apply, persist, journal.
pub fn process(shared: &Shared, req: &Request) -> Response {
    let mut state = lock(&shared.state);
    let resp = api::handle(&mut state, req);
    if state.dirty {
        state.dirty = false;
        if let Some(path) = &shared.state_path {
            if let Err(e) = state::save(path, &state.images) {
                super::note(&format!("{e:#}"));
            }
        }
    }
    if let Some(journal) = &shared.journal {
        let line = journal_line(req, resp.status);
        let mut f = journal.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = writeln!(f, "{line}").and_then(|()| f.flush()) {
            super::note(&format!("cannot write the journal: {e}"));
        }
    }
    resp
}

fn serve_one(shared: &Shared, mut rq: tiny_http::Request) {
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
        assert_eq!(lines[1]["headers"]["x-auth-token"], "tok");
        assert_eq!(
            lines[1]["headers"]["content-type"],
            "application/openstack-images-v2.1-json-patch"
        );
        assert_eq!(lines[1]["headers"]["user-agent"], "test-agent/1.0");
        assert_eq!(lines[1]["body"], patch);
        assert_eq!(lines[1]["status"], 200);
        assert_eq!(lines[2]["status"], 401);

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
    fn endpoint_hosts() {
        assert_eq!(endpoint_host("0.0.0.0".parse().unwrap()), "127.0.0.1");
        assert_eq!(endpoint_host("::".parse().unwrap()), "[::1]");
        assert_eq!(endpoint_host("::1".parse().unwrap()), "[::1]");
        assert_eq!(endpoint_host("192.168.1.5".parse().unwrap()), "192.168.1.5");
    }
}

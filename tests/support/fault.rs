//! A scriptable fault server for the hardening tests: plain HTTP/1.1 on
//! 127.0.0.1 (std::net and threads only) whose answer to the Nth request is
//! the Nth [`Reply`] of its script (the last one repeats). It answers what
//! the sandbox never does: dripped, endless and non-object bodies, dropped
//! connections, 503 with `Retry-After`. Every loop is bounded (connections,
//! bytes, time), so a failing test still ends, and the server stops when
//! dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Ims, TOKEN};

/// The server gives up on everything after this long, whatever the script.
pub const LIFETIME: Duration = Duration::from_secs(60);
/// The most connections one server accepts.
pub const MAX_CONNECTIONS: usize = 64;
/// The most body bytes an endless reply sends (far above the 32 MiB cap the
/// client must enforce, small enough to end a failing test quickly).
pub const ENDLESS_CAP: u64 = 256 << 20;
/// The longest an endless reply keeps sending.
pub const ENDLESS_TIME: Duration = Duration::from_secs(30);
/// The largest request head and body the server reads.
const MAX_REQUEST: usize = 1 << 20;

/// How the body of a reply is sent.
#[derive(Debug, Clone)]
pub enum Body {
    /// All at once, with a `Content-Length`.
    Fixed(Vec<u8>),
    /// With a `Content-Length`, one byte every `every`.
    Drip { bytes: Vec<u8>, every: Duration },
    /// With a `Content-Length`: `prefix`, `fill` repeated `fill_len` times,
    /// `suffix`, streamed (a large body the test never holds in memory).
    Large {
        prefix: Vec<u8>,
        fill: u8,
        fill_len: u64,
        suffix: Vec<u8>,
    },
    /// Chunked: `prefix`, then `fill` repeated until [`ENDLESS_CAP`] bytes
    /// or [`ENDLESS_TIME`] (or the client goes away); never ends properly.
    Endless { prefix: Vec<u8>, fill: u8 },
}

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// An HTTP answer.
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Body,
        /// Waited after the request was read, before anything is sent.
        delay: Duration,
    },
    /// Reads the whole request, then closes without a byte of answer.
    Hangup,
}

impl Reply {
    /// `status` with a JSON body (any text: `[1,2,3]`, `42`, `null` too).
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Answer {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Fixed(body.as_bytes().to_vec()),
            delay: Duration::ZERO,
        }
    }

    /// `status` with a body of the given content type.
    pub fn with_type(status: u16, content_type: &str, body: &[u8]) -> Reply {
        Reply::Answer {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Fixed(body.to_vec()),
            delay: Duration::ZERO,
        }
    }

    /// A JSON body sent one byte every `every`.
    pub fn drip(status: u16, body: &str, every: Duration) -> Reply {
        Reply::Answer {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Drip {
                bytes: body.as_bytes().to_vec(),
                every,
            },
            delay: Duration::ZERO,
        }
    }

    /// A JSON body that starts with `prefix` and never ends (`fill` bytes).
    pub fn endless(status: u16, prefix: &str, fill: u8) -> Reply {
        Reply::Answer {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Endless {
                prefix: prefix.as_bytes().to_vec(),
                fill,
            },
            delay: Duration::ZERO,
        }
    }

    /// A JSON body of `prefix`, `fill_len` bytes of `fill`, `suffix`.
    pub fn large(status: u16, prefix: &str, fill: u8, fill_len: u64, suffix: &str) -> Reply {
        Reply::Answer {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Large {
                prefix: prefix.as_bytes().to_vec(),
                fill,
                fill_len,
                suffix: suffix.as_bytes().to_vec(),
            },
            delay: Duration::ZERO,
        }
    }

    /// 503 with `Retry-After: seconds` and a Glance-like body.
    pub fn unavailable(retry_after_seconds: u32) -> Reply {
        Reply::json(
            503,
            r#"{"message": "Service Unavailable", "code": "503 Service Unavailable", "title": "Service Unavailable"}"#,
        )
        .header("Retry-After", &retry_after_seconds.to_string())
    }

    /// Adds a header (to an `Answer`; other replies have none).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Answer { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    /// Waits this long after reading the request before answering.
    pub fn delay(mut self, wait: Duration) -> Reply {
        match &mut self {
            Reply::Answer { delay, .. } => *delay = wait,
            Reply::Hangup => {}
        }
        self
    }
}

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The request target: path and query as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// "METHOD target".
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

struct Shared {
    stop: AtomicBool,
    seen: Mutex<Vec<Recorded>>,
    /// Body bytes written to clients, all replies together.
    sent: AtomicU64,
    started: Instant,
}

impl Shared {
    fn over(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.started.elapsed() > LIFETIME
    }
}

/// The running server; stops (and joins its accept loop) when dropped.
pub struct Fault {
    pub endpoint: String,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Fault {
    /// Request N (from 0) gets `script[N]`; later ones get the last reply.
    pub fn start(script: Vec<Reply>) -> Fault {
        assert!(
            !script.is_empty(),
            "a fault server needs at least one reply"
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            seen: Mutex::new(Vec::new()),
            sent: AtomicU64::new(0),
            started: Instant::now(),
        });
        let state = shared.clone();
        let accept = std::thread::spawn(move || {
            let mut count = 0;
            while count < MAX_CONNECTIONS && !state.over() {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count += 1;
                        let state = state.clone();
                        let script = script.clone();
                        std::thread::spawn(move || serve(stream, &script, &state));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => break,
                }
            }
        });
        Fault {
            endpoint,
            shared,
            accept: Some(accept),
        }
    }

    /// The same reply to every request.
    pub fn always(reply: Reply) -> Fault {
        Fault::start(vec![reply])
    }

    /// The binary pointed at this server with the test token.
    pub fn ims(&self) -> Ims {
        Ims::new()
            .env("IMS_PATCH_ENDPOINT", &self.endpoint)
            .env("IMS_PATCH_TOKEN", TOKEN)
    }

    /// Every request read so far, in the order they were read.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// "METHOD target" of every request so far.
    pub fn request_lines(&self) -> Vec<String> {
        self.requests().iter().map(Recorded::line).collect()
    }

    /// Body bytes the server managed to write so far (what a client that
    /// stops reading early did not take stays out of this, up to the
    /// kernel's socket buffers).
    pub fn body_bytes_sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Serves one connection: one request, one reply, close.
fn serve(stream: TcpStream, script: &[Reply], state: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Some(request) = read_request(&stream) else {
        return;
    };
    let reply = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(request);
        script[(seen.len() - 1).min(script.len() - 1)].clone()
    };
    let mut out = stream;
    match reply {
        Reply::Hangup => {}
        Reply::Answer {
            status,
            headers,
            body,
            delay,
        } => {
            pause(delay, state);
            let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (k, v) in &headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("Connection: close\r\n");
            match &body {
                Body::Fixed(bytes) | Body::Drip { bytes, .. } => {
                    head.push_str(&format!("Content-Length: {}\r\n", bytes.len()));
                }
                Body::Large {
                    prefix,
                    fill_len,
                    suffix,
                    ..
                } => {
                    let length = prefix.len() as u64 + fill_len + suffix.len() as u64;
                    head.push_str(&format!("Content-Length: {length}\r\n"));
                }
                Body::Endless { .. } => head.push_str("Transfer-Encoding: chunked\r\n"),
            }
            head.push_str("\r\n");
            if out.write_all(head.as_bytes()).is_err() {
                return;
            }
            send_body(&mut out, &body, state);
        }
    }
    let _ = out.flush();
    let _ = out.shutdown(std::net::Shutdown::Both);
}

fn send_body(out: &mut TcpStream, body: &Body, state: &Shared) {
    match body {
        Body::Fixed(bytes) => {
            if out.write_all(bytes).is_ok() {
                state.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
        }
        Body::Drip { bytes, every } => {
            for b in bytes {
                if state.over() || out.write_all(&[*b]).is_err() || out.flush().is_err() {
                    return;
                }
                state.sent.fetch_add(1, Ordering::Relaxed);
                pause(*every, state);
            }
        }
        Body::Large {
            prefix,
            fill,
            fill_len,
            suffix,
        } => {
            let started = Instant::now();
            let block = vec![*fill; 64 << 10];
            if out.write_all(prefix).is_err() {
                return;
            }
            let mut left = *fill_len;
            while left > 0 && started.elapsed() < ENDLESS_TIME && !state.over() {
                let n = left.min(block.len() as u64) as usize;
                if out.write_all(&block[..n]).is_err() {
                    return;
                }
                left -= n as u64;
                state.sent.fetch_add(n as u64, Ordering::Relaxed);
            }
            if left == 0 {
                let _ = out.write_all(suffix);
            }
        }
        Body::Endless { prefix, fill } => {
            let started = Instant::now();
            let chunk = |data: &[u8]| {
                let mut c = format!("{:x}\r\n", data.len()).into_bytes();
                c.extend_from_slice(data);
                c.extend_from_slice(b"\r\n");
                c
            };
            if out.write_all(&chunk(prefix)).is_err() {
                return;
            }
            state.sent.fetch_add(prefix.len() as u64, Ordering::Relaxed);
            let block = chunk(&vec![*fill; 64 << 10]);
            let mut sent = prefix.len() as u64;
            while sent < ENDLESS_CAP && started.elapsed() < ENDLESS_TIME && !state.over() {
                if out.write_all(&block).is_err() {
                    return;
                }
                sent += 64 << 10;
                state.sent.fetch_add(64 << 10, Ordering::Relaxed);
            }
            // Ends without the terminating zero chunk: the body is cut off.
        }
    }
}

/// Sleeps `wait`, in slices, unless the server is stopping.
fn pause(wait: Duration, state: &Shared) {
    let until = Instant::now() + wait;
    while Instant::now() < until && !state.over() {
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(20)));
    }
}

/// Reads a request head and its `Content-Length` body (bounded).
fn read_request(stream: &TcpStream) -> Option<Recorded> {
    let mut reader = BufReader::new(stream.take(MAX_REQUEST as u64));
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        target,
        headers,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A one-reply-per-connection HTTPS server with the given certificate and
/// key, answering every request with `200` and `body`; for trust tests
/// whose certificate the test makes (a CA:TRUE self-signed one, as
/// `openssl req -x509` makes). Stops when dropped.
pub struct TlsFault {
    pub endpoint: String,
    /// The server's certificate, PEM (what a --cacert file would hold).
    pub cert_pem: String,
    stop: Arc<AtomicBool>,
}

impl TlsFault {
    /// With a self-signed end-entity certificate for 127.0.0.1, as rcgen
    /// makes it by default.
    pub fn self_signed(body: &str) -> TlsFault {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        TlsFault::start(&certified.cert, &certified.signing_key, body)
    }

    pub fn start(cert: &rcgen::Certificate, key: &rcgen::KeyPair, body: &str) -> TlsFault {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("https://{}", listener.local_addr().unwrap());
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut count = 0;
            while count < MAX_CONNECTIONS
                && started.elapsed() < LIFETIME
                && !stopped.load(Ordering::Relaxed)
            {
                let tcp = match listener.accept() {
                    Ok((tcp, _)) => tcp,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => break,
                };
                count += 1;
                let _ = tcp.set_nonblocking(false);
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                // A refused handshake ends here.
                while !request.ends_with(b"\r\n\r\n") && request.len() < MAX_REQUEST {
                    match tls.read(&mut byte) {
                        Ok(1) => request.push(byte[0]),
                        _ => break,
                    }
                }
                if request.ends_with(b"\r\n\r\n") {
                    let _ = tls.write_all(response.as_bytes());
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }
        });
        TlsFault {
            endpoint,
            cert_pem: cert.pem(),
            stop,
        }
    }
}

impl Drop for TlsFault {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

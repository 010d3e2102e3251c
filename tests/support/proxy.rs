//! A recording HTTP proxy for counting requests to a real server: it
//! forwards each request (one per connection: it answers with
//! `Connection: close`) to the upstream and records "METHOD path status".

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Proxy {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// A proxy in front of `upstream` (`http://host:port`, any path ignored).
    pub fn start(upstream: &str) -> Proxy {
        let upstream = url::Url::parse(upstream).unwrap();
        let target = format!(
            "{}:{}",
            upstream.host_str().unwrap(),
            upstream.port_or_known_default().unwrap()
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let record = Arc::clone(&record);
                let target = target.clone();
                std::thread::spawn(move || {
                    let _ = forward(client, &target, &record);
                });
            }
        });
        Proxy { url, seen }
    }

    /// "METHOD path status" of every request so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

fn forward(client: TcpStream, target: &str, record: &Mutex<Vec<String>>) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let mut head = line.clone();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.push_str(&h);
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut up = TcpStream::connect(target)?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    // One write: an upstream that answers (401) without reading the body
    // may close early; its answer is still read.
    let mut request = head.into_bytes();
    request.extend_from_slice(&body);
    let _ = up.write_all(&request);
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer);
    let status = String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_string();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    record
        .lock()
        .unwrap()
        .push(format!("{method} {path} {status}"));
    let mut client = client;
    client.write_all(&answer)?;
    client.flush()
}

/// A one-off request to `base` (`http://host:port`) with these headers;
/// the status and body.
pub fn request(base: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let u = url::Url::parse(base).unwrap();
    let hostport = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
    let mut stream = TcpStream::connect(&hostport).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

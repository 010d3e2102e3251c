//! Test support: running the real binary with a clean environment, a
//! sandbox server per test (with its request journal), and the fault server
//! (`fault`) for answers the sandbox never gives (redirects, 5xx, stalls,
//! hostile bodies, TLS with a certificate the test makes).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub mod fault;
pub mod proxy;
pub mod pty;
pub mod vendor;

pub const BIN: &str = env!("CARGO_BIN_EXE_ims-patch");
pub const SEED_ID: &str = "33ad552d-1149-471c-8190-ff6776174a00";
pub const TOKEN: &str = "tok-5ecr3t-value-that-must-never-be-printed";

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn ok(&self) -> &Run {
        self.code(0)
    }

    pub fn no_secret(&self) -> &Run {
        assert!(
            !self.stdout.contains(TOKEN) && !self.stderr.contains(TOKEN),
            "the token was printed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A command line for the binary with an empty environment and its own
/// home and config directories.
pub struct Ims {
    cmd: Command,
    stdin: Option<String>,
    _home: Arc<tempfile::TempDir>,
    pub home: PathBuf,
}

impl Ims {
    pub fn new() -> Ims {
        let home = Arc::new(tempfile::tempdir().unwrap());
        let path = home.path().to_path_buf();
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("HOME", &path)
            .env("XDG_CONFIG_HOME", path.join("config"))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null());
        Ims {
            cmd,
            stdin: None,
            _home: home,
            home: path,
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Ims
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Ims {
        self.cmd.arg(arg);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Ims {
        self.cmd.env(key, value);
        self
    }

    pub fn stdin(mut self, text: &str) -> Ims {
        self.stdin = Some(text.to_string());
        self
    }

    /// The default config file of this run's home.
    pub fn config_path(&self) -> PathBuf {
        self.home
            .join("config")
            .join("ims-patch")
            .join("config.toml")
    }

    pub fn write_config(self, text: &str) -> Ims {
        let path = self.config_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        set_mode(&path, 0o600);
        self
    }

    /// The command line as it stands (for running it on a pseudo-terminal);
    /// the home directory lives as long as the returned guard.
    pub fn command(self) -> (Command, Arc<tempfile::TempDir>) {
        (self.cmd, self._home)
    }

    /// Starts the binary with piped stdout and stderr (to signal it),
    /// its standard input written and closed.
    pub fn spawn(mut self) -> Child {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if self.stdin.is_some() {
            self.cmd.stdin(Stdio::piped());
        }
        let mut child = self.cmd.spawn().unwrap();
        if let Some(text) = self.stdin.take() {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(text.as_bytes()).unwrap();
        }
        child
    }

    pub fn run(mut self) -> Run {
        if let Some(text) = self.stdin.take() {
            self.cmd.stdin(Stdio::piped());
            self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = self.cmd.spawn().unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            return Run::from(child.wait_with_output().unwrap());
        }
        Run::from(self.cmd.output().unwrap())
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A sandbox server (`ims-patch sandbox --port 0`) with a request journal,
/// killed when dropped.
pub struct Sandbox {
    child: Child,
    pub endpoint: String,
    journal: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn start() -> Sandbox {
        Sandbox::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal.jsonl");
        let mut child = Command::new(BIN)
            .env_clear()
            .args(["sandbox", "--port", "0", "--journal"])
            .arg(&journal)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let endpoint = first
            .trim()
            .strip_prefix("export IMS_PATCH_ENDPOINT=")
            .unwrap_or_else(|| panic!("unexpected first line from the sandbox: {first:?}"))
            .to_string();
        Sandbox {
            child,
            endpoint,
            journal,
            _dir: dir,
        }
    }

    /// The binary pointed at this sandbox with the test token.
    pub fn ims(&self) -> Ims {
        Ims::new()
            .env("IMS_PATCH_ENDPOINT", &self.endpoint)
            .env("IMS_PATCH_TOKEN", TOKEN)
    }

    /// Every request the sandbox received so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.journal).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// "METHOD path?query" of every request so far.
    pub fn request_lines(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| {
                let mut line = format!(
                    "{} {}",
                    r["method"].as_str().unwrap(),
                    r["path"].as_str().unwrap()
                );
                if let Some(q) = r["query"].as_str() {
                    line.push('?');
                    line.push_str(q);
                }
                line
            })
            .collect()
    }

    /// Forgets the requests so far (e.g. after a setup step).
    pub fn clear_journal(&self) {
        std::fs::write(&self.journal, "").unwrap();
    }

    /// The image as the sandbox has it now, read with a raw HTTP request
    /// (not recorded in the journal after `clear_journal` is called again).
    pub fn image(&self, id: &str) -> Value {
        let (status, body) = raw_request(
            &self.endpoint,
            "GET",
            &format!("/v2/images/{id}"),
            &[],
            None,
        );
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The journal file the sandbox writes.
    pub fn journal_path(&self) -> &Path {
        &self.journal
    }

    /// Creates an image with `POST /v2/images`, returns its id.
    pub fn create(&self, body: &Value) -> String {
        let (status, text) = raw_request(
            &self.endpoint,
            "POST",
            "/v2/images",
            &[("Content-Type", "application/json")],
            Some(&body.to_string()),
        );
        assert_eq!(status, 201, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["id"].as_str().unwrap().to_string()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request over a plain TcpStream; returns status and body.
pub fn raw_request(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(hostport).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nAccept: application/json\r\nConnection: close\r\nX-Auth-Token: {TOKEN}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

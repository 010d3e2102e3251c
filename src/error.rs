//! Error kinds, the exit code each maps to, and the hints shown with them;
//! a failure of an HTTP exchange also keeps what retries and auth need.

use crate::wire::{Reach, RetryAfter, WireResponse};

/// What went wrong, coarsely: each kind has one documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Network, I/O or any other failure at run time (exit 1).
    Runtime,
    /// Wrong usage or input refused locally; nothing was sent (exit 2).
    Usage,
    /// No endpoint, no token, or a bad configuration (exit 3).
    Config,
    /// The server said 401 or 403 (exit 4).
    Auth,
    /// The image does not exist: 404, or no image has that name (exit 5).
    NotFound,
    /// The server said 409 (exit 6).
    Conflict,
    /// The server rejected the request: 400, 413, 415 and other 4xx (exit 7).
    Rejected,
    /// The server failed: 5xx (exit 8).
    Server,
}

impl Kind {
    /// Every kind, in exit-code order.
    pub const ALL: [Kind; 8] = [
        Kind::Runtime,
        Kind::Usage,
        Kind::Config,
        Kind::Auth,
        Kind::NotFound,
        Kind::Conflict,
        Kind::Rejected,
        Kind::Server,
    ];

    /// The kind that exits with `code`; `Runtime` for a code of none.
    pub fn from_exit_code(code: i32) -> Kind {
        Kind::ALL
            .into_iter()
            .find(|k| k.exit_code() == code)
            .unwrap_or(Kind::Runtime)
    }

    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Runtime => 1,
            Kind::Usage => 2,
            Kind::Config => 3,
            Kind::Auth => 4,
            Kind::NotFound => 5,
            Kind::Conflict => 6,
            Kind::Rejected => 7,
            Kind::Server => 8,
        }
    }

    /// The kind an HTTP error status maps to.
    pub fn from_status(status: u16) -> Kind {
        match status {
            300..=399 => Kind::Config,
            401 | 403 => Kind::Auth,
            404 => Kind::NotFound,
            409 => Kind::Conflict,
            400..=499 => Kind::Rejected,
            _ => Kind::Server,
        }
    }
}

/// A failure to report: a lowercase message, the kind that picks the exit
/// code, and zero or more `hint:` lines that say what to do next.
#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub hints: Vec<String>,
    /// Standard output was closed by its reader (`ims-patch show X | head`).
    pub broken_pipe: bool,
    /// For a failed HTTP exchange: how far it got, the answer, the cause.
    pub wire: Option<Box<WireFailure>>,
}

/// What a failed exchange knows, for retries, re-login and messages.
#[derive(Debug)]
pub struct WireFailure {
    /// Whether the request may have reached the server.
    pub reach: Reach,
    /// The answer, when there was one (an error status).
    pub response: Option<WireResponse>,
    /// The deadline (`--timeout`) passed.
    pub timed_out: bool,
    /// The underlying cause (I/O, TLS, ...), with its own `source()` chain.
    pub cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    /// The underlying cause of a failed exchange (I/O, TLS, timeout).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let cause = self.wire.as_ref()?.cause.as_ref()?;
        Some(cause.as_ref() as &(dyn std::error::Error + 'static))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            hints: Vec::new(),
            broken_pipe: false,
            wire: None,
        }
    }

    /// Attaches what the exchange knows.
    pub fn with_wire(mut self, failure: WireFailure) -> Error {
        self.wire = Some(Box::new(failure));
        self
    }

    /// How far the request got; `NotSent` for errors that are not HTTP ones.
    pub fn reach(&self) -> Reach {
        self.wire.as_ref().map_or(Reach::NotSent, |w| w.reach)
    }

    /// The HTTP status of the answer, if the server answered.
    pub fn status(&self) -> Option<u16> {
        self.wire.as_ref()?.response.as_ref().map(|r| r.status)
    }

    /// The answer's `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<RetryAfter> {
        self.wire.as_ref()?.response.as_ref()?.retry_after()
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(Kind::Usage, message)
    }

    pub fn config(message: impl Into<String>) -> Error {
        Error::new(Kind::Config, message)
    }

    pub fn runtime(message: impl Into<String>) -> Error {
        Error::new(Kind::Runtime, message)
    }

    /// Adds a `hint:` line.
    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hints.push(hint.into());
        self
    }

    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        let mut err = Error::runtime(e.to_string());
        err.broken_pipe = e.kind() == std::io::ErrorKind::BrokenPipe;
        err
    }
}

/// The exit codes as documented in `--help`, the man page and the README.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  success
  1  network, I/O or other runtime error
  2  usage error, or input refused locally (nothing was sent)
  3  configuration error (no endpoint, no token, bad config file)
  4  authentication or permission error (HTTP 401, 403)
  5  image not found (HTTP 404, or no image has that name)
  6  conflict (HTTP 409), e.g. removing an attribute that is not set
  7  request rejected by the server (HTTP 400, 413, 415 and other 4xx)
  8  server error (HTTP 5xx)
  130  interrupted (Ctrl-C) during a run over many images
With --images-from, --where or apply: 0 when every image succeeded, else \
the code the failures share, else 1.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_documented_codes() {
        let cases = [
            (301, 3),
            (400, 7),
            (401, 4),
            (403, 4),
            (404, 5),
            (409, 6),
            (413, 7),
            (415, 7),
            (429, 7),
            (500, 8),
            (503, 8),
        ];
        for (status, code) in cases {
            assert_eq!(Kind::from_status(status).exit_code(), code, "{status}");
        }
    }

    #[test]
    fn exit_codes_map_back_to_their_kind() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_exit_code(kind.exit_code()), kind);
        }
        assert_eq!(Kind::from_exit_code(130), Kind::Runtime);
    }

    #[test]
    fn every_kind_is_documented() {
        for kind in Kind::ALL {
            let line = format!("  {}  ", kind.exit_code());
            assert!(EXIT_CODES_HELP.contains(&line), "{kind:?}");
        }
    }
}

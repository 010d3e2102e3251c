//! The retry policy: which failures are worth another attempt, whether the
//! request is safe to repeat, and how long to wait (exponential backoff with
//! full jitter, `Retry-After` honoured, every wait capped).

use std::fmt;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::error::Error;
use crate::patch::{Op, OpKind, PatchFormat};
use crate::settings::retry::RetryPolicy;
use crate::wire::{Reach, WireRequest};

/// How a failed attempt failed, as far as the transport can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made (refused, unreachable, DNS, connect
    /// timeout), or a pooled connection was found closed before any byte of
    /// the request was written: the request did not reach the server.
    Connect,
    /// The server answered with this status; `retry_after` is its
    /// `Retry-After` header, already parsed (see [`parse_retry_after`]).
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// The request was sent and no answer came in time.
    ReadTimeout,
    /// The connection closed after the request was sent, before an answer.
    Dropped,
}

impl Failure {
    /// Whether the server may have acted on the request. The statuses that
    /// are always retried (429, 502, 503, 504) say it did not.
    pub fn may_have_reached_server(self) -> bool {
        match self {
            Failure::Connect => false,
            Failure::Status { status, .. } => !always_retried(status),
            Failure::ReadTimeout | Failure::Dropped => true,
        }
    }

    fn describe(self) -> String {
        match self {
            Failure::Connect => "could not connect".into(),
            Failure::Status { status, .. } => format!("the server answered {status}"),
            Failure::ReadTimeout => "no answer in time".into(),
            Failure::Dropped => "the connection closed before an answer".into(),
        }
    }
}

fn always_retried(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// Why a request must not be sent twice once it may have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsafe {
    /// A `remove` fails with 409 when applied a second time.
    Remove,
    /// v2.0 `add` fails with 409 on an attribute the first attempt added.
    V20,
    /// Any other write (POST, PUT, DELETE).
    Write,
}

/// Whether a request leaves the same state when sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    Repeatable,
    NotRepeatable(Unsafe),
}

impl Safety {
    /// A GET (or any other read).
    pub const READ: Safety = Safety::Repeatable;

    /// A PATCH of `ops` in `format`: repeatable only in v2.1 with nothing but
    /// `add` and `replace` (which set a whole top-level attribute).
    pub fn of_patch(ops: &[Op], format: PatchFormat) -> Safety {
        if format == PatchFormat::V20 {
            Safety::NotRepeatable(Unsafe::V20)
        } else if ops.iter().any(|op| op.kind == OpKind::Remove) {
            Safety::NotRepeatable(Unsafe::Remove)
        } else {
            Safety::Repeatable
        }
    }
}

/// Why no further attempt is made; its `Display` is the sentence the final
/// error states (`None` for a failure that is simply not transient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The failure is not one that another attempt could fix (404, 409, ...).
    Permanent { attempts: u32 },
    /// It might have been transient, but the request may already have been
    /// applied and is not safe to repeat.
    NotRepeatable { why: Unsafe, attempts: u32 },
    /// Every allowed attempt failed.
    Exhausted { attempts: u32 },
}

impl GiveUp {
    pub fn attempts(self) -> u32 {
        match self {
            GiveUp::Permanent { attempts }
            | GiveUp::NotRepeatable { attempts, .. }
            | GiveUp::Exhausted { attempts } => attempts,
        }
    }

    /// What the final error should add to the failure's own message:
    /// `"not repeated: a remove may already have been applied"`, `"gave up
    /// after 4 attempts"`, or `"after 2 attempts"` when an earlier attempt
    /// was retried; `None` after a single attempt that is simply final.
    pub fn note(self) -> Option<String> {
        match self {
            GiveUp::Permanent { attempts: 1 } => None,
            GiveUp::Permanent { attempts } => Some(format!("after {attempts} attempts")),
            GiveUp::NotRepeatable { why, attempts } => {
                let what = match why {
                    Unsafe::Remove => "a remove may already have been applied",
                    Unsafe::V20 => {
                        "a v2.0 patch may already have been applied, and its adds would conflict"
                    }
                    Unsafe::Write => "the request may already have been applied",
                };
                let mut note = format!("not repeated: {what}");
                if attempts > 1 {
                    note.push_str(&format!(" (after {attempts} attempts)"));
                }
                Some(note)
            }
            GiveUp::Exhausted { attempts } => Some(format!("gave up after {attempts} attempts")),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Wait, then try again; `reason` is the line `-v` shows.
    Retry {
        wait: Duration,
        reason: String,
    },
    GiveUp(GiveUp),
}

/// A source of uniform random numbers in `[0, 1)`, injectable for tests.
pub trait Jitter {
    fn fraction(&mut self) -> f64;
}

/// The jitter of real runs.
#[derive(Debug, Default)]
pub struct RandomJitter;

impl Jitter for RandomJitter {
    fn fraction(&mut self) -> f64 {
        fastrand::f64()
    }
}

impl<F: FnMut() -> f64> Jitter for F {
    fn fraction(&mut self) -> f64 {
        self()
    }
}

impl RetryPolicy {
    /// The longest backoff before retry number `retry` (1-based), before the
    /// jitter: `base × 2^(retry-1)`, capped by `max_wait`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max_wait)
    }

    /// Decides after attempt number `attempt` (1-based) failed with `failure`.
    pub fn decide(
        &self,
        failure: Failure,
        safety: Safety,
        attempt: u32,
        jitter: &mut dyn Jitter,
    ) -> Decision {
        let transient = match failure {
            Failure::Connect => true,
            Failure::Status { status, .. } => always_retried(status) || status == 500,
            Failure::ReadTimeout | Failure::Dropped => true,
        };
        if !transient {
            return Decision::GiveUp(GiveUp::Permanent { attempts: attempt });
        }
        if let Safety::NotRepeatable(why) = safety {
            if failure.may_have_reached_server() {
                return Decision::GiveUp(GiveUp::NotRepeatable {
                    why,
                    attempts: attempt,
                });
            }
        }
        if attempt > self.retries {
            return Decision::GiveUp(GiveUp::Exhausted { attempts: attempt });
        }
        let asked = match failure {
            Failure::Status { retry_after, .. } => retry_after,
            _ => None,
        };
        let (wait, how) = match asked {
            Some(asked) if asked > self.max_wait => (
                self.max_wait,
                format!(
                    "the server asked for {}; waiting {} (--retry-max-wait)",
                    secs(asked),
                    secs(self.max_wait)
                ),
            ),
            Some(asked) => (
                asked,
                format!("waiting {} as the server asked", secs(asked)),
            ),
            None => {
                let ceiling = self.backoff_ceiling(attempt);
                let f = jitter.fraction();
                let f = if f.is_finite() {
                    f.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let wait = ceiling.mul_f64(f).min(self.max_wait);
                (wait, format!("waiting {}", secs(wait)))
            }
        };
        Decision::Retry {
            wait,
            reason: format!(
                "attempt {attempt} of {} failed: {}; {how}",
                self.retries.saturating_add(1),
                failure.describe()
            ),
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// A `Retry-After` header value as a wait from `now`: delta-seconds or an
/// HTTP date (a date in the past is no wait). `None` for anything else,
/// which the caller ignores (falling back to the backoff).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to count is a very long wait, capped later.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// How a failed exchange failed, for the policy; `None` for an error that
/// is not a failed exchange (a local error, a credential that failed).
pub fn failure_of(err: &Error, now: SystemTime) -> Option<Failure> {
    let wire = err.wire.as_ref()?;
    if let Some(response) = &wire.response {
        // An answer over the size cap (the transport's runtime error with
        // the answer's head and no cause) is no transient failure.
        if wire.cause.is_none() && !wire.timed_out && err.kind == crate::error::Kind::Runtime {
            return None;
        }
        if response.is_success() {
            // A 2xx that could not be read (too large, cut off).
            return if wire.timed_out {
                Some(Failure::ReadTimeout)
            } else {
                Some(Failure::Dropped)
            };
        }
        let retry_after = response.header("retry-after").and_then(|v| {
            let now = response
                .header("date")
                .and_then(|d| httpdate::parse_http_date(d).ok())
                .unwrap_or(now);
            parse_retry_after(v, now)
        });
        return Some(Failure::Status {
            status: response.status,
            retry_after,
        });
    }
    Some(match (wire.reach, wire.timed_out) {
        (Reach::NotSent, _) => Failure::Connect,
        (_, true) => Failure::ReadTimeout,
        (_, false) => Failure::Dropped,
    })
}

/// Whether `request` may be sent twice: a read may; a PATCH only in v2.1
/// with nothing but `add` and `replace` ops (read from its body); any
/// other write may not.
pub fn safety_of_request(request: &WireRequest) -> Safety {
    if request.is_read() {
        return Safety::READ;
    }
    let content_type = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
        .map(|h| h.value.as_str())
        .unwrap_or("");
    if request.method != "PATCH" {
        return Safety::NotRepeatable(Unsafe::Write);
    }
    if content_type.contains("v2.0") {
        return Safety::NotRepeatable(Unsafe::V20);
    }
    let ops: Option<Vec<Value>> = request
        .body
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok());
    match ops {
        Some(ops)
            if ops.iter().all(|op| {
                matches!(
                    op.get("op").and_then(Value::as_str),
                    Some("add") | Some("replace")
                )
            }) =>
        {
            Safety::Repeatable
        }
        _ => Safety::NotRepeatable(Unsafe::Remove),
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Retry { reason, .. } => f.write_str(reason),
            Decision::GiveUp(g) => f.write_str(
                &g.note()
                    .unwrap_or_else(|| "not retried: not a transient failure".into()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn patch(content_type: &str, body: &str) -> WireRequest {
        WireRequest::new("PATCH", "http://h/v2/images/x".parse().unwrap())
            .with_body(content_type, body.as_bytes().to_vec())
    }

    #[test]
    fn requests_are_repeatable_only_when_sending_twice_is_harmless() {
        let v21 = "application/openstack-images-v2.1-json-patch";
        let get = WireRequest::new("GET", "http://h/v2/images".parse().unwrap());
        assert_eq!(safety_of_request(&get), Safety::Repeatable);
        let adds =
            r#"[{"op":"add","path":"/a","value":"1"},{"op":"replace","path":"/name","value":"n"}]"#;
        assert_eq!(safety_of_request(&patch(v21, adds)), Safety::Repeatable);
        let remove = r#"[{"op":"add","path":"/a","value":"1"},{"op":"remove","path":"/b"}]"#;
        assert_eq!(
            safety_of_request(&patch(v21, remove)),
            Safety::NotRepeatable(Unsafe::Remove)
        );
        assert_eq!(
            safety_of_request(&patch(v21, "not json")),
            Safety::NotRepeatable(Unsafe::Remove)
        );
        assert_eq!(
            safety_of_request(&patch("application/openstack-images-v2.0-json-patch", "[]")),
            Safety::NotRepeatable(Unsafe::V20)
        );
        let post = WireRequest::new("POST", "http://h/v2/images".parse().unwrap());
        assert_eq!(
            safety_of_request(&post),
            Safety::NotRepeatable(Unsafe::Write)
        );
    }

    #[test]
    fn failures_are_read_from_the_error() {
        use crate::error::WireFailure;
        use crate::wire::WireResponse;
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let wire = |reach, response, timed_out| {
            Error::runtime("x").with_wire(WireFailure {
                reach,
                response,
                timed_out,
                cause: None,
            })
        };
        let served = |response| {
            Error::new(crate::error::Kind::Server, "503").with_wire(WireFailure {
                reach: Reach::Reached,
                response: Some(response),
                timed_out: false,
                cause: None,
            })
        };
        assert_eq!(failure_of(&Error::runtime("local"), now), None);
        // Too large: the transport's runtime error with the answer's head.
        let head = WireResponse {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        };
        assert_eq!(
            failure_of(&wire(Reach::Reached, Some(head), false), now),
            None
        );
        assert_eq!(
            failure_of(&wire(Reach::NotSent, None, false), now),
            Some(Failure::Connect)
        );
        assert_eq!(
            failure_of(&wire(Reach::NotSent, None, true), now),
            Some(Failure::Connect)
        );
        assert_eq!(
            failure_of(&wire(Reach::MaybeReached, None, true), now),
            Some(Failure::ReadTimeout)
        );
        assert_eq!(
            failure_of(&wire(Reach::MaybeReached, None, false), now),
            Some(Failure::Dropped)
        );
        let answer = |headers: Vec<(&str, &str)>| WireResponse {
            status: 503,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
        };
        assert_eq!(
            failure_of(&served(answer(vec![("retry-after", "7")])), now),
            Some(Failure::Status {
                status: 503,
                retry_after: Some(Duration::from_secs(7))
            })
        );
        // An HTTP date counts from the answer's own Date.
        let dated = answer(vec![
            ("retry-after", "Sun, 06 Nov 1994 08:49:40 GMT"),
            ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        assert_eq!(
            failure_of(&served(dated), now),
            Some(Failure::Status {
                status: 503,
                retry_after: Some(Duration::from_secs(3))
            })
        );
    }

    fn status(status: u16) -> Failure {
        Failure::Status {
            status,
            retry_after: None,
        }
    }

    const ALL_SAFETIES: [Safety; 3] = [
        Safety::Repeatable,
        Safety::NotRepeatable(Unsafe::Remove),
        Safety::NotRepeatable(Unsafe::V20),
    ];

    fn decide(failure: Failure, safety: Safety, attempt: u32) -> Decision {
        RetryPolicy::default().decide(failure, safety, attempt, &mut || 0.5)
    }

    fn retried(d: &Decision) -> bool {
        matches!(d, Decision::Retry { .. })
    }

    #[test]
    fn safety_of_requests() {
        let adds = [Op::add("a", json!("1")), Op::replace("name", json!("n"))];
        let with_remove = [Op::add("a", json!("1")), Op::remove("b")];
        assert_eq!(
            Safety::of_patch(&adds, PatchFormat::V21),
            Safety::Repeatable
        );
        assert_eq!(
            Safety::of_patch(&with_remove, PatchFormat::V21),
            Safety::NotRepeatable(Unsafe::Remove)
        );
        assert_eq!(
            Safety::of_patch(&adds, PatchFormat::V20),
            Safety::NotRepeatable(Unsafe::V20)
        );
        assert_eq!(Safety::READ, Safety::Repeatable);
    }

    #[test]
    fn what_is_retried() {
        for safety in ALL_SAFETIES {
            for f in [
                Failure::Connect,
                status(429),
                status(502),
                status(503),
                status(504),
            ] {
                assert!(retried(&decide(f, safety, 1)), "{f:?} {safety:?}");
            }
            for s in [400, 401, 403, 404, 409, 413, 415, 501, 505] {
                assert_eq!(
                    decide(status(s), safety, 1),
                    Decision::GiveUp(GiveUp::Permanent { attempts: 1 }),
                    "{s}"
                );
            }
        }
        for f in [status(500), Failure::ReadTimeout, Failure::Dropped] {
            assert!(retried(&decide(f, Safety::Repeatable, 1)), "{f:?}");
            let d = decide(f, Safety::NotRepeatable(Unsafe::Remove), 1);
            assert_eq!(
                d.to_string(),
                "not repeated: a remove may already have been applied"
            );
            assert!(decide(f, Safety::NotRepeatable(Unsafe::V20), 2)
                .to_string()
                .contains("v2.0 patch may already have been applied"));
        }
    }

    #[test]
    fn gives_up_after_the_last_retry() {
        let p = RetryPolicy::default();
        for attempt in 1..=3 {
            assert!(retried(&p.decide(
                Failure::Connect,
                Safety::READ,
                attempt,
                &mut || 0.0
            )));
        }
        let d = p.decide(Failure::Connect, Safety::READ, 4, &mut || 0.0);
        assert_eq!(d, Decision::GiveUp(GiveUp::Exhausted { attempts: 4 }));
        assert_eq!(d.to_string(), "gave up after 4 attempts");
        let none = RetryPolicy {
            retries: 0,
            ..RetryPolicy::default()
        };
        assert!(!retried(&none.decide(
            status(503),
            Safety::READ,
            1,
            &mut || 0.0
        )));
        assert_eq!(GiveUp::Permanent { attempts: 1 }.note(), None);
        assert_eq!(
            GiveUp::Permanent { attempts: 3 }.note().unwrap(),
            "after 3 attempts"
        );
    }

    #[test]
    fn backoff_doubles_with_full_jitter_up_to_the_cap() {
        let p = RetryPolicy {
            retries: 10,
            max_wait: Duration::from_secs(3),
            base: Duration::from_millis(500),
        };
        let ceilings: Vec<u128> = (1..=5).map(|r| p.backoff_ceiling(r).as_millis()).collect();
        assert_eq!(ceilings, [500, 1000, 2000, 3000, 3000]);
        assert_eq!(p.backoff_ceiling(u32::MAX), Duration::from_secs(3));
        let wait =
            |attempt, f: f64| match p.decide(Failure::Connect, Safety::READ, attempt, &mut || f) {
                Decision::Retry { wait, .. } => wait,
                other => panic!("{other:?}"),
            };
        assert_eq!(wait(2, 0.0), Duration::ZERO);
        assert_eq!(wait(2, 0.5), Duration::from_millis(500));
        assert_eq!(wait(3, 0.25), Duration::from_millis(500));
        let near_cap = wait(9, 0.999_999_999);
        assert!(near_cap < Duration::from_secs(3) && near_cap > Duration::from_millis(2999));
        // A broken source of randomness cannot make a wait longer.
        assert_eq!(wait(3, f64::NAN), Duration::ZERO);
        assert_eq!(wait(3, 7.0), Duration::from_secs(2));
    }

    #[test]
    fn retry_after_is_honoured_within_the_cap() {
        let with = |secs| Failure::Status {
            status: 503,
            retry_after: Some(Duration::from_secs(secs)),
        };
        match decide(with(7), Safety::READ, 1) {
            Decision::Retry { wait, reason } => {
                assert_eq!(wait, Duration::from_secs(7));
                assert_eq!(
                    reason,
                    "attempt 1 of 4 failed: the server answered 503; waiting 7.0 s as the server asked"
                );
            }
            other => panic!("{other:?}"),
        }
        match decide(with(3600), Safety::READ, 1) {
            Decision::Retry { wait, reason } => {
                assert_eq!(wait, crate::settings::retry::DEFAULT_MAX_WAIT);
                assert!(
                    reason.contains("asked for 3600.0 s; waiting 30.0 s"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let p = |v| parse_retry_after(v, now);
        assert_eq!(p("120"), Some(Duration::from_secs(120)));
        assert_eq!(p(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            p("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            p("Sun, 06 Nov 1994 08:50:07 GMT"),
            Some(Duration::from_secs(30))
        );
        // The obsolete forms HTTP still allows.
        assert_eq!(
            p("Sunday, 06-Nov-94 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(p("Sun Nov  6 08:49:40 1994"), Some(Duration::from_secs(3)));
        assert_eq!(p("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        for bad in ["", "-1", "1.5", "soon", "+5", "Sun, 06 Nov 1994"] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    fn any_failure() -> impl Strategy<Value = Failure> {
        prop_oneof![
            Just(Failure::Connect),
            Just(Failure::ReadTimeout),
            Just(Failure::Dropped),
            (
                prop_oneof![
                    Just(429u16),
                    Just(500),
                    Just(502),
                    Just(503),
                    Just(504),
                    100u16..600
                ],
                proptest::option::of(0u64..100_000)
            )
                .prop_map(|(status, ra)| Failure::Status {
                    status,
                    retry_after: ra.map(Duration::from_secs)
                }),
        ]
    }

    fn any_safety() -> impl Strategy<Value = Safety> {
        prop_oneof![
            Just(ALL_SAFETIES[0]),
            Just(ALL_SAFETIES[1]),
            Just(ALL_SAFETIES[2])
        ]
    }

    proptest! {
        #[test]
        fn waits_never_exceed_the_cap(
            failure in any_failure(),
            safety in any_safety(),
            attempt in 1u32..40,
            retries in 0u32..40,
            max_wait_ms in 0u64..120_000,
            base_ms in 0u64..100_000,
            f in proptest::num::f64::ANY,
        ) {
            let p = RetryPolicy {
                retries,
                max_wait: Duration::from_millis(max_wait_ms),
                base: Duration::from_millis(base_ms),
            };
            if let Decision::Retry { wait, .. } = p.decide(failure, safety, attempt, &mut || f) {
                prop_assert!(wait <= p.max_wait);
                prop_assert!(attempt <= retries);
            }
        }

        #[test]
        fn never_repeats_an_unsafe_request_that_may_have_arrived(
            failure in any_failure(),
            safety in any_safety(),
            attempt in 1u32..10,
        ) {
            let d = decide(failure, safety, attempt);
            if safety != Safety::Repeatable && failure.may_have_reached_server() {
                prop_assert!(!retried(&d));
            }
            if let Decision::GiveUp(g) = d {
                prop_assert_eq!(g.attempts(), attempt);
            }
        }
    }
}

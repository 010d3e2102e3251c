//! Issue #11, hardening: the real binary against a hostile server (the
//! fault server), a hostile image owner (the sandbox with hostile
//! attributes) and a careless user. Every run here is bounded in time and
//! address space, so a defect makes a test fail instead of hanging it or
//! eating the machine's memory.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::fault::{Fault, Reply, TlsFault};
use crate::support::{set_mode, Run, Sandbox, BIN, SEED_ID, TOKEN};

/// A well-formed image for the fault server's answers.
const IMAGE: &str =
    r#"{"id": "33ad552d-1149-471c-8190-ff6776174a00", "name": "faulty", "status": "active"}"#;
/// The address space a run may use: far above what a bounded ims-patch
/// needs, low enough that an unbounded read aborts instead of swapping.
const ADDRESS_SPACE: u64 = 2 << 30;

/// One run of the binary with a clean environment (as `support::Ims`),
/// bounded in time and address space, with its peak memory measured.
struct Bounded {
    cmd: Command,
    home: tempfile::TempDir,
    limit: Duration,
    broken_output: bool,
}

/// What a bounded run did.
struct Outcome {
    run: Run,
    elapsed: Duration,
    /// Killed at the limit.
    timed_out: bool,
    /// Peak resident memory of the process, KiB.
    peak_kib: u64,
}

impl Outcome {
    #[track_caller]
    fn ended_within(&self, limit: Duration) -> &Run {
        assert!(
            !self.timed_out && self.elapsed <= limit,
            "ran {:?} (limit {limit:?}, killed: {})\nstdout:\n{}\nstderr:\n{}",
            self.elapsed,
            self.timed_out,
            self.run.stdout,
            self.run.stderr
        );
        &self.run
    }
}

fn ims() -> Bounded {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    Bounded {
        cmd,
        home,
        limit: Duration::from_secs(60),
        broken_output: false,
    }
}

impl Bounded {
    fn at(mut self, endpoint: &str) -> Bounded {
        self.cmd
            .env("IMS_PATCH_ENDPOINT", endpoint)
            .env("IMS_PATCH_TOKEN", TOKEN);
        self
    }

    fn args<const N: usize>(mut self, args: [&str; N]) -> Bounded {
        self.cmd.args(args);
        self
    }

    fn env(mut self, key: &str, value: &str) -> Bounded {
        self.cmd.env(key, value);
        self
    }

    fn within(mut self, limit: Duration) -> Bounded {
        self.limit = limit;
        self
    }

    /// Standard output and error are pipes whose reading end is closed
    /// before the binary writes anything: `ims-patch ... 2>&1 | true`.
    fn broken_output(mut self) -> Bounded {
        self.broken_output = true;
        self
    }

    /// Writes the default config file (mode 0600).
    fn config(self, text: &str) -> Bounded {
        let path = self.home.path().join("config/ims-patch/config.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        set_mode(&path, 0o600);
        self
    }

    #[allow(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which also reports its peak memory"
    )]
    fn run(mut self) -> Outcome {
        let out_path = self.home.path().join("stdout");
        let err_path = self.home.path().join("stderr");
        if self.broken_output {
            self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        } else {
            self.cmd
                .stdout(std::fs::File::create(&out_path).unwrap())
                .stderr(std::fs::File::create(&err_path).unwrap());
        }
        self.cmd.process_group(0);
        // SAFETY: setrlimit is async-signal-safe and touches only the
        // struct passed in, in the child between fork and exec.
        unsafe {
            self.cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: ADDRESS_SPACE as libc::rlim_t,
                    rlim_max: ADDRESS_SPACE as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let mut child = self.cmd.spawn().unwrap();
        // Closing the reading ends makes every write fail with EPIPE.
        drop(child.stdout.take());
        drop(child.stderr.take());
        let pid = child.id() as libc::pid_t;
        let mut status = 0;
        // SAFETY: rusage is plain old data; zeroed is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let mut timed_out = false;
        loop {
            // SAFETY: waits for our own child; status and usage are valid
            // pointers for the call's duration.
            let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
            if r == pid {
                break;
            }
            assert_eq!(r, 0, "wait4: {}", std::io::Error::last_os_error());
            if started.elapsed() > self.limit {
                timed_out = true;
                // SAFETY: plain kill(2) of the process group made above.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                    libc::wait4(pid, &mut status, 0, &mut usage);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let elapsed = started.elapsed();
        // Helpers it started (a token_command) go with it.
        // SAFETY: as above; ESRCH when the group is already gone.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        };
        let read = |p: &PathBuf| {
            String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
        };
        Outcome {
            run: Run {
                code,
                stdout: read(&out_path),
                stderr: read(&err_path),
            },
            elapsed,
            timed_out,
            peak_kib: usage.ru_maxrss as u64,
        }
    }
}

#[track_caller]
fn assert_no_crash(run: &Run) {
    for sign in ["panicked", "memory allocation", "RUST_BACKTRACE"] {
        assert!(!run.stderr.contains(sign), "{}", run.stderr);
    }
    assert!(run.code < 100, "exit {}:\n{}", run.code, run.stderr);
}

// 1. A name that looks like a filter never selects another image; a name
//    shared by more than a page of images lists all of them.

#[test]
fn a_filter_like_name_never_selects_the_image_glance_returned_for_it() {
    // What Glance answers to `?name=in:web`: the image named "web".
    let server = Fault::always(Reply::json(
        200,
        &json!({"images": [{"id": SEED_ID, "name": "web"}], "first": "/v2/images", "schema": "/v2/schemas/images"})
            .to_string(),
    ));
    for name in ["in:web", "eq:web"] {
        let out = ims()
            .at(&server.endpoint)
            .args(["rename", name, "renamed"])
            .within(Duration::from_secs(20))
            .run();
        let run = out.ended_within(Duration::from_secs(20));
        run.code(5).no_secret();
        assert!(
            run.stderr.contains(&format!("no image is named '{name}'")),
            "{}",
            run.stderr
        );
    }
    assert!(
        server.request_lines().iter().all(|l| l.starts_with("GET ")),
        "an edit was sent: {:?}",
        server.request_lines()
    );
}

#[test]
fn a_filter_like_name_edits_the_image_with_exactly_that_name() {
    let sandbox = Sandbox::start();
    let web = sandbox.create(&json!({"name": "web"}));
    let x = sandbox.create(&json!({"name": "x"}));
    let in_web = sandbox.create(&json!({"name": "in:web"}));
    let eq_x = sandbox.create(&json!({"name": "eq:x"}));
    for (name, id) in [("in:web", &in_web), ("eq:x", &eq_x)] {
        let out = ims()
            .at(&sandbox.endpoint)
            .args(["set-attr", name, "picked=yes", "-q"])
            .within(Duration::from_secs(20))
            .run();
        out.ended_within(Duration::from_secs(20)).ok();
        assert_eq!(sandbox.image(id)["picked"], "yes", "{name}");
    }
    for id in [&web, &x] {
        assert!(sandbox.image(id).get("picked").is_none(), "{id} was edited");
    }
}

#[test]
fn a_name_shared_by_more_than_a_page_of_images_lists_them_all() {
    let sandbox = Sandbox::start();
    let ids: Vec<String> = (0..30)
        .map(|_| sandbox.create(&json!({"name": "dup"})))
        .collect();
    let out = ims()
        .at(&sandbox.endpoint)
        .args(["show", "dup"])
        .within(Duration::from_secs(20))
        .run();
    let run = out.ended_within(Duration::from_secs(20));
    run.code(2);
    assert!(
        run.stderr.contains("30 images are named 'dup'"),
        "{}",
        run.stderr
    );
    for id in &ids {
        assert!(
            run.stderr.contains(id.as_str()),
            "{id} missing:\n{}",
            run.stderr
        );
    }
}

// 2. --timeout bounds the whole exchange, body included.

#[test]
fn timeout_bounds_a_dripped_body() {
    let server = Fault::always(Reply::drip(200, IMAGE, Duration::from_millis(300)));
    let out = ims()
        .at(&server.endpoint)
        // One attempt: a read timeout of a GET is retried (#10, tests/batch.rs).
        .args([
            "--retries",
            "0",
            "--timeout",
            "2",
            "show",
            SEED_ID,
            "-o",
            "json",
        ])
        .within(Duration::from_secs(30))
        .run();
    // 2 s of timeout plus start-up; the drip alone lasts about 27 s.
    let run = out.ended_within(Duration::from_secs(6));
    run.code(1).no_secret();
    assert!(run.stderr.contains("timed out after 2 s"), "{}", run.stderr);
}

// 3. Answers are capped in size; the table's memory is bounded.

#[test]
fn an_endless_success_body_is_cut_at_the_cap() {
    let server = Fault::always(Reply::endless(
        200,
        &format!(r#"{{"id": "{SEED_ID}", "name": ""#),
        b'a',
    ));
    let out = ims()
        .at(&server.endpoint)
        .args(["show", SEED_ID, "-o", "json"])
        .within(Duration::from_secs(40))
        .run();
    let run = out.ended_within(Duration::from_secs(40));
    assert_no_crash(run);
    run.code(1).no_secret();
    assert!(
        run.stderr.contains("MiB"),
        "the cap is not named:\n{}",
        run.stderr
    );
    // 32 MiB of cap plus what the socket buffers held when it stopped.
    assert!(
        server.body_bytes_sent() < 48 << 20,
        "read {} bytes",
        server.body_bytes_sent()
    );
}

#[test]
fn an_endless_error_body_is_cut_at_the_cap() {
    let server = Fault::always(Reply::endless(500, r#"{"message": ""#, b'x'));
    let out = ims()
        .at(&server.endpoint)
        .args(["show", SEED_ID])
        .within(Duration::from_secs(40))
        .run();
    let run = out.ended_within(Duration::from_secs(40));
    assert_no_crash(run);
    run.code(1).no_secret();
    assert!(
        run.stderr.contains("MiB"),
        "the cap is not named:\n{}",
        run.stderr
    );
    assert!(
        server.body_bytes_sent() < 48 << 20,
        "read {} bytes",
        server.body_bytes_sent()
    );
}

/// A 200 MiB image (the issue's case took 866 MB as a table) is refused at
/// the 32 MiB cap. Bound: 160 MiB of peak memory, which is the cap, a
/// parsed copy and a rendered copy of a capped answer plus the runtime,
/// and a fifth of what the unbounded read took. A capped read on this
/// machine takes well under a second; today's unbounded one runs past the
/// 30 s limit (the table wraps a 200 MiB cell).
#[test]
fn a_200_mib_image_as_a_table_stays_bounded() {
    let server = Fault::always(Reply::large(
        200,
        &format!(r#"{{"id": "{SEED_ID}", "name": "huge", "blob": ""#),
        b'b',
        200 << 20,
        r#""}"#,
    ));
    let out = ims()
        .at(&server.endpoint)
        .args(["show", SEED_ID])
        .within(Duration::from_secs(30))
        .run();
    let run = out.ended_within(Duration::from_secs(20));
    assert_no_crash(run);
    assert!(
        out.peak_kib < 160 << 10,
        "peak memory {} MiB",
        out.peak_kib >> 10
    );
    run.code(1).no_secret();
    assert!(run.stderr.contains("MiB"), "{}", run.stderr);
}

// 4. token_command is bounded in time and output, fails with exit 3, and
//    is never echoed.

fn token_command_config(command: &str) -> String {
    format!(
        "default_profile = \"lab\"\n[profiles.lab]\ntoken_command = {}\n",
        toml_string(command)
    )
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

const IN_COMMAND: &str = "s3cr3t-in-the-command-text";

fn run_token_command(server: &Fault, command: &str) -> Outcome {
    ims()
        .env("IMS_PATCH_ENDPOINT", &server.endpoint)
        .config(&token_command_config(command))
        // One attempt: a read timeout of a GET is retried (#10, tests/batch.rs).
        .args([
            "--retries",
            "0",
            "--timeout",
            "2",
            "show",
            SEED_ID,
            "-o",
            "json",
        ])
        .within(Duration::from_secs(40))
        .run()
}

#[test]
fn a_token_command_that_never_ends_is_stopped() {
    let server = Fault::always(Reply::json(200, IMAGE));
    let out = run_token_command(&server, &format!("sleep 3600 # {IN_COMMAND}"));
    let run = out.ended_within(Duration::from_secs(10));
    run.code(3);
    assert!(run.stderr.contains("token_command"), "{}", run.stderr);
    assert!(!run.stderr.contains(IN_COMMAND), "{}", run.stderr);
    assert!(server.requests().is_empty());
}

#[test]
fn a_token_command_that_prints_forever_is_refused() {
    let server = Fault::always(Reply::json(200, IMAGE));
    let out = run_token_command(&server, &format!("yes # {IN_COMMAND}"));
    let run = out.ended_within(Duration::from_secs(10));
    assert_no_crash(run);
    run.code(3);
    assert!(!run.stderr.contains(IN_COMMAND), "{}", run.stderr);
    assert!(server.requests().is_empty());
}

#[test]
fn a_token_command_with_a_megabyte_of_output_is_refused() {
    let server = Fault::always(Reply::json(200, IMAGE));
    let out = run_token_command(
        &server,
        &format!("head -c 1048576 /dev/zero | tr '\\0' a # {IN_COMMAND}"),
    );
    let run = out.ended_within(Duration::from_secs(10));
    run.code(3);
    assert!(!run.stderr.contains(IN_COMMAND), "{}", run.stderr);
    assert!(server.requests().is_empty(), "a megabyte header was sent");
}

#[test]
fn a_failing_token_command_is_exit_3_without_its_text() {
    let server = Fault::always(Reply::json(200, IMAGE));
    for command in [
        format!("exit 9 # {IN_COMMAND}"),
        format!("true # {IN_COMMAND}"),
        format!("no-such-program-{IN_COMMAND}"),
    ] {
        let out = run_token_command(&server, &command);
        let run = out.ended_within(Duration::from_secs(10));
        run.code(3);
        assert!(run.stderr.contains("token_command"), "{}", run.stderr);
        assert!(
            !run.stderr.contains(IN_COMMAND),
            "{command}:\n{}",
            run.stderr
        );
    }
    assert!(server.requests().is_empty());
}

// 5. Control and bidi characters from the server are escaped.

const HOSTILE: &str =
    "\u{1b}]0;pwned\u{7}\u{1b}[2Jsafe\rEVIL abc\u{202e}fed \u{2066}x\u{2069}\u{9b}31m";

#[track_caller]
fn assert_escaped(text: &str) {
    for c in [
        '\u{1b}', '\r', '\u{7}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{9b}',
    ] {
        assert!(
            !text.contains(c),
            "{c:?} reached the terminal raw: {text:?}"
        );
    }
}

#[test]
fn hostile_attribute_values_are_escaped_in_the_table() {
    let sandbox = Sandbox::start();
    let id = sandbox.create(&json!({"name": "evil", "hostile": HOSTILE}));
    let out = ims()
        .at(&sandbox.endpoint)
        .args(["show", &id])
        .within(Duration::from_secs(20))
        .run();
    let run = out.ended_within(Duration::from_secs(20));
    run.ok();
    assert_escaped(&run.stdout);
    assert!(run.stdout.contains("\\u001b]0;pwned"), "{}", run.stdout);
    // -o json is exact and escaped by JSON itself.
    let out = ims()
        .at(&sandbox.endpoint)
        .args(["show", &id, "-o", "json"])
        .run();
    assert_eq!(out.run.json()["hostile"], HOSTILE);
    assert_escaped(&out.run.stdout);
}

#[test]
fn hostile_server_error_messages_are_escaped() {
    let body = json!({"message": format!("bad request {HOSTILE}"), "code": "400 Bad Request", "title": "Bad Request"});
    let server = Fault::always(Reply::json(400, &body.to_string()));
    let out = ims()
        .at(&server.endpoint)
        .args(["set-attr", SEED_ID, "k=v"])
        .within(Duration::from_secs(20))
        .run();
    let run = out.ended_within(Duration::from_secs(20));
    run.code(7);
    assert_escaped(&run.stderr);
    assert!(run.stderr.contains("bad request"), "{}", run.stderr);
    // A plain-text error body too.
    let server = Fault::always(Reply::with_type(500, "text/plain", HOSTILE.as_bytes()));
    let out = ims().at(&server.endpoint).args(["show", SEED_ID]).run();
    out.run.code(8);
    assert_escaped(&out.run.stderr);
}

#[test]
fn hostile_ids_locations_and_request_ids_are_escaped() {
    // Two images named "dup" whose IDs carry escape sequences.
    let list = json!({"images": [
        {"id": format!("a{HOSTILE}"), "name": "dup"},
        {"id": format!("b{HOSTILE}"), "name": "dup"},
    ], "first": "/v2/images", "schema": "/v2/schemas/images"});
    let server = Fault::always(Reply::json(200, &list.to_string()));
    let out = ims().at(&server.endpoint).args(["show", "dup"]).run();
    out.run.code(2);
    assert!(
        out.run.stderr.contains("2 images are named 'dup'"),
        "{}",
        out.run.stderr
    );
    assert_escaped(&out.run.stderr);
    // A redirect's Location and a request ID, shown in the error. HTTP
    // refuses control characters in headers, but not the bytes of bidi
    // overrides (obs-text).
    let server = Fault::always(
        Reply::with_type(302, "text/plain", b"")
            .header("Location", "https://x.example/\u{202e}gpj.exe")
            .header("x-openstack-request-id", "req-\u{2066}x\u{2069}"),
    );
    let out = ims()
        .at(&server.endpoint)
        .args(["-v", "show", SEED_ID])
        .run();
    out.run.code(3);
    assert!(out.run.stderr.contains("x.example"), "{}", out.run.stderr);
    assert_escaped(&out.run.stderr);
}

// 6. A 2xx answer that is not a JSON object is an error.

#[test]
fn a_success_that_is_not_an_object_is_exit_1() {
    for body in ["[1,2,3]", "42", "null", "\"image\""] {
        for args in [
            ["show", SEED_ID, "-o", "json"],
            ["set-attr", SEED_ID, "k=v", "-q"],
        ] {
            let server = Fault::always(Reply::json(200, body));
            let out = ims()
                .at(&server.endpoint)
                .args(args)
                .within(Duration::from_secs(20))
                .run();
            let run = out.ended_within(Duration::from_secs(20));
            run.code(1);
            assert!(
                run.stderr.contains("200")
                    && run.stderr.contains("with something that is not an image"),
                "{body} {args:?}:\n{}",
                run.stderr
            );
            assert_eq!(run.stdout, "", "{body}");
        }
    }
}

// 7. A failure after the request was sent: the outcome is unknown.

#[test]
fn a_dropped_connection_after_the_patch_says_the_outcome_is_unknown() {
    let server = Fault::always(Reply::Hangup);
    let out = ims()
        .at(&server.endpoint)
        // One attempt: a dropped add is repeated (#10, tests/batch.rs).
        .args(["--retries", "0", "set-attr", SEED_ID, "k=v"])
        .within(Duration::from_secs(20))
        .run();
    let run = out.ended_within(Duration::from_secs(20));
    run.code(1).no_secret();
    assert!(!run.stderr.contains("cannot reach"), "{}", run.stderr);
    assert!(run.stderr.contains("unknown"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("ims-patch show {SEED_ID}")),
        "{}",
        run.stderr
    );
    assert_eq!(
        server.request_lines(),
        [format!("PATCH /v2/images/{SEED_ID}")]
    );
}

#[test]
fn a_timeout_after_the_patch_says_the_outcome_is_unknown() {
    let server = Fault::always(Reply::json(200, IMAGE).delay(Duration::from_secs(10)));
    let out = ims()
        .at(&server.endpoint)
        .args([
            "--retries",
            "0",
            "--timeout",
            "1",
            "set-attr",
            SEED_ID,
            "k=v",
        ])
        .within(Duration::from_secs(20))
        .run();
    let run = out.ended_within(Duration::from_secs(8));
    run.code(1);
    assert!(run.stderr.contains("unknown"), "{}", run.stderr);
    assert!(run.stderr.contains("ims-patch show"), "{}", run.stderr);
}

#[test]
fn nothing_sent_is_still_cannot_reach() {
    // A port that was free a moment ago: the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = ims()
        .at(&format!("http://127.0.0.1:{port}"))
        .args(["set-attr", SEED_ID, "k=v"])
        .within(Duration::from_secs(20))
        .run();
    let run = out.ended_within(Duration::from_secs(20));
    run.code(1);
    assert!(run.stderr.contains("cannot reach"), "{}", run.stderr);
    assert!(!run.stderr.contains("unknown"), "{}", run.stderr);
}

// 8. A closed output does not panic.

#[test]
fn a_broken_stderr_exits_with_the_documented_code() {
    // The answer waits so that the pipes are surely closed before it.
    let server = Fault::always(
        Reply::json(
            200,
            r#"{"images": [], "first": "/v2/images", "schema": "/v2/schemas/images"}"#,
        )
        .delay(Duration::from_millis(300)),
    );
    let out = ims()
        .at(&server.endpoint)
        .args(["show", "no-such-name"])
        .broken_output()
        .within(Duration::from_secs(20))
        .run();
    // Exit 5 as documented for a missing image; a panic is 101.
    out.ended_within(Duration::from_secs(20)).code(5);
}

// 9. -o json keeps the server's numbers and keys.

#[test]
fn json_output_keeps_numbers_and_duplicate_keys_as_written() {
    let body = format!(
        r#"{{"id": "{SEED_ID}", "name": "n", "ratio": 1.10, "big": 123456789012345678901234567890, "dup": 1, "dup": 2, "exp": 1E+2}}"#
    );
    let server = Fault::always(Reply::json(200, &body));
    let out = ims()
        .at(&server.endpoint)
        .args(["show", SEED_ID, "-o", "json"])
        .within(Duration::from_secs(20))
        .run();
    let run = out.ended_within(Duration::from_secs(20));
    run.ok();
    let compact: String = run.stdout.chars().filter(|c| !c.is_whitespace()).collect();
    for kept in [
        r#""ratio":1.10,"#,
        r#""big":123456789012345678901234567890,"#,
        r#""dup":1,"dup":2,"#,
        r#""exp":1E+2}"#,
    ] {
        assert!(compact.contains(kept), "{kept} not kept:\n{}", run.stdout);
    }
}

// 10. The sandbox journal holds no credential and is private.

#[test]
fn the_sandbox_journal_is_private_and_holds_no_token() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::start();
    let out = ims()
        .at(&sandbox.endpoint)
        .args(["set-attr", SEED_ID, "k=v", "-q"])
        .within(Duration::from_secs(20))
        .run();
    out.ended_within(Duration::from_secs(20)).ok();
    let path = sandbox.journal_path();
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("PATCH"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

// 11. --cacert trusts a self-signed CA:TRUE certificate (openssl req -x509).

#[test]
fn cacert_trusts_a_self_signed_ca_certificate_as_openssl_makes_it() {
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "lab glance");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let server = TlsFault::start(&cert, &key, IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("lab.pem");
    std::fs::write(&ca, cert.pem()).unwrap();
    let out = ims()
        .at(&server.endpoint)
        .args([
            "--cacert",
            ca.to_str().unwrap(),
            "show",
            SEED_ID,
            "-o",
            "json",
        ])
        .within(Duration::from_secs(20))
        .run();
    let run = out.ended_within(Duration::from_secs(20));
    run.ok();
    assert_eq!(run.json()["name"], "faulty");
    // Still refused without it.
    let out = ims().at(&server.endpoint).args(["show", SEED_ID]).run();
    out.run.code(1);
}

// 12. A blank IMS_PATCH_CONFIG or IMS_PATCH_CACERT means unset.

#[test]
fn blank_config_and_cacert_variables_mean_unset() {
    let sandbox = Sandbox::start();
    for var in ["IMS_PATCH_CONFIG", "IMS_PATCH_CACERT"] {
        for blank in ["", "  "] {
            let out = ims()
                .at(&sandbox.endpoint)
                .env(var, blank)
                .args(["show", SEED_ID, "-o", "json"])
                .within(Duration::from_secs(20))
                .run();
            let run = out.ended_within(Duration::from_secs(20));
            run.ok();
            assert_eq!(run.json()["id"], SEED_ID);
        }
    }
}

// 13. The endpoint's userinfo and query never show up in the refusal.

#[test]
fn endpoint_userinfo_and_query_are_redacted_in_the_refusal() {
    for endpoint in [
        "https://alice-user:pw-hunter2@glance.example:9292/v2",
        "https://alice-user@glance.example:9292/v2",
        "https://glance.example:9292/v2?sig=q-s3cret#frag-s3cret",
    ] {
        let out = ims()
            .env("IMS_PATCH_ENDPOINT", endpoint)
            .env("IMS_PATCH_TOKEN", TOKEN)
            .args(["show", SEED_ID])
            .within(Duration::from_secs(20))
            .run();
        let run = out.ended_within(Duration::from_secs(20));
        run.code(3);
        for secret in ["alice-user", "pw-hunter2", "q-s3cret", "frag-s3cret"] {
            assert!(!run.stderr.contains(secret), "{endpoint}:\n{}", run.stderr);
        }
        assert!(run.stderr.contains("glance.example"), "{}", run.stderr);
    }
}

// 14. A wrong endpoint path is a configuration problem, not "not found".

#[test]
fn a_wrong_endpoint_path_is_a_config_error_not_image_not_found() {
    let sandbox = Sandbox::start();
    let wrong = format!("{}/v2/images", sandbox.endpoint.trim_end_matches('/'));
    let out = ims()
        .at(&wrong)
        .args(["show", SEED_ID])
        .within(Duration::from_secs(20))
        .run();
    let run = out.ended_within(Duration::from_secs(20));
    run.code(3);
    assert!(run.stderr.contains("endpoint"), "{}", run.stderr);
    // A missing image on the right endpoint stays exit 5.
    let out = ims()
        .at(&sandbox.endpoint)
        .args(["show", "00000000-0000-0000-0000-000000000000"])
        .run();
    out.run.code(5);
}

#[test]
fn glance_resource_not_found_is_a_config_error() {
    let body = r#"{"message": "The resource could not be found.<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}"#;
    let server = Fault::always(Reply::json(404, body));
    let out = ims()
        .at(&server.endpoint)
        .args(["set-attr", SEED_ID, "k=v"])
        .within(Duration::from_secs(20))
        .run();
    let run = out.ended_within(Duration::from_secs(20));
    run.code(3);
    assert!(run.stderr.contains("endpoint"), "{}", run.stderr);
    let missing = format!(
        r#"{{"message": "No image found with ID {SEED_ID}<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}}"#
    );
    let server = Fault::always(Reply::json(404, &missing));
    let out = ims().at(&server.endpoint).args(["show", SEED_ID]).run();
    out.run.code(5);
}

/// The fault server itself: scripted replies in order, 503 with
/// Retry-After, recorded requests.
#[test]
fn the_fault_server_follows_its_script() {
    let server = Fault::start(vec![
        Reply::unavailable(1),
        Reply::unavailable(1),
        Reply::json(200, IMAGE),
    ]);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let mut stream =
            std::net::TcpStream::connect(server.endpoint.trim_start_matches("http://")).unwrap();
        stream
            .write_all(b"PATCH /v2/images/x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n[]")
            .unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
        statuses.push(answer.split_whitespace().nth(1).unwrap().to_string());
        if statuses.len() <= 2 {
            assert!(answer.contains("Retry-After: 1\r\n"), "{answer}");
        }
    }
    assert_eq!(statuses, ["503", "503", "200", "200"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[0].line(), "PATCH /v2/images/x");
    assert_eq!(requests[0].body, b"[]");
    assert_eq!(requests[0].header("host"), Some("h"));
}

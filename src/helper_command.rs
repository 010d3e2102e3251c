//! Running a helper command from the settings (`token_command`, and the
//! same way `password_command` or `secret_key_command`) with bounds:
//! a time limit, a cap on what it prints, its whole process group killed on
//! timeout. Errors name the setting and its source, never the command text
//! (it may hold a credential); every failure is a configuration error
//! (exit 3).

use std::fmt::Display;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sanitize;
use crate::secret::Secret;

/// The bounds for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole run: start to exit, output read.
    pub time: Duration,
    /// The most bytes of standard output; more is an error.
    pub stdout_max: usize,
    /// The most bytes of standard error kept (the rest is read and dropped).
    pub stderr_max: usize,
}

impl Default for Limits {
    /// 30 s (a login helper may have to reach a vault or an SSO service),
    /// 64 KiB of output (a Keystone token is under 300 bytes, an OTC one
    /// about 10 KiB), 8 KiB of error output kept.
    fn default() -> Limits {
        Limits {
            time: Duration::from_secs(30),
            stdout_max: 64 << 10,
            stderr_max: 8 << 10,
        }
    }
}

/// Runs `command` with `sh -c`, stdin closed, in its own process group,
/// and returns its standard output trimmed, as a secret. `setting` (e.g.
/// `"token_command"`) and `source` (where it was set) name it in errors;
/// what it prints is named after the setting ("token" for
/// `token_command`, "password" for `password_command`). The command text
/// never appears in an error.
pub fn run(setting: &str, source: &dyn Display, command: &str, limits: Limits) -> Result<Secret> {
    let started = Instant::now();
    let what = || format!("the {setting} ({source})");
    let printed = printed_noun(setting);
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::config(format!("cannot run {}: {e}", what())))?;
    let (tx, rx) = mpsc::channel();
    for (stream, cap, is_out) in [
        (
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            limits.stdout_max,
            true,
        ),
        (
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            limits.stderr_max,
            false,
        ),
    ] {
        let tx = tx.clone();
        let stream = stream.expect("piped");
        std::thread::spawn(move || {
            let _ = tx.send((is_out, read_capped(stream, cap, is_out)));
        });
    }
    drop(tx);
    let (mut stdout, mut stderr) = (None, None);
    let mut status = None;
    let deadline = started + limits.time;
    while stdout.is_none() || stderr.is_none() || status.is_none() {
        if Instant::now() >= deadline {
            kill_group(&mut child);
            return Err(Error::config(format!(
                "{} did not finish within {} s",
                what(),
                limits.time.as_secs_f64()
            ))
            .hint(format!(
                "the {setting} must print the {printed} and exit without asking anything; run it by hand to check"
            )));
        }
        if let Ok((is_out, read)) = rx.recv_timeout(Duration::from_millis(10)) {
            let (bytes, over) = read;
            if is_out && over {
                kill_group(&mut child);
                return Err(Error::config(format!(
                    "{} printed more than {} bytes",
                    what(),
                    limits.stdout_max
                ))
                .hint(format!("the {setting} must print only the {printed}")));
            }
            if is_out {
                stdout = Some(bytes);
            } else {
                stderr = Some(bytes);
            }
        }
        if status.is_none() {
            status = child
                .try_wait()
                .map_err(|e| Error::config(format!("cannot wait for {}: {e}", what())))?;
        }
    }
    let status = status.expect("loop ends with a status");
    let (stdout, stderr) = (stdout.unwrap_or_default(), stderr.unwrap_or_default());
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        };
        let mut err = Error::config(format!("{} failed ({how})", what()));
        if let Some(line) = last_line(&stderr, command) {
            err = err.hint(format!("its error output ends with: {line}"));
        }
        return Err(err.hint(format!(
            "run the command by hand to see why; its standard output must be the {printed}"
        )));
    }
    let text = String::from_utf8(stdout).map_err(|_| {
        Error::config(format!(
            "{} printed something that is not UTF-8 text",
            what()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(
            Error::config(format!("{} printed nothing", what())).hint(format!(
                "the {setting} must print the {printed} on its standard output"
            )),
        );
    }
    if token.chars().any(|c| c.is_control()) {
        // A secret goes into an HTTP header or a login body: no line
        // breaks, no controls.
        return Err(Error::config(format!(
            "{} printed more than one line or control characters",
            what()
        ))
        .hint(format!("the {setting} must print only the {printed}")));
    }
    Ok(Secret::new(token))
}

/// What a helper setting prints: "token" for `token_command`, "secret key"
/// for `secret_key_command`.
fn printed_noun(setting: &str) -> String {
    setting
        .strip_suffix("_command")
        .unwrap_or("secret")
        .replace('_', " ")
}

/// Reads `stream` to its end, keeping at most `cap` bytes. For standard
/// output it stops at `cap + 1` bytes and says so (the child then gets
/// SIGPIPE or is killed); standard error is drained so the child never
/// blocks on it, keeping only the first `cap` bytes.
fn read_capped(
    mut stream: Box<dyn Read + Send>,
    cap: usize,
    stop_when_over: bool,
) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut over = false;
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                if n > room {
                    over = true;
                    if stop_when_over {
                        break;
                    }
                }
            }
        }
    }
    (kept, over)
}

/// Kills the helper's whole process group (a shell pipeline, a sleeping
/// grandchild) and reaps the helper.
fn kill_group(child: &mut Child) {
    if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) takes plain integers and touches no memory. The
        // group is the one spawned above with process_group(0) (its id is
        // the child's pid) and the child is not reaped yet, so the id
        // cannot have been reused.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last non-empty line of the helper's error output, made safe for the
/// terminal, shortened, and with every longer word of the command replaced
/// by `...` (a shell that cannot run it may quote it).
fn last_line(stderr: &[u8], command: &str) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let mut line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())?
        .trim()
        .to_string();
    let mut words: Vec<&str> = command
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| "'\"`;&|()<>$".contains(c)))
        .filter(|w| w.len() >= 4)
        .collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    for word in words {
        line = line.replace(word, "...");
    }
    if line.chars().count() > 200 {
        line = format!("{}...", line.chars().take(200).collect::<String>());
    }
    Some(sanitize::escape(&line).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(seconds: u64) -> Limits {
        Limits {
            time: Duration::from_secs(seconds),
            ..Limits::default()
        }
    }

    fn run_it(command: &str, limits: Limits) -> Result<Secret> {
        run(
            "token_command",
            &"from profile 'p' in /x/config.toml",
            command,
            limits,
        )
    }

    fn message(e: &Error) -> String {
        format!("{}\n{}", e.message, e.hints.join("\n"))
    }

    #[test]
    fn names_what_each_setting_prints() {
        assert_eq!(printed_noun("token_command"), "token");
        assert_eq!(printed_noun("password_command"), "password");
        assert_eq!(printed_noun("secret_key_command"), "secret key");
        let err = run("password_command", &"from --x", "true", limits(10)).unwrap_err();
        assert!(
            message(&err).contains("must print the password on its standard output"),
            "{}",
            message(&err)
        );
    }

    #[test]
    fn prints_the_token() {
        let token = run_it("printf ' tok-123\\n'", limits(10)).unwrap();
        assert_eq!(token.expose(), "tok-123");
    }

    #[test]
    fn sleep_is_killed_at_the_limit_with_its_group() {
        let started = Instant::now();
        let marker = tempfile::NamedTempFile::new().unwrap();
        let path = marker.path().display().to_string();
        // A grandchild in the background must die with the group.
        let command = format!("(sleep 2; echo late > '{path}') & sleep 3600");
        let err = run_it(
            &command,
            Limits {
                time: Duration::from_millis(500),
                ..Limits::default()
            },
        )
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.message.contains("did not finish within 0.5 s"),
            "{}",
            message(&err)
        );
        assert!(!message(&err).contains("sleep"), "{}", message(&err));
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(
            std::fs::read_to_string(marker.path()).unwrap(),
            "",
            "the grandchild survived"
        );
    }

    #[test]
    fn endless_output_is_refused_quickly() {
        let started = Instant::now();
        let err = run_it("yes", limits(10)).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.message.contains("printed more than 65536 bytes"),
            "{}",
            message(&err)
        );
        assert!(!message(&err).contains("yes"), "{}", message(&err));
    }

    #[test]
    fn large_output_is_refused_and_endless_stderr_is_bounded() {
        let err = run_it("head -c 100000 /dev/zero | tr '\\0' a", limits(10)).unwrap_err();
        assert!(
            err.message.contains("printed more than"),
            "{}",
            message(&err)
        );
        // An endless error stream is drained, not kept, and ends with the limit.
        let err = run_it(
            "yes >&2",
            Limits {
                time: Duration::from_millis(500),
                ..Limits::default()
            },
        )
        .unwrap_err();
        assert!(err.message.contains("did not finish"), "{}", message(&err));
    }

    #[test]
    fn failure_names_the_setting_not_the_command() {
        let secret = "s3cr3t-password-in-the-command";
        // ls quotes its argument in its error: that part is hidden.
        let command = format!("ls '/nonexistent/{secret}'; exit 7");
        let err = run_it(&command, limits(10)).unwrap_err();
        let text = message(&err);
        assert_eq!(err.exit_code(), 3);
        assert!(
            text.contains(
                "the token_command (from profile 'p' in /x/config.toml) failed (exit status 7)"
            ),
            "{text}"
        );
        assert!(text.contains("its error output ends with: ls: "), "{text}");
        assert!(text.contains("No such file or directory"), "{text}");
        assert!(!text.contains(secret), "{text}");
    }

    #[test]
    fn a_missing_program_does_not_echo_the_command() {
        let err = run_it("no-such-program-x1 --password hunter2-long", limits(10)).unwrap_err();
        let text = message(&err);
        assert_eq!(err.exit_code(), 3);
        assert!(!text.contains("hunter2-long"), "{text}");
        assert!(!text.contains("no-such-program-x1"), "{text}");
    }

    #[test]
    fn empty_or_multi_line_output_is_refused() {
        let err = run_it("true", limits(10)).unwrap_err();
        assert!(err.message.contains("printed nothing"), "{}", message(&err));
        let err = run_it("printf 'a\\nb\\n'", limits(10)).unwrap_err();
        assert!(
            err.message.contains("more than one line"),
            "{}",
            message(&err)
        );
        let err = run_it("printf '\\377'", limits(10)).unwrap_err();
        assert!(err.message.contains("not UTF-8"), "{}", message(&err));
    }

    #[test]
    fn hostile_error_output_is_escaped() {
        let err = run_it("printf 'bad\\033]0;title\\007\\n' >&2; exit 1", limits(10)).unwrap_err();
        let text = message(&err);
        assert!(text.contains("bad\\u001b]0;title\\u0007"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }
}

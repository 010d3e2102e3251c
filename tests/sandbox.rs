//! The `sandbox` command as a user runs it: its printed exports, --state
//! persistence across restarts, --token, and the version document.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::{raw_request, Ims, Sandbox, BIN, SEED_ID, TOKEN};

/// Starts `ims-patch sandbox` with `args`; returns the child and its two
/// printed export lines.
fn start(args: &[&str]) -> (std::process::Child, Vec<String>) {
    let mut child = Command::new(BIN)
        .env_clear()
        .args(["sandbox", "--port", "0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        lines.push(line.trim().to_string());
    }
    (child, lines)
}

fn endpoint(lines: &[String]) -> String {
    lines[0]
        .strip_prefix("export IMS_PATCH_ENDPOINT=")
        .unwrap()
        .to_string()
}

#[test]
fn prints_the_exports_and_persists_state_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("images.json");
    let state_arg = state.to_str().unwrap();

    let (mut first, lines) = start(&["--state", state_arg]);
    assert!(
        lines[0].starts_with("export IMS_PATCH_ENDPOINT=http://127.0.0.1:"),
        "{lines:?}"
    );
    assert_eq!(lines[1], "export IMS_PATCH_TOKEN=sandbox");
    Ims::new()
        .env("IMS_PATCH_ENDPOINT", endpoint(&lines))
        .env("IMS_PATCH_TOKEN", "anything")
        .args(["rename", SEED_ID, "kept"])
        .run()
        .ok();
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(std::fs::read_to_string(&state)
        .unwrap()
        .contains("\"kept\""));

    let (mut second, lines) = start(&["--state", state_arg]);
    let run = Ims::new()
        .env("IMS_PATCH_ENDPOINT", endpoint(&lines))
        .env("IMS_PATCH_TOKEN", "anything")
        .args(["show", SEED_ID, "-o", "json", "--field", "name"])
        .run();
    second.kill().unwrap();
    second.wait().unwrap();
    run.ok();
    assert_eq!(run.json()["name"], "kept");
}

#[test]
fn a_corrupt_state_file_is_refused_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("images.json");
    std::fs::write(&state, "{ not json").unwrap();
    let run = Ims::new()
        .args(["sandbox", "--port", "0", "--state"])
        .arg(&state)
        .run();
    run.code(1);
    assert!(
        run.stderr.contains(state.to_str().unwrap()),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "{ not json");
}

#[test]
fn token_guards_every_request() {
    let (mut child, lines) = start(&["--token", TOKEN]);
    assert_eq!(lines[1], format!("export IMS_PATCH_TOKEN={TOKEN}"));
    let url = endpoint(&lines);
    let wrong = Ims::new()
        .env("IMS_PATCH_ENDPOINT", &url)
        .env("IMS_PATCH_TOKEN", "wrong")
        .args(["show", SEED_ID])
        .run();
    let right = Ims::new()
        .env("IMS_PATCH_ENDPOINT", &url)
        .env("IMS_PATCH_TOKEN", TOKEN)
        .args(["show", SEED_ID])
        .run();
    child.kill().unwrap();
    child.wait().unwrap();
    wrong.code(4);
    right.ok();
}

#[test]
fn a_token_in_the_environment_does_not_guard_the_sandbox() {
    // IMS_PATCH_TOKEN is the client's setting, not the sandbox's.
    let mut child = Command::new(BIN)
        .env_clear()
        .env("IMS_PATCH_TOKEN", "client-token")
        .args(["sandbox", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("export IMS_PATCH_ENDPOINT=")
        .unwrap()
        .to_string();
    let run = Ims::new()
        .env("IMS_PATCH_ENDPOINT", &url)
        .env("IMS_PATCH_TOKEN", "other")
        .args(["show", SEED_ID])
        .run();
    child.kill().unwrap();
    child.wait().unwrap();
    run.ok();
}

#[test]
fn version_document_lists_v2_up_to_2_18() {
    let sb = Sandbox::start();
    let (status, body) = raw_request(&sb.endpoint, "GET", "/", &[], None);
    assert_eq!(status, 300);
    assert!(
        body.contains("v2.18") && body.contains(&format!("{}/v2/", sb.endpoint)),
        "{body}"
    );
    let journal = sb.requests();
    assert_eq!(journal[0]["status"], 300);
}

//! `ims-patch sandbox -- COMMAND`: COMMAND runs against a fresh sandbox
//! with only the sandbox's endpoint and token in its environment, the
//! sandbox stops with it, and its exit status is passed on.

use std::path::Path;

use crate::support::{Ims, BIN, SEED_ID};

/// The binary's directory first on PATH, so COMMAND can be `ims-patch`.
fn path_with_bin() -> String {
    format!(
        "{}:{}",
        Path::new(BIN).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn runs_an_edit_against_a_fresh_sandbox_and_keeps_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let run = Ims::new()
        .env("PATH", path_with_bin())
        .arg("sandbox")
        .arg("--journal")
        .arg(&journal)
        .args([
            "--",
            "ims-patch",
            "rename",
            SEED_ID,
            "ims_test01",
            "-o",
            "value",
        ])
        .args(["--field", "name"])
        .run();
    run.ok();
    assert_eq!(run.stdout, "ims_test01\n");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["method"], "PATCH");
    // A second run starts from the seed again: a fresh sandbox each time.
    let run = Ims::new()
        .env("PATH", path_with_bin())
        .args(["sandbox", "--", "ims-patch", "show", SEED_ID, "-o", "value"])
        .args(["--field", "name"])
        .run();
    assert_eq!(run.stdout, "ims_test\n");
}

#[test]
fn command_sees_only_the_sandbox_and_nothing_real() {
    let run = Ims::new()
        .env("OS_CLOUD", "production")
        .env("OS_AUTH_URL", "https://iam.example.com/v3")
        .env("OS_PASSWORD", "hunter2")
        .env("IMS_PATCH_ACCESS_KEY", "AK")
        .env("IMS_PATCH_ENDPOINT", "https://ims.example.com")
        .env("IMS_PATCH_PROFILE", "prod")
        .write_config("[profiles.prod]\nendpoint = \"https://ims.example.com\"\n")
        .args([
            "sandbox",
            "--",
            "sh",
            "-c",
            "env | grep -E '^(OS_|IMS_PATCH_)' | sort; cat \"$IMS_PATCH_CONFIG\"; exit 7",
        ])
        .run();
    run.code(7);
    let vars: Vec<&str> = run
        .stdout
        .lines()
        .map(|l| l.split('=').next().unwrap())
        .collect();
    assert_eq!(
        vars,
        [
            "IMS_PATCH_CACHE_DIR",
            "IMS_PATCH_CONFIG",
            "IMS_PATCH_ENDPOINT",
            "IMS_PATCH_TOKEN"
        ],
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("IMS_PATCH_ENDPOINT=http://127.0.0.1:"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("IMS_PATCH_TOKEN=sandbox\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_sandbox_stops_with_the_command_and_signals_become_128_plus_n() {
    let run = Ims::new()
        .args([
            "sandbox",
            "--",
            "sh",
            "-c",
            "echo $IMS_PATCH_ENDPOINT; kill -TERM $$",
        ])
        .run();
    run.code(143);
    let endpoint = run.stdout.trim();
    let hostport = endpoint.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(hostport).is_err(),
        "the sandbox at {endpoint} still answers"
    );
    let run = Ims::new()
        .args(["sandbox", "--", "no-such-command-here"])
        .run();
    run.code(127);
    assert!(
        run.stderr.contains("cannot run 'no-such-command-here'"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_readme_first_command_works_on_a_fresh_clone() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let first = readme
        .lines()
        .find_map(|l| l.strip_prefix("$ "))
        .expect("README has a console example");
    // Installing is what `cargo install --path .` does; the test uses the built binary.
    let rest = first
        .strip_prefix("cargo install --path . && ")
        .unwrap_or_else(|| panic!("the README's first command installs first: {first}"));
    assert!(rest.starts_with("ims-patch sandbox -- "), "{rest}");
    let run = Ims::new()
        .env("PATH", path_with_bin())
        .args(["sandbox", "--", "sh", "-c", rest])
        .run();
    run.ok();
    assert!(run.stdout.contains("ims_test01"), "{}", run.stdout);
}

#[test]
fn with_require_auth_the_command_logs_in_to_the_sandboxs_keystone() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let run = Ims::new()
        .env("PATH", path_with_bin())
        .args(["sandbox", "--require-auth", "--journal"])
        .arg(&journal)
        .args([
            "--",
            "ims-patch",
            "rename",
            "debian-12",
            "logged-in",
            "-o",
            "value",
        ])
        .args(["--field", "name"])
        .run();
    run.ok();
    assert_eq!(run.stdout, "logged-in\n");
    let text = std::fs::read_to_string(&journal).unwrap();
    let paths: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {}",
                v["method"].as_str().unwrap(),
                v["path"].as_str().unwrap()
            )
        })
        .collect();
    // The demo project's image, found by name after one login.
    assert_eq!(paths.len(), 3, "{text}");
    assert_eq!(paths[0], "POST /v3/auth/tokens");
    assert_eq!(paths[1], "GET /v2/images");
    assert!(paths[2].starts_with("PATCH /v2/images/"), "{text}");
}

#[test]
fn with_a_key_pair_the_command_signs_its_requests() {
    let run = Ims::new()
        .env("PATH", path_with_bin())
        .args([
            "sandbox",
            "--access-key",
            "AKSANDBOX",
            "--secret-key",
            "SKSANDBOX",
        ])
        .args([
            "--",
            "ims-patch",
            "rename",
            SEED_ID,
            "signed",
            "-o",
            "value",
        ])
        .args(["--field", "name"])
        .run();
    run.ok();
    assert_eq!(run.stdout, "signed\n");
    // A wrong key is refused by the sandbox's gateway check: the key pair
    // given is the one COMMAND signs with, nothing else.
    let run = Ims::new()
        .env("PATH", path_with_bin())
        .args([
            "sandbox",
            "--access-key",
            "AKSANDBOX",
            "--secret-key",
            "SKSANDBOX",
        ])
        .args(["--", "sh", "-c"])
        .arg(format!(
            "IMS_PATCH_SECRET_KEY=wrong ims-patch show {SEED_ID} -o value --field name"
        ))
        .run();
    run.code(4);
}

#[test]
fn a_bare_double_dash_is_refused_not_taken_for_a_server() {
    let mut child = Ims::new().args(["sandbox", "--"]).spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "a server was started: {stderr}"
    );
    assert!(
        stderr.contains("hint: ims-patch sandbox -- COMMAND [ARGS...]"),
        "{stderr}"
    );
}

#[test]
fn a_port_in_use_gets_a_hint_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let run = Ims::new()
        .args([
            "sandbox",
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--",
            "true",
        ])
        .run();
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("address in use"), "{}", run.stderr);
    let hint = run
        .stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_else(|| panic!("no hint line: {}", run.stderr));
    assert!(hint.contains("--port 0"), "{}", run.stderr);
}

//! Completion from the service, in real shells (bash and fish) with the
//! committed completion scripts, against the sandbox: IMAGE names and IDs,
//! KEYs of the typed image, the 60 s cache, the time limit, and nothing
//! without a credential.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::fault::{Fault, Reply};
use crate::support::{Sandbox, BIN, SEED_ID, TOKEN};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A shell CI installs (.ci/run): missing on CI is a failure, elsewhere a skip.
fn require(shell: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {shell}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{shell} is required on CI"
        );
        eprintln!("skipped: {shell} is not installed");
    }
    found
}

/// A shell with a clean environment: the binary on PATH, its own home and
/// cache directory, and the service settings given.
fn shell(program: &str, home: &Path, service: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env(
            "PATH",
            format!(
                "{}:/usr/bin:/bin",
                Path::new(BIN).parent().unwrap().display()
            ),
        )
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("IMS_PATCH_CACHE_DIR", home.join("cache"));
    for (k, v) in service {
        cmd.env(k, v);
    }
    cmd
}

/// Completes each line in bash with the committed script; one output line
/// (the candidates, space-separated) per input line.
fn bash(home: &Path, service: &[(&str, &str)], lines: &[&str]) -> Vec<String> {
    let mut script = format!(
        r#"source '{}'
complete_line() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=(); _clap_complete_ims_patch ims-patch "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"; echo "${{COMPREPLY[*]}}"; }}
"#,
        root().join("completions/ims-patch.bash").display()
    );
    for line in lines {
        script.push_str(&format!("complete_line {line}\n"));
    }
    let out = shell("bash", home, service)
        .args(["--norc", "--noprofile", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let got: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    assert_eq!(
        got.len(),
        lines.len(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    got
}

/// The candidates that are not options (clap offers the options when
/// nothing else is found for an empty word).
fn values(line: &str) -> Vec<&str> {
    line.split(' ')
        .filter(|w| !w.is_empty() && !w.starts_with('-'))
        .collect()
}

fn service(sb: &Sandbox) -> [(&str, &str); 2] {
    [
        ("IMS_PATCH_ENDPOINT", sb.endpoint.as_str()),
        ("IMS_PATCH_TOKEN", TOKEN),
    ]
}

fn list_requests(sb: &Sandbox) -> usize {
    sb.request_lines()
        .iter()
        .filter(|l| l.starts_with("GET /v2/images?limit="))
        .count()
}

#[test]
fn bash_completes_images_and_keys_from_the_service() {
    if !require("bash") {
        return;
    }
    let sb = Sandbox::start();
    let home = tempfile::tempdir().unwrap();
    let got = bash(
        home.path(),
        &service(&sb),
        &[
            "ims-patch show ''",
            "ims-patch rename ims_",
            "ims-patch show 33ad",
            "ims-patch unset-attr ims_test __os_",
            "ims-patch set-attr ims_test __support_k",
            "ims-patch set-attr ims_test min_r",
            "ims-patch show ims_test --field stat",
            &format!("ims-patch unset-attr {SEED_ID} hw_"),
        ],
    );
    for word in ["ims_test", SEED_ID, "debian-12"] {
        assert!(got[0].split(' ').any(|w| w == word), "{word}: {}", got[0]);
    }
    assert_eq!(got[1], "ims_test");
    assert_eq!(got[2], SEED_ID);
    assert_eq!(got[3], "__os_bit __os_type __os_version");
    assert_eq!(
        got[4],
        "__support_kvm= __support_kvm_gpu_type= __support_kvm_infiniband="
    );
    assert_eq!(got[5], "min_ram=");
    assert_eq!(got[6], "status");
    assert_eq!(got[7], "hw_firmware_type");
}

#[test]
fn fish_completes_images_and_keys_from_the_service() {
    if !require("fish") {
        return;
    }
    let sb = Sandbox::start();
    let home = tempfile::tempdir().unwrap();
    let script = format!(
        "source '{}'\ncomplete -C 'ims-patch show ims'\necho ===\ncomplete -C 'ims-patch unset-attr ims_test __os_'\necho ===\ncomplete -C 'ims-patch set-attr ims_test hw_v'\n",
        root().join("completions/ims-patch.fish").display()
    );
    let out = shell("fish", home.path(), &service(&sb))
        .args(["--no-config", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let parts: Vec<&str> = text.split("===\n").collect();
    assert_eq!(
        parts.len(),
        3,
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(parts[0], format!("ims_test\t{SEED_ID}\n"));
    let keys: Vec<&str> = parts[1]
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(keys, ["__os_bit", "__os_type", "__os_version"]);
    assert!(
        parts[2].starts_with("hw_vif_multiqueue_enabled=\t"),
        "{}",
        parts[2]
    );
}

#[test]
fn answers_are_cached_for_a_minute() {
    if !require("bash") {
        return;
    }
    let sb = Sandbox::start();
    let home = tempfile::tempdir().unwrap();
    let lines = ["ims-patch show ims_", "ims-patch show ims_"];
    let got = bash(home.path(), &service(&sb), &lines);
    assert_eq!(got, ["ims_test", "ims_test"]);
    assert_eq!(list_requests(&sb), 1, "{:?}", sb.request_lines());
    let files: Vec<_> = std::fs::read_dir(home.path().join("cache/ims-patch/complete"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1);
    // A stale entry is asked again.
    let file = files[0].as_ref().unwrap().path();
    let old = std::time::SystemTime::now() - Duration::from_secs(61);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    bash(home.path(), &service(&sb), &lines[..1]);
    assert_eq!(list_requests(&sb), 2, "{:?}", sb.request_lines());
}

#[test]
fn a_slow_service_never_blocks_the_shell() {
    if !require("bash") {
        return;
    }
    let slow = Fault::always(
        Reply::json(200, r#"{"images": [{"id": "x", "name": "late"}]}"#)
            .delay(Duration::from_secs(20)),
    );
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let got = bash(
        home.path(),
        &[
            ("IMS_PATCH_ENDPOINT", slow.endpoint.as_str()),
            ("IMS_PATCH_TOKEN", TOKEN),
        ],
        &["ims-patch show ''", "ims-patch unset-attr img ''"],
    );
    let took = started.elapsed();
    assert_eq!(values(&got[0]), [""; 0]);
    assert_eq!(values(&got[1]), [""; 0]);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(!slow.request_lines().is_empty());
}

#[test]
fn nothing_is_asked_without_a_credential() {
    if !require("bash") {
        return;
    }
    let sb = Sandbox::start();
    let home = tempfile::tempdir().unwrap();
    let got = bash(
        home.path(),
        &[("IMS_PATCH_ENDPOINT", sb.endpoint.as_str())],
        &["ims-patch show ''", "ims-patch set-attr ims_test min_r"],
    );
    // Without a service, KEY still offers the base and IMS attributes.
    assert_eq!(values(&got[0]), [""; 0]);
    assert_eq!(got[1], "min_ram=");
    assert!(sb.request_lines().is_empty(), "{:?}", sb.request_lines());
}

#[test]
fn a_slow_token_command_never_blocks_the_shell() {
    if !require("bash") {
        return;
    }
    let sb = Sandbox::start();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config/ims-patch/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "default_profile = \"p\"\n[profiles.p]\nendpoint = \"{}\"\ntoken_command = \"exec 2>/dev/null; sleep 5; echo t\"\n",
            sb.endpoint
        ),
    )
    .unwrap();
    // (Its stderr goes elsewhere: the test waits for the end of the shell's
    // stderr, which a terminal never makes anyone wait for.)
    let started = Instant::now();
    let got = bash(home.path(), &[], &["ims-patch show ims_"]);
    let took = started.elapsed();
    assert_eq!(values(&got[0]), [""; 0]);
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

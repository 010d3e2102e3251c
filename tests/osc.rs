//! The issue #13 proof with a real client: `tests/osc/sequence.py` runs the same python-openstackclient sequence against the sandbox and a real Glance, and the two normalised summaries must be identical.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::conformance::glance_url;
use crate::support::Sandbox;

/// The summary `sequence.py` prints for one endpoint.
fn sequence(openstack: &str, endpoint: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/osc/sequence.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(endpoint)
        .env("IMS_PATCH_OPENSTACK", openstack)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "sequence.py against {endpoint} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn step<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name:?} in {summary}"))
}

#[test]
#[ignore = "needs python-openstackclient and a real Glance: run by .ci/run"]
fn openstack_cli_sees_the_sandbox_as_glance() {
    let openstack = std::env::var("IMS_PATCH_OPENSTACK")
        .expect("IMS_PATCH_OPENSTACK is not set: export the line tests/osc/setup.sh prints");
    let glance = glance_url();
    let sb = Sandbox::start();
    let ours = sequence(&openstack, &sb.endpoint);
    let real = sequence(&openstack, &glance);
    // The sequence did what it says on the real Glance (so two identical
    // failures cannot pass).
    let summary: Value = serde_json::from_str(&real).unwrap();
    assert_eq!(step(&summary, "create with a file")["exit"], 0, "{real}");
    assert_eq!(step(&summary, "download")["bytes"], "same bytes", "{real}");
    assert_eq!(
        step(&summary, "show deactivated")["output"]["status"],
        "deactivated"
    );
    assert_eq!(step(&summary, "delete while protected")["exit"], 1);
    assert_eq!(step(&summary, "show the deleted image")["exit"], 1);
    assert_eq!(
        step(&summary, "create without data")["output"]["status"],
        "queued"
    );
    if ours != real {
        let diff: Vec<String> = real
            .lines()
            .zip(ours.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}: glance {a:?}, sandbox {b:?}", i + 1))
            .take(20)
            .collect();
        panic!(
            "the openstack CLI sees the sandbox differently from Glance:\n{}\n--- glance\n{real}\n--- sandbox\n{ours}",
            diff.join("\n")
        );
    }
}

//! Output: the table, the JSON exactly as returned, and --field.

use serde_json::Value;

use crate::support::{raw_request, Sandbox, SEED_ID};

#[test]
fn json_output_is_the_server_image_with_its_key_order() {
    let sb = Sandbox::start();
    let run = sb.ims().args(["show", SEED_ID, "-o", "json"]).run();
    run.ok();
    let (_, raw) = raw_request(
        &sb.endpoint,
        "GET",
        &format!("/v2/images/{SEED_ID}"),
        &[],
        None,
    );
    let raw: Value = serde_json::from_str(&raw).unwrap();
    let printed = run.json();
    assert_eq!(printed, raw);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&printed), keys(&raw), "key order kept");
    assert!(run.stdout.contains("\n  \""), "pretty-printed");
}

#[test]
fn table_output_has_sorted_keys_and_compact_lists() {
    let sb = Sandbox::start();
    let run = sb.ims().args(["set-attr", SEED_ID, "tags=b,a"]).run();
    run.ok();
    let lines: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(
        lines[0].contains("Property") && lines[0].contains("Value"),
        "{}",
        run.stdout
    );
    let keys: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split('|').nth(1).unwrap().trim())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(
        run.stdout.contains(r#"["b","a"]"#) || run.stdout.contains(r#"["a","b"]"#),
        "{}",
        run.stdout
    );
}

#[test]
fn fields_limit_both_outputs() {
    let sb = Sandbox::start();
    let run = sb
        .ims()
        .args([
            "show",
            SEED_ID,
            "-o",
            "json",
            "--field",
            "name",
            "--field",
            "__os_version",
        ])
        .run();
    run.ok();
    assert_eq!(
        run.stdout,
        "{\n  \"name\": \"ims_test\",\n  \"__os_version\": \"Ubuntu 14.04 server 64bit\"\n}\n"
    );
    let run = sb
        .ims()
        .args(["rename", SEED_ID, "renamed", "--field", "name"])
        .run();
    run.ok();
    let rows: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 2, "{}", run.stdout);
    assert!(rows[1].contains("renamed"));
    let run = sb
        .ims()
        .args(["show", SEED_ID, "--field", "nope", "-o", "json"])
        .run();
    run.ok();
    assert_eq!(run.stdout.trim(), "{}");
    assert!(run.stderr.contains("no attribute 'nope'"), "{}", run.stderr);
}

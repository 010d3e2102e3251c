//! Every exit code, the messages and hints, input refused locally without a
//! request, and the token never printed.

use std::time::Duration;

use serde_json::json;

use crate::support::fault::{Fault, Reply};
use crate::support::{Ims, Sandbox, SEED_ID, TOKEN};

#[test]
fn input_refused_locally_sends_nothing_and_exits_2() {
    let sb = Sandbox::start();
    let long_name = "n".repeat(256);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["set-attr", SEED_ID, "id=x"], "'id' is read-only"),
        (
            vec!["set-attr", SEED_ID, "status=active"],
            "'status' is read-only",
        ),
        (vec!["set-attr", SEED_ID, "checksum=0"], "read-only"),
        (vec!["set-attr", SEED_ID, "stores=fs"], "read-only"),
        (vec!["set-attr", SEED_ID, "locations:=[]"], "reserved"),
        (vec!["set-attr", SEED_ID, "deleted_at=x"], "reserved"),
        (vec!["set-attr", SEED_ID, "os_glance_import=x"], "reserved"),
        (vec!["unset-attr", SEED_ID, "name"], "cannot be removed"),
        (vec!["unset-attr", SEED_ID, "tags"], "cannot be removed"),
        (
            vec!["unset-attr", SEED_ID, "min_ram", "__x"],
            "cannot be removed",
        ),
        (vec!["set-attr", SEED_ID, "num:=42"], "string"),
        (vec!["set-attr", SEED_ID, "flag:=true"], "string"),
        (vec!["set-attr", SEED_ID, "min_ram=lots"], "'lots'"),
        (vec!["set-attr", SEED_ID, "min_ram:=-1"], "-1"),
        (vec!["set-attr", SEED_ID, "protected=yes"], "'yes'"),
        (vec!["set-attr", SEED_ID, "visibility=everyone"], "public"),
        (vec!["set-attr", SEED_ID, " padded=1"], "white space"),
        (vec!["set-attr", SEED_ID, "=1"], "empty"),
        (vec!["set-attr", SEED_ID, "noequals"], "'noequals'"),
        (vec!["set-attr", SEED_ID, "k:=not json"], "not valid JSON"),
        (vec!["rename", SEED_ID, &long_name], "256 characters"),
        (vec!["rename", SEED_ID, "smile 😀"], "4-byte"),
        (vec!["set-attr", SEED_ID, "k😀=v"], "4-byte"),
        (vec!["describe", SEED_ID, "fast 🚀"], "4-byte"),
    ];
    for (args, expected) in cases {
        let run = sb.ims().args(&args).run();
        run.code(2);
        assert!(
            run.stderr.starts_with("ims-patch: error: "),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(
            sb.requests().is_empty(),
            "{args:?} sent {:?}",
            sb.request_lines()
        );
    }
}

#[test]
fn bad_op_lists_are_refused_with_the_op_number() {
    let sb = Sandbox::start();
    let cases = [
        ("{", "not valid JSON"),
        (r#"{"op":"add"}"#, "array"),
        (
            r#"[{"op":"add","path":"/a","value":"1"},{"op":"test","path":"/a","value":"1"}]"#,
            "operation 2: op 'test'",
        ),
        (r#"[{"replace":"/name","value":"x"}]"#, "v2.0 form"),
        (r#"[{"op":"add","path":"/a"}]"#, "needs a \"value\""),
        (
            r#"[{"op":"add","path":"a","value":"1"}]"#,
            "must start with '/'",
        ),
        (
            r#"[{"op":"add","path":"/a/b","value":"1"}]"#,
            "below the top level",
        ),
        (r#"[{"op":"add","path":"/a~2","value":"1"}]"#, "'~'"),
        (
            r#"[{"op":"replace","path":"/id","value":"x"}]"#,
            "read-only",
        ),
        (r#"[{"op":"add","path":"/n","value":5}]"#, "string"),
    ];
    for (text, expected) in cases {
        let run = sb.ims().args(["patch", SEED_ID]).stdin(text).run();
        run.code(2);
        assert!(run.stderr.contains(expected), "{text}: {}", run.stderr);
    }
    let run = sb
        .ims()
        .args(["patch", SEED_ID, "--file", "/nonexistent/ops.json"])
        .run();
    run.code(2);
    assert!(
        run.stderr.contains("'/nonexistent/ops.json'"),
        "{}",
        run.stderr
    );
    assert!(sb.requests().is_empty(), "{:?}", sb.request_lines());
}

#[test]
fn usage_errors_exit_2() {
    let run = Ims::new().args(["rename", SEED_ID]).run();
    run.code(2);
    let run = Ims::new().args(["frobnicate"]).run();
    run.code(2);
    let run = Ims::new().args(["--patch-format", "v3", "show", "x"]).run();
    run.code(2);
    assert!(run.stderr.contains("v2.1"), "{}", run.stderr);
}

#[test]
fn missing_endpoint_or_token_is_a_configuration_error() {
    let run = Ims::new().args(["show", SEED_ID]).run();
    run.code(3);
    assert!(run.stderr.contains("no endpoint"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    let run = Ims::new()
        .env("IMS_PATCH_ENDPOINT", "http://127.0.0.1:9")
        .args(["show", SEED_ID])
        .run();
    run.code(3);
    assert!(run.stderr.contains("no token"), "{}", run.stderr);
    let run = Ims::new()
        .env("IMS_PATCH_ENDPOINT", "http://ims.example.com")
        .env("IMS_PATCH_TOKEN", TOKEN)
        .args(["show", SEED_ID])
        .run();
    run.code(3).no_secret();
    assert!(
        run.stderr.contains("plain http") && run.stderr.contains("--allow-http"),
        "{}",
        run.stderr
    );
    let run = Ims::new()
        .env("IMS_PATCH_ENDPOINT", "ims.example.com")
        .env("IMS_PATCH_TOKEN", TOKEN)
        .args(["show", SEED_ID])
        .run();
    run.code(3);
    assert!(
        run.stderr.contains("(from IMS_PATCH_ENDPOINT)"),
        "{}",
        run.stderr
    );
}

#[test]
fn wrong_token_is_401_exit_4_and_names_the_token_source() {
    let sb = Sandbox::start_with(&["--token", "the-right-one"]);
    let run = sb.ims().args(["rename", SEED_ID, "x"]).run();
    run.code(4).no_secret();
    assert!(run.stderr.contains("401"), "{}", run.stderr);
    assert!(run.stderr.contains("IMS_PATCH_TOKEN"), "{}", run.stderr);
    let run = sb
        .ims()
        .env("IMS_PATCH_TOKEN", "the-right-one")
        .args(["rename", SEED_ID, "x"])
        .run();
    run.ok();
}

#[test]
fn server_refusals_map_to_their_exit_codes() {
    let sb = Sandbox::start();
    // 403: the seed image is active, so its disk_format is fixed.
    let run = sb
        .ims()
        .args(["set-attr", SEED_ID, "disk_format=qcow2"])
        .run();
    run.code(4);
    assert!(run.stderr.contains("403 Forbidden"), "{}", run.stderr);
    assert!(run.stderr.contains("queued image"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("<br"),
        "message is cleaned: {}",
        run.stderr
    );
    // 404: an unknown image.
    let unknown = "11111111-2222-3333-4444-555555555555";
    let run = sb.ims().args(["rename", unknown, "x"]).run();
    run.code(5);
    assert!(
        run.stderr
            .contains(&format!("No image found with ID {unknown}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("PATCH {}/v2/images/{unknown}", sb.endpoint)),
        "{}",
        run.stderr
    );
    // 409: replace of a missing attribute.
    let run = sb
        .ims()
        .args(["patch", SEED_ID])
        .stdin(r#"[{"op":"replace","path":"/nope","value":"x"}]"#)
        .run();
    run.code(6);
    assert!(
        run.stderr.contains("Property nope does not exist."),
        "{}",
        run.stderr
    );
    // 400: kernel_id must be a UUID (a schema pattern the client leaves to the server).
    let run = sb.ims().args(["set-attr", SEED_ID, "kernel_id=abc"]).run();
    run.code(7);
    assert!(run.stderr.contains("400 Bad Request"), "{}", run.stderr);
    // 413: more custom attributes than the quota, all or nothing.
    let pairs: Vec<String> = (0..130).map(|i| format!("q{i:03}=v")).collect();
    let run = sb.ims().args(["set-attr", SEED_ID]).args(&pairs).run();
    run.code(7);
    assert!(run.stderr.contains("413"), "{}", run.stderr);
    assert!(sb.image(SEED_ID).get("q000").is_none());
}

#[test]
fn unsupported_media_type_suggests_the_other_format() {
    let canned = Fault::always(Reply::json(
        415,
        r#"{"message": "The request media type application/openstack-images-v2.1-json-patch is not supported by this server.<br /><br />\n\n", "code": "415 Unsupported Media Type", "title": "Unsupported Media Type"}"#,
    ));
    let run = canned.ims().args(["rename", SEED_ID, "x"]).run();
    run.code(7).no_secret();
    assert!(run.stderr.contains("--patch-format v2.0"), "{}", run.stderr);
}

#[test]
fn server_errors_exit_8() {
    for (code, status) in [
        (500, "500 Internal Server Error"),
        (503, "503 Service Unavailable"),
    ] {
        let canned = Fault::always(
            Reply::with_type(code, "text/plain", b"oops")
                .header("x-openstack-request-id", "req-abc"),
        );
        let run = canned.ims().args(["show", SEED_ID]).run();
        run.code(8).no_secret();
        assert!(run.stderr.contains(status), "{}", run.stderr);
        assert!(run.stderr.contains("req-abc"), "{}", run.stderr);
    }
}

#[test]
fn redirects_are_reported_not_followed() {
    let canned = Fault::always(
        Reply::with_type(301, "text/plain", b"")
            .header("Location", "https://elsewhere.example.com/v2/images/x"),
    );
    let run = canned.ims().args(["rename", SEED_ID, "x"]).run();
    run.code(3).no_secret();
    assert!(
        run.stderr.contains("elsewhere.example.com"),
        "{}",
        run.stderr
    );
    assert_eq!(
        canned.requests().len(),
        1,
        "not followed: {:?}",
        canned.request_lines()
    );
}

#[test]
fn network_errors_and_timeouts_exit_1() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = Ims::new()
        .env("IMS_PATCH_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("IMS_PATCH_TOKEN", TOKEN)
        .args(["rename", SEED_ID, "x"])
        .run();
    run.code(1).no_secret();
    assert!(run.stderr.contains("cannot reach"), "{}", run.stderr);
    assert!(
        run.stderr.contains("(from IMS_PATCH_ENDPOINT)"),
        "{}",
        run.stderr
    );

    let stalled = Fault::always(Reply::json(200, "{}").delay(Duration::from_secs(5)));
    let run = stalled
        .ims()
        .args(["--timeout", "0.3", "show", SEED_ID])
        .run();
    run.code(1).no_secret();
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    assert!(run.stderr.contains("--timeout"), "{}", run.stderr);
}

#[test]
fn success_without_json_is_a_runtime_error() {
    let canned = Fault::always(Reply::with_type(200, "text/html", b"<html>login</html>"));
    let run = canned.ims().args(["show", SEED_ID]).run();
    run.code(1);
    assert!(run.stderr.contains("not JSON"), "{}", run.stderr);
}

#[test]
fn the_token_never_appears_in_any_output() {
    let sb = Sandbox::start();
    let runs = [
        sb.ims()
            .args(["--dry-run", "-v", "set-attr", SEED_ID, "a=1"])
            .run(),
        sb.ims().args(["-v", "rename", SEED_ID, "x"]).run(),
        sb.ims()
            .args(["-v", "rename", "11111111-2222-3333-4444-555555555555", "x"])
            .run(),
        sb.ims().args(["-v", "unset-attr", SEED_ID, "nope"]).run(),
        sb.ims()
            .args(["--token", TOKEN, "-v", "show", "nope-name"])
            .run(),
        sb.ims().args(["--dry-run", "show", SEED_ID]).run(),
        Ims::new()
            .args([
                "--token",
                TOKEN,
                "--endpoint",
                "http://10.9.9.9",
                "show",
                SEED_ID,
            ])
            .run(),
    ];
    for run in &runs {
        run.no_secret();
    }
}

#[test]
fn broken_pipe_exits_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let sb = Sandbox::start();
    let big = format!("__big={}", "v".repeat(100_000));
    sb.ims().args(["-q", "set-attr", SEED_ID, &big]).run().ok();
    let mut child = std::process::Command::new(crate::support::BIN)
        .env_clear()
        .env("IMS_PATCH_ENDPOINT", &sb.endpoint)
        .env("IMS_PATCH_TOKEN", TOKEN)
        .args(["show", SEED_ID, "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn created_images_work_end_to_end_in_both_formats() {
    let sb = Sandbox::start();
    let id = sb.create(&json!({"name": "fresh", "container_format": "bare", "disk_format": "raw"}));
    for format in ["v2.1", "v2.0"] {
        sb.ims()
            .args(["--patch-format", format, "set-attr", &id, "__k=1"])
            .run()
            .ok();
        sb.ims()
            .args([
                "--patch-format",
                format,
                "set-attr",
                &id,
                "__k=2",
                "disk_format=qcow2",
            ])
            .run()
            .ok();
        sb.ims()
            .args(["--patch-format", format, "describe", &id, "d"])
            .run()
            .ok();
        sb.ims()
            .args([
                "--patch-format",
                format,
                "unset-attr",
                &id,
                "__k",
                "__description",
            ])
            .run()
            .ok();
    }
    let image = sb.image(&id);
    assert_eq!(image["disk_format"], "qcow2");
    assert!(image.get("__k").is_none());
}

#[test]
fn client_options_are_refused_by_sandbox_and_generate() {
    let run = Ims::new()
        .args(["sandbox", "--endpoint", "http://x", "--dry-run"])
        .run();
    run.code(2);
    assert!(
        run.stderr
            .contains("--endpoint, --dry-run are not options of 'ims-patch sandbox'"),
        "{}",
        run.stderr
    );
    let run = Ims::new()
        .args(["-q", "generate", "completions", "bash"])
        .run();
    run.code(2);
    assert!(
        run.stderr
            .contains("--quiet is not an option of 'ims-patch generate'"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_connection_dropped_after_sending_is_an_unknown_outcome_not_cannot_reach() {
    // The server reads the whole PATCH, then closes without answering.
    // (A replace is safe to repeat and would be retried: not here.)
    let dropped = Fault::always(Reply::Hangup);
    let run = dropped
        .ims()
        .args(["--retries", "0", "rename", SEED_ID, "x"])
        .run();
    run.code(1).no_secret();
    assert_eq!(
        dropped.request_lines(),
        [format!("PATCH /v2/images/{SEED_ID}")]
    );
    assert!(!run.stderr.contains("cannot reach"), "{}", run.stderr);
    assert!(run.stderr.contains("outcome is unknown"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "hint: check whether the change was made: ims-patch show {SEED_ID}"
        )),
        "{}",
        run.stderr
    );
}

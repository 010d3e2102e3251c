//! Every command, in both patch formats: the exact request sent and the
//! resulting image.

use serde_json::{json, Value};

use crate::support::{Sandbox, SEED_ID};

const V21: &str = "application/openstack-images-v2.1-json-patch";
const V20: &str = "application/openstack-images-v2.0-json-patch";

/// Asserts that the only request was one PATCH of `id` with `body`.
#[track_caller]
fn assert_one_patch(sb: &Sandbox, id: &str, content_type: &str, body: Value) {
    let requests = sb.requests();
    assert_eq!(sb.request_lines(), [format!("PATCH /v2/images/{id}")]);
    assert_patch(&requests[0], content_type, body);
}

#[track_caller]
fn assert_patch(request: &Value, content_type: &str, body: Value) {
    assert_eq!(request["method"], "PATCH");
    let headers = &request["headers"];
    assert_eq!(headers["content-type"], content_type);
    // The journal never holds the token itself.
    assert_eq!(headers["x-auth-token"], "<redacted>");
    assert_eq!(headers["accept"], "application/json");
    let agent = headers["user-agent"].as_str().unwrap();
    assert!(agent.starts_with("ims-patch/"), "{agent}");
    let sent: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent, body);
}

#[test]
fn rename_sends_one_replace_and_prints_the_returned_image() {
    let sb = Sandbox::start();
    let run = sb.ims().args(["rename", SEED_ID, "ims_test01"]).run();
    run.ok();
    assert_one_patch(
        &sb,
        SEED_ID,
        V21,
        json!([{"op": "replace", "path": "/name", "value": "ims_test01"}]),
    );
    assert!(run.stdout.contains("ims_test01"), "{}", run.stdout);
    assert!(run.stdout.contains("Property"), "{}", run.stdout);
    assert_eq!(sb.image(SEED_ID)["name"], "ims_test01");
}

#[test]
fn rename_in_v20_needs_no_read() {
    let sb = Sandbox::start();
    sb.ims()
        .args(["--patch-format", "v2.0", "rename", SEED_ID, "n2"])
        .run()
        .ok();
    assert_one_patch(
        &sb,
        SEED_ID,
        V20,
        json!([{"replace": "/name", "value": "n2"}]),
    );
    assert_eq!(sb.image(SEED_ID)["name"], "n2");
}

#[test]
fn describe_sets_and_clears_the_ims_description() {
    let sb = Sandbox::start();
    sb.ims()
        .args(["describe", SEED_ID, "CUDA 12 base"])
        .run()
        .ok();
    assert_one_patch(
        &sb,
        SEED_ID,
        V21,
        json!([{"op": "add", "path": "/__description", "value": "CUDA 12 base"}]),
    );
    assert_eq!(sb.image(SEED_ID)["__description"], "CUDA 12 base");

    sb.clear_journal();
    sb.ims().args(["describe", "--clear", SEED_ID]).run().ok();
    assert_one_patch(
        &sb,
        SEED_ID,
        V21,
        json!([{"op": "remove", "path": "/__description"}]),
    );
    assert!(sb.image(SEED_ID).get("__description").is_none());

    // Clearing again: the server's 409, with a hint; --ignore-missing makes it a no-op.
    sb.clear_journal();
    let run = sb.ims().args(["describe", "--clear", SEED_ID]).run();
    run.code(6);
    assert!(run.stderr.contains("--ignore-missing"), "{}", run.stderr);
    sb.clear_journal();
    sb.ims()
        .args(["describe", "--clear", "--ignore-missing", SEED_ID])
        .run()
        .ok();
    assert_eq!(sb.request_lines(), [format!("GET /v2/images/{SEED_ID}")]);
}

#[test]
fn describe_in_v20_reads_first_and_replaces_an_existing_description() {
    let sb = Sandbox::start();
    sb.ims()
        .args(["--patch-format", "v2.0", "describe", SEED_ID, "new text"])
        .run()
        .ok();
    let requests = sb.requests();
    assert_eq!(
        sb.request_lines(),
        [
            format!("GET /v2/images/{SEED_ID}"),
            format!("PATCH /v2/images/{SEED_ID}")
        ]
    );
    assert_patch(
        &requests[1],
        V20,
        json!([{"replace": "/__description", "value": "new text"}]),
    );
    assert_eq!(sb.image(SEED_ID)["__description"], "new text");
}

#[test]
fn set_attr_converts_typed_attributes_and_sends_one_request() {
    let sb = Sandbox::start();
    let run = sb
        .ims()
        .args([
            "set-attr",
            SEED_ID,
            "__os_bit=64",
            "min_ram=2048",
            "min_disk:=40",
            "protected=true",
            "os_hidden:=false",
            "visibility=shared",
            "tags=gold,2024",
            "foo/bar~x=1",
            "-o",
            "json",
        ])
        .run();
    run.ok();
    assert_one_patch(
        &sb,
        SEED_ID,
        V21,
        json!([
            {"op": "add", "path": "/__os_bit", "value": "64"},
            {"op": "add", "path": "/min_ram", "value": 2048},
            {"op": "add", "path": "/min_disk", "value": 40},
            {"op": "add", "path": "/protected", "value": true},
            {"op": "add", "path": "/os_hidden", "value": false},
            {"op": "add", "path": "/visibility", "value": "shared"},
            {"op": "add", "path": "/tags", "value": ["gold", "2024"]},
            {"op": "add", "path": "/foo~1bar~0x", "value": "1"}
        ]),
    );
    let image = run.json();
    assert_eq!(image["min_ram"], 2048);
    assert_eq!(image["protected"], true);
    assert_eq!(image["foo/bar~x"], "1");
    assert_eq!(image, sb.image(SEED_ID));
}

#[test]
fn set_attr_in_v20_adds_new_keys_and_replaces_existing_ones() {
    let sb = Sandbox::start();
    sb.ims()
        .args([
            "--patch-format",
            "v2.0",
            "set-attr",
            SEED_ID,
            "__os_bit=32",
            "__new=1",
            "min_ram=1",
        ])
        .run()
        .ok();
    let requests = sb.requests();
    assert_eq!(requests.len(), 2, "{:?}", sb.request_lines());
    assert_patch(
        &requests[1],
        V20,
        json!([
            {"replace": "/__os_bit", "value": "32"},
            {"add": "/__new", "value": "1"},
            {"replace": "/min_ram", "value": 1}
        ]),
    );
    let image = sb.image(SEED_ID);
    assert_eq!(
        (image["__os_bit"].as_str(), image["__new"].as_str()),
        (Some("32"), Some("1"))
    );
}

#[test]
fn set_attr_of_base_attributes_only_in_v20_is_one_request() {
    let sb = Sandbox::start();
    sb.ims()
        .args([
            "--patch-format",
            "v2.0",
            "set-attr",
            SEED_ID,
            "min_ram=512",
            "name=x",
        ])
        .run()
        .ok();
    assert_one_patch(
        &sb,
        SEED_ID,
        V20,
        json!([{"replace": "/min_ram", "value": 512}, {"replace": "/name", "value": "x"}]),
    );
}

#[test]
fn unset_attr_removes_in_one_request_and_ignore_missing_skips() {
    let sb = Sandbox::start();
    sb.ims()
        .args(["unset-attr", SEED_ID, "__os_bit", "__platform"])
        .run()
        .ok();
    assert_one_patch(
        &sb,
        SEED_ID,
        V21,
        json!([{"op": "remove", "path": "/__os_bit"}, {"op": "remove", "path": "/__platform"}]),
    );
    let image = sb.image(SEED_ID);
    assert!(image.get("__os_bit").is_none() && image.get("__platform").is_none());

    // The attributes are gone now: a plain remove is a conflict, atomically.
    sb.clear_journal();
    let run = sb
        .ims()
        .args(["unset-attr", SEED_ID, "__os_type", "__os_bit"])
        .run();
    run.code(6);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    assert!(
        run.stderr.contains("hint:") && run.stderr.contains("--ignore-missing"),
        "{}",
        run.stderr
    );
    assert!(
        sb.image(SEED_ID).get("__os_type").is_some(),
        "not applied in part"
    );

    sb.clear_journal();
    let run = sb
        .ims()
        .args([
            "unset-attr",
            "--ignore-missing",
            SEED_ID,
            "__os_type",
            "__os_bit",
        ])
        .run();
    run.ok();
    assert!(
        run.stderr.contains("'__os_bit' is not set"),
        "{}",
        run.stderr
    );
    let requests = sb.requests();
    assert_eq!(requests.len(), 2, "{:?}", sb.request_lines());
    assert_patch(
        &requests[1],
        V21,
        json!([{"op": "remove", "path": "/__os_type"}]),
    );

    // Nothing left to remove: only the read, no PATCH.
    sb.clear_journal();
    let run = sb
        .ims()
        .args([
            "unset-attr",
            "--ignore-missing",
            SEED_ID,
            "__os_type",
            "-o",
            "json",
        ])
        .run();
    run.ok();
    assert_eq!(sb.request_lines(), [format!("GET /v2/images/{SEED_ID}")]);
    assert_eq!(run.json()["id"], SEED_ID);
}

#[test]
fn show_reads_once_by_id_and_once_by_name() {
    let sb = Sandbox::start();
    let run = sb.ims().args(["show", SEED_ID, "-o", "json"]).run();
    run.ok();
    assert_eq!(sb.request_lines(), [format!("GET /v2/images/{SEED_ID}")]);
    assert_eq!(run.json(), sb.image(SEED_ID));

    sb.clear_journal();
    let run = sb.ims().args(["show", "ims_test", "-o", "json"]).run();
    run.ok();
    assert_eq!(sb.request_lines(), ["GET /v2/images?name=eq%3Aims_test"]);
    assert_eq!(run.json()["id"], SEED_ID);
}

#[test]
fn names_are_resolved_before_editing() {
    let sb = Sandbox::start();
    let id = sb
        .create(&json!({"name": "web server 1", "container_format": "bare", "disk_format": "raw"}));
    sb.clear_journal();
    sb.ims()
        .args(["rename", "web server 1", "web-1"])
        .run()
        .ok();
    let requests = sb.requests();
    assert_eq!(
        sb.request_lines(),
        [
            "GET /v2/images?name=eq%3Aweb+server+1".to_string(),
            format!("PATCH /v2/images/{id}")
        ]
    );
    assert_patch(
        &requests[1],
        V21,
        json!([{"op": "replace", "path": "/name", "value": "web-1"}]),
    );
}

#[test]
fn unknown_and_ambiguous_names() {
    let sb = Sandbox::start();
    let run = sb.ims().args(["rename", "no-such-image", "x"]).run();
    run.code(5);
    assert!(
        run.stderr.contains("no image is named 'no-such-image'"),
        "{}",
        run.stderr
    );

    let a = sb.create(&json!({"name": "twin"}));
    let b = sb.create(&json!({"name": "twin"}));
    sb.clear_journal();
    let run = sb.ims().args(["rename", "twin", "x"]).run();
    run.code(2);
    assert!(
        run.stderr.contains(&a) && run.stderr.contains(&b),
        "{}",
        run.stderr
    );
    assert_eq!(
        sb.request_lines(),
        ["GET /v2/images?name=eq%3Atwin"],
        "no PATCH"
    );
}

#[test]
fn patch_reads_a_v21_op_list_from_a_file_or_stdin() {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ops.json");
    let ops = json!([
        {"op": "replace", "path": "/name", "value": "from-file"},
        {"op": "add", "path": "/__os_bit", "value": "32"},
        {"op": "remove", "path": "/__support_kvm"}
    ]);
    std::fs::write(&file, ops.to_string()).unwrap();
    sb.ims()
        .args(["patch", SEED_ID, "--file"])
        .arg(&file)
        .run()
        .ok();
    assert_one_patch(&sb, SEED_ID, V21, ops);

    sb.clear_journal();
    let ops = json!([{"op": "add", "path": "/__os_bit", "value": "64"}]);
    sb.ims()
        .args(["--patch-format", "v2.0", "patch", SEED_ID])
        .stdin(&ops.to_string())
        .run()
        .ok();
    let requests = sb.requests();
    assert_eq!(
        requests.len(),
        2,
        "v2.0 reads first: {:?}",
        sb.request_lines()
    );
    assert_patch(
        &requests[1],
        V20,
        json!([{"replace": "/__os_bit", "value": "64"}]),
    );
    assert_eq!(sb.image(SEED_ID)["__os_bit"], "64");
}

#[test]
fn dry_run_prints_the_request_and_sends_nothing() {
    let sb = Sandbox::start();
    let run = sb
        .ims()
        .args(["--dry-run", "rename", SEED_ID, "ims_test01"])
        .run();
    run.ok().no_secret();
    assert!(sb.requests().is_empty(), "{:?}", sb.request_lines());
    let expected_url = format!("PATCH {}/v2/images/{SEED_ID}\n", sb.endpoint);
    assert!(run.stdout.starts_with(&expected_url), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("Content-Type: {V21}")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("X-Auth-Token: <redacted>"),
        "{}",
        run.stdout
    );
    let body = &run.stdout[run.stdout.find("\n\n").unwrap()..];
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body,
        json!([{"op": "replace", "path": "/name", "value": "ims_test01"}])
    );
    assert_eq!(sb.image(SEED_ID)["name"], "ims_test");
}

#[test]
fn verbose_shows_each_request_and_status_without_the_token() {
    let sb = Sandbox::start();
    let run = sb.ims().args(["-v", "rename", SEED_ID, "v"]).run();
    run.ok().no_secret();
    assert!(
        run.stderr
            .contains(&format!("> PATCH {}/v2/images/{SEED_ID}", sb.endpoint)),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("< 200 OK"), "{}", run.stderr);
    assert!(
        run.stderr.contains("req-"),
        "request id shown: {}",
        run.stderr
    );
}

#[test]
fn endpoint_may_end_in_v2() {
    let sb = Sandbox::start();
    sb.ims()
        .env("IMS_PATCH_ENDPOINT", format!("{}/v2/", sb.endpoint))
        .args(["rename", SEED_ID, "x"])
        .run()
        .ok();
    assert_eq!(sb.request_lines(), [format!("PATCH /v2/images/{SEED_ID}")]);
}

#[test]
fn quiet_prints_nothing_on_success() {
    let sb = Sandbox::start();
    let run = sb.ims().args(["-q", "rename", SEED_ID, "quiet"]).run();
    run.ok();
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "");
    assert_eq!(sb.image(SEED_ID)["name"], "quiet");
}

#[test]
fn quiet_also_silences_the_status_notes() {
    let sb = Sandbox::start();
    let run = sb
        .ims()
        .args([
            "-q",
            "unset-attr",
            "--ignore-missing",
            SEED_ID,
            "__not_there",
        ])
        .run();
    run.ok();
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    let run = sb
        .ims()
        .args(["unset-attr", "--ignore-missing", SEED_ID, "__not_there"])
        .run();
    run.ok();
    assert!(
        run.stderr.contains("'__not_there' is not set"),
        "{}",
        run.stderr
    );
}

#[test]
fn hidden_images_are_found_by_name() {
    let sb = Sandbox::start();
    let id = sb.create(&json!({"name": "hidden one", "os_hidden": true}));
    sb.clear_journal();
    let run = sb.ims().args(["show", "hidden one", "-o", "json"]).run();
    run.ok();
    assert_eq!(run.json()["id"], id.as_str());
    assert_eq!(
        sb.request_lines(),
        [
            "GET /v2/images?name=eq%3Ahidden+one",
            "GET /v2/images?name=eq%3Ahidden+one&os_hidden=true"
        ]
    );
}

#[test]
fn show_dry_run_prints_the_read_and_sends_nothing() {
    let sb = Sandbox::start();
    let run = sb.ims().args(["--dry-run", "show", "ims_test"]).run();
    run.ok().no_secret();
    assert!(
        run.stdout.starts_with(&format!(
            "GET {}/v2/images?name=eq%3Aims_test\n",
            sb.endpoint
        )),
        "{}",
        run.stdout
    );
    assert!(sb.requests().is_empty());
}

#[test]
fn an_upper_case_id_gets_a_hint() {
    let sb = Sandbox::start();
    let run = sb.ims().args(["show", &SEED_ID.to_uppercase()]).run();
    run.code(5);
    assert!(
        run.stderr.contains(&format!("try '{SEED_ID}'")),
        "{}",
        run.stderr
    );
}

#[test]
fn a_completion_variable_of_another_program_is_ignored() {
    let sb = Sandbox::start();
    let run = sb
        .ims()
        .env("COMPLETE", "bash")
        .args(["show", SEED_ID, "--field", "name"])
        .run();
    run.ok();
    assert!(run.stdout.contains("ims_test"), "{}", run.stdout);
}

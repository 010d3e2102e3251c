//! Configuration: precedence flag > environment > profile > default, the
//! token sources, and the errors that name the file and line.

use serde_json::{json, Value};

use crate::support::{set_mode, Ims, Sandbox, SEED_ID, TOKEN};

fn dead_endpoint() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

#[test]
fn profile_supplies_endpoint_token_and_format() {
    let sb = Sandbox::start_with(&["--token", TOKEN]);
    let config = format!(
        "default_profile = \"lab\"\n\n[profiles.lab]\nendpoint = \"{}\"\ntoken = \"{TOKEN}\"\npatch_format = \"v2.0\"\noutput = \"json\"\ntimeout = 5\n",
        sb.endpoint
    );
    let run = Ims::new()
        .write_config(&config)
        .args(["rename", SEED_ID, "p"])
        .run();
    run.ok().no_secret();
    assert_eq!(run.json()["name"], "p");
    let r = &sb.requests()[0];
    assert_eq!(
        r["headers"]["content-type"],
        "application/openstack-images-v2.0-json-patch"
    );
    // Accepted by a sandbox that takes only TOKEN; journalled redacted.
    assert_eq!(r["status"], 200);
    assert_eq!(r["headers"]["x-auth-token"], "<redacted>");
}

#[test]
fn flag_beats_environment_beats_profile() {
    let sb = Sandbox::start();
    let config = format!(
        "default_profile = \"p\"\n[profiles.p]\nendpoint = \"{}\"\ntoken = \"{TOKEN}\"\n",
        dead_endpoint()
    );
    // Profile alone: its (dead) endpoint is used.
    let run = Ims::new()
        .write_config(&config)
        .args(["show", SEED_ID])
        .run();
    run.code(1);
    assert!(
        run.stderr.contains("(from profile 'p' in "),
        "{}",
        run.stderr
    );
    // The environment beats the profile.
    Ims::new()
        .write_config(&config)
        .env("IMS_PATCH_ENDPOINT", &sb.endpoint)
        .args(["show", SEED_ID])
        .run()
        .ok();
    // The flag beats the environment.
    let run = Ims::new()
        .write_config(&config)
        .env("IMS_PATCH_ENDPOINT", &sb.endpoint)
        .args(["--endpoint", &dead_endpoint(), "show", SEED_ID])
        .run();
    run.code(1);
    assert!(run.stderr.contains("(from --endpoint)"), "{}", run.stderr);
    // Same for the patch format: flag over environment.
    sb.clear_journal();
    Ims::new()
        .env("IMS_PATCH_ENDPOINT", &sb.endpoint)
        .env("IMS_PATCH_TOKEN", TOKEN)
        .env("IMS_PATCH_PATCH_FORMAT", "v2.0")
        .args(["--patch-format", "v2.1", "rename", SEED_ID, "f"])
        .run()
        .ok();
    assert_eq!(
        sb.requests()[0]["headers"]["content-type"],
        "application/openstack-images-v2.1-json-patch"
    );
}

#[test]
fn profile_is_picked_by_flag_or_environment() {
    let sb = Sandbox::start();
    let config = format!(
        "default_profile = \"dead\"\n[profiles.dead]\nendpoint = \"{}\"\ntoken = \"x\"\n[profiles.live]\nendpoint = \"{}\"\ntoken = \"{TOKEN}\"\n",
        dead_endpoint(),
        sb.endpoint
    );
    Ims::new()
        .write_config(&config)
        .args(["--profile", "live", "show", SEED_ID])
        .run()
        .ok();
    Ims::new()
        .write_config(&config)
        .env("IMS_PATCH_PROFILE", "live")
        .args(["show", SEED_ID])
        .run()
        .ok();
    let run = Ims::new()
        .write_config(&config)
        .args(["--profile", "nope", "show", SEED_ID])
        .run();
    run.code(3);
    assert!(
        run.stderr
            .contains("profile 'nope' (from --profile) is not defined"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("dead, live"), "{}", run.stderr);
}

#[test]
fn explicit_config_file_by_flag_or_environment() {
    let sb = Sandbox::start_with(&["--token", TOKEN]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ims.toml");
    std::fs::write(
        &path,
        format!(
            "[profiles.x]\nendpoint = \"{}\"\ntoken_file = \"{}\"\n",
            sb.endpoint,
            dir.path().join("tok").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("tok"), format!("{TOKEN}\n")).unwrap();
    set_mode(&dir.path().join("tok"), 0o600);
    Ims::new()
        .args(["--config"])
        .arg(&path)
        .args(["--profile", "x", "show", SEED_ID])
        .run()
        .ok();
    let run = Ims::new()
        .env("IMS_PATCH_CONFIG", &path)
        .env("IMS_PATCH_PROFILE", "x")
        .args(["show", SEED_ID])
        .run();
    run.ok();
    assert_eq!(run.stderr, "", "no warning for a private token file");
    assert_eq!(sb.requests()[1]["status"], 200, "TOKEN was sent");
    assert_eq!(sb.requests()[1]["headers"]["x-auth-token"], "<redacted>");

    let run = Ims::new()
        .args(["--config", "/nonexistent/ims.toml", "show", SEED_ID])
        .run();
    run.code(3);
    assert!(
        run.stderr
            .contains("'/nonexistent/ims.toml' (from --config)"),
        "{}",
        run.stderr
    );
}

#[test]
fn token_command_output_is_the_token() {
    let sb = Sandbox::start_with(&["--token", TOKEN]);
    let config = format!(
        "default_profile = \"c\"\n[profiles.c]\nendpoint = \"{}\"\ntoken_command = \"printf '%s\\\\n' {TOKEN}\"\n",
        sb.endpoint
    );
    Ims::new()
        .write_config(&config)
        .args(["show", SEED_ID])
        .run()
        .ok()
        .no_secret();
    assert_eq!(sb.requests()[0]["status"], 200, "TOKEN was sent");
    assert_eq!(sb.requests()[0]["headers"]["x-auth-token"], "<redacted>");

    let failing = format!(
        "default_profile = \"c\"\n[profiles.c]\nendpoint = \"{}\"\ntoken_command = \"exit 3\"\n",
        sb.endpoint
    );
    let run = Ims::new()
        .write_config(&failing)
        .args(["show", SEED_ID])
        .run();
    run.code(3);
    // Named by setting and source; the command text (which may hold a
    // credential) is never echoed.
    assert!(
        run.stderr
            .contains("the token_command (from profile 'c' in ")
            && run.stderr.contains("failed (exit status 3)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("'exit 3'"), "{}", run.stderr);
}

#[test]
fn config_errors_name_the_file_and_line() {
    let run = Ims::new()
        .write_config(
            "default_profile = \"a\"\n[profiles.a]\nendpoint = \"https://x\"\ntokn = \"abc\"\n",
        )
        .args(["show", SEED_ID])
        .run();
    run.code(3);
    assert!(
        run.stderr.contains("config.toml' at line 4"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("tokn"), "{}", run.stderr);

    let run = Ims::new()
        .write_config("[profiles.a\nendpoint = 1\n")
        .args(["show", SEED_ID])
        .run();
    run.code(3);
    assert!(run.stderr.contains("at line 1"), "{}", run.stderr);

    let run = Ims::new()
        .write_config("default_profile = \"a\"\n[profiles.a]\nendpoint = \"https://x\"\ntoken = \"t\"\ntoken_command = \"echo t\"\n")
        .args(["show", SEED_ID])
        .run();
    run.code(3);
    assert!(
        run.stderr.contains("token and token_command"),
        "{}",
        run.stderr
    );

    let run = Ims::new()
        .write_config("default_profile = \"a\"\n[profiles.a]\nendpoint = \"https://x\"\ntoken = \"t\"\npatch_format = \"v3\"\n")
        .args(["show", SEED_ID])
        .run();
    run.code(3);
    assert!(
        run.stderr.contains("'v3' (from profile 'a' in ") && run.stderr.contains("patch_format"),
        "{}",
        run.stderr
    );

    let run = Ims::new()
        .write_config("default_profile = \"missing\"\n")
        .args(["show", SEED_ID])
        .run();
    run.code(3);
    assert!(
        run.stderr
            .contains("profile 'missing' (from default_profile)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_token_in_a_shared_config_file_is_warned_about() {
    let sb = Sandbox::start();
    let ims = Ims::new().write_config(&format!(
        "default_profile = \"a\"\n[profiles.a]\nendpoint = \"{}\"\ntoken = \"{TOKEN}\"\n",
        sb.endpoint
    ));
    set_mode(&ims.config_path(), 0o644);
    let run = ims.args(["show", SEED_ID]).run();
    run.ok().no_secret();
    assert!(
        run.stderr.contains("readable by group or others"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
}

#[test]
fn a_missing_default_config_file_is_fine() {
    let sb = Sandbox::start();
    sb.ims().args(["show", SEED_ID]).run().ok();
}

#[test]
fn allow_http_permits_a_remote_plain_endpoint() {
    // The address is never contacted: --dry-run sends nothing for an ID.
    let run = Ims::new()
        .env("IMS_PATCH_TOKEN", TOKEN)
        .args([
            "--endpoint",
            "http://ims.example.com",
            "--allow-http",
            "--dry-run",
            "rename",
            SEED_ID,
            "x",
        ])
        .run();
    run.ok();
    assert!(
        run.stdout
            .starts_with("PATCH http://ims.example.com/v2/images/"),
        "{}",
        run.stdout
    );
    let run = Ims::new()
        .write_config("default_profile = \"a\"\n[profiles.a]\nendpoint = \"http://ims.example.com\"\nallow_http = true\ntoken_command = \"echo t\"\n")
        .args(["--dry-run", "rename", SEED_ID, "x"])
        .run();
    run.ok();
}

#[test]
fn unreadable_or_empty_ca_files_are_configuration_errors() {
    let run = Ims::new()
        .env("IMS_PATCH_TOKEN", TOKEN)
        .args([
            "--endpoint",
            "https://ims.example.com",
            "--cacert",
            "/nonexistent/ca.pem",
            "show",
            SEED_ID,
        ])
        .run();
    run.code(3);
    assert!(
        run.stderr.contains("'/nonexistent/ca.pem' (from --cacert)"),
        "{}",
        run.stderr
    );
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, "not a certificate\n").unwrap();
    let run = Ims::new()
        .env("IMS_PATCH_TOKEN", TOKEN)
        .env("IMS_PATCH_CACERT", &pem)
        .args(["--endpoint", "https://ims.example.com", "show", SEED_ID])
        .run();
    run.code(3);
    assert!(
        run.stderr.contains("holds no PEM certificate") && run.stderr.contains("IMS_PATCH_CACERT"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_bad_flag_value_is_a_usage_error_and_a_bad_setting_a_configuration_error() {
    let run = Ims::new()
        .env("IMS_PATCH_ENDPOINT", "http://127.0.0.1:9")
        .env("IMS_PATCH_TOKEN", TOKEN)
        .args(["--timeout", "-1", "show", SEED_ID])
        .run();
    run.code(2);
    assert!(
        run.stderr.contains("timeout -1 (from --timeout)"),
        "{}",
        run.stderr
    );
    let run = Ims::new()
        .env("IMS_PATCH_ENDPOINT", "http://127.0.0.1:9")
        .env("IMS_PATCH_TOKEN", TOKEN)
        .env("IMS_PATCH_TIMEOUT", "0")
        .args(["show", SEED_ID])
        .run();
    run.code(3);
    assert!(
        run.stderr.contains("timeout 0 (from IMS_PATCH_TIMEOUT)"),
        "{}",
        run.stderr
    );
    let run = Ims::new()
        .env("IMS_PATCH_TOKEN", TOKEN)
        .args([
            "--endpoint",
            "https://admin:hunter2@ims.example.com",
            "show",
            SEED_ID,
        ])
        .run();
    run.code(2);
    assert!(
        run.stderr.contains("user name or password"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[test]
fn a_token_from_the_environment_beats_the_profile() {
    let sb = Sandbox::start_with(&["--token", TOKEN]);
    let config = format!(
        "default_profile = \"p\"\n[profiles.p]\nendpoint = \"{}\"\ntoken_command = \"echo from-profile\"\n",
        sb.endpoint
    );
    Ims::new()
        .write_config(&config)
        .env("IMS_PATCH_TOKEN", TOKEN)
        .args(["show", SEED_ID])
        .run()
        .ok();
    // The sandbox takes only TOKEN, so the profile's token gets 401 (exit 4).
    Ims::new()
        .write_config(&config)
        .args(["show", SEED_ID])
        .run()
        .code(4);
    // A blank variable counts as unset: the profile's token is used.
    Ims::new()
        .write_config(&config)
        .env("IMS_PATCH_TOKEN", "")
        .args(["show", SEED_ID])
        .run()
        .code(4);
    Ims::new()
        .write_config(&config)
        .env("IMS_PATCH_TOKEN", "from-env")
        .args(["--token", TOKEN, "show", SEED_ID])
        .run()
        .ok();
    // The journal shows which requests carried TOKEN (accepted) without
    // ever holding a token.
    let seen: Vec<(Value, Value)> = sb
        .requests()
        .iter()
        .map(|r| (r["status"].clone(), r["headers"]["x-auth-token"].clone()))
        .collect();
    let redacted = json!("<redacted>");
    assert_eq!(
        seen,
        [
            (json!(200), redacted.clone()),
            (json!(401), redacted.clone()),
            (json!(401), redacted.clone()),
            (json!(200), redacted)
        ]
    );
}

#[test]
fn bad_environment_values_are_configuration_errors_naming_the_variable() {
    for (var, value) in [
        ("IMS_PATCH_PATCH_FORMAT", "v3"),
        ("IMS_PATCH_OUTPUT", "xml"),
        ("IMS_PATCH_TIMEOUT", "soon"),
        ("IMS_PATCH_INSECURE", "maybe"),
    ] {
        let run = Ims::new()
            .env("IMS_PATCH_ENDPOINT", "http://127.0.0.1:9")
            .env("IMS_PATCH_TOKEN", TOKEN)
            .env(var, value)
            .args(["show", SEED_ID])
            .run();
        run.code(3);
        assert!(
            run.stderr.contains(&format!("{var}='{value}'")),
            "{}",
            run.stderr
        );
    }
    // They are the client's settings: the sandbox and generate ignore them.
    let run = Ims::new()
        .env("IMS_PATCH_OUTPUT", "xml")
        .args(["generate", "completions", "bash"])
        .run();
    run.ok();
}

#[test]
fn the_environment_can_switch_off_what_a_profile_switches_on() {
    let config = "default_profile = \"p\"\n[profiles.p]\nendpoint = \"http://ims.example.com\"\nallow_http = true\ntoken = \"t\"\n";
    Ims::new()
        .write_config(config)
        .args(["--dry-run", "rename", SEED_ID, "x"])
        .run()
        .ok();
    let run = Ims::new()
        .write_config(config)
        .env("IMS_PATCH_ALLOW_HTTP", "false")
        .args(["--dry-run", "rename", SEED_ID, "x"])
        .run();
    run.code(3);
    assert!(run.stderr.contains("plain http"), "{}", run.stderr);
}

#[test]
fn config_and_cacert_paths_that_are_not_utf8_are_used() {
    use std::os::unix::ffi::OsStrExt;
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"ims-\xff.toml"));
    std::fs::write(
        &path,
        format!("[profiles.x]\nendpoint = \"{}\"\n", sb.endpoint),
    )
    .unwrap();
    // Before, such a path was dropped and the default config used instead.
    Ims::new()
        .env("IMS_PATCH_TOKEN", TOKEN)
        .args(["--config"])
        .arg(&path)
        .args(["--profile", "x", "show", SEED_ID])
        .run()
        .ok();
    Ims::new()
        .env("IMS_PATCH_TOKEN", TOKEN)
        .env("IMS_PATCH_CONFIG", &path)
        .env("IMS_PATCH_PROFILE", "x")
        .args(["show", SEED_ID])
        .run()
        .ok();
    let ca = dir.path().join(std::ffi::OsStr::from_bytes(b"ca-\xff.pem"));
    std::fs::write(&ca, "not a certificate").unwrap();
    let run = sb
        .ims()
        .args(["--cacert"])
        .arg(&ca)
        .args(["show", SEED_ID])
        .run();
    run.code(3);
    assert!(
        run.stderr.contains("holds no PEM certificate") && run.stderr.contains("(from --cacert)"),
        "{}",
        run.stderr
    );
}

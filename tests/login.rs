//! Logging in (issue #8) through the binary: settings errors that need no
//! identity service, today's endpoint + token path untouched, and (with the
//! sandbox's Keystone emulation) the whole login flow.

use crate::support::{Ims, Sandbox, SEED_ID, TOKEN};

const PASSWORD: &str = "pw-that-must-never-be-printed-4711";

fn clouds(ims: Ims, text: &str, mode: u32) -> Ims {
    let path = ims.home.join("clouds.yaml");
    std::fs::write(&path, text).unwrap();
    crate::support::set_mode(&path, mode);
    ims.env("OS_CLIENT_CONFIG_FILE", &path)
}

fn password_cloud(auth_url: &str) -> String {
    format!(
        "clouds:\n  dev:\n    auth:\n      auth_url: {auth_url}\n      username: demo\n      password: {PASSWORD}\n      user_domain_name: Default\n      project_name: demo\n      project_domain_name: Default\n  prod:\n    auth:\n      auth_url: {auth_url}\n"
    )
}

/// A loopback URL nothing listens on.
fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/v3")
}

#[test]
fn an_unknown_auth_type_is_exit_3_naming_it_and_its_source() {
    let run = Ims::new()
        .env("OS_AUTH_URL", "http://127.0.0.1:1/v3")
        .env("OS_AUTH_TYPE", "v3oidcpassword")
        .args(["rename", SEED_ID, "x"])
        .run();
    run.code(3);
    assert!(
        run.stderr
            .contains("auth_type 'v3oidcpassword' (from OS_AUTH_TYPE) is not supported"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unreachable_identity_service_is_exit_1_naming_the_url() {
    let url = closed_url();
    let run = Ims::new()
        .env("OS_AUTH_URL", &url)
        .env("OS_USERNAME", "demo")
        .env("OS_PASSWORD", PASSWORD)
        .env("OS_USER_DOMAIN_NAME", "Default")
        .env("OS_PROJECT_NAME", "demo")
        .args(["rename", SEED_ID, "x"])
        .run();
    run.code(1);
    assert!(
        run.stderr.contains(&format!("{url}/auth/tokens")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("from OS_AUTH_URL"), "{}", run.stderr);
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
}

#[test]
fn an_unknown_cloud_is_exit_3_listing_the_clouds() {
    let run = clouds(Ims::new(), &password_cloud("http://127.0.0.1:1/v3"), 0o600)
        .args(["--os-cloud", "staging", "rename", SEED_ID, "x"])
        .run();
    run.code(3);
    assert!(run.stderr.contains("staging"), "{}", run.stderr);
    assert!(
        run.stderr.contains("dev") && run.stderr.contains("prod"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("from --os-cloud"), "{}", run.stderr);
}

#[test]
fn a_clouds_yaml_with_a_password_readable_by_others_is_warned_about() {
    let url = closed_url();
    let run = clouds(Ims::new(), &password_cloud(&url), 0o644)
        .env("OS_CLOUD", "dev")
        .args(["rename", SEED_ID, "x"])
        .run();
    run.code(1);
    assert!(
        run.stderr
            .contains("holds a secret and is readable by group or others"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(PASSWORD));
    // Without a password in it, or private: no warning.
    let run = clouds(Ims::new(), &password_cloud(&url), 0o600)
        .env("OS_CLOUD", "dev")
        .args(["rename", SEED_ID, "x"])
        .run();
    assert!(!run.stderr.contains("readable by group"), "{}", run.stderr);
}

#[test]
fn endpoint_and_token_work_as_before_with_no_identity_call() {
    let sandbox = Sandbox::start();
    // OS_* variables of an openrc are set too: the explicit token wins.
    sandbox
        .ims()
        .env("OS_AUTH_URL", closed_url())
        .env("OS_USERNAME", "demo")
        .env("OS_PASSWORD", PASSWORD)
        .args(["-q", "rename", SEED_ID, "plain-token"])
        .run()
        .ok()
        .no_secret();
    // auth_type admin_token: the endpoint and OS_TOKEN, as given.
    Ims::new()
        .env("OS_AUTH_URL", closed_url())
        .env("OS_AUTH_TYPE", "admin_token")
        .env("OS_TOKEN", TOKEN)
        .env("IMS_PATCH_ENDPOINT", &sandbox.endpoint)
        .args(["-q", "rename", SEED_ID, "admin-token"])
        .run()
        .ok()
        .no_secret();
    let lines = sandbox.request_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines.iter().all(|l| l.starts_with("PATCH /v2/images/")),
        "{lines:?}"
    );
}

#[test]
fn auth_status_with_nothing_configured_says_how_to_configure() {
    let run = Ims::new().args(["auth", "status"]).run();
    run.ok();
    assert!(
        run.stdout.starts_with("credential: none\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.lines().all(|l| !l.ends_with(' ')),
        "{:?}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("no endpoint, token, key pair or login is configured"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--os-cloud"), "{}", run.stderr);
    // The JSON stays as it was, for scripts.
    let run = Ims::new().args(["auth", "status", "-o", "json"]).run();
    run.ok();
    assert_eq!(run.json()["credential"], "none");
}

#[test]
fn auth_commands_need_a_login_and_status_names_sources() {
    let run = Ims::new().args(["auth", "token"]).run();
    run.code(3);
    assert!(
        run.stderr.contains("no login is configured"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--os-cloud"), "{}", run.stderr);
    let run = Ims::new()
        .env("OS_AUTH_URL", "https://id.example.com/v3")
        .env("OS_USER_ID", "u1")
        .env("OS_PASSWORD", PASSWORD)
        .env("OS_PROJECT_ID", "p1")
        .env("IMS_PATCH_CACHE_DIR", "/nonexistent-cache")
        .args(["auth", "status", "-o", "json"])
        .run();
    run.ok();
    let status = run.json();
    assert_eq!(status["credential"], "keystone login, auth_type password");
    let settings = status["settings"].to_string();
    assert!(
        settings.contains("user_id 'u1' (from OS_USER_ID)"),
        "{settings}"
    );
    assert!(
        settings.contains("password (from OS_PASSWORD)"),
        "{settings}"
    );
    assert!(!run.stdout.contains(PASSWORD));
    assert!(status["token_cache"]["file"]
        .as_str()
        .unwrap()
        .starts_with("/nonexistent-cache/ims-patch/tokens/"));
    assert_eq!(status["token_cache"]["token"], serde_json::Value::Null);
}

#[test]
fn auth_status_of_a_given_token_shows_no_empty_line() {
    let run = Ims::new()
        .env("IMS_PATCH_ENDPOINT", "http://127.0.0.1:9")
        .env("IMS_PATCH_TOKEN", "t")
        .args(["auth", "status"])
        .run();
    run.ok();
    assert!(
        run.stdout.contains(
            "credential: token (from IMS_PATCH_TOKEN)
settings: -
"
        ),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(": \n"), "{}", run.stdout);
}

#[test]
fn a_profile_token_shadowed_by_an_os_login_is_warned_about_and_admin_token_keeps_it() {
    let sandbox = Sandbox::start();
    let config = format!(
        "default_profile = \"p\"\n[profiles.p]\nendpoint = \"{}\"\ntoken_command = \"printf {TOKEN}\"\n",
        sandbox.endpoint
    );
    let run = Ims::new()
        .write_config(&config)
        .env("OS_AUTH_URL", closed_url())
        .env("OS_USER_ID", "u")
        .env("OS_PASSWORD", PASSWORD)
        .args(["-q", "rename", SEED_ID, "x"])
        .run();
    run.code(1);
    assert!(
        run.stderr
            .contains("the profile's token_command is not used: auth_url logs in with Keystone (from OS_AUTH_URL)"),
        "{}",
        run.stderr
    );
    let config = format!("{config}auth_type = \"admin_token\"\n");
    Ims::new()
        .write_config(&config)
        .env("OS_AUTH_URL", closed_url())
        .env("OS_USER_ID", "u")
        .env("OS_PASSWORD", PASSWORD)
        .args(["-q", "rename", SEED_ID, "as-before"])
        .run()
        .ok()
        .no_secret();
}

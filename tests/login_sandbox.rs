//! The whole login flow (issue #8) against the sandbox's Keystone
//! emulation: clouds.yaml and OS_* logins, region selection, the token cache
//! (one request when cached, modes, corruption, 20 parallel runs), re-login
//! after a revoked or expired cached token, a wrong password.

use crate::support::{Ims, Sandbox, TOKEN};

/// A seed image of the sandbox owned by project demo (ims_test is not).
const DEMO_ID: &str = "5d8f2c4e-1f7a-4b9e-9c3d-2a6b8e4f0c11";

/// A sandbox whose image API wants a token of its Keystone (or the test
/// token, which `Sandbox::image` sends).
fn start(extra: &[&str]) -> Sandbox {
    let mut args = vec!["--require-auth", "--token", TOKEN];
    args.extend_from_slice(extra);
    Sandbox::start_with(&args)
}

const PASSWORD: &str = "pw-that-must-never-be-printed-4711";
// ---- The whole flow against the sandbox's Keystone emulation ----

const APP_CRED_ID: &str = "a9f1c2d3e4b5a6978812345678abcdef";
const APP_CRED_SECRET: &str = "demo-app-cred-secret";

/// A clouds.yaml with cloud `sb` logging in to `sandbox` as demo/demopass,
/// in `region` when given, and a cache directory; several runs share both.
struct Login {
    dir: tempfile::TempDir,
}

impl Login {
    fn new(sandbox: &Sandbox, region: Option<&str>, password: &str) -> Login {
        let dir = tempfile::tempdir().unwrap();
        let region = region.map_or(String::new(), |r| format!("    region_name: {r}\n"));
        let text = format!(
            "clouds:\n  sb:\n    auth:\n      auth_url: {}/v3\n      username: demo\n      password: {password}\n      user_domain_name: Default\n      project_name: demo\n      project_domain_name: Default\n{region}",
            sandbox.endpoint
        );
        std::fs::write(dir.path().join("clouds.yaml"), text).unwrap();
        crate::support::set_mode(&dir.path().join("clouds.yaml"), 0o600);
        Login { dir }
    }

    fn cache(&self) -> std::path::PathBuf {
        self.dir.path().join("cache")
    }

    fn tokens(&self) -> std::path::PathBuf {
        self.cache().join("ims-patch").join("tokens")
    }

    /// The one cache file.
    fn token_file(&self) -> std::path::PathBuf {
        let files: Vec<_> = std::fs::read_dir(self.tokens())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    }

    fn ims(&self) -> Ims {
        Ims::new()
            .env("OS_CLIENT_CONFIG_FILE", self.dir.path().join("clouds.yaml"))
            .env("OS_CLOUD", "sb")
            .env("IMS_PATCH_CACHE_DIR", self.cache())
    }
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn no_login_secret(run: &crate::support::Run) {
    for secret in ["demopass", APP_CRED_SECRET, PASSWORD] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret} was printed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

#[test]
fn clouds_yaml_login_then_a_cached_edit_is_one_request() {
    let sandbox = start(&[]);
    let login = Login::new(&sandbox, Some("RegionOne"), "demopass");
    let first = login
        .ims()
        .args(["-v", "-o", "json", "rename", DEMO_ID, "logged-in"])
        .run();
    first.ok();
    no_login_secret(&first);
    assert_eq!(first.json()["name"], "logged-in");
    assert!(
        first.stderr.contains("\"password\": \"<redacted>\""),
        "{}",
        first.stderr
    );
    let lines = sandbox.request_lines();
    assert_eq!(
        lines,
        vec![
            "POST /v3/auth/tokens".to_string(),
            format!("PATCH /v2/images/{DEMO_ID}")
        ]
    );
    // The cache: directory 0700, file 0600, no secret in it but the token.
    assert_eq!(mode(&login.tokens()), 0o700);
    assert_eq!(mode(&login.token_file()), 0o600);
    let cached = std::fs::read_to_string(login.token_file()).unwrap();
    assert!(!cached.contains("demopass"));
    sandbox.clear_journal();
    let second = login.ims().args(["-q", "rename", DEMO_ID, "cached"]).run();
    second.ok();
    assert_eq!(
        sandbox.request_lines(),
        vec![format!("PATCH /v2/images/{DEMO_ID}")]
    );
    assert_eq!(sandbox.image(DEMO_ID)["name"], "cached");
    // --dry-run: the PATCH with the token redacted; nothing sent.
    sandbox.clear_journal();
    let dry = login
        .ims()
        .args(["--dry-run", "rename", DEMO_ID, "dry"])
        .run();
    dry.ok();
    assert!(
        dry.stdout.contains("X-Auth-Token: <redacted>"),
        "{}",
        dry.stdout
    );
    let token = login.ims().args(["auth", "token"]).run();
    token.ok();
    let token = token.stdout.trim().to_string();
    assert!(!dry.stdout.contains(&token) && !dry.stderr.contains(&token));
    assert!(
        sandbox.request_lines().is_empty(),
        "{:?}",
        sandbox.request_lines()
    );
    // --no-token-cache logs in again, and leaves the cache alone.
    login
        .ims()
        .args(["--no-token-cache", "-q", "rename", DEMO_ID, "uncached"])
        .run()
        .ok();
    assert_eq!(sandbox.request_lines()[0], "POST /v3/auth/tokens");
}

#[test]
fn os_variables_with_an_application_credential() {
    let sandbox = start(&[]);
    let cache = tempfile::tempdir().unwrap();
    let run = Ims::new()
        .env("OS_AUTH_URL", format!("{}/v3", sandbox.endpoint))
        .env("OS_AUTH_TYPE", "v3applicationcredential")
        .env("OS_APPLICATION_CREDENTIAL_ID", APP_CRED_ID)
        .env("OS_APPLICATION_CREDENTIAL_SECRET", APP_CRED_SECRET)
        .env("OS_REGION_NAME", "RegionOne")
        .env("IMS_PATCH_CACHE_DIR", cache.path())
        .args(["-v", "-o", "json", "set-attr", DEMO_ID, "via=appcred"])
        .run();
    run.ok();
    no_login_secret(&run);
    assert_eq!(run.json()["via"], "appcred");
    let login = &sandbox.requests()[0];
    let body = login["body"].as_str().unwrap();
    assert!(body.contains("application_credential"), "{body}");
    assert!(
        !body.contains("scope"),
        "an application credential sends no scope: {body}"
    );
}

#[test]
fn a_region_with_no_image_endpoint_is_named_with_where_it_was_set() {
    let sandbox = start(&[]);
    let login = Login::new(&sandbox, Some("Nowhere"), "demopass");
    let run = login.ims().args(["rename", DEMO_ID, "x"]).run();
    run.code(3);
    assert!(
        run.stderr
            .contains("no 'public' endpoint in region 'Nowhere'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("region_name 'Nowhere' was set (from cloud 'sb' in"),
        "{}",
        run.stderr
    );
    let run = login
        .ims()
        .args(["--os-region-name", "Elsewhere", "rename", DEMO_ID, "x"])
        .run();
    run.code(3);
    assert!(
        run.stderr
            .contains("region_name 'Elsewhere' was set (from --os-region-name)"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_catalog_endpoint_is_chosen_by_region() {
    let sandbox = start(&[]);
    let login = Login::new(&sandbox, None, "demopass");
    let none = login.ims().args(["rename", DEMO_ID, "x"]).run();
    none.code(3);
    assert!(
        none.stderr
            .contains("several regions: RegionOne, RegionTwo"),
        "{}",
        none.stderr
    );
    let two = login
        .ims()
        .args([
            "--os-region-name",
            "RegionTwo",
            "-o",
            "json",
            "auth",
            "login",
        ])
        .run();
    two.ok();
    let url = two.json()["image_endpoint"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let port = sandbox.endpoint.rsplit(':').next().unwrap().to_string();
    assert_eq!(
        url.trim_end_matches('/'),
        format!("http://localhost:{port}")
    );
    login
        .ims()
        .env("OS_REGION_NAME", "RegionOne")
        .args(["-q", "rename", DEMO_ID, "region-one"])
        .run()
        .ok();
}

#[test]
fn a_revoked_or_expired_cached_token_logs_in_again_and_retries_once() {
    let sandbox = start(&[]);
    let login = Login::new(&sandbox, Some("RegionOne"), "demopass");
    let token = login.ims().args(["auth", "token"]).run();
    token.ok();
    let token = token.stdout.trim().to_string();
    let (status, _) = crate::support::proxy::request(
        &sandbox.endpoint,
        "DELETE",
        "/v3/auth/tokens",
        &[("X-Auth-Token", &token), ("X-Subject-Token", &token)],
    );
    assert_eq!(status, 204);
    sandbox.clear_journal();
    let run = login
        .ims()
        .args(["-q", "rename", DEMO_ID, "after-revoke"])
        .run();
    run.ok();
    assert!(!run.stderr.contains(&token));
    let patch = format!("PATCH /v2/images/{DEMO_ID}");
    assert_eq!(
        sandbox.request_lines(),
        vec![patch.clone(), "POST /v3/auth/tokens".into(), patch.clone()]
    );
    let statuses: Vec<u64> = sandbox
        .requests()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![401, 201, 200]);

    // A token that expired early (the cache still thinks it is valid).
    let short = start(&["--token-ttl", "1"]);
    let login = Login::new(&short, Some("RegionOne"), "demopass");
    login.ims().args(["auth", "login"]).run().ok();
    let file = login.token_file();
    let mut entry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    entry["expires_at"] = "2999-01-01T00:00:00Z".into();
    std::fs::write(&file, entry.to_string()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    short.clear_journal();
    login
        .ims()
        .args(["-q", "rename", DEMO_ID, "after-expiry"])
        .run()
        .ok();
    let statuses: Vec<u64> = short
        .requests()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![401, 201, 200]);
}

#[test]
fn a_wrong_password_is_exit_4_with_the_message_and_no_secret() {
    let sandbox = start(&[]);
    let login = Login::new(&sandbox, Some("RegionOne"), PASSWORD);
    let run = login.ims().args(["-v", "rename", DEMO_ID, "never"]).run();
    run.code(4);
    no_login_secret(&run);
    assert!(
        run.stderr.contains("refused the login (401)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("requires authentication"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("username 'demo' (from cloud 'sb' in"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("password (from cloud 'sb' in"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_corrupt_cache_file_is_ignored_and_replaced() {
    let sandbox = start(&[]);
    let login = Login::new(&sandbox, Some("RegionOne"), "demopass");
    login.ims().args(["auth", "login"]).run().ok();
    let file = login.token_file();
    std::fs::write(&file, "{not json").unwrap();
    sandbox.clear_journal();
    login
        .ims()
        .args(["-q", "rename", DEMO_ID, "after-corrupt"])
        .run()
        .ok();
    assert_eq!(sandbox.request_lines()[0], "POST /v3/auth/tokens");
    let entry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(entry["expires_at"].is_string());
}

#[test]
fn twenty_parallel_runs_do_not_corrupt_the_cache() {
    let sandbox = start(&[]);
    let login = Login::new(&sandbox, Some("RegionOne"), "demopass");
    let children: Vec<_> = (0..20)
        .map(|i| {
            let mut cmd = std::process::Command::new(crate::support::BIN);
            cmd.env_clear()
                .env("HOME", login.dir.path())
                .env(
                    "OS_CLIENT_CONFIG_FILE",
                    login.dir.path().join("clouds.yaml"),
                )
                .env("OS_CLOUD", "sb")
                .env("IMS_PATCH_CACHE_DIR", login.cache())
                .args(["-q", "set-attr", DEMO_ID, &format!("run{i}=x")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // One whole file, no temporary files left; it still works, cached.
    let file = login.token_file();
    let entry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(entry["token"].is_string());
    sandbox.clear_journal();
    login
        .ims()
        .args(["-q", "rename", DEMO_ID, "after-20"])
        .run()
        .ok();
    assert_eq!(sandbox.request_lines().len(), 1);
}

#[test]
fn a_profile_logs_in_with_a_password_command_run_only_when_needed() {
    let sandbox = start(&[]);
    let cache = tempfile::tempdir().unwrap();
    let marker = cache.path().join("ran");
    let config = format!(
        "default_profile = \"sb\"\n[profiles.sb]\nauth_url = \"{}/v3\"\nusername = \"demo\"\nuser_domain_name = \"Default\"\nproject_name = \"demo\"\nproject_domain_name = \"Default\"\nregion_name = \"RegionOne\"\npassword_command = \"echo x >> '{}'; printf demopass\"\ncache_dir = \"{}\"\n",
        sandbox.endpoint,
        marker.display(),
        cache.path().display()
    );
    let run = |name: &str| {
        Ims::new()
            .write_config(&config)
            .args(["-q", "rename", DEMO_ID, name])
            .run()
    };
    run("by-profile").ok();
    run("by-profile-again").ok();
    // The command ran for the login only, not for the cached run.
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "x\n");
    assert_eq!(sandbox.image(DEMO_ID)["name"], "by-profile-again");
}

#[test]
fn a_token_is_exchanged_with_v3token_and_not_cached() {
    let sandbox = start(&[]);
    let login = Login::new(&sandbox, Some("RegionOne"), "demopass");
    let token = login.ims().args(["auth", "token"]).run();
    token.ok();
    let token = token.stdout.trim().to_string();
    sandbox.clear_journal();
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        Ims::new()
            .env("OS_AUTH_URL", format!("{}/v3", sandbox.endpoint))
            .env("OS_AUTH_TYPE", "v3token")
            .env("OS_TOKEN", &token)
            .env("OS_PROJECT_NAME", "demo")
            .env("OS_PROJECT_DOMAIN_NAME", "Default")
            .env("OS_REGION_NAME", "RegionOne")
            .env("IMS_PATCH_CACHE_DIR", cache.path())
            .args(["-v", "-q", "rename", DEMO_ID, "exchanged"])
            .run()
    };
    let first = run();
    first.ok();
    assert!(!first.stderr.contains(&token), "{}", first.stderr);
    run().ok();
    // Each run exchanges the token: a token login is not cached.
    let lines = sandbox.request_lines();
    assert_eq!(
        lines
            .iter()
            .filter(|l| *l == "POST /v3/auth/tokens")
            .count(),
        2,
        "{lines:?}"
    );
    let body = sandbox.requests()[0]["body"].as_str().unwrap().to_string();
    assert!(body.contains("\"token\""), "{body}");
}

#[test]
fn the_sandbox_takes_its_users_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    std::fs::write(
        &users,
        "[[users]]\nname = \"alice\"\npassword = \"alice-pw\"\ndomain = \"Acme\"\n[[users.projects]]\nname = \"alpha\"\nroles = [\"member\"]\n",
    )
    .unwrap();
    let sandbox = start(&["--users", users.to_str().unwrap()]);
    let login = |user: &str, password: &str, domain: &str| {
        Ims::new()
            .env("OS_AUTH_URL", format!("{}/v3", sandbox.endpoint))
            .env("OS_USERNAME", user)
            .env("OS_PASSWORD", password)
            .env("OS_USER_DOMAIN_NAME", domain)
            .env("OS_PROJECT_NAME", "alpha")
            .env("OS_PROJECT_DOMAIN_NAME", domain)
            .env("OS_REGION_NAME", "RegionOne")
            .env("IMS_PATCH_NO_TOKEN_CACHE", "1")
            .args(["-o", "json", "auth", "login"])
            .run()
    };
    let alice = login("alice", "alice-pw", "Acme");
    alice.ok();
    assert_eq!(alice.json()["project"]["name"], "alpha");
    assert_eq!(alice.json()["user"]["domain"], "Acme");
    login("demo", "demopass", "Default").code(4);
}

#[test]
fn dry_run_shows_the_login_it_needs_with_the_password_redacted() {
    let sandbox = start(&[]);
    let login = Login::new(&sandbox, Some("RegionOne"), "demopass");
    let run = login
        .ims()
        .args(["--no-token-cache", "--dry-run", "rename", DEMO_ID, "dry"])
        .run();
    run.ok();
    no_login_secret(&run);
    assert!(run.stderr.contains("logging in"), "{}", run.stderr);
    assert!(
        run.stderr.contains("\"password\": \"<redacted>\""),
        "{}",
        run.stderr
    );
    assert!(run.stdout.starts_with("PATCH "), "{}", run.stdout);
    assert!(
        run.stdout.contains("X-Auth-Token: <redacted>"),
        "{}",
        run.stdout
    );
    // The login was made (for the catalog); no PATCH was sent.
    assert_eq!(sandbox.request_lines(), vec!["POST /v3/auth/tokens"]);
}

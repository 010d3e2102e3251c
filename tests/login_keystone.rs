//! Logging in against a real Keystone 30 and a Glance 33 that checks its
//! tokens (tests/keystone/up.sh; .ci/run starts them and runs these):
//! password and application-credential logins through clouds.yaml and
//! through OS_*, catalog selection by region, the cached second run being
//! one request, a revoked cached token (re-login, one retry), a wrong
//! password (exit 4). Requests are counted by recording proxies in front of
//! the Keystone and the Glance.

use crate::support::proxy::{request, Proxy};
use crate::support::{Ims, Run};

const IGNORE: &str = "needs a real Keystone 30: run by .ci/run";

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: start tests/keystone/up.sh ({IGNORE})"))
}

/// The Keystone's scheme, host and port, without /v3.
fn keystone_base() -> String {
    var("IMS_PATCH_KEYSTONE_URL")
        .trim_end_matches("/v3")
        .to_string()
}

fn image() -> String {
    var("IMS_PATCH_KEYSTONE_IMAGE_ID")
}

/// A clouds.yaml (mode 0600) and a token cache that several runs share.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(clouds: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clouds.yaml");
        std::fs::write(&path, clouds).unwrap();
        crate::support::set_mode(&path, 0o600);
        Fixture { dir }
    }

    /// The binary with OS_CLIENT_CONFIG_FILE and XDG_CACHE_HOME (the user
    /// cache directory) in the fixture.
    fn ims(&self) -> Ims {
        Ims::new()
            .env("OS_CLIENT_CONFIG_FILE", self.dir.path().join("clouds.yaml"))
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
    }
}

/// A password cloud `c` logging in at `auth_url`, with extra lines.
fn password_cloud(auth_url: &str, extra: &str) -> String {
    format!(
        "clouds:\n  c:\n    auth:\n      auth_url: {auth_url}\n      username: {}\n      password: {}\n      user_domain_name: {}\n      project_name: {}\n      project_domain_name: {}\n{extra}",
        var("IMS_PATCH_KEYSTONE_USER"),
        var("IMS_PATCH_KEYSTONE_PASSWORD"),
        var("IMS_PATCH_KEYSTONE_DOMAIN"),
        var("IMS_PATCH_KEYSTONE_PROJECT"),
        var("IMS_PATCH_KEYSTONE_DOMAIN"),
    )
}

fn no_secret(run: &Run) {
    for secret in [
        var("IMS_PATCH_KEYSTONE_PASSWORD"),
        var("IMS_PATCH_KEYSTONE_APP_CRED_SECRET"),
    ] {
        assert!(
            !run.stdout.contains(&secret) && !run.stderr.contains(&secret),
            "a secret was printed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

fn name_of(run: &Run) -> String {
    run.json()["name"].as_str().unwrap().to_string()
}

#[test]
#[ignore = "needs a real Keystone 30: run by .ci/run"]
fn clouds_yaml_password_login_then_a_cached_edit_is_one_request() {
    let keystone = Proxy::start(&keystone_base());
    let glance = Proxy::start(&var("IMS_PATCH_KEYSTONE_GLANCE_URL"));
    let clouds = password_cloud(
        &format!("{}/v3", keystone.url),
        &format!(
            "    region_name: RegionOne\n    image_endpoint_override: {}\n",
            glance.url
        ),
    );
    let f = Fixture::new(&clouds);
    let run = |name: &str| {
        f.ims()
            .args([
                "--os-cloud",
                "c",
                "-v",
                "-o",
                "json",
                "rename",
                &image(),
                name,
            ])
            .run()
    };
    let first = run("ks-cold");
    first.ok();
    no_secret(&first);
    assert_eq!(name_of(&first), "ks-cold");
    assert_eq!(keystone.seen(), vec!["POST /v3/auth/tokens 201"]);
    assert_eq!(glance.seen().len(), 1, "{:?}", glance.seen());
    assert!(
        first.stderr.contains("\"password\": \"<redacted>\""),
        "{}",
        first.stderr
    );
    keystone.clear();
    glance.clear();
    let second = run("ks-warm");
    second.ok();
    assert_eq!(name_of(&second), "ks-warm");
    assert_eq!(keystone.seen(), Vec::<String>::new());
    assert_eq!(glance.seen().len(), 1, "one request: {:?}", glance.seen());
    assert!(glance.seen()[0].starts_with("PATCH /v2/images/"));
}

#[test]
#[ignore = "needs a real Keystone 30: run by .ci/run"]
fn os_variables_password_and_catalog_endpoint() {
    let run = Ims::new()
        .env("OS_AUTH_URL", var("IMS_PATCH_KEYSTONE_URL"))
        .env("OS_USERNAME", var("IMS_PATCH_KEYSTONE_USER"))
        .env("OS_PASSWORD", var("IMS_PATCH_KEYSTONE_PASSWORD"))
        .env("OS_USER_DOMAIN_NAME", var("IMS_PATCH_KEYSTONE_DOMAIN"))
        .env("OS_PROJECT_NAME", var("IMS_PATCH_KEYSTONE_PROJECT"))
        .env("OS_PROJECT_DOMAIN_NAME", var("IMS_PATCH_KEYSTONE_DOMAIN"))
        .env("OS_REGION_NAME", var("IMS_PATCH_KEYSTONE_REGION"))
        .args(["-o", "json", "set-attr", &image(), "ks_os_vars=password"])
        .run();
    run.ok();
    no_secret(&run);
    assert_eq!(run.json()["ks_os_vars"], "password");
}

#[test]
#[ignore = "needs a real Keystone 30: run by .ci/run"]
fn application_credentials_through_os_variables_and_clouds_yaml() {
    let run = Ims::new()
        .env("OS_AUTH_URL", var("IMS_PATCH_KEYSTONE_URL"))
        .env("OS_AUTH_TYPE", "v3applicationcredential")
        .env(
            "OS_APPLICATION_CREDENTIAL_ID",
            var("IMS_PATCH_KEYSTONE_APP_CRED_ID"),
        )
        .env(
            "OS_APPLICATION_CREDENTIAL_SECRET",
            var("IMS_PATCH_KEYSTONE_APP_CRED_SECRET"),
        )
        .env("OS_REGION_NAME", var("IMS_PATCH_KEYSTONE_REGION"))
        .args(["-o", "json", "set-attr", &image(), "ks_app_cred=env"])
        .run();
    run.ok();
    no_secret(&run);
    assert_eq!(run.json()["ks_app_cred"], "env");

    let clouds = format!(
        "clouds:\n  a:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {}\n      application_credential_id: {}\n      application_credential_secret: {}\n    region_name: {}\n",
        var("IMS_PATCH_KEYSTONE_URL"),
        var("IMS_PATCH_KEYSTONE_APP_CRED_ID"),
        var("IMS_PATCH_KEYSTONE_APP_CRED_SECRET"),
        var("IMS_PATCH_KEYSTONE_REGION"),
    );
    let f = Fixture::new(&clouds);
    let run = f
        .ims()
        .env("OS_CLOUD", "a")
        .args([
            "-v",
            "-o",
            "json",
            "set-attr",
            &image(),
            "ks_app_cred=cloud",
        ])
        .run();
    run.ok();
    no_secret(&run);
    assert_eq!(run.json()["ks_app_cred"], "cloud");
    assert!(
        run.stderr.contains("\"secret\": \"<redacted>\""),
        "{}",
        run.stderr
    );
}

#[test]
#[ignore = "needs a real Keystone 30: run by .ci/run"]
fn the_catalog_endpoint_is_chosen_by_region() {
    let clouds = password_cloud(&var("IMS_PATCH_KEYSTONE_URL"), "");
    let f = Fixture::new(&clouds);
    let login = |region: Option<&str>| {
        let mut ims = f
            .ims()
            .env("OS_CLOUD", "c")
            .env("IMS_PATCH_NO_TOKEN_CACHE", "1");
        if let Some(r) = region {
            ims = ims.args(["--os-region-name", r]);
        }
        ims.args(["-o", "json", "auth", "login"]).run()
    };
    let two = login(Some(&var("IMS_PATCH_KEYSTONE_REGION_TWO")));
    two.ok();
    no_secret(&two);
    assert_eq!(
        two.json()["image_endpoint"]["url"]
            .as_str()
            .unwrap()
            .trim_end_matches('/'),
        var("IMS_PATCH_KEYSTONE_REGION_TWO_GLANCE_URL")
    );
    let one = login(Some(&var("IMS_PATCH_KEYSTONE_REGION")));
    one.ok();
    assert_eq!(
        one.json()["image_endpoint"]["url"]
            .as_str()
            .unwrap()
            .trim_end_matches('/'),
        var("IMS_PATCH_KEYSTONE_GLANCE_URL")
    );
    // An edit through the RegionTwo endpoint (localhost) works too.
    let edit = f
        .ims()
        .env("OS_CLOUD", "c")
        .env("OS_REGION_NAME", var("IMS_PATCH_KEYSTONE_REGION_TWO"))
        .args(["-o", "json", "set-attr", &image(), "ks_region=two"])
        .run();
    edit.ok();
    let none = f
        .ims()
        .env("OS_CLOUD", "c")
        .args(["rename", &image(), "x"])
        .run();
    none.code(3);
    assert!(
        none.stderr
            .contains("several regions: RegionOne, RegionTwo"),
        "{}",
        none.stderr
    );
}

#[test]
#[ignore = "needs a real Keystone 30: run by .ci/run"]
fn a_revoked_cached_token_logs_in_again_and_retries_once() {
    let keystone = Proxy::start(&keystone_base());
    let glance = Proxy::start(&var("IMS_PATCH_KEYSTONE_GLANCE_URL"));
    let clouds = password_cloud(
        &format!("{}/v3", keystone.url),
        &format!("    image_endpoint_override: {}\n", glance.url),
    );
    let f = Fixture::new(&clouds);
    let bin = || f.ims().env("OS_CLOUD", "c");
    let token = bin().args(["auth", "token"]).run();
    token.ok();
    let token = token.stdout.trim().to_string();
    assert!(token.len() > 20);
    // Revoke it behind ims-patch's back: the token revokes itself.
    let (status, body) = request(
        &keystone_base(),
        "DELETE",
        "/v3/auth/tokens",
        &[("X-Auth-Token", &token), ("X-Subject-Token", &token)],
    );
    assert_eq!(status, 204, "{body}");
    keystone.clear();
    glance.clear();
    let run = bin()
        .args(["-o", "json", "rename", &image(), "ks-after-revoke"])
        .run();
    run.ok();
    assert!(!run.stdout.contains(&token) && !run.stderr.contains(&token));
    assert_eq!(name_of(&run), "ks-after-revoke");
    assert_eq!(keystone.seen(), vec!["POST /v3/auth/tokens 201"]);
    let g = glance.seen();
    assert_eq!(g.len(), 2, "{g:?}");
    assert!(g[0].starts_with("PATCH") && g[0].ends_with(" 401"), "{g:?}");
    assert!(g[1].starts_with("PATCH") && g[1].ends_with(" 200"), "{g:?}");
    // The new token is cached: the next edit is one request again.
    glance.clear();
    keystone.clear();
    bin().args(["rename", &image(), "ks-again"]).run().ok();
    assert_eq!(keystone.seen().len(), 0);
    assert_eq!(glance.seen().len(), 1);
    // logout --revoke revokes the cached token.
    let token = bin()
        .args(["auth", "token"])
        .run()
        .stdout
        .trim()
        .to_string();
    bin().args(["auth", "logout", "--revoke"]).run().ok();
    let (status, _) = request(
        &keystone_base(),
        "GET",
        "/v3/auth/tokens",
        &[("X-Auth-Token", &token), ("X-Subject-Token", &token)],
    );
    assert_eq!(status, 401, "the revoked token no longer authenticates");
}

#[test]
#[ignore = "needs a real Keystone 30: run by .ci/run"]
fn a_wrong_password_is_exit_4_with_keystones_message() {
    let run = Ims::new()
        .env("OS_AUTH_URL", var("IMS_PATCH_KEYSTONE_URL"))
        .env("OS_USERNAME", var("IMS_PATCH_KEYSTONE_USER"))
        .env("OS_PASSWORD", "not-the-password-4711")
        .env("OS_USER_DOMAIN_NAME", var("IMS_PATCH_KEYSTONE_DOMAIN"))
        .env("OS_PROJECT_NAME", var("IMS_PATCH_KEYSTONE_PROJECT"))
        .env("OS_PROJECT_DOMAIN_NAME", var("IMS_PATCH_KEYSTONE_DOMAIN"))
        .env("OS_REGION_NAME", var("IMS_PATCH_KEYSTONE_REGION"))
        .args(["rename", &image(), "never"])
        .run();
    run.code(4);
    assert!(
        run.stderr
            .contains("The request you have made requires authentication."),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("username 'demo' (from OS_USERNAME)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("password (from OS_PASSWORD)"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("not-the-password-4711"),
        "{}",
        run.stderr
    );
    // A user name without a domain: Keystone's 400, exit 3.
    let run = Ims::new()
        .env("OS_AUTH_URL", var("IMS_PATCH_KEYSTONE_URL"))
        .env("OS_USERNAME", var("IMS_PATCH_KEYSTONE_USER"))
        .env("OS_PASSWORD", var("IMS_PATCH_KEYSTONE_PASSWORD"))
        .env("OS_PROJECT_ID", var("IMS_PATCH_KEYSTONE_PROJECT_ID"))
        .args(["rename", &image(), "never"])
        .run();
    run.code(3);
    assert!(
        run.stderr.contains("Expecting to find domain in user"),
        "{}",
        run.stderr
    );
}

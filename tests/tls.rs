//! HTTPS: a private CA through --cacert, an untrusted certificate refused
//! with a hint, and --insecure with its warning.

use crate::support::fault::TlsFault;
use crate::support::{Ims, SEED_ID, TOKEN};

fn ims(server: &TlsFault) -> Ims {
    Ims::new()
        .env("IMS_PATCH_ENDPOINT", &server.endpoint)
        .env("IMS_PATCH_TOKEN", TOKEN)
}

const IMAGE: &str = r#"{"id": "33ad552d-1149-471c-8190-ff6776174a00", "name": "over-tls"}"#;

#[test]
fn a_private_ca_is_trusted_with_cacert() {
    let server = TlsFault::self_signed(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &server.cert_pem).unwrap();
    let run = ims(&server)
        .arg("--cacert")
        .arg(&ca)
        .args(["show", SEED_ID, "-o", "json"])
        .run();
    run.ok().no_secret();
    assert_eq!(run.json()["name"], "over-tls");
    assert_eq!(run.stderr, "");
}

#[test]
fn an_untrusted_certificate_is_refused_with_a_hint() {
    let server = TlsFault::self_signed(IMAGE);
    let run = ims(&server).args(["show", SEED_ID]).run();
    run.code(1).no_secret();
    assert!(run.stderr.contains("certificate"), "{}", run.stderr);
    assert!(run.stderr.contains("--cacert"), "{}", run.stderr);
}

#[test]
fn a_cacert_that_does_not_match_says_so_instead_of_asking_for_it() {
    let server = TlsFault::self_signed(IMAGE);
    let other = TlsFault::self_signed(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("other.pem");
    std::fs::write(&ca, &other.cert_pem).unwrap();
    let run = ims(&server)
        .arg("--cacert")
        .arg(&ca)
        .args(["show", SEED_ID])
        .run();
    run.code(1).no_secret();
    assert!(
        run.stderr.contains(&format!(
            "not trusted with the CA file '{}' (from --cacert)",
            ca.display()
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("pass its CA"), "{}", run.stderr);
}

#[test]
fn insecure_skips_verification_and_says_where_it_was_set() {
    let server = TlsFault::self_signed(IMAGE);
    let run = ims(&server)
        .args(["--insecure", "show", SEED_ID, "-o", "json"])
        .run();
    run.ok();
    assert_eq!(run.json()["name"], "over-tls");
    assert!(
        run.stderr
            .contains("not verified (insecure from --insecure)"),
        "{}",
        run.stderr
    );
    let run = ims(&server)
        .env("IMS_PATCH_INSECURE", "true")
        .args(["show", SEED_ID, "-q"])
        .run();
    run.ok();
    assert!(
        run.stderr.contains("from IMS_PATCH_INSECURE"),
        "{}",
        run.stderr
    );
}

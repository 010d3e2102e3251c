//! `sandbox`: runs the local Images API v2 server of the `ims-patch-sandbox`
//! crate, either until interrupted or, with `-- COMMAND`, for as long as
//! COMMAND runs, with the environment pointed at it.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::cli::SandboxArgs;
use crate::error::{Error, Result};

/// `token` is the global `--token`, taken only when given on the command
/// line (a token in the environment is meant for the client, not this).
pub fn run(args: &SandboxArgs, token: Option<String>) -> Result<()> {
    ims_patch_sandbox::run(options(args, token)).map_err(start_error)
}

/// The sandbox's error as this tool's: a bind failure's advice (`cannot
/// listen on ADDR: address in use; stop ... or use --port 0 ...`) goes on
/// a `hint:` line.
fn start_error(e: impl std::fmt::Display) -> Error {
    let text = format!("{e:#}");
    match text.split_once("; ") {
        Some((message, advice)) if text.starts_with("cannot listen on ") => {
            Error::runtime(message).hint(advice)
        }
        _ => Error::runtime(text),
    }
}

fn options(args: &SandboxArgs, token: Option<String>) -> ims_patch_sandbox::Options {
    ims_patch_sandbox::Options {
        port: args.port,
        bind: args.bind,
        state: args.state.clone(),
        token,
        journal: args.journal.clone(),
        aksk: match (&args.access_key, &args.secret_key) {
            (Some(ak), Some(sk)) => Some(ims_patch_sandbox::aksk::Gateway {
                access_key: ak.clone(),
                secret_key: sk.clone(),
                security_token: args.security_token.clone(),
            }),
            _ => None,
        },
        max_image_size: args.max_image_size,
        token_ttl: std::time::Duration::from_secs(args.token_ttl),
        users: args.users.clone(),
        require_auth: args.require_auth,
    }
}

/// Whether the child must not see variable `name`: anything that could
/// point it at a real service or hold a credential (every `OS_*` and
/// `IMS_PATCH_*` variable, among them `OS_CLOUD`, `OS_TOKEN`,
/// `IMS_PATCH_ACCESS_KEY`, `IMS_PATCH_PROFILE`).
pub fn withheld(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with("OS_") || name.starts_with("IMS_PATCH_")
}

/// How COMMAND authenticates: with the key pair of an AK/SK sandbox
/// (`--access-key`, `--secret-key`, and a region whose project it looks
/// up there); with the sandbox's token (`--token`, or `sandbox`, which it
/// accepts unless `--require-auth`); with `--require-auth` and no
/// `--token`, by logging in to the sandbox's own Keystone (`OS_AUTH_URL`
/// and, without `--users`, its `demo` user).
pub fn credential_env(
    endpoint: &str,
    token: Option<&str>,
    args: &SandboxArgs,
) -> Vec<(&'static str, String)> {
    if let (Some(ak), Some(sk)) = (&args.access_key, &args.secret_key) {
        let mut env = vec![
            ("IMS_PATCH_ACCESS_KEY", ak.clone()),
            ("IMS_PATCH_SECRET_KEY", sk.clone()),
            ("IMS_PATCH_REGION", "eu-de".to_string()),
        ];
        if let Some(t) = &args.security_token {
            env.push(("IMS_PATCH_SECURITY_TOKEN", t.clone()));
        }
        return env;
    }
    match (token, args.require_auth) {
        (Some(t), _) => vec![("IMS_PATCH_TOKEN", t.to_string())],
        (None, false) => vec![("IMS_PATCH_TOKEN", "sandbox".to_string())],
        (None, true) => {
            let mut env = vec![("OS_AUTH_URL", format!("{endpoint}/v3"))];
            if args.users.is_none() {
                for (name, value) in [
                    ("OS_USERNAME", "demo"),
                    ("OS_PASSWORD", "demopass"),
                    ("OS_PROJECT_NAME", "demo"),
                    ("OS_USER_DOMAIN_NAME", "Default"),
                    ("OS_PROJECT_DOMAIN_NAME", "Default"),
                ] {
                    env.push((name, value.to_string()));
                }
            }
            env
        }
    }
}

/// The exit status a shell reports for `status`: its code, or 128+N when
/// signal N ended it.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|n| 128 + n))
        .unwrap_or(1)
}

/// The child to which SIGTERM and SIGHUP sent to ims-patch are passed on.
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn pass_on(signal: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, signal) };
    }
}

/// `sandbox [OPTIONS] -- COMMAND [ARGS...]`: a fresh sandbox on a free port
/// (unless --port), COMMAND run with `IMS_PATCH_ENDPOINT` and
/// `IMS_PATCH_TOKEN` set to it, every other `OS_*`/`IMS_PATCH_*` variable
/// unset, the config file replaced by an empty one and the cache directory
/// (tokens, completions) by a temporary one; returns COMMAND's
/// exit status (128+N for signal N) once it exits, with the sandbox
/// stopped.
pub fn run_command(args: &SandboxArgs, token: Option<String>, port_given: bool) -> Result<i32> {
    let (program, rest) = args
        .command
        .split_first()
        .expect("clap requires COMMAND after --");
    let mut opts = options(args, token.clone());
    if !port_given {
        opts.port = 0;
    }
    let sandbox = ims_patch_sandbox::start_background(&opts).map_err(start_error)?;
    let dir = tempfile::tempdir()
        .map_err(|e| Error::runtime(format!("cannot make a temporary directory: {e}")))?;
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "")
        .map_err(|e| Error::runtime(format!("cannot write '{}': {e}", config.display())))?;

    let mut command = std::process::Command::new(program);
    command.args(rest);
    for (name, _) in std::env::vars_os().filter(|(n, _)| withheld(n)) {
        command.env_remove(name);
    }
    command
        .env("IMS_PATCH_ENDPOINT", &sandbox.endpoint)
        .env("IMS_PATCH_CONFIG", &config)
        .env("IMS_PATCH_CACHE_DIR", dir.path().join("cache"));
    for (name, value) in credential_env(&sandbox.endpoint, token.as_deref(), args) {
        command.env(name, value);
    }
    let journal = args
        .journal
        .as_ref()
        .map(|j| format!("; requests kept in {}", j.display()))
        .unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "ims-patch sandbox: {} images on {} for {}{journal}",
        sandbox.image_count,
        sandbox.endpoint,
        OsString::from(program).to_string_lossy(),
    );
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            let _ = writeln!(
                std::io::stderr(),
                "ims-patch: error: cannot run '{}': {e}",
                program.to_string_lossy()
            );
            sandbox.stop();
            return Ok(code);
        }
    };
    // The terminal sends Ctrl-C and Ctrl-\ to COMMAND too: it decides,
    // and the sandbox stays up until it exits. A SIGTERM or SIGHUP meant
    // for ims-patch alone is passed on.
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    // SAFETY: installing dispositions; the handler only calls kill.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
        let handler = pass_on as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGHUP, handler);
    }
    let status = child
        .wait()
        .map_err(|e| Error::runtime(format!("cannot wait for the command: {e}")))?;
    sandbox.stop();
    Ok(exit_code(status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn credentials_and_service_settings_are_withheld() {
        for name in [
            "OS_CLOUD",
            "OS_TOKEN",
            "OS_PASSWORD",
            "IMS_PATCH_ACCESS_KEY",
            "IMS_PATCH_PROFILE",
        ] {
            assert!(withheld(OsStr::new(name)), "{name}");
        }
        for name in ["PATH", "HOME", "CLOUDS", "XOS_CLOUD"] {
            assert!(!withheld(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn exit_codes_are_the_shells() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
    }
}

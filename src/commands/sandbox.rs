//! `sandbox`: runs the local Images API v2 server of the `ims-patch-sandbox` crate.

use crate::cli::SandboxArgs;
use crate::error::{Error, Result};

/// `token` is the global `--token`, taken only when given on the command
/// line (a token in the environment is meant for the client, not this).
pub fn run(args: &SandboxArgs, token: Option<String>) -> Result<()> {
    let options = ims_patch_sandbox::Options {
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
    };
    ims_patch_sandbox::run(options).map_err(|e| Error::runtime(format!("{e:#}")))
}

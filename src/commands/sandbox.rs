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
        max_image_size: args.max_image_size,
        token_ttl: std::time::Duration::from_secs(args.token_ttl),
        users: args.users.clone(),
        require_auth: args.require_auth,
    };
    ims_patch_sandbox::run(options).map_err(|e| Error::runtime(format!("{e:#}")))
}

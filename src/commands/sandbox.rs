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
        // Keystone: token_ttl, users, require_auth (flags to come).
        ..Default::default()
    };
    ims_patch_sandbox::run(options).map_err(|e| Error::runtime(format!("{e:#}")))
}

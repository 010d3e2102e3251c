//! The ims-patch library: command-line definitions, settings, the HTTP
//! client, the patch model, the commands and their output. `src/main.rs` is
//! a thin wrapper around [`run`].

pub mod aksk;
pub mod auth;
pub mod batch;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod error;
pub mod helper_command;
pub mod output;
pub mod patch;
pub mod sanitize;
pub mod secret;

use clap::ArgMatches;

use crate::cli::{Cli, Command};
use crate::commands::Context;
use crate::config::{Settings, Source};
use crate::error::Result;
use crate::output::Style;

/// Runs one parsed command line; `matches` tells where each value came from.
pub fn run(cli: Cli, matches: &ArgMatches) -> Result<()> {
    let command = match cli.command {
        Command::Generate(args) => return commands::generate::run(&args),
        Command::Sandbox(args) => {
            // Only a --token typed for the sandbox guards it: IMS_PATCH_TOKEN
            // is the client's setting.
            let typed = config::given(matches, "token", "--token", "IMS_PATCH_TOKEN")
                == Some(Source::Flag("--token"));
            let token = cli.global.token.filter(|_| typed);
            return commands::sandbox::run(&args, token);
        }
        other => other,
    };
    let settings = Settings::resolve(&cli.global, matches)?;
    let ctx = Context {
        client: client::Client::new(&settings)?,
        style: Style {
            format: settings.output,
            fields: settings.fields.clone(),
            quiet: settings.quiet,
        },
    };
    match command {
        Command::Rename(args) => commands::rename::run(&ctx, &args),
        Command::Describe(args) => commands::describe::run(&ctx, &args),
        Command::SetAttr(args) => commands::set_attr::run(&ctx, &args),
        Command::UnsetAttr(args) => commands::unset_attr::run(&ctx, &args),
        Command::Show(args) => commands::show::run(&ctx, &args),
        Command::Patch(args) => commands::patch::run(&ctx, &args),
        Command::Generate(_) | Command::Sandbox(_) => unreachable!("handled above"),
    }
}

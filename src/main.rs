//! ims-patch: parse the command line, run the command, report errors on
//! stderr and exit with the documented code.

mod cli;
mod client;
mod commands;
mod config;
mod error;
mod output;
mod patch;
mod sandbox;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command};
use crate::commands::Context;
use crate::config::{Settings, Source};
use crate::error::Result;
use crate::output::Style;

fn main() {
    // Shell completion requests (IMS_PATCH_COMPLETE=bash ims-patch -- ...)
    // end here.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(commands::generate::COMPLETE_VAR)
        .bin("ims-patch")
        .completer("ims-patch")
        .complete();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let code = match run(cli, &matches) {
        Ok(()) => 0,
        Err(e) if e.broken_pipe => 0,
        Err(e) => {
            eprintln!("ims-patch: error: {}", e.message);
            for hint in &e.hints {
                eprintln!("hint: {hint}");
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli, matches: &ArgMatches) -> Result<()> {
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

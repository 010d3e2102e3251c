//! The ims-patch library: command-line definitions, settings, the HTTP
//! client and its wire types, the patch model, the commands (which return
//! outcomes) and the printing of those outcomes. `src/main.rs` is a thin
//! wrapper around [`run`]. See ARCHITECTURE.md.

pub mod aksk;
pub mod auth;
pub mod batch;
pub mod cli;
pub mod client;
pub mod commands;
pub mod complete;
pub mod endpoint;
pub mod error;
pub mod helper_command;
pub mod logger;
pub mod output;
pub mod patch;
pub mod present;
pub mod sanitize;
pub mod secret;
pub mod settings;
pub mod source;
pub mod wire;

use std::io::Write;

use clap::parser::ValueSource;
use clap::ArgMatches;

use crate::cli::{Cli, Command};
use crate::client::Client;
use crate::commands::{Outcome, RunSettings};
use crate::error::{Error, Result};
use crate::output::Style;
use crate::settings::RunOptions;

/// The client options typed on the command line (in `cli::CLIENT_ARGS`
/// order), except `allowed`: for commands that take none (`sandbox`,
/// `generate`).
pub fn client_flags_given(matches: &ArgMatches, allowed: &[&str]) -> Vec<&'static str> {
    cli::client_args()
        .into_iter()
        .filter(|(id, _)| !allowed.contains(id))
        .filter(|(id, _)| {
            let mut level = Some(matches);
            while let Some(m) = level {
                let typed = m.try_get_raw(id).ok().flatten().is_some()
                    && m.value_source(id) == Some(ValueSource::CommandLine);
                if typed {
                    return true;
                }
                level = m.subcommand().map(|(_, sub)| sub);
            }
            false
        })
        .map(|(_, flag)| flag)
        .collect()
}

/// Refuses client options typed for a command that takes none of them
/// (`allowed` are those it does take).
fn refuse_client_flags(matches: &ArgMatches, command: &str, allowed: &[&str]) -> Result<()> {
    let given = client_flags_given(matches, allowed);
    if given.is_empty() {
        return Ok(());
    }
    let what = if given.len() == 1 {
        "is not an option"
    } else {
        "are not options"
    };
    Err(Error::usage(format!(
        "{} {what} of 'ims-patch {command}'",
        given.join(", ")
    ))
    .hint("these options are for the commands that talk to an image service"))
}

/// Runs one parsed command line; `matches` tells where each value came
/// from. Returns the exit status of a run that did not fail as a whole (a
/// batch reports the failures of single images in it).
pub fn run(cli: Cli, matches: &ArgMatches) -> Result<i32> {
    let command = match cli.command {
        Command::Generate(args) => {
            refuse_client_flags(matches, "generate", &[])?;
            return commands::generate::run(&args).map(|()| 0);
        }
        Command::Sandbox(args) => {
            // Only a --token typed for the sandbox guards it: IMS_PATCH_TOKEN
            // is the client's setting (and clap no longer reads it).
            refuse_client_flags(matches, "sandbox", &["token"])?;
            let token = match settings::env::flags(matches).remove("token") {
                None => None,
                Some(t) => Some(
                    t.into_string()
                        .map_err(|_| Error::usage("the token (from --token) is not UTF-8 text"))?,
                ),
            };
            // clap reads `sandbox --` as no COMMAND at all; a `--` typed
            // with nothing after it is a command forgotten, not a wish
            // for a server that runs until Ctrl-C.
            if args.command.is_empty() && std::env::args_os().last().is_some_and(|a| a == "--") {
                return Err(Error::usage("'--' is not followed by a command")
                    .hint("ims-patch sandbox -- COMMAND [ARGS...]: runs COMMAND against a fresh sandbox; without '--' the sandbox runs until Ctrl-C"));
            }
            if !args.command.is_empty() {
                let port_given = matches
                    .subcommand_matches("sandbox")
                    .and_then(|m| m.value_source("port"))
                    == Some(ValueSource::CommandLine);
                return commands::sandbox::run_command(&args, token, port_given);
            }
            return commands::sandbox::run(&args, token).map(|()| 0);
        }
        other => other,
    };
    let g = cli.global;
    logger::init(g.verbose);
    let (mut connection, mut options) =
        settings::env::from_process(matches, g.fields, g.quiet, g.dry_run, g.verbose)?;
    options.diff = command.diff();
    if options.diff && command.is_batch() {
        return Err(Error::usage(
            "--diff shows one image's change; it cannot be used with --images-from or --where",
        )
        .hint(
            "try it on one image first, or use --dry-run to see the PATCH each image would get",
        ));
    }
    if let settings::CredentialSource::Keystone(login) = &mut connection.credential {
        login.show_login = options.dry_run && !options.verbose;
    }
    if let Command::Auth(args) = &command {
        return commands::auth::run(connection, &options, args).map(|()| 0);
    }
    let mut client = Client::new(connection)?;
    client.set_retry(options.batch.retry);
    if let Some(code) = batch::command::dispatch(&client, &command, &options) {
        return code;
    }
    let run = RunSettings {
        patch_format: options.patch_format,
        dry_run: options.dry_run,
        read_first: options.diff,
    };
    if options.diff {
        note(
            &options,
            if options.dry_run {
                "--diff: reading the image first; --dry-run sends no PATCH"
            } else {
                "--diff: reading the image first, so this edit takes two requests (a read, then the PATCH)"
            },
        );
    }
    let outcome = match batch::command::undoable(&client, &command, &options) {
        Some(outcome) => outcome?,
        None => single(&client, run, command)?,
    };
    print_outcome(&client, &outcome, &options).map(|()| 0)
}

/// Runs a single-image command.
fn single(client: &Client, run: RunSettings, command: Command) -> Result<Outcome> {
    match command {
        Command::Rename(args) => commands::rename::run(client, run, &args),
        Command::Describe(args) => commands::describe::run(client, run, &args),
        Command::SetAttr(args) => commands::set_attr::run(client, run, &args),
        Command::UnsetAttr(args) => commands::unset_attr::run(client, run, &args),
        Command::Show(args) => commands::show::run(client, run, &args),
        Command::Patch(args) => commands::patch::run(client, run, &args),
        Command::Generate(_)
        | Command::Sandbox(_)
        | Command::Auth(_)
        | Command::List(_)
        | Command::Apply(_) => {
            unreachable!("handled above")
        }
    }
}

/// A status line on stderr, unless `--quiet`.
fn note(options: &RunOptions, text: &str) {
    if !options.quiet {
        let _ = writeln!(std::io::stderr().lock(), "ims-patch: {text}");
    }
}

/// Prints what a command did: the planned request (`--dry-run`), the
/// notes on stderr, the image on stdout.
pub fn print_outcome(client: &Client, outcome: &Outcome, options: &RunOptions) -> Result<()> {
    if options.diff {
        return print_diff(outcome, options);
    }
    if let Some(request) = &outcome.planned {
        let mut out = std::io::stdout().lock();
        out.write_all(client.render(request)?.as_bytes())?;
        return out.flush().map_err(Error::from);
    }
    let id = outcome.id.as_deref().unwrap_or("?");
    for key in &outcome.skipped {
        note(
            options,
            &format!("'{key}' is not set on image {id}; skipped"),
        );
    }
    if outcome.unchanged {
        note(options, "nothing to change; no request sent");
    }
    if let Some(image) = &outcome.image {
        let style = Style {
            format: options.output,
            fields: options.fields.clone(),
            quiet: options.quiet,
            changes: (!outcome.ops.is_empty())
                .then(|| present::changes(&outcome.ops, &image.value)),
        };
        output::print_image(&image.value, &image.raw, &style)?;
    }
    Ok(())
}

/// `--diff`: the attributes the edit touched, before → after; with
/// `--dry-run`, as the edit would leave them (nothing was sent).
fn print_diff(outcome: &Outcome, options: &RunOptions) -> Result<()> {
    for key in &outcome.skipped {
        note(options, &format!("'{key}' is not set; skipped"));
    }
    if outcome.unchanged {
        note(options, "nothing to change; no request sent");
    }
    let Some(before) = outcome.before.as_ref().or(outcome.image.as_ref()) else {
        return Ok(());
    };
    let after = match (&outcome.planned, &outcome.image) {
        (None, Some(image)) if !outcome.unchanged => image.value.clone(),
        _ => present::apply(&before.value, &outcome.ops),
    };
    if outcome.planned.is_some() {
        note(
            options,
            "--dry-run: nothing was sent; the edit would change:",
        );
    }
    if options.quiet {
        return Ok(());
    }
    let entries = present::diff(&before.value, &after, &outcome.ops);
    let stdout = std::io::stdout();
    let terminal = std::io::IsTerminal::is_terminal(&stdout);
    let mut out = stdout.lock();
    if options.output == output::OutputFormat::Json {
        serde_json::to_writer_pretty(&mut out, &present::diff_json(&entries))
            .map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        let text = present::diff_text(&entries);
        if terminal {
            out.write_all(sanitize::escape_keep_newlines(&text).as_bytes())?;
        } else {
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush().map_err(Error::from)
}

//! ims-patch: parse the command line, run the command, report errors on
//! stderr and exit with the documented code.

use std::io::Write;

use clap::{CommandFactory, FromArgMatches};

use ims_patch::cli::Cli;
use ims_patch::commands;
use ims_patch::sanitize::escape_keep_newlines as escape;

fn main() {
    // Shell completion requests (IMS_PATCH_COMPLETE=bash ims-patch -- ...)
    // end here.
    clap_complete::CompleteEnv::with_factory(ims_patch::complete::command)
        .var(commands::generate::COMPLETE_VAR)
        .bin("ims-patch")
        .completer("ims-patch")
        .complete();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    ims_patch::logger::init(false);
    let code = match ims_patch::run(cli, &matches) {
        Ok(code) => code,
        Err(e) if e.broken_pipe => 0,
        Err(e) => {
            // A closed stderr must not turn into a panic: the exit code
            // still tells. Messages may quote server text: control and
            // bidi characters never reach the terminal raw.
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "ims-patch: error: {}", escape(&e.message));
            for hint in &e.hints {
                let _ = writeln!(err, "hint: {}", escape(hint));
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}

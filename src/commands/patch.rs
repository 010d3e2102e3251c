//! `patch IMAGE [--file FILE]`: an op list in the v2.1 form, checked locally
//! and sent in the chosen format.

use std::io::{IsTerminal, Read};
use std::path::Path;

use super::{run_edit, Edit, Outcome, RunSettings};
use crate::cli::PatchArgs;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::patch::parse_op_list;

/// Reads FILE, or standard input for `-`.
pub(crate) fn read_input(file: &Path) -> Result<(String, String)> {
    if file == Path::new("-") {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprintln!("ims-patch: reading the op list from standard input (end it with Ctrl-D)");
        }
        let mut text = String::new();
        stdin.lock().read_to_string(&mut text).map_err(|e| {
            Error::usage(format!("cannot read the op list from standard input: {e}"))
        })?;
        return Ok((text, "standard input".into()));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::usage(format!("cannot read op list '{}': {e}", file.display())))?;
    Ok((text, format!("'{}'", file.display())))
}

pub fn edit(text: &str, origin: &str) -> Result<Edit> {
    let ops = parse_op_list(text).map_err(|e| {
        Error::usage(format!("invalid op list in {origin}: {e}")).hint(
            "write [{\"op\": \"add\"|\"remove\"|\"replace\", \"path\": \"/key\", \"value\": ...}, ...]",
        )
    })?;
    Ok(Edit::new(ops))
}

pub fn run(client: &Client, settings: RunSettings, args: &PatchArgs) -> Result<Outcome> {
    let (text, origin) = read_input(&args.file)?;
    run_edit(
        client,
        settings,
        args.image.as_deref().unwrap_or_default(),
        &edit(&text, &origin)?,
    )
}

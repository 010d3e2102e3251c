//! The impure edge of settings: the flags as clap read them, the process
//! environment, and the config file on disk, handed to the pure resolution.

use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::ArgMatches;

use super::resolve::{config_path, resolve_layers, Flags};
use super::table::SETTINGS;
use super::{connection, file, run_options, ConnectionSettings, RunOptions};
use crate::error::Result;

/// The process environment, as resolution looks it up.
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The table settings given on the command line, by name; a global flag
/// may sit before or after the subcommand, so every level is searched.
pub fn flags(matches: &ArgMatches) -> Flags {
    let mut flags = Flags::new();
    for setting in SETTINGS.iter().filter(|s| s.flag.is_some()) {
        let mut level = Some(matches);
        while let Some(m) = level {
            let given = m
                .try_get_raw(setting.name)
                .ok()
                .flatten()
                .filter(|_| m.value_source(setting.name) == Some(ValueSource::CommandLine));
            if let Some(mut values) = given {
                let value = match setting.flag {
                    // A switch has no value: given means on.
                    Some((_, None)) => OsString::from("true"),
                    _ => values.next().map(OsString::from).unwrap_or_default(),
                };
                flags.insert(setting.name, value);
                break;
            }
            level = m.subcommand().map(|(_, sub)| sub);
        }
    }
    flags
}

/// Resolves the settings of this process: its flags, its environment and
/// the config file they point to.
pub fn from_process(
    matches: &ArgMatches,
    fields: Vec<String>,
    quiet: bool,
    dry_run: bool,
    verbose: bool,
) -> Result<(ConnectionSettings, RunOptions)> {
    let flags = flags(matches);
    let env = process_env;
    let (path, explicit) = config_path(&flags, &env, file::default_path())?;
    let file = file::load(&path, explicit.as_ref())?.unwrap_or_else(|| file::ConfigFile {
        path,
        ..Default::default()
    });
    // AK/SK from clouds.yaml (OS_CLOUD) or the OS_* variables.
    let layers =
        super::aksk::process_layers(&|name| process_env(name).and_then(|v| v.into_string().ok()))?;
    let resolved = resolve_layers(&flags, &env, &file, &layers)?;
    Ok((
        connection(&resolved)?,
        run_options(&resolved, fields, quiet, dry_run, verbose),
    ))
}

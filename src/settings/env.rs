//! The impure edge of settings: the flags as clap read them, the process
//! environment, and the config file on disk, handed to the pure resolution.

use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::ArgMatches;

use super::resolve::{config_path, resolve, resolve_layers, Flags, Resolved};
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
    let resolved = resolved_from_process(matches)?;
    Ok((
        connection(&resolved)?,
        run_options(&resolved, fields, quiet, dry_run, verbose),
    ))
}

/// The resolved table of this process (flags, environment, config file,
/// clouds.yaml cloud), for callers that read settings beyond the
/// connection and run options (the completion cache reads `cache_dir`).
pub fn resolved_from_process(matches: &ArgMatches) -> Result<Resolved> {
    let flags = flags(matches);
    let env = process_env;
    let (path, explicit) = config_path(&flags, &env, file::default_path())?;
    let file = file::load(&path, explicit.as_ref())?.unwrap_or_else(|| file::ConfigFile {
        path,
        ..Default::default()
    });
    let resolved = resolve(&flags, &env, &file)?;
    Ok(match with_cloud(&resolved, &flags, &env, &file)? {
        Some(r) => r,
        None => resolved,
    })
}

/// The settings again with the selected clouds.yaml cloud (`--os-cloud`,
/// `OS_CLOUD`, profile `cloud`) as layers after the profile; `None` when no
/// cloud is selected. The region given by flag, variable or profile is the
/// one a vendor profile's `auth_url` is made for. Warnings about the files
/// (a password readable by others) go to stderr.
fn with_cloud(
    resolved: &Resolved,
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<OsString>,
    file: &file::ConfigFile,
) -> Result<Option<Resolved>> {
    let Some(cloud) = resolved.text("os_cloud") else {
        return Ok(None);
    };
    let text_env = |name: &str| env(name).and_then(|v| v.into_string().ok());
    let cwd = std::env::current_dir().unwrap_or_default();
    let home = dirs::home_dir();
    let files = crate::auth::clouds::CloudFiles::discover(
        &text_env,
        &cwd,
        home.as_deref(),
        &crate::auth::clouds::RealFs,
    )?;
    let config = files
        .cloud_in_region(&cloud.value, resolved.text("os_region_name"))
        .map_err(|e| {
            let source = cloud.source.to_string();
            e.hint(format!("the cloud was selected {source}"))
        })?;
    for warning in &config.warnings {
        log::warn!("{warning}");
    }
    let mut layers = super::login::cloud_layers(&config);
    // The cloud's AK/SK keys (ak/sk, access_key/secret_key, security_token).
    layers.extend(super::aksk::cloud_layers(&config));
    resolve_layers(flags, env, file, &layers).map(Some)
}

//! `generate completions SHELL` and `generate man --out-dir DIR`: the shell
//! completion scripts and man pages, both made from the clap definition.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::env::Shells;

use crate::cli::{Cli, GenerateArgs, GenerateWhat};
use crate::error::{Error, Result};

pub fn run(args: &GenerateArgs) -> Result<()> {
    match &args.what {
        GenerateWhat::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            out.write_all(&completion_script(*shell)?)?;
            out.flush().map_err(Error::from)
        }
        GenerateWhat::Man { out_dir } => write_man_pages(out_dir),
    }
}

/// The environment variable through which the completion scripts ask the
/// binary for candidates; specific to ims-patch so that no other program's
/// setting can turn a normal run into a completion request.
pub const COMPLETE_VAR: &str = "IMS_PATCH_COMPLETE";

/// The script that registers completion for `shell`. It asks the installed
/// `ims-patch` for the candidates (`IMS_PATCH_COMPLETE=SHELL ims-patch -- ...`), so
/// it also completes profile names from the config file.
pub fn completion_script(shell: clap_complete::Shell) -> Result<Vec<u8>> {
    let name = shell.to_string();
    let shells = Shells::builtins();
    let completer = shells
        .completer(&name)
        .ok_or_else(|| Error::usage(format!("no completion support for '{name}'")))?;
    let mut buf = Vec::new();
    completer.write_registration(
        COMPLETE_VAR,
        "ims-patch",
        "ims-patch",
        "ims-patch",
        &mut buf,
    )?;
    Ok(buf)
}

/// Escapes text for a roff line.
fn roff_text(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// The sections of the long help after the options ("Examples:",
/// "Environment:", "Exit status:", ...) as man page sections. Lines stay as
/// they are (examples and tables are aligned), except that the prose of the
/// configuration section is filled.
fn extra_sections(text: &str) -> String {
    let mut out = String::new();
    let mut fill_long_lines = false;
    for block in text.split("\n\n") {
        let mut lines = block.lines().peekable();
        let heading = lines
            .peek()
            .and_then(|first| first.strip_suffix(':'))
            .filter(|h| !h.starts_with(' '));
        match heading {
            Some(heading) => {
                fill_long_lines = heading == "Configuration";
                let title = if fill_long_lines {
                    "FILES".to_string()
                } else {
                    heading.to_uppercase()
                };
                out.push_str(&format!(".SH \"{title}\"\n"));
                lines.next();
            }
            None => out.push_str(".PP\n"),
        }
        out.push_str(".nf\n");
        for line in lines {
            if fill_long_lines && line.chars().count() > 80 {
                out.push_str(&format!(".fi\n{}\n.nf\n", roff_text(line.trim())));
            } else {
                out.push_str(&roff_text(line));
                out.push('\n');
            }
        }
        out.push_str(".fi\n");
    }
    out
}

/// A page: clap_mangen's title, name, synopsis, description and options,
/// then the long help after the options as sections of their own.
fn man_page(cmd: &clap::Command) -> Result<(String, Vec<u8>)> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut page)?;
    }
    if let Some(text) = cmd.get_after_long_help() {
        page.extend_from_slice(extra_sections(&text.to_string()).as_bytes());
    }
    man.render_version_section(&mut page)?;
    Ok((man.get_filename(), page))
}

/// Renders `ims-patch.1` and one page per visible subcommand.
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![man_page(&cmd)?];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push(man_page(sub)?);
    }
    Ok(pages)
}

fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::usage(format!("cannot create directory '{}': {e}", dir.display())))?;
    for (name, page) in man_pages()? {
        let path = dir.join(&name);
        std::fs::write(&path, page)
            .map_err(|e| Error::runtime(format!("cannot write '{}': {e}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_have_the_required_sections() {
        let pages = man_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"ims-patch.1"));
        assert!(names.contains(&"ims-patch-rename.1"));
        assert!(names.contains(&"ims-patch-set-attr.1"));
        assert!(!names.iter().any(|n| n.contains("generate")));
        let main = String::from_utf8(pages[0].1.clone()).unwrap();
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "\"EXIT STATUS\"",
            "\"ENVIRONMENT\"",
            "\"EXAMPLES\"",
        ] {
            assert!(main.contains(&format!(".SH {section}")), "{section}");
        }
        assert!(main.contains("IMS_PATCH_TOKEN"));
    }

    #[test]
    fn completion_scripts_name_the_fixed_binary() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::Elvish,
            clap_complete::Shell::PowerShell,
        ] {
            let script = String::from_utf8(completion_script(shell).unwrap()).unwrap();
            assert!(script.contains("ims-patch"), "{shell}");
            assert!(!script.contains("target/"), "{shell}");
        }
    }
}

//! The committed completions/ and man/ files are exactly what the binary
//! generates now; `IMS_PATCH_BLESS=1 cargo test --test main generated`
//! rewrites them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Ims, BIN};

const REFRESH: &str = "IMS_PATCH_BLESS=1 cargo test --test main generated";

const SHELLS: [(&str, &str); 5] = [
    ("bash", "ims-patch.bash"),
    ("zsh", "_ims-patch"),
    ("fish", "ims-patch.fish"),
    ("elvish", "ims-patch.elv"),
    ("powershell", "_ims-patch.ps1"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file the generator makes now, by path relative to the repository.
fn generate() -> BTreeMap<PathBuf, Vec<u8>> {
    generate_with(Path::new(BIN))
}

/// The same, made by the binary at `bin`.
fn generate_with(bin: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for (shell, name) in SHELLS {
        let out = Command::new(bin)
            .env_clear()
            .args(["generate", "completions", shell])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        files.insert(Path::new("completions").join(name), out.stdout);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .env_clear()
        .args(["generate", "man", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        files.insert(
            Path::new("man").join(entry.file_name()),
            std::fs::read(entry.path()).unwrap(),
        );
    }
    files
}

#[test]
fn committed_completions_and_man_pages_are_fresh() {
    let files = generate();
    if std::env::var_os("IMS_PATCH_BLESS").is_some() {
        for dir in ["completions", "man"] {
            let _ = std::fs::remove_dir_all(root().join(dir));
            std::fs::create_dir_all(root().join(dir)).unwrap();
        }
        for (path, bytes) in &files {
            std::fs::write(root().join(path), bytes).unwrap();
        }
        return;
    }
    let mut stale = Vec::new();
    for (path, bytes) in &files {
        if std::fs::read(root().join(path)).ok().as_ref() != Some(bytes) {
            stale.push(path.display().to_string());
        }
    }
    for dir in ["completions", "man"] {
        for entry in std::fs::read_dir(root().join(dir)).into_iter().flatten() {
            let path = Path::new(dir).join(entry.unwrap().file_name());
            if !files.contains_key(&path) {
                stale.push(format!("{} (no longer generated)", path.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated files differ from the committed ones: {}\nrefresh them with: {REFRESH}",
        stale.join(", ")
    );
}

#[test]
fn generated_output_does_not_depend_on_how_the_binary_is_called() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("renamed-binary");
    std::fs::copy(BIN, &copy).unwrap();
    let (a, b) = (generate(), generate_with(&copy));
    assert_eq!(a.len(), SHELLS.len() + 11, "{:?}", a.keys());
    assert_eq!(a, b);
    for (path, bytes) in &a {
        assert!(
            !String::from_utf8_lossy(bytes).contains("renamed-binary"),
            "{}",
            path.display()
        );
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A tool that CI installs: missing on CI is a failure, elsewhere a skip.
fn require(tool: &str) -> bool {
    if have(tool) {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{tool} is required on CI");
    eprintln!("skipped: {tool} is not installed");
    false
}

#[test]
fn bash_completes_subcommands_options_values_and_profiles() {
    if !require("bash") {
        return;
    }
    let ims = Ims::new().write_config(
        "[profiles.eu-de]\nendpoint = \"https://x\"\n[profiles.lab]\nendpoint = \"https://y\"\n",
    );
    let bin_dir = Path::new(BIN).parent().unwrap();
    let script = format!(
        r#"source '{}'
complete_line() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=(); _clap_complete_ims_patch ims-patch "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"; echo "${{COMPREPLY[*]}}"; }}
complete_line ims-patch re
complete_line ims-patch show --patch-f
complete_line ims-patch show -o ''
complete_line ims-patch --profile ''
"#,
        root().join("completions/ims-patch.bash").display()
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .env("HOME", &ims.home)
        .env("XDG_CONFIG_HOME", ims.home.join("config"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines[0].trim(), "rename");
    assert!(lines[1].contains("--patch-format"), "{text}");
    assert_eq!(lines[2].trim(), "table json value");
    assert_eq!(lines[3].trim(), "eu-de lab");
}

#[test]
fn man_pages_render_without_warnings() {
    if !require("groff") {
        return;
    }
    let files = generate();
    let dir = tempfile::tempdir().unwrap();
    for (path, bytes) in files.iter().filter(|(p, _)| p.starts_with("man")) {
        let file = dir.path().join(path.file_name().unwrap());
        std::fs::write(&file, bytes).unwrap();
        let out = Command::new("groff")
            .args(["-ww", "-z", "-man"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-P", "-cbou"])
        .arg(root().join("man/ims-patch.1"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "ENVIRONMENT",
    ] {
        assert!(
            text.lines().any(|l| l
                .trim_start_matches(|c: char| !c.is_alphabetic())
                .starts_with(section)),
            "{section} missing"
        );
    }
}

const TABLE_BEGIN: &str = "<!-- settings table: generated from src/settings/table.rs -->\n";
const TABLE_END: &str = "<!-- end of settings table -->\n";

#[test]
fn readme_configuration_table_matches_the_settings_table() {
    let path = root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(TABLE_BEGIN)
        .expect("README has the table's begin marker")
        + TABLE_BEGIN.len();
    let end = start
        + readme[start..]
            .find(TABLE_END)
            .expect("README has the table's end marker");
    let table = ims_patch::settings::table::readme_table();
    if std::env::var_os("IMS_PATCH_BLESS").is_some() {
        let fresh = format!("{}{table}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, fresh).unwrap();
        return;
    }
    assert_eq!(
        readme[start..end],
        table,
        "README.md's configuration table is stale; refresh it with: {REFRESH}"
    );
}

//! The crate boundary: the sandbox (`crates/sandbox`) is the independent oracle the tool is tested against, so it must never depend on the tool's crate or read its source.

use std::path::{Path, PathBuf};

fn sandbox_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/sandbox")
}

/// Every dependency name (and `package =` rename) and `path =` in a manifest.
fn dependencies(manifest: &toml::Table) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    let mut tables: Vec<&toml::Table> = Vec::new();
    for key in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(t) = manifest.get(key).and_then(toml::Value::as_table) {
            tables.push(t);
        }
    }
    // [target.'cfg(...)'.dependencies]
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for target in targets.values().filter_map(toml::Value::as_table) {
            for key in ["dependencies", "dev-dependencies", "build-dependencies"] {
                if let Some(t) = target.get(key).and_then(toml::Value::as_table) {
                    tables.push(t);
                }
            }
        }
    }
    for t in tables {
        for (name, spec) in t {
            out.push((name.clone(), spec.clone()));
        }
    }
    out
}

/// Why a manifest's dependencies break the boundary, if they do.
fn boundary_violations(manifest_text: &str) -> Vec<String> {
    let manifest: toml::Table = toml::from_str(manifest_text).expect("a valid Cargo.toml");
    let mut bad = Vec::new();
    for (name, spec) in dependencies(&manifest) {
        let package = spec
            .get("package")
            .and_then(toml::Value::as_str)
            .unwrap_or(&name)
            .to_string();
        if package == "ims-patch" || package == "ims_patch" {
            bad.push(format!("depends on the tool's crate as `{name}`"));
        }
        if let Some(path) = spec.get("path").and_then(toml::Value::as_str) {
            let normalised = path.trim_end_matches('/');
            if normalised == ".." || normalised == "../.." || normalised.ends_with("/src") {
                bad.push(format!(
                    "depends on `{name}` at path {path}, the tool's crate"
                ));
            }
        }
    }
    bad
}

#[test]
fn sandbox_manifest_never_depends_on_the_tool() {
    let text = std::fs::read_to_string(sandbox_dir().join("Cargo.toml")).unwrap();
    assert_eq!(boundary_violations(&text), Vec::<String>::new());
}

#[test]
fn the_boundary_check_catches_a_dependency_on_the_tool() {
    let base = "[package]\nname = \"ims-patch-sandbox\"\nversion = \"0.1.0\"\n";
    for deps in [
        "[dependencies]\nims-patch = { path = \"../..\" }\n",
        "[dependencies]\ntool = { package = \"ims-patch\", path = \"../../\" }\n",
        "[dev-dependencies]\nims_patch = \"0.1\"\n",
        "[target.'cfg(unix)'.dependencies]\nims-patch = { path = \"../..\" }\n",
    ] {
        assert!(
            !boundary_violations(&format!("{base}{deps}")).is_empty(),
            "not caught: {deps}"
        );
    }
    assert!(boundary_violations(&format!("{base}[dependencies]\nurl = \"2\"\n")).is_empty());
}

/// No source file of the sandbox names the tool's crate or pulls in its
/// files (`#[path]`, `include!`).
#[test]
fn sandbox_source_never_reaches_into_the_tool() {
    let mut stack = vec![sandbox_dir().join("src")];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            checked += 1;
            for needle in [
                "ims_patch::",
                "extern crate ims_patch",
                "../../src",
                "../../../src",
            ] {
                assert!(
                    !text.contains(needle),
                    "{} contains {needle:?}: the sandbox must not use the tool's code",
                    path.display()
                );
            }
        }
    }
    assert!(checked > 5, "found only {checked} source files");
}

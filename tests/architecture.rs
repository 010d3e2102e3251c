//! The architecture rules, checked on the source: the sandbox (`crates/sandbox`) is the independent oracle the tool is tested against, so it must never depend on the tool's crate or read its source; and the tool's top-level modules import each other without a cycle.

use std::collections::{BTreeMap, BTreeSet};
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

/// The top-level modules of the tool that `text` names as `crate::NAME`
/// (comment lines skipped).
fn crate_modules_named(text: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                named.insert(name);
            }
        }
    }
    named
}

/// A cycle of the module graph, if it has one.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

/// No top-level module of the tool imports one that imports it back
/// (ARCHITECTURE.md lists them from the bottom up).
#[test]
fn the_tools_modules_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges = BTreeMap::<String, BTreeSet<String>>::new();
    let mut stack = vec![src.clone()];
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
            let relative = path.strip_prefix(&src).unwrap();
            let top = relative
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let named = crate_modules_named(&text);
            edges
                .entry(top.clone())
                .or_default()
                .extend(named.into_iter().filter(|n| *n != top));
        }
    }
    assert!(edges.len() > 10, "found only {} modules", edges.len());
    assert_eq!(cycle(&edges), None);
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let mut edges = BTreeMap::<String, BTreeSet<String>>::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycle(&edges), None);
    edges.entry("c".into()).or_default().insert("a".into());
    assert_eq!(cycle(&edges).unwrap().len(), 4);
    assert_eq!(
        crate_modules_named("use crate::settings::x;\n// crate::client\nlet y = crate::error::E;"),
        ["error".to_string(), "settings".to_string()].into()
    );
}

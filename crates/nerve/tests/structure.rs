//! The shape of the source tree: no module imports a layer above it, and no source file grows
//! past 600 lines. These read the sources, so a change that breaks the layering fails here
//! with the offending line named.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The library's layers, bottom to top; a module may use its own layer and those below it.
const LAYERS: &[&[&str]] = &[
    &["error", "fsutil", "rng", "device", "firing"],
    &["kernels"],
    &["surrogate", "encode", "quant"],
    &["neurons"],
    &["layers"],
    &["loss", "metrics"],
    &["data", "text", "store"],
    &["models", "retina"],
    &["train", "snntorch_check"],
    &["hw"],
    &["viz"],
    &["serve"],
];

/// Longest source file allowed, in lines.
const MAX_LINES: usize = 600;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a file of `src/` belongs to (`None` for the crate root).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib").then_some(name)
}

/// The `crate::NAME` paths a line of code (not a comment) names.
fn crate_paths(line: &str) -> Vec<String> {
    let code = match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    };
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::X, b}` names each module of the group.
            let group = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(group.split(',').filter_map(|part| module_name(part.trim())));
        } else {
            found.extend(module_name(rest));
        }
    }
    found
}

/// The lower-case identifier `path` starts with: a module name.
fn module_name(path: &str) -> Option<String> {
    let name: String = path
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase())
        .then_some(name)
}

/// Every `crate::` use in the library that reaches a layer above the file's own, as
/// `file:line: module -> target`; modules missing from `LAYERS` are reported too.
fn upward_imports() -> Vec<String> {
    let src = workspace().join("crates/nerve/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let Some(own) = layer_of(&module) else {
            problems.push(format!(
                "{}: module `{module}` has no layer",
                file.display()
            ));
            continue;
        };
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for target in crate_paths(line) {
                match layer_of(&target) {
                    Some(layer) if layer > own => problems.push(format!(
                        "{}:{}: {module} -> {target}",
                        file.strip_prefix(&src).unwrap().display(),
                        n + 1
                    )),
                    Some(_) => {}
                    None if target == "Error" || target == "Result" => {}
                    None => problems.push(format!(
                        "{}:{}: `crate::{target}` is in no layer",
                        file.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    problems
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = workspace().join("crates/nerve/src");
    let mut missing = Vec::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if let Some(module) = module_of(&src, &path) {
            if layer_of(&module).is_none() {
                missing.push(module);
            }
        }
    }
    assert!(missing.is_empty(), "modules without a layer: {missing:?}");
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let problems = upward_imports();
    assert!(
        problems.is_empty(),
        "upward imports:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_import_scanner_sees_code_not_comments() {
    assert_eq!(crate_paths("use crate::store::checkpoint;"), ["store"]);
    assert_eq!(
        crate_paths("    let x = crate::kernels::enabled() && crate::device::is_flex(d);"),
        ["kernels", "device"]
    );
    assert!(crate_paths("//! See [`crate::neurons::Leaky`].").is_empty());
    assert!(crate_paths("let a = 1; // crate::train").is_empty());
    assert!(crate_paths("use nerve_crate::x;").is_empty());
    assert_eq!(
        crate_paths("use crate::{data::Events, viz::gif, Error};"),
        ["data", "viz"]
    );
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let root = workspace();
    let mut files = Vec::new();
    for dir in ["crates", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut long = BTreeMap::new();
    for file in files {
        let lines = fs::read_to_string(&file).unwrap().lines().count();
        if lines > MAX_LINES {
            long.insert(
                file.strip_prefix(&root).unwrap().display().to_string(),
                lines,
            );
        }
    }
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
}

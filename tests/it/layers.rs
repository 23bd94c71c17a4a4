//! The layering rule of the README's Architecture section, checked against the code: every
//! top-level module of `src/` sits in one layer of the README's table, and imports (`crate::x`
//! paths in code, comments ignored) only modules of lower layers. A new module must be placed
//! in the table; an import that points up fails here, in CI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::harness::repo;

/// The heading above the table in README.md.
const HEADING: &str = "### Layers";

/// Module → layer, from the README table: rows `| N | `a`, `b` | … |`.
fn layers(readme: &str) -> BTreeMap<String, u32> {
    let start = readme
        .find(HEADING)
        .unwrap_or_else(|| panic!("README.md has no `{HEADING}` section"));
    let mut out = BTreeMap::new();
    for line in readme[start + HEADING.len()..].lines() {
        let line = line.trim();
        if line.starts_with('#') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let Ok(layer) = cells[1].parse::<u32>() else {
            continue;
        };
        for m in cells[2].split(',') {
            let m = m.trim().trim_matches('`');
            if !m.is_empty() {
                out.insert(m.to_string(), layer);
            }
        }
    }
    out
}

/// The top-level modules of `src/` (files and directories), without `lib.rs` and `main.rs`.
fn modules(src: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(src).expect("src/ reads") {
        let p = e.expect("entry").path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if p.is_dir()
            || (p.extension().is_some_and(|x| x == "rs") && name != "lib" && name != "main")
        {
            out.push((name, p));
        }
    }
    out.sort();
    out
}

fn rust_files(p: &Path) -> Vec<PathBuf> {
    if p.is_file() {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).expect("directory reads") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// `crate::<module>` paths in code (line comments and doc comments skipped), with their lines.
fn imports(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = match line.find("//") {
            Some(c) => &line[..c],
            None => line,
        };
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `gslbd_fuzz::` and the like end in `crate::` only by accident of spelling.
            let before = rest[..at].chars().last();
            if !name.is_empty() && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.push((i + 1, name));
            }
            rest = after;
        }
    }
    out
}

#[test]
fn every_module_imports_only_from_layers_below_it() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md reads");
    let table = layers(&readme);
    let mut problems = Vec::new();
    let src = repo().join("src");
    for (module, path) in modules(&src) {
        let Some(&mine) = table.get(&module) else {
            problems.push(format!(
                "src/{module} is in no layer of README.md `{HEADING}`"
            ));
            continue;
        };
        for file in rust_files(&path) {
            let text = std::fs::read_to_string(&file).expect("source reads");
            for (line, to) in imports(&text) {
                if to == module {
                    continue;
                }
                match table.get(&to) {
                    Some(&theirs) if theirs < mine => {}
                    Some(&theirs) => problems.push(format!(
                        "{}:{line}: {module} (layer {mine}) imports {to} (layer {theirs})",
                        file.strip_prefix(repo()).unwrap_or(&file).display()
                    )),
                    None => problems.push(format!(
                        "{}:{line}: {module} imports {to}, which is in no layer",
                        file.strip_prefix(repo()).unwrap_or(&file).display()
                    )),
                }
            }
        }
    }
    for m in table.keys() {
        if !modules(&src).iter().any(|(n, _)| n == m) {
            problems.push(format!(
                "README.md `{HEADING}` lists {m}, which src/ does not have"
            ));
        }
    }
    assert!(problems.is_empty(), "layering:\n{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_upward_imports_and_skips_comments() {
    let found = imports(
        "use crate::zone::Zone;\n// use crate::dns::x;\n/// [`crate::config`]\nlet x = crate::geo::canonical(ip); // crate::admin\nuse gslbd_fuzz_crate::x;\n",
    );
    assert_eq!(found, [(1, "zone".to_string()), (4, "geo".to_string())]);
    let t = layers(
        "### Layers\n| layer | modules | what |\n|---|---|---|\n| 0 | `a`, `b` | x |\n| 1 | `c` | y |\n## Next\n| 2 | `d` | z |\n",
    );
    assert_eq!(t.len(), 3);
    assert_eq!(t["c"], 1);
}

//! Every saved fuzz input replayed through the real entry points, without libFuzzer.
//!
//! The fuzz targets' harness (`fuzz/src/lib.rs`) is compiled into this test as a module, so the
//! replay calls exactly what the targets call and checks exactly what they check:
//!
//! - `fuzz/corpus/<target>/`: the minimized corpus of each target (`request`, `zonefile`, `masterfile`,
//!   `serverconfig`, `geocsv`); every input must run without a panic or a broken invariant.
//! - `fuzz/crashers/<target>/`: inputs with which fuzzing found a bug; they fail until the bug is
//!   fixed, and stay as regression tests afterwards.
//!
//! One handler and one runtime serve every request input; the whole replay takes a few seconds.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/lib.rs"]
mod gslbd_fuzz;

type Target = fn(&[u8]);

/// Each target with the harness function it calls.
const TARGETS: [(&str, Target); 5] = [
    ("request", gslbd_fuzz::request),
    ("zonefile", gslbd_fuzz::zonefile),
    ("masterfile", gslbd_fuzz::masterfile),
    ("serverconfig", gslbd_fuzz::serverconfig),
    ("geocsv", gslbd_fuzz::geocsv),
];

fn fuzz_dir() -> PathBuf {
    gslbd_fuzz::repo_dir().join("fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Replays every file of `dir` through `run`; returns the files that panicked, with the message.
fn replay(dir: &Path, run: Target) -> (usize, Vec<String>) {
    let files = inputs(dir);
    let mut failed = Vec::new();
    for file in &files {
        let data = match std::fs::read(file) {
            Ok(d) => d,
            // A fuzzer running on the corpus replaces files as it goes.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", file.display()),
        };
        if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {msg}", file.display()));
        }
    }
    (files.len(), failed)
}

fn corpus(target: &str) {
    let (_, run) = TARGETS
        .iter()
        .find(|t| t.0 == target)
        .expect("a known target");
    let dir = fuzz_dir().join("corpus").join(target);
    let (n, failed) = replay(&dir, *run);
    assert!(n > 0, "{} holds no inputs", dir.display());
    assert!(
        failed.is_empty(),
        "{} of {n} inputs of {} fail:\n{}",
        failed.len(),
        dir.display(),
        failed.join("\n")
    );
}

#[test]
fn corpus_request() {
    corpus("request");
}

#[test]
fn corpus_zonefile() {
    corpus("zonefile");
}

#[test]
fn corpus_masterfile() {
    corpus("masterfile");
}

#[test]
fn corpus_serverconfig() {
    corpus("serverconfig");
}

#[test]
fn corpus_geocsv() {
    corpus("geocsv");
}

/// Bugs found by fuzzing: fails, naming each input and its panic, while any is not fixed.
#[test]
fn crashers_are_fixed() {
    let mut failed = Vec::new();
    for (target, run) in TARGETS {
        failed.extend(replay(&fuzz_dir().join("crashers").join(target), run).1);
    }
    assert!(
        failed.is_empty(),
        "{} crasher(s) still fail:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

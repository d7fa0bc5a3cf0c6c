//! Locating the shared capture corpus (`shared/corpus/attacks` and
//! `shared/corpus/flows`, next to the project checkout; see BRIEF "Test
//! data"). Shared by the tests and the benches of several crates, which
//! include this file with `#[path]`.
//!
//! Looked up, in order: `$LEVEE_CORPUS` (a directory holding `attacks/` and
//! `flows/`), then `shared/corpus` and `../shared/corpus` beside each ancestor
//! of the including crate, so it works from `/work/main/crates/levee-packet`
//! and from other layouts. Missing corpus: a test failure under CI
//! (`CI=true`), else a loud skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// One directory of the corpus (`attacks` or `flows`), if found.
pub fn corpus_dir(sub: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LEVEE_CORPUS") {
        let p = Path::new(&dir).join(sub);
        return p.is_dir().then_some(p);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for base in manifest.ancestors() {
        for rel in ["shared/corpus", "../shared/corpus"] {
            let p = base.join(rel).join(sub);
            if p.is_dir() {
                return Some(p.canonicalize().unwrap_or(p));
            }
        }
    }
    None
}

/// The `attacks/` directory of the corpus, if found.
pub fn attacks_dir() -> Option<PathBuf> {
    corpus_dir("attacks")
}

/// The `flows/` directory of the corpus (flow export captures), if found.
pub fn flows_dir() -> Option<PathBuf> {
    corpus_dir("flows")
}

/// `None` after a loud message outside CI; panics under CI, where the
/// corpus must exist.
fn missing(sub: &str, what: &str) -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "capture corpus not found (looked for shared/corpus/{sub} above {}; set LEVEE_CORPUS): required under CI",
        env!("CARGO_MANIFEST_DIR")
    );
    eprintln!(
        "SKIPPED {what}: capture corpus not found (shared/corpus/{sub} above {}; set LEVEE_CORPUS to its directory)",
        env!("CARGO_MANIFEST_DIR")
    );
    None
}

/// The path of one attack capture, or `None` (after saying so loudly) when the
/// corpus is absent outside CI. Panics under CI, where the corpus must exist.
pub fn attack(name: &str) -> Option<PathBuf> {
    match attacks_dir() {
        Some(dir) => {
            let p = dir.join(name);
            assert!(p.is_file(), "corpus capture {} is missing", p.display());
            Some(p)
        }
        None => missing("attacks", name),
    }
}

/// Every capture (`*.pcap`, `*.pcapng`) of `flows/`, sorted by name, or
/// `None` (loudly) when the corpus is absent outside CI.
pub fn flow_captures() -> Option<Vec<PathBuf>> {
    let Some(dir) = flows_dir() else {
        return missing("flows", "flow captures").map(|p| vec![p]);
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no captures in {}", dir.display());
    Some(v)
}

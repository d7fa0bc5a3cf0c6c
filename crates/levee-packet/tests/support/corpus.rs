//! Locating the shared capture corpus (`shared/corpus/attacks`, next to the
//! project checkout; see BRIEF "Test data"). Shared by the tests and the bench.
//!
//! Looked up, in order: `$LEVEE_CORPUS` (a directory holding `attacks/`), then
//! `shared/corpus` and `../shared/corpus` beside each ancestor of this crate,
//! so it works from `/work/main/crates/levee-packet` and from other layouts.
//! Missing corpus: a test failure under CI (`CI=true`), else a loud skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The `attacks/` directory of the corpus, if found.
pub fn attacks_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LEVEE_CORPUS") {
        let p = Path::new(&dir).join("attacks");
        return p.is_dir().then_some(p);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for base in manifest.ancestors() {
        for rel in ["shared/corpus/attacks", "../shared/corpus/attacks"] {
            let p = base.join(rel);
            if p.is_dir() {
                return Some(p.canonicalize().unwrap_or(p));
            }
        }
    }
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
        None => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "capture corpus not found (looked for shared/corpus/attacks above {}; set LEVEE_CORPUS): required under CI",
                env!("CARGO_MANIFEST_DIR")
            );
            eprintln!(
                "SKIPPED {name}: capture corpus not found (shared/corpus/attacks above {}; set LEVEE_CORPUS to its directory)",
                env!("CARGO_MANIFEST_DIR")
            );
            None
        }
    }
}

//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod fuzz;

use std::path::{Path, PathBuf};

/// The project's `shared/` folder (beside the clone), or `None` with a printed reason.
pub fn shared_dir() -> Option<PathBuf> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for dir in here.ancestors() {
        let candidate = dir.join("shared");
        if candidate.join("reference").is_dir() || candidate.join("data").is_dir() {
            return Some(candidate);
        }
    }
    eprintln!("skipping: no shared/ folder found above {}", here.display());
    None
}

/// `shared/data/events/` (the event-camera samples), or `None` with a printed reason.
pub fn event_samples() -> Option<PathBuf> {
    let dir = shared_dir()?.join("data/events");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} not found", dir.display());
        None
    }
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Burn's device random generator is process-global, so a test that seeds it and compares runs
/// (or asserts on what a seeded run learns) must not interleave with any other test drawing from
/// it. Every such test in a binary holds this turn for its whole body.
pub fn rng_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

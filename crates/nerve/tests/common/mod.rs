//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

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

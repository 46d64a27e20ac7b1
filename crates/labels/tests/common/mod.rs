//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tracehound_labels::{LabelStore, BUNDLED_FILES};

/// A store in a fresh temporary directory (kept alive by the returned guard).
pub fn fresh_store() -> (tempfile::TempDir, LabelStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LabelStore::open(&dir.path().join("labels.sqlite")).expect("open store");
    (dir, store)
}

/// The bytes of a bundled file of `data/labels/` (embedded in the crate).
pub fn bundled(path: &str) -> &'static [u8] {
    BUNDLED_FILES.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("{path} is not bundled")).bytes
}

/// Writes a bundled file into `dir` under its own file name and returns the path.
pub fn bundled_file_in(dir: &Path, path: &str) -> PathBuf {
    let name = path.rsplit('/').next().expect("file name");
    let target = dir.join(name);
    std::fs::write(&target, bundled(path)).expect("write bundled copy");
    target
}

/// A file of `tests/data/`.
pub fn test_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

//! Helpers shared by the integration tests that include this module
//! (`mod common;`): a fresh scratch directory and the shipped text.

use std::path::PathBuf;

/// An empty directory of its own under the system temp dir.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("onebit-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A file of the shipped text: `$ONEBIT_DATA/REL` when set, else
/// `../shared/data/REL` beside the checkout (the project's layout).
pub fn shared(rel: &str) -> PathBuf {
    let root = std::env::var_os("ONEBIT_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let p = root.join(rel);
    assert!(
        p.is_file(),
        "{}: not found. These tests read the shipped text from ../shared/data beside the checkout \
         (or from $ONEBIT_DATA); see README, Data.",
        p.display()
    );
    p
}

//! Shared pieces of the fuzz targets (docs/fuzzing.md).

pub mod link;

/// A directory of this process's own under the system temporary directory,
/// for targets whose reader takes a path (made once, reused every run).
pub fn scratch_dir(target: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("onebit-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// Split an input made of two files at its first NUL byte (JSON never holds
/// one, so a config.json comes first and the binary file after it).
pub fn split_at_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

//! Helpers shared by the tests of the specification modules.

use std::fs;
use std::path::{Path, PathBuf};

use super::ArchiveSpec;

pub(super) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/spec")
        .join(name)
}

/// Writes `files` (name, text) into a new temporary directory.
pub(super) fn spec_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

pub(super) const MINIMAL: &str = "[Content]\npath = /data\ninclude-files = a\nexclude-files =\n";

/// Loads `text` as `home.aa` and returns the error message with the directory removed.
pub(super) fn load_error(text: &str) -> String {
    let dir = spec_dir(&[("home.aa", text)]);
    let file = dir.path().join("home.aa");
    let e = ArchiveSpec::load(&file).unwrap_err();
    e.to_string()
        .replace(&format!("{}/", dir.path().display()), "")
}

pub(super) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

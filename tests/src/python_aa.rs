//! The reference Python `aa` of the differential tests, and whether a missing prerequisite
//! such as it may skip a test (outside CI) or must fail it (under CI).

use std::path::PathBuf;

use crate::{target_dir, workspace_dir};

/// The Python AutoArchive 2.0.6 `aa`, the reference implementation: `$AA_PYTHON_AA`, else
/// `$AA_PYTHON_VENV/bin/aa`, else `<target>/python-aa/bin/aa`, else
/// `<workspace>/target/python-aa/bin/aa` (where `tests/setup-python-aa.sh`, run by
/// `make python-aa`, installs it). `None` when none of them is a file.
pub fn python_aa() -> Option<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let mut candidates = Vec::new();
    if let Some(bin) = from_env("AA_PYTHON_AA") {
        candidates.push(PathBuf::from(bin));
    }
    if let Some(venv) = from_env("AA_PYTHON_VENV") {
        candidates.push(PathBuf::from(venv).join("bin/aa"));
    }
    candidates.push(target_dir().join("python-aa/bin/aa"));
    candidates.push(workspace_dir().join("target/python-aa/bin/aa"));
    candidates.into_iter().find(|bin| bin.is_file())
}

/// Whether the tests run under continuous integration (`$CI` set and not `false`/`0`), where a
/// missing prerequisite must fail the run instead of skipping tests.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

//! Locating (or building) the provider libraries the tests run the suite against, and a fake
//! compressor on `PATH`.
//!
//! The end-to-end test crate `aa-tests` depends on this crate (for the tree records and GNU tar
//! wrappers), so these tests cannot depend on it back: they compile its `locate` module in.

#![allow(dead_code)] // each test binary uses a different part

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use aa_conformance::{chmod, run_library, Options, Verdict};

// Where the build is, and the example plugin built on demand: the end-to-end crate's module,
// compiled into these tests too, since aa-tests depends on this crate and cannot be depended on.
#[path = "../../../tests/src/locate.rs"]
mod locate;
#[allow(unused_imports)] // each test binary uses a different part
pub use locate::{build_hello_provider, builtin_plugin};

/// Writes the shell script `dir/gzip` (`body` after `#!/bin/sh`), links it as `pigz` (which
/// TarExternal runs instead of gzip where it is installed) and returns `PATH` with `dir` first.
pub fn path_with_gzip_script(dir: &Path, body: &str) -> OsString {
    fs::create_dir_all(dir).expect("create the script directory");
    let script = dir.join("gzip");
    fs::write(&script, format!("#!/bin/sh\n{body}")).expect("write the script");
    chmod(&script, 0o755);
    symlink("gzip", dir.join("pigz")).expect("link the script as pigz");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path));
    std::env::join_paths(dirs).expect("a valid PATH")
}

/// Runs the whole suite on `library` and returns the printed report and the failure count.
pub fn run_suite(library: &std::path::Path) -> (String, usize, usize) {
    let mut report = Vec::new();
    let summary = run_library(library, &Options::default(), &mut |outcome| {
        report.push(outcome.to_string());
        if let Verdict::Failed(failure) = &outcome.verdict {
            report.extend(failure.details.iter().map(|d| format!("    | {d}")));
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    report.push(summary.to_string());
    (report.join("\n"), summary.passed, summary.failed)
}

//! Locating (or building) the provider libraries the tests run the suite against, and a fake
//! compressor on `PATH`.
//!
//! The end-to-end test crate `aa-tests` has the same few helpers; it depends on this crate
//! (for the tree records and GNU tar wrappers), so this crate cannot depend on it back.

#![allow(dead_code)] // each test binary uses a different part

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_conformance::{chmod, run_library, Options, Verdict};

/// The workspace root (this crate lives in `<workspace>/conformance`).
fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().expect("a parent").to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the workspace if relative) or
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_dir().join(dir),
        _ => workspace_dir().join("target"),
    }
}

/// Builds `examples/hello-provider` (its own workspace, offline: its dependencies are the
/// workspace's) into `<target>/examples` and returns the shared library, once per process.
pub fn build_hello_provider() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let manifest = workspace_dir().join("examples/hello-provider/Cargo.toml");
            let target = target_dir().join("examples");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let out = Command::new(cargo)
                .args(["build", "--offline", "--quiet", "--manifest-path"])
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target)
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("RUSTFLAGS")
                .output()
                .expect("run cargo");
            assert!(
                out.status.success(),
                "building {} failed:\n{}",
                manifest.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let lib = target.join("debug/libaa_hello_provider.so");
            assert!(lib.is_file(), "{} was not built", lib.display());
            lib
        })
        .clone()
}

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

/// A plugin built by `cargo build --workspace`: `<target>/debug/lib<NAME>.so`. The plugins are
/// not dependencies of this crate (cdylibs cannot be), so they must be built beforehand.
pub fn built_plugin(lib_name: &str) -> PathBuf {
    let lib = target_dir().join("debug").join(format!("lib{lib_name}.so"));
    assert!(
        lib.is_file(),
        "{} not found; build the plugins first: cargo build --workspace",
        lib.display()
    );
    lib
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

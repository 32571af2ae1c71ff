//! Where the build under test is: the workspace, cargo's target directory, the `aa` binary and
//! the plugins built beside it, and the example plugin (its own workspace, built on demand).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root: the parent of the crate compiling this module (`tests/`, or
/// `conformance/`, whose tests compile it in).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("the crate has a parent")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the workspace if relative) or
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_dir().join(dir),
        _ => workspace_dir().join("target"),
    }
}

/// The `aa` binary under test: `$AA_BIN`, else `<target>/debug/aa`.
pub fn aa_bin() -> PathBuf {
    let bin = match std::env::var_os("AA_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => target_dir().join("debug").join("aa"),
    };
    assert!(
        bin.is_file(),
        "{} not found; build first: cargo build --workspace (or set AA_BIN)",
        bin.display()
    );
    bin
}

/// A plugin library built beside `aa`, e.g. `builtin_plugin("aa_plugin_tar_internal")`.
pub fn builtin_plugin(lib_name: &str) -> PathBuf {
    let bin = aa_bin();
    let lib = bin.with_file_name(format!("lib{lib_name}.so"));
    assert!(
        lib.is_file(),
        "{} not found; build first: cargo build --workspace",
        lib.display()
    );
    lib
}

/// Builds `examples/hello-provider` (its own workspace) into `<target>/examples` and returns
/// the shared library. Built once per test process; cargo's lock serialises concurrent builds.
pub fn build_hello_provider() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            build_cdylib(
                &workspace_dir().join("examples/hello-provider/Cargo.toml"),
                &target_dir().join("examples"),
                "aa_hello_provider",
            )
        })
        .clone()
}

/// Builds the library crate at `manifest` (offline: its dependencies are those of the
/// workspace, already fetched) into `target` and returns the path of `lib<lib_name>.so`.
#[track_caller]
pub fn build_cdylib(manifest: &Path, target: &Path, lib_name: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--offline", "--quiet", "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target)
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
    let lib = target.join(format!("debug/lib{lib_name}.so"));
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}

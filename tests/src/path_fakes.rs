//! Programs on `PATH`: finding the real one, and putting a shell script first under its name
//! (a compressor that GNU tar starts, to hold tar at a known point or make it fail).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::chmod;

/// Where `program` is found on `PATH`.
#[track_caller]
pub fn on_path(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} not found on PATH"))
}

/// Writes the shell script `dir/name` (`body` after `#!/bin/sh`) and returns `PATH` with `dir`
/// first, for a child process in which `name` is to be that script (e.g. a compressor that GNU
/// tar starts, to hold tar at a known point).
pub fn path_with_script(dir: &Path, name: &str, body: &str) -> OsString {
    fs::create_dir_all(dir).expect("create the script directory");
    let script = dir.join(name);
    fs::write(&script, format!("#!/bin/sh\n{body}")).expect("write the script");
    chmod(&script, 0o755);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path));
    std::env::join_paths(dirs).expect("a valid PATH")
}

/// [`path_with_script`] for a fake gzip: the script is also named `pigz`, which `TarExternal`
/// runs instead of gzip where it is installed.
pub fn path_with_gzip_script(dir: &Path, body: &str) -> OsString {
    let path = path_with_script(dir, "gzip", body);
    symlink("gzip", dir.join("pigz")).expect("link the script as pigz");
    path
}

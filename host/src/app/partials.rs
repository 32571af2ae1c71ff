//! The partial files of an archive's backups in its destination (see
//! [`aa_abi::naming::OutputFile`]): removing those that runs killed or stopped left behind,
//! never one that another living run is writing (two machines may back up one archive into
//! one destination, each under its own lock).

use std::collections::HashSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aa_abi::naming::backup_level_for;
use aa_abi::naming::{partial_of, remove_if_abandoned};
use aa_abi::BackupDefinition;

use crate::interrupt;

/// The partial files in `dest` whose final name `is_ours` accepts.
fn partials(dest: &Path, is_ours: impl Fn(&[u8]) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dest) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| partial_of(e.file_name().as_bytes()).is_some_and(&is_ours))
        .map(|e| e.path())
        .collect()
}

/// Removes the partial files of this archive's backups that no living run is writing.
pub fn remove_abandoned(definition: &BackupDefinition) {
    let Some(ext) = definition.backup_type.extension() else {
        return;
    };
    let id = definition.backup_id.as_str();
    let candidates = partials(definition.destination.as_path(), |backup| {
        backup_level_for(backup, id, None, ext).is_some()
    });
    // Critical: the signal thread must not take a file this opens for one of its own.
    interrupt::critical(|| {
        for path in candidates {
            if let Ok(true) = remove_if_abandoned(&path) {
                log::info!("removed {}, left by a run that was stopped", path.display());
            }
        }
    });
}

/// Removes the partial files of the backup at `final_path` that this process has open: the
/// ones its provider is writing (it created them; another run's it never opens). Returns
/// what was removed. For the signal thread, which does not know the names the provider chose.
pub fn remove_own(final_path: &Path) -> Vec<String> {
    let (Some(dest), Some(name)) = (final_path.parent(), final_path.file_name()) else {
        return Vec::new();
    };
    let open = open_files();
    partials(dest, |backup| backup == name.as_bytes())
        .into_iter()
        .filter(|path| {
            fs::symlink_metadata(path).is_ok_and(|m| open.contains(&(m.dev(), m.ino())))
                && fs::remove_file(path).is_ok()
        })
        .map(|path| path.display().to_string())
        .collect()
}

/// The files this process has open, as (device, inode).
fn open_files() -> HashSet<(u64, u64)> {
    let Ok(fds) = fs::read_dir("/proc/self/fd") else {
        return HashSet::new();
    };
    fds.flatten()
        .filter_map(|fd| fs::metadata(fd.path()).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect()
}

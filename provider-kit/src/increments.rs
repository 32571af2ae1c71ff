//! What the incremental methods of the service API do with backup files, however a provider
//! writes them: `doesAnyBackupLevelExist` and `removeBackupIncrements`.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use aa_abi::naming::backup_level_for;
use aa_abi::plugin::backup_path;
use aa_abi::{BackupDefinition, ProviderError};

use crate::layout::{check_backup_id, io_error, Snapshots};

/// Whether `dir` holds a backup of `id` of `from_level` or above.
pub fn any_backup_level_exists(
    dir: &Path,
    id: &str,
    keeping_id: Option<&str>,
    ext: &str,
    from_level: u32,
) -> Result<bool, ProviderError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error(dir, &e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, &e))?;
        let name = entry.file_name();
        let level = backup_level_for(OsStr::as_bytes(&name), id, keeping_id, ext);
        if level.is_some_and(|l| l >= from_level) && entry.path().is_file() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The service API's `doesAnyBackupLevelExist`: whether the destination holds a backup of
/// `definition` of `from_level` or above.
pub fn does_any_backup_level_exist(
    definition: &BackupDefinition,
    from_level: u32,
    keeping_id: Option<&str>,
) -> Result<bool, ProviderError> {
    let ext = definition.backup_type.extension().ok_or_else(|| {
        ProviderError::unsupported_type(format!(
            "Unsupported backup type: {}",
            definition.backup_type
        ))
    })?;
    any_backup_level_exists(
        definition.destination(),
        &definition.backup_id,
        keeping_id,
        ext,
        from_level,
    )
}

/// The service API's `removeBackupIncrements`: removes the backups of `level` (of the next
/// level to make if `None`) and above, up to the first missing one, with their snapshots.
pub fn remove_backup_increments(
    snapshots: &Snapshots,
    definition: &BackupDefinition,
    level: Option<u32>,
    keeping_id: Option<&str>,
) -> Result<(), ProviderError> {
    let id = definition.backup_id.as_str();
    check_backup_id(id)?;
    let level = match level {
        Some(level) => level,
        None => snapshots.max_level(id)?,
    };
    let mut current = level;
    loop {
        let path = backup_path(definition, Some(current), keeping_id)?;
        if fs::symlink_metadata(&path).is_err() {
            break;
        }
        fs::remove_file(&path).map_err(|e| io_error(&path, &e))?;
        snapshots.remove_one(id, current, keeping_id)?;
        current += 1;
    }
    // Snapshots without a backup file (e.g. the files were deleted by hand) would make the
    // next level build on content that no longer exists.
    if keeping_id.is_none() && snapshots.max_level(id)? > level {
        snapshots.remove_from(id, level)?;
    }
    Ok(())
}

//! Dry runs: GNU tar run as the real backup would run it, but writing its archive to
//! `/dev/null` (GNU tar then does not even read file contents) and, for an incremental level,
//! on a private temporary copy of the snapshot the real run would start from, so neither the
//! destination nor the provider's state changes. The `--verbose` member lines are the members
//! the real run would store; sizes are read from the tree (0 for directories and links).

use std::fs;
use std::path::{Path, PathBuf};

use aa_abi::capability::{ItemEvents, Totals};
use aa_abi::plugin::backup_path;
use aa_abi::ProviderError;
use aa_abi::{BackupDefinition, BackupEvents, BackupOperationError, BackupSubOperation};
use aa_provider_kit::{
    backup_root, check_backup_id, check_device_from_env, fatal, CountedItems, Snapshots,
};

use crate::error::Error;
use crate::run::{run_tar, TarRun};
use crate::snapshot_name::SnapshotName;
use crate::{compress, include_names, locate, tar_arguments, Listed};

/// Backup events as dry-run items and problems.
struct Items<'a> {
    root: &'a Path,
    items: CountedItems<'a>,
}

impl BackupEvents for Items<'_> {
    fn file_add(&self, name: &Path) {
        let size = fs::symlink_metadata(self.root.join(name))
            .ok()
            .filter(fs::Metadata::is_file)
            .map_or(0, |m| m.len());
        self.items.item(name, size);
    }

    fn backup_operation_error(
        &self,
        operation: BackupSubOperation,
        error: BackupOperationError,
        name: Option<&Path>,
        message: Option<&str>,
    ) {
        let text = match message {
            Some(message) => format!("{operation:?}: {error:?}: {message}"),
            None => format!("{operation:?}: {error:?}"),
        };
        self.items.problem(name, &text);
    }
}

/// Lists what a backup of `definition` would store now with the GNU tar at `tar`.
pub fn dry_run(
    tar: &Path,
    snapshots: &Snapshots,
    definition: &BackupDefinition,
    level: Option<u32>,
    events: &dyn ItemEvents,
) -> Result<Totals, ProviderError> {
    let root = backup_root(definition).map_err(|e| fatal(definition.root(), &e))?;
    let items = Items {
        root,
        items: CountedItems::new(events),
    };
    let Some(level) = level else {
        let archive = backup_path(definition, None, None)?;
        run(tar, definition, &archive, None, &items)?;
        return Ok(items.items.totals());
    };
    let id = definition.backup_id.as_str();
    check_backup_id(id)?;
    let level = snapshots.resolve_level(id, Some(level))?;
    let archive = backup_path(definition, Some(level), None)?;
    let check_device = check_device_from_env()?;
    // A private copy, outside the provider's state, of what the real run starts from.
    let private = tempdir().map_err(|e| fatal(&std::env::temp_dir(), &e))?;
    let working = private.0.join("snapshot.snar");
    let shown = snapshots.path(id, level.saturating_sub(1), None);
    if level > 0 {
        fs::copy(&shown, &working).map_err(|e| fatal(&shown, &e))?;
        crate::vanished_tops::drop_in_place(&working, root)?;
    }
    let names = SnapshotName::new(&working, shown);
    run(
        tar,
        definition,
        &archive,
        Some(Listed {
            snapshot: &working,
            check_device,
        }),
        &names.events(&items),
    )
    .map_err(|e| names.error(e))?;
    Ok(items.items.totals())
}

fn run(
    tar: &Path,
    definition: &BackupDefinition,
    archive: &Path,
    listed: Option<Listed<'_>>,
    events: &dyn BackupEvents,
) -> Result<(), Error> {
    let mut args = tar_arguments(definition, None, archive, Path::new("/dev/null"), listed);
    // Nothing is written, so nothing is compressed.
    if let Some(option) = compress::tar_option(definition.backup_type, None, &locate::in_path) {
        args.retain(|a| a.as_os_str() != std::ffi::OsStr::new(&option));
    }
    run_tar(
        TarRun {
            tar,
            args,
            names: include_names(definition),
            archive,
            archive_fd: None,
            archive_on_stdout: false,
        },
        events,
    )
}

/// A private temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> std::io::Result<TempDir> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let pid = std::process::id();
    for attempt in 0u32.. {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = base.join(format!("aa-dry-run-{pid}-{nanos:x}-{attempt}"));
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(TempDir(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {}
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

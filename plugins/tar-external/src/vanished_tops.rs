//! Keeps GNU tar from taking a renamed top directory for a rename.
//!
//! GNU tar finds a directory under a new name by its device and inode in the previous
//! snapshot and stores only its changed files. For a directory at the top of the backup (an
//! include entry) no dumpdir records that rename, since the archive never describes the backup
//! root: a restore leaves the unchanged files out of the new name and the roots rule deletes
//! the old one. So before tar runs, the working copy of the previous snapshot loses the
//! records of every top directory that is gone, and all records below them
//! ([`aa_provider_kit::snapshot_file::drop_vanished_tops`]): the renamed directory is new to
//! tar and stored in full. `TarInternal` applies the same rule when it reads the snapshot.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::Path;

use aa_abi::ProviderError;
use aa_provider_kit::snapshot_file::drop_vanished_tops;
use aa_provider_kit::{Snapshots, WorkingFile};

/// Returns the snapshot `working` without the top directories that are no longer directories
/// under `root` (a new working file), or `working` itself when there are none.
pub(crate) fn drop_from(
    snapshots: &Snapshots,
    working: WorkingFile,
    root: &Path,
) -> Result<WorkingFile, ProviderError> {
    let mut filtered = snapshots.working_file()?;
    let filtered_path = filtered.path().to_path_buf();
    if filter(working.path(), (filtered.file(), &filtered_path), root)? {
        // `working` is dropped here, and so deleted: `filtered` replaces it.
        Ok(filtered)
    } else {
        Ok(working)
    }
}

/// [`drop_from`] for the dry run's private copy at `path`, replaced in place.
pub(crate) fn drop_in_place(path: &Path, root: &Path) -> Result<(), ProviderError> {
    let filtered_path = path.with_extension("filtered");
    let file = File::create(&filtered_path)
        .map_err(|e| ProviderError::from_io(filtered_path.display(), &e))?;
    if filter(path, (&file, &filtered_path), root)? {
        fs::rename(&filtered_path, path)
            .map_err(|e| ProviderError::from_io(filtered_path.display(), &e))?;
    }
    Ok(())
}

/// Writes the snapshot at `input` without the vanished top directories to `output`; returns
/// whether there were any (otherwise `output` is left empty). A snapshot the kit's reader
/// finds malformed counts as none: GNU tar reports it in its own words.
fn filter(
    input: &Path,
    (output, output_path): (&File, &Path),
    root: &Path,
) -> Result<bool, ProviderError> {
    let mut source = File::open(input).map_err(|e| ProviderError::from_io(input.display(), &e))?;
    let mut out = BufWriter::new(output);
    match drop_vanished_tops(&mut source, &mut out, root) {
        Ok(dropped) => {
            for name in &dropped {
                log::debug!(
                    "{}: top directory gone, its snapshot records dropped",
                    String::from_utf8_lossy(name)
                );
            }
            // Flushed by the kit's writer, whose errors name the output's offset.
            drop(out);
            Ok(!dropped.is_empty())
        }
        Err(err) if err.is_malformed() => {
            log::debug!("{}: {err}; used as it is", input.display());
            Ok(false)
        }
        Err(err) => {
            let os_code = err.io_error().and_then(io::Error::raw_os_error);
            let message = format!("{} -> {}: {err}", input.display(), output_path.display());
            Err(ProviderError::io(os_code.unwrap_or(0), message))
        }
    }
}

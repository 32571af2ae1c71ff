//! One backup file from creation to commit: the closing sequence that the full and the
//! incremental backup share.
//!
//! The new file is written beside the previous backup ([`OutputFile`]), through the pipeline
//! of [`crate::pipeline`], by an [`Archiver`] that the caller fills. If filling it fails, the
//! pipeline is aborted and the partial file removed (the `OutputFile` is dropped without
//! commit), so the previous backup stays; else the stream is finished, the file committed,
//! and only then the caller's own last step runs (an incremental level installs its
//! snapshot there: a snapshot must never claim content that no stored backup holds).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use aa_abi::naming::OutputFile;
use aa_abi::{BackupEvents, BackupOperationError, BackupSubOperation, ProviderError};

use crate::archive::{ArchiveError, Archiver};
use crate::compress::Codec;
use crate::fatal;
use crate::pipeline::{self, Settings, Stream};

/// Why filling the archive stopped.
pub(crate) enum StoreError {
    /// Writing the archive failed: reported as a failure to write the backup file.
    Archive(io::Error),
    /// Anything else (reading an incremental level's working snapshot back, say).
    Other(ProviderError),
}

impl From<ArchiveError> for StoreError {
    fn from(error: ArchiveError) -> StoreError {
        match error.unreadable_source() {
            Some(name) => {
                let message = format!(
                    "Cannot read \"{}\": {}",
                    name.display(),
                    aa_abi::error::os_message(error.io_error())
                );
                let errno = error.into_io_error().raw_os_error().unwrap_or(0);
                StoreError::Other(ProviderError::io(errno, message))
            }
            None => StoreError::Archive(error.into_io_error()),
        }
    }
}

/// Writes the backup file `path` with `codec`: `store` adds the members; `prepare` runs once
/// the file is complete, before the commit (what may still fail without losing the previous
/// backup: an incremental level readies its snapshot there); after the commit, `committed`
/// runs with what `prepare` gave, and a file that changed while it was stored is reported
/// (`SomeFilesChanged`). Returns the committed file's path.
pub(crate) fn write_backup<'e, T>(
    path: PathBuf,
    overwrite_at_start: bool,
    codec: Codec,
    events: &'e dyn BackupEvents,
    store: impl FnOnce(&mut Archiver<'e, Stream>) -> Result<(), StoreError>,
    prepare: impl FnOnce() -> Result<T, ProviderError>,
    committed: impl FnOnce(T) -> Result<(), ProviderError>,
) -> Result<PathBuf, ProviderError> {
    let mut output = OutputFile::new(path, overwrite_at_start);
    let final_path = output.final_path().to_path_buf();
    let write_failed = |e: &io::Error| fatal(&final_path, e);

    let file = output.create().map_err(|e| write_failed(&e))?;
    // The backup must not archive itself when it lies inside the root.
    let own_file = file.metadata().ok().map(|m| (m.dev(), m.ino()));
    let (stream, pipeline) =
        pipeline::start(codec, file, Settings::default()).map_err(|e| write_failed(&e))?;
    let mut archiver = Archiver::new(stream, events, own_file);
    let stored = store(&mut archiver);
    let some_files_changed = archiver.some_files_changed();
    let stream = archiver.into_output();
    match stored {
        Ok(()) => pipeline.finish(stream).map_err(|e| write_failed(&e))?,
        Err(StoreError::Archive(error)) => {
            return Err(write_failed(&pipeline.abort(stream, error)));
        }
        Err(StoreError::Other(error)) => {
            let _ = pipeline.abort(stream, io::Error::other("the backup was abandoned"));
            return Err(error);
        }
    }
    // `output` is dropped without commit on every early return above, which removes the
    // partial file.
    let prepared = prepare()?;
    let path = output.commit().map_err(|e| write_failed(&e))?;
    committed(prepared)?;

    if some_files_changed {
        events.backup_operation_error(
            BackupSubOperation::Finish,
            BackupOperationError::SomeFilesChanged,
            None,
            None,
        );
    }
    Ok(path)
}

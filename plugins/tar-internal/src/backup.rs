//! One backup file from creation to commit: the closing sequence that the full and the
//! incremental backup share, into a local file or into the host's byte sink.
//!
//! The new file is written beside the previous backup ([`OutputFile`]), through the pipeline
//! of [`crate::pipeline`], by an [`Archiver`] that the caller fills. If filling it fails, the
//! pipeline is aborted and the partial file removed (the `OutputFile` is dropped without
//! commit), so the previous backup stays; else the stream is finished, the file committed,
//! and only then the caller's own last step runs (an incremental level installs its
//! snapshot there: a snapshot must never claim content that no stored backup holds).
//!
//! Into a sink (`backup_to_sink_v1`) the same pipeline writes the same bytes; only its last
//! stage hands them, in chunks, to a relay thread that writes them into the sink, and the
//! commit is the sink's. A failed sink write stops the pipeline, and its error is reported.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::mpsc;

use aa_abi::capability::BackupSink;
use aa_abi::naming::OutputFile;
use aa_abi::{BackupEvents, BackupOperationError, BackupSubOperation, ProviderError};

use crate::archive::{ArchiveError, Archiver};
use crate::compress::Codec;
use crate::fatal;
use crate::output::{Output, SinkOutput, SINK_CHUNKS_IN_FLIGHT};
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

/// Where a backup's bytes go.
pub(crate) enum Destination<'s> {
    /// The backup file `path`, written beside the previous backup ([`OutputFile`]).
    File {
        path: PathBuf,
        overwrite_at_start: bool,
    },
    /// The host's byte sink (the `backup_to_sink_v1` capability); `name` is the backup's
    /// local path, for messages only: nothing is written there.
    Sink {
        sink: &'s mut dyn BackupSink,
        name: PathBuf,
    },
}

/// Writes the backup into `destination` with `codec`: `store` adds the members; `prepare`
/// runs once the backup is complete, before the commit (what may still fail without losing
/// the previous backup: an incremental level readies its snapshot there); after the commit,
/// `committed` runs with what `prepare` gave, and a file that changed while it was stored is
/// reported (`SomeFilesChanged`). Returns the committed file's path (for a sink, its name).
pub(crate) fn write_backup<'e, T>(
    destination: Destination<'_>,
    codec: Codec,
    events: &'e dyn BackupEvents,
    store: impl FnOnce(&mut Archiver<'e, Stream>) -> Result<(), StoreError>,
    prepare: impl FnOnce() -> Result<T, ProviderError>,
    committed: impl FnOnce(T) -> Result<(), ProviderError>,
) -> Result<PathBuf, ProviderError> {
    let (path, some_files_changed) = match destination {
        Destination::File {
            path,
            overwrite_at_start,
        } => {
            let mut output = OutputFile::new(path, overwrite_at_start);
            let final_path = output.final_path().to_path_buf();
            let write_failed = |e: &io::Error| fatal(&final_path, e);
            let file = output.create().map_err(|e| write_failed(&e))?;
            // The backup must not archive itself when it lies inside the root.
            let own_file = file.metadata().ok().map(|m| (m.dev(), m.ino()));
            let changed = fill(
                Output::new(file),
                own_file,
                codec,
                events,
                store,
                write_failed,
            )?;
            // `output` is dropped without commit on every early return, which removes the
            // partial file.
            let prepared = prepare()?;
            let path = output.commit().map_err(|e| write_failed(&e))?;
            committed(prepared)?;
            (path, changed)
        }
        Destination::Sink { sink, name } => {
            let write_failed = |e: &io::Error| fatal(&name, e);
            let (chunks, relay_end) = mpsc::sync_channel::<Vec<u8>>(SINK_CHUNKS_IN_FLIGHT);
            let outcome = std::thread::scope(|scope| {
                // The sink is borrowed, the pipeline's threads are not scoped: the sink stays
                // on this thread of the scope, the chunks come to it. It ends when the
                // pipeline's writer drops its end, or at the sink's first error (the writer
                // then finds the channel closed and the pipeline stops).
                let relay = std::thread::Builder::new()
                    .name("aa-sink".into())
                    .spawn_scoped(scope, move || {
                        for chunk in relay_end {
                            sink.write(&chunk)?;
                        }
                        Ok::<_, ProviderError>(sink)
                    })
                    .map_err(|e| write_failed(&e))?;
                let filled = fill(
                    Output::Sink(SinkOutput::new(chunks)),
                    None,
                    codec,
                    events,
                    store,
                    write_failed,
                );
                let relayed = relay.join().unwrap_or_else(|_| {
                    Err(ProviderError::other(
                        "the backup's destination failed unexpectedly",
                    ))
                });
                Ok::<_, ProviderError>((filled, relayed))
            });
            let (filled, relayed) = outcome?;
            // The sink's own error says best why the backup could not be written.
            let sink = relayed?;
            let changed = filled?;
            let prepared = prepare()?;
            sink.commit()?;
            committed(prepared)?;
            (name, changed)
        }
    };
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

/// Runs the pipeline into `output` and fills it through `store` to the end of the stream:
/// whether a file changed while it was stored, or the error that ended it (worded by
/// `write_failed` when writing failed). On an error the pipeline is aborted.
fn fill<'e>(
    output: Output,
    own_file: Option<(u64, u64)>,
    codec: Codec,
    events: &'e dyn BackupEvents,
    store: impl FnOnce(&mut Archiver<'e, Stream>) -> Result<(), StoreError>,
    write_failed: impl Fn(&io::Error) -> ProviderError,
) -> Result<bool, ProviderError> {
    let (stream, pipeline) =
        pipeline::start(codec, output, Settings::default()).map_err(|e| write_failed(&e))?;
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
    Ok(some_files_changed)
}

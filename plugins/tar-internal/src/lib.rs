//! The `TarInternal` archiver provider: writes POSIX (pax) tar backups in-process, with
//! gzip, bzip2, xz or zstd compression, without any external program.
//!
//! The work is a streaming pipeline whose stages overlap, each testable alone:
//!
//! ```text
//! walk (own thread) -> read + tar (calling thread) -> compress (all cores) -> write
//! ```
//!
//! [`walk`] decides which objects are stored and in which order (include/exclude semantics
//! are documented there) and examines them ahead of the archiver; [`archive`] opens and reads
//! them and encodes the tar members (format details there), on the calling thread so that
//! the backup events are raised there, in member order; [`compress`] holds the codecs (strength
//! table there) and [`pipeline`] the threads that run them and write the file, with bounded
//! memory. This module ties them to the plugin ABI and to [`OutputFile`], which keeps the
//! previous backup until the new one is complete. Another source of entries (an incremental
//! walk, say) only has to produce [`walk::Step`]s.
//!
//! Errors about single source objects (unreadable, vanished, changed while read, sockets)
//! are reported through the backup events and the backup goes on; anything that prevents a
//! complete archive (root missing, destination not writable, disk full) fails the backup,
//! and the partial output is removed.
//!
//! Incremental backups ([`incremental`]) are GNU tar's `--listed-incremental` ones, made
//! without GNU tar: the same snapshot files, in the same place as the `TarExternal`
//! provider keeps them ([`aa_provider_kit::Snapshots`]), and archives GNU tar restores level by level,
//! so a chain can switch between the two providers in either direction. The environment
//! variable `AA_NO_CHECK_DEVICE=1` is the equivalent of GNU tar's `--no-check-device`, for
//! file systems whose device numbers change between mounts (see
//! [`incremental::provider`]).

pub mod archive;
pub mod compress;
pub mod incremental;
pub mod output;
pub mod pipeline;
pub mod sys;
pub mod walk;

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aa_abi::naming::OutputFile;
use aa_abi::plugin::{backup_path, ArchiverProvider, Plugin};
use aa_abi::{
    ArchiverFeature, BackupDefinition, BackupEvents, BackupOperationError, BackupSubOperation,
    BackupType, ProviderError, ProviderIdentification,
};
use aa_provider_kit::{backup_root, fatal, OwnBackups, Snapshots};

use crate::archive::{ArchiveError, Archiver, TarOutput};
use crate::compress::Codec;
use crate::pipeline::Settings;
use crate::walk::{Step, Walker};

/// The provider id the host selects this plugin by.
pub const PROVIDER_ID: &str = "TarInternal";

/// The plugin: identification and provider factory.
pub struct TarInternalPlugin;

impl Plugin for TarInternalPlugin {
    type Provider = TarInternalProvider;

    fn identification() -> ProviderIdentification {
        let all = [
            ArchiverFeature::CompressionStrength,
            ArchiverFeature::Incremental,
        ];
        ProviderIdentification::new(
            PROVIDER_ID,
            "Built-in tar archiver (POSIX tar; gzip, bzip2, xz and zstd compression; \
             incremental backups compatible with GNU tar).",
        )
        .with_type(BackupType::Tar, &[ArchiverFeature::Incremental])
        .with_type(BackupType::TarGz, &all)
        .with_type(BackupType::TarBz2, &all)
        .with_type(BackupType::TarXz, &all)
        .with_type(BackupType::TarZst, &all)
    }

    fn create(work_dir: &Path) -> Result<TarInternalProvider, ProviderError> {
        Ok(TarInternalProvider {
            work_dir: work_dir.to_path_buf(),
        })
    }
}

aa_abi::export_archiver_plugin!(TarInternalPlugin);

/// The `TarInternal` archiver provider.
pub struct TarInternalProvider {
    /// Persistent state directory: the snapshots of incremental backups.
    work_dir: PathBuf,
}

impl TarInternalProvider {
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    fn snapshots(&self) -> Snapshots {
        Snapshots::new(&self.work_dir)
    }
}

impl ArchiverProvider for TarInternalProvider {
    fn backup_files(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        overwrite_at_start: bool,
        events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError> {
        // Without its root the backup would be empty; refuse before touching the old one.
        let root = backup_root(definition).map_err(|e| fatal(definition.root(), &e))?;

        let codec = Codec::new(definition.backup_type, compression_strength)
            .map_err(|e| ProviderError::unsupported_type(e.to_string()))?;
        let walker = Walker::new(root, definition.includes(), definition.excludes())
            .map_err(|e| fatal(root, &e))?
            .leaving_out(root, OwnBackups::new(definition));

        let mut output = OutputFile::new(backup_path(definition, None, None)?, overwrite_at_start);
        let final_path = output.final_path().to_path_buf();
        let write_failed = |e: &io::Error| fatal(&final_path, e);

        let file = output.create().map_err(|e| write_failed(&e))?;
        let own_file = file.metadata().ok().map(|m| (m.dev(), m.ino()));
        let (stream, pipeline) =
            pipeline::start(codec, file, Settings::default()).map_err(|e| write_failed(&e))?;
        let (steps, walk_thread) = walk::spawn(walker).map_err(|e| write_failed(&e))?;

        let mut archiver = Archiver::new(stream, events, own_file);
        let mut stored = store_all(&mut archiver, steps).map_err(ArchiveError::into_io_error);
        // The walk thread stops once its channel is gone (dropped by `store_all`). If it
        // died, the archive would silently miss the rest of the tree.
        if walk_thread.join().is_err() && stored.is_ok() {
            stored = Err(io::Error::other("the directory walk failed unexpectedly"));
        }
        let stored = stored.and_then(|()| archiver.finish().map_err(ArchiveError::into_io_error));
        let some_files_changed = archiver.some_files_changed();
        let stream = archiver.into_output();
        match stored {
            Ok(()) => pipeline.finish(stream).map_err(|e| write_failed(&e))?,
            Err(error) => return Err(write_failed(&pipeline.abort(stream, error))),
        }
        // `output` is dropped without commit on every early return above, which removes
        // the partial file.
        let path = output.commit().map_err(|e| write_failed(&e))?;

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

    fn backup_files_incrementally(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        level: Option<u32>,
        overwrite_at_start: bool,
        events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError> {
        incremental::provider::backup_files_incrementally(
            &self.work_dir,
            definition,
            compression_strength,
            level,
            overwrite_at_start,
            events,
        )
    }

    aa_provider_kit::snapshot_state_methods!(|self| self.snapshots());
}

/// Stores every walked object; on a write failure, returns the error with the output.
pub(crate) fn store_all<O: TarOutput>(
    archiver: &mut Archiver<'_, O>,
    steps: std::sync::mpsc::Receiver<Vec<Step>>,
) -> Result<(), ArchiveError> {
    for batch in steps {
        for step in batch {
            match step {
                Step::Entry(entry) => archiver.add(entry)?,
                Step::Error {
                    operation,
                    name,
                    error,
                } => archiver.report(operation, &name, &error),
                Step::Changed { name } => archiver.file_changed(&name),
            }
        }
    }
    Ok(())
}

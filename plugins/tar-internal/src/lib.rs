//! The `TarInternal` archiver provider: writes POSIX (pax) tar backups in-process, with
//! gzip, bzip2, xz or zstd compression, without any external program.
//!
//! The work is split so each part can be tested alone: [`walk`] decides which objects are
//! stored and in which order (include/exclude semantics are documented there), [`archive`]
//! turns them into tar members (format details there) and [`compress`] wraps the stream in
//! the codec of the backup type (strength table there). This module ties them to the plugin
//! ABI and to [`OutputFile`], which keeps the previous backup until the new one is complete.
//!
//! Errors about single source objects (unreadable, vanished, changed while read, sockets)
//! are reported through the backup events and the backup goes on; anything that prevents a
//! complete archive (root missing, destination not writable, disk full) fails the backup,
//! and the partial output is removed.

pub mod archive;
pub mod compress;
pub mod walk;

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aa_abi::naming::OutputFile;
use aa_abi::plugin::{backup_path, ArchiverProvider, Plugin};
use aa_abi::{
    ArchiverFeature, BackupDefinition, BackupEvents, BackupOperationError, BackupSubOperation,
    BackupType, ProviderError, ProviderIdentification,
};

use crate::archive::{os_message, Archiver};
use crate::compress::Compressor;
use crate::walk::{Step, Walker};

/// The provider id the host selects this plugin by.
pub const PROVIDER_ID: &str = "TarInternal";

/// Size of the buffer in front of the backup file; large writes keep syscalls few.
const OUTPUT_BUFFER: usize = 1 << 20;

/// The plugin: identification and provider factory.
pub struct TarInternalPlugin;

impl Plugin for TarInternalPlugin {
    type Provider = TarInternalProvider;

    fn identification() -> ProviderIdentification {
        let strength = [ArchiverFeature::CompressionStrength];
        ProviderIdentification::new(
            PROVIDER_ID,
            "Built-in tar archiver (POSIX tar; gzip, bzip2, xz and zstd compression).",
        )
        .with_type(BackupType::Tar, &[])
        .with_type(BackupType::TarGz, &strength)
        .with_type(BackupType::TarBz2, &strength)
        .with_type(BackupType::TarXz, &strength)
        .with_type(BackupType::TarZst, &strength)
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
    /// Persistent state directory; unused until incremental backups need it.
    work_dir: PathBuf,
}

impl TarInternalProvider {
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }
}

/// A fatal I/O error on `path`, with the OS text (e.g. "No space left on device").
fn fatal(path: &Path, error: &io::Error) -> ProviderError {
    ProviderError::io(
        error.raw_os_error().unwrap_or(0),
        format!("{}: {}", path.display(), os_message(error)),
    )
}

impl ArchiverProvider for TarInternalProvider {
    fn backup_files(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        overwrite_at_start: bool,
        events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError> {
        let root = definition.root();
        // Without its root the backup would be empty; refuse before touching the old one.
        let root_metadata = fs::metadata(root).map_err(|e| fatal(root, &e))?;
        if !root_metadata.is_dir() {
            return Err(fatal(root, &io::Error::from_raw_os_error(libc::ENOTDIR)));
        }

        let output = OutputFile::new(backup_path(definition, None, None)?, overwrite_at_start);
        let final_path = output.final_path().to_path_buf();
        let write_failed = |e: &io::Error| fatal(&final_path, e);

        let file = output.create().map_err(|e| write_failed(&e))?;
        let own_file = file.metadata().ok().map(|m| (m.dev(), m.ino()));
        let compressor = Compressor::new(
            definition.backup_type,
            compression_strength,
            BufWriter::with_capacity(OUTPUT_BUFFER, file),
        )
        .map_err(|e| write_failed(&e))?;

        let mut archiver = Archiver::new(compressor, events, own_file);
        for step in Walker::new(root, definition.includes(), definition.excludes()) {
            match step {
                Step::Entry(entry) => archiver
                    .add(&entry)
                    .map_err(|e| write_failed(e.io_error()))?,
                Step::Error {
                    operation,
                    name,
                    error,
                } => archiver.report(operation, &name, &error),
            }
        }
        let some_files_changed = archiver.some_files_changed();
        let compressor = archiver.finish().map_err(|e| write_failed(e.io_error()))?;
        let mut buffered = compressor.finish().map_err(|e| write_failed(&e))?;
        buffered.flush().map_err(|e| write_failed(&e))?;
        let file = buffered.into_inner().map_err(|e| write_failed(e.error()))?;
        drop(file);
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
}

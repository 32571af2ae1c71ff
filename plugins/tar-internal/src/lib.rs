//! The `TarInternal` archiver provider: writes POSIX (pax) tar backups in-process, with
//! gzip, bzip2, xz or zstd compression, without any external program.
//!
//! The work is a streaming pipeline whose stages overlap, each testable alone:
//!
//! ```text
//! walk (own thread) -> read + tar (calling thread) -> compress (all cores) -> write
//! ```
//!
//! One module per concern, each depending only on those below it:
//!
//! | module | what it holds |
//! |---|---|
//! | `backup` | one backup file from creation to commit, for full and incremental backups |
//! | `incremental` | GNU tar's `--listed-incremental`: snapshots, dumpdirs, the two passes |
//! | `walk` | which objects are stored, in which order (include/exclude rules), ahead |
//! | `archive` | `Archiver`: each object's metadata and content as tar members, with events |
//! | `header`, `pax` | the tar format alone, no I/O: ustar headers, PAX extended records |
//! | `pipeline` | the threads between the tar stream and the backup file |
//! | `compress` | the codecs, and how the compression strength maps onto them |
//! | `output` | where the tar stream goes (`TarOutput`), the backup file (`O_DIRECT`) or the host's sink |
//! | `sys` | the system calls of walk and archiver (rustix), file opening, owner names |
//! | `verify` | the `verify_v1` capability: a backup decompressed and its tar structure checked |
//! | `dry_run` | the `dry_run_v1` capability: the backup's own walk into a sink, nothing written |
//!
//! The `backup_to_sink_v1` capability writes the same backups, through the same pipeline,
//! into a byte sink of the host instead of a file (`backup`).
//!
//! This module ties them to the plugin ABI; the backup file is an [`OutputFile`](aa_abi::naming::OutputFile), which keeps
//! the previous backup until the new one is complete. Another source of entries (an
//! incremental level, say) only has to produce `walk::Step`s.
//!
//! The public surface is the plugin and the few items the integration tests read archives
//! and snapshots with; every module is private, so the compiler reports dead code.
//!
//! Errors about single source objects (unreadable, vanished, changed while read, sockets)
//! are reported through the backup events and the backup goes on; anything that prevents a
//! complete archive (root missing, destination not writable, disk full) fails the backup,
//! and the partial output is removed.
//!
//! Incremental backups (`incremental`) are GNU tar's `--listed-incremental` ones, made
//! without GNU tar: the same snapshot files, in the same place as the `TarExternal`
//! provider keeps them ([`Snapshots`]), and archives GNU tar restores level by level,
//! so a chain can switch between the two providers in either direction. The environment
//! variable `AA_NO_CHECK_DEVICE=1` is the equivalent of GNU tar's `--no-check-device`, for
//! file systems whose device numbers change between mounts (see `incremental::provider`).

mod archive;
mod backup;
mod compress;
mod dry_run;
mod header;
mod incremental;
mod output;
mod pax;
mod pipeline;
mod restore;
mod sys;
mod verify;
mod walk;

// The public surface: the plugin, and what the integration tests check against. Everything
// else is private, so the compiler reports what nothing uses.
pub use crate::incremental::{Code, DirRecord, SnapshotReader};
pub use crate::walk::MAX_OPEN_DEPTH;

/// Entry points for the fuzz targets (`fuzz/`), not an API: the tar readers of restore and
/// verify, fed raw (uncompressed) tar bytes.
#[doc(hidden)]
pub mod fuzzing {
    use crate::restore::decompress::Stream;
    use crate::restore::reader::Reader;

    /// Reads every member of `tar` as a restore does (sparse maps, data, dumpdirs parsed),
    /// then the rest of the stream; `Err` with the message a restore would report.
    pub fn restore_reader(tar: &[u8]) -> Result<usize, String> {
        let mut stream = Stream::from_bytes(tar.to_vec());
        let mut reader = Reader::new(&mut stream);
        let mut members = 0;
        while let Some(member) = reader.next().map_err(|e| e.to_string())? {
            members += 1;
            if let Some(dumpdir) = &member.dumpdir {
                let _ = aa_provider_kit::dumpdir::parse(dumpdir);
            }
            match member.sparse.clone() {
                Some(mut sparse) => {
                    if sparse.map_in_data {
                        reader.sparse_map(&mut sparse).map_err(|e| e.to_string())?;
                    }
                    // As extraction: each region's bytes in turn, from the member's data.
                    for &(_, length) in &sparse.map {
                        let mut done = 0u64;
                        while done < length {
                            let want = (length - done).min(1 << 16) as usize;
                            let got = reader.data(want).map_err(|e| e.to_string())?.len();
                            if got == 0 {
                                return Err("sparse member shorter than its map".into());
                            }
                            done += got as u64;
                        }
                    }
                }
                None => while !reader.data(1 << 16).map_err(|e| e.to_string())?.is_empty() {},
            }
        }
        drop(reader);
        stream.drain().map_err(|e| e.to_string())?;
        Ok(members)
    }

    /// Walks `tar` as a verify does; `Err` with the fault it would report.
    pub fn verify_structure(tar: &[u8]) -> Result<usize, String> {
        let mut members = 0;
        crate::verify::structure::walk(&mut &tar[..], |_| members += 1)
            .map_err(|fault| format!("{fault:?}"))?;
        Ok(members)
    }
}

use std::io;
use std::path::{Path, PathBuf};

use aa_abi::capability::{
    BackingUpToSink, BackupSink, ChainArchive, DryRunning, ItemEvents, Totals, Verifying,
};
use aa_abi::plugin::{backup_path, ArchiverProvider, Plugin};
use aa_abi::{
    ArchiverFeature, BackupDefinition, BackupEvents, BackupType, ProviderError,
    ProviderIdentification,
};
use aa_provider_kit::{backup_root, OwnBackups, Snapshots};

use crate::archive::Archiver;
use crate::backup::{Destination, StoreError};
use crate::compress::Codec;
use crate::output::TarOutput;
use crate::walk::Walker;

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
aa_abi::export_capabilities!(
    TarInternalPlugin: restore_v1,
    verify_v1,
    dry_run_v1,
    backup_to_sink_v1
);

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

/// The walk of a full backup of `definition`, whose root `root` exists.
fn full_walker(definition: &BackupDefinition, root: &Path) -> Result<Walker, ProviderError> {
    Ok(
        Walker::new(root, definition.includes(), definition.excludes())
            .map_err(|e| fatal(root, &e))?
            .leaving_out(root, OwnBackups::new(definition)),
    )
}

/// Stores every object of a full backup's walk, then the end of the archive.
fn store_full<O: TarOutput>(
    archiver: &mut Archiver<'_, O>,
    walker: Walker,
) -> Result<(), StoreError> {
    let (steps, walk_thread) = walk::spawn(walker).map_err(StoreError::Archive)?;
    let stored = archiver.store_steps(steps);
    // The walk thread stops once its channel is gone (dropped by `store_steps`).
    // If it died, the archive would silently miss the rest of the tree.
    if walk_thread.join().is_err() && stored.is_ok() {
        return Err(StoreError::Archive(io::Error::other(
            "the directory walk failed unexpectedly",
        )));
    }
    stored?;
    Ok(archiver.finish()?)
}

/// A fatal I/O error on a path, with the OS text (e.g. "No space left on device").
pub(crate) use aa_provider_kit::fatal;

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
        let walker = full_walker(definition, root)?;

        backup::write_backup(
            Destination::File {
                path: backup_path(definition, None, None)?,
                overwrite_at_start,
            },
            codec,
            events,
            |archiver| store_full(archiver, walker),
            || Ok(()),
            |()| Ok(()),
        )
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

impl BackingUpToSink for TarInternalProvider {
    fn backup_to_sink(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        level: Option<u32>,
        sink: &mut dyn BackupSink,
        events: &dyn BackupEvents,
    ) -> Result<(), ProviderError> {
        let Some(level) = level else {
            let name = backup_path(definition, None, None)?;
            let root = backup_root(definition).map_err(|e| fatal(definition.root(), &e))?;
            let codec = Codec::new(definition.backup_type, compression_strength)
                .map_err(|e| ProviderError::unsupported_type(e.to_string()))?;
            let walker = full_walker(definition, root)?;
            backup::write_backup(
                Destination::Sink { sink, name },
                codec,
                events,
                |archiver| store_full(archiver, walker),
                || Ok(()),
                |()| Ok(()),
            )?;
            return Ok(());
        };
        incremental::provider::backup_to_sink(
            &self.work_dir,
            definition,
            compression_strength,
            level,
            sink,
            events,
        )
    }
}

impl Verifying for TarInternalProvider {
    fn verify(
        &self,
        archive: &ChainArchive,
        events: &dyn ItemEvents,
    ) -> Result<Totals, ProviderError> {
        verify::verify(archive.path(), archive.backup_type, events)
    }
}

impl DryRunning for TarInternalProvider {
    fn dry_run(
        &self,
        definition: &BackupDefinition,
        level: Option<u32>,
        events: &dyn ItemEvents,
    ) -> Result<Totals, ProviderError> {
        let events = dry_run::DryEvents::new(events);
        match level {
            None => {
                backup_path(definition, None, None)?;
                dry_run::dry_run_full(definition, &events)?;
            }
            Some(level) => {
                dry_run::dry_run_incremental(&self.work_dir, definition, Some(level), &events)?
            }
        }
        Ok(events.totals())
    }
}

//! Incremental backups of the `TarInternal` provider: GNU tar's `--listed-incremental`, in
//! process, sharing its snapshot files with GNU tar and with the `TarExternal` provider.
//!
//! The snapshot files are kept in the layout every provider shares ([`Snapshots`]):
//! `<workDir>/snapshots/NAME.snar`, `NAME.N.snar`. Level N is planned against level N-1's
//! snapshot (level 0 against none) and writes its own snapshot to a private working file;
//! only once the archive is committed is that file renamed over level N's snapshot (after an
//! `fsync`) and the levels above N removed. A failed run leaves every snapshot and backup as
//! it was, and no working file behind.
//!
//! A level is made in two passes, as GNU tar makes it, because the renames found anywhere in
//! the tree go into the dumpdir of the archive's *first* directory:
//!
//! 1. The dump time is taken, then the tree is walked depth first, directories only: each
//!    directory is listed (`lstat` of every entry but subdirectories), [`Planner`] decides
//!    its dumpdir, and the resulting record is appended to the working snapshot at once
//!    ([`super::scan`]).
//! 2. The working snapshot is read back: first every directory becomes a member carrying its
//!    dumpdir as the `GNU.dumpdir` pax record (the renames on the first), then the files
//!    marked `Y` are examined (on a thread of their own, ahead of the archiver) and stored
//!    through the same pipeline, and the same closing sequence, as a full backup
//!    ([`super::store`], `crate::backup`).
//!
//! Every level's archive starts with the roots record ([`aa_provider_kit::roots`]), a pax
//! global header GNU tar and bsdtar skip, and ends, as a full backup does, with tar's two zero
//! end-of-archive blocks. The roots are the includes the scan found in the tree, normalised
//! (no trailing `/`; `.` for the root itself), in the order the scan takes them: walked
//! directories, top-level files whether or not they are stored again, includes met inside an
//! earlier include's walk, and includes that exist but are excluded (or are the backup's own
//! files), which a restore then leaves alone as it leaves an `N` entry of a dumpdir. An include
//! that does not exist (`ENOENT`, `ENOTDIR`) is no root, so a restore deletes what an earlier
//! level stored there; one that cannot be examined (`EACCES`, say) counts as present, so that
//! a restore never deletes what may still be there. Collected during the scan: no extra pass.
//!
//! Member names are GNU tar's, which a chain needs to continue across providers: an include
//! `data` gives `data`, `data/sub`, ...; an include of the root itself (`.`) gives a member
//! `./` and `./a`, ... The backup events name objects relative to the root as the
//! non-incremental backup does (`a`, not `./a`; the root itself is `.`).
//! Top-level non-directories named by the includes have no dumpdir: they are stored when
//! their mtime or ctime is at or after the previous dump time (GNU tar does the same).
//!
//! Excludes are matched as in a full backup (see [`crate::walk`]); an excluded name is listed
//! `N` in its directory's dumpdir, so restoring leaves it alone, as GNU tar lists it. The
//! archive's own backup files ([`OwnBackups`](aa_provider_kit::OwnBackups)) are left out in the same way.
//!
//! Device numbers: a directory is recognised between levels by name, device and inode. On
//! file systems whose device number changes from one mount to the next (some network, FUSE
//! and removable file systems, LVM snapshots) every directory would look replaced and each
//! level would store everything; setting the environment variable [`NO_CHECK_DEVICE_VAR`](aa_provider_kit::NO_CHECK_DEVICE_VAR)
//! (`AA_NO_CHECK_DEVICE=1`) compares name and inode only, like GNU tar's
//! `--no-check-device`. It must be set for every level of such a chain; TarExternal honours
//! it too.
//!
//! Memory is bounded by the largest directory, not by the tree: the walk keeps one listing at
//! a time plus the names of the subdirectories still to visit on the current path; the
//! second pass holds one snapshot record at a time. The previous level's snapshot is indexed
//! in at most 8 MiB plus under 0.4 bytes per directory, spilling to temporary files next to the
//! snapshots for trees of more than 128 Ki directories (see [`crate::incremental::index`]; on
//! 288,000 directories: 14 MB peak for a level 1, as for the level 0, where GNU tar took
//! 200 MB). Besides, the renamed directories of the level are kept with their names, and, as
//! in a full backup, the first name of every file with several hard links.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aa_abi::capability::BackupSink;
use aa_abi::plugin::backup_path;
use aa_abi::{BackupDefinition, BackupEvents, ProviderError};
use aa_provider_kit::{backup_root, check_backup_id, Snapshots};

use super::scan::{Scan, Scanned};
use super::snapshot::{Header, Snapshot, SnapshotWriter, Timestamp};
use super::store::{store_level, Planned};
use super::support::{snapshot_failure, RootRelative, RootRelativeListing};
use super::{Options, Planner};
use crate::archive::{Archiver, Listing};
use crate::backup::Destination;
use crate::compress::Codec;
use crate::fatal;
use crate::output::NullOutput;

/// The detection options [`NO_CHECK_DEVICE_VAR`](aa_provider_kit::NO_CHECK_DEVICE_VAR) selects.
pub fn options_from_env() -> Result<Options, ProviderError> {
    Ok(Options {
        check_device: aa_provider_kit::check_device_from_env()?,
    })
}

/// What a level starts from, made before anything is written.
struct Start {
    level: u32,
    root_fd: Arc<OwnedFd>,
    codec: Codec,
    previous: Snapshot,
    options: Options,
}

/// Checks `definition` and `level` and opens what the level reads: the root and the previous
/// level's snapshot. Writes nothing.
fn start(
    snapshots: &Snapshots,
    definition: &BackupDefinition,
    compression_strength: Option<u32>,
    level: Option<u32>,
) -> Result<Start, ProviderError> {
    let id = definition.backup_id.as_str();
    check_backup_id(id)?;
    let options = options_from_env()?;
    let level = snapshots.resolve_level(id, level)?;
    backup_path(definition, Some(level), None)?;

    // Without its root the backup would be empty; refuse before touching anything.
    let root = backup_root(definition).map_err(|e| fatal(definition.root(), &e))?;
    let codec = Codec::new(definition.backup_type, compression_strength)
        .map_err(|e| ProviderError::unsupported_type(e.to_string()))?;
    let root_fd = Arc::new(OwnedFd::from(
        File::open(root).map_err(|e| fatal(root, &e))?,
    ));

    let previous = if level == 0 {
        Snapshot::empty()
    } else {
        let path = snapshots.path(id, level - 1, None);
        // A missing file is an I/O error like any other, not a fault at some byte.
        File::open(&path).map_err(|e| fatal(&path, &e))?;
        Snapshot::read_under(&path, root).map_err(snapshot_failure)?
    };
    Ok(Start {
        level,
        root_fd,
        codec,
        previous,
        options,
    })
}

/// Pass 1: plans every directory into a new snapshot written to `output` (named
/// `output_path` in messages), with `dump_time` in its header.
fn scan<W: Write>(
    start: &mut Start,
    definition: &BackupDefinition,
    (output, output_path): (W, &Path),
    dump_time: Timestamp,
    events: &dyn BackupEvents,
) -> Result<Scanned, ProviderError> {
    let writer = SnapshotWriter::new(output, &Header::new(dump_time))
        .map_err(|e| snapshot_failure(e.with_path(output_path)))?;
    let previous = std::mem::replace(&mut start.previous, Snapshot::empty());
    let mut scan = Scan::new(
        &start.root_fd,
        Planner::new(previous, start.options),
        (writer, output_path),
        definition,
        events,
    );
    scan.run(definition)?;
    scan.finish()
        .map_err(|e| snapshot_failure(e.with_path(output_path)))
}

/// Makes the incremental backup of `definition` at `level` (the next one if `None`) with the
/// snapshots of the work directory `work_dir`, and returns the backup's path.
pub fn backup_files_incrementally(
    work_dir: &Path,
    definition: &BackupDefinition,
    compression_strength: Option<u32>,
    level: Option<u32>,
    overwrite_at_start: bool,
    events: &dyn BackupEvents,
) -> Result<PathBuf, ProviderError> {
    make_level(
        work_dir,
        definition,
        compression_strength,
        level,
        |final_path| Destination::File {
            path: final_path,
            overwrite_at_start,
        },
        events,
    )
}

/// Makes the incremental backup of `definition` at `level` into `sink`, as
/// [`backup_files_incrementally`] makes it into a file (`backup_to_sink_v1`).
pub fn backup_to_sink(
    work_dir: &Path,
    definition: &BackupDefinition,
    compression_strength: Option<u32>,
    level: u32,
    sink: &mut dyn BackupSink,
    events: &dyn BackupEvents,
) -> Result<(), ProviderError> {
    make_level(
        work_dir,
        definition,
        compression_strength,
        Some(level),
        |name| Destination::Sink { sink, name },
        events,
    )
    .map(drop)
}

/// A level, into the destination `destination` makes of the backup's local path.
fn make_level<'s>(
    work_dir: &Path,
    definition: &BackupDefinition,
    compression_strength: Option<u32>,
    level: Option<u32>,
    destination: impl FnOnce(PathBuf) -> Destination<'s>,
    events: &dyn BackupEvents,
) -> Result<PathBuf, ProviderError> {
    let id = definition.backup_id.as_str();
    let snapshots = Snapshots::new(work_dir);
    let mut start = start(&snapshots, definition, compression_strength, level)?;
    let level = start.level;
    let final_path = backup_path(definition, Some(level), None)?;
    // Taken before the walk: what changes while the backup runs is stored again next time.
    let dump_time = Timestamp::dump_start();
    let events = RootRelative(events);

    // Pass 1. Dropped (and so deleted) on any failure below: stored snapshots stay as they were.
    let mut working = snapshots.working_file()?;
    let working_path = working.path().to_path_buf();
    let output = BufWriter::new(working.file());
    let scanned = scan(
        &mut start,
        definition,
        (output, &working_path),
        dump_time,
        &events,
    )?;

    // Pass 2.
    let planned = Planned::File(working_path.clone());
    crate::backup::write_backup(
        destination(final_path),
        start.codec,
        &events,
        |archiver| store_level(archiver, &start.root_fd, &planned, scanned),
        move || working.prepare().map(|()| working),
        // Only after the archive is in place: a snapshot must never claim content that no
        // stored backup holds.
        |working| snapshots.install(id, level, working),
    )
}

/// Lists through `listing` the members the incremental backup of `definition` at `level`
/// would store now, by the same two passes as [`backup_files_incrementally`], writing
/// nothing: the new snapshot is planned into memory, the archive into a sink. (An index of
/// a previous snapshot of more than 128 Ki directories spills, as in a real run, to unnamed
/// temporary files, which leave nothing behind.)
pub fn dry_run_incrementally(
    work_dir: &Path,
    definition: &BackupDefinition,
    level: Option<u32>,
    events: &dyn BackupEvents,
    listing: &dyn Listing,
) -> Result<(), ProviderError> {
    let snapshots = Snapshots::new(work_dir);
    let mut start = start(&snapshots, definition, None, level)?;
    let dump_time = Timestamp::dump_start();
    let events = RootRelative(events);
    let listing = RootRelativeListing(listing);
    let mut planned = Vec::new();
    let scanned = scan(
        &mut start,
        definition,
        (&mut planned, Path::new("(the planned snapshot)")),
        dump_time,
        &events,
    )?;
    let planned = Planned::Memory(Arc::new(planned));
    let mut archiver = Archiver::listing(NullOutput::default(), &events, &listing);
    store_level(&mut archiver, &start.root_fd, &planned, scanned)
        .map_err(crate::dry_run::dry_run_failure)
}

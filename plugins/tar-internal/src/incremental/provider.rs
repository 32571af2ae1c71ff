//! Incremental backups of the `TarInternal` provider: GNU tar's `--listed-incremental`, in
//! process, sharing its snapshot files with GNU tar and with the `TarExternal` provider.
//!
//! The snapshot files are kept in the layout every provider shares ([`aa_abi::snapshots`]):
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
//!    its dumpdir, and the resulting record is appended to the working snapshot at once.
//! 2. The working snapshot is read back: first every directory becomes a member carrying its
//!    dumpdir as the `GNU.dumpdir` pax record (the renames on the first), then the files
//!    marked `Y` are examined (on a thread of their own, ahead of the archiver) and stored
//!    through the same pipeline as a full backup.
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
//! archive's own backup files ([`aa_abi::own_backups`]) are left out in the same way.
//!
//! Device numbers: a directory is recognised between levels by name, device and inode. On
//! file systems whose device number changes from one mount to the next (some network, FUSE
//! and removable file systems, LVM snapshots) every directory would look replaced and each
//! level would store everything; setting the environment variable [`NO_CHECK_DEVICE_VAR`](aa_abi::snapshots::NO_CHECK_DEVICE_VAR)
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

use std::collections::HashSet;
use std::ffi::{CStr, CString, OsStr};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use aa_abi::own_backups::OwnBackups;
use aa_abi::plugin::backup_path;
use aa_abi::snapshots::{check_backup_id, Snapshots};
use aa_abi::{
    BackupDefinition, BackupEvents, BackupOperationError, BackupSubOperation, ProviderError,
};

use super::detect::{
    child_name, file_changed, Children, DirStat, DirStatus, EntryState, ListedEntry,
};
use super::dumpdir::{self, Code, RenameOp};
use super::snapshot::{Header, Snapshot, SnapshotError, SnapshotReader, SnapshotWriter, Timestamp};
use super::{Options, Planner};
use crate::archive::{os_message, report_os_error, Archiver};
use crate::backup::StoreError;
use crate::compress::Codec;
use crate::pipeline::Stream;
use crate::sys::{self, open_regular, FileType, Opened, Stat};
use crate::walk::{normalise_path, Object, Step, MAX_OPEN_DEPTH};

/// The detection options [`NO_CHECK_DEVICE_VAR`](aa_abi::snapshots::NO_CHECK_DEVICE_VAR) selects.
pub fn options_from_env() -> Result<Options, ProviderError> {
    Ok(Options {
        check_device: aa_abi::snapshots::check_device_from_env()?,
    })
}

/// The path of an archive name below the root: `.` is the root itself (the empty path),
/// `./a` is `a`.
fn fs_relative(name: &[u8]) -> &[u8] {
    if name == b"." {
        return b"";
    }
    name.strip_prefix(b"./").unwrap_or(name)
}

/// A root-relative path for the `*at` calls on the root (`.` for the root itself).
fn c_path(relative: &[u8]) -> io::Result<CString> {
    let bytes = if relative.is_empty() { b"." } else { relative };
    sys::c_name(bytes)
}

fn join(parent: &[u8], child: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        return child.to_vec();
    }
    let mut path = Vec::with_capacity(parent.len() + 1 + child.len());
    path.extend_from_slice(parent);
    path.push(b'/');
    path.extend_from_slice(child);
    path
}

fn as_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

fn timestamp(sec: i64, nsec: i64) -> Timestamp {
    Timestamp::from_stat(sec, nsec)
}

/// A snapshot error as the provider reports it; the message names the file.
fn snapshot_failure(err: SnapshotError) -> ProviderError {
    match err.io_error().and_then(io::Error::raw_os_error) {
        Some(code) => ProviderError::io(code, err.to_string()),
        None => ProviderError::other(err.to_string()),
    }
}

fn fatal(path: &Path, error: &io::Error) -> ProviderError {
    ProviderError::io(
        error.raw_os_error().unwrap_or(0),
        format!("{}: {}", path.display(), os_message(error)),
    )
}

/// Presents member names (`./a`) to the events as the non-incremental backup names objects
/// (`a`): relative to the root.
struct RootRelative<'a>(&'a dyn BackupEvents);

fn root_relative(name: &Path) -> &Path {
    let bytes = name.as_os_str().as_bytes();
    match bytes.strip_prefix(b"./") {
        Some(rest) if !rest.is_empty() => as_path(rest),
        _ => name,
    }
}

impl BackupEvents for RootRelative<'_> {
    fn file_add(&self, name: &Path) {
        self.0.file_add(root_relative(name));
    }

    fn backup_operation_error(
        &self,
        operation: BackupSubOperation,
        error: BackupOperationError,
        name: Option<&Path>,
        message: Option<&str>,
    ) {
        self.0
            .backup_operation_error(operation, error, name.map(root_relative), message);
    }
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
    let id = definition.backup_id.as_str();
    check_backup_id(id)?;
    let options = options_from_env()?;
    let snapshots = Snapshots::new(work_dir);
    let level = snapshots.resolve_level(id, level)?;
    let final_path = backup_path(definition, Some(level), None)?;

    let root = definition.root();
    // Without its root the backup would be empty; refuse before touching anything.
    let root_metadata = fs::metadata(root).map_err(|e| fatal(root, &e))?;
    if !root_metadata.is_dir() {
        return Err(fatal(root, &io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
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
        Snapshot::read(&path).map_err(snapshot_failure)?
    };
    // Taken before the walk: what changes while the backup runs is stored again next time.
    let dump_time = Timestamp::dump_start();
    let events = RootRelative(events);

    // Pass 1. Dropped (and so deleted) on any failure below: stored snapshots stay as they were.
    let mut working = snapshots.working_file()?;
    let working_path = working.path().to_path_buf();
    let scan = {
        let output = BufWriter::new(working.file());
        let writer = SnapshotWriter::new(output, &Header::new(dump_time))
            .map_err(|e| snapshot_failure(e.with_path(&working_path)))?;
        let mut scan = Scan::new(
            &root_fd,
            Planner::new(previous, options),
            (writer, &working_path),
            definition,
            &events,
        );
        scan.run(definition)?;
        scan.finish()
            .map_err(|e| snapshot_failure(e.with_path(&working_path)))?
    };

    // Pass 2.
    crate::backup::write_backup(
        final_path,
        overwrite_at_start,
        codec,
        &events,
        |archiver| store_level(archiver, &root_fd, &working_path, scan),
        // Only after the archive is in place: a snapshot must never claim content that no
        // stored backup holds.
        || snapshots.install(id, level, working),
    )
}

/// What pass 1 leaves for pass 2.
struct Scanned {
    /// The rename records for the first directory member.
    renames: Vec<RenameOp>,
    /// Top-level non-directories to store (archive names).
    top_files: Vec<Vec<u8>>,
}

// ---- Pass 1: plan the directories --------------------------------------------------------

/// A directory whose subdirectories are being walked.
struct PlannedDir {
    name: Vec<u8>,
    /// Open while the walk is shallow enough; deeper, subdirectories are opened from the root
    /// (in pieces, [`sys::resolve`], so at any depth).
    fd: Option<OwnedFd>,
    children: Children,
    subdirectories: std::vec::IntoIter<Vec<u8>>,
}

struct Scan<'a, W: io::Write> {
    root: &'a OwnedFd,
    planner: Planner,
    writer: SnapshotWriter<W>,
    /// Where the writer writes, for its error messages.
    working_path: &'a Path,
    events: &'a dyn BackupEvents,
    excludes: HashSet<Vec<u8>>,
    /// The archive's own backup files, left out as excluded names are.
    own: Option<OwnBackups>,
    /// Every include when there are several, to skip one an earlier include's walk reached.
    includes: HashSet<Vec<u8>>,
    reached: HashSet<Vec<u8>>,
    top_files: Vec<Vec<u8>>,
    scratch: Vec<u8>,
}

impl<'a, W: io::Write> Scan<'a, W> {
    fn new(
        root: &'a OwnedFd,
        planner: Planner,
        (writer, working_path): (SnapshotWriter<W>, &'a Path),
        definition: &BackupDefinition,
        events: &'a dyn BackupEvents,
    ) -> Self {
        let bytes = |p: PathBuf| p.into_os_string().into_encoded_bytes();
        let includes: HashSet<Vec<u8>> = definition
            .includes()
            .map(|p| bytes(normalise_path(p)))
            .collect();
        Scan {
            root,
            planner,
            writer,
            working_path,
            events,
            excludes: definition
                .excludes()
                .map(|p| bytes(normalise_path(p)))
                .collect(),
            own: OwnBackups::new(definition),
            includes: if includes.len() > 1 {
                includes
            } else {
                HashSet::new()
            },
            reached: HashSet::new(),
            top_files: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Whether `relative` or one of its ancestors is excluded.
    fn is_excluded(&self, relative: &[u8]) -> bool {
        if self.excludes.is_empty() || relative.is_empty() {
            return false;
        }
        let mut end = relative.len();
        loop {
            if self.excludes.contains(&relative[..end]) {
                return true;
            }
            match relative[..end].iter().rposition(|&b| b == b'/') {
                Some(slash) => end = slash,
                None => return false,
            }
        }
    }

    fn report(&self, operation: BackupSubOperation, name: &[u8], error: &io::Error) {
        report_os_error(self.events, operation, as_path(name), error);
    }

    /// Walks every include, in byte order of their normalised paths.
    fn run(&mut self, definition: &BackupDefinition) -> Result<(), ProviderError> {
        let mut includes: Vec<Vec<u8>> = definition
            .includes()
            .map(|p| normalise_path(p).into_os_string().into_encoded_bytes())
            .collect();
        includes.sort();
        includes.dedup();
        for include in includes {
            if self.reached.contains(&include) || self.is_excluded(&include) {
                continue;
            }
            let own_file = self
                .own
                .as_ref()
                .is_some_and(|own| own.is_own_include(definition.root(), as_path(&include)));
            if own_file {
                continue;
            }
            // GNU tar's name for the root itself.
            let name = if include.is_empty() {
                b".".to_vec()
            } else {
                include.clone()
            };
            let path = match c_path(&include) {
                Ok(path) => path,
                Err(error) => {
                    self.report(BackupSubOperation::Stat, &name, &error);
                    continue;
                }
            };
            let stat = match sys::lstat_at(self.root.as_fd(), &path) {
                Ok(stat) => stat,
                Err(error) => {
                    self.report(BackupSubOperation::Stat, &name, &error);
                    continue;
                }
            };
            if !stat.is_dir() {
                let (mtime, ctime) = (
                    timestamp(stat.mtime, stat.mtime_nsec),
                    timestamp(stat.ctime, stat.ctime_nsec),
                );
                if file_changed(mtime, ctime, self.planner.since()) {
                    self.top_files.push(name);
                }
                continue;
            }
            match sys::open_dir(self.root.as_fd(), &path) {
                Ok(fd) => self.walk(name, fd)?,
                Err(error) => self.report(BackupSubOperation::Open, &name, &error),
            }
        }
        Ok(())
    }

    /// Plans directory `name` (open as `fd`) and everything below it, depth first.
    fn walk(&mut self, name: Vec<u8>, fd: OwnedFd) -> Result<(), ProviderError> {
        let mut stack: Vec<PlannedDir> = Vec::new();
        if let Some(frame) = self.plan(name, fd, None, true)? {
            stack.push(frame);
        }
        while let Some(frame) = stack.last_mut() {
            let Some(sub) = frame.subdirectories.next() else {
                stack.pop();
                continue;
            };
            let name = child_name(&frame.name, &sub);
            let opened = match &frame.fd {
                Some(parent) => {
                    sys::c_name(&sub).and_then(|base| sys::open_dir(parent.as_fd(), &base))
                }
                None => sys::at_path(self.root.as_fd(), fs_relative(&name), sys::open_dir),
            };
            let children = frame.children;
            let keep_open = stack.len() < MAX_OPEN_DEPTH;
            match opened {
                Ok(fd) => {
                    if let Some(frame) = self.plan(name, fd, Some(children), keep_open)? {
                        stack.push(frame);
                    }
                }
                Err(error) => self.report(BackupSubOperation::Open, &name, &error),
            }
        }
        Ok(())
    }

    /// Lists and plans one directory and writes its snapshot record; `None` if it cannot be
    /// listed (reported; it then has no record and no member).
    fn plan(
        &mut self,
        name: Vec<u8>,
        fd: OwnedFd,
        parent: Option<Children>,
        keep_open: bool,
    ) -> Result<Option<PlannedDir>, ProviderError> {
        let stat = match sys::fstat(fd.as_fd()) {
            Ok(stat) => stat,
            Err(error) => {
                self.report(BackupSubOperation::Stat, &name, &error);
                return Ok(None);
            }
        };
        let (mut names, mut entries) = (Vec::new(), Vec::new());
        if let Err(error) = sys::list_dir(fd.as_fd(), &mut self.scratch, &mut names, &mut entries) {
            self.report(BackupSubOperation::Open, &name, &error);
            return Ok(None);
        }
        let relative = fs_relative(&name).to_vec();
        let own = self
            .own
            .as_ref()
            .filter(|own| own.identity() == stat.identity());
        let mut listing = Vec::with_capacity(entries.len());
        for (offset, len, listed_type) in entries {
            let (offset, len) = (offset as usize, len as usize);
            let child = &names[offset..offset + len];
            let child_relative = join(&relative, child);
            let own_file = own.is_some_and(|own| own.is_own_name(child));
            let state = if own_file || self.excludes.contains(&child_relative) {
                EntryState::Excluded
            } else {
                if self.includes.contains(&child_relative) {
                    self.reached.insert(child_relative);
                }
                if listed_type == FileType::Directory {
                    EntryState::Directory
                } else {
                    self.examine(&fd, &names[offset..=offset + len], &name, child)
                }
            };
            listing.push(ListedEntry {
                name: child.to_vec(),
                state,
            });
        }
        drop(names);
        let dir = DirStat {
            dev: stat.dev,
            ino: stat.ino,
            mtime: timestamp(stat.mtime, stat.mtime_nsec),
        };
        let plan = self
            .planner
            .plan_directory(&name, dir, parent, listing)
            .map_err(snapshot_failure)?;
        if plan.status == DirStatus::Renamed {
            // As GNU tar warns "Directory has been renamed from ..." (no content is missing).
            self.events.backup_operation_error(
                BackupSubOperation::Read,
                BackupOperationError::DirectoryRenamed,
                Some(as_path(&name)),
                None,
            );
        }
        self.writer
            .write_record(&plan.record)
            .map_err(|e| snapshot_failure(e.with_path(self.working_path)))?;
        let subdirectories: Vec<Vec<u8>> = plan.subdirectories().map(<[u8]>::to_vec).collect();
        Ok(Some(PlannedDir {
            name,
            fd: keep_open.then_some(fd),
            children: plan.children,
            subdirectories: subdirectories.into_iter(),
        }))
    }

    /// The state of directory entry `with_nul` (its name and a NUL) of directory `dir_name`.
    fn examine(&self, dir: &OwnedFd, with_nul: &[u8], dir_name: &[u8], child: &[u8]) -> EntryState {
        let stat = CStr::from_bytes_with_nul(with_nul)
            .map_err(|_| sys::invalid_name_error())
            .and_then(|base| sys::lstat_at(dir.as_fd(), base));
        match stat {
            Ok(stat) if stat.is_dir() => EntryState::Directory,
            Ok(stat) => EntryState::Other {
                mtime: timestamp(stat.mtime, stat.mtime_nsec),
                ctime: timestamp(stat.ctime, stat.ctime_nsec),
            },
            Err(error) => {
                self.report(
                    BackupSubOperation::Stat,
                    &child_name(dir_name, child),
                    &error,
                );
                EntryState::Vanished
            }
        }
    }

    /// Completes the working snapshot.
    fn finish(self) -> Result<Scanned, SnapshotError> {
        // Flushed here; made durable when it is installed.
        self.writer.finish()?;
        Ok(Scanned {
            renames: self.planner.rename_ops(),
            top_files: self.top_files,
        })
    }
}

// ---- Pass 2: write the archive -----------------------------------------------------------

fn read_back(path: &Path) -> Result<SnapshotReader<BufReader<File>>, ProviderError> {
    let file = File::open(path).map_err(|e| fatal(path, &e))?;
    SnapshotReader::new(BufReader::new(file)).map_err(|e| snapshot_failure(e.with_path(path)))
}

/// Writes the members of the level planned in `snapshot`: the directories, then the files.
fn store_level(
    archiver: &mut Archiver<'_, Stream>,
    root: &Arc<OwnedFd>,
    snapshot: &Path,
    scanned: Scanned,
) -> Result<(), StoreError> {
    let mut reader = read_back(snapshot).map_err(StoreError::Other)?;
    let mut renames = Some(scanned.renames);
    loop {
        let record = match reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(e) => return Err(StoreError::Other(snapshot_failure(e.with_path(snapshot)))),
        };
        let name = as_path(&record.name);
        let stat = sys::at_path(root.as_fd(), fs_relative(&record.name), sys::lstat_at);
        let stat = match stat {
            Ok(stat) if stat.is_dir() => stat,
            Ok(_) => {
                archiver.file_changed(name);
                continue;
            }
            Err(error) => {
                archiver.report(BackupSubOperation::Stat, name, &error);
                continue;
            }
        };
        // The renames of the whole level go first, with the first directory.
        let ops = renames.take().unwrap_or_default();
        let dumpdir = dumpdir::encode(&record.entries, &ops)
            .map_err(|e| StoreError::Other(snapshot_failure(e)))?;
        archiver.add_directory_with_dumpdir(name, &stat, &dumpdir)?;
    }
    drop(reader);

    let (steps, files_thread) =
        spawn_files(root.clone(), snapshot.to_path_buf(), scanned.top_files)
            .map_err(StoreError::Archive)?;
    let stored = archiver.store_steps(steps);
    // The thread stops once its channel is gone (dropped by `store_steps`).
    let listed = files_thread.join();
    stored?;
    match listed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(StoreError::Other(error)),
        // Without it, the archive would silently miss files.
        Err(_) => Err(StoreError::Other(ProviderError::other(
            "the examination of the files to store failed unexpectedly",
        ))),
    }
}

/// The thread of [`spawn_files`]; it fails if the working snapshot cannot be read back.
type FilesThread = JoinHandle<Result<(), ProviderError>>;

/// Steps handed over at once: one channel operation per batch, not per file.
const BATCH: usize = 48;

/// Examines the files to store on a thread of its own, ahead of the archiver: the top-level
/// files, then the `Y` entries of every record of `snapshot`, in order.
fn spawn_files(
    root: Arc<OwnedFd>,
    snapshot: PathBuf,
    top_files: Vec<Vec<u8>>,
) -> io::Result<(Receiver<Vec<Step>>, FilesThread)> {
    // Two batches in flight bound the memory and the open descriptors waiting entries hold.
    let (tx, rx) = mpsc::sync_channel(2);
    let handle = std::thread::Builder::new()
        .name("aa-incremental".to_string())
        .spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            // `false` once the archiver is gone: it stopped, nothing more is needed.
            let mut push = |step: Step| {
                batch.push(step);
                batch.len() < BATCH
                    || tx
                        .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                        .is_ok()
            };
            for name in top_files {
                let step = match CString::new(name.clone()) {
                    Ok(base) => examine(&root, base, name),
                    Err(_) => invalid_name(name),
                };
                if !push(step) {
                    return Ok(());
                }
            }
            let mut reader = read_back(&snapshot)?;
            loop {
                let record = match reader.next_record() {
                    Ok(Some(record)) => record,
                    Ok(None) => break,
                    Err(e) => return Err(snapshot_failure(e.with_path(&snapshot))),
                };
                let mut dumped = record
                    .entries
                    .into_iter()
                    .filter(|entry| entry.code == Code::Dumped)
                    .peekable();
                if dumped.peek().is_none() {
                    continue;
                }
                let opened = sys::at_path(root.as_fd(), fs_relative(&record.name), sys::open_dir);
                let dir = match opened {
                    Ok(fd) => Arc::new(fd),
                    Err(error) => {
                        let step = Step::Error {
                            operation: BackupSubOperation::Open,
                            name: as_path(&record.name).to_path_buf(),
                            error,
                        };
                        if !push(step) {
                            return Ok(());
                        }
                        continue;
                    }
                };
                for entry in dumped {
                    let name = child_name(&record.name, &entry.name);
                    let step = match CString::new(entry.name) {
                        Ok(base) => examine(&dir, base, name),
                        Err(_) => invalid_name(name),
                    };
                    if !push(step) {
                        return Ok(());
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            Ok(())
        })?;
    Ok((rx, handle))
}

fn invalid_name(name: Vec<u8>) -> Step {
    Step::Error {
        operation: BackupSubOperation::Stat,
        name: PathBuf::from(OsStr::from_bytes(&name)),
        error: sys::invalid_name_error(),
    }
}

/// Examines `base` in `dir` for storing as member `name`, as the full backup's walk does:
/// regular files are opened here, symbolic links read.
fn examine(dir: &Arc<OwnedFd>, base: CString, name: Vec<u8>) -> Step {
    let name = PathBuf::from(OsStr::from_bytes(&name));
    let stat: Stat = match sys::lstat_at(dir.as_fd(), &base) {
        Ok(stat) => stat,
        Err(error) => {
            return Step::Error {
                operation: BackupSubOperation::Stat,
                name,
                error,
            }
        }
    };
    let mut entry = Object {
        name,
        // Examined completely here: the archiver has nothing to open.
        location: None,
        stat: Some(stat),
        link: None,
        file: None,
    };
    match stat.file_type() {
        FileType::Regular => match open_regular(dir, &base, Some(&stat)) {
            Opened::File(fd, at_open) => {
                entry.file = Some(fd);
                entry.stat = Some(at_open);
            }
            Opened::Failed(operation, error) => {
                return Step::Error {
                    operation,
                    name: entry.name,
                    error,
                }
            }
            Opened::Changed => return Step::Changed { name: entry.name },
        },
        // Planned as a file, a directory now: the next level stores it as a new one.
        FileType::Directory => return Step::Changed { name: entry.name },
        FileType::Symlink => match sys::readlink_at(dir.as_fd(), &base) {
            Ok(target) => entry.link = Some(target),
            Err(error) => {
                return Step::Error {
                    operation: BackupSubOperation::Open,
                    name: entry.name,
                    error,
                }
            }
        },
        _ => {}
    }
    Step::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(fs_relative(b"."), b"");
        assert_eq!(fs_relative(b"./a/b"), b"a/b");
        assert_eq!(fs_relative(b"a/b"), b"a/b");
        assert_eq!(c_path(b"").unwrap().as_bytes(), b".");
        assert_eq!(root_relative(Path::new("./a")), Path::new("a"));
        assert_eq!(root_relative(Path::new(".")), Path::new("."));
        assert_eq!(root_relative(Path::new("data/x")), Path::new("data/x"));
        assert_eq!(join(b"", b"a"), b"a");
        assert_eq!(join(b"d", b"a"), b"d/a");
    }
}

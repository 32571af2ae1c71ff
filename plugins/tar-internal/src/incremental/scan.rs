//! Pass 1 of an incremental level: the tree is walked depth first, directories only; each
//! directory is listed (`lstat` of every entry but subdirectories), [`Planner`] decides its
//! dumpdir, and the resulting record is appended to the working snapshot at once (see
//! [`super::provider`] for the whole run).

use std::collections::HashSet;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use aa_abi::{
    BackupDefinition, BackupEvents, BackupOperationError, BackupSubOperation, ProviderError,
};
use aa_provider_kit::OwnBackups;

use super::detect::{
    child_name, file_changed, Children, DirStat, DirStatus, EntryState, ListedEntry,
};
use super::dumpdir::RenameOp;
use super::snapshot::{SnapshotError, SnapshotWriter};
use super::support::{as_path, c_path, fs_relative, join, snapshot_failure, timestamp};
use super::Planner;
use crate::archive::report_os_error;
use crate::sys::{self, FileType};
use crate::walk::{normalise_path, MAX_OPEN_DEPTH};

/// What pass 1 leaves for pass 2.
pub(super) struct Scanned {
    /// The rename records for the first directory member.
    pub(super) renames: Vec<RenameOp>,
    /// Top-level non-directories to store (archive names).
    pub(super) top_files: Vec<Vec<u8>>,
    /// The level's roots record ([`aa_provider_kit::roots`]): the includes that exist, as
    /// members name them (`.` for the root itself), in the order they were walked.
    pub(super) roots: Vec<Vec<u8>>,
}

/// Whether `error` says that an include does not exist (rather than that it could not be
/// examined).
fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == libc::ENOENT || code == libc::ENOTDIR
    )
}

/// A directory whose subdirectories are being walked.
struct PlannedDir {
    name: Vec<u8>,
    /// Open while the walk is shallow enough; deeper, subdirectories are opened from the root
    /// (in pieces, [`sys::resolve`], so at any depth).
    fd: Option<OwnedFd>,
    children: Children,
    subdirectories: std::vec::IntoIter<Vec<u8>>,
}

pub(super) struct Scan<'a, W: io::Write> {
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
    roots: Vec<Vec<u8>>,
    scratch: Vec<u8>,
}

impl<'a, W: io::Write> Scan<'a, W> {
    pub(super) fn new(
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
            roots: Vec::new(),
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
    pub(super) fn run(&mut self, definition: &BackupDefinition) -> Result<(), ProviderError> {
        let mut includes: Vec<Vec<u8>> = definition
            .includes()
            .map(|p| normalise_path(p).into_os_string().into_encoded_bytes())
            .collect();
        includes.sort();
        includes.dedup();
        for include in includes {
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
            if self.reached.contains(&include) {
                // Listed in the dumpdir of an include above it, and so found.
                self.roots.push(name);
                continue;
            }
            let own_file = self
                .own
                .as_ref()
                .is_some_and(|own| own.is_own_include(definition.root(), as_path(&include)));
            if own_file || self.is_excluded(&include) {
                // Left alone like an excluded name in a dumpdir (`N`): a restore keeps what
                // an earlier level stored there. Only an include that is gone is no root.
                if sys::lstat_at(self.root.as_fd(), &path).is_ok() {
                    self.roots.push(name);
                }
                continue;
            }
            let stat = match sys::lstat_at(self.root.as_fd(), &path) {
                Ok(stat) => stat,
                Err(error) => {
                    if !is_missing(&error) {
                        // It may well exist: a restore must not delete it for this level.
                        self.roots.push(name.clone());
                    }
                    self.report(BackupSubOperation::Stat, &name, &error);
                    continue;
                }
            };
            self.roots.push(name.clone());
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
    pub(super) fn finish(self) -> Result<Scanned, SnapshotError> {
        // Flushed here; made durable when it is installed.
        self.writer.finish()?;
        Ok(Scanned {
            renames: self.planner.rename_ops(),
            top_files: self.top_files,
            roots: self.roots,
        })
    }
}

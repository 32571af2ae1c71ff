//! Pass 2 of an incremental level: the working snapshot is read back; first every directory
//! becomes a member carrying its dumpdir as the `GNU.dumpdir` pax record (the renames of the
//! whole level on the first), then the files marked `Y` are examined (on a thread of their
//! own, ahead of the archiver) and stored as a full backup stores them.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use aa_abi::{BackupSubOperation, ProviderError};

use super::detect::child_name;
use super::dumpdir::{self, Code};
use super::scan::Scanned;
use super::snapshot::SnapshotReader;
use super::support::{as_path, fs_relative, snapshot_failure};
use crate::archive::Archiver;
use crate::backup::StoreError;
use crate::fatal;
use crate::output::TarOutput;
use crate::sys::{self, open_regular, FileType, Opened, Stat};
use crate::walk::{Object, Step};

/// Where pass 1 left the level's new snapshot: the working file of a real run, or memory
/// for a dry run (which writes no file).
#[derive(Clone)]
pub(super) enum Planned {
    File(PathBuf),
    Memory(Arc<Vec<u8>>),
}

impl Planned {
    /// The name errors give it.
    fn path(&self) -> &Path {
        match self {
            Planned::File(path) => path,
            Planned::Memory(_) => Path::new("(the planned snapshot)"),
        }
    }
}

/// Bytes of a shared buffer, readable from another thread.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

type PlannedReader = SnapshotReader<Box<dyn BufRead + Send>>;

fn read_back(planned: &Planned) -> Result<PlannedReader, ProviderError> {
    let input: Box<dyn BufRead + Send> = match planned {
        Planned::File(path) => Box::new(BufReader::new(
            File::open(path).map_err(|e| fatal(path, &e))?,
        )),
        Planned::Memory(bytes) => Box::new(io::Cursor::new(Shared(bytes.clone()))),
    };
    SnapshotReader::new(input).map_err(|e| snapshot_failure(e.with_path(planned.path())))
}

/// Writes the members of the level planned in `snapshot`: the directories, then the files.
pub(super) fn store_level<O: TarOutput>(
    archiver: &mut Archiver<'_, O>,
    root: &Arc<OwnedFd>,
    planned: &Planned,
    scanned: Scanned,
) -> Result<(), StoreError> {
    let snapshot = planned.path();
    let mut reader = read_back(planned).map_err(StoreError::Other)?;
    // First of all, before any member: which top-level entries this level has.
    archiver.add_blocks(&aa_provider_kit::roots::record_blocks(&scanned.roots))?;
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

    let (steps, files_thread) = spawn_files(root.clone(), planned.clone(), scanned.top_files)
        .map_err(StoreError::Archive)?;
    let stored = archiver.store_steps(steps);
    // The thread stops once its channel is gone (dropped by `store_steps`).
    let listed = files_thread.join();
    stored?;
    match listed {
        // The end-of-archive blocks, as a full backup ends.
        Ok(Ok(())) => Ok(archiver.finish()?),
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
    snapshot: Planned,
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
                    Err(e) => return Err(snapshot_failure(e.with_path(snapshot.path()))),
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

//! Working files: a snapshot being written, private to one run until it is installed.
//!
//! A working file is named after the process that made it and held locked while it lives, so
//! a later run can tell the files of a run that was killed (SIGKILL, a power cut) from those
//! of a live one, and removes the former ([`remove_abandoned_working_files`]).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aa_abi::ProviderError;
use rustix::fs::FlockOperation;
use rustix::process::Pid;

use crate::layout::io_error;

/// Working files end differently, so they are never taken for a stored snapshot.
const WORKING_PREFIX: &str = ".working-";
const WORKING_SUFFIX: &str = ".snar.tmp";

/// The process id in the name of a working file (see [`WorkingFile::create_in`]).
fn working_file_pid(name: &[u8]) -> Option<Pid> {
    let rest = name
        .strip_prefix(WORKING_PREFIX.as_bytes())?
        .strip_suffix(WORKING_SUFFIX.as_bytes())?;
    let digits = rest.split(|&b| b == b'-').next()?;
    let pid: i32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Pid::from_raw(pid)
}

/// Whether the process `pid` exists (one we may not signal exists too).
fn process_exists(pid: Pid) -> bool {
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Takes an exclusive lock on `file` without waiting; it lasts until the file is closed.
fn try_lock(file: &File) -> bool {
    rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// Removes the working files in `dir` that a run killed before it could clean up (SIGKILL, a
/// power cut) left behind. A working file is abandoned when the process named in it no longer
/// exists and nobody holds its lock (a live run keeps it locked; the lock also covers a run in
/// another PID namespace sharing the directory). Best effort: what cannot be checked or
/// removed stays.
pub(crate) fn remove_abandoned_working_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = working_file_pid(entry.file_name().as_bytes()) else {
            continue;
        };
        if process_exists(pid) {
            continue;
        }
        let path = entry.path();
        if let Ok(file) = File::open(&path) {
            if try_lock(&file) {
                log::debug!("removing {}, left by a run that was killed", path.display());
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// A working file name in `dir` from the process id, a counter and the time.
fn fresh_name(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(
        "{WORKING_PREFIX}{}-{}-{nanos:09}{WORKING_SUFFIX}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A snapshot being written, removed when dropped unless it was installed.
#[derive(Debug)]
pub struct WorkingFile {
    path: PathBuf,
    file: File,
    keep: bool,
}

impl WorkingFile {
    /// Creates a file of a name no other working file has (a unique name from the process id,
    /// a counter and the time; `create_new` refuses to reuse one left by a crash).
    pub(crate) fn create_in(dir: &Path) -> Result<WorkingFile, ProviderError> {
        let mut last_error = None;
        for _ in 0..100 {
            let path = fresh_name(dir);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => {
                    // Held while this run lives, so that no other run takes the file for
                    // abandoned (see [`remove_abandoned_working_files`]).
                    try_lock(&file);
                    return Ok(WorkingFile {
                        path,
                        file,
                        keep: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => return Err(io_error(dir, &e)),
            }
        }
        let err = last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists));
        Err(io_error(dir, &err))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file, open for reading and writing.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// What of [`WorkingFile::persist`] a full or failing disk can make fail, done before
    /// the backup this snapshot belongs to replaces the previous one, so that such a failure
    /// leaves both as they were: the content made durable, and a rename in the snapshots
    /// directory (to a fresh working name), as the installing one will be.
    pub fn prepare(&mut self) -> Result<(), ProviderError> {
        File::open(&self.path)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error(&self.path, &e))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let renamed = fresh_name(dir);
        fs::rename(&self.path, &renamed).map_err(|e| io_error(&self.path, &e))?;
        self.path = renamed;
        Ok(())
    }

    /// Makes the content durable and renames the file to `target` atomically.
    pub(crate) fn persist(mut self, target: &Path) -> Result<(), ProviderError> {
        // Whoever wrote it (us or GNU tar) may have replaced it; sync what is there now.
        File::open(&self.path)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error(&self.path, &e))?;
        fs::rename(&self.path, target).map_err(|e| io_error(target, &e))?;
        self.keep = true;
        Ok(())
    }
}

impl Deref for WorkingFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for WorkingFile {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkingFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Working files of runs that are gone are removed; those of live runs stay.
    #[test]
    fn abandoned_working_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = crate::Snapshots::new(dir.path());
        snapshots.create_dir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let name =
            |pid: u32, n: u32| format!("{WORKING_PREFIX}{pid}-{n}-000000001{WORKING_SUFFIX}");
        let path = |name: &str| snapshots.dir().join(name);
        let abandoned = name(dead, 0);
        let locked = name(dead, 1);
        let ours = name(std::process::id(), 2);
        for n in [
            &abandoned,
            &locked,
            &ours,
            "proj.snar",
            ".working-x.snar.tmp",
        ] {
            fs::write(path(n), b"").unwrap();
        }
        // A run in another PID namespace: its pid means nothing here, but it holds the lock.
        let holder = File::open(path(&locked)).unwrap();
        assert!(try_lock(&holder));

        let new = snapshots.working_file().unwrap();
        let mut left = fs::read_dir(snapshots.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>();
        left.sort();
        let new_name = new
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let mut expected = vec![
            locked,
            ours,
            new_name,
            "proj.snar".into(),
            ".working-x.snar.tmp".into(),
        ];
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(
            working_file_pid(b".working-12-0-5.snar.tmp"),
            Pid::from_raw(12)
        );
        assert_eq!(working_file_pid(b".working-0-0-5.snar.tmp"), None);
        assert_eq!(working_file_pid(b".working-12-0-5.snar"), None);
    }
}

//! One `aa` run per archive at a time.
//!
//! Two runs backing up the same archive at once (a cron job overlapping a manual run) would
//! write the same backup, continue the same snapshot chain and update the same realm,
//! and could leave state that matches none of the backups. So an archive is locked for the
//! whole of its processing, hooks included, with an advisory lock (`flock`) on
//! `<user-config-dir>/locks/NAME.lock`; a second run reports the archive as busy, naming the
//! process that holds it, and goes on with the next archive.
//!
//! The kernel drops the lock when its process ends, however it ends, so a killed run never
//! leaves a stale lock behind, and whoever holds the lock knows that any snapshot working file
//! of the archive was abandoned. (Partial backup files may be written by a run on another
//! machine sharing the destination, with its own lock; each carries a lock of its own, see
//! `aa_abi::naming::OutputFile`.) Lock files are never deleted: deleting
//! one while another run waits to open it would let two runs lock two different files. The
//! original has no such lock; it ignores the extra directory.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use aa_abi::naming::archive_name_problem;
use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

const LOCKS_SUBDIR: &str = "locks";

/// The lock of one archive, held until dropped.
#[derive(Debug)]
pub struct ArchiveLock {
    file: File,
}

impl Drop for ArchiveLock {
    /// Unlocks explicitly: a `flock` lasts while any descriptor of the open file exists, and a
    /// child forked meanwhile (by another thread, to exec a hook or GNU tar) holds a copy until
    /// its exec closes it, so closing ours alone could leave the archive locked for a moment.
    fn drop(&mut self) {
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

/// Why an archive could not be locked.
#[derive(Debug)]
pub struct LockError {
    path: PathBuf,
    kind: LockErrorKind,
}

#[derive(Debug)]
enum LockErrorKind {
    /// Another run holds the lock; its process id, if it wrote one.
    Busy(Option<u32>),
    Io(io::Error),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            LockErrorKind::Busy(pid) => {
                write!(f, "Another aa run is processing this archive")?;
                if let Some(pid) = pid {
                    write!(f, " (process {pid})")?;
                }
                write!(f, "; skipped. Lock: {}", self.path.display())
            }
            LockErrorKind::Io(e) => write!(f, "Cannot lock {}: {e}", self.path.display()),
        }
    }
}

impl std::error::Error for LockError {}

/// The lock file of archive `name`.
pub fn lock_path(user_config_dir: &Path, name: &str) -> PathBuf {
    user_config_dir
        .join(LOCKS_SUBDIR)
        .join(format!("{name}.lock"))
}

impl ArchiveLock {
    /// Locks archive `name` without waiting: an error if another run holds it.
    pub fn acquire(user_config_dir: &Path, name: &str) -> Result<ArchiveLock, LockError> {
        let path = lock_path(user_config_dir, name);
        let io_error = |e| LockError {
            path: path.clone(),
            kind: LockErrorKind::Io(e),
        };
        // The spec reader refuses such names; this keeps a caller that did not ask it from
        // writing a process id over a file outside the locks directory.
        if let Some(problem) = archive_name_problem(name) {
            return Err(io_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid archive name: {problem}"),
            )));
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_error)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if e != Errno::WOULDBLOCK {
                return Err(io_error(e.into()));
            }
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(LockError {
                kind: LockErrorKind::Busy(holder.trim().parse().ok()),
                path,
            });
        }
        // Who holds it, for the message of a run that finds it busy; only informative.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(ArchiveLock { file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_the_same_archive_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = ArchiveLock::acquire(dir.path(), "home").unwrap();
        let other = ArchiveLock::acquire(dir.path(), "home.v2").unwrap();
        let err = ArchiveLock::acquire(dir.path(), "home").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!("(process {})", std::process::id())),
            "{message}"
        );
        assert!(message.contains("locks/home.lock"), "{message}");
        drop(first);
        ArchiveLock::acquire(dir.path(), "home").unwrap();
        drop(other);
    }

    #[test]
    fn a_name_that_is_not_a_file_name_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.lock");
        fs::write(&victim, b"precious").unwrap();
        let config = dir.path().join("config");
        for name in ["../victim", "a/b", "..", ""] {
            let err = ArchiveLock::acquire(&config, name).unwrap_err();
            assert!(err.to_string().contains("invalid archive name"), "{err}");
        }
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(!config.exists());
    }

    #[test]
    fn an_unwritable_lock_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LOCKS_SUBDIR), b"a file, not a directory").unwrap();
        let err = ArchiveLock::acquire(dir.path(), "home").unwrap_err();
        assert!(err.to_string().starts_with("Cannot lock "), "{err}");
    }
}

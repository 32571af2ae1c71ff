//! The user's snapshot file named where GNU tar names its working copy.
//!
//! An incremental run gives tar a private working copy of the previous level's snapshot (see
//! [`aa_provider_kit::Snapshots::working_copy`]), so a failed run never alters a stored
//! snapshot. tar names that copy (`.working-...snar.tmp`) in its messages, a file the user
//! never made and that is gone once the run ends; what is damaged is their `NAME[.N].snar`.
//! [`SnapshotName`] puts that name in the events and errors instead.

use std::borrow::Cow;
use std::cell::Cell;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use aa_abi::{BackupEvents, BackupOperationError, BackupSubOperation};

use crate::Error;

/// Replaces the working copy's path by the user's snapshot path.
pub struct SnapshotName {
    working: PathBuf,
    shown: PathBuf,
}

impl SnapshotName {
    /// `working` as tar is given it (absolute); `shown`, the file it stands for.
    pub fn new(working: &Path, shown: PathBuf) -> SnapshotName {
        SnapshotName {
            working: std::path::absolute(working).unwrap_or_else(|_| working.to_path_buf()),
            shown,
        }
    }

    /// `name` with a leading working path replaced (tar adds `:LINE` to it, say).
    pub fn path<'p>(&self, name: &'p Path) -> Cow<'p, Path> {
        let bytes = name.as_os_str().as_bytes();
        match bytes.strip_prefix(self.working.as_os_str().as_bytes()) {
            Some(rest) => {
                let shown = [self.shown.as_os_str().as_bytes(), rest].concat();
                Cow::Owned(PathBuf::from(OsStr::from_bytes(&shown)))
            }
            None => Cow::Borrowed(name),
        }
    }

    /// `text` with every occurrence of the working path replaced.
    pub fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let working = self.working.to_string_lossy();
        if text.contains(working.as_ref()) {
            Cow::Owned(text.replace(working.as_ref(), &self.shown.to_string_lossy()))
        } else {
            Cow::Borrowed(text)
        }
    }

    /// `error` with the working path replaced in its text.
    pub fn error(&self, error: Error) -> Error {
        error.map_detail(|detail| self.text(&detail).into_owned())
    }

    /// `events` with the working path replaced in names and messages.
    pub fn events<'a>(&'a self, events: &'a dyn BackupEvents) -> Renamed<'a> {
        Renamed {
            name: self,
            events,
            snapshot_failed: Cell::new(false),
        }
    }

    /// The file the working copy stands for.
    pub fn shown(&self) -> &Path {
        &self.shown
    }
}

/// See [`SnapshotName::events`].
pub struct Renamed<'a> {
    name: &'a SnapshotName,
    events: &'a dyn BackupEvents,
    snapshot_failed: Cell<bool>,
}

impl Renamed<'_> {
    /// Whether tar reported an error about the snapshot itself (it could not write or close
    /// it, say): the backup must not replace the previous one then, since its snapshot may
    /// be incomplete. tar counts it among the file errors it goes on after.
    pub fn snapshot_failed(&self) -> bool {
        self.snapshot_failed.get()
    }
}

impl BackupEvents for Renamed<'_> {
    fn file_add(&self, name: &Path) {
        self.events.file_add(name);
    }

    fn backup_operation_error(
        &self,
        operation: BackupSubOperation,
        error: BackupOperationError,
        name: Option<&Path>,
        message: Option<&str>,
    ) {
        let working = self.name.working.as_os_str().as_bytes();
        if name.is_some_and(|n| n.as_os_str().as_bytes().starts_with(working)) {
            self.snapshot_failed.set(true);
        }
        let name = name.map(|n| self.name.path(n));
        let message = message.map(|m| self.name.text(m));
        self.events
            .backup_operation_error(operation, error, name.as_deref(), message.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_working_path_becomes_the_users_snapshot() {
        let names = SnapshotName::new(
            Path::new("/c/snapshots/.working-1-2.snar.tmp"),
            PathBuf::from("/c/snapshots/t.snar"),
        );
        assert_eq!(
            names.path(Path::new("/c/snapshots/.working-1-2.snar.tmp:1")),
            Path::new("/c/snapshots/t.snar:1")
        );
        assert_eq!(names.path(Path::new("d/a")), Path::new("d/a"));
        assert_eq!(
            names.text("/c/snapshots/.working-1-2.snar.tmp: byte 20: bad"),
            "/c/snapshots/t.snar: byte 20: bad"
        );
        let error = Error::tar_failed(
            "unrecoverable error".into(),
            "/c/snapshots/.working-1-2.snar.tmp:1: Invalid time stamp".into(),
        );
        assert_eq!(
            names.error(error).to_string(),
            "GNU tar failed (unrecoverable error): /c/snapshots/t.snar:1: Invalid time stamp"
        );
    }
}

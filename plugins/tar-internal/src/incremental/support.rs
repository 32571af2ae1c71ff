//! Small conversions the two passes of an incremental level share: archive member names
//! (`./a`) to paths below the root and back, the member names the backup events see, and
//! snapshot errors as the provider reports them.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use aa_abi::{BackupEvents, BackupOperationError, BackupSubOperation, ProviderError};

use super::snapshot::{SnapshotError, Timestamp};
use crate::archive::Listing;
use crate::sys;

/// The path of an archive name below the root: `.` is the root itself (the empty path),
/// `./a` is `a`.
pub(super) fn fs_relative(name: &[u8]) -> &[u8] {
    if name == b"." {
        return b"";
    }
    name.strip_prefix(b"./").unwrap_or(name)
}

/// A root-relative path for the `*at` calls on the root (`.` for the root itself).
pub(super) fn c_path(relative: &[u8]) -> io::Result<CString> {
    let bytes = if relative.is_empty() { b"." } else { relative };
    sys::c_name(bytes)
}

pub(super) fn join(parent: &[u8], child: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        return child.to_vec();
    }
    let mut path = Vec::with_capacity(parent.len() + 1 + child.len());
    path.extend_from_slice(parent);
    path.push(b'/');
    path.extend_from_slice(child);
    path
}

pub(super) fn as_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

pub(super) fn timestamp(sec: i64, nsec: i64) -> Timestamp {
    Timestamp::from_stat(sec, nsec)
}

/// A snapshot error as the provider reports it; the message names the file.
pub(super) fn snapshot_failure(err: SnapshotError) -> ProviderError {
    match err.io_error().and_then(io::Error::raw_os_error) {
        Some(code) => ProviderError::io(code, err.to_string()),
        None => ProviderError::other(err.to_string()),
    }
}

/// Presents member names (`./a`) to the events as the non-incremental backup names objects
/// (`a`): relative to the root.
pub(super) struct RootRelative<'a>(pub(super) &'a dyn BackupEvents);

pub(super) fn root_relative(name: &Path) -> &Path {
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

/// [`RootRelative`] for a dry run's members.
pub(super) struct RootRelativeListing<'a>(pub(super) &'a dyn Listing);

impl Listing for RootRelativeListing<'_> {
    fn member(&self, name: &Path, size: u64) {
        self.0.member(root_relative(name), size);
    }
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

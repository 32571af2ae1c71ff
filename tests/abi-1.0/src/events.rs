//! The events a provider raises while it makes a backup, as a plain Rust trait used on both
//! sides of the boundary (the FFI adapters live in [`crate::host`] and [`crate::plugin`]).

use std::path::Path;

use crate::types::{BackupOperationError, BackupSubOperation};

/// The seed's `fileAdd` and `backupOperationError` events.
pub trait BackupEvents {
    /// A file system object (path relative to the backup root) was added to the backup.
    fn file_add(&self, name: &Path);

    /// A non-fatal error occurred. `name` is given for file operations, `message` for unknown
    /// errors.
    fn backup_operation_error(
        &self,
        operation: BackupSubOperation,
        error: BackupOperationError,
        name: Option<&Path>,
        message: Option<&str>,
    );
}

/// Ignores every event.
pub struct NoEvents;

impl BackupEvents for NoEvents {
    fn file_add(&self, _name: &Path) {}
    fn backup_operation_error(
        &self,
        _operation: BackupSubOperation,
        _error: BackupOperationError,
        _name: Option<&Path>,
        _message: Option<&str>,
    ) {
    }
}

//! Helpers shared by the checks and by this crate's integration tests: an event recorder,
//! GNU tar restoration of an incremental chain (from `aa_tests`), and a comparison of directory state that
//! ignores what a correct provider may legitimately change.
//!
//! Fixtures, snapshots and diffs come from `aa_tests`; only what the end-to-end tests do not
//! need lives here.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use aa_abi::{BackupEvents, BackupOperationError, BackupSubOperation, ProviderErrorKind};
pub use aa_tests::gnu_restore_incremental;
use aa_tests::{snapshot, tree_diff, Compare, Kind, Snapshot};

/// One `backup_operation_error` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedError {
    pub operation: BackupSubOperation,
    pub error: BackupOperationError,
    /// The object's name, normalised with [`normalise_member`].
    pub name: Option<Vec<u8>>,
    pub message: Option<String>,
}

impl ReportedError {
    /// One readable line, for failure messages.
    pub fn describe(&self) -> String {
        let name = self
            .name
            .as_deref()
            .map(aa_tests::show)
            .unwrap_or_else(|| "-".to_string());
        let message = self.message.as_deref().unwrap_or("");
        format!("{}/{} {name} {message}", self.operation, self.error)
            .trim_end()
            .to_string()
    }
}

/// Records the events a provider raises during one call.
#[derive(Debug, Default)]
pub struct Recorder {
    added: RefCell<Vec<Vec<u8>>>,
    errors: RefCell<Vec<ReportedError>>,
}

impl Recorder {
    /// Names passed to `file_add`, normalised with [`normalise_member`], in call order.
    pub fn added(&self) -> Vec<Vec<u8>> {
        self.added.borrow().clone()
    }

    pub fn errors(&self) -> Vec<ReportedError> {
        self.errors.borrow().clone()
    }
}

impl BackupEvents for Recorder {
    fn file_add(&self, name: &Path) {
        self.added
            .borrow_mut()
            .push(normalise_member(name.as_os_str().as_encoded_bytes()));
    }

    fn backup_operation_error(
        &self,
        operation: BackupSubOperation,
        error: BackupOperationError,
        name: Option<&Path>,
        message: Option<&str>,
    ) {
        self.errors.borrow_mut().push(ReportedError {
            operation,
            error,
            name: name.map(|n| normalise_member(n.as_os_str().as_encoded_bytes())),
            message: message.map(str::to_string),
        });
    }
}

/// A member or event name without leading `./` and trailing `/`: how a directory or the root
/// is spelt differs between writers and is not a behaviour the suite holds anyone to.
pub fn normalise_member(name: &[u8]) -> Vec<u8> {
    let mut s = name;
    while let Some(rest) = s.strip_prefix(b"./") {
        s = rest;
        while let Some(rest) = s.strip_prefix(b"/") {
            s = rest;
        }
    }
    while s.len() > 1 && s.ends_with(b"/") {
        s = &s[..s.len() - 1];
    }
    if s.is_empty() || s == b"." {
        Vec::new()
    } else {
        s.to_vec()
    }
}

/// A snapshot of everything below `dir` (not `dir` itself) in which directory modification
/// times are zeroed: creating and removing a temporary file changes its directory's time,
/// which a correct provider may do, while every file's content and time must stay put.
pub fn dir_state(dir: &Path) -> Snapshot {
    let mut state = snapshot(dir);
    state.remove(&Vec::new());
    for entry in state.values_mut() {
        if entry.kind == Kind::Dir {
            entry.mtime_secs = 0;
            entry.mtime_nanos = 0;
        }
    }
    state
}

/// The differences between two [`dir_state`]s (exact, including sub-second file times).
pub fn state_diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    tree_diff(before, after, Compare { mtime_nanos: true })
}

/// The names in `dir` that end in `._partial`.
pub fn partial_files(dir: &Path) -> Vec<String> {
    let names: BTreeSet<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(aa_abi::naming::PARTIAL_SUFFIX))
                .collect()
        })
        .unwrap_or_default();
    names.into_iter().collect()
}

/// The constant's name, e.g. `INVALID_VALUE`.
pub fn kind_name(kind: ProviderErrorKind) -> String {
    match kind {
        ProviderErrorKind::UNSUPPORTED_TYPE => "UNSUPPORTED_TYPE".into(),
        ProviderErrorKind::UNSUPPORTED_FEATURE => "UNSUPPORTED_FEATURE".into(),
        ProviderErrorKind::INVALID_VALUE => "INVALID_VALUE".into(),
        ProviderErrorKind::NOT_IMPLEMENTED => "NOT_IMPLEMENTED".into(),
        ProviderErrorKind::IO => "IO".into(),
        ProviderErrorKind::OTHER => "OTHER".into(),
        ProviderErrorKind(n) => format!("ProviderErrorKind({n})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_normalised() {
        assert_eq!(normalise_member(b"./a/b/"), b"a/b");
        assert_eq!(normalise_member(b"a"), b"a");
        assert_eq!(normalise_member(b"./"), b"");
        assert_eq!(normalise_member(b"."), b"");
        assert_eq!(normalise_member(b".hidden/"), b".hidden");
        assert_eq!(normalise_member(b"caf\xe9"), b"caf\xe9");
    }

    #[test]
    fn dir_state_ignores_directory_times_only() {
        let tmp = tempfile::tempdir().unwrap();
        let sub = tmp.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("f"), b"x").unwrap();
        let before = dir_state(tmp.path());
        std::fs::write(sub.join("tmp"), b"").unwrap();
        std::fs::remove_file(sub.join("tmp")).unwrap();
        assert_eq!(
            state_diff(&before, &dir_state(tmp.path())),
            Vec::<String>::new()
        );
        std::fs::write(sub.join("f"), b"y").unwrap();
        assert!(!state_diff(&before, &dir_state(tmp.path())).is_empty());
    }
}

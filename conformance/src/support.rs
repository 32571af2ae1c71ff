//! Helpers shared by the checks and by this crate's integration tests: the event recorder
//! (the one of `aa-provider-kit`) with the suite's view of its names, and a comparison of
//! directory state that ignores what a correct provider may legitimately change.
//!
//! Fixtures, tree records and GNU tar wrappers are this crate's toolkit at its root
//! ([`crate::TreeBuilder`], [`crate::record_tree`], [`crate::gnu_extract`], ...).

use std::collections::BTreeSet;
use std::path::Path;

use aa_abi::ProviderErrorKind;
pub use aa_provider_kit::recording::{Recorder, ReportedError};

use crate::{record_tree, tree_diff, Compare, Kind, TreeRecord};

/// The names passed to `file_add`, normalised with [`normalise_member`], in call order.
pub fn added_members(events: &Recorder) -> Vec<Vec<u8>> {
    events
        .added()
        .iter()
        .map(|name| normalise_member(name))
        .collect()
}

/// The `backup_operation_error` events, each name normalised with [`normalise_member`].
pub fn reported_errors(events: &Recorder) -> Vec<ReportedError> {
    events
        .errors()
        .into_iter()
        .map(|e| ReportedError {
            name: e.name.as_deref().map(normalise_member),
            ..e
        })
        .collect()
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

/// A record of everything below `dir` (not `dir` itself) in which directory modification
/// times are zeroed: creating and removing a temporary file changes its directory's time,
/// which a correct provider may do, while every file's content and time must stay put.
pub fn dir_state(dir: &Path) -> TreeRecord {
    let mut state = record_tree(dir);
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
pub fn state_diff(before: &TreeRecord, after: &TreeRecord) -> Vec<String> {
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

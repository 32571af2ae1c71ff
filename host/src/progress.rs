//! What a full backup will read, counted beforehand so that its status line can show an ETA.
//!
//! The total comes from a walk of the backup root's include entries (metadata only, no file
//! is opened), leaving out the excluded entries and their subtrees as every provider does.
//! The walk is only asked for when a status line is drawn, and only for a full backup
//! (level 0 or not incremental): an incremental level stores what changed, which neither this
//! walk (it counts the unchanged files too) nor the realm can tell beforehand (the realm keeps
//! the previous levels' *compressed* sizes, not the bytes read), so such a level shows bytes,
//! files and rate but no ETA. The walk warms the metadata cache the backup then reads, so it
//! adds less than its own time to the run.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What a full backup reads: the root and its include and exclude entries (relative to it,
/// wildcards expanded).
#[derive(Debug, Clone)]
pub struct Plan {
    pub root: PathBuf,
    pub includes: Vec<PathBuf>,
    pub excludes: Vec<PathBuf>,
}

/// Objects and bytes (of regular files) a backup will store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
}

impl Plan {
    /// Walks the included trees (without following symbolic links). Unreadable parts are
    /// simply not counted: the backup itself reports them.
    pub fn totals(&self) -> Totals {
        let excludes: HashSet<&Path> = self.excludes.iter().map(PathBuf::as_path).collect();
        let mut totals = Totals::default();
        let mut seen = HashSet::new();
        let mut stack: Vec<PathBuf> = self
            .includes
            .iter()
            .map(|i| normalise(i))
            .filter(|i| !is_excluded(i, &excludes))
            .collect();
        while let Some(relative) = stack.pop() {
            let Ok(meta) = std::fs::symlink_metadata(self.root.join(&relative)) else {
                continue;
            };
            // An include inside another one is stored once.
            if !seen.insert(relative.clone()) {
                continue;
            }
            totals.files += 1;
            if meta.is_file() {
                totals.bytes += meta.len();
            } else if meta.is_dir() {
                let Ok(entries) = std::fs::read_dir(self.root.join(&relative)) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let child = relative.join(entry.file_name());
                    if !excludes.contains(child.as_path()) {
                        stack.push(child);
                    }
                }
            }
        }
        totals
    }
}

/// `path` without `.` components and trailing slashes, as the providers match it.
fn normalise(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// Whether `path` or one of its ancestors is excluded.
fn is_excluded(path: &Path, excludes: &HashSet<&Path>) -> bool {
    path.ancestors()
        .any(|a| !a.as_os_str().is_empty() && excludes.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_a_backup_stores() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("d/skip")).unwrap();
        std::fs::write(root.join("a"), "12345").unwrap();
        std::fs::write(root.join("d/b"), "123").unwrap();
        std::fs::write(root.join("d/skip/c"), "1234567").unwrap();
        std::fs::write(root.join("d/x"), "1").unwrap();
        std::os::unix::fs::symlink("a", root.join("d/l")).unwrap();
        let plan = Plan {
            root: root.to_path_buf(),
            includes: vec!["a".into(), "./d/".into(), "d/b".into(), "gone".into()],
            excludes: vec!["d/skip".into(), "d/x".into()],
        };
        // a, d, d/b, d/l: the symbolic link counts as an object of no bytes.
        assert_eq!(plan.totals(), Totals { files: 4, bytes: 8 });
    }
}

//! Which file system objects go into the backup, and in what order.
//!
//! Includes and excludes are paths relative to the backup root, already wildcard-expanded by
//! the host. A leading `./` and a trailing `/` are not significant and are removed; `.` alone
//! means the root itself, whose content is then stored without a member for the root.
//!
//! Exclude semantics: an exclude entry matches a member exactly, by its path relative to the
//! root, or any of the member's ancestor directories, so excluding a directory excludes its
//! whole subtree. There are no wildcards at this level. Excluded directories are not entered
//! at all, which keeps an excluded unreadable directory from producing errors.
//!
//! The order is deterministic so that two backups of the same tree are identical: includes
//! in byte order of their paths, the entries of a directory in byte order of their names, and
//! every directory before its content. Symbolic links are never followed.
//!
//! Overlapping includes (`dir` and `dir/a`) store each object once: an include that was
//! already reached by walking an earlier include is skipped. Because a path sorts after its
//! ancestors, the ancestor is always walked first. Only include paths are remembered, so the
//! memory used does not grow with the size of the tree; the walk itself holds one sorted
//! listing per directory level.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use aa_abi::BackupSubOperation;

/// Removes the insignificant `./` prefixes and `/` suffixes from a root-relative path; `.`
/// becomes the empty path (the root).
pub fn normalize(path: &Path) -> PathBuf {
    let mut bytes = path.as_os_str().as_bytes();
    loop {
        if let Some(rest) = bytes.strip_prefix(b"./") {
            bytes = rest;
        } else if bytes.len() > 1 && bytes.ends_with(b"/") {
            bytes = &bytes[..bytes.len() - 1];
        } else {
            break;
        }
    }
    if bytes == b"." {
        bytes = b"";
    }
    PathBuf::from(OsStr::from_bytes(bytes))
}

/// An object to store.
#[derive(Debug)]
pub struct Entry {
    /// The path relative to the root, as it is stored (without a trailing `/`).
    pub name: PathBuf,
    /// The path to open.
    pub path: PathBuf,
    /// `lstat` of `path`.
    pub metadata: Metadata,
}

/// What the walk produces: an object, or a failure to examine one.
#[derive(Debug)]
pub enum Step {
    Entry(Entry),
    /// `operation` on `name` (relative to the root) failed; the walk goes on without it.
    Error {
        operation: BackupSubOperation,
        name: PathBuf,
        error: io::Error,
    },
}

/// One directory being listed.
struct Frame {
    name: PathBuf,
    children: std::vec::IntoIter<OsString>,
}

/// Iterates over the objects to store in the documented order.
pub struct Walker {
    root: PathBuf,
    includes: std::vec::IntoIter<PathBuf>,
    /// Every include, to recognise one that an earlier include's walk already reached.
    include_set: HashSet<PathBuf>,
    reached_includes: HashSet<PathBuf>,
    excludes: HashSet<PathBuf>,
    stack: Vec<Frame>,
    /// A directory just produced, to be listed before the walk goes on.
    to_list: Option<PathBuf>,
}

impl Walker {
    pub fn new<'a>(
        root: &Path,
        includes: impl IntoIterator<Item = &'a Path>,
        excludes: impl IntoIterator<Item = &'a Path>,
    ) -> Walker {
        let mut includes: Vec<PathBuf> = includes.into_iter().map(normalize).collect();
        includes.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
        includes.dedup();
        let include_set = includes.iter().cloned().collect();
        Walker {
            root: root.to_path_buf(),
            includes: includes.into_iter(),
            include_set,
            reached_includes: HashSet::new(),
            excludes: excludes.into_iter().map(normalize).collect(),
            stack: Vec::new(),
            to_list: None,
        }
    }

    /// Whether `name` or one of its ancestors is excluded.
    fn is_excluded(&self, name: &Path) -> bool {
        !self.excludes.is_empty()
            && name
                .ancestors()
                .any(|a| !a.as_os_str().is_empty() && self.excludes.contains(a))
    }

    /// Examines `name`; a directory is remembered for listing.
    fn visit(&mut self, name: PathBuf) -> Step {
        let path = self.root.join(&name);
        match fs::symlink_metadata(&path) {
            Ok(metadata) => {
                if metadata.is_dir() {
                    self.to_list = Some(name.clone());
                }
                if self.include_set.len() > 1 && self.include_set.contains(&name) {
                    self.reached_includes.insert(name.clone());
                }
                Step::Entry(Entry {
                    name,
                    path,
                    metadata,
                })
            }
            Err(error) => Step::Error {
                operation: BackupSubOperation::Stat,
                name,
                error,
            },
        }
    }

    /// Reads and sorts the entries of directory `name`; `Err` if it cannot be listed.
    fn list(&self, name: &Path) -> Result<Vec<OsString>, (PathBuf, io::Error)> {
        let path = self.root.join(name);
        let mut children = Vec::new();
        let fail = |error| (name.to_path_buf(), error);
        for entry in fs::read_dir(&path).map_err(fail)? {
            children.push(entry.map_err(fail)?.file_name());
        }
        children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        Ok(children)
    }
}

impl Iterator for Walker {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if let Some(dir) = self.to_list.take() {
            match self.list(&dir) {
                Ok(children) => self.stack.push(Frame {
                    name: dir,
                    children: children.into_iter(),
                }),
                Err((name, error)) => {
                    return Some(Step::Error {
                        operation: BackupSubOperation::Open,
                        name,
                        error,
                    })
                }
            }
        }
        while let Some(frame) = self.stack.last_mut() {
            let Some(child) = frame.children.next() else {
                self.stack.pop();
                continue;
            };
            let name = frame.name.join(child);
            // The ancestors were checked before their listing was read.
            if !self.excludes.contains(&name) {
                return Some(self.visit(name));
            }
        }
        loop {
            let include = self.includes.next()?;
            if self.reached_includes.contains(&include) || self.is_excluded(&include) {
                continue;
            }
            if include.as_os_str().is_empty() {
                // The root itself: store its content, not a member named after the root.
                match fs::symlink_metadata(&self.root) {
                    Ok(m) if m.is_dir() => {
                        self.to_list = Some(include);
                        return self.next();
                    }
                    Ok(_) => continue,
                    Err(error) => {
                        return Some(Step::Error {
                            operation: BackupSubOperation::Stat,
                            name: PathBuf::from("."),
                            error,
                        })
                    }
                }
            }
            return Some(self.visit(include));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(root: &Path, includes: &[&str], excludes: &[&str]) -> Vec<String> {
        let inc: Vec<&Path> = includes.iter().map(Path::new).collect();
        let exc: Vec<&Path> = excludes.iter().map(Path::new).collect();
        Walker::new(root, inc, exc)
            .map(|s| match s {
                Step::Entry(e) => e.name.to_string_lossy().into_owned(),
                Step::Error { name, .. } => format!("ERR {}", name.display()),
            })
            .collect()
    }

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in ["dir/sub/deep", "dir/empty", "dir-x", "other"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        for f in [
            "dir/b",
            "dir/a",
            "dir/sub/f",
            "dir/sub/deep/g",
            "dir-x/y",
            "other/z",
        ] {
            fs::write(r.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("dir", r.join("link")).unwrap();
        t
    }

    #[test]
    fn normalizes_dot_slash_and_trailing_slashes() {
        assert_eq!(normalize(Path::new("./a/b/")), Path::new("a/b"));
        assert_eq!(normalize(Path::new("././a//")), Path::new("a"));
        assert_eq!(normalize(Path::new(".")), Path::new(""));
        assert_eq!(normalize(Path::new("./")), Path::new(""));
        assert_eq!(normalize(Path::new("a")), Path::new("a"));
    }

    #[test]
    fn sorted_with_directories_first() {
        let t = tree();
        assert_eq!(
            names(t.path(), &["other", "dir", "dir-x"], &[]),
            [
                "dir",
                "dir/a",
                "dir/b",
                "dir/empty",
                "dir/sub",
                "dir/sub/deep",
                "dir/sub/deep/g",
                "dir/sub/f",
                "dir-x",
                "dir-x/y",
                "other",
                "other/z"
            ]
        );
    }

    #[test]
    fn excluded_directory_removes_its_subtree() {
        let t = tree();
        assert_eq!(
            names(t.path(), &["dir"], &["dir/sub/", "./dir/b"]),
            ["dir", "dir/a", "dir/empty"]
        );
        // An exclude only matches whole path components.
        assert_eq!(
            names(t.path(), &["dir", "dir-x"], &["dir"]),
            ["dir-x", "dir-x/y"]
        );
        // An include inside an excluded directory stays excluded.
        assert!(names(t.path(), &["dir/sub/f"], &["dir/sub"]).is_empty());
    }

    #[test]
    fn overlapping_includes_are_stored_once() {
        let t = tree();
        assert_eq!(
            names(
                t.path(),
                &["dir/sub", "dir/a", "dir", "dir/"],
                &["dir/sub/deep"]
            ),
            ["dir", "dir/a", "dir/b", "dir/empty", "dir/sub", "dir/sub/f"]
        );
        // Through a symbolic link the include is a different object and is stored.
        assert_eq!(
            names(t.path(), &["link", "link/a"], &[]),
            ["link", "link/a"]
        );
    }

    #[test]
    fn root_include_stores_content_without_a_root_member() {
        let t = tree();
        let all = names(t.path(), &["."], &["dir", "dir-x"]);
        assert_eq!(all, ["link", "other", "other/z"]);
    }

    #[test]
    fn missing_include_is_a_stat_error() {
        let t = tree();
        assert_eq!(
            names(t.path(), &["nope", "other"], &[]),
            ["ERR nope", "other", "other/z"]
        );
    }
}

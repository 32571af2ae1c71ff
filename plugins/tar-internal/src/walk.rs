//! Which file system objects go into the backup, and in what order: the walk yields
//! [`Step`]s, each an [`Object`] to store (examined, a regular file already open) or a
//! failure to examine one, which the archiver turns into members or events.
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
//! The archive's own backup files are left out ([`aa_provider_kit::OwnBackups`], given with
//! [`Walker::leaving_out`]): as includes, and as entries of the directory that is the
//! destination, recognised by device and inode when it is listed.
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
//!
//! Speed: objects are examined relative to an open descriptor of their directory, so the
//! kernel resolves one name per call. Regular files are opened here, on the walk's thread,
//! and handed to the archiver open, so looking up and opening file N+1 overlaps with reading
//! file N. Entries the directory listing reports as regular files are not `lstat`ed at all:
//! their metadata comes from `fstat` after opening, saving a system call per file.
//!
//! Depth: the walk keeps the descriptors of the first [`MAX_OPEN_DEPTH`] levels open, and
//! below them only that of the directory being listed, so at most `MAX_OPEN_DEPTH + 1`
//! directories are open at once however deep the tree. A deep directory whose descriptor was
//! closed while a subdirectory was walked is opened again by its path from the root when the
//! walk comes back to it, in pieces the kernel accepts ([`sys::resolve`]), so there is no
//! limit on the depth (GNU tar stores any depth too; only extracting is limited by
//! `PATH_MAX`). The reopened directory must be the one listed (same device and inode), else
//! it is reported as changed and the rest of its listing is left out. This costs one path
//! lookup per deep directory, not per file. [`spawn`] runs the walk on its own thread, ahead
//! of the archiver, handing over batches of steps through a bounded channel.

use std::collections::HashSet;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use aa_abi::BackupSubOperation;
use aa_provider_kit::OwnBackups;

use crate::sys::{self, c_name, invalid_name_error, open_regular, FileType, Opened, Stat};

/// Directories deeper than this are not kept open while their subdirectories are walked.
pub const MAX_OPEN_DEPTH: usize = 64;

/// A root-relative include or exclude entry in the form members are matched in
/// ([`aa_abi::naming::normalise_entry`]); `.` becomes the empty path (the root).
pub fn normalise_path(path: &Path) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(aa_abi::naming::normalise_entry(
        path.as_os_str().as_bytes(),
    )))
}

/// An object to store.
#[derive(Debug)]
pub struct Object {
    /// The path relative to the root, as it is stored (without a trailing `/`).
    pub name: PathBuf,
    /// For an object the archiver must open itself: its directory and its name there.
    pub location: Option<(Arc<OwnedFd>, CString)>,
    /// Metadata of the object: of the opened file for a regular file, else its `lstat`.
    /// `None` only for an entry the archiver must examine itself (from `location`).
    pub stat: Option<Stat>,
    /// The target of a symbolic link.
    pub link: Option<Vec<u8>>,
    /// A regular file, opened for reading.
    pub file: Option<OwnedFd>,
}

/// What the walk produces: an object, or a failure to examine one.
#[derive(Debug)]
pub enum Step {
    Object(Object),
    /// `operation` on `name` (relative to the root) failed; the walk goes on without it.
    Error {
        operation: BackupSubOperation,
        name: PathBuf,
        error: io::Error,
    },
    /// `name` was replaced between listing and opening; what was listed is gone.
    Changed {
        name: PathBuf,
    },
}

/// One directory being listed.
struct Listing {
    name: PathBuf,
    /// The open directory; `None` below [`MAX_OPEN_DEPTH`] while a subdirectory is walked.
    dir: Option<Arc<OwnedFd>>,
    /// (device, inode), to check that a reopened directory is the one listed.
    identity: (u64, u64),
    /// The entry names, each followed by a NUL.
    names: Vec<u8>,
    /// (offset in `names`, length, type from the listing), sorted by name.
    entries: Vec<(u32, u32, FileType)>,
    next: usize,
}

/// A directory to list before the walk goes on: its name, and where to open it.
struct Pending {
    name: PathBuf,
    dir: Arc<OwnedFd>,
    base: CString,
}

/// Iterates over the objects to store in the documented order.
pub struct Walker {
    root: Arc<OwnedFd>,
    includes: std::vec::IntoIter<PathBuf>,
    /// Every include, to recognise one that an earlier include's walk already reached.
    include_set: HashSet<PathBuf>,
    reached_includes: HashSet<PathBuf>,
    excludes: HashSet<PathBuf>,
    own: Option<OwnBackups>,
    stack: Vec<Listing>,
    to_list: Option<Pending>,
    scratch: Vec<u8>,
}

impl Walker {
    /// A walk of `root` (followed if it is a symbolic link); fails if it cannot be opened.
    pub fn new<'a>(
        root: &Path,
        includes: impl IntoIterator<Item = &'a Path>,
        excludes: impl IntoIterator<Item = &'a Path>,
    ) -> io::Result<Walker> {
        let root_fd = std::fs::File::open(root)?;
        let mut includes: Vec<PathBuf> = includes.into_iter().map(normalise_path).collect();
        includes.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
        includes.dedup();
        let include_set = includes.iter().cloned().collect();
        Ok(Walker {
            root: Arc::new(OwnedFd::from(root_fd)),
            includes: includes.into_iter(),
            include_set,
            reached_includes: HashSet::new(),
            excludes: excludes.into_iter().map(normalise_path).collect(),
            own: None,
            stack: Vec::new(),
            to_list: None,
            scratch: Vec::new(),
        })
    }

    /// Leaves out the archive's own backup files (includes naming them, and entries of the
    /// destination directory), found from `root`, the walk's root.
    pub fn leaving_out(mut self, root: &Path, own: Option<OwnBackups>) -> Walker {
        if let Some(own) = &own {
            let includes: Vec<PathBuf> = std::mem::take(&mut self.includes)
                .filter(|include| !own.is_own_include(root, include))
                .collect();
            self.includes = includes.into_iter();
        }
        self.own = own;
        self
    }

    /// Whether `name` or one of its ancestors is excluded.
    fn is_excluded(&self, name: &Path) -> bool {
        !self.excludes.is_empty()
            && name
                .ancestors()
                .any(|a| !a.as_os_str().is_empty() && self.excludes.contains(a))
    }

    /// Opens, reads and sorts directory `pending`.
    fn list(&mut self, pending: &Pending) -> io::Result<Listing> {
        let fd = sys::open_dir(pending.dir.as_fd(), &pending.base)?;
        let identity = sys::fstat(fd.as_fd())?.identity();
        let mut names = Vec::new();
        let mut entries = Vec::new();
        sys::list_dir(fd.as_fd(), &mut self.scratch, &mut names, &mut entries)?;
        let name_of = |&(offset, len, _): &(u32, u32, FileType)| {
            &names[offset as usize..offset as usize + len as usize]
        };
        if let Some(own) = self.own.as_ref().filter(|own| own.identity() == identity) {
            entries.retain(|e| !own.is_own_name(name_of(e)));
        }
        entries.sort_unstable_by(|a, b| name_of(a).cmp(name_of(b)));
        Ok(Listing {
            name: pending.name.clone(),
            dir: Some(Arc::new(fd)),
            identity,
            names,
            entries,
            next: 0,
        })
    }

    /// Examines the next child of the innermost directory.
    fn next_child(&mut self) -> Option<Step> {
        while let Some(frame) = self.stack.last_mut() {
            let Some(&(offset, len, listed_type)) = frame.entries.get(frame.next) else {
                self.stack.pop();
                continue;
            };
            let dir = match &frame.dir {
                Some(dir) => dir.clone(),
                None => match reopen(&self.root, frame) {
                    Ok(dir) => frame.dir.insert(dir).clone(),
                    Err(step) => {
                        self.stack.pop();
                        return Some(*step);
                    }
                },
            };
            frame.next += 1;
            let (offset, len) = (offset as usize, len as usize);
            let child = OsStr::from_bytes(&frame.names[offset..offset + len]);
            let name = frame.name.join(child);
            // The ancestors were checked before their listing was read.
            if self.excludes.contains(&name) {
                continue;
            }
            let includes = (&self.include_set, &mut self.reached_includes);
            let step = match CStr::from_bytes_with_nul(&frame.names[offset..=offset + len]) {
                Ok(base) => visit(name, &dir, base, listed_type, includes, &mut self.to_list),
                Err(_) => invalid_name(name),
            };
            return Some(step);
        }
        None
    }
}

/// Opens `frame`'s directory again, by its path from `root`; a different object there now is
/// a change.
fn reopen(root: &OwnedFd, frame: &Listing) -> Result<Arc<OwnedFd>, Box<Step>> {
    let opened = sys::at_path(
        root.as_fd(),
        frame.name.as_os_str().as_bytes(),
        sys::open_dir,
    );
    let fd = opened.map_err(|error| {
        Box::new(Step::Error {
            operation: BackupSubOperation::Open,
            name: frame.name.clone(),
            error,
        })
    })?;
    match sys::fstat(fd.as_fd()) {
        Ok(stat) if stat.identity() == frame.identity => Ok(Arc::new(fd)),
        _ => Err(Box::new(Step::Changed {
            name: frame.name.clone(),
        })),
    }
}

fn invalid_name(name: PathBuf) -> Step {
    Step::Error {
        operation: BackupSubOperation::Stat,
        name,
        error: invalid_name_error(),
    }
}

/// Examines `name` (`base` in `dir`); a regular file is opened, a directory is remembered in
/// `to_list` for listing. `includes` are the include set and the includes reached so far.
fn visit(
    name: PathBuf,
    dir: &Arc<OwnedFd>,
    base: &CStr,
    listed_type: FileType,
    includes: (&HashSet<PathBuf>, &mut HashSet<PathBuf>),
    to_list: &mut Option<Pending>,
) -> Step {
    let (include_set, reached_includes) = includes;
    if include_set.len() > 1 && include_set.contains(&name) {
        reached_includes.insert(name.clone());
    }
    let listed = if listed_type == FileType::Regular {
        None
    } else {
        match sys::lstat_at(dir.as_fd(), base) {
            Ok(stat) => Some(stat),
            Err(error) => {
                return Step::Error {
                    operation: BackupSubOperation::Stat,
                    name,
                    error,
                }
            }
        }
    };
    let mut entry = Object {
        name,
        location: None,
        stat: listed,
        link: None,
        file: None,
    };
    match listed.map(|s| s.file_type()) {
        None | Some(FileType::Regular) => match open_regular(dir, base, listed.as_ref()) {
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
        Some(FileType::Directory) => {
            *to_list = Some(Pending {
                name: entry.name.clone(),
                dir: dir.clone(),
                base: base.to_owned(),
            });
        }
        Some(FileType::Symlink) => match sys::readlink_at(dir.as_fd(), base) {
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

impl Iterator for Walker {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if let Some(pending) = self.to_list.take() {
            match self.list(&pending) {
                Ok(frame) => {
                    if self.stack.len() >= MAX_OPEN_DEPTH {
                        // Reopened from the root when the walk comes back to it.
                        if let Some(parent) = self.stack.last_mut() {
                            parent.dir = None;
                        }
                    }
                    self.stack.push(frame)
                }
                Err(error) => {
                    return Some(Step::Error {
                        operation: BackupSubOperation::Open,
                        name: pending.name,
                        error,
                    })
                }
            }
        }
        if let Some(step) = self.next_child() {
            return Some(step);
        }
        loop {
            let include = self.includes.next()?;
            if self.reached_includes.contains(&include) || self.is_excluded(&include) {
                continue;
            }
            if include.as_os_str().is_empty() {
                // The root itself: store its content, not a member named after the root.
                self.to_list = Some(Pending {
                    name: include,
                    dir: self.root.clone(),
                    base: c".".to_owned(),
                });
                return self.next();
            }
            let Ok(base) = c_name(include.as_os_str().as_bytes()) else {
                return Some(invalid_name(include));
            };
            let includes = (&self.include_set, &mut self.reached_includes);
            let step = visit(
                include,
                &self.root,
                &base,
                FileType::Unknown,
                includes,
                &mut self.to_list,
            );
            return Some(step);
        }
    }
}

/// Steps handed over at once: one channel operation per batch, not per file.
const BATCH: usize = 48;

/// Runs `walker` on its own thread. The channel holds two batches, which bounds the memory
/// and the descriptors (open files and directories) that waiting entries hold.
pub fn spawn(walker: Walker) -> io::Result<(Receiver<Vec<Step>>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel(2);
    let handle = std::thread::Builder::new()
        .name("aa-walk".to_string())
        .spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            for step in walker {
                batch.push(step);
                if batch.len() == BATCH
                    && tx
                        .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                        .is_err()
                {
                    // The archiver stopped.
                    return;
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
        })?;
    Ok((rx, handle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn names(root: &Path, includes: &[&str], excludes: &[&str]) -> Vec<String> {
        let inc: Vec<&Path> = includes.iter().map(Path::new).collect();
        let exc: Vec<&Path> = excludes.iter().map(Path::new).collect();
        Walker::new(root, inc, exc)
            .unwrap()
            .map(|s| match s {
                Step::Object(e) => e.name.to_string_lossy().into_owned(),
                Step::Error { name, .. } => format!("ERR {}", name.display()),
                Step::Changed { name } => format!("CHANGED {}", name.display()),
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
    fn normalises_dot_slash_and_trailing_slashes() {
        assert_eq!(normalise_path(Path::new("./a/b/")), Path::new("a/b"));
        assert_eq!(normalise_path(Path::new("././a//")), Path::new("a"));
        assert_eq!(normalise_path(Path::new(".")), Path::new(""));
        assert_eq!(normalise_path(Path::new("./")), Path::new(""));
        assert_eq!(normalise_path(Path::new("a")), Path::new("a"));
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

    #[test]
    fn any_depth_is_walked() {
        let t = tempfile::tempdir().unwrap();
        let expected = aa_tests::deep_tree(t.path(), 3000, b"deep");
        // A sibling after the chain: the walk comes back up through every level.
        fs::write(t.path().join("z"), "z").unwrap();
        let walked = names(t.path(), &["d", "z"], &[]);
        let mut want: Vec<String> = expected
            .iter()
            .map(|m| String::from_utf8(m.clone()).unwrap())
            .collect();
        want.sort_by_key(|m| m.matches('/').count());
        want.push("z".to_string());
        assert_eq!(walked, want);
    }

    #[test]
    fn a_deep_directory_replaced_while_its_subdirectory_is_walked_is_a_change() {
        let t = tempfile::tempdir().unwrap();
        let depth = MAX_OPEN_DEPTH + 1;
        let dir = |levels: usize| t.path().join(vec!["d"; levels].join("/"));
        fs::create_dir_all(dir(depth + 2)).unwrap();
        // Listed after `d`, so still to come when the walk is back from `d`.
        fs::write(dir(depth).join("z"), "z").unwrap();
        let replaced = dir(depth);
        let mut steps = Vec::new();
        for step in Walker::new(t.path(), [Path::new("d")], []).unwrap() {
            let name = match step {
                Step::Object(e) => e.name.to_string_lossy().into_owned(),
                Step::Error { name, .. } => format!("ERR {}", name.display()),
                Step::Changed { name } => format!("CHANGED {}", name.display()),
            };
            if name.matches('/').count() == depth + 1 {
                // The deepest directory: its ancestor at `depth` is not open now.
                fs::rename(&replaced, t.path().join("moved")).unwrap();
                fs::create_dir(&replaced).unwrap();
            }
            steps.push(name);
        }
        let name = replaced
            .strip_prefix(t.path())
            .unwrap()
            .display()
            .to_string();
        assert_eq!(steps.last().unwrap(), &format!("CHANGED {name}"));
        assert!(!steps.iter().any(|s| s.ends_with("/z")), "{steps:?}");
    }
}

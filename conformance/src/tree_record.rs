//! A record of a directory tree (every object's type, permission bits, owner, modification
//! time, size, content hash, link target and hard link group) and the readable differences
//! between two records: how a restored backup is compared with its source.
//!
//! Not to be confused with a GNU tar *snapshot* file (the state of an incremental chain): this
//! is a plain in-memory picture of a tree, taken with `lstat`, that never follows a link.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

/// What a backup must preserve of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_secs: i64,
    pub mtime_nanos: i64,
    /// Size of a regular file, 0 otherwise.
    pub size: u64,
    /// FNV-1a hash of a regular file's content.
    pub content_hash: Option<u64>,
    pub link_target: Option<Vec<u8>>,
    /// For a file with several names in the tree: the smallest of those names.
    pub hardlink_group: Option<Vec<u8>>,
}

/// Relative path bytes (the root itself is the empty path) to entry.
pub type TreeRecord = BTreeMap<Vec<u8>, Entry>;

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Records every object under `dir` (and `dir` itself), without following symbolic links.
pub fn record_tree(dir: &Path) -> TreeRecord {
    let mut record = TreeRecord::new();
    let mut inodes: HashMap<(u64, u64), Vec<Vec<u8>>> = HashMap::new();
    walk(dir, Vec::new(), &mut record, &mut inodes);
    for names in inodes.values().filter(|names| names.len() > 1) {
        let group = names.iter().min().cloned();
        for name in names {
            record.get_mut(name).expect("recorded").hardlink_group = group.clone();
        }
    }
    record
}

fn walk(
    path: &Path,
    rel: Vec<u8>,
    record: &mut TreeRecord,
    inodes: &mut HashMap<(u64, u64), Vec<Vec<u8>>>,
) {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        Kind::File
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_fifo() {
        Kind::Fifo
    } else if ft.is_char_device() {
        Kind::CharDevice
    } else if ft.is_block_device() {
        Kind::BlockDevice
    } else {
        Kind::Socket
    };
    let mut entry = Entry {
        kind,
        // A symlink's own mode is meaningless on Linux (always 0777).
        mode: if kind == Kind::Symlink {
            0
        } else {
            meta.mode() & 0o7777
        },
        uid: meta.uid(),
        gid: meta.gid(),
        mtime_secs: meta.mtime(),
        mtime_nanos: meta.mtime_nsec(),
        size: 0,
        content_hash: None,
        link_target: None,
        hardlink_group: None,
    };
    match kind {
        Kind::File => {
            let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            entry.size = data.len() as u64;
            entry.content_hash = Some(fnv1a(&data));
            if meta.nlink() > 1 {
                inodes
                    .entry((meta.dev(), meta.ino()))
                    .or_default()
                    .push(rel.clone());
            }
        }
        Kind::Symlink => {
            let target = fs::read_link(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            entry.link_target = Some(target.as_os_str().as_bytes().to_vec());
        }
        _ => {}
    }
    record.insert(rel.clone(), entry);
    if kind == Kind::Dir {
        let mut children: Vec<_> = fs::read_dir(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|e| e.expect("read_dir entry").file_name())
            .collect();
        children.sort();
        for child in children {
            let mut child_rel = rel.clone();
            if !child_rel.is_empty() {
                child_rel.push(b'/');
            }
            child_rel.extend_from_slice(child.as_bytes());
            walk(&path.join(&child), child_rel, record, inodes);
        }
    }
}

/// A record without `prefix` and everything below it (for trees with excludes).
pub fn without(record: &TreeRecord, prefix: &[u8]) -> TreeRecord {
    record
        .iter()
        .filter(|(path, _)| {
            !(path.as_slice() == prefix
                || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/')))
        })
        .map(|(p, e)| (p.clone(), e.clone()))
        .collect()
}

/// Readable form of a relative path.
pub fn show(path: &[u8]) -> String {
    if path.is_empty() {
        ".".to_string()
    } else {
        path.escape_ascii().to_string()
    }
}

/// How strictly two trees are compared.
#[derive(Debug, Clone, Copy, Default)]
pub struct Compare {
    /// Whether sub-second modification times must match (only pax archives store them).
    pub mtime_nanos: bool,
}

/// The differences between two tree records, one readable line each; empty when identical.
pub fn tree_diff(expected: &TreeRecord, actual: &TreeRecord, how: Compare) -> Vec<String> {
    let mut out = Vec::new();
    for (path, e) in expected {
        let Some(a) = actual.get(path) else {
            out.push(format!("missing:    {} ({:?})", show(path), e.kind));
            continue;
        };
        let p = show(path);
        let mut field = |name: &str, exp: &dyn fmt::Debug, act: &dyn fmt::Debug| {
            out.push(format!(
                "different:  {p}: {name} expected {exp:?}, got {act:?}"
            ));
        };
        if e.kind != a.kind {
            field("kind", &e.kind, &a.kind);
            continue;
        }
        if e.mode != a.mode {
            field("mode", &Octal(e.mode), &Octal(a.mode));
        }
        if (e.uid, e.gid) != (a.uid, a.gid) {
            field("owner", &(e.uid, e.gid), &(a.uid, a.gid));
        }
        let mtime_differs =
            e.mtime_secs != a.mtime_secs || (how.mtime_nanos && e.mtime_nanos != a.mtime_nanos);
        if mtime_differs {
            field(
                "mtime",
                &(e.mtime_secs, e.mtime_nanos),
                &(a.mtime_secs, a.mtime_nanos),
            );
        }
        if e.size != a.size {
            field("size", &e.size, &a.size);
        }
        if e.content_hash != a.content_hash {
            field("content hash", &e.content_hash, &a.content_hash);
        }
        if e.link_target != a.link_target {
            let show_target = |t: &Option<Vec<u8>>| t.as_deref().map(show);
            field(
                "link target",
                &show_target(&e.link_target),
                &show_target(&a.link_target),
            );
        }
        if e.hardlink_group != a.hardlink_group {
            let show_group = |t: &Option<Vec<u8>>| t.as_deref().map(show);
            field(
                "hard link group",
                &show_group(&e.hardlink_group),
                &show_group(&a.hardlink_group),
            );
        }
    }
    for (path, a) in actual {
        if !expected.contains_key(path) {
            out.push(format!("unexpected: {} ({:?})", show(path), a.kind));
        }
    }
    out
}

struct Octal(u32);

impl fmt::Debug for Octal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// Panics with a readable list of differences unless the trees match.
#[track_caller]
pub fn assert_same_tree(expected: &TreeRecord, actual: &TreeRecord, how: Compare, context: &str) {
    let diff = tree_diff(expected, actual, how);
    if !diff.is_empty() {
        panic!(
            "{context}: extracted tree differs from the source ({} differences):\n  {}",
            diff.len(),
            diff.join("\n  ")
        );
    }
}

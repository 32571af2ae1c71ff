//! Source trees to back up: a builder that gives every object a distinct modification time
//! with nanoseconds, the two fixtures every provider is checked on, and poorly and well
//! compressible data.
//!
//! Distinct times matter because a restored tree is compared with its source field by field:
//! two objects with the same time could hide one restored with the other's.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, Timespec, Timestamps, CWD};

/// A path from raw bytes, for names that are not UTF-8.
pub fn bpath(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// Builds a tree and gives every object a distinct modification time with nanoseconds.
///
/// Times are applied by [`TreeBuilder::finish`] once everything exists, directories last and
/// deepest first, because creating an entry changes its parent's mtime.
pub struct TreeBuilder {
    root: PathBuf,
    timed: Vec<PathBuf>,
}

impl TreeBuilder {
    /// Creates `root` (mode 0755) and starts a tree in it.
    pub fn new(root: impl Into<PathBuf>) -> TreeBuilder {
        let root = root.into();
        fs::create_dir_all(&root).expect("create fixture root");
        chmod(&root, 0o755);
        TreeBuilder {
            root,
            timed: vec![PathBuf::new()],
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&mut self, rel: &Path) -> PathBuf {
        self.timed.push(rel.to_path_buf());
        self.root.join(rel)
    }

    pub fn dir(&mut self, rel: impl AsRef<Path>, mode: u32) -> &mut Self {
        let path = self.full(rel.as_ref());
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        chmod(&path, mode);
        self
    }

    pub fn file(&mut self, rel: impl AsRef<Path>, content: &[u8], mode: u32) -> &mut Self {
        let path = self.full(rel.as_ref());
        fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        chmod(&path, mode);
        self
    }

    pub fn symlink(&mut self, rel: impl AsRef<Path>, target: impl AsRef<Path>) -> &mut Self {
        let path = self.full(rel.as_ref());
        symlink(target, &path).unwrap_or_else(|e| panic!("symlink {}: {e}", path.display()));
        self
    }

    /// A second name for the existing file `existing`; it shares that file's time.
    pub fn hard_link(&mut self, rel: impl AsRef<Path>, existing: impl AsRef<Path>) -> &mut Self {
        let path = self.root.join(rel);
        fs::hard_link(self.root.join(existing), &path)
            .unwrap_or_else(|e| panic!("link {}: {e}", path.display()));
        self
    }

    pub fn fifo(&mut self, rel: impl AsRef<Path>, mode: u32) -> &mut Self {
        let path = self.full(rel.as_ref());
        mkfifo(&path);
        chmod(&path, mode);
        self
    }

    /// Applies the modification times and returns the root.
    pub fn finish(&mut self) -> PathBuf {
        let root = self.root.clone();
        let times: Vec<(PathBuf, (i64, i64))> = self
            .timed
            .iter()
            .enumerate()
            .map(|(i, rel)| (rel.clone(), fixture_time(i)))
            .collect();
        let is_dir = |rel: &Path| {
            fs::symlink_metadata(root.join(rel))
                .map(|m| m.is_dir())
                .unwrap_or(false)
        };
        let (mut dirs, others): (Vec<_>, Vec<_>) =
            times.into_iter().partition(|(rel, _)| is_dir(rel));
        dirs.sort_by_key(|(rel, _)| std::cmp::Reverse(rel.components().count()));
        for (rel, time) in others.into_iter().chain(dirs) {
            set_mtime(&root.join(&rel), time);
        }
        root
    }
}

/// A distinct time for the i-th object: seconds apart, nanoseconds always present, including
/// values just below a whole second (a writer that rounds instead of truncating is caught).
fn fixture_time(i: usize) -> (i64, i64) {
    let i = i as i64;
    let nanos = if i % 3 == 0 {
        999_999_999
    } else {
        (i * 123_456_789 + 1) % 1_000_000_000
    };
    (1_600_000_000 + i * 3_607, nanos)
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Sets the modification (and access) time of `path` itself, not following a symbolic link.
pub fn set_mtime(path: &Path, (secs, nanos): (i64, i64)) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: nanos as _,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .unwrap_or_else(|e| panic!("utimensat {}: {e}", path.display()));
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(CWD, path, Mode::from_raw_mode(0o600))
        .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

/// Deterministic, poorly compressible bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Deterministic text that compresses well, and better at higher gzip levels.
pub fn compressible_text(len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "archive",
        "backup",
        "level",
        "restore",
        "tar",
        "file",
        "directory",
        "the",
        "of",
        "incremental",
        "snapshot",
        "compression",
        "provider",
        "plugin",
        "data",
        "copy",
    ];
    let mut out = Vec::with_capacity(len + 16);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
        out.push(if x % 11 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// Builds `parent/tree` holding every kind of object a backup must preserve and returns it:
/// files with content, an empty file and directory, nested directories, relative, dangling and
/// directory symlinks (one with a target over 100 bytes), a hard link pair, a 150-byte name, a
/// path over 255 bytes, a non-UTF-8 name, modes 0640/0750/0755, and a FIFO.
pub fn full_fixture(parent: &Path) -> PathBuf {
    let long_name = "n".repeat(150);
    let seg = |c: char| c.to_string().repeat(60);
    let deep: PathBuf = ["long", &seg('p'), &seg('q'), &seg('r'), &seg('s')]
        .iter()
        .collect();
    let deep_file = deep.join(format!("{}.txt", seg('f')));
    assert!(deep_file.as_os_str().len() > 255);

    let mut t = TreeBuilder::new(parent.join("tree"));
    t.file("file.txt", b"hello world\n", 0o644)
        .file("empty", b"", 0o644)
        .dir("emptydir", 0o755)
        .dir("a", 0o755)
        .dir("a/b", 0o755)
        .dir("a/b/c", 0o755)
        .file("a/b/c/deep.txt", b"deep content\n", 0o644)
        .symlink("a/b/link-up", "../../file.txt")
        .symlink("link-rel", "file.txt")
        .symlink("dangling", "missing/target")
        .symlink("dirlink", "a/b")
        .symlink("longlink", "t".repeat(150))
        .file("hard1", b"shared by two names\n", 0o644)
        .hard_link("hard2", "hard1")
        .file(&long_name, b"long name\n", 0o644)
        .dir("long", 0o755);
    let mut partial = PathBuf::from("long");
    for c in ['p', 'q', 'r', 's'] {
        partial.push(seg(c));
        t.dir(&partial, 0o755);
    }
    t.file(&deep_file, b"at the end of a long path\n", 0o644)
        .file(bpath(b"caf\xe9"), b"latin-1 name\n", 0o644)
        .file("private.txt", b"secret\n", 0o640)
        .dir("privdir", 0o750)
        .file("privdir/inside.txt", b"inside\n", 0o600)
        .file("script.sh", b"#!/bin/sh\necho hi\n", 0o755)
        .file("name with spaces.txt", b"spaces\n", 0o644)
        .file("big.bin", &noise(100_000, 7), 0o644)
        .fifo("fifo", 0o644);
    t.finish()
}

/// Builds `parent/tree` with regular files and directories only, all names under 100 bytes
/// (what every provider, including the minimal example plugin, must store).
pub fn simple_fixture(parent: &Path) -> PathBuf {
    let mut t = TreeBuilder::new(parent.join("tree"));
    t.file("file.txt", b"hello world\n", 0o644)
        .file("empty", b"", 0o644)
        .dir("emptydir", 0o755)
        .dir("a", 0o755)
        .dir("a/b", 0o755)
        .file("a/b/deep.txt", b"deep content\n", 0o644)
        .file("private.txt", b"secret\n", 0o640)
        .dir("privdir", 0o750)
        .file("privdir/inside.txt", b"inside\n", 0o600)
        .file("script.sh", b"#!/bin/sh\necho hi\n", 0o755)
        .file("big.bin", &noise(70_001, 3), 0o644);
    t.finish()
}

//! Helpers for the end-to-end tests of the built `aa` binary and its plugins.
//!
//! The tests treat `aa` as a black box: they build a source tree holding every kind of file
//! system object, run the binary in a sandbox (its own config and archive-spec directories, no
//! `AA_PLUGIN_PATH` from the caller), extract the backup with GNU tar and compare the extracted
//! tree with the source, field by field. GNU tar is the reference because a backup is only
//! worth something if the standard tool restores it.
//!
//! Only std, `tempfile` and `libc` are used, so a failure here is never a dependency's bug.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{CString, OsStr};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

mod increments;
pub use increments::exact_increments_scenario;

// ---- locating the build --------------------------------------------------------------------

/// The workspace root (this crate lives in `<workspace>/tests`).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("tests crate has a parent")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the workspace if relative) or
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_dir().join(dir),
        _ => workspace_dir().join("target"),
    }
}

/// The `aa` binary under test: `$AA_BIN`, else `<target>/debug/aa`.
pub fn aa_bin() -> PathBuf {
    let bin = match std::env::var_os("AA_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => target_dir().join("debug").join("aa"),
    };
    assert!(
        bin.is_file(),
        "{} not found; build first: cargo build --workspace (or set AA_BIN)",
        bin.display()
    );
    bin
}

/// A plugin library built beside `aa`, e.g. `builtin_plugin("aa_plugin_tar_internal")`.
pub fn builtin_plugin(lib_name: &str) -> PathBuf {
    let bin = aa_bin();
    let lib = bin.with_file_name(format!("lib{lib_name}.so"));
    assert!(
        lib.is_file(),
        "{} not found; build first: cargo build --workspace",
        lib.display()
    );
    lib
}

/// A path from raw bytes, for names that are not UTF-8.
pub fn bpath(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

// ---- fixture trees -------------------------------------------------------------------------

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

/// Waits (one scheduler tick at most) until the clock the kernel stamps files with has moved
/// past the present, so that everything written so far is older than the dump time of the next
/// backup, and the dump time of a backup GNU tar just made is older than anything written next.
///
/// Needed only around levels that GNU tar makes by itself, which takes its precise start time
/// as the dump time: without the wait, a file written in the same tick just before such a level
/// can be stored again by the next one, or a change made just after it missed. Our providers'
/// levels need no wait: they wait for that tick themselves
/// (`aa_provider_kit::dump_start_time`).
pub fn settle_timestamps() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970");
    let now = (now.as_secs() as i64, now.subsec_nanos());
    while aa_provider_kit::dump_start_time() <= now {
        std::thread::sleep(Duration::from_millis(1));
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

fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("path without NUL")
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Sets the modification (and access) time of `path` itself, not following a symbolic link.
pub fn set_mtime(path: &Path, (secs, nanos): (i64, i64)) {
    let t = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nanos as _,
    };
    let times = [t, t];
    let c = cstring(path);
    // SAFETY: valid path and a two-element timespec array, as utimensat requires.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        panic!(
            "utimensat {}: {}",
            path.display(),
            io::Error::last_os_error()
        );
    }
}

/// Builds a chain of `depth` directories `d` below `root` (`d/d/.../d`) with a file `f`
/// holding `content` at the bottom, by `mkdirat` from each new directory: `mkdir -p` and
/// `std::fs` stop at `PATH_MAX` (about 2,048 such levels). Returns the members a backup of
/// `d` must hold, as [`gnu_list`] lists them.
pub fn deep_tree(root: &Path, depth: usize, content: &[u8]) -> BTreeSet<Vec<u8>> {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let open = |dir: libc::c_int, name: &std::ffi::CStr, flags: libc::c_int| {
        // SAFETY: a valid descriptor and NUL-terminated name; the result is ours alone.
        let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
        assert!(fd >= 0, "openat: {}", io::Error::last_os_error());
        // SAFETY: `fd` was just opened and is owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let mut dir = OwnedFd::from(fs::File::open(root).expect("open the root"));
    let mut members = BTreeSet::new();
    let mut name = Vec::new();
    for _ in 0..depth {
        // SAFETY: as above.
        let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), c"d".as_ptr(), 0o755) };
        assert_eq!(rc, 0, "mkdirat: {}", io::Error::last_os_error());
        dir = open(dir.as_raw_fd(), c"d", libc::O_RDONLY | libc::O_DIRECTORY);
        if !name.is_empty() {
            name.push(b'/');
        }
        name.push(b'd');
        members.insert(name.clone());
    }
    let file = open(dir.as_raw_fd(), c"f", libc::O_WRONLY | libc::O_CREAT);
    fs::File::from(file)
        .write_all(content)
        .expect("write the file");
    members.insert([&name[..], b"/f"].concat());
    members
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

// ---- snapshots -----------------------------------------------------------------------------

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
pub type Snapshot = BTreeMap<Vec<u8>, Entry>;

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Records every object under `dir` (and `dir` itself), without following symbolic links.
pub fn snapshot(dir: &Path) -> Snapshot {
    let mut snap = Snapshot::new();
    let mut inodes: HashMap<(u64, u64), Vec<Vec<u8>>> = HashMap::new();
    walk(dir, Vec::new(), &mut snap, &mut inodes);
    for names in inodes.values().filter(|names| names.len() > 1) {
        let group = names.iter().min().cloned();
        for name in names {
            snap.get_mut(name).expect("recorded").hardlink_group = group.clone();
        }
    }
    snap
}

fn walk(
    path: &Path,
    rel: Vec<u8>,
    snap: &mut Snapshot,
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
    snap.insert(rel.clone(), entry);
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
            walk(&path.join(&child), child_rel, snap, inodes);
        }
    }
}

/// A snapshot without `prefix` and everything below it (for trees with excludes).
pub fn without(snap: &Snapshot, prefix: &[u8]) -> Snapshot {
    snap.iter()
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

/// The differences between two snapshots, one readable line each; empty when identical.
pub fn tree_diff(expected: &Snapshot, actual: &Snapshot, how: Compare) -> Vec<String> {
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
pub fn assert_same_tree(expected: &Snapshot, actual: &Snapshot, how: Compare, context: &str) {
    let diff = tree_diff(expected, actual, how);
    if !diff.is_empty() {
        panic!(
            "{context}: extracted tree differs from the source ({} differences):\n  {}",
            diff.len(),
            diff.join("\n  ")
        );
    }
}

// ---- GNU tar ------------------------------------------------------------------------------

/// Extracts `archive` into `dest` (created if needed) with GNU tar, preserving permissions.
/// GNU tar recognises gzip, bzip2, xz and zstd compression by itself when reading a file.
#[track_caller]
pub fn gnu_extract(archive: &Path, dest: &Path) {
    fs::create_dir_all(dest).expect("create extraction directory");
    let out = Command::new("tar")
        .arg("-xpf")
        .arg(archive)
        .arg("-C")
        .arg(dest)
        .output()
        .expect("run GNU tar");
    assert!(
        out.status.success(),
        "tar -xpf {} failed ({}): {}",
        archive.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Restores an incremental chain with GNU tar: each archive in order, in incremental mode
/// (`--listed-incremental=/dev/null`), so each level also deletes what was gone at its time.
pub fn gnu_restore_incremental(archives: &[&Path], dest: &Path) -> Result<(), String> {
    fs::create_dir_all(dest).map_err(|e| format!("mkdir {}: {e}", dest.display()))?;
    for archive in archives {
        let out = Command::new("tar")
            .arg("--listed-incremental=/dev/null")
            .arg("-xpf")
            .arg(archive)
            .arg("-C")
            .arg(dest)
            .output()
            .map_err(|e| format!("cannot run GNU tar: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "tar --listed-incremental=/dev/null -xpf {} failed ({}): {}",
                archive.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// The member names of `archive` as GNU tar lists them, without a trailing `/` or leading `./`
/// (how a directory name is spelt is a detail that differs between writers).
#[track_caller]
pub fn gnu_list(archive: &Path) -> BTreeSet<Vec<u8>> {
    let out = Command::new("tar")
        .arg("--quoting-style=literal")
        .arg("-tf")
        .arg(archive)
        .output()
        .expect("run GNU tar");
    assert!(
        out.status.success(),
        "tar -tf {} failed ({}): {}",
        archive.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let l = l.strip_prefix(b"./").unwrap_or(l);
            l.strip_suffix(b"/").unwrap_or(l).to_vec()
        })
        .collect()
}

/// The container format of a file, from its magic bytes: `tar`, `gz`, `bz2`, `xz`, `zst` or
/// `unknown`.
pub fn detect_format(path: &Path) -> &'static str {
    let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if data.starts_with(&[0x1f, 0x8b]) {
        "gz"
    } else if data.starts_with(b"BZh") {
        "bz2"
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "xz"
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zst"
    } else if data.len() >= 512 && &data[257..262] == b"ustar" {
        "tar"
    } else {
        "unknown"
    }
}

/// File names in `dir`, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---- running aa ---------------------------------------------------------------------------

/// An archive specification file's content.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub path: Option<PathBuf>,
    /// Entries of `include-files`, written space-separated (quote them yourself if needed).
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub archiver: Option<String>,
    pub dest_dir: Option<PathBuf>,
}

impl Spec {
    pub fn new(path: &Path, include: &[&str], dest_dir: &Path) -> Spec {
        Spec {
            path: Some(path.to_path_buf()),
            include: include.iter().map(|s| s.to_string()).collect(),
            dest_dir: Some(dest_dir.to_path_buf()),
            ..Spec::default()
        }
    }

    pub fn archiver(mut self, archiver: &str) -> Spec {
        self.archiver = Some(archiver.to_string());
        self
    }

    pub fn exclude(mut self, exclude: &[&str]) -> Spec {
        self.exclude = exclude.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn render(&self) -> String {
        let mut s = String::from("[Content]\n");
        if let Some(path) = &self.path {
            s += &format!("path = {}\n", path.display());
        }
        s += &format!("include-files = {}\n", self.include.join(" "));
        // Always present, even empty: the original program requires the option.
        s += &format!("exclude-files = {}\n", self.exclude.join(" "));
        s += "\n[Archive]\n";
        if let Some(archiver) = &self.archiver {
            s += &format!("archiver = {archiver}\n");
        }
        if let Some(dest) = &self.dest_dir {
            s += &format!("dest-dir = {}\n", dest.display());
        }
        s
    }
}

/// A private directory for one test: `config/`, `specs/`, `src/`, `dest/` and a `home/` used as
/// `$HOME`, so nothing outside it is read or written.
pub struct Sandbox {
    tmp: TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let tmp = tempfile::Builder::new()
            .prefix("aa-test-")
            .tempdir()
            .expect("create sandbox");
        for sub in ["config", "specs", "src", "dest", "home"] {
            fs::create_dir(tmp.path().join(sub)).expect("create sandbox directory");
        }
        Sandbox { tmp }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.path().join("config")
    }

    pub fn specs_dir(&self) -> PathBuf {
        self.path().join("specs")
    }

    /// Where fixtures are built (`src/tree`) and the usual `path` of a spec.
    pub fn src_dir(&self) -> PathBuf {
        self.path().join("src")
    }

    pub fn dest_dir(&self) -> PathBuf {
        self.path().join("dest")
    }

    /// A fresh directory `name` inside the sandbox.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        fs::create_dir_all(&dir).expect("create directory");
        dir
    }

    /// Writes `specs/NAME.aa` and returns its path.
    pub fn write_spec(&self, name: &str, spec: &Spec) -> PathBuf {
        self.write_spec_text(name, &spec.render())
    }

    pub fn write_spec_text(&self, name: &str, text: &str) -> PathBuf {
        let path = self.specs_dir().join(format!("{name}.aa"));
        fs::write(&path, text).expect("write spec");
        path
    }

    /// An `aa` command with the sandbox's config and spec directories.
    pub fn aa(&self) -> Aa {
        self.aa_at(&aa_bin())
    }

    /// Like [`Sandbox::aa`], for an `aa` binary at another place (an installed copy).
    pub fn aa_at(&self, program: &Path) -> Aa {
        let mut cmd = Command::new(program);
        // As from an interactive shell: a test harness started in the background by a
        // non-interactive shell ignores SIGINT, and `aa` keeps an ignored signal ignored.
        // SAFETY: signal(2) is async-signal-safe, as code between fork and exec must be.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                    libc::signal(signal, libc::SIG_DFL);
                }
                Ok(())
            });
        }
        cmd.arg("--user-config-dir")
            .arg(self.config_dir())
            .arg("--archive-specs-dir")
            .arg(self.specs_dir())
            .env_remove("AA_PLUGIN_PATH")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LOG")
            .env("HOME", self.path().join("home"))
            .env("TZ", &test_time_zone().0)
            .current_dir(self.path())
            .stdin(Stdio::null());
        Aa { cmd }
    }
}

/// A prepared `aa` invocation.
pub struct Aa {
    cmd: Command,
}

/// How long one `aa` run may take before the test gives up on it.
const AA_TIMEOUT: Duration = Duration::from_secs(60);

impl Aa {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Aa {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Aa {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Aa {
        self.cmd.env(key, value);
        self
    }

    /// Starts `aa` in a process group of its own (with everything it starts, such as GNU tar
    /// and a compressor), so that a test can kill the whole group at once, as a power cut
    /// would stop them. Output is discarded.
    pub fn spawn(mut self) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let description = format!("{:?}", self.cmd);
        self.cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {description}: {e}"))
    }

    /// Runs `aa`, killing it if it hangs.
    pub fn run(mut self) -> AaOutput {
        let description = format!("{:?}", self.cmd);
        let child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {description}: {e}"));
        let pid = child.id() as libc::pid_t;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = match rx.recv_timeout(AA_TIMEOUT) {
            Ok(output) => output,
            Err(_) => {
                // SAFETY: kill(2) on our own child's pid.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("{description} did not finish within {AA_TIMEOUT:?}");
            }
        }
        .expect("wait for aa");
        AaOutput {
            command: description,
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The outcome of an `aa` run.
pub struct AaOutput {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for AaOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n  exit: {}\n  stdout:\n{}\n  stderr:\n{}",
            self.command,
            self.status,
            indent(&self.stdout),
            indent(&self.stderr)
        )
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl AaOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout followed by stderr.
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Lines of stderr that start with `aa: ` (the one-line error format).
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("aa: "))
            .collect()
    }

    #[track_caller]
    pub fn assert_no_panic(&self) {
        let all = self.all_output();
        for marker in ["panicked", "RUST_BACKTRACE", "stack backtrace", "SIGSEGV"] {
            assert!(
                !all.contains(marker),
                "aa output contains {marker:?}:\n{self}"
            );
        }
        assert!(
            self.status.code().is_some(),
            "aa was killed by a signal:\n{self}"
        );
    }

    #[track_caller]
    pub fn assert_success(&self) {
        self.assert_no_panic();
        assert_eq!(self.code(), Some(0), "aa should succeed:\n{self}");
    }

    /// Exit code 1, at least one `aa: ` error line, no panic.
    #[track_caller]
    pub fn assert_clean_failure(&self) {
        self.assert_no_panic();
        assert_eq!(
            self.code(),
            Some(1),
            "aa should fail with exit code 1:\n{self}"
        );
        assert!(
            !self.error_lines().is_empty(),
            "aa failed without an `aa: ` error line:\n{self}"
        );
    }
}

// ---- the example plugin ---------------------------------------------------------------------

/// Builds `examples/hello-provider` (its own workspace) into `<target>/examples` and returns
/// the shared library. Built once per test process; cargo's lock serialises concurrent builds.
pub fn build_hello_provider() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            build_cdylib(
                &workspace_dir().join("examples/hello-provider/Cargo.toml"),
                &target_dir().join("examples"),
                "aa_hello_provider",
            )
        })
        .clone()
}

/// Builds the library crate at `manifest` (offline: its dependencies are those of the
/// workspace, already fetched) into `target` and returns the path of `lib<lib_name>.so`.
#[track_caller]
pub fn build_cdylib(manifest: &Path, target: &Path, lib_name: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--offline", "--quiet", "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building {} failed:\n{}",
        manifest.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = target.join(format!("debug/lib{lib_name}.so"));
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}

// ---- the reference Python aa (differential tests) ----------------------------------------------
//
// Added for tests/tests/differential.rs; nothing above depends on it.

/// The Python AutoArchive 2.0.6 `aa`, the reference implementation: `$AA_PYTHON_AA`, else
/// `$AA_PYTHON_VENV/bin/aa`, else `<target>/python-aa/bin/aa`, else
/// `<workspace>/target/python-aa/bin/aa` (where `tests/setup-python-aa.sh`, run by
/// `make python-aa`, installs it). `None` when none of them is a file.
pub fn python_aa() -> Option<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let mut candidates = Vec::new();
    if let Some(bin) = from_env("AA_PYTHON_AA") {
        candidates.push(PathBuf::from(bin));
    }
    if let Some(venv) = from_env("AA_PYTHON_VENV") {
        candidates.push(PathBuf::from(venv).join("bin/aa"));
    }
    candidates.push(target_dir().join("python-aa/bin/aa"));
    candidates.push(workspace_dir().join("target/python-aa/bin/aa"));
    candidates.into_iter().find(|bin| bin.is_file())
}

/// Whether the tests run under continuous integration (`$CI` set and not `false`/`0`), where a
/// missing prerequisite must fail the run instead of skipping tests.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

// ---- the local date -----------------------------------------------------------------------------

/// The local time zone every `aa` run of the tests gets (`TZ`), and its offset from UTC in
/// seconds: a fixed offset chosen once per test process so that local time is noon when the
/// process starts. `aa` counts days by the local date; with midnight twelve hours away, no test
/// sees the date change between writing a date and `aa` reading it, whenever it runs.
pub fn test_time_zone() -> &'static (String, i64) {
    static ZONE: std::sync::OnceLock<(String, i64)> = std::sync::OnceLock::new();
    ZONE.get_or_init(|| {
        let now = unix_now();
        let offset = 12 * 3600 - now.rem_euclid(86_400);
        // POSIX TZ gives the offset to add to local time to get UTC, so the sign is inverted.
        let (sign, abs) = if offset > 0 {
            ('-', offset)
        } else {
            ('+', -offset)
        };
        let zone = format!(
            "AAT{sign}{:02}:{:02}:{:02}",
            abs / 3600,
            abs / 60 % 60,
            abs % 60
        );
        (zone, offset)
    })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

/// The local date (in [`test_time_zone`]) `days` days ago, as `YYYY-MM-DD` (how the realm
/// stores dates). GNU `date` formats it, so the expectation does not come from `aa`'s code.
pub fn local_date_days_ago(days: u32) -> String {
    let local = unix_now() + test_time_zone().1 - i64::from(days) * 86_400;
    let out = Command::new("date")
        .args(["-u", &format!("--date=@{local}"), "+%Y-%m-%d"])
        .output()
        .expect("run date");
    assert!(out.status.success(), "date failed");
    String::from_utf8(out.stdout)
        .expect("a UTF-8 date")
        .trim()
        .to_string()
}

// ---- re-running one test in a child process -------------------------------------------------

/// Set in the environment of a test re-run by [`rerun_test`]: the child runs the test's body.
pub const RERUN_VAR: &str = "AA_TEST_RERUN";

/// Whether this process is the child [`rerun_test`] started for test `name`.
pub fn is_rerun_of(name: &str) -> bool {
    std::env::var_os(RERUN_VAR).is_some_and(|v| v == name)
}

/// Who runs the child of [`rerun_test`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    /// The same user as the test.
    Same,
    /// User and group 65534 (`nobody`/`nogroup`), no supplementary groups: permission bits
    /// only deny anything to an unprivileged user, and the tests often run as root.
    Nobody,
}

/// Runs test `name` (an exact name) of the current test binary again in a child process with
/// `env` added and [`RERUN_VAR`] set, and panics unless that one test passed there. Tests use
/// it for what a test cannot do in its own process: drop root (`RunAs::Nobody`), or change a
/// process-wide variable such as `PATH` without disturbing the tests running beside it.
///
/// For `RunAs::Nobody` the binary is copied into a fresh world-readable directory under
/// `/tmp`, so it runs even when the build lies under a 0700 home; the child gets `TMPDIR=/tmp`
/// and `/` as working directory for the same reason. When the user cannot be changed (not
/// root, or no `CAP_SETUID`), the test is skipped with a message, and fails under CI.
#[track_caller]
pub fn rerun_test(name: &str, run_as: RunAs, env: &[(&str, &OsStr)]) {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("the test binary's path");
    let copy_dir;
    let mut cmd = match run_as {
        RunAs::Same => Command::new(&exe),
        RunAs::Nobody => {
            copy_dir = tempfile::Builder::new()
                .prefix("aa-rerun-")
                .tempdir_in("/tmp")
                .expect("create a directory under /tmp");
            chmod(copy_dir.path(), 0o755);
            let copy = copy_dir.path().join("test-binary");
            fs::copy(&exe, &copy).expect("copy the test binary");
            chmod(&copy, 0o755);
            let mut cmd = Command::new(copy);
            // std drops the supplementary groups along with root.
            cmd.uid(65534).gid(65534);
            cmd.current_dir("/").env("TMPDIR", "/tmp");
            cmd
        }
    };
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(RERUN_VAR, name);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            assert!(
                !under_ci(),
                "{name}: cannot run the test as {run_as:?}: {e}"
            );
            eprintln!("skipped (outside CI only): cannot run {name} as {run_as:?}: {e}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} run as {run_as:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// Whether this process runs as root, for whom permission bits deny nothing.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// For test `name`, which needs permission bits to deny: `true` when the caller is to run the
/// body now (as an unprivileged user); as root, re-runs the test as `nobody` with
/// [`rerun_test`] and returns `false`.
#[track_caller]
pub fn unprivileged(name: &str) -> bool {
    if is_rerun_of(name) {
        assert!(
            !is_root(),
            "{name}: the re-run as nobody still runs as root"
        );
        return true;
    }
    if !is_root() {
        return true;
    }
    rerun_test(name, RunAs::Nobody, &[]);
    false
}

// ---- programs on PATH -------------------------------------------------------------------------

/// Where `program` is found on `PATH`.
#[track_caller]
pub fn on_path(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} not found on PATH"))
}

/// Writes the shell script `dir/name` (`body` after `#!/bin/sh`) and returns `PATH` with `dir`
/// first, for a child process in which `name` is to be that script (e.g. a compressor that GNU
/// tar starts, to hold tar at a known point).
pub fn path_with_script(dir: &Path, name: &str, body: &str) -> std::ffi::OsString {
    fs::create_dir_all(dir).expect("create the script directory");
    let script = dir.join(name);
    fs::write(&script, format!("#!/bin/sh\n{body}")).expect("write the script");
    chmod(&script, 0o755);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path));
    std::env::join_paths(dirs).expect("a valid PATH")
}

/// [`path_with_script`] for a fake gzip: the script is also named `pigz`, which `TarExternal`
/// runs instead of gzip where it is installed.
pub fn path_with_gzip_script(dir: &Path, body: &str) -> std::ffi::OsString {
    let path = path_with_script(dir, "gzip", body);
    std::os::unix::fs::symlink("gzip", dir.join("pigz")).expect("link the script as pigz");
    path
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let c = cstring(path);
    // SAFETY: `c` is a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        panic!("mkfifo {}: {}", path.display(), io::Error::last_os_error());
    }
}

// ---- incremental backups: device numbers --------------------------------------------------------

/// Rewrites the GNU tar snapshot file (format 2) `snar` as if its file system had another
/// device number. After the header (version line, dump time), each directory record is: nfs
/// flag, mtime seconds and nanoseconds, device, inode, name, then its dumpdir entries, every
/// field NUL-terminated, and two NULs to end the record.
pub fn change_snapshot_devices(snar: &Path) {
    let bytes = fs::read(snar).expect("read the snapshot");
    let line_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .expect("a version line");
    let (version, body) = bytes.split_at(line_end + 1);
    assert!(version.ends_with(b"-2\n"), "not format 2: {version:?}");
    let mut fields: Vec<Vec<u8>> = body.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    // The body ends with a NUL, which leaves one empty piece after it.
    assert_eq!(fields.pop(), Some(Vec::new()));
    let mut at = 2; // past the dump time
    while at < fields.len() {
        let dev: u64 = std::str::from_utf8(&fields[at + 3])
            .ok()
            .and_then(|d| d.parse().ok())
            .expect("a device number");
        fields[at + 3] = (dev ^ 0x100).to_string().into_bytes();
        at += 6;
        while !fields[at].is_empty() {
            at += 1;
        }
        at += 2;
    }
    let mut out = version.to_vec();
    for field in fields {
        out.extend_from_slice(&field);
        out.push(0);
    }
    fs::write(snar, out).expect("write the snapshot");
}

/// `AA_NO_CHECK_DEVICE` with any provider that keeps GNU snapshots in `work/snapshots`: after a
/// device number change, a level stores everything unless the variable turns the check off; a
/// value that means neither is an `INVALID_VALUE` error naming the variable. `provider` must
/// have been created on `tmp/work`. Sets the process-wide variable, so the calling test binary
/// must hold this test only.
pub fn no_check_device_scenario<P: aa_abi::plugin::ArchiverProvider>(provider: &P, tmp: &Path) {
    use aa_abi::{BackupDefinition, BackupType, NoEvents, ProviderErrorKind};
    use aa_provider_kit::NO_CHECK_DEVICE_VAR;

    let (root, dest) = (tmp.join("src"), tmp.join("dest"));
    fs::create_dir_all(root.join("data/sub")).unwrap();
    fs::create_dir_all(&dest).unwrap();
    fs::write(root.join("data/old"), "old").unwrap();
    fs::write(root.join("data/sub/old2"), "old2").unwrap();
    let snar = tmp.join("work/snapshots/dev.snar");
    let def = BackupDefinition::new("dev", BackupType::Tar, &dest, &root).include(["data"]);
    let level = |level| {
        provider
            .backup_files_incrementally(&def, None, level, false, &NoEvents)
            .unwrap_or_else(|e| panic!("level {level:?}: {e}"))
    };
    // The regular files stored (GNU tar lists directories with a trailing `/`).
    let files = |archive: &Path| -> Vec<String> {
        let out = Command::new("tar")
            .arg("-tf")
            .arg(archive)
            .output()
            .unwrap();
        assert!(out.status.success(), "tar -tf {}", archive.display());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.ends_with('/'))
            .map(str::to_string)
            .collect()
    };

    std::env::remove_var(NO_CHECK_DEVICE_VAR);
    let l0 = level(None);
    let unchanged = fs::read(&snar).unwrap();
    change_snapshot_devices(&snar);
    let moved_device = fs::read(&snar).unwrap();
    assert_ne!(moved_device, unchanged, "no device number was changed");
    fs::write(root.join("data/new"), "new").unwrap();

    // Checked: every directory looks replaced, everything is stored again.
    let l1 = level(None);
    assert_eq!(files(&l1), ["data/new", "data/old", "data/sub/old2"]);

    // Not checked: only what changed, and the chain restores.
    fs::write(&snar, &moved_device).unwrap();
    std::env::set_var(NO_CHECK_DEVICE_VAR, "1");
    let l1 = level(Some(1));
    assert_eq!(files(&l1), ["data/new"]);
    let out = tmp.join("restore");
    fs::create_dir_all(&out).unwrap();
    for archive in [&l0, &l1] {
        let status = Command::new("tar")
            .current_dir(&out)
            .args(["--listed-incremental=/dev/null", "-xf"])
            .arg(archive)
            .status()
            .unwrap();
        assert!(status.success(), "restoring {}", archive.display());
    }
    for file in ["data/new", "data/old", "data/sub/old2"] {
        assert_eq!(
            fs::read(out.join(file)).unwrap(),
            fs::read(root.join(file)).unwrap()
        );
    }

    // A value that means neither: a clear error naming the variable, nothing written.
    std::env::set_var(NO_CHECK_DEVICE_VAR, "sometimes");
    let snapshots_before = dir_names(&tmp.join("work/snapshots"));
    let err = provider
        .backup_files_incrementally(&def, None, None, false, &NoEvents)
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::INVALID_VALUE);
    assert!(err.message().starts_with(NO_CHECK_DEVICE_VAR), "{err}");
    assert_eq!(dir_names(&tmp.join("work/snapshots")), snapshots_before);
    assert!(!dest.join("dev.2.tar").exists());
    std::env::remove_var(NO_CHECK_DEVICE_VAR);
}

//! The system side of the archiver: the few calls it makes per file, without the
//! allocations and extra calls of `std::fs`, opening the files to store, and the owner
//! names of their headers.
//!
//! Everything is addressed relative to an open directory (`openat`, `fstatat`, `readlinkat`,
//! through rustix's safe wrappers, which are the bare system calls), so the kernel resolves
//! one name per call instead of the whole path from the root, and a directory is listed with
//! `getdents64` ([`rustix::fs::RawDir`]), whose entry types let the walk skip `lstat` for
//! regular files (the reader's `fstat` after `open` gives their metadata anyway).
//!
//! A path longer than the kernel takes at once (`PATH_MAX`, 4096 bytes) is resolved piece by
//! piece ([`resolve`]), so no depth of the tree is out of reach.
//!
//! Owner names ([`Owners`]) are looked up once per id with `getpwuid_r`/`getgrgid_r`, the one
//! place left on raw `libc`: rustix has no user database, and the crates that have one
//! (`uzers`, `nix`) wrap the same two calls while copying every field of the entry, for a
//! name we look up once per id anyway.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use aa_abi::BackupSubOperation;
use rustix::fs::{AtFlags, Mode, OFlags, RawDir};
use rustix::io::Errno;

/// What the archiver needs of `struct stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ctime: i64,
    pub ctime_nsec: i64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub rdev: u64,
}

/// The type of a file system object, from its mode or its directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
    /// Not reported by the directory listing (or not a type we know).
    Unknown,
}

impl From<rustix::fs::FileType> for FileType {
    fn from(file_type: rustix::fs::FileType) -> FileType {
        use rustix::fs::FileType as F;
        match file_type {
            F::RegularFile => FileType::Regular,
            F::Directory => FileType::Directory,
            F::Symlink => FileType::Symlink,
            F::Fifo => FileType::Fifo,
            F::CharacterDevice => FileType::CharDevice,
            F::BlockDevice => FileType::BlockDevice,
            F::Socket => FileType::Socket,
            F::Unknown => FileType::Unknown,
        }
    }
}

impl Stat {
    // The field types of `struct stat` differ between targets; all fit these widths.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    fn from_raw(st: &rustix::fs::Stat) -> Stat {
        Stat {
            mode: st.st_mode as u32,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            size: st.st_size as u64,
            mtime: st.st_mtime as i64,
            mtime_nsec: st.st_mtime_nsec as i64,
            ctime: st.st_ctime as i64,
            ctime_nsec: st.st_ctime_nsec as i64,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            nlink: st.st_nlink as u64,
            rdev: st.st_rdev as u64,
        }
    }

    pub fn file_type(&self) -> FileType {
        rustix::fs::FileType::from_raw_mode(self.mode as rustix::fs::RawMode).into()
    }

    pub fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }

    pub fn is_file(&self) -> bool {
        self.file_type() == FileType::Regular
    }

    /// (device, inode): the identity of the object.
    pub fn identity(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// What must not change while a file is read, for it to be stored consistently.
    pub fn change_stamp(&self) -> (u64, i64, i64, i64, i64) {
        (
            self.size,
            self.mtime,
            self.mtime_nsec,
            self.ctime,
            self.ctime_nsec,
        )
    }
}

/// Retries `f` while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// `EINVAL`, for a name with a NUL inside, which no system call can take.
pub fn invalid_name_error() -> io::Error {
    Errno::INVAL.into()
}

/// A name for the `*at` calls; a name with a NUL inside is [`invalid_name_error`].
pub fn c_name(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| invalid_name_error())
}

/// `openat(dir, name, flags | O_CLOEXEC)`.
pub fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: OFlags) -> io::Result<OwnedFd> {
    retry(|| rustix::fs::openat(dir, name, flags | OFlags::CLOEXEC, Mode::empty()))
}

/// Opens a directory for listing, without following a final symbolic link.
pub fn open_dir(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
    )
}

/// The longest path handed to the kernel in one call; `PATH_MAX` is 4096 with the NUL.
const PATH_PIECE: usize = 2048;

/// Where `*at` calls must look for `path` (relative to `dir`, which is used directly when the
/// path is short): a descriptor of the directory holding its tail, `None` for `dir` itself,
/// and the tail. The leading directories of a long path are opened (`O_PATH`, which needs no
/// read permission) in pieces under [`PATH_PIECE`] bytes cut at slashes; symbolic links on
/// the way are followed as the kernel follows them in a whole path, so the result is the
/// same. At most one descriptor is held at a time.
pub fn resolve(dir: BorrowedFd<'_>, path: &[u8]) -> io::Result<(Option<OwnedFd>, CString)> {
    let mut at: Option<OwnedFd> = None;
    let mut rest = path;
    while rest.len() >= PATH_PIECE {
        let cut = rest[..PATH_PIECE]
            .iter()
            .rposition(|&b| b == b'/')
            .filter(|&cut| cut > 0)
            .ok_or_else(|| io::Error::from(Errno::NAMETOOLONG))?;
        let head = c_name(&rest[..cut])?;
        let base = at.as_ref().map_or(dir, |fd| fd.as_fd());
        at = Some(openat(base, &head, OFlags::PATH | OFlags::DIRECTORY)?);
        rest = &rest[cut..];
        rest = &rest[rest.iter().take_while(|&&b| b == b'/').count()..];
    }
    let tail = if rest.is_empty() { &b"."[..] } else { rest };
    Ok((at, c_name(tail)?))
}

/// Runs `f` on the directory and name that [`resolve`] gives for `path` in `dir`.
pub fn at_path<T>(
    dir: BorrowedFd<'_>,
    path: &[u8],
    f: impl FnOnce(BorrowedFd<'_>, &CStr) -> io::Result<T>,
) -> io::Result<T> {
    let (at, tail) = resolve(dir, path)?;
    f(at.as_ref().map_or(dir, |fd| fd.as_fd()), &tail)
}

/// `lstat` of `name` in `dir`.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Stat> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(Stat::from_raw(&st))
}

/// `fstat` of an open file.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    Ok(Stat::from_raw(&rustix::fs::fstat(fd)?))
}

/// The target of symbolic link `name` in `dir`.
pub fn readlink_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    Ok(rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes())
}

/// `read` into `buf`, retried on `EINTR`.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| rustix::io::read(fd, &mut *buf))
}

/// The room for one `getdents64` call: the directory entries of one listing come in
/// batches of this size.
const LISTING_BUFFER: usize = 32 * 1024;

/// Appends the entries of directory `fd` (without `.` and `..`) to `names` (each name
/// followed by a NUL) and `(offset, length, type)` to `entries`. `buf` is scratch space
/// reused between calls.
pub fn list_dir(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    names: &mut Vec<u8>,
    entries: &mut Vec<(u32, u32, FileType)>,
) -> io::Result<()> {
    buf.clear();
    buf.reserve(LISTING_BUFFER);
    let space: &mut [MaybeUninit<u8>] = buf.spare_capacity_mut();
    let mut dir = RawDir::new(fd, space);
    loop {
        let entry = match dir.next() {
            None => return Ok(()),
            Some(Err(Errno::INTR)) => continue,
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(entry)) => entry,
        };
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let offset = u32::try_from(names.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::OutOfMemory, "directory listing too large")
        })?;
        names.extend_from_slice(name);
        names.push(0);
        entries.push((offset, name.len() as u32, entry.file_type().into()));
    }
}

/// Splits a Linux `dev_t` into major and minor numbers.
pub fn split_dev(dev: u64) -> (u32, u32) {
    (rustix::fs::major(dev), rustix::fs::minor(dev))
}

// ---- Opening the files to store ----------------------------------------------------------

/// The outcome of opening a regular file to store.
pub enum Opened {
    /// The open file and its metadata (`fstat`).
    File(OwnedFd, Stat),
    /// The operation that failed, and why.
    Failed(BackupSubOperation, io::Error),
    /// Not the object that was listed any more.
    Changed,
}

/// Flags for opening a file to store. O_NOFOLLOW and O_NONBLOCK: if the file was replaced by
/// a link or a FIFO since it was listed, fail or return at once instead of following or
/// blocking.
const OPEN_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY);

/// Opens regular file `base` in `dir` for reading. `listed` is its `lstat`, if one was made:
/// the opened file must be that object. Without one, the file must still be a regular file.
pub fn open_regular(dir: &OwnedFd, base: &CStr, listed: Option<&Stat>) -> Opened {
    let file = match openat(dir.as_fd(), base, OPEN_FLAGS) {
        Ok(file) => file,
        Err(error) => {
            // Without an lstat, tell "cannot look it up" (a directory without search
            // permission) from "cannot open it".
            if listed.is_none() {
                if let Err(stat_error) = lstat_at(dir.as_fd(), base) {
                    return Opened::Failed(BackupSubOperation::Stat, stat_error);
                }
            }
            return Opened::Failed(BackupSubOperation::Open, error);
        }
    };
    let at_open = match fstat(file.as_fd()) {
        Ok(stat) => stat,
        Err(error) => return Opened::Failed(BackupSubOperation::Stat, error),
    };
    let same = at_open.is_file() && listed.is_none_or(|l| l.identity() == at_open.identity());
    if same {
        Opened::File(file, at_open)
    } else {
        Opened::Changed
    }
}

// ---- Owner names -------------------------------------------------------------------------

/// Looks up a user name; `None` when the user database has none for `uid`.
fn lookup_user(uid: u32) -> Option<Vec<u8>> {
    lookup(|buf, len| {
        // SAFETY: `passwd` is plain old data (integers and pointers), for which all zeros is
        // a valid value; getpwuid_r overwrites it.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: `pwd` and `result` are valid out-pointers; `buf` holds `len` writable bytes.
        let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf, len, &mut result) };
        let name = (!result.is_null()).then(|| {
            // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buf`,
            // which outlives this copy.
            unsafe { CStr::from_ptr(pwd.pw_name) }.to_bytes().to_vec()
        });
        (rc, name)
    })
}

/// Looks up a group name; `None` when the group database has none for `gid`.
fn lookup_group(gid: u32) -> Option<Vec<u8>> {
    lookup(|buf, len| {
        // SAFETY: `group` is plain old data (integers and pointers), for which all zeros is a
        // valid value; getgrgid_r overwrites it.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: `grp` and `result` are valid out-pointers; `buf` holds `len` writable bytes.
        let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf, len, &mut result) };
        let name = (!result.is_null()).then(|| {
            // SAFETY: on success `gr_name` points to a NUL-terminated string inside `buf`,
            // which outlives this copy.
            unsafe { CStr::from_ptr(grp.gr_name) }.to_bytes().to_vec()
        });
        (rc, name)
    })
}

/// Runs a reentrant `get*_r` lookup, growing its buffer while it answers `ERANGE`.
fn lookup(
    mut call: impl FnMut(*mut libc::c_char, usize) -> (libc::c_int, Option<Vec<u8>>),
) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 1024];
    loop {
        let (rc, name) = call(buf.as_mut_ptr().cast(), buf.len());
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return if rc == 0 { name } else { None };
    }
}

/// Owner names by id, looked up once each.
#[derive(Default)]
pub struct Owners {
    users: HashMap<u32, Vec<u8>>,
    groups: HashMap<u32, Vec<u8>>,
}

impl Owners {
    /// The user and group names of `uid` and `gid`; empty when the databases have none.
    pub fn names(&mut self, uid: u32, gid: u32) -> (&[u8], &[u8]) {
        self.users
            .entry(uid)
            .or_insert_with(|| lookup_user(uid).unwrap_or_default());
        self.groups
            .entry(gid)
            .or_insert_with(|| lookup_group(gid).unwrap_or_default());
        (&self.users[&uid], &self.groups[&gid])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_stats_and_reads_relative_to_a_directory() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"hello").unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::os::unix::fs::symlink("f", t.path().join("l")).unwrap();
        let root = std::fs::File::open(t.path()).unwrap();
        let (mut buf, mut names, mut entries) = (Vec::new(), Vec::new(), Vec::new());
        list_dir(root.as_fd(), &mut buf, &mut names, &mut entries).unwrap();
        let mut found: Vec<&[u8]> = entries
            .iter()
            .map(|&(o, l, _)| &names[o as usize..(o + l) as usize])
            .collect();
        found.sort();
        assert_eq!(found, [&b"d"[..], b"f", b"l"]);

        let f = CString::new("f").unwrap();
        let st = lstat_at(root.as_fd(), &f).unwrap();
        assert!(st.is_file());
        assert_eq!(st.size, 5);
        let fd = openat(root.as_fd(), &f, OFlags::RDONLY).unwrap();
        assert_eq!(fstat(fd.as_fd()).unwrap().identity(), st.identity());
        let mut b = [0u8; 16];
        assert_eq!(read(fd.as_fd(), &mut b).unwrap(), 5);
        let l = CString::new("l").unwrap();
        assert_eq!(readlink_at(root.as_fd(), &l).unwrap(), b"f");
        assert_eq!(
            lstat_at(root.as_fd(), &l).unwrap().file_type(),
            FileType::Symlink
        );
        let e = openat(root.as_fd(), &l, OFlags::RDONLY | OFlags::NOFOLLOW).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn resolves_paths_longer_than_the_kernel_takes() {
        let t = tempfile::tempdir().unwrap();
        aa_tests::deep_tree(t.path(), 3000, b"");
        let root = std::fs::File::open(t.path()).unwrap();
        let path = [&b"d/".repeat(3000)[..], b"f"].concat();
        let whole = CString::new(path.clone()).unwrap();
        let e = lstat_at(root.as_fd(), &whole).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG));
        assert!(at_path(root.as_fd(), &path, lstat_at).unwrap().is_file());
        // Repeated slashes at a cut do not matter; a short path is used as it is.
        let doubled = [&b"d//".repeat(1500)[..], &b"d/".repeat(1500), b"f"].concat();
        assert!(at_path(root.as_fd(), &doubled, lstat_at).unwrap().is_file());
        let (at, tail) = resolve(root.as_fd(), b"d/d").unwrap();
        assert!(at.is_none());
        assert_eq!(tail.as_bytes(), b"d/d");
    }
}

//! The few system calls the archiver makes per file, without the allocations and extra
//! calls of `std::fs`.
//!
//! Everything is addressed relative to an open directory (`openat`, `fstatat`, `readlinkat`),
//! so the kernel resolves one name per call instead of the whole path from the root, and a
//! directory is listed with raw `getdents64`, whose entry types let the walk skip `lstat` for
//! regular files (the reader's `fstat` after `open` gives their metadata anyway).
//!
//! A path longer than the kernel takes at once (`PATH_MAX`, 4096 bytes) is resolved piece by
//! piece ([`resolve`]), so no depth of the tree is out of reach.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

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

/// The type bits of a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
    Unknown,
}

impl Stat {
    // The field types of `struct stat` differ between targets; all fit these widths.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    fn from_raw(st: &libc::stat) -> Stat {
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
        match self.mode & libc::S_IFMT {
            libc::S_IFREG => FileType::Regular,
            libc::S_IFDIR => FileType::Directory,
            libc::S_IFLNK => FileType::Symlink,
            libc::S_IFIFO => FileType::Fifo,
            libc::S_IFCHR => FileType::CharDevice,
            libc::S_IFBLK => FileType::BlockDevice,
            libc::S_IFSOCK => FileType::Socket,
            _ => FileType::Unknown,
        }
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

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Retries `f` while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `openat(dir, name, flags | O_CLOEXEC)`.
pub fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    retry(|| {
        // SAFETY: `name` is NUL-terminated; the result is a new descriptor we own.
        let fd = check(unsafe {
            libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC)
        })?;
        // SAFETY: `fd` was just opened and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })
}

/// Opens a directory for listing, without following a final symbolic link.
pub fn open_dir(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
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
    let invalid = || io::Error::from_raw_os_error(libc::EINVAL);
    let mut at: Option<OwnedFd> = None;
    let mut rest = path;
    while rest.len() >= PATH_PIECE {
        let cut = rest[..PATH_PIECE]
            .iter()
            .rposition(|&b| b == b'/')
            .filter(|&cut| cut > 0)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENAMETOOLONG))?;
        let head = CString::new(&rest[..cut]).map_err(|_| invalid())?;
        let base = at.as_ref().map_or(dir, |fd| fd.as_fd());
        at = Some(openat(base, &head, libc::O_PATH | libc::O_DIRECTORY)?);
        rest = &rest[cut..];
        rest = &rest[rest.iter().take_while(|&&b| b == b'/').count()..];
    }
    let tail = if rest.is_empty() { &b"."[..] } else { rest };
    Ok((at, CString::new(tail).map_err(|_| invalid())?))
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
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid pointers; the kernel fills `st` when the call succeeds.
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded, so `st` is initialised.
    Ok(Stat::from_raw(unsafe { st.assume_init_ref() }))
}

/// `fstat` of an open file.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid pointers; the kernel fills `st` when the call succeeds.
    check(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so `st` is initialised.
    Ok(Stat::from_raw(unsafe { st.assume_init_ref() }))
}

/// The target of symbolic link `name` in `dir`.
pub fn readlink_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `buf` holds `buf.len()` writable bytes.
        let n = unsafe {
            libc::readlinkat(
                dir.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        // Possibly truncated: try again with more room.
        buf.resize(buf.len() * 4, 0);
    }
}

/// `read` into `buf`, retried on `EINTR`.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `buf` holds `buf.len()` writable bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })
}

/// `d_type` of an entry whose type the file system did not report.
pub const DT_UNKNOWN: u8 = libc::DT_UNKNOWN;
pub const DT_REG: u8 = libc::DT_REG;

/// Appends the entries of directory `fd` (without `.` and `..`) to `names` (each name
/// followed by a NUL) and `(offset, length, d_type)` to `entries`. `buf` is scratch space
/// reused between calls.
pub fn list_dir(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    names: &mut Vec<u8>,
    entries: &mut Vec<(u32, u32, u8)>,
) -> io::Result<()> {
    if buf.len() < 32 * 1024 {
        buf.resize(32 * 1024, 0);
    }
    loop {
        let n = retry(|| {
            // SAFETY: `buf` holds `buf.len()` writable bytes; getdents64 fills whole records.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    fd.as_raw_fd(),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })?;
        if n == 0 {
            return Ok(());
        }
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        let mut at = 0;
        while at + 19 <= n {
            let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
            if reclen == 0 || at + reclen > n {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "malformed directory entry",
                ));
            }
            let d_type = buf[at + 18];
            let raw = &buf[at + 19..at + reclen];
            let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
            at += reclen;
            if name == b"." || name == b".." {
                continue;
            }
            let offset = u32::try_from(names.len()).map_err(|_| {
                io::Error::new(io::ErrorKind::OutOfMemory, "directory listing too large")
            })?;
            names.extend_from_slice(name);
            names.push(0);
            entries.push((offset, name.len() as u32, d_type));
        }
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
        let fd = openat(root.as_fd(), &f, libc::O_RDONLY).unwrap();
        assert_eq!(fstat(fd.as_fd()).unwrap().identity(), st.identity());
        let mut b = [0u8; 16];
        assert_eq!(read(fd.as_fd(), &mut b).unwrap(), 5);
        let l = CString::new("l").unwrap();
        assert_eq!(readlink_at(root.as_fd(), &l).unwrap(), b"f");
        assert_eq!(
            lstat_at(root.as_fd(), &l).unwrap().file_type(),
            FileType::Symlink
        );
        let e = openat(root.as_fd(), &l, libc::O_RDONLY | libc::O_NOFOLLOW).unwrap_err();
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

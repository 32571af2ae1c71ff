//! The restore target as a directory descriptor, and the paths under it resolved so that
//! nothing outside it is ever written, followed or deleted (the kit's
//! [`beneath`] does the resolving).
//!
//! Members come in directory order, so the parent directory of the last member is kept open:
//! most members need no path resolution at all. Anything that may move or remove a directory
//! forgets it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use aa_provider_kit::beneath;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

pub use aa_provider_kit::beneath::{list, remove_at};

pub struct Target {
    pub path: PathBuf,
    root: OwnedFd,
    cached: Option<(Vec<u8>, OwnedFd)>,
}

pub fn c_name(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

/// Splits a clean relative path into its parent directory and last component.
pub fn split(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

fn is(e: &io::Error, errno: Errno) -> bool {
    e.raw_os_error() == Some(errno.raw_os_error())
}

impl Target {
    pub fn open(path: &Path) -> io::Result<Target> {
        let root = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Target {
            path: path.to_path_buf(),
            root,
            cached: None,
        })
    }

    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Forgets the open directory: a rename or removal may have changed what its path names.
    pub fn forget(&mut self) {
        self.cached = None;
    }

    /// The directory `rel` (clean, relative), opened `O_PATH`; with `create`, missing
    /// directories on the way are made (as GNU tar makes them, mode 0777 less the umask).
    pub fn dir(&mut self, rel: &[u8], create: bool) -> io::Result<BorrowedFd<'_>> {
        if rel.is_empty() {
            return Ok(self.root.as_fd());
        }
        let hit = self.cached.as_ref().is_some_and(|(path, _)| path == rel);
        if !hit {
            let fd = self.open_new(rel, create)?;
            self.cached = Some((rel.to_vec(), fd));
        }
        Ok(self.cached.as_ref().expect("just set").1.as_fd())
    }

    /// Like [`Target::dir`], but a descriptor of its own, for when two are needed at once.
    pub fn open_new(&self, rel: &[u8], create: bool) -> io::Result<OwnedFd> {
        match beneath::open_dir(self.root.as_fd(), rel, OFlags::PATH) {
            Err(e) if create && is(&e, Errno::NOENT) => self.make_dirs(rel),
            other => other,
        }
    }

    fn make_dirs(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        let mut fd: Option<OwnedFd> = None;
        let mut end = 0;
        let parts: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
        for part in parts {
            end += part.len();
            let prefix = &rel[..end];
            end += 1;
            let next = match beneath::open_dir(self.root.as_fd(), prefix, OFlags::PATH) {
                Err(e) if is(&e, Errno::NOENT) => {
                    let parent = fd.as_ref().map_or(self.root.as_fd(), |f| f.as_fd());
                    match rustix::fs::mkdirat(parent, c_name(part)?.as_c_str(), Mode::from(0o777)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    beneath::open_dir(self.root.as_fd(), prefix, OFlags::PATH)?
                }
                other => other?,
            };
            fd = Some(next);
        }
        fd.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))
    }
}

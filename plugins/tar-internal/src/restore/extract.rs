//! One member onto the disk: files (sparse ones with their holes), directories, symbolic and
//! hard links, FIFOs and devices, with mode, modification time and (as root) owner, as GNU
//! tar `-x -p` sets them. Directory attributes wait until the level's members are all in
//! ([`Restorer::finish_dirs`]), as the directory's own time changes with every entry made in it.
//!
//! A name that exists already is replaced as GNU tar replaces it: a non-directory is unlinked
//! first (so other hard links to it keep their content); a directory in the way of a
//! non-directory is removed only when it is empty, else the member is refused.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timestamps, UTIME_NOW};
use rustix::io::Errno;

use super::beneath::{c_name, split};
use super::chain::Restorer;
use super::reader::{Kind, Member, Reader};

/// How much of a member's data is written at once.
const WRITE: usize = 1 << 20;

/// A member was not restored, for this reason (reported as a problem).
pub struct Refused(pub String);

impl From<io::Error> for Refused {
    fn from(e: io::Error) -> Refused {
        Refused(aa_abi::error::os_message(&e))
    }
}

/// Whether an error must end the restore instead of only the member.
pub fn is_fatal(e: &io::Error) -> bool {
    matches!(
        Errno::from_io_error(e),
        Some(Errno::NOSPC) | Some(Errno::DQUOT) | Some(Errno::ROFS) | Some(Errno::IO)
    )
}

/// A directory's attributes, set once its level is complete.
pub struct DirAttrs {
    rel: Vec<u8>,
    mode: u32,
    owner: Option<(u32, u32)>,
    times: Timestamps,
}

fn timestamps(m: &Member) -> Timestamps {
    let atime = m.atime.map_or(
        rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        },
        |(s, n)| rustix::fs::Timespec {
            tv_sec: s,
            tv_nsec: n.into(),
        },
    );
    Timestamps {
        last_access: atime,
        last_modification: rustix::fs::Timespec {
            tv_sec: m.mtime.0,
            tv_nsec: m.mtime.1.into(),
        },
    }
}

fn retry<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// Makes room for a new non-directory `name` in `dir`: unlinks what is there; a directory
/// only if it is empty.
fn clear(dir: BorrowedFd<'_>, name: &CString) -> Result<(), Refused> {
    match retry(|| rustix::fs::unlinkat(dir, name, AtFlags::empty())) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {
            match retry(|| rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(Errno::NOTEMPTY) | Err(Errno::EXIST) => Err(Refused(
                    "a directory that is not empty is in the way; not replaced".into(),
                )),
                Err(e) => Err(io::Error::from(e).into()),
            }
        }
        Err(e) => Err(io::Error::from(e).into()),
    }
}

/// Runs `make` (which creates `name` in `dir`); if the name is taken, clears it and tries once
/// more.
fn create<T>(
    dir: BorrowedFd<'_>,
    name: &CString,
    mut make: impl FnMut() -> rustix::io::Result<T>,
) -> Result<T, Refused> {
    match retry(&mut make) {
        Err(Errno::EXIST) => {
            clear(dir, name)?;
            Ok(retry(make).map_err(io::Error::from)?)
        }
        other => Ok(other.map_err(io::Error::from)?),
    }
}

/// Fatal errors pass through `Err(Err(io))`; a refused member is `Err(Ok(refused))`.
pub type MemberResult = Result<u64, Result<Refused, io::Error>>;

fn refuse(r: Refused) -> Result<Refused, io::Error> {
    Ok(r)
}

fn fatal_or_refused(e: io::Error) -> Result<Refused, io::Error> {
    // A damaged or cut archive ends the restore too (the caller names the archive).
    let archive = matches!(
        e.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    );
    if archive || is_fatal(&e) {
        Err(e)
    } else {
        Ok(e.into())
    }
}

impl Restorer<'_> {
    /// The owner a member gets: none unless running as root; the archive's user and group
    /// names where this system knows them, else its numbers (GNU tar's default as root).
    fn owner(&mut self, m: &Member) -> Option<(u32, u32)> {
        if !self.root_user {
            return None;
        }
        let uid = lookup(&mut self.users, &m.uname, true).unwrap_or(m.uid as u32);
        let gid = lookup(&mut self.groups, &m.gname, false).unwrap_or(m.gid as u32);
        Some((uid, gid))
    }

    /// Extracts a non-directory member at `rel`; returns its content bytes.
    pub fn extract(&mut self, reader: &mut Reader<'_>, m: &Member, rel: &[u8]) -> MemberResult {
        let owner = self.owner(m);
        let times = timestamps(m);
        let (parent, base) = split(rel);
        let name = c_name(base).map_err(fatal_or_refused)?;
        if m.kind == Kind::HardLink {
            return self.hard_link(m, rel, parent, &name).map(|()| 0);
        }
        let dir = self.target.dir(parent, true).map_err(fatal_or_refused)?;
        let mode = Mode::from_raw_mode(m.mode);
        let needs_chmod = owner.is_some() || m.mode & (self.umask | 0o7000) != 0;
        match m.kind {
            Kind::File => {
                let fd = create(dir, &name, || {
                    rustix::fs::openat(
                        dir,
                        &name,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        mode,
                    )
                })
                .map_err(refuse)?;
                let size = write_data(reader, &fd, m).map_err(fatal_or_refused)?;
                set_fd(&fd, owner, needs_chmod.then_some(mode), &times)
                    .map_err(fatal_or_refused)?;
                Ok(size)
            }
            Kind::Symlink => {
                create(dir, &name, || {
                    rustix::fs::symlinkat(c_name(&m.link).map_err(|_| Errno::INVAL)?, dir, &name)
                })
                .map_err(refuse)?;
                if let Some((uid, gid)) = owner {
                    chown_at(dir, &name, uid, gid).map_err(fatal_or_refused)?;
                }
                rustix::fs::utimensat(dir, &name, &times, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| fatal_or_refused(e.into()))?;
                Ok(0)
            }
            Kind::Fifo | Kind::CharDevice | Kind::BlockDevice => {
                let (file_type, dev) = match m.kind {
                    Kind::Fifo => (FileType::Fifo, 0),
                    Kind::CharDevice => (
                        FileType::CharacterDevice,
                        rustix::fs::makedev(m.dev.0, m.dev.1),
                    ),
                    _ => (FileType::BlockDevice, rustix::fs::makedev(m.dev.0, m.dev.1)),
                };
                create(dir, &name, || {
                    rustix::fs::mknodat(dir, &name, file_type, mode, dev)
                })
                .map_err(refuse)?;
                if let Some((uid, gid)) = owner {
                    chown_at(dir, &name, uid, gid).map_err(fatal_or_refused)?;
                }
                if needs_chmod {
                    // mknod applies the umask; the node was made a moment ago under this
                    // name, in a directory of the target.
                    rustix::fs::chmodat(dir, &name, mode, AtFlags::empty())
                        .map_err(|e| fatal_or_refused(e.into()))?;
                }
                rustix::fs::utimensat(dir, &name, &times, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| fatal_or_refused(e.into()))?;
                Ok(0)
            }
            Kind::Directory | Kind::HardLink => unreachable!("handled by the caller"),
            Kind::Unsupported(t) => Err(refuse(Refused(format!(
                "member type {:?} is not restored",
                char::from(t)
            )))),
        }
    }

    fn hard_link(
        &mut self,
        m: &Member,
        rel: &[u8],
        parent: &[u8],
        name: &CString,
    ) -> Result<(), Result<Refused, io::Error>> {
        let target = match aa_provider_kit::beneath::components(&m.link) {
            Ok(parts) if !parts.is_empty() => parts.join(&b'/'),
            Ok(_) => return Err(refuse(Refused("hard link to the target itself".into()))),
            Err(message) => {
                return Err(refuse(Refused(format!(
                    "hard link to {:?}: {message}",
                    String::from_utf8_lossy(&m.link)
                ))))
            }
        };
        if target == rel {
            return Ok(());
        }
        let (from_parent, from_base) = split(&target);
        let from_dir = self
            .target
            .open_new(from_parent, false)
            .map_err(fatal_or_refused)?;
        let from_name = c_name(from_base).map_err(fatal_or_refused)?;
        let dir = self.target.dir(parent, true).map_err(fatal_or_refused)?;
        create(dir, name, || {
            rustix::fs::linkat(&from_dir, &from_name, dir, name, AtFlags::empty())
        })
        .map_err(|Refused(why)| {
            refuse(Refused(format!(
                "hard link to {:?}: {why}",
                String::from_utf8_lossy(&target)
            )))
        })?;
        Ok(())
    }

    /// Makes the directory `rel` (or keeps the one there), writable for the rest of the level;
    /// its attributes are set by [`Restorer::finish_dirs`].
    pub fn directory(
        &mut self,
        m: &Member,
        rel: &[u8],
        attrs: bool,
    ) -> Result<(), Result<Refused, io::Error>> {
        if !rel.is_empty() {
            let (parent, base) = split(rel);
            let name = c_name(base).map_err(fatal_or_refused)?;
            let dir = self.target.dir(parent, true).map_err(fatal_or_refused)?;
            match rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                    if !self.root_user && st.st_mode & 0o700 != 0o700 {
                        let fd = rustix::fs::openat(
                            dir,
                            &name,
                            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(|e| fatal_or_refused(e.into()))?;
                        let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(st.st_mode | 0o700));
                    }
                }
                Ok(_) => {
                    clear(dir, &name).map_err(refuse)?;
                    make_dir(dir, &name)?;
                }
                Err(Errno::NOENT) => make_dir(dir, &name)?,
                Err(e) => return Err(fatal_or_refused(e.into())),
            }
        }
        if attrs {
            let owner = self.owner(m);
            self.delayed.push(DirAttrs {
                rel: rel.to_vec(),
                mode: m.mode,
                owner,
                times: timestamps(m),
            });
        }
        Ok(())
    }

    /// Sets the attributes of the level's directories, deepest first.
    pub fn finish_dirs(&mut self) -> io::Result<()> {
        let delayed = std::mem::take(&mut self.delayed);
        for attrs in delayed.iter().rev() {
            let (parent, base) = split(&attrs.rel);
            let fd: io::Result<OwnedFd> = if attrs.rel.is_empty() {
                rustix::fs::openat(
                    self.target.root(),
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(Into::into)
            } else {
                self.target.dir(parent, false).and_then(|dir| {
                    Ok(rustix::fs::openat(
                        dir,
                        c_name(base)?.as_c_str(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?)
                })
            };
            let result = fd.and_then(|fd| {
                set_fd(
                    &fd,
                    attrs.owner,
                    Some(Mode::from_raw_mode(attrs.mode)),
                    &attrs.times,
                )
            });
            if let Err(e) = result {
                if is_fatal(&e) {
                    return Err(e);
                }
                let name = String::from_utf8_lossy(&attrs.rel).into_owned();
                self.problem(
                    name.as_bytes(),
                    &format!("cannot set attributes: {}", aa_abi::error::os_message(&e)),
                );
            }
        }
        Ok(())
    }
}

fn make_dir(dir: BorrowedFd<'_>, name: &CString) -> Result<(), Result<Refused, io::Error>> {
    retry(|| rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)))
        .map_err(|e| fatal_or_refused(e.into()))
}

fn chown_at(dir: BorrowedFd<'_>, name: &CString, uid: u32, gid: u32) -> io::Result<()> {
    let (uid, gid) = (
        rustix::process::Uid::from_raw(uid),
        rustix::process::Gid::from_raw(gid),
    );
    rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Owner first (a chown clears set-id bits), then the mode, then the times.
fn set_fd(
    fd: &OwnedFd,
    owner: Option<(u32, u32)>,
    mode: Option<Mode>,
    times: &Timestamps,
) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        let (uid, gid) = (
            rustix::process::Uid::from_raw(uid),
            rustix::process::Gid::from_raw(gid),
        );
        rustix::fs::fchown(fd, Some(uid), Some(gid))?;
    }
    if let Some(mode) = mode {
        rustix::fs::fchmod(fd, mode)?;
    }
    rustix::fs::futimens(fd, times)?;
    Ok(())
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn pwrite_all(fd: BorrowedFd<'_>, mut data: &[u8], mut at: u64) -> io::Result<()> {
    while !data.is_empty() {
        match rustix::io::pwrite(fd, data, at) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                data = &data[n..];
                at += n as u64;
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes the member's content into `fd`; a sparse member's regions go to their offsets and
/// the holes between them stay holes. Returns the file's size.
fn write_data(reader: &mut Reader<'_>, fd: &OwnedFd, m: &Member) -> io::Result<u64> {
    let Some(sparse) = &m.sparse else {
        loop {
            let chunk = reader.data(WRITE)?;
            if chunk.is_empty() {
                return Ok(m.size);
            }
            write_all(fd.as_fd(), chunk)?;
        }
    };
    let mut sparse = sparse.clone();
    if sparse.map_in_data {
        reader.sparse_map(&mut sparse)?;
    }
    for &(offset, length) in &sparse.map {
        let mut done = 0u64;
        while done < length {
            let chunk = reader.data((length - done).min(WRITE as u64) as usize)?;
            if chunk.is_empty() {
                return Err(super::reader::damaged(
                    reader.offset(),
                    "sparse member shorter than its map",
                ));
            }
            let at = offset.checked_add(done).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "sparse region beyond any file size",
                )
            })?;
            pwrite_all(fd.as_fd(), chunk, at)?;
            done += chunk.len() as u64;
        }
    }
    rustix::fs::ftruncate(fd, sparse.real_size)?;
    Ok(sparse.real_size)
}

/// The id of user (or group) `name` on this system, cached.
fn lookup(cache: &mut HashMap<Vec<u8>, Option<u32>>, name: &[u8], user: bool) -> Option<u32> {
    if name.is_empty() {
        return None;
    }
    if let Some(id) = cache.get(name) {
        return *id;
    }
    let id = CString::new(name).ok().and_then(|c| {
        let mut buf = vec![0u8; 16384];
        if user {
            // SAFETY: zeroed passwd is a valid out-parameter for getpwnam_r.
            let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            // SAFETY: all pointers are valid for the call; buf's length is passed.
            let rc = unsafe {
                libc::getpwnam_r(
                    c.as_ptr(),
                    &mut pwd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut result,
                )
            };
            (rc == 0 && !result.is_null()).then_some(pwd.pw_uid)
        } else {
            // SAFETY: zeroed group is a valid out-parameter for getgrnam_r.
            let mut grp: libc::group = unsafe { std::mem::zeroed() };
            let mut result: *mut libc::group = std::ptr::null_mut();
            // SAFETY: all pointers are valid for the call; buf's length is passed.
            let rc = unsafe {
                libc::getgrnam_r(
                    c.as_ptr(),
                    &mut grp,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut result,
                )
            };
            (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
        }
    });
    cache.insert(name.to_vec(), id);
    id
}

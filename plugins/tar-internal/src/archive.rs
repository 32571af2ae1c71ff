//! The tar stream: POSIX.1-2001 (pax) members, as GNU tar's `--format=posix` writes them.
//!
//! Every member is a ustar header, preceded by a pax extended header (typeflag `x`) when a
//! value does not fit the ustar fields: a path over the 100 + 155 bytes that the `name` and
//! `prefix` fields can split, a link target over 100 bytes, numbers beyond the octal fields
//! (uid/gid >= 2^21, size >= 8 GiB, mtime outside 0..2^33), user or group names over 31
//! bytes, and a modification time with a sub-second part. Names are raw bytes in both places,
//! so names that are not UTF-8 survive. GNU long-name (`L`/`K`) and base-256 numeric
//! extensions are never used, so any POSIX reader can extract the archive.
//!
//! [`header_blocks`] builds these blocks from a [`Member`] without any I/O, so the format is
//! unit-testable; [`Archiver`] does the file system side: it reads metadata and content,
//! detects hard links and files changing under it, and reports non-fatal problems through
//! the backup events. Only a failure to write the archive itself is fatal.
//!
//! The archiver runs on the calling thread, so events are raised there, in member order, and
//! a file is announced (`file_add`) after it is opened and before its content is read. Per
//! regular file it makes five system calls (open, fstat, read, fstat to detect a change
//! while reading, close): a file smaller than the free room in the current chunk is read
//! with one `read` of one byte more than its size, whose short count proves the end of the
//! file. Content is read straight into the output chunk ([`TarOutput::window`]), and headers
//! are encoded into a reused buffer, so storing a file allocates nothing.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::CStr;
use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use aa_abi::{BackupEvents, BackupOperationError, BackupSubOperation};

use crate::sys::{self, FileType, Stat};
use crate::walk::Entry;

const BLOCK: usize = 512;
/// GNU tar pads the archive to whole records of 20 blocks; do the same.
const RECORD: u64 = 20 * BLOCK as u64;
/// Largest value of the 11-digit octal `size` and `mtime` fields.
const MAX_OCTAL_11: u64 = 0o77777777777;

// ---- Pure header building ---------------------------------------------------------------

/// A modification time: seconds since the epoch and nanoseconds (0..1e9) after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

/// What a member is, with the data that depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    Regular {
        size: u64,
    },
    Directory,
    Symlink {
        target: &'a [u8],
    },
    /// A further name of an already stored file.
    HardLink {
        target: &'a [u8],
    },
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
}

/// The metadata of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// Path relative to the root, without a trailing `/` (added here for directories).
    pub name: &'a [u8],
    pub kind: Kind<'a>,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Owner names; empty when unknown.
    pub uname: &'a [u8],
    pub gname: &'a [u8],
    pub mtime: Timestamp,
}

/// Writes `value` as zero-padded octal with a terminating NUL; `false` if it does not fit.
fn put_octal(field: &mut [u8], value: u64) -> bool {
    let digits = field.len() - 1;
    if digits < 21 && value >> (3 * digits) != 0 {
        return false;
    }
    let mut rest = value;
    for digit in field[..digits].iter_mut().rev() {
        *digit = b'0' + (rest & 7) as u8;
        rest >>= 3;
    }
    field[digits] = 0;
    true
}

/// Copies `value` into a NUL-padded field; `false` if it is longer than the field.
fn put_bytes(field: &mut [u8], value: &[u8]) -> bool {
    if value.len() > field.len() {
        return false;
    }
    field[..value.len()].copy_from_slice(value);
    field[value.len()..].fill(0);
    true
}

/// Splits `path` into ustar `(prefix, name)` at a `/`, or `None` if no split fits.
fn split_ustar(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((&[], path));
    }
    // The prefix is at most 155 bytes; the longest fitting prefix leaves the shortest name.
    // A directory's trailing `/` cannot be the split point: the name would be empty.
    let limit = (path.len() - 1).min(156);
    let slash = path[..limit].iter().rposition(|&b| b == b'/')?;
    let (prefix, name) = (&path[..slash], &path[slash + 1..]);
    (!prefix.is_empty() && !name.is_empty() && name.len() <= 100).then_some((prefix, name))
}

/// Appends one pax record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // space, '=' and newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A timestamp as a pax decimal: `secs[.fraction]`, trailing zeros of the fraction dropped.
fn pax_time(t: Timestamp) -> String {
    if t.nanos == 0 {
        return t.secs.to_string();
    }
    // -1.25 s is stored by the OS as secs = -2, nanos = 750_000_000.
    let (sign, secs, nanos) = if t.secs < 0 {
        ("-", (t.secs + 1).unsigned_abs(), 1_000_000_000 - t.nanos)
    } else {
        ("", t.secs.unsigned_abs(), t.nanos)
    };
    let fraction = format!("{nanos:09}");
    format!("{sign}{secs}.{}", fraction.trim_end_matches('0'))
}

/// A fresh ustar header with the name set, or `false` if the name does not fit.
fn ustar_header(path: &[u8]) -> (tar::Header, bool) {
    let mut header = tar::Header::new_ustar();
    let ustar = header.as_ustar_mut().expect("a ustar header");
    let fits = match split_ustar(path) {
        Some((prefix, name)) => {
            put_bytes(&mut ustar.prefix, prefix) && put_bytes(&mut ustar.name, name)
        }
        None => {
            // Readers that understand pax take the `path` record; others get a truncated name.
            put_bytes(&mut ustar.name, &path[..100]);
            false
        }
    };
    (header, fits)
}

/// The name of the extended header of `name`: `<dir>/PaxHeaders/<base>`, as GNU tar names it.
fn pax_header_name(name: &[u8]) -> Vec<u8> {
    let (dir, base) = match name.iter().rposition(|&b| b == b'/') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (&b"."[..], name),
    };
    let mut out = Vec::with_capacity(dir.len() + base.len() + 12);
    out.extend_from_slice(dir);
    out.extend_from_slice(b"/PaxHeaders/");
    out.extend_from_slice(base);
    out
}

/// The blocks that precede the member's content: an optional pax extended header with its
/// records, then the ustar header. The content itself (for regular files) follows, padded
/// to a whole block.
pub fn header_blocks(member: &Member<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_header(member, &mut out);
    out
}

/// [`header_blocks`] into `out` (cleared first), so a buffer can serve every member.
pub fn encode_header(member: &Member<'_>, out: &mut Vec<u8>) {
    encode_header_with(member, &[], out);
}

/// [`encode_header`] with further pax records after the standard ones (GNU tar's
/// `GNU.dumpdir` of incremental archives); any makes an extended header.
pub fn encode_header_with(member: &Member<'_>, extra: &[(&str, &[u8])], out: &mut Vec<u8>) {
    out.clear();
    let path: Cow<'_, [u8]> = if member.kind == Kind::Directory {
        Cow::Owned([member.name, b"/"].concat())
    } else {
        Cow::Borrowed(member.name)
    };
    let mut records = Vec::new();
    let (mut header, name_fits) = ustar_header(&path);
    if !name_fits {
        pax_record(&mut records, "path", &path);
    }

    let (typeflag, size, link) = match member.kind {
        Kind::Regular { size } => (b'0', size, None),
        Kind::Directory => (b'5', 0, None),
        Kind::Symlink { target } => (b'2', 0, Some(target)),
        Kind::HardLink { target } => (b'1', 0, Some(target)),
        Kind::Fifo => (b'6', 0, None),
        Kind::CharDevice { .. } => (b'3', 0, None),
        Kind::BlockDevice { .. } => (b'4', 0, None),
    };

    let ustar = header.as_ustar_mut().expect("a ustar header");
    ustar.typeflag = [typeflag];
    put_octal(&mut ustar.mode, u64::from(member.mode & 0o7777));
    for (field, value, key) in [
        (&mut ustar.uid, member.uid, "uid"),
        (&mut ustar.gid, member.gid, "gid"),
    ] {
        if !put_octal(field, value) {
            put_octal(field, 0);
            pax_record(&mut records, key, value.to_string().as_bytes());
        }
    }
    if !put_octal(&mut ustar.size, size) {
        put_octal(&mut ustar.size, 0);
        pax_record(&mut records, "size", size.to_string().as_bytes());
    }
    let seconds_fit = u64::try_from(member.mtime.secs).is_ok_and(|s| s <= MAX_OCTAL_11);
    put_octal(
        &mut ustar.mtime,
        if seconds_fit {
            member.mtime.secs as u64
        } else {
            0
        },
    );
    if !seconds_fit || member.mtime.nanos != 0 {
        pax_record(&mut records, "mtime", pax_time(member.mtime).as_bytes());
    }
    if let Some(target) = link {
        if !put_bytes(&mut ustar.linkname, target) {
            pax_record(&mut records, "linkpath", target);
        }
    }
    // The ustar owner names are NUL-terminated, so 31 bytes at most.
    for (field, value, key) in [
        (&mut ustar.uname, member.uname, "uname"),
        (&mut ustar.gname, member.gname, "gname"),
    ] {
        if value.len() < field.len() {
            put_bytes(field, value);
        } else {
            pax_record(&mut records, key, value);
        }
    }
    let (major, minor) = match member.kind {
        Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => (major, minor),
        _ => (0, 0),
    };
    // Linux device numbers have 12 + 20 bits, which always fit 7 octal digits.
    put_octal(&mut ustar.dev_major, u64::from(major));
    put_octal(&mut ustar.dev_minor, u64::from(minor));
    header.set_cksum();
    for (key, value) in extra {
        pax_record(&mut records, key, value);
    }

    if !records.is_empty() {
        let (mut pax, _) = ustar_header(&pax_header_name(member.name));
        let pax_ustar = pax.as_ustar_mut().expect("a ustar header");
        pax_ustar.typeflag = [b'x'];
        put_octal(&mut pax_ustar.mode, 0o644);
        put_octal(&mut pax_ustar.uid, 0);
        put_octal(&mut pax_ustar.gid, 0);
        put_octal(&mut pax_ustar.size, records.len() as u64);
        put_octal(
            &mut pax_ustar.mtime,
            if seconds_fit {
                member.mtime.secs as u64
            } else {
                0
            },
        );
        pax.set_cksum();
        out.extend_from_slice(pax.as_bytes());
        out.extend_from_slice(&records);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    out.extend_from_slice(header.as_bytes());
}

// ---- Writing members from the file system -----------------------------------------------

/// A fatal failure: the archive itself could not be written.
#[derive(Debug)]
pub struct ArchiveError {
    error: io::Error,
}

impl ArchiveError {
    pub fn io_error(&self) -> &io::Error {
        &self.error
    }

    pub fn into_io_error(self) -> io::Error {
        self.error
    }
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&os_message(&self.error))
    }
}

impl std::error::Error for ArchiveError {}

impl From<io::Error> for ArchiveError {
    fn from(error: io::Error) -> Self {
        ArchiveError { error }
    }
}

pub use aa_abi::error::os_message;

/// Reports a failed file system operation as the backup event it corresponds to.
pub fn report_os_error(
    events: &dyn BackupEvents,
    operation: BackupSubOperation,
    name: &Path,
    error: &io::Error,
) {
    if error.raw_os_error() == Some(libc::EACCES) {
        events.backup_operation_error(
            operation,
            BackupOperationError::PermissionDenied,
            Some(name),
            None,
        );
    } else {
        events.backup_operation_error(
            operation,
            BackupOperationError::UnknownOsError,
            Some(name),
            Some(&os_message(error)),
        );
    }
}

fn mtime_of(m: &Stat) -> Timestamp {
    Timestamp {
        secs: m.mtime,
        nanos: m.mtime_nsec.clamp(0, 999_999_999) as u32,
    }
}

/// Splits a Linux `dev_t` into major and minor numbers (glibc's encoding).
fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// Looks up a user name; `None` when the user database has none for `uid`.
fn lookup_user(uid: u32) -> Option<Vec<u8>> {
    lookup(|buf, len| {
        // SAFETY: `pwd` and `result` are valid out-pointers; `buf` holds `len` bytes and
        // outlives the reading of `pw_name`, which points into it.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf, len, &mut result) };
        (
            rc,
            (!result.is_null()).then(|| unsafe { CStr::from_ptr(pwd.pw_name) }.to_bytes().to_vec()),
        )
    })
}

/// Looks up a group name; `None` when the group database has none for `gid`.
fn lookup_group(gid: u32) -> Option<Vec<u8>> {
    lookup(|buf, len| {
        // SAFETY: as in `lookup_user`.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf, len, &mut result) };
        (
            rc,
            (!result.is_null()).then(|| unsafe { CStr::from_ptr(grp.gr_name) }.to_bytes().to_vec()),
        )
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
struct Owners {
    users: HashMap<u32, Vec<u8>>,
    groups: HashMap<u32, Vec<u8>>,
}

impl Owners {
    fn names(&mut self, uid: u32, gid: u32) -> (&[u8], &[u8]) {
        self.users
            .entry(uid)
            .or_insert_with(|| lookup_user(uid).unwrap_or_default());
        self.groups
            .entry(gid)
            .or_insert_with(|| lookup_group(gid).unwrap_or_default());
        (&self.users[&uid], &self.groups[&gid])
    }
}

/// Where the tar stream goes.
pub trait TarOutput {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Room at the end of the stream to read content into: between 1 and `max` bytes.
    /// Nothing is appended until [`commit`](TarOutput::commit).
    fn window(&mut self, max: usize) -> io::Result<&mut [u8]>;
    /// Appends the first `n` bytes of the last window.
    fn commit(&mut self, n: usize) -> io::Result<()>;
}

/// A [`TarOutput`] over any writer, through a buffer of its own.
pub struct WriteOutput<W: Write> {
    inner: W,
    window: Vec<u8>,
}

impl<W: Write> WriteOutput<W> {
    pub fn new(inner: W) -> Self {
        WriteOutput {
            inner,
            window: vec![0; 128 * 1024],
        }
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> TarOutput for WriteOutput<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)
    }

    fn window(&mut self, max: usize) -> io::Result<&mut [u8]> {
        let len = self.window.len().min(max.max(1));
        Ok(&mut self.window[..len])
    }

    fn commit(&mut self, n: usize) -> io::Result<()> {
        self.inner.write_all(&self.window[..n])
    }
}

/// How reading a file's content ended.
enum Copied {
    /// Exactly the promised number of bytes.
    Complete,
    /// Fewer or more bytes than promised: the file changed while it was read.
    WrongSize,
    /// Reading failed; the rest of the member was filled with zeros.
    ReadError(io::Error),
}

/// The outcome of opening a regular file to store.
pub enum Opened {
    /// The open file and its metadata (`fstat`).
    File(OwnedFd, Stat),
    /// The operation that failed, and why.
    Failed(BackupSubOperation, io::Error),
    /// Not the object that was listed any more.
    Changed,
}

/// Opens regular file `base` in `dir` for reading. `listed` is its `lstat`, if one was made:
/// the opened file must be that object. Without one, the file must still be a regular file.
pub fn open_regular(dir: &OwnedFd, base: &CStr, listed: Option<&Stat>) -> Opened {
    let file = match sys::openat(dir.as_fd(), base, OPEN_FLAGS) {
        Ok(file) => file,
        Err(error) => {
            // Without an lstat, tell "cannot look it up" (a directory without search
            // permission) from "cannot open it".
            if listed.is_none() {
                if let Err(stat_error) = sys::lstat_at(dir.as_fd(), base) {
                    return Opened::Failed(BackupSubOperation::Stat, stat_error);
                }
            }
            return Opened::Failed(BackupSubOperation::Open, error);
        }
    };
    let at_open = match sys::fstat(file.as_fd()) {
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

/// Flags for opening a file to store. O_NOFOLLOW and O_NONBLOCK: if the file was replaced by
/// a link or a FIFO since it was listed, fail or return at once instead of following or
/// blocking.
const OPEN_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;

/// Writes a tar stream of file system objects to `O`.
pub struct Archiver<'e, O: TarOutput> {
    out: O,
    written: u64,
    events: &'e dyn BackupEvents,
    /// First stored name of each multiply linked file, by (device, inode).
    hard_links: HashMap<(u64, u64), PathBuf>,
    owners: Owners,
    /// The backup being written, which must not archive itself when it lies inside the root.
    own_file: Option<(u64, u64)>,
    some_files_changed: bool,
    header: Vec<u8>,
}

impl<'e, O: TarOutput> Archiver<'e, O> {
    /// `own_file` is the (device, inode) of the backup file, skipped if met in the tree.
    pub fn new(out: O, events: &'e dyn BackupEvents, own_file: Option<(u64, u64)>) -> Self {
        Archiver {
            out,
            written: 0,
            events,
            hard_links: HashMap::new(),
            owners: Owners::default(),
            own_file,
            some_files_changed: false,
            header: Vec::with_capacity(4 * BLOCK),
        }
    }

    /// Whether a file changed while it was being stored (the `SomeFilesChanged` condition).
    pub fn some_files_changed(&self) -> bool {
        self.some_files_changed
    }

    /// The output, without finishing the archive (after a failure).
    pub fn into_output(self) -> O {
        self.out
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.out.put(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn write_zeros(&mut self, mut count: u64) -> Result<(), ArchiveError> {
        const ZEROS: [u8; 8192] = [0; 8192];
        while count > 0 {
            let n = count.min(ZEROS.len() as u64) as usize;
            self.write(&ZEROS[..n])?;
            count -= n as u64;
        }
        Ok(())
    }

    fn pad_block(&mut self) -> Result<(), ArchiveError> {
        let rest = self.written % BLOCK as u64;
        if rest != 0 {
            self.write_zeros(BLOCK as u64 - rest)?;
        }
        Ok(())
    }

    fn write_header(
        &mut self,
        name: &Path,
        metadata: &Stat,
        kind: Kind<'_>,
    ) -> Result<(), ArchiveError> {
        self.write_header_with(name, metadata, kind, &[])
    }

    fn write_header_with(
        &mut self,
        name: &Path,
        metadata: &Stat,
        kind: Kind<'_>,
        extra: &[(&str, &[u8])],
    ) -> Result<(), ArchiveError> {
        let (uname, gname) = self.owners.names(metadata.uid, metadata.gid);
        let member = Member {
            name: name.as_os_str().as_bytes(),
            kind,
            mode: metadata.mode & 0o7777,
            uid: u64::from(metadata.uid),
            gid: u64::from(metadata.gid),
            uname,
            gname,
            mtime: mtime_of(metadata),
        };
        encode_header_with(&member, extra, &mut self.header);
        self.out.put(&self.header)?;
        self.written += self.header.len() as u64;
        Ok(())
    }

    /// Stores directory `name` (metadata `metadata`) with its GNU tar incremental dumpdir as
    /// the `GNU.dumpdir` pax record (see [`crate::incremental::dumpdir`]).
    pub fn add_directory_with_dumpdir(
        &mut self,
        name: &Path,
        metadata: &Stat,
        dumpdir: &[u8],
    ) -> Result<(), ArchiveError> {
        let records: [(&str, &[u8]); 1] = [("GNU.dumpdir", dumpdir)];
        self.write_header_with(name, metadata, Kind::Directory, &records)?;
        self.events.file_add(name);
        Ok(())
    }

    /// Reports a failed operation on a walked object (see [`report_os_error`]).
    pub fn report(&self, operation: BackupSubOperation, name: &Path, error: &io::Error) {
        report_os_error(self.events, operation, name, error);
    }

    /// Stores one object. Problems with the object itself are reported as events and the
    /// object is left out; only a failure to write the archive is returned.
    pub fn add(&mut self, mut entry: Entry) -> Result<(), ArchiveError> {
        match (entry.file.take(), &entry.stat) {
            (Some(file), Some(stat)) => self.add_regular(&entry.name, file, *stat),
            (_, Some(stat)) if !stat.is_file() => self.add_other(&entry, stat),
            // A regular file not opened yet, or an object not examined yet.
            (_, stat) => match entry.location.as_ref().map_or_else(
                || {
                    Opened::Failed(
                        BackupSubOperation::Open,
                        io::Error::from_raw_os_error(libc::ENOENT),
                    )
                },
                |(dir, base)| open_regular(dir, base, stat.as_ref()),
            ) {
                Opened::File(file, stat) => self.add_regular(&entry.name, file, stat),
                Opened::Failed(operation, error) => {
                    self.report(operation, &entry.name, &error);
                    Ok(())
                }
                Opened::Changed => {
                    self.file_changed(&entry.name);
                    Ok(())
                }
            },
        }
    }

    /// The first stored name of `stat`'s inode if it has several names and one is stored.
    fn stored_link(&self, stat: &Stat) -> Option<PathBuf> {
        if stat.is_dir() || stat.nlink < 2 {
            return None;
        }
        self.hard_links.get(&stat.identity()).cloned()
    }

    fn remember_link(&mut self, stat: &Stat, name: &Path) {
        if !stat.is_dir() && stat.nlink > 1 {
            self.hard_links.insert(stat.identity(), name.to_path_buf());
        }
    }

    /// Stores anything but a regular file.
    fn add_other(&mut self, entry: &Entry, metadata: &Stat) -> Result<(), ArchiveError> {
        let name = entry.name.as_path();
        let file_type = metadata.file_type();
        if file_type == FileType::Socket {
            self.events.backup_operation_error(
                BackupSubOperation::Open,
                BackupOperationError::SocketIgnored,
                Some(name),
                None,
            );
            return Ok(());
        }
        if let Some(first) = self.stored_link(metadata) {
            let target = first.as_os_str().as_bytes();
            self.write_header(name, metadata, Kind::HardLink { target })?;
            self.events.file_add(name);
            return Ok(());
        }
        let (major, minor) = split_dev(metadata.rdev);
        let kind = match file_type {
            FileType::Directory => Kind::Directory,
            FileType::Symlink => Kind::Symlink {
                target: entry.link.as_deref().unwrap_or_default(),
            },
            FileType::Fifo => Kind::Fifo,
            FileType::CharDevice => Kind::CharDevice { major, minor },
            FileType::BlockDevice => Kind::BlockDevice { major, minor },
            _ => {
                self.events.backup_operation_error(
                    BackupSubOperation::Open,
                    BackupOperationError::UnknownTypeIgnored,
                    Some(name),
                    None,
                );
                return Ok(());
            }
        };
        self.write_header(name, metadata, kind)?;
        self.events.file_add(name);
        self.remember_link(metadata, name);
        Ok(())
    }

    /// Stores regular file `file`, whose metadata (at opening) is `before`.
    fn add_regular(
        &mut self,
        name: &Path,
        file: OwnedFd,
        before: Stat,
    ) -> Result<(), ArchiveError> {
        if self.own_file == Some(before.identity()) {
            log::info!("{}: the backup file itself, not stored", name.display());
            return Ok(());
        }
        if let Some(first) = self.stored_link(&before) {
            let target = first.as_os_str().as_bytes();
            self.write_header(name, &before, Kind::HardLink { target })?;
            self.events.file_add(name);
            return Ok(());
        }

        let size = before.size;
        self.write_header(name, &before, Kind::Regular { size })?;
        self.events.file_add(name);
        let copied = self.copy_content(file.as_fd(), size)?;
        self.pad_block()?;

        match copied {
            Copied::Complete => {
                let after = sys::fstat(file.as_fd());
                if after.is_ok_and(|after| after.change_stamp() != before.change_stamp()) {
                    self.file_changed(name);
                }
            }
            Copied::WrongSize => self.file_changed(name),
            Copied::ReadError(error) => self.report(BackupSubOperation::Read, name, &error),
        }
        self.remember_link(&before, name);
        Ok(())
    }

    /// Reports that `name` changed while it was stored (or replaced before).
    pub fn file_changed(&mut self, name: &Path) {
        self.some_files_changed = true;
        self.events.backup_operation_error(
            BackupSubOperation::Read,
            BackupOperationError::FileChanged,
            Some(name),
            None,
        );
    }

    /// Streams exactly `size` bytes of `file` into the archive: zeros make up for a file
    /// that shrank, and bytes beyond `size` are left out, so the archive stays valid.
    fn copy_content(&mut self, file: BorrowedFd<'_>, size: u64) -> Result<Copied, ArchiveError> {
        let mut remaining = size;
        // Whether a read returned less than asked for after the last byte: the end of file.
        let mut at_end = false;
        while remaining > 0 {
            // One byte more than needed, so that a short count proves the end.
            let max = usize::try_from(remaining).map_or(usize::MAX, |r| r.saturating_add(1));
            let window = self.out.window(max)?;
            let asked = window.len();
            match sys::read(file, window) {
                Ok(0) => {
                    self.write_zeros(remaining)?;
                    return Ok(Copied::WrongSize);
                }
                Ok(n) if n as u64 > remaining => {
                    self.out.commit(remaining as usize)?;
                    self.written += remaining;
                    return Ok(Copied::WrongSize);
                }
                Ok(n) => {
                    self.out.commit(n)?;
                    self.written += n as u64;
                    remaining -= n as u64;
                    at_end = remaining == 0 && n < asked;
                }
                Err(error) => {
                    self.write_zeros(remaining)?;
                    return Ok(Copied::ReadError(error));
                }
            }
        }
        if at_end {
            return Ok(Copied::Complete);
        }
        // One more byte tells whether the file grew.
        let mut probe = [0u8; 1];
        Ok(match sys::read(file, &mut probe) {
            Ok(0) => Copied::Complete,
            Ok(_) => Copied::WrongSize,
            // The promised content is stored; a failure past it changes nothing.
            Err(_) => Copied::Complete,
        })
    }

    /// Writes the end-of-archive marker; the archive is then complete in the output.
    pub fn finish(&mut self) -> Result<(), ArchiveError> {
        self.write_zeros(2 * BLOCK as u64)?;
        let rest = self.written % RECORD;
        if rest != 0 {
            self.write_zeros(RECORD - rest)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member<'a>(name: &'a [u8], kind: Kind<'a>) -> Member<'a> {
        Member {
            name,
            kind,
            mode: 0o644,
            uid: 1000,
            gid: 100,
            uname: b"user",
            gname: b"users",
            mtime: Timestamp {
                secs: 1_700_000_000,
                nanos: 0,
            },
        }
    }

    /// The pax records of a header sequence (empty when there is no extended header).
    fn records(blocks: &[u8]) -> Vec<(String, Vec<u8>)> {
        if blocks[156] != b'x' {
            return Vec::new();
        }
        let h = tar::Header::from_byte_slice(&blocks[..BLOCK]);
        let size = h.size().unwrap() as usize;
        let data = &blocks[BLOCK..BLOCK + size];
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let space = rest.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&rest[..space])
                .unwrap()
                .parse()
                .unwrap();
            let record = &rest[space + 1..len - 1];
            assert_eq!(rest[len - 1], b'\n');
            let eq = record.iter().position(|&b| b == b'=').unwrap();
            out.push((
                String::from_utf8(record[..eq].to_vec()).unwrap(),
                record[eq + 1..].to_vec(),
            ));
            rest = &rest[len..];
        }
        out
    }

    fn last_header(blocks: &[u8]) -> &tar::Header {
        tar::Header::from_byte_slice(&blocks[blocks.len() - BLOCK..])
    }

    #[test]
    fn simple_member_is_plain_ustar() {
        let b = header_blocks(&member(b"dir/a", Kind::Regular { size: 5 }));
        assert_eq!(b.len(), BLOCK);
        let h = last_header(&b);
        assert_eq!(&h.as_bytes()[257..265], b"ustar\x0000");
        assert_eq!(h.path_bytes().as_ref(), b"dir/a");
        assert_eq!(h.size().unwrap(), 5);
        assert_eq!(h.mode().unwrap(), 0o644);
        assert_eq!(h.uid().unwrap(), 1000);
        assert_eq!(h.username_bytes(), Some(&b"user"[..]));
        assert_eq!(h.mtime().unwrap(), 1_700_000_000);
        assert_eq!(h.cksum().unwrap(), {
            let mut copy = tar::Header::from_byte_slice(h.as_bytes()).clone();
            copy.set_cksum();
            copy.cksum().unwrap()
        });
    }

    #[test]
    fn directory_gets_trailing_slash_and_type() {
        let mut m = member(b"a/dir", Kind::Directory);
        m.mtime.nanos = 1;
        let b = header_blocks(&m);
        let h = last_header(&b);
        assert_eq!(h.path_bytes().as_ref(), b"a/dir/");
        assert_eq!(h.entry_type(), tar::EntryType::Directory);
        let pax = tar::Header::from_byte_slice(&b[..BLOCK]);
        assert_eq!(pax.path_bytes().as_ref(), b"a/PaxHeaders/dir");
    }

    #[test]
    fn long_names_split_or_go_to_pax() {
        let split = [b"d".repeat(150), b"f".repeat(90)].join(&b'/');
        let b = header_blocks(&member(&split, Kind::Regular { size: 0 }));
        assert_eq!(b.len(), BLOCK, "fits prefix + name");
        assert_eq!(last_header(&b).path_bytes().as_ref(), &split[..]);

        let long = [b"d".repeat(200), b"f".repeat(120)].join(&b'/');
        let b = header_blocks(&member(&long, Kind::Regular { size: 0 }));
        assert_eq!(records(&b), [("path".to_string(), long.clone())]);
        let pax = tar::Header::from_byte_slice(&b[..BLOCK]);
        assert_eq!(pax.entry_type(), tar::EntryType::XHeader);
    }

    #[test]
    fn long_link_targets_and_raw_bytes_go_to_pax() {
        let target = b"\xff/".repeat(60);
        let b = header_blocks(&member(b"l\xe9", Kind::Symlink { target: &target }));
        assert_eq!(records(&b), [("linkpath".to_string(), target.clone())]);
        assert_eq!(last_header(&b).path_bytes().as_ref(), b"l\xe9");
    }

    #[test]
    fn big_numbers_and_fractional_times_go_to_pax() {
        let mut m = member(b"big", Kind::Regular { size: 9 << 30 });
        m.uid = 3_000_000;
        m.gname = b"a-very-long-group-name-over-31-bytes";
        m.mtime = Timestamp {
            secs: 1_700_000_000,
            nanos: 120_000_000,
        };
        let b = header_blocks(&m);
        let r = records(&b);
        let get = |k: &str| r.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(get("uid").unwrap(), b"3000000");
        assert_eq!(get("size").unwrap(), (9u64 << 30).to_string().as_bytes());
        assert_eq!(get("mtime").unwrap(), b"1700000000.12");
        assert_eq!(get("gname").unwrap(), m.gname);
        assert_eq!(get("gid"), None);
        assert_eq!(get("uname"), None);
        let h = last_header(&b);
        assert_eq!(h.mtime().unwrap(), 1_700_000_000);
        assert_eq!(h.gid().unwrap(), 100);
    }

    #[test]
    fn pax_time_handles_negative_and_fractions() {
        let t = |secs, nanos| pax_time(Timestamp { secs, nanos });
        assert_eq!(t(5, 0), "5");
        assert_eq!(t(5, 1), "5.000000001");
        assert_eq!(t(-2, 750_000_000), "-1.25");
        assert_eq!(t(-1, 500_000_000), "-0.5");
        assert_eq!(t(-3, 0), "-3");
    }

    #[test]
    fn pax_record_length_counts_itself() {
        for value_len in [0, 1, 5, 6, 7, 90, 91, 92, 93, 994, 995, 996, 997] {
            let mut out = Vec::new();
            pax_record(&mut out, "path", &b"x".repeat(value_len));
            let space = out.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&out[..space]).unwrap().parse().unwrap();
            assert_eq!(len, out.len(), "value length {value_len}");
        }
    }

    #[test]
    fn devices_carry_their_numbers() {
        let b = header_blocks(&member(b"null", Kind::CharDevice { major: 1, minor: 3 }));
        let h = last_header(&b);
        assert_eq!(h.entry_type(), tar::EntryType::Char);
        assert_eq!(h.device_major().unwrap(), Some(1));
        assert_eq!(h.device_minor().unwrap(), Some(3));
        assert_eq!(split_dev(libc::makedev(259, 70000)), (259, 70000));
    }

    #[test]
    fn pax_header_names_follow_gnu_tar() {
        assert_eq!(pax_header_name(b"a/b/c"), b"a/b/PaxHeaders/c");
        assert_eq!(pax_header_name(b"c"), b"./PaxHeaders/c");
    }

    /// GNU tar reads the size of a file over 8 GiB from the pax record. The archive is sparse:
    /// the content is a hole, and tar seeks over it when it only lists.
    #[test]
    fn gnu_tar_lists_a_member_over_8_gib() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.tar");
        let size: u64 = (8 << 30) + 12345;
        let mut m = member(b"huge", Kind::Regular { size });
        m.uid = 5_000_000;
        m.mtime = Timestamp {
            secs: 1_600_000_000,
            nanos: 500_000_000,
        };
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&header_blocks(&m)).unwrap();
        let end = f.metadata().unwrap().len() + size.next_multiple_of(BLOCK as u64);
        f.set_len(end + 2 * BLOCK as u64).unwrap();
        drop(f);
        let out = std::process::Command::new("tar")
            .args(["--numeric-owner", "--full-time", "-tvf"])
            .arg(&path)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(&format!("5000000/100 {size} ")), "{text}");
        assert!(text.contains("2020-09-13 12:26:40.5 huge"), "{text}");
    }

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_failure_is_fatal_with_the_os_message() {
        let dir = tempfile::tempdir().unwrap();
        let fd = std::os::fd::OwnedFd::from(std::fs::File::open(dir.path()).unwrap());
        let stat = sys::fstat(fd.as_fd()).unwrap();
        let entry = Entry {
            name: PathBuf::from("d"),
            location: Some((std::sync::Arc::new(fd), c".".to_owned())),
            stat: Some(stat),
            link: None,
            file: None,
        };
        let mut archiver = Archiver::new(WriteOutput::new(Full), &aa_abi::NoEvents, None);
        let err = archiver.add(entry).unwrap_err();
        assert_eq!(err.to_string(), "No space left on device");
        assert_eq!(err.io_error().raw_os_error(), Some(libc::ENOSPC));
    }
}

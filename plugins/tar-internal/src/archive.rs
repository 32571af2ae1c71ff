//! Tar members from the file system: [`Archiver`] reads each object's metadata and content,
//! detects hard links and files changing under it, and reports non-fatal problems through
//! the backup events. Only a failure to write the archive itself, or to read a file's
//! content (an I/O error, which would leave zeros in the member), is fatal. The bytes of the
//! headers come from [`crate::header`]; opening files and naming owners from [`crate::sys`].
//!
//! The archiver runs on the calling thread, so events are raised there, in member order, and
//! a file is announced (`file_add`) after it is opened and before its content is read. Per
//! regular file it makes five system calls (open, fstat, read, fstat to detect a change
//! while reading, close): a file smaller than the free room in the current chunk is read
//! with one `read` of one byte more than its size, whose short count proves the end of the
//! file. Content is read straight into the output chunk ([`TarOutput::window`]), and headers
//! are encoded into a reused buffer, so storing a file allocates nothing.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use aa_abi::{BackupEvents, BackupOperationError, BackupSubOperation};
use rustix::io::Errno;

use crate::header::{encode_header, Kind, Member, Mtime, BLOCK, RECORD};
use crate::output::TarOutput;
use crate::sys::{self, open_regular, split_dev, FileType, Opened, Owners, Stat};
use crate::walk::{Object, Step};

/// A fatal failure: the archive itself could not be written, or (with `source`) a file's
/// content could not be read, which would leave zeros in its place in a backup that then
/// replaces a good one.
#[derive(Debug)]
pub struct ArchiveError {
    error: io::Error,
    source: Option<PathBuf>,
}

impl ArchiveError {
    fn reading(name: &Path, error: io::Error) -> ArchiveError {
        ArchiveError {
            error,
            source: Some(name.to_path_buf()),
        }
    }

    /// The file that could not be read, if that is the failure.
    pub fn unreadable_source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

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
        ArchiveError {
            error,
            source: None,
        }
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
    if error.raw_os_error() == Some(Errno::ACCESS.raw_os_error()) {
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

fn mtime_of(m: &Stat) -> Mtime {
    Mtime {
        secs: m.mtime,
        nanos: m.mtime_nsec.clamp(0, 999_999_999) as u32,
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
    /// Set for a dry run: receives the members instead of the `file_add` events, and
    /// regular files' content is not read.
    listing: Option<&'e dyn Listing>,
}

/// Receives the members a dry run would store (see [`Archiver::listing`]).
pub trait Listing {
    /// `name` would be stored, with `size` bytes of content (0 for all but regular files).
    fn member(&self, name: &Path, size: u64);
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
            listing: None,
        }
    }

    /// An archiver for a dry run: it decides every member as [`Archiver::new`]'s does (the
    /// same walk, the same hard links, the same objects left out), tells `listing` about each
    /// instead of raising `file_add`, and reads no file content. Problems still go to
    /// `events`.
    pub fn listing(out: O, events: &'e dyn BackupEvents, listing: &'e dyn Listing) -> Self {
        Archiver {
            listing: Some(listing),
            ..Archiver::new(out, events, None)
        }
    }

    /// Announces a member once its header is written.
    fn announce(&mut self, name: &Path, size: u64) {
        match self.listing {
            Some(listing) => listing.member(name, size),
            None => self.events.file_add(name),
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
        encode_header(&member, extra, &mut self.header);
        self.out.put(&self.header)?;
        self.written += self.header.len() as u64;
        Ok(())
    }

    /// Writes `blocks`, whole tar blocks made elsewhere (the roots record), as they are.
    pub fn add_blocks(&mut self, blocks: &[u8]) -> Result<(), ArchiveError> {
        debug_assert_eq!(blocks.len() % BLOCK, 0);
        self.write(blocks)
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
        self.announce(name, 0);
        Ok(())
    }

    /// Reports a failed operation on a walked object (see [`report_os_error`]).
    pub fn report(&self, operation: BackupSubOperation, name: &Path, error: &io::Error) {
        report_os_error(self.events, operation, name, error);
    }

    /// Stores one object. Problems with the object itself are reported as events and the
    /// object is left out; only a failure to write the archive is returned.
    pub fn add(&mut self, mut entry: Object) -> Result<(), ArchiveError> {
        match (entry.file.take(), &entry.stat) {
            (Some(file), Some(stat)) => self.add_regular(&entry.name, file, *stat),
            (_, Some(stat)) if !stat.is_file() => self.add_other(&entry, stat),
            // A regular file not opened yet, or an object not examined yet.
            (_, stat) => match entry.location.as_ref().map_or_else(
                || Opened::Failed(BackupSubOperation::Open, io::Error::from(Errno::NOENT)),
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

    /// Stores every walked object, in order; only a failure to write the archive is returned.
    pub fn store_steps(&mut self, steps: Receiver<Vec<Step>>) -> Result<(), ArchiveError> {
        for batch in steps {
            for step in batch {
                match step {
                    Step::Object(entry) => self.add(entry)?,
                    Step::Error {
                        operation,
                        name,
                        error,
                    } => self.report(operation, &name, &error),
                    Step::Changed { name } => self.file_changed(&name),
                }
            }
        }
        Ok(())
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
    fn add_other(&mut self, entry: &Object, metadata: &Stat) -> Result<(), ArchiveError> {
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
            self.announce(name, 0);
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
        self.announce(name, 0);
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
            self.announce(name, 0);
            return Ok(());
        }

        let size = before.size;
        self.write_header(name, &before, Kind::Regular { size })?;
        self.announce(name, size);
        if self.listing.is_some() {
            // A dry run: the member is decided; its content is not needed.
            self.remember_link(&before, name);
            return Ok(());
        }
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
            Copied::ReadError(error) => return Err(ArchiveError::reading(name, error)),
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
    use std::io::Write;

    use super::*;

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
        let entry = Object {
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

//! GNU tar snapshot files, format 2: the layout, a streaming reader and writer.
//!
//! A snapshot file (`--listed-incremental=FILE`) records when the last dump started and, for
//! every directory it dumped, enough to recognise the directory next time and to know which
//! files it held. Format 2, written by GNU tar 1.16 up to 1.35, is:
//!
//! ```text
//! GNU tar-1.34-2\n                      version line: "GNU tar-" TAR-VERSION "-" FORMAT
//! SEC \0 NSEC \0                        dump time: when the dump started
//! then, per directory, one record:
//! NFS \0 SEC \0 NSEC \0 DEV \0 INO \0   "0" or "1", the directory's mtime, device, inode
//! NAME \0                               the directory's name as tar names it ("./a/b")
//! C FILE \0 ... C FILE \0               its dumpdir entries, C = 'Y', 'N' or 'D'
//! \0 \0                                 end of record
//! ```
//!
//! Numbers are decimal ASCII: the seconds may be negative, the nanoseconds are below 10^9,
//! device and inode are unsigned 64-bit. Names are raw bytes without any quoting (they may
//! hold newlines and bytes that are not UTF-8); only NUL cannot occur in them. A directory
//! with no entries ends right after its name with the two NULs. The records come in no
//! particular order (GNU tar writes them in its hash table's order); only directories found
//! in the dump are written, so a deleted directory simply disappears. GNU tar accepts any
//! TAR-VERSION without a `-`; it reads a zero-length file as "no previous dump".
//!
//! Reading is strict where GNU tar is, and a little stricter: every malformed byte gives a
//! [`SnapshotError`] naming its byte offset and record number, never a panic; dumpdir codes
//! other than `Y`/`N`/`D` (GNU tar never writes them here) and fields over [`MAX_FIELD`]
//! bytes are rejected. Formats 0 and 1 (GNU tar 1.15.x and older) are refused with a message
//! saying so.
//!
//! Memory: [`SnapshotReader`] streams one record at a time, so reading costs the largest
//! directory, not the tree; [`SnapshotWriter`] writes each record as it is given.
//!
//! This is the one place `aa` parses snapshot files: `TarInternal` plans its levels with it,
//! `TarExternal` rewrites the dump time GNU tar wrote with it, and the tests edit snapshots
//! with it.

mod error;
mod read;
mod vanished;
mod write;

#[cfg(test)]
mod tests;

pub use error::SnapshotError;
pub use read::SnapshotReader;
pub use vanished::drop_vanished_tops;
pub use write::{encode_header, encode_record, SnapshotWriter};

use crate::dumpdir::Entry;

/// The snapshot format this module reads and writes.
pub const FORMAT_VERSION: u32 = 2;

/// The TAR-VERSION written in new snapshot files: the GNU tar release whose behaviour these
/// files reproduce. GNU tar ignores the field; a real version keeps other readers content.
pub const DEFAULT_TAR_VERSION: &[u8] = b"1.34";

/// Longest name or dumpdir entry accepted, so that garbage without NULs cannot make the
/// reader allocate without bound. Far above any real path (Linux `PATH_MAX` is 4096, but
/// GNU tar stores deeper paths than that, hence the margin).
pub const MAX_FIELD: usize = 1 << 20;

pub(crate) const MAGIC: &[u8] = b"GNU tar-";
pub(crate) const MAX_HEADER_LINE: usize = 256;
/// `-9223372036854775808` has 20 characters; a few spare for leading zeros.
pub(crate) const MAX_NUMBER: usize = 32;
pub(crate) const NANOS_PER_SEC: u32 = 1_000_000_000;

/// A point in time as the snapshot stores it: seconds since the epoch (negative before it)
/// and nanoseconds after them, always below 10^9. The derived order is chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds after `sec`, below 10^9.
    pub nsec: u32,
}

impl Timestamp {
    /// The timestamp of `sec` and `nsec` as `stat` reports them (`st_mtime`, `st_mtime_nsec`);
    /// an out-of-range `nsec` is carried into the seconds.
    pub fn from_stat(sec: i64, nsec: i64) -> Timestamp {
        let extra = nsec.div_euclid(i64::from(NANOS_PER_SEC));
        let nsec = nsec.rem_euclid(i64::from(NANOS_PER_SEC));
        Timestamp {
            sec: sec.saturating_add(extra),
            // rem_euclid keeps it in 0..1e9.
            nsec: nsec as u32,
        }
    }

    /// The dump time of a backup that starts now: take it *before* walking the tree, so that
    /// a file changed during the walk is dumped again next time. It is the first tick of the
    /// clock the kernel stamps files with after the call (see
    /// [`crate::dump_start_time`]), so no change made after it can look older than it and none
    /// made before it is stored again.
    pub fn dump_start() -> Timestamp {
        let (sec, nsec) = crate::dump_start_time();
        Timestamp { sec, nsec }
    }
}

/// The first two fields of a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// TAR-VERSION of the version line, e.g. `1.34`; kept as read so that a file read and
    /// written back is byte-identical.
    pub tar_version: Vec<u8>,
    /// When the dump that wrote this file started: files changed at or after it are dumped
    /// by the next level.
    pub dump_time: Timestamp,
}

impl Header {
    /// The header of a new snapshot file for a dump started at `dump_time`.
    pub fn new(dump_time: Timestamp) -> Header {
        Header {
            tar_version: DEFAULT_TAR_VERSION.to_vec(),
            dump_time,
        }
    }
}

/// One directory of a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRecord {
    /// GNU tar's "on NFS" flag: device and inode are then compared by inode only.
    pub nfs: bool,
    /// The directory's modification time.
    pub mtime: Timestamp,
    /// The device number of the file system holding it.
    pub dev: u64,
    /// Its inode number.
    pub ino: u64,
    /// The directory's name as it is in the archive, without a trailing `/`.
    pub name: Vec<u8>,
    /// Its content at the dump, in the order stored (GNU tar sorts it by name bytes).
    pub entries: Vec<Entry>,
}

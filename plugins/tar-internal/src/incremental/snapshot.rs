//! GNU tar snapshot files, format 2: reading, writing and looking up the previous level.
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
//! directory, not the tree. [`Snapshot`], the previous level as the incremental planner
//! needs it, keeps only two indexes, a 64-bit hash of each directory name and each (device,
//! inode) pair mapped to the record's byte offset, and reads a record back from the file when
//! it is looked up. The indexes are sorted vectors up to [`index::MEMORY_ENTRIES`] directories
//! and sorted temporary files beyond, looked up a page at a time (see [`super::index`]), so
//! their memory is bounded too: at most 8 MiB, plus under 0.4 bytes per directory.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::fs::File;
use std::hash::Hasher;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::dumpdir::{Code, Entry};
use super::index::{self, Index, IndexBuilder, IndexEntry};

/// The snapshot format this module reads and writes.
pub const FORMAT_VERSION: u32 = 2;

/// The TAR-VERSION written in new snapshot files: the GNU tar release whose behaviour these
/// files reproduce. GNU tar ignores the field; a real version keeps other readers content.
pub const DEFAULT_TAR_VERSION: &[u8] = b"1.34";

/// Longest name or dumpdir entry accepted, so that garbage without NULs cannot make the
/// reader allocate without bound. Far above any real path (Linux `PATH_MAX` is 4096, but
/// GNU tar stores deeper paths than that, hence the margin).
pub const MAX_FIELD: usize = 1 << 20;

const MAGIC: &[u8] = b"GNU tar-";
const MAX_HEADER_LINE: usize = 256;
/// `-9223372036854775808` has 20 characters; a few spare for leading zeros.
const MAX_NUMBER: usize = 32;
const NANOS_PER_SEC: u32 = 1_000_000_000;

// ---- Values -----------------------------------------------------------------------------

/// A point in time as the snapshot stores it: seconds since the epoch (negative before it)
/// and nanoseconds after them, always below 10^9. The derived order is chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    pub sec: i64,
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
    /// [`aa_abi::snapshots::dump_start_time`]), so no change made after it can look older than
    /// it and none made before it is stored again.
    pub fn dump_start() -> Timestamp {
        let (sec, nsec) = aa_abi::snapshots::dump_start_time();
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
    pub mtime: Timestamp,
    pub dev: u64,
    pub ino: u64,
    /// The directory's name as it is in the archive, without a trailing `/`.
    pub name: Vec<u8>,
    /// Its content at the dump, in the order stored (GNU tar sorts it by name bytes).
    pub entries: Vec<Entry>,
}

// ---- Errors -----------------------------------------------------------------------------

/// A snapshot file (or dumpdir) that cannot be read or written.
///
/// The message names the byte offset of the fault and, for a fault inside a directory
/// record, the record's number (1 is the first directory), and the file when it is known.
#[derive(Debug)]
pub struct SnapshotError {
    kind: ErrorKind,
    offset: u64,
    record: Option<u64>,
    path: Option<PathBuf>,
}

#[derive(Debug)]
enum ErrorKind {
    Io(io::Error),
    NotSnapshot,
    OldFormat(u64),
    UnsupportedFormat(Vec<u8>),
    HeaderTooLong,
    UnexpectedEof(&'static str),
    FieldTooLong(&'static str),
    BadNumber(&'static str, Vec<u8>),
    OutOfRange(&'static str, Vec<u8>),
    MissingFileName,
    BadCode(u8),
    MissingTerminator(u8),
    Invalid(String),
    Changed,
}

impl SnapshotError {
    fn new(kind: ErrorKind, offset: u64, record: Option<u64>) -> SnapshotError {
        SnapshotError {
            kind,
            offset,
            record,
            path: None,
        }
    }

    /// An invalid value handed to a writer or to the planner (a NUL in a name, say).
    pub(crate) fn invalid(message: impl Into<String>) -> SnapshotError {
        SnapshotError::new(ErrorKind::Invalid(message.into()), 0, None)
    }

    pub(crate) fn io(err: io::Error, offset: u64) -> SnapshotError {
        SnapshotError::new(ErrorKind::Io(err), offset, None)
    }

    /// A malformed dumpdir in an archive member (see [`super::dumpdir::parse`]).
    pub(crate) fn bad_dumpdir(message: impl Into<String>, offset: u64) -> SnapshotError {
        SnapshotError::new(ErrorKind::Invalid(message.into()), offset, None)
    }

    /// Names the file the error is about in its message.
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> SnapshotError {
        self.path = Some(path.into());
        self
    }

    /// Byte offset of the fault from the start of the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Number of the directory record at fault (1-based), if the fault is inside one.
    pub fn record(&self) -> Option<u64> {
        self.record
    }

    /// The underlying I/O error, if reading or writing failed rather than the content.
    pub fn io_error(&self) -> Option<&io::Error> {
        match &self.kind {
            ErrorKind::Io(err) => Some(err),
            _ => None,
        }
    }

    /// True when the content is at fault (as opposed to I/O or an invalid value to write).
    pub fn is_malformed(&self) -> bool {
        !matches!(self.kind, ErrorKind::Io(_) | ErrorKind::Invalid(_))
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}: ", path.display())?;
        }
        if let ErrorKind::Invalid(message) = &self.kind {
            if self.offset == 0 {
                return f.write_str(message);
            }
        }
        write!(f, "byte {}", self.offset)?;
        if let Some(record) = self.record {
            write!(f, " (directory record {record})")?;
        }
        f.write_str(": ")?;
        match &self.kind {
            ErrorKind::Io(err) => write!(f, "{err}"),
            ErrorKind::NotSnapshot => {
                f.write_str("not a GNU tar snapshot file (no \"GNU tar-VERSION-2\" first line)")
            }
            ErrorKind::OldFormat(version) => write!(
                f,
                "snapshot file format {version} (GNU tar 1.15 and older) is not supported, \
                 only format 2"
            ),
            ErrorKind::UnsupportedFormat(version) => write!(
                f,
                "unsupported snapshot file format \"{}\", only format 2 is supported",
                String::from_utf8_lossy(version).escape_debug()
            ),
            ErrorKind::HeaderTooLong => write!(
                f,
                "first line longer than {MAX_HEADER_LINE} bytes: not a GNU tar snapshot file"
            ),
            ErrorKind::UnexpectedEof(field) => {
                write!(f, "snapshot file ends inside the {field} field")
            }
            ErrorKind::FieldTooLong(field) => write!(f, "{field} field is too long"),
            ErrorKind::BadNumber(field, text) => write!(
                f,
                "{field} field \"{}\" is not a decimal number",
                String::from_utf8_lossy(text).escape_debug()
            ),
            ErrorKind::OutOfRange(field, text) => write!(
                f,
                "{field} field {} is out of range",
                String::from_utf8_lossy(text).escape_debug()
            ),
            ErrorKind::MissingFileName => f.write_str("dumpdir entry without a file name"),
            ErrorKind::BadCode(code) => write!(
                f,
                "unknown dumpdir code {:?} (expected 'Y', 'N' or 'D')",
                char::from(*code)
            ),
            ErrorKind::MissingTerminator(byte) => write!(
                f,
                "directory record not terminated by a second NUL (found byte 0x{byte:02x})"
            ),
            ErrorKind::Invalid(message) => f.write_str(message),
            ErrorKind::Changed => f.write_str("snapshot file changed while it was being used"),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(err) => Some(err),
            _ => None,
        }
    }
}

// ---- Reading ----------------------------------------------------------------------------

/// Reads a snapshot file one directory record at a time.
///
/// ```ignore
/// let mut reader = SnapshotReader::new(BufReader::new(file))?;
/// let dump_time = reader.header().map(|h| h.dump_time);
/// while let Some(record) = reader.next_record()? { ... }
/// ```
pub struct SnapshotReader<R> {
    input: R,
    /// Bytes consumed so far: the offset of the next byte.
    offset: u64,
    header: Option<Header>,
    /// Number of records read so far.
    records: u64,
    done: bool,
}

impl<R: BufRead> SnapshotReader<R> {
    /// Reads the version line and the dump time. An empty input is a valid snapshot of "no
    /// previous dump", as for GNU tar: [`header`](Self::header) is then `None`.
    pub fn new(input: R) -> Result<SnapshotReader<R>, SnapshotError> {
        let mut reader = SnapshotReader {
            input,
            offset: 0,
            header: None,
            records: 0,
            done: false,
        };
        reader.read_header()?;
        Ok(reader)
    }

    /// Starts reading records at `offset`, after the header (used by [`Snapshot`] to read
    /// back one record it indexed).
    fn resume(input: R, offset: u64, record: u64) -> SnapshotReader<R> {
        SnapshotReader {
            input,
            offset,
            header: None,
            records: record.saturating_sub(1),
            done: false,
        }
    }

    /// The version line and dump time, `None` for an empty file.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// Offset of the next byte to read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next directory record, `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<DirRecord>, SnapshotError> {
        if self.done {
            return Ok(None);
        }
        let record = self.records + 1;
        let start = self.offset;
        let Some(nfs) = self.read_number("nfs", Some(record), true)? else {
            self.done = true;
            return Ok(None);
        };
        let nfs = match parse_unsigned(&nfs) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(self.number_error("nfs", nfs, start, record)),
        };
        let mtime = self.read_timestamp(Some(record))?;
        let dev = self.read_unsigned("dev", record)?;
        let ino = self.read_unsigned("ino", record)?;
        let name = self.read_required_field("name", Some(record), MAX_FIELD)?;
        let mut entries = Vec::new();
        loop {
            let entry_start = self.offset;
            let entry = self.read_required_field("dumpdir entry", Some(record), MAX_FIELD)?;
            let Some((&code, file)) = entry.split_first() else {
                break;
            };
            let Some(code) = Code::from_snapshot_byte(code) else {
                return Err(SnapshotError::new(
                    ErrorKind::BadCode(code),
                    entry_start,
                    Some(record),
                ));
            };
            if file.is_empty() {
                return Err(SnapshotError::new(
                    ErrorKind::MissingFileName,
                    entry_start,
                    Some(record),
                ));
            }
            entries.push(Entry {
                code,
                name: file.to_vec(),
            });
        }
        let at = self.offset;
        match self.read_byte()? {
            Some(0) => {}
            Some(byte) => {
                return Err(SnapshotError::new(
                    ErrorKind::MissingTerminator(byte),
                    at,
                    Some(record),
                ))
            }
            None => {
                return Err(SnapshotError::new(
                    ErrorKind::UnexpectedEof("record terminator"),
                    at,
                    Some(record),
                ))
            }
        }
        self.records = record;
        Ok(Some(DirRecord {
            nfs,
            mtime,
            dev,
            ino,
            name,
            entries,
        }))
    }

    fn read_header(&mut self) -> Result<(), SnapshotError> {
        let mut line = Vec::new();
        loop {
            let Some(byte) = self.read_byte()? else {
                if line.is_empty() {
                    self.done = true;
                    return Ok(());
                }
                return Err(SnapshotError::new(
                    ErrorKind::UnexpectedEof("version line"),
                    self.offset,
                    None,
                ));
            };
            if byte == b'\n' {
                break;
            }
            if line.len() == MAX_HEADER_LINE {
                return Err(SnapshotError::new(ErrorKind::HeaderTooLong, 0, None));
            }
            line.push(byte);
        }
        let Some(rest) = line.strip_prefix(MAGIC) else {
            // Format 0 starts with the dump time on a line of its own.
            if !line.is_empty() && line.iter().all(u8::is_ascii_digit) {
                return Err(SnapshotError::new(ErrorKind::OldFormat(0), 0, None));
            }
            return Err(SnapshotError::new(ErrorKind::NotSnapshot, 0, None));
        };
        let Some(dash) = rest.iter().position(|&b| b == b'-') else {
            return Err(SnapshotError::new(ErrorKind::NotSnapshot, 0, None));
        };
        let (version, format) = (&rest[..dash], &rest[dash + 1..]);
        match parse_unsigned(format) {
            Some(2) => {}
            Some(old @ (0 | 1)) => {
                return Err(SnapshotError::new(ErrorKind::OldFormat(old), 0, None))
            }
            _ => {
                return Err(SnapshotError::new(
                    ErrorKind::UnsupportedFormat(format.to_vec()),
                    (MAGIC.len() + dash + 1) as u64,
                    None,
                ))
            }
        }
        let dump_time = self.read_timestamp(None)?;
        self.header = Some(Header {
            tar_version: version.to_vec(),
            dump_time,
        });
        Ok(())
    }

    fn read_timestamp(&mut self, record: Option<u64>) -> Result<Timestamp, SnapshotError> {
        let start = self.offset;
        let Some(text) = self.read_number("seconds", record, false)? else {
            unreachable_eof()?
        };
        let sec = parse_signed(&text)
            .ok_or_else(|| self.number_error("seconds", text, start, record.unwrap_or(0)))?;
        let start = self.offset;
        let Some(text) = self.read_number("nanoseconds", record, false)? else {
            unreachable_eof()?
        };
        let nsec = parse_unsigned(&text)
            .filter(|&n| n < u64::from(NANOS_PER_SEC))
            .ok_or_else(|| self.number_error("nanoseconds", text, start, record.unwrap_or(0)))?;
        Ok(Timestamp {
            sec,
            // Checked just above to be below 1e9.
            nsec: nsec as u32,
        })
    }

    fn read_unsigned(&mut self, field: &'static str, record: u64) -> Result<u64, SnapshotError> {
        let start = self.offset;
        let Some(text) = self.read_number(field, Some(record), false)? else {
            unreachable_eof()?
        };
        parse_unsigned(&text).ok_or_else(|| self.number_error(field, text, start, record))
    }

    /// The error for a numeric field that is not a number, or out of range.
    fn number_error(
        &self,
        field: &'static str,
        text: Vec<u8>,
        start: u64,
        record: u64,
    ) -> SnapshotError {
        let record = (record > 0).then_some(record);
        let digits = text.strip_prefix(b"-").unwrap_or(&text);
        let kind = if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
            ErrorKind::OutOfRange(field, text)
        } else {
            ErrorKind::BadNumber(field, text)
        };
        SnapshotError::new(kind, start, record)
    }

    /// A numeric field; `None` only when `eof_ok` and the input ends before its first byte.
    fn read_number(
        &mut self,
        field: &'static str,
        record: Option<u64>,
        eof_ok: bool,
    ) -> Result<Option<Vec<u8>>, SnapshotError> {
        let start = self.offset;
        match self.read_field(field, record, MAX_NUMBER)? {
            Some(text) => Ok(Some(text)),
            None if eof_ok => Ok(None),
            None => Err(SnapshotError::new(
                ErrorKind::UnexpectedEof(field),
                start,
                record,
            )),
        }
    }

    fn read_required_field(
        &mut self,
        field: &'static str,
        record: Option<u64>,
        limit: usize,
    ) -> Result<Vec<u8>, SnapshotError> {
        let start = self.offset;
        self.read_field(field, record, limit)?
            .ok_or_else(|| SnapshotError::new(ErrorKind::UnexpectedEof(field), start, record))
    }

    /// The bytes up to the next NUL (consumed, not returned); `None` if the input ends
    /// before the field's first byte. An input ending inside the field is an error.
    fn read_field(
        &mut self,
        field: &'static str,
        record: Option<u64>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, SnapshotError> {
        let start = self.offset;
        let mut text = Vec::new();
        loop {
            let available = match self.input.fill_buf() {
                Ok(available) => available,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    return Err(SnapshotError::new(ErrorKind::Io(err), self.offset, record))
                }
            };
            if available.is_empty() {
                if text.is_empty() {
                    return Ok(None);
                }
                return Err(SnapshotError::new(
                    ErrorKind::UnexpectedEof(field),
                    self.offset,
                    record,
                ));
            }
            let (taken, found) = match available.iter().position(|&b| b == 0) {
                Some(nul) => (nul, true),
                None => (available.len(), false),
            };
            if text.len() + taken > limit {
                return Err(SnapshotError::new(
                    ErrorKind::FieldTooLong(field),
                    start,
                    record,
                ));
            }
            text.extend_from_slice(&available[..taken]);
            let consumed = taken + usize::from(found);
            self.input.consume(consumed);
            self.offset += consumed as u64;
            if found {
                return Ok(Some(text));
            }
        }
    }

    fn read_byte(&mut self) -> Result<Option<u8>, SnapshotError> {
        loop {
            let available = match self.input.fill_buf() {
                Ok(available) => available,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(SnapshotError::new(ErrorKind::Io(err), self.offset, None)),
            };
            let Some(&byte) = available.first() else {
                return Ok(None);
            };
            self.input.consume(1);
            self.offset += 1;
            return Ok(Some(byte));
        }
    }
}

/// `read_number(.., eof_ok = false)` never returns `Ok(None)`; this keeps the `let else`
/// arms total without a panic.
fn unreachable_eof<T>() -> Result<T, SnapshotError> {
    Err(SnapshotError::invalid(
        "internal error: end of file not reported",
    ))
}

impl<R: BufRead> Iterator for SnapshotReader<R> {
    type Item = Result<DirRecord, SnapshotError>;

    /// Stops after the first error.
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_record() {
            Ok(record) => record.map(Ok),
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

/// Decimal digits only (GNU tar accepts leading zeros, so do we).
fn parse_unsigned(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter().try_fold(0u64, |value, &digit| {
        value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

/// Decimal digits with an optional leading `-`.
fn parse_signed(text: &[u8]) -> Option<i64> {
    match text.strip_prefix(b"-") {
        Some(digits) => {
            let magnitude = parse_unsigned(digits)?;
            0i64.checked_sub_unsigned(magnitude)
        }
        None => i64::try_from(parse_unsigned(text)?).ok(),
    }
}

// ---- Writing ----------------------------------------------------------------------------

/// Appends the version line and dump time of `header` to `out`.
pub fn encode_header(header: &Header, out: &mut Vec<u8>) -> Result<(), SnapshotError> {
    if header
        .tar_version
        .iter()
        .any(|&b| matches!(b, b'-' | b'\n' | 0))
    {
        return Err(SnapshotError::invalid(format!(
            "snapshot tar version {:?} must not contain '-', a newline or NUL",
            String::from_utf8_lossy(&header.tar_version)
        )));
    }
    check_timestamp(header.dump_time, "dump time")?;
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&header.tar_version);
    out.extend_from_slice(format!("-{FORMAT_VERSION}\n").as_bytes());
    push_timestamp(out, header.dump_time);
    Ok(())
}

/// Appends one directory record to `out`, exactly as GNU tar writes it.
pub fn encode_record(record: &DirRecord, out: &mut Vec<u8>) -> Result<(), SnapshotError> {
    check_timestamp(record.mtime, "directory mtime")?;
    if record.name.contains(&0) {
        return Err(SnapshotError::invalid(format!(
            "directory name {:?} contains a NUL byte",
            String::from_utf8_lossy(&record.name)
        )));
    }
    for entry in &record.entries {
        entry.check()?;
    }
    out.extend_from_slice(if record.nfs { b"1\0" } else { b"0\0" });
    push_timestamp(out, record.mtime);
    push_number(out, record.dev);
    push_number(out, record.ino);
    out.extend_from_slice(&record.name);
    out.push(0);
    for entry in &record.entries {
        out.push(entry.code.byte());
        out.extend_from_slice(&entry.name);
        out.push(0);
    }
    out.extend_from_slice(b"\0\0");
    Ok(())
}

fn check_timestamp(time: Timestamp, what: &str) -> Result<(), SnapshotError> {
    if time.nsec >= NANOS_PER_SEC {
        return Err(SnapshotError::invalid(format!(
            "{what} has {} nanoseconds (must be below 1000000000)",
            time.nsec
        )));
    }
    Ok(())
}

fn push_timestamp(out: &mut Vec<u8>, time: Timestamp) {
    out.extend_from_slice(time.sec.to_string().as_bytes());
    out.push(0);
    push_number(out, u64::from(time.nsec));
}

fn push_number(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(value.to_string().as_bytes());
    out.push(0);
}

/// Writes a snapshot file record by record, as the directories are planned.
pub struct SnapshotWriter<W: Write> {
    output: W,
    buffer: Vec<u8>,
    offset: u64,
}

impl<W: Write> SnapshotWriter<W> {
    /// Writes the header. Give it a buffered writer: records are written as small pieces.
    pub fn new(output: W, header: &Header) -> Result<SnapshotWriter<W>, SnapshotError> {
        let mut writer = SnapshotWriter {
            output,
            buffer: Vec::new(),
            offset: 0,
        };
        encode_header(header, &mut writer.buffer)?;
        writer.flush_buffer()?;
        Ok(writer)
    }

    pub fn write_record(&mut self, record: &DirRecord) -> Result<(), SnapshotError> {
        self.buffer.clear();
        encode_record(record, &mut self.buffer)?;
        self.flush_buffer()
    }

    /// Flushes and returns the output; the caller syncs and renames it into place.
    pub fn finish(mut self) -> Result<W, SnapshotError> {
        self.output
            .flush()
            .map_err(|err| SnapshotError::io(err, self.offset))?;
        Ok(self.output)
    }

    fn flush_buffer(&mut self) -> Result<(), SnapshotError> {
        self.output
            .write_all(&self.buffer)
            .map_err(|err| SnapshotError::io(err, self.offset))?;
        self.offset += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }
}

// ---- The previous level, indexed ----------------------------------------------------------

/// A source of snapshot bytes that lookups can seek in.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// The previous level's snapshot file, ready for the lookups of the incremental planner.
///
/// [`Snapshot::read`] checks the whole file once, streaming, and keeps two indexes: name
/// hash to record offset, and (device, inode) to the first record with them (GNU tar, too,
/// keeps the first of duplicates). A lookup reads the record back from the file. See the
/// module documentation for the memory this costs.
pub struct Snapshot {
    header: Option<Header>,
    source: Option<Box<dyn ReadSeek>>,
    /// Name hash (and 0) to (offset, record number) of the records with that hash.
    by_name: Index,
    /// Device and inode to (offset, record number) of the records of that directory.
    by_identity: Index,
    records: u64,
    path: Option<PathBuf>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("header", &self.header)
            .field("records", &self.records)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// No previous level: everything is new.
    pub fn empty() -> Snapshot {
        Snapshot {
            header: None,
            source: None,
            by_name: Index::empty(),
            by_identity: Index::empty(),
            records: 0,
            path: None,
        }
    }

    /// Opens and indexes the snapshot file at `path`; errors name the file. A large index
    /// spills to unnamed temporary files next to it (see [`super::index`]).
    pub fn read(path: &Path) -> Result<Snapshot, SnapshotError> {
        let file = File::open(path).map_err(|err| SnapshotError::io(err, 0).with_path(path))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut snapshot = Snapshot::from_reader_in(file, dir, index::MEMORY_ENTRIES)
            .map_err(|err| err.with_path(path))?;
        snapshot.path = Some(path.to_path_buf());
        Ok(snapshot)
    }

    /// Indexes a snapshot from any seekable source positioned at its start (lookups seek to
    /// offsets counted from there); a large index spills to the system's temporary directory.
    pub fn from_reader<R: ReadSeek + 'static>(source: R) -> Result<Snapshot, SnapshotError> {
        Snapshot::from_reader_in(source, &std::env::temp_dir(), index::MEMORY_ENTRIES)
    }

    /// [`Snapshot::from_reader`] keeping up to `memory_entries` index entries in memory and
    /// spilling to `dir` beyond.
    pub fn from_reader_in<R: ReadSeek + 'static>(
        source: R,
        dir: &Path,
        memory_entries: usize,
    ) -> Result<Snapshot, SnapshotError> {
        let mut reader = SnapshotReader::new(BufReader::new(source))?;
        let header = reader.header().cloned();
        let mut by_name = IndexBuilder::new(dir, memory_entries);
        let mut by_identity = IndexBuilder::new(dir, memory_entries);
        let mut records = 0;
        loop {
            let offset = reader.offset();
            let Some(record) = reader.next_record()? else {
                break;
            };
            records += 1;
            let spill_error = |err| SnapshotError::io(err, offset);
            by_name
                .push(IndexEntry {
                    key: (name_hash(&record.name), 0),
                    record: records,
                    offset,
                })
                .map_err(spill_error)?;
            by_identity
                .push(IndexEntry {
                    key: (record.dev, record.ino),
                    record: records,
                    offset,
                })
                .map_err(spill_error)?;
        }
        let end = reader.offset();
        let finish =
            |builder: IndexBuilder| builder.finish().map_err(|e| SnapshotError::io(e, end));
        let by_name = finish(by_name)?;
        let by_identity = finish(by_identity)?;
        let source: Box<dyn ReadSeek> = Box::new(reader.input.into_inner());
        Ok(Snapshot {
            header,
            source: Some(source),
            by_name,
            by_identity,
            records,
            path: None,
        })
    }

    /// Whether the indexes are kept in temporary files rather than in memory.
    pub fn index_on_disk(&self) -> bool {
        self.by_name.on_disk() || self.by_identity.on_disk()
    }

    /// The header, `None` for an empty file or [`Snapshot::empty`].
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// When the previous dump started, `None` if there was none.
    pub fn dump_time(&self) -> Option<Timestamp> {
        self.header.as_ref().map(|header| header.dump_time)
    }

    /// Number of directory records.
    pub fn len(&self) -> u64 {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The first record named `name`.
    pub fn by_name(&mut self, name: &[u8]) -> Result<Option<DirRecord>, SnapshotError> {
        let candidates = self.lookup(Lookup::Name, (name_hash(name), 0))?;
        for (offset, record) in candidates {
            let found = self.record_at(offset, record)?;
            if found.name == name {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The first record of the directory with device `dev` and inode `ino`.
    pub fn by_identity(&mut self, dev: u64, ino: u64) -> Result<Option<DirRecord>, SnapshotError> {
        match self.lookup(Lookup::Identity, (dev, ino))?.first() {
            Some(&(offset, record)) => self.record_at(offset, record).map(Some),
            None => Ok(None),
        }
    }

    fn lookup(&self, which: Lookup, key: (u64, u64)) -> Result<Vec<(u64, u64)>, SnapshotError> {
        let index = match which {
            Lookup::Name => &self.by_name,
            Lookup::Identity => &self.by_identity,
        };
        index.get(key).map_err(|err| {
            let err = SnapshotError::io(err, 0);
            match &self.path {
                Some(path) => err.with_path(path),
                None => err,
            }
        })
    }

    fn record_at(&mut self, offset: u64, number: u64) -> Result<DirRecord, SnapshotError> {
        let path = self.path.clone();
        let with_path = |err: SnapshotError| match &path {
            Some(path) => err.with_path(path),
            None => err,
        };
        let Some(source) = self.source.as_mut() else {
            return Err(with_path(SnapshotError::new(
                ErrorKind::Changed,
                offset,
                None,
            )));
        };
        source
            .seek(SeekFrom::Start(offset))
            .map_err(|err| with_path(SnapshotError::io(err, offset)))?;
        let mut reader = SnapshotReader::resume(BufReader::new(source), offset, number);
        match reader.next_record() {
            Ok(Some(record)) => Ok(record),
            // It was valid when indexed.
            Ok(None) | Err(_) => Err(with_path(SnapshotError::new(
                ErrorKind::Changed,
                offset,
                Some(number),
            ))),
        }
    }
}

#[derive(Clone, Copy)]
enum Lookup {
    Name,
    Identity,
}

/// A fixed-key hash, so the index is the same from run to run.
fn name_hash(name: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(name);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &[u8], entries: &[(Code, &[u8])]) -> DirRecord {
        DirRecord {
            nfs: false,
            mtime: Timestamp {
                sec: 1_700_000_000,
                nsec: 5,
            },
            dev: 64769,
            ino: 42,
            name: name.to_vec(),
            entries: entries
                .iter()
                .map(|&(code, name)| Entry {
                    code,
                    name: name.to_vec(),
                })
                .collect(),
        }
    }

    fn file(records: &[DirRecord]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_header(&Header::new(Timestamp { sec: 17, nsec: 9 }), &mut out).unwrap();
        for r in records {
            encode_record(r, &mut out).unwrap();
        }
        out
    }

    fn read_all(bytes: &[u8]) -> Result<(Option<Header>, Vec<DirRecord>), SnapshotError> {
        let mut reader = SnapshotReader::new(bytes)?;
        let header = reader.header().cloned();
        let records = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
        Ok((header, records))
    }

    #[test]
    fn layout_is_gnu_tar_s() {
        let bytes = file(&[
            record(b"./a", &[(Code::Directory, b"b"), (Code::Dumped, b"f1")]),
            record(b"./empty", &[]),
        ]);
        let expected: &[u8] = b"GNU tar-1.34-2\n17\09\0\
            0\x001700000000\x005\x0064769\x0042\0./a\0Db\0Yf1\0\0\0\
            0\x001700000000\x005\x0064769\x0042\0./empty\0\0\0";
        assert_eq!(bytes, expected);
    }

    #[test]
    fn reads_back_what_it_writes() {
        let mut odd = record(
            b"dir\nwith newline\xff\xfe",
            &[(Code::Unchanged, b"a\nb\xc3")],
        );
        odd.nfs = true;
        odd.mtime = Timestamp {
            sec: -5,
            nsec: 999_999_999,
        };
        odd.dev = u64::MAX;
        odd.ino = 0;
        let records = vec![record(b".", &[]), odd, record(b"", &[(Code::Dumped, b"x")])];
        let bytes = file(&records);
        let (header, read) = read_all(&bytes).unwrap();
        assert_eq!(header.unwrap().dump_time, Timestamp { sec: 17, nsec: 9 });
        assert_eq!(read, records);
    }

    #[test]
    fn empty_input_is_no_previous_dump() {
        let (header, records) = read_all(b"").unwrap();
        assert!(header.is_none());
        assert!(records.is_empty());
    }

    #[test]
    fn header_only_has_no_records() {
        let (header, records) = read_all(b"GNU tar-1.35-2\n-1\x000\0").unwrap();
        let header = header.unwrap();
        assert_eq!(header.tar_version, b"1.35");
        assert_eq!(header.dump_time, Timestamp { sec: -1, nsec: 0 });
        assert!(records.is_empty());
    }

    fn error_of(bytes: &[u8]) -> SnapshotError {
        match read_all(bytes) {
            Ok(read) => panic!("{bytes:?} was accepted: {read:?}"),
            Err(err) => err,
        }
    }

    #[test]
    fn errors_name_offset_and_record() {
        let good = file(&[record(b"./a", &[(Code::Dumped, b"f")])]);
        let header_len = b"GNU tar-1.34-2\n17\09\0".len() as u64;

        // Cut anywhere inside the record: an error at or before the cut, in record 1.
        for cut in header_len as usize + 1..good.len() {
            let err = error_of(&good[..cut]);
            assert_eq!(err.record(), Some(1), "cut at {cut}: {err}");
            assert!(err.offset() <= cut as u64, "cut at {cut}: {err}");
            assert!(err.to_string().contains("ends inside"), "{err}");
        }

        let mut bad_code = good.clone();
        let at = good.windows(2).position(|w| w == b"Yf").unwrap();
        bad_code[at] = b'Q';
        let err = error_of(&bad_code);
        assert_eq!((err.offset(), err.record()), (at as u64, Some(1)));
        assert_eq!(
            err.to_string(),
            format!("byte {at} (directory record 1): unknown dumpdir code 'Q' (expected 'Y', 'N' or 'D')")
        );

        let mut no_terminator = good.clone();
        let last = no_terminator.len() - 1;
        no_terminator[last] = b'x';
        let err = error_of(&no_terminator);
        assert_eq!(err.offset(), last as u64);
        assert!(err.to_string().contains("second NUL"), "{err}");

        let err = error_of(b"GNU tar-1.34-2\n17\x001000000000\0");
        assert_eq!(err.offset(), 18);
        assert!(err
            .to_string()
            .contains("nanoseconds field 1000000000 is out of range"));

        let err = error_of(b"GNU tar-1.34-2\n1x7\x000\0");
        assert_eq!(
            err.to_string(),
            "byte 15: seconds field \"1x7\" is not a decimal number"
        );

        let mut nfs2 = good.clone();
        nfs2[header_len as usize] = b'2';
        let err = error_of(&nfs2);
        assert_eq!((err.offset(), err.record()), (header_len, Some(1)));

        let err = error_of(b"1234567890\n0 1 ./a\n");
        assert!(err.to_string().contains("format 0"), "{err}");
        let err = error_of(b"GNU tar-1.15.90-1\n");
        assert!(err.to_string().contains("format 1"), "{err}");
        let err = error_of(b"GNU tar-1.34-3\n0\x000\0");
        assert!(
            err.to_string()
                .contains("unsupported snapshot file format \"3\""),
            "{err}"
        );
        let err = error_of(b"\x7fELF\x02\x01\x01\n");
        assert!(err.to_string().contains("not a GNU tar snapshot"), "{err}");
        let err = error_of(&[b'x'; 1000]);
        assert!(err.to_string().contains("first line longer"), "{err}");

        let err = error_of(b"GNU tar-1.34-2\n0\x000\x000\x000\x000\x001\x002\0./a\0Y\0\0\0");
        assert!(err.to_string().contains("without a file name"), "{err}");

        let err = error_of(b"GNU tar-1.34-2\n0\x000\x000\x000\x000\x001\x00-2\0");
        assert!(
            err.to_string().contains("ino field -2 is out of range"),
            "{err}"
        );
        let err = error_of(b"GNU tar-1.34-2\n0\x000\x000\x000\x000\x0018446744073709551616\0");
        assert!(err
            .to_string()
            .contains("dev field 18446744073709551616 is out of range"));

        let with_path = error_of(b"GNU").with_path("/snap/x.snar");
        assert!(
            with_path.to_string().starts_with("/snap/x.snar: byte 3: "),
            "{with_path}"
        );
    }

    #[test]
    fn overlong_fields_are_refused_without_reading_them_whole() {
        let mut bytes = b"GNU tar-1.34-2\n0\x000\x000\x000\x000\x001\x002\0".to_vec();
        bytes.resize(bytes.len() + MAX_FIELD + 10, b'a');
        let err = error_of(&bytes);
        assert!(err.to_string().contains("name field is too long"), "{err}");
        let err = error_of(&[b'7'; 300]);
        assert!(err.to_string().contains("first line longer"), "{err}");
        let mut long_number = b"GNU tar-1.34-2\n".to_vec();
        long_number.extend_from_slice(&[b'1'; 100]);
        assert!(error_of(&long_number)
            .to_string()
            .contains("seconds field is too long"));
    }

    #[test]
    fn writer_refuses_what_gnu_tar_could_not_read_back() {
        let mut out = Vec::new();
        assert!(encode_record(&record(b"a\0b", &[]), &mut out).is_err());
        assert!(encode_record(&record(b"a", &[(Code::Dumped, b"")]), &mut out).is_err());
        assert!(encode_record(&record(b"a", &[(Code::Dumped, b"x\0")]), &mut out).is_err());
        let mut late = record(b"a", &[]);
        late.mtime.nsec = 1_000_000_000;
        assert!(encode_record(&late, &mut out).is_err());
        let mut header = Header::new(Timestamp::default());
        header.tar_version = b"1-2".to_vec();
        assert!(encode_header(&header, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn writer_streams_records() {
        let records = [record(b"./a", &[(Code::Dumped, b"f")]), record(b"./b", &[])];
        let mut writer =
            SnapshotWriter::new(Vec::new(), &Header::new(Timestamp { sec: 17, nsec: 9 })).unwrap();
        for r in &records {
            writer.write_record(r).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), file(&records));
    }

    #[test]
    fn snapshot_lookups() {
        snapshot_lookups_with(index::MEMORY_ENTRIES);
        // Every index spilled to temporary files, one entry per run.
        snapshot_lookups_with(1);
    }

    fn snapshot_lookups_with(memory_entries: usize) {
        let mut a = record(b"./a", &[(Code::Dumped, b"f")]);
        a.ino = 1;
        let mut b = record(b"./b", &[]);
        b.ino = 2;
        let mut a_again = record(b"./a", &[]);
        a_again.ino = 3;
        let bytes = file(&[a.clone(), b.clone(), a_again]);
        let tmp = tempfile::tempdir().unwrap();
        let mut snapshot =
            Snapshot::from_reader_in(io::Cursor::new(bytes), tmp.path(), memory_entries).unwrap();
        assert_eq!(snapshot.index_on_disk(), memory_entries < 3);
        assert_eq!(snapshot.len(), 3);
        assert_eq!(snapshot.dump_time(), Some(Timestamp { sec: 17, nsec: 9 }));
        // The first of duplicate names wins, as in GNU tar.
        assert_eq!(snapshot.by_name(b"./a").unwrap(), Some(a));
        assert_eq!(snapshot.by_name(b"./b").unwrap(), Some(b.clone()));
        assert_eq!(snapshot.by_name(b"./c").unwrap(), None);
        assert_eq!(snapshot.by_identity(64769, 2).unwrap(), Some(b));
        assert_eq!(snapshot.by_identity(64770, 2).unwrap(), None);

        let mut empty = Snapshot::empty();
        assert_eq!(empty.dump_time(), None);
        assert_eq!(empty.by_name(b"./a").unwrap(), None);
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            Timestamp::from_stat(5, -1),
            Timestamp {
                sec: 4,
                nsec: 999_999_999
            }
        );
        assert_eq!(
            Timestamp::from_stat(5, 2_000_000_001),
            Timestamp { sec: 7, nsec: 1 }
        );
        assert!(
            Timestamp {
                sec: -1,
                nsec: 999_999_999
            } < Timestamp { sec: 0, nsec: 0 }
        );
        assert!(Timestamp::dump_start().sec > 1_600_000_000);
    }
}

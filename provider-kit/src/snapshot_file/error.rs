//! [`SnapshotError`]: what is wrong with a snapshot file or dumpdir, and where.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::MAX_HEADER_LINE;

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
pub(crate) enum ErrorKind {
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
    pub(crate) fn new(kind: ErrorKind, offset: u64, record: Option<u64>) -> SnapshotError {
        SnapshotError {
            kind,
            offset,
            record,
            path: None,
        }
    }

    /// An invalid value handed to a writer or to the planner (a NUL in a name, say).
    pub fn invalid(message: impl Into<String>) -> SnapshotError {
        SnapshotError::new(ErrorKind::Invalid(message.into()), 0, None)
    }

    /// Reading or writing failed at byte `offset`.
    pub fn io(err: io::Error, offset: u64) -> SnapshotError {
        SnapshotError::new(ErrorKind::Io(err), offset, None)
    }

    /// A malformed dumpdir in an archive member (see [`crate::dumpdir::parse`]).
    pub(crate) fn bad_dumpdir(message: impl Into<String>, offset: u64) -> SnapshotError {
        SnapshotError::new(ErrorKind::Invalid(message.into()), offset, None)
    }

    /// A record that was valid when it was first read is not any more (at `offset`, record
    /// number `record`): the file changed while it was being used.
    pub fn changed(offset: u64, record: Option<u64>) -> SnapshotError {
        SnapshotError::new(ErrorKind::Changed, offset, record)
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

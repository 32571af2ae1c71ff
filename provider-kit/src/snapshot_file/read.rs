//! [`SnapshotReader`]: a snapshot file, one directory record at a time.

use std::io::{self, BufRead};

use super::error::ErrorKind;
use super::{
    DirRecord, Header, SnapshotError, Timestamp, MAGIC, MAX_FIELD, MAX_HEADER_LINE, MAX_NUMBER,
    NANOS_PER_SEC,
};
use crate::dumpdir::{Code, Entry};

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

    /// Starts reading records at `offset` of a file whose header was read before, `record`
    /// being the number of the record found there (1-based): for reading back one record of
    /// an index of offsets. Errors name `offset`s counted from the start of the file.
    pub fn resume(input: R, offset: u64, record: u64) -> SnapshotReader<R> {
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

    /// The input, positioned after what was read: after the header right after
    /// [`SnapshotReader::new`], so that the records can be copied unchanged.
    pub fn into_inner(self) -> R {
        self.input
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
        // GNU tar refuses a NUL before the dash too, and the writer could not write it back.
        if version.contains(&0) {
            return Err(SnapshotError::new(ErrorKind::NotSnapshot, 0, None));
        }
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

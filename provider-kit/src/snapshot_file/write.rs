//! Writing snapshot files: [`encode_header`], [`encode_record`] and the streaming
//! [`SnapshotWriter`].

use std::io::Write;

use super::{DirRecord, Header, SnapshotError, Timestamp, FORMAT_VERSION, MAGIC, NANOS_PER_SEC};

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

    /// Appends one directory record.
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

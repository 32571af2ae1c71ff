//! Where the tar stream goes: [`TarOutput`], which the archiver writes through (the
//! pipeline's chunks implement it, `crate::pipeline::Stream`), and [`Output`], what the end
//! of the pipeline writes the backup's bytes to: the backup file ([`DirectFile`]), written
//! sequentially and made durable cheaply, or a channel to the host's byte sink
//! ([`SinkOutput`], see `crate::backup`), so that both get the same bytes from the same code.
//!
//! A backup is flushed to disk before it replaces the previous one ([`OutputFile`]'s commit).
//! Through the page cache that costs twice: the data is copied into the cache, then the final
//! `fsync` waits for all of it to reach the disk (for a plain tar of a warm tree, 40% of the
//! run). So the file is written with `O_DIRECT` where the file system allows it: whole
//! 4 KiB-aligned blocks go from an aligned staging buffer straight to the device on the writer
//! thread, while the other threads go on producing, and the final `fsync` finds almost nothing
//! left to flush. Only the unaligned tail goes through the page cache.
//!
//! Where `O_DIRECT` is refused (tmpfs, some FUSE and network file systems) or a direct write
//! fails with `EINVAL`, the file falls back to ordinary writes, starting their write-back
//! every few MiB (`sync_file_range`) so that the flush at commit still overlaps the backup.
//!
//! Every writer must end with [`Output::finish`], which writes the tail.
//!
//! [`OutputFile`]: aa_abi::naming::OutputFile

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::mpsc::SyncSender;

use rustix::fs::OFlags;
use rustix::io::Errno;

/// Alignment of direct writes (buffer address, length and file offset): the largest logical
/// block size of common devices.
const ALIGN: usize = 4096;
/// Bytes staged per direct write: large enough that the device sees long requests.
const STAGING: usize = 4 << 20;
/// Bytes between two starts of write-back, for buffered writes.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Where the pipeline's last stage writes the backup's bytes.
pub enum Output {
    /// The backup file.
    File(DirectFile),
    /// The host's byte sink, through a relay thread.
    Sink(SinkOutput),
}

impl Output {
    /// The backup file `file` (see [`DirectFile::new`]).
    pub fn new(file: File) -> Output {
        Output::File(DirectFile::new(file))
    }

    /// Writes what is still buffered. Nothing may be written after it.
    pub fn finish(self) -> io::Result<()> {
        match self {
            Output::File(file) => file.finish(),
            Output::Sink(sink) => sink.finish(),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::File(file) => file.write(buf),
            Output::Sink(sink) => sink.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Bytes handed to the sink's relay at a time: few calls across the boundary, little memory
/// (the channel holds [`SINK_CHUNKS_IN_FLIGHT`] of them at most).
pub const SINK_CHUNK: usize = 1 << 20;
/// Chunks on their way to the relay.
pub const SINK_CHUNKS_IN_FLIGHT: usize = 2;

/// The backup's bytes in [`SINK_CHUNK`]s on a bounded channel to the thread that writes them
/// into the host's sink (`crate::backup`). The pipeline's threads live longer than a borrowed
/// sink could, so the sink stays with a scoped thread and only owned chunks travel.
pub struct SinkOutput {
    chunks: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl SinkOutput {
    pub fn new(chunks: SyncSender<Vec<u8>>) -> SinkOutput {
        SinkOutput {
            chunks,
            buf: Vec::with_capacity(SINK_CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(SINK_CHUNK));
        // The relay stops only when the sink failed; it keeps that error for the report.
        self.chunks
            .send(chunk)
            .map_err(|_| io::Error::other("the backup's destination stopped"))
    }

    /// Sends the last bytes. A sink output dropped without it (an aborted pipeline) never
    /// delivers them, and the backup is not committed.
    pub fn finish(mut self) -> io::Result<()> {
        self.send()
    }
}

impl Write for SinkOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(SINK_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() == SINK_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The backup file (see the module documentation).
pub struct DirectFile {
    file: File,
    /// `Some` while the file is written with `O_DIRECT`.
    staging: Option<Staging>,
    /// Bytes written by buffered writes, and where write-back was last started.
    written: u64,
    started: u64,
}

/// An aligned buffer of [`STAGING`] bytes inside a slightly larger vector, so that no unsafe
/// allocation is needed.
struct Staging {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl Staging {
    fn new() -> Staging {
        let raw = vec![0u8; STAGING + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN);
        Staging { raw, start, len: 0 }
    }

    /// Copies as much of `data` as fits; returns how much.
    fn fill(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(STAGING - self.len);
        let at = self.start + self.len;
        self.raw[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    fn filled(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let mut flags = rustix::fs::fcntl_getfl(file)?;
    flags.set(OFlags::DIRECT, on);
    rustix::fs::fcntl_setfl(file, flags)?;
    Ok(())
}

impl DirectFile {
    /// Writes `file` from its current offset, which must be 0 for direct writes to be tried
    /// (a new or truncated file, as backups are).
    pub fn new(file: File) -> DirectFile {
        let at_start = matches!(file.metadata(), Ok(m) if m.len() == 0);
        let direct = at_start && set_direct(&file, true).is_ok();
        DirectFile {
            file,
            staging: direct.then(Staging::new),
            written: 0,
            started: 0,
        }
    }

    /// Writes the staged blocks directly. A refusal (`EINVAL`: the file system or device
    /// wants another alignment) turns direct writes off and writes the rest buffered.
    fn write_staged(&mut self) -> io::Result<()> {
        let Some(staging) = &mut self.staging else {
            return Ok(());
        };
        let mut done = 0;
        let refused = loop {
            if done == staging.len {
                staging.len = 0;
                return Ok(());
            }
            match self.file.write(&staging.filled()[done..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(Errno::INVAL.raw_os_error()) => break e,
                Err(e) => return Err(e),
            }
        };
        log::debug!("direct writes refused ({refused}); writing the backup through the cache");
        // Keep only what was not written yet.
        let (start, len) = (staging.start, staging.len);
        staging.raw.copy_within(start + done..start + len, start);
        staging.len -= done;
        self.stop_direct()
    }

    /// Turns direct writes off; what is staged is written buffered.
    fn stop_direct(&mut self) -> io::Result<()> {
        let Some(staging) = self.staging.take() else {
            return Ok(());
        };
        set_direct(&self.file, false)?;
        self.write_buffered(staging.filled())
    }

    fn write_buffered(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.written += data.len() as u64;
        if self.written - self.started >= WRITEBACK_STEP {
            // Raw libc: rustix has no `sync_file_range`.
            // SAFETY: a plain system call on an open descriptor. It only starts the write-out
            // of dirty pages and is advisory: a file system without it is no worse off.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.started as libc::off64_t,
                    (self.written - self.started) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.started = self.written;
        }
        Ok(())
    }

    /// Writes everything still staged: the whole blocks directly, the tail buffered. Nothing
    /// may be written after it.
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(staging) = &mut self.staging {
            let whole = staging.len / ALIGN * ALIGN;
            let tail = staging.filled()[whole..].to_vec();
            staging.len = whole;
            self.write_staged()?;
            self.stop_direct()?;
            self.write_buffered(&tail)?;
        }
        Ok(())
    }
}

impl Write for DirectFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.staging.is_none() {
            self.write_buffered(buf)?;
            return Ok(buf.len());
        }
        let mut rest = buf;
        while let Some(staging) = &mut self.staging {
            let n = staging.fill(rest);
            rest = &rest[n..];
            if staging.len == STAGING {
                self.write_staged()?;
            }
            if rest.is_empty() {
                return Ok(buf.len());
            }
        }
        // Direct writes were turned off on the way.
        self.write_buffered(rest)?;
        Ok(buf.len())
    }

    /// Staged bytes stay staged: they can only be written in whole blocks until
    /// [`DirectFile::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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

/// A tar stream that goes nowhere: a dry run's archiver writes to it, so that it takes the
/// same decisions as a real backup while nothing is written.
#[derive(Default)]
pub struct NullOutput {
    window: Vec<u8>,
}

impl TarOutput for NullOutput {
    fn put(&mut self, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn window(&mut self, max: usize) -> io::Result<&mut [u8]> {
        let len = max.clamp(1, 64 * 1024);
        if self.window.len() < len {
            self.window.resize(len, 0);
        }
        Ok(&mut self.window[..len])
    }

    fn commit(&mut self, _n: usize) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Every size around the block and staging boundaries, in uneven pieces, comes back whole.
    #[test]
    fn writes_every_byte_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            STAGING - 1,
            STAGING,
            STAGING + 1,
            2 * STAGING + 3 * ALIGN + 17,
        ] {
            let path = dir.path().join(format!("out-{len}"));
            let data = pattern(len);
            let mut out = DirectFile::new(File::create(&path).unwrap());
            for piece in data.chunks(300_007) {
                out.write_all(piece).unwrap();
            }
            out.finish().unwrap();
            assert!(std::fs::read(&path).unwrap() == data, "length {len}");
        }
    }

    /// Where direct writes are refused the file is written the ordinary way.
    #[test]
    fn falls_back_to_buffered_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let data = pattern(STAGING + 5);
        let mut out = DirectFile::new(File::create(&path).unwrap());
        out.stop_direct().unwrap();
        out.write_all(&data).unwrap();
        out.finish().unwrap();
        assert!(std::fs::read(&path).unwrap() == data);
        // A file that already has content is appended to without direct writes.
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut out = DirectFile::new(file);
        assert!(out.staging.is_none());
        out.write_all(b"more").unwrap();
        out.finish().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            data.len() as u64 + 4
        );
    }
}

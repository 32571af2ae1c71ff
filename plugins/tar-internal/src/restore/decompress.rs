//! The tar stream of a backup file: read and decompressed on a thread of its own, so that
//! decompression overlaps extraction, and handed over in large chunks that extraction writes
//! straight from (no copy between the decoder's buffer and the file).
//!
//! Every codec reads all the streams a file holds, as their tools do: gzip members, bzip2
//! streams (TarInternal writes one per 900 kB chunk, decoded in parallel, see `bz2`), xz streams (decoded with liblzma's
//! multithreaded decoder, which decodes the independent blocks `xz -T` and TarInternal write
//! in parallel) and zstd frames.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use aa_abi::BackupType;

/// How much decompressed data one chunk holds.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the threads.
const AHEAD: usize = 4;

/// The decompressed tar stream of one backup file.
pub struct Stream {
    chunks: Receiver<io::Result<Vec<u8>>>,
    spent: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    /// Bytes of the tar stream consumed before `current`.
    offset: u64,
    done: bool,
    thread: Option<JoinHandle<()>>,
}

fn decoder(file: File, backup_type: BackupType) -> io::Result<Box<dyn Read + Send>> {
    let buffered = BufReader::with_capacity(CHUNK, file);
    Ok(match backup_type {
        BackupType::Tar => Box::new(buffered),
        BackupType::TarGz => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        BackupType::TarBz2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buffered)),
        BackupType::TarXz => Box::new(Xz::new(buffered)?),
        BackupType::TarZst => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("backup type {other:?} cannot be restored by TarInternal"),
            ))
        }
    })
}

/// Reads `reader` to its end into chunks for the consumer, then an error if it failed.
fn pump(
    mut reader: Box<dyn Read + Send>,
    tx: &SyncSender<io::Result<Vec<u8>>>,
    recycled: &Receiver<Vec<u8>>,
) {
    loop {
        let mut buf = recycled.try_recv().unwrap_or_default();
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        let result = loop {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        buf.truncate(filled);
        let end = filled == 0 || result.is_err();
        if filled > 0 && tx.send(Ok(buf)).is_err() {
            return;
        }
        if let Err(e) = result {
            let _ = tx.send(Err(e));
        }
        if end {
            return;
        }
    }
}

impl Stream {
    /// Starts decompressing `file` (opened by the caller, so that it can name it in errors).
    pub fn spawn(file: File, backup_type: BackupType) -> io::Result<Stream> {
        let (tx, chunks) = sync_channel::<io::Result<Vec<u8>>>(AHEAD);
        let (spent, recycled) = sync_channel::<Vec<u8>>(AHEAD + 2);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let thread = if backup_type == BackupType::TarBz2 && cores > 1 {
            std::thread::Builder::new()
                .name("aa-restore-decompress".into())
                .spawn(move || {
                    super::bz2::produce(file, &tx, cores, super::bz2::LIMITS, |rest| {
                        let decoder = bzip2::read::MultiBzDecoder::new(rest);
                        pump(Box::new(decoder), &tx, &recycled);
                    })
                })?
        } else {
            let reader = decoder(file, backup_type)?;
            std::thread::Builder::new()
                .name("aa-restore-decompress".into())
                .spawn(move || pump(reader, &tx, &recycled))?
        };
        Ok(Stream {
            chunks,
            spent,
            current: Vec::new(),
            pos: 0,
            offset: 0,
            done: false,
            thread: Some(thread),
        })
    }

    /// A stream of `bytes` already in memory, without a thread: for the fuzz targets, which
    /// feed raw tar bytes to the reader.
    pub fn from_bytes(bytes: Vec<u8>) -> Stream {
        // Both senders are dropped at once: the stream ends after `bytes`.
        let (_, chunks) = sync_channel(0);
        let (spent, _) = sync_channel(0);
        Stream {
            chunks,
            spent,
            current: bytes,
            pos: 0,
            offset: 0,
            done: false,
            thread: None,
        }
    }

    /// The offset in the tar stream of the next byte.
    pub fn offset(&self) -> u64 {
        self.offset + self.pos as u64
    }

    /// Makes sure unread bytes are in `current`; false at the end of the stream.
    fn fill(&mut self) -> io::Result<bool> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(false);
            }
            match self.chunks.recv() {
                Ok(Ok(next)) => {
                    self.offset += self.current.len() as u64;
                    let old = std::mem::replace(&mut self.current, next);
                    self.pos = 0;
                    let _ = self.spent.try_send(old);
                }
                Ok(Err(e)) => {
                    self.done = true;
                    // Whatever went wrong reading the file is the archive's problem, and the
                    // end of this restore: no member after it can be trusted.
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("cannot read the archive: {e}"),
                    ));
                }
                Err(_) => {
                    self.done = true;
                    if let Some(thread) = self.thread.take() {
                        if thread.join().is_err() {
                            return Err(io::Error::other("the decompression thread failed"));
                        }
                    }
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Up to `max` unread bytes (at least one unless the stream has ended); they are consumed.
    pub fn take(&mut self, max: usize) -> io::Result<&[u8]> {
        if !self.fill()? {
            return Ok(&[]);
        }
        let n = max.min(self.current.len() - self.pos);
        let start = self.pos;
        self.pos += n;
        Ok(&self.current[start..start + n])
    }

    /// Fills `out` completely; the number of bytes read is short only at the end.
    pub fn read_full(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < out.len() {
            let chunk = self.take(out.len() - filled)?;
            if chunk.is_empty() {
                break;
            }
            out[filled..filled + chunk.len()].copy_from_slice(chunk);
            filled += chunk.len();
        }
        Ok(filled)
    }

    /// Reads and drops everything left, so that a damaged end of a compressed stream is
    /// noticed.
    pub fn drain(&mut self) -> io::Result<()> {
        while !self.take(usize::MAX)?.is_empty() {}
        Ok(())
    }
}

/// xz: one multithreaded decoder per xz stream, for as many streams as the file holds (the
/// multithreaded decoder decodes a single stream, unlike `xz -d`).
struct Xz {
    decoder: Option<xz2::bufread::XzDecoder<BufReader<File>>>,
}

impl Xz {
    fn new(input: BufReader<File>) -> io::Result<Xz> {
        Ok(Xz {
            decoder: Some(Self::decoder(input)?),
        })
    }

    fn decoder(input: BufReader<File>) -> io::Result<xz2::bufread::XzDecoder<BufReader<File>>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        let stream = xz2::stream::MtStreamBuilder::new()
            .threads(threads)
            .memlimit_stop(u64::MAX)
            .decoder()
            .map_err(io::Error::other)?;
        Ok(xz2::bufread::XzDecoder::new_stream(input, stream))
    }
}

impl Read for Xz {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // End of a stream: skip its padding (NULs, as xz allows between streams) and go
            // on with the next one, if any.
            let mut input = self.decoder.take().expect("present").into_inner();
            loop {
                let data = input.fill_buf()?;
                if data.is_empty() {
                    return Ok(0);
                }
                let zeros = data.iter().take_while(|&&b| b == 0).count();
                if zeros < data.len() {
                    input.consume(zeros);
                    break;
                }
                let len = data.len();
                input.consume(len);
            }
            self.decoder = Some(Self::decoder(input)?);
        }
    }
}

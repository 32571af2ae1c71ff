//! The threads between the tar stream and the backup file.
//!
//! The calling thread encodes the tar stream into fixed-size chunks ([`Stream`]); file content
//! is read straight into a chunk, so it is copied once on its way to the codec. Full chunks go
//! through bounded channels to the codec stage:
//!
//! ```text
//!                          +-> worker 1 -+
//! calling thread -> jobs --+-> ...       +-> writer (puts results in order) -> file
//!   (tar stream)           +-> worker n -+
//! ```
//!
//! for the codecs that compress chunks independently (gzip, bzip2; see [`crate::compress`]),
//! or one encoder thread for the codecs that bring their own threads (xz, zstd) and for plain
//! tar (where that thread only writes, so reading and writing overlap).
//!
//! Memory is bounded: a chunk buffer is handed back to the calling thread only after its
//! output was written, and the calling thread never holds more than a fixed number of them,
//! so at most `2 x threads + 2` chunks (input and output) exist, whatever the size of the tree.
//!
//! Failure: the first error of any stage is kept; the stage stops and drops its channel ends,
//! so every other stage and the calling thread see closed channels and stop too. The calling
//! thread then reports the kept error (e.g. "No space left on device"), not the closed channel.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::Crc;

use crate::compress::{
    bzip2_chunk, gzip_trailer, Codec, GzipChunks, PlainEncoder, StreamEncoder, XzEncoder,
    ZstdEncoder, BZIP2_CHUNK, GZIP_DICTIONARY, GZIP_HEADER, GZIP_LAST_BLOCK,
};
use crate::output::{Output, TarOutput};

/// Chunk size of the codecs without a natural one: large enough that per-chunk costs (a
/// channel hand-off, a sync flush) vanish, small enough that all threads are kept busy.
pub const DEFAULT_CHUNK: usize = 1 << 20;

/// How the pipeline runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Compression threads: the number of cores available to the process by default.
    pub threads: usize,
    /// Chunk size; `None` for the codec's natural size.
    pub chunk: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            chunk: None,
        }
    }
}

/// A chunk of the tar stream on its way to the codec.
struct Job {
    seq: u64,
    data: Vec<u8>,
    /// The end of the previous chunk, for codecs that prime a chunk with it (gzip).
    dictionary: Vec<u8>,
}

/// The first error of any stage.
#[derive(Clone, Default)]
struct FirstError(Arc<Mutex<Option<io::Error>>>);

impl FirstError {
    fn set(&self, error: io::Error) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(error);
    }

    fn take(&self) -> Option<io::Error> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Runs a stage, keeping its error.
    fn run(&self, stage: impl FnOnce() -> io::Result<()>) {
        if let Err(error) = stage() {
            self.set(error);
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("the output stage stopped")
}

/// The calling thread's end: the tar stream, cut into chunks.
pub struct Stream {
    buf: Vec<u8>,
    pos: usize,
    chunk: usize,
    seq: u64,
    jobs: SyncSender<Job>,
    /// Buffers whose content has been written, for reuse.
    free: Receiver<Vec<u8>>,
    allocated: usize,
    max_buffers: usize,
    /// How much of each chunk the next one needs as its dictionary.
    dictionary_len: usize,
    dictionary: Vec<u8>,
}

impl Stream {
    /// Sends the current chunk on.
    fn ship(&mut self) -> io::Result<()> {
        if self.pos == 0 {
            return Ok(());
        }
        let mut data = std::mem::take(&mut self.buf);
        data.truncate(self.pos);
        self.pos = 0;
        let dictionary = if self.dictionary_len > 0 {
            let tail = data[data.len().saturating_sub(self.dictionary_len)..].to_vec();
            std::mem::replace(&mut self.dictionary, tail)
        } else {
            Vec::new()
        };
        let job = Job {
            seq: self.seq,
            data,
            dictionary,
        };
        self.seq += 1;
        self.jobs.send(job).map_err(|_| stopped())
    }

    /// Makes room at the end of the stream: ships a full chunk and takes an empty one.
    fn room(&mut self) -> io::Result<()> {
        if self.pos < self.buf.len() {
            return Ok(());
        }
        self.ship()?;
        let mut buf = match self.free.try_recv() {
            Ok(buf) => buf,
            Err(_) if self.allocated < self.max_buffers => {
                self.allocated += 1;
                Vec::new()
            }
            // Wait for the codec: this is what bounds the memory.
            Err(_) => self.free.recv().map_err(|_| stopped())?,
        };
        buf.resize(self.chunk, 0);
        self.buf = buf;
        Ok(())
    }
}

impl TarOutput for Stream {
    fn put(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.room()?;
            let n = bytes.len().min(self.buf.len() - self.pos);
            self.buf[self.pos..self.pos + n].copy_from_slice(&bytes[..n]);
            self.pos += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn window(&mut self, max: usize) -> io::Result<&mut [u8]> {
        self.room()?;
        let end = self.buf.len().min(self.pos.saturating_add(max.max(1)));
        Ok(&mut self.buf[self.pos..end])
    }

    fn commit(&mut self, n: usize) -> io::Result<()> {
        debug_assert!(self.pos + n <= self.buf.len());
        self.pos += n;
        Ok(())
    }
}

/// The stage threads.
pub struct Pipeline {
    threads: Vec<JoinHandle<()>>,
    error: FirstError,
}

/// Starts the stages that compress the tar stream with `codec` and write it to `file`.
pub fn start(codec: Codec, file: Output, settings: Settings) -> io::Result<(Stream, Pipeline)> {
    let threads = settings.threads.max(1);
    let error = FirstError::default();
    let (free_tx, free_rx) = mpsc::channel();
    let parallel = matches!(codec, Codec::Gzip(_) | Codec::Bzip2(_));
    let natural_chunk = match codec {
        Codec::Bzip2(_) => BZIP2_CHUNK,
        _ => DEFAULT_CHUNK,
    };
    let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(if parallel { threads } else { 2 });
    let stream = Stream {
        buf: Vec::new(),
        pos: 0,
        chunk: settings.chunk.unwrap_or(natural_chunk).max(1),
        seq: 0,
        jobs: jobs_tx,
        free: free_rx,
        allocated: 0,
        max_buffers: if parallel { 2 * threads + 2 } else { 4 },
        dictionary_len: if matches!(codec, Codec::Gzip(_)) {
            GZIP_DICTIONARY
        } else {
            0
        },
        dictionary: Vec::new(),
    };

    let mut handles = Vec::new();
    let spawn = |name: &str, work: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(work)
    };
    // Either a stream encoder that owns the file, or the file for the chunk writer.
    let encoder: Result<Box<dyn StreamEncoder>, Output> = match codec {
        Codec::Plain => Ok(Box::new(PlainEncoder(file))),
        Codec::Xz(level) => Ok(Box::new(XzEncoder::new(level, threads, file)?)),
        Codec::Zstd(level) => Ok(Box::new(ZstdEncoder::new(level, threads, file)?)),
        Codec::Gzip(_) | Codec::Bzip2(_) => Err(file),
    };

    match encoder {
        Ok(mut encoder) => {
            let error = error.clone();
            handles.push(spawn(
                "aa-encode",
                Box::new(move || {
                    error.run(|| {
                        for job in jobs_rx {
                            encoder.write(&job.data)?;
                            // The calling thread may be gone already; the buffer is then freed.
                            let _ = free_tx.send(job.data);
                        }
                        encoder.finish()
                    })
                }),
            )?);
        }
        Err(file) => {
            let (done_tx, done_rx) = mpsc::sync_channel::<Done>(threads);
            let jobs_rx = Arc::new(Mutex::new(jobs_rx));
            for i in 0..threads {
                let (jobs_rx, done_tx, error) = (jobs_rx.clone(), done_tx.clone(), error.clone());
                handles.push(spawn(
                    &format!("aa-compress-{i}"),
                    Box::new(move || error.run(|| compress_jobs(codec, &jobs_rx, &done_tx))),
                )?);
            }
            drop(done_tx);
            let error = error.clone();
            let gzip = matches!(codec, Codec::Gzip(_));
            handles.push(spawn(
                "aa-write",
                Box::new(move || error.run(|| write_in_order(gzip, file, done_rx, free_tx))),
            )?);
        }
    }
    Ok((
        stream,
        Pipeline {
            threads: handles,
            error,
        },
    ))
}

/// A compressed chunk.
struct Done {
    seq: u64,
    input: Vec<u8>,
    output: Vec<u8>,
    crc: Option<Crc>,
}

/// A worker: compresses jobs until the calling thread closes the channel.
fn compress_jobs(
    codec: Codec,
    jobs: &Mutex<Receiver<Job>>,
    done: &SyncSender<Done>,
) -> io::Result<()> {
    let mut gzip = match codec {
        Codec::Gzip(level) => Some(GzipChunks::new(level)),
        _ => None,
    };
    loop {
        // The lock is held only while waiting for a job, never while compressing one.
        let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = job else {
            return Ok(());
        };
        let mut output = Vec::new();
        let crc = match (&mut gzip, codec) {
            (Some(gzip), _) => Some(gzip.compress(&job.data, &job.dictionary, &mut output)?),
            (None, Codec::Bzip2(level)) => {
                bzip2_chunk(level, &job.data, &mut output)?;
                None
            }
            _ => unreachable!("only chunk codecs run on workers"),
        };
        let result = Done {
            seq: job.seq,
            input: job.data,
            output,
            crc,
        };
        if done.send(result).is_err() {
            // The writer stopped; it kept the reason.
            return Ok(());
        }
    }
}

/// The writer of the chunk codecs: writes results in stream order, with the gzip framing.
fn write_in_order(
    gzip: bool,
    file: Output,
    done: Receiver<Done>,
    free: mpsc::Sender<Vec<u8>>,
) -> io::Result<()> {
    let mut file = file;
    let mut crc = Crc::new();
    if gzip {
        file.write_all(&GZIP_HEADER)?;
    }
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    for result in done {
        pending.insert(result.seq, result);
        while let Some(result) = pending.remove(&next) {
            file.write_all(&result.output)?;
            if let Some(chunk_crc) = &result.crc {
                crc.combine(chunk_crc);
            }
            let _ = free.send(result.input);
            next += 1;
        }
    }
    if !pending.is_empty() {
        // A worker failed and kept its error; the stream has a gap and must not be finished.
        return Err(stopped());
    }
    if gzip {
        file.write_all(&GZIP_LAST_BLOCK)?;
        file.write_all(&gzip_trailer(&crc))?;
    }
    file.finish()
}

impl Pipeline {
    /// Sends the rest of the stream, waits for the stages and returns the first error.
    pub fn finish(self, mut stream: Stream) -> io::Result<()> {
        let shipped = stream.ship();
        drop(stream);
        let failure = self.join();
        match failure {
            Some(error) => Err(error),
            None => shipped,
        }
    }

    /// Stops after a failure of the calling thread's side (`error`) and returns the error to
    /// report: a stage's own error explains better why the stream could not be written.
    pub fn abort(self, stream: Stream, error: io::Error) -> io::Error {
        drop(stream);
        self.join().unwrap_or(error)
    }

    fn join(self) -> Option<io::Error> {
        let mut panicked = false;
        for handle in self.threads {
            panicked |= handle.join().is_err();
        }
        self.error.take().or_else(|| {
            panicked.then(|| io::Error::other("a compression thread failed unexpectedly"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Read;
    use std::process::Command;

    fn data(len: usize) -> Vec<u8> {
        let mut x = 12345u32;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                // Alternate text-like and random stretches.
                if (i / 50_000) % 2 == 0 {
                    b"abcdefgh  \n"[(x >> 16) as usize % 11]
                } else {
                    (x >> 16) as u8
                }
            })
            .collect()
    }

    fn run(codec: Codec, settings: Settings, data: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let (mut stream, pipeline) =
            start(codec, Output::new(File::create(&path).unwrap()), settings).unwrap();
        // Odd-sized writes and windows, as the archiver makes them.
        let mut rest = data;
        let mut turn = 0;
        while !rest.is_empty() {
            turn += 1;
            if turn % 2 == 0 {
                let n = rest.len().min(7_777);
                stream.put(&rest[..n]).unwrap();
                rest = &rest[n..];
            } else {
                let window = stream.window(rest.len().min(50_000)).unwrap();
                let n = window.len();
                window.copy_from_slice(&rest[..n]);
                stream.commit(n).unwrap();
                rest = &rest[n..];
            }
        }
        pipeline.finish(stream).unwrap();
        std::fs::read(&path).unwrap()
    }

    /// Decompresses with the command-line tool, which must accept the whole file.
    fn tool_decompress(tool: &str, compressed: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in");
        std::fs::write(&path, compressed).unwrap();
        let out = Command::new(tool).arg("-dc").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn every_codec_round_trips_through_many_chunks_and_threads() {
        let input = data(1_500_000);
        for codec in [
            Codec::Plain,
            Codec::Gzip(6),
            Codec::Bzip2(1),
            Codec::Xz(0),
            Codec::Zstd(3),
        ] {
            for threads in [1, 3] {
                let settings = Settings {
                    threads,
                    chunk: Some(100_003),
                };
                let out = run(codec, settings, &input);
                let back = match codec {
                    Codec::Plain => out.clone(),
                    Codec::Gzip(_) => {
                        // One member: even a single-member decoder reads it all.
                        let mut back = Vec::new();
                        flate2::read::GzDecoder::new(&out[..])
                            .read_to_end(&mut back)
                            .unwrap();
                        assert_eq!(tool_decompress("gzip", &out), back);
                        back
                    }
                    Codec::Bzip2(_) => tool_decompress("bzip2", &out),
                    Codec::Xz(_) => tool_decompress("xz", &out),
                    Codec::Zstd(_) => tool_decompress("zstd", &out),
                };
                assert!(back == input, "{codec:?} with {threads} threads");
                if codec != Codec::Plain {
                    assert!(
                        out.len() < input.len() * 9 / 10,
                        "{codec:?} did not compress"
                    );
                }
            }
        }
    }

    #[test]
    fn gzip_chunks_keep_the_serial_ratio() {
        let input = data(2_000_000);
        let chunked = run(
            Codec::Gzip(6),
            Settings {
                threads: 2,
                chunk: Some(131_072),
            },
            &input,
        );
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        serial.write_all(&input).unwrap();
        let serial = serial.finish().unwrap();
        assert!(
            chunked.len() as f64 <= serial.len() as f64 * 1.01,
            "{} vs {}",
            chunked.len(),
            serial.len()
        );
    }

    #[test]
    fn a_write_failure_stops_the_stream_with_its_error() {
        for codec in [Codec::Plain, Codec::Gzip(1), Codec::Zstd(1)] {
            let full = File::options().write(true).open("/dev/full").unwrap();
            let (mut stream, pipeline) = start(
                codec,
                Output::new(full),
                Settings {
                    threads: 2,
                    chunk: Some(4096),
                },
            )
            .unwrap();
            let input = data(10_000_000);
            let mut failed = None;
            for piece in input.chunks(10_000) {
                if let Err(e) = stream.put(piece) {
                    failed = Some(e);
                    break;
                }
            }
            let error = match failed {
                Some(e) => pipeline.abort(stream, e),
                None => pipeline.finish(stream).unwrap_err(),
            };
            assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{codec:?}");
        }
    }
}

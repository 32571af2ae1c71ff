//! The codecs: how each backup type compresses the tar stream, using every core while the
//! output stays one standard file that the usual tools read.
//!
//! * gzip: pigz's layout. The stream is cut into chunks that are deflated independently, in
//!   parallel, each primed with the last 32 KiB of the chunk before it as its dictionary (so
//!   the ratio is that of one serial deflate) and ended with a sync flush, which leaves it
//!   byte-aligned. The chunks are concatenated into ONE gzip member behind one header; an empty
//!   final block, the CRC-32 combined from the chunks' CRCs and the length close it. `gzip -d`,
//!   GNU tar, zlib and flate2's single-member decoder all read it. Stretches of 64 KiB whose
//!   byte entropy is above 7.97 bits (already compressed or encrypted data) are written as
//!   stored blocks without running deflate over them: deflate could not shrink them by more
//!   than a fraction of a percent, and they are a fifth of the deflate time of a home
//!   directory. Stored blocks are what zlib itself falls back to for such data.
//! * bzip2: pbzip2's layout. Every 900,000-byte chunk becomes a complete bzip2 stream; the
//!   streams are concatenated, which `bzip2 -d` and GNU tar read as one file.
//! * xz: liblzma's own multithreaded encoder (independent blocks of 3 x the dictionary size,
//!   as `xz -T`), so the file is what `xz -T<n>` writes.
//! * zstd: libzstd's own multithreaded mode (as `zstd -T<n>`), with the checksum the zstd
//!   tool writes by default. At the fast levels (up to 9) the job size is set to 3 MiB: the
//!   default (about 4 x the window, with a pool of such buffers) takes over 100 MB of memory
//!   for no speed gain; the smaller jobs cost about 0.2% of output size.
//!
//! The parallel chunk codecs ([`GzipChunks`], [`bzip2_chunk`]) are plain functions of one
//! chunk; [`crate::pipeline`] runs them on worker threads and puts the results in order.
//!
//! The user's compression strength (0..=9, see `aa_abi::MAX_COMPRESSION_STRENGTH`) is mapped
//! onto each codec's own scale the same way the original program mapped it for the external
//! tools, so a backup made by either provider with the same strength compresses alike. The
//! mapping is linear, rounded to the nearest level; without a strength, each codec uses the
//! default of its command-line tool.
//!
//! | strength | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | none |
//! |----------|---|---|---|---|---|---|---|---|---|---|------|
//! | gzip     | 1 | 2 | 3 | 4 | 5 | 5 | 6 | 7 | 8 | 9 | 6    |
//! | bzip2    | 1 | 2 | 3 | 4 | 5 | 5 | 6 | 7 | 8 | 9 | 9    |
//! | xz       | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 6    |
//! | zstd     | 1 | 3 | 5 | 7 | 9 | 11| 13| 15| 17| 19| 3    |
//!
//! gzip and bzip2 have no level 0 worth using (gzip's stores data uncompressed), so strength 0
//! is their fastest real level. zstd stops at 19 because levels above it need the `--ultra`
//! memory budget on the decompressing side as well.

use std::io::{self, Write};

use aa_abi::{BackupType, MAX_COMPRESSION_STRENGTH};
use flate2::{Compress, Compression, Crc, FlushCompress};

use crate::output::Output;

/// A codec's level scale: the levels strength 0 and strength 9 map to, and its default.
struct Scale {
    min: u32,
    max: u32,
    default: u32,
}

fn scale(backup_type: BackupType) -> Option<Scale> {
    let (min, max, default) = match backup_type {
        BackupType::TarGz => (1, 9, 6),
        BackupType::TarBz2 => (1, 9, 9),
        BackupType::TarXz => (0, 9, 6),
        BackupType::TarZst => (1, 19, 3),
        _ => return None,
    };
    Some(Scale { min, max, default })
}

/// The codec level used for `strength` (see the table in the module documentation), or `None`
/// for a backup type that does not compress.
pub fn codec_level(backup_type: BackupType, strength: Option<u32>) -> Option<u32> {
    let scale = scale(backup_type)?;
    Some(match strength {
        None => scale.default,
        Some(s) => {
            let s = s.min(MAX_COMPRESSION_STRENGTH);
            let span = scale.max - scale.min;
            // Round half up in integers: (s * span / 9) + 0.5.
            scale.min + (2 * s * span + MAX_COMPRESSION_STRENGTH) / (2 * MAX_COMPRESSION_STRENGTH)
        }
    })
}

/// The codec of a backup type, with its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Plain,
    Gzip(u32),
    Bzip2(u32),
    Xz(u32),
    Zstd(u32),
}

impl Codec {
    /// The codec of `backup_type` at the level `strength` maps to.
    pub fn new(backup_type: BackupType, strength: Option<u32>) -> io::Result<Codec> {
        let level = codec_level(backup_type, strength);
        Ok(match (backup_type, level) {
            (BackupType::Tar, _) => Codec::Plain,
            (BackupType::TarGz, Some(level)) => Codec::Gzip(level),
            (BackupType::TarBz2, Some(level)) => Codec::Bzip2(level),
            (BackupType::TarXz, Some(level)) => Codec::Xz(level),
            (BackupType::TarZst, Some(level)) => Codec::Zstd(level),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("Unsupported backup type: {backup_type}"),
                ))
            }
        })
    }
}

// ---- gzip -------------------------------------------------------------------------------

/// Deflate's window: the most a chunk can refer back into the chunk before it.
pub const GZIP_DICTIONARY: usize = 32 * 1024;

/// The gzip member header: deflate, no name, no time (archives stay reproducible), Unix.
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];

/// An empty final block with fixed codes: it ends the deflate stream after the last chunk,
/// which, like every chunk, ended byte-aligned with a sync flush.
pub const GZIP_LAST_BLOCK: [u8; 2] = [0x03, 0x00];

/// The gzip member trailer: CRC-32 and length (mod 2^32) of the uncompressed data.
pub fn gzip_trailer(crc: &Crc) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&crc.sum().to_le_bytes());
    out[4..].copy_from_slice(&crc.amount().to_le_bytes());
    out
}

/// Deflates chunks of one gzip member; one per worker thread, reused for every chunk.
pub struct GzipChunks {
    deflate: Compress,
    level: Compression,
}

impl GzipChunks {
    pub fn new(level: u32) -> GzipChunks {
        GzipChunks {
            // Raw deflate: the gzip framing is written once, around all chunks.
            deflate: Compress::new(Compression::new(level), false),
            level: Compression::new(level),
        }
    }

    /// Appends the deflated `data` to `out`, ending byte-aligned, and returns its CRC.
    /// `dictionary` is the end of the previous chunk (empty for the first).
    pub fn compress(
        &mut self,
        data: &[u8],
        dictionary: &[u8],
        out: &mut Vec<u8>,
    ) -> io::Result<Crc> {
        let mut crc = Crc::new();
        crc.update(data);
        // Incompressible data grows by 5 bytes per stored block of up to 64 KiB.
        out.reserve(data.len() + data.len() / 1024 + 64);
        let stored: Vec<bool> = data.chunks(STRETCH).map(looks_incompressible).collect();
        let mut start = 0;
        while start < data.len() {
            // A run of stretches of the same kind.
            let kind = stored[start / STRETCH];
            let mut end = (start + STRETCH).min(data.len());
            while end < data.len() && stored[end / STRETCH] == kind {
                end = (end + STRETCH).min(data.len());
            }
            if kind {
                put_stored(&data[start..end], out);
            } else if start == 0 {
                self.deflate(&data[..end], dictionary, out)?;
            } else {
                // The decoder's window holds whatever came before, stored or not.
                let window = if start >= GZIP_DICTIONARY {
                    data[start - GZIP_DICTIONARY..start].to_vec()
                } else {
                    let mut w = dictionary.to_vec();
                    w.extend_from_slice(&data[..start]);
                    w.split_off(w.len().saturating_sub(GZIP_DICTIONARY))
                };
                self.deflate(&data[start..end], &window, out)?;
            }
            start = end;
        }
        Ok(crc)
    }

    /// Deflates `data` primed with `dictionary`, ending with a sync flush. A fresh deflate
    /// state each time: after `reset`, zlib-rs 0.6 output depended on what the state had
    /// compressed before, which made the backup depend on which worker took which chunk.
    fn deflate(&mut self, data: &[u8], dictionary: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.deflate = Compress::new(self.level, false);
        if !dictionary.is_empty() {
            self.deflate
                .set_dictionary(dictionary)
                .map_err(io::Error::other)?;
        }
        let start = self.deflate.total_in();
        loop {
            let done = (self.deflate.total_in() - start) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(64 * 1024);
            }
            self.deflate
                .compress_vec(&data[done..], out, FlushCompress::Sync)
                .map_err(io::Error::other)?;
            // A sync flush is complete once all input is taken and output room is left.
            let done = (self.deflate.total_in() - start) as usize;
            if done == data.len() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

/// The unit in which gzip tells incompressible data from the rest.
const STRETCH: usize = 64 * 1024;

/// Whether `data` looks like compressed or encrypted data: an order-0 entropy above 7.97
/// bits per byte (random bytes measure 7.997 over 64 KiB; text 4 to 6, machine code about 6)
/// and no repeated 4-byte strings, which deflate could use even when every byte value is
/// equally frequent (counters, a random block repeated within the stretch).
fn looks_incompressible(data: &[u8]) -> bool {
    high_entropy(data) && !has_repeats(data)
}

/// Whether more than 1 in 64 of the 4-byte strings at multiples of 4 occurred before.
fn has_repeats(data: &[u8]) -> bool {
    const SLOTS: usize = 4096;
    let mut last = [usize::MAX; SLOTS];
    let mut repeats = 0;
    for (i, quad) in data.chunks_exact(4).enumerate() {
        let value = u32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]]);
        let slot = (value.wrapping_mul(0x9e37_79b1) >> 20) as usize % SLOTS;
        let seen = last[slot];
        if seen != usize::MAX && data[seen..seen + 4] == *quad {
            repeats += 1;
        }
        last[slot] = i * 4;
    }
    repeats > data.len() / 4 / 64
}

/// Whether the order-0 entropy of `data` is above 7.97 bits per byte.
fn high_entropy(data: &[u8]) -> bool {
    if data.len() < 4096 {
        return false;
    }
    // Four tables, so consecutive increments do not wait for each other.
    let mut counts = [[0u32; 256]; 4];
    let mut quads = data.chunks_exact(4);
    for q in &mut quads {
        counts[0][q[0] as usize] += 1;
        counts[1][q[1] as usize] += 1;
        counts[2][q[2] as usize] += 1;
        counts[3][q[3] as usize] += 1;
    }
    for &b in quads.remainder() {
        counts[0][b as usize] += 1;
    }
    let n = data.len() as f64;
    let bits: f64 = (0..256)
        .map(|i| counts[0][i] + counts[1][i] + counts[2][i] + counts[3][i])
        .filter(|&c| c > 0)
        .map(|c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    bits > 7.97
}

/// Appends `data` as stored deflate blocks; the stream is byte-aligned before and after.
fn put_stored(data: &[u8], out: &mut Vec<u8>) {
    for block in data.chunks(0xffff) {
        let len = block.len() as u16;
        // BFINAL = 0, BTYPE = 00, then padding to the byte boundary: one zero byte.
        out.push(0);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
}

// ---- bzip2 ------------------------------------------------------------------------------

/// Input per bzip2 stream: one block of `bzip2 -9`, as pbzip2 cuts its input.
pub const BZIP2_CHUNK: usize = 900_000;

/// Appends `data` compressed as one complete bzip2 stream to `out`.
pub fn bzip2_chunk(level: u32, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    // 30 is libbzip2's default work factor.
    let mut bz = bzip2::Compress::new(bzip2::Compression::new(level), 30);
    out.reserve(data.len() / 2 + 1024);
    let start = bz.total_in();
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(data.len() / 4 + 64 * 1024);
        }
        let done = (bz.total_in() - start) as usize;
        let status = bz
            .compress_vec(&data[done..], out, bzip2::Action::Finish)
            .map_err(io::Error::other)?;
        if status == bzip2::Status::StreamEnd {
            return Ok(());
        }
    }
}

// ---- streaming codecs -------------------------------------------------------------------

/// A codec that takes the whole stream in order on one thread (it may run its own worker
/// threads) and writes the backup file.
pub trait StreamEncoder: Send {
    fn write(&mut self, data: &[u8]) -> io::Result<()>;
    /// Writes what remains and the codec's trailer.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// No compression: the tar stream goes straight to the file.
pub struct PlainEncoder(pub Output);

impl StreamEncoder for PlainEncoder {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        self.0.finish()
    }
}

/// liblzma's multithreaded xz encoder.
pub struct XzEncoder {
    stream: xz2::stream::Stream,
    out: Vec<u8>,
    file: Output,
}

impl XzEncoder {
    pub fn new(level: u32, threads: usize, file: Output) -> io::Result<XzEncoder> {
        let stream = xz2::stream::MtStreamBuilder::new()
            .preset(level)
            // The xz tool's default integrity check.
            .check(xz2::stream::Check::Crc64)
            .threads(u32::try_from(threads).unwrap_or(1).max(1))
            .encoder()?;
        Ok(XzEncoder {
            stream,
            out: Vec::with_capacity(1 << 20),
            file,
        })
    }

    /// Feeds `input` (or, when `finishing`, ends the stream) and writes what comes out.
    fn run(&mut self, mut input: &[u8], finishing: bool) -> io::Result<()> {
        let action = if finishing {
            xz2::stream::Action::Finish
        } else {
            xz2::stream::Action::Run
        };
        loop {
            self.out.clear();
            let before = self.stream.total_in();
            let status = self.stream.process_vec(input, &mut self.out, action)?;
            input = &input[(self.stream.total_in() - before) as usize..];
            self.file.write_all(&self.out)?;
            if status == xz2::stream::Status::StreamEnd || (input.is_empty() && !finishing) {
                return Ok(());
            }
        }
    }
}

impl StreamEncoder for XzEncoder {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.run(data, false)
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.run(&[], true)?;
        self.file.finish()
    }
}

/// The highest zstd level that gets [`ZSTD_JOB`]-sized jobs.
const ZSTD_SMALL_JOBS_UP_TO: u32 = 9;
/// Input per zstd job at the fast levels (see the module documentation).
const ZSTD_JOB: u32 = 3 << 20;

/// libzstd's multithreaded encoder.
pub struct ZstdEncoder(zstd::stream::write::Encoder<'static, Output>);

impl ZstdEncoder {
    pub fn new(level: u32, threads: usize, file: Output) -> io::Result<ZstdEncoder> {
        // Levels are at most 19, so the cast cannot wrap.
        let mut encoder = zstd::stream::write::Encoder::new(file, level as i32)?;
        // The zstd tool adds a checksum by default; `zstd -t` relies on it to verify.
        encoder.include_checksum(true)?;
        if threads > 1 {
            encoder.multithread(u32::try_from(threads).unwrap_or(1))?;
            if level <= ZSTD_SMALL_JOBS_UP_TO {
                encoder.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB))?;
            }
        }
        Ok(ZstdEncoder(encoder))
    }
}

impl StreamEncoder for ZstdEncoder {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        self.0.finish()?.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Read;

    #[test]
    fn levels_follow_the_documented_table() {
        let row = |t| {
            (0..=9)
                .map(|s| codec_level(t, Some(s)).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(row(BackupType::TarGz), [1, 2, 3, 4, 5, 5, 6, 7, 8, 9]);
        assert_eq!(row(BackupType::TarBz2), [1, 2, 3, 4, 5, 5, 6, 7, 8, 9]);
        assert_eq!(row(BackupType::TarXz), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(row(BackupType::TarZst), [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
        assert_eq!(codec_level(BackupType::TarGz, None), Some(6));
        assert_eq!(codec_level(BackupType::TarBz2, None), Some(9));
        assert_eq!(codec_level(BackupType::TarXz, None), Some(6));
        assert_eq!(codec_level(BackupType::TarZst, None), Some(3));
        assert_eq!(codec_level(BackupType::Tar, Some(3)), None);
        assert_eq!(
            Codec::new(BackupType::TarZst, Some(9)).unwrap(),
            Codec::Zstd(19)
        );
    }

    fn sample(len: usize) -> Vec<u8> {
        // Compressible with matches that cross chunk boundaries.
        (0..len as u32)
            .map(|i| ((i / 3) % 251) as u8 ^ ((i >> 13) as u8))
            .collect()
    }

    #[test]
    fn gzip_chunks_form_one_member_with_a_combined_crc() {
        let data = sample(300_000);
        let mut out = GZIP_HEADER.to_vec();
        let mut crc = Crc::new();
        let mut gz = GzipChunks::new(6);
        let mut previous: &[u8] = &[];
        for chunk in data.chunks(70_000) {
            let dictionary = &previous[previous.len().saturating_sub(GZIP_DICTIONARY)..];
            crc.combine(&gz.compress(chunk, dictionary, &mut out).unwrap());
            previous = chunk;
        }
        out.extend_from_slice(&GZIP_LAST_BLOCK);
        out.extend_from_slice(&gzip_trailer(&crc));
        // A single-member decoder sees all of it, and checks the CRC and length.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(out.len() * 4 < data.len());
    }

    #[test]
    fn incompressible_stretches_are_stored_and_still_referenced() {
        // Text, random, the same text again (matches reach back across the stored part
        // only within the window), random repeated at a short distance, and text.
        let text = sample(100_000);
        let mut x = 99u32;
        let mut random = || -> Vec<u8> {
            (0..70_000)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect()
        };
        let short: Vec<u8> = random()[..3000].to_vec();
        let data = [
            text.clone(),
            random(),
            text[..50_000].to_vec(),
            short.repeat(30),
            random(),
            text,
        ]
        .concat();
        assert!(looks_incompressible(&random()[..STRETCH]));
        assert!(!looks_incompressible(&short.repeat(30)[..STRETCH]));
        assert!(!looks_incompressible(&sample(STRETCH)));
        for chunk in [data.len(), 150_000, 40_000] {
            let mut out = GZIP_HEADER.to_vec();
            let mut crc = Crc::new();
            let mut gz = GzipChunks::new(6);
            let mut previous: &[u8] = &[];
            for piece in data.chunks(chunk) {
                let dictionary = &previous[previous.len().saturating_sub(GZIP_DICTIONARY)..];
                crc.combine(&gz.compress(piece, dictionary, &mut out).unwrap());
                previous = piece;
            }
            out.extend_from_slice(&GZIP_LAST_BLOCK);
            out.extend_from_slice(&gzip_trailer(&crc));
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "chunk {chunk}");
            let mut serial = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            serial.write_all(&data).unwrap();
            let serial = serial.finish().unwrap().len();
            assert!(
                out.len() <= serial + serial / 100,
                "{} vs {serial}",
                out.len()
            );
        }
    }

    #[test]
    fn a_chunk_compresses_alike_whatever_the_worker_did_before() {
        let data = sample(200_000);
        let mut fresh = Vec::new();
        GzipChunks::new(6)
            .compress(&data[100_000..], &data[..100_000], &mut fresh)
            .unwrap();
        let mut used = GzipChunks::new(6);
        let mut scratch = Vec::new();
        used.compress(&data[..150_000], &[], &mut scratch).unwrap();
        let mut reused = Vec::new();
        used.compress(&data[100_000..], &data[..100_000], &mut reused)
            .unwrap();
        assert!(fresh == reused);
    }

    #[test]
    fn bzip2_chunks_are_complete_streams() {
        let data = sample(250_000);
        let mut out = Vec::new();
        for chunk in data.chunks(100_000) {
            bzip2_chunk(1, chunk, &mut out).unwrap();
        }
        let mut back = Vec::new();
        bzip2::read::MultiBzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn stream_encoders_round_trip() {
        let data = sample(3_000_000);
        let dir = tempfile::tempdir().unwrap();
        for (name, level) in [("xz", 0), ("zst", 1)] {
            let path = dir.path().join(name);
            let file = Output::new(File::create(&path).unwrap());
            let mut encoder: Box<dyn StreamEncoder> = if name == "xz" {
                Box::new(XzEncoder::new(level, 2, file).unwrap())
            } else {
                Box::new(ZstdEncoder::new(level, 2, file).unwrap())
            };
            for chunk in data.chunks(100_000) {
                encoder.write(chunk).unwrap();
            }
            encoder.finish().unwrap();
            let compressed = std::fs::read(&path).unwrap();
            let back = if name == "xz" {
                let mut back = Vec::new();
                xz2::read::XzDecoder::new_multi_decoder(&compressed[..])
                    .read_to_end(&mut back)
                    .unwrap();
                back
            } else {
                zstd::decode_all(&compressed[..]).unwrap()
            };
            assert_eq!(back, data, "{name}");
            assert!(compressed.len() * 4 < data.len(), "{name}");
        }
    }

    #[test]
    fn unknown_type_is_an_error() {
        assert!(Codec::new(BackupType(77), None).is_err());
    }
}

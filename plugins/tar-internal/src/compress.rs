//! The compression stage between the tar stream and the backup file.
//!
//! Every codec sits behind [`Compressor`] so the archive writer only sees a `Write` with a
//! `finish`; swapping in a multithreaded encoder later changes this module alone.
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

/// The compressing writer for one backup type.
pub enum Compressor<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Bzip2(bzip2::write::BzEncoder<W>),
    Xz(xz2::write::XzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    /// Wraps `inner` in the codec of `backup_type` at the level `strength` maps to.
    pub fn new(backup_type: BackupType, strength: Option<u32>, inner: W) -> io::Result<Self> {
        let level = codec_level(backup_type, strength);
        Ok(match (backup_type, level) {
            (BackupType::Tar, _) => Compressor::Plain(inner),
            (BackupType::TarGz, Some(level)) => Compressor::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::new(level),
            )),
            (BackupType::TarBz2, Some(level)) => Compressor::Bzip2(bzip2::write::BzEncoder::new(
                inner,
                bzip2::Compression::new(level),
            )),
            (BackupType::TarXz, Some(level)) => {
                Compressor::Xz(xz2::write::XzEncoder::new(inner, level))
            }
            (BackupType::TarZst, Some(level)) => {
                // Levels are at most 19, so the cast cannot wrap.
                let mut encoder = zstd::stream::write::Encoder::new(inner, level as i32)?;
                // The zstd tool adds a checksum by default; `zstd -t` relies on it to verify.
                encoder.include_checksum(true)?;
                Compressor::Zstd(encoder)
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("Unsupported backup type: {backup_type}"),
                ))
            }
        })
    }

    /// Writes the codec's trailer and returns the inner writer (not flushed).
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Plain(w) => Ok(w),
            Compressor::Gzip(e) => e.finish(),
            Compressor::Bzip2(e) => e.finish(),
            Compressor::Xz(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Plain(w) => w.write(buf),
            Compressor::Gzip(e) => e.write(buf),
            Compressor::Bzip2(e) => e.write(buf),
            Compressor::Xz(e) => e.write(buf),
            Compressor::Zstd(e) => e.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Compressor::Plain(w) => w.write_all(buf),
            Compressor::Gzip(e) => e.write_all(buf),
            Compressor::Bzip2(e) => e.write_all(buf),
            Compressor::Xz(e) => e.write_all(buf),
            Compressor::Zstd(e) => e.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Plain(w) => w.flush(),
            Compressor::Gzip(e) => e.flush(),
            Compressor::Bzip2(e) => e.flush(),
            Compressor::Xz(e) => e.flush(),
            Compressor::Zstd(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    }

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for t in [
            BackupType::Tar,
            BackupType::TarGz,
            BackupType::TarBz2,
            BackupType::TarXz,
            BackupType::TarZst,
        ] {
            let mut c = Compressor::new(t, Some(1), Vec::new()).unwrap();
            c.write_all(&data).unwrap();
            let out = c.finish().unwrap();
            let compressed_len = out.len();
            let mut back = Vec::new();
            match t {
                BackupType::Tar => back = out,
                BackupType::TarGz => {
                    flate2::read::GzDecoder::new(&out[..])
                        .read_to_end(&mut back)
                        .unwrap();
                }
                BackupType::TarBz2 => {
                    bzip2::read::BzDecoder::new(&out[..])
                        .read_to_end(&mut back)
                        .unwrap();
                }
                BackupType::TarXz => {
                    xz2::read::XzDecoder::new(&out[..])
                        .read_to_end(&mut back)
                        .unwrap();
                }
                _ => back = zstd::decode_all(&out[..]).unwrap(),
            }
            assert_eq!(back, data, "{t}");
            if t != BackupType::Tar {
                assert!(back.len() > 4 * compressed_len, "{t} did not compress");
            }
        }
    }

    #[test]
    fn unknown_type_is_an_error() {
        assert!(Compressor::new(BackupType(77), None, Vec::new()).is_err());
    }
}

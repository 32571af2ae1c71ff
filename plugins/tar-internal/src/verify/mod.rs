//! Verification of one backup file (the `verify_v1` capability): decompress it completely,
//! letting the decoder check every checksum its format has, and walk the tar structure in
//! the stream ([`structure`]), reporting each member.
//!
//! The checks per type, all made by the decoders while they read:
//!
//! | type | what is checked |
//! |---|---|
//! | `tar` | header checksums and fields, member sizes, the end-of-archive blocks only |
//! | `tar.gz` | CRC32 and length (ISIZE) of every gzip member ([`MultiGzDecoder`]) |
//! | `tar.bz2` | the CRC of every block and of every stream ([`MultiBzDecoder`]) |
//! | `tar.xz` | the check of every stream (CRC64 as `xz` writes it), liblzma's index |
//! | `tar.zst` | the content checksum of every frame that has one (ours all have) |
//!
//! A plain `tar` has no checksum over file data: a changed byte in a member's content cannot
//! be found, only one in a header or in the structure (sizes, truncation).
//!
//! A damaged archive is an error naming the file, what is wrong, and where: the offset in
//! the decompressed tar stream, the member at or after which it lies, and for a compressed
//! file roughly how far into the file the decoder had read. An archive that is sound but ends
//! without the end-of-archive blocks (TarInternal's incremental levels before they wrote
//! them, or a plain tar cut at a member boundary) is reported as a problem, not an error.

pub(crate) mod structure;

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use aa_abi::capability::{ItemEvents, Totals};
use aa_abi::{BackupType, ProviderError};
use aa_provider_kit::CountedItems;
use bzip2::read::MultiBzDecoder;
use flate2::read::MultiGzDecoder;

use crate::fatal;
use structure::{lossy, Ending, Fault, Problem};

/// Reads the file, counting the bytes the decoder took, so a fault can say roughly where in
/// the file it lies.
struct Counting<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// Verifies the backup file `path` of type `backup_type`; see the module documentation.
pub fn verify(
    path: &Path,
    backup_type: BackupType,
    events: &dyn ItemEvents,
) -> Result<Totals, ProviderError> {
    let file = File::open(path).map_err(|e| fatal(path, &e))?;
    let read = Rc::new(Cell::new(0));
    let raw = Counting {
        inner: file,
        read: read.clone(),
    };
    let buffered = BufReader::with_capacity(1 << 20, raw);
    let (decoder, format): (Box<dyn Read>, &str) = match backup_type {
        BackupType::Tar => (Box::new(buffered), "tar"),
        BackupType::TarGz => (Box::new(MultiGzDecoder::new(buffered)), "gzip"),
        BackupType::TarBz2 => (Box::new(MultiBzDecoder::new(buffered)), "bzip2"),
        BackupType::TarXz => (
            Box::new(xz2::bufread::XzDecoder::new_multi_decoder(buffered)),
            "xz",
        ),
        BackupType::TarZst => (
            Box::new(
                zstd::stream::read::Decoder::with_buffer(buffered).map_err(|e| fatal(path, &e))?,
            ),
            "zstd",
        ),
        other => {
            return Err(ProviderError::unsupported_type(format!(
                "{}: backup type {other:?} cannot be verified by TarInternal",
                path.display()
            )))
        }
    };
    let mut input = BufReader::with_capacity(256 * 1024, decoder);
    let counted = CountedItems::new(events);
    let walked = structure::walk(&mut input, |member| {
        counted.item(&display_name(member.name), member.size);
    });
    match walked {
        Ok(Ending::Marker) => {}
        Ok(ending) => {
            let message = match ending {
                Ending::LoneZeroBlock => "ends with one zero block instead of two",
                _ => "ends without tar's end-of-archive blocks (cut at a member boundary?)",
            };
            counted.problem(Some(path), message);
        }
        Err(mut fault) => {
            // Damaged compressed data usually breaks the tar structure before the decoder
            // reaches the checksum that proves it: the decoder's verdict says more.
            if format != "tar" && matches!(fault.what, Problem::Structure(_)) {
                if let Err(error) = io::copy(&mut input, &mut io::sink()) {
                    fault.what = Problem::Read(error);
                }
            }
            return Err(damaged(path, format, read.get(), &fault));
        }
    }
    Ok(counted.totals())
}

/// A member name as the backup events name objects: relative to the root (`./a` is `a`, the
/// root itself `.`), without a trailing `/`.
fn display_name(name: &[u8]) -> PathBuf {
    let mut name = name;
    while name.len() > 1 && name.ends_with(b"/") {
        name = &name[..name.len() - 1];
    }
    if let Some(rest) = name.strip_prefix(b"./") {
        if !rest.is_empty() {
            name = rest;
        }
    }
    PathBuf::from(OsStr::from_bytes(name))
}

fn damaged(path: &Path, format: &str, file_offset: u64, fault: &Fault) -> ProviderError {
    let after = match &fault.member {
        Some(member) => format!("in or after member '{}'", lossy(member)),
        None => "before the first member".to_string(),
    };
    let message = match &fault.what {
        Problem::Read(error) if format == "tar" => format!(
            "{}: reading failed at tar offset {} ({after}): {error}",
            path.display(),
            fault.offset
        ),
        Problem::Read(error) => {
            let read = match &fault.member {
                Some(member) => format!("after member '{}'", lossy(member)),
                None => "no member read yet".to_string(),
            };
            format!(
                "{}: damaged {format} data near byte offset {file_offset} of the file \
                 (decompressed to tar offset {}, {read}): {error}",
                path.display(),
                fault.offset
            )
        }
        Problem::Structure(what) => format!(
            "{}: damaged tar archive at tar offset {} ({after}): {what}",
            path.display(),
            fault.offset
        ),
    };
    match &fault.what {
        Problem::Read(error) if error.raw_os_error().is_some() => {
            ProviderError::io(error.raw_os_error().unwrap_or(0), message)
        }
        _ => ProviderError::other(message),
    }
}

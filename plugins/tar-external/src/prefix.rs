//! The roots record ([`aa_provider_kit::roots`]) in front of GNU tar's archive.
//!
//! GNU tar cannot be told to write a global header of our making, so `TarExternal` writes the
//! record itself as the first bytes of the backup file and GNU tar's archive follows it:
//!
//! * a plain tar gets the record's blocks as they are;
//! * a compressed one gets the record compressed as a stream of its own, by the plain
//!   compressor program of the type run on just those bytes. Concatenated streams are valid
//!   gzip, bzip2, xz and zstd files: their decompressors, and GNU tar through them, read the
//!   record and then the archive as one tar stream.
//!
//! GNU tar opens `--file=/dev/fd/N` with `O_TRUNC` when N is a regular file, which would
//! erase the record, and pads a compressor's output with zeros to a whole record when N is a
//! pipe, which bzip2 and xz reject after a stream. So tar is given the backup file as its
//! stdout (`--file=-`), positioned after the record: tar, or its compressor, writes from
//! there on (see `run::TarRun::archive_on_stdout`). Into the host's byte sink, the record's
//! bytes go first and tar's stdout, a pipe then, follows them (`crate::sink`).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};

use aa_abi::BackupType;
use aa_provider_kit::roots::record_blocks;

use crate::compress;

/// The roots of a level: the include entries (as tar names them) that exist now.
pub fn existing_roots(root: &Path, includes: &[Vec<u8>]) -> Vec<Vec<u8>> {
    includes
        .iter()
        .filter(|name| {
            root.join(OsStr::from_bytes(name))
                .symlink_metadata()
                .is_ok()
        })
        .cloned()
        .collect()
}

/// The record of `roots` as the backup's first bytes, compressed for `backup_type`: written
/// at the start of the backup file, or into the host's sink.
pub fn record(backup_type: BackupType, roots: &[Vec<u8>]) -> io::Result<Vec<u8>> {
    let blocks = record_blocks(roots);
    let Some(program) = compress::program(backup_type) else {
        return Ok(blocks);
    };
    let mut child = Command::new(program)
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {program}: {e}")))?;
    let stdin = child.stdin.take();
    // Fed from a thread of its own: a large record would fill the output pipe before the
    // compressor had read it all.
    let (written, output) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || match stdin {
            Some(mut stdin) => stdin.write_all(&blocks),
            None => Err(io::Error::other("no stdin")),
        });
        let output = child.wait_with_output();
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the record writer failed")));
        (written, output)
    });
    let output = output?;
    written?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr);
        // One line: bzip2, for one, spreads its message over several.
        let message: Vec<&str> = message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        return Err(io::Error::other(format!(
            "{program} failed on the roots record: {}",
            message.join("; ")
        )));
    }
    Ok(output.stdout)
}

/// Writes the record of `roots` at the current position of `file`, compressed for
/// `backup_type`.
pub fn write_record(file: &File, backup_type: BackupType, roots: &[Vec<u8>]) -> io::Result<()> {
    let mut file = file;
    file.write_all(&record(backup_type, roots)?)
}

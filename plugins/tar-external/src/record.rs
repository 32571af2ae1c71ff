//! Reading the roots record ([`aa_provider_kit::roots`]) at the start of a backup file.
//!
//! Only the first blocks of the uncompressed stream are needed, so a compressed archive is
//! read through its decompressor program (the one GNU tar itself would run), which is killed
//! as soon as the record has been read: a restore does not decompress each level twice.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use aa_abi::capability::ChainArchive;
use aa_abi::{BackupType, ProviderError};
use aa_provider_kit::{fatal, roots};

/// The program that decompresses `backup_type` from stdin to stdout (`-dc`), if any.
pub fn decompressor(backup_type: BackupType) -> Option<&'static str> {
    match backup_type {
        BackupType::TarGz => Some("gzip"),
        BackupType::TarBz2 => Some("bzip2"),
        BackupType::TarXz => Some("xz"),
        BackupType::TarZst => Some("zstd"),
        _ => None,
    }
}

/// The roots record of `archive`, `None` when it has none (an archive of the original `aa`,
/// of GNU tar, or of `TarExternal` before it wrote one).
pub fn read_roots(archive: &ChainArchive) -> Result<Option<Vec<Vec<u8>>>, ProviderError> {
    let path = archive.path();
    let file = File::open(path).map_err(|e| fatal(path, &e))?;
    let Some(program) = decompressor(archive.backup_type) else {
        return roots::read_record(BufReader::new(file)).map_err(|e| fatal(path, &e));
    };
    read_through(program, file, path)
}

fn read_through(
    program: &str,
    file: File,
    path: &Path,
) -> Result<Option<Vec<Vec<u8>>>, ProviderError> {
    // The file goes in as stdin, so no archive name can be taken for an option.
    let mut child = Command::new(program)
        .arg("-dc")
        .stdin(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            ProviderError::from_io(format!("{}: cannot run {program}", path.display()), &e)
        })?;
    let read = match child.stdout.take() {
        Some(stdout) => roots::read_record(stdout),
        None => Err(io::Error::other("no stdout")),
    };
    // The rest of the stream is not needed; a damaged one is GNU tar's to report.
    let _ = child.kill();
    let _ = child.wait();
    // A stream too damaged to yield even the first blocks has no record; reading it fully
    // (the listing) then fails naming the file.
    Ok(read.unwrap_or(None))
}

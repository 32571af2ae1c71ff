//! Verifying a backup file with the tools that made it: the decompressor's own integrity test
//! (`gzip -t`, `bzip2 -t`, `xz -t`, `zstd -t`: every CRC, size and check of the format), then
//! GNU tar's listing, which reads every header and checks its checksum. The members listed
//! are the items; any complaint of either tool fails the verification, naming the file.

use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};

use aa_abi::capability::{ChainArchive, ItemEvents, Totals};
use aa_abi::ProviderError;
use aa_provider_kit::{fatal, CountedItems};

use crate::record::decompressor;
use crate::restore::{archive_failed, list};

/// Verifies `archive` with the GNU tar at `tar`; see the module documentation.
pub fn verify(
    tar: &Path,
    archive: &ChainArchive,
    events: &dyn ItemEvents,
) -> Result<Totals, ProviderError> {
    let path = archive.path();
    if let Some(program) = decompressor(archive.backup_type) {
        test_stream(program, path)?;
    }
    let (members, stderr) = list(tar, path)?;
    if !String::from_utf8_lossy(&stderr).trim().is_empty() {
        return Err(archive_failed(path, "warnings", &stderr));
    }
    let counted = CountedItems::new(events);
    for member in &members {
        counted.item(Path::new(std::ffi::OsStr::from_bytes(&member.raw)), 0);
    }
    Ok(counted.totals())
}

/// Runs `program -t` on the file (as stdin, so no name is taken for an option).
fn test_stream(program: &str, path: &Path) -> Result<(), ProviderError> {
    let file = File::open(path).map_err(|e| fatal(path, &e))?;
    let output = Command::new(program)
        .arg("-t")
        .env("LC_ALL", "C")
        .stdin(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            ProviderError::from_io(format!("{}: cannot run {program}", path.display()), &e)
        })?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let said: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    Err(ProviderError::other(format!(
        "{}: damaged, {program} -t: {}",
        path.display(),
        if said.is_empty() {
            format!("exit status {:?}", output.status.code())
        } else {
            said.join("; ")
        }
    )))
}

//! GNU tar as the reference reader: extracting a backup, restoring an incremental chain,
//! listing members, and telling a backup's container format from its magic bytes.
//!
//! A backup is only worth something if the standard tool restores it, so every check reads
//! archives with GNU tar rather than with the code that wrote them.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Extracts `archive` into `dest` (created if needed) with GNU tar, preserving permissions.
/// GNU tar recognises gzip, bzip2, xz and zstd compression by itself when reading a file.
#[track_caller]
pub fn gnu_extract(archive: &Path, dest: &Path) {
    fs::create_dir_all(dest).expect("create extraction directory");
    let out = Command::new("tar")
        .arg("-xpf")
        .arg(archive)
        .arg("-C")
        .arg(dest)
        .output()
        .expect("run GNU tar");
    assert!(
        out.status.success(),
        "tar -xpf {} failed ({}): {}",
        archive.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Restores an incremental chain with GNU tar: each archive in order, in incremental mode
/// (`--listed-incremental=/dev/null`), so each level also deletes what was gone at its time.
pub fn gnu_restore_incremental(archives: &[&Path], dest: &Path) -> Result<(), String> {
    fs::create_dir_all(dest).map_err(|e| format!("mkdir {}: {e}", dest.display()))?;
    for archive in archives {
        let out = Command::new("tar")
            .arg("--listed-incremental=/dev/null")
            .arg("-xpf")
            .arg(archive)
            .arg("-C")
            .arg(dest)
            .output()
            .map_err(|e| format!("cannot run GNU tar: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "tar --listed-incremental=/dev/null -xpf {} failed ({}): {}",
                archive.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// The member names of `archive` as GNU tar lists them, without a trailing `/` or leading `./`
/// (how a directory name is spelt is a detail that differs between writers).
#[track_caller]
pub fn gnu_list(archive: &Path) -> BTreeSet<Vec<u8>> {
    let out = Command::new("tar")
        .arg("--quoting-style=literal")
        .arg("-tf")
        .arg(archive)
        .output()
        .expect("run GNU tar");
    assert!(
        out.status.success(),
        "tar -tf {} failed ({}): {}",
        archive.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let l = l.strip_prefix(b"./").unwrap_or(l);
            l.strip_suffix(b"/").unwrap_or(l).to_vec()
        })
        .collect()
}

/// The container format of a file, from its magic bytes: `tar`, `gz`, `bz2`, `xz`, `zst` or
/// `unknown`.
pub fn detect_format(path: &Path) -> &'static str {
    let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if data.starts_with(&[0x1f, 0x8b]) {
        "gz"
    } else if data.starts_with(b"BZh") {
        "bz2"
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "xz"
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zst"
    } else if data.len() >= 512 && &data[257..262] == b"ustar" {
        "tar"
    } else {
        "unknown"
    }
}

//! Moves the dump time GNU tar writes into a new snapshot back to the one taken before it
//! started, [`aa_provider_kit::dump_start_time`]: the first tick, of the clock files are
//! stamped with, after the backup began.
//!
//! GNU tar records the precise time at which it started, but files are mostly stamped from the
//! coarse clock, which lags by up to a scheduler tick: a file that tar has already stored and
//! that changes in that tick gets an mtime older than the dump time, and no later level stores
//! the change. Rewriting the header with the tick closes that window for chains made by GNU
//! tar through us, and the tick is still later than every change made before the level
//! started, so the next level holds exactly what changed since; `TarInternal` writes the same
//! time in the first place.
//!
//! Only the header of snapshot format 2 (`GNU tar-VERSION-2\n`, then the seconds and the
//! nanoseconds, each NUL-terminated decimal), read with the kit's reader
//! ([`aa_provider_kit::snapshot_file`]), is touched; the directory records after it are copied
//! unchanged. A snapshot whose header that reader refuses is left as tar wrote it.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};

use aa_abi::ProviderError;
use aa_provider_kit::snapshot_file::{encode_header, Header, SnapshotReader, Timestamp};
use aa_provider_kit::{Snapshots, WorkingFile};

/// Returns the snapshot `working` with its dump time lowered to `start`, or `working` itself
/// when its dump time is already no later than `start` or its header is not of format 2.
pub(crate) fn lower_dump_time(
    snapshots: &Snapshots,
    working: WorkingFile,
    start: (i64, u32),
) -> Result<WorkingFile, ProviderError> {
    let io_error = |e: io::Error| ProviderError::from_io(working.path().display(), &e);
    // GNU tar replaces the file rather than writing into it: open it again by name.
    let input = BufReader::new(File::open(working.path()).map_err(io_error)?);
    let header = match SnapshotReader::new(input) {
        Ok(reader) => reader.header().cloned().map(|header| (header, reader)),
        Err(err) => {
            log::debug!(
                "{}: {err}; dump time left as GNU tar wrote it",
                working.path().display()
            );
            None
        }
    };
    let Some((header, reader)) = header else {
        return Ok(working);
    };
    let start = Timestamp {
        sec: start.0,
        nsec: start.1,
    };
    if header.dump_time <= start {
        return Ok(working);
    }
    let mut bytes = Vec::new();
    let lowered_header = Header {
        dump_time: start,
        ..header
    };
    encode_header(&lowered_header, &mut bytes)
        .map_err(|e| ProviderError::other(format!("{}: {e}", working.path().display())))?;
    let mut lowered = snapshots.working_file()?;
    let lowered_path = lowered.path().to_path_buf();
    let write_error = |e: io::Error| ProviderError::from_io(lowered_path.display(), &e);
    let mut out = BufWriter::new(lowered.file());
    out.write_all(&bytes).map_err(write_error)?;
    // The directory records after the header, unchanged.
    io::copy(&mut reader.into_inner(), &mut out).map_err(io_error)?;
    out.flush().map_err(write_error)?;
    drop(out);
    // `working` is dropped here, and so deleted: `lowered` replaces it.
    Ok(lowered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn snapshot_with(content: &[u8]) -> (tempfile::TempDir, Snapshots, WorkingFile) {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = Snapshots::new(dir.path());
        let working = snapshots.working_file().unwrap();
        fs::write(working.path(), content).unwrap();
        (dir, snapshots, working)
    }

    #[test]
    fn a_later_dump_time_is_lowered_and_the_records_kept() {
        let records = b"0\x001795713360\x000\x00123\x00456\0./data\0Ydata\0\0\0";
        let mut content = b"GNU tar-1.34-2\n1795713367\x00592689281\0".to_vec();
        content.extend_from_slice(records);
        let (dir, snapshots, working) = snapshot_with(&content);
        let old_path = working.path().to_path_buf();
        let lowered = lower_dump_time(&snapshots, working, (1_795_713_367, 588_981_000)).unwrap();
        let mut expected = b"GNU tar-1.34-2\n1795713367\x00588981000\0".to_vec();
        expected.extend_from_slice(records);
        assert_eq!(fs::read(lowered.path()).unwrap(), expected);
        assert!(!old_path.exists(), "the replaced working file is deleted");
        drop(lowered);
        assert_eq!(fs::read_dir(snapshots.dir()).unwrap().count(), 0);
        drop(dir);
    }

    #[test]
    fn an_earlier_dump_time_or_another_format_is_left_alone() {
        for content in [
            &b"GNU tar-1.34-2\n100\x005\0records"[..],
            &b"GNU tar-1.34-1\n999\0records"[..],
            &b""[..],
        ] {
            let (_dir, snapshots, working) = snapshot_with(content);
            let path = working.path().to_path_buf();
            let kept = lower_dump_time(&snapshots, working, (200, 0)).unwrap();
            assert_eq!(kept.path(), path);
            assert_eq!(fs::read(kept.path()).unwrap(), content);
        }
    }
}

//! Moves the dump time GNU tar writes into a new snapshot back to the one taken before it
//! started, [`aa_abi::snapshots::dump_start_time`]: the first tick, of the clock files are
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
//! nanoseconds, each NUL-terminated decimal) is touched; the directory records after it are
//! copied unchanged. A snapshot in any other shape is left as tar wrote it.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};

use aa_abi::snapshots::{Snapshots, WorkingFile};
use aa_abi::ProviderError;

/// The longest header considered: the version line and two numbers are far shorter.
const MAX_HEADER: usize = 256;

/// A parsed format 2 header: the version line (with its `\n`), the dump time and the
/// header's length in bytes.
#[derive(Debug, PartialEq)]
struct Header<'a> {
    version_line: &'a [u8],
    dump_time: (i64, u32),
    len: usize,
}

/// Parses the header at the start of `bytes`, if it is one of format 2.
fn parse_header(bytes: &[u8]) -> Option<Header<'_>> {
    let line_end = bytes.iter().position(|&b| b == b'\n')?;
    let version_line = &bytes[..=line_end];
    if !version_line.starts_with(b"GNU tar-") || !version_line.ends_with(b"-2\n") {
        return None;
    }
    let mut fields = bytes[line_end + 1..].splitn(3, |&b| b == 0);
    let sec_field = fields.next()?;
    let nsec_field = fields.next()?;
    // Both numbers must be NUL-terminated: a third (possibly empty) part follows.
    fields.next()?;
    let sec: i64 = std::str::from_utf8(sec_field).ok()?.parse().ok()?;
    let nsec: u32 = std::str::from_utf8(nsec_field).ok()?.parse().ok()?;
    if nsec > 999_999_999 {
        return None;
    }
    Some(Header {
        version_line,
        dump_time: (sec, nsec),
        len: line_end + 1 + sec_field.len() + 1 + nsec_field.len() + 1,
    })
}

/// The header bytes for `version_line` and `dump_time`.
fn header_bytes(version_line: &[u8], (sec, nsec): (i64, u32)) -> Vec<u8> {
    let mut out = version_line.to_vec();
    out.extend_from_slice(format!("{sec}\0{nsec}\0").as_bytes());
    out
}

/// Returns the snapshot `working` with its dump time lowered to `start`, or `working` itself
/// when its dump time is already no later than `start` or its header is not of format 2.
pub(crate) fn lower_dump_time(
    snapshots: &Snapshots,
    working: WorkingFile,
    start: (i64, u32),
) -> Result<WorkingFile, ProviderError> {
    let io_error = |e: io::Error| ProviderError::from_io(working.path().display(), &e);
    // GNU tar replaces the file rather than writing into it: open it again by name.
    let mut reader = BufReader::new(File::open(working.path()).map_err(io_error)?);
    let mut head = Vec::with_capacity(MAX_HEADER);
    (&mut reader)
        .take(MAX_HEADER as u64)
        .read_to_end(&mut head)
        .map_err(io_error)?;
    let Some(header) = parse_header(&head) else {
        log::debug!(
            "{}: not a format 2 snapshot header; dump time left as GNU tar wrote it",
            working.path().display()
        );
        return Ok(working);
    };
    if header.dump_time <= start {
        return Ok(working);
    }
    let mut lowered = snapshots.working_file()?;
    let lowered_path = lowered.path().to_path_buf();
    let write_error = |e: io::Error| ProviderError::from_io(lowered_path.display(), &e);
    let mut out = BufWriter::new(lowered.file());
    out.write_all(&header_bytes(header.version_line, start))
        .and_then(|()| out.write_all(&head[header.len..]))
        .map_err(write_error)?;
    io::copy(&mut reader, &mut out).map_err(io_error)?;
    out.flush().map_err(write_error)?;
    drop(out);
    // `working` is dropped here, and so deleted: `lowered` replaces it.
    Ok(lowered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn parses_format_2_headers_only() {
        let bytes = b"GNU tar-1.34-2\n1795713367\x00592689281\0\0\0rest";
        let header = parse_header(bytes).unwrap();
        assert_eq!(header.version_line, b"GNU tar-1.34-2\n");
        assert_eq!(header.dump_time, (1_795_713_367, 592_689_281));
        assert_eq!(&bytes[header.len..], b"\0\0rest");
        assert_eq!(parse_header(b"GNU tar-1.34-1\n17\x009\0"), None);
        assert_eq!(parse_header(b"GNU tar-1.34-2\n17\x009"), None);
        assert_eq!(parse_header(b"GNU tar-1.34-2\n17\x001000000000\0"), None);
        assert_eq!(parse_header(b"GNU tar-1.34-2\nx\x009\0"), None);
        assert_eq!(parse_header(b"17\x009\0"), None);
        assert_eq!(parse_header(b""), None);
    }

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

//! Removing from a snapshot the directories at the top of the backup that are gone.
//!
//! GNU tar takes a directory found under a new name with the device and inode of a recorded
//! one for a rename, stores only its changed files and lists the rest in its dumpdir as not
//! stored. A rename deeper in the tree is recorded in the dumpdir of the parent directory, so
//! extraction moves the old directory into place first. A directory at the top of the backup
//! (an include entry, with no recorded parent) has no parent dumpdir, because the archive
//! never describes the backup root itself: nothing moves the old directory, so the renamed one
//! is restored without its unchanged files and the roots rule then deletes the old one.
//!
//! So, before a level runs, [`drop_vanished_tops`] removes the record of every such top
//! directory whose path is no longer a directory, and every record below it: the directory
//! under its new name is then new, and stored in full. Only a top whose path vanished is
//! dropped, so nothing a rename could still be recognised by from a parent is lost.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::hash::Hasher;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{SnapshotError, SnapshotReader, SnapshotWriter};

/// Reads the snapshot in `input` (from its start; it is read up to three times) and, when
/// some top directory recorded in it is no longer a directory under `root`, writes it to
/// `output` without those directories and everything recorded below them, returning their
/// names. Returns an empty list, and writes nothing, when nothing is to be dropped: the
/// snapshot is then to be used as it is.
///
/// A top directory is a record whose parent directory (the name up to its last `/`) has no
/// record. Parents are looked up by a 64-bit hash of the name: a collision can only make a
/// top look like a subdirectory, which keeps it, as GNU tar would. A path that cannot be
/// examined for a reason other than not being there (e.g. permissions) is kept too.
pub fn drop_vanished_tops<R: Read + Seek, W: Write>(
    input: &mut R,
    output: W,
    root: &Path,
) -> Result<Vec<Vec<u8>>, SnapshotError> {
    let mut names = HashSet::new();
    each_record(input, |name| {
        names.insert(name_hash(name));
    })?;
    let mut vanished = Vec::new();
    each_record(input, |name| {
        let top = parent(name).is_none_or(|parent| !names.contains(&name_hash(parent)));
        if top && !is_directory(&root.join(OsStr::from_bytes(name))) {
            vanished.push(name.to_vec());
        }
    })?;
    if vanished.is_empty() {
        return Ok(vanished);
    }
    let dropped: HashSet<&[u8]> = vanished.iter().map(Vec::as_slice).collect();
    let mut reader = reader_at_start(input)?;
    let Some(header) = reader.header().cloned() else {
        return Ok(Vec::new());
    };
    let mut writer = SnapshotWriter::new(output, &header)?;
    while let Some(record) = reader.next_record()? {
        if !is_below_any(&record.name, &dropped) {
            writer.write_record(&record)?;
        }
    }
    writer.finish()?;
    Ok(vanished)
}

fn reader_at_start<R: Read + Seek>(
    input: &mut R,
) -> Result<SnapshotReader<BufReader<&mut R>>, SnapshotError> {
    input
        .seek(SeekFrom::Start(0))
        .map_err(|err| SnapshotError::io(err, 0))?;
    SnapshotReader::new(BufReader::new(input))
}

/// Calls `each` with the name of every record of `input`.
fn each_record<R: Read + Seek>(
    input: &mut R,
    mut each: impl FnMut(&[u8]),
) -> Result<(), SnapshotError> {
    let mut reader = reader_at_start(input)?;
    while let Some(record) = reader.next_record()? {
        each(&record.name);
    }
    Ok(())
}

/// The name up to its last `/`, `None` for a name without one (or only a leading one).
fn parent(name: &[u8]) -> Option<&[u8]> {
    match name.iter().rposition(|&b| b == b'/') {
        Some(0) | None => None,
        Some(at) => Some(&name[..at]),
    }
}

/// Whether `name` is one of `tops` or lies below one of them.
fn is_below_any(name: &[u8], tops: &HashSet<&[u8]>) -> bool {
    let mut current = Some(name);
    while let Some(name) = current {
        if tops.contains(name) {
            return true;
        }
        current = parent(name);
    }
    false
}

/// Whether `path` is a directory now (not following a symbolic link, as tar does not); only
/// "not there" and "not a directory" count as no.
fn is_directory(path: &Path) -> bool {
    match fs::symlink_metadata(path) {
        Ok(meta) => meta.is_dir(),
        Err(err) => !matches!(
            err.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        ),
    }
}

/// A fixed-key hash, the same from run to run.
fn name_hash(name: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(name);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dumpdir::Entry;
    use crate::snapshot_file::{encode_header, encode_record, DirRecord, Header, Timestamp};
    use std::io::Cursor;

    fn record(name: &str, ino: u64) -> DirRecord {
        DirRecord {
            nfs: false,
            mtime: Timestamp { sec: 5, nsec: 0 },
            dev: 1,
            ino,
            name: name.as_bytes().to_vec(),
            entries: vec![Entry {
                code: crate::dumpdir::Code::Unchanged,
                name: b"x".to_vec(),
            }],
        }
    }

    fn file(records: &[DirRecord]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_header(&Header::new(Timestamp { sec: 9, nsec: 1 }), &mut out).unwrap();
        for record in records {
            encode_record(record, &mut out).unwrap();
        }
        out
    }

    fn names(bytes: &[u8]) -> Vec<String> {
        SnapshotReader::new(bytes)
            .unwrap()
            .map(|r| String::from_utf8(r.unwrap().name).unwrap())
            .collect()
    }

    #[test]
    fn only_vanished_tops_and_what_is_below_them_are_dropped() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["kept/sub", "deep/new", "./dotted"] {
            fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        fs::write(root.path().join("now_a_file"), b"").unwrap();
        // Children before their parents too: records come in no particular order.
        let records = [
            record("gone/sub", 2),
            record("gone", 1),
            record("kept", 3),
            record("kept/sub", 4),
            record("deep", 5),
            record("deep/moved", 6),
            record("gone2", 7),
            record("now_a_file", 8),
            record("now_a_file/inner", 9),
            record("a/b", 10),
            record(".", 11),
            record("./dotted", 12),
            record("./vanished", 13),
            record("./vanished/x", 14),
        ];
        let mut input = Cursor::new(file(&records));
        let mut output = Vec::new();
        let dropped = drop_vanished_tops(&mut input, &mut output, root.path()).unwrap();
        let text: Vec<_> = dropped
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        assert_eq!(text, ["gone", "gone2", "now_a_file", "a/b"]);
        // A vanished subdirectory ("deep/moved", "./vanished") is a rename GNU tar records.
        assert_eq!(
            names(&output),
            [
                "kept",
                "kept/sub",
                "deep",
                "deep/moved",
                ".",
                "./dotted",
                "./vanished",
                "./vanished/x"
            ]
        );
        // The records kept are byte for byte the ones read.
        let kept: Vec<_> = records
            .iter()
            .filter(|r| names(&output).contains(&String::from_utf8(r.name.clone()).unwrap()))
            .cloned()
            .collect();
        assert_eq!(&output[..], &file(&kept)[..]);
    }

    #[test]
    fn nothing_vanished_writes_nothing() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("a")).unwrap();
        for bytes in [file(&[record("a", 1)]), Vec::new()] {
            let mut output = Vec::new();
            let dropped =
                drop_vanished_tops(&mut Cursor::new(bytes), &mut output, root.path()).unwrap();
            assert!(dropped.is_empty());
            assert!(output.is_empty());
        }
    }

    #[test]
    fn a_malformed_snapshot_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let mut bytes = file(&[record("a", 1)]);
        bytes.truncate(bytes.len() - 3);
        let mut output = Vec::new();
        assert!(drop_vanished_tops(&mut Cursor::new(bytes), &mut output, root.path()).is_err());
    }
}

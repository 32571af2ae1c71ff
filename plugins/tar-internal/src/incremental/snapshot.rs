//! The previous level's snapshot file, indexed for the lookups of the incremental planner.
//!
//! The file format, its reader and its writer are the provider kit's
//! ([`aa_provider_kit::snapshot_file`], re-exported here); this module adds [`Snapshot`]: the
//! previous level as the planner needs it, looked up by directory name and by device and inode.
//!
//! Memory: [`Snapshot`] keeps only two indexes, a 64-bit hash of each directory name and each
//! (device, inode) pair mapped to the record's byte offset, and reads a record back from the
//! file when it is looked up. The indexes are sorted vectors up to [`index::MEMORY_ENTRIES`]
//! directories and sorted temporary files beyond, looked up a page at a time (see
//! [`super::index`]), so their memory is bounded too: at most 8 MiB, plus under 0.4 bytes per
//! directory.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::fs::File;
use std::hash::Hasher;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use aa_provider_kit::snapshot_file::drop_vanished_tops;
#[cfg(test)]
pub use aa_provider_kit::snapshot_file::{encode_header, encode_record};
pub use aa_provider_kit::snapshot_file::{
    DirRecord, Header, SnapshotError, SnapshotReader, SnapshotWriter, Timestamp,
};

use super::index::{self, Index, IndexBuilder, IndexEntry};

/// A source of snapshot bytes that lookups can seek in.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// The previous level's snapshot file, ready for the lookups of the incremental planner.
///
/// [`Snapshot::read`] checks the whole file once, streaming, and keeps two indexes: name
/// hash to record offset, and (device, inode) to the first record with them (GNU tar, too,
/// keeps the first of duplicates). A lookup reads the record back from the file. See the
/// module documentation for the memory this costs.
pub struct Snapshot {
    header: Option<Header>,
    source: Option<Box<dyn ReadSeek>>,
    /// Name hash (and 0) to (offset, record number) of the records with that hash.
    by_name: Index,
    /// Device and inode to (offset, record number) of the records of that directory.
    by_identity: Index,
    records: u64,
    path: Option<PathBuf>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("header", &self.header)
            .field("records", &self.records)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// No previous level: everything is new.
    pub fn empty() -> Snapshot {
        Snapshot {
            header: None,
            source: None,
            by_name: Index::empty(),
            by_identity: Index::empty(),
            records: 0,
            path: None,
        }
    }

    /// Opens and indexes the snapshot file at `path`; errors name the file. A large index
    /// spills to unnamed temporary files next to it (see [`super::index`]).
    pub fn read(path: &Path) -> Result<Snapshot, SnapshotError> {
        let file = File::open(path).map_err(|err| SnapshotError::io(err, 0).with_path(path))?;
        let mut snapshot = Snapshot::from_reader_in(file, index_dir(path), index::MEMORY_ENTRIES)
            .map_err(|err| err.with_path(path))?;
        snapshot.path = Some(path.to_path_buf());
        Ok(snapshot)
    }

    /// [`Snapshot::read`] without the records of the top directories (those without a
    /// recorded parent) that are no longer directories under `root`, nor anything recorded
    /// below them ([`drop_vanished_tops`]): a top directory renamed since is then new, and
    /// stored in full. GNU tar would take it for a rename, but with no dumpdir above it to
    /// record that rename (nothing describes the backup root), a restore would lose its
    /// unchanged files. The filtered copy is an unnamed temporary file next to `path`.
    pub fn read_under(path: &Path, root: &Path) -> Result<Snapshot, SnapshotError> {
        let dir = index_dir(path);
        let mut file = File::open(path).map_err(|err| SnapshotError::io(err, 0).with_path(path))?;
        let mut filtered =
            index::temporary_file(dir).map_err(|err| SnapshotError::io(err, 0).with_path(dir))?;
        let dropped = drop_vanished_tops(&mut file, BufWriter::new(&mut filtered), root)
            .map_err(|err| err.with_path(path))?;
        if dropped.is_empty() {
            return Snapshot::read(path);
        }
        for name in &dropped {
            log::debug!(
                "{}: top directory gone, its snapshot records dropped",
                String::from_utf8_lossy(name)
            );
        }
        filtered
            .seek(SeekFrom::Start(0))
            .map_err(|err| SnapshotError::io(err, 0).with_path(dir))?;
        let mut snapshot = Snapshot::from_reader_in(filtered, dir, index::MEMORY_ENTRIES)
            .map_err(|err| err.with_path(path))?;
        snapshot.path = Some(path.to_path_buf());
        Ok(snapshot)
    }

    /// Indexes a snapshot from any seekable source positioned at its start (lookups seek to
    /// offsets counted from there); a large index spills to the system's temporary directory.
    #[cfg(test)]
    pub fn from_reader<R: ReadSeek + 'static>(source: R) -> Result<Snapshot, SnapshotError> {
        Snapshot::from_reader_in(source, &std::env::temp_dir(), index::MEMORY_ENTRIES)
    }

    /// `Snapshot::from_reader` keeping up to `memory_entries` index entries in memory and
    /// spilling to `dir` beyond.
    pub fn from_reader_in<R: ReadSeek + 'static>(
        source: R,
        dir: &Path,
        memory_entries: usize,
    ) -> Result<Snapshot, SnapshotError> {
        let mut reader = SnapshotReader::new(BufReader::new(source))?;
        let header = reader.header().cloned();
        let mut by_name = IndexBuilder::new(dir, memory_entries);
        let mut by_identity = IndexBuilder::new(dir, memory_entries);
        let mut records = 0;
        loop {
            let offset = reader.offset();
            let Some(record) = reader.next_record()? else {
                break;
            };
            records += 1;
            let spill_error = |err| SnapshotError::io(err, offset);
            by_name
                .push(IndexEntry {
                    key: (name_hash(&record.name), 0),
                    record: records,
                    offset,
                })
                .map_err(spill_error)?;
            by_identity
                .push(IndexEntry {
                    key: (record.dev, record.ino),
                    record: records,
                    offset,
                })
                .map_err(spill_error)?;
        }
        let end = reader.offset();
        let finish =
            |builder: IndexBuilder| builder.finish().map_err(|e| SnapshotError::io(e, end));
        let by_name = finish(by_name)?;
        let by_identity = finish(by_identity)?;
        let source: Box<dyn ReadSeek> = Box::new(reader.into_inner().into_inner());
        Ok(Snapshot {
            header,
            source: Some(source),
            by_name,
            by_identity,
            records,
            path: None,
        })
    }

    /// Whether the indexes are kept in temporary files rather than in memory.
    #[cfg(test)]
    pub fn index_on_disk(&self) -> bool {
        self.by_name.on_disk() || self.by_identity.on_disk()
    }

    /// When the previous dump started, `None` if there was none.
    pub fn dump_time(&self) -> Option<Timestamp> {
        self.header.as_ref().map(|header| header.dump_time)
    }

    /// Number of directory records.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.records
    }

    /// The first record named `name`.
    pub fn by_name(&mut self, name: &[u8]) -> Result<Option<DirRecord>, SnapshotError> {
        let candidates = self.lookup(Lookup::Name, (name_hash(name), 0))?;
        for (offset, record) in candidates {
            let found = self.record_at(offset, record)?;
            if found.name == name {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The first record of the directory with device `dev` and inode `ino`.
    pub fn by_identity(&mut self, dev: u64, ino: u64) -> Result<Option<DirRecord>, SnapshotError> {
        match self.lookup(Lookup::Identity, (dev, ino))?.first() {
            Some(&(offset, record)) => self.record_at(offset, record).map(Some),
            None => Ok(None),
        }
    }

    fn lookup(&self, which: Lookup, key: (u64, u64)) -> Result<Vec<(u64, u64)>, SnapshotError> {
        let index = match which {
            Lookup::Name => &self.by_name,
            Lookup::Identity => &self.by_identity,
        };
        index.get(key).map_err(|err| {
            let err = SnapshotError::io(err, 0);
            match &self.path {
                Some(path) => err.with_path(path),
                None => err,
            }
        })
    }

    fn record_at(&mut self, offset: u64, number: u64) -> Result<DirRecord, SnapshotError> {
        let path = self.path.clone();
        let with_path = |err: SnapshotError| match &path {
            Some(path) => err.with_path(path),
            None => err,
        };
        let Some(source) = self.source.as_mut() else {
            return Err(with_path(SnapshotError::changed(offset, None)));
        };
        source
            .seek(SeekFrom::Start(offset))
            .map_err(|err| with_path(SnapshotError::io(err, offset)))?;
        let mut reader = SnapshotReader::resume(BufReader::new(source), offset, number);
        match reader.next_record() {
            Ok(Some(record)) => Ok(record),
            // It was valid when indexed.
            Ok(None) | Err(_) => Err(with_path(SnapshotError::changed(offset, Some(number)))),
        }
    }
}

/// Where the temporary files of the snapshot at `path` go: its own directory.
fn index_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[derive(Clone, Copy)]
enum Lookup {
    Name,
    Identity,
}

/// A fixed-key hash, so the index is the same from run to run.
fn name_hash(name: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(name);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incremental::dumpdir::{Code, Entry};
    use std::io;

    fn record(name: &[u8], entries: &[(Code, &[u8])]) -> DirRecord {
        DirRecord {
            nfs: false,
            mtime: Timestamp {
                sec: 1_700_000_000,
                nsec: 5,
            },
            dev: 64769,
            ino: 42,
            name: name.to_vec(),
            entries: entries
                .iter()
                .map(|&(code, name)| Entry {
                    code,
                    name: name.to_vec(),
                })
                .collect(),
        }
    }

    fn file(records: &[DirRecord]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_header(&Header::new(Timestamp { sec: 17, nsec: 9 }), &mut out).unwrap();
        for r in records {
            encode_record(r, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn snapshot_lookups() {
        snapshot_lookups_with(index::MEMORY_ENTRIES);
        // Every index spilled to temporary files, one entry per run.
        snapshot_lookups_with(1);
    }

    fn snapshot_lookups_with(memory_entries: usize) {
        let mut a = record(b"./a", &[(Code::Dumped, b"f")]);
        a.ino = 1;
        let mut b = record(b"./b", &[]);
        b.ino = 2;
        let mut a_again = record(b"./a", &[]);
        a_again.ino = 3;
        let bytes = file(&[a.clone(), b.clone(), a_again]);
        let tmp = tempfile::tempdir().unwrap();
        let mut snapshot =
            Snapshot::from_reader_in(io::Cursor::new(bytes), tmp.path(), memory_entries).unwrap();
        assert_eq!(snapshot.index_on_disk(), memory_entries < 3);
        assert_eq!(snapshot.len(), 3);
        assert_eq!(snapshot.dump_time(), Some(Timestamp { sec: 17, nsec: 9 }));
        // The first of duplicate names wins, as in GNU tar.
        assert_eq!(snapshot.by_name(b"./a").unwrap(), Some(a));
        assert_eq!(snapshot.by_name(b"./b").unwrap(), Some(b.clone()));
        assert_eq!(snapshot.by_name(b"./c").unwrap(), None);
        assert_eq!(snapshot.by_identity(64769, 2).unwrap(), Some(b));
        assert_eq!(snapshot.by_identity(64770, 2).unwrap(), None);

        let mut empty = Snapshot::empty();
        assert_eq!(empty.dump_time(), None);
        assert_eq!(empty.by_name(b"./a").unwrap(), None);
    }
}

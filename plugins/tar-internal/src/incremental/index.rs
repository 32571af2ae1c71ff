//! The lookup tables of a previous snapshot ([`super::snapshot::Snapshot`]) in bounded memory.
//!
//! A level looks up every directory it walks in the previous level's snapshot, by name and,
//! for renames, by device and inode. GNU tar keeps the whole snapshot in a hash table (about
//! 700 bytes per directory: 200 MB for 288,000 directories). Here an index entry is 32 bytes
//! (key, offset of the record in the snapshot file, record number) and the records stay in the
//! file. Up to [`MEMORY_ENTRIES`] entries the index is a sorted vector; beyond, it is built
//! like an external sort: sorted runs of that many entries are spilled to unnamed temporary
//! files, merged into one sorted file of fixed-size entries, and looked up through a sparse
//! in-memory table holding the first key of each 4 KiB page (1/128 of the entries): one page
//! read per lookup. So memory is bounded by a constant (4 MiB per index being built) plus
//! 0.25 bytes per directory for the page table and, while merging, a 16 KiB buffer per run
//! (0.125 bytes per directory), however large the tree.
//!
//! Several entries may share a key (two records with the same name hash, or a snapshot that
//! lists one directory twice); lookups return them in record order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Entries kept in memory, and the size of each sorted run when spilling: 4 MiB.
pub const MEMORY_ENTRIES: usize = 128 * 1024;

const ENTRY_BYTES: usize = 32;
const PAGE_BYTES: usize = 4096;
const PAGE_ENTRIES: usize = PAGE_BYTES / ENTRY_BYTES;

/// One index entry: what is looked up, and where the record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexEntry {
    pub key: (u64, u64),
    /// The record number, before the offset so that equal keys sort in record order.
    pub record: u64,
    pub offset: u64,
}

impl IndexEntry {
    fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        for (i, v) in [self.key.0, self.key.1, self.record, self.offset]
            .into_iter()
            .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> IndexEntry {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        IndexEntry {
            key: (word(0), word(1)),
            record: word(2),
            offset: word(3),
        }
    }
}

/// Collects entries in any order; [`IndexBuilder::finish`] makes the [`Index`].
pub struct IndexBuilder {
    buffer: Vec<IndexEntry>,
    limit: usize,
    runs: Vec<File>,
    /// Where spilled runs and the merged index go.
    dir: PathBuf,
}

impl IndexBuilder {
    /// A builder keeping up to `limit` entries in memory, spilling to files in `dir` beyond.
    pub fn new(dir: &Path, limit: usize) -> IndexBuilder {
        IndexBuilder {
            buffer: Vec::new(),
            limit: limit.max(1),
            runs: Vec::new(),
            dir: dir.to_path_buf(),
        }
    }

    pub fn push(&mut self, entry: IndexEntry) -> io::Result<()> {
        if self.buffer.len() == self.limit {
            self.spill()?;
        }
        self.buffer.push(entry);
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.buffer.sort_unstable();
        let mut out = BufWriter::new(temporary_file(&self.dir)?);
        for entry in &self.buffer {
            out.write_all(&entry.encode())?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        self.buffer.clear();
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<Index> {
        if self.runs.is_empty() {
            self.buffer.sort_unstable();
            self.buffer.shrink_to_fit();
            return Ok(Index::Memory(self.buffer));
        }
        self.spill()?;
        self.buffer = Vec::new();
        merge(&self.dir, std::mem::take(&mut self.runs))
    }
}

/// Merges sorted runs into one sorted file and indexes its pages.
fn merge(dir: &Path, runs: Vec<File>) -> io::Result<Index> {
    let mut readers: Vec<BufReader<File>> = runs
        .into_iter()
        .map(|f| BufReader::with_capacity(16 * 1024, f))
        .collect();
    let next = |reader: &mut BufReader<File>| -> io::Result<Option<IndexEntry>> {
        let mut bytes = [0u8; ENTRY_BYTES];
        match reader.read_exact(&mut bytes) {
            Ok(()) => Ok(Some(IndexEntry::decode(&bytes))),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    };
    let mut heap = BinaryHeap::new();
    for (i, reader) in readers.iter_mut().enumerate() {
        if let Some(entry) = next(reader)? {
            heap.push(Reverse((entry, i)));
        }
    }
    let mut out = BufWriter::new(temporary_file(dir)?);
    let mut pages = Vec::new();
    let mut len = 0u64;
    while let Some(Reverse((entry, i))) = heap.pop() {
        if len % PAGE_ENTRIES as u64 == 0 {
            pages.push(entry.key);
        }
        out.write_all(&entry.encode())?;
        len += 1;
        if let Some(entry) = next(&mut readers[i])? {
            heap.push(Reverse((entry, i)));
        }
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    Ok(Index::Disk { file, pages, len })
}

/// A file that disappears when closed: unnamed where the file system allows it, else removed
/// right after it is created.
pub(super) fn temporary_file(dir: &Path) -> io::Result<File> {
    let unnamed = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::TMPFILE.bits() as i32)
        .mode(0o600)
        .open(dir);
    if let Ok(file) = unnamed {
        return Ok(file);
    }
    let file = tempfile_named(dir)?;
    Ok(file)
}

fn tempfile_named(dir: &Path) -> io::Result<File> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let path = dir.join(format!(
            ".aa-index-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The sorted entries, in memory or in a file (see the module documentation).
pub enum Index {
    Memory(Vec<IndexEntry>),
    Disk {
        file: File,
        /// The first key of each page of the file.
        pages: Vec<(u64, u64)>,
        len: u64,
    },
}

impl Index {
    /// An index without entries.
    pub fn empty() -> Index {
        Index::Memory(Vec::new())
    }

    /// The (offset, record number) of every entry with `key`, in record order.
    pub fn get(&self, key: (u64, u64)) -> io::Result<Vec<(u64, u64)>> {
        match self {
            Index::Memory(entries) => {
                let start = entries.partition_point(|e| e.key < key);
                Ok(entries[start..]
                    .iter()
                    .take_while(|e| e.key == key)
                    .map(|e| (e.offset, e.record))
                    .collect())
            }
            Index::Disk { file, pages, len } => {
                // The first entry with `key` is in the last page starting before it, or in the
                // first page starting with it.
                let page = pages
                    .partition_point(|&first| first < key)
                    .saturating_sub(1);
                let mut found = Vec::new();
                let mut buf = vec![0u8; PAGE_BYTES];
                for page in page..pages.len() {
                    let first = page as u64 * PAGE_ENTRIES as u64;
                    let count = (*len - first).min(PAGE_ENTRIES as u64) as usize;
                    let bytes = &mut buf[..count * ENTRY_BYTES];
                    file.read_exact_at(bytes, first * ENTRY_BYTES as u64)?;
                    for chunk in bytes.chunks_exact(ENTRY_BYTES) {
                        let entry = IndexEntry::decode(chunk);
                        if entry.key > key {
                            return Ok(found);
                        }
                        if entry.key == key {
                            found.push((entry.offset, entry.record));
                        }
                    }
                }
                Ok(found)
            }
        }
    }

    /// Number of entries.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        match self {
            Index::Memory(entries) => entries.len() as u64,
            Index::Disk { len, .. } => *len,
        }
    }

    /// Whether the entries are in a file.
    #[cfg(test)]
    pub fn on_disk(&self) -> bool {
        matches!(self, Index::Disk { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A deterministic pseudo-random sequence (xorshift).
    fn sequence(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    fn check(count: u64, distinct_keys: u64, limit: usize) {
        let dir = tempfile::tempdir().unwrap();
        let mut next = sequence(count * 31 + distinct_keys);
        let mut builder = IndexBuilder::new(dir.path(), limit);
        let mut expected: BTreeMap<(u64, u64), Vec<(u64, u64)>> = BTreeMap::new();
        for record in 1..=count {
            let k = next() % distinct_keys;
            let key = (k.wrapping_mul(0x9e37_79b9_7f4a_7c15), k % 3);
            let offset = record * 100;
            builder
                .push(IndexEntry {
                    key,
                    record,
                    offset,
                })
                .unwrap();
            expected.entry(key).or_default().push((offset, record));
        }
        let index = builder.finish().unwrap();
        assert_eq!(index.len(), count);
        assert_eq!(index.on_disk(), count as usize > limit, "{count} {limit}");
        for (key, hits) in &expected {
            assert_eq!(&index.get(*key).unwrap(), hits, "key {key:?}");
        }
        for missing in [(0, 7), (u64::MAX, u64::MAX), (1, 1)] {
            if !expected.contains_key(&missing) {
                assert!(index.get(missing).unwrap().is_empty());
            }
        }
        // Nothing is left behind in the directory: the files were unnamed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn lookups_find_every_entry_in_record_order() {
        check(0, 1, 8);
        check(5, 100, 8); // in memory
        check(1000, 10_000, 7); // many runs, mostly unique keys
        check(3000, 40, 64); // long runs of equal keys across pages
        check(PAGE_ENTRIES as u64 * 3, 3, 100); // equal keys spanning whole pages
    }

    #[test]
    fn named_temporary_files_are_removed_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = tempfile_named(dir.path()).unwrap();
        file.write_all(b"x").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

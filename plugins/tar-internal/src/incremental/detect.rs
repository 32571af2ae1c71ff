//! Deciding what an incremental level dumps, the way GNU tar 1.34 decides it.
//!
//! For each directory walked, [`Planner::plan_directory`] takes the directory's identity and
//! its listing and returns a [`DirPlan`]: the `Y`/`N`/`D` dumpdir (which names to dump), and
//! the directory's record for the new snapshot file. The rules, checked against GNU tar:
//!
//! 1. The directory is the *same* as in the previous level if the previous record of the
//!    same name has its inode and its device (or only its inode with
//!    [`Options::check_device`] off, GNU tar's `--no-check-device`, or when both are on NFS).
//! 2. Otherwise it is looked up by device and inode: found under another name, it was
//!    *renamed* (the rename is recorded for the first directory's dumpdir, see
//!    [`Planner::rename_ops`], and its previous listing is the old record's); found under the
//!    same name once the renames of its ancestors are applied, it *moved with a renamed
//!    parent*; not found, it is *new*, or *replaced* when a different directory had its name.
//! 3. A new or replaced directory has all its content dumped, and so does every directory
//!    below one. In a directory moved with its parent, GNU tar has no previous listing at
//!    hand (its records are keyed by the old names), so every file is dumped too: redundant,
//!    never wrong, and kept so that both tools dump the same files.
//! 4. Otherwise a non-directory is dumped (`Y`) if its name was not in the previous listing,
//!    or if its mtime or its ctime is at or after the previous dump time (see
//!    [`file_changed`]); else it is listed as unchanged (`N`). Subdirectories are `D`;
//!    excluded names and names that vanished during the walk are `N`, which tells extraction
//!    to leave them alone.
//!
//! Intended use (phase 2, in the provider), in two passes like GNU tar, because the renames
//! of the whole tree go into the dumpdir of the *first* directory of the archive:
//!
//! 1. Take `dump_time = Timestamp::dump_start()`, open the previous level with [`Snapshot::read`]
//!    (or [`Snapshot::empty`] for level 0), make a [`Planner`], and open a
//!    [`super::snapshot::SnapshotWriter`] on a temporary file next to the new snapshot. Walk the
//!    directories depth first; for each, list it (`lstat` every entry, mark excludes), call
//!    `plan_directory`, write `plan.record` at once, and descend into
//!    [`DirPlan::subdirectories`] (with `Some(plan.children)` as their parent). Memory: one
//!    listing per level of the walk, plus the two indexes of [`Snapshot`] and the renames.
//! 2. Read the new snapshot back with [`super::SnapshotReader`]: its records come in walk
//!    order and hold exactly the dumpdirs. Write each directory member with
//!    `dumpdir::encode(&record.entries, ops)` as its `GNU.dumpdir` pax record, `ops` being
//!    [`Planner::rename_ops`] for the first directory and empty for the others; then the
//!    `Y` files of each record (GNU tar puts all directories first, then the files). Rename
//!    the snapshot into place only after the archive is committed.
//!
//! Top-level non-directories named by the backup's includes have no dumpdir: dump them when
//! [`file_changed`] says so (GNU tar does the same).

#[cfg(test)]
use std::fs::Metadata;
#[cfg(test)]
use std::os::unix::fs::MetadataExt;

#[cfg(test)]
use super::dumpdir;
use super::dumpdir::{rename_ops, sort_entries, Code, DirRename, Entry, RenameOp};
use super::snapshot::{DirRecord, Snapshot, SnapshotError, Timestamp};

/// Options of the change detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Compare device numbers to recognise a directory (GNU tar's default). Turn it off,
    /// like GNU tar's `--no-check-device`, for file systems whose device number changes from
    /// one mount to the next (some network, FUSE and removable file systems, LVM snapshots):
    /// otherwise each such change makes every directory look replaced and the level dumps
    /// everything. Without the check, a directory is recognised by name and inode alone;
    /// renames are still recognised only by device and inode together.
    pub check_device: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { check_device: true }
    }
}

/// What identifies a directory between levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirStat {
    pub dev: u64,
    pub ino: u64,
    pub mtime: Timestamp,
}

impl DirStat {
    #[cfg(test)]
    pub fn from_metadata(metadata: &Metadata) -> DirStat {
        DirStat {
            dev: metadata.dev(),
            ino: metadata.ino(),
            mtime: Timestamp::from_stat(metadata.mtime(), metadata.mtime_nsec()),
        }
    }

    /// GNU tar's NFS test where the file system type is unknown: the top bit of the device.
    fn on_nfs(&self) -> bool {
        self.dev >> 63 == 1
    }
}

/// An entry of a directory listing, as the walker found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// A directory (not a symbolic link to one).
    Directory,
    /// Anything else, with its `lstat` times.
    Other { mtime: Timestamp, ctime: Timestamp },
    /// Excluded from the backup: listed `N` and not walked.
    Excluded,
    /// Gone, or could not be examined, between listing and `lstat`: listed `N`.
    Vanished,
}

/// One name of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEntry {
    /// One path component: not empty, no `/`, no NUL.
    pub name: Vec<u8>,
    pub state: EntryState,
}

impl ListedEntry {
    /// The entry for `name` from its `lstat` metadata.
    #[cfg(test)]
    pub fn from_metadata(name: Vec<u8>, metadata: &Metadata) -> ListedEntry {
        let state = if metadata.is_dir() {
            EntryState::Directory
        } else {
            EntryState::Other {
                mtime: Timestamp::from_stat(metadata.mtime(), metadata.mtime_nsec()),
                ctime: Timestamp::from_stat(metadata.ctime(), metadata.ctime_nsec()),
            }
        };
        ListedEntry { name, state }
    }
}

/// Which content of a directory is dumped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Children {
    /// Everything (new directories and all below them).
    All,
    /// What changed since the previous level.
    Changed,
}

/// How a directory relates to the previous level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirStatus {
    /// Same name, same directory.
    Same,
    /// Not in the previous level.
    New,
    /// A different directory had this name (or its device changed, see
    /// [`Options::check_device`]).
    Replaced,
    /// Found under another name; see [`Planner::renames`].
    Renamed,
    /// Inside a renamed directory, carried along with it.
    MovedWithParent,
}

/// The decision about one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirPlan {
    pub status: DirStatus,
    pub children: Children,
    /// The new snapshot record; its `entries` are the dumpdir, sorted as GNU tar sorts it.
    pub record: DirRecord,
}

impl DirPlan {
    /// Names to dump (`Y`), relative to the directory.
    #[cfg(test)]
    pub fn dumped(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.with_code(Code::Dumped)
    }

    /// Subdirectories to walk (`D`).
    pub fn subdirectories(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.with_code(Code::Directory)
    }

    /// The dumpdir bytes for the archive member; pass [`Planner::rename_ops`] for the first
    /// directory of the archive, nothing for the others.
    #[cfg(test)]
    pub fn dumpdir(&self, renames: &[RenameOp]) -> Result<Vec<u8>, SnapshotError> {
        dumpdir::encode(&self.record.entries, renames)
    }

    fn with_code(&self, code: Code) -> impl Iterator<Item = &[u8]> + '_ {
        self.record
            .entries
            .iter()
            .filter(move |entry| entry.code == code)
            .map(|entry| entry.name.as_slice())
    }
}

/// GNU tar's test for a file that has changed since `since` (the previous dump time): its
/// mtime or its ctime is at or after it. Without a previous dump everything has changed.
pub fn file_changed(mtime: Timestamp, ctime: Timestamp, since: Option<Timestamp>) -> bool {
    match since {
        Some(since) => mtime >= since || ctime >= since,
        None => true,
    }
}

/// The archive name of `child` in the directory named `parent` (`.` gives `./child`, as
/// with GNU tar; the empty name stands for no parent).
pub fn child_name(parent: &[u8], child: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        return child.to_vec();
    }
    let mut name = Vec::with_capacity(parent.len() + 1 + child.len());
    name.extend_from_slice(parent);
    if !parent.ends_with(b"/") {
        name.push(b'/');
    }
    name.extend_from_slice(child);
    name
}

/// Plans the directories of one incremental level against the previous one.
#[derive(Debug)]
pub struct Planner {
    previous: Snapshot,
    options: Options,
    since: Option<Timestamp>,
    renames: Vec<DirRename>,
}

impl Planner {
    pub fn new(previous: Snapshot, options: Options) -> Planner {
        let since = previous.dump_time();
        Planner {
            previous,
            options,
            since,
            renames: Vec::new(),
        }
    }

    /// The previous dump time, against which files are compared.
    pub fn since(&self) -> Option<Timestamp> {
        self.since
    }

    /// Decides about the directory `name` (its archive name, no trailing `/`) with identity
    /// `stat` and content `listing` (any order). `parent` is the plan of the directory it
    /// was found in, `None` for a directory named by the backup's includes.
    pub fn plan_directory(
        &mut self,
        name: &[u8],
        stat: DirStat,
        parent: Option<Children>,
        listing: Vec<ListedEntry>,
    ) -> Result<DirPlan, SnapshotError> {
        if name.contains(&0) {
            return Err(SnapshotError::invalid(format!(
                "directory name {:?} contains a NUL byte",
                String::from_utf8_lossy(name)
            )));
        }
        for entry in &listing {
            if entry.name.is_empty() || entry.name.contains(&0) || entry.name.contains(&b'/') {
                return Err(SnapshotError::invalid(format!(
                    "invalid file name {:?} in directory {:?}",
                    String::from_utf8_lossy(&entry.name),
                    String::from_utf8_lossy(name)
                )));
            }
        }

        let (status, mut children, previous) = self.classify(name, stat)?;
        if parent == Some(Children::All) {
            children = Children::All;
        }
        let mut previous = match children {
            Children::All => Vec::new(),
            Children::Changed => previous.unwrap_or_default(),
        };
        // GNU tar writes them sorted; a file from elsewhere might not be.
        sort_entries(&mut previous);
        let known = |file: &[u8]| {
            previous
                .binary_search_by(|entry| entry.name.as_slice().cmp(file))
                .is_ok()
        };

        let mut entries: Vec<Entry> = listing
            .into_iter()
            .map(|entry| {
                let code = match entry.state {
                    EntryState::Excluded | EntryState::Vanished => Code::Unchanged,
                    EntryState::Directory => Code::Directory,
                    EntryState::Other { mtime, ctime } => {
                        if children == Children::All
                            || !known(&entry.name)
                            || file_changed(mtime, ctime, self.since)
                        {
                            Code::Dumped
                        } else {
                            Code::Unchanged
                        }
                    }
                };
                Entry {
                    code,
                    name: entry.name,
                }
            })
            .collect();
        sort_entries(&mut entries);

        Ok(DirPlan {
            status,
            children,
            record: DirRecord {
                nfs: stat.on_nfs(),
                mtime: stat.mtime,
                dev: stat.dev,
                ino: stat.ino,
                name: name.to_vec(),
                entries,
            },
        })
    }

    /// Rules 1 and 2 of the module documentation: the status, the children to dump and the
    /// previous listing.
    fn classify(
        &mut self,
        name: &[u8],
        stat: DirStat,
    ) -> Result<(DirStatus, Children, Option<Vec<Entry>>), SnapshotError> {
        let by_name = self.previous.by_name(name)?;
        if let Some(record) = &by_name {
            let same_device = !self.options.check_device
                || (record.nfs && stat.on_nfs())
                || record.dev == stat.dev;
            if same_device && record.ino == stat.ino {
                return Ok((
                    DirStatus::Same,
                    Children::Changed,
                    by_name.map(|r| r.entries),
                ));
            }
        }
        match self.previous.by_identity(stat.dev, stat.ino)? {
            Some(source) => {
                let moved = self.renamed_path(&source.name);
                if moved == name {
                    Ok((DirStatus::MovedWithParent, Children::Changed, None))
                } else {
                    self.renames.push(DirRename {
                        to: name.to_vec(),
                        from: moved,
                        from_record: source.name,
                    });
                    Ok((DirStatus::Renamed, Children::Changed, Some(source.entries)))
                }
            }
            None if by_name.is_some() => Ok((DirStatus::Replaced, Children::All, None)),
            None => Ok((DirStatus::New, Children::All, None)),
        }
    }

    /// Where a directory of the previous level is now, given the renames found so far: the
    /// renames of its ancestors, applied in the order found.
    fn renamed_path(&self, old: &[u8]) -> Vec<u8> {
        let mut path = old.to_vec();
        for rename in &self.renames {
            let under = path.len() > rename.from.len()
                && path.starts_with(&rename.from)
                && path[rename.from.len()] == b'/';
            if under {
                let mut moved = rename.to.clone();
                moved.extend_from_slice(&path[rename.from.len()..]);
                path = moved;
            }
        }
        path
    }

    /// The renamed directories found so far, in walk order.
    #[cfg(test)]
    pub fn renames(&self) -> &[DirRename] {
        &self.renames
    }

    /// The rename records for the first directory's dumpdir, once the walk is complete.
    pub fn rename_ops(&self) -> Vec<RenameOp> {
        rename_ops(&self.renames)
    }
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::{encode_header, encode_record, Header};
    use super::*;
    use std::io::Cursor;

    const T0: Timestamp = Timestamp {
        sec: 1000,
        nsec: 500,
    };

    fn at(sec: i64, nsec: u32) -> Timestamp {
        Timestamp { sec, nsec }
    }

    fn rec(name: &str, ino: u64, entries: &[(Code, &str)]) -> DirRecord {
        DirRecord {
            nfs: false,
            mtime: at(1, 0),
            dev: 7,
            ino,
            name: name.into(),
            entries: entries
                .iter()
                .map(|&(code, name)| Entry {
                    code,
                    name: name.into(),
                })
                .collect(),
        }
    }

    fn previous(records: &[DirRecord]) -> Snapshot {
        let mut bytes = Vec::new();
        encode_header(&Header::new(T0), &mut bytes).unwrap();
        for record in records {
            encode_record(record, &mut bytes).unwrap();
        }
        Snapshot::from_reader(Cursor::new(bytes)).unwrap()
    }

    fn dir(dev: u64, ino: u64) -> DirStat {
        DirStat {
            dev,
            ino,
            mtime: at(2, 0),
        }
    }

    fn file(name: &str, mtime: Timestamp, ctime: Timestamp) -> ListedEntry {
        ListedEntry {
            name: name.into(),
            state: EntryState::Other { mtime, ctime },
        }
    }

    fn old(name: &str) -> ListedEntry {
        file(name, at(1, 0), at(1, 0))
    }

    fn subdir(name: &str) -> ListedEntry {
        ListedEntry {
            name: name.into(),
            state: EntryState::Directory,
        }
    }

    fn codes(plan: &DirPlan) -> String {
        let mut out = String::new();
        for entry in &plan.record.entries {
            out.push(char::from(entry.code.byte()));
            out.push_str(&String::from_utf8_lossy(&entry.name));
            out.push(' ');
        }
        out
    }

    #[test]
    fn files_are_dumped_when_new_or_changed_at_or_after_the_dump_time() {
        let mut planner = Planner::new(
            previous(&[rec(
                ".",
                1,
                &[
                    (Code::Dumped, "a"),
                    (Code::Unchanged, "b"),
                    (Code::Dumped, "c"),
                    (Code::Dumped, "d"),
                    (Code::Directory, "e"),
                    (Code::Dumped, "f"),
                    (Code::Dumped, "g"),
                ],
            )]),
            Options::default(),
        );
        let plan = planner
            .plan_directory(
                b".",
                dir(7, 1),
                None,
                vec![
                    old("a"),
                    file("b", T0, at(1, 0)),
                    file("c", at(1, 0), T0),
                    file("d", at(1000, 499), at(1000, 499)),
                    old("e"),
                    ListedEntry {
                        name: "f".into(),
                        state: EntryState::Excluded,
                    },
                    ListedEntry {
                        name: "g".into(),
                        state: EntryState::Vanished,
                    },
                    old("new"),
                    subdir("sub"),
                ],
            )
            .unwrap();
        assert_eq!(plan.status, DirStatus::Same);
        assert_eq!(plan.children, Children::Changed);
        assert_eq!(codes(&plan), "Na Yb Yc Nd Ne Nf Ng Ynew Dsub ");
        assert_eq!(plan.dumped().collect::<Vec<_>>(), [&b"b"[..], b"c", b"new"]);
        assert_eq!(plan.subdirectories().collect::<Vec<_>>(), [&b"sub"[..]]);
        assert_eq!(plan.record.dev, 7);
        assert_eq!(plan.record.mtime, at(2, 0));
        assert_eq!(
            plan.dumpdir(&[]).unwrap(),
            b"Na\0Yb\0Yc\0Nd\0Ne\0Nf\0Ng\0Ynew\0Dsub\0\0"
        );
    }

    #[test]
    fn new_and_replaced_directories_dump_everything_below_them() {
        let mut planner = Planner::new(
            previous(&[rec("./x", 5, &[(Code::Dumped, "a")])]),
            Options::default(),
        );
        let plan = planner
            .plan_directory(b"./n", dir(7, 9), None, vec![old("a"), subdir("s")])
            .unwrap();
        assert_eq!(
            (plan.status, plan.children),
            (DirStatus::New, Children::All)
        );
        assert_eq!(codes(&plan), "Ya Ds ");
        // A directory known from before, below a new one: everything too.
        let mut planner = Planner::new(
            previous(&[rec("./n/s", 9, &[(Code::Dumped, "a")])]),
            Options::default(),
        );
        let plan = planner
            .plan_directory(b"./n/s", dir(7, 9), Some(Children::All), vec![old("a")])
            .unwrap();
        assert_eq!(
            (plan.status, plan.children),
            (DirStatus::Same, Children::All)
        );
        assert_eq!(codes(&plan), "Ya ");

        let mut planner = Planner::new(
            previous(&[rec("./x", 5, &[(Code::Dumped, "a")])]),
            Options::default(),
        );
        let plan = planner
            .plan_directory(b"./x", dir(7, 6), None, vec![old("a")])
            .unwrap();
        assert_eq!(
            (plan.status, plan.children),
            (DirStatus::Replaced, Children::All)
        );
        assert_eq!(codes(&plan), "Ya ");
        assert_eq!(plan.record.ino, 6);
    }

    #[test]
    fn device_check_can_be_turned_off() {
        let snapshot = || previous(&[rec("./x", 5, &[(Code::Dumped, "a")])]);
        let mut checked = Planner::new(snapshot(), Options::default());
        let plan = checked
            .plan_directory(b"./x", dir(8, 5), None, vec![old("a")])
            .unwrap();
        assert_eq!(
            (plan.status, codes(&plan).as_str()),
            (DirStatus::Replaced, "Ya ")
        );

        let mut unchecked = Planner::new(
            snapshot(),
            Options {
                check_device: false,
            },
        );
        let plan = unchecked
            .plan_directory(b"./x", dir(8, 5), None, vec![old("a")])
            .unwrap();
        assert_eq!(
            (plan.status, codes(&plan).as_str()),
            (DirStatus::Same, "Na ")
        );
        // The record describes the directory as it is now.
        assert_eq!(plan.record.dev, 8);
    }

    #[test]
    fn renames_use_the_old_listing_and_carry_their_subdirectories() {
        let mut planner = Planner::new(
            previous(&[
                rec(
                    "./p",
                    5,
                    &[(Code::Unchanged, "g"), (Code::Directory, "sub")],
                ),
                rec("./p/sub", 6, &[(Code::Dumped, "f")]),
                rec("./p/sub/deep", 7, &[]),
            ]),
            Options::default(),
        );
        let q = planner
            .plan_directory(b"./q", dir(7, 5), None, vec![old("g"), subdir("sub")])
            .unwrap();
        assert_eq!(
            (q.status, codes(&q).as_str()),
            (DirStatus::Renamed, "Ng Dsub ")
        );
        let sub = planner
            .plan_directory(
                b"./q/sub",
                dir(7, 6),
                Some(q.children),
                vec![old("f"), subdir("deep2")],
            )
            .unwrap();
        assert_eq!(
            (sub.status, codes(&sub).as_str()),
            (DirStatus::MovedWithParent, "Ddeep2 Yf ")
        );
        // Renamed inside the renamed directory: the old name is seen through the first rename.
        let deep = planner
            .plan_directory(b"./q/sub/deep2", dir(7, 7), Some(sub.children), vec![])
            .unwrap();
        assert_eq!(deep.status, DirStatus::Renamed);
        assert_eq!(
            planner.renames(),
            [
                DirRename {
                    to: "./q".into(),
                    from: "./p".into(),
                    from_record: "./p".into()
                },
                DirRename {
                    to: "./q/sub/deep2".into(),
                    from: "./q/sub/deep".into(),
                    from_record: "./p/sub/deep".into()
                },
            ]
        );
        let ops = planner.rename_ops();
        let first = planner
            .plan_directory(b".", dir(7, 1), None, vec![subdir("q")])
            .unwrap()
            .dumpdir(&ops)
            .unwrap();
        assert_eq!(first, b"Dq\0R./p\0T./q\0R./q/sub/deep\0T./q/sub/deep2\0\0");
    }

    #[test]
    fn no_previous_snapshot_dumps_everything() {
        let mut planner = Planner::new(Snapshot::empty(), Options::default());
        assert_eq!(planner.since(), None);
        let plan = planner
            .plan_directory(b"d", dir(1, 2), None, vec![old("a")])
            .unwrap();
        assert_eq!(
            (plan.status, codes(&plan).as_str()),
            (DirStatus::New, "Ya ")
        );
        assert!(file_changed(at(0, 0), at(0, 0), None));
        assert!(!file_changed(at(0, 0), at(0, 0), Some(at(0, 1))));
    }

    #[test]
    fn bad_names_are_refused() {
        let mut planner = Planner::new(Snapshot::empty(), Options::default());
        assert!(planner
            .plan_directory(b"a\0", dir(1, 2), None, vec![])
            .is_err());
        for bad in ["", "a/b", "a\0"] {
            let err = planner
                .plan_directory(b"d", dir(1, 2), None, vec![old(bad)])
                .unwrap_err();
            assert!(err.to_string().contains("invalid file name"), "{err}");
        }
    }

    #[test]
    fn child_names() {
        assert_eq!(child_name(b".", b"a"), b"./a");
        assert_eq!(child_name(b"", b"a"), b"a");
        assert_eq!(child_name(b"d/", b"a"), b"d/a");
        assert_eq!(child_name(b"d", b"a"), b"d/a");
    }
}

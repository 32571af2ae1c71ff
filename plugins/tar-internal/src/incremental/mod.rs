//! Incremental backups in GNU tar's own terms, without running GNU tar.
//!
//! An incremental chain must stay interchangeable with GNU tar's `--listed-incremental`: GNU
//! tar must be able to continue a chain from a snapshot file we wrote, we must continue from
//! one GNU tar wrote, and `tar --listed-incremental=/dev/null -x` over the levels must restore
//! the tree. So this module reproduces three things GNU tar 1.34 does, each in its own file:
//!
//! * [`snapshot`]: the snapshot file, format 2 (the only one GNU tar writes since 1.16; its
//!   layout, reader and writer are the provider kit's, [`aa_provider_kit::snapshot_file`]), and
//!   [`Snapshot`](snapshot::Snapshot), the previous level's file indexed for lookups by directory name and by
//!   device and inode.
//! * [`dumpdir`]: the per-directory listing ("dumpdir") that GNU tar stores in the archive with
//!   each directory (a `D` member in the GNU format, the `GNU.dumpdir` pax record in the POSIX
//!   format) and in the snapshot file (encoded and parsed by [`aa_provider_kit::dumpdir`]), and
//!   the order of the rename records (`R`/`T`/`X`) that move renamed directories into place at
//!   extraction.
//! * [`detect`]: which files to dump and what each directory's new snapshot record and dumpdir
//!   are, decided as GNU tar decides them: [`Planner`].
//!
//! These three are pure or over `Read`/`Write` ([`index`] keeps the previous snapshot's
//! lookup tables in bounded memory). [`provider`] runs a level: it keeps the snapshot files in
//! the layout shared with `TarExternal`, reads `AA_NO_CHECK_DEVICE`, and makes the level in
//! two passes (described there and in [`detect`]): `scan`, the directory walk that plans every
//! directory and writes the new snapshot, then `store`, which writes the archive through the
//! full backup's `crate::backup`; `support` holds the name conversions both passes share.
//!
//! What GNU tar 1.34 does, established from its manual and by experiment (`tar
//! --listed-incremental` on trees with renames, deletions and type changes, and on
//! hand-edited snapshot files):
//!
//! * A non-directory is dumped when its name is not in the directory's previous dumpdir, or
//!   when its mtime *or ctime* is at or after the previous dump time (nanosecond precision;
//!   equal counts as changed). So `chmod`, `chown` and new hard links cause a dump too.
//! * A directory is the same directory as in the previous level when the record of the same
//!   name has the same inode and device; `--no-check-device` ([`Options::check_device`])
//!   compares the inode only, for volumes whose device numbers change between mounts. A
//!   directory without such a record is looked up by device and inode (always both): found
//!   under another name, it was renamed; not found, it is new and all its content is dumped.
//! * The renames of the whole run are appended to the dumpdir of the first directory of the
//!   archive, so that extraction moves the directories before it fills them.
//!
//! Where GNU tar 1.34 records something we consider wrong we deliberately differ, and only
//! in what the snapshot says, never in what gets dumped: a directory record always carries
//! the directory's current device and inode. GNU tar keeps the old ones after
//! `--no-check-device` and after a directory swap (`mv x t; mv y x; mv t y`), which makes its
//! next level report the swap again.

pub mod detect;
pub mod dumpdir;
pub mod index;
pub mod provider;
mod scan;
pub mod snapshot;
mod store;
mod support;

#[cfg(test)]
mod gnu_tests;

pub use detect::{Options, Planner};
pub use dumpdir::Code;
pub use snapshot::{DirRecord, SnapshotReader};

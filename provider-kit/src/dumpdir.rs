//! GNU tar dumpdirs: what a directory held at the dump, and how renamed directories move.
//!
//! GNU tar stores a dumpdir with every directory of an incremental archive: in the GNU
//! format as the content of a `D` member, in the POSIX format (ours) as the binary value of
//! the `GNU.dumpdir` pax record of an ordinary directory member. On extraction with
//! `--listed-incremental`/`--incremental`, it first applies the rename records, then
//! deletes from the directory on disk every file the dumpdir does not list, and every file
//! whose type contradicts it (a `D` entry that is no longer a directory, a `Y` entry that
//! now is one). A dumpdir is a sequence of NUL-terminated strings, each a one-byte code and
//! a name, ended by an empty string (a single extra NUL; an empty directory's dumpdir is
//! just `\0`):
//!
//! * `Y name`: a file stored in this archive;
//! * `N name`: a file present but not stored (unchanged since the previous level, excluded,
//!   or vanished while being dumped): extraction keeps it;
//! * `D name`: a subdirectory (it has its own member and dumpdir);
//! * `R old` `T new`: rename directory `old` to `new` (whole archive names, not names
//!   relative to this directory); an empty name stands for the temporary directory;
//! * `X dir`: create the temporary directory (`dir/tar.XXXXXX`) needed to swap directories
//!   in a rename cycle.
//!
//! GNU tar 1.34 lists the `Y`/`N`/`D` entries sorted by the bytes of their names (`strcmp`
//! order) and appends the renames of the whole dump to the dumpdir of the archive's first
//! directory only, so that they happen before anything else is extracted. A chain of
//! renames (`mv b c; mv a b`) is listed from its end, so that each target is free when its
//! rename runs (`R b T c`, `R a T b`); a cycle (`mv x t; mv y x; mv t y`) moves one member
//! aside first: `X parent-of-y`, `R y T ''`, `R x T y`, `R '' T x`. The snapshot file keeps
//! the same `Y`/`N`/`D` entries per directory, without renames.
//!
//! Which renames a dump found, and in which order they must run, is the planner's business
//! (`TarInternal`'s `incremental::dumpdir`); this module only encodes and parses them.

use crate::snapshot_file::SnapshotError;

/// The code of a dumpdir entry that describes a directory's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// `Y`: stored in this archive.
    Dumped,
    /// `N`: present, not stored.
    Unchanged,
    /// `D`: a subdirectory.
    Directory,
}

impl Code {
    /// The byte GNU tar writes for the code.
    pub fn byte(self) -> u8 {
        match self {
            Code::Dumped => b'Y',
            Code::Unchanged => b'N',
            Code::Directory => b'D',
        }
    }

    /// The code of `byte`, if it is one that may describe a directory's content.
    pub fn from_snapshot_byte(byte: u8) -> Option<Code> {
        match byte {
            b'Y' => Some(Code::Dumped),
            b'N' => Some(Code::Unchanged),
            b'D' => Some(Code::Directory),
            _ => None,
        }
    }
}

/// One `Y`/`N`/`D` entry: a name in the directory (one path component).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// What the name is.
    pub code: Code,
    /// The name in the directory.
    pub name: Vec<u8>,
}

impl Entry {
    /// Refuses names that GNU tar could not read back: empty, or holding NUL.
    pub fn check(&self) -> Result<(), SnapshotError> {
        if self.name.is_empty() || self.name.contains(&0) {
            return Err(SnapshotError::invalid(format!(
                "dumpdir entry name {:?} is empty or contains a NUL byte",
                String::from_utf8_lossy(&self.name)
            )));
        }
        Ok(())
    }
}

/// Sorts entries the way GNU tar lists them: by the bytes of their names.
pub fn sort_entries(entries: &mut [Entry]) {
    entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
}

/// One rename record of a dumpdir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenameOp {
    /// `X dir`: make the temporary directory of a rename cycle under `dir`.
    TempDir(Vec<u8>),
    /// `R from` `T to`; an empty name is the temporary directory.
    Rename {
        /// The whole archive name the directory has before the rename.
        from: Vec<u8>,
        /// The name it gets.
        to: Vec<u8>,
    },
}

/// The dumpdir bytes of a directory member: `entries` (sorted by the caller, see
/// [`sort_entries`]), then `renames` (only for the archive's first directory), then the
/// final NUL.
pub fn encode(entries: &[Entry], renames: &[RenameOp]) -> Result<Vec<u8>, SnapshotError> {
    let mut out = Vec::new();
    for entry in entries {
        entry.check()?;
        out.push(entry.code.byte());
        out.extend_from_slice(&entry.name);
        out.push(0);
    }
    let mut push = |code: u8, name: &[u8]| -> Result<(), SnapshotError> {
        if name.contains(&0) {
            return Err(SnapshotError::invalid(format!(
                "rename name {:?} contains a NUL byte",
                String::from_utf8_lossy(name)
            )));
        }
        out.push(code);
        out.extend_from_slice(name);
        out.push(0);
        Ok(())
    };
    for op in renames {
        match op {
            RenameOp::TempDir(dir) => push(b'X', dir)?,
            RenameOp::Rename { from, to } => {
                push(b'R', from)?;
                push(b'T', to)?;
            }
        }
    }
    out.push(0);
    Ok(out)
}

/// One item of a dumpdir read from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A `Y`/`N`/`D` entry.
    Entry(Entry),
    /// A rename record (`X`, or `R` with its `T`).
    Rename(RenameOp),
}

/// The problem a restore reports for a name that a level's dumpdir lists as unchanged (`N`)
/// while no earlier level of the chain holds it: the file is lost (it was unreadable when the
/// earlier level was made, or that archive was edited), and a clean restore would hide it.
pub const LOST_UNCHANGED: &str =
    "missing: this level lists it as unchanged, but no earlier level holds it";

/// Parses the dumpdir of an archive member, checking it as GNU tar does before it uses one
/// (every `R` followed by a `T`, empty rename names only with a temporary directory, one `X`
/// at a time). Bytes after the terminating empty string are ignored, as by GNU tar.
pub fn parse(bytes: &[u8]) -> Result<Vec<Item>, SnapshotError> {
    let mut items = Vec::new();
    let mut offset = 0usize;
    let mut pending_from: Option<(Vec<u8>, usize)> = None;
    let mut temp_dir = false;
    loop {
        let rest = &bytes[offset..];
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            return Err(SnapshotError::bad_dumpdir(
                "dumpdir is not terminated by an empty entry",
                bytes.len() as u64,
            ));
        };
        let at = offset as u64;
        let string = &rest[..nul];
        offset += nul + 1;
        let Some((&code, name)) = string.split_first() else {
            break;
        };
        if pending_from.is_some() && code != b'T' {
            return Err(SnapshotError::bad_dumpdir(
                format!(
                    "dumpdir 'R' followed by {:?} instead of 'T'",
                    char::from(code)
                ),
                at,
            ));
        }
        match code {
            b'X' => {
                if temp_dir {
                    return Err(SnapshotError::bad_dumpdir("dumpdir has a second 'X'", at));
                }
                temp_dir = true;
                items.push(Item::Rename(RenameOp::TempDir(name.to_vec())));
            }
            b'R' => {
                if name.is_empty() {
                    if !temp_dir {
                        return Err(SnapshotError::bad_dumpdir(
                            "dumpdir 'R' with an empty name but no 'X'",
                            at,
                        ));
                    }
                    // The temporary directory is being emptied: a later 'X' may follow.
                    temp_dir = false;
                }
                pending_from = Some((name.to_vec(), offset));
            }
            b'T' => {
                let Some((from, _)) = pending_from.take() else {
                    return Err(SnapshotError::bad_dumpdir(
                        "dumpdir 'T' not preceded by 'R'",
                        at,
                    ));
                };
                if name.is_empty() && !temp_dir {
                    return Err(SnapshotError::bad_dumpdir(
                        "dumpdir 'T' with an empty name but no 'X'",
                        at,
                    ));
                }
                items.push(Item::Rename(RenameOp::Rename {
                    from,
                    to: name.to_vec(),
                }));
            }
            _ => {
                let Some(code) = Code::from_snapshot_byte(code) else {
                    return Err(SnapshotError::bad_dumpdir(
                        format!("unknown dumpdir code {:?}", char::from(code)),
                        at,
                    ));
                };
                if name.is_empty() {
                    return Err(SnapshotError::bad_dumpdir(
                        "dumpdir entry without a file name",
                        at,
                    ));
                }
                items.push(Item::Entry(Entry {
                    code,
                    name: name.to_vec(),
                }));
            }
        }
    }
    if let Some((_, after)) = pending_from {
        return Err(SnapshotError::bad_dumpdir(
            "dumpdir ends after 'R' without its 'T'",
            after as u64,
        ));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_dumpdirs_are_refused_with_offsets() {
        let cases: &[(&[u8], u64, &str)] = &[
            (b"Ya\0", 3, "not terminated"),
            (b"Ya\0Rb\0Yc\0\0", 6, "instead of 'T'"),
            (b"Tb\0\0", 0, "not preceded"),
            (b"R\0Tb\0\0", 0, "empty name but no 'X'"),
            (b"Xa\0Xb\0\0", 3, "second 'X'"),
            (b"Qa\0\0", 0, "unknown dumpdir code 'Q'"),
            (b"Y\0\0", 0, "without a file name"),
            (b"Rb\0\0", 3, "without its 'T'"),
        ];
        for &(bytes, offset, text) in cases {
            let err = parse(bytes).unwrap_err();
            assert_eq!(err.offset(), offset, "{bytes:?}: {err}");
            assert!(err.to_string().contains(text), "{bytes:?}: {err}");
        }
    }
}

//! The roots record: which entries each level had at the top of the backup.
//!
//! A level's dumpdirs tell what each stored directory held, so deletions and renames below the
//! top are exact. Nothing records the top itself: the entries named by the include list sit
//! directly in the backup root, which no member describes, and an unchanged top-level file is
//! not stored in an increment. Without more, a restore cannot tell "deleted" from "unchanged"
//! there (GNU tar's own `-G` restore brings deleted top-level entries back).
//!
//! So every incremental archive `aa` writes starts with a POSIX global extended header (`g`)
//! whose one record is a `comment` (a keyword every reader must ignore: GNU tar and bsdtar
//! skip it silently, in any archive format) holding `aa-roots/1` and the archive's roots: the
//! include entries, relative to the backup root, that the level found. A restore deletes the
//! top-level entries of earlier levels that the record of a later level lacks.
//!
//! Encoding: the roots follow the tag, each after one space, with `%`, bytes below `!` and
//! bytes from DEL up written `%XX`, so the value is plain ASCII on one line.

use std::collections::HashSet;
use std::io::{self, Read};

use crate::beneath::{ancestors, components};

/// The tag that makes a `comment` a roots record, and its version.
pub const TAG: &str = "aa-roots/1";

const BLOCK: usize = 512;

/// The record for `roots`, as tar blocks (one header and its padded data) to write first in
/// an archive.
pub fn record_blocks<R: AsRef<[u8]>>(roots: &[R]) -> Vec<u8> {
    let mut value = TAG.as_bytes().to_vec();
    for root in roots {
        value.push(b' ');
        escape_into(root.as_ref(), &mut value);
    }
    let data = pax_record(b"comment", &value);
    let mut blocks = header(data.len() as u64).to_vec();
    blocks.extend_from_slice(&data);
    blocks.resize(blocks.len().div_ceil(BLOCK) * BLOCK, 0);
    blocks
}

/// The roots in the data of a global extended header, if its records include a roots record.
pub fn parse_pax_data(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        if len <= space || len > rest.len() {
            return None;
        }
        let record = &rest[space + 1..len];
        rest = &rest[len..];
        let record = record.strip_suffix(b"\n")?;
        if let Some(value) = record.strip_prefix(b"comment=") {
            if let Some(roots) = parse_value(value) {
                return Some(roots);
            }
        }
    }
    None
}

/// Reads the roots record at the start of an uncompressed tar stream: `Ok(None)` when the
/// first member is not one (an archive from GNU tar, or the original `aa`). Reads only the
/// first header and, when it is a global header, its data.
pub fn read_record(mut tar: impl Read) -> io::Result<Option<Vec<Vec<u8>>>> {
    let mut header = [0u8; BLOCK];
    if read_full(&mut tar, &mut header)? < BLOCK || header[156] != b'g' {
        return Ok(None);
    }
    let Some(size) = octal(&header[124..136]) else {
        return Ok(None);
    };
    // A record larger than this is not one `aa` wrote.
    if size > 256 << 20 {
        return Ok(None);
    }
    let mut data = vec![0u8; size as usize];
    if read_full(&mut tar, &mut data)? < data.len() {
        return Ok(None);
    }
    Ok(parse_pax_data(&data))
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn parse_value(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut words = value.split(|&b| b == b' ');
    if words.next()? != TAG.as_bytes() {
        return None;
    }
    words.map(unescape).collect()
}

fn escape_into(name: &[u8], out: &mut Vec<u8>) {
    for &b in name {
        if b == b'%' || b <= b' ' || b >= 0x7f {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

fn unescape(word: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(word.len());
    let mut i = 0;
    while i < word.len() {
        if word[i] == b'%' {
            let hex = std::str::from_utf8(word.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(word[i]);
            i += 1;
        }
    }
    Some(out)
}

/// One pax record, `"LEN keyword=value\n"`, where LEN counts the whole record, itself included.
fn pax_record(keyword: &[u8], value: &[u8]) -> Vec<u8> {
    let body = keyword.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut record = format!("{len} ").into_bytes();
    record.extend_from_slice(keyword);
    record.push(b'=');
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// A ustar header of type `g` for `size` bytes of pax data.
fn header(size: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let name = b"aa-roots";
    h[..name.len()].copy_from_slice(name);
    put_octal(&mut h[100..108], 0o644);
    put_octal(&mut h[108..116], 0);
    put_octal(&mut h[116..124], 0);
    put_octal(&mut h[124..136], size);
    put_octal(&mut h[136..148], 0);
    h[156] = b'g';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let field = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(field.as_bytes());
    h
}

/// Writes `value` as zero-padded octal digits followed by a NUL, filling `field`.
fn put_octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let digits = format!("{value:0width$o}");
    field[..width].copy_from_slice(digits.as_bytes());
    field[width] = 0;
}

fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    u64::from_str_radix(text, 8).ok()
}

/// What one level of a chain says about the top of the tree, for the restore rule: after
/// level k >= 1, the roots of level k-1 that level k drops are deleted.
///
/// Both providers apply the rule the same way; they differ only in how they learn a level's
/// record and directory members (TarInternal reads them while it extracts, TarExternal from
/// GNU tar's listing), so the rule lives here.
#[derive(Debug, Default)]
pub struct LevelTops {
    /// The roots record, if the archive has one.
    record: Option<Vec<Vec<u8>>>,
    /// Every directory member, as clean relative names (see [`crate::beneath::components`]).
    dirs: HashSet<Vec<u8>>,
}

/// A root of the previous level that a level drops.
#[derive(Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The root, a clean relative name, never empty.
    pub root: Vec<u8>,
    /// Whether it is dropped only if it is a directory in the target: the level has no record,
    /// so a vanished directory shows as a missing directory member, while a file root cannot
    /// be told from an unchanged one (kept: a documented limitation).
    pub only_if_directory: bool,
}

impl LevelTops {
    /// A level with roots record `record` (what [`read_record`] or [`parse_pax_data`] found)
    /// and directory members `dirs` (clean relative names).
    pub fn new(record: Option<Vec<Vec<u8>>>, dirs: HashSet<Vec<u8>>) -> Self {
        LevelTops { record, dirs }
    }

    /// The level's roots, as clean relative names: from the record (names that are not
    /// relative, or name the backup root itself, left out), else its top-most directory
    /// members.
    pub fn roots(&self) -> Vec<Vec<u8>> {
        if let Some(roots) = &self.record {
            return roots
                .iter()
                .filter_map(|r| components(r).ok().map(|c| c.join(&b'/')))
                .filter(|r| !r.is_empty())
                .collect();
        }
        self.dirs
            .iter()
            .filter(|d| !d.is_empty())
            .filter(|d| !ancestors(d).any(|a| self.dirs.contains(a)))
            .cloned()
            .collect()
    }

    /// The roots of `previous` (the level before this one) that this level drops, in the
    /// order of `previous.roots()`: with a record, those it lacks; without one, those it has
    /// no directory member of, if they are directories ([`Dropped::only_if_directory`]).
    pub fn dropped(&self, previous: &LevelTops) -> Vec<Dropped> {
        let now: HashSet<Vec<u8>> = match self.record {
            Some(_) => self.roots().into_iter().collect(),
            None => HashSet::new(),
        };
        previous
            .roots()
            .into_iter()
            .filter(|root| match self.record {
                Some(_) => !now.contains(root),
                None => !self.dirs.contains(root),
            })
            .map(|root| Dropped {
                root,
                only_if_directory: self.record.is_none(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Vec<Vec<u8>> {
        vec![
            b"a".to_vec(),
            b"dir with space".to_vec(),
            b"100%".to_vec(),
            b"new\nline".to_vec(),
            vec![0xff, b'x'],
            b"deep/er".to_vec(),
        ]
    }

    fn names(names: &[&str]) -> Vec<Vec<u8>> {
        names.iter().map(|n| n.as_bytes().to_vec()).collect()
    }

    fn sorted(mut names: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        names.sort();
        names
    }

    #[test]
    fn roots_come_from_the_record_else_the_top_most_directories() {
        let recorded = LevelTops::new(
            Some(names(&["a", "./b/", "c/d", "", ".", "/abs", "x/../y"])),
            names(&["zz"]).into_iter().collect(),
        );
        assert_eq!(recorded.roots(), names(&["a", "b", "c/d"]));
        let unrecorded = LevelTops::new(
            None,
            names(&["", "a", "a/b", "c/d", "c/d/e"])
                .into_iter()
                .collect(),
        );
        assert_eq!(sorted(unrecorded.roots()), names(&["a", "c/d"]));
    }

    #[test]
    fn dropped_roots_follow_the_record_or_the_directories() {
        let dirs = |n: &[&str]| names(n).into_iter().collect::<HashSet<_>>();
        let previous = LevelTops::new(Some(names(&["a", "b", "f"])), dirs(&["a"]));
        let with_record = LevelTops::new(Some(names(&["b"])), dirs(&[]));
        let dropped = with_record.dropped(&previous);
        assert_eq!(
            dropped,
            [
                Dropped {
                    root: b"a".to_vec(),
                    only_if_directory: false
                },
                Dropped {
                    root: b"f".to_vec(),
                    only_if_directory: false
                },
            ]
        );
        // Without a record: a root with a directory member stays, the others go if they are
        // directories.
        let without = LevelTops::new(None, dirs(&["b", "b/c"]));
        let dropped = without.dropped(&previous);
        assert_eq!(
            dropped,
            [
                Dropped {
                    root: b"a".to_vec(),
                    only_if_directory: true
                },
                Dropped {
                    root: b"f".to_vec(),
                    only_if_directory: true
                },
            ]
        );
        // Nothing dropped between equal levels.
        assert!(previous.dropped(&previous).is_empty());
        let unrecorded = LevelTops::new(None, dirs(&["a"]));
        assert!(unrecorded.dropped(&unrecorded).is_empty());
    }

    #[test]
    fn a_record_reads_back() {
        let blocks = record_blocks(&roots());
        assert_eq!(blocks.len() % BLOCK, 0);
        assert_eq!(read_record(&blocks[..]).unwrap(), Some(roots()));
        let none: [&[u8]; 0] = [];
        assert_eq!(
            read_record(&record_blocks(&none)[..]).unwrap(),
            Some(Vec::new())
        );
    }

    #[test]
    fn other_archives_have_none() {
        let mut plain = [0u8; BLOCK];
        plain[156] = b'0';
        assert_eq!(read_record(&plain[..]).unwrap(), None);
        assert_eq!(read_record(&[][..]).unwrap(), None);
        assert_eq!(parse_pax_data(b"12 path=abc\n"), None);
        assert_eq!(parse_pax_data(b"22 comment=other tag\n"), None);
        assert_eq!(parse_pax_data(b"garbage"), None);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for n in [0usize, 1, 5, 90, 95, 996, 1000] {
            let value = vec![b'x'; n];
            let record = pax_record(b"comment", &value);
            let space = record.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&record[..space])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(len, record.len(), "value of {n} bytes");
        }
    }

    #[test]
    fn gnu_tar_reads_past_the_record_silently() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("a"), "content").unwrap();
        let plain = dir.path().join("plain.tar");
        let status = std::process::Command::new("tar")
            .args(["--format=gnu", "-C"])
            .arg(&src)
            .arg("-cf")
            .arg(&plain)
            .arg("a")
            .status()
            .unwrap();
        assert!(status.success());
        let mut archive = record_blocks(&roots());
        archive.extend(std::fs::read(&plain).unwrap());
        let with_record = dir.path().join("with-record.tar");
        std::fs::write(&with_record, archive).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let output = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&with_record)
            .arg("-C")
            .arg(&out)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        assert!(output.stderr.is_empty(), "{output:?}");
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a")]);
        assert_eq!(std::fs::read(out.join("a")).unwrap(), b"content");
    }
}

//! The tar stream: POSIX.1-2001 (pax) members, as GNU tar's `--format=posix` writes them.
//!
//! Every member is a ustar header, preceded by a pax extended header (typeflag `x`) when a
//! value does not fit the ustar fields: a path over the 100 + 155 bytes that the `name` and
//! `prefix` fields can split, a link target over 100 bytes, numbers beyond the octal fields
//! (uid/gid >= 2^21, size >= 8 GiB, mtime outside 0..2^33), user or group names over 31
//! bytes, and a modification time with a sub-second part. Names are raw bytes in both places,
//! so names that are not UTF-8 survive. GNU long-name (`L`/`K`) and base-256 numeric
//! extensions are never used, so any POSIX reader can extract the archive.
//!
//! [`encode_header`] builds these blocks from a [`Member`] without any I/O, so the format is
//! unit-testable; the PAX records themselves are encoded in [`crate::pax`], and
//! [`crate::archive`] does the file system side.

use std::borrow::Cow;

use crate::pax::{pax_header_name, pax_record, pax_time};

pub(crate) const BLOCK: usize = 512;
/// GNU tar pads the archive to whole records of 20 blocks; do the same.
pub(crate) const RECORD: u64 = 20 * BLOCK as u64;
/// Largest value of the 11-digit octal `size` and `mtime` fields.
const MAX_OCTAL_11: u64 = 0o77777777777;

/// A modification time: seconds since the epoch and nanoseconds (0..1e9) after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mtime {
    pub secs: i64,
    pub nanos: u32,
}

/// What a member is, with the data that depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    Regular {
        size: u64,
    },
    Directory,
    Symlink {
        target: &'a [u8],
    },
    /// A further name of an already stored file.
    HardLink {
        target: &'a [u8],
    },
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
}

/// The metadata of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// Path relative to the root, without a trailing `/` (added here for directories).
    pub name: &'a [u8],
    pub kind: Kind<'a>,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Owner names; empty when unknown.
    pub uname: &'a [u8],
    pub gname: &'a [u8],
    pub mtime: Mtime,
}

/// Writes `value` as zero-padded octal with a terminating NUL; `false` if it does not fit.
fn put_octal(field: &mut [u8], value: u64) -> bool {
    let digits = field.len() - 1;
    if digits < 21 && value >> (3 * digits) != 0 {
        return false;
    }
    let mut rest = value;
    for digit in field[..digits].iter_mut().rev() {
        *digit = b'0' + (rest & 7) as u8;
        rest >>= 3;
    }
    field[digits] = 0;
    true
}

/// Copies `value` into a NUL-padded field; `false` if it is longer than the field.
fn put_bytes(field: &mut [u8], value: &[u8]) -> bool {
    if value.len() > field.len() {
        return false;
    }
    field[..value.len()].copy_from_slice(value);
    field[value.len()..].fill(0);
    true
}

/// Splits `path` into ustar `(prefix, name)` at a `/`, or `None` if no split fits.
fn split_ustar(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((&[], path));
    }
    // The prefix is at most 155 bytes; the longest fitting prefix leaves the shortest name.
    // A directory's trailing `/` cannot be the split point: the name would be empty.
    let limit = (path.len() - 1).min(156);
    let slash = path[..limit].iter().rposition(|&b| b == b'/')?;
    let (prefix, name) = (&path[..slash], &path[slash + 1..]);
    (!prefix.is_empty() && !name.is_empty() && name.len() <= 100).then_some((prefix, name))
}

/// A fresh ustar header with the name set, or `false` if the name does not fit.
fn ustar_header(path: &[u8]) -> (tar::Header, bool) {
    let mut header = tar::Header::new_ustar();
    let ustar = header.as_ustar_mut().expect("a ustar header");
    let fits = match split_ustar(path) {
        Some((prefix, name)) => {
            put_bytes(&mut ustar.prefix, prefix) && put_bytes(&mut ustar.name, name)
        }
        None => {
            // Readers that understand pax take the `path` record; others get a truncated name.
            put_bytes(&mut ustar.name, &path[..100]);
            false
        }
    };
    (header, fits)
}

/// [`encode_header`] into a new buffer, without extra records (for the tests).
#[cfg(test)]
pub fn header_blocks(member: &Member<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_header(member, &[], &mut out);
    out
}

/// Encodes into `out` (cleared first, so one buffer serves every member) the blocks that
/// precede the member's content: an optional pax extended header with its records, then the
/// ustar header. The content itself (for regular files) follows, padded to a whole block.
/// `extra` are pax records after the standard ones (GNU tar's `GNU.dumpdir` of incremental
/// archives); any makes an extended header.
pub fn encode_header(member: &Member<'_>, extra: &[(&str, &[u8])], out: &mut Vec<u8>) {
    out.clear();
    let path: Cow<'_, [u8]> = if member.kind == Kind::Directory {
        Cow::Owned([member.name, b"/"].concat())
    } else {
        Cow::Borrowed(member.name)
    };
    let mut records = Vec::new();
    let (mut header, name_fits) = ustar_header(&path);
    if !name_fits {
        pax_record(&mut records, "path", &path);
    }

    let (typeflag, size, link) = match member.kind {
        Kind::Regular { size } => (b'0', size, None),
        Kind::Directory => (b'5', 0, None),
        Kind::Symlink { target } => (b'2', 0, Some(target)),
        Kind::HardLink { target } => (b'1', 0, Some(target)),
        Kind::Fifo => (b'6', 0, None),
        Kind::CharDevice { .. } => (b'3', 0, None),
        Kind::BlockDevice { .. } => (b'4', 0, None),
    };

    let ustar = header.as_ustar_mut().expect("a ustar header");
    ustar.typeflag = [typeflag];
    put_octal(&mut ustar.mode, u64::from(member.mode & 0o7777));
    for (field, value, key) in [
        (&mut ustar.uid, member.uid, "uid"),
        (&mut ustar.gid, member.gid, "gid"),
    ] {
        if !put_octal(field, value) {
            put_octal(field, 0);
            pax_record(&mut records, key, value.to_string().as_bytes());
        }
    }
    if !put_octal(&mut ustar.size, size) {
        put_octal(&mut ustar.size, 0);
        pax_record(&mut records, "size", size.to_string().as_bytes());
    }
    let seconds_fit = u64::try_from(member.mtime.secs).is_ok_and(|s| s <= MAX_OCTAL_11);
    put_octal(
        &mut ustar.mtime,
        if seconds_fit {
            member.mtime.secs as u64
        } else {
            0
        },
    );
    if !seconds_fit || member.mtime.nanos != 0 {
        pax_record(
            &mut records,
            "mtime",
            pax_time(member.mtime.secs, member.mtime.nanos).as_bytes(),
        );
    }
    if let Some(target) = link {
        if !put_bytes(&mut ustar.linkname, target) {
            pax_record(&mut records, "linkpath", target);
        }
    }
    // The ustar owner names are NUL-terminated, so 31 bytes at most.
    for (field, value, key) in [
        (&mut ustar.uname, member.uname, "uname"),
        (&mut ustar.gname, member.gname, "gname"),
    ] {
        if value.len() < field.len() {
            put_bytes(field, value);
        } else {
            pax_record(&mut records, key, value);
        }
    }
    let (major, minor) = match member.kind {
        Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => (major, minor),
        _ => (0, 0),
    };
    // Linux device numbers have 12 + 20 bits, which always fit 7 octal digits.
    put_octal(&mut ustar.dev_major, u64::from(major));
    put_octal(&mut ustar.dev_minor, u64::from(minor));
    header.set_cksum();
    for (key, value) in extra {
        pax_record(&mut records, key, value);
    }

    if !records.is_empty() {
        let (mut pax, _) = ustar_header(&pax_header_name(member.name));
        let pax_ustar = pax.as_ustar_mut().expect("a ustar header");
        pax_ustar.typeflag = [b'x'];
        put_octal(&mut pax_ustar.mode, 0o644);
        put_octal(&mut pax_ustar.uid, 0);
        put_octal(&mut pax_ustar.gid, 0);
        put_octal(&mut pax_ustar.size, records.len() as u64);
        put_octal(
            &mut pax_ustar.mtime,
            if seconds_fit {
                member.mtime.secs as u64
            } else {
                0
            },
        );
        pax.set_cksum();
        out.extend_from_slice(pax.as_bytes());
        out.extend_from_slice(&records);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    out.extend_from_slice(header.as_bytes());
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::sys::split_dev;

    fn member<'a>(name: &'a [u8], kind: Kind<'a>) -> Member<'a> {
        Member {
            name,
            kind,
            mode: 0o644,
            uid: 1000,
            gid: 100,
            uname: b"user",
            gname: b"users",
            mtime: Mtime {
                secs: 1_700_000_000,
                nanos: 0,
            },
        }
    }

    /// The pax records of a header sequence (empty when there is no extended header).
    fn records(blocks: &[u8]) -> Vec<(String, Vec<u8>)> {
        if blocks[156] != b'x' {
            return Vec::new();
        }
        let h = tar::Header::from_byte_slice(&blocks[..BLOCK]);
        let size = h.size().unwrap() as usize;
        let data = &blocks[BLOCK..BLOCK + size];
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let space = rest.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&rest[..space])
                .unwrap()
                .parse()
                .unwrap();
            let record = &rest[space + 1..len - 1];
            assert_eq!(rest[len - 1], b'\n');
            let eq = record.iter().position(|&b| b == b'=').unwrap();
            out.push((
                String::from_utf8(record[..eq].to_vec()).unwrap(),
                record[eq + 1..].to_vec(),
            ));
            rest = &rest[len..];
        }
        out
    }

    fn last_header(blocks: &[u8]) -> &tar::Header {
        tar::Header::from_byte_slice(&blocks[blocks.len() - BLOCK..])
    }

    #[test]
    fn simple_member_is_plain_ustar() {
        let b = header_blocks(&member(b"dir/a", Kind::Regular { size: 5 }));
        assert_eq!(b.len(), BLOCK);
        let h = last_header(&b);
        assert_eq!(&h.as_bytes()[257..265], b"ustar\x0000");
        assert_eq!(h.path_bytes().as_ref(), b"dir/a");
        assert_eq!(h.size().unwrap(), 5);
        assert_eq!(h.mode().unwrap(), 0o644);
        assert_eq!(h.uid().unwrap(), 1000);
        assert_eq!(h.username_bytes(), Some(&b"user"[..]));
        assert_eq!(h.mtime().unwrap(), 1_700_000_000);
        assert_eq!(h.cksum().unwrap(), {
            let mut copy = tar::Header::from_byte_slice(h.as_bytes()).clone();
            copy.set_cksum();
            copy.cksum().unwrap()
        });
    }

    #[test]
    fn directory_gets_trailing_slash_and_type() {
        let mut m = member(b"a/dir", Kind::Directory);
        m.mtime.nanos = 1;
        let b = header_blocks(&m);
        let h = last_header(&b);
        assert_eq!(h.path_bytes().as_ref(), b"a/dir/");
        assert_eq!(h.entry_type(), tar::EntryType::Directory);
        let pax = tar::Header::from_byte_slice(&b[..BLOCK]);
        assert_eq!(pax.path_bytes().as_ref(), b"a/PaxHeaders/dir");
    }

    #[test]
    fn long_names_split_or_go_to_pax() {
        let split = [b"d".repeat(150), b"f".repeat(90)].join(&b'/');
        let b = header_blocks(&member(&split, Kind::Regular { size: 0 }));
        assert_eq!(b.len(), BLOCK, "fits prefix + name");
        assert_eq!(last_header(&b).path_bytes().as_ref(), &split[..]);

        let long = [b"d".repeat(200), b"f".repeat(120)].join(&b'/');
        let b = header_blocks(&member(&long, Kind::Regular { size: 0 }));
        assert_eq!(records(&b), [("path".to_string(), long.clone())]);
        let pax = tar::Header::from_byte_slice(&b[..BLOCK]);
        assert_eq!(pax.entry_type(), tar::EntryType::XHeader);
    }

    #[test]
    fn long_link_targets_and_raw_bytes_go_to_pax() {
        let target = b"\xff/".repeat(60);
        let b = header_blocks(&member(b"l\xe9", Kind::Symlink { target: &target }));
        assert_eq!(records(&b), [("linkpath".to_string(), target.clone())]);
        assert_eq!(last_header(&b).path_bytes().as_ref(), b"l\xe9");
    }

    #[test]
    fn big_numbers_and_fractional_times_go_to_pax() {
        let mut m = member(b"big", Kind::Regular { size: 9 << 30 });
        m.uid = 3_000_000;
        m.gname = b"a-very-long-group-name-over-31-bytes";
        m.mtime = Mtime {
            secs: 1_700_000_000,
            nanos: 120_000_000,
        };
        let b = header_blocks(&m);
        let r = records(&b);
        let get = |k: &str| r.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(get("uid").unwrap(), b"3000000");
        assert_eq!(get("size").unwrap(), (9u64 << 30).to_string().as_bytes());
        assert_eq!(get("mtime").unwrap(), b"1700000000.12");
        assert_eq!(get("gname").unwrap(), m.gname);
        assert_eq!(get("gid"), None);
        assert_eq!(get("uname"), None);
        let h = last_header(&b);
        assert_eq!(h.mtime().unwrap(), 1_700_000_000);
        assert_eq!(h.gid().unwrap(), 100);
    }

    #[test]
    fn devices_carry_their_numbers() {
        let b = header_blocks(&member(b"null", Kind::CharDevice { major: 1, minor: 3 }));
        let h = last_header(&b);
        assert_eq!(h.entry_type(), tar::EntryType::Char);
        assert_eq!(h.device_major().unwrap(), Some(1));
        assert_eq!(h.device_minor().unwrap(), Some(3));
        assert_eq!(split_dev(libc::makedev(259, 70000)), (259, 70000));
    }

    /// GNU tar reads the size of a file over 8 GiB from the pax record. The archive is sparse:
    /// the content is a hole, and tar seeks over it when it only lists.
    #[test]
    fn gnu_tar_lists_a_member_over_8_gib() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.tar");
        let size: u64 = (8 << 30) + 12345;
        let mut m = member(b"huge", Kind::Regular { size });
        m.uid = 5_000_000;
        m.mtime = Mtime {
            secs: 1_600_000_000,
            nanos: 500_000_000,
        };
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&header_blocks(&m)).unwrap();
        let end = f.metadata().unwrap().len() + size.next_multiple_of(BLOCK as u64);
        f.set_len(end + 2 * BLOCK as u64).unwrap();
        drop(f);
        let out = std::process::Command::new("tar")
            .args(["--numeric-owner", "--full-time", "-tvf"])
            .arg(&path)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(&format!("5000000/100 {size} ")), "{text}");
        assert!(text.contains("2020-09-13 12:26:40.5 huge"), "{text}");
    }
}

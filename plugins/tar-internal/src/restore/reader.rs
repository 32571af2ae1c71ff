//! Tar members out of a tar stream: ustar and GNU headers, GNU long names (`L`, `K`), pax
//! extended (`x`) and global (`g`) headers, GNU dumpdirs (`D` members and `GNU.dumpdir`
//! records) and GNU tar's sparse formats (old GNU `S` members; pax 0.0, 0.1 and 1.0).
//!
//! The reader only parses; what the member's data becomes is the caller's business, which
//! consumes it with [`Reader::data`] / [`Reader::skip_data`] before asking for the next member.

use std::io;

use super::decompress::Stream;
use super::fields::{check_sum, field, number, pax_records, BLOCK};

/// What a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
    /// A type this restore does not extract (multivolume continuations, volume labels...).
    Unsupported(u8),
}

/// The data regions of a sparse file.
#[derive(Debug, Clone, Default)]
pub struct Sparse {
    /// The file's size, holes included.
    pub real_size: u64,
    /// `(offset, length)` of each data region, in the order the data follows.
    pub map: Vec<(u64, u64)>,
    /// Format 1.0: the map is at the start of the data, not yet read.
    pub map_in_data: bool,
}

/// One member, with everything its headers said.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub mtime: (i64, u32),
    pub atime: Option<(i64, u32)>,
    pub link: Vec<u8>,
    pub dev: (u32, u32),
    /// Bytes of data following the header in the archive.
    pub size: u64,
    pub dumpdir: Option<Vec<u8>>,
    pub sparse: Option<Sparse>,
}

/// A damaged or cut archive, at `offset` of the tar stream.
pub fn damaged(offset: u64, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("damaged archive at byte {offset} of the tar stream: {what}"),
    )
}

fn truncated(offset: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the archive ends unexpectedly at byte {offset} of the tar stream"),
    )
}

/// Reads members one after another.
pub struct Reader<'s> {
    stream: &'s mut Stream,
    /// Data bytes of the current member not yet consumed, and its padding.
    remaining: u64,
    padding: u64,
    /// The roots of the `aa` roots record, if the archive has one.
    pub roots: Option<Vec<Vec<u8>>>,
    ended: bool,
}

#[derive(Default)]
struct Extended {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    mtime: Option<(i64, u32)>,
    atime: Option<(i64, u32)>,
    uid: Option<u64>,
    gid: Option<u64>,
    uname: Option<Vec<u8>>,
    gname: Option<Vec<u8>>,
    dumpdir: Option<Vec<u8>>,
    sparse_name: Option<Vec<u8>>,
    sparse_size: Option<u64>,
    sparse_major: Option<u64>,
    sparse_map: Vec<u64>,
}

impl<'s> Reader<'s> {
    pub fn new(stream: &'s mut Stream) -> Reader<'s> {
        Reader {
            stream,
            remaining: 0,
            padding: 0,
            roots: None,
            ended: false,
        }
    }

    pub fn offset(&self) -> u64 {
        self.stream.offset()
    }

    fn block(&mut self, out: &mut [u8; BLOCK]) -> io::Result<bool> {
        let at = self.stream.offset();
        match self.stream.read_full(out)? {
            0 => Ok(false),
            BLOCK => Ok(true),
            _ => Err(truncated(at)),
        }
    }

    /// The whole data of a meta member (long name, pax records, dumpdir), of `size` bytes.
    fn meta_data(&mut self, size: u64) -> io::Result<Vec<u8>> {
        if size > 1 << 30 {
            return Err(damaged(self.offset(), "a meta member larger than 1 GiB"));
        }
        let mut data = vec![0u8; size as usize];
        let at = self.stream.offset();
        if self.stream.read_full(&mut data)? < data.len() {
            return Err(truncated(at));
        }
        self.skip_exact(padding(size))?;
        Ok(data)
    }

    fn skip_exact(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let at = self.stream.offset();
            let got = self.stream.take(n.min(usize::MAX as u64) as usize)?.len();
            if got == 0 {
                return Err(truncated(at));
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// The next member, `None` after the end-of-archive block (or a clean end of the stream).
    pub fn next(&mut self) -> io::Result<Option<Member>> {
        self.skip_data()?;
        if self.ended {
            return Ok(None);
        }
        let mut ext = Extended::default();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut header = [0u8; BLOCK];
        loop {
            let at = self.stream.offset();
            if !self.block(&mut header)? {
                self.ended = true;
                return Ok(None);
            }
            if header.iter().all(|&b| b == 0) {
                self.ended = true;
                // The rest (a second zero block, the record's padding) is read by the caller's
                // drain.
                return Ok(None);
            }
            let stored =
                number(&header[148..156]).ok_or_else(|| damaged(at, "bad checksum field"))?;
            check_sum(&header, stored).map_err(|_| damaged(at, "header checksum mismatch"))?;
            let size = number(&header[124..136]).ok_or_else(|| damaged(at, "bad size field"))?;
            match header[156] {
                b'x' => parse_pax(&self.meta_data(size)?, &mut ext, at)?,
                b'g' => {
                    let data = self.meta_data(size)?;
                    if let Some(roots) = aa_provider_kit::roots::parse_pax_data(&data) {
                        self.roots = Some(roots);
                    }
                }
                b'L' => long_name = Some(trim_nul(self.meta_data(size)?)),
                b'K' => long_link = Some(trim_nul(self.meta_data(size)?)),
                _ => {
                    let member = self.member(&header, size, ext, long_name, long_link, at)?;
                    return Ok(Some(member));
                }
            }
        }
    }

    fn member(
        &mut self,
        h: &[u8; BLOCK],
        size: u64,
        ext: Extended,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
        at: u64,
    ) -> io::Result<Member> {
        let bad = |what: &str| damaged(at, format!("bad {what} field"));
        let posix = &h[257..263] == b"ustar\0";
        let mut name = field(&h[0..100]).to_vec();
        if posix && h[345] != 0 {
            let mut full = field(&h[345..500]).to_vec();
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
        let name = ext
            .sparse_name
            .clone()
            .or(ext.path)
            .or(long_name)
            .unwrap_or(name);
        let typeflag = h[156];
        let kind = match typeflag {
            b'0' | 0 | b'7' | b'S' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' | b'D' => Kind::Directory,
            b'6' => Kind::Fifo,
            other => Kind::Unsupported(other),
        };
        let size = ext.size.unwrap_or(size);
        let mut member = Member {
            name,
            kind,
            mode: number(&h[100..108]).ok_or_else(|| bad("mode"))? as u32 & 0o7777,
            uid: ext
                .uid
                .map_or_else(|| number(&h[108..116]), Some)
                .ok_or_else(|| bad("uid"))?,
            gid: ext
                .gid
                .map_or_else(|| number(&h[116..124]), Some)
                .ok_or_else(|| bad("gid"))?,
            uname: ext.uname.unwrap_or_else(|| field(&h[265..297]).to_vec()),
            gname: ext.gname.unwrap_or_else(|| field(&h[297..329]).to_vec()),
            mtime: match ext.mtime {
                Some(t) => t,
                None => (signed_number(&h[136..148]).ok_or_else(|| bad("mtime"))?, 0),
            },
            atime: ext.atime,
            link: ext
                .linkpath
                .or(long_link)
                .unwrap_or_else(|| field(&h[157..257]).to_vec()),
            dev: (0, 0),
            size,
            dumpdir: ext.dumpdir,
            sparse: None,
        };
        if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
            member.dev = (
                number(&h[329..337]).unwrap_or(0) as u32,
                number(&h[337..345]).unwrap_or(0) as u32,
            );
        }
        if typeflag == b'D' {
            // GNU format: the dumpdir is the member's data.
            member.dumpdir = Some(self.meta_data(size)?);
            member.size = 0;
        } else if typeflag == b'S' {
            member.sparse = Some(self.old_gnu_sparse(h, at)?);
        } else if ext.sparse_major == Some(1) {
            member.sparse = Some(Sparse {
                real_size: ext.sparse_size.unwrap_or(0),
                map: Vec::new(),
                map_in_data: true,
            });
        } else if let Some(real_size) = ext.sparse_size {
            if ext.sparse_map.len() % 2 != 0 {
                return Err(damaged(at, "odd GNU.sparse map"));
            }
            member.sparse = Some(Sparse {
                real_size,
                map: ext.sparse_map.chunks(2).map(|p| (p[0], p[1])).collect(),
                map_in_data: false,
            });
        }
        self.remaining = member.size;
        self.padding = padding(member.size);
        Ok(member)
    }

    fn old_gnu_sparse(&mut self, h: &[u8; BLOCK], at: u64) -> io::Result<Sparse> {
        let mut sparse = Sparse {
            real_size: number(&h[483..495]).ok_or_else(|| damaged(at, "bad sparse size"))?,
            ..Sparse::default()
        };
        let entries = |block: &[u8], count: usize, out: &mut Vec<(u64, u64)>| {
            for i in 0..count {
                let e = &block[i * 24..i * 24 + 24];
                if e[0] == 0 {
                    break;
                }
                out.push((number(&e[..12]).unwrap_or(0), number(&e[12..]).unwrap_or(0)));
            }
        };
        entries(&h[386..482], 4, &mut sparse.map);
        let mut extended = h[482] != 0;
        let mut block = [0u8; BLOCK];
        while extended {
            if !self.block(&mut block)? {
                return Err(truncated(self.offset()));
            }
            entries(&block[..504], 21, &mut sparse.map);
            extended = block[504] != 0;
        }
        Ok(sparse)
    }

    /// Reads the map at the start of a sparse 1.0 member's data.
    pub fn sparse_map(&mut self, sparse: &mut Sparse) -> io::Result<()> {
        let at = self.offset();
        let mut numbers = Vec::new();
        let mut text = Vec::new();
        let mut block = [0u8; BLOCK];
        let mut count: Option<u64> = None;
        loop {
            if self.remaining < BLOCK as u64 || self.stream.read_full(&mut block)? < BLOCK {
                return Err(damaged(at, "cut sparse map"));
            }
            self.remaining -= BLOCK as u64;
            for &b in &block {
                if b == b'\n' {
                    let n = std::str::from_utf8(&text)
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                        .ok_or_else(|| damaged(at, "bad sparse map"))?;
                    text.clear();
                    match count {
                        None => count = Some(n),
                        Some(_) => numbers.push(n),
                    }
                } else {
                    text.push(b);
                }
                if count.is_some_and(|c| numbers.len() as u64 == c * 2) {
                    break;
                }
            }
            if let Some(c) = count {
                if c > 1 << 24 {
                    return Err(damaged(at, "sparse map too large"));
                }
                if numbers.len() as u64 == c * 2 {
                    break;
                }
            }
        }
        sparse.map = numbers.chunks(2).map(|p| (p[0], p[1])).collect();
        sparse.map_in_data = false;
        Ok(())
    }

    /// Up to `max` bytes of the current member's data; empty once it is all read.
    pub fn data(&mut self, max: usize) -> io::Result<&[u8]> {
        if self.remaining == 0 {
            return Ok(&[]);
        }
        let at = self.stream.offset();
        let want = (self.remaining.min(max as u64)) as usize;
        let chunk = self.stream.take(want)?;
        if chunk.is_empty() {
            return Err(truncated(at));
        }
        self.remaining -= chunk.len() as u64;
        Ok(chunk)
    }

    /// Skips what is left of the current member's data and its padding.
    pub fn skip_data(&mut self) -> io::Result<()> {
        let n = self.remaining + self.padding;
        self.remaining = 0;
        self.padding = 0;
        self.skip_exact(n)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    if let Some(end) = v.iter().position(|&b| b == 0) {
        v.truncate(end);
    }
    v
}

/// A time field, which GNU tar may write in negative base-256.
fn signed_number(f: &[u8]) -> Option<i64> {
    if f.first() == Some(&0xff) {
        let mut v: i64 = -1;
        for &b in &f[1..] {
            v = v.checked_mul(256)? | i64::from(b);
        }
        return Some(v);
    }
    number(f).map(|v| v as i64)
}

fn pax_time(value: &[u8]) -> Option<(i64, u32)> {
    let text = std::str::from_utf8(value).ok()?;
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = int.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    while digits.len() < 9 {
        digits.push('0');
    }
    let nanos: u32 = digits.parse().ok()?;
    if text.starts_with('-') && nanos > 0 {
        Some((secs.checked_sub(1)?, 1_000_000_000 - nanos))
    } else {
        Some((secs, nanos))
    }
}

fn parse_pax(data: &[u8], ext: &mut Extended, at: u64) -> io::Result<()> {
    let bad = || damaged(at, "bad pax extended header");
    for record in pax_records(data) {
        let (key, value) = record.map_err(|_| bad())?;
        let num = || {
            std::str::from_utf8(value)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
        };
        match key {
            b"path" => ext.path = Some(value.to_vec()),
            b"linkpath" => ext.linkpath = Some(value.to_vec()),
            b"size" => ext.size = Some(num().ok_or_else(bad)?),
            b"mtime" => ext.mtime = Some(pax_time(value).ok_or_else(bad)?),
            b"atime" => ext.atime = pax_time(value),
            b"uid" => ext.uid = Some(num().ok_or_else(bad)?),
            b"gid" => ext.gid = Some(num().ok_or_else(bad)?),
            b"uname" => ext.uname = Some(value.to_vec()),
            b"gname" => ext.gname = Some(value.to_vec()),
            b"GNU.dumpdir" => ext.dumpdir = Some(value.to_vec()),
            b"GNU.sparse.name" => ext.sparse_name = Some(value.to_vec()),
            b"GNU.sparse.major" => ext.sparse_major = num(),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => ext.sparse_size = num(),
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
                ext.sparse_map.push(num().ok_or_else(bad)?)
            }
            b"GNU.sparse.map" => {
                for n in value.split(|&b| b == b',') {
                    let n = std::str::from_utf8(n)
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                        .ok_or_else(bad)?;
                    ext.sparse_map.push(n);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_encoding() {
        assert_eq!(signed_number(&[0xff, 0xff, 0xff, 0xfe]), Some(-2));
        assert_eq!(pax_time(b"5.25"), Some((5, 250_000_000)));
        assert_eq!(pax_time(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(pax_time(b"7"), Some((7, 0)));
    }
}

//! The tar structure of a decompressed stream, checked block by block without extracting:
//! every header's checksum and fields, every member's data present to its last block, and
//! the end-of-archive blocks. Reads ustar, GNU (`L`/`K` long names, old sparse `S`, dumpdir
//! `D`) and pax (`x` records override the header; `g` is skipped) members, which covers what
//! `TarInternal`, GNU tar and the original `aa` write.
//!
//! What it cannot check: the content of a member of an uncompressed archive. Tar has no
//! checksum over file data, so a changed byte there is invisible unless a compression layer
//! below has one.

use std::io::{self, Read};

use crate::restore::fields::{check_sum, field, number, octal, pax_records, BLOCK};

/// The largest metadata member (pax header, GNU long name) read into memory; a larger size
/// is damage, not an archive any tar writes.
const MAX_METADATA: u64 = 64 << 20;

/// Where and why the structure is wrong.
#[derive(Debug)]
pub struct Fault {
    /// Offset in the tar stream (decompressed) where the fault lies.
    pub offset: u64,
    /// The member it lies in or follows, as the archive names it.
    pub member: Option<Vec<u8>>,
    pub what: Problem,
}

#[derive(Debug)]
pub enum Problem {
    /// The stream below (the decompressor, or the file) failed: a checksum, corrupt data.
    Read(io::Error),
    /// The tar structure itself is wrong.
    Structure(String),
}

/// How a structurally sound archive ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// Two zero blocks, as tar writes.
    Marker,
    /// One zero block, then the end of the stream (GNU tar warns "A lone zero block").
    LoneZeroBlock,
    /// The stream ended right after a member: a truncation at a member boundary, or an
    /// archive written without the blocks.
    Missing,
}

/// One member, as reported: its name and content bytes (0 for anything but a regular file).
pub struct Member<'a> {
    pub name: &'a [u8],
    pub size: u64,
}

/// The pending overrides a pax `x` header or a GNU `L`/`K` member gives the next member.
#[derive(Default)]
struct Next {
    path: Option<Vec<u8>>,
    size: Option<u64>,
    real_size: Option<u64>,
}

/// Reads blocks with the offset they start at, telling a clean end from a short one.
struct Blocks<R> {
    inner: R,
    offset: u64,
    /// The data of the last metadata member.
    scratch: Vec<u8>,
    /// Where member data is read to.
    buf: Vec<u8>,
}

impl<R: Read> Blocks<R> {
    /// Reads into `buf` until it is full or the stream ends; returns the bytes read.
    fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, Problem> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.offset += filled as u64;
                    return Err(Problem::Read(e));
                }
            }
        }
        self.offset += filled as u64;
        Ok(filled)
    }

    /// Fills a block: `Ok(false)` when the stream ended before its first byte, a structure
    /// fault when it ended inside.
    fn fill(&mut self, buf: &mut [u8; BLOCK]) -> Result<bool, Problem> {
        match self.read_up_to(buf)? {
            0 => Ok(false),
            BLOCK => Ok(true),
            n => Err(Problem::Structure(format!(
                "the stream ends {n} bytes into a 512-byte block"
            ))),
        }
    }

    /// Reads `size` bytes of member data and its padding to the block; the data is kept in
    /// `scratch` when `keep` (metadata members), else discarded.
    fn data(&mut self, size: u64, keep: bool) -> Result<(), Problem> {
        let mut buf = std::mem::take(&mut self.buf);
        let read = self.data_into(&mut buf, size, keep);
        self.buf = buf;
        read
    }

    fn data_into(&mut self, buf: &mut [u8], size: u64, keep: bool) -> Result<(), Problem> {
        let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        self.scratch.clear();
        let mut remaining = padded;
        while remaining > 0 {
            let n = remaining.min(buf.len() as u64) as usize;
            let got = self.read_up_to(&mut buf[..n])?;
            if got < n {
                return Err(Problem::Structure(format!(
                    "the archive ends inside a member, {} of its {padded} bytes missing",
                    remaining - got as u64
                )));
            }
            if keep {
                self.scratch.extend_from_slice(&buf[..n]);
            }
            remaining -= n as u64;
        }
        if keep {
            self.scratch.truncate(size as usize);
        }
        Ok(())
    }
}

/// Walks the tar stream `input` to its end-of-archive blocks, calling `each` per member
/// (metadata members excluded), then reads the rest of `input` so that a decompressor below
/// reaches and checks its end. After a fault, `input` is left where it stopped.
pub fn walk<R: Read>(input: &mut R, mut each: impl FnMut(Member<'_>)) -> Result<Ending, Fault> {
    let mut blocks = Blocks {
        inner: input,
        offset: 0,
        scratch: Vec::new(),
        buf: vec![0; 64 * 1024],
    };
    let mut last: Option<Vec<u8>> = None;
    let fault = |blocks: &Blocks<_>, last: &Option<Vec<u8>>, what| Fault {
        offset: blocks.offset,
        member: last.clone(),
        what,
    };
    let mut next = Next::default();
    let mut header = [0u8; BLOCK];
    let ending = loop {
        let at = blocks.offset;
        match blocks.fill(&mut header) {
            Ok(true) => {}
            Ok(false) => break Ending::Missing,
            Err(what) => return Err(fault(&blocks, &last, what)),
        }
        if header.iter().all(|&b| b == 0) {
            match blocks.fill(&mut header) {
                Ok(true) if header.iter().all(|&b| b == 0) => break Ending::Marker,
                Ok(true) => {
                    return Err(Fault {
                        offset: at,
                        member: last,
                        what: Problem::Structure(
                            "a zero block in the middle of the archive".to_string(),
                        ),
                    })
                }
                Ok(false) => break Ending::LoneZeroBlock,
                Err(what) => return Err(fault(&blocks, &last, what)),
            }
        }
        let parsed = parse_header(&header).map_err(|what| Fault {
            offset: at,
            member: last.clone(),
            what: Problem::Structure(what),
        })?;
        let size = next.size.take().unwrap_or(parsed.size);
        let name = next.path.take().unwrap_or(parsed.name);
        let keep = matches!(parsed.kind, b'x' | b'g' | b'L' | b'K');
        if keep && size > MAX_METADATA {
            return Err(Fault {
                offset: at,
                member: last,
                what: Problem::Structure(format!(
                    "a metadata header (type '{}') claiming {size} bytes",
                    parsed.kind.escape_ascii()
                )),
            });
        }
        // Old GNU sparse members continue their map in extension blocks outside the size.
        if parsed.kind == b'S' && header[482] != 0 {
            loop {
                match blocks.fill(&mut header) {
                    Ok(true) if header[504] != 0 => {}
                    Ok(true) => break,
                    Ok(false) => {
                        let what = Problem::Structure(
                            "the archive ends inside a sparse member's map".to_string(),
                        );
                        return Err(fault(&blocks, &Some(name), what));
                    }
                    Err(what) => return Err(fault(&blocks, &Some(name), what)),
                }
            }
        }
        if let Err(what) = blocks.data(size, keep) {
            return Err(fault(&blocks, &Some(name), what));
        }
        match parsed.kind {
            b'x' => {
                next = pax_overrides(&blocks.scratch).map_err(|what| Fault {
                    offset: at,
                    member: last.clone(),
                    what: Problem::Structure(what),
                })?;
            }
            b'L' => next.path = Some(field(&blocks.scratch).to_vec()),
            // Global records, long link targets, volume labels: nothing to report.
            b'g' | b'K' | b'V' => {}
            kind => {
                let content = match kind {
                    b'0' | 0 | b'7' => next.real_size.take().unwrap_or(size),
                    b'S' => parsed.real_size,
                    _ => 0,
                };
                each(Member {
                    name: &name,
                    size: content,
                });
                next = Next::default();
                last = Some(name);
            }
        }
    };
    // The record padding after the marker, and the decompressor's own end (its checksums).
    if let Err(e) = io::copy(&mut blocks.inner, &mut io::sink()) {
        return Err(fault(&blocks, &last, Problem::Read(e)));
    }
    Ok(ending)
}

struct Header {
    name: Vec<u8>,
    kind: u8,
    size: u64,
    /// The size of the file an old GNU sparse member stands for.
    real_size: u64,
}

fn parse_header(h: &[u8; BLOCK]) -> Result<Header, String> {
    let stored = octal(&h[148..156]).ok_or("a header with an unreadable checksum field")?;
    check_sum(h, stored).map_err(|computed| {
        format!("a damaged header: checksum {stored:o} recorded, {computed:o} computed")
    })?;
    let size = number(&h[124..136]).ok_or("a header with an unreadable size field")?;
    let kind = h[156];
    let mut name = field(&h[..100]).to_vec();
    if &h[257..263] == b"ustar\0" && h[345] != 0 {
        let mut full = field(&h[345..500]).to_vec();
        full.push(b'/');
        full.extend_from_slice(&name);
        name = full;
    }
    let real_size = if kind == b'S' {
        number(&h[483..495]).ok_or("a sparse header with an unreadable real size")?
    } else {
        0
    };
    Ok(Header {
        name,
        kind,
        size,
        real_size,
    })
}

/// The records of a pax `x` header that change how the next member is read and named.
fn pax_overrides(data: &[u8]) -> Result<Next, String> {
    let mut next = Next::default();
    let bad = || "a damaged pax extended header".to_string();
    let mut sparse_name = None;
    // Trailing NULs pad some writers' records.
    let end = data
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    for record in pax_records(&data[..end]) {
        let (key, value) = record.map_err(|_| bad())?;
        let number = || {
            std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| format!("a pax record {} that is no number", lossy(key)))
        };
        match key {
            b"path" => next.path = Some(value.to_vec()),
            b"size" => next.size = Some(number()?),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => next.real_size = Some(number()?),
            b"GNU.sparse.name" => sparse_name = Some(value.to_vec()),
            _ => {}
        }
    }
    if sparse_name.is_some() {
        next.path = sparse_name;
    }
    Ok(next)
}

pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn members(bytes: &[u8]) -> Result<(Vec<(String, u64)>, Ending), Fault> {
        let mut seen = Vec::new();
        let ending = walk(&mut &bytes[..], |m| seen.push((lossy(m.name), m.size)))?;
        Ok((seen, ending))
    }

    #[test]
    fn a_sound_archive_lists_its_members() {
        let bytes = archive(&[("a", b"hello"), ("d/b", &[7u8; 1000])]);
        let (seen, ending) = members(&bytes).unwrap();
        assert_eq!(seen, [("a".to_string(), 5), ("d/b".to_string(), 1000)]);
        assert_eq!(ending, Ending::Marker);
    }

    #[test]
    fn damage_is_found_with_where() {
        let bytes = archive(&[("a", b"hello"), ("b", b"world")]);
        // A flipped byte in the second header.
        let mut flipped = bytes.clone();
        flipped[1024 + 10] ^= 1;
        let fault = members(&flipped).unwrap_err();
        assert_eq!(fault.offset, 1024);
        assert_eq!(fault.member.as_deref(), Some(&b"a"[..]));
        assert!(matches!(fault.what, Problem::Structure(ref s) if s.contains("checksum")));
        // Cut inside the first member's data.
        let fault = members(&bytes[..600]).unwrap_err();
        assert_eq!(fault.member.as_deref(), Some(&b"a"[..]));
        // Cut inside a block.
        assert!(members(&bytes[..700]).is_err());
        // Cut at a member boundary: sound members, but no marker.
        let (seen, ending) = members(&bytes[..2048]).unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(ending, Ending::Missing);
        let (_, ending) = members(&bytes[..2560]).unwrap();
        assert_eq!(ending, Ending::LoneZeroBlock);
    }

    #[test]
    fn an_implausible_metadata_size_is_refused_before_it_is_read() {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_size(1 << 40);
        header.set_cksum();
        let fault = members(header.as_bytes()).unwrap_err();
        assert!(
            matches!(fault.what, Problem::Structure(ref s) if s.contains("metadata")),
            "{fault:?}"
        );
    }
}

//! Decoding what a tar stream holds, below the level of members: header fields (NUL-ended
//! strings, octal and GNU base-256 numbers), the header checksum, and the records of pax
//! extended headers.
//!
//! Shared by the restore's [`Reader`](super::reader::Reader) and verify's structure walk
//! (`crate::verify`), which read members differently (verify streams any size without
//! keeping it and reports where a fault lies, the restore parses everything a member says)
//! but must decode the bytes alike. Errors are left to the callers, which word them.

/// The size of a tar block.
pub const BLOCK: usize = 512;

/// A NUL-terminated (or full) header field.
pub fn field(f: &[u8]) -> &[u8] {
    match f.iter().position(|&b| b == 0) {
        Some(end) => &f[..end],
        None => f,
    }
}

/// An octal field (spaces and NULs around it; empty is 0).
pub fn octal(f: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(f).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// An octal field, or GNU's base-256 form for large values (high bit of the first byte set).
/// A negative base-256 value (the next bit set too, as GNU tar reads it) is `None`.
pub fn number(f: &[u8]) -> Option<u64> {
    if f.first().is_some_and(|&b| b & 0x80 != 0) {
        if f[0] & 0x40 != 0 {
            return None;
        }
        let mut v: u64 = u64::from(f[0] & 0x3f);
        for &b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    octal(f)
}

/// Checks the header checksum against `stored` (the checksum field, read by the caller): the
/// sum of the header's bytes with the field counted as spaces, as unsigned bytes or, as some
/// old tars summed them, signed ones (GNU tar accepts both). `Err` holds the unsigned sum.
pub fn check_sum(h: &[u8; BLOCK], stored: u64) -> Result<(), u64> {
    let byte = |(i, &b): (usize, &u8)| if (148..156).contains(&i) { b' ' } else { b };
    let unsigned: u64 = h.iter().enumerate().map(byte).map(u64::from).sum();
    let signed: i64 = h
        .iter()
        .enumerate()
        .map(byte)
        .map(|b| i64::from(b as i8))
        .sum();
    if stored == unsigned || i64::try_from(stored).ok() == Some(signed) {
        Ok(())
    } else {
        Err(unsigned)
    }
}

/// A malformed pax record: where parsing stops.
#[derive(Debug, PartialEq, Eq)]
pub struct BadRecord;

/// The `(keyword, value)` records of pax extended header data, `"<len> <key>=<value>\n"`
/// each, where `<len>` counts the whole record. A malformed record ends the iteration with
/// [`BadRecord`].
pub fn pax_records(data: &[u8]) -> PaxRecords<'_> {
    PaxRecords { rest: data }
}

/// See [`pax_records`].
pub struct PaxRecords<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for PaxRecords<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), BadRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let record = self.split();
        if record.is_err() {
            self.rest = &[];
        }
        Some(record)
    }
}

impl<'a> PaxRecords<'a> {
    fn split(&mut self) -> Result<(&'a [u8], &'a [u8]), BadRecord> {
        let rest = self.rest;
        let space = rest.iter().position(|&b| b == b' ').ok_or(BadRecord)?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(BadRecord)?;
        if len <= space + 1 || len > rest.len() {
            return Err(BadRecord);
        }
        let record = rest[space + 1..len].strip_suffix(b"\n").ok_or(BadRecord)?;
        self.rest = &rest[len..];
        let eq = record.iter().position(|&b| b == b'=').ok_or(BadRecord)?;
        Ok((&record[..eq], &record[eq + 1..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_every_encoding() {
        assert_eq!(number(b"0000644\0"), Some(0o644));
        assert_eq!(number(b"   12 \0"), Some(0o12));
        assert_eq!(number(b"\0\0\0\0"), Some(0));
        assert_eq!(number(&[0x80, 0, 0, 1, 0]), Some(256));
        // Negative base-256 values are no sizes or ids.
        assert_eq!(number(&[0xff, 0xff, 0xff, 0xfe]), None);
        assert_eq!(number(&[0xc0, 0, 0, 1]), None);
        assert_eq!(octal(b"12x"), None);
        assert_eq!(field(b"ab\0cd"), b"ab");
        assert_eq!(field(b"abcd"), b"abcd");
    }

    #[test]
    fn checksums_of_signed_and_unsigned_bytes() {
        let mut h = [0u8; BLOCK];
        h[0] = b'a';
        assert_eq!(check_sum(&h, u64::from(b'a') + 8 * 32), Ok(()));
        assert_eq!(check_sum(&h, 1), Err(u64::from(b'a') + 8 * 32));
        // A byte above 127 counts as negative for old tars.
        h[0] = 0xff;
        assert_eq!(check_sum(&h, 8 * 32 - 1), Ok(()));
        assert_eq!(check_sum(&h, 8 * 32 + 255), Ok(()));
    }

    #[test]
    fn pax_records_split_and_stop_at_damage() {
        let data = b"9 path=a\n12 size=123\n";
        let records: Vec<_> = pax_records(data).collect();
        assert_eq!(
            records,
            [
                Ok((&b"path"[..], &b"a"[..])),
                Ok((&b"size"[..], &b"123"[..]))
            ]
        );
        for bad in [
            &b"9 path=a"[..],
            b"x path=a\n",
            b"9 patha\n\n",
            b"99 path=a\n",
            b"2 \n",
        ] {
            let records: Vec<_> = pax_records(bad).collect();
            assert_eq!(records.last(), Some(&Err(BadRecord)), "{bad:?}");
        }
        assert_eq!(pax_records(b"9 pathxa\n9 path=a\n").count(), 1);
    }
}

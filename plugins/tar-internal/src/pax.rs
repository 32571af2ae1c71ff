//! PAX extended header records (POSIX.1-2001): the `key=value` lines that carry what the
//! ustar fields cannot hold, and GNU tar's name for the extended header member.
//!
//! Pure byte building, no I/O; [`crate::header`] decides which records a member needs.

/// Appends one pax record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
pub(crate) fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // space, '=' and newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A timestamp as a pax decimal: `secs[.fraction]`, trailing zeros of the fraction dropped.
pub(crate) fn pax_time(secs: i64, nanos: u32) -> String {
    if nanos == 0 {
        return secs.to_string();
    }
    // -1.25 s is stored by the OS as secs = -2, nanos = 750_000_000.
    let (sign, secs, nanos) = if secs < 0 {
        ("-", (secs + 1).unsigned_abs(), 1_000_000_000 - nanos)
    } else {
        ("", secs.unsigned_abs(), nanos)
    };
    let fraction = format!("{nanos:09}");
    format!("{sign}{secs}.{}", fraction.trim_end_matches('0'))
}

/// The name of the extended header of `name`: `<dir>/PaxHeaders/<base>`, as GNU tar names it.
pub(crate) fn pax_header_name(name: &[u8]) -> Vec<u8> {
    let (dir, base) = match name.iter().rposition(|&b| b == b'/') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (&b"."[..], name),
    };
    let mut out = Vec::with_capacity(dir.len() + base.len() + 12);
    out.extend_from_slice(dir);
    out.extend_from_slice(b"/PaxHeaders/");
    out.extend_from_slice(base);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_time_handles_negative_and_fractions() {
        let t = pax_time;
        assert_eq!(t(5, 0), "5");
        assert_eq!(t(5, 1), "5.000000001");
        assert_eq!(t(-2, 750_000_000), "-1.25");
        assert_eq!(t(-1, 500_000_000), "-0.5");
        assert_eq!(t(-3, 0), "-3");
    }

    #[test]
    fn pax_record_length_counts_itself() {
        for value_len in [0, 1, 5, 6, 7, 90, 91, 92, 93, 994, 995, 996, 997] {
            let mut out = Vec::new();
            pax_record(&mut out, "path", &b"x".repeat(value_len));
            let space = out.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&out[..space]).unwrap().parse().unwrap();
            assert_eq!(len, out.len(), "value length {value_len}");
        }
    }

    #[test]
    fn pax_header_names_follow_gnu_tar() {
        assert_eq!(pax_header_name(b"a/b/c"), b"a/b/PaxHeaders/c");
        assert_eq!(pax_header_name(b"c"), b"./PaxHeaders/c");
    }
}

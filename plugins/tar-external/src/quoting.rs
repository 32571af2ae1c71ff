//! Decoding of the names GNU tar prints.
//!
//! tar is run with `--quoting-style=escape`: every byte that is not printable in the C locale
//! (newline, non-ASCII, control characters) is written as a C escape, a backslash is doubled and,
//! in diagnostics, a colon is written as `\:`. Each printed name is therefore exactly one line
//! and, in stderr messages, the `": "` separators outside names are unambiguous. `literal`
//! quoting would not survive a newline in a name, so the escapes are decoded here instead.

/// Reverses tar's escape quoting, giving the name's original bytes.
pub fn unescape(quoted: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(quoted.len());
    let mut i = 0;
    while i < quoted.len() {
        let b = quoted[i];
        if b != b'\\' || i + 1 == quoted.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let next = quoted[i + 1];
        i += 2;
        let simple = match next {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'0'..=b'7' => None,
            // `\\`, `\:` and anything unexpected: the escaped character itself.
            other => Some(other),
        };
        if let Some(byte) = simple {
            out.push(byte);
            continue;
        }
        // Up to three octal digits.
        let mut value = u32::from(next - b'0');
        let mut digits = 1;
        while digits < 3 && i < quoted.len() && (b'0'..=b'7').contains(&quoted[i]) {
            value = value * 8 + u32::from(quoted[i] - b'0');
            i += 1;
            digits += 1;
        }
        out.push((value & 0xff) as u8);
    }
    out
}

/// Splits a diagnostic into its `": "`-separated fields, ignoring escaped colons.
pub fn split_fields(line: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'\\' => i += 2,
            b':' if line.get(i + 1) == Some(&b' ') => {
                fields.push(&line[start..i]);
                i += 2;
                start = i;
            }
            _ => i += 1,
        }
    }
    fields.push(&line[start.min(line.len())..]);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_tar_prints() {
        assert_eq!(unescape(br"a\nb"), b"a\nb");
        assert_eq!(unescape(br"caf\351"), b"caf\xe9");
        assert_eq!(unescape(br"back\\slash"), br"back\slash");
        assert_eq!(unescape(br"tab\tx\a\b\f\r\v"), b"tab\tx\x07\x08\x0c\r\x0b");
        assert_eq!(unescape(br"no\: such"), b"no: such");
        assert_eq!(unescape(br"\3031"), b"\xc31");
        assert_eq!(unescape(br"\0"), b"\0");
        assert_eq!(unescape(b"plain name/"), b"plain name/");
        assert_eq!(unescape(b"trailing\\"), b"trailing\\");
    }

    #[test]
    fn splits_on_unescaped_separators_only() {
        assert_eq!(
            split_fields(br"no\: such: Cannot stat: No such file or directory"),
            vec![
                &br"no\: such"[..],
                b"Cannot stat",
                b"No such file or directory"
            ]
        );
        assert_eq!(
            split_fields(br"a\\: Cannot open: x"),
            vec![&br"a\\"[..], b"Cannot open", b"x"]
        );
        assert_eq!(split_fields(b"one field"), vec![&b"one field"[..]]);
        assert_eq!(split_fields(b""), vec![&b""[..]]);
        assert_eq!(split_fields(b"ends\\"), vec![&b"ends\\"[..]]);
    }
}

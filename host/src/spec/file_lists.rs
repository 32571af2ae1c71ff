//! `include-files` and `exclude-files`: splitting a value into names the way the original did
//! (`"quoted names"` may contain spaces, other names end at white space) and normalising each
//! so that it stays below the archive root. Wildcards are left for [`super::glob`].

use std::collections::BTreeSet;

use crate::values::is_py_space;

/// Splits an `include-files`/`exclude-files` value into normalised names, sorted and
/// without duplicates.
///
/// Tokens are `"..."` (may hold spaces, not line breaks) or runs of non-space characters;
/// the text between the first and the last `"` of a token is taken when there is any. Each
/// name is normalised (`a/./b/../c` is `a/c`) and leading `/` and `..` components are
/// dropped; a name that is left empty (`/`, `..`) stands for the whole root, `.`.
pub(super) fn parse_file_list(value: &str) -> Vec<String> {
    let chars: Vec<char> = value.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        // `".+?"`: the closing quote is the first one after at least one character, and
        // the quoted text cannot cross a line break.
        let quoted_end = if chars[i] == '"' {
            (i + 1..chars.len())
                .take_while(|&j| chars[j] != '\n')
                .find(|&j| j >= i + 2 && chars[j] == '"')
        } else {
            None
        };
        let end = match quoted_end {
            Some(j) => j + 1,
            None if is_py_space(chars[i]) => {
                i += 1;
                continue;
            }
            None => i + chars[i..].iter().take_while(|&&c| !is_py_space(c)).count(),
        };
        let token = &chars[i..end];
        i = end;
        let first = token.iter().position(|&c| c == '"');
        let last = token.iter().rposition(|&c| c == '"');
        let name: String = match (first, last) {
            (Some(f), Some(l)) if l >= f + 2 => token[f + 1..l].iter().collect(),
            _ => token.iter().collect(),
        };
        names.insert(normalize_list_name(&name));
    }
    names.into_iter().collect()
}
fn normalize_list_name(name: &str) -> String {
    let normal = normpath(name.as_bytes());
    let normal = String::from_utf8(normal).unwrap_or_default();
    let kept: Vec<&str> = normal
        .split('/')
        .skip_while(|c| c.is_empty() || *c == "..")
        .collect();
    if kept.is_empty() {
        ".".to_string()
    } else {
        kept.join("/")
    }
}

/// Python's `posixpath.normpath`: collapses `//`, `.` and `name/..` without touching the
/// file system.
pub(super) fn normpath(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let leading = path.iter().take_while(|&&b| b == b'/').count();
    // POSIX lets exactly two leading slashes mean something else, so Python keeps them.
    let prefix: &[u8] = match leading {
        0 => b"",
        2 => b"//",
        _ => b"/",
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if prefix.is_empty() {
                    parts.push(comp);
                }
            }
            _ => parts.push(comp),
        }
    }
    let mut out = prefix.to_vec();
    out.extend(parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::testing::strings;

    #[test]
    fn file_list_tokens() {
        assert_eq!(parse_file_list(""), Vec::<String>::new());
        assert_eq!(parse_file_list("  b a\tb \n c "), strings(&["a", "b", "c"]));
        assert_eq!(
            parse_file_list("\"my docs\" x\"y z\""),
            strings(&["my docs", "x\"y", "z\""])
        );
        // Quotes inside a word: the text between the first and the last quote is kept.
        assert_eq!(parse_file_list("a\"b\"c"), strings(&["b"]));
        assert_eq!(parse_file_list("\"abc"), strings(&["\"abc"]));
        assert_eq!(parse_file_list("\"\""), strings(&["\"\""]));
        assert_eq!(parse_file_list("\"\"a\""), strings(&["\"a"]));
        // A quoted name cannot span lines.
        assert_eq!(parse_file_list("\"a\nb\""), strings(&["\"a", "b\""]));
    }

    #[test]
    fn file_list_normalisation() {
        assert_eq!(
            parse_file_list("/etc ../../up //two ./a/./b/ c/../d x/.. /"),
            strings(&[".", "a/b", "d", "etc", "two", "up"])
        );
        assert_eq!(parse_file_list("a/../../b"), strings(&["b"]));
        assert_eq!(parse_file_list("*/.* [ab]*"), strings(&["*/.*", "[ab]*"]));
    }

    #[test]
    fn normpath_matches_python() {
        let cases = [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//", "//"),
            ("///", "/"),
            ("//a//b/", "//a/b"),
            ("/../a", "/a"),
            ("../a/../..", "../.."),
            ("a/./b/../../..", ".."),
        ];
        for (input, expected) in cases {
            assert_eq!(normpath(input.as_bytes()), expected.as_bytes(), "{input}");
        }
    }
}

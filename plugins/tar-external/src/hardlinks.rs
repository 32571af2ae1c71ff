//! The hard links of a level and their targets, from GNU tar's verbose listing, so that a hard
//! link to a file outside the target can be refused before GNU tar makes it.
//!
//! GNU tar makes a hard link with `link(2)`, which follows symbolic links on the way to the
//! link's target: a link to `evil/file`, `evil` being a symbolic link out of the target that a
//! previous level made, would bring an outside file into the target, where writing to it
//! changes the original. (Absolute and `..` targets GNU tar rewrites itself; they are refused
//! here all the same.) Only needed once the target may hold such links: from level 1 on, or
//! in a target restored over.

use std::collections::HashSet;
use std::path::Path;

use aa_abi::ProviderError;

use crate::quoting::unescape;
use crate::restore::listing;

const LINK_TO: &[u8] = b" link to ";

/// A hard link member's name and its target, raw.
pub type HardLink = (Vec<u8>, Vec<u8>);

/// The hard link members of `archive` (raw names, each in `names`) with their targets.
pub fn hard_links(
    tar: &Path,
    archive: &Path,
    names: &HashSet<Vec<u8>>,
) -> Result<Vec<HardLink>, ProviderError> {
    let stdout = listing(tar, archive, &["--verbose", "--numeric-owner"])?;
    Ok(stdout
        .split(|&b| b == b'\n')
        .filter(|line| line.first() == Some(&b'h'))
        .filter_map(|line| parse_line(line, names))
        .collect())
}

/// `hrw-r--r-- 0/0 0 2026-12-02 20:38 NAME link to TARGET`: the name is what follows the five
/// fields; a name holding " link to " itself is told apart by being a listed member.
fn parse_line(line: &[u8], names: &HashSet<Vec<u8>>) -> Option<HardLink> {
    let rest = member_name(line)?;
    let mut from = 0;
    while let Some(at) = rest[from..]
        .windows(LINK_TO.len())
        .position(|w| w == LINK_TO)
    {
        let at = from + at;
        let name = unescape(&rest[..at]);
        if names.contains(&name) {
            return Some((name, unescape(&rest[at + LINK_TO.len()..])));
        }
        from = at + 1;
    }
    None
}

/// The name in a verbose listing line: what follows its five fields.
fn member_name(line: &[u8]) -> Option<&[u8]> {
    let mut rest = line;
    for _ in 0..5 {
        let start = rest.iter().position(|&b| b != b' ')?;
        rest = &rest[start..];
        let end = rest.iter().position(|&b| b == b' ')?;
        rest = &rest[end..];
    }
    rest.strip_prefix(b" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_targets() {
        let names: HashSet<Vec<u8>> = [b"x".to_vec(), b"a link to b".to_vec()].into();
        assert_eq!(
            parse_line(
                b"hrw-r--r-- 0/0               0 2026-12-02 20:38 x link to evil/secret",
                &names
            ),
            Some((b"x".to_vec(), b"evil/secret".to_vec()))
        );
        assert_eq!(
            parse_line(
                br"hrw-r--r-- 0/0 0 2026-12-02 20:38 a link to b link to new\nline",
                &names
            ),
            Some((b"a link to b".to_vec(), b"new\nline".to_vec()))
        );
        assert_eq!(
            parse_line(b"hrw-r--r-- 0/0 0 2026-12-02 20:38 y link to z", &names),
            None
        );
    }
}

//! The dumpdirs of a level, from GNU tar's doubly verbose incremental listing
//! (`tar -t -vv --listed-incremental=/dev/null`), which prints after each directory member the
//! entries its dumpdir records (`Y name`, `N name`, `D name`, then rename records), ended by
//! an empty line.
//!
//! A restore of some paths only extracts the members within them, so GNU tar never applies
//! the dumpdir of the directory holding a selected path: when a later level deletes (or
//! renames away) that path itself, only this tells.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use aa_abi::ProviderError;
use aa_provider_kit::beneath::components;

use crate::quoting::unescape;
use crate::restore::listing;

/// Directory member (clean name) -> the names its dumpdir lists.
pub type Dumpdirs = HashMap<Vec<u8>, HashSet<Vec<u8>>>;

/// The dumpdirs of every directory member of `archive`.
pub fn dumpdirs(tar: &Path, archive: &Path) -> Result<Dumpdirs, ProviderError> {
    let stdout = listing(
        tar,
        archive,
        &[
            "--verbose",
            "--verbose",
            "--listed-incremental=/dev/null",
            "--numeric-owner",
        ],
    )?;
    Ok(parse(&stdout))
}

fn parse(listing: &[u8]) -> Dumpdirs {
    let mut dirs = Dumpdirs::new();
    let mut current: Option<Vec<u8>> = None;
    for line in listing.split(|&b| b == b'\n') {
        // A dumpdir entry: one code letter, a space, the name (member lines start with a
        // mode string, whose second character is never a space).
        if let (Some(dir), [code, b' ', name @ ..]) = (&current, line) {
            if matches!(code, b'Y' | b'N' | b'D') {
                if let Some(entries) = dirs.get_mut(dir) {
                    entries.insert(unescape(name));
                }
            }
            continue;
        }
        current = None;
        if line.first() != Some(&b'd') {
            continue;
        }
        if let Some(name) = member_name(line) {
            if let Ok(parts) = components(&unescape(name)) {
                let clean = parts.join(&b'/');
                dirs.insert(clean.clone(), HashSet::new());
                current = Some(clean);
            }
        }
    }
    dirs
}

/// The name in a verbose listing line: what follows its five fields.
pub fn member_name(line: &[u8]) -> Option<&[u8]> {
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
    fn entries_per_directory() {
        let listing = b"drwxr-xr-x 0/0 5 2026-12-02 20:44 d/\nY f2\nD sub\nR d/old\nT d/new\n\n\
-rw-r--r-- 0/0 2 2026-12-02 20:44 d/f2\ndrwxr-xr-x 0/0 0 2026-12-02 20:44 d/sub/\n\n\
drwxr-xr-x 0/0 0 2026-12-02 20:44 sp ace/\nN a\\nb\n";
        let dirs = parse(listing);
        assert_eq!(dirs.len(), 3);
        assert_eq!(
            dirs[&b"d".to_vec()],
            [b"f2".to_vec(), b"sub".to_vec()].into()
        );
        assert!(dirs[&b"d/sub".to_vec()].is_empty());
        assert_eq!(dirs[&b"sp ace".to_vec()], [b"a\nb".to_vec()].into());
    }
}

//! What `only` selects at each level of a chain. A path selected in the last level may have
//! had another name before: a directory renamed at level k holds, under its new name, files
//! that only an earlier level stores, under the old one. So the selection of level k-1 is that
//! of level k plus the names its paths had before level k's renames, worked back through the
//! renames in reverse order. The renames are read ahead from each level's first directory
//! member, where GNU tar (and TarInternal, after it) put all of a level's renames.

use aa_abi::capability::ChainArchive;
use aa_abi::ProviderError;
use aa_provider_kit::beneath::components;
use aa_provider_kit::dumpdir::{self, Item, RenameOp};
use aa_provider_kit::fatal;

use super::decompress::Stream;
use super::reader::{Kind, Reader};

/// One rename, `(from, to)`.
pub type Rename = (Vec<u8>, Vec<u8>);

/// The name that stands for a rename cycle's temporary directory (no member can have it).
pub const TEMP: &[u8] = b"\0temp";

pub fn within(rel: &[u8], base: &[u8]) -> bool {
    rel == base || (rel.starts_with(base) && rel.get(base.len()) == Some(&b'/'))
}

/// The renames of `archive`, `(from, to)` in order, as clean names ([`TEMP`] for the
/// temporary directory); names that are not clean are left out (the restore refuses them).
pub fn renames_of(archive: &ChainArchive) -> Result<Vec<Rename>, ProviderError> {
    let file = std::fs::File::open(archive.path()).map_err(|e| fatal(archive.path(), &e))?;
    let mut stream =
        Stream::spawn(file, archive.backup_type).map_err(|e| fatal(archive.path(), &e))?;
    let mut reader = Reader::new(&mut stream);
    let clean = |name: &[u8]| -> Option<Vec<u8>> {
        if name.is_empty() {
            return Some(TEMP.to_vec());
        }
        components(name).ok().map(|c| c.join(&b'/'))
    };
    while let Some(member) = reader.next().map_err(|e| fatal(archive.path(), &e))? {
        if member.kind != Kind::Directory {
            continue;
        }
        let Some(bytes) = member.dumpdir else {
            continue;
        };
        let Ok(items) = dumpdir::parse(&bytes) else {
            return Ok(Vec::new());
        };
        return Ok(items
            .into_iter()
            .filter_map(|item| match item {
                Item::Rename(RenameOp::Rename { from, to }) => Some((clean(&from)?, clean(&to)?)),
                _ => None,
            })
            .collect());
    }
    Ok(Vec::new())
}

/// The selection of every level, `0..=N`, from the one of the last level and the renames of
/// each level (`renames[0]` is level 0's, always empty).
pub fn per_level(only: &[Vec<u8>], renames: &[Vec<Rename>]) -> Vec<Vec<Vec<u8>>> {
    let mut levels = vec![only.to_vec()];
    for level_renames in renames.iter().skip(1).rev() {
        let mut set = levels.last().expect("one at least").clone();
        for (from, to) in level_renames.iter().rev() {
            let mut added = Vec::new();
            for path in &set {
                if within(path, to) {
                    let mut old = from.clone();
                    old.extend_from_slice(&path[to.len()..]);
                    added.push(old);
                } else if within(to, path) {
                    added.push(from.clone());
                }
            }
            for path in added {
                if !set.contains(&path) {
                    set.push(path);
                }
            }
        }
        levels.push(set);
    }
    levels.reverse();
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Vec<Vec<u8>> {
        names.iter().map(|n| n.as_bytes().to_vec()).collect()
    }

    fn r(from: &str, to: &str) -> Rename {
        (from.as_bytes().to_vec(), to.as_bytes().to_vec())
    }

    #[test]
    fn selections_follow_renames_back() {
        let renames = vec![
            vec![],
            vec![r("d/b", "d/bb")],
            vec![r("x", "t"), r("y", "x"), r("t", "y")],
        ];
        let levels = per_level(&v(&["d/bb/f", "x/g", "d"]), &renames);
        assert_eq!(levels[2], v(&["d/bb/f", "x/g", "d"]));
        // Level 2 swapped x and y: what is x/g now was y/g.
        assert!(levels[1].contains(&b"y/g".to_vec()));
        // Level 1 renamed d/b: d/bb/f was d/b/f at level 0.
        assert!(levels[0].contains(&b"d/b/f".to_vec()));
        assert!(levels[0].contains(&b"y/g".to_vec()));
        // A directory renamed into a selected one is selected before the rename.
        let levels = per_level(&v(&["a"]), &[vec![], vec![r("z/moved", "a/in")]]);
        assert!(levels[0].contains(&b"z/moved".to_vec()));
    }
}

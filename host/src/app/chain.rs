//! The chain of backup files that a restore or a verification reads, found from the files in
//! the destination (named as `aa_abi::naming` names them) and, for the current chain, the
//! provider's snapshots.
//!
//! The current chain of an incremental archive is levels `0..=C`, where `C` is the level of the
//! last backup the snapshots record (`get_max_backup_level - 1`); without a snapshot (purged, or
//! a chain copied from another machine) it is the highest level with a backup file. Files above
//! `C` are left from before a level restart without `remove-obsolete-backups`: they are not
//! part of the chain. A non-incremental archive is one backup file.
//!
//! A kept chain (`--keeping-id ab`) holds the levels that were about to be overwritten when it
//! was kept, from the level then made up. Its lower levels were not overwritten then: they are
//! the same level's file in the next more recent kept chain that has one (`aa`), or else the
//! current one, since every later overwrite of such a level kept it first.

use std::path::{Path, PathBuf};

use aa_abi::capability::ChainArchive;
use aa_abi::naming::{backup_file_path, backup_level_for};
use aa_abi::{BackupType, PathBytes};

use super::keeping::keeping_id;
use super::Failure;

/// What the chain is looked for with.
pub struct Query<'a> {
    pub destination: &'a Path,
    pub name: &'a str,
    pub backup_type: BackupType,
    pub incremental: bool,
    /// The kept chain, `None` for the current one.
    pub keeping_id: Option<&'a str>,
    /// The level of the last backup the snapshots record; `None` when they record none.
    pub snapshot_level: Option<u32>,
}

/// One level of a chain: its backup file, which may be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub level: u32,
    pub path: PathBuf,
    pub exists: bool,
}

/// The chain found in the destination.
#[derive(Debug)]
pub struct Chain {
    pub backup_type: BackupType,
    /// Levels `0..=top` in order.
    pub levels: Vec<Level>,
    /// Backup files above the current level (not part of the chain).
    pub above: Vec<PathBuf>,
    /// Whether the top of the chain comes from the snapshots.
    pub from_snapshot: bool,
}

/// The file name of `path`, for messages.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

impl Chain {
    /// The chain up to `level` (all of it for `None`), each backup present: what a restore
    /// applies. A missing level is an error naming its file.
    pub fn archives(&self, level: Option<u32>) -> Result<Vec<ChainArchive>, Failure> {
        let top = self.levels.last().map_or(0, |l| l.level);
        let upto = match level {
            Some(n) if n > top => {
                return Err(Failure::Option(format!(
                    "--level {n}: the chain has no level above {top}"
                )))
            }
            Some(n) => n,
            None => top,
        };
        let mut archives = Vec::new();
        for l in self.levels.iter().filter(|l| l.level <= upto) {
            if !l.exists {
                return Err(Failure::Backup(format!(
                    "the backup file \"{}\" of level {} is missing: the chain 0..{top} is \
                     incomplete, nothing was restored",
                    l.path.display(),
                    l.level
                )));
            }
            archives.push(ChainArchive {
                level: l.level,
                backup_type: self.backup_type,
                path: PathBytes::new(&l.path),
            });
        }
        Ok(archives)
    }
}

/// Checks a `--keeping-id` value: two lowercase letters, `aa` to `zz`.
pub fn check_keeping_id(id: &str) -> Result<(), Failure> {
    let b = id.as_bytes();
    if b.len() == 2 && b.iter().all(u8::is_ascii_lowercase) {
        Ok(())
    } else {
        Err(Failure::Option(format!(
            "--keeping-id \"{id}\" is not a keeping ID (two letters, aa to zz)"
        )))
    }
}

/// The file names in `dir`.
fn file_names(dir: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    use std::os::unix::ffi::OsStrExt;
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Failure::Directory(format!(
            "Directory \"{}\" configured in the \"dest-dir\" option cannot be read: {}.",
            dir.display(),
            aa_abi::error::os_message(&e)
        ))
    })?;
    Ok(entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().as_bytes().to_vec())
        .collect())
}

/// The levels with a backup file among `names`, sorted.
fn levels_among(names: &[Vec<u8>], q: &Query<'_>, keeping: Option<&str>) -> Vec<u32> {
    let Some(ext) = q.backup_type.extension() else {
        return Vec::new();
    };
    let mut levels: Vec<u32> = names
        .iter()
        .filter_map(|n| backup_level_for(n, q.name, keeping, ext))
        .collect();
    levels.sort_unstable();
    levels.dedup();
    levels
}

/// The existing backup files of levels above `level` of the current chain (what
/// `remove-obsolete-backups` removes after a backup of `level`).
pub fn files_above(q: &Query<'_>, level: u32) -> Result<Vec<PathBuf>, Failure> {
    let names = file_names(q.destination)?;
    Ok(levels_among(&names, q, None)
        .into_iter()
        .filter(|&l| l > level)
        .filter_map(|l| path(q, Some(l), None))
        .collect())
}

fn path(q: &Query<'_>, level: Option<u32>, keeping: Option<&str>) -> Option<PathBuf> {
    backup_file_path(q.destination, q.name, q.backup_type, level, keeping)
}

/// Finds the chain `q` asks for. No backup at all is an error; a missing level is not (see
/// [`Chain::archives`]), so that a verification can report it beside the others.
pub fn find(q: &Query<'_>) -> Result<Chain, Failure> {
    let names = file_names(q.destination)?;
    find_among(q, &names, |path| path.is_file())
}

/// Finds the chain `q` asks for among the backups an object store lists, `names`; the paths
/// of the chain are `q.destination` (the store's URL) joined with the object names.
pub fn find_stored(q: &Query<'_>, names: &[String]) -> Result<Chain, Failure> {
    let names: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
    let listed = |path: &Path| {
        use std::os::unix::ffi::OsStrExt;
        path.file_name()
            .is_some_and(|n| names.iter().any(|m| m[..] == *n.as_bytes()))
    };
    find_among(q, &names, listed)
}

/// Finds the chain among the backup file `names`; `present` tells whether the plain
/// (non-incremental) backup is there.
fn find_among(
    q: &Query<'_>,
    names: &[Vec<u8>],
    present: impl Fn(&Path) -> bool,
) -> Result<Chain, Failure> {
    let unknown = || Failure::Option(format!("unknown backup type {}", q.backup_type));
    let first = path(q, None, q.keeping_id).ok_or_else(unknown)?;
    let none_found = || {
        let what = match q.keeping_id {
            Some(id) => format!("no kept backup with keeping ID \"{id}\""),
            None => "no backup".to_string(),
        };
        Failure::Backup(format!(
            "{what} of \"{}\" in \"{}\" (looked for {} and its levels)",
            q.name,
            q.destination.display(),
            file_name(&first)
        ))
    };
    let mut chain = Chain {
        backup_type: q.backup_type,
        levels: Vec::new(),
        above: Vec::new(),
        from_snapshot: false,
    };
    if !q.incremental {
        if !present(&first) {
            return Err(none_found());
        }
        chain.levels.push(Level {
            level: 0,
            path: first,
            exists: true,
        });
        return Ok(chain);
    }
    let own = levels_among(names, q, q.keeping_id);
    let Some(&highest) = own.last() else {
        return Err(none_found());
    };
    let top = match (q.keeping_id, q.snapshot_level) {
        (None, Some(level)) => {
            chain.from_snapshot = true;
            level
        }
        _ => highest,
    };
    chain.above = own
        .iter()
        .filter(|&&l| l > top)
        .filter_map(|&l| path(q, Some(l), q.keeping_id))
        .collect();
    // For a kept chain, the levels below its own come from more recent chains (see the module
    // documentation): `ab`, then `aa`, then the current one.
    let lowest_own = own[0];
    let more_recent: Vec<Option<String>> = match q.keeping_id {
        Some(id) => {
            let b = id.as_bytes();
            let n = i64::from(b[0] - b'a') * 26 + i64::from(b[1] - b'a');
            (0..n)
                .rev()
                .map(|k| Some(keeping_id(k)))
                .chain(std::iter::once(None))
                .collect()
        }
        None => Vec::new(),
    };
    for level in 0..=top {
        let own_path = path(q, Some(level), q.keeping_id).ok_or_else(unknown)?;
        let entry = if own.binary_search(&level).is_ok() {
            Level {
                level,
                path: own_path,
                exists: true,
            }
        } else if level < lowest_own {
            more_recent
                .iter()
                .find(|k| levels_among(names, q, k.as_deref()).contains(&level))
                .and_then(|k| path(q, Some(level), k.as_deref()))
                .map(|path| Level {
                    level,
                    path,
                    exists: true,
                })
                .unwrap_or(Level {
                    level,
                    path: own_path,
                    exists: false,
                })
        } else {
            Level {
                level,
                path: own_path,
                exists: false,
            }
        };
        chain.levels.push(entry);
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn query<'a>(dir: &'a Path, keeping_id: Option<&'a str>, snapshot: Option<u32>) -> Query<'a> {
        Query {
            destination: dir,
            name: "home",
            backup_type: BackupType::TarGz,
            incremental: true,
            keeping_id,
            snapshot_level: snapshot,
        }
    }

    fn names(chain: &Chain) -> Vec<String> {
        chain
            .levels
            .iter()
            .map(|l| format!("{}{}", file_name(&l.path), if l.exists { "" } else { "?" }))
            .collect()
    }

    fn touch(dir: &Path, files: &[&str]) {
        for f in files {
            fs::write(dir.join(f), "").unwrap();
        }
    }

    #[test]
    fn the_current_chain_stops_at_the_snapshot_level_and_names_a_missing_level() {
        let dir = tempfile::tempdir().unwrap();
        touch(
            dir.path(),
            &[
                "home.tar.gz",
                "home.2.tar.gz",
                "home.3.tar.gz",
                "other.1.tar.gz",
            ],
        );
        let chain = find(&query(dir.path(), None, Some(2))).unwrap();
        assert_eq!(
            names(&chain),
            ["home.tar.gz", "home.1.tar.gz?", "home.2.tar.gz"]
        );
        assert_eq!(chain.above, [dir.path().join("home.3.tar.gz")]);
        let e = chain.archives(None).unwrap_err().to_string();
        assert!(e.contains("home.1.tar.gz\" of level 1 is missing"), "{e}");
        assert_eq!(chain.archives(Some(0)).unwrap().len(), 1);
        let e = chain.archives(Some(3)).unwrap_err().to_string();
        assert_eq!(e, "--level 3: the chain has no level above 2");
        // Without a snapshot, the files decide.
        let chain = find(&query(dir.path(), None, None)).unwrap();
        assert_eq!(chain.levels.len(), 4);
        assert!(chain.above.is_empty());
    }

    #[test]
    fn a_kept_chain_takes_its_lower_levels_from_more_recent_chains() {
        let dir = tempfile::tempdir().unwrap();
        touch(
            dir.path(),
            &[
                "home.tar.gz",
                "home.1.tar.gz",
                "home.aa.tar.gz",
                "home.1.aa.tar.gz",
                "home.2.ab.tar.gz",
                "home.3.ab.tar.gz",
            ],
        );
        let chain = find(&query(dir.path(), Some("ab"), Some(1))).unwrap();
        assert_eq!(
            names(&chain),
            [
                "home.aa.tar.gz",
                "home.1.aa.tar.gz",
                "home.2.ab.tar.gz",
                "home.3.ab.tar.gz"
            ]
        );
        let e = find(&query(dir.path(), Some("ac"), None))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("no kept backup with keeping ID \"ac\" of \"home\""),
            "{e}"
        );
        assert!(check_keeping_id("zz").is_ok());
        assert!(check_keeping_id("a1").is_err() && check_keeping_id("abc").is_err());
    }

    #[test]
    fn a_stored_chain_is_found_from_the_listing_and_named_by_url() {
        let url = Path::new("s3://bkp/host");
        let listed: Vec<String> = ["home.tar.gz", "home.2.tar.gz", "home.3.tar.gz", "x.tar.gz"]
            .map(String::from)
            .to_vec();
        let chain = find_stored(&query(url, None, Some(2)), &listed).unwrap();
        assert_eq!(
            names(&chain),
            ["home.tar.gz", "home.1.tar.gz?", "home.2.tar.gz"]
        );
        assert_eq!(chain.levels[0].path, Path::new("s3://bkp/host/home.tar.gz"));
        assert_eq!(chain.above, [Path::new("s3://bkp/host/home.3.tar.gz")]);
        let e = chain.archives(None).unwrap_err().to_string();
        assert!(
            e.contains("\"s3://bkp/host/home.1.tar.gz\" of level 1 is missing"),
            "{e}"
        );
        let plain = Query {
            incremental: false,
            ..query(url, None, None)
        };
        assert_eq!(
            names(&find_stored(&plain, &listed).unwrap()),
            ["home.tar.gz"]
        );
        let e = find_stored(&plain, &listed[1..]).unwrap_err().to_string();
        assert!(
            e.contains("no backup of \"home\" in \"s3://bkp/host\""),
            "{e}"
        );
    }

    #[test]
    fn no_backup_is_an_error_and_a_plain_archive_is_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = find(&query(dir.path(), None, None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no backup of \"home\""), "{e}");
        touch(dir.path(), &["home.tar.gz", "home.1.tar.gz"]);
        let plain = Query {
            incremental: false,
            ..query(dir.path(), None, None)
        };
        assert_eq!(names(&find(&plain).unwrap()), ["home.tar.gz"]);
    }
}

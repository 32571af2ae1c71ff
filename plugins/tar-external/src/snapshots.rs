//! GNU tar snapshot files (`--listed-incremental`) of incremental backups.
//!
//! Layout, as the original's: `<workDir>/snapshots/NAME.snar` for level 0 and
//! `NAME.LEVEL.snar` for higher levels. A level N backup starts from a private copy of level
//! N-1's snapshot (an empty file for level 0, which tar treats as "no previous dump"), so an
//! interrupted run never alters a stored snapshot; only a completed run moves its copy into
//! place (an atomic rename within the directory) and drops the snapshots above it, which no
//! longer describe the backups that follow the new level N.
//!
//! Snapshots are created mode 0600 (the original applied the umask to 0666): they are private
//! state that lists every backed-up name.
//!
//! Unlike the original's glob `NAME.*.snar`, only `NAME.<digits>.snar` belongs to `NAME`, so the
//! archive `proj` never picks up (or deletes) the snapshots of `proj.v2`.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tempfile::TempPath;

use crate::error::Error;

const SNAPSHOTS_SUBDIR: &str = "snapshots";
const SNAPSHOT_SUFFIX: &str = ".snar";

/// Parses a level token: a canonical positive decimal number (level 0 has no token).
pub fn parse_level(token: &[u8]) -> Option<u32> {
    if token.is_empty() || token[0] == b'0' || !token.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(token).ok()?.parse().ok()
}

/// The level of the snapshot `file_name` if it belongs to the archive `id`.
pub fn snapshot_level_for(file_name: &[u8], id: &str) -> Option<u32> {
    let stem = file_name.strip_suffix(SNAPSHOT_SUFFIX.as_bytes())?;
    let rest = stem.strip_prefix(id.as_bytes())?;
    if rest.is_empty() {
        return Some(0);
    }
    parse_level(rest.strip_prefix(b".")?)
}

/// Splits a snapshot file name into the archive name and the level.
pub fn parse_snapshot_name(file_name: &[u8]) -> Option<(&[u8], u32)> {
    let stem = file_name.strip_suffix(SNAPSHOT_SUFFIX.as_bytes())?;
    if stem.is_empty() {
        return None;
    }
    if let Some(dot) = stem.iter().rposition(|&b| b == b'.') {
        if let Some(level) = parse_level(&stem[dot + 1..]) {
            if dot > 0 {
                return Some((&stem[..dot], level));
            }
        }
    }
    Some((stem, 0))
}

/// Checks an archive name is usable as a file name prefix in the snapshots directory.
pub fn check_backup_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0') {
        return Err(Error::invalid_value(format!(
            "invalid backup id '{id}': it must be usable as a file name"
        )));
    }
    Ok(())
}

/// The snapshots directory of one provider.
pub struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    pub fn new(work_dir: &Path) -> Snapshots {
        Snapshots {
            dir: work_dir.join(SNAPSHOTS_SUBDIR),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn create_dir(&self) -> Result<(), Error> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))
    }

    /// The snapshot of `level`, optionally of a kept backup (a name the original defined but
    /// never creates).
    pub fn path(&self, id: &str, level: u32, keeping_id: Option<&str>) -> PathBuf {
        let mut name = String::from(id);
        if level > 0 {
            name.push('.');
            name.push_str(&level.to_string());
        }
        if let Some(keep) = keeping_id.filter(|k| !k.is_empty()) {
            name.push('.');
            name.push_str(keep);
        }
        name.push_str(SNAPSHOT_SUFFIX);
        self.dir.join(name)
    }

    fn file_names(&self) -> Result<Vec<Vec<u8>>, Error> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                names.push(entry.file_name().as_bytes().to_vec());
            }
        }
        Ok(names)
    }

    /// Stored snapshot levels of `id`, ascending.
    pub fn levels(&self, id: &str) -> Result<Vec<u32>, Error> {
        let mut levels: Vec<u32> = self
            .file_names()?
            .iter()
            .filter_map(|n| snapshot_level_for(n, id))
            .collect();
        levels.sort_unstable();
        Ok(levels)
    }

    /// The highest level that can be created now: one above the highest snapshot, 0 if none.
    pub fn max_level(&self, id: &str) -> Result<u32, Error> {
        Ok(self.levels(id)?.last().map_or(0, |&l| l.saturating_add(1)))
    }

    /// Names of the archives that have snapshots, sorted and without duplicates.
    pub fn ids(&self) -> Result<Vec<String>, Error> {
        let mut ids: Vec<String> = self
            .file_names()?
            .iter()
            .filter_map(|n| parse_snapshot_name(n))
            .filter_map(|(id, _)| std::str::from_utf8(id).ok().map(str::to_string))
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn remove(&self, path: &Path) -> Result<(), Error> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        }
    }

    /// Removes the snapshots of `id` of `level` and above.
    pub fn remove_from(&self, id: &str, level: u32) -> Result<(), Error> {
        for l in self.levels(id)?.into_iter().filter(|&l| l >= level) {
            self.remove(&self.path(id, l, None))?;
        }
        Ok(())
    }

    /// Removes one snapshot if it exists.
    pub fn remove_one(&self, id: &str, level: u32, keeping_id: Option<&str>) -> Result<(), Error> {
        self.remove(&self.path(id, level, keeping_id))
    }

    /// A private working snapshot for a level `level` backup: a copy of level `level - 1`'s
    /// snapshot, or an empty file for level 0. Deleted when dropped.
    pub fn working_copy(&self, id: &str, level: u32) -> Result<TempPath, Error> {
        // Without the `.snar` suffix: never taken for a stored snapshot.
        let mut temp = tempfile::Builder::new()
            .prefix(".working-")
            .suffix(".snar.tmp")
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        if level > 0 {
            let previous = self.path(id, level - 1, None);
            let mut source = File::open(&previous).map_err(|e| Error::io(&previous, e))?;
            io::copy(&mut source, temp.as_file_mut()).map_err(|e| Error::io(temp.path(), e))?;
        }
        Ok(temp.into_temp_path())
    }

    /// Stores the snapshot of a completed level `level` backup and removes the levels above.
    pub fn install(&self, id: &str, level: u32, working: TempPath) -> Result<(), Error> {
        let target = self.path(id, level, None);
        // tar rewrote the working file; make its content durable before it replaces the old one.
        File::open(&working)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&working, e))?;
        working
            .persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.remove_from(id, level + 1)
    }

    /// Removes every snapshot of `id`.
    pub fn purge(&self, id: &str) -> Result<(), Error> {
        self.remove_from(id, 0)
    }
}

/// The level of the backup file `file_name` of archive `id` (`NAME[.LEVEL][.KEEPID].EXT`), if it
/// is one.
pub fn backup_level_for(
    file_name: &[u8],
    id: &str,
    keeping_id: Option<&str>,
    ext: &str,
) -> Option<u32> {
    let rest = file_name.strip_prefix(id.as_bytes())?;
    let rest = rest.strip_suffix(ext.as_bytes())?.strip_suffix(b".")?;
    let rest = match keeping_id.filter(|k| !k.is_empty()) {
        Some(keep) => rest.strip_suffix(keep.as_bytes())?.strip_suffix(b".")?,
        None => rest,
    };
    if rest.is_empty() {
        return Some(0);
    }
    parse_level(rest.strip_prefix(b".")?)
}

/// Whether `dir` holds a backup of `id` of `from_level` or above.
pub fn any_backup_level_exists(
    dir: &Path,
    id: &str,
    keeping_id: Option<&str>,
    ext: &str,
    from_level: u32,
) -> Result<bool, Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let level = backup_level_for(OsStr::as_bytes(&name), id, keeping_id, ext);
        if level.is_some_and(|l| l >= from_level) && entry.path().is_file() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_belong_to_exactly_one_archive() {
        assert_eq!(snapshot_level_for(b"proj.snar", "proj"), Some(0));
        assert_eq!(snapshot_level_for(b"proj.3.snar", "proj"), Some(3));
        assert_eq!(snapshot_level_for(b"proj.v2.snar", "proj"), None);
        assert_eq!(snapshot_level_for(b"proj.v2.1.snar", "proj"), None);
        assert_eq!(snapshot_level_for(b"proj.v2.1.snar", "proj.v2"), Some(1));
        assert_eq!(snapshot_level_for(b"proj.03.snar", "proj"), None);
        assert_eq!(snapshot_level_for(b"proj.0.snar", "proj"), None);
        assert_eq!(snapshot_level_for(b"projx.snar", "proj"), None);
        assert_eq!(snapshot_level_for(b"proj.snar.tmp", "proj"), None);
        assert_eq!(snapshot_level_for(b"proj.99999999999.snar", "proj"), None);
    }

    #[test]
    fn parses_stored_names() {
        assert_eq!(parse_snapshot_name(b"home.snar"), Some((&b"home"[..], 0)));
        assert_eq!(parse_snapshot_name(b"home.2.snar"), Some((&b"home"[..], 2)));
        assert_eq!(
            parse_snapshot_name(b"proj.v2.snar"),
            Some((&b"proj.v2"[..], 0))
        );
        assert_eq!(parse_snapshot_name(b".working-x.snar.tmp"), None);
        assert_eq!(
            parse_snapshot_name(b".hidden.snar"),
            Some((&b".hidden"[..], 0))
        );
        assert_eq!(parse_snapshot_name(b"other.txt"), None);
        assert_eq!(parse_snapshot_name(b".snar"), None);
    }

    #[test]
    fn backup_names() {
        let l = |n: &[u8], k| backup_level_for(n, "proj", k, "tar.gz");
        assert_eq!(l(b"proj.tar.gz", None), Some(0));
        assert_eq!(l(b"proj.4.tar.gz", None), Some(4));
        assert_eq!(l(b"proj.aa.tar.gz", None), None);
        assert_eq!(l(b"proj.v2.tar.gz", None), None);
        assert_eq!(l(b"proj.tar.gz._partial", None), None);
        assert_eq!(l(b"proj.aa.tar.gz", Some("aa")), Some(0));
        assert_eq!(l(b"proj.2.aa.tar.gz", Some("aa")), Some(2));
        assert_eq!(l(b"proj.2.ab.tar.gz", Some("aa")), None);
        assert_eq!(l(b"proj.tar", None), None);
    }

    #[test]
    fn unusable_ids_are_refused() {
        for id in ["", ".", "..", "a/b", "a\0"] {
            assert!(check_backup_id(id).is_err(), "{id:?}");
        }
        for id in ["home", ".hidden", "proj.v2", "-x"] {
            assert!(check_backup_id(id).is_ok(), "{id:?}");
        }
    }

    #[test]
    fn snapshot_paths() {
        let s = Snapshots::new(Path::new("/w"));
        assert_eq!(s.path("p", 0, None), Path::new("/w/snapshots/p.snar"));
        assert_eq!(s.path("p", 2, None), Path::new("/w/snapshots/p.2.snar"));
        assert_eq!(
            s.path("p", 2, Some("aa")),
            Path::new("/w/snapshots/p.2.aa.snar")
        );
    }
}

//! The snapshots directory of a provider: the state of incremental backups, GNU tar snapshot files (`--listed-incremental`), kept
//! by every provider that makes incremental backups in GNU tar's terms, in one layout, so
//! that the providers can continue each other's chains.
//!
//! Layout, as the original's: `<workDir>/snapshots/NAME.snar` for level 0 and
//! `NAME.LEVEL.snar` for higher levels. A level N backup starts from level N-1's snapshot
//! (level 0 from none) and writes its own snapshot to a private working file
//! ([`Snapshots::working_file`], [`Snapshots::working_copy`]), so an interrupted run never
//! alters a stored snapshot; only a completed run moves its working file into place (an
//! atomic rename within the directory, after `fsync`) and drops the snapshots above it, which
//! no longer describe the backups that follow the new level N ([`Snapshots::install`]).
//!
//! Snapshots are created mode 0600 (the original applied the umask to 0666): they are private
//! state that lists every backed-up name.
//!
//! Unlike the original's glob `NAME.*.snar`, only `NAME.<digits>.snar` belongs to `NAME`, so the
//! archive `proj` never picks up (or deletes) the snapshots of `proj.v2`.
//!

use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use aa_abi::naming::{archive_name_problem, parse_level};
use aa_abi::ProviderError;
use rustix::fs::{Access, AtFlags, CWD};
use rustix::io::Errno;

use crate::working::WorkingFile;

const SNAPSHOTS_SUBDIR: &str = "snapshots";
const SNAPSHOT_SUFFIX: &str = ".snar";

/// Whether this process may create files in the directory `dir`, by the effective ids, as
/// the kernel will judge the attempt.
fn may_create_files_in(dir: &Path) -> bool {
    rustix::fs::accessat(
        CWD,
        dir,
        Access::WRITE_OK | Access::EXEC_OK,
        AtFlags::EACCESS,
    )
    .is_ok()
}

/// `err` on `path`, the message naming the path.
pub(crate) fn io_error(path: &Path, err: &io::Error) -> ProviderError {
    ProviderError::from_io(path.display(), err)
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
pub fn check_backup_id(id: &str) -> Result<(), ProviderError> {
    match archive_name_problem(id) {
        Some(problem) => Err(ProviderError::invalid_value(format!(
            "invalid backup id '{id}': it must be usable as a file name ({problem})"
        ))),
        None => Ok(()),
    }
}

/// The snapshots directory of one provider.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    /// The snapshots of the provider whose work directory is `work_dir`; nothing is created.
    pub fn new(work_dir: &Path) -> Snapshots {
        Snapshots {
            dir: work_dir.join(SNAPSHOTS_SUBDIR),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory (and its parents) if it is missing.
    pub fn create_dir(&self) -> Result<(), ProviderError> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, &e))
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

    /// The regular files of the directory; none if it does not exist (yet).
    fn file_names(&self) -> Result<Vec<Vec<u8>>, ProviderError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&self.dir, &e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.dir, &e))?;
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                names.push(entry.file_name().as_bytes().to_vec());
            }
        }
        Ok(names)
    }

    /// Stored snapshot levels of `id`, ascending.
    pub fn levels(&self, id: &str) -> Result<Vec<u32>, ProviderError> {
        let mut levels: Vec<u32> = self
            .file_names()?
            .iter()
            .filter_map(|n| snapshot_level_for(n, id))
            .collect();
        levels.sort_unstable();
        Ok(levels)
    }

    /// The highest level that can be created now: one above the highest snapshot, 0 if none.
    pub fn max_level(&self, id: &str) -> Result<u32, ProviderError> {
        Ok(self.levels(id)?.last().map_or(0, |&l| l.saturating_add(1)))
    }

    /// The level a backup of `id` asked for with `level` gets: the next one for `None`; a
    /// level above [`Snapshots::max_level`] is refused.
    pub fn resolve_level(&self, id: &str, level: Option<u32>) -> Result<u32, ProviderError> {
        let max_level = self.max_level(id)?;
        let level = level.unwrap_or(max_level);
        if level > max_level {
            return Err(ProviderError::invalid_value(format!(
                "Backup level {level} of '{id}' is out of the interval 0..{max_level}."
            )));
        }
        self.check_level(id, level)?;
        Ok(level)
    }

    /// Checks that a level `level` backup of `id` will be able to read and store its snapshots:
    /// the previous level's snapshot, if present, is a regular file; the level's own, which
    /// [`Snapshots::install`] replaces, is a regular file or absent; the directory, if it
    /// exists yet, is one we can create files in. [`Snapshots::resolve_level`] asks it, so a
    /// provider learns of a bad path before it writes the backup, rather than after it replaced
    /// the old one.
    pub fn check_level(&self, id: &str, level: u32) -> Result<(), ProviderError> {
        match fs::metadata(&self.dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(&self.dir, &e)),
            Ok(m) if !m.is_dir() => {
                return Err(ProviderError::io(
                    Errno::NOTDIR.raw_os_error(),
                    format!(
                        "Snapshot directory \"{}\" is not a directory.",
                        self.dir.display()
                    ),
                ))
            }
            Ok(_) if !may_create_files_in(&self.dir) => {
                return Err(ProviderError::io(
                    Errno::ACCESS.raw_os_error(),
                    format!(
                        "Snapshot directory \"{}\" is not writable.",
                        self.dir.display()
                    ),
                ))
            }
            Ok(_) => {}
        }
        let own = self.path(id, level, None);
        let previous = level.checked_sub(1).map(|l| self.path(id, l, None));
        for path in previous.iter().chain([&own]) {
            match fs::symlink_metadata(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(path, &e)),
                Ok(m) if m.is_file() => {}
                Ok(m) => {
                    return Err(ProviderError::io(
                        if m.is_dir() {
                            Errno::ISDIR.raw_os_error()
                        } else {
                            Errno::INVAL.raw_os_error()
                        },
                        format!("Snapshot \"{}\" is not a regular file.", path.display()),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Names of the archives that have snapshots, sorted and without duplicates.
    pub fn ids(&self) -> Result<Vec<String>, ProviderError> {
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

    fn remove(&self, path: &Path) -> Result<(), ProviderError> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(path, &e)),
            _ => Ok(()),
        }
    }

    /// Removes the snapshots of `id` of `level` and above.
    pub fn remove_from(&self, id: &str, level: u32) -> Result<(), ProviderError> {
        for l in self.levels(id)?.into_iter().filter(|&l| l >= level) {
            self.remove(&self.path(id, l, None))?;
        }
        Ok(())
    }

    /// Removes one snapshot if it exists.
    pub fn remove_one(
        &self,
        id: &str,
        level: u32,
        keeping_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        self.remove(&self.path(id, level, keeping_id))
    }

    /// A new, empty working file in the snapshots directory (created if needed), mode 0600.
    /// Deleted when dropped, unless [installed](Snapshots::install).
    pub fn working_file(&self) -> Result<WorkingFile, ProviderError> {
        self.create_dir()?;
        crate::working::remove_abandoned_working_files(&self.dir);
        WorkingFile::create_in(&self.dir)
    }

    /// A working file for a level `level` backup that starts as a copy of level `level - 1`'s
    /// snapshot, or empty for level 0 (GNU tar reads an empty file as "no previous dump").
    pub fn working_copy(&self, id: &str, level: u32) -> Result<WorkingFile, ProviderError> {
        let mut working = self.working_file()?;
        if level > 0 {
            let previous = self.path(id, level - 1, None);
            let mut source = File::open(&previous).map_err(|e| io_error(&previous, &e))?;
            let path = working.path().to_path_buf();
            io::copy(&mut source, working.file()).map_err(|e| io_error(&path, &e))?;
        }
        Ok(working)
    }

    /// Stores the snapshot of a completed level `level` backup and removes the levels above.
    /// Call it only once the backup itself is in place: a snapshot must never claim content
    /// that no stored backup holds.
    pub fn install(&self, id: &str, level: u32, working: WorkingFile) -> Result<(), ProviderError> {
        let target = self.path(id, level, None);
        working.persist(&target)?;
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.remove_from(id, level + 1)
    }

    /// Removes every snapshot of `id`.
    pub fn purge(&self, id: &str) -> Result<(), ProviderError> {
        self.remove_from(id, 0)
    }
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
    fn unusable_ids_are_refused() {
        for id in ["", ".", "..", "a/b", "a\0"] {
            let err = check_backup_id(id).unwrap_err();
            assert_eq!(err.kind, aa_abi::ProviderErrorKind::INVALID_VALUE, "{id:?}");
        }
        for id in ["home", ".hidden", "proj.v2", "-x"] {
            assert!(check_backup_id(id).is_ok(), "{id:?}");
        }
    }

    #[test]
    fn a_snapshot_path_that_is_not_a_file_is_refused_before_the_backup() {
        let work = tempfile::tempdir().unwrap();
        let s = Snapshots::new(work.path());
        assert_eq!(s.resolve_level("p", None).unwrap(), 0, "no directory yet");
        s.create_dir().unwrap();
        fs::create_dir(s.path("p", 0, None)).unwrap();
        let refused = |level| s.resolve_level("p", level).unwrap_err().to_string();
        let shown = |level| s.path("p", level, None).display().to_string();
        assert_eq!(
            refused(None),
            format!("Snapshot \"{}\" is not a regular file.", shown(0))
        );
        fs::remove_dir(s.path("p", 0, None)).unwrap();
        fs::write(s.path("p", 0, None), b"level 0").unwrap();
        fs::create_dir(s.path("p", 1, None)).unwrap();
        assert_eq!(
            refused(None),
            format!("Snapshot \"{}\" is not a regular file.", shown(1))
        );
        // Level 2 would read level 1's.
        fs::write(s.path("p", 2, None), b"level 2").unwrap();
        assert_eq!(
            refused(Some(2)),
            format!("Snapshot \"{}\" is not a regular file.", shown(1))
        );
        assert_eq!(s.resolve_level("p", Some(0)).unwrap(), 0);

        let file = tempfile::tempdir().unwrap();
        fs::write(file.path().join(SNAPSHOTS_SUBDIR), b"").unwrap();
        let err = Snapshots::new(file.path()).check_level("p", 0).unwrap_err();
        assert!(err.to_string().ends_with("\" is not a directory."), "{err}");
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

    #[test]
    fn levels_and_ids_of_a_missing_directory_are_empty() {
        let work = tempfile::tempdir().unwrap();
        let s = Snapshots::new(work.path());
        assert_eq!(s.max_level("p").unwrap(), 0);
        assert!(s.ids().unwrap().is_empty());
        s.purge("p").unwrap();
        assert!(!s.dir().exists(), "reading creates nothing");
    }

    #[test]
    fn working_files_are_private_unique_and_removed_unless_installed() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let work = tempfile::tempdir().unwrap();
        let s = Snapshots::new(work.path());
        let mut a = s.working_file().unwrap();
        let b = s.working_file().unwrap();
        assert_ne!(a.path(), b.path());
        let mode = fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            s.ids().unwrap().is_empty(),
            "working files are not snapshots"
        );
        drop(b);
        a.file().write_all(b"level 0").unwrap();
        s.install("p", 0, a).unwrap();
        assert_eq!(fs::read(s.path("p", 0, None)).unwrap(), b"level 0");

        // Level 1 from level 0, then redoing level 0 drops level 1.
        let mut copy = s.working_copy("p", 1).unwrap();
        copy.file().write_all(b" + 1").unwrap();
        s.install("p", 1, copy).unwrap();
        assert_eq!(fs::read(s.path("p", 1, None)).unwrap(), b"level 0 + 1");
        assert_eq!(s.resolve_level("p", None).unwrap(), 2);
        let err = s.resolve_level("p", Some(3)).unwrap_err();
        assert_eq!(
            err.message(),
            "Backup level 3 of 'p' is out of the interval 0..2."
        );
        {
            let abandoned = s.working_copy("p", 1).unwrap();
            assert!(abandoned.path().exists());
        }
        s.install("p", 0, s.working_file().unwrap()).unwrap();
        assert_eq!(s.levels("p").unwrap(), [0]);
        assert_eq!(
            fs::read_dir(s.dir()).unwrap().count(),
            1,
            "nothing left over"
        );
    }
}

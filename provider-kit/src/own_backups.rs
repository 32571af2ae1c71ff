//! The archive's own backup files met in the tree it backs up.
//!
//! With the destination inside the backed-up tree (`dest-dir = path/backups`), each backup
//! would store the earlier ones and grow with every run. Every provider therefore leaves out
//! the archive's own backup files found in its destination directory: the backup, its levels,
//! its kept copies and the files being written ([`naming::is_own_backup_file`]). Anything else
//! there, another archive's backups included, is stored as usual.
//!
//! A provider that walks the tree itself recognises the destination by device and inode
//! ([`OwnBackups::is_own`]), so neither a symbolic link nor a bind mount hides it. One that
//! hands names to another program (GNU tar) excludes the files by their path below the root
//! ([`OwnBackups::relative_destination`], from canonical paths, which is how a walk that does
//! not follow symbolic links names them).

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aa_abi::naming;
use aa_abi::BackupDefinition;

/// What to leave out of one backup.
#[derive(Debug, Clone)]
pub struct OwnBackups {
    destination: PathBuf,
    /// (device, inode) of the destination directory.
    identity: (u64, u64),
    relative: Option<PathBuf>,
    backup_id: String,
    ext: &'static str,
}

impl OwnBackups {
    /// For `definition`; `None` when there is nothing to recognise: the destination cannot be
    /// examined (the backup then fails on it anyway) or the backup type is unknown.
    pub fn new(definition: &BackupDefinition) -> Option<OwnBackups> {
        let ext = definition.backup_type.extension()?;
        let destination = definition.destination.as_path().to_path_buf();
        let metadata = fs::metadata(&destination).ok()?;
        Some(OwnBackups {
            identity: (metadata.dev(), metadata.ino()),
            relative: relative_destination(definition),
            destination,
            backup_id: definition.backup_id.as_str().to_string(),
            ext,
        })
    }

    /// Whether `name` in the directory with (device, inode) `dir` is one of the own files.
    pub fn is_own(&self, dir: (u64, u64), name: &[u8]) -> bool {
        dir == self.identity && self.is_own_name(name)
    }

    /// Whether `name` has the form of one of the own files (wherever it is).
    pub fn is_own_name(&self, name: &[u8]) -> bool {
        naming::is_own_backup_file(name, &self.backup_id, self.ext)
    }

    /// Whether include entry `include` (relative to `root`) names one of the own files (with
    /// the destination as the root, `*` expands to them, say).
    pub fn is_own_include(&self, root: &Path, include: &Path) -> bool {
        let (Some(name), Some(parent)) = (include.file_name(), include.parent()) else {
            return false;
        };
        self.is_own_name(name.as_bytes())
            && fs::metadata(root.join(parent)).is_ok_and(|m| (m.dev(), m.ino()) == self.identity)
    }

    /// (device, inode) of the destination directory.
    pub fn identity(&self) -> (u64, u64) {
        self.identity
    }

    /// The destination's path below the root (empty for the root itself), `None` when it
    /// does not lie inside the root.
    pub fn relative_destination(&self) -> Option<&Path> {
        self.relative.as_deref()
    }

    /// The names of the own files now in the destination, sorted.
    pub fn existing(&self) -> Vec<OsString> {
        let Ok(entries) = fs::read_dir(&self.destination) else {
            return Vec::new();
        };
        let mut names: Vec<OsString> = entries
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| self.is_own_name(n.as_bytes()))
            .collect();
        names.sort();
        names
    }
}

/// The destination of `definition` relative to its root when it lies inside it (empty for
/// the root itself), by canonical paths; `None` otherwise or when either cannot be resolved.
pub fn relative_destination(definition: &BackupDefinition) -> Option<PathBuf> {
    let root = fs::canonicalize(definition.root()).ok()?;
    let destination = fs::canonicalize(definition.destination.as_path()).ok()?;
    destination.strip_prefix(&root).ok().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aa_abi::BackupType;

    #[test]
    fn recognises_the_destination_and_its_own_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let dest = root.join("sub/backups");
        fs::create_dir_all(&dest).unwrap();
        std::os::unix::fs::symlink(&dest, tmp.path().join("link")).unwrap();
        for name in [
            "t.tar.gz",
            "t.1.aa.tar.gz",
            "other.tar.gz",
            "t.tar.gz.p1-a1._partial",
        ] {
            fs::write(dest.join(name), "").unwrap();
        }
        // Given through a symbolic link, the destination is still found inside the root.
        let def = BackupDefinition::new("t", BackupType::TarGz, tmp.path().join("link"), &root);
        let own = OwnBackups::new(&def).unwrap();
        assert_eq!(own.relative_destination(), Some(Path::new("sub/backups")));
        assert_eq!(
            own.existing(),
            ["t.1.aa.tar.gz", "t.tar.gz", "t.tar.gz.p1-a1._partial"]
        );
        let m = fs::metadata(&dest).unwrap();
        assert!(own.is_own((m.dev(), m.ino()), b"t.tar.gz"));
        assert!(!own.is_own((m.dev(), m.ino()), b"other.tar.gz"));
        assert!(!own.is_own((m.dev(), m.ino() + 1), b"t.tar.gz"));
        assert!(own.is_own_include(&root, Path::new("sub/backups/t.tar.gz")));
        assert!(own.is_own_include(tmp.path(), Path::new("link/t.tar.gz")));
        assert!(!own.is_own_include(&root, Path::new("sub/backups/other.tar.gz")));
        assert!(!own.is_own_include(&root, Path::new("sub/t.tar.gz")));

        let outside = BackupDefinition::new("t", BackupType::TarGz, &dest, root.join("sub/x"));
        fs::create_dir(root.join("sub/x")).unwrap();
        assert_eq!(relative_destination(&outside), None);
        let same = BackupDefinition::new("t", BackupType::TarGz, &root, &root);
        assert_eq!(relative_destination(&same), Some(PathBuf::new()));
    }
}

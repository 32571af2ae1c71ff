//! Backup file names and the write-then-rename discipline shared by every provider.
//!
//! Names are `NAME[.LEVEL][.KEEPID].EXT`, exactly as the original program builds them: level 0
//! (and a non-incremental backup) has no level token. Unless the user asked to overwrite at
//! start, a backup is written to `NAME....EXT._partial` and renamed over the old one only once
//! complete, so a failed run never destroys the previous backup.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::types::BackupType;

/// A root-relative include or exclude entry without its insignificant parts: leading `./`
/// (with any slashes after it) and trailing `/`. The root itself (`.`, `./`) becomes empty.
/// Both providers match members against entries in this form, so they agree on what an entry
/// names.
pub fn normalise_entry(mut name: &[u8]) -> &[u8] {
    loop {
        if let Some(rest) = name.strip_prefix(b"./") {
            let slashes = rest.iter().take_while(|&&b| b == b'/').count();
            name = &rest[slashes..];
        } else if name.len() > 1 && name.ends_with(b"/") {
            name = &name[..name.len() - 1];
        } else {
            break;
        }
    }
    if name == b"." {
        b""
    } else {
        name
    }
}

/// Why `name` cannot be an archive name, if it cannot. Every state file of an archive (backup,
/// snapshot, realm, lock) is named `NAME` plus a suffix inside a directory of its own, so a
/// name must be one plain file name component: not empty, not `.` or `..`, no `/`, no NUL.
pub fn archive_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("it is not a file name")
    } else if name.contains('/') {
        Some("it contains \"/\"")
    } else if name.contains('\0') {
        Some("it contains a NUL character")
    } else {
        None
    }
}

/// Whether this process may access `path` with `mode` (`libc::W_OK | libc::X_OK`: create
/// files in a directory), by the effective ids, as the kernel will judge the attempt. Asked
/// before a backup is written, so a directory that cannot take a file fails the run before
/// anything else changed.
pub fn accessible(path: &Path, mode: libc::c_int) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) == 0 }
}

/// Suffix of a backup that is still being written.
pub const PARTIAL_SUFFIX: &str = "._partial";

/// The file name of a backup, `None` for a backup type this ABI version does not know.
pub fn backup_file_name(
    backup_id: &str,
    backup_type: BackupType,
    level: Option<u32>,
    keeping_id: Option<&str>,
) -> Option<String> {
    let ext = backup_type.extension()?;
    let mut name = String::from(backup_id);
    if let Some(level) = level.filter(|&l| l > 0) {
        name.push('.');
        name.push_str(&level.to_string());
    }
    if let Some(id) = keeping_id.filter(|id| !id.is_empty()) {
        name.push('.');
        name.push_str(id);
    }
    name.push('.');
    name.push_str(ext);
    Some(name)
}

/// The path of a backup in `destination`; see [`backup_file_name`].
pub fn backup_file_path(
    destination: &Path,
    backup_id: &str,
    backup_type: BackupType,
    level: Option<u32>,
    keeping_id: Option<&str>,
) -> Option<PathBuf> {
    backup_file_name(backup_id, backup_type, level, keeping_id).map(|n| destination.join(n))
}

/// The temporary path a backup is written to before it is complete.
pub fn working_path(final_path: &Path) -> PathBuf {
    let mut s = OsString::from(final_path.as_os_str());
    s.push(PARTIAL_SUFFIX);
    PathBuf::from(s)
}

/// The file a backup is being written to. Dropped without [`OutputFile::commit`], it removes
/// what was written, so neither a `._partial` file nor a half-written backup stays behind.
#[derive(Debug)]
pub struct OutputFile {
    final_path: PathBuf,
    working_path: PathBuf,
    committed: bool,
}

impl OutputFile {
    /// Prepares to write the backup at `final_path`. With `overwrite_at_start` the backup is
    /// written in place (the user chose to give up the old backup to save space).
    pub fn new(final_path: PathBuf, overwrite_at_start: bool) -> OutputFile {
        let working_path = if overwrite_at_start {
            final_path.clone()
        } else {
            working_path(&final_path)
        };
        OutputFile {
            final_path,
            working_path,
            committed: false,
        }
    }

    /// Where the content must be written.
    pub fn path(&self) -> &Path {
        &self.working_path
    }

    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Creates (truncating) the working file.
    pub fn create(&self) -> io::Result<File> {
        File::create(&self.working_path)
    }

    /// Flushes the complete backup to disk and moves it to its final name.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        File::open(&self.working_path)?.sync_all()?;
        if self.working_path != self.final_path {
            fs::rename(&self.working_path, &self.final_path)?;
        }
        if let Some(dir) = self.final_path.parent() {
            // Make the rename itself durable; not every file system supports it.
            let _ = File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })
            .and_then(|d| d.sync_all());
        }
        self.committed = true;
        Ok(std::mem::take(&mut self.final_path))
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.working_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_the_original() {
        let n = |l, k| backup_file_name("home", BackupType::TarGz, l, k).unwrap();
        assert_eq!(n(None, None), "home.tar.gz");
        assert_eq!(n(Some(0), None), "home.tar.gz");
        assert_eq!(n(Some(2), None), "home.2.tar.gz");
        assert_eq!(n(None, Some("aa")), "home.aa.tar.gz");
        assert_eq!(n(Some(1), Some("ab")), "home.1.ab.tar.gz");
        assert_eq!(
            backup_file_name("x", BackupType::TarZst, None, None).unwrap(),
            "x.tar.zst"
        );
        assert_eq!(backup_file_name("x", BackupType(99), None, None), None);
    }

    #[test]
    fn entries_are_normalised() {
        assert_eq!(normalise_entry(b"./a/b/"), b"a/b");
        assert_eq!(normalise_entry(b".//a"), b"a");
        assert_eq!(normalise_entry(b"././a//"), b"a");
        assert_eq!(normalise_entry(b"./"), b"");
        assert_eq!(normalise_entry(b"."), b"");
        assert_eq!(normalise_entry(b"/"), b"/");
        assert_eq!(normalise_entry(b"-x"), b"-x");
        assert_eq!(normalise_entry(b".hidden/"), b".hidden");
    }

    #[test]
    fn uncommitted_output_is_removed_and_old_backup_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("b.tar");
        fs::write(&target, b"old").unwrap();
        {
            let out = OutputFile::new(target.clone(), false);
            fs::write(out.path(), b"half").unwrap();
        }
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert!(!working_path(&target).exists());

        let out = OutputFile::new(target.clone(), false);
        fs::write(out.path(), b"new").unwrap();
        assert_eq!(out.commit().unwrap(), target);
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert!(!working_path(&target).exists());
    }
}

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

/// Whether `file_name` is one of archive `backup_id`'s own backup files with extension
/// `ext`, in any of the forms this program gives them:
///
/// * `NAME[.LEVEL][.KEEPID].EXT`: the backup, its levels and its kept copies (LEVEL: digits;
///   KEEPID: two lowercase letters, optionally followed by `-` and lowercase letters while a
///   kept backup is moved aside, e.g. `ab-removing`);
/// * `FINAL._partial` and `FINAL.TOKEN._partial`: one of those names being written (TOKEN:
///   one or more ASCII letters, digits or `-`, no dot).
///
/// Another archive's files are not recognised: for `home`, `home.v2.tar.gz` is not one (`v2`
/// is no level or keeping ID), nor `home2.tar.gz`.
pub fn is_own_backup_file(file_name: &[u8], backup_id: &str, ext: &str) -> bool {
    let Some(being_written) = file_name.strip_suffix(PARTIAL_SUFFIX.as_bytes()) else {
        return is_own_final_name(file_name, backup_id, ext);
    };
    if is_own_final_name(being_written, backup_id, ext) {
        return true;
    }
    match being_written.iter().rposition(|&b| b == b'.') {
        Some(dot) => {
            let token = &being_written[dot + 1..];
            !token.is_empty()
                && token
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
                && is_own_final_name(&being_written[..dot], backup_id, ext)
        }
        None => false,
    }
}

/// `NAME[.LEVEL][.KEEPID].EXT`; see [`is_own_backup_file`].
fn is_own_final_name(file_name: &[u8], backup_id: &str, ext: &str) -> bool {
    let middle = file_name
        .strip_prefix(backup_id.as_bytes())
        .and_then(|rest| rest.strip_suffix(ext.as_bytes()))
        .and_then(|rest| rest.strip_suffix(b"."));
    let Some(middle) = middle else {
        return false;
    };
    if middle.is_empty() {
        return true;
    }
    let Some(middle) = middle.strip_prefix(b".") else {
        return false;
    };
    let is_level = |part: &[u8]| !part.is_empty() && part.iter().all(u8::is_ascii_digit);
    let is_keeping_id = |part: &[u8]| {
        let (id, suffix) = part.split_at(part.len().min(2));
        id.len() == 2
            && id.iter().all(u8::is_ascii_lowercase)
            && (suffix.is_empty()
                || suffix.len() > 1
                    && suffix[0] == b'-'
                    && suffix[1..].iter().all(u8::is_ascii_lowercase))
    };
    match middle.iter().position(|&b| b == b'.') {
        None => is_level(middle) || is_keeping_id(middle),
        Some(dot) => is_level(&middle[..dot]) && is_keeping_id(&middle[dot + 1..]),
    }
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
    fn own_backup_files_are_recognised() {
        let own = |name: &str| is_own_backup_file(name.as_bytes(), "t", "tar.gz");
        for name in [
            "t.tar.gz",
            "t.1.tar.gz",
            "t.12.tar.gz",
            "t.aa.tar.gz",
            "t.3.zz.tar.gz",
            "t.ab-removing.tar.gz",
            "t.tar.gz._partial",
            "t.2.ab.tar.gz._partial",
            "t.tar.gz.x7-Q2._partial",
            "t.1.aa.tar.gz.123-abc._partial",
        ] {
            assert!(own(name), "{name}");
        }
        for name in [
            "t.tar.bz2",
            "t2.tar.gz",
            "t.v2.tar.gz",
            "t.abc.tar.gz",
            "t.a.tar.gz",
            "t.aa.1.tar.gz",
            "t.ab-.tar.gz",
            "t..tar.gz",
            "t.tar.gz.old",
            "t.tar.gz.._partial",
            "t.tar.gz.a_b._partial",
            "t.tar.gz.a.b._partial",
            "x.t.tar.gz",
            "t.tar.gz/",
        ] {
            assert!(!own(name), "{name}");
        }
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

//! Who may have put a plugin where `aa` finds it, checked as ssh (`StrictModes`) and sudo check
//! their files: loading a library runs its code with the rights of whoever runs `aa`, often
//! root, so a plugin must be exactly as trustworthy as that user.
//!
//! A plugin file, and every directory from the plugin directory up to `/`, must be owned by
//! root or by the effective user running `aa`, and must not be writable by group or others,
//! since anyone who can write a directory can replace what is in it. The one exception is a
//! directory that is sticky and owned by root, like `/tmp`: there others can add entries but
//! cannot replace ours, and what they add is theirs, which the owner rule refuses.
//!
//! Both the directory as named (each ancestor of its absolute path, so the directory holding a
//! symbolic link on the way is checked) and its real path are checked. A candidate that is a
//! symbolic link must itself be owned by root or the user (it could be planted in a sticky
//! directory), and its target and the target's real directory with all its ancestors are
//! checked as above. Results are remembered per directory for the run, so checking costs a few
//! `stat` calls per plugin directory.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The trust checks of one run, with what has been checked so far.
pub(crate) struct Trust {
    euid: u32,
    /// Directory (as stat'ed) -> `Err(problem)`, the problem naming nothing.
    dirs: HashMap<PathBuf, Result<(), String>>,
}

impl Trust {
    pub(crate) fn new() -> Trust {
        Trust {
            euid: rustix::process::geteuid().as_raw(),
            dirs: HashMap::new(),
        }
    }

    /// Checks a plugin directory; `Err` is the reason it is refused, one line.
    pub(crate) fn check_dir(&mut self, dir: &Path) -> Result<(), String> {
        let absolute = match std::path::absolute(dir) {
            Ok(p) => p,
            Err(e) => return Err(format!("cannot be resolved: {e}")),
        };
        self.check_chain(&absolute, dir)?;
        let real = fs::canonicalize(dir).map_err(|e| format!("cannot be resolved: {e}"))?;
        if real != absolute {
            self.check_chain(&real, dir)?;
        }
        Ok(())
    }

    /// Checks a candidate file in a directory already checked; on success returns the
    /// metadata of the file itself (the target of a symbolic link).
    pub(crate) fn check_file(&mut self, path: &Path) -> Result<Metadata, String> {
        let link = fs::symlink_metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
        if !link.file_type().is_symlink() {
            self.owner_and_mode(&link)?;
            return Ok(link);
        }
        if !self.trusted_owner(link.uid()) {
            return Err(format!(
                "a symbolic link owned by uid {}, {}",
                link.uid(),
                self.neither()
            ));
        }
        let target = fs::canonicalize(path).map_err(|e| format!("cannot be resolved: {e}"))?;
        let meta = fs::metadata(&target).map_err(|e| format!("cannot read it: {e}"))?;
        if meta.is_dir() {
            // Directories are skipped by the caller; nothing is loaded from them.
            return Ok(meta);
        }
        self.owner_and_mode(&meta)
            .map_err(|problem| format!("its target \"{}\" is {problem}", target.display()))?;
        if let Some(parent) = target.parent() {
            self.check_chain(parent, parent).map_err(|problem| {
                format!(
                    "it links into \"{}\", which is refused: {problem}",
                    parent.display()
                )
            })?;
        }
        Ok(meta)
    }

    /// Checks `dir` and each of its ancestors (`dir` absolute); the reason names the ancestor
    /// at fault when it is not `dir` itself (`named` is how the caller names `dir`).
    fn check_chain(&mut self, dir: &Path, named: &Path) -> Result<(), String> {
        for (depth, ancestor) in dir.ancestors().enumerate() {
            let verdict = match self.dirs.get(ancestor) {
                Some(verdict) => verdict.clone(),
                None => {
                    let verdict = match fs::metadata(ancestor) {
                        Ok(meta) => self.dir_owner_and_mode(&meta),
                        Err(e) => Err(format!("cannot be read: {e}")),
                    };
                    self.dirs.insert(ancestor.to_path_buf(), verdict.clone());
                    verdict
                }
            };
            if let Err(problem) = verdict {
                return Err(if depth == 0 && dir == named {
                    problem
                } else {
                    format!("its ancestor \"{}\" is {problem}", ancestor.display())
                });
            }
        }
        Ok(())
    }

    fn trusted_owner(&self, uid: u32) -> bool {
        uid == 0 || uid == self.euid
    }

    fn neither(&self) -> String {
        if self.euid == 0 {
            "not root".to_string()
        } else {
            format!("neither root nor the user running aa (uid {})", self.euid)
        }
    }

    fn owner_and_mode(&self, meta: &Metadata) -> Result<(), String> {
        if !self.trusted_owner(meta.uid()) {
            return Err(format!("owned by uid {}, {}", meta.uid(), self.neither()));
        }
        writable_by(meta.mode())
    }

    fn dir_owner_and_mode(&self, meta: &Metadata) -> Result<(), String> {
        if !meta.is_dir() {
            return Err("not a directory".into());
        }
        const STICKY: u32 = 0o1000;
        if meta.uid() == 0 && meta.mode() & STICKY != 0 {
            return Ok(());
        }
        self.owner_and_mode(meta)
    }
}

fn writable_by(mode: u32) -> Result<(), String> {
    let who = if mode & 0o002 != 0 {
        "others"
    } else if mode & 0o020 != 0 {
        "group"
    } else {
        return Ok(());
    };
    Err(format!("writable by {who} (mode {:04o})", mode & 0o7777))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn modes_are_named_with_who_can_write() {
        assert_eq!(writable_by(0o100644), Ok(()));
        assert_eq!(
            writable_by(0o100666).unwrap_err(),
            "writable by others (mode 0666)"
        );
        assert_eq!(
            writable_by(0o040775).unwrap_err(),
            "writable by group (mode 0775)"
        );
    }

    #[test]
    fn directories_files_and_links_are_checked_up_to_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("good");
        let open = tmp.path().join("open");
        let below = open.join("below");
        fs::create_dir_all(&good).unwrap();
        fs::create_dir_all(&below).unwrap();
        chmod(&good, 0o755);
        chmod(&below, 0o755);
        chmod(&open, 0o777);
        let mut trust = Trust::new();
        assert_eq!(trust.check_dir(&good), Ok(()));
        assert_eq!(
            trust.check_dir(&open).unwrap_err(),
            "writable by others (mode 0777)"
        );
        assert_eq!(
            trust.check_dir(&below).unwrap_err(),
            format!(
                "its ancestor \"{}\" is writable by others (mode 0777)",
                open.display()
            )
        );

        let file = good.join("libx.so");
        fs::write(&file, b"x").unwrap();
        chmod(&file, 0o644);
        assert!(trust.check_file(&file).is_ok());
        chmod(&file, 0o664);
        assert_eq!(
            trust.check_file(&file).unwrap_err(),
            "writable by group (mode 0664)"
        );

        let target = below.join("liby.so");
        fs::write(&target, b"y").unwrap();
        chmod(&target, 0o644);
        let link = good.join("liby.so");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = trust.check_file(&link).unwrap_err();
        assert!(err.starts_with("it links into"), "{err}");
        assert!(err.contains("writable by others (mode 0777)"), "{err}");
    }
}

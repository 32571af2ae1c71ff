//! GNU tar's rename records, applied as it applies them (before the directory's deletions),
//! and what `only` makes of them: a rename moves what an earlier level restored under the old
//! name when the new name is selected (only the selected paths below it when the new name
//! merely leads to the selection); otherwise what was restored at the old name goes.

use std::io;
use std::os::fd::AsFd;

use aa_provider_kit::beneath::components;
use aa_provider_kit::dumpdir::{Item, RenameOp};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::beneath::{c_name, list, split};
use super::chain::Restorer;
use super::select::within;

impl Restorer<'_> {
    /// The rename records of a dumpdir, in order, as GNU tar applies them.
    pub(super) fn renames(&mut self, items: &[Item]) {
        let mut temp: Option<Vec<u8>> = None;
        for item in items {
            let Item::Rename(op) = item else { continue };
            self.target.forget();
            match op {
                RenameOp::TempDir(dir) => match self.make_temp(dir) {
                    Ok(path) => temp = Some(path),
                    Err(why) => self.problem(dir, &why),
                },
                RenameOp::Rename { from, to } => {
                    let resolve = |name: &Vec<u8>| -> Result<Vec<u8>, String> {
                        if name.is_empty() {
                            return temp.clone().ok_or_else(|| "no temporary directory".into());
                        }
                        components(name)
                            .map(|c| c.join(&b'/'))
                            .map_err(|m| m.to_string())
                    };
                    let (src, dst) = match (resolve(from), resolve(to)) {
                        (Ok(src), Ok(dst)) if !src.is_empty() && !dst.is_empty() => (src, dst),
                        (Err(why), _) | (_, Err(why)) => {
                            self.problem(from, &format!("rename refused: {why}"));
                            continue;
                        }
                        _ => {
                            self.problem(from, "rename of the target itself refused");
                            continue;
                        }
                    };
                    let is_temp = |p: &[u8]| temp.as_deref() == Some(p);
                    // Whether the target holds something restored at `src` (by the levels
                    // before, whose selection is `previous_only`), and whether what is at
                    // `dst` after the rename is wanted now.
                    let src_had = is_temp(&src)
                        || self.previous_only.is_empty()
                        || self
                            .previous_only
                            .iter()
                            .any(|p| within(&src, p) || within(p, &src));
                    let result = if !src_had {
                        Ok(())
                    } else if is_temp(&dst) || self.selected(&dst) {
                        self.rename_selected(&src, &dst)
                    } else if self.leads_to_selection(&dst) {
                        // Only the selected paths below `dst` move; the rest of `src` goes.
                        let moved: Vec<Vec<u8>> = self
                            .only
                            .iter()
                            .filter(|p| within(p, &dst))
                            .cloned()
                            .collect();
                        let mut result = Ok(());
                        for path in moved {
                            let mut old = src.clone();
                            old.extend_from_slice(&path[dst.len()..]);
                            result = result.and(self.rename_selected(&old, &path));
                        }
                        result.and(self.remove_after_rename(&src, is_temp(&src)))
                    } else {
                        self.remove_after_rename(&src, is_temp(&src))
                    };
                    if let Err(e) = result {
                        self.problem(
                            &src,
                            &format!(
                                "cannot rename to {:?}: {}",
                                String::from_utf8_lossy(&dst),
                                aa_abi::error::os_message(&e)
                            ),
                        );
                    }
                }
            }
        }
        // Left over when the renames through it were outside `only`.
        if let Some(temp) = temp {
            let _ = self.remove_empty_dir(&temp);
        }
    }

    fn remove_empty_dir(&mut self, rel: &[u8]) -> io::Result<()> {
        let (parent, base) = split(rel);
        self.target.forget();
        let dir = self.target.open_new(parent, false)?;
        rustix::fs::unlinkat(&dir, c_name(base)?.as_c_str(), AtFlags::REMOVEDIR)?;
        Ok(())
    }

    /// Removes the empty directory trees below `rel` (which leads to the selection) that are
    /// neither selected nor on the way to it.
    pub(super) fn prune_unselected(&mut self, rel: &[u8]) {
        self.target.forget();
        let Ok(dir) = self.target.open_new(rel, false) else {
            return;
        };
        let Ok(dir) = rustix::fs::openat(
            &dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return;
        };
        let Ok(entries) = list(dir.as_fd()) else {
            return;
        };
        for (name, file_type) in entries {
            if !matches!(file_type, FileType::Directory | FileType::Unknown) {
                continue;
            }
            let mut child = rel.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&name);
            if self.selected(&child) {
                continue;
            }
            if self.leads_to_selection(&child) {
                self.prune_unselected(&child);
            } else {
                prune_empty(dir.as_fd(), &name);
            }
        }
    }

    /// A rename, where a source the restore never made (outside the selection before) is
    /// no error.
    fn rename_selected(&mut self, src: &[u8], dst: &[u8]) -> io::Result<()> {
        match self.rename(src, dst) {
            Err(e)
                if !self.only.is_empty()
                    && e.raw_os_error() == Some(rustix::io::Errno::NOENT.raw_os_error()) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// What is left at the source of a rename whose target is not selected: the temporary
    /// directory of a rename cycle entirely, else what the previous selection restored there.
    fn remove_after_rename(&mut self, src: &[u8], temp: bool) -> io::Result<()> {
        if temp {
            return self.remove(src).map(|_| ());
        }
        self.remove_selected_in(src)?;
        // The directories that only led to what moved.
        let (parent, base) = split(src);
        if let Ok(dir) = self.target.open_new(parent, false) {
            prune_empty(dir.as_fd(), base);
        }
        Ok(())
    }

    /// Removes what of `rel` the previous level's selection restored (a directory renamed out
    /// of the selection).
    fn remove_selected_in(&mut self, rel: &[u8]) -> io::Result<()> {
        if self.previous_only.iter().any(|p| within(rel, p)) {
            return self.remove(rel).map(|_| ());
        }
        let below: Vec<Vec<u8>> = self
            .previous_only
            .iter()
            .filter(|p| within(p, rel))
            .cloned()
            .collect();
        for path in below {
            self.remove(&path)?;
        }
        Ok(())
    }

    fn make_temp(&mut self, dir: &[u8]) -> Result<Vec<u8>, String> {
        let dir = components(dir).map_err(str::to_string)?.join(&b'/');
        let fd = self.target.dir(&dir, true).map_err(|e| e.to_string())?;
        for attempt in 0..100u32 {
            let name = format!(
                "tar.{:06}",
                (std::process::id() ^ attempt.wrapping_mul(2_654_435_761)) % 1_000_000
            );
            match rustix::fs::mkdirat(fd, name.as_str(), Mode::from_raw_mode(0o700)) {
                Ok(()) => {
                    let mut path = dir.clone();
                    if !path.is_empty() {
                        path.push(b'/');
                    }
                    path.extend_from_slice(name.as_bytes());
                    return Ok(path);
                }
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(io::Error::from(e).to_string()),
            }
        }
        Err("cannot make a temporary directory".into())
    }

    fn rename(&mut self, src: &[u8], dst: &[u8]) -> io::Result<()> {
        let (sp, sb) = split(src);
        let (dp, db) = split(dst);
        let from = self.target.open_new(sp, false)?;
        let to = self.target.open_new(dp, true)?;
        rustix::fs::renameat(&from, c_name(sb)?.as_c_str(), &to, c_name(db)?.as_c_str())?;
        self.target.forget();
        Ok(())
    }
}

/// Removes `name` in `dir` if it is a directory holding nothing but (recursively) empty
/// directories; anything else stays.
fn prune_empty(dir: std::os::fd::BorrowedFd<'_>, name: &[u8]) {
    let Ok(c) = c_name(name) else { return };
    let Ok(sub) = rustix::fs::openat(
        dir,
        &c,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    if let Ok(entries) = list(sub.as_fd()) {
        for (child, file_type) in entries {
            if matches!(file_type, FileType::Directory | FileType::Unknown) {
                prune_empty(sub.as_fd(), &child);
            }
        }
    }
    let _ = rustix::fs::unlinkat(dir, &c, AtFlags::REMOVEDIR);
}

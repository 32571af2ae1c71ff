//! Applying the levels of a chain in order, as GNU tar `-x -G` applies them, and exactly at the
//! top level too:
//!
//! * every directory member's dumpdir: first its rename records (`X`, `R`/`T`, whole archive
//!   names), then, from level 1 on, the deletion of every entry of the directory on disk that
//!   the dumpdir does not list, or lists with another type (`D` that is not a directory, `Y`
//!   that is one). Level 0 deletes nothing: what an overwrite target held beforehand stays
//!   unless a member replaces it. An `N` (unchanged) entry that is not on disk was in no
//!   earlier level: a loss, reported as a problem;
//! * after each level k >= 1, the roots rule (the kit's [`roots`](aa_provider_kit::roots)):
//!   every root of level k-1 that level k's roots record lacks is deleted. Without a record
//!   (archives of the original `aa`, of GNU tar, of TarInternal before it wrote one), the roots
//!   of a level are its top-most directory members, and one of level k-1 is deleted when it is
//!   a directory in the target and level k has no directory member of that name; a file root
//!   is kept (it cannot be told from an unchanged one);
//! * with `only`, members equal to or below one of the given paths are restored; directories
//!   leading to them are made as needed; deletions (dumpdir, roots) only remove paths within
//!   the selection. Each level has its own selection ([`super::select`]): a level before a
//!   rename selects the old names of what the last level selects, so a file unchanged since
//!   level 0 in a directory renamed later is restored under its final name. A directory
//!   renamed out of the selection is deleted.
//!
//! Every name is checked before use: absolute names and names with `..` are refused, and every
//! path is resolved beneath the target ([`super::beneath`]).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use aa_abi::capability::{ChainArchive, ItemEvents, RestoreRequest, Totals};
use aa_abi::ProviderError;
use aa_provider_kit::beneath::components;
use aa_provider_kit::dumpdir::{self, Code, Item};
use aa_provider_kit::fatal;
use aa_provider_kit::roots::LevelTops;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::beneath::{c_name, list, remove_at, split, Target};
use super::decompress::Stream;
use super::extract::{DirAttrs, Refused};
use super::reader::{Kind, Member, Reader};
use super::select::{self, within};

/// What a restore needs across members and levels.
pub struct Restorer<'e> {
    pub(super) target: Target,
    pub(super) root_user: bool,
    pub(super) umask: u32,
    pub(super) users: HashMap<Vec<u8>, Option<u32>>,
    pub(super) groups: HashMap<Vec<u8>, Option<u32>>,
    pub(super) delayed: Vec<DirAttrs>,
    events: &'e dyn ItemEvents,
    /// The selection of the level being applied, and of the one before.
    pub(super) only: Vec<Vec<u8>>,
    pub(super) previous_only: Vec<Vec<u8>>,
    /// With `only`: the regular files of this level that were not selected, and the selected
    /// hard links to them, made by a second reading of the level ([`super::links`]).
    pub(super) skipped_files: HashSet<Vec<u8>>,
    pub(super) pending_links: Vec<(Vec<u8>, Vec<u8>)>,
    /// The names problems were reported for, so a loss is reported once.
    reported: HashSet<Vec<u8>>,
    totals: Totals,
}

/// The umask, read without changing it (setting it is process-wide, and the host has other
/// threads).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o777)
}

fn archive_error(archive: &ChainArchive, e: &io::Error) -> ProviderError {
    fatal(archive.path(), e)
}

/// Restores `request`; see the module documentation.
pub fn restore(request: &RestoreRequest, events: &dyn ItemEvents) -> Result<Totals, ProviderError> {
    let target = Target::open(request.target()).map_err(|e| fatal(request.target(), &e))?;
    let only = aa_provider_kit::beneath::only_paths(request.only())?;
    let mut restorer = Restorer {
        target,
        root_user: rustix::process::geteuid().is_root(),
        umask: current_umask(),
        users: HashMap::new(),
        groups: HashMap::new(),
        delayed: Vec::new(),
        events,
        only: Vec::new(),
        previous_only: Vec::new(),
        skipped_files: HashSet::new(),
        pending_links: Vec::new(),
        reported: HashSet::new(),
        totals: Totals::default(),
    };
    let archives = &request.archives;
    let selections = if only.is_empty() || archives.len() < 2 {
        vec![only; archives.len()]
    } else {
        let mut renames = vec![Vec::new()];
        for archive in archives.iter().skip(1) {
            renames.push(select::renames_of(archive)?);
        }
        select::per_level(&only, &renames)
    };
    let mut previous: Option<LevelTops> = None;
    for (index, (archive, selection)) in archives.iter().zip(selections).enumerate() {
        restorer.previous_only = std::mem::replace(&mut restorer.only, selection);
        let level = restorer.level(archive, index == 0)?;
        if let Some(previous) = &previous {
            restorer
                .remove_vanished_roots(previous, &level)
                .map_err(|e| fatal(request.target(), &e))?;
        }
        previous = Some(level);
    }
    if !restorer.only.is_empty() && !request.overwrite {
        // Directories made on the way to paths that an earlier level selected under the names
        // they had then; empty ones are what is left of them. (An overwrite target may have
        // held empty directories of its own: they stay.)
        restorer.prune_unselected(&[]);
    }
    Ok(restorer.totals)
}

impl Restorer<'_> {
    pub(super) fn problem(&mut self, name: &[u8], message: &str) {
        self.totals.problems += 1;
        self.reported.insert(name.to_vec());
        let name = if name.is_empty() { &b"."[..] } else { name };
        self.events
            .problem(Some(Path::new(std::ffi::OsStr::from_bytes(name))), message);
    }

    pub(super) fn selected(&self, rel: &[u8]) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| within(rel, p))
    }

    pub(super) fn leads_to_selection(&self, rel: &[u8]) -> bool {
        rel.is_empty() || self.only.iter().any(|p| within(p, rel))
    }

    /// Applies one archive of the chain.
    fn level(&mut self, archive: &ChainArchive, first: bool) -> Result<LevelTops, ProviderError> {
        let file = File::open(archive.path()).map_err(|e| archive_error(archive, &e))?;
        let mut stream =
            Stream::spawn(file, archive.backup_type).map_err(|e| archive_error(archive, &e))?;
        let mut reader = Reader::new(&mut stream);
        let mut dirs = HashSet::new();
        let target_path = self.target.path.clone();
        self.skipped_files.clear();
        while let Some(member) = reader.next().map_err(|e| archive_error(archive, &e))? {
            let rel = match components(&member.name) {
                Ok(parts) => parts.join(&b'/'),
                Err(message) => {
                    self.problem(&member.name, message);
                    continue;
                }
            };
            if member.kind == Kind::Directory {
                dirs.insert(rel.clone());
            }
            let result = self.member(&mut reader, &member, &rel, first);
            self.settle(archive, &rel, result)?;
        }
        let roots = reader.roots.take();
        drop(reader);
        stream.drain().map_err(|e| archive_error(archive, &e))?;
        self.links_into_selection(archive)?;
        self.finish_dirs().map_err(|e| fatal(&target_path, &e))?;
        Ok(LevelTops::new(roots, dirs))
    }

    /// Reports a member's outcome: a refused member is a problem, an error ends the restore.
    pub(super) fn settle(
        &mut self,
        archive: &ChainArchive,
        rel: &[u8],
        result: Result<(), Result<Refused, io::Error>>,
    ) -> Result<(), ProviderError> {
        match result {
            Ok(()) => Ok(()),
            Err(Ok(Refused(why))) => {
                self.problem(rel, &why);
                Ok(())
            }
            Err(Err(e))
                if e.kind() == io::ErrorKind::InvalidData
                    || e.kind() == io::ErrorKind::UnexpectedEof =>
            {
                Err(archive_error(archive, &e))
            }
            Err(Err(e)) => {
                let path = self.target.path.join(std::ffi::OsStr::from_bytes(rel));
                Err(fatal(&path, &e))
            }
        }
    }

    /// From level 1 on, an entry of the other kind (a directory where a non-directory goes,
    /// or the reverse) was replaced in the source at this level: below the top, the parent's
    /// dumpdir has deleted it already; at the top nothing has, so it is removed here, beneath
    /// the target. Level 0 keeps the overwrite rules of [`super::extract`].
    fn clear_replaced(
        &mut self,
        rel: &[u8],
        directory: bool,
    ) -> Result<(), Result<Refused, io::Error>> {
        let relative = Path::new(std::ffi::OsStr::from_bytes(rel));
        let Ok(meta) = std::fs::symlink_metadata(self.target.path.join(relative)) else {
            return Ok(());
        };
        if meta.is_dir() != directory {
            aa_provider_kit::beneath::remove_beneath(&self.target.path, relative).map_err(Err)?;
        }
        Ok(())
    }

    fn member(
        &mut self,
        reader: &mut Reader<'_>,
        m: &Member,
        rel: &[u8],
        first: bool,
    ) -> Result<(), Result<Refused, io::Error>> {
        let selected = self.selected(rel);
        if m.kind == Kind::Directory {
            if !selected && !self.leads_to_selection(rel) {
                return Ok(());
            }
            if !first {
                self.clear_replaced(rel, true)?;
            }
            if let Some(bytes) = &m.dumpdir {
                let items = match dumpdir::parse(bytes) {
                    Ok(items) => items,
                    Err(e) => return Err(Ok(Refused(format!("bad dumpdir: {e}")))),
                };
                self.renames(&items);
                if !first {
                    self.purge(rel, &items)?;
                }
            }
            self.directory(m, rel, selected)?;
            if selected {
                self.item(rel, 0);
            }
            return Ok(());
        }
        if !selected {
            if m.kind == Kind::File {
                self.skipped_files.insert(rel.to_vec());
            }
            return Ok(());
        }
        if m.kind == Kind::HardLink && self.link_outside_selection(m, rel) {
            return Ok(());
        }
        if rel.is_empty() {
            return Err(Ok(Refused(
                "a non-directory named as the target itself".into(),
            )));
        }
        if let Kind::Unsupported(b'V') = m.kind {
            return Ok(());
        }
        if !first {
            self.clear_replaced(rel, false)?;
        }
        let size = self.extract(reader, m, rel)?;
        self.totals.bytes += size;
        self.item(rel, size);
        Ok(())
    }

    pub(super) fn count_bytes(&mut self, size: u64) {
        self.totals.bytes += size;
    }

    pub(super) fn item(&mut self, rel: &[u8], size: u64) {
        self.totals.items += 1;
        let name = if rel.is_empty() { &b"."[..] } else { rel };
        self.events
            .item(Path::new(std::ffi::OsStr::from_bytes(name)), size);
    }

    /// Removes `rel` from the target (never leaving it); whether it was there.
    pub(super) fn remove(&mut self, rel: &[u8]) -> io::Result<bool> {
        let (parent, base) = split(rel);
        self.target.forget();
        let dir = match self.target.open_new(parent, false) {
            Ok(dir) => dir,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOENT.raw_os_error()) => {
                return Ok(false)
            }
            Err(e) => return Err(e),
        };
        remove_at(dir.as_fd(), base)
    }

    /// Deletes from the directory `rel` on disk what its dumpdir does not list (or lists as
    /// another type), as GNU tar does before it extracts the directory.
    fn purge(&mut self, rel: &[u8], items: &[Item]) -> Result<(), Result<Refused, io::Error>> {
        let (parent, base) = split(rel);
        let dir = if rel.is_empty() {
            rustix::fs::openat(
                self.target.root(),
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        } else {
            let Ok(parent_fd) = self.target.open_new(parent, false) else {
                return Ok(());
            };
            let name = c_name(base).map_err(Err)?;
            rustix::fs::openat(
                &parent_fd,
                &name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        // Not there, or not a directory: nothing to purge (GNU tar's rule too).
        let Ok(dir) = dir else { return Ok(()) };
        let listed: HashMap<&[u8], Code> = items
            .iter()
            .filter_map(|i| match i {
                Item::Entry(e) => Some((e.name.as_slice(), e.code)),
                Item::Rename(_) => None,
            })
            .collect();
        let entries = list(dir.as_fd()).map_err(Err)?;
        self.report_missing(rel, items, &entries);
        for (name, mut file_type) in entries {
            let mut child = rel.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&name);
            if !self.selected(&child) {
                continue;
            }
            if file_type == FileType::Unknown {
                let c = c_name(&name).map_err(Err)?;
                match rustix::fs::statat(&dir, &c, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => file_type = FileType::from_raw_mode(st.st_mode),
                    Err(_) => continue,
                }
            }
            let is_dir = file_type == FileType::Directory;
            let keep = match listed.get(name.as_slice()) {
                None => false,
                Some(Code::Directory) => is_dir,
                Some(Code::Dumped) => !is_dir,
                Some(Code::Unchanged) => true,
            };
            if !keep {
                self.target.forget();
                if let Err(e) = remove_at(dir.as_fd(), &name) {
                    if super::extract::is_fatal(&e) {
                        return Err(Err(e));
                    }
                    self.problem(
                        &child,
                        &format!("cannot delete: {}", aa_abi::error::os_message(&e)),
                    );
                }
            }
        }
        Ok(())
    }

    /// Reports the names the dumpdir lists as unchanged that no earlier level restored
    /// ([`dumpdir::LOST_UNCHANGED`]), once each.
    fn report_missing(&mut self, rel: &[u8], items: &[Item], present: &[(Vec<u8>, FileType)]) {
        let present: HashSet<&[u8]> = present.iter().map(|(n, _)| n.as_slice()).collect();
        for item in items {
            let Item::Entry(entry) = item else { continue };
            if entry.code != Code::Unchanged || present.contains(entry.name.as_slice()) {
                continue;
            }
            let mut child = rel.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&entry.name);
            if self.selected(&child) && !self.reported.contains(&child) {
                self.problem(&child, dumpdir::LOST_UNCHANGED);
            }
        }
    }

    /// The roots rule between two consecutive levels (see the module documentation).
    fn remove_vanished_roots(&mut self, previous: &LevelTops, level: &LevelTops) -> io::Result<()> {
        for dropped in level.dropped(previous) {
            let root = dropped.root;
            if dropped.only_if_directory && !self.is_dir(&root) {
                continue;
            }
            if self.selected(&root) {
                self.remove(&root)?;
            } else {
                let below: Vec<Vec<u8>> = self
                    .only
                    .iter()
                    .filter(|p| within(p, &root))
                    .cloned()
                    .collect();
                for path in below {
                    self.remove(&path)?;
                }
            }
        }
        Ok(())
    }

    fn is_dir(&mut self, rel: &[u8]) -> bool {
        let (parent, base) = split(rel);
        let Ok(dir) = self.target.open_new(parent, false) else {
            return false;
        };
        let Ok(name) = c_name(base) else { return false };
        rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
    }
}

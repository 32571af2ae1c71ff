//! Restoring a chain by running GNU tar once per level:
//! `tar -x --listed-incremental=/dev/null -f ARCHIVE -C TARGET`, which applies each level's
//! dumpdir deletions and renames itself and detects the compression by itself.
//!
//! What GNU tar does not do is made here, around each run:
//!
//! * **safety**: each level is listed first (`tar -t`); members with an absolute name or a `..`
//!   component, and members whose parent directory would be reached through a symbolic link
//!   leading out of the target (one a previous level made: GNU tar follows those), are
//!   reported as problems and excluded from the extraction (`--anchored --no-wildcards
//!   --exclude=NAME`, exact names). A symbolic link and a member below it in the same level
//!   are GNU tar's own to handle: it makes such links last (delayed symlinks), so nothing is
//!   ever written through them. Hard links whose target lies through such a link are refused
//!   too ([`crate::hardlinks`]). A directory member whose path is now a symbolic link leading
//!   out of the target has that link removed first (the archive says it is a directory now);
//! * **the top level** (the roots rule of [`aa_provider_kit::roots`]): after level k >= 1,
//!   every root of level k-1 that level k's record lacks is deleted, beneath the target only
//!   ([`aa_provider_kit::beneath::remove_beneath`]). Without records, a root of level k-1 that
//!   is a directory in the target and has no directory member (a listed name ending in `/`)
//!   in level k is deleted; a file root is kept (it cannot be told from an unchanged one);
//! * **`only`**: GNU tar keeps a level's renames in the dumpdir of its first directory, which
//!   extracting only a selection would skip, so the whole chain is restored into a private
//!   directory inside the target (`.aa-restore-PID-STAMP`, mode 0700, same file system) and the
//!   selected paths are then moved into place, the directories leading to them made with the
//!   chain's modes and times, the rest removed ([`restore_only`]). Exact like `TarInternal`'s
//!   per-level selection, at the price of restoring everything once.
//!
//! * **losses**: after level k >= 1, a name its dumpdirs list as unchanged that is not in the
//!   target was in no earlier level, and is reported as a problem ([`unchanged_names`]).
//!
//! Restored members are the `-v` lines that name a listed member (GNU tar prints its
//! "Deleting" notices there too), reported when tar has ended, with their sizes read back
//! from the target (0 for anything but a regular file).

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::thread;

use aa_abi::capability::{ChainArchive, ItemEvents, RestoreRequest, Totals};
use aa_abi::ProviderError;
use aa_provider_kit::beneath::{self, ancestors, components, within};
use aa_provider_kit::dumpdir;
use aa_provider_kit::fatal;
use aa_provider_kit::roots::LevelTops;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::option_with;
use crate::quoting::{split_fields, unescape};
use crate::record::read_roots;
use crate::run::{forward_lines, tar_command, Line};

/// How many of tar's last diagnostics are quoted in a failure message.
const CONTEXT_LINES: usize = 3;

/// One member of a level's listing.
pub(crate) struct Listed {
    /// As GNU tar prints it (`--quoting-style=escape`), to match its `-v` lines.
    pub printed: Vec<u8>,
    /// The name in the archive.
    pub raw: Vec<u8>,
}

fn os(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

pub(crate) fn archive_failed(archive: &Path, what: &str, stderr: &[u8]) -> ProviderError {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.strip_prefix("tar: ").unwrap_or(l))
        .collect();
    let context = lines[lines.len().saturating_sub(CONTEXT_LINES)..].join("; ");
    ProviderError::other(format!(
        "{}: cannot be read by GNU tar ({what}){}{context}",
        archive.display(),
        if context.is_empty() { "" } else { ": " }
    ))
}

/// A read of an archive that is a pipe (the host streams a backup from an object store
/// through one) may return part of a record; without this GNU tar takes that for an
/// "Unaligned block" of a plain `.tar` and gives up. A regular file's reads are whole
/// records anyway, and a compressed archive comes through tar's own pipe from the
/// decompressor, which tar reads this way already.
const READ_FULL_RECORDS: &str = "--read-full-records";

/// Runs `tar -t OPTIONS --quoting-style=escape --force-local --read-full-records
/// --file=ARCHIVE` to its end, whatever its exit status; an error only when tar cannot be run.
fn run_listing(tar: &Path, archive: &Path, options: &[&str]) -> Result<Output, ProviderError> {
    tar_command(tar)
        .arg("-t")
        .args(options)
        .args(["--quoting-style=escape", "--force-local", READ_FULL_RECORDS])
        .arg(option_with("--file=", archive.as_os_str().as_bytes()))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ProviderError::from_io(format!("cannot run GNU tar {}", tar.display()), &e))
}

/// GNU tar's listing of `archive` with `options` (as [`run_listing`] runs it): its stdout;
/// an error naming the archive unless tar succeeded.
pub(crate) fn listing(
    tar: &Path,
    archive: &Path,
    options: &[&str],
) -> Result<Vec<u8>, ProviderError> {
    let output = run_listing(tar, archive, options)?;
    if !output.status.success() {
        return Err(archive_failed(archive, "listing", &output.stderr));
    }
    Ok(output.stdout)
}

/// The members of `archive` as GNU tar lists them, and what tar said on stderr (warnings,
/// when it succeeded); an error names the archive.
pub(crate) fn list(tar: &Path, archive: &Path) -> Result<(Vec<Listed>, Vec<u8>), ProviderError> {
    let output = run_listing(tar, archive, &[])?;
    if !output.status.success() {
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        };
        return Err(archive_failed(archive, &status, &output.stderr));
    }
    let members = output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|printed| Listed {
            raw: unescape(printed),
            printed: printed.to_vec(),
        })
        .collect();
    Ok((members, output.stderr))
}

/// The names (relative to the target) that the dumpdirs of a level list as unchanged (`N`),
/// from GNU tar's `-t --listed-incremental=/dev/null -vv` output (`verbose`) and the plain
/// listing of the same archive (`members`, in the same order).
///
/// Each member has one line there, beginning with its ten-character mode; a directory's line
/// is followed by its dumpdir, one `C name` line per entry (`C` one of `YNDRTX`, then a
/// space, which no mode string has second) and an empty line. GNU tar prints dumpdir names
/// unquoted, so a name holding a newline could pass for entries: when the member lines and
/// the plain listing get out of step, nothing is reported rather than something wrong.
fn unchanged_names(verbose: &[u8], members: &[Listed]) -> Vec<Vec<u8>> {
    let mut members = members.iter();
    let mut dir: Option<Vec<u8>> = None;
    let mut names = Vec::new();
    for line in verbose.split(|&b| b == b'\n') {
        if line.is_empty() {
            dir = None;
            continue;
        }
        if line.len() >= 2 && line[1] == b' ' && b"YNDRTX".contains(&line[0]) {
            if let (b'N', Some(dir)) = (line[0], &dir) {
                let mut rel = dir.clone();
                if !rel.is_empty() {
                    rel.push(b'/');
                }
                rel.extend_from_slice(&line[2..]);
                names.push(rel);
            }
            continue;
        }
        let Some(member) = members.next() else {
            return Vec::new();
        };
        dir = None;
        if member.raw.ends_with(b"/") {
            if !line.ends_with(&member.printed) {
                return Vec::new();
            }
            dir = components(&member.raw).ok().map(|parts| parts.join(&b'/'));
        }
    }
    if members.next().is_some() {
        return Vec::new();
    }
    names
}

/// The restore of one request.
struct Restorer<'a> {
    tar: &'a Path,
    target: &'a Path,
    root: OwnedFd,
    /// Whether the target may hold links out of it already (see [`crate::hardlinks`]).
    check_links: bool,
    /// Whether the level being applied is not the first.
    later: bool,
    /// Where a lost file is reported (everywhere when empty), and the names reported so far.
    report_only: &'a [Vec<u8>],
    reported: HashSet<Vec<u8>>,
    events: &'a dyn ItemEvents,
    totals: Totals,
}

/// Restores `request` with the GNU tar at `tar`; see the module documentation.
pub fn restore(
    tar: &Path,
    request: &RestoreRequest,
    events: &dyn ItemEvents,
) -> Result<Totals, ProviderError> {
    if !request.only.is_empty() {
        return restore_only(tar, request, events);
    }
    restore_levels(tar, request, events, &[])
}

/// Restores every level of `request` (no `only`); losses are reported within `report_only`
/// (everywhere when empty).
fn restore_levels(
    tar: &Path,
    request: &RestoreRequest,
    events: &dyn ItemEvents,
    report_only: &[Vec<u8>],
) -> Result<Totals, ProviderError> {
    let target = request.target();
    let root = rustix::fs::open(
        target,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fatal(target, &e.into()))?;
    let mut restorer = Restorer {
        tar,
        target,
        root,
        check_links: request.overwrite,
        later: false,
        report_only,
        reported: HashSet::new(),
        events,
        totals: Totals::default(),
    };
    let mut previous: Option<LevelTops> = None;
    for archive in request.archives.iter() {
        let level = restorer.level(archive)?;
        restorer.check_links = true;
        restorer.later = true;
        if let Some(previous) = &previous {
            restorer
                .remove_vanished_roots(previous, &level)
                .map_err(|e| fatal(target, &e))?;
        }
        previous = Some(level);
    }
    Ok(restorer.totals)
}

/// `--only`: GNU tar keeps a level's renames in the dumpdir of its first directory, which a
/// selection would not extract, so content stored under a directory's old name before a later
/// rename would be missed. The whole chain is restored into a private directory inside the
/// target (same file system) instead, then the selected paths are moved into place and the
/// rest removed.
fn restore_only(
    tar: &Path,
    request: &RestoreRequest,
    events: &dyn ItemEvents,
) -> Result<Totals, ProviderError> {
    use std::os::unix::fs::DirBuilderExt;

    let target = request.target();
    let only = beneath::only_paths(request.only())?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let private_name = format!(".aa-restore-{}-{stamp:x}", std::process::id());
    let private = target.join(&private_name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|e| fatal(&private, &e))?;
    let whole = RestoreRequest {
        archives: request.archives.clone(),
        target: private.as_path().into(),
        only: Default::default(),
        overwrite: false,
    };
    let selected = Selected {
        only: &only,
        events,
    };
    let result = restore_levels(tar, &whole, &selected, &only).and_then(|mut totals| {
        totals.items = selected_items(&private, &only);
        move_selected(&private, target, &only).map_err(|e| fatal(target, &e))?;
        Ok(totals)
    });
    let removed = beneath::remove_beneath(target, Path::new(&private_name));
    let totals = result?;
    removed.map_err(|e| fatal(&private, &e))?;
    Ok(totals)
}

/// Passes on the items within `only` and every problem.
struct Selected<'a> {
    only: &'a [Vec<u8>],
    events: &'a dyn ItemEvents,
}

impl ItemEvents for Selected<'_> {
    fn item(&self, name: &Path, size: u64) {
        let rel = name.as_os_str().as_bytes();
        if self.only.iter().any(|p| within(rel, p)) {
            self.events.item(name, size);
        }
    }

    fn problem(&self, name: Option<&Path>, message: &str) {
        self.events.problem(name, message);
    }
}

/// How many entries the selected paths hold in the private restore.
fn selected_items(private: &Path, only: &[Vec<u8>]) -> u64 {
    fn count(path: &Path) -> u64 {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                1 + std::fs::read_dir(path)
                    .map(|entries| entries.flatten().map(|e| count(&e.path())).sum())
                    .unwrap_or(0)
            }
            Ok(_) => 1,
            Err(_) => 0,
        }
    }
    only.iter().map(|p| count(&private.join(os(p)))).sum()
}

/// Moves each selected path of `private` to the same place in `target`, making the
/// directories leading to it as the chain has them (mode and time copied once it is in).
fn move_selected(private: &Path, target: &Path, only: &[Vec<u8>]) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let mut parents: Vec<Vec<u8>> = Vec::new();
    for path in only {
        let from = private.join(os(path));
        if std::fs::symlink_metadata(&from).is_err() {
            continue;
        }
        for parent in ancestors(path).collect::<Vec<_>>().into_iter().rev() {
            let dir = target.join(os(parent));
            match std::fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(io::Error::other(format!(
                        "{}: not a directory, cannot restore {} below it",
                        dir.display(),
                        String::from_utf8_lossy(path)
                    )))
                }
                Err(_) => {
                    std::fs::create_dir(&dir)?;
                    parents.push(parent.to_vec());
                }
            }
        }
        let to = target.join(os(path));
        if std::fs::symlink_metadata(&to).is_ok() {
            beneath::remove_beneath(target, os(path))?;
        }
        std::fs::rename(&from, &to)?;
    }
    // Deepest first, so that setting a directory's time is not undone by making its children.
    parents.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for parent in parents {
        let meta = std::fs::symlink_metadata(private.join(os(&parent)))?;
        let dir = target.join(os(&parent));
        std::fs::set_permissions(
            &dir,
            std::fs::Permissions::from_mode(meta.permissions().mode()),
        )?;
        let times = std::fs::FileTimes::new()
            .set_accessed(meta.accessed()?)
            .set_modified(meta.modified()?);
        std::fs::File::open(&dir)?.set_times(times)?;
    }
    Ok(())
}

impl Restorer<'_> {
    fn problem(&mut self, name: Option<&[u8]>, message: &str) {
        self.totals.problems += 1;
        if let Some(name) = name {
            self.reported.insert(name.to_vec());
        }
        self.events.problem(name.map(os), message);
    }

    /// Whether opening the directory `rel` beneath the target would leave it.
    fn escapes(&self, rel: &[u8]) -> bool {
        match beneath::open_dir(self.root.as_fd(), rel, OFlags::PATH) {
            Ok(_) => false,
            Err(e) => e.kind() == io::ErrorKind::PermissionDenied,
        }
    }

    /// Lists, checks and extracts one level.
    fn level(&mut self, archive: &ChainArchive) -> Result<LevelTops, ProviderError> {
        let path = archive.path();
        let (members, _) = list(self.tar, path)?;
        let roots = read_roots(archive)?;
        let mut dirs = HashSet::new();
        let mut refused: Vec<Vec<u8>> = Vec::new();
        let mut names: HashSet<Vec<u8>> = HashSet::new();
        let mut selected: Vec<Vec<u8>> = Vec::new();
        let mut parent_escapes: HashMap<Vec<u8>, bool> = HashMap::new();
        let mut relink: Vec<Vec<u8>> = Vec::new();
        for member in &members {
            let rel = match components(&member.raw) {
                Ok(parts) => parts.join(&b'/'),
                Err(message) => {
                    self.problem(Some(&member.raw), message);
                    refused.push(member.raw.clone());
                    continue;
                }
            };
            let is_dir = member.raw.ends_with(b"/");
            if is_dir {
                dirs.insert(rel.clone());
            }
            let parent = rel
                .iter()
                .rposition(|&b| b == b'/')
                .map_or(&rel[..0], |at| &rel[..at])
                .to_vec();
            let escapes = match parent_escapes.get(&parent) {
                Some(&escapes) => escapes,
                None => {
                    let escapes = self.escapes(&parent);
                    parent_escapes.insert(parent, escapes);
                    escapes
                }
            };
            if escapes {
                self.problem(
                    Some(&member.raw),
                    "refused, the path leads outside the target through a symbolic link",
                );
                refused.push(member.raw.clone());
                continue;
            }
            if is_dir && !rel.is_empty() && self.escapes(&rel) {
                relink.push(rel.clone());
            } else if self.later
                && !rel.is_empty()
                && self.stat(&rel).is_some()
                && self.is_dir(&rel) != is_dir
            {
                // Replaced by an entry of the other kind at this level: below the top the
                // parent's dumpdir deletes the old one, at the top nothing does, and GNU tar
                // would fail with "File exists" or "Not a directory".
                relink.push(rel.clone());
            }
            names.insert(member.printed.clone());
            selected.push(rel);
        }
        if self.check_links {
            self.refuse_links_out(path, &members, &mut refused)?;
        }
        for rel in relink {
            beneath::remove_beneath(self.target, os(&rel))
                .map_err(|e| fatal(&self.target.join(os(&rel)), &e))?;
        }
        self.extract(path, &refused, &names)?;
        if self.later {
            self.report_lost(path, &members)?;
        }
        Ok(LevelTops::new(roots, dirs))
    }

    /// Reports each name a dumpdir of this level lists as unchanged that is not in the target
    /// after it ([`dumpdir::LOST_UNCHANGED`]): no earlier level held it.
    fn report_lost(&mut self, archive: &Path, members: &[Listed]) -> Result<(), ProviderError> {
        let verbose = listing(
            self.tar,
            archive,
            &["--listed-incremental=/dev/null", "--verbose", "--verbose"],
        )?;
        for rel in unchanged_names(&verbose, members) {
            let wanted =
                self.report_only.is_empty() || self.report_only.iter().any(|p| within(&rel, p));
            if wanted && !self.reported.contains(&rel) && self.stat(&rel).is_none() {
                self.problem(Some(&rel), dumpdir::LOST_UNCHANGED);
            }
        }
        Ok(())
    }

    /// Adds to `refused` (reporting each) the hard links whose target is reached through a
    /// symbolic link out of the target, or is absolute or has a `..`.
    fn refuse_links_out(
        &mut self,
        archive: &Path,
        members: &[Listed],
        refused: &mut Vec<Vec<u8>>,
    ) -> Result<(), ProviderError> {
        let names: HashSet<Vec<u8>> = members.iter().map(|m| m.raw.clone()).collect();
        for (name, link) in crate::hardlinks::hard_links(self.tar, archive, &names)? {
            if refused.contains(&name) {
                continue;
            }
            let why = match components(&link) {
                Err(_) => "hard link to an absolute name or one with '..' refused",
                Ok(parts) => {
                    let parent = parts[..parts.len().saturating_sub(1)].join(&b'/');
                    if !self.escapes(&parent) {
                        continue;
                    }
                    "refused, the hard link's target leads outside the target through a \
                     symbolic link"
                }
            };
            self.problem(Some(&name), why);
            refused.push(name);
        }
        Ok(())
    }

    /// Runs GNU tar's extraction of `archive`, `refused` excluded.
    fn extract(
        &mut self,
        archive: &Path,
        refused: &[Vec<u8>],
        names: &HashSet<Vec<u8>>,
    ) -> Result<(), ProviderError> {
        let mut command = tar_command(self.tar);
        command.args([
            "-x",
            "--listed-incremental=/dev/null",
            "--verbose",
            "--quoting-style=escape",
            "--force-local",
            READ_FULL_RECORDS,
            "--preserve-permissions",
            "--anchored",
            "--no-wildcards",
        ]);
        command.arg(if rustix::process::geteuid().is_root() {
            "--same-owner"
        } else {
            "--no-same-owner"
        });
        for name in refused {
            command.arg(option_with("--exclude=", name));
        }
        command
            .arg(option_with("--file=", archive.as_os_str().as_bytes()))
            .arg(option_with(
                "--directory=",
                self.target.as_os_str().as_bytes(),
            ));
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                ProviderError::from_io(format!("cannot run GNU tar {}", self.tar.display()), &e)
            })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            unreachable!("both output streams were requested as pipes")
        };
        let mut problems = 0u64;
        let mut fatal_seen = false;
        let mut recent: Vec<String> = Vec::new();
        // Raised once tar is done: it prints a name before it writes the member.
        let mut restored: Vec<Vec<u8>> = Vec::new();
        thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            let tx_err = tx.clone();
            scope.spawn(move || forward_lines(stdout, Line::Out, tx));
            scope.spawn(move || forward_lines(stderr, Line::Err, tx_err));
            for line in rx {
                match line {
                    Line::Out(printed) if names.contains(&printed) => restored.push(printed),
                    Line::Out(_) => {}
                    Line::Err(text) => match stderr_line(&text) {
                        Diagnostic::Ignore => {}
                        Diagnostic::Fatal => {
                            fatal_seen = true;
                            recent.push(String::from_utf8_lossy(&text).into_owned());
                        }
                        Diagnostic::Problem(name, message) => {
                            problems += 1;
                            recent.push(String::from_utf8_lossy(&text).into_owned());
                            self.problem(name.as_deref(), &message);
                        }
                    },
                }
            }
        });
        let status = child.wait().map_err(|e| {
            ProviderError::from_io(format!("cannot run GNU tar {}", self.tar.display()), &e)
        })?;
        for printed in restored {
            self.item(&printed);
        }
        let context = recent.join("\n").into_bytes();
        match status.code() {
            Some(0) if !fatal_seen => Ok(()),
            Some(2) if problems > 0 && !fatal_seen => Ok(()),
            Some(code) => Err(archive_failed(
                archive,
                &format!("exit status {code}"),
                &context,
            )),
            None => Err(archive_failed(archive, "killed by a signal", &context)),
        }
    }

    fn item(&mut self, printed: &[u8]) {
        let raw = unescape(printed);
        let size = match components(&raw) {
            Ok(parts) => self.size(&parts.join(&b'/')),
            Err(_) => 0,
        };
        self.totals.items += 1;
        self.totals.bytes += size;
        self.events.item(os(&raw), size);
    }

    /// The size of the regular file `rel` in the target, else 0; never looked up outside it.
    fn size(&self, rel: &[u8]) -> u64 {
        self.stat(rel)
            .filter(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
            .map_or(0, |st| st.st_size as u64)
    }

    fn stat(&self, rel: &[u8]) -> Option<rustix::fs::Stat> {
        let (parent, base) = match rel.iter().rposition(|&b| b == b'/') {
            Some(at) => (&rel[..at], &rel[at + 1..]),
            None => (&rel[..0], rel),
        };
        if base.is_empty() {
            return None;
        }
        let dir = beneath::open_dir(self.root.as_fd(), parent, OFlags::PATH).ok()?;
        rustix::fs::statat(&dir, os(base), AtFlags::SYMLINK_NOFOLLOW).ok()
    }

    fn is_dir(&self, rel: &[u8]) -> bool {
        self.stat(rel)
            .is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
    }

    fn remove(&self, rel: &[u8]) -> io::Result<()> {
        beneath::remove_beneath(self.target, os(rel)).map(|_| ())
    }

    /// The roots rule between two consecutive levels (see the module documentation).
    fn remove_vanished_roots(&mut self, previous: &LevelTops, level: &LevelTops) -> io::Result<()> {
        for dropped in level.dropped(previous) {
            let root = dropped.root;
            if dropped.only_if_directory && !self.is_dir(&root) {
                continue;
            }
            self.remove(&root)?;
        }
        Ok(())
    }
}

/// What a line of GNU tar's stderr means for a restore.
#[derive(Debug, PartialEq, Eq)]
enum Diagnostic {
    Ignore,
    /// Something was not restored: the member, if the line names one, and tar's message.
    Problem(Option<Vec<u8>>, String),
    /// tar gave up.
    Fatal,
}

fn stderr_line(line: &[u8]) -> Diagnostic {
    let text = line.strip_prefix(b"tar: ").unwrap_or(line);
    if text.iter().all(u8::is_ascii_whitespace)
        || text.starts_with(b"Removing leading")
        || text.starts_with(b"Exiting with failure status")
    {
        return Diagnostic::Ignore;
    }
    if text.starts_with(b"Error is not recoverable") {
        return Diagnostic::Fatal;
    }
    let fields = split_fields(text);
    match fields.as_slice() {
        [name, rest @ ..] if rest.len() >= 2 || (rest.len() == 1 && !name.contains(&b' ')) => {
            let message: Vec<String> = rest
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            Diagnostic::Problem(Some(unescape(name)), message.join(": "))
        }
        _ => Diagnostic::Problem(None, String::from_utf8_lossy(text).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(printed: &[u8]) -> Listed {
        Listed {
            printed: printed.to_vec(),
            raw: unescape(printed),
        }
    }

    #[test]
    fn unchanged_names_come_from_the_dumpdirs_and_out_of_step_gives_none() {
        let members = [listed(b"data/"), listed(b"data/c"), listed(b"data/sub/")];
        let verbose = b"drwxr-xr-x root/root 0 2026-12-03 05:39 data/\n\
N a\nY c\nD sub\nN b c\n\n\
-rw-r--r-- root/root 2 2026-12-03 05:39 data/c\n\
drwxr-xr-x root/root 0 2026-12-03 05:39 data/sub/\nN d\n\n";
        assert_eq!(
            unchanged_names(verbose, &members),
            [&b"data/a"[..], b"data/b c", b"data/sub/d"]
        );
        // An unquoted dumpdir name with a newline ("Y new\nline") shifts the member lines.
        let shifted = b"drwxr-xr-x root/root 0 2026-12-03 05:39 data/\nN a\nY new\nline\n\n\
-rw-r--r-- root/root 2 2026-12-03 05:39 data/c\n";
        assert_eq!(
            unchanged_names(shifted, &members[..2]),
            Vec::<Vec<u8>>::new()
        );
    }

    #[test]
    fn stderr_lines() {
        assert_eq!(
            stderr_line(b"tar: Removing leading `../' from member names"),
            Diagnostic::Ignore
        );
        assert_eq!(
            stderr_line(b"tar: Exiting with failure status due to previous errors"),
            Diagnostic::Ignore
        );
        assert_eq!(
            stderr_line(b"tar: Error is not recoverable: exiting now"),
            Diagnostic::Fatal
        );
        assert_eq!(
            stderr_line(br"tar: evil\: x/inside: Cannot open: Not a directory"),
            Diagnostic::Problem(
                Some(b"evil: x/inside".to_vec()),
                "Cannot open: Not a directory".to_string()
            )
        );
        assert_eq!(
            stderr_line(b"tar: Unexpected EOF in archive"),
            Diagnostic::Problem(None, "Unexpected EOF in archive".to_string())
        );
    }
}

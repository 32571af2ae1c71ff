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
//! * **`only`**: the members of a level within the given paths are passed to GNU tar as member
//!   names (it extracts what is below a directory name); a level holding none of them is not
//!   extracted at all (GNU tar would extract everything). Deletions by the roots rule stay
//!   within the paths. Unlike `TarInternal`, renames are not followed back through earlier
//!   levels: a path selected under its final name restores only what the levels stored under
//!   that name (GNU tar records renames in the dumpdir of a level's first directory, which a
//!   selection below it does not extract). A selected path that a later level deletes below
//!   the top is deleted by the dumpdir of its nearest directory ([`crate::dumpdirs`]), which
//!   GNU tar does not apply when it extracts only the selection.
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
use aa_provider_kit::fatal;
use aa_provider_kit::roots::LevelTops;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::option_with;
use crate::quoting::{split_fields, unescape};
use crate::record::read_roots;
use crate::run::{forward_lines, tar_command, write_names, Line};

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

/// Runs `tar -t OPTIONS --quoting-style=escape --force-local --file=ARCHIVE` to its end,
/// whatever its exit status; an error only when tar cannot be run.
fn run_listing(tar: &Path, archive: &Path, options: &[&str]) -> Result<Output, ProviderError> {
    tar_command(tar)
        .arg("-t")
        .args(options)
        .args(["--quoting-style=escape", "--force-local"])
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

/// The restore of one request.
struct Restorer<'a> {
    tar: &'a Path,
    target: &'a Path,
    root: OwnedFd,
    only: Vec<Vec<u8>>,
    /// Whether the target may hold links out of it already (see [`crate::hardlinks`]).
    check_links: bool,
    /// Whether the level being applied is not the first.
    later: bool,
    events: &'a dyn ItemEvents,
    totals: Totals,
}

/// Restores `request` with the GNU tar at `tar`; see the module documentation.
pub fn restore(
    tar: &Path,
    request: &RestoreRequest,
    events: &dyn ItemEvents,
) -> Result<Totals, ProviderError> {
    let target = request.target();
    let root = rustix::fs::open(
        target,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fatal(target, &e.into()))?;
    let only = beneath::only_paths(request.only())?;
    let mut restorer = Restorer {
        tar,
        target,
        root,
        only,
        check_links: request.overwrite,
        later: false,
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

impl Restorer<'_> {
    fn problem(&mut self, name: Option<&[u8]>, message: &str) {
        self.totals.problems += 1;
        self.events.problem(name.map(os), message);
    }

    fn selected(&self, rel: &[u8]) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| within(rel, p))
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
            if !self.selected(&rel) {
                continue;
            }
            if is_dir && !rel.is_empty() && self.escapes(&rel) {
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
        if self.only.is_empty() {
            self.extract(path, &refused, &[], &names)?;
        } else if !selected.is_empty() {
            // The top-most selected members: GNU tar extracts what is below each.
            let chosen: HashSet<&[u8]> = selected.iter().map(Vec::as_slice).collect();
            let arguments: Vec<Vec<u8>> = members
                .iter()
                .filter(|m| names.contains(&m.printed))
                .filter(|m| match components(&m.raw) {
                    Ok(parts) => {
                        let rel = parts.join(&b'/');
                        let top = !ancestors(&rel).any(|a| chosen.contains(a));
                        top
                    }
                    Err(_) => false,
                })
                .map(|m| m.raw.clone())
                .collect();
            self.extract(path, &refused, &arguments, &names)?;
        }
        if !self.only.is_empty() && self.later {
            self.remove_vanished_selections(path, &selected)?;
        }
        Ok(LevelTops::new(roots, dirs))
    }

    /// After a level k >= 1 restored with `only`: each selected path this level holds no
    /// member within is deleted when the dumpdir of its nearest directory member (below the
    /// top, which the roots rule covers) lacks the entry leading to it.
    fn remove_vanished_selections(
        &mut self,
        archive: &Path,
        selected: &[Vec<u8>],
    ) -> Result<(), ProviderError> {
        let untouched: Vec<Vec<u8>> = self
            .only
            .iter()
            .filter(|p| !selected.iter().any(|s| within(s, p)))
            .cloned()
            .collect();
        if untouched.is_empty() {
            return Ok(());
        }
        let dumps = crate::dumpdirs::dumpdirs(self.tar, archive)?;
        for path in untouched {
            let nearest = ancestors(&path)
                .chain(std::iter::once(&path[..0]))
                .find_map(|a| dumps.get(a).map(|entries| (a, entries)));
            let Some((dir, entries)) = nearest else {
                continue;
            };
            let below = if dir.is_empty() {
                &path[..]
            } else {
                &path[dir.len() + 1..]
            };
            let entry = below.split(|&b| b == b'/').next().unwrap_or_default();
            if !entries.contains(entry) {
                self.remove(&path)
                    .map_err(|e| fatal(&self.target.join(os(&path)), &e))?;
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

    /// Runs GNU tar's extraction of `archive`, `refused` excluded, only `members` when given.
    fn extract(
        &mut self,
        archive: &Path,
        refused: &[Vec<u8>],
        members: &[Vec<u8>],
        names: &HashSet<Vec<u8>>,
    ) -> Result<(), ProviderError> {
        let mut command = tar_command(self.tar);
        command.args([
            "-x",
            "--listed-incremental=/dev/null",
            "--verbose",
            "--quoting-style=escape",
            "--force-local",
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
        if !members.is_empty() {
            command.args(["--null", "--verbatim-files-from", "--no-unquote", "-T", "-"]);
        }
        let mut child = command
            .stdin(if members.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                ProviderError::from_io(format!("cannot run GNU tar {}", self.tar.display()), &e)
            })?;
        let stdin = child.stdin.take();
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            unreachable!("both output streams were requested as pipes")
        };
        let mut problems = 0u64;
        let mut fatal_seen = false;
        let mut recent: Vec<String> = Vec::new();
        // Raised once tar is done: it prints a name before it writes the member.
        let mut restored: Vec<Vec<u8>> = Vec::new();
        thread::scope(|scope| {
            if let Some(stdin) = stdin {
                // A failed write means tar stopped reading; its status says why.
                scope.spawn(move || write_names(stdin, members));
            }
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
            if self.selected(&root) {
                self.remove(&root)?;
            } else {
                for path in self.only.iter().filter(|p| within(p, &root)) {
                    self.remove(path)?;
                }
            }
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

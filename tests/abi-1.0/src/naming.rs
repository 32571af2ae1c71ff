//! Backup file names and the write-then-rename discipline shared by every provider.
//!
//! Names are `NAME[.LEVEL][.KEEPID].EXT`, exactly as the original program builds them: level 0
//! (and a non-incremental backup) has no level token. Unless the user asked to overwrite at
//! start, a backup is written to a partial file (`NAME....EXT.pPID-TOKEN._partial`, unique
//! and locked while written, see [`OutputFile`]) and renamed over the old one only once
//! complete, so a failed run never destroys the previous backup, and a run never touches the
//! partial file of another.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::types::BackupType;

// Raw `libc` here, not rustix: the partial-file lock must be an open file description lock
// (`F_OFD_SETLK`), which rustix has no form of (its `fcntl_lock` takes process-associated
// `F_SETLK` locks, which closing any other descriptor of the file would drop). With libc
// needed for that anyway, `accessible` uses it too rather than give every plugin, whose one
// dependency this crate is, a second system crate.

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
/// * a partial file of one of those names, as [`partial_of`] recognises it.
///
/// Another archive's files are not recognised: for `home`, `home.v2.tar.gz` is not one (`v2`
/// is no level or keeping ID), nor `home2.tar.gz`.
pub fn is_own_backup_file(file_name: &[u8], backup_id: &str, ext: &str) -> bool {
    is_own_final_name(partial_of(file_name).unwrap_or(file_name), backup_id, ext)
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

/// Suffix of a backup that is still being written.
/// Parses a level token: a canonical positive decimal number (level 0 has no token).
pub fn parse_level(token: &[u8]) -> Option<u32> {
    if token.is_empty() || token[0] == b'0' || !token.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(token).ok()?.parse().ok()
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

/// The suffix of partial files, the backups being written (see [`OutputFile`]).
pub const PARTIAL_SUFFIX: &str = "._partial";

/// The file name of the backup that `file_name` (a name in a destination directory) is a
/// partial file of, or `None` if it is no partial file. Recognises the unique names written
/// here (`FINAL.pPID-TOKEN._partial`, see [`OutputFile`]) and the older `FINAL._partial`.
pub fn partial_of(file_name: &[u8]) -> Option<&[u8]> {
    let rest = file_name.strip_suffix(PARTIAL_SUFFIX.as_bytes())?;
    let final_name = match rest.iter().rposition(|&b| b == b'.') {
        Some(dot) if is_token(&rest[dot + 1..]) => &rest[..dot],
        _ => rest,
    };
    (!final_name.is_empty()).then_some(final_name)
}

/// `pPID-HEX`, the token that makes a partial file's name unique.
fn is_token(token: &[u8]) -> bool {
    let Some((pid, random)) = token
        .strip_prefix(b"p")
        .and_then(|t| t.iter().position(|&b| b == b'-').map(|at| t.split_at(at)))
    else {
        return false;
    };
    let random = &random[1..];
    !pid.is_empty()
        && pid.iter().all(u8::is_ascii_digit)
        && !random.is_empty()
        && random.iter().all(u8::is_ascii_hexdigit)
}

/// A fresh partial path for the backup at `final_path`: the process id and a random number
/// make it unique among the runs writing into one destination, from one machine or several.
fn unique_partial_path(final_path: &Path) -> PathBuf {
    use std::hash::{BuildHasher, Hasher};
    // Seeded from the operating system's randomness, differently for every instance.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let mut s = OsString::from(final_path.as_os_str());
    s.push(format!(
        ".p{}-{:08x}{PARTIAL_SUFFIX}",
        std::process::id(),
        hasher.finish() as u32
    ));
    PathBuf::from(s)
}

/// Takes the write lock of a partial file without waiting: `Ok(false)` if another run holds
/// it. Open file description locks (`F_OFD_SETLK`) belong to the open file, not to the
/// process, so closing another descriptor of the file (a provider's writer, a walker reading
/// the tree) never drops them, and they conflict within one process too. The kernel drops
/// them when the file's last descriptor closes, however the process ends; NFS carries them
/// to the server, so runs on several machines see each other's.
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: a zeroed flock is a valid value; the fields that matter are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl on an open descriptor with a pointer to a local flock.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) } == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EAGAIN | libc::EACCES) => Ok(false),
        _ => Err(error),
    }
}

/// The file system cannot lock (some FUSE and network file systems): a partial file there is
/// written all the same, but never provably abandoned.
fn locks_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOLCK | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS)
    )
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Removes the partial file at `path` if it was provably abandoned: no living run holds its
/// lock ([`OutputFile`] holds it from creating the file to moving it into place). The lock is
/// taken for the removal, so a run cannot start writing the file meanwhile. Returns whether
/// the file was removed; only regular files are considered, and none on a file system that
/// cannot lock.
pub fn remove_if_abandoned(path: &Path) -> io::Result<bool> {
    if !fs::symlink_metadata(path)?.is_file() {
        return Ok(false);
    }
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    match try_lock(&file) {
        Ok(true) => {}
        Ok(false) => return Ok(false),
        Err(e) if locks_unsupported(&e) => return Ok(false),
        Err(e) => return Err(e),
    }
    // Still the file locked (its writer may have just moved it into place)?
    if !same_file(&fs::symlink_metadata(path)?, &file.metadata()?) {
        return Ok(false);
    }
    fs::remove_file(path)?;
    Ok(true)
}

/// The file a backup is being written to.
///
/// Unless the user asked to overwrite at start, it is a partial file with a unique name
/// (`FINAL.pPID-TOKEN._partial`), created exclusively (`O_EXCL`) and locked for as long as
/// this value lives, so a run never writes, removes or moves into place a partial file it did
/// not create: another run's cleanup removes only files whose lock nobody holds
/// ([`remove_if_abandoned`]). So the file at the final name is always a complete backup. When
/// two runs of one archive (two machines sharing a destination) both complete, each moves its
/// own file into place and the last rename wins.
///
/// Dropped without [`OutputFile::commit`], it removes what was written, so neither a partial
/// file nor a half-written backup stays behind.
#[derive(Debug)]
pub struct OutputFile {
    final_path: PathBuf,
    working_path: PathBuf,
    /// The working file once created; as a partial file, it holds the lock.
    file: Option<File>,
    committed: bool,
}

impl OutputFile {
    /// Prepares to write the backup at `final_path`. With `overwrite_at_start` the backup is
    /// written in place (the user chose to give up the old backup to save space).
    pub fn new(final_path: PathBuf, overwrite_at_start: bool) -> OutputFile {
        let working_path = if overwrite_at_start {
            final_path.clone()
        } else {
            unique_partial_path(&final_path)
        };
        OutputFile {
            final_path,
            working_path,
            file: None,
            committed: false,
        }
    }

    /// Where the content must be written, once [`OutputFile::create`] made the file.
    pub fn path(&self) -> &Path {
        &self.working_path
    }

    /// The name the backup gets once committed.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Creates the working file and returns a descriptor to write it through (a program given
    /// [`OutputFile::path`] may open it again instead). The partial file is new and locked;
    /// the file written in place is truncated.
    pub fn create(&mut self) -> io::Result<File> {
        if self.file.is_some() {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        if self.working_path == self.final_path {
            let file = File::create(&self.working_path)?;
            let writer = file.try_clone()?;
            self.file = Some(file);
            return Ok(writer);
        }
        let mut attempts = 0;
        let file = loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&self.working_path)
            {
                Ok(file) => break file,
                // Another run's file: never touched, another name is taken.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => {
                    attempts += 1;
                    self.working_path = unique_partial_path(&self.final_path);
                }
                Err(e) => return Err(e),
            }
        };
        // A cleanup that found the file before it was locked may hold the lock to remove it.
        let locked = match try_lock(&file) {
            Ok(locked) => locked,
            Err(e) if locks_unsupported(&e) => {
                log::warn!("{}: cannot be locked: {e}", self.working_path.display());
                true
            }
            Err(e) => {
                // Created just now and not locked by anyone: ours to remove.
                let _ = fs::remove_file(&self.working_path);
                return Err(e);
            }
        };
        if !locked
            || !same_file(
                &fs::symlink_metadata(&self.working_path)?,
                &file.metadata()?,
            )
        {
            return Err(io::Error::other(format!(
                "{}: removed by another run while being created",
                self.working_path.display()
            )));
        }
        let writer = file.try_clone()?;
        self.file = Some(file);
        Ok(writer)
    }

    /// Flushes the complete backup to disk and moves it to its final name.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("the backup file was never created"))?;
        // Through the locking descriptor: opening and closing another would be harmless with
        // these locks, but this one is certainly the file created.
        file.sync_all()?;
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
        // Only the file this value created is ours to remove, and only while the name still
        // leads to it: an interrupted run may have given the name back to the old backup (a
        // backup written in place, see `aa`'s keeping journal) while this value was dropped.
        if self.committed {
            return;
        }
        if let Some(file) = &self.file {
            // Following a link: a backup written in place through one is the link's target.
            let names_it = match (file.metadata(), fs::metadata(&self.working_path)) {
                (Ok(open), Ok(named)) => same_file(&open, &named),
                _ => false,
            };
            if names_it {
                let _ = fs::remove_file(&self.working_path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

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
            "t.tar.gz.p77-a3f9._partial",
            "t.1.aa.tar.gz.p123-abc._partial",
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

    /// The names in `dir`.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_dropped_output_leaves_a_file_that_took_its_name() {
        // As when an interrupted run gives a backup written in place its old name back.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("b.tar");
        let mut out = OutputFile::new(target.clone(), true);
        out.create().unwrap();
        let old = dir.path().join("b.aa.tar");
        fs::write(&old, b"old").unwrap();
        fs::rename(&old, &target).unwrap();
        drop(out);
        assert_eq!(fs::read(&target).unwrap(), b"old");
    }

    #[test]
    fn uncommitted_output_is_removed_and_old_backup_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("b.tar");
        fs::write(&target, b"old").unwrap();
        {
            let mut out = OutputFile::new(target.clone(), false);
            out.create().unwrap().write_all(b"half").unwrap();
            assert_eq!(
                partial_of(out.path().file_name().unwrap().as_bytes()),
                Some(&b"b.tar"[..])
            );
        }
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["b.tar"]);

        let mut out = OutputFile::new(target.clone(), false);
        out.create().unwrap().write_all(b"new").unwrap();
        assert_eq!(out.commit().unwrap(), target);
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["b.tar"]);
    }

    #[test]
    fn partial_names_are_recognised() {
        assert_eq!(
            partial_of(b"home.tar.gz.p12-0af3._partial"),
            Some(&b"home.tar.gz"[..])
        );
        assert_eq!(
            partial_of(b"home.1.aa.tar.gz._partial"),
            Some(&b"home.1.aa.tar.gz"[..])
        );
        // Not a token: part of the old-style name.
        assert_eq!(
            partial_of(b"home.tar.p12._partial"),
            Some(&b"home.tar.p12"[..])
        );
        assert_eq!(
            partial_of(b"home.tar.px-1._partial"),
            Some(&b"home.tar.px-1"[..])
        );
        assert_eq!(partial_of(b"home.tar.gz"), None);
        assert_eq!(partial_of(b"._partial"), None);
        assert_eq!(partial_of(b".p1-a._partial"), None);
        // What a run writes is recognised, and unique.
        let a = unique_partial_path(Path::new("/d/home.tar"));
        let b = unique_partial_path(Path::new("/d/home.tar"));
        assert_ne!(a, b);
        assert_eq!(
            partial_of(a.file_name().unwrap().as_bytes()),
            Some(&b"home.tar"[..])
        );
    }

    /// Two runs writing one backup: neither touches the other's partial file; a partial file
    /// whose writer is gone is removed; the last complete run wins.
    #[test]
    fn a_partial_file_is_removed_only_when_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("b.tar");
        let mut first = OutputFile::new(target.clone(), false);
        first.create().unwrap().write_all(b"first").unwrap();
        let mut second = OutputFile::new(target.clone(), false);
        assert_ne!(first.path(), second.path());
        second.create().unwrap().write_all(b"second").unwrap();
        // Locks conflict between open files, so within one process too.
        assert!(!remove_if_abandoned(first.path()).unwrap());
        assert!(!remove_if_abandoned(second.path()).unwrap());
        // A writer closing other descriptors of its file keeps the lock.
        drop(File::open(first.path()).unwrap());
        assert!(!remove_if_abandoned(first.path()).unwrap());

        // Abandoned: a writer that died (here: an unlocked file of the same name form).
        let stale = unique_partial_path(&target);
        fs::write(&stale, b"stale").unwrap();
        assert!(remove_if_abandoned(&stale).unwrap());
        assert!(!stale.exists());
        // Old-style names too; what is no regular file is left alone.
        let old_style = dir.path().join("b.tar._partial");
        fs::write(&old_style, b"old").unwrap();
        assert!(remove_if_abandoned(&old_style).unwrap());
        std::os::unix::fs::symlink("b.tar", &old_style).unwrap();
        assert!(!remove_if_abandoned(&old_style).unwrap());
        fs::remove_file(&old_style).unwrap();

        // A file created by another run is never taken over.
        let mut attempt = OutputFile::new(target.clone(), false);
        attempt.working_path = first.path().to_path_buf();
        attempt.create().unwrap();
        assert_ne!(attempt.path(), first.path(), "a new name is taken");
        drop(attempt);
        assert_eq!(fs::read(first.path()).unwrap(), b"first");

        let (first_path, second_path) = (first.path().to_path_buf(), second.path().to_path_buf());
        assert_eq!(second.commit().unwrap(), target);
        assert_eq!(first.commit().unwrap(), target);
        assert_eq!(fs::read(&target).unwrap(), b"first");
        assert!(!first_path.exists() && !second_path.exists());
        assert_eq!(names(dir.path()), ["b.tar"]);
    }
}

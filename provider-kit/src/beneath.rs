//! File system operations confined to a restore target: nothing is ever opened, written or
//! deleted outside it, whatever symbolic links the restored tree (or a hostile archive) holds.
//!
//! Paths are resolved relative to a directory descriptor of the target with `openat2`'s
//! `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`: a symbolic link may be followed while it stays in
//! the target, and resolution fails (`EXDEV`) the moment it would leave. Kernels without
//! `openat2` (before 5.6, or a seccomp filter refusing it) get a walk component by component
//! with `O_NOFOLLOW`, which follows no link at all: stricter, never looser. Deletion never
//! follows a link: it works on directory descriptors opened with `O_NOFOLLOW`, removing a
//! symbolic link itself rather than what it points to.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Whether `openat2` was found missing; then the component walk is used from there on.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Why a relative name cannot be used under a target: it is absolute or has a `..`.
pub fn check_relative(name: &[u8]) -> Result<(), &'static str> {
    if name.first() == Some(&b'/') {
        return Err("absolute name refused");
    }
    if name.split(|&b| b == b'/').any(|c| c == b"..") {
        return Err("name with a '..' component refused");
    }
    Ok(())
}

/// The components of `name` that matter (`.` and empty ones dropped), after
/// [`check_relative`]. Empty for the target itself.
pub fn components(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    check_relative(name)?;
    Ok(name
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect())
}

/// The proper ancestors of a clean relative path (one [`components`] joined with `/`),
/// nearest first; the empty path (the target itself) is not among them.
pub fn ancestors(rel: &[u8]) -> impl Iterator<Item = &[u8]> {
    rel.iter()
        .enumerate()
        .rev()
        .filter(|&(_, &b)| b == b'/')
        .map(move |(i, _)| &rel[..i])
}

/// Whether the clean relative path `rel` is `path` or below it; everything is within the empty
/// path (the target itself).
pub fn within(rel: &[u8], path: &[u8]) -> bool {
    path.is_empty()
        || rel == path
        || (rel.len() > path.len() && rel.starts_with(path) && rel[path.len()] == b'/')
}

/// The paths a restore request's `only` names (`request.only()`), as clean relative names:
/// empty for everything (no path given, or one naming the backup root itself). A path that
/// is absolute or has a `..` is an invalid-value error naming it.
pub fn only_paths<'a>(
    only: impl IntoIterator<Item = &'a Path>,
) -> Result<Vec<Vec<u8>>, aa_abi::ProviderError> {
    let mut paths = Vec::new();
    for path in only {
        match components(path.as_os_str().as_bytes()) {
            // The backup root: everything.
            Ok(parts) if parts.is_empty() => return Ok(Vec::new()),
            Ok(parts) => paths.push(parts.join(&b'/')),
            Err(message) => {
                return Err(aa_abi::ProviderError::invalid_value(format!(
                    "--only {}: {message}",
                    path.display()
                )))
            }
        }
    }
    Ok(paths)
}

fn c_name(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// An error saying that resolving `path` would leave the target.
pub fn escapes(path: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{}: refused, the path leads outside the target through a symbolic link",
            String::from_utf8_lossy(path)
        ),
    )
}

/// Opens the directory `relative` (components joined by `/`, no `..`) under `root` with
/// `flags` (`O_PATH` or `O_RDONLY`; `O_DIRECTORY` is added), never leaving `root`. A path
/// that would leave it fails with [`escapes`]'s error.
pub fn open_dir(root: BorrowedFd<'_>, relative: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let relative = if relative.is_empty() {
        &b"."[..]
    } else {
        relative
    };
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        match retry(|| rustix::fs::openat2(root, relative, flags, Mode::empty(), resolve)) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOSYS) | Err(Errno::PERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
            Err(Errno::XDEV) | Err(Errno::LOOP) => return Err(escapes(relative)),
            Err(e) => return Err(e.into()),
        }
    }
    walk(root, relative, flags)
}

fn walk(root: BorrowedFd<'_>, relative: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let parts = components(relative).map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
    let mut fd = retry(|| rustix::fs::openat(root, ".", flags, Mode::empty()))?;
    for part in parts {
        let name = c_name(part)?;
        fd = match retry(|| rustix::fs::openat(&fd, &name, flags | OFlags::NOFOLLOW, Mode::empty()))
        {
            Ok(next) => next,
            // A symbolic link on the way: not followed at all without openat2.
            Err(Errno::LOOP) | Err(Errno::NOTDIR)
                if rustix::fs::statat(&fd, &name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink) =>
            {
                return Err(escapes(relative))
            }
            Err(e) => return Err(e.into()),
        };
    }
    Ok(fd)
}

fn retry<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// Removes `name` in the directory `dir`: a non-directory (a symbolic link itself, never its
/// target) is unlinked, a directory is emptied first, depth first. Returns whether there was
/// anything to remove.
pub fn remove_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<bool> {
    let c = c_name(name)?;
    match retry(|| rustix::fs::unlinkat(dir, &c, AtFlags::empty())) {
        Ok(()) => return Ok(true),
        Err(Errno::NOENT) => return Ok(false),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = match retry(|| {
        rustix::fs::openat(
            dir,
            &c,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    // Entries of a read-only directory cannot be removed by an unprivileged user; it is
    // going anyway.
    let _ = rustix::fs::fchmod(&sub, Mode::from_raw_mode(0o700));
    empty_dir(sub.as_fd())?;
    match retry(|| rustix::fs::unlinkat(dir, &c, AtFlags::REMOVEDIR)) {
        Ok(()) | Err(Errno::NOENT) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Removes everything in the open directory `dir`.
pub fn empty_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    for name in list(dir)? {
        remove_at(dir, &name.0)?;
    }
    Ok(())
}

/// The entries of the open directory `dir` (without `.` and `..`) with their types as the
/// directory reports them (`Unknown` on file systems that do not).
pub fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, FileType)>> {
    let mut out = Vec::new();
    let mut entries = Dir::read_from(dir)?;
    while let Some(entry) = entries.read() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push((name.to_vec(), entry.file_type()));
        }
    }
    Ok(out)
}

/// Removes `relative` (a file, a symbolic link itself, or a directory tree) under `target`,
/// never touching anything outside it: a `relative` that is absolute, has a `..` or leads
/// through a symbolic link out of the target is refused with an error. Returns whether
/// anything was there. The target itself (an empty `relative`) is never removed.
pub fn remove_beneath(target: &Path, relative: &Path) -> io::Result<bool> {
    let bytes = relative.as_os_str().as_bytes();
    let parts = components(bytes).map_err(|m| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: {m}", relative.display()),
        )
    })?;
    let Some((last, parents)) = parts.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the target itself cannot be removed",
        ));
    };
    let root = retry(|| {
        rustix::fs::open(
            target,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    })?;
    let parent = match open_dir(root.as_fd(), &parents.join(&b'/'), OFlags::PATH) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => return Ok(false),
        Err(e) if e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error()) => return Ok(false),
        Err(e) => return Err(e),
    };
    remove_at(parent.as_fd(), last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn ancestors_and_within() {
        assert_eq!(ancestors(b"a/b/c").collect::<Vec<_>>(), [&b"a/b"[..], b"a"]);
        assert_eq!(ancestors(b"a").count(), 0);
        assert!(within(b"a/b", b"a"));
        assert!(within(b"a", b"a"));
        assert!(!within(b"ab", b"a"));
        assert!(!within(b"a", b"a/b"));
        assert!(within(b"x", b""));
    }

    #[test]
    fn only_paths_are_clean_and_the_root_is_everything() {
        let paths = |names: &[&str]| only_paths(names.iter().map(Path::new));
        assert_eq!(paths(&["a/", "./b/c"]).unwrap(), [&b"a"[..], b"b/c"]);
        assert!(paths(&[]).unwrap().is_empty());
        assert!(paths(&["a", "."]).unwrap().is_empty());
        let error = paths(&["a", "../x"]).unwrap_err();
        assert!(
            error.message().contains("--only ../x"),
            "{}",
            error.message()
        );
        assert!(paths(&["/abs"]).is_err());
    }

    #[test]
    fn removal_stays_in_the_target() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("keep")).unwrap();
        fs::write(outside.join("keep/file"), "x").unwrap();
        let target = tmp.path().join("target");
        fs::create_dir_all(target.join("d/e")).unwrap();
        fs::write(target.join("d/e/f"), "f").unwrap();
        symlink(&outside, target.join("out")).unwrap();
        symlink("../outside/keep", target.join("rel")).unwrap();
        symlink(&outside, target.join("d/e/link")).unwrap();

        // A link is removed itself, never followed.
        assert!(remove_beneath(&target, Path::new("out")).unwrap());
        assert!(fs::symlink_metadata(target.join("out")).is_err());
        // Through a link that leaves the target: refused.
        assert!(remove_beneath(&target, Path::new("rel/file")).is_err());
        assert!(remove_beneath(&target, Path::new("../outside/keep")).is_err());
        assert!(remove_beneath(&target, Path::new("/etc/passwd")).is_err());
        // A tree with a link to outside in it goes, what the link points to stays.
        assert!(remove_beneath(&target, Path::new("./d")).unwrap());
        assert!(!target.join("d").exists());
        assert!(!remove_beneath(&target, Path::new("d")).unwrap());
        assert!(remove_beneath(&target, Path::new("")).is_err());
        assert_eq!(fs::read(outside.join("keep/file")).unwrap(), b"x");
        assert!(target.join("rel").symlink_metadata().is_ok());
    }

    #[test]
    fn the_walk_without_openat2_follows_no_link() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::create_dir_all(target.join("d/e")).unwrap();
        symlink("d", target.join("inner")).unwrap();
        symlink("/", target.join("root")).unwrap();
        let root =
            rustix::fs::open(&target, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        assert!(walk(root.as_fd(), b"d/e", flags).is_ok());
        assert!(walk(root.as_fd(), b"", flags).is_ok());
        for path in [&b"inner/e"[..], b"root/tmp", b"root"] {
            let e = walk(root.as_fd(), path, flags).unwrap_err();
            assert!(e.to_string().contains("refused"), "{e}");
        }
        assert!(walk(root.as_fd(), b"d/../..", flags).is_err());
    }
}

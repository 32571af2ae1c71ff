//! Finding the GNU tar binary.
//!
//! The original looked for `tar` in `PATH` and then in a few standard directories. The command
//! line built here uses GNU-only options and the output parser expects GNU messages, so a
//! candidate is accepted only if `tar --version` says it is GNU tar; a BSD tar found first is
//! skipped rather than fed options it does not understand.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Environment variable naming the tar binary to use instead of searching (used by tests and
/// by users with GNU tar installed as e.g. `gtar`).
pub const TAR_OVERRIDE_VAR: &str = "AA_TAR";

const FALLBACK_DIRS: [&str; 3] = ["/bin", "/usr/bin", "/usr/local/bin"];

/// Locates GNU tar. On failure returns where it looked (and what it rejected), for the
/// "not found" message.
pub fn locate_gnu_tar() -> Result<PathBuf, String> {
    locate_with(env::var_os(TAR_OVERRIDE_VAR), env::var_os("PATH"))
}

fn locate_with(
    override_path: Option<OsString>,
    path_var: Option<OsString>,
) -> Result<PathBuf, String> {
    if let Some(tar) = override_path.filter(|p| !p.is_empty()) {
        let tar = PathBuf::from(tar);
        return match check_gnu_tar(&tar) {
            Ok(()) => Ok(tar),
            Err(why) => Err(format!("{TAR_OVERRIDE_VAR}={}: {why}", tar.display())),
        };
    }
    let path_dirs: Vec<PathBuf> = path_var
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut rejected = Vec::new();
    // Relative PATH entries depend on the current directory; not a place to pick a binary from.
    let candidates = path_dirs
        .iter()
        .map(PathBuf::as_path)
        .filter(|d| d.is_absolute())
        .chain(FALLBACK_DIRS.iter().map(Path::new))
        .map(|d| d.join("tar"));
    for candidate in candidates {
        if !is_executable_file(&candidate) {
            continue;
        }
        match check_gnu_tar(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(why) => rejected.push(format!("{}: {why}", candidate.display())),
        }
    }
    let mut looked = String::from("PATH, /bin, /usr/bin, /usr/local/bin");
    for r in rejected {
        looked.push_str("; ");
        looked.push_str(&r);
    }
    Err(looked)
}

/// Whether GNU tar, started with our environment, would find `program` when it runs it by
/// name (`execvp`: each `PATH` entry in turn, an empty one meaning the current directory;
/// `/bin:/usr/bin` without `PATH`).
pub fn in_path(program: &str) -> bool {
    let path = env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    env::split_paths(&path).any(|dir| {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &dir
        };
        is_executable_file(&dir.join(program))
    })
}

fn is_executable_file(path: &Path) -> bool {
    if !path.is_file() {
        return false;
    }
    rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok()
}

/// Runs `tar --version` and checks the first line names GNU tar.
fn check_gnu_tar(tar: &Path) -> Result<(), String> {
    let run = || {
        Command::new(tar)
            .arg("--version")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
    };
    let mut attempt = run();
    // A binary that was just written may still be open for writing in a child another thread
    // forked (ETXTBSY); that passes within moments.
    for _ in 0..5 {
        match &attempt {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::TXTBSY.raw_os_error()) => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                attempt = run();
            }
            _ => break,
        }
    }
    let output = attempt.map_err(|e| {
        // The message is quoted inside a sentence; the "(os error N)" tail only adds noise.
        let text = e.to_string();
        match text.find(" (os error") {
            Some(cut) => text[..cut].to_string(),
            None => text,
        }
    })?;
    let first_line = output
        .stdout
        .split(|&b| b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim().to_string())
        .unwrap_or_default();
    if first_line.contains("GNU tar") {
        Ok(())
    } else if first_line.is_empty() {
        Err("not GNU tar (no version output)".to_string())
    } else {
        Err(format!("not GNU tar ({first_line})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn override_must_be_gnu_tar() {
        let err = locate_with(Some("/nonexistent/tar".into()), None).unwrap_err();
        assert!(err.starts_with("AA_TAR=/nonexistent/tar: "), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let bsd = script(
            dir.path(),
            "bsdtar",
            "echo 'bsdtar 3.6.2 - libarchive 3.6.2'",
        );
        let err = locate_with(Some(bsd.clone().into()), None).unwrap_err();
        assert!(err.contains("not GNU tar (bsdtar 3.6.2"), "{err}");

        let gnu = script(dir.path(), "gtar", "echo 'tar (GNU tar) 1.34'");
        assert_eq!(locate_with(Some(gnu.clone().into()), None).unwrap(), gnu);
    }

    #[test]
    fn a_non_gnu_tar_in_path_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let bsd_dir = dir.path().join("bsd");
        let gnu_dir = dir.path().join("gnu");
        fs::create_dir_all(&bsd_dir).unwrap();
        fs::create_dir_all(&gnu_dir).unwrap();
        script(&bsd_dir, "tar", "echo 'bsdtar 3.6.2'");
        let gnu = script(&gnu_dir, "tar", "echo 'tar (GNU tar) 1.34'");
        let path = env::join_paths([&bsd_dir, &gnu_dir]).unwrap();
        assert_eq!(locate_with(None, Some(path)).unwrap(), gnu);
    }

    #[test]
    fn finds_the_system_tar() {
        // The machine the tests run on has GNU tar in a standard place.
        let found = locate_with(None, Some("".into())).unwrap();
        assert!(
            found.starts_with("/bin") || found.starts_with("/usr"),
            "{found:?}"
        );
    }
}

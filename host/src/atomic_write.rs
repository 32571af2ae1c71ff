//! Replacing a small state file (a realm, the plugin verdicts) so that a reader, or the next
//! run after a crash or a full disk, finds the old content or the new, never a part: the bytes
//! go to a temporary file beside it, are synced, and the temporary file is renamed over it.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `temp` (made with `mode`, less the umask), syncs it and renames it to
/// `path`; on failure `temp` is removed and `path` is as it was.
pub(crate) fn replace(path: &Path, temp: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_replaced_whole_and_a_failure_leaves_it_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let (path, temp) = (dir.path().join("state"), dir.path().join(".state.tmp"));
        fs::write(&path, "old").unwrap();
        replace(&path, &temp, b"new", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert!(!temp.exists());

        // The rename fails: the target is now a non-empty directory.
        let blocked = dir.path().join("blocked");
        fs::create_dir_all(blocked.join("inside")).unwrap();
        assert!(replace(&blocked, &temp, b"x", 0o600).is_err());
        assert!(blocked.join("inside").is_dir());
        assert!(!temp.exists());
    }
}

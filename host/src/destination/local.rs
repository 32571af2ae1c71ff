//! A local directory as a destination: what `aa` always did. Writing goes through
//! [`OutputFile`], so a backup is a locked `._partial` file until it is fsynced and renamed
//! into place, and one dropped unfinished is removed.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use aa_abi::naming::{partial_of, OutputFile};

use super::{path_in, DestinationError, ObjectInfo};

#[derive(Debug)]
pub struct LocalDir {
    dir: PathBuf,
}

fn error(path: &Path, e: impl std::fmt::Display) -> DestinationError {
    DestinationError::new(format!("{}: {e}", path.display()))
}

impl LocalDir {
    pub(super) fn new(dir: PathBuf) -> LocalDir {
        LocalDir { dir }
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        path_in(&self.dir, name)
    }

    pub(super) fn list(&self) -> Result<Vec<ObjectInfo>, DestinationError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| error(&self.dir, e))?;
        let mut objects = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| error(&self.dir, e))?;
            let file_name = entry.file_name();
            // A backup being written (by this run or another) is not a backup yet.
            if partial_of(file_name.as_bytes()).is_some() {
                continue;
            }
            // Backup names are ASCII; anything else is not ours.
            let Some(name) = file_name.to_str() else {
                continue;
            };
            let meta = entry.metadata().map_err(|e| error(&entry.path(), e))?;
            if meta.is_file() {
                objects.push(ObjectInfo {
                    name: name.to_string(),
                    size: meta.len(),
                });
            }
        }
        Ok(objects)
    }

    pub(super) fn exists(&self, name: &str) -> Result<bool, DestinationError> {
        let path = self.path(name);
        path.try_exists().map_err(|e| error(&path, e))
    }

    pub(super) fn size(&self, name: &str) -> Result<u64, DestinationError> {
        let path = self.path(name);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| error(&path, e))
    }

    pub(super) fn reader(&self, name: &str) -> Result<File, DestinationError> {
        let path = self.path(name);
        File::open(&path).map_err(|e| error(&path, e))
    }

    pub(super) fn upload(&self, name: &str) -> Result<LocalUpload, DestinationError> {
        let mut output = OutputFile::new(self.path(name), false);
        let file = output.create().map_err(|e| error(output.path(), e))?;
        Ok(LocalUpload { output, file })
    }

    pub(super) fn copy(&self, from: &str, to: &str) -> Result<(), DestinationError> {
        let source = self.path(from);
        let mut reader = File::open(&source).map_err(|e| error(&source, e))?;
        let mut upload = self.upload(to)?;
        io::copy(&mut reader, &mut upload.file).map_err(|e| error(upload.output.path(), e))?;
        upload.commit()
    }

    pub(super) fn delete(&self, name: &str) -> Result<(), DestinationError> {
        let path = self.path(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(error(&path, e)),
            _ => Ok(()),
        }
    }
}

/// A backup being written to its partial file; dropping it removes that file.
pub struct LocalUpload {
    output: OutputFile,
    file: File,
}

impl LocalUpload {
    pub(super) fn commit(self) -> Result<(), DestinationError> {
        let LocalUpload { output, file } = self;
        // The writer is a clone of the descriptor the commit fsyncs; nothing is buffered.
        drop(file);
        let partial = output.path().to_path_buf();
        output.commit().map(drop).map_err(|e| error(&partial, e))
    }

    pub(super) fn abort(self) -> Result<(), DestinationError> {
        // OutputFile removes its partial file when dropped uncommitted.
        drop(self);
        Ok(())
    }
}

impl Write for LocalUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use crate::destination::{Destination, S3Options, Store};

    use super::*;

    fn store(dir: &Path) -> Store {
        Store::open(&Destination::Local(dir.into()), &S3Options::default()).unwrap()
    }

    fn only_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_upload_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        fs::write(dir.path().join("b.tar"), b"old").unwrap();
        let mut upload = store.upload("b.tar").unwrap();
        upload.write_all(b"new content").unwrap();
        // Written, not committed: the old backup is intact and the partial file is not listed.
        assert_eq!(fs::read(dir.path().join("b.tar")).unwrap(), b"old");
        assert_eq!(only_names(dir.path()).len(), 2);
        assert_eq!(
            store.list().unwrap(),
            vec![ObjectInfo {
                name: "b.tar".into(),
                size: 3
            }]
        );
        upload.commit().unwrap();
        assert_eq!(only_names(dir.path()), ["b.tar"]);
        let mut read = Vec::new();
        store
            .reader("b.tar")
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert_eq!(read, b"new content");
        assert_eq!(store.size("b.tar").unwrap(), 11);
    }

    #[test]
    fn aborted_and_dropped_uploads_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        fs::write(dir.path().join("b.tar"), b"old").unwrap();
        let mut upload = store.upload("b.tar").unwrap();
        upload.write_all(b"half").unwrap();
        upload.abort().unwrap();
        let mut upload = store.upload("c.tar").unwrap();
        upload.write_all(b"half").unwrap();
        drop(upload);
        assert_eq!(only_names(dir.path()), ["b.tar"]);
        assert_eq!(fs::read(dir.path().join("b.tar")).unwrap(), b"old");
        assert!(!store.exists("c.tar").unwrap());
    }

    #[test]
    fn copy_delete_and_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        fs::write(dir.path().join("a"), b"12345").unwrap();
        store.copy("a", "b").unwrap();
        assert_eq!(fs::read(dir.path().join("b")).unwrap(), b"12345");
        store.delete("a").unwrap();
        store.delete("a").unwrap();
        assert_eq!(only_names(dir.path()), ["b"]);
        let e = store.size("a").unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: ", dir.path().join("a").display())),
            "{e}"
        );
        let missing = store_at_missing_dir(dir.path());
        let e = missing.list().unwrap_err().to_string();
        assert!(e.contains("nowhere: "), "{e}");
    }

    fn store_at_missing_dir(dir: &Path) -> Store {
        store(&dir.join("nowhere"))
    }
}

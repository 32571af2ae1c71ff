//! The byte sink a provider writes a backup into when the destination is an object store: an
//! upload to the store ([`crate::destination::Upload`]), made visible by the provider's
//! commit.
//!
//! The sink keeps the first error of the store. A provider reports a failed write in its own
//! words ("the backup's destination failed"); what the user needs is the store's line naming
//! the URL (no such bucket, access denied, the endpoint stopped answering), so
//! [`UploadSink::error`] gives that one back to the caller.

use std::io::Write;

use aa_abi::capability::BackupSink;
use aa_abi::error::ProviderError;

use crate::destination::{DestinationError, Upload};

/// A backup being uploaded; see the module documentation.
pub struct UploadSink {
    /// `None` once committed (or after a failed write, when it was aborted).
    upload: Option<Upload>,
    /// The first error of the store, as one line naming the object.
    error: Option<String>,
    /// Bytes written.
    written: u64,
    committed: bool,
}

impl UploadSink {
    pub fn new(upload: Upload) -> UploadSink {
        UploadSink {
            upload: Some(upload),
            error: None,
            written: 0,
            committed: false,
        }
    }

    /// The store's own error, if one ended the backup.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether the provider committed the backup (it is then visible on the store).
    pub fn committed(&self) -> bool {
        self.committed
    }

    /// The backup's size in bytes, as written.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn fail(&mut self, message: String) -> ProviderError {
        // The upload is given up now, not when the provider is done: its parts are freed
        // and no multipart upload stays pending if the process then ends.
        if let Some(upload) = self.upload.take() {
            if let Err(e) = upload.abort() {
                log::warn!("{e} (aborting the failed upload)");
            }
        }
        let error = ProviderError::other(message.clone());
        self.error.get_or_insert(message);
        error
    }
}

impl BackupSink for UploadSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), ProviderError> {
        let Some(upload) = self.upload.as_mut() else {
            let message = self
                .error
                .clone()
                .unwrap_or_else(|| "the upload is already finished".into());
            return Err(ProviderError::other(message));
        };
        match upload.write_all(bytes) {
            Ok(()) => {
                self.written += bytes.len() as u64;
                Ok(())
            }
            Err(e) => Err(self.fail(e.to_string())),
        }
    }

    fn commit(&mut self) -> Result<(), ProviderError> {
        let Some(upload) = self.upload.take() else {
            return Err(ProviderError::other(
                self.error
                    .clone()
                    .unwrap_or_else(|| "the upload is already finished".into()),
            ));
        };
        match upload.commit() {
            Ok(()) => {
                self.committed = true;
                Ok(())
            }
            Err(e) => Err(self.fail(DestinationError::to_string(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::{Destination, S3Options, Store};

    fn store(dir: &std::path::Path) -> Store {
        Store::open(&Destination::Local(dir.into()), &S3Options::default()).unwrap()
    }

    #[test]
    fn a_committed_sink_is_the_backup_and_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let mut sink = UploadSink::new(store.upload("n.tar").unwrap());
        sink.write(b"abc").unwrap();
        sink.write(b"de").unwrap();
        assert!(!store.exists("n.tar").unwrap());
        sink.commit().unwrap();
        assert!(sink.committed());
        assert_eq!(sink.written(), 5);
        assert_eq!(std::fs::read(dir.path().join("n.tar")).unwrap(), b"abcde");
        // Nothing after the commit.
        assert!(sink.write(b"x").is_err());
        assert!(sink.commit().is_err());
    }

    #[test]
    fn a_sink_left_without_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        std::fs::write(dir.path().join("n.tar"), b"previous").unwrap();
        let mut sink = UploadSink::new(store.upload("n.tar").unwrap());
        sink.write(b"new").unwrap();
        drop(sink);
        assert_eq!(
            std::fs::read(dir.path().join("n.tar")).unwrap(),
            b"previous"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["n.tar"]);
    }
}

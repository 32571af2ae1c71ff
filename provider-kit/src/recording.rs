//! A [`BackupEvents`] sink that records every event, for a provider's own tests.
//!
//! Every test of a provider checks what it reported: which members it announced with
//! `file_add`, which errors it raised and in which order. This is the one recorder the
//! repository's tests, the conformance suite and third-party providers share, instead of each
//! writing its own. It keeps everything, exactly as raised: names as the provider spelt them
//! (bytes, not normalised), messages, and the order of adds and errors relative to each other.
//! It is `Sync`, so a provider that raises events from worker threads can be tested with it;
//! a test that needs more (a check of the calling thread, a hook that changes a file when it
//! is announced) wraps it in a sink of its own that forwards to it.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use aa_abi::{BackupEvents, BackupOperationError, BackupSubOperation};

/// One `backup_operation_error` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedError {
    /// The step that failed.
    pub operation: BackupSubOperation,
    /// What went wrong.
    pub error: BackupOperationError,
    /// The object's name as raised (relative to the backup root), when one was given.
    pub name: Option<Vec<u8>>,
    /// The message, when one was given.
    pub message: Option<String>,
}

impl ReportedError {
    /// One readable line, for failure messages: `Operation/Error name message`, with the name
    /// escaped (`.` for the root, `-` for none).
    pub fn describe(&self) -> String {
        let name = match self.name.as_deref() {
            None => "-".to_string(),
            Some([]) => ".".to_string(),
            Some(name) => name.escape_ascii().to_string(),
        };
        let message = self.message.as_deref().unwrap_or("");
        format!("{}/{} {name} {message}", self.operation, self.error)
            .trim_end()
            .to_string()
    }
}

/// One event, in the order the provider raised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `file_add`, with the name as raised.
    Added(Vec<u8>),
    /// `backup_operation_error`.
    Error(ReportedError),
}

/// Records every event raised during one or more provider calls.
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        // A panic in a test that held the lock leaves complete events behind: keep them.
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every event, adds and errors interleaved as they were raised.
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    /// The names passed to `file_add`, in call order.
    pub fn added(&self) -> Vec<Vec<u8>> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                Event::Added(name) => Some(name.clone()),
                Event::Error(_) => None,
            })
            .collect()
    }

    /// [`Recorder::added`] as paths, for comparisons with paths (which ignore a trailing `/`).
    pub fn added_paths(&self) -> Vec<PathBuf> {
        self.added()
            .into_iter()
            .map(|name| PathBuf::from(OsString::from_vec(name)))
            .collect()
    }

    /// The `backup_operation_error` events, in call order.
    pub fn errors(&self) -> Vec<ReportedError> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                Event::Error(error) => Some(error.clone()),
                Event::Added(_) => None,
            })
            .collect()
    }
}

impl BackupEvents for Recorder {
    fn file_add(&self, name: &Path) {
        self.lock()
            .push(Event::Added(name.as_os_str().as_bytes().to_vec()));
    }

    fn backup_operation_error(
        &self,
        operation: BackupSubOperation,
        error: BackupOperationError,
        name: Option<&Path>,
        message: Option<&str>,
    ) {
        self.lock().push(Event::Error(ReportedError {
            operation,
            error,
            name: name.map(|n| n.as_os_str().as_bytes().to_vec()),
            message: message.map(str::to_string),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_everything_in_order() {
        let events = Recorder::new();
        events.file_add(Path::new("./a/"));
        events.backup_operation_error(
            BackupSubOperation::Open,
            BackupOperationError::SocketIgnored,
            Some(Path::new("a/s")),
            None,
        );
        events.file_add(Path::new("a/f"));
        events.backup_operation_error(
            BackupSubOperation::Finish,
            BackupOperationError::SomeFilesChanged,
            None,
            Some("why"),
        );
        assert_eq!(events.added(), [b"./a/".to_vec(), b"a/f".to_vec()]);
        assert_eq!(events.added_paths(), [Path::new("./a"), Path::new("a/f")]);
        let errors = events.errors();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].name.as_deref(), Some(&b"a/s"[..]));
        assert_eq!(errors[1].message.as_deref(), Some("why"));
        assert!(matches!(
            &events.events()[..],
            [
                Event::Added(_),
                Event::Error(_),
                Event::Added(_),
                Event::Error(_)
            ]
        ));
    }

    #[test]
    fn describe_escapes_the_name() {
        let e = |name: Option<&[u8]>, message: Option<&str>| ReportedError {
            operation: BackupSubOperation::Open,
            error: BackupOperationError::PermissionDenied,
            name: name.map(<[u8]>::to_vec),
            message: message.map(str::to_string),
        };
        assert_eq!(
            e(Some(b"caf\xe9"), None).describe(),
            "Open/PermissionDenied caf\\xe9"
        );
        assert_eq!(e(Some(b""), None).describe(), "Open/PermissionDenied .");
        assert_eq!(e(None, Some("m")).describe(), "Open/PermissionDenied - m");
    }
}

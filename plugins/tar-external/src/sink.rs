//! GNU tar's archive into the host's byte sink (the `backup_to_sink_v1` capability).
//!
//! tar writes the archive to its stdout (`--file=-`), as it does into a backup file after the
//! roots record (module `prefix`), but the stdout is a pipe here: a relay thread reads it and
//! writes what comes into the sink, [`RELAY_CHUNK`] bytes at a time, so memory stays bounded
//! by that buffer and the pipe whatever the size of the backup. tar still runs on the calling
//! thread, which raises the events.
//!
//! Failure: a sink write that fails ends the relay, which closes the pipe; tar (or its
//! compressor) then dies of `SIGPIPE`, and the sink's error is the one reported, not tar's:
//! what tar says from then on ("Child returned status 141") is a consequence, and is not
//! raised as an event. Nothing is committed here: the caller commits once everything else
//! has succeeded.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use aa_abi::capability::BackupSink;
use aa_abi::{BackupEvents, BackupOperationError, BackupSubOperation, ProviderError};

use crate::error::Error;
use crate::run::{run_tar, TarRun};

/// Bytes the relay collects before it writes them into the sink: few calls across the
/// boundary, little memory.
pub const RELAY_CHUNK: usize = 1 << 20;

/// Runs `run` (whose `archive_fd` and `archive_on_stdout` are set here) with its archive going
/// into `sink`, after `first` (the roots record, or nothing). Returns the sink, uncommitted.
pub fn run_into_sink<'s>(
    mut run: TarRun<'_>,
    first: &[u8],
    sink: &'s mut dyn BackupSink,
    events: &dyn aa_abi::BackupEvents,
) -> Result<&'s mut dyn BackupSink, Error> {
    if !first.is_empty() {
        sink.write(first).map_err(Error::host)?;
    }
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::io(run.archive, e.into()))?;
    run.archive_fd = Some(write);
    run.archive_on_stdout = true;
    let sink_failed = AtomicBool::new(false);
    let events = UntilSinkFailed {
        events,
        sink_failed: &sink_failed,
    };
    let (ran, relayed) = std::thread::scope(|scope| {
        let failed = &sink_failed;
        let relay = std::thread::Builder::new()
            .name("aa-sink".into())
            .spawn_scoped(scope, move || relay(File::from(read), sink, failed));
        let relay = match relay {
            Ok(relay) => relay,
            // `run` is dropped unused, and with it the pipe's write end.
            Err(e) => return (Err(Error::io(run.archive, e)), None),
        };
        let ran = run_tar(run, &events);
        let relayed = relay.join().unwrap_or_else(|_| {
            Err(ProviderError::other(
                "the backup's destination failed unexpectedly",
            ))
        });
        (ran, Some(relayed))
    });
    match relayed {
        // The sink's error says why tar could not go on.
        Some(Err(error)) => Err(Error::host(error)),
        Some(Ok(sink)) => ran.map(|()| sink),
        None => Err(ran
            .err()
            .unwrap_or_else(|| Error::host(ProviderError::other("no relay")))),
    }
}

/// tar's events, up to a failure of the sink: the errors tar reports after it are its dying of
/// the closed pipe.
struct UntilSinkFailed<'a> {
    events: &'a dyn BackupEvents,
    sink_failed: &'a AtomicBool,
}

impl BackupEvents for UntilSinkFailed<'_> {
    fn file_add(&self, name: &Path) {
        self.events.file_add(name);
    }

    fn backup_operation_error(
        &self,
        operation: BackupSubOperation,
        error: BackupOperationError,
        name: Option<&Path>,
        message: Option<&str>,
    ) {
        if !self.sink_failed.load(Ordering::SeqCst) {
            self.events
                .backup_operation_error(operation, error, name, message);
        }
    }
}

/// Copies `from` into `sink` until its end (every writer of the pipe closed it). A failed
/// write is marked in `failed` before the pipe is closed, so before tar can see it closed.
fn relay<'s>(
    mut from: File,
    sink: &'s mut dyn BackupSink,
    failed: &AtomicBool,
) -> Result<&'s mut dyn BackupSink, ProviderError> {
    let mut buf = vec![0u8; RELAY_CHUNK];
    loop {
        let mut filled = 0;
        let mut end = false;
        while filled < buf.len() {
            match from.read(&mut buf[filled..]) {
                Ok(0) => {
                    end = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ProviderError::from_io("reading GNU tar's archive", &e)),
            }
        }
        if filled > 0 {
            if let Err(e) = sink.write(&buf[..filled]) {
                failed.store(true, Ordering::SeqCst);
                drop(from);
                return Err(e);
            }
        }
        if end {
            return Ok(sink);
        }
    }
}

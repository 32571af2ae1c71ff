//! Ctrl-C (SIGINT), SIGTERM and SIGHUP during a run: the unfinished backup is removed before
//! `aa` exits, instead of a `._partial` file being left for the next run to clean.
//!
//! The signals are blocked in every thread (threads inherit the mask of the thread that starts
//! them, so [`install`] must run first, before any thread exists) and taken by one thread that
//! waits for them: it removes the files registered with [`remove_on_interrupt`], says so, and
//! ends the process with the usual status (128 + the signal number). The providers need no
//! cooperation, and the programs they start (GNU tar, a compressor, hooks) are unaffected:
//! Rust's process spawning resets the signal mask, so they receive a terminal's Ctrl-C and stop
//! as they always do.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Files to remove if the run is interrupted.
static UNFINISHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Blocks the signals in this thread (and so in every thread started later) and starts the
/// thread that handles them. Call it at the start of `main`.
pub fn install() {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; pthread_sigmask
    // only changes this thread's mask.
    let blocked = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new()
        .name("aa-signals".into())
        .spawn(move || loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: waits for one of the blocked signals; `blocked` lives in this closure.
            if unsafe { libc::sigwait(&blocked, &mut signal) } == 0 {
                interrupted(signal);
            }
        });
    if spawned.is_err() {
        // Without the thread nobody would take the signals: unblock them again.
        // SAFETY: as above.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &blocked, std::ptr::null_mut()) };
    }
}

fn interrupted(signal: libc::c_int) -> ! {
    let files = UNFINISHED.lock().unwrap_or_else(|e| e.into_inner());
    let mut removed = Vec::new();
    for path in files.iter() {
        if std::fs::remove_file(path).is_ok() {
            removed.push(path.display().to_string());
        }
    }
    let name = match signal {
        libc::SIGINT => "interrupted",
        libc::SIGTERM => "terminated",
        _ => "hung up",
    };
    if removed.is_empty() {
        eprintln!("aa: {name}");
    } else {
        eprintln!("aa: {name}; removed the unfinished {}", removed.join(", "));
    }
    // SAFETY: ends the process at once, without running other threads' code further.
    unsafe { libc::_exit(128 + signal) }
}

/// Registers `path` for removal if the run is interrupted, until the guard is dropped.
pub fn remove_on_interrupt(path: &Path) -> UnfinishedGuard {
    let path = path.to_path_buf();
    UNFINISHED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path.clone());
    UnfinishedGuard { path }
}

/// See [`remove_on_interrupt`].
#[must_use]
pub struct UnfinishedGuard {
    path: PathBuf,
}

impl Drop for UnfinishedGuard {
    fn drop(&mut self) {
        let mut files = UNFINISHED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = files.iter().position(|p| *p == self.path) {
            files.remove(i);
        }
    }
}

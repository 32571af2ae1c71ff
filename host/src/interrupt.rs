//! Ctrl-C (SIGINT), SIGTERM and SIGHUP during a run: the destination is put back as it was
//! before `aa` exits. The unfinished backup is removed (instead of a partial file being left
//! for the next run to clean) and old backups renamed for keeping are given back their names
//! (see `crate::app::journal`).
//!
//! The handlers are signal-hook's (a self-pipe: a handler may do little safely); a thread
//! reading its [`Signals`] runs the cleanups registered with [`on_interrupt`] (the latest
//! first), then kills the programs the run started and waits for
//! them, says what the cleanups did, and ends the process with the usual
//! status (128 + the signal number). The steps a cleanup must never interrupt run as
//! [`critical`] sections: the thread takes the same mutex first, and ends the process holding
//! it. The providers need no cooperation. Handlers do not survive `exec`, so the
//! programs a run starts (GNU tar, a compressor, hooks) keep the default behaviour and stop on
//! a terminal's Ctrl-C as they always did; blocking the signals instead would have been
//! inherited by them. A signal that was ignored when `aa` started (`nohup`) stays ignored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rustix::process::{kill_process, waitid, Pid, Signal, WaitId, WaitIdOptions};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What to do if the run is interrupted; each says what it did, if anything.
type Cleanup = Box<dyn Fn() -> Option<String> + Send>;

/// The cleanups registered, with their ids, in the order registered.
static CLEANUPS: Mutex<Vec<(u64, Cleanup)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Held by [`critical`] sections and by the signal thread while it cleans up.
static CRITICAL: Mutex<()> = Mutex::new(());

const SIGNALS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// Starts the thread that handles the signals and installs the handlers. Call it at the start
/// of `main`; failures leave the default behaviour.
pub fn install() {
    // signal-hook would replace an ignored disposition with its handler: keep those ignored.
    let signals: Vec<i32> = SIGNALS.into_iter().filter(|&s| !is_ignored(s)).collect();
    // The handlers are installed by the thread that waits for them, and only once it runs, so
    // a failed spawn leaves the default behaviour; `install` returns once they are in place.
    let (ready, installed) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("aa-signals".into())
        .spawn(move || {
            let Ok(mut signals) = Signals::new(&signals) else {
                return;
            };
            let _ = ready.send(());
            if let Some(signal) = signals.forever().next() {
                interrupted(signal);
            }
        });
    if spawned.is_ok() {
        let _ = installed.recv();
    }
}

/// Whether `signal` was ignored when `aa` started (`nohup`). Raw libc: neither signal-hook nor
/// rustix reads a signal's disposition without changing it.
fn is_ignored(signal: i32) -> bool {
    // SAFETY: with a null new action, sigaction only writes the current one into `previous`,
    // a zeroed plain-data struct we own.
    unsafe {
        let mut previous: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut previous) == 0
            && previous.sa_sigaction == libc::SIG_IGN
    }
}

fn interrupted(signal: i32) -> ! {
    // Held until the process ends: nothing critical starts after the cleanups.
    let _critical = CRITICAL.lock().unwrap_or_else(|e| e.into_inner());
    let cleanups = CLEANUPS.lock().unwrap_or_else(|e| e.into_inner());
    let done: Vec<String> = cleanups.iter().rev().filter_map(|(_, f)| f()).collect();
    // After the cleanups: a killed child wakes the thread waiting for it, which would go on
    // (and drop what it was writing) while the cleanups run.
    stop_children();
    let name = match signal {
        SIGINT => "interrupted",
        SIGTERM => "terminated",
        _ => "hung up",
    };
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        // Over the backup's status line, if one is shown.
        eprint!("\r\x1b[2K");
    }
    if done.is_empty() {
        eprintln!("aa: {name}");
    } else {
        eprintln!("aa: {name}; {}", done.join("; "));
    }
    // `_exit`: ends the process at once, without running other threads' code further.
    signal_hook::low_level::exit(128 + signal)
}

/// Kills the programs this process started (GNU tar, a hook) and waits until they are gone.
/// Until then they may go on writing, but only through descriptors (`TarExternal` gives GNU
/// tar the backup as `/dev/fd/N`), so into the removed file, never over a backup given back
/// its name. Compressors, tar's own children, stop when tar does.
fn stop_children() {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let pids = entries
        .flatten()
        .filter_map(|e| Pid::from_raw(e.file_name().to_str()?.parse().ok()?));
    for pid in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `PID (COMM) STATE PPID ...`; COMM may hold anything but ends at the last `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid != Some(me) {
            continue;
        }
        // WNOWAIT leaves it to be reaped by whoever waits for it.
        let _ = kill_process(pid, Signal::KILL);
        let _ = waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        );
    }
}

/// Runs `f` so that an interrupt's cleanups never run in the middle of it. A cleanup must not
/// call it: the signal thread already holds the lock.
pub fn critical<T>(f: impl FnOnce() -> T) -> T {
    let _critical = CRITICAL.lock().unwrap_or_else(|e| e.into_inner());
    f()
}

/// Registers `cleanup` to run if the run is interrupted, until the guard is dropped.
pub fn on_interrupt(cleanup: impl Fn() -> Option<String> + Send + 'static) -> InterruptGuard {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    CLEANUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((id, Box::new(cleanup)));
    InterruptGuard { id }
}

/// See [`on_interrupt`].
#[must_use]
pub struct InterruptGuard {
    id: u64,
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        let mut cleanups = CLEANUPS.lock().unwrap_or_else(|e| e.into_inner());
        cleanups.retain(|(id, _)| *id != self.id);
    }
}

//! Ctrl-C (SIGINT), SIGTERM and SIGHUP during a run: the destination is put back as it was
//! before `aa` exits. The unfinished backup is removed (instead of a partial file being left
//! for the next run to clean) and old backups renamed for keeping are given back their names
//! (see `crate::app::journal`).
//!
//! The signal handler only writes the signal number to a pipe (the self-pipe pattern: a handler
//! may do little safely); a thread reading the pipe runs the cleanups registered with
//! [`on_interrupt`] (the latest first), then kills the programs the run started and waits for
//! them, says what the cleanups did, and ends the process with the usual
//! status (128 + the signal number). The steps a cleanup must never interrupt run as
//! [`critical`] sections: the thread takes the same mutex first, and ends the process holding
//! it. The providers need no cooperation. Handlers do not survive `exec`, so the
//! programs a run starts (GNU tar, a compressor, hooks) keep the default behaviour and stop on
//! a terminal's Ctrl-C as they always did; blocking the signals instead would have been
//! inherited by them. A signal that was ignored when `aa` started (`nohup`) stays ignored.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;

/// What to do if the run is interrupted; each says what it did, if anything.
type Cleanup = Box<dyn Fn() -> Option<String> + Send>;

/// The cleanups registered, with their ids, in the order registered.
static CLEANUPS: Mutex<Vec<(u64, Cleanup)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Held by [`critical`] sections and by the signal thread while it cleans up.
static CRITICAL: Mutex<()> = Mutex::new(());

/// The write end of the pipe the handler signals through; -1 until [`install`].
static PIPE: AtomicI32 = AtomicI32::new(-1);

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; one byte from a local.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// Starts the thread that handles the signals and installs the handler. Call it at the start
/// of `main`; failures leave the default behaviour.
pub fn install() {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    let [read_end, write_end] = fds;
    let spawned = std::thread::Builder::new()
        .name("aa-signals".into())
        .spawn(move || loop {
            let mut byte = 0u8;
            // SAFETY: reads one byte into a local from the pipe this thread owns.
            let n = unsafe { libc::read(read_end, (&mut byte as *mut u8).cast(), 1) };
            if n == 1 {
                interrupted(libc::c_int::from(byte));
            } else if n == 0 {
                return;
            }
        });
    if spawned.is_err() {
        return;
    }
    PIPE.store(write_end, Ordering::Relaxed);
    for signal in SIGNALS {
        // SAFETY: sigaction with a zeroed struct filled in here; the handler is
        // async-signal-safe. The previous action is read first so that an ignored signal
        // stays ignored.
        unsafe {
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut previous) != 0
                || previous.sa_sigaction == libc::SIG_IGN
            {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

fn interrupted(signal: libc::c_int) -> ! {
    // Held until the process ends: nothing critical starts after the cleanups.
    let _critical = CRITICAL.lock().unwrap_or_else(|e| e.into_inner());
    let cleanups = CLEANUPS.lock().unwrap_or_else(|e| e.into_inner());
    let done: Vec<String> = cleanups.iter().rev().filter_map(|(_, f)| f()).collect();
    // After the cleanups: a killed child wakes the thread waiting for it, which would go on
    // (and drop what it was writing) while the cleanups run.
    stop_children();
    let name = match signal {
        libc::SIGINT => "interrupted",
        libc::SIGTERM => "terminated",
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
    // SAFETY: ends the process at once, without running other threads' code further.
    unsafe { libc::_exit(128 + signal) }
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
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok());
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
        // SAFETY: kill(2) and waitid(2) on our own child; `info` is a local the call fills.
        // WNOWAIT leaves it to be reaped by whoever waits for it.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            );
        }
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

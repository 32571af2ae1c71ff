//! The terminal: the [`Sink`] that `aa` reports through, writing output to standard output and
//! diagnostics to standard error.
//!
//! While a backup runs on a terminal (and neither `--quiet` nor `--verbose`, which lists every
//! name, was given; never under `--json`), one status line on stderr shows the archive, the
//! objects and bytes stored so far, the rate and the current name, and for a full backup the
//! totals and an ETA (see `crate::progress` for where the total comes from), so a long backup
//! is visibly alive and its end foreseeable; it is cleared when the backup ends, and messages
//! printed meanwhile appear above it. Without a terminal (cron, pipes, tests) nothing of it is
//! drawn.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::progress::Plan;
use crate::report::{Entry, Report, Sink, Verbosity, WriteSink};

/// Standard output and error, with the status line of a backup.
pub struct Terminal {
    lines: WriteSink,
    /// Whether a backup gets a status line (see the module documentation).
    shows_progress: bool,
    progress: RefCell<Option<Status>>,
}

/// The status line of one backup and the object counts it shows.
struct Status {
    bar: ProgressBar,
    files: Arc<AtomicU64>,
}

impl Terminal {
    /// A report to the terminal.
    pub fn report(verbosity: Verbosity) -> Report {
        let terminal = Terminal {
            lines: WriteSink::new(std::io::stdout(), std::io::stderr()),
            shows_progress: verbosity == Verbosity::Normal && std::io::stderr().is_terminal(),
            progress: RefCell::new(None),
        };
        Report::new(verbosity, terminal)
    }

    /// Prints through `print`, above the status line when there is one.
    fn above_progress(&self, print: impl FnOnce()) {
        match &*self.progress.borrow() {
            Some(status) => status.bar.suspend(print),
            None => print(),
        }
    }
}

/// The status line's template: objects, bytes, rate, then (total known) the totals and the
/// ETA, then the current name.
fn style(files: &Arc<AtomicU64>, total_files: Option<u64>) -> ProgressStyle {
    let template = if total_files.is_some() {
        "{spinner} {prefix}{files} files, {decimal_bytes}/{decimal_total_bytes}, \
         {decimal_bytes_per_sec}, ETA {eta}  {wide_msg}"
    } else {
        "{spinner} {prefix}{files} files, {decimal_bytes}, {decimal_bytes_per_sec}  {wide_msg}"
    };
    let files = files.clone();
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key(
            "files",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let done = files.load(Ordering::Relaxed);
                let _ = match total_files {
                    Some(total) => write!(w, "{done}/{total}"),
                    None => write!(w, "{done}"),
                };
            },
        )
}

impl Sink for Terminal {
    fn out(&self, line: &str) {
        self.above_progress(|| self.lines.out(line));
    }

    fn err(&self, line: &str) {
        self.above_progress(|| self.lines.err(line));
    }

    fn wants_sizes(&self) -> bool {
        self.shows_progress
    }

    fn start_progress(&self, prefix: &str, plan: Option<Plan>) {
        if !self.shows_progress {
            return;
        }
        let counting = ProgressStyle::with_template("{spinner} {prefix}counting files ...")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
            .with_style(counting)
            .with_prefix(prefix.to_string());
        // Redrawn even while one large file is read (or the tree counted), so that the line
        // shows the run is alive.
        bar.enable_steady_tick(Duration::from_millis(200));
        let files = Arc::new(AtomicU64::new(0));
        let counting = std::time::Instant::now();
        let total = plan.map(|p| p.totals());
        if let Some(t) = total {
            log::debug!(
                "pre-walk: {} objects, {} bytes in {:?}",
                t.files,
                t.bytes,
                counting.elapsed()
            );
        }
        if let Some(t) = total {
            bar.set_length(t.bytes);
        }
        bar.set_style(style(&files, total.map(|t| t.files)));
        // The rate and ETA count from here, not from the start of the counting.
        bar.reset_eta();
        *self.progress.borrow_mut() = Some(Status { bar, files });
    }

    fn progress_file(&self, name: &str, entry: Option<Entry>) {
        if let Some(status) = &*self.progress.borrow() {
            status.files.fetch_add(1, Ordering::Relaxed);
            status.bar.inc(entry.map_or(0, |e| e.size));
            status.bar.set_message(name.to_string());
        }
    }

    fn finish_progress(&self) {
        if let Some(status) = self.progress.borrow_mut().take() {
            status.bar.finish_and_clear();
        }
    }

    fn width(&self) -> usize {
        terminal_width()
    }
}

/// The width of the terminal `aa` writes to: the first of standard output, error and input
/// that is a terminal, then the controlling terminal, then `$COLUMNS`, then 80. Never fails:
/// the original crashed when run without a terminal (from cron or in a pipe).
fn terminal_width() -> usize {
    fn width_of(fd: impl std::os::fd::AsFd) -> Option<usize> {
        let ws = rustix::termios::tcgetwinsize(fd).ok()?;
        (ws.ws_col > 0).then_some(usize::from(ws.ws_col))
    }
    let standard = [
        width_of(std::io::stdout()),
        width_of(std::io::stderr()),
        width_of(std::io::stdin()),
    ];
    if let Some(w) = standard.into_iter().flatten().next() {
        return w;
    }
    if let Some(w) = std::fs::File::open("/dev/tty").ok().and_then(width_of) {
        return w;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
        .filter(|&w: &usize| w > 0)
        .unwrap_or(80)
}

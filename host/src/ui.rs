//! The terminal: the [`Sink`] that `aa` reports through, writing output to standard output and
//! diagnostics to standard error.
//!
//! While a backup runs on a terminal (and neither `--quiet` nor `--verbose`, which lists every
//! name, was given), one status line on stderr shows the archive, the number of objects stored
//! so far and the current name, so a long backup is visibly alive; it is cleared when the
//! backup ends, and messages printed meanwhile appear above it. Without a terminal (cron,
//! pipes, tests) nothing of it is drawn.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{Report, Sink, Verbosity, WriteSink};

/// Standard output and error, with the status line of a backup.
pub struct Terminal {
    lines: WriteSink,
    /// Whether a backup gets a status line (see the module documentation).
    shows_progress: bool,
    progress: RefCell<Option<ProgressBar>>,
}

impl Terminal {
    /// A report to the terminal.
    pub fn report(verbosity: Verbosity) -> Report {
        let terminal = Terminal {
            lines: WriteSink::new(std::io::stdout(), std::io::stderr()),
            shows_progress: verbosity == Verbosity::Normal,
            progress: RefCell::new(None),
        };
        Report::new(verbosity, terminal)
    }

    /// Prints through `print`, above the status line when there is one.
    fn above_progress(&self, print: impl FnOnce()) {
        match &*self.progress.borrow() {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }
}

impl Sink for Terminal {
    fn out(&self, line: &str) {
        self.above_progress(|| self.lines.out(line));
    }

    fn err(&self, line: &str) {
        self.above_progress(|| self.lines.err(line));
    }

    fn start_progress(&self, prefix: &str) {
        if !self.shows_progress || !std::io::stderr().is_terminal() {
            return;
        }
        let style = ProgressStyle::with_template("{spinner} {prefix}{pos} stored  {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
            .with_style(style)
            .with_prefix(prefix.to_string());
        // Redrawn even while one large file is read, so that the line shows the run is alive.
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.progress.borrow_mut() = Some(bar);
    }

    fn progress_file(&self, name: &str) {
        if let Some(bar) = &*self.progress.borrow() {
            bar.inc(1);
            bar.set_message(name.to_string());
        }
    }

    fn finish_progress(&self) {
        if let Some(bar) = self.progress.borrow_mut().take() {
            bar.finish_and_clear();
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

//! User-facing messages on the terminal, in the original program's format (`aa: Error! [name]
//! message`), so that existing scripts that grep its output keep working.
//!
//! The archive being processed is a piece of UI state (as in the original): once set with
//! [`Ui::set_label`], errors, warnings and informational messages are prefixed with it, so each
//! archive's outcome is on its own line. The UI also counts errors and warnings: like the
//! original, `aa` exits with 1 when any was shown.
//!
//! While a backup runs on a terminal (and neither `--quiet` nor `--verbose`, which lists every
//! name, was given), one status line on stderr shows the archive, the number of objects stored
//! so far and the current name, so a long backup is visibly alive; it is cleared when the
//! backup ends, and messages printed meanwhile appear above it. Without a terminal (cron,
//! pipes, tests) nothing of it is drawn.

use std::cell::{Cell, RefCell};
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How much is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// The longest directory part of a label before it is shortened with `~`.
const MAX_LABEL_DIR_LENGTH: usize = 10;

/// Prints messages and remembers whether anything went wrong.
pub struct Ui {
    verbosity: Verbosity,
    label: RefCell<Option<String>>,
    errors: Cell<usize>,
    warnings: Cell<usize>,
    progress: RefCell<Option<ProgressBar>>,
}

impl Ui {
    pub fn new(verbosity: Verbosity) -> Ui {
        Ui {
            verbosity,
            label: RefCell::new(None),
            errors: Cell::new(0),
            warnings: Cell::new(0),
            progress: RefCell::new(None),
        }
    }

    /// Starts the status line of a backup (see the module documentation).
    pub fn start_progress(&self) {
        if self.verbosity != Verbosity::Normal || !std::io::stderr().is_terminal() {
            return;
        }
        let style = ProgressStyle::with_template("{spinner} {prefix}{pos} stored  {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
            .with_style(style)
            .with_prefix(self.prefix());
        // Redrawn even while one large file is read, so that the line shows the run is alive.
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.progress.borrow_mut() = Some(bar);
    }

    /// Counts a stored object and shows its name on the status line, if there is one.
    pub fn progress_file(&self, name: &str) {
        if let Some(bar) = &*self.progress.borrow() {
            bar.inc(1);
            bar.set_message(name.to_string());
        }
    }

    /// Clears the status line.
    pub fn finish_progress(&self) {
        if let Some(bar) = self.progress.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }

    /// Prints through `print`, above the status line when there is one.
    fn above_progress(&self, print: impl FnOnce()) {
        match &*self.progress.borrow() {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    pub fn is_verbose(&self) -> bool {
        self.verbosity == Verbosity::Verbose
    }

    /// Sets the archive the following messages are about: an archive name or the path of a
    /// `.aa` file (whose directory part is shortened); `None` for messages about the run.
    pub fn set_label(&self, label: Option<&str>) {
        *self.label.borrow_mut() = label.map(label_token);
    }

    fn prefix(&self) -> String {
        match &*self.label.borrow() {
            Some(l) => format!("[{l}] "),
            None => String::new(),
        }
    }

    /// An error, always shown.
    pub fn error(&self, message: &str) {
        self.errors.set(self.errors.get() + 1);
        self.above_progress(|| eprintln!("aa: Error! {}{}", self.prefix(), message));
    }

    /// A warning, hidden by `--quiet` but still counted.
    pub fn warning(&self, message: &str) {
        self.warnings.set(self.warnings.get() + 1);
        if self.verbosity > Verbosity::Quiet {
            self.above_progress(|| eprintln!("aa: Warning! {}{}", self.prefix(), message));
        }
    }

    /// An error that stops the program before any archive is processed.
    pub fn fatal(&self, message: &str) {
        self.errors.set(self.errors.get() + 1);
        eprintln!("aa: Fatal Error! {message}");
    }

    /// A warning about the environment (e.g. a directory being created, a rejected plugin
    /// file) that does not make the run fail.
    pub fn notice(&self, message: &str) {
        if self.verbosity > Verbosity::Quiet {
            eprintln!("aa: Warning! {message}");
        }
    }

    /// Information about what is being done to the current archive, hidden by `--quiet`.
    pub fn info(&self, message: &str) {
        if self.verbosity > Verbosity::Quiet {
            self.print(&format!("{}{}", self.prefix(), message));
        }
    }

    /// Plain output hidden by `--quiet` (e.g. what an executed command prints).
    pub fn normal(&self, message: &str) {
        if self.verbosity > Verbosity::Quiet {
            self.print(message);
        }
    }

    /// Informational output shown only with `--verbose`.
    pub fn verbose(&self, message: &str) {
        if self.verbosity >= Verbosity::Verbose {
            self.print(message);
        }
    }

    /// Plain output (listings), not affected by verbosity.
    pub fn output(&self, message: &str) {
        self.print(message);
    }

    fn print(&self, message: &str) {
        self.above_progress(|| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{message}");
        });
    }

    pub fn errors(&self) -> usize {
        self.errors.get()
    }

    pub fn warnings(&self) -> usize {
        self.warnings.get()
    }
}

/// The label as the original shows it: a path keeps its file name and a shortened directory.
fn label_token(label: &str) -> String {
    match label.rfind('/') {
        Some(i) if i > 0 || label.len() > 1 => {
            let (dir, name) = (&label[..i], &label[i + 1..]);
            let dir = if dir.is_empty() { "/" } else { dir };
            let short = shorten(dir, MAX_LABEL_DIR_LENGTH);
            if short.ends_with('/') {
                format!("{short}{name}")
            } else {
                format!("{short}/{name}")
            }
        }
        _ => label.to_string(),
    }
}

/// Shortens `text` to `width` characters by replacing its middle with `~`.
pub fn shorten(text: &str, width: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let head = width / 2;
    let tail = width - head - 1;
    let mut out: String = chars[..head].iter().collect();
    out.push('~');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// The width of the terminal `aa` writes to: the first of standard output, error and input
/// that is a terminal, then the controlling terminal, then `$COLUMNS`, then 80. Never fails:
/// the original crashed when run without a terminal (from cron or in a pipe).
pub fn terminal_width() -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_as_the_original() {
        assert_eq!(label_token("home"), "home");
        assert_eq!(label_token("/tmp/py1/specs/p.aa"), "/tmp/~pecs/p.aa");
        assert_eq!(label_token("specs/p.aa"), "specs/p.aa");
        assert_eq!(label_token("/p.aa"), "//p.aa".replacen("//", "/", 1));
    }

    #[test]
    fn shortening() {
        assert_eq!(shorten("abcdefghijklmn", 10), "abcde~klmn");
        assert_eq!(shorten("abcdefghijklmn", 9), "abcd~klmn");
        assert_eq!(shorten("short", 10), "short");
    }
}

//! What the application tells the user, in the original program's format (`aa: Error! [name]
//! message`), so that existing scripts that grep its output keep working.
//!
//! The application (`crate::app`) knows no terminal: it talks to a [`Report`], which phrases,
//! filters (by [`Verbosity`]) and counts the messages, and hands the finished lines to a
//! [`Sink`]. The terminal's sink (standard output and error, the status line of a backup, the
//! terminal's width) is `crate::ui::Terminal`; [`WriteSink`] writes to any two [`Write`]rs,
//! which is how the tests read what a run reported.
//!
//! The archive being processed is a piece of report state (as in the original): once set with
//! [`Report::set_label`], errors, warnings and informational messages are prefixed with it, so
//! each archive's outcome is on its own line. The report also counts errors and warnings: like
//! the original, `aa` exits with 1 when any was shown.

use std::cell::{Cell, RefCell};
use std::io::Write;

/// How much is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// The longest directory part of a label before it is shortened with `~`.
const MAX_LABEL_DIR_LENGTH: usize = 10;

/// Where finished lines go. Only [`Sink::out`] and [`Sink::err`] are required: a sink without a
/// status line ignores the progress calls, and one without a width is 80 columns wide.
pub trait Sink {
    /// A line of output (listings, what is being done): standard output.
    fn out(&self, line: &str);
    /// A line of diagnostics (errors, warnings): standard error.
    fn err(&self, line: &str);
    /// A backup starts; `prefix` is the archive's label as messages show it.
    fn start_progress(&self, _prefix: &str) {}
    /// The backup stored the object `name`.
    fn progress_file(&self, _name: &str) {}
    /// The backup ended.
    fn finish_progress(&self) {}
    /// The width in columns that listings are fitted to.
    fn width(&self) -> usize {
        80
    }
}

/// A [`Sink`] over two writers, for output and diagnostics; write errors are ignored (a
/// closed standard output must not stop a backup).
pub struct WriteSink {
    out: RefCell<Box<dyn Write>>,
    err: RefCell<Box<dyn Write>>,
}

impl WriteSink {
    pub fn new(out: impl Write + 'static, err: impl Write + 'static) -> WriteSink {
        WriteSink {
            out: RefCell::new(Box::new(out)),
            err: RefCell::new(Box::new(err)),
        }
    }
}

impl Sink for WriteSink {
    fn out(&self, line: &str) {
        let _ = writeln!(self.out.borrow_mut(), "{line}");
    }

    fn err(&self, line: &str) {
        let _ = writeln!(self.err.borrow_mut(), "{line}");
    }
}

/// Phrases messages for the user and remembers whether anything went wrong.
pub struct Report {
    verbosity: Verbosity,
    sink: Box<dyn Sink>,
    label: RefCell<Option<String>>,
    errors: Cell<usize>,
    warnings: Cell<usize>,
}

impl Report {
    pub fn new(verbosity: Verbosity, sink: impl Sink + 'static) -> Report {
        Report {
            verbosity,
            sink: Box::new(sink),
            label: RefCell::new(None),
            errors: Cell::new(0),
            warnings: Cell::new(0),
        }
    }

    /// Starts the status line of a backup, if the sink has one.
    pub fn start_progress(&self) {
        self.sink.start_progress(&self.prefix());
    }

    /// Counts a stored object and shows its name on the status line, if there is one.
    pub fn progress_file(&self, name: &str) {
        self.sink.progress_file(name);
    }

    /// Clears the status line.
    pub fn finish_progress(&self) {
        self.sink.finish_progress();
    }

    /// The width that listings are fitted to.
    pub fn width(&self) -> usize {
        self.sink.width()
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
        self.sink
            .err(&format!("aa: Error! {}{}", self.prefix(), message));
    }

    /// A warning, hidden by `--quiet` but still counted.
    pub fn warning(&self, message: &str) {
        self.warnings.set(self.warnings.get() + 1);
        if self.verbosity > Verbosity::Quiet {
            self.sink
                .err(&format!("aa: Warning! {}{}", self.prefix(), message));
        }
    }

    /// An error that stops the program before any archive is processed.
    pub fn fatal(&self, message: &str) {
        self.errors.set(self.errors.get() + 1);
        self.sink.err(&format!("aa: Fatal Error! {message}"));
    }

    /// A warning about the environment (e.g. a directory being created, a rejected plugin
    /// file) that does not make the run fail.
    pub fn notice(&self, message: &str) {
        if self.verbosity > Verbosity::Quiet {
            self.sink.err(&format!("aa: Warning! {message}"));
        }
    }

    /// Information about what is being done to the current archive, hidden by `--quiet`.
    pub fn info(&self, message: &str) {
        if self.verbosity > Verbosity::Quiet {
            self.sink.out(&format!("{}{}", self.prefix(), message));
        }
    }

    /// Plain output hidden by `--quiet` (e.g. what an executed command prints).
    pub fn normal(&self, message: &str) {
        if self.verbosity > Verbosity::Quiet {
            self.sink.out(message);
        }
    }

    /// Informational output shown only with `--verbose`.
    pub fn verbose(&self, message: &str) {
        if self.verbosity >= Verbosity::Verbose {
            self.sink.out(message);
        }
    }

    /// Plain output (listings), not affected by verbosity.
    pub fn output(&self, message: &str) {
        self.sink.out(message);
    }

    pub fn errors(&self) -> usize {
        self.errors.get()
    }

    pub fn warnings(&self) -> usize {
        self.warnings.get()
    }
}

/// `n` and `noun`, plural unless `n` is 1: `1 member`, `3 members`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `bytes` for people: `812 B`, `5.6 MB` (decimal units, as `du --si`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
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

/// A sink that keeps what was reported, for in-process tests.
#[cfg(test)]
pub(crate) mod memory {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::{Report, Sink, Verbosity};

    /// The lines reported, shared with the [`Report`] that writes them.
    #[derive(Clone, Default)]
    pub(crate) struct Memory {
        out: Rc<RefCell<Vec<String>>>,
        err: Rc<RefCell<Vec<String>>>,
    }

    impl Memory {
        /// A report writing into a new memory sink, and the sink.
        pub(crate) fn report(verbosity: Verbosity) -> (Report, Memory) {
            let memory = Memory::default();
            (Report::new(verbosity, memory.clone()), memory)
        }

        /// The lines of standard output so far.
        pub(crate) fn out(&self) -> Vec<String> {
            self.out.borrow().clone()
        }

        /// The lines of standard error so far.
        pub(crate) fn err(&self) -> Vec<String> {
            self.err.borrow().clone()
        }
    }

    impl Sink for Memory {
        fn out(&self, line: &str) {
            self.out.borrow_mut().push(line.to_string());
        }

        fn err(&self, line: &str) {
            self.err.borrow_mut().push(line.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::Memory;
    use super::*;

    #[test]
    fn labels_as_the_original() {
        assert_eq!(label_token("home"), "home");
        assert_eq!(label_token("/tmp/py1/specs/p.aa"), "/tmp/~pecs/p.aa");
        assert_eq!(label_token("specs/p.aa"), "specs/p.aa");
        assert_eq!(label_token("/p.aa"), "//p.aa".replacen("//", "/", 1));
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(5_600_000), "5.6 MB");
        assert_eq!(human_bytes(999_999), "1.0 MB");
    }

    #[test]
    fn shortening() {
        assert_eq!(shorten("abcdefghijklmn", 10), "abcde~klmn");
        assert_eq!(shorten("abcdefghijklmn", 9), "abcd~klmn");
        assert_eq!(shorten("short", 10), "short");
    }

    #[test]
    fn messages_are_phrased_filtered_and_counted() {
        let (report, memory) = Memory::report(Verbosity::Quiet);
        report.set_label(Some("home"));
        report.error("broken");
        report.warning("odd");
        report.info("hidden");
        report.output("listed");
        report.set_label(None);
        report.fatal("unusable");
        assert_eq!(
            memory.err(),
            ["aa: Error! [home] broken", "aa: Fatal Error! unusable"]
        );
        assert_eq!(memory.out(), ["listed"]);
        assert_eq!((report.errors(), report.warnings()), (2, 1));
    }

    #[test]
    fn a_write_sink_writes_lines() {
        let out = std::rc::Rc::new(RefCell::new(Vec::new()));
        struct Shared(std::rc::Rc<RefCell<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.borrow_mut().write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let report = Report::new(
            Verbosity::Normal,
            WriteSink::new(Shared(out.clone()), std::io::sink()),
        );
        report.set_label(Some("/tmp/py1/specs/p.aa"));
        report.info("Keeping already existing backups.");
        assert_eq!(
            String::from_utf8_lossy(&out.borrow()),
            "[/tmp/~pecs/p.aa] Keeping already existing backups.\n"
        );
    }
}

//! What the application tells the user, in the original program's format (`aa: Error! [name]
//! message`), so that existing scripts that grep its output keep working, or, with `--json`, as
//! one JSON object per line for monitoring tools.
//!
//! The application (`crate::app`) knows no terminal and no JSON: it talks to a [`Report`], which
//! filters (by [`Verbosity`]) and counts the messages and hands them, with the archive they are
//! about, to a [`Sink`]. A sink phrases them: by default as the original's lines on standard
//! output and error ([`Sink::message`]); the JSON sink (`crate::json`) as objects. What has
//! structure beyond a line of text (a stored file, a finished backup, a listed archive or
//! provider, the summary of the run) is an [`Event`], which only a structured sink takes; the
//! human form of a listing stays with the action that makes it. The terminal's sink (standard
//! output and error, the status line of a backup, the terminal's width) is `crate::ui::Terminal`;
//! [`WriteSink`] writes to any two [`Write`]rs, which is how the tests read what a run reported.
//!
//! The archive being processed is a piece of report state (as in the original): once set with
//! [`Report::set_label`], errors, warnings and informational messages are prefixed with it, so
//! each archive's outcome is on its own line. The report also counts errors and warnings: like
//! the original, `aa` exits with 1 when any was shown.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::progress::Plan;

/// How much is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// The longest directory part of a label before it is shortened with `~`.
const MAX_LABEL_DIR_LENGTH: usize = 10;

/// What kind of message a line is; the JSON form names it in its `level` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The run cannot start (an unusable `aa.conf`).
    Fatal,
    Error,
    Warning,
    /// About the environment (a directory created, a plugin refused); changes no exit status.
    Notice,
    /// What is being done to the archive.
    Info,
    /// Plain output: a hook's standard output, a listing line.
    Output,
    /// Shown with `--verbose` only.
    Verbose,
}

/// A message for the user and the archive it is about (the label as given, unshortened).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub level: Level,
    pub archive: Option<&'a str>,
    pub text: &'a str,
}

/// What a stored object is, as the host sees it in the backup root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    Other,
    /// Gone (or unreadable) by the time the host looked.
    Unknown,
}

/// A stored object: its kind and, for a regular file, its length in bytes (0 otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub size: u64,
}

impl Entry {
    /// What `path` is now (not following a symbolic link).
    pub fn of(path: &Path) -> Entry {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_file() => Entry {
                kind: EntryKind::File,
                size: m.len(),
            },
            Ok(m) => Entry {
                kind: if m.is_dir() {
                    EntryKind::Directory
                } else if m.is_symlink() {
                    EntryKind::Symlink
                } else {
                    EntryKind::Other
                },
                size: 0,
            },
            Err(_) => Entry {
                kind: EntryKind::Unknown,
                size: 0,
            },
        }
    }
}

/// An archive as `--list` shows it; `None` is unknown or not applicable (`-` and `?` in the
/// human listing).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListedArchive {
    pub name: String,
    pub orphaned: bool,
    pub root: Option<String>,
    pub archiver: String,
    pub dest_dir: String,
    pub incremental: Option<bool>,
    pub backup_level: Option<u32>,
    pub next_level: Option<u32>,
    pub restarting: Option<bool>,
    pub restart_after_level: Option<i64>,
    pub restart_reason: Option<String>,
    pub restart_level: Option<u32>,
    pub restart_count: Option<i64>,
    pub full_restart_after_count: Option<i64>,
    pub days_since_last_restart: Option<i64>,
    pub restart_after_age: Option<i64>,
    pub days_since_last_full_restart: Option<i64>,
    pub full_restart_after_age: Option<i64>,
}

/// A backup type a provider makes and the features it has for it.
#[derive(Debug, Clone, Serialize)]
pub struct ProvidedType {
    #[serde(rename = "type")]
    pub backup_type: String,
    pub features: Vec<String>,
}

/// A provider as `--list-providers` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ListedProvider {
    pub id: String,
    pub library: String,
    pub description: String,
    pub types: Vec<ProvidedType>,
    pub capabilities: Vec<String>,
}

/// What a run did, in numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub command: &'static str,
    pub errors: usize,
    pub warnings: usize,
    pub files: u64,
    pub bytes: u64,
    pub backups: u64,
    pub exit_status: u8,
}

/// What has structure beyond a line of text. Each variant is one JSON line (`type` names it;
/// see `docs/json-schema.json`); the human output shows them in its own way or not at all.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The backup stored an object (`name` relative to the archive's root).
    File {
        name: &'a str,
        kind: EntryKind,
        size: u64,
    },
    /// A backup was made: its file, level (`None` for a non-incremental archive), size on
    /// disk and how long the provider took.
    Backup {
        file: String,
        level: Option<u32>,
        size: u64,
        duration_seconds: f64,
    },
    Archive(&'a ListedArchive),
    Provider(&'a ListedProvider),
    Summary(Summary),
}

/// Where messages and events go. Only [`Sink::out`] and [`Sink::err`] are required: the
/// default [`Sink::message`] phrases messages as the original's lines, a sink that is not
/// structured ignores events, one without a status line ignores the progress calls, and one
/// without a width is 80 columns wide.
pub trait Sink {
    /// A line of output (listings, what is being done): standard output.
    fn out(&self, line: &str);
    /// A line of diagnostics (errors, warnings): standard error.
    fn err(&self, line: &str);
    /// A message, already filtered by verbosity: phrased as the original does.
    fn message(&self, message: &Message<'_>) {
        let prefix = match message.archive {
            Some(l) => format!("[{}] ", label_token(l)),
            None => String::new(),
        };
        let text = message.text;
        match message.level {
            Level::Fatal => self.err(&format!("aa: Fatal Error! {text}")),
            Level::Error => self.err(&format!("aa: Error! {prefix}{text}")),
            Level::Warning => self.err(&format!("aa: Warning! {prefix}{text}")),
            Level::Notice => self.err(&format!("aa: Warning! {text}")),
            Level::Info => self.out(&format!("{prefix}{text}")),
            Level::Output | Level::Verbose => self.out(text),
        }
    }
    /// Whether this sink takes [`Event`]s (and so wants no human listing).
    fn structured(&self) -> bool {
        false
    }
    /// An event about `archive`; only called when [`Sink::structured`].
    fn event(&self, _archive: Option<&str>, _event: &Event<'_>) {}
    /// Whether the backup's stored objects are wanted with their sizes (a status line that
    /// counts bytes, or a structured sink): the host then looks at each one.
    fn wants_sizes(&self) -> bool {
        self.structured()
    }
    /// A backup starts; `prefix` is the archive's label as messages show it, and `plan` what
    /// it will read, when that can be known beforehand (see `crate::progress`).
    fn start_progress(&self, _prefix: &str, _plan: Option<Plan>) {}
    /// The backup stored the object `name` (`entry` when [`Sink::wants_sizes`]).
    fn progress_file(&self, _name: &str, _entry: Option<Entry>) {}
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
    files: Cell<u64>,
    bytes: Cell<u64>,
    backups: Cell<u64>,
}

impl Report {
    pub fn new(verbosity: Verbosity, sink: impl Sink + 'static) -> Report {
        Report {
            verbosity,
            sink: Box::new(sink),
            label: RefCell::new(None),
            errors: Cell::new(0),
            warnings: Cell::new(0),
            files: Cell::new(0),
            bytes: Cell::new(0),
            backups: Cell::new(0),
        }
    }

    /// Starts the status line of a backup, if the sink has one; `plan` tells it the total.
    pub fn start_progress(&self, plan: Option<Plan>) {
        self.sink.start_progress(&self.prefix(), plan);
    }

    /// A stored object: counted, shown on the status line, listed with `--verbose` (or as an
    /// event). `path` is where it is in the backup root, looked at only when the sink wants
    /// its size.
    pub fn file_stored(&self, name: &str, path: impl FnOnce() -> std::path::PathBuf) {
        let entry = self.sink.wants_sizes().then(|| Entry::of(&path()));
        self.files.set(self.files.get() + 1);
        if let Some(e) = entry {
            self.bytes.set(self.bytes.get() + e.size);
        }
        self.sink.progress_file(name, entry);
        match entry {
            Some(e) if self.sink.structured() => {
                self.event(&Event::File {
                    name,
                    kind: e.kind,
                    size: e.size,
                });
            }
            _ => self.verbose(name),
        }
    }

    /// A backup was made (an event only: the human output says nothing, as the original).
    pub fn backup_done(&self, file: &Path, level: Option<u32>, size: u64, duration: Duration) {
        self.backups.set(self.backups.get() + 1);
        if self.sink.structured() {
            self.event(&Event::Backup {
                file: file.display().to_string(),
                level,
                size,
                duration_seconds: duration.as_secs_f64(),
            });
        }
    }

    /// Hands `event` to a structured sink; false (and nothing done) for a human one, whose
    /// form of it the caller then shows.
    pub fn event(&self, event: &Event<'_>) -> bool {
        if self.sink.structured() {
            self.sink.event(self.label.borrow().as_deref(), event);
        }
        self.sink.structured()
    }

    /// The last line of a run: what it did and its exit status (an event only).
    pub fn summary(&self, command: &'static str, exit_status: u8) {
        let summary = Summary {
            command,
            errors: self.errors(),
            warnings: self.warnings(),
            files: self.files.get(),
            bytes: self.bytes.get(),
            backups: self.backups.get(),
            exit_status,
        };
        self.set_label(None);
        self.event(&Event::Summary(summary));
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
        *self.label.borrow_mut() = label.map(str::to_string);
    }

    fn prefix(&self) -> String {
        match &*self.label.borrow() {
            Some(l) => format!("[{}] ", label_token(l)),
            None => String::new(),
        }
    }

    fn send(&self, level: Level, text: &str) {
        self.sink.message(&Message {
            level,
            archive: self.label.borrow().as_deref(),
            text,
        });
    }

    /// An error, always shown.
    pub fn error(&self, message: &str) {
        self.errors.set(self.errors.get() + 1);
        self.send(Level::Error, message);
    }

    /// A warning, hidden by `--quiet` but still counted.
    pub fn warning(&self, message: &str) {
        self.warnings.set(self.warnings.get() + 1);
        if self.verbosity > Verbosity::Quiet {
            self.send(Level::Warning, message);
        }
    }

    /// An error that stops the program before any archive is processed.
    pub fn fatal(&self, message: &str) {
        self.errors.set(self.errors.get() + 1);
        self.send(Level::Fatal, message);
    }

    /// A warning about the environment (e.g. a directory being created, a rejected plugin
    /// file) that does not make the run fail.
    pub fn notice(&self, message: &str) {
        if self.verbosity > Verbosity::Quiet {
            self.send(Level::Notice, message);
        }
    }

    /// Information about what is being done to the current archive, hidden by `--quiet`.
    pub fn info(&self, message: &str) {
        if self.verbosity > Verbosity::Quiet {
            self.send(Level::Info, message);
        }
    }

    /// Plain output hidden by `--quiet` (e.g. what an executed command prints).
    pub fn normal(&self, message: &str) {
        if self.verbosity > Verbosity::Quiet {
            self.send(Level::Output, message);
        }
    }

    /// Informational output shown only with `--verbose`.
    pub fn verbose(&self, message: &str) {
        if self.verbosity >= Verbosity::Verbose {
            self.send(Level::Verbose, message);
        }
    }

    /// Plain output (listings), not affected by verbosity.
    pub fn output(&self, message: &str) {
        self.send(Level::Output, message);
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

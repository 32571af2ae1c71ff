//! User-facing messages on the terminal, in the original program's format (`aa: Error! [name]
//! message`), so that existing scripts that grep its output keep working.
//!
//! The UI also counts errors and warnings: like the original, `aa` exits with 1 when any was
//! shown.

use std::cell::Cell;
use std::io::Write;

/// How much is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Prints messages and remembers whether anything went wrong.
pub struct Ui {
    verbosity: Verbosity,
    errors: Cell<usize>,
    warnings: Cell<usize>,
}

impl Ui {
    pub fn new(verbosity: Verbosity) -> Ui {
        Ui {
            verbosity,
            errors: Cell::new(0),
            warnings: Cell::new(0),
        }
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// An error, always shown; `archive` names the archive it concerns.
    pub fn error(&self, archive: Option<&str>, message: &str) {
        self.errors.set(self.errors.get() + 1);
        eprintln!("aa: Error! {}{}", prefix(archive), message);
    }

    /// A warning, hidden by `--quiet`.
    pub fn warning(&self, archive: Option<&str>, message: &str) {
        self.warnings.set(self.warnings.get() + 1);
        if self.verbosity > Verbosity::Quiet {
            eprintln!("aa: Warning! {}{}", prefix(archive), message);
        }
    }

    /// A warning about the environment (e.g. a rejected plugin file) that does not make the
    /// run fail.
    pub fn notice(&self, message: &str) {
        if self.verbosity > Verbosity::Quiet {
            eprintln!("aa: Warning! {message}");
        }
    }

    /// Informational output shown only with `--verbose`.
    pub fn verbose(&self, message: &str) {
        if self.verbosity >= Verbosity::Verbose {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{message}");
        }
    }

    /// Plain output (listings), not affected by verbosity.
    pub fn output(&self, message: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{message}");
    }

    pub fn errors(&self) -> usize {
        self.errors.get()
    }

    pub fn warnings(&self) -> usize {
        self.warnings.get()
    }
}

fn prefix(archive: Option<&str>) -> String {
    archive.map(|a| format!("[{a}] ")).unwrap_or_default()
}

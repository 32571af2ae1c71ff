//! The provider conformance suite: one set of behaviour checks, written once, run against any
//! `aa` archiver provider library.
//!
//! The seed service API describes what an archiver provider must do, and the two built-in
//! providers plus every third-party plugin must do it the same way, or `aa` behaves differently
//! depending on which library happens to serve an archiver. Rather than each provider carrying
//! its own copy of these expectations, the suite loads a library through the real host API
//! ([`aa_abi::host::PluginLibrary`]), reads what the provider *declares* (its backup types and
//! the features of each) and runs every check that applies to that declaration. A provider is
//! never asked for something it does not claim; a claim it makes is held to the seed's letter.
//!
//! Every check runs in a fresh temporary directory with a freshly created provider, under
//! `catch_unwind` and on a thread of its own with a time limit ([`Options::timeout`]), so one
//! failure, panic or hang never hides the results of the others.
//!
//! # What is checked
//!
//! For every declared backup type:
//!
//! * `backup_files` returns exactly `DEST/NAME.<ext>`, leaves nothing else in `DEST`, and the
//!   file's magic bytes match the type;
//! * the backup of a fixture holding every kind of object extracts with GNU tar to the source
//!   tree under the object-storage rule below, and `file_add` was raised for every stored
//!   member (and for nothing else);
//! * an excluded subtree and an excluded single file are absent, everything else is present;
//! * a failing run (backup root missing) returns an error, leaves the old backup byte-identical
//!   and no `._partial` file; a successful run replaces the backup, and while it writes the
//!   old backup is intact beside a `._partial` file, or, with `overwrite_at_start`, already
//!   overwritten with no `._partial` file (seen when the last member is reported, after 2 MiB
//!   that no pipe holds);
//! * compression strengths: 0 and 9 both give valid archives and 9 is not larger than 0 on
//!   compressible data (types declaring `CompressionStrength`); 10 is `INVALID_VALUE`; any
//!   strength for a type without the feature is `UNSUPPORTED_FEATURE`; an empty include list
//!   is `OTHER` "Nothing to backup.";
//! * `keep_backup`, `does_backup_exist` and `remove_backup`, including the `EEXIST`/`ENOENT`
//!   I/O errors and `INVALID_VALUE` for an empty keeping id;
//! * with `Incremental`: a level 0..3 chain with changes of every kind between levels restores
//!   (levels 0..N in order, `tar --listed-incremental=/dev/null`) to the tree as it was at level
//!   N; the maximal level, level bounds, redoing a level, `remove_backup_increments`, keeping
//!   levels, `does_any_backup_level_exist`, stored ids and `purge_stored_backup_data` (which must
//!   not touch the state of an id that merely starts with the purged one); a failed incremental
//!   run leaves the work directory (snapshot state) and every backup byte-identical;
//! * without `Incremental`: the incremental methods answer `NOT_IMPLEMENTED` or
//!   `UNSUPPORTED_FEATURE`.
//!
//! Provider-wide: a sane identification; `UNSUPPORTED_TYPE` from `backup_files`,
//! `backup_files_incrementally`, `remove_backup`, `does_backup_exist` and `keep_backup` for an
//! undeclared backup type; and, when no type declares `Incremental`, a refused
//! `get_max_backup_level`.
//!
//! # The object-storage rule
//!
//! A provider need not be able to store every kind of file system object (the example plugin
//! stores only regular files and directories with short names). What it may never do is lose
//! one silently. So every object of the source is either
//!
//! * **stored faithfully**: GNU tar restores it with the same type, content, permission bits,
//!   owner, modification time (whole seconds; sub-second digits, if the archive keeps any, must
//!   be exact) and symbolic link target; or
//! * **reported**: absent from the archive, with a `backup_operation_error` event of
//!   `UnknownTypeIgnored` or `SocketIgnored` naming it or one of its ancestor directories.
//!
//! Sockets can never be stored in a tar archive, so they must always be reported. Hard links
//! may be stored as links or as independent copies of the content: either way nothing is lost.
//! Any other `backup_operation_error` on the fixture (which is readable and does not change) is
//! a failure.
//!
//! # Layout
//!
//! * `checks/`: the checks, one module per area (backups, arguments, keeping, incremental), and
//!   the registry that picks those a declaration calls for;
//! * `runner`: running one check in isolation (own directory and provider, `catch_unwind`, a
//!   thread with a time limit) and its verdict;
//! * [`support`]: the event recorder (the provider kit's, with the suite's name normalisation)
//!   and directory-state comparisons;
//! * the toolkit, re-exported at the root because checking archives against trees is this
//!   crate's business and the end-to-end tests (`aa-tests`) and providers' own tests use it
//!   too: `fixture` (the tree builder, the two fixtures, noise and compressible text),
//!   `tree_record` ([`TreeRecord`], [`record_tree`], [`tree_diff`]) and `gnu_tar` (GNU tar as
//!   the reference reader: [`gnu_extract`], [`gnu_list`], [`gnu_restore_incremental`],
//!   [`detect_format`]).

mod checks;
mod fixture;
mod gnu_tar;
mod runner;
pub mod support;
mod tree_record;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aa_abi::host::{LoadError, PluginLibrary};
use aa_abi::{ProviderError, ProviderIdentification};

pub use runner::{Failure, Outcome, Verdict};

// The toolkit the checks are made of (see "Layout" above).
pub use fixture::{
    bpath, chmod, compressible_text, full_fixture, mkfifo, noise, set_mtime, simple_fixture,
    TreeBuilder,
};
pub use gnu_tar::{detect_format, gnu_extract, gnu_list, gnu_restore_incremental};
pub use tree_record::{
    assert_same_tree, record_tree, show, tree_diff, without, Compare, Entry, Kind, TreeRecord,
};

/// How a suite run is restricted.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run only the checks whose full name (`Provider/Type/check`) contains this text.
    pub filter: Option<String>,
    /// How long one check may take before it fails as hung; `None` for no limit.
    pub timeout: Option<Duration>,
}

/// The time limit of one check unless told otherwise: far above what the slowest check takes
/// with the shipped providers in a debug build (seconds), low enough that a hung provider is
/// reported the same hour.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for Options {
    fn default() -> Options {
        Options {
            filter: None,
            timeout: Some(DEFAULT_TIMEOUT),
        }
    }
}

/// Counts of one or more suite runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Summary {
    pub fn add(&mut self, other: &Summary) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }

    fn count(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Passed => self.passed += 1,
            Verdict::Failed(_) => self.failed += 1,
            Verdict::Skipped(_) => self.skipped += 1,
        }
    }
}

/// The closing line: `N passed, M failed` and `, K skipped` when any were skipped.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

/// Why a library could not be tested at all.
#[derive(Debug)]
pub struct Error {
    library: PathBuf,
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    Load(LoadError),
    Identification(ProviderError),
}

impl Error {
    /// The library the error is about.
    pub fn library(&self) -> &Path {
        &self.library
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let library = self.library.display();
        match &self.kind {
            ErrorKind::Load(e) => write!(f, "{library}: {e}"),
            ErrorKind::Identification(e) => {
                write!(f, "{library}: the provider's identification failed: {e}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Loads the provider library `path` and runs every applicable check, calling `on_outcome`
/// after each one (for progress output) and returning the counts.
///
/// The caller must make sure `path` is an ELF shared library: loading a damaged one can crash
/// the process, which no check can guard against.
pub fn run_library(
    path: &Path,
    options: &Options,
    on_outcome: &mut dyn FnMut(&Outcome),
) -> Result<Summary, Error> {
    let error = |kind| Error {
        library: path.to_path_buf(),
        kind,
    };
    let library = PluginLibrary::load(path).map_err(|e| error(ErrorKind::Load(e)))?;
    let identification = library
        .identification()
        .map_err(|e| error(ErrorKind::Identification(e)))?;
    // Checks run on threads of their own, which a hung provider may keep for ever; libraries
    // are never unloaded anyway, so the library and its identification live as long.
    let library: &'static PluginLibrary = Box::leak(Box::new(library));
    let identification: &'static ProviderIdentification = Box::leak(Box::new(identification));
    let mut summary = Summary::default();
    for check in checks::applicable(identification) {
        if options
            .filter
            .as_deref()
            .is_some_and(|f| !check.name().contains(f))
        {
            continue;
        }
        let outcome = check.run_within(options.timeout, library, identification);
        summary.count(&outcome.verdict);
        on_outcome(&outcome);
    }
    Ok(summary)
}

/// The names of the checks that apply to a provider library, without running them.
pub fn check_names(path: &Path) -> Result<Vec<String>, Error> {
    let error = |kind| Error {
        library: path.to_path_buf(),
        kind,
    };
    let library = PluginLibrary::load(path).map_err(|e| error(ErrorKind::Load(e)))?;
    let identification = library
        .identification()
        .map_err(|e| error(ErrorKind::Identification(e)))?;
    Ok(checks::applicable(&identification)
        .iter()
        .map(|c| c.name().to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line() {
        let mut s = Summary {
            passed: 3,
            failed: 1,
            skipped: 0,
        };
        assert_eq!(s.to_string(), "3 passed, 1 failed");
        s.add(&Summary {
            passed: 1,
            failed: 0,
            skipped: 2,
        });
        assert_eq!(s.to_string(), "4 passed, 1 failed, 2 skipped");
    }
}

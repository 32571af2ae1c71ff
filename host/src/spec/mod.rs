//! Archive specification files (`NAME.aa`): what to back up and how.
//!
//! A specification is an INI file read with the rules of the original AutoArchive (see
//! [`crate::ini`]): option names are case-sensitive, `%(name)s` interpolation applies, and
//! `@(external.option)` pulls a value from another specification named in `[External]`.
//!
//! - `[Content]` (required): `path` (the archive root, `~` expanded), `include-files`,
//!   `exclude-files` (both required; `exclude-files =` means nothing is excluded) and the
//!   optional `name` (default: the file name without `.aa`).
//! - `[Archive]` (optional): the configuration options a specification may override; they are
//!   kept as raw strings because their meaning (and defaults) belong to the application. An
//!   empty value (`incremental =`) means "unset" and still overrides the configuration.
//! - `[External]`: `name` refers to `name.aa` in the archive specifications directory,
//!   `name = some/file.aa` to a file relative to the referring one.
//!
//! The module is split by concept, each part small enough to read at once:
//! - `load`: [`ArchiveSpec`] and what loading one checks (required options, the archive name,
//!   notes on near-miss option names);
//! - `read`: one file as INI text with the checks the original made on every file it read;
//! - `external`: resolving `@(name.option)` references through `[External]`;
//! - `file_lists`: splitting and normalising `include-files`/`exclude-files`;
//! - `glob`: our reproduction of Python's `glob.glob`, which expands those lists
//!   ([`expand_wildcards`]);
//! - `error`: [`SpecError`], whose messages name the file and line at fault.

mod error;
mod external;
mod file_lists;
mod glob;
mod load;
mod read;
#[cfg(test)]
mod testing;

pub use self::error::SpecError;
pub(crate) use self::glob::expand_wildcards;
pub use self::load::ArchiveSpec;

/// Extension of archive specification files, without the dot.
pub(crate) const SPEC_EXTENSION: &str = "aa";

const EXTERNAL: &str = "External";
const ARCHIVE: &str = "Archive";
const CONTENT: &str = "Content";

/// Options a specification may set in `[Archive]`, overriding the configuration.
pub(crate) const ARCHIVE_OPTIONS: [&str; 19] = [
    "archiver",
    "compression-level",
    "dest-dir",
    "overwrite-at-start",
    "incremental",
    "restarting",
    "restart-after-level",
    "restart-after-age",
    "full-restart-after-count",
    "full-restart-after-age",
    "max-restart-level-size",
    "remove-obsolete-backups",
    "keep-old-backups",
    "number-of-old-backups",
    "command-before-backup",
    "command-after-backup",
    "s3-endpoint",
    "s3-region",
    "s3-path-style",
];

/// Options of `[Content]`.
const CONTENT_OPTIONS: [&str; 4] = ["name", "path", "include-files", "exclude-files"];

/// The original gave up after 40 nested external references, assuming a cycle.
const MAX_EXTERNAL_DEPTH: usize = 40;

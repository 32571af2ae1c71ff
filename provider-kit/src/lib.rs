//! What every `aa` archiver provider needs beside the ABI: GNU tar's incremental formats, the
//! layout in which providers keep their snapshot files, and the code a provider would otherwise
//! write again.
//!
//! Why a crate of its own: `aa-abi` is the contract between the host and plugins built at other
//! times, so it holds only what crosses the boundary and changes only with the ABI version.
//! This crate is ordinary Rust that each provider links statically; nothing of it crosses the
//! boundary, so it can change freely, and a change to it never makes a plugin refuse to load.
//!
//! * [`snapshot_file`] and [`dumpdir`]: GNU tar's snapshot files (format 2) and dumpdirs, read
//!   and written in this one place (public modules, because their items are named after the
//!   format: `dumpdir::Entry`, `snapshot_file::Header`).
//! * [`Snapshots`] and [`WorkingFile`]: the snapshots directory every provider shares
//!   (`<workDir>/snapshots/NAME[.LEVEL].snar`), so providers continue each other's chains, and
//!   the private file a level writes its snapshot to until it is installed.
//! * The state methods of the service API on top of it: [`remove_backup_increments`],
//!   [`does_any_backup_level_exist`], and [`snapshot_state_methods!`], which writes all five
//!   into a provider's `impl ArchiverProvider`.
//! * [`dump_start_time`] (the dump time a level records), [`NO_CHECK_DEVICE_VAR`]
//!   (`AA_NO_CHECK_DEVICE`), [`OwnBackups`] (the archive's own backup files in the tree it backs
//!   up), [`backup_root`] and [`fatal`] (the root check and the message of a fatal I/O error).
//! * [`roots`]: the record of the top-level entries of each incremental level, which restores
//!   need and no dumpdir holds.
//! * [`beneath`]: file system operations confined to a restore target (`openat2` with
//!   `RESOLVE_BENEATH`), such as [`beneath::remove_beneath`].
//! * [`CountedItems`]: item events counted into the [`Totals`](aa_abi::capability::Totals) a
//!   capability call returns.
//! * [`recording`]: a [`BackupEvents`](aa_abi::BackupEvents) that records what a provider
//!   reports, for provider tests.

#![deny(missing_docs)]

pub mod beneath;
pub mod dumpdir;
pub mod recording;
pub mod snapshot_file;

mod clock;
mod counted;
mod device;
mod increments;
mod layout;
mod own_backups;
mod provider;
pub mod roots;
mod working;

pub use clock::dump_start_time;
pub use counted::CountedItems;
pub use device::{check_device_from_env, NO_CHECK_DEVICE_VAR};
pub use increments::{does_any_backup_level_exist, remove_backup_increments};
pub use layout::{check_backup_id, Snapshots};
pub use own_backups::{relative_destination, OwnBackups};
pub use provider::{backup_root, fatal};
pub use working::WorkingFile;

/// Items [`snapshot_state_methods!`] expands to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use aa_abi::{BackupDefinition, ProviderError};
}

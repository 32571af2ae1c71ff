//! Capabilities: what a provider can do beyond the archiver service of ABI 1.0, and the rule
//! by which that list grows without refusing a plugin built before.
//!
//! # Why not a new root-module entry or provider method
//!
//! abi_stable refuses a plugin whose root module (or provider vtable) has fewer fields than the
//! host's. So a host that grew a method would refuse every plugin built before it. ABI 1.0
//! ([`crate::ffi`]) is therefore frozen, and each new capability is a module of its own:
//!
//! - the plugin exports it under its own symbol, `aa_capability_<name>_v<N>` (for example
//!   [`RESTORE_V1`]), a function returning a [`ffi::CapabilityHeader`]: the layout the plugin
//!   was built with and the module;
//! - the host looks the symbol up when it loads the plugin. Absent: the plugin lacks the
//!   capability and works as before. Present: the layout is checked with abi_stable against the
//!   host's; a mismatch refuses the plugin with one line naming the capability;
//! - a capability never changes once released. A changed one is a new name-versioned symbol
//!   (`_v2`), which a host may look up beside `_v1`. Fields may be appended to a capability's
//!   module after its last prefix field (a newer plugin in an older host), as with the root
//!   module.
//!
//! The root module's ABI version ([`crate::ABI_VERSION`]) stays `1.0.0` for all of this, and
//! this crate's package version stays `0.1.x` (abi_stable compares it too, in every layout).
//!
//! The proof is kept in the tests: `tests/abi-1.0/` is this crate as released with ABI 1.0,
//! never edited, and `tests/tests/abi_growth.rs` builds the Hello example against it and
//! checks that the current host loads it, makes backups with it and reports it without
//! capabilities, and refuses a plugin whose `restore_v1` layout differs, naming the capability.
//!
//! Plugins implement [`Restoring`], [`Verifying`], [`DryRunning`] or [`BackingUpToSink`] on
//! their provider and export them with [`export_capabilities!`](crate::export_capabilities);
//! hosts reach them through [`crate::host::Provider`].

mod export;
pub mod ffi;
mod load;
mod types;

#[doc(hidden)]
pub use export::{
    backup_to_sink_v1_header, dry_run_v1_header, restore_v1_header, verify_v1_header,
};
pub use export::{BackingUpToSink, DryRunning, Restoring, Verifying};
pub use load::{Capabilities, CapabilityError};
pub use types::{BackupSink, ChainArchive, ItemEvents, RestoreRequest, Totals};

/// The restore capability, version 1 ([`Restoring`]).
pub const RESTORE_V1: &str = "restore_v1";
/// The verify capability, version 1 ([`Verifying`]).
pub const VERIFY_V1: &str = "verify_v1";
/// The dry-run capability, version 1 ([`DryRunning`]).
pub const DRY_RUN_V1: &str = "dry_run_v1";

/// The backup-to-sink capability, version 1 ([`BackingUpToSink`]): backups written into a
/// byte sink of the host (an object store) instead of a local file.
pub const BACKUP_TO_SINK_V1: &str = "backup_to_sink_v1";

/// Every capability this version of the ABI knows, in the order hosts report them.
pub const KNOWN: [&str; 4] = [RESTORE_V1, VERIFY_V1, DRY_RUN_V1, BACKUP_TO_SINK_V1];

/// The symbol a plugin exports capability `name` under, NUL-terminated.
pub fn symbol_name(name: &str) -> String {
    format!("aa_capability_{name}\0")
}

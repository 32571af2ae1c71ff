//! Code every provider would otherwise write again: the state methods of the service API for
//! providers that keep GNU snapshots in the shared layout ([`snapshot_state_methods!`]), the
//! backup-root check ([`backup_root`]) and the message of a fatal I/O error ([`fatal`]).
//!
//! [`snapshot_state_methods!`]: crate::snapshot_state_methods

use std::io;
use std::path::Path;

use aa_abi::error::os_message;
use aa_abi::plugin::checks;
use aa_abi::{BackupDefinition, ProviderError};
use rustix::io::Errno;

/// The backup root of `definition` if it is a directory, else the error to fail the backup
/// with (`ENOTDIR` when it is something else). Without its root the backup would be empty:
/// a provider asks before it touches the previous backup. The plugin layer has asked already
/// ([`checks::root`]) when the host calls; this is for a provider called directly.
pub fn backup_root(definition: &BackupDefinition) -> io::Result<&Path> {
    checks::root_directory(definition).map_err(|e| e.unwrap_or_else(|| Errno::NOTDIR.into()))
}

/// A fatal I/O error on `path`, with the OS text (e.g. "No space left on device") and code.
pub fn fatal(path: &Path, error: &io::Error) -> ProviderError {
    ProviderError::io(
        error.raw_os_error().unwrap_or(0),
        format!("{}: {}", path.display(), os_message(error)),
    )
}

/// Writes, inside an `impl ArchiverProvider` block, the five methods of the service API that
/// only read or remove incremental state, as every provider keeping its snapshots in the
/// shared layout ([`Snapshots`](crate::Snapshots)) implements them: `remove_backup_increments`,
/// `does_any_backup_level_exist`, `get_max_backup_level`, `get_stored_backup_ids` and
/// `purge_stored_backup_data`. The argument gives the provider's snapshots from the receiver
/// (a `Snapshots` or a reference to one):
///
/// ```ignore
/// impl ArchiverProvider for MyProvider {
///     fn backup_files(/* ... */) { /* ... */ }
///
///     aa_provider_kit::snapshot_state_methods!(|self| &self.snapshots);
/// }
/// ```
///
/// The receiver is named in the argument because a macro cannot reach the `self` of a method it
/// writes otherwise.
#[macro_export]
macro_rules! snapshot_state_methods {
    (|$this:tt| $snapshots:expr) => {
        fn remove_backup_increments(
            &$this,
            definition: &$crate::__private::BackupDefinition,
            level: ::core::option::Option<u32>,
            keeping_id: ::core::option::Option<&str>,
        ) -> ::core::result::Result<(), $crate::__private::ProviderError> {
            $crate::remove_backup_increments(&$snapshots, definition, level, keeping_id)
        }

        fn does_any_backup_level_exist(
            &$this,
            definition: &$crate::__private::BackupDefinition,
            from_level: u32,
            keeping_id: ::core::option::Option<&str>,
        ) -> ::core::result::Result<bool, $crate::__private::ProviderError> {
            $crate::does_any_backup_level_exist(definition, from_level, keeping_id)
        }

        fn get_max_backup_level(
            &$this,
            backup_id: &str,
        ) -> ::core::result::Result<u32, $crate::__private::ProviderError> {
            $crate::check_backup_id(backup_id)?;
            $crate::Snapshots::max_level(&$snapshots, backup_id)
        }

        fn get_stored_backup_ids(
            &$this,
        ) -> ::core::result::Result<
            ::std::vec::Vec<::std::string::String>,
            $crate::__private::ProviderError,
        > {
            $crate::Snapshots::ids(&$snapshots)
        }

        fn purge_stored_backup_data(
            &$this,
            backup_id: &str,
        ) -> ::core::result::Result<(), $crate::__private::ProviderError> {
            $crate::check_backup_id(backup_id)?;
            $crate::Snapshots::purge(&$snapshots, backup_id)
        }
    };
}

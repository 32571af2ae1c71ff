//! The stable ABI between the `aa` host and its archiver provider plugins.
//!
//! A plugin is a `cdylib` that implements [`plugin::ArchiverProvider`] and [`plugin::Plugin`]
//! and exports them with [`export_archiver_plugin!`]; the host loads it with
//! [`host::PluginLibrary::load`]. Everything that touches `abi_stable` lives in this crate, so
//! neither side depends on it directly and the layout rules are kept in one place.
//!
//! Compatibility: the root module is checked by `abi_stable` at load time (type layouts and
//! this crate's version: `0.x` versions are compatible within the same minor version).
//! Enumerations are open newtypes so adding a backup type does not break older plugins.

pub mod error;
pub mod events;
pub mod ffi;
pub mod host;
pub mod naming;
pub mod own_backups;
pub mod plugin;
pub mod snapshots;
pub mod types;

pub use error::{ProviderError, ProviderErrorKind};
pub use events::{BackupEvents, NoEvents};
pub use types::{
    ArchiverFeature, BackupDefinition, BackupOperationError, BackupSubOperation, BackupType,
    PathBytes, ProviderIdentification, TypeFeatures, MAX_COMPRESSION_STRENGTH,
    MIN_COMPRESSION_STRENGTH,
};

/// Items the export macro expands to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{CheckTypeLayout, LibHeader, RootModuleResult};

    pub fn call_root_module_loader(f: fn() -> crate::ffi::ArchiverPluginRef) -> RootModuleResult {
        abi_stable::library::__call_root_module_loader(f)
    }

    /// The symbol name the export macro uses.
    pub const EXPORT_NAME: &str = "_1as_0lib_1header_0root_bmodule_bloader";
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_name_matches_abi_stable() {
        assert_eq!(
            crate::__private::EXPORT_NAME,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}

//! The stable ABI between the `aa` host and its archiver provider plugins, and nothing else.
//!
//! A plugin is a `cdylib` that implements [`plugin::ArchiverProvider`] and [`plugin::Plugin`]
//! and exports them with [`export_archiver_plugin!`]; the host loads it with
//! [`host::PluginLibrary::load`]. Everything that touches `abi_stable` lives in this crate, so
//! neither side depends on it directly and the layout rules are kept in one place.
//!
//! What is here: the types that cross the boundary ([`BackupDefinition`], [`ProviderError`],
//! the backup events, ...), the root module ([`ffi`]), the safe layers over it for the host
//! ([`host`]) and for plugins ([`plugin`], with the argument checks every provider shares),
//! and the backup file names both sides must agree on ([`naming`]). What a provider needs
//! beyond that (GNU snapshot files, their shared layout, state helpers) is the
//! `aa-provider-kit` crate: it is linked into each provider and can change freely, while this
//! crate changes only with the ABI version, because every plugin ever built depends on it.
//!
//! Compatibility: this is aa ABI 1.0 ([`ABI_VERSION`]). The root module is checked by
//! `abi_stable` at load time (type layouts and the ABI version, not this crate's package
//! version) and is frozen; what providers can do beyond it grows as [`capability`] modules, each
//! exported under its own name-versioned symbol, which a host treats as absent in a plugin built
//! before it. Enumerations are open newtypes so adding a backup type does not break older
//! plugins.

#![deny(missing_docs)]

pub mod capability;
pub mod error;
mod events;
pub mod ffi;
pub mod host;
pub mod naming;
pub mod plugin;
mod types;

pub use error::{ProviderError, ProviderErrorKind};
pub use events::{BackupEvents, NoEvents};
pub use ffi::ABI_VERSION;
pub use types::{
    ArchiverFeature, BackupDefinition, BackupOperationError, BackupSubOperation, BackupType,
    PathBytes, ProviderIdentification, TypeFeatures, MAX_COMPRESSION_STRENGTH,
    MIN_COMPRESSION_STRENGTH,
};

/// Items the export macro expands to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{CheckTypeLayout, LibHeader, RootModuleResult};

    /// Calls the root module loader `f` as abi_stable's generated loader does.
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

    #[test]
    fn abi_version_is_1_0() {
        assert_eq!(crate::ABI_VERSION, "1.0.0");
    }
}

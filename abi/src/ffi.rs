//! The raw FFI surface: the plugin's root module and the two `sabi_trait` objects (the provider
//! and the events sink). Hosts use [`crate::host`] and plugins [`crate::plugin`]; this module is
//! public only because those safe layers and the export macro expand to it.
//!
//! This is **aa ABI 1.0**, frozen: the root module, the provider interface and the events sink
//! never change again within 1.x. abi_stable accepts a plugin whose root module (or provider
//! vtable) has *more* fields than the host's, but refuses one with *fewer* ("too many fields"),
//! so a host that grew an entry here would refuse every plugin built before it (tested in
//! `tests/tests/abi_mismatch.rs`). New provider abilities are capabilities instead: separately
//! exported, name-versioned modules that a host treats as absent when a plugin lacks them (see
//! [`crate::capability`]).

// `sabi_trait` expands to impls inside a const block, which this lint flags; the code is abi_stable's.
#![allow(non_local_definitions)]

use abi_stable::library::RootModule;
use abi_stable::sabi_types::RRef;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec};
use abi_stable::{declare_root_module_statics, sabi_trait, StableAbi};

use crate::error::ProviderError;
use crate::types::{
    BackupDefinition, BackupOperationError, BackupSubOperation, PathBytes, ProviderIdentification,
};

/// The ABI version `abi_stable` compares when a plugin is loaded (with the type layouts): a
/// plugin built for another major version is refused. It is this crate's own constant, not its
/// package version, so that a release of a helper or a host never makes the plugins already
/// built refuse to load. It stays `1.0.0` while capabilities are added ([`crate::capability`]);
/// a `2.0.0` would mean every plugin is rebuilt. A `1.1.0` would change nothing: for 1.x
/// abi_stable compares the major version only, both ways (`tests/tests/abi_mismatch.rs`), so
/// the version cannot tell a host what a plugin can do; its capabilities do.
pub const ABI_VERSION: &str = "1.0.0";

/// Receives the `fileAdd` and `backupOperationError` events of a running backup. Called on the
/// thread that called the provider method, only while that call runs.
#[sabi_trait]
pub trait BackupEventsFfi {
    /// `fileAdd`: `name` (relative to the root, raw bytes) was stored.
    fn file_add(&self, name: RSlice<'_, u8>);

    /// `backupOperationError`: `operation` met `error`, about `name` if given.
    #[sabi(last_prefix_field)]
    fn backup_operation_error(
        &self,
        operation: BackupSubOperation,
        error: BackupOperationError,
        name: ROption<RSlice<'_, u8>>,
        message: ROption<RStr<'_>>,
    );
}

/// A borrowed events sink as passed to a provider.
pub type BackupEventsRef<'a> = BackupEventsFfi_TO<'a, RRef<'a, ()>>;

/// The archiver service interface every provider implements (the seed's
/// `_TarArchiverProviderBase`). Compression strengths and levels are `u32`; `ROption::RNone`
/// is the seed's `None`.
#[sabi_trait]
pub trait ArchiverProviderFfi: Send + Sync {
    /// See [`crate::plugin::ArchiverProvider::backup_files`].
    fn backup_files(
        &self,
        definition: &BackupDefinition,
        compression_strength: ROption<u32>,
        overwrite_at_start: bool,
        events: BackupEventsRef<'_>,
    ) -> RResult<PathBytes, ProviderError>;

    /// See [`crate::plugin::ArchiverProvider::backup_files_incrementally`].
    fn backup_files_incrementally(
        &self,
        definition: &BackupDefinition,
        compression_strength: ROption<u32>,
        level: ROption<u32>,
        overwrite_at_start: bool,
        events: BackupEventsRef<'_>,
    ) -> RResult<PathBytes, ProviderError>;

    /// See [`crate::plugin::ArchiverProvider::remove_backup`].
    fn remove_backup(
        &self,
        definition: &BackupDefinition,
        keeping_id: ROption<RStr<'_>>,
    ) -> RResult<(), ProviderError>;

    /// See [`crate::plugin::ArchiverProvider::remove_backup_increments`].
    fn remove_backup_increments(
        &self,
        definition: &BackupDefinition,
        level: ROption<u32>,
        keeping_id: ROption<RStr<'_>>,
    ) -> RResult<(), ProviderError>;

    /// See [`crate::plugin::ArchiverProvider::does_backup_exist`].
    fn does_backup_exist(
        &self,
        definition: &BackupDefinition,
        level: ROption<u32>,
        keeping_id: ROption<RStr<'_>>,
    ) -> RResult<bool, ProviderError>;

    /// See [`crate::plugin::ArchiverProvider::does_any_backup_level_exist`].
    fn does_any_backup_level_exist(
        &self,
        definition: &BackupDefinition,
        from_level: u32,
        keeping_id: ROption<RStr<'_>>,
    ) -> RResult<bool, ProviderError>;

    /// See [`crate::plugin::ArchiverProvider::keep_backup`].
    fn keep_backup(
        &self,
        definition: &BackupDefinition,
        keeping_id: ROption<RStr<'_>>,
        new_keeping_id: RStr<'_>,
        level: ROption<u32>,
    ) -> RResult<(), ProviderError>;

    /// See [`crate::plugin::ArchiverProvider::get_max_backup_level`].
    fn get_max_backup_level(&self, backup_id: RStr<'_>) -> RResult<u32, ProviderError>;

    /// See [`crate::plugin::ArchiverProvider::get_stored_backup_ids`].
    fn get_stored_backup_ids(&self) -> RResult<RVec<RString>, ProviderError>;

    /// See [`crate::plugin::ArchiverProvider::purge_stored_backup_data`].
    #[sabi(last_prefix_field)]
    fn purge_stored_backup_data(&self, backup_id: RStr<'_>) -> RResult<(), ProviderError>;
}

/// An owned provider instance created by a plugin.
pub type ArchiverProviderBox = ArchiverProviderFfi_TO<'static, RBox<()>>;

/// Log levels as numbers, `log::Level as u8` (1 = error .. 5 = trace, 0 = off).
pub type LogLevelNumber = u8;

/// The host's logger, handed to each plugin so that plugin log records reach the host's
/// `log` backend (a cdylib has its own copy of the `log` statics).
#[repr(C)]
#[derive(StableAbi, Copy, Clone)]
pub struct HostLogger {
    /// The most verbose level the host records.
    pub max_level: LogLevelNumber,
    /// Records one message of `level` from `target`.
    pub log: extern "C" fn(level: LogLevelNumber, target: RStr<'_>, message: RStr<'_>),
}

/// The root module every archiver plugin exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ArchiverPluginRef)))]
#[sabi(missing_field(option))]
pub struct ArchiverPlugin {
    /// What the plugin provides.
    pub identification: extern "C" fn() -> RResult<ProviderIdentification, ProviderError>,
    /// Hands the plugin the host's logger; called once, before anything else.
    pub install_logger: extern "C" fn(logger: HostLogger),
    /// Creates a provider whose persistent state lives in `work_dir`.
    #[sabi(last_prefix_field)]
    pub create_provider:
        extern "C" fn(work_dir: &PathBytes) -> RResult<ArchiverProviderBox, ProviderError>,
}

impl RootModule for ArchiverPluginRef {
    declare_root_module_statics! {ArchiverPluginRef}
    const BASE_NAME: &'static str = "aa_archiver_plugin";
    const NAME: &'static str = "aa archiver provider plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION);
}

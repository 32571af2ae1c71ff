//! The plugin side: implement [`ArchiverProvider`] and [`Plugin`] with plain Rust types, then
//! call [`export_archiver_plugin!`](crate::export_archiver_plugin) once in the cdylib.
//!
//! This layer does what the original's `_TarArchiverProviderBase` did for every provider: the
//! argument checks (unsupported type, unsupported or out-of-range compression strength, nothing
//! to back up, empty keeping id) and the generic methods (`removeBackup`, `doesBackupExist`,
//! `keepBackup`). It also makes every entry point panic-safe: a panic becomes a
//! [`ProviderError`] instead of unwinding into the host, which would abort it.

use std::any::Any;
use std::fs;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use abi_stable::erased_types::TD_Opaque;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec};

use crate::error::ProviderError;
use crate::events::BackupEvents;
use crate::ffi::{
    ArchiverPlugin as ArchiverPluginFfi, ArchiverPluginRef, ArchiverProviderBox,
    ArchiverProviderFfi, ArchiverProviderFfi_TO, BackupEventsRef, HostLogger,
};
use crate::naming;
use crate::types::{
    ArchiverFeature, BackupDefinition, BackupOperationError, BackupSubOperation, BackupType,
    PathBytes, ProviderIdentification, MAX_COMPRESSION_STRENGTH, MIN_COMPRESSION_STRENGTH,
};

/// A plugin: its identification and how to create its provider.
pub trait Plugin: 'static {
    /// The provider [`Plugin::create`] makes.
    type Provider: ArchiverProvider;

    /// What the plugin provides; must be cheap (the host calls it for every plugin at start).
    fn identification() -> ProviderIdentification;

    /// Creates the provider. `work_dir` is a writable directory for persistent state.
    fn create(work_dir: &Path) -> Result<Self::Provider, ProviderError>;
}

/// The archiver service, in Rust types. Arguments have passed the common checks described in
/// the module documentation before a method is called.
pub trait ArchiverProvider: Send + Sync + 'static {
    /// Creates a (non-incremental) backup and returns its path.
    fn backup_files(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        overwrite_at_start: bool,
        events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError>;

    /// Creates an incremental backup of `level`, or of the next level if `None`.
    fn backup_files_incrementally(
        &self,
        _definition: &BackupDefinition,
        _compression_strength: Option<u32>,
        _level: Option<u32>,
        _overwrite_at_start: bool,
        _events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError> {
        Err(ProviderError::not_implemented(
            "Incremental backup is not supported.",
        ))
    }

    /// Removes a backup (the base behaviour: delete its file).
    fn remove_backup(
        &self,
        definition: &BackupDefinition,
        keeping_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        let path = backup_path(definition, None, keeping_id)?;
        fs::remove_file(&path).map_err(|e| ProviderError::from_io(path.display(), &e))
    }

    /// Removes increments of `level` and above (of the current maximal level if `None`).
    fn remove_backup_increments(
        &self,
        _definition: &BackupDefinition,
        _level: Option<u32>,
        _keeping_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        Err(ProviderError::not_implemented(
            "Incremental backup is not supported.",
        ))
    }

    /// Whether the backup file exists.
    fn does_backup_exist(
        &self,
        definition: &BackupDefinition,
        level: Option<u32>,
        keeping_id: Option<&str>,
    ) -> Result<bool, ProviderError> {
        Ok(backup_path(definition, level, keeping_id)?.is_file())
    }

    /// Whether a backup of `from_level` or above exists.
    fn does_any_backup_level_exist(
        &self,
        _definition: &BackupDefinition,
        _from_level: u32,
        _keeping_id: Option<&str>,
    ) -> Result<bool, ProviderError> {
        Err(ProviderError::not_implemented(
            "Incremental backup is not supported.",
        ))
    }

    /// Renames a backup to the `new_keeping_id` name (base behaviour).
    fn keep_backup(
        &self,
        definition: &BackupDefinition,
        keeping_id: Option<&str>,
        new_keeping_id: &str,
        level: Option<u32>,
    ) -> Result<(), ProviderError> {
        let current = backup_path(definition, level, keeping_id)?;
        let kept = backup_path(definition, level, Some(new_keeping_id))?;
        if kept.exists() {
            return Err(ProviderError::io(
                libc_eexist(),
                format!("{}: backup already exists", kept.display()),
            ));
        }
        fs::rename(&current, &kept).map_err(|e| ProviderError::from_io(current.display(), &e))
    }

    /// The highest level a backup of `backup_id` can be made at now (0 without any).
    fn get_max_backup_level(&self, _backup_id: &str) -> Result<u32, ProviderError> {
        Err(ProviderError::not_implemented(
            "Incremental backup is not supported.",
        ))
    }

    /// The backup ids the provider keeps state for.
    fn get_stored_backup_ids(&self) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }

    /// Forgets the state kept for `backup_id`.
    fn purge_stored_backup_data(&self, _backup_id: &str) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// The path of the backup described by `definition`.
pub fn backup_path(
    definition: &BackupDefinition,
    level: Option<u32>,
    keeping_id: Option<&str>,
) -> Result<PathBuf, ProviderError> {
    naming::backup_file_path(
        definition.destination(),
        &definition.backup_id,
        definition.backup_type,
        level,
        keeping_id,
    )
    .ok_or_else(|| unsupported_type(definition.backup_type))
}

fn libc_eexist() -> i32 {
    io::Error::from(io::ErrorKind::AlreadyExists)
        .raw_os_error()
        .unwrap_or(17)
}

fn libc_enotdir() -> i32 {
    20 // ENOTDIR on Linux; std has no portable constructor for it
}

fn unsupported_type(backup_type: BackupType) -> ProviderError {
    ProviderError::unsupported_type(format!("Unsupported backup type: {backup_type}"))
}

/// The checks of the original's base class, plus an accessible root.
pub mod checks {
    use super::*;

    /// The provider supports the backup type.
    pub fn backup_type(
        id: &ProviderIdentification,
        backup_type: BackupType,
    ) -> Result<(), ProviderError> {
        if id.supports_type(backup_type) {
            Ok(())
        } else {
            Err(unsupported_type(backup_type))
        }
    }

    /// The provider supports `feature` for the backup type.
    pub fn feature(
        id: &ProviderIdentification,
        backup_type: BackupType,
        feature: ArchiverFeature,
    ) -> Result<(), ProviderError> {
        let supported = id.features_for(backup_type).unwrap_or(&[]);
        if supported.contains(&feature) {
            return Ok(());
        }
        if feature == ArchiverFeature::Incremental && !id.all_features().contains(&feature) {
            return Err(ProviderError::not_implemented(
                "Incremental backup is not supported.",
            ));
        }
        Err(ProviderError::unsupported_feature(format!(
            "Feature {feature} is not supported by the backup type {backup_type}."
        )))
    }

    /// A compression strength, if given, is supported and in range.
    pub fn compression(
        id: &ProviderIdentification,
        backup_type: BackupType,
        strength: Option<u32>,
    ) -> Result<(), ProviderError> {
        let Some(strength) = strength else {
            return Ok(());
        };
        feature(id, backup_type, ArchiverFeature::CompressionStrength)?;
        if !(MIN_COMPRESSION_STRENGTH..=MAX_COMPRESSION_STRENGTH).contains(&strength) {
            return Err(ProviderError::invalid_value(format!(
                "Compression strength value {strength} is out of the interval \
                 {MIN_COMPRESSION_STRENGTH}..{MAX_COMPRESSION_STRENGTH}."
            )));
        }
        Ok(())
    }

    /// Everything a backup call checks: type, compression, something to back up, the root.
    pub fn backup(
        id: &ProviderIdentification,
        definition: &BackupDefinition,
        strength: Option<u32>,
    ) -> Result<(), ProviderError> {
        backup_type(id, definition.backup_type)?;
        compression(id, definition.backup_type, strength)?;
        if definition.include_files.is_empty() {
            return Err(ProviderError::other("Nothing to backup."));
        }
        root(definition)
    }

    /// The backup root must be a directory: without this check a provider that reports each
    /// missing include as an event would replace a good backup with an empty one.
    pub fn root(definition: &BackupDefinition) -> Result<(), ProviderError> {
        match root_directory(definition) {
            Ok(_) => Ok(()),
            Err(None) => Err(ProviderError::io(
                libc_enotdir(),
                format!(
                    "{}: the backup root is not a directory",
                    definition.root().display()
                ),
            )),
            Err(Some(e)) => Err(ProviderError::from_io(
                format_args!(
                    "{}: the backup root is not accessible",
                    definition.root().display()
                ),
                &e,
            )),
        }
    }

    /// The backup root of `definition` if it is a directory (following links); otherwise the
    /// error of examining it, or `None` when it is something else. [`root`] words the
    /// failure for this layer; a provider called directly words it its own way (the provider
    /// kit's `backup_root`).
    pub fn root_directory(definition: &BackupDefinition) -> Result<&Path, Option<io::Error>> {
        let root = definition.root();
        match fs::metadata(root) {
            Ok(meta) if meta.is_dir() => Ok(root),
            Ok(_) => Err(None),
            Err(e) => Err(Some(e)),
        }
    }

    /// A new keeping id is not empty.
    pub fn keeping_id(new_keeping_id: &str) -> Result<(), ProviderError> {
        if new_keeping_id.is_empty() {
            return Err(ProviderError::invalid_value(
                "The new keeping id must be a non-empty string.",
            ));
        }
        Ok(())
    }
}

// ---- FFI adapters -------------------------------------------------------------------------

struct Adapter<P> {
    provider: P,
    identification: ProviderIdentification,
}

/// Runs `f`, turning a panic into a [`ProviderError`].
pub(crate) fn guarded<T>(
    f: impl FnOnce() -> Result<T, ProviderError>,
) -> RResult<T, ProviderError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.into(),
        Err(payload) => RResult::RErr(ProviderError::other(format!(
            "the provider failed unexpectedly (panic: {})",
            panic_message(payload.as_ref())
        ))),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown cause")
}

fn opt_str<'a>(s: &'a ROption<RStr<'a>>) -> Option<&'a str> {
    s.as_ref().into_option().map(|s| s.as_str())
}

/// Presents the FFI events sink as [`BackupEvents`].
pub(crate) struct EventsFromFfi<'a>(pub(crate) BackupEventsRef<'a>);

impl BackupEvents for EventsFromFfi<'_> {
    fn file_add(&self, name: &Path) {
        use std::os::unix::ffi::OsStrExt;
        self.0
            .file_add(RSlice::from_slice(name.as_os_str().as_bytes()));
    }

    fn backup_operation_error(
        &self,
        operation: BackupSubOperation,
        error: BackupOperationError,
        name: Option<&Path>,
        message: Option<&str>,
    ) {
        use std::os::unix::ffi::OsStrExt;
        self.0.backup_operation_error(
            operation,
            error,
            name.map(|n| RSlice::from_slice(n.as_os_str().as_bytes()))
                .into(),
            message.map(RStr::from_str).into(),
        );
    }
}

impl<P: ArchiverProvider> ArchiverProviderFfi for Adapter<P> {
    fn backup_files(
        &self,
        definition: &BackupDefinition,
        compression_strength: ROption<u32>,
        overwrite_at_start: bool,
        events: BackupEventsRef<'_>,
    ) -> RResult<PathBytes, ProviderError> {
        guarded(|| {
            let strength = compression_strength.into_option();
            checks::backup(&self.identification, definition, strength)?;
            self.provider
                .backup_files(
                    definition,
                    strength,
                    overwrite_at_start,
                    &EventsFromFfi(events),
                )
                .map(PathBytes::new)
        })
    }

    fn backup_files_incrementally(
        &self,
        definition: &BackupDefinition,
        compression_strength: ROption<u32>,
        level: ROption<u32>,
        overwrite_at_start: bool,
        events: BackupEventsRef<'_>,
    ) -> RResult<PathBytes, ProviderError> {
        guarded(|| {
            let strength = compression_strength.into_option();
            checks::backup_type(&self.identification, definition.backup_type)?;
            checks::feature(
                &self.identification,
                definition.backup_type,
                ArchiverFeature::Incremental,
            )?;
            checks::backup(&self.identification, definition, strength)?;
            self.provider
                .backup_files_incrementally(
                    definition,
                    strength,
                    level.into_option(),
                    overwrite_at_start,
                    &EventsFromFfi(events),
                )
                .map(PathBytes::new)
        })
    }

    fn remove_backup(
        &self,
        definition: &BackupDefinition,
        keeping_id: ROption<RStr<'_>>,
    ) -> RResult<(), ProviderError> {
        guarded(|| {
            checks::backup_type(&self.identification, definition.backup_type)?;
            self.provider
                .remove_backup(definition, opt_str(&keeping_id))
        })
    }

    fn remove_backup_increments(
        &self,
        definition: &BackupDefinition,
        level: ROption<u32>,
        keeping_id: ROption<RStr<'_>>,
    ) -> RResult<(), ProviderError> {
        guarded(|| {
            checks::backup_type(&self.identification, definition.backup_type)?;
            self.provider.remove_backup_increments(
                definition,
                level.into_option(),
                opt_str(&keeping_id),
            )
        })
    }

    fn does_backup_exist(
        &self,
        definition: &BackupDefinition,
        level: ROption<u32>,
        keeping_id: ROption<RStr<'_>>,
    ) -> RResult<bool, ProviderError> {
        guarded(|| {
            checks::backup_type(&self.identification, definition.backup_type)?;
            self.provider
                .does_backup_exist(definition, level.into_option(), opt_str(&keeping_id))
        })
    }

    fn does_any_backup_level_exist(
        &self,
        definition: &BackupDefinition,
        from_level: u32,
        keeping_id: ROption<RStr<'_>>,
    ) -> RResult<bool, ProviderError> {
        guarded(|| {
            checks::backup_type(&self.identification, definition.backup_type)?;
            self.provider
                .does_any_backup_level_exist(definition, from_level, opt_str(&keeping_id))
        })
    }

    fn keep_backup(
        &self,
        definition: &BackupDefinition,
        keeping_id: ROption<RStr<'_>>,
        new_keeping_id: RStr<'_>,
        level: ROption<u32>,
    ) -> RResult<(), ProviderError> {
        guarded(|| {
            checks::backup_type(&self.identification, definition.backup_type)?;
            checks::keeping_id(new_keeping_id.as_str())?;
            self.provider.keep_backup(
                definition,
                opt_str(&keeping_id),
                new_keeping_id.as_str(),
                level.into_option(),
            )
        })
    }

    fn get_max_backup_level(&self, backup_id: RStr<'_>) -> RResult<u32, ProviderError> {
        guarded(|| self.provider.get_max_backup_level(backup_id.as_str()))
    }

    fn get_stored_backup_ids(&self) -> RResult<RVec<RString>, ProviderError> {
        guarded(|| {
            self.provider
                .get_stored_backup_ids()
                .map(|ids| ids.into_iter().map(RString::from).collect())
        })
    }

    fn purge_stored_backup_data(&self, backup_id: RStr<'_>) -> RResult<(), ProviderError> {
        guarded(|| self.provider.purge_stored_backup_data(backup_id.as_str()))
    }
}

extern "C" fn identification_entry<P: Plugin>() -> RResult<ProviderIdentification, ProviderError> {
    guarded(|| Ok(P::identification()))
}

extern "C" fn create_entry<P: Plugin>(
    work_dir: &PathBytes,
) -> RResult<ArchiverProviderBox, ProviderError> {
    guarded(|| {
        let provider = P::create(work_dir.as_path())?;
        Ok(provider_box(provider, P::identification()))
    })
}

/// `provider` behind the FFI interface, its calls checked against `identification` and
/// guarded against panics, as a plugin's provider is.
pub(crate) fn provider_box<P: ArchiverProvider>(
    provider: P,
    identification: ProviderIdentification,
) -> ArchiverProviderBox {
    ArchiverProviderFfi_TO::from_value(
        Adapter {
            provider,
            identification,
        },
        TD_Opaque,
    )
}

/// Forwards this library's `log` records to the host.
struct HostLogBridge;

static HOST_LOGGER: OnceLock<HostLogger> = OnceLock::new();

impl log::Log for HostLogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        HOST_LOGGER
            .get()
            .is_some_and(|l| metadata.level() as u8 <= l.max_level)
    }

    fn log(&self, record: &log::Record<'_>) {
        if let Some(host) = HOST_LOGGER.get() {
            if record.level() as u8 <= host.max_level {
                let message = record.args().to_string();
                (host.log)(
                    record.level() as u8,
                    RStr::from_str(record.target()),
                    RStr::from_str(&message),
                );
            }
        }
    }

    fn flush(&self) {}
}

extern "C" fn install_logger_entry(logger: HostLogger) {
    let _ = catch_unwind(|| {
        if HOST_LOGGER.set(logger).is_ok() && log::set_logger(&HostLogBridge).is_ok() {
            log::set_max_level(level_filter(logger.max_level));
        }
    });
}

fn level_filter(n: u8) -> log::LevelFilter {
    match n {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// Builds the root module of plugin `P`; called once, by the code
/// [`export_archiver_plugin!`](crate::export_archiver_plugin) generates.
pub fn root_module<P: Plugin>() -> ArchiverPluginRef {
    // A panic is turned into an error value at the boundary; keep the default hook from also
    // printing it (with a backtrace hint) on the user's terminal.
    std::panic::set_hook(Box::new(|info| log::debug!("plugin panic: {info}")));
    ArchiverPluginFfi {
        identification: identification_entry::<P>,
        install_logger: install_logger_entry,
        create_provider: create_entry::<P>,
    }
    .leak_into_prefix()
}

/// Exports a [`Plugin`] as the root module of the cdylib it is invoked in:
/// `aa_abi::export_archiver_plugin!(MyPlugin);`
#[macro_export]
macro_rules! export_archiver_plugin {
    ($plugin:ty) => {
        // The symbol name abi_stable's loader looks up; `abi_stable` checks it in its tests of
        // this crate (see `ffi_export_name_matches_abi_stable`).
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static AA_ARCHIVER_PLUGIN_ROOT: $crate::__private::LibHeader = {
            extern "C" fn erased_root_module() -> $crate::__private::RootModuleResult {
                $crate::__private::call_root_module_loader($crate::plugin::root_module::<$plugin>)
            }
            // SAFETY: `from_constructor` requires the erased module the constructor returns to
            // have been made from a `PrefixRef` of the root module type given here.
            // `erased_root_module` returns what `call_root_module_loader` erased from the
            // `ArchiverPluginRef` that `root_module` builds, the same type, as abi_stable's own
            // `#[export_root_module]` expansion does.
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::ffi::ArchiverPluginRef>(
                    erased_root_module,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

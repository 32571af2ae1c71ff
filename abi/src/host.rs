//! The host side: load a plugin library, read its identification, create its provider and call
//! it with Rust types.

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RSlice, RStr};

use crate::capability::{
    BackupSink, Capabilities, ChainArchive, ItemEvents, RestoreRequest, Totals,
};
use crate::error::ProviderError;
use crate::events::BackupEvents;
use crate::ffi::{
    ArchiverPluginRef, ArchiverProviderBox, BackupEventsFfi, BackupEventsFfi_TO, HostLogger,
};
use crate::types::{
    BackupDefinition, BackupOperationError, BackupSubOperation, PathBytes, ProviderIdentification,
};

/// The name of the symbol every `aa` plugin exports and [`PluginLibrary::load`] looks up first
/// (abi_stable's root-module loader). A host can check that a file defines it in its dynamic
/// symbol table before loading it, so that a library which is no plugin never runs.
pub const ROOT_MODULE_SYMBOL: &str = crate::__private::EXPORT_NAME;

/// Why a library could not be loaded as a plugin; [`fmt::Display`] gives one line.
#[derive(Debug)]
pub struct LoadError {
    kind: LoadErrorKind,
}

#[derive(Debug)]
enum LoadErrorKind {
    Open(String),
    NotAPlugin,
    IncompatibleVersion { expected: String, found: String },
    IncompatibleLayout(String),
    Capability(crate::capability::CapabilityError),
    Other(String),
}

impl LoadError {
    /// True when the library simply is not an `aa` plugin (no root module symbol).
    pub fn is_not_a_plugin(&self) -> bool {
        matches!(self.kind, LoadErrorKind::NotAPlugin)
    }

    fn from_library_error(err: LibraryError) -> LoadError {
        // The full text can be dozens of lines; keep it for whoever asks with AA_LOG=debug.
        log::debug!("plugin load error in full: {err}");
        let kind = match err {
            LibraryError::OpenError { err, .. } => {
                LoadErrorKind::Open(first_line(&err.to_string()))
            }
            LibraryError::GetSymbolError { .. } => LoadErrorKind::NotAPlugin,
            LibraryError::IncompatibleVersionNumber {
                expected_version,
                actual_version,
                ..
            } => LoadErrorKind::IncompatibleVersion {
                expected: expected_version.to_string(),
                found: actual_version.to_string(),
            },
            LibraryError::AbiInstability(e) => {
                LoadErrorKind::IncompatibleLayout(summarise_layout_error(&e.to_string()))
            }
            other => LoadErrorKind::Other(first_line(&other.to_string())),
        };
        LoadError { kind }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            LoadErrorKind::Open(e) => write!(f, "cannot be opened as a library: {e}"),
            LoadErrorKind::NotAPlugin => f.write_str("not an aa plugin (no archiver root module)"),
            LoadErrorKind::IncompatibleVersion { expected, found } => write!(
                f,
                "built for plugin ABI {found}, this aa needs an ABI compatible with {expected}; rebuild the plugin"
            ),
            LoadErrorKind::IncompatibleLayout(e) => write!(f, "incompatible plugin ABI: {e}; rebuild the plugin"),
            LoadErrorKind::Capability(e) => fmt::Display::fmt(e, f),
            LoadErrorKind::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for LoadError {}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
        .to_string()
}

/// abi_stable's layout errors span dozens of lines: keep the offending type and each
/// `Error:` entry with its expected and found values, e.g. `ProviderIdentification: incompatible
/// type size (expected 96, found 104)`.
pub(crate) fn summarise_layout_error(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).collect();
    let mut current_type = None;
    // (type, problem) in report order; abi_stable reports outer types before the innermost
    // one, which is the actual cause.
    let mut problems: Vec<(Option<&str>, String)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if *line == "Layout of expected type:" {
            current_type = lines[i + 1..]
                .iter()
                .find_map(|l| l.strip_prefix("type:"))
                .or(current_type);
        } else if let Some(error) = line.strip_prefix("Error:") {
            let value_after = |label: &str| {
                let offset = lines[i + 1..].iter().take(6).position(|l| *l == label)?;
                lines.get(i + 2 + offset).copied()
            };
            let mut problem = error.trim().to_string();
            if let (Some(expected), Some(found)) = (value_after("Expected:"), value_after("Found:"))
            {
                problem.push_str(&format!(" (expected {expected}, found {found})"));
            }
            problems.push((current_type, problem));
        }
    }
    let Some((cause_type, _)) = problems.last() else {
        return "type layouts differ".to_string();
    };
    let cause_type = *cause_type;
    let mut cause: Vec<String> = Vec::new();
    for (_, problem) in problems.iter().filter(|(t, _)| *t == cause_type) {
        if !cause.contains(problem) {
            cause.push(problem.clone());
        }
    }
    let cause = cause.join("; ");
    match cause_type {
        Some(t) => format!("{t}: {cause}"),
        None => cause,
    }
}

/// A loaded plugin library. Libraries are never unloaded.
#[derive(Clone, Copy)]
pub struct PluginLibrary {
    module: ArchiverPluginRef,
    capabilities: Capabilities,
}

impl PluginLibrary {
    /// Loads `path` and checks that it is an `aa` archiver plugin with a compatible ABI.
    ///
    /// Each library is loaded on its own (never through `RootModule`'s own loading functions, which
    /// caches one library per root-module type). The caller should screen the file first:
    /// `dlopen` of a damaged ELF file can crash the process.
    pub fn load(path: &Path) -> Result<PluginLibrary, LoadError> {
        let header = lib_header_from_path(path).map_err(LoadError::from_library_error)?;
        let module = header
            .init_root_module::<ArchiverPluginRef>()
            .map_err(LoadError::from_library_error)?;
        let capabilities = Capabilities::look_up(path).map_err(|e| LoadError {
            kind: LoadErrorKind::Capability(e),
        })?;
        Ok(PluginLibrary {
            module,
            capabilities,
        })
    }

    /// The capabilities the plugin exports beyond ABI 1.0, checked (see [`crate::capability`]).
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// What the plugin provides.
    pub fn identification(&self) -> Result<ProviderIdentification, ProviderError> {
        (self.module.identification())().into_result()
    }

    /// Forwards the plugin's log records to `log` in this process.
    pub fn install_logger(&self) {
        let logger = HostLogger {
            max_level: log::max_level() as usize as u8,
            log: host_log,
        };
        (self.module.install_logger())(logger);
    }

    /// Creates a provider whose persistent state lives in `work_dir`.
    pub fn create_provider(&self, work_dir: &Path) -> Result<Provider, ProviderError> {
        let inner = (self.module.create_provider())(&PathBytes::new(work_dir)).into_result()?;
        Ok(Provider {
            inner,
            capabilities: self.capabilities,
            work_dir: work_dir.to_path_buf(),
        })
    }
}

extern "C" fn host_log(level: u8, target: RStr<'_>, message: RStr<'_>) {
    let level = match level {
        1 => log::Level::Error,
        2 => log::Level::Warn,
        3 => log::Level::Info,
        4 => log::Level::Debug,
        _ => log::Level::Trace,
    };
    let _ = std::panic::catch_unwind(|| {
        log::logger().log(
            &log::Record::builder()
                .level(level)
                .target(target.as_str())
                .args(format_args!("{}", message.as_str()))
                .build(),
        )
    });
}

/// Adapts a host [`BackupEvents`] to the FFI sink.
struct EventsToFfi<'a>(&'a dyn BackupEvents);

fn path_of(bytes: RSlice<'_, u8>) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(bytes.as_slice()))
}

impl BackupEventsFfi for EventsToFfi<'_> {
    fn file_add(&self, name: RSlice<'_, u8>) {
        self.0.file_add(path_of(name));
    }

    fn backup_operation_error(
        &self,
        operation: BackupSubOperation,
        error: BackupOperationError,
        name: ROption<RSlice<'_, u8>>,
        message: ROption<RStr<'_>>,
    ) {
        self.0.backup_operation_error(
            operation,
            error,
            name.into_option().map(path_of),
            message.into_option().map(|m| m.as_str()),
        );
    }
}

fn rstr(s: Option<&str>) -> ROption<RStr<'_>> {
    s.map(RStr::from_str).into()
}

/// A provider instance created by a plugin (the seed's archiver service).
pub struct Provider {
    inner: ArchiverProviderBox,
    capabilities: Capabilities,
    work_dir: PathBuf,
}

impl Provider {
    /// A provider of this process rather than of a plugin library, reached through the same
    /// layers (argument checks against `identification`, panic guard): how a host tests its
    /// application against a fake provider.
    pub fn in_process<P: crate::plugin::ArchiverProvider>(
        provider: P,
        identification: ProviderIdentification,
    ) -> Provider {
        Provider {
            inner: crate::plugin::provider_box(provider, identification),
            capabilities: Capabilities::none(),
            work_dir: PathBuf::new(),
        }
    }

    /// The capabilities of the plugin this provider comes from.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Restores a chain ([`crate::capability::Restoring`]); `None` when the plugin lacks the
    /// capability.
    pub fn restore(
        &self,
        request: &RestoreRequest,
        events: &dyn ItemEvents,
    ) -> Option<Result<Totals, ProviderError>> {
        self.capabilities.restore(&self.work_dir, request, events)
    }

    /// Verifies one backup file ([`crate::capability::Verifying`]); `None` when the plugin
    /// lacks the capability.
    pub fn verify(
        &self,
        archive: &ChainArchive,
        events: &dyn ItemEvents,
    ) -> Option<Result<Totals, ProviderError>> {
        self.capabilities.verify(&self.work_dir, archive, events)
    }

    /// Lists what a backup would store ([`crate::capability::DryRunning`]); `None` when the
    /// plugin lacks the capability.
    pub fn dry_run(
        &self,
        definition: &BackupDefinition,
        level: Option<u32>,
        events: &dyn ItemEvents,
    ) -> Option<Result<Totals, ProviderError>> {
        self.capabilities
            .dry_run(&self.work_dir, definition, level, events)
    }

    /// Writes a backup into `sink` instead of a file ([`crate::capability::BackingUpToSink`]):
    /// a non-incremental one when `level` is `None`, else the incremental one of `level`.
    /// `None` when the plugin lacks the capability. `Some(Ok)` means the provider committed the
    /// sink (a provider that returns success without a commit is turned into an error here);
    /// on an error the sink may have been committed only if the error came after the commit
    /// (the snapshot could not be installed), else the host discards what was written.
    pub fn backup_to_sink(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        level: Option<u32>,
        sink: &mut dyn BackupSink,
        events: &dyn BackupEvents,
    ) -> Option<Result<(), ProviderError>> {
        let adapter = EventsToFfi(events);
        let events = BackupEventsFfi_TO::from_ptr(&adapter, TD_Opaque);
        self.capabilities.backup_to_sink(
            &self.work_dir,
            definition,
            compression_strength,
            level,
            sink,
            events,
        )
    }

    /// See [`crate::plugin::ArchiverProvider::backup_files`].
    pub fn backup_files(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        overwrite_at_start: bool,
        events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError> {
        let adapter = EventsToFfi(events);
        let sink = BackupEventsFfi_TO::from_ptr(&adapter, TD_Opaque);
        self.inner
            .backup_files(
                definition,
                compression_strength.into(),
                overwrite_at_start,
                sink,
            )
            .into_result()
            .map(|p| p.as_path().to_path_buf())
    }

    /// See [`crate::plugin::ArchiverProvider::backup_files_incrementally`].
    pub fn backup_files_incrementally(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        level: Option<u32>,
        overwrite_at_start: bool,
        events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError> {
        let adapter = EventsToFfi(events);
        let sink = BackupEventsFfi_TO::from_ptr(&adapter, TD_Opaque);
        self.inner
            .backup_files_incrementally(
                definition,
                compression_strength.into(),
                level.into(),
                overwrite_at_start,
                sink,
            )
            .into_result()
            .map(|p| p.as_path().to_path_buf())
    }

    /// See [`crate::plugin::ArchiverProvider::remove_backup`].
    pub fn remove_backup(
        &self,
        definition: &BackupDefinition,
        keeping_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        self.inner
            .remove_backup(definition, rstr(keeping_id))
            .into_result()
    }

    /// See [`crate::plugin::ArchiverProvider::remove_backup_increments`].
    pub fn remove_backup_increments(
        &self,
        definition: &BackupDefinition,
        level: Option<u32>,
        keeping_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        self.inner
            .remove_backup_increments(definition, level.into(), rstr(keeping_id))
            .into_result()
    }

    /// See [`crate::plugin::ArchiverProvider::does_backup_exist`].
    pub fn does_backup_exist(
        &self,
        definition: &BackupDefinition,
        level: Option<u32>,
        keeping_id: Option<&str>,
    ) -> Result<bool, ProviderError> {
        self.inner
            .does_backup_exist(definition, level.into(), rstr(keeping_id))
            .into_result()
    }

    /// See [`crate::plugin::ArchiverProvider::does_any_backup_level_exist`].
    pub fn does_any_backup_level_exist(
        &self,
        definition: &BackupDefinition,
        from_level: u32,
        keeping_id: Option<&str>,
    ) -> Result<bool, ProviderError> {
        self.inner
            .does_any_backup_level_exist(definition, from_level, rstr(keeping_id))
            .into_result()
    }

    /// See [`crate::plugin::ArchiverProvider::keep_backup`].
    pub fn keep_backup(
        &self,
        definition: &BackupDefinition,
        keeping_id: Option<&str>,
        new_keeping_id: &str,
        level: Option<u32>,
    ) -> Result<(), ProviderError> {
        self.inner
            .keep_backup(
                definition,
                rstr(keeping_id),
                RStr::from_str(new_keeping_id),
                level.into(),
            )
            .into_result()
    }

    /// See [`crate::plugin::ArchiverProvider::get_max_backup_level`].
    pub fn get_max_backup_level(&self, backup_id: &str) -> Result<u32, ProviderError> {
        self.inner
            .get_max_backup_level(RStr::from_str(backup_id))
            .into_result()
    }

    /// See [`crate::plugin::ArchiverProvider::get_stored_backup_ids`].
    pub fn get_stored_backup_ids(&self) -> Result<Vec<String>, ProviderError> {
        self.inner
            .get_stored_backup_ids()
            .into_result()
            .map(|ids| ids.into_iter().map(String::from).collect())
    }

    /// See [`crate::plugin::ArchiverProvider::purge_stored_backup_data`].
    pub fn purge_stored_backup_data(&self, backup_id: &str) -> Result<(), ProviderError> {
        self.inner
            .purge_stored_backup_data(RStr::from_str(backup_id))
            .into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::summarise_layout_error;

    #[test]
    fn root_module_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }

    #[test]
    fn layout_errors_are_summarised_on_one_line() {
        let text = "\n    Layout of expected type:\n        --- Type Layout ---\n        type:ArchiverPlugin\n\
                    Error:incompatible type size\n    Expected:\n        8\n    Found:\n        16\n\
                    \n    Layout of expected type:\n        --- Type Layout ---\n        type:ProviderIdentification\n\
                    size:96\n    Error:incompatible type size\n    Expected:\n        96\n    Found:\n        104\n\n\
                    Error:too many fields\n    Expected:\n        3\n    Found:\n        4\n";
        assert_eq!(
            summarise_layout_error(text),
            "ProviderIdentification: incompatible type size (expected 96, found 104); \
             too many fields (expected 3, found 4)"
        );
        assert_eq!(summarise_layout_error("garbage"), "type layouts differ");
    }
}

//! The host side of capabilities: find a plugin's capability symbols, check their layouts, and
//! call them with Rust types.

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use abi_stable::library::RawLibrary;
use abi_stable::prefix_type::{PrefixRef, PrefixRefTrait, WithMetadata_};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr};
use abi_stable::StableAbi;

use super::ffi::{
    BackupSinkFfi, BackupSinkFfi_TO, BackupToSinkV1Ref, CapabilityEntry, CapabilityHeader,
    DryRunV1Ref, ItemEventsFfi, ItemEventsFfi_TO, RestoreV1Ref, VerifyV1Ref,
};
use super::types::{BackupSink, ChainArchive, ItemEvents, RestoreRequest, Totals};
use super::{symbol_name, BACKUP_TO_SINK_V1, DRY_RUN_V1, RESTORE_V1, VERIFY_V1};
use crate::error::ProviderError;
use crate::ffi::BackupEventsRef;
use crate::types::{BackupDefinition, PathBytes};

/// A capability a plugin exports with a layout this host cannot use; the plugin is refused.
#[derive(Debug)]
pub struct CapabilityError {
    capability: &'static str,
    problem: String,
}

impl fmt::Display for CapabilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "capability {} has an incompatible layout: {}; rebuild the plugin",
            self.capability, self.problem
        )
    }
}

impl std::error::Error for CapabilityError {}

/// The capabilities one plugin has, checked.
#[derive(Clone, Copy, Default)]
pub struct Capabilities {
    restore: Option<RestoreV1Ref>,
    verify: Option<VerifyV1Ref>,
    dry_run: Option<DryRunV1Ref>,
    backup_to_sink: Option<BackupToSinkV1Ref>,
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Capabilities {
    /// No capabilities: an ABI 1.0 plugin, or a provider of this process.
    pub fn none() -> Capabilities {
        Capabilities::default()
    }

    /// Looks up the capabilities of the library at `path`, which the caller has loaded as a
    /// plugin already (loading it again returns the same library).
    pub(crate) fn look_up(path: &Path) -> Result<Capabilities, CapabilityError> {
        let library = match RawLibrary::load_at(path) {
            Ok(library) => Box::leak(Box::new(library)),
            // It was loaded a moment ago; if it cannot be opened again, it has no capabilities
            // this host can reach.
            Err(e) => {
                log::debug!("{}: capabilities not looked up: {e}", path.display());
                return Ok(Capabilities::none());
            }
        };
        Ok(Capabilities {
            restore: find::<RestoreV1Ref>(library, RESTORE_V1)?,
            verify: find::<VerifyV1Ref>(library, VERIFY_V1)?,
            dry_run: find::<DryRunV1Ref>(library, DRY_RUN_V1)?,
            backup_to_sink: find::<BackupToSinkV1Ref>(library, BACKUP_TO_SINK_V1)?,
        })
    }

    /// The names of the capabilities present, in [`super::KNOWN`] order.
    pub fn names(&self) -> Vec<&'static str> {
        let present = [
            (RESTORE_V1, self.restore.is_some()),
            (VERIFY_V1, self.verify.is_some()),
            (DRY_RUN_V1, self.dry_run.is_some()),
            (BACKUP_TO_SINK_V1, self.backup_to_sink.is_some()),
        ];
        present
            .into_iter()
            .filter_map(|(name, has)| has.then_some(name))
            .collect()
    }

    /// Whether the restore capability is present.
    pub fn can_restore(&self) -> bool {
        self.restore.is_some()
    }

    /// Whether the verify capability is present.
    pub fn can_verify(&self) -> bool {
        self.verify.is_some()
    }

    /// Whether the dry-run capability is present.
    pub fn can_dry_run(&self) -> bool {
        self.dry_run.is_some()
    }

    /// Whether the backup-to-sink capability is present.
    pub fn can_backup_to_sink(&self) -> bool {
        self.backup_to_sink.is_some()
    }

    pub(crate) fn backup_to_sink(
        &self,
        work_dir: &Path,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        level: Option<u32>,
        sink: &mut dyn BackupSink,
        events: BackupEventsRef<'_>,
    ) -> Option<Result<(), ProviderError>> {
        let module = self.backup_to_sink?;
        let mut adapter = SinkToFfi {
            sink,
            committed: false,
        };
        let result = (module.backup_to_sink())(
            &PathBytes::new(work_dir),
            definition,
            compression_strength.into(),
            level.into(),
            BackupSinkFfi_TO::from_ptr(&mut adapter, TD_Opaque),
            events,
        )
        .into_result();
        // A provider that succeeds without a commit stored nothing; the host must not think
        // otherwise.
        Some(match result {
            Ok(()) if !adapter.committed => Err(ProviderError::other(
                "the provider ended the backup without committing it",
            )),
            other => other,
        })
    }

    pub(crate) fn restore(
        &self,
        work_dir: &Path,
        request: &RestoreRequest,
        events: &dyn ItemEvents,
    ) -> Option<Result<Totals, ProviderError>> {
        let module = self.restore?;
        let adapter = ItemsToFfi(events);
        let sink = ItemEventsFfi_TO::from_ptr(&adapter, TD_Opaque);
        Some((module.restore())(&PathBytes::new(work_dir), request, sink).into_result())
    }

    pub(crate) fn verify(
        &self,
        work_dir: &Path,
        archive: &ChainArchive,
        events: &dyn ItemEvents,
    ) -> Option<Result<Totals, ProviderError>> {
        let module = self.verify?;
        let adapter = ItemsToFfi(events);
        let sink = ItemEventsFfi_TO::from_ptr(&adapter, TD_Opaque);
        Some((module.verify())(&PathBytes::new(work_dir), archive, sink).into_result())
    }

    pub(crate) fn dry_run(
        &self,
        work_dir: &Path,
        definition: &BackupDefinition,
        level: Option<u32>,
        events: &dyn ItemEvents,
    ) -> Option<Result<Totals, ProviderError>> {
        let module = self.dry_run?;
        let adapter = ItemsToFfi(events);
        let sink = ItemEventsFfi_TO::from_ptr(&adapter, TD_Opaque);
        let level: ROption<u32> = level.into();
        Some((module.dry_run())(&PathBytes::new(work_dir), definition, level, sink).into_result())
    }
}

/// The capability `name` of `library` as `R`: `None` when the library does not export it.
fn find<R>(library: &'static RawLibrary, name: &'static str) -> Result<Option<R>, CapabilityError>
where
    R: StableAbi + PrefixRefTrait,
{
    let symbol = symbol_name(name);
    // SAFETY: a symbol of this name is, by the capability rule, a `CapabilityEntry`: a plugin
    // exports it only through `export_capabilities!`. The library is never unloaded (leaked
    // above), so the pointer stays valid.
    let entry: CapabilityEntry = match unsafe { library.get::<CapabilityEntry>(symbol.as_bytes()) }
    {
        Ok(symbol) => *symbol,
        Err(_) => return Ok(None),
    };
    let header: CapabilityHeader = entry();
    if let Err(e) = check_layout_compatibility(R::LAYOUT, header.layout) {
        log::debug!("capability {name} layout error in full: {e}");
        return Err(CapabilityError {
            capability: name,
            problem: crate::host::summarise_layout_error(&e.to_string()),
        });
    }
    // SAFETY: the layout the plugin built `module` with was just checked to be compatible with
    // `R`'s, and `R` is a `PrefixRef` newtype (asserted pointer-sized in `export.rs`) that the
    // plugin erased with `to_raw_ptr`; the module is leaked, so it lives as long as the process.
    let prefix = unsafe {
        PrefixRef::<R::PrefixFields>::from_raw(
            header
                .module
                .cast::<WithMetadata_<R::PrefixFields, R::PrefixFields>>(),
        )
    };
    Ok(Some(R::from_prefix_ref(prefix)))
}

/// Adapts a host [`ItemEvents`] to the FFI sink.
struct ItemsToFfi<'a>(&'a dyn ItemEvents);

fn path_of(bytes: RSlice<'_, u8>) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(bytes.as_slice()))
}

impl ItemEventsFfi for ItemsToFfi<'_> {
    fn item(&self, name: RSlice<'_, u8>, size: u64) {
        self.0.item(path_of(name), size);
    }

    fn problem(&self, name: ROption<RSlice<'_, u8>>, message: RStr<'_>) {
        self.0
            .problem(name.into_option().map(path_of), message.as_str());
    }
}

/// Adapts a host [`BackupSink`] to the FFI sink: one commit, nothing written after it, and a
/// panic of the host's sink (called from a provider's thread) kept from unwinding into the
/// provider.
struct SinkToFfi<'a> {
    sink: &'a mut dyn BackupSink,
    committed: bool,
}

fn sink_guarded(f: impl FnOnce() -> Result<(), ProviderError>) -> RResult<(), ProviderError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result.into(),
        Err(_) => RResult::RErr(ProviderError::other(
            "the backup's destination failed unexpectedly",
        )),
    }
}

impl BackupSinkFfi for SinkToFfi<'_> {
    fn write(&mut self, bytes: RSlice<'_, u8>) -> RResult<(), ProviderError> {
        if self.committed {
            return RResult::RErr(ProviderError::other(
                "the provider wrote to the backup after committing it",
            ));
        }
        sink_guarded(|| self.sink.write(bytes.as_slice()))
    }

    fn commit(&mut self) -> RResult<(), ProviderError> {
        if self.committed {
            return RResult::RErr(ProviderError::other(
                "the provider committed the backup twice",
            ));
        }
        let result = sink_guarded(|| self.sink.commit());
        self.committed = result.is_ok();
        result
    }
}

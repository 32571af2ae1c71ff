//! The plugin side of capabilities: implement a trait on the provider, then name it in
//! [`export_capabilities!`](crate::export_capabilities).

use std::ffi::c_void;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use abi_stable::prefix_type::{PrefixRefTrait, PrefixTypeTrait};
use abi_stable::std_types::{ROption, RResult, RSlice, RStr};
use abi_stable::StableAbi;

use super::ffi::{
    BackupSinkMut, BackupToSinkV1, BackupToSinkV1Ref, CapabilityHeader, DryRunV1, DryRunV1Ref,
    ItemEventsRef, RestoreV1, RestoreV1Ref, VerifyV1, VerifyV1Ref,
};
use super::types::{BackupSink, ChainArchive, ItemEvents, RestoreRequest, Totals};
use crate::error::ProviderError;
use crate::events::BackupEvents;
use crate::ffi::BackupEventsRef;
use crate::plugin::{checks, guarded, ArchiverProvider, EventsFromFfi, Plugin};
use crate::types::{ArchiverFeature, BackupDefinition, PathBytes};

/// Restores a chain of backups into a directory.
pub trait Restoring: ArchiverProvider {
    /// Applies `request.archives` in order into `request.target`, so that it ends as the tree
    /// was at the last level: members extracted, and the deletions and renames each level
    /// records applied. Members that would land outside the target are refused and reported
    /// as problems; so is anything else that could not be restored, and the restore goes on.
    /// An error ends it (an unreadable archive, a full disk).
    fn restore(
        &self,
        request: &RestoreRequest,
        events: &dyn ItemEvents,
    ) -> Result<Totals, ProviderError>;
}

/// Checks a backup file without extracting it.
pub trait Verifying: ArchiverProvider {
    /// Reads `archive` to the end: decompresses it fully, checking every checksum of its
    /// compression format, and walks its tar structure, checking each header. Reports each
    /// member as an item; a damaged archive is an error saying where.
    fn verify(
        &self,
        archive: &ChainArchive,
        events: &dyn ItemEvents,
    ) -> Result<Totals, ProviderError>;
}

/// Tells what a backup would store, without writing anything.
pub trait DryRunning: ArchiverProvider {
    /// Reports each member a backup of `definition` would store now, with its size: a full
    /// backup when `level` is `None`, else an incremental one of `level` (against the
    /// snapshots in this provider's state). No file, snapshot or state is written.
    fn dry_run(
        &self,
        definition: &BackupDefinition,
        level: Option<u32>,
        events: &dyn ItemEvents,
    ) -> Result<Totals, ProviderError>;
}

/// Writes backups into a byte sink of the host instead of a local file.
pub trait BackingUpToSink: ArchiverProvider {
    /// Writes the backup of `definition` into `sink`: with `level` `None` the backup
    /// [`ArchiverProvider::backup_files`] makes, else the incremental one of `level` that
    /// [`ArchiverProvider::backup_files_incrementally`] makes, byte for byte what that method
    /// would write to its file. Then, in this order: an incremental level readies its
    /// snapshot (what may still fail), [`BackupSink::commit`] is called, and only once it
    /// succeeded the snapshot is installed, so that a snapshot never claims content that no
    /// stored backup holds. On an error before the commit the provider returns it without
    /// committing, its state unchanged. Nothing is written to the destination directory.
    fn backup_to_sink(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        level: Option<u32>,
        sink: &mut dyn BackupSink,
        events: &dyn BackupEvents,
    ) -> Result<(), ProviderError>;
}

/// Presents the FFI byte sink as [`BackupSink`].
struct SinkFromFfi<'a>(BackupSinkMut<'a>);

impl BackupSink for SinkFromFfi<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), ProviderError> {
        self.0.write(RSlice::from_slice(bytes)).into_result()
    }

    fn commit(&mut self) -> Result<(), ProviderError> {
        self.0.commit().into_result()
    }
}

/// Presents the FFI item sink as [`ItemEvents`].
struct ItemsFromFfi<'a>(ItemEventsRef<'a>);

impl ItemEvents for ItemsFromFfi<'_> {
    fn item(&self, name: &Path, size: u64) {
        self.0
            .item(RSlice::from_slice(name.as_os_str().as_bytes()), size);
    }

    fn problem(&self, name: Option<&Path>, message: &str) {
        self.0.problem(
            name.map(|n| RSlice::from_slice(n.as_os_str().as_bytes()))
                .into(),
            RStr::from_str(message),
        );
    }
}

fn header<R: StableAbi + PrefixRefTrait>(module: R) -> CapabilityHeader {
    CapabilityHeader {
        layout: R::LAYOUT,
        module: module.to_prefix_ref().to_raw_ptr().cast::<c_void>(),
    }
}

fn create<P: Plugin>(work_dir: &PathBytes) -> Result<P::Provider, ProviderError> {
    P::create(work_dir.as_path())
}

extern "C" fn restore_entry<P: Plugin>(
    work_dir: &PathBytes,
    request: &RestoreRequest,
    events: ItemEventsRef<'_>,
) -> RResult<Totals, ProviderError>
where
    P::Provider: Restoring,
{
    guarded(|| {
        let id = P::identification();
        for archive in request.archives.iter() {
            checks::backup_type(&id, archive.backup_type)?;
        }
        create::<P>(work_dir)?.restore(request, &ItemsFromFfi(events))
    })
}

extern "C" fn verify_entry<P: Plugin>(
    work_dir: &PathBytes,
    archive: &ChainArchive,
    events: ItemEventsRef<'_>,
) -> RResult<Totals, ProviderError>
where
    P::Provider: Verifying,
{
    guarded(|| {
        checks::backup_type(&P::identification(), archive.backup_type)?;
        create::<P>(work_dir)?.verify(archive, &ItemsFromFfi(events))
    })
}

extern "C" fn dry_run_entry<P: Plugin>(
    work_dir: &PathBytes,
    definition: &BackupDefinition,
    level: ROption<u32>,
    events: ItemEventsRef<'_>,
) -> RResult<Totals, ProviderError>
where
    P::Provider: DryRunning,
{
    guarded(|| {
        let id = P::identification();
        let level = level.into_option();
        if level.is_some() {
            checks::backup_type(&id, definition.backup_type)?;
            checks::feature(
                &id,
                definition.backup_type,
                crate::types::ArchiverFeature::Incremental,
            )?;
        }
        checks::backup(&id, definition, None)?;
        create::<P>(work_dir)?.dry_run(definition, level, &ItemsFromFfi(events))
    })
}

extern "C" fn backup_to_sink_entry<P: Plugin>(
    work_dir: &PathBytes,
    definition: &BackupDefinition,
    compression_strength: ROption<u32>,
    level: ROption<u32>,
    sink: BackupSinkMut<'_>,
    events: BackupEventsRef<'_>,
) -> RResult<(), ProviderError>
where
    P::Provider: BackingUpToSink,
{
    guarded(|| {
        let id = P::identification();
        let (strength, level) = (compression_strength.into_option(), level.into_option());
        // The checks of `backup_files` and `backup_files_incrementally`.
        if level.is_some() {
            checks::backup_type(&id, definition.backup_type)?;
            checks::feature(&id, definition.backup_type, ArchiverFeature::Incremental)?;
        }
        checks::backup(&id, definition, strength)?;
        create::<P>(work_dir)?.backup_to_sink(
            definition,
            strength,
            level,
            &mut SinkFromFfi(sink),
            &EventsFromFfi(events),
        )
    })
}

/// The header [`export_capabilities!`](crate::export_capabilities) exports for
/// `backup_to_sink_v1`.
pub fn backup_to_sink_v1_header<P: Plugin>() -> CapabilityHeader
where
    P::Provider: BackingUpToSink,
{
    header(
        BackupToSinkV1 {
            backup_to_sink: backup_to_sink_entry::<P>,
        }
        .leak_into_prefix(),
    )
}

/// The header [`export_capabilities!`](crate::export_capabilities) exports for `restore_v1`.
pub fn restore_v1_header<P: Plugin>() -> CapabilityHeader
where
    P::Provider: Restoring,
{
    header(
        RestoreV1 {
            restore: restore_entry::<P>,
        }
        .leak_into_prefix(),
    )
}

/// The header [`export_capabilities!`](crate::export_capabilities) exports for `verify_v1`.
pub fn verify_v1_header<P: Plugin>() -> CapabilityHeader
where
    P::Provider: Verifying,
{
    header(
        VerifyV1 {
            verify: verify_entry::<P>,
        }
        .leak_into_prefix(),
    )
}

/// The header [`export_capabilities!`](crate::export_capabilities) exports for `dry_run_v1`.
pub fn dry_run_v1_header<P: Plugin>() -> CapabilityHeader
where
    P::Provider: DryRunning,
{
    header(
        DryRunV1 {
            dry_run: dry_run_entry::<P>,
        }
        .leak_into_prefix(),
    )
}

// The module reference types must stay pointer-sized: the host rebuilds them from the erased
// pointer in the header.
const _: () = assert!(std::mem::size_of::<RestoreV1Ref>() == std::mem::size_of::<*const ()>());
const _: () = assert!(std::mem::size_of::<VerifyV1Ref>() == std::mem::size_of::<*const ()>());
const _: () = assert!(std::mem::size_of::<DryRunV1Ref>() == std::mem::size_of::<*const ()>());
const _: () = assert!(std::mem::size_of::<BackupToSinkV1Ref>() == std::mem::size_of::<*const ()>());

/// Exports capabilities of a [`Plugin`]'s provider, each under its own symbol:
/// `aa_abi::export_capabilities!(MyPlugin: restore_v1, verify_v1, dry_run_v1, backup_to_sink_v1);`
/// The provider implements the matching trait ([`Restoring`], [`Verifying`], [`DryRunning`],
/// [`BackingUpToSink`]). A plugin that
/// exports none of them is a plain ABI 1.0 plugin.
#[macro_export]
macro_rules! export_capabilities {
    ($plugin:ty: $($capability:ident),+ $(,)?) => {
        $( $crate::export_capabilities!(@one $plugin, $capability); )+
    };
    (@one $plugin:ty, restore_v1) => {
        #[no_mangle]
        pub extern "C" fn aa_capability_restore_v1() -> $crate::capability::ffi::CapabilityHeader {
            $crate::capability::restore_v1_header::<$plugin>()
        }
    };
    (@one $plugin:ty, verify_v1) => {
        #[no_mangle]
        pub extern "C" fn aa_capability_verify_v1() -> $crate::capability::ffi::CapabilityHeader {
            $crate::capability::verify_v1_header::<$plugin>()
        }
    };
    (@one $plugin:ty, dry_run_v1) => {
        #[no_mangle]
        pub extern "C" fn aa_capability_dry_run_v1() -> $crate::capability::ffi::CapabilityHeader {
            $crate::capability::dry_run_v1_header::<$plugin>()
        }
    };
    (@one $plugin:ty, backup_to_sink_v1) => {
        #[no_mangle]
        pub extern "C" fn aa_capability_backup_to_sink_v1() -> $crate::capability::ffi::CapabilityHeader {
            $crate::capability::backup_to_sink_v1_header::<$plugin>()
        }
    };
}

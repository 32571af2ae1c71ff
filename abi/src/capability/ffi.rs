//! The raw form of the capability modules, as the `export_capabilities!` macro exports them
//! and the host checks them. Public only because that macro expands to it.

// `sabi_trait` expands to impls inside a const block, which this lint flags; the code is abi_stable's.
#![allow(non_local_definitions)]

use std::ffi::c_void;

use abi_stable::sabi_types::{RMut, RRef};
use abi_stable::std_types::{ROption, RResult, RSlice, RStr};
use abi_stable::type_layout::TypeLayout;
use abi_stable::{sabi_trait, StableAbi};

use super::types::{ChainArchive, RestoreRequest, Totals};
use crate::error::ProviderError;
use crate::ffi::BackupEventsRef;
use crate::types::{BackupDefinition, PathBytes};

/// What a capability symbol returns. Frozen for as long as ABI 1.x lives: it is read before any
/// layout is checked, so it can never change.
#[repr(C)]
pub struct CapabilityHeader {
    /// The layout of the module's reference type (for example [`RestoreV1Ref`]) as the plugin
    /// was built; the host checks it against its own before it touches `module`.
    pub layout: &'static TypeLayout,
    /// The module, a `PrefixRef` erased to a pointer; lives as long as the process.
    pub module: *const c_void,
}

/// The signature of every capability symbol.
pub type CapabilityEntry = extern "C" fn() -> CapabilityHeader;

/// Receives the members a capability call handles ([`crate::capability::ItemEvents`] across the boundary).
#[sabi_trait]
pub trait ItemEventsFfi {
    /// See [`crate::capability::ItemEvents::item`].
    fn item(&self, name: RSlice<'_, u8>, size: u64);

    /// See [`crate::capability::ItemEvents::problem`].
    #[sabi(last_prefix_field)]
    fn problem(&self, name: ROption<RSlice<'_, u8>>, message: RStr<'_>);
}

/// A borrowed item sink as passed to a capability.
pub type ItemEventsRef<'a> = ItemEventsFfi_TO<'a, RRef<'a, ()>>;

/// The restore capability, version 1.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = RestoreV1Ref)))]
#[sabi(missing_field(panic))]
pub struct RestoreV1 {
    /// Restores `request`, with a provider whose state lives in `work_dir`.
    #[sabi(last_prefix_field)]
    pub restore: extern "C" fn(
        work_dir: &PathBytes,
        request: &RestoreRequest,
        events: ItemEventsRef<'_>,
    ) -> RResult<Totals, ProviderError>,
}

/// The verify capability, version 1.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = VerifyV1Ref)))]
#[sabi(missing_field(panic))]
pub struct VerifyV1 {
    /// Reads and checks one backup file, with a provider whose state lives in `work_dir`.
    #[sabi(last_prefix_field)]
    pub verify: extern "C" fn(
        work_dir: &PathBytes,
        archive: &ChainArchive,
        events: ItemEventsRef<'_>,
    ) -> RResult<Totals, ProviderError>,
}

/// The dry-run capability, version 1.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = DryRunV1Ref)))]
#[sabi(missing_field(panic))]
pub struct DryRunV1 {
    /// Lists what a backup of `definition` would store: a full one when `level` is none, else
    /// an incremental one of that level. Writes nothing.
    #[sabi(last_prefix_field)]
    pub dry_run: extern "C" fn(
        work_dir: &PathBytes,
        definition: &BackupDefinition,
        level: ROption<u32>,
        events: ItemEventsRef<'_>,
    ) -> RResult<Totals, ProviderError>,
}

/// Receives the bytes of a backup ([`crate::capability::BackupSink`] across the boundary).
/// `Send`: a provider may write from a thread of its own, one call at a time.
#[sabi_trait]
pub trait BackupSinkFfi: Send {
    /// See [`crate::capability::BackupSink::write`].
    fn write(&mut self, bytes: RSlice<'_, u8>) -> RResult<(), ProviderError>;

    /// See [`crate::capability::BackupSink::commit`].
    #[sabi(last_prefix_field)]
    fn commit(&mut self) -> RResult<(), ProviderError>;
}

/// A borrowed byte sink as passed to a capability.
pub type BackupSinkMut<'a> = BackupSinkFfi_TO<'a, RMut<'a, ()>>;

/// The backup-to-sink capability, version 1.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = BackupToSinkV1Ref)))]
#[sabi(missing_field(panic))]
pub struct BackupToSinkV1 {
    /// Writes the backup of `definition` into `sink` (a non-incremental one when `level` is
    /// none, else the incremental one of that level), with a provider whose state lives in
    /// `work_dir`.
    #[sabi(last_prefix_field)]
    pub backup_to_sink: extern "C" fn(
        work_dir: &PathBytes,
        definition: &BackupDefinition,
        compression_strength: ROption<u32>,
        level: ROption<u32>,
        sink: BackupSinkMut<'_>,
        events: BackupEventsRef<'_>,
    ) -> RResult<(), ProviderError>,
}

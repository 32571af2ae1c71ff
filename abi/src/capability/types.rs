//! The values capability calls take and give, shared by both sides of the boundary.

use std::path::Path;

use abi_stable::std_types::RVec;
use abi_stable::StableAbi;

use crate::error::ProviderError;
use crate::types::{BackupType, PathBytes};

/// One backup file of a chain: level 0 is the full backup, each later level holds what changed
/// since the one before.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct ChainArchive {
    /// The level, 0 for a full backup (and for a non-incremental one).
    pub level: u32,
    /// The archive's type, from its file name.
    pub backup_type: BackupType,
    /// The backup file.
    pub path: PathBytes,
}

impl ChainArchive {
    /// The backup file.
    pub fn path(&self) -> &Path {
        self.path.as_path()
    }
}

/// What to restore, and where.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct RestoreRequest {
    /// The chain in level order, `0..=N`, complete (the host has checked that no level is
    /// missing). Applying all of them leaves the tree as it was at level `N`.
    pub archives: RVec<ChainArchive>,
    /// The directory the tree is restored into; it exists.
    pub target: PathBytes,
    /// When not empty, only these paths (relative to the backup root) and what is below them
    /// are restored.
    pub only: RVec<PathBytes>,
    /// Whether `target` may already hold files, which restored members then replace. The host
    /// refuses a non-empty target without it; a provider must not rely on the target being empty
    /// when it is set.
    pub overwrite: bool,
}

impl RestoreRequest {
    /// The directory the tree is restored into.
    pub fn target(&self) -> &Path {
        self.target.as_path()
    }

    /// The paths to restore when only some are wanted (empty: everything).
    pub fn only(&self) -> impl Iterator<Item = &Path> {
        self.only.iter().map(PathBytes::as_path)
    }
}

/// Counts a capability call reports when it ends.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Members restored, checked or that would be stored.
    pub items: u64,
    /// Their bytes of content.
    pub bytes: u64,
    /// Problems reported through [`ItemEvents::problem`]. A restore or verification with
    /// problems did not fully succeed.
    pub problems: u64,
}

/// Receives what a capability call does, member by member. Called on the thread that made the
/// call, only while it runs.
pub trait ItemEvents {
    /// `name` (relative to the backup root) was restored, checked, or would be stored, with
    /// `size` bytes of content.
    fn item(&self, name: &Path, size: u64);

    /// Something went wrong with `name` (if known); the call goes on with the next member. A
    /// member refused for safety (a name with `..`, an absolute name, a path through a link) is
    /// reported here.
    fn problem(&self, name: Option<&Path>, message: &str);
}

/// Where a provider writes a backup file's bytes when the host, not the provider, stores it
/// (an object store, say): the [`crate::capability::BackingUpToSink`] capability.
///
/// The bytes are the complete backup file, exactly as the provider would write it locally.
/// Nothing becomes visible until [`commit`](BackupSink::commit) succeeds; a sink dropped or
/// left without a commit is an aborted backup, which the host discards. `Send`: a provider
/// may write from a thread of its own, but never from two at once (`&mut self`).
pub trait BackupSink: Send {
    /// Appends `bytes` to the backup. An error ends the backup: the provider stops and
    /// returns it, without a commit.
    fn write(&mut self, bytes: &[u8]) -> Result<(), ProviderError>;

    /// The backup is complete: make it visible, replacing an earlier one of the same name.
    /// Called once, after the last write; nothing is written after it.
    fn commit(&mut self) -> Result<(), ProviderError>;
}

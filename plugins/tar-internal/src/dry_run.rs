//! The dry run (the `dry_run_v1` capability): which members a backup would store now, with
//! their sizes, and nothing written.
//!
//! It cannot diverge from a real backup because it is one: the same walk (full) or the same
//! two passes (incremental: [`crate::incremental::provider::dry_run_incrementally`]) feed
//! the same [`Archiver`], whose decisions (hard links, sockets, vanished and replaced
//! files, the backup's own files) are the real run's. Only the ends differ: the archiver
//! writes into a [`NullOutput`] and announces members to a [`Listing`] without reading their
//! content; an incremental level plans its snapshot into memory. So no backup file, snapshot,
//! working file or other state is created. A file that cannot be read is only found by a
//! real run (its member is still stored, with zeros).
//!
//! Problems the real run would report (unreadable, vanished or ignored objects) are reported
//! as problems; a renamed directory, which a real run only mentions, is not one.

use std::path::Path;

use aa_abi::capability::{ItemEvents, Totals};
use aa_abi::{
    BackupDefinition, BackupEvents, BackupOperationError, BackupSubOperation, ProviderError,
};

use crate::archive::{Archiver, Listing};
use crate::backup::StoreError;
use crate::fatal;
use crate::output::NullOutput;
use aa_provider_kit::{backup_root, CountedItems};

/// Presents a dry run's members and problems to the capability's item events, counting them.
pub struct DryEvents<'a> {
    items: CountedItems<'a>,
}

impl<'a> DryEvents<'a> {
    pub fn new(items: &'a dyn ItemEvents) -> Self {
        DryEvents {
            items: CountedItems::new(items),
        }
    }

    pub fn totals(&self) -> Totals {
        self.items.totals()
    }
}

impl Listing for DryEvents<'_> {
    fn member(&self, name: &Path, size: u64) {
        self.items.item(name, size);
    }
}

impl BackupEvents for DryEvents<'_> {
    // Never raised in a dry run: members go to `Listing::member`.
    fn file_add(&self, _name: &Path) {}

    fn backup_operation_error(
        &self,
        operation: BackupSubOperation,
        error: BackupOperationError,
        name: Option<&Path>,
        message: Option<&str>,
    ) {
        let text = match error {
            // Informational in a real run too.
            BackupOperationError::DirectoryRenamed => return,
            BackupOperationError::PermissionDenied => "permission denied".to_string(),
            BackupOperationError::SocketIgnored => "a socket, which tar cannot store".to_string(),
            BackupOperationError::UnknownTypeIgnored => {
                "an object of unknown type, not stored".to_string()
            }
            BackupOperationError::FileChanged => "changed or replaced while examined".to_string(),
            _ => format!(
                "{} failed: {}",
                operation.name().unwrap_or("an operation"),
                message.unwrap_or("unknown error")
            ),
        };
        self.items.problem(name, &text);
    }
}

/// Lists the members a full backup of `definition` would store.
pub fn dry_run_full(
    definition: &BackupDefinition,
    events: &DryEvents<'_>,
) -> Result<(), ProviderError> {
    let root = backup_root(definition).map_err(|e| fatal(definition.root(), &e))?;
    let walker = crate::full_walker(definition, root)?;
    let mut archiver = Archiver::listing(NullOutput::default(), events, events);
    crate::store_full(&mut archiver, walker).map_err(dry_run_failure)
}

/// Lists the members an incremental backup of `definition` at `level` would store, with the
/// snapshots in `work_dir`.
pub fn dry_run_incremental(
    work_dir: &Path,
    definition: &BackupDefinition,
    level: Option<u32>,
    events: &DryEvents<'_>,
) -> Result<(), ProviderError> {
    crate::incremental::provider::dry_run_incrementally(work_dir, definition, level, events, events)
}

pub(crate) fn dry_run_failure(error: StoreError) -> ProviderError {
    match error {
        StoreError::Archive(error) => ProviderError::from_io("dry run", &error),
        StoreError::Other(error) => error,
    }
}

//! Restoring a chain of backups in pure Rust: what GNU tar `-x -G --listed-incremental=/dev/null`
//! does level by level, made exact at the top level (the roots record) and safe with hostile
//! archives (nothing outside the target is ever written, followed or deleted).
//!
//! ```text
//! read + decompress (own thread) -> tar members -> extraction (calling thread)
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | `decompress` | the backup file to a tar stream, on its own thread, every codec's multi-stream form |
//! | `bz2` | bzip2 files of many streams decoded on every core |
//! | `reader` | tar headers: ustar, GNU, pax, long names, dumpdirs, sparse maps |
//! | `beneath` | the target as a descriptor; paths resolved so they never leave it |
//! | `extract` | one member onto the disk, with its attributes |
//! | `chain` | levels in order: dumpdir renames and deletions, the roots rule, `only` |
//! | `renames` | GNU tar's rename records, and what `only` makes of them |
//! | `links` | hard links selected by `only` to files it did not select |
//! | `select` | what `only` selects at each level, through the renames of later ones |
//!
//! What a restore does where GNU tar leaves a choice, or where the contract is silent:
//!
//! * modes are restored exactly (GNU tar's `-p`), the umask does not apply; owners (by user and
//!   group name where this system knows them, else by number) only when running as root;
//!   modification times to the nanosecond, symbolic links' own included;
//! * a member is refused and reported as a problem, and the restore goes on, when its name is
//!   absolute or has a `..`, when its path leads through a symbolic link out of the target,
//!   when it is a hard link to such a name, or when a non-empty directory is in the way of a
//!   non-directory (an empty one is replaced, like a file). A damaged or cut archive, a full
//!   disk or a read-only target end the restore with an error naming the file;
//! * with `overwrite`, members replace what is at their names; level 0 deletes nothing that
//!   was there before, later levels delete in their directories what their dumpdirs say is gone
//!   (as GNU tar does, whatever put it there).

mod beneath;
mod bz2;
mod chain;
pub(crate) mod decompress;
mod extract;
pub(crate) mod fields;
mod links;
pub(crate) mod reader;
mod renames;
mod select;

use aa_abi::capability::{ItemEvents, RestoreRequest, Restoring, Totals};
use aa_abi::ProviderError;

use crate::TarInternalProvider;

impl Restoring for TarInternalProvider {
    fn restore(
        &self,
        request: &RestoreRequest,
        events: &dyn ItemEvents,
    ) -> Result<Totals, ProviderError> {
        chain::restore(request, events)
    }
}

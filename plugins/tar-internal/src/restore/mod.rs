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
//! | `reader` | tar headers: ustar, GNU, pax, long names, dumpdirs, sparse maps |
//! | `beneath` | the target as a descriptor; paths resolved so they never leave it |
//! | `extract` | one member onto the disk, with its attributes |
//! | `chain` | levels in order: dumpdir renames and deletions, the roots rule, `only` |
//! | `renames` | GNU tar's rename records, and what `only` makes of them |
//! | `links` | hard links selected by `only` to files it did not select |
//! | `select` | what `only` selects at each level, through the renames of later ones |

mod beneath;
mod chain;
mod decompress;
mod extract;
mod links;
mod reader;
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

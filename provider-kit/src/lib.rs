//! What every `aa` archiver provider needs beside the ABI: the GNU tar snapshot files of
//! incremental backups and their shared layout, and the code a provider would otherwise
//! write again (state queries, the backup-root check, error mapping).
//!
//! `aa-abi` is the contract between host and plugins and changes only with the ABI version;
//! this crate is ordinary Rust that providers link statically, so it can change freely.
pub mod recording;

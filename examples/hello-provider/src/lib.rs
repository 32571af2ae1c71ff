//! `Hello`: a minimal third-party archiver provider for `aa`, written as a teaching example.
//!
//! It shows everything a plugin has to do, and nothing more:
//!
//! 1. describe itself ([`Plugin::identification`]): an id, a one-line description and the
//!    backup types it supports (only plain `Tar`, with no optional features);
//! 2. create the backup ([`ArchiverProvider::backup_files`]), writing it through
//!    [`OutputFile`] so a failed run never destroys the previous backup;
//! 3. report progress and non-fatal problems through [`BackupEvents`];
//! 4. export itself with [`aa_abi::export_archiver_plugin!`].
//!
//! The argument checks (unsupported type, compression strength, nothing to back up) and panic
//! safety are done by `aa-abi` before `backup_files` is called, so they are not repeated here.
//!
//! To stay short the archive is a bare POSIX ustar file built by hand: regular files and
//! directories only, names shorter than 100 bytes, files smaller than 8 GiB. Anything else is
//! skipped and reported as `UnknownTypeIgnored`. A real provider would use the `tar` crate.

use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aa_abi::naming::OutputFile;
use aa_abi::plugin::{backup_path, ArchiverProvider, Plugin};
use aa_abi::{
    BackupDefinition, BackupEvents, BackupOperationError, BackupSubOperation, BackupType,
    ProviderError, ProviderIdentification,
};

/// The plugin: how `aa` learns about the provider and creates it.
pub struct HelloPlugin;

impl Plugin for HelloPlugin {
    type Provider = HelloProvider;

    fn identification() -> ProviderIdentification {
        ProviderIdentification::new(
            "Hello",
            "Example provider writing plain tar archives by hand (regular files and directories only)",
        )
        .with_type(BackupType::Tar, &[])
    }

    fn create(_work_dir: &Path) -> Result<HelloProvider, ProviderError> {
        // No persistent state, so the work directory is not needed.
        Ok(HelloProvider)
    }
}

aa_abi::export_archiver_plugin!(HelloPlugin);

/// The provider. Every method except `backup_files` keeps the default from `aa-abi`.
pub struct HelloProvider;

impl ArchiverProvider for HelloProvider {
    fn backup_files(
        &self,
        definition: &BackupDefinition,
        _compression_strength: Option<u32>, // always None: Tar declares no CompressionStrength
        overwrite_at_start: bool,
        events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError> {
        // Written to a partial file (`NAME.tar.pPID-TOKEN._partial`) and renamed on commit; dropping `output` on an error
        // path deletes the partial file and leaves the old backup alone.
        let mut output = OutputFile::new(backup_path(definition, None, None)?, overwrite_at_start);
        let written = output.path().to_path_buf();
        let io_error = |e: io::Error| ProviderError::from_io(written.display(), &e);
        let file = output.create().map_err(io_error)?;

        let mut writer = UstarWriter {
            out: BufWriter::new(file),
            definition,
            events,
        };
        for include in definition.includes() {
            writer.add(include).map_err(io_error)?;
        }
        // An archive ends with two zero blocks.
        writer.out.write_all(&[0; 2 * BLOCK]).map_err(io_error)?;
        writer
            .out
            .into_inner()
            .map_err(|e| io_error(e.into_error()))?;
        output.commit().map_err(io_error)
    }
}

const BLOCK: usize = 512;
/// Largest value of the 11 octal digits of the ustar size field.
const MAX_SIZE: u64 = 0o777_7777_7777;

struct UstarWriter<'a> {
    out: BufWriter<File>,
    definition: &'a BackupDefinition,
    events: &'a dyn BackupEvents,
}

impl UstarWriter<'_> {
    /// Adds `rel` (relative to the backup root) and, for a directory, everything below it.
    /// Only errors writing the archive are returned; problems with a source file are reported
    /// as events and the file skipped, as tar does.
    fn add(&mut self, rel: &Path) -> io::Result<()> {
        // An excluded directory excludes its subtree; `starts_with` compares whole components.
        if self.definition.excludes().any(|ex| rel.starts_with(ex)) {
            return Ok(());
        }
        let path = self.definition.root().join(rel);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) => return self.skip(BackupSubOperation::Stat, &e, rel),
        };

        let mut name = rel.as_os_str().as_bytes().to_vec();
        if meta.is_dir() {
            name.push(b'/');
        }
        if !(meta.is_dir() || meta.is_file()) || name.len() >= 100 || meta.len() > MAX_SIZE {
            let ignored = BackupOperationError::UnknownTypeIgnored;
            self.events
                .backup_operation_error(BackupSubOperation::Open, ignored, Some(rel), None);
            return Ok(());
        }

        if meta.is_dir() {
            // Read the directory before writing its header so an unreadable one is skipped.
            let children = match sorted_children(&path) {
                Ok(children) => children,
                Err(e) => return self.skip(BackupSubOperation::Open, &e, rel),
            };
            self.out.write_all(&header(&name, &meta, b'5', 0))?;
            self.events.file_add(rel);
            for child in children {
                self.add(&rel.join(child))?;
            }
        } else {
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) => return self.skip(BackupSubOperation::Open, &e, rel),
            };
            let size = meta.len();
            self.out.write_all(&header(&name, &meta, b'0', size))?;
            self.copy_content(file, size, rel)?;
            self.events.file_add(rel);
        }
        Ok(())
    }

    /// Copies exactly `size` bytes (the size promised in the header) and pads them to a whole
    /// block. If the file shrank or failed to read, zeros keep the archive well-formed.
    fn copy_content(&mut self, file: File, size: u64, rel: &Path) -> io::Result<()> {
        let mut copied = 0;
        let mut source = file.take(size);
        let mut buf = [0; 64 * 1024];
        loop {
            match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.out.write_all(&buf[..n])?;
                    copied += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.report(BackupSubOperation::Read, &e, rel);
                    break;
                }
            }
        }
        if copied < size {
            let changed = BackupOperationError::FileChanged;
            self.events
                .backup_operation_error(BackupSubOperation::Read, changed, Some(rel), None);
        }
        let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        io::copy(&mut io::repeat(0).take(padded - copied), &mut self.out)?;
        Ok(())
    }

    /// Reports a problem with a source file, which is then left out of the archive.
    fn skip(&self, operation: BackupSubOperation, err: &io::Error, rel: &Path) -> io::Result<()> {
        self.report(operation, err, rel);
        Ok(())
    }

    fn report(&self, operation: BackupSubOperation, err: &io::Error, rel: &Path) {
        let error = match err.kind() {
            io::ErrorKind::PermissionDenied => BackupOperationError::PermissionDenied,
            _ => BackupOperationError::UnknownOsError,
        };
        let message = err.to_string();
        self.events
            .backup_operation_error(operation, error, Some(rel), Some(&message));
    }
}

/// The names in a directory, sorted so the member order is reproducible.
fn sorted_children(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

/// Builds a ustar header block. Numbers are zero-padded octal, NUL-terminated (a number too large
/// for its field, such as a huge uid, is stored as 0); user and group names are left empty so the
/// numeric ids are used on extraction.
fn header(name: &[u8], meta: &Metadata, type_flag: u8, size: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let mut octal = |offset: usize, width: usize, value: u64| {
        let digits = width - 1;
        let value = if value >> (3 * digits) == 0 { value } else { 0 };
        let text = format!("{value:0digits$o}");
        h[offset..offset + digits].copy_from_slice(text.as_bytes());
    };
    octal(100, 8, u64::from(meta.mode() & 0o7777));
    octal(108, 8, u64::from(meta.uid()));
    octal(116, 8, u64::from(meta.gid()));
    octal(124, 12, size);
    octal(136, 12, meta.mtime().max(0) as u64); // ustar has no sub-second times
    h[..name.len()].copy_from_slice(name);
    h[156] = type_flag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");

    // The checksum is the byte sum of the header with its own field read as eight spaces.
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

//! The `TarExternal` archiver provider: backups made by running GNU tar.
//!
//! It drives tar the way the original's external provider did, with these deliberate changes:
//!
//! * the names to archive go NUL-separated through tar's stdin (`--null --verbatim-files-from
//!   --no-unquote --files-from=-`), so names starting with `-`, containing newlines or not
//!   valid UTF-8 reach tar unchanged and no command line length limit applies;
//! * excludes are `--anchored --no-wildcards`, so an exclude entry matches one member path
//!   exactly (and, through tar's leading-directory matching, that member's subtree), the same
//!   rule the `TarInternal` provider applies;
//! * the compression strength selects the compressor's level flag through
//!   `--use-compress-program` instead of the deprecated `GZIP`/`BZIP2` variables, and a
//!   parallel compressor (pigz, lbzip2 or pbzip2, `xz -T0`, `zstd -T0`) is used when installed
//!   (module `compress`);
//! * member names are printed with `--quoting-style=escape` and decoded (see [`quoting`]);
//!   `fileAdd` reports each name as tar prints it, so directories keep their trailing `/`, as
//!   in the original;
//! * tar runs with `LC_ALL=C` and without `TAR_OPTIONS`, so its messages can be parsed and the
//!   command line alone decides what is archived;
//! * an incremental archive `proj` only owns snapshots named `proj.snar` / `proj.N.snar` (see
//!   [`aa_provider_kit::Snapshots`], shared with `TarInternal`, which continues chains made
//!   with GNU tar);
//! * `AA_NO_CHECK_DEVICE=1` adds `--no-check-device` to incremental runs, as `TarInternal`
//!   honours it (see [`aa_provider_kit::NO_CHECK_DEVICE_VAR`]);
//! * the dump time in a new snapshot is the first tick, of the clock files are stamped with,
//!   after the backup started, not tar's precise start time, so no change made just after the
//!   start is missed by the next level and none made before it is stored again (module
//!   `dump_time`);
//! * the archive's own backup files are excluded when the destination lies inside the root
//!   ([`aa_provider_kit::OwnBackups`]), so a backup never stores the earlier ones;
//! * tar runs on a working copy of the snapshot, and its messages about that copy name the
//!   user's snapshot file instead (module `snapshot_name`);
//! * every incremental archive starts with the roots record of the kit, written by this
//!   provider in front of GNU tar's archive, which tar writes to its stdout (module `prefix`).
//!
//! Capabilities: restore (`Restoring`, module `restore`), GNU tar extracting each level, made
//! safe and exact at the top level around it; verify (`Verifying`, module `verify`), the
//! decompressor's integrity test and GNU tar's listing; dry run (`DryRunning`, module
//! `dry_run`), GNU tar as the real run, writing to `/dev/null` on a private snapshot copy;
//! backup to a sink (`BackingUpToSink`, module `sink`), GNU tar's stdout streamed into a byte
//! sink of the host.

mod classify;
mod compress;
mod dry_run;
mod dump_time;
mod error;
mod hardlinks;
mod locate;
mod prefix;
pub mod quoting;
mod record;
mod restore;
mod run;
mod sink;
mod snapshot_name;
mod vanished_tops;
mod verify;

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aa_abi::capability::{
    BackingUpToSink, BackupSink, ChainArchive, DryRunning, ItemEvents, RestoreRequest, Restoring,
    Totals, Verifying,
};
use aa_abi::naming::OutputFile;
use aa_abi::plugin::{backup_path, ArchiverProvider, Plugin};
use aa_abi::{
    ArchiverFeature, BackupDefinition, BackupEvents, BackupType, ProviderError,
    ProviderIdentification,
};

pub use error::Error;
pub use locate::TAR_OVERRIDE_VAR;

/// Entry points for the fuzz targets (`fuzz/`), not an API.
#[doc(hidden)]
pub mod fuzzing {
    /// What [`classify`](crate::classify::classify) makes of one stderr line of tar, in its
    /// `Debug` form (the type itself stays private).
    pub fn classify_stderr(line: &[u8]) -> String {
        format!("{:?}", crate::classify::classify(line))
    }
}

use aa_provider_kit::{
    backup_root, check_backup_id, check_device_from_env, dump_start_time, OwnBackups, Snapshots,
};

use run::{run_tar, TarRun};
use snapshot_name::SnapshotName;

/// The provider id users select with e.g. `targz@TarExternal`.
pub const PROVIDER_ID: &str = "TarExternal";

const SUPPORTED_TYPES: [BackupType; 5] = [
    BackupType::Tar,
    BackupType::TarGz,
    BackupType::TarBz2,
    BackupType::TarXz,
    BackupType::TarZst,
];

/// The plugin: identification and provider factory.
pub struct TarExternal;

impl Plugin for TarExternal {
    type Provider = TarExternalProvider;

    fn identification() -> ProviderIdentification {
        SUPPORTED_TYPES.iter().fold(
            ProviderIdentification::new(
                PROVIDER_ID,
                "Creates backups with the external GNU tar program; supports incremental backups.",
            ),
            |id, &t| {
                if t.is_compressed() {
                    id.with_type(
                        t,
                        &[
                            ArchiverFeature::CompressionStrength,
                            ArchiverFeature::Incremental,
                        ],
                    )
                } else {
                    id.with_type(t, &[ArchiverFeature::Incremental])
                }
            },
        )
    }

    fn create(work_dir: &Path) -> Result<TarExternalProvider, ProviderError> {
        TarExternalProvider::new(work_dir).map_err(ProviderError::from)
    }
}

aa_abi::export_archiver_plugin!(TarExternal);
aa_abi::export_capabilities!(TarExternal: restore_v1, verify_v1, dry_run_v1, backup_to_sink_v1);

/// The provider. GNU tar is located on first use and the result cached, so listing providers
/// works on a system without it.
pub struct TarExternalProvider {
    snapshots: Snapshots,
    tar: OnceLock<Result<PathBuf, String>>,
}

impl TarExternalProvider {
    /// Creates the provider. `<work_dir>/snapshots` is made by the first incremental backup
    /// (the original made it here, on every run; a dry run or a restore must write nothing).
    pub fn new(work_dir: &Path) -> Result<TarExternalProvider, Error> {
        let snapshots = Snapshots::new(work_dir);
        Ok(TarExternalProvider {
            snapshots,
            tar: OnceLock::new(),
        })
    }

    /// The GNU tar binary this provider runs.
    pub fn tar_path(&self) -> Result<&Path, Error> {
        match self.tar.get_or_init(locate::locate_gnu_tar) {
            Ok(path) => Ok(path),
            Err(looked) => Err(Error::tar_not_found(looked.clone())),
        }
    }

    /// Writes the archive of `definition` into `target` and returns it complete but not
    /// committed (see [`commit`]). With `snapshot`, tar runs in listed-incremental mode on it.
    fn create_archive<'s>(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        target: Target<'s>,
        snapshot: Option<Listed<'_>>,
        events: &dyn BackupEvents,
    ) -> Result<Archive<'s>, Error> {
        let tar = self.tar_path()?;
        // Without its root the backup would be empty; refuse before touching the old one.
        backup_root(definition).map_err(|e| Error::io(definition.root(), e))?;
        // tar resolves relative paths against its own working directory; pin them down.
        let absolute = snapshot
            .map(|s| std::path::absolute(s.snapshot).map_err(|e| Error::io(s.snapshot, e)))
            .transpose()?;
        let snapshot = snapshot.zip(absolute.as_deref()).map(|(s, path)| Listed {
            snapshot: path,
            check_device: s.check_device,
        });
        // An incremental archive starts with the roots record, which tar must not truncate
        // away: tar then writes to its stdout, after the record (module `prefix`).
        let roots = || {
            snapshot
                .is_some()
                .then(|| prefix::existing_roots(definition.root(), &include_names(definition)))
        };
        let (final_path, overwrite_at_start) = match target {
            Target::Sink { sink, name } => {
                let record = match &roots() {
                    Some(roots) => prefix::record(definition.backup_type, roots)
                        .map_err(|e| Error::io(&name, e))?,
                    None => Vec::new(),
                };
                let archive = std::path::absolute(&name).map_err(|e| Error::io(&name, e))?;
                let args = tar_arguments(
                    definition,
                    compression_strength,
                    &archive,
                    Path::new("-"),
                    snapshot,
                );
                let run = TarRun {
                    tar,
                    args,
                    names: include_names(definition),
                    archive: &name,
                    archive_fd: None,
                    archive_on_stdout: true,
                };
                return sink::run_into_sink(run, &record, sink, events).map(Archive::Sink);
            }
            Target::File {
                final_path,
                overwrite_at_start,
            } => (final_path, overwrite_at_start),
        };
        let mut output = OutputFile::new(final_path, overwrite_at_start);
        // Created (and, as a partial file, locked) here, and written by tar through this
        // descriptor, never by name (see `run::archive_through_fd`). Made before tar starts,
        // too: its compressor would otherwise create it while tar reads the directory, which
        // tar reports as changed when the destination is in the tree.
        let file = output
            .create()
            .map_err(|e| Error::io(output.final_path(), e))?;
        let in_file = |e| Error::io(output.final_path(), e);
        let tar_fd = OwnedFd::from(file.try_clone().map_err(in_file)?);
        let roots = roots();
        let on_stdout = roots.is_some();
        let file_operand = match &roots {
            Some(roots) => {
                prefix::write_record(&file, definition.backup_type, roots).map_err(in_file)?;
                PathBuf::from("-")
            }
            None => run::archive_through_fd(tar_fd.as_raw_fd()),
        };
        let archive =
            std::path::absolute(output.path()).map_err(|e| Error::io(output.path(), e))?;
        let args = tar_arguments(
            definition,
            compression_strength,
            &archive,
            &file_operand,
            snapshot,
        );
        run_tar(
            TarRun {
                tar,
                args,
                names: include_names(definition),
                archive: output.final_path(),
                archive_fd: Some(tar_fd),
                archive_on_stdout: on_stdout,
            },
            events,
        )?;
        Ok(Archive::File(output))
    }

    /// Makes the incremental backup of `definition` at `level` (the next one if `None`) into
    /// what `target` makes of the backup's local path, and commits it: the backup file's path
    /// (`None` for a sink).
    fn make_level<'s>(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        level: Option<u32>,
        target: impl FnOnce(PathBuf) -> Target<'s>,
        events: &dyn BackupEvents,
    ) -> Result<Option<PathBuf>, ProviderError> {
        let id = definition.backup_id.as_str();
        check_backup_id(id)?;
        let level = self.snapshots.resolve_level(id, level)?;
        let final_path = backup_path(definition, Some(level), None)?;
        // Dropped (and so deleted) on any failure below: stored snapshots stay as they were.
        let check_device = check_device_from_env()?;
        let working = self.snapshots.working_copy(id, level)?;
        let working = vanished_tops::drop_from(&self.snapshots, working, definition.root())?;
        // What tar reads is a copy of the previous level's snapshot; at level 0 it makes one.
        let shown = self.snapshots.path(id, level.saturating_sub(1), None);
        let names = SnapshotName::new(working.path(), shown);
        let start = dump_start_time();
        let renamed = names.events(events);
        let archive = self
            .create_archive(
                definition,
                compression_strength,
                target(final_path),
                Some(Listed {
                    snapshot: working.path(),
                    check_device,
                }),
                &renamed,
            )
            .map_err(|e| names.error(e))?;
        if renamed.snapshot_failed() {
            return Err(Error::tar_failed(
                "the snapshot was not written".into(),
                names.shown().display().to_string(),
            )
            .into());
        }
        // Finished and readied before the archive replaces the previous one, so that a
        // failure here (a full disk) leaves both as they were; `archive` removes the new one.
        let mut working = dump_time::lower_dump_time(&self.snapshots, working, start)?;
        working.prepare()?;
        let path = commit(archive)?;
        // Only after the archive is in place: a snapshot must never claim content that no
        // stored backup holds.
        self.snapshots.install(id, level, working)?;
        Ok(path)
    }
}

/// Where tar's archive goes.
enum Target<'s> {
    /// The backup file, written beside the previous backup ([`OutputFile`]).
    File {
        final_path: PathBuf,
        overwrite_at_start: bool,
    },
    /// The host's byte sink; `name` is the backup's local path, for messages only.
    Sink {
        sink: &'s mut dyn BackupSink,
        name: PathBuf,
    },
}

/// A complete archive, not committed yet.
enum Archive<'s> {
    File(OutputFile),
    Sink(&'s mut dyn BackupSink),
}

/// Moves a complete backup into place: its path, or `None` for a sink.
fn commit(archive: Archive<'_>) -> Result<Option<PathBuf>, Error> {
    match archive {
        Archive::File(output) => {
            let final_path = output.final_path().to_path_buf();
            output
                .commit()
                .map(Some)
                .map_err(|e| Error::io(&final_path, e))
        }
        Archive::Sink(sink) => sink.commit().map(|()| None).map_err(Error::host),
    }
}

/// The path a committed backup file has ([`commit`] of a file gives one).
fn committed_path(path: Option<PathBuf>) -> Result<PathBuf, ProviderError> {
    path.ok_or_else(|| ProviderError::other("the backup went to a sink, not a file"))
}

impl ArchiverProvider for TarExternalProvider {
    fn backup_files(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        overwrite_at_start: bool,
        events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError> {
        let final_path = backup_path(definition, None, None)?;
        let archive = self.create_archive(
            definition,
            compression_strength,
            Target::File {
                final_path,
                overwrite_at_start,
            },
            None,
            events,
        )?;
        committed_path(commit(archive)?)
    }

    fn backup_files_incrementally(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        level: Option<u32>,
        overwrite_at_start: bool,
        events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError> {
        let path = self.make_level(
            definition,
            compression_strength,
            level,
            |final_path| Target::File {
                final_path,
                overwrite_at_start,
            },
            events,
        )?;
        committed_path(path)
    }

    aa_provider_kit::snapshot_state_methods!(|self| &self.snapshots);
}

impl BackingUpToSink for TarExternalProvider {
    fn backup_to_sink(
        &self,
        definition: &BackupDefinition,
        compression_strength: Option<u32>,
        level: Option<u32>,
        sink: &mut dyn BackupSink,
        events: &dyn BackupEvents,
    ) -> Result<(), ProviderError> {
        let Some(level) = level else {
            let name = backup_path(definition, None, None)?;
            let archive = self.create_archive(
                definition,
                compression_strength,
                Target::Sink { sink, name },
                None,
                events,
            )?;
            commit(archive)?;
            return Ok(());
        };
        self.make_level(
            definition,
            compression_strength,
            Some(level),
            |name| Target::Sink { sink, name },
            events,
        )
        .map(drop)
    }
}

impl Restoring for TarExternalProvider {
    fn restore(
        &self,
        request: &RestoreRequest,
        events: &dyn ItemEvents,
    ) -> Result<Totals, ProviderError> {
        restore::restore(self.tar_path()?, request, events)
    }
}

impl Verifying for TarExternalProvider {
    fn verify(
        &self,
        archive: &ChainArchive,
        events: &dyn ItemEvents,
    ) -> Result<Totals, ProviderError> {
        verify::verify(self.tar_path()?, archive, events)
    }
}

impl DryRunning for TarExternalProvider {
    fn dry_run(
        &self,
        definition: &BackupDefinition,
        level: Option<u32>,
        events: &dyn ItemEvents,
    ) -> Result<Totals, ProviderError> {
        dry_run::dry_run(self.tar_path()?, &self.snapshots, definition, level, events)
    }
}

/// An include or exclude entry as tar names the member: [`aa_abi::naming::normalise_entry`],
/// with the root spelt `.`.
pub fn normalise_name(name: &[u8]) -> Vec<u8> {
    match aa_abi::naming::normalise_entry(name) {
        b"" => b".".to_vec(),
        entry => entry.to_vec(),
    }
}

fn normalised(paths: impl Iterator<Item = impl AsRef<Path>>) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = paths
        .map(|p| normalise_name(p.as_ref().as_os_str().as_bytes()))
        .collect();
    // Byte order, so the archive layout does not depend on the caller's set ordering.
    names.sort();
    names.dedup();
    names
}

/// The names written to tar's stdin: normalised, sorted by bytes, without duplicates.
pub fn include_names(definition: &BackupDefinition) -> Vec<Vec<u8>> {
    normalised(definition.includes())
}

/// `option` and `value` as one argument (`--file=NAME`), the value's bytes as they are.
pub(crate) fn option_with(option: &str, value: &[u8]) -> OsString {
    let mut bytes = option.as_bytes().to_vec();
    bytes.extend_from_slice(value);
    OsString::from_vec(bytes)
}

/// How tar runs in listed-incremental mode.
#[derive(Debug, Clone, Copy)]
pub struct Listed<'a> {
    /// The snapshot file tar reads and rewrites.
    pub snapshot: &'a Path,
    /// Whether directories are also recognised by device number (see
    /// [`aa_provider_kit::NO_CHECK_DEVICE_VAR`]).
    pub check_device: bool,
}

/// The archive's own backup files as exclude entries, when the destination lies inside the
/// root ([`OwnBackups`]): those in the destination now, `archive`, the file being
/// written, and includes that name one. Exact names suffice: the archive's lock keeps any other run from starting
/// a backup file of it while tar runs.
fn own_backups(definition: &BackupDefinition, archive: &Path) -> Vec<Vec<u8>> {
    let Some(own) = OwnBackups::new(definition) else {
        return Vec::new();
    };
    let Some(dir) = own.relative_destination() else {
        return Vec::new();
    };
    let mut names = own.existing();
    names.extend(archive.file_name().map(OsStr::to_os_string));
    let mut excludes: Vec<Vec<u8>> = names
        .iter()
        .map(|name| normalise_name(dir.join(name).as_os_str().as_bytes()))
        .collect();
    // Includes naming them (`*` with the destination as the root), even one kept aside since
    // the wildcards were expanded.
    let root = definition.root();
    excludes.extend(
        definition
            .includes()
            .filter(|include| own.is_own_include(root, include))
            .map(|include| normalise_name(include.as_os_str().as_bytes())),
    );
    excludes
}

/// The complete tar command line (without the program name). `archive` is the backup file
/// being written; `file_operand` is what tar is told to write (`/dev/fd/N` for that file
/// already open, see `run::archive_through_fd`, or `-` for it as tar's stdout).
pub fn tar_arguments(
    definition: &BackupDefinition,
    compression_strength: Option<u32>,
    archive: &Path,
    file_operand: &Path,
    listed: Option<Listed<'_>>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--create",
        "--format=posix",
        "--verbose",
        "--sort=name",
        "--quoting-style=escape",
        // A ':' in the archive path must not be read as "host:file".
        "--force-local",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    if let Some(option) = compress::tar_option(
        definition.backup_type,
        compression_strength,
        &locate::in_path,
    ) {
        args.push(option.into());
    }
    if let Some(listed) = listed {
        args.push(option_with(
            "--listed-incremental=",
            listed.snapshot.as_os_str().as_bytes(),
        ));
        if !listed.check_device {
            args.push("--no-check-device".into());
        }
    }
    args.push(option_with("--file=", file_operand.as_os_str().as_bytes()));
    args.push(option_with(
        "--directory=",
        definition.root().as_os_str().as_bytes(),
    ));
    let mut excludes = normalised(definition.excludes());
    excludes.extend(own_backups(definition, archive));
    excludes.sort();
    excludes.dedup();
    if !excludes.is_empty() {
        args.push("--anchored".into());
        args.push("--no-wildcards".into());
        // Members under an include of "." are named "./x"; match the exclude in that form too.
        let whole_root = include_names(definition).iter().any(|n| n == b".");
        for exclude in &excludes {
            args.push(option_with("--exclude=", exclude));
            if whole_root && exclude != b"." {
                let mut dotted = b"./".to_vec();
                dotted.extend_from_slice(exclude);
                args.push(option_with("--exclude=", &dotted));
            }
        }
    }
    for option in [
        "--null",
        "--verbatim-files-from",
        "--no-unquote",
        "--files-from=-",
    ] {
        args.push(option.into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise_name(b"./a/b/"), b"a/b");
        assert_eq!(normalise_name(b".//a"), b"a");
        assert_eq!(normalise_name(b"././a//"), b"a");
        assert_eq!(normalise_name(b"./"), b".");
        assert_eq!(normalise_name(b"."), b".");
        assert_eq!(normalise_name(b"/"), b"/");
        assert_eq!(normalise_name(b"-x"), b"-x");
        assert_eq!(normalise_name(b".hidden"), b".hidden");
    }

    #[test]
    fn command_line() {
        let def = BackupDefinition::new("b", BackupType::TarGz, "/dst", "/src")
            .include(["./z", "a/", "-dash", "a"])
            .exclude(["./a/x/", "a/y"]);
        let args = tar_arguments(
            &def,
            Some(9),
            Path::new("/dst/b.tar.gz._partial"),
            Path::new("/dst/b.tar.gz._partial"),
            None,
        );
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        // pigz or gzip, as installed (see `compress`).
        let compress = compress::tar_option(BackupType::TarGz, Some(9), &locate::in_path);
        assert_eq!(
            args,
            [
                "--create",
                "--format=posix",
                "--verbose",
                "--sort=name",
                "--quoting-style=escape",
                "--force-local",
                compress.as_deref().unwrap(),
                "--file=/dst/b.tar.gz._partial",
                "--directory=/src",
                "--anchored",
                "--no-wildcards",
                "--exclude=a/x",
                "--exclude=a/y",
                "--null",
                "--verbatim-files-from",
                "--no-unquote",
                "--files-from=-",
            ]
        );
        assert_eq!(
            include_names(&def),
            [b"-dash".to_vec(), b"a".to_vec(), b"z".to_vec()]
        );
    }

    #[test]
    fn whole_root_include_gets_dotted_excludes() {
        let def = BackupDefinition::new("b", BackupType::Tar, "/dst", "/src")
            .include(["."])
            .exclude(["x"]);
        let listed = |check_device| {
            Some(Listed {
                snapshot: Path::new("/s.snar"),
                check_device,
            })
        };
        let args = tar_arguments(
            &def,
            None,
            Path::new("/a.tar"),
            Path::new("/a.tar"),
            listed(true),
        );
        assert!(!args.contains(&"--no-check-device".into()));
        let unchecked = tar_arguments(
            &def,
            None,
            Path::new("/a.tar"),
            Path::new("/a.tar"),
            listed(false),
        );
        assert!(unchecked.contains(&"--no-check-device".into()));
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert!(args.contains(&"--listed-incremental=/s.snar"));
        assert!(args.contains(&"--exclude=x"));
        assert!(args.contains(&"--exclude=./x"));
        assert!(!args.iter().any(|a| a.starts_with("--gzip")));
    }

    #[test]
    fn identification() {
        let id = TarExternal::identification();
        assert_eq!(id.provider_id.as_str(), "TarExternal");
        assert_eq!(
            id.supported_backup_types().collect::<Vec<_>>(),
            SUPPORTED_TYPES
        );
        assert_eq!(
            id.features_for(BackupType::Tar).unwrap(),
            [ArchiverFeature::Incremental]
        );
        for t in &SUPPORTED_TYPES[1..] {
            let f = id.features_for(*t).unwrap();
            assert!(f.contains(&ArchiverFeature::CompressionStrength));
            assert!(f.contains(&ArchiverFeature::Incremental));
        }
    }
}

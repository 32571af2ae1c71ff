//! The default action: create the backup of each selected archive.
//!
//! Per archive: load its specification, run `command-before-backup` (if it fails, the backup
//! is skipped), work out the level, keep old backups, make the backup with the archiver
//! service, remove obsolete increments, record the level state, run `command-after-backup`.
//! `command-before-all-backups` and `command-after-all-backups` frame the whole run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use aa_abi::error::ProviderError;
use aa_abi::naming::{accessible, backup_file_path};
use aa_abi::{BackupDefinition, BackupEvents, BackupOperationError as E, BackupSubOperation as Op};

use super::archive::{ArchiveContext, ArchiveSettings};
use super::backups::Backups;
use super::journal::{self, journal_path};
use super::keeping::{JournalPlace, Keeping};
use super::levels::{
    check_level_state, save_level_info, saves_level_state, LevelInfo, RestartReason,
};
use super::sink::UploadSink;
use super::{commands, partials, App, Failure, SpecRef};
use crate::config::{Opt, OptionSource};
use crate::destination::{Destination, Store};
use crate::interrupt;
use crate::lock::ArchiveLock;
use crate::progress::Plan;
use crate::report::Report;
use crate::spec;

/// Creates the backups of `selected` (or of every configured archive with `--all`). Returns
/// false if the run as a whole could not be done.
pub fn run(app: &App<'_>, selected: &[SpecRef]) -> bool {
    let report = app.report;
    let ok = create_all(app, selected);
    report.set_label(None);
    if report.is_verbose() {
        report.verbose("");
        if report.errors() > 0 || !ok {
            report.verbose("Backup creation for one or more archives finished with error(s)! Check program's output for details.");
        } else if report.warnings() > 0 {
            report.verbose("Backup creation completed successfully. One or more warnings were shown. Check program's output for details.");
        } else {
            report.verbose("Backup creation completed successfully.");
        }
    }
    ok
}

fn create_all(app: &App<'_>, selected: &[SpecRef]) -> bool {
    let report = app.report;
    let Some(specs) = app.specs_for_processing(selected) else {
        return false;
    };
    let before_all = app.config.string(Opt::CommandBeforeAllBackups);
    if let Err(e) = commands::execute(report, before_all.as_deref()) {
        report.error(&e);
        return false;
    }
    for spec in &specs {
        let label = spec.label();
        report.set_label(Some(&label));
        report.verbose(&format!("\nProcessing \"{label}\"..."));
        make_backup(app, spec);
    }
    report.set_label(None);
    let after_all = app.config.string(Opt::CommandAfterAllBackups);
    if let Err(e) = commands::execute(report, after_all.as_deref()) {
        report.error(&e);
        return false;
    }
    true
}

fn make_backup(app: &App<'_>, spec_ref: &SpecRef) {
    let report = app.report;
    let settings = match app
        .load_spec(&spec_ref.path)
        .and_then(|spec| ArchiveSettings::new(spec, app.config))
    {
        Ok(s) => s,
        Err(e) => return report.error(&e.to_string()),
    };
    // Held until the archive is done, hooks included (see `crate::lock`).
    let _lock = match ArchiveLock::acquire(&app.config.user_config_dir(), settings.name()) {
        Ok(lock) => lock,
        Err(e) => return report.error(&e.to_string()),
    };
    let before = settings.string(Opt::CommandBeforeBackup);
    if let Err(e) = commands::execute(report, before.as_deref()) {
        return report.error(&e);
    }
    match create_backup(app, &settings) {
        Ok(backup) => log::info!("backup created: {}", backup.display()),
        Err(e) => report.error(&format!("Unable to create the backup: {e}")),
    }
    let after = settings.string(Opt::CommandAfterBackup);
    if let Err(e) = commands::execute(report, after.as_deref()) {
        report.error(&e);
    }
}

fn create_backup(app: &App<'_>, settings: &ArchiveSettings<'_>) -> Result<PathBuf, Failure> {
    let report = app.report;
    let journal = journal_path(&app.config.user_config_dir(), settings.name());
    recover_keeping(report, &journal)?;
    let ctx = ArchiveContext::new(app, settings)?;
    check_level_state(app, &ctx)?;
    let info = LevelInfo::compute(app, &ctx)?;
    ctx.report_unsupported_options(report);

    let definition = backup_definition(report, &ctx)?;
    // The provider checked and the store opened before anything is written or renamed.
    check_remote(&ctx)?;
    let backups = Backups::of(&ctx, &definition)?;
    let store = backups.store().zip(backups.destination());
    if store.is_none() {
        partials::remove_abandoned(&definition);
    }
    if aa_provider_kit::relative_destination(&definition).is_some() {
        // Every provider leaves them out (see `aa_provider_kit::OwnBackups`); say so once.
        report.info(&format!(
            "Destination \"{}\" is inside the backed-up tree; this archive's own backup files are not stored.",
            definition.destination.as_path().display()
        ));
    }

    let mut overwrite_at_start = settings.flag(Opt::OverwriteAtStart);
    if overwrite_at_start && store.is_some() {
        // An upload never writes in place: it replaces the old backup only once complete.
        report.verbose("Option \"overwrite-at-start\" has no effect with an object store: the new backup replaces the old one when it is complete.");
        overwrite_at_start = false;
    }
    let compression = match settings.int(Opt::CompressionLevel) {
        Some(level) if ctx.supports(Opt::CompressionLevel) => {
            Some(u32::try_from(level).map_err(|_| {
                Failure::Option(format!(
                    "Compression strength value {level} is out of the interval 0..9."
                ))
            })?)
        }
        _ => None,
    };
    let keep = settings.flag(Opt::KeepOldBackups);
    let number = settings.int(Opt::NumberOfOldBackups).unwrap_or(1);
    let remove_obsolete = settings.flag(Opt::RemoveObsoleteBackups);
    let errors_before = report.errors();
    let events = ReportEvents {
        report,
        root: definition.root.as_path(),
    };

    let incremental = ctx.incremental();
    let next_level = info.next_level.unwrap_or(0);
    if incremental {
        report_restart(report, &info);
        if let Some(configured) = settings.int(Opt::Level) {
            if configured > i64::from(next_level) {
                report.warning(&format!(
                    "Backup level value {configured} is too high. Using level {next_level} instead."
                ));
            }
        }
    }
    let final_path = backup_file_path(
        definition.destination.as_path(),
        settings.name(),
        ctx.backup_type(),
        incremental.then_some(next_level),
        None,
    )
    .ok_or_else(|| Failure::Option("unknown backup type".into()))?;
    let place = JournalPlace {
        path: journal,
        overwrite_at_start,
    };
    if saves_level_state(&ctx) {
        // Last of the checks, as it is the one that writes (and removes) a file: a full or
        // failing disk under the realm is found before the old backups are touched.
        app.storage.probe_write(settings.name())?;
    }
    let mut keeping = Keeping::new(&backups, report, incremental, place);
    if keep {
        keeping.keep(number, next_level, remove_obsolete)?;
    }
    // A Ctrl-C from here on removes the backup being written (see `crate::interrupt`); the
    // keeping's own cleanup then gives the old backups back.
    let _unfinished = (!overwrite_at_start && store.is_none()).then(|| {
        let final_path = final_path.clone();
        interrupt::on_interrupt(move || {
            let removed = partials::remove_own(&final_path);
            (!removed.is_empty()).then(|| format!("removed the unfinished {}", removed.join(", ")))
        })
    });
    // A full backup reads everything included: its total is known beforehand (see
    // `crate::progress` for why an increment's is not).
    let full = !incremental || next_level == 0;
    report.start_progress(full.then(|| Plan {
        root: definition.root.as_path().to_path_buf(),
        includes: definition.includes().map(Path::to_path_buf).collect(),
        excludes: definition.excludes().map(Path::to_path_buf).collect(),
    }));
    let started = Instant::now();
    let level = incremental.then_some(next_level);
    let created = match store {
        Some((store, target)) => {
            let name = file_name(&final_path);
            upload_backup(
                &ctx,
                &definition,
                (store, target),
                &name,
                compression,
                level,
                &events,
            )
        }
        None => write_backup(
            &ctx,
            &definition,
            compression,
            level,
            overwrite_at_start,
            &events,
        ),
    };
    report.finish_progress();
    let (backup, size) = match created {
        Ok(made) => {
            report.backup_done(&made.0, level, made.1, started.elapsed());
            made
        }
        Err(e) => {
            keeping.rollback();
            return Err(e);
        }
    };
    // The backup exists from here on: what fails now is reported as such, and the other steps
    // are still done.
    let made_but = |what: &str, e: Failure| {
        report.error(&format!(
            "The backup \"{}\" was created, but {what}: {}",
            backup.display(),
            e
        ))
    };
    if let Err(e) = keeping.commit() {
        made_but("old kept backups were not all removed", e);
    }
    if incremental && remove_obsolete {
        if let Err(e) = backups.remove_increments(next_level + 1, None) {
            made_but("the obsolete increments were not removed", e);
        }
    }
    if report.errors() > errors_before {
        report.verbose(
            "Error(s) occurred during the backup creation. Please check program's output.",
        );
    }
    if let Err(e) = save_level_info(app, &ctx, &info, size) {
        made_but("its level state was not saved", e);
    }
    Ok(backup)
}

/// A remote destination needs a provider that writes into a host's sink: one that cannot is
/// refused here, before anything changes.
pub fn check_remote(ctx: &ArchiveContext<'_, '_>) -> Result<(), Failure> {
    let target = ctx.target()?;
    if !target.is_remote() {
        return Ok(());
    }
    if !ctx.provider.capabilities().can_backup_to_sink() {
        return Err(Failure::Provider(format!(
            "archiver \"{}\": provider {} cannot write to an object store (\"dest-dir\" is {target}); \
             choose a local dest-dir or an archiver of another provider",
            ctx.archiver, ctx.archiver.provider
        )));
    }
    Ok(())
}

/// Has the provider write the backup into the destination directory; its path and size.
fn write_backup(
    ctx: &ArchiveContext<'_, '_>,
    definition: &BackupDefinition,
    compression: Option<u32>,
    level: Option<u32>,
    overwrite_at_start: bool,
    events: &ReportEvents<'_>,
) -> Result<(PathBuf, u64), Failure> {
    let path = match level {
        Some(_) => ctx.provider.backup_files_incrementally(
            definition,
            compression,
            level,
            overwrite_at_start,
            events,
        ),
        None => ctx
            .provider
            .backup_files(definition, compression, overwrite_at_start, events),
    }?;
    let size = std::fs::metadata(&path)
        .map_err(|e| Failure::Backup(format!("{}: {e}", path.display())))?
        .len();
    Ok((path, size))
}

/// Has the provider stream the backup into an upload to the store, as `name`: it becomes
/// visible when the provider commits it, replacing the previous one; until then (a failure,
/// Ctrl-C) the upload is aborted and the previous backup stays as it was. The backup's URL
/// and its size as the store holds it.
fn upload_backup(
    ctx: &ArchiveContext<'_, '_>,
    definition: &BackupDefinition,
    (store, target): (&Store, &Destination),
    name: &str,
    compression: Option<u32>,
    level: Option<u32>,
    events: &ReportEvents<'_>,
) -> Result<(PathBuf, u64), Failure> {
    let url = target.display_name(name);
    let upload = store.upload(name)?;
    // A signal ends the process before this thread could drop the upload: the signal thread
    // aborts it itself (see `crate::interrupt`), so no multipart upload is left pending.
    let _abort = upload.abort_handle().map(|handle| {
        let url = url.clone();
        interrupt::on_interrupt(move || match handle.abort() {
            Ok(true) => Some(format!("aborted the unfinished upload of {url}")),
            Ok(false) => None,
            Err(e) => Some(format!("unable to abort the unfinished upload: {e}")),
        })
    });
    let mut sink = UploadSink::new(upload);
    let result = ctx
        .provider
        .backup_to_sink(definition, compression, level, &mut sink, events)
        .unwrap_or_else(|| {
            Err(ProviderError::not_implemented(
                "no backup_to_sink capability",
            ))
        });
    if let Err(e) = result {
        // The store's own line names the URL; the provider's only says its sink failed.
        return Err(match sink.error() {
            Some(store_error) => Failure::Destination(store_error.to_string()),
            // The provider failed after its commit (its snapshot could not be installed).
            None if sink.committed() => {
                Failure::Provider(format!("{url} was stored, but {}", e.message()))
            }
            None => e.into(),
        });
    }
    // What the store holds, not what was sent, is what `aa` reports and records.
    let size = store.size(name)?;
    if size != sink.written() {
        return Err(Failure::Destination(format!(
            "{url}: the store holds {size} bytes, but {} were written",
            sink.written()
        )));
    }
    Ok((PathBuf::from(url), size))
}

/// The file name of a backup path, as the store names the object.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What the provider is asked to back up: the root and the destination checked, the include
/// and exclude entries with their wildcards expanded (each problem a warning). Shared with the
/// dry run, so that it lists what this run would store.
pub fn backup_definition(
    report: &Report,
    ctx: &ArchiveContext<'_, '_>,
) -> Result<BackupDefinition, Failure> {
    let settings = ctx.settings;
    let root = settings.spec.path();
    check_root(root)?;
    if !ctx.target()?.is_remote() {
        check_destination(&ctx.destination()?)?;
    }
    let (includes, warnings) = spec::expand_wildcards(root, settings.spec.include_files());
    warnings.iter().for_each(|w| report.warning(w));
    let (excludes, warnings) = spec::expand_wildcards(root, settings.spec.exclude_files());
    warnings.iter().for_each(|w| report.warning(w));
    Ok(
        BackupDefinition::new(settings.name(), ctx.backup_type(), ctx.destination()?, root)
            .include(includes)
            .exclude(excludes),
    )
}

/// Finishes or undoes the keeping of old backups of a run that was stopped (see
/// [`journal`]), before anything else touches the destination.
fn recover_keeping(report: &Report, journal: &Path) -> Result<(), Failure> {
    match journal::recover(journal, false) {
        Ok(None) => Ok(()),
        Ok(Some(recovered)) => {
            report.info(&format!(
                "Recovered from an interrupted run: {}.",
                recovered.describe()
            ));
            Ok(())
        }
        Err(e) => Err(Failure::Keeping(format!(
            "Unable to recover from an interrupted keeping of old backups: {e}"
        ))),
    }
}

/// The archive root must be a directory we can read and enter.
fn check_root(root: &Path) -> Result<(), Failure> {
    check_dir(root, "path", libc::R_OK | libc::X_OK, "accessible")
}

/// The destination must be a directory we can write in. Checked before the provider runs, so
/// the user reads one line naming the option rather than what tar says about a `._partial`
/// file they never named.
fn check_destination(dest: &Path) -> Result<(), Failure> {
    check_dir(dest, "dest-dir", libc::W_OK | libc::X_OK, "writable")
}

fn check_dir(dir: &Path, option: &str, mode: libc::c_int, what: &str) -> Result<(), Failure> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Failure::Directory(format!(
            "Directory \"{shown}\" configured in the \"{option}\" option does not exist."
        ))),
        // A symbolic link loop, say: the reason, not "does not exist".
        Err(e) => Err(Failure::Directory(format!(
            "Directory \"{shown}\" configured in the \"{option}\" option cannot be accessed: {}.",
            aa_abi::error::os_message(&e)
        ))),
        Ok(m) if !m.is_dir() => Err(Failure::Directory(format!(
            "Path \"{shown}\" configured in the \"{option}\" option is not a directory."
        ))),
        Ok(_) if !accessible(dir, mode) => Err(Failure::Directory(format!(
            "Directory \"{shown}\" configured in the \"{option}\" option is not {what}."
        ))),
        Ok(_) => Ok(()),
    }
}

fn report_restart(report: &Report, info: &LevelInfo) {
    let next = info.next_level.unwrap_or(0);
    match info.restart_reason {
        Some(RestartReason::RestartCountLimitReached) => {
            report.warning("Maximal backup level restart count reached. Restarting to level 0.")
        }
        Some(RestartReason::LastFullRestartAgeLimitReached) => {
            report.warning("Maximal backup level full restart age reached. Restarting to level 0.")
        }
        Some(RestartReason::BackupLevelLimitReached) => report.warning(&format!(
            "Maximal backup level reached. Restarting to level {next}."
        )),
        Some(RestartReason::LastRestartAgeLimitReached) => report.warning(&format!(
            "Maximal backup level restart age reached. Restarting to level {next}."
        )),
        Some(RestartReason::NoRestart) | None => {}
    }
}

/// Shows provider events as the original does.
struct ReportEvents<'a> {
    report: &'a Report,
    /// The backup root, where the host looks at a stored object (the events name it only).
    root: &'a Path,
}

impl BackupEvents for ReportEvents<'_> {
    fn file_add(&self, name: &Path) {
        let shown = name.display().to_string();
        self.report.file_stored(&shown, || self.root.join(name));
    }

    fn backup_operation_error(
        &self,
        operation: Op,
        error: E,
        name: Option<&Path>,
        message: Option<&str>,
    ) {
        let name = name.map(|n| n.display().to_string()).unwrap_or_default();
        let message = message.unwrap_or("");
        let report = self.report;
        match (operation, error) {
            (Op::Stat, E::PermissionDenied) => {
                report.error(&format!("Cannot access \"{name}\". Permission denied."))
            }
            (Op::Open, E::PermissionDenied) => {
                report.error(&format!("Cannot open file \"{name}\". Permission denied."))
            }
            (_, E::FileChanged) => {
                report.warning(&format!("File changed as we read it: \"{name}\"."))
            }
            (_, E::SocketIgnored) => report.warning(&format!("Socket ignored: \"{name}\".")),
            (_, E::UnknownTypeIgnored) => {
                report.warning(&format!("Unknown file type ignored: \"{name}\"."))
            }
            (_, E::DirectoryRenamed) => {
                report.verbose(&format!("Directory has been renamed: \"{name}\"."))
            }
            (Op::Finish, E::SomeFilesChanged) => {
                report.warning("Some files were changed during the backup creation.")
            }
            (Op::Unknown | Op::Finish, E::UnknownOsError) => {
                report.error(&format!("A system error occurred: {message}"))
            }
            (Op::Unknown | Op::Finish, _) => report.error(&format!("An error occurred: {message}")),
            (_, E::UnknownOsError) => report.error(&format!(
                "A system error occurred while accessing file \"{name}\": {message}"
            )),
            (_, _) => report.error(&format!(
                "An error occurred while accessing file \"{name}\": {message}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testing::Sandbox;
    use crate::report::Verbosity;

    #[test]
    fn a_backup_is_made_and_its_names_listed_with_verbose() {
        let sb = Sandbox::new();
        let home = sb.spec("home", "");
        let (ok, report, memory) = sb.run(Verbosity::Verbose, |app| {
            run(app, std::slice::from_ref(&home))
        });
        assert!(ok);
        assert_eq!((report.errors(), report.warnings()), (0, 0));
        assert_eq!(sb.dest_files(), ["home.tar"]);
        assert_eq!(sb.backup_content("home.tar"), "a.txt: a\n");
        assert_eq!(
            memory.out(),
            [
                "\nProcessing \"home\"...",
                "a.txt",
                "",
                "Backup creation completed successfully."
            ]
        );
        assert!(memory.err().is_empty(), "{:?}", memory.err());
    }

    #[test]
    fn a_failed_archive_is_reported_on_its_line_and_the_next_is_made() {
        let sb = Sandbox::new();
        let broken = sb.spec("broken", "");
        let home = sb.spec("home", "");
        // `broken` names a root that does not exist: its own specification says so.
        std::fs::write(
            &broken.path,
            std::fs::read_to_string(&broken.path)
                .unwrap()
                .replace("/src\n", "/gone\n"),
        )
        .unwrap();
        let (ok, report, memory) = sb.run(Verbosity::Normal, |app| {
            run(app, &[broken.clone(), home.clone()])
        });
        // The run went on: one archive failed, which the exit code tells.
        assert!(ok);
        assert_eq!(report.errors(), 1);
        let gone = sb.src().with_file_name("gone");
        assert_eq!(
            memory.err(),
            [format!(
                "aa: Error! [broken] Unable to create the backup: Directory \"{}\" configured in \
                 the \"path\" option does not exist.",
                gone.display()
            )]
        );
        assert_eq!(sb.dest_files(), ["home.tar"]);
        assert_eq!(sb.backup_content("home.tar"), "a.txt: a\n");
    }

    #[test]
    fn no_archive_at_all_is_a_warning() {
        let sb = Sandbox::new();
        let (ok, report, memory) = sb.run(Verbosity::Normal, |app| run(app, &[]));
        assert!(ok);
        assert_eq!(report.warnings(), 1);
        assert_eq!(
            memory.err(),
            ["aa: Warning! No configured archive specification files were found."]
        );
        assert!(sb.dest_files().is_empty());
    }
}

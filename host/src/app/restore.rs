//! `--restore`: rebuild an archive's tree from its backups.
//!
//! The host finds the chain ([`super::chain`]), checks the target, chooses a provider that can
//! restore the type ([`super::capable`]) and hands it the whole chain in one call; the provider
//! applies the levels in order, deletions and renames included, and makes the top-level
//! entries exact with each level's roots record (see `aa_provider_kit::roots`). Every member
//! restored is listed with `--verbose`; every problem is an error; the run succeeds only when
//! everything was restored.
//!
//! With an object store as `dest-dir`, the chain is found from the store's listing and the
//! provider reads each backup from the store as a stream, through a pipe
//! ([`super::object_pipes`]); a store error fails the restore, naming the object's URL.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use aa_abi::capability::{ChainArchive, ItemEvents, RestoreRequest};
use aa_abi::PathBytes;

use super::archive::{self, ArchiveContext, ArchiveSettings};
use super::capable::{self, Capability};
use super::chain::{self, Chain, Query};
use super::object_pipes::{ObjectPipes, ShownEvents};
use super::{App, Failure, SpecRef};
use crate::archiver::Archiver;
use crate::config::{Opt, OptionSource};
use crate::destination::{Destination, Store};
use crate::lock::ArchiveLock;
use crate::report::{count, human_bytes, Report};

/// What `--restore` was asked for.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub target: PathBuf,
    pub level: Option<u32>,
    pub keeping_id: Option<String>,
    pub only: Vec<PathBuf>,
    pub overwrite: bool,
}

/// An archive's backups as restore and verify see them.
pub struct Backups {
    pub archiver: Archiver,
    pub chain: Chain,
    /// The object store holding them, `None` for a directory.
    pub remote: Option<Remote>,
}

/// An object store the chain was found in: its levels are read from it as streams.
pub struct Remote {
    pub store: Arc<Store>,
    pub destination: Destination,
}

impl Backups {
    /// What the providers read `archives` (of this chain) through: the archives themselves
    /// for a directory; for an object store, pipes that stream the objects (see
    /// [`super::object_pipes`]), which must live until the providers are done.
    pub fn readable(
        &self,
        archives: &[ChainArchive],
    ) -> Result<(Vec<ChainArchive>, Option<ObjectPipes>), Failure> {
        let Some(remote) = &self.remote else {
            return Ok((archives.to_vec(), None));
        };
        let names: Vec<String> = archives
            .iter()
            .map(|a| chain::file_name(a.path()))
            .collect();
        let pipes =
            ObjectPipes::serve(remote.store.clone(), &remote.destination, &names).map_err(|e| {
                Failure::Directory(format!(
                    "Unable to make the pipes that stream the backups of \"{}\": {e}",
                    remote.destination
                ))
            })?;
        let piped = archives
            .iter()
            .zip(&names)
            .map(|(a, name)| ChainArchive {
                level: a.level,
                backup_type: a.backup_type,
                path: PathBytes::new(pipes.path(name)),
            })
            .collect();
        Ok((piped, Some(pipes)))
    }
}

/// A provider's failure with the pipes named as their objects; a store error met while
/// streaming comes first, since the provider only saw the stream end early.
pub fn provider_failure(pipes: Option<&ObjectPipes>, message: &str) -> String {
    match pipes {
        Some(pipes) => pipes.first_error().unwrap_or_else(|| pipes.shown(message)),
        None => message.to_string(),
    }
}

/// Finds the chain of `settings`' archive (the kept one `keeping_id`, or the current one).
/// The archive's provider tells the current level; when it is not loaded the backup files
/// alone decide, which is said.
pub fn backups(
    app: &App<'_>,
    settings: &ArchiveSettings<'_>,
    keeping_id: Option<&str>,
) -> Result<Backups, Failure> {
    if let Some(id) = keeping_id {
        chain::check_keeping_id(id)?;
    }
    let archiver = settings
        .archiver(Opt::Archiver)
        .ok_or_else(|| Failure::Option("the option \"archiver\" is undefined".to_string()))?;
    let destination = settings
        .path(Opt::DestDir)
        .ok_or_else(|| Failure::Option("the option \"dest-dir\" is undefined".to_string()))?;
    let (incremental, snapshot_level) = match ArchiveContext::new(app, settings) {
        Ok(ctx) => {
            let incremental = ctx.incremental();
            let snapshot_level = if incremental && keeping_id.is_none() {
                ctx.provider
                    .get_max_backup_level(settings.name())?
                    .checked_sub(1)
            } else {
                None
            };
            (incremental, snapshot_level)
        }
        Err(e) => {
            app.report.info(&format!(
                "{e}; the chain is taken from the backup files alone."
            ));
            (settings.flag(Opt::Incremental), None)
        }
    };
    let target = archive::target(&destination)?;
    let remote = match &target {
        Destination::Local(_) => None,
        Destination::S3 { .. } => Some(Remote {
            store: Arc::new(Store::open(&target, &archive::s3_options(settings))?),
            destination: target.clone(),
        }),
    };
    // A store's backups are named by its URL, as the user wrote it in dest-dir.
    let shown = PathBuf::from(target.to_string());
    let query = Query {
        destination: if remote.is_some() {
            &shown
        } else {
            &destination
        },
        name: settings.name(),
        backup_type: archiver.backup_type,
        incremental,
        keeping_id,
        snapshot_level,
    };
    let chain = match &remote {
        None => chain::find(&query)?,
        Some(remote) => {
            let listed = remote.store.list()?;
            let names: Vec<String> = listed.into_iter().map(|o| o.name).collect();
            chain::find_stored(&query, &names)?
        }
    };
    Ok(Backups {
        archiver,
        chain,
        remote,
    })
}

/// Restores the archive of `spec` as `options` say. False when it was not (fully) restored.
pub fn run(app: &App<'_>, spec: &SpecRef, options: &RestoreOptions) -> bool {
    let report = app.report;
    report.set_label(Some(&spec.label()));
    let errors = report.errors();
    let done = restore(app, spec, options);
    if let Err(e) = &done {
        report.error(&format!("Unable to restore: {e}"));
    }
    report.set_label(None);
    done.is_ok() && report.errors() == errors
}

fn restore(app: &App<'_>, spec: &SpecRef, options: &RestoreOptions) -> Result<(), Failure> {
    let report = app.report;
    let settings = app
        .load_spec(&spec.path)
        .and_then(|s| ArchiveSettings::new(s, app.config))
        .map_err(|e| Failure::Option(e.to_string()))?;
    let only = options
        .only
        .iter()
        .map(|p| only_path(p))
        .collect::<Result<Vec<_>, _>>()?;
    let _lock = ArchiveLock::acquire(&app.config.user_config_dir(), settings.name())?;
    let backups = backups(app, &settings, options.keeping_id.as_deref())?;
    let archives = backups.chain.archives(options.level)?;
    let target = &options.target;
    let create = check_target(target, options.overwrite)?;
    let chosen = capable::choose(
        app,
        &backups.archiver.provider,
        backups.archiver.backup_type,
        Capability::Restore,
        true,
    )?;
    report.info(&chosen.describe("Restoring", &backups.archiver.provider));
    if create {
        std::fs::create_dir(target).map_err(|e| {
            Failure::Directory(format!(
                "Unable to create the target \"{}\": {}.",
                target.display(),
                aa_abi::error::os_message(&e)
            ))
        })?;
    }
    let (readable, pipes) = backups.readable(&archives)?;
    let request = RestoreRequest {
        archives: readable.into(),
        target: PathBytes::new(target),
        only: only.iter().map(PathBytes::new).collect(),
        overwrite: options.overwrite,
    };
    let events = Events::new(report);
    let shown = ShownEvents {
        inner: &events,
        pipes: pipes.as_ref(),
    };
    let totals = chosen
        .provider
        .restore(&request, &shown)
        .unwrap_or_else(|| {
            Err(aa_abi::error::ProviderError::other(
                "the provider lost its restore capability",
            ))
        })
        .map_err(|e| Failure::Provider(provider_failure(pipes.as_ref(), &e.to_string())))?;
    if let Some(pipes) = pipes {
        // The provider may have taken a stream that ended early for a complete one.
        let error = pipes.first_error();
        pipes.finish();
        if let Some(error) = error {
            return Err(Failure::Destination(error));
        }
    }
    if totals.problems > events.problems.get() {
        report.error(&format!(
            "{} problems were reported by the provider.",
            totals.problems - events.problems.get()
        ));
    }
    report.info(&format!(
        "Restored {} ({}) from {} into \"{}\"{}.",
        count(totals.items, "member"),
        human_bytes(totals.bytes),
        count(archives.len() as u64, "backup"),
        target.display(),
        if totals.problems > 0 {
            format!(", with {} problems", totals.problems)
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// An `--only` path: relative to the archive root, without `..`; `./` and a trailing `/` are
/// dropped.
fn only_path(path: &Path) -> Result<PathBuf, Failure> {
    let bad = |why: &str| Failure::Option(format!("--only \"{}\": {why}", path.display()));
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => clean.push(c),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad("must be relative to the archive's path"))
            }
            Component::ParentDir => return Err(bad("must not contain \"..\"")),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(bad("names no path below the archive's path"));
    }
    Ok(clean)
}

/// Checks the target: an empty directory, a non-empty one with `overwrite`, or a missing one
/// whose parent exists. `Ok(true)` when it is to be created.
fn check_target(target: &Path, overwrite: bool) -> Result<bool, Failure> {
    let shown = target.display();
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = target
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if parent.is_dir() {
                Ok(true)
            } else {
                Err(Failure::Directory(format!(
                    "--target \"{shown}\": its parent directory \"{}\" does not exist.",
                    parent.display()
                )))
            }
        }
        Err(e) => Err(Failure::Directory(format!(
            "--target \"{shown}\" cannot be accessed: {}.",
            aa_abi::error::os_message(&e)
        ))),
        Ok(m) if m.file_type().is_symlink() && target.is_dir() => check_dir(target, overwrite),
        Ok(m) if !m.is_dir() => Err(Failure::Directory(format!(
            "--target \"{shown}\" is not a directory."
        ))),
        Ok(_) => check_dir(target, overwrite),
    }
}

fn check_dir(target: &Path, overwrite: bool) -> Result<bool, Failure> {
    let shown = target.display();
    let mut entries = std::fs::read_dir(target).map_err(|e| {
        Failure::Directory(format!(
            "--target \"{shown}\" cannot be read: {}.",
            aa_abi::error::os_message(&e)
        ))
    })?;
    if entries.next().is_some() && !overwrite {
        return Err(Failure::Directory(format!(
            "--target \"{shown}\" is not empty; give --overwrite to restore into it anyway."
        )));
    }
    Ok(false)
}

/// Shows what a capability call does: each member with `--verbose`, each problem as an error.
pub struct Events<'a> {
    report: &'a Report,
    pub problems: std::cell::Cell<u64>,
    /// The first problem, for a one-line verdict.
    pub first_problem: std::cell::RefCell<Option<String>>,
    /// Whether members and problems are shown as they come (restore: members with
    /// `--verbose`, problems as errors) or problems kept for the verdict (verify, which shows
    /// them with `--verbose`, and no member).
    quiet_problems: bool,
}

impl<'a> Events<'a> {
    pub fn new(report: &'a Report) -> Events<'a> {
        Events {
            report,
            problems: Default::default(),
            first_problem: Default::default(),
            quiet_problems: false,
        }
    }

    /// Problems kept for the caller's verdict rather than shown as errors.
    pub fn collecting(report: &'a Report) -> Events<'a> {
        Events {
            quiet_problems: true,
            ..Events::new(report)
        }
    }
}

impl ItemEvents for Events<'_> {
    fn item(&self, name: &Path, _size: u64) {
        // A verification's members would bury its one line per backup.
        if !self.quiet_problems {
            self.report.verbose(&name.display().to_string());
        }
    }

    fn problem(&self, name: Option<&Path>, message: &str) {
        self.problems.set(self.problems.get() + 1);
        let text = match name {
            Some(name) => format!("\"{}\": {message}", name.display()),
            None => message.to_string(),
        };
        if self.quiet_problems {
            self.report.verbose(&text);
        } else {
            self.report.error(&text);
        }
        self.first_problem.borrow_mut().get_or_insert(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testing::Sandbox;
    use crate::report::Verbosity;

    fn restore_home(sb: &Sandbox, home: &SpecRef, options: &RestoreOptions) -> (bool, Vec<String>) {
        let (ok, _, memory) = sb.run(Verbosity::Normal, |app| run(app, home, options));
        (ok, memory.err())
    }

    #[test]
    fn the_host_checks_come_before_the_provider_and_name_what_is_wrong() {
        let sb = Sandbox::new();
        let home = sb.spec("home", "incremental = yes");
        let target = sb.src().with_file_name("restored");
        let options = RestoreOptions {
            target: target.clone(),
            ..Default::default()
        };
        let (ok, err) = restore_home(&sb, &home, &options);
        assert!(!ok);
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].contains("no backup of \"home\""), "{err:?}");

        sb.run(Verbosity::Normal, |app| {
            crate::app::create::run(app, std::slice::from_ref(&home))
        });
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), "").unwrap();
        let (ok, err) = restore_home(&sb, &home, &options);
        assert!(!ok);
        assert!(
            err[0].ends_with("is not empty; give --overwrite to restore into it anyway."),
            "{err:?}"
        );

        // The fake has no restore capability: the error names the type and the providers.
        let overwrite = RestoreOptions {
            overwrite: true,
            ..options.clone()
        };
        let (ok, err) = restore_home(&sb, &home, &overwrite);
        assert!(!ok);
        assert_eq!(
            err,
            [
                "aa: Error! [home] Unable to restore: no loaded provider can restore Tar backups \
              (Fake lacks restore_v1)"
            ]
        );
        let bad_only = RestoreOptions {
            only: vec!["../etc".into()],
            ..options
        };
        let (_, err) = restore_home(&sb, &home, &bad_only);
        assert!(
            err[0].ends_with("--only \"../etc\": must not contain \"..\""),
            "{err:?}"
        );
    }

    #[test]
    fn only_paths_are_cleaned() {
        assert_eq!(
            only_path(Path::new("./d/b.txt/")).unwrap(),
            Path::new("d/b.txt")
        );
        assert!(only_path(Path::new("/etc")).is_err());
        assert!(only_path(Path::new(".")).is_err());
    }
}

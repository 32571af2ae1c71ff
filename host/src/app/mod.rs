//! The archiving application: the user actions (create backups, list archives, purge
//! orphaned data, and ours: restore, verify, dry run) on top of the configuration, the archive
//! specifications, the storage and the archiver service.
//!
//! The modules follow the original's split: [`archive`] resolves one archive's options and
//! provider, [`levels`] decides the backup level (incremental levels and their automatic
//! restarting), [`keeping`] renames old backups out of the way (with [`journal`], which lets an
//! interrupted keeping be undone or finished, and [`backups`], which renames and removes them in
//! a directory or an object store), [`partials`] removes abandoned partial backup
//! files, [`commands`] runs the user's hooks, and [`create`], [`list`] and [`purge`] are the
//! original's actions. Ours reach providers through their capabilities: [`chain`] finds the
//! backup files of a chain, [`capable`] chooses the provider that has the capability, and
//! [`restore`], [`verify`] (with [`compare`]) and [`dry_run`] are the actions; the dry run plans
//! with the real run's code ([`levels`], [`keeping`]) in a mode that writes nothing. Every
//! problem with one archive
//! is reported on its own line, prefixed with the archive, and the run goes on with the next;
//! the [`Failure`] cases say what failed.
//!
//! The application knows no terminal and no plugin library: it tells the user everything through
//! a `crate::report::Report` and asks providers through `aa_abi::host::Provider`, which the tests
//! make in process (`Provider::in_process`, with `testing`'s fake provider and a report into
//! memory), so they run through the same ABI layer as a plugin's provider.

pub mod archive;
pub mod backups;
pub mod capable;
pub mod chain;
pub mod commands;
pub mod compare;
pub mod create;
pub mod dry_run;
pub mod journal;
pub mod keeping;
pub mod levels;
pub mod list;
pub mod object_pipes;
pub mod partials;
pub mod purge;
pub mod restore;
pub mod sink;
#[cfg(test)]
mod testing;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use aa_abi::error::ProviderError;

use crate::archiver::ArchiverService;
use crate::config::{Configuration, Opt, OptionSource};
use crate::destination::DestinationError;
use crate::lock::LockError;
use crate::report::Report;
use crate::service::{ServiceAccessor, ServiceError};
use crate::spec::{ArchiveSpec, SpecError, SPEC_EXTENSION};
use crate::storage::{Storage, StorageError};

/// Why one archive's backup could not be made (or finished), each case with its message
/// already phrased for the user. The run reports it on the archive's line and goes on with the
/// next archive; problems with the specification, the lock and the hooks are reported where
/// they happen and never become a `Failure`.
#[derive(Debug)]
pub enum Failure {
    /// An option of the archive is missing or has a value that cannot be used.
    Option(String),
    /// A directory an option names (the archive root, the destination) cannot be used.
    Directory(String),
    /// The archiver provider could not be created, or failed.
    Provider(String),
    /// `aa`'s storage (the archive's realm) cannot be read or written, or holds a bad value.
    Storage(String),
    /// Old backups could not be kept (renamed out of the way), or the keeping of an
    /// interrupted run could not be finished or undone.
    Keeping(String),
    /// The archive's lock is held by another run, or cannot be taken.
    Lock(String),
    /// A file of the backup itself (its size, its name) could not be read.
    Backup(String),
    /// The destination (a directory or an object store) refused or failed an operation.
    Destination(String),
}

impl Failure {
    /// The message for the user.
    pub fn message(&self) -> &str {
        match self {
            Failure::Option(m)
            | Failure::Directory(m)
            | Failure::Provider(m)
            | Failure::Storage(m)
            | Failure::Keeping(m)
            | Failure::Lock(m)
            | Failure::Backup(m)
            | Failure::Destination(m) => m,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl From<ProviderError> for Failure {
    fn from(e: ProviderError) -> Failure {
        Failure::Provider(e.to_string())
    }
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Failure {
        Failure::Provider(e.to_string())
    }
}

impl From<LockError> for Failure {
    fn from(e: LockError) -> Failure {
        Failure::Lock(e.to_string())
    }
}

impl From<DestinationError> for Failure {
    fn from(e: DestinationError) -> Failure {
        Failure::Destination(e.to_string())
    }
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Failure {
        Failure::Storage(e.to_string())
    }
}

/// An archive specification selected for an action: `name` when it was given by name (or
/// found in the archive specifications directory), `None` when given as a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecRef {
    pub name: Option<String>,
    pub path: PathBuf,
}

impl SpecRef {
    /// What messages about this archive are prefixed with.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => self.path.display().to_string(),
        }
    }
}

/// Everything an action needs.
pub struct App<'a> {
    pub report: &'a Report,
    pub services: &'a ServiceAccessor,
    pub config: &'a Configuration,
    pub storage: &'a Storage,
    specs: std::cell::RefCell<BTreeMap<PathBuf, Rc<ArchiveSpec>>>,
}

impl<'a> App<'a> {
    pub fn new(
        report: &'a Report,
        services: &'a ServiceAccessor,
        config: &'a Configuration,
        storage: &'a Storage,
    ) -> App<'a> {
        App {
            report,
            services,
            config,
            storage,
            specs: Default::default(),
        }
    }

    /// The specifications named by the `AA_SPEC` arguments: names (looked up in the archive
    /// specifications directory) first, then paths ending with `.aa`, without repetitions.
    pub fn selected_specs(&self, args: &[String]) -> Vec<SpecRef> {
        let specs_dir = self.config.archive_specs_dir();
        let is_path = |a: &String| has_spec_extension(a);
        let names = args.iter().filter(|a| !is_path(a)).map(|a| SpecRef {
            name: Some(a.clone()),
            path: specs_dir.join(format!("{a}.{SPEC_EXTENSION}")),
        });
        let paths = args.iter().filter(|a| is_path(a)).map(|a| SpecRef {
            name: None,
            path: PathBuf::from(a),
        });
        uniq(names.chain(paths))
    }

    /// Every `.aa` file of the archive specifications directory, sorted by name.
    pub fn configured_specs(&self) -> Result<Vec<SpecRef>, String> {
        let dir = self.config.archive_specs_dir();
        if !dir.is_dir() {
            return Err(format!(
                "Archive specifications directory \"{}\" does not exist.",
                dir.display()
            ));
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut specs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = spec_stem(&file_name) {
                specs.push(SpecRef {
                    name: Some(stem.to_string()),
                    path: dir.join(&file_name),
                });
            }
        }
        specs.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(specs)
    }

    /// The specifications an action works on: the selected ones, plus every configured one
    /// when none is selected or `--all` is given. `None` (after an error) if the configured
    /// ones cannot be listed.
    pub fn specs_for_processing(&self, selected: &[SpecRef]) -> Option<Vec<SpecRef>> {
        if !selected.is_empty() && !self.config.flag(Opt::All) {
            return Some(selected.to_vec());
        }
        match self.configured_specs() {
            Ok(configured) => {
                if configured.is_empty() {
                    self.report
                        .warning("No configured archive specification files were found.");
                }
                Some(uniq(selected.iter().cloned().chain(configured)))
            }
            Err(e) => {
                self.report.error(&format!(
                    "An error occurred while obtaining the list of all archive specification files: {e}"
                ));
                None
            }
        }
    }

    /// Loads (once per run) the specification at `path`; its notes (probable typos) are shown
    /// with `--verbose` only and change nothing else.
    pub fn load_spec(&self, path: &Path) -> Result<Rc<ArchiveSpec>, SpecError> {
        if let Some(spec) = self.specs.borrow().get(path) {
            return Ok(spec.clone());
        }
        let spec = Rc::new(ArchiveSpec::load_with_specs_dir(
            path,
            &self.config.archive_specs_dir(),
        )?);
        for note in spec.notes() {
            self.report.verbose(&format!("Note: {note}"));
        }
        self.specs
            .borrow_mut()
            .insert(path.to_path_buf(), spec.clone());
        Ok(spec)
    }

    /// Names of the archives of the specifications in `specs` that can be read.
    pub fn valid_archive_names(&self, specs: &[SpecRef]) -> BTreeSet<String> {
        specs
            .iter()
            .filter_map(|s| self.load_spec(&s.path).ok())
            .map(|s| s.name().to_string())
            .collect()
    }

    /// Names of the archives that have data stored by `aa` (storage realms) or by an
    /// archiver provider (e.g. snapshot files).
    pub fn stored_archive_names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.storage.realm_names().into_iter().collect();
        for (id, provider) in self.services.get_or_create_services::<ArchiverService>() {
            match provider
                .map_err(Failure::from)
                .and_then(|p| Ok(p.get_stored_backup_ids()?))
            {
                Ok(ids) => names.extend(ids),
                Err(e) => self.report.error(&format!(
                    "Unable to get the list of stored archive names from {id}: {e}"
                )),
            }
        }
        names
    }

    /// Stored archives that no readable specification among `specs` describes.
    pub fn orphaned_archives(&self, specs: &[SpecRef]) -> BTreeSet<String> {
        let valid = self.valid_archive_names(specs);
        self.stored_archive_names()
            .into_iter()
            .filter(|n| !valid.contains(n))
            .collect()
    }
}

/// Whether an `AA_SPEC` argument is a path: it has the `.aa` extension (Python's
/// `os.path.splitext`, so `.aa` alone is a name).
fn has_spec_extension(arg: &str) -> bool {
    let file = arg.rsplit('/').next().unwrap_or(arg);
    spec_stem(file).is_some()
}

/// `NAME` of a file name `NAME.aa` (a leading dot does not start an extension).
fn spec_stem(file_name: &str) -> Option<&str> {
    let stem = file_name.strip_suffix(&format!(".{SPEC_EXTENSION}"))?;
    (!stem.trim_start_matches('.').is_empty()).then_some(stem)
}

fn uniq(specs: impl Iterator<Item = SpecRef>) -> Vec<SpecRef> {
    let mut out: Vec<SpecRef> = Vec::new();
    for s in specs {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_arguments_as_the_original() {
        assert!(has_spec_extension("x.aa"));
        assert!(has_spec_extension("dir/x.aa"));
        assert!(!has_spec_extension("x"));
        assert!(!has_spec_extension(".aa"));
        assert!(!has_spec_extension("dir/.aa"));
        assert!(!has_spec_extension("x.aa.bak"));
        assert_eq!(spec_stem("..aa"), None);
        assert_eq!(spec_stem("a.b.aa"), Some("a.b"));
    }
}

//! The archiving application: turns archive specifications and options into archiver service
//! calls and reports the outcome of each archive.
//!
//! Option priority is the original's: built-in defaults, then the command line, then the
//! `[Archive]` section of the `.aa` file. A problem with one archive is reported on its own line
//! and the other archives of the run still go ahead.

use std::path::{Path, PathBuf};

use aa_abi::{
    ArchiverFeature, BackupDefinition, BackupEvents, BackupOperationError as E,
    BackupSubOperation as Op,
};

use crate::archiver::{Archiver, ArchiverProviderInfo, ArchiverService};
use crate::paths::expand_tilde;
use crate::service::ServiceAccessor;
use crate::spec::{self, ArchiveSpec};
use crate::ui::Ui;

/// The archiver used when neither the command line nor the spec names one.
pub const DEFAULT_ARCHIVER: &str = "targz";

/// Options given on the command line, lower priority than the spec file's.
#[derive(Debug, Default, Clone)]
pub struct CommandLineOptions {
    pub archiver: Option<String>,
    pub compression_level: Option<String>,
    pub dest_dir: Option<PathBuf>,
    pub overwrite_at_start: bool,
}

/// Everything needed to process archives.
pub struct Application<'a> {
    pub ui: &'a Ui,
    pub services: &'a ServiceAccessor,
    pub archive_specs_dir: PathBuf,
    pub options: CommandLineOptions,
}

/// An archive-level failure, already phrased for the user.
struct Failure(String);

impl<T: std::fmt::Display> From<T> for Failure {
    fn from(e: T) -> Failure {
        Failure(e.to_string())
    }
}

impl Application<'_> {
    /// Where the spec for `aa_spec` is: a path if it ends with `.aa`, else a name in the
    /// archive specifications directory.
    pub fn spec_path(&self, aa_spec: &str) -> PathBuf {
        if aa_spec.ends_with(".aa") {
            expand_tilde(Path::new(aa_spec))
        } else {
            self.archive_specs_dir.join(format!("{aa_spec}.aa"))
        }
    }

    /// Creates the backup of every spec, in order. Returns false if anything failed.
    pub fn create_backups(&self, aa_specs: &[String]) {
        for aa_spec in aa_specs {
            let label = Path::new(aa_spec)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| aa_spec.clone());
            let path = self.spec_path(aa_spec);
            match ArchiveSpec::load_with_specs_dir(&path, &self.archive_specs_dir) {
                Err(e) => self.ui.error(Some(&label), &e.to_string()),
                Ok(spec) => {
                    let name = spec.name().to_string();
                    self.ui.verbose(&format!("Processing \"{name}\"..."));
                    match self.create_backup(&spec) {
                        Ok(backup) => {
                            log::info!("[{name}] backup created: {}", backup.display());
                            self.ui
                                .verbose(&format!("Backup created: {}", backup.display()));
                        }
                        Err(Failure(message)) => self.ui.error(Some(&name), &message),
                    }
                }
            }
        }
    }

    fn create_backup(&self, spec: &ArchiveSpec) -> Result<PathBuf, Failure> {
        let name = spec.name();
        let archiver = match (
            spec.archive_option("archiver"),
            self.options.archiver.as_deref(),
        ) {
            (Some(name), _) => Archiver::parse(name).map_err(|e| {
                Failure(format!(
                    "{}: option \"archiver\": {e}",
                    spec.file().display()
                ))
            })?,
            (None, Some(name)) => {
                Archiver::parse(name).map_err(|e| Failure(format!("option --archiver: {e}")))?
            }
            (None, None) => {
                Archiver::parse(DEFAULT_ARCHIVER).expect("the default archiver name is valid")
            }
        };
        let provider = self
            .services
            .get_or_create_service::<ArchiverService>(&archiver.provider)?;
        let info = self.provider_info(&archiver.provider);
        let features = info
            .and_then(|i| i.identification.features_for(archiver.backup_type))
            .ok_or_else(|| {
                Failure(format!(
                    "archiver \"{archiver}\": provider {} does not make {} backups",
                    archiver.provider, archiver.backup_type
                ))
            })?;

        let compression = self.compression_level(spec, &archiver, features)?;
        let overwrite_at_start = spec
            .bool_option("overwrite-at-start")?
            .unwrap_or(self.options.overwrite_at_start);
        let destination = match spec.archive_option("dest-dir") {
            Some(dir) => expand_tilde(Path::new(dir)),
            None => match &self.options.dest_dir {
                Some(dir) => expand_tilde(dir),
                None => std::env::current_dir()?,
            },
        };

        let root = spec.path();
        if !root.is_dir() {
            return Err(Failure(format!(
                "The archive root \"{}\" is not an accessible directory.",
                root.display()
            )));
        }
        let (includes, warnings) = spec::expand_wildcards(root, spec.include_files());
        for w in warnings {
            self.ui.warning(Some(name), &w);
        }
        let (excludes, warnings) = spec::expand_wildcards(root, spec.exclude_files());
        for w in warnings {
            self.ui.warning(Some(name), &w);
        }
        let definition = BackupDefinition::new(name, archiver.backup_type, &destination, root)
            .include(includes)
            .exclude(excludes);
        let events = UiEvents {
            ui: self.ui,
            archive: name,
        };
        let backup = provider
            .backup_files(&definition, compression, overwrite_at_start, &events)
            .map_err(|e| Failure(format!("Unable to create the backup: {e}")))?;
        Ok(backup)
    }

    /// The compression strength to pass, `None` for the compressor's default. A level for an
    /// archiver without that feature is reported and ignored, as the original does.
    fn compression_level(
        &self,
        spec: &ArchiveSpec,
        archiver: &Archiver,
        features: &[ArchiverFeature],
    ) -> Result<Option<u32>, Failure> {
        let level = match spec.int_option("compression-level")? {
            Some(level) => Some(level),
            None => match self.options.compression_level.as_deref() {
                Some(raw) => spec::parse_int("compression-level", raw)?,
                None => None,
            },
        };
        let Some(level) = level else { return Ok(None) };
        if !(0..=9).contains(&level) {
            return Err(Failure(format!(
                "option \"compression-level\": {level} is outside 0..9"
            )));
        }
        if !features.contains(&ArchiverFeature::CompressionStrength) {
            self.ui.warning(
                Some(spec.name()),
                &format!("Option \"compression-level\" is not supported by the archiver of type \"{archiver}\"."),
            );
            return Ok(None);
        }
        Ok(Some(level as u32))
    }

    fn provider_info(&self, provider: &str) -> Option<&ArchiverProviderInfo> {
        self.services
            .provider_identifications::<ArchiverService>()
            .into_iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(provider))
            .map(|(_, info)| info)
    }
}

/// Shows provider events as the original does.
struct UiEvents<'a> {
    ui: &'a Ui,
    archive: &'a str,
}

impl BackupEvents for UiEvents<'_> {
    fn file_add(&self, name: &Path) {
        self.ui.verbose(&name.display().to_string());
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
        let archive = Some(self.archive);
        match (operation, error) {
            (Op::Stat, E::PermissionDenied) => self.ui.error(
                archive,
                &format!("Cannot access \"{name}\". Permission denied."),
            ),
            (Op::Open, E::PermissionDenied) => self.ui.error(
                archive,
                &format!("Cannot open file \"{name}\". Permission denied."),
            ),
            (_, E::FileChanged) => self
                .ui
                .warning(archive, &format!("File changed as we read it: \"{name}\".")),
            (_, E::SocketIgnored) => self
                .ui
                .warning(archive, &format!("Socket ignored: \"{name}\".")),
            (_, E::UnknownTypeIgnored) => self
                .ui
                .warning(archive, &format!("Unknown file type ignored: \"{name}\".")),
            (_, E::DirectoryRenamed) => self
                .ui
                .verbose(&format!("Directory has been renamed: \"{name}\".")),
            (Op::Finish, E::SomeFilesChanged) => self.ui.warning(
                archive,
                "Some files were changed during the backup creation.",
            ),
            (Op::Unknown | Op::Finish, E::UnknownOsError) => self
                .ui
                .error(archive, &format!("A system error occurred: {message}")),
            (Op::Unknown | Op::Finish, _) => self
                .ui
                .error(archive, &format!("An error occurred: {message}")),
            (_, E::UnknownOsError) => self.ui.error(
                archive,
                &format!("A system error occurred while accessing file \"{name}\": {message}"),
            ),
            (_, _) => self.ui.error(
                archive,
                &format!("An error occurred while accessing file \"{name}\": {message}"),
            ),
        }
    }
}

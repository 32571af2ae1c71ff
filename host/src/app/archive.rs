//! One archive's options and archiver: the `[Archive]` section of its `.aa` file layered over
//! the configuration, the provider that makes its backups and the features that provider has
//! for the backup type.

use aa_abi::host::Provider;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use aa_abi::{ArchiverFeature, BackupType};

use super::{App, Failure};
use crate::archiver::{Archiver, ArchiverService};
use crate::config::{parse_value, Configuration, Opt, OptionSource, RawOptions, Value};
use crate::destination::{Destination, S3Options, Store};
use crate::report::Report;
use crate::spec::{ArchiveSpec, SpecError};

/// An archive's options: its `.aa` file first, then the configuration.
pub struct ArchiveSettings<'a> {
    pub spec: Rc<ArchiveSpec>,
    own: RawOptions,
    config: &'a Configuration,
}

impl OptionSource for ArchiveSettings<'_> {
    fn raw(&self, opt: Opt) -> Option<&Value> {
        match self.own.entry(opt) {
            Some(value) => value,
            None => self.config.raw(opt),
        }
    }
}

impl<'a> ArchiveSettings<'a> {
    /// Converts the `[Archive]` options of `spec`; a bad value names the file and line.
    pub fn new(spec: Rc<ArchiveSpec>, config: &'a Configuration) -> Result<Self, SpecError> {
        let mut own = RawOptions::new();
        for (name, text, line) in spec.archive_entries() {
            // The spec reader only lets the archive options through.
            let Some(opt) = Opt::from_name(name) else {
                continue;
            };
            let value = parse_value(opt, text).map_err(|e| spec.value_error(line, e))?;
            own.set(opt, value);
        }
        Ok(ArchiveSettings { spec, own, config })
    }

    /// The archive name.
    pub fn name(&self) -> &str {
        self.spec.name()
    }
}

/// The archiver side of an archive: which provider makes its backups, and how.
pub struct ArchiveContext<'s, 'a> {
    pub settings: &'s ArchiveSettings<'a>,
    pub archiver: Archiver,
    pub provider: Rc<Provider>,
    features: Vec<ArchiverFeature>,
}

impl<'s, 'a> ArchiveContext<'s, 'a> {
    /// Finds (creating it if needed) the provider of the archive's archiver.
    pub fn new(app: &App<'_>, settings: &'s ArchiveSettings<'a>) -> Result<Self, Failure> {
        let archiver = settings
            .archiver(Opt::Archiver)
            .ok_or_else(|| Failure::Option("the option \"archiver\" is undefined".to_string()))?;
        let provider = app
            .services
            .get_or_create_service::<ArchiverService>(&archiver.provider)?;
        let features = app
            .services
            .provider_identifications::<ArchiverService>()
            .into_iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(&archiver.provider))
            .and_then(|(_, info)| info.identification.features_for(archiver.backup_type))
            .map(<[ArchiverFeature]>::to_vec)
            .ok_or_else(|| {
                Failure::Option(format!(
                    "archiver \"{archiver}\": provider {} does not make {} backups",
                    archiver.provider, archiver.backup_type
                ))
            })?;
        Ok(ArchiveContext {
            settings,
            archiver,
            provider,
            features,
        })
    }

    pub fn backup_type(&self) -> BackupType {
        self.archiver.backup_type
    }

    /// Whether the archiver can honour `opt` (only some options depend on a feature).
    pub fn supports(&self, opt: Opt) -> bool {
        match opt {
            Opt::CompressionLevel => self
                .features
                .contains(&ArchiverFeature::CompressionStrength),
            Opt::Incremental => self.features.contains(&ArchiverFeature::Incremental),
            _ => true,
        }
    }

    /// Warns about options that are set but that the archiver cannot honour; they are
    /// ignored, as in the original.
    pub fn report_unsupported_options(&self, report: &Report) {
        for opt in [Opt::CompressionLevel, Opt::Incremental] {
            if self.settings.is_present(opt) && !self.supports(opt) {
                report.warning(&format!(
                    "Option \"{opt}\" is not supported by the archiver of type \"{}\".",
                    self.archiver
                ));
            }
        }
    }

    /// Whether an incremental backup is asked for and possible.
    pub fn incremental(&self) -> bool {
        self.settings.flag(Opt::Incremental) && self.supports(Opt::Incremental)
    }

    /// Where the backups go, as a path: a directory, or the `s3://` URL as written (see
    /// [`ArchiveContext::target`]).
    pub fn destination(&self) -> Result<PathBuf, Failure> {
        self.settings
            .path(Opt::DestDir)
            .ok_or_else(|| Failure::Option("the option \"dest-dir\" is undefined".to_string()))
    }

    /// Where the backups go: a directory or an object store.
    pub fn target(&self) -> Result<Destination, Failure> {
        target(&self.destination()?)
    }

    /// Opens the destination, with the archive's `s3-*` options for an object store.
    pub fn open_store(&self) -> Result<Store, Failure> {
        let destination = self.target()?;
        Ok(Store::open(&destination, &s3_options(self.settings))?)
    }
}

/// The destination a `dest-dir` path names: an `s3://` URL, or else a directory.
pub fn target(dest_dir: &Path) -> Result<Destination, Failure> {
    match dest_dir.to_str() {
        Some(text) => Destination::parse(text)
            .map_err(|e| Failure::Option(format!("the option \"dest-dir\": {e}"))),
        // Not UTF-8: no URL.
        None => Ok(Destination::Local(dest_dir.to_path_buf())),
    }
}

/// How to reach an object store, from the `s3-*` options; the rest (credentials, and what
/// these leave unset) comes from the environment.
pub fn s3_options(options: &dyn OptionSource) -> S3Options {
    S3Options {
        endpoint: options.string(Opt::S3Endpoint).filter(|e| !e.is_empty()),
        region: options.string(Opt::S3Region).filter(|r| !r.is_empty()),
        path_style: options
            .is_present(Opt::S3PathStyle)
            .then(|| options.flag(Opt::S3PathStyle)),
        ..S3Options::default()
    }
}

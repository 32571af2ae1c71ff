//! In-process test bench of the application: a fake archiver provider that writes one file per
//! backup under the names real providers use, and a sandbox (configuration, storage, a
//! specification, source and destination directories) whose runs report into memory.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use aa_abi::error::ProviderError;
use aa_abi::host::Provider;
use aa_abi::plugin::{backup_path, ArchiverProvider};
use aa_abi::BackupEvents;
use aa_abi::{ArchiverFeature, BackupDefinition, ProviderIdentification};

use super::{App, SpecRef};
use crate::archiver::{ArchiverProviderInfo, ArchiverService};
use crate::config::{self, Configuration, Locations, RawOptions};
use crate::report::memory::Memory;
use crate::report::{Report, Verbosity};
use crate::service::ServiceAccessor;
use crate::storage::Storage;

/// The provider id specifications name the fake by (`archiver = tar@Fake`).
pub(crate) const FAKE: &str = "Fake";

/// A provider whose backup is one file holding a line `NAME: CONTENT` for each top-level file
/// of the root, and which remembers the levels made as a real incremental provider's snapshots
/// would. Clones share that memory, so it outlives the provider of one run. Removing, finding
/// and keeping backups is the ABI's base behaviour (by file name), as for most providers.
#[derive(Clone, Default)]
pub(crate) struct FakeArchiver {
    /// The maximal backup level of each archive (the next level it can make).
    levels: Arc<Mutex<BTreeMap<String, u32>>>,
}

fn io(e: std::io::Error) -> ProviderError {
    ProviderError::other(e.to_string())
}

impl FakeArchiver {
    fn identification() -> ProviderIdentification {
        ProviderIdentification::new(FAKE, "a fake for tests")
            .with_type(aa_abi::BackupType::Tar, &[ArchiverFeature::Incremental])
    }

    fn levels(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u32>> {
        self.levels.lock().expect("the fake's levels")
    }

    fn write(
        &self,
        definition: &BackupDefinition,
        level: Option<u32>,
        events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError> {
        let mut names: Vec<String> = fs::read_dir(definition.root.as_path())
            .map_err(io)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        names.sort();
        let mut content = String::new();
        for name in &names {
            events.file_add(Path::new(name));
            let text = fs::read_to_string(definition.root.as_path().join(name)).unwrap_or_default();
            content.push_str(&format!("{name}: {text}\n"));
        }
        let target = backup_path(definition, level, None)?;
        fs::write(&target, content).map_err(io)?;
        Ok(target)
    }
}

impl ArchiverProvider for FakeArchiver {
    fn backup_files(
        &self,
        definition: &BackupDefinition,
        _compression_strength: Option<u32>,
        _overwrite_at_start: bool,
        events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError> {
        self.write(definition, None, events)
    }

    fn backup_files_incrementally(
        &self,
        definition: &BackupDefinition,
        _compression_strength: Option<u32>,
        level: Option<u32>,
        _overwrite_at_start: bool,
        events: &dyn BackupEvents,
    ) -> Result<PathBuf, ProviderError> {
        let id = definition.backup_id.to_string();
        let level = level.unwrap_or_else(|| self.get_max_backup_level(&id).unwrap_or(0));
        let made = self.write(definition, Some(level), events)?;
        self.levels().insert(id, level + 1);
        Ok(made)
    }

    fn remove_backup_increments(
        &self,
        definition: &BackupDefinition,
        level: Option<u32>,
        keeping_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        let from = level.unwrap_or(0);
        for level in from..32 {
            let _ = fs::remove_file(backup_path(definition, Some(level), keeping_id)?);
        }
        Ok(())
    }

    fn does_any_backup_level_exist(
        &self,
        definition: &BackupDefinition,
        from_level: u32,
        keeping_id: Option<&str>,
    ) -> Result<bool, ProviderError> {
        for level in from_level..32 {
            if backup_path(definition, Some(level), keeping_id)?.is_file() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn get_max_backup_level(&self, backup_id: &str) -> Result<u32, ProviderError> {
        Ok(self.levels().get(backup_id).copied().unwrap_or(0))
    }

    fn get_stored_backup_ids(&self) -> Result<Vec<String>, ProviderError> {
        Ok(self.levels().keys().cloned().collect())
    }

    fn purge_stored_backup_data(&self, backup_id: &str) -> Result<(), ProviderError> {
        self.levels().remove(backup_id);
        Ok(())
    }
}

/// A temporary home for runs of the application with the fake provider: `src/` (the archive
/// root, holding `a.txt`), `dest/` and `config/` (the user configuration directory).
pub(crate) struct Sandbox {
    dir: tempfile::TempDir,
    fake: FakeArchiver,
}

impl Sandbox {
    pub(crate) fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for sub in ["src", "dest", "config/archive_specs"] {
            fs::create_dir_all(dir.path().join(sub)).expect("sandbox directories");
        }
        fs::write(dir.path().join("src/a.txt"), "a").expect("a source file");
        Sandbox {
            dir,
            fake: FakeArchiver::default(),
        }
    }

    pub(crate) fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }

    pub(crate) fn dest(&self) -> PathBuf {
        self.dir.path().join("dest")
    }

    /// Writes the specification `name` with these `[Archive]` option lines (the content is
    /// every file of `src/`, the archiver the fake's `tar`).
    pub(crate) fn spec(&self, name: &str, options: &str) -> SpecRef {
        let path = self
            .dir
            .path()
            .join(format!("config/archive_specs/{name}.aa"));
        let text = format!(
            "[Content]\npath = {}\ninclude-files = *\nexclude-files =\n[Archive]\n\
             dest-dir = {}\narchiver = tar@{FAKE}\n{options}\n",
            self.src().display(),
            self.dest().display()
        );
        fs::write(&path, text).expect("the specification");
        SpecRef {
            name: Some(name.to_string()),
            path,
        }
    }

    /// The file names in `dest/`, sorted.
    /// What the fake stored in the backup `file` of `dest/`.
    pub(crate) fn backup_content(&self, file: &str) -> String {
        fs::read_to_string(self.dest().join(file)).expect("the backup")
    }

    /// Sets the content of the source file `a.txt`.
    pub(crate) fn write_source(&self, content: &str) {
        fs::write(self.src().join("a.txt"), content).expect("the source file");
    }

    pub(crate) fn dest_files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dest())
            .expect("the destination")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// Runs `action` on an application of this sandbox (a fresh configuration, storage and
    /// report each time, the same fake provider); returns its result and what it reported.
    pub(crate) fn run<T>(
        &self,
        verbosity: Verbosity,
        action: impl FnOnce(&App<'_>) -> T,
    ) -> (T, Report, Memory) {
        self.run_with(&RawOptions::new(), verbosity, action)
    }

    /// [`Sandbox::run`] with options given on the command line.
    pub(crate) fn run_with<T>(
        &self,
        command_line: &RawOptions,
        verbosity: Verbosity,
        action: impl FnOnce(&App<'_>) -> T,
    ) -> (T, Report, Memory) {
        let locations = Locations {
            system_config_file: self.dir.path().join("no-system.conf"),
            default_user_config_dir: self.dir.path().join("config"),
        };
        let config: Configuration =
            config::load(command_line, &locations).expect("the configuration");
        let (storage, _) = Storage::open(&config.user_config_dir()).expect("the storage");
        let mut services = ServiceAccessor::new(config.user_config_dir());
        let fake = self.fake.clone();
        services
            .register_service::<ArchiverService>(
                FAKE,
                ArchiverProviderInfo {
                    identification: FakeArchiver::identification(),
                    library: PathBuf::new(),
                    capabilities: aa_abi::capability::Capabilities::none(),
                },
                Box::new(move |_| {
                    Ok(Rc::new(Provider::in_process(
                        fake.clone(),
                        FakeArchiver::identification(),
                    )))
                }),
            )
            .expect("the fake registers");
        let (report, memory) = Memory::report(verbosity);
        let result = {
            let app = App::new(&report, &services, &config, &storage);
            action(&app)
        };
        (result, report, memory)
    }
}

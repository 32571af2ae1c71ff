//! The configuration options, where their values come from and which value wins.
//!
//! Every option of the original `aa` 2.0.6 is listed in [`Opt`] with its type. Values are
//! gathered in layers, each replacing the values of the one below: built-in defaults, the
//! system configuration file (`/etc/aa/aa.conf`), the user configuration file
//! (`<user-config-dir>/aa.conf`), the command line and, for one archive, the `[Archive]`
//! section of its `.aa` file. A value that is set but empty (`dest-dir =`) means "undefined"
//! and still hides the layers below, as in the original.
//!
//! Reading an option then applies the original's precedence between its forms: a present
//! `force-X` wins over everything, a true `no-X` turns `X` off, and only then does the normal
//! form count. Because `force-*` and `no-*` cannot be written in a `.aa` file (and `no-*` not in
//! a configuration file either), this gives "configuration files < command line < `.aa` file
//! < `--force-*`", with a `--no-*` beating its positive form.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::archiver::Archiver;
use crate::ini::{Ini, IniError, IniOptions};
use crate::paths::expand_tilde;
use crate::values::{parse_bool, parse_int, ValueError};

/// Name of the configuration files.
pub(crate) const CONFIG_FILE_NAME: &str = "aa.conf";
/// The system configuration file.
pub(crate) const SYSTEM_CONFIG_FILE: &str = "/etc/aa/aa.conf";
/// Overrides [`SYSTEM_CONFIG_FILE`]; meant for tests and relocated installations.
pub(crate) const SYSTEM_CONFIG_ENV: &str = "AA_SYSTEM_CONFIG_FILE";

const SECTION_GENERAL: &str = "General";
const SECTION_ARCHIVE: &str = "Archive";

/// The type of an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OptKind {
    Bool,
    Int,
    Str,
    /// A path; `~` is expanded.
    Path,
    Archiver,
}

macro_rules! options {
    ($( $(#[$m:meta])* $variant:ident = $name:literal : $kind:ident ),+ $(,)?) => {
        /// A configuration option of the original program.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Opt {
            $( $(#[$m])* $variant, )+
        }

        impl Opt {
            /// Every option, in the original's order.
            pub(crate) const ALL: &'static [Opt] = &[$(Opt::$variant),+];

            /// The option's name as written in files and (with `--`) on the command line.
            pub(crate) fn name(self) -> &'static str {
                match self { $(Opt::$variant => $name,)+ }
            }

            pub(crate) fn kind(self) -> OptKind {
                match self { $(Opt::$variant => OptKind::$kind,)+ }
            }
        }
    };
}

options! {
    Archiver = "archiver": Archiver,
    CompressionLevel = "compression-level": Int,
    DestDir = "dest-dir": Path,
    OverwriteAtStart = "overwrite-at-start": Bool,
    Incremental = "incremental": Bool,
    Level = "level": Int,
    Restarting = "restarting": Bool,
    RestartAfterLevel = "restart-after-level": Int,
    RestartAfterAge = "restart-after-age": Int,
    FullRestartAfterCount = "full-restart-after-count": Int,
    FullRestartAfterAge = "full-restart-after-age": Int,
    MaxRestartLevelSize = "max-restart-level-size": Int,
    RemoveObsoleteBackups = "remove-obsolete-backups": Bool,
    KeepOldBackups = "keep-old-backups": Bool,
    NumberOfOldBackups = "number-of-old-backups": Int,
    CommandBeforeAllBackups = "command-before-all-backups": Str,
    CommandAfterAllBackups = "command-after-all-backups": Str,
    CommandBeforeBackup = "command-before-backup": Str,
    CommandAfterBackup = "command-after-backup": Str,
    /// An object store's URL (`http://127.0.0.1:9000`), for an `s3://` destination; ours.
    S3Endpoint = "s3-endpoint": Str,
    /// An object store's region, for an `s3://` destination; ours.
    S3Region = "s3-region": Str,
    /// Path-style addressing of an object store (MinIO-like servers); ours.
    S3PathStyle = "s3-path-style": Bool,
    /// A count on the command line (`-vv`), an integer in files.
    Verbose = "verbose": Int,
    Quiet = "quiet": Bool,
    All = "all": Bool,
    ArchiveSpecsDir = "archive-specs-dir": Path,
    UserConfigFile = "user-config-file": Path,
    UserConfigDir = "user-config-dir": Path,
    ForceArchiver = "force-archiver": Archiver,
    ForceIncremental = "force-incremental": Bool,
    ForceRestarting = "force-restarting": Bool,
    ForceCompressionLevel = "force-compression-level": Int,
    ForceDestDir = "force-dest-dir": Path,
    ForceCommandBeforeBackup = "force-command-before-backup": Str,
    ForceCommandAfterBackup = "force-command-after-backup": Str,
    ForceOverwriteAtStart = "force-overwrite-at-start": Bool,
    NoIncremental = "no-incremental": Bool,
    NoRestarting = "no-restarting": Bool,
    NoRemoveObsoleteBackups = "no-remove-obsolete-backups": Bool,
    NoKeepOldBackups = "no-keep-old-backups": Bool,
    NoAll = "no-all": Bool,
    NoOverwriteAtStart = "no-overwrite-at-start": Bool,
}

impl Opt {
    /// The option named `name` (exact spelling).
    pub(crate) fn from_name(name: &str) -> Option<Opt> {
        Opt::ALL.iter().copied().find(|o| o.name() == name)
    }

    /// The `force-X` form of this option, if it has one.
    pub(crate) fn force_form(self) -> Option<Opt> {
        Opt::from_name(&format!("force-{}", self.name()))
    }

    /// The `no-X` form of this option, if it has one.
    pub(crate) fn negation_form(self) -> Option<Opt> {
        Opt::from_name(&format!("no-{}", self.name()))
    }

    /// Options a `.aa` file may set in its `[Archive]` section; the specification reader
    /// lists them by name, and a test keeps the two lists the same.
    #[cfg(test)]
    const ARCHIVE_SPEC: [Opt; 19] = [
        Opt::Archiver,
        Opt::CompressionLevel,
        Opt::DestDir,
        Opt::OverwriteAtStart,
        Opt::Incremental,
        Opt::Restarting,
        Opt::RestartAfterLevel,
        Opt::RestartAfterAge,
        Opt::FullRestartAfterCount,
        Opt::FullRestartAfterAge,
        Opt::MaxRestartLevelSize,
        Opt::RemoveObsoleteBackups,
        Opt::KeepOldBackups,
        Opt::NumberOfOldBackups,
        Opt::CommandBeforeBackup,
        Opt::CommandAfterBackup,
        Opt::S3Endpoint,
        Opt::S3Region,
        Opt::S3PathStyle,
    ];

    /// Whether the option may appear in a configuration file (`user_file`: the user's one,
    /// which cannot move the user configuration itself).
    fn allowed_in_config_file(self, user_file: bool) -> bool {
        let run_only = matches!(
            self,
            Opt::Level
                | Opt::All
                | Opt::NoIncremental
                | Opt::NoRestarting
                | Opt::NoRemoveObsoleteBackups
                | Opt::NoKeepOldBackups
                | Opt::NoAll
                | Opt::NoOverwriteAtStart
        );
        let user_location = matches!(self, Opt::UserConfigFile | Opt::UserConfigDir);
        let moves_user_config = user_file && user_location;
        !(run_only || moves_user_config)
    }
}

impl fmt::Display for Opt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A typed option value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
    Path(PathBuf),
    Archiver(Archiver),
}

/// Converts the text of `opt` to its type. An empty text means "undefined" (`None`), except
/// for strings, where it is the empty string.
pub(crate) fn parse_value(opt: Opt, text: &str) -> Result<Option<Value>, ValueError> {
    let name = opt.name();
    if text.is_empty() && opt.kind() != OptKind::Str {
        return Ok(None);
    }
    Ok(match opt.kind() {
        OptKind::Str => Some(Value::Str(text.to_string())),
        OptKind::Bool => parse_bool(name, text)?.map(Value::Bool),
        OptKind::Int => parse_int(name, text)?.map(Value::Int),
        OptKind::Path => Some(Value::Path(expand_tilde(Path::new(text)))),
        OptKind::Archiver => match Archiver::parse(text) {
            Ok(a) => Some(Value::Archiver(a)),
            Err(_) => {
                return Err(ValueError::new(
                    name,
                    text,
                    "tar, targz, tarbz2, tarxz or tarzst, optionally followed by _internal or @PROVIDER",
                ))
            }
        },
    })
}

/// The values one source sets. `Some(None)` records an option set to "undefined", which hides
/// the sources below it.
#[derive(Debug, Clone, Default)]
pub struct RawOptions {
    values: BTreeMap<Opt, Option<Value>>,
}

impl RawOptions {
    pub(crate) fn new() -> RawOptions {
        RawOptions::default()
    }

    pub(crate) fn set(&mut self, opt: Opt, value: Option<Value>) {
        self.values.insert(opt, value);
    }

    /// `None`: not set here; `Some(None)`: set to undefined.
    pub(crate) fn entry(&self, opt: Opt) -> Option<Option<&Value>> {
        self.values.get(&opt).map(Option::as_ref)
    }

    /// Copies every value of `other` over this one's.
    pub(crate) fn overlay(&mut self, other: &RawOptions) {
        for (opt, value) in &other.values {
            self.values.insert(*opt, value.clone());
        }
    }
}

/// Read access to options with the original's precedence of forms.
pub(crate) trait OptionSource {
    /// The raw value of exactly this option form, `None` if undefined.
    fn raw(&self, opt: Opt) -> Option<&Value>;

    /// Whether the option itself (not its other forms) has a value.
    fn is_present(&self, opt: Opt) -> bool {
        self.raw(opt).is_some()
    }

    /// The value of `opt` after its force and negation forms are applied.
    fn value(&self, opt: Opt) -> Option<Value> {
        if let Some(force) = opt.force_form() {
            if let Some(v) = self.raw(force) {
                return Some(v.clone());
            }
        }
        if let Some(negation) = opt.negation_form() {
            if self.raw(negation) == Some(&Value::Bool(true)) {
                return Some(Value::Bool(false));
            }
        }
        self.raw(opt).cloned()
    }

    /// A boolean option; undefined is false.
    fn flag(&self, opt: Opt) -> bool {
        matches!(self.value(opt), Some(Value::Bool(true)))
    }

    fn int(&self, opt: Opt) -> Option<i64> {
        match self.value(opt) {
            Some(Value::Int(i)) => Some(i),
            _ => None,
        }
    }

    fn string(&self, opt: Opt) -> Option<String> {
        match self.value(opt) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn path(&self, opt: Opt) -> Option<PathBuf> {
        match self.value(opt) {
            Some(Value::Path(p)) => Some(p),
            _ => None,
        }
    }

    fn archiver(&self, opt: Opt) -> Option<Archiver> {
        match self.value(opt) {
            Some(Value::Archiver(a)) => Some(a),
            _ => None,
        }
    }
}

/// The program's configuration: defaults, configuration files and command line merged.
#[derive(Debug, Clone)]
pub struct Configuration {
    raw: RawOptions,
}

impl OptionSource for Configuration {
    fn raw(&self, opt: Opt) -> Option<&Value> {
        self.raw.entry(opt).flatten()
    }
}

impl Configuration {
    /// A configuration of only `raw` (for tests and building blocks).
    pub(crate) fn from_raw(raw: RawOptions) -> Configuration {
        Configuration { raw }
    }

    /// The user configuration directory (always defined after [`load`]).
    pub(crate) fn user_config_dir(&self) -> PathBuf {
        self.path(Opt::UserConfigDir).unwrap_or_default()
    }

    /// The archive specifications directory (always defined after [`load`]).
    pub(crate) fn archive_specs_dir(&self) -> PathBuf {
        self.path(Opt::ArchiveSpecsDir).unwrap_or_default()
    }
}

/// Where the configuration files are.
#[derive(Debug, Clone)]
pub(crate) struct Locations {
    pub system_config_file: PathBuf,
    /// The user configuration directory when nothing else names one.
    pub default_user_config_dir: PathBuf,
}

impl Locations {
    /// The standard locations (the system file can be moved with [`SYSTEM_CONFIG_ENV`]).
    pub(crate) fn standard() -> Locations {
        Locations {
            system_config_file: std::env::var_os(SYSTEM_CONFIG_ENV)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(SYSTEM_CONFIG_FILE)),
            default_user_config_dir: crate::paths::default_user_config_dir(),
        }
    }
}

/// Builds the configuration from the defaults, the configuration files and `command_line`.
pub(crate) fn load(
    command_line: &RawOptions,
    locations: &Locations,
) -> Result<Configuration, ConfigError> {
    let cmdline = Configuration::from_raw(command_line.clone());
    let cmdline_user_dir = cmdline.path(Opt::UserConfigDir);
    let cmdline_user_file = cmdline.path(Opt::UserConfigFile);
    // The original only warned and went on with other settings; running with a configuration
    // the user did not ask for could make backups they did not want.
    if let Some(file) = &cmdline_user_file {
        if !file.is_file() {
            return Err(ConfigError::new(file, ConfigErrorKind::MissingUserFile));
        }
    }

    let mut raw = RawOptions::new();
    raw.set(
        Opt::Archiver,
        parse_value(Opt::Archiver, "targz").ok().flatten(),
    );
    raw.set(Opt::DestDir, Some(Value::Path(PathBuf::from("."))));
    raw.set(Opt::RestartAfterLevel, Some(Value::Int(10)));
    raw.set(Opt::NumberOfOldBackups, Some(Value::Int(1)));

    read_config_file(&locations.system_config_file, false, &mut raw)?;

    let so_far = Configuration::from_raw(raw.clone());
    let user_dir = cmdline_user_dir
        .clone()
        .or_else(|| so_far.path(Opt::UserConfigDir))
        .unwrap_or_else(|| locations.default_user_config_dir.clone());
    let user_file = cmdline_user_file
        .or_else(|| so_far.path(Opt::UserConfigFile))
        .unwrap_or_else(|| user_dir.join(CONFIG_FILE_NAME));
    read_config_file(&user_file, true, &mut raw)?;

    raw.overlay(command_line);

    let mut config = Configuration { raw };
    if !config.is_present(Opt::UserConfigDir) {
        let dir = locations.default_user_config_dir.clone();
        config.raw.set(Opt::UserConfigDir, Some(Value::Path(dir)));
    }
    let dir = config.user_config_dir();
    if !config.is_present(Opt::UserConfigFile) {
        let file = dir.join(CONFIG_FILE_NAME);
        config.raw.set(Opt::UserConfigFile, Some(Value::Path(file)));
    }
    if !config.is_present(Opt::ArchiveSpecsDir) {
        let specs = dir.join("archive_specs");
        config
            .raw
            .set(Opt::ArchiveSpecsDir, Some(Value::Path(specs)));
    }
    Ok(config)
}

/// Adds the options of one configuration file to `raw`. A missing file is skipped, as the
/// original did.
fn read_config_file(file: &Path, user_file: bool, raw: &mut RawOptions) -> Result<(), ConfigError> {
    match std::fs::metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        _ => {}
    }
    let options = IniOptions {
        lowercase_keys: true,
        allow_no_value: false,
        interpolation: false,
    };
    let ini =
        Ini::load(file, options).map_err(|e| ConfigError::new(file, ConfigErrorKind::Ini(e)))?;
    if let Some(section) = ini
        .sections()
        .into_iter()
        .find(|s| *s != SECTION_GENERAL && *s != SECTION_ARCHIVE)
    {
        let kind = ConfigErrorKind::InvalidSection(section.to_string());
        return Err(ConfigError::new(file, kind));
    }
    for section in [SECTION_GENERAL, SECTION_ARCHIVE] {
        for item in ini.items(section) {
            let invalid = || ConfigError {
                file: file.to_path_buf(),
                line: Some(item.line),
                kind: Box::new(ConfigErrorKind::InvalidOption(item.key.to_string())),
            };
            let opt = Opt::from_name(item.key).ok_or_else(invalid)?;
            if !opt.allowed_in_config_file(user_file) {
                return Err(invalid());
            }
            let text = item.value.unwrap_or("");
            let value = parse_value(opt, text).map_err(|e| ConfigError {
                file: file.to_path_buf(),
                line: Some(item.line),
                kind: Box::new(ConfigErrorKind::Value(e)),
            })?;
            raw.set(opt, value);
        }
    }
    Ok(())
}

/// A configuration that cannot be used.
#[derive(Debug)]
pub(crate) struct ConfigError {
    file: PathBuf,
    line: Option<usize>,
    // Boxed to keep `Result<_, ConfigError>` small.
    kind: Box<ConfigErrorKind>,
}

#[derive(Debug)]
enum ConfigErrorKind {
    MissingUserFile,
    Ini(IniError),
    InvalidSection(String),
    InvalidOption(String),
    Value(ValueError),
}

impl ConfigError {
    fn new(file: &Path, kind: ConfigErrorKind) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            kind: Box::new(kind),
        }
    }

    /// True for errors in the content of a configuration file, which the original treated as
    /// fatal (exit code 2); a missing `--user-config-file` is an ordinary error.
    pub(crate) fn is_fatal(&self) -> bool {
        !matches!(*self.kind, ConfigErrorKind::MissingUserFile)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match &*self.kind {
            ConfigErrorKind::MissingUserFile => {
                write!(f, "Configuration file \"{file}\" does not exist.")
            }
            ConfigErrorKind::Ini(e) => write!(f, "{e}"),
            ConfigErrorKind::InvalidSection(s) => write!(
                f,
                "{file}: invalid section [{s}] in the configuration file (valid sections: [General], [Archive])"
            ),
            ConfigErrorKind::InvalidOption(o) => {
                write!(f, "{file}:{}: invalid option \"{o}\" in the configuration file", self.line.unwrap_or(0))
            }
            ConfigErrorKind::Value(e) => write!(f, "{file}:{}: {e}", self.line.unwrap_or(0)),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;

    fn raw(pairs: &[(Opt, &str)]) -> RawOptions {
        let mut r = RawOptions::new();
        for (o, v) in pairs {
            r.set(*o, parse_value(*o, v).unwrap());
        }
        r
    }

    #[test]
    fn forms_are_applied_in_the_original_order() {
        let c = Configuration::from_raw(raw(&[(Opt::Incremental, "yes")]));
        assert!(c.flag(Opt::Incremental));
        let c = Configuration::from_raw(raw(&[
            (Opt::Incremental, "yes"),
            (Opt::NoIncremental, "yes"),
        ]));
        assert!(!c.flag(Opt::Incremental));
        let c = Configuration::from_raw(raw(&[
            (Opt::NoIncremental, "yes"),
            (Opt::ForceIncremental, "yes"),
        ]));
        assert!(c.flag(Opt::Incremental));
        // A present force form wins even when false.
        let c = Configuration::from_raw(raw(&[
            (Opt::Incremental, "yes"),
            (Opt::ForceIncremental, "no"),
        ]));
        assert!(!c.flag(Opt::Incremental));
        assert!(c.is_present(Opt::Incremental));
    }

    #[test]
    fn empty_values_are_undefined_except_for_strings() {
        assert_eq!(parse_value(Opt::DestDir, "").unwrap(), None);
        assert_eq!(parse_value(Opt::Incremental, "").unwrap(), None);
        assert_eq!(
            parse_value(Opt::CommandBeforeBackup, "").unwrap(),
            Some(Value::Str(String::new()))
        );
        assert!(parse_value(Opt::RestartAfterLevel, "x").is_err());
        assert!(parse_value(Opt::Archiver, "zip").is_err());
    }

    #[test]
    fn names_and_forms() {
        assert_eq!(
            Opt::from_name("restart-after-age"),
            Some(Opt::RestartAfterAge)
        );
        assert_eq!(Opt::Archiver.force_form(), Some(Opt::ForceArchiver));
        assert_eq!(
            Opt::KeepOldBackups.negation_form(),
            Some(Opt::NoKeepOldBackups)
        );
        assert_eq!(Opt::NumberOfOldBackups.force_form(), None);
        for o in Opt::ARCHIVE_SPEC {
            assert!(spec::ARCHIVE_OPTIONS.contains(&o.name()), "{o}");
        }
    }

    #[test]
    fn files_then_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.conf");
        let user_dir = dir.path().join("user");
        std::fs::create_dir(&user_dir).unwrap();
        std::fs::write(
            &system,
            "[Archive]\narchiver = tarbz2\nnumber-of-old-backups = 3\n",
        )
        .unwrap();
        std::fs::write(
            user_dir.join("aa.conf"),
            "[Archive]\nNumber-Of-Old-Backups = 4\nincremental = yes\n[General]\nquiet = yes\n",
        )
        .unwrap();
        let locations = Locations {
            system_config_file: system.clone(),
            default_user_config_dir: user_dir.clone(),
        };
        let cmd = raw(&[(Opt::NumberOfOldBackups, "5")]);
        let c = load(&cmd, &locations).unwrap();
        assert_eq!(c.archiver(Opt::Archiver).unwrap().to_string(), "tarbz2");
        assert_eq!(c.int(Opt::NumberOfOldBackups), Some(5));
        assert!(c.flag(Opt::Incremental) && c.flag(Opt::Quiet));
        assert_eq!(c.archive_specs_dir(), user_dir.join("archive_specs"));
        assert_eq!(c.int(Opt::RestartAfterLevel), Some(10));

        std::fs::write(
            user_dir.join("aa.conf"),
            "[Archive]\nuser-config-dir = /x\n",
        )
        .unwrap();
        let e = load(&RawOptions::new(), &locations).unwrap_err();
        assert!(
            e.is_fatal() && e.to_string().contains("user-config-dir"),
            "{e}"
        );
        std::fs::write(user_dir.join("aa.conf"), "[Other]\n").unwrap();
        assert!(load(&RawOptions::new(), &locations)
            .unwrap_err()
            .to_string()
            .contains("[Other]"));
        std::fs::write(user_dir.join("aa.conf"), "[Archive]\nlevel = 1\n").unwrap();
        assert!(load(&RawOptions::new(), &locations).is_err());

        let missing = raw(&[(Opt::UserConfigFile, "/nonexistent/aa.conf")]);
        let e = load(&missing, &locations).unwrap_err();
        assert!(!e.is_fatal());
    }
}

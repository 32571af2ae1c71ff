//! The `aa` host: configuration, archive specifications, the service framework that holds the
//! archiver providers loaded from plugins, and the archiving application behind the command
//! line.
//!
//! Its public surface is what the `aa` binary needs: [`Cli`] and [`generate`] (the command
//! line), [`install_interrupt_handling`] and [`run`]. Everything else is private to the crate,
//! so that the compiler reports what nothing uses.
//!
//! Layout: `cli` (arguments), `config`, `ini`, `spec` and `values` (what the user configured),
//! `plugin_loader`, `service` and `archiver` (the providers), `storage` (the realms), `lock` (one run per
//! archive), `interrupt` (signals: cleanups before exit), `report` (what the application tells
//! the user, through a sink), `ui` (the terminal's sink, with the status line), `paths`, and
//! `app`, the actions, which know no terminal and no plugin.
mod app;
mod archiver;
mod atomic_write;
mod cli;
mod config;
/// Backup destinations (a directory or an object store); public, undocumented, only for the
/// object-store tests until the application uses it.
#[doc(hidden)]
pub mod destination;
mod ini;
mod interrupt;
mod json;
mod lock;
mod manual;
mod paths;
mod plugin_loader;
mod progress;
mod report;
mod service;
mod spec;
mod storage;
mod ui;
mod values;

#[cfg(test)]
mod test_support;

pub use crate::cli::{generate, Cli};
pub use crate::interrupt::install as install_interrupt_handling;
pub use crate::plugin_loader::{probe_main as probe_plugin, PROBE_ARG as PROBE_PLUGIN_ARG};

/// Entry points for the fuzz targets (`fuzz/`), not an API: the parsers stay private to the
/// crate, and this is the one deliberate door to them.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    /// Parses `text` as Python's configparser would (with the given settings) and reads every
    /// visible option of every section, interpolated; `Err` with the message of the first error.
    pub fn ini(
        text: &str,
        lowercase_keys: bool,
        allow_no_value: bool,
        interpolation: bool,
    ) -> Result<Vec<String>, String> {
        let options = crate::ini::IniOptions {
            lowercase_keys,
            allow_no_value,
            interpolation,
        };
        let ini = crate::ini::Ini::parse(text, Path::new("fuzz.ini"), options)
            .map_err(|e| e.to_string())?;
        let mut values = Vec::new();
        for section in std::iter::once("DEFAULT").chain(ini.sections()) {
            for item in ini.items(section) {
                // A bad reference in one option is no reason to skip the others.
                match ini.get(section, item.key) {
                    Ok(value) => values.extend(value),
                    Err(e) => values.push(e.to_string()),
                }
            }
        }
        Ok(values)
    }

    /// The plugin loader's ELF screening of a candidate file's bytes (before any `dlopen`).
    pub fn elf_screen(bytes: &[u8]) -> Result<(), String> {
        crate::plugin_loader::elf::screen_image(bytes)
    }

    /// Loads the specification `file` (bare `[External]` names refer to `specs_dir`) and
    /// reads every option it offers; `Err` with the message the user would see.
    pub fn spec(file: &Path, specs_dir: &Path) -> Result<(), String> {
        let spec = crate::spec::ArchiveSpec::load_with_specs_dir(file, specs_dir)
            .map_err(|e| e.to_string())?;
        let _ = (spec.name(), spec.path(), spec.notes());
        let _ = (spec.include_files(), spec.exclude_files());
        // The application converts each value by its option's type; both conversions see
        // whatever a reference made of it.
        for (name, value, line) in spec.archive_entries() {
            if let Err(e) = crate::values::parse_bool(name, value) {
                let _ = spec.value_error(line, e).to_string();
            }
            let _ = crate::values::parse_int(name, value);
        }
        Ok(())
    }
}

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::app::App;
use crate::archiver::{ArchiverService, ArchiverServiceComponent};
use crate::cli::Command;
use crate::config::{Configuration, Locations, Opt, OptionSource};
use crate::report::{Report, Verbosity};
use crate::service::{ServiceAccessor, ServiceComponent};
use crate::storage::Storage;
use crate::ui::Terminal;

/// Exit code of a run where something went wrong (an error or a warning was shown).
const EXIT_ISSUES: u8 = 1;
/// Exit code of an unusable configuration file, as the original's fatal errors.
const EXIT_FATAL: u8 = 2;

/// Runs `aa` with parsed arguments; the exit code is 1 when any error or warning was shown.
/// Under `--json` the last line written is the summary, with that exit code.
pub fn run(cli: Cli) -> ExitCode {
    let command_line = cli.raw_options();
    let (report, status) = match config::load(&command_line, &Locations::standard()) {
        Ok(config) => {
            let report = make_report(cli.json, verbosity(&config));
            let status = run_configured(&cli, &config, &report);
            (report, status)
        }
        Err(e) => {
            let report = make_report(cli.json, Verbosity::Normal);
            let status = if e.is_fatal() {
                report.fatal(&e.to_string());
                EXIT_FATAL
            } else {
                report.error(&e.to_string());
                EXIT_ISSUES
            };
            (report, status)
        }
    };
    report.summary(cli.command().name(), status);
    ExitCode::from(status)
}

/// The report of a run: JSON lines with `--json` (where `--quiet` hides nothing: a monitoring
/// tool wants every warning), else the terminal.
fn make_report(json: bool, verbosity: Verbosity) -> Report {
    if json {
        Report::new(verbosity.max(Verbosity::Normal), json::Json)
    } else {
        Terminal::report(verbosity)
    }
}

/// Runs the command once the configuration is read; the exit code.
fn run_configured(cli: &Cli, config: &Configuration, report: &Report) -> u8 {
    // Listing providers is our addition and needs no state: it leaves the directories alone.
    let storage = if cli.command() == Command::ListProviders {
        None
    } else if cli.command() == Command::DryRun {
        // A dry run writes nothing, not even the directories a first run creates.
        match Storage::open_read_only(&config.user_config_dir()) {
            Ok(storage) => Some(storage),
            Err(e) => {
                report.error(&format!("Unable to open the storage: {e}"));
                return EXIT_ISSUES;
            }
        }
    } else {
        match prepare_state(report, config, cli.json) {
            Some(storage) => Some(storage),
            None => return EXIT_ISSUES,
        }
    };

    let exe = std::env::current_exe().ok();
    let dirs = plugin_loader::search_dirs(
        exe.as_deref(),
        &cli.plugin_dir,
        std::env::var_os(plugin_loader::PLUGIN_PATH_ENV).as_deref(),
    );
    let (plugins, rejected) = plugin_loader::load_plugins(&dirs);
    for rejection in &rejected {
        report.notice(&rejection.to_string());
    }

    let mut services = ServiceAccessor::new(config.user_config_dir());
    let mut archiver_component = ArchiverServiceComponent::new(&mut services, &plugins);

    let ok = match cli.command() {
        Command::ListProviders => list_providers(report, &services),
        command => {
            let storage = storage
                .as_ref()
                .expect("the state is prepared for every action");
            let app = App::new(report, &services, config, storage);
            let selected = app.selected_specs(&cli.specs);
            let all = config.flag(Opt::All);
            match command {
                Command::Create | Command::DryRun if selected.is_empty() && !all => {
                    report.error(
                        "No archive specification given. Pass the name or path of an archive \
                         specification file as an argument, or use --all to process every \
                         configured archive.",
                    );
                    false
                }
                Command::Purge if selected.is_empty() && !all => {
                    report.error(
                        "No archive name given. Pass the name of an archive as an argument, or \
                         use --all to purge the data of every orphaned archive.",
                    );
                    false
                }
                Command::Restore | Command::Verify => match one_spec(report, &selected, command) {
                    Some(spec) if command == Command::Restore => {
                        match restore_options(report, cli) {
                            Some(options) => app::restore::run(&app, spec, &options),
                            None => false,
                        }
                    }
                    Some(spec) => {
                        app::verify::run(&app, spec, cli.keeping_id.as_deref(), cli.compare)
                    }
                    None => false,
                },
                Command::DryRun => app::dry_run::run(&app, &selected),
                Command::List => app::list::run(&app, &selected),
                Command::Purge => app::purge::run(&app, &selected),
                _ => app::create::run(&app, &selected),
            }
        }
    };

    archiver_component.destroy_services(&mut services);
    if ok && report.errors() + report.warnings() == 0 {
        0
    } else {
        EXIT_ISSUES
    }
}

/// The one archive `--restore` and `--verify` work on; `None` after an error.
fn one_spec<'s>(
    report: &Report,
    selected: &'s [app::SpecRef],
    command: Command,
) -> Option<&'s app::SpecRef> {
    let option = if command == Command::Restore {
        "--restore"
    } else {
        "--verify"
    };
    match selected {
        [one] => Some(one),
        [] => {
            report.error(&format!(
                "{option} needs the archive specification (AA_SPEC) of the archive."
            ));
            None
        }
        _ => {
            report.error(&format!(
                "{option} works on one archive; {} were given.",
                selected.len()
            ));
            None
        }
    }
}

/// `--restore`'s options from the command line; `None` after an error naming the option.
fn restore_options(report: &Report, cli: &Cli) -> Option<app::restore::RestoreOptions> {
    let level = match cli.level.map(u32::try_from) {
        None => None,
        Some(Ok(level)) => Some(level),
        Some(Err(_)) => {
            report.error(&format!(
                "--level {}: a level is 0 or more.",
                cli.level.unwrap_or_default()
            ));
            return None;
        }
    };
    let target = cli.target.as_deref().map(paths::expand_tilde)?;
    Some(app::restore::RestoreOptions {
        target,
        level,
        keeping_id: cli.keeping_id.clone(),
        only: cli.only.clone(),
        overwrite: cli.overwrite,
    })
}

/// Creates the user configuration, archive specifications and storage directories as the
/// original did (announcing each), and reads the storage. `None` after an error.
fn prepare_state(report: &Report, config: &Configuration, json: bool) -> Option<Storage> {
    let user_config_dir = config.user_config_dir();
    let user_dir_created = create_dir(report, &user_config_dir, "User configuration directory")?;
    // The specifications directory is only announced when it is not simply part of a user
    // configuration directory that was just created.
    let specs_dir = config.archive_specs_dir();
    if !specs_dir.exists() {
        // Hides the notice under --json too (make_report would show it there).
        let quiet_report = if json {
            Report::new(Verbosity::Quiet, json::Json)
        } else {
            Terminal::report(Verbosity::Quiet)
        };
        let announce = !user_dir_created || !specs_dir.starts_with(&user_config_dir);
        create_dir(
            if announce { report } else { &quiet_report },
            &specs_dir,
            "Archive specifications directory",
        );
    }
    match Storage::open(&user_config_dir) {
        Ok((storage, created)) => {
            if created {
                report.notice(&crate::storage::created_notice(storage.dir()));
            }
            Some(storage)
        }
        Err(e) => {
            report.error(&format!("Unable to open the storage: {e}"));
            None
        }
    }
}

/// `--quiet` wins over `--verbose` wherever each was given.
fn verbosity(config: &Configuration) -> Verbosity {
    if config.flag(Opt::Quiet) {
        Verbosity::Quiet
    } else if config.int(Opt::Verbose).is_some_and(|v| v > 0) {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    }
}

/// Creates `dir` if it does not exist, telling the user. `Some(created)`, or `None` after an
/// error.
fn create_dir(report: &Report, dir: &Path, what: &str) -> Option<bool> {
    if dir.exists() {
        return Some(false);
    }
    report.notice(&format!(
        "{what} does not exist. Creating \"{}\".",
        dir.display()
    ));
    match std::fs::create_dir_all(dir) {
        Ok(()) => Some(true),
        Err(e) => {
            report.error(&format!(
                "Unable to create {} \"{}\": {e}",
                what.to_lowercase(),
                dir.display()
            ));
            None
        }
    }
}

fn list_providers(report: &Report, services: &ServiceAccessor) -> bool {
    let providers = services.provider_identifications::<ArchiverService>();
    if providers.is_empty() {
        report.error("no archiver provider is loaded; check the plugin directories (--plugin-dir, AA_PLUGIN_PATH)");
        return false;
    }
    for (id, info) in providers {
        let listed = report::ListedProvider {
            id: id.to_string(),
            library: display_path(&info.library),
            description: info.identification.description.to_string(),
            types: info
                .identification
                .backup_types
                .iter()
                .map(|t| report::ProvidedType {
                    backup_type: t.backup_type.to_string(),
                    features: t.features.iter().map(|f| f.to_string()).collect(),
                })
                .collect(),
            capabilities: info
                .capabilities
                .names()
                .iter()
                .map(|c| c.to_string())
                .collect(),
        };
        if report.event(&report::Event::Provider(&listed)) {
            continue;
        }
        report.output(&format!("{}  {}", listed.id, listed.library));
        report.output(&format!("  description: {}", listed.description));
        for t in &listed.types {
            let features = if t.features.is_empty() {
                "-".to_string()
            } else {
                t.features.join(", ")
            };
            report.output(&format!("  {}: {features}", t.backup_type));
        }
        report.output(&format!(
            "  capabilities: {}",
            if listed.capabilities.is_empty() {
                "- (backups only)".to_string()
            } else {
                listed.capabilities.join(", ")
            }
        ));
    }
    true
}

fn display_path(path: &std::path::Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| PathBuf::from(path))
        .display()
        .to_string()
}

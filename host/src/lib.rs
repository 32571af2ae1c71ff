//! The `aa` host: configuration, archive specifications, the service framework that holds the
//! archiver providers loaded from plugins, and the archiving application behind the command
//! line.

pub mod app;
pub mod archiver;
pub mod cli;
pub mod ini;
pub mod paths;
pub mod plugin_loader;
pub mod service;
pub mod spec;
pub mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::archiver::{ArchiverService, ArchiverServiceComponent};
use crate::cli::Cli;
use crate::service::{ServiceAccessor, ServiceComponent};
use crate::ui::{Ui, Verbosity};

/// Runs `aa` with parsed arguments; the exit code is 1 when any error or warning was shown.
pub fn run(cli: Cli) -> ExitCode {
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let ui = Ui::new(verbosity);

    let user_config_dir = cli
        .user_config_dir
        .as_deref()
        .map(paths::expand_tilde)
        .unwrap_or_else(paths::default_user_config_dir);
    if let Err(e) = std::fs::create_dir_all(&user_config_dir) {
        ui.error(
            None,
            &format!(
                "cannot create the user configuration directory \"{}\": {e}",
                user_config_dir.display()
            ),
        );
        return ExitCode::FAILURE;
    }

    let exe = std::env::current_exe().ok();
    let dirs = plugin_loader::search_dirs(
        exe.as_deref(),
        &cli.plugin_dir,
        std::env::var_os(plugin_loader::PLUGIN_PATH_ENV).as_deref(),
    );
    let (plugins, rejected) = plugin_loader::load_plugins(&dirs);
    for rejection in &rejected {
        ui.notice(&rejection.to_string());
    }

    let mut services = ServiceAccessor::new(user_config_dir.clone());
    let mut archiver_component = ArchiverServiceComponent::new(&mut services, &plugins);

    if cli.list_providers {
        list_providers(&ui, &services);
    } else if cli.specs.is_empty() {
        ui.error(None, "no archive specified; give AA_SPEC (see aa --help)");
    } else {
        let application = app::Application {
            ui: &ui,
            services: &services,
            archive_specs_dir: cli
                .archive_specs_dir
                .as_deref()
                .map(paths::expand_tilde)
                .unwrap_or_else(|| user_config_dir.join("archive_specs")),
            options: app::CommandLineOptions {
                archiver: cli.archiver.clone(),
                compression_level: cli.compression_level.clone(),
                dest_dir: cli.dest_dir.clone(),
                overwrite_at_start: cli.overwrite_at_start,
            },
        };
        application.create_backups(&cli.specs);
    }

    archiver_component.destroy_services(&mut services);
    if ui.errors() + ui.warnings() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn list_providers(ui: &Ui, services: &ServiceAccessor) {
    let providers = services.provider_identifications::<ArchiverService>();
    if providers.is_empty() {
        ui.error(None, "no archiver provider is loaded; check the plugin directories (--plugin-dir, AA_PLUGIN_PATH)");
        return;
    }
    for (id, info) in providers {
        ui.output(&format!("{id}  {}", display_path(&info.library)));
        ui.output(&format!(
            "  description: {}",
            info.identification.description
        ));
        for t in info.identification.backup_types.iter() {
            let features: Vec<String> = t.features.iter().map(|f| f.to_string()).collect();
            let features = if features.is_empty() {
                "-".to_string()
            } else {
                features.join(", ")
            };
            ui.output(&format!("  {}: {features}", t.backup_type));
        }
    }
}

fn display_path(path: &std::path::Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| PathBuf::from(path))
        .display()
        .to_string()
}

//! `--purge`: delete what is stored about orphaned archives (their storage realm and the
//! providers' data, such as snapshot files), either those named as `AA_SPEC` or, with `--all`,
//! every one.
//!
//! With `--all` an archive whose specification file exists but cannot be read is not purged
//! (the original took it for an orphan): fixing a typo in a `.aa` file must not cost the
//! archive its incremental state.

use std::collections::BTreeSet;

use super::{App, Failure, SpecRef};
use crate::archiver::ArchiverService;
use crate::config::{Opt, OptionSource};
use crate::lock::ArchiveLock;

/// Purges the orphans among `selected` (or all of them with `--all`).
pub fn run(app: &App<'_>, selected: &[SpecRef]) -> bool {
    let report = app.report;
    let Some(specs) = app.specs_for_processing(selected) else {
        return false;
    };
    let orphaned = app.orphaned_archives(&specs);
    let valid = app.valid_archive_names(&specs);
    let mut result = true;
    let by_name: Vec<&str> = selected.iter().filter_map(|s| s.name.as_deref()).collect();
    for name in &by_name {
        report.set_label(Some(name));
        if orphaned.contains(*name) {
            result &= purge(app, name);
        } else if valid.contains(*name) {
            report.warning("Archive is not orphaned. Not purging.");
            result = false;
        } else {
            report.info("Nothing to purge.");
        }
    }
    if app.config.flag(Opt::All) {
        let unreadable = unreadable_spec_names(app, &specs);
        for name in orphaned.iter().filter(|n| !by_name.contains(&n.as_str())) {
            report.set_label(Some(name));
            if unreadable.contains(name) {
                report.warning("Its archive specification file cannot be read. Not purging.");
                continue;
            }
            result &= purge(app, name);
        }
    }
    report.set_label(None);
    result
}

fn purge(app: &App<'_>, name: &str) -> bool {
    app.report.verbose(&format!("Purging {name}."));
    match purge_stored_data(app, name) {
        Ok(()) => true,
        Err(e) => {
            app.report.error(&format!("Purge failed: {e}"));
            false
        }
    }
}

/// Removes every provider's data and the storage realm of `name`, under the archive's lock:
/// a run backing it up (from a specification given by path) keeps its state.
fn purge_stored_data(app: &App<'_>, name: &str) -> Result<(), Failure> {
    let _lock = ArchiveLock::acquire(&app.config.user_config_dir(), name)?;
    for (_, provider) in app.services.get_or_create_services::<ArchiverService>() {
        provider?.purge_stored_backup_data(name)?;
    }
    app.storage.remove_realm(name)?;
    Ok(())
}

/// Names (file stems) of the specifications among `specs` that cannot be read.
fn unreadable_spec_names(app: &App<'_>, specs: &[SpecRef]) -> BTreeSet<String> {
    specs
        .iter()
        .filter(|s| s.path.exists() && app.load_spec(&s.path).is_err())
        .filter_map(|s| {
            s.name
                .clone()
                .or_else(|| s.path.file_stem().map(|n| n.to_string_lossy().into_owned()))
        })
        .collect()
}

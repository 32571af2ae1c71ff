//! `--list`: the configured archives and the orphaned ones (archives with stored data but no
//! specification), one line each, or a block of details each with `--verbose`.
//!
//! Notation, as in the original: `[value]` for a value that does not matter with the current
//! settings (e.g. levels of a non-incremental archive, the name of an orphan), `-` for not
//! applicable or not set, `?` for unknown. Unlike the original, the listing works without a
//! terminal (it then assumes 80 columns) and `--verbose` shows the days since the last
//! restart and full restart of configured archives too (the original always showed `-`).

use std::fmt::Display;

use super::archive::{ArchiveContext, ArchiveSettings};
use super::levels::{stored_date, stored_int, today, LevelInfo, RestartReason};
use super::{App, Failure, SpecRef};
use crate::archiver::ArchiverService;
use crate::config::{Opt, OptionSource};
use crate::report::{shorten, Event, ListedArchive};
use crate::storage::vars;

/// What is shown about an archive; `None` values are unknown or not applicable.
#[derive(Debug, Default)]
struct ArchiveInfo {
    name: String,
    path: Option<String>,
    archiver: String,
    dest_dir: String,
    incremental: Option<bool>,
    backup_level: Option<u32>,
    next_level: Option<u32>,
    restarting: Option<bool>,
    restart_after_level: Option<i64>,
    restart_reason: Option<RestartReason>,
    restart_level: Option<u32>,
    restart_count: Option<i64>,
    full_restart_after_count: Option<i64>,
    last_restart: Option<i64>,
    restart_after_age: Option<i64>,
    last_full_restart: Option<i64>,
    full_restart_after_age: Option<i64>,
}

/// Lists `selected` (or every configured archive) and the orphaned archives.
pub fn run(app: &App<'_>, selected: &[SpecRef]) -> bool {
    let report = app.report;
    let Some(specs) = app.specs_for_processing(selected) else {
        return false;
    };
    let orphaned = app.orphaned_archives(&specs);
    for spec in &specs {
        let label = spec.label();
        report.set_label(Some(&label));
        // An orphan's specification cannot be read; it is listed below without an error.
        if orphaned.contains(&label) {
            continue;
        }
        if let Some(info) = archive_info(app, spec) {
            show(app, &info, false);
        }
    }
    let names: Vec<&str> = specs.iter().filter_map(|s| s.name.as_deref()).collect();
    let only_selected = !selected.is_empty() && !app.config.flag(Opt::All);
    for name in &orphaned {
        report.set_label(Some(name));
        if only_selected && !names.contains(&name.as_str()) {
            continue;
        }
        let info = stored_archive_info(app, name);
        show(app, &info, true);
    }
    report.set_label(None);
    true
}

fn show(app: &App<'_>, info: &ArchiveInfo, orphaned: bool) {
    let today = today();
    let listed = ListedArchive {
        name: info.name.clone(),
        orphaned,
        root: info.path.clone(),
        archiver: info.archiver.clone(),
        dest_dir: info.dest_dir.clone(),
        incremental: info.incremental,
        backup_level: info.backup_level,
        next_level: info.next_level,
        restarting: info.restarting,
        restart_after_level: info.restart_after_level,
        restart_reason: info.restart_reason.map(|r| reason_id(r).to_string()),
        restart_level: info.restart_level,
        restart_count: info.restart_count,
        full_restart_after_count: info.full_restart_after_count,
        days_since_last_restart: info.last_restart.map(|d| today - d),
        restart_after_age: info.restart_after_age,
        days_since_last_full_restart: info.last_full_restart.map(|d| today - d),
        full_restart_after_age: info.full_restart_after_age,
    };
    if app.report.event(&Event::Archive(&listed)) {
        return;
    }
    if app.report.is_verbose() {
        app.report.verbose(&verbose_info(info, orphaned));
    } else {
        let fields = [
            (bracket(&info.name, orphaned), 0.087, Stretch::Medium),
            (question(info.path.as_ref(), true), 0.447, Stretch::Normal),
            (info.dest_dir.clone(), 0.448, Stretch::Normal),
            (levels(info), 0.015, Stretch::Low),
        ];
        app.report
            .output(&multi_field_line(&fields, app.report.width()));
    }
}

/// Information about a configured archive, `None` (after an error) if it cannot be read.
fn archive_info(app: &App<'_>, spec_ref: &SpecRef) -> Option<ArchiveInfo> {
    let report = app.report;
    let settings = match app
        .load_spec(&spec_ref.path)
        .and_then(|spec| ArchiveSettings::new(spec, app.config))
    {
        Ok(s) => s,
        Err(e) => {
            report.error(&e.to_string());
            return None;
        }
    };
    let (ctx, levels) = match ArchiveContext::new(app, &settings)
        .and_then(|ctx| LevelInfo::compute(app, &ctx).map(|l| (ctx, l)))
    {
        Ok(x) => x,
        Err(e) => {
            report.error(&format!("Unable to get archive information: {e}"));
            return None;
        }
    };
    ctx.report_unsupported_options(report);
    let mut info = ArchiveInfo {
        name: settings.name().to_string(),
        path: Some(settings.spec.path().display().to_string()),
        archiver: ctx.archiver.to_string(),
        dest_dir: settings
            .path(Opt::DestDir)
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        ..ArchiveInfo::default()
    };
    if ctx.supports(Opt::Incremental) {
        info.incremental = Some(settings.flag(Opt::Incremental));
        info.backup_level = levels.current_level();
        info.restarting = Some(settings.flag(Opt::Restarting));
        info.restart_after_level = settings.int(Opt::RestartAfterLevel);
        // Level 0 is only announced when a full restart is due; otherwise it is simply the
        // first backup, shown as unknown.
        info.next_level = match levels.next_level {
            Some(0) if !levels.restart_reason.is_some_and(RestartReason::is_full) => None,
            next => next,
        };
        info.restart_reason = levels.restart_reason;
        info.restart_level = levels.restart_level;
        info.full_restart_after_count = settings.int(Opt::FullRestartAfterCount);
        info.restart_after_age = settings.int(Opt::RestartAfterAge);
        info.full_restart_after_age = settings.int(Opt::FullRestartAfterAge);
        add_stored_restart_state(app, &mut info);
    }
    Some(info)
}

/// Information about an orphaned archive, from what is stored about it.
fn stored_archive_info(app: &App<'_>, name: &str) -> ArchiveInfo {
    let config = app.config;
    let mut info = ArchiveInfo {
        name: name.to_string(),
        archiver: config
            .archiver(Opt::Archiver)
            .map(|a| a.to_string())
            .unwrap_or_default(),
        dest_dir: config
            .path(Opt::DestDir)
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        ..ArchiveInfo::default()
    };
    info.backup_level = stored_backup_level(app, name);
    if info.backup_level.is_some() {
        info.incremental = Some(config.flag(Opt::Incremental));
        info.restart_after_level = config.int(Opt::RestartAfterLevel);
        info.full_restart_after_count = config.int(Opt::FullRestartAfterCount);
        add_stored_restart_state(app, &mut info);
    }
    info
}

/// The level of the last backup of `name` according to the first incremental provider that
/// knows one.
fn stored_backup_level(app: &App<'_>, name: &str) -> Option<u32> {
    let identifications = app.services.provider_identifications::<ArchiverService>();
    let mut max = None;
    for (id, provider) in app.services.get_or_create_services::<ArchiverService>() {
        let incremental = identifications.iter().any(|(i, info)| {
            *i == id
                && info
                    .identification
                    .all_features()
                    .contains(&aa_abi::ArchiverFeature::Incremental)
        });
        if !incremental {
            continue;
        }
        match provider
            .map_err(Failure::from)
            .and_then(|p| Ok(p.get_max_backup_level(name)?))
        {
            Ok(level) => {
                max = Some(level);
                if level > 0 {
                    break;
                }
            }
            Err(e) => app
                .report
                .error(&format!("Unable to determine the backup level: {e}")),
        }
    }
    max.filter(|&m| m > 0).map(|m| m - 1)
}

fn add_stored_restart_state(app: &App<'_>, info: &mut ArchiveInfo) {
    let realm = info.name.clone();
    let result = (|| -> Result<(), Failure> {
        info.restart_count = stored_int(app, &realm, vars::RESTART_COUNT)?;
        info.last_restart = stored_date(app, &realm, vars::LAST_RESTART)?;
        info.last_full_restart = stored_date(app, &realm, vars::LAST_FULL_RESTART)?;
        Ok(())
    })();
    if let Err(e) = result {
        app.report.error(&format!(
            "Unable to get some of the archive information: {e}"
        ));
    }
}

/// The restart reason in the JSON listing: a word, stable where the sentence is not.
fn reason_id(reason: RestartReason) -> &'static str {
    match reason {
        RestartReason::NoRestart => "none",
        RestartReason::RestartCountLimitReached => "restart_count",
        RestartReason::LastFullRestartAgeLimitReached => "full_restart_age",
        RestartReason::BackupLevelLimitReached => "backup_level",
        RestartReason::LastRestartAgeLimitReached => "restart_age",
    }
}

fn bracket(token: &str, condition: bool) -> String {
    if condition {
        format!("[{token}]")
    } else {
        token.to_string()
    }
}

fn dash<T: Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn question<T: Display>(value: Option<T>, condition: bool) -> String {
    if condition && value.is_none() {
        "?".to_string()
    } else {
        dash(value)
    }
}

/// `current/next/max.` levels.
fn levels(info: &ArchiveInfo) -> String {
    let not_incremental = info.incremental != Some(true);
    let not_restarting = not_incremental || info.restarting != Some(true);
    format!(
        "{}/{}/{}",
        bracket(&dash(info.backup_level), not_incremental),
        bracket(
            &question(
                info.next_level,
                info.incremental.is_some() && info.backup_level.is_some()
            ),
            not_incremental
        ),
        bracket(&dash(info.restart_after_level), not_restarting)
    )
}

fn verbose_info(info: &ArchiveInfo, orphaned: bool) -> String {
    let not_restarting = info.incremental != Some(true) || info.restarting != Some(true);
    let known = info.incremental.is_some();
    let today = today();
    let days = |date: Option<i64>| date.map(|d| today - d);
    let pair = |a: String, b: String| {
        format!(
            "{}/{}",
            bracket(&a, not_restarting),
            bracket(&b, not_restarting)
        )
    };
    let mut s = String::new();
    s += &format!("Name: {}\n", bracket(&info.name, orphaned));
    s += &format!("Root: {}\n", question(info.path.as_ref(), true));
    s += &format!("Archiver type: {}\n", info.archiver);
    s += &format!("Destination directory: {}\n", info.dest_dir);
    s += &format!("Current backup level/next/max.: {}\n", levels(info));
    s += &format!(
        "Target backup level for non-full restart: {}\n",
        bracket(&question(info.restart_level, known), not_restarting)
    );
    s += &format!(
        "Upcoming restart reason: {}\n",
        bracket(
            &question(info.restart_reason.map(RestartReason::describe), known),
            not_restarting
        )
    );
    s += &format!(
        "Restart count/max.: {}\n",
        pair(
            dash(info.restart_count),
            dash(info.full_restart_after_count)
        )
    );
    s += &format!(
        "Days since last restart/max.: {}\n",
        pair(dash(days(info.last_restart)), dash(info.restart_after_age))
    );
    s += &format!(
        "Days since last full restart/max.: {}\n",
        pair(
            dash(days(info.last_full_restart)),
            dash(info.full_restart_after_age)
        )
    );
    s
}

/// How much a field of a multi-field line grows or shrinks with the terminal width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stretch {
    Normal,
    Medium,
    Low,
}

impl Stretch {
    fn constant(self) -> f64 {
        match self {
            Stretch::Normal => 0.0,
            Stretch::Medium => 100.0,
            Stretch::Low => 900.0,
        }
    }
}

/// Lays out fields with relative widths (of a 1000 column reference line) on a line of
/// `width` columns the way the original did, so listings line up the same.
fn multi_field_line(fields: &[(String, f64, Stretch)], width: usize) -> String {
    const REFERENCE: f64 = 1000.0;
    const MAX_STRETCH: f64 = 1000.0;
    let physical = width as f64;
    let stretched = |coefficient: f64, s: Stretch| {
        (1.0 - coefficient) * (s.constant() / MAX_STRETCH) + coefficient
    };
    let reference_widths: Vec<f64> = fields.iter().map(|f| f.1 * REFERENCE).collect();
    let mut widths = vec![0.0; fields.len()];
    let mut used_physical = 0.0;
    let mut used_reference = 0.0;
    for class in [Stretch::Low, Stretch::Medium, Stretch::Normal] {
        let coefficient = (physical - used_physical) / (REFERENCE - used_reference);
        let mut class_physical = 0.0;
        let mut class_reference = 0.0;
        for (i, _) in fields.iter().enumerate().filter(|(_, f)| f.2 == class) {
            widths[i] = reference_widths[i] * stretched(coefficient, class);
            class_physical += widths[i];
            class_reference += reference_widths[i];
        }
        used_physical += class_physical;
        used_reference += class_reference;
    }
    let mut line = String::new();
    for (i, (text, _, _)) in fields.iter().enumerate() {
        let w = round_half_even(widths[i]).max(0.0) as usize;
        let w = if i + 1 < fields.len() {
            w.saturating_sub(1)
        } else {
            w
        };
        let text = shorten(text, w);
        line += &format!("{text:<w$} ");
    }
    line.pop();
    line
}

/// Python's `round()`: halves go to the even neighbour.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_original_at_120_columns() {
        let fields = [
            ("p".to_string(), 0.087, Stretch::Medium),
            ("/tmp/py1/src".to_string(), 0.447, Stretch::Normal),
            ("/tmp/py1/dest".to_string(), 0.448, Stretch::Normal),
            ("1/2/10".to_string(), 0.015, Stretch::Low),
        ];
        // Captured from the Python aa 2.0.6 in a 120 column terminal.
        let expected = format!(
            "{:<16} {:<43} {:<43} {:<14}",
            "p", "/tmp/py1/src", "/tmp/py1/dest", "1/2/10"
        );
        assert_eq!(multi_field_line(&fields, 120), expected);
    }

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(2.4), 2.0);
        assert_eq!(round_half_even(2.6), 3.0);
    }

    #[test]
    fn notation() {
        let info = ArchiveInfo {
            incremental: Some(false),
            restart_after_level: Some(10),
            ..ArchiveInfo::default()
        };
        assert_eq!(levels(&info), "[-]/[-]/[10]");
        let info = ArchiveInfo {
            incremental: Some(true),
            restarting: Some(true),
            backup_level: Some(1),
            next_level: Some(2),
            restart_after_level: Some(10),
            ..ArchiveInfo::default()
        };
        assert_eq!(levels(&info), "1/2/10");
        let orphan = ArchiveInfo {
            incremental: Some(false),
            backup_level: Some(0),
            restart_after_level: Some(10),
            ..ArchiveInfo::default()
        };
        assert_eq!(levels(&orphan), "[0]/[?]/[10]");
        assert_eq!(levels(&ArchiveInfo::default()), "[-]/[-]/[-]");
    }
}

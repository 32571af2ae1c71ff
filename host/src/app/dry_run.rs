//! `--dry-run`: what the backup of each selected archive would do, from the same planning the
//! real run uses ([`LevelInfo::plan`], [`Keeping::changes`], [`create::backup_definition`])
//! and the provider's dry-run capability for the members, with nothing written: no backup, no
//! snapshot, no realm or level state, no kept-backup rename, no keeping journal, no lock file,
//! and no command run (`command-before-backup` and the others are only named).

use std::path::Path;

use aa_abi::capability::ItemEvents;

use super::archive::{ArchiveContext, ArchiveSettings};
use super::backups::Backups;
use super::capable::{self, Capability};
use super::create;
use super::journal::journal_path;
use super::keeping::{Change, JournalPlace, Keeping};
use super::levels::LevelInfo;
use super::{App, Failure, SpecRef};
use crate::config::{Opt, OptionSource};
use crate::report::{count, human_bytes, Report};

/// Shows what backing up `selected` (or every configured archive with `--all`) would do.
pub fn run(app: &App<'_>, selected: &[SpecRef]) -> bool {
    let report = app.report;
    let Some(specs) = app.specs_for_processing(selected) else {
        return false;
    };
    for (opt, when) in [
        (Opt::CommandBeforeAllBackups, "before all backups"),
        (Opt::CommandAfterAllBackups, "after all backups"),
    ] {
        if let Some(command) = app.config.string(opt).filter(|c| !c.is_empty()) {
            report.info(&format!("Not run (dry run), {when}: '{command}'."));
        }
    }
    for spec in &specs {
        report.set_label(Some(&spec.label()));
        if let Err(e) = dry_run(app, spec) {
            report.error(&format!("Unable to plan the backup: {e}"));
        }
    }
    report.set_label(None);
    true
}

fn dry_run(app: &App<'_>, spec: &SpecRef) -> Result<(), Failure> {
    let report = app.report;
    let settings = app
        .load_spec(&spec.path)
        .and_then(|s| ArchiveSettings::new(s, app.config))
        .map_err(|e| Failure::Option(e.to_string()))?;
    report.info("Dry run: nothing is written and no command is run.");
    let journal = journal_path(&app.config.user_config_dir(), settings.name());
    if journal.exists() {
        report.info(&format!(
            "The backup would first finish or undo the interrupted keeping of old backups \
             recorded in \"{}\"; what follows assumes it is done.",
            journal.display()
        ));
    }
    let ctx = ArchiveContext::new(app, &settings)?;
    let info = LevelInfo::plan(app, &ctx)?;
    ctx.report_unsupported_options(report);
    let definition = create::backup_definition(report, &ctx)?;
    let incremental = ctx.incremental();
    let next_level = info.next_level.unwrap_or(0);
    if let (true, Some(configured)) = (incremental, settings.int(Opt::Level)) {
        if configured > i64::from(next_level) {
            report.warning(&format!(
                "Backup level value {configured} is too high. Using level {next_level} instead."
            ));
        }
    }
    // A remote destination's names are its objects, shown as `s3://` URLs; the real run
    // would refuse a provider that cannot write into one.
    create::check_remote(&ctx)?;
    let backups = Backups::of(&ctx, &definition)?;
    let level = incremental.then_some(next_level);
    let final_name = backups.name(level, None)?;
    let final_shown = backups.shown(level, None)?;
    let replaces = if backups.exists(level, None)? {
        " (replacing the existing one)"
    } else {
        ""
    };
    if incremental {
        let restart = match info.restart_reason {
            Some(reason) if reason != super::levels::RestartReason::NoRestart => {
                format!(", a restart: {}", reason.describe())
            }
            _ => String::new(),
        };
        report.info(&format!(
            "Level {next_level}{restart}; backup file \"{final_shown}\"{replaces}."
        ));
    } else {
        report.info(&format!(
            "Backup file \"{final_shown}\"{replaces} (not incremental)."
        ));
    }

    let keep = settings.flag(Opt::KeepOldBackups);
    let remove_obsolete = settings.flag(Opt::RemoveObsoleteBackups);
    // Backup files the keeping moves away first, which the removal of obsolete levels then
    // no longer finds.
    let mut moved = Vec::new();
    if keep {
        let place = JournalPlace {
            path: journal,
            overwrite_at_start: settings.flag(Opt::OverwriteAtStart),
        };
        let mut keeping = Keeping::new(&backups, report, incremental, place).dry_run();
        let number = settings.int(Opt::NumberOfOldBackups).unwrap_or(1);
        keeping.keep(number, next_level, remove_obsolete)?;
        for change in keeping.changes()? {
            if let Change::Rename { from, .. } | Change::Remove(from) = &change {
                moved.push(from.clone());
            }
            report.info(&match change {
                Change::Rename { from, to } => format!("Would rename \"{from}\" to \"{to}\"."),
                Change::Remove(name) => format!(
                    "Would remove \"{name}\" (the oldest kept backup), once the new one exists."
                ),
                Change::RemoveObsolete(name) => {
                    format!("Would remove \"{name}\" (kept beyond number-of-old-backups).")
                }
            });
        }
    }
    if incremental && remove_obsolete {
        for name in backups
            .names_above(next_level)?
            .into_iter()
            .filter(|n| !moved.contains(n))
        {
            report.info(&format!(
                "Would remove \"{name}\" (obsolete level above {next_level})."
            ));
        }
    }
    for (opt, when) in [
        (Opt::CommandBeforeBackup, "before the backup"),
        (Opt::CommandAfterBackup, "after the backup"),
    ] {
        if let Some(command) = settings.string(opt).filter(|c| !c.is_empty()) {
            report.info(&format!("Not run (dry run), {when}: '{command}'."));
        }
    }

    let chosen = capable::choose(
        app,
        &ctx.archiver.provider,
        ctx.backup_type(),
        Capability::DryRun,
        false,
    )?;
    let members = Members { report };
    let totals = chosen
        .provider
        .dry_run(&definition, level, &members)
        .unwrap_or_else(|| {
            Err(aa_abi::error::ProviderError::other(
                "the provider lost its dry-run capability",
            ))
        })
        .map_err(|e| Failure::Provider(e.to_string()))?;
    report.info(&format!(
        "Would store {} ({}) in \"{}\".",
        count(totals.items, "member"),
        human_bytes(totals.bytes),
        final_name
    ));
    Ok(())
}

/// Lists each member the backup would store, with its size.
struct Members<'a> {
    report: &'a Report,
}

impl ItemEvents for Members<'_> {
    fn item(&self, name: &Path, size: u64) {
        self.report
            .output(&format!("{size:>12}  {}", name.display()));
    }

    fn problem(&self, name: Option<&Path>, message: &str) {
        match name {
            Some(name) => self
                .report
                .warning(&format!("\"{}\": {message}", name.display())),
            None => self.report.warning(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testing::Sandbox;
    use crate::report::Verbosity;

    #[test]
    fn a_dry_run_plans_the_level_and_the_keeping_and_writes_nothing() {
        let sb = Sandbox::new();
        let home = sb.spec(
            "home",
            "incremental = yes\nkeep-old-backups = yes\ncommand-before-backup = touch /nonexistent/x",
        );
        // The hook would fail; the backups are made by another archive and renamed.
        let plain = sb.spec("plain", "incremental = yes");
        for _ in 0..2 {
            sb.run(Verbosity::Normal, |app| {
                crate::app::create::run(app, std::slice::from_ref(&plain))
            });
        }
        std::fs::rename(sb.dest().join("plain.tar"), sb.dest().join("home.tar")).unwrap();
        std::fs::rename(sb.dest().join("plain.1.tar"), sb.dest().join("home.1.tar")).unwrap();
        let before = sb.dest_files();
        let (ok, report, memory) = sb.run(Verbosity::Normal, |app| {
            run(app, std::slice::from_ref(&home))
        });
        assert!(ok);
        assert_eq!(sb.dest_files(), before);
        let dest = sb.dest();
        assert_eq!(
            memory.out(),
            [
                "[home] Dry run: nothing is written and no command is run.".to_string(),
                format!(
                    "[home] Level 0; backup file \"{}\" (replacing the existing one).",
                    dest.join("home.tar").display()
                ),
                "[home] The backup would keep already existing backups.".to_string(),
                "[home] Would rename \"home.tar\" to \"home.aa.tar\".".to_string(),
                "[home] Would rename \"home.1.tar\" to \"home.1.aa.tar\".".to_string(),
                "[home] Not run (dry run), before the backup: 'touch /nonexistent/x'.".to_string(),
            ]
        );
        // The fake cannot list members: that is the one error.
        assert_eq!(report.errors(), 1);
        assert_eq!(
            memory.err(),
            [
                "aa: Error! [home] Unable to plan the backup: the archive's provider cannot \
              dry-run \
              Tar backups (Fake lacks dry_run_v1)"
            ]
        );
    }
}

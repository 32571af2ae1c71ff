//! `--verify`: check an archive's chain and each of its backups.
//!
//! The chain must be complete: a backup file for every level the snapshots record (the
//! provider's `get_max_backup_level`), none above. Then every backup is read to the end by a
//! provider that can verify its type (every checksum of the compression format, every tar
//! header), one line each on standard output:
//!
//! ```text
//! home.1.tar.gz: ok, 1234 members, 5.6 MB
//! home.2.tar.gz: FAILED: gzip: CRC32 mismatch at byte 1234
//! ```
//!
//! (the size is the members' content), and a summary. Any problem makes the exit status 1.
//! With `--compare` the chain is then restored and compared with the source ([`super::compare`]).
//! Backups in an object store are read from it as streams, as a restore reads them.

use aa_abi::capability::ChainArchive;
use aa_abi::PathBytes;

use super::archive::ArchiveSettings;
use super::capable::{self, Capability};
use super::chain::file_name;
use super::object_pipes::ShownEvents;
use super::restore::{backups, provider_failure, Events};
use super::{compare, App, Failure, SpecRef};
use crate::lock::ArchiveLock;
use crate::report::{count, human_bytes};

/// Verifies the chain of `spec` (the kept one `keeping_id`, or the current one). False on any
/// problem.
pub fn run(app: &App<'_>, spec: &SpecRef, keeping_id: Option<&str>, compare: bool) -> bool {
    let report = app.report;
    report.set_label(Some(&spec.label()));
    let errors = report.errors();
    let ok = match verify(app, spec, keeping_id, compare) {
        Ok(ok) => ok,
        Err(e) => {
            report.error(&format!("Unable to verify: {e}"));
            false
        }
    };
    report.set_label(None);
    ok && report.errors() == errors
}

fn verify(
    app: &App<'_>,
    spec: &SpecRef,
    keeping_id: Option<&str>,
    compare: bool,
) -> Result<bool, Failure> {
    let report = app.report;
    let settings = app
        .load_spec(&spec.path)
        .and_then(|s| ArchiveSettings::new(s, app.config))
        .map_err(|e| Failure::Option(e.to_string()))?;
    let _lock = ArchiveLock::acquire(&app.config.user_config_dir(), settings.name())?;
    let backups = backups(app, &settings, keeping_id)?;
    let chain = &backups.chain;
    let own = &backups.archiver.provider;
    // Without a provider that can verify, the chain's completeness is still checked.
    let chosen = match capable::choose(
        app,
        own,
        backups.archiver.backup_type,
        Capability::Verify,
        true,
    ) {
        Ok(chosen) => {
            report.info(&chosen.describe("Verifying", own));
            Some(chosen)
        }
        Err(e) => {
            report.error(&format!("Unable to verify the backups: {e}"));
            None
        }
    };
    if chain.levels.len() > 1 && !chain.from_snapshot && keeping_id.is_none() {
        report.info("No snapshot records this chain: it is made of the backup files found.");
    }
    let top = chain.levels.last().map_or(0, |l| l.level);
    let present: Vec<ChainArchive> = chain
        .levels
        .iter()
        .filter(|l| l.exists)
        .map(|l| ChainArchive {
            level: l.level,
            backup_type: chain.backup_type,
            path: PathBytes::new(&l.path),
        })
        .collect();
    // What the provider reads: the files, or pipes streaming the objects of a store.
    let (readable, pipes) = match &chosen {
        Some(_) => backups.readable(&present)?,
        None => (Vec::new(), None),
    };
    let mut failed = 0;
    for level in &chain.levels {
        let name = file_name(&level.path);
        if !level.exists {
            report.output(&format!(
                "{name}: FAILED: missing (level {} of the chain 0..{top})",
                level.level
            ));
            failed += 1;
            continue;
        }
        let Some(chosen) = &chosen else {
            continue;
        };
        let Some(archive) = readable.iter().find(|a| a.level == level.level) else {
            continue;
        };
        let events = Events::collecting(report);
        let shown = ShownEvents {
            inner: &events,
            pipes: pipes.as_ref(),
        };
        let verdict = match chosen.provider.verify(archive, &shown) {
            None => Err("the provider lost its verify capability".to_string()),
            Some(Err(e)) => Err(provider_failure(pipes.as_ref(), &e.to_string())),
            Some(Ok(totals)) if totals.problems == 0 && events.problems.get() == 0 => Ok(totals),
            Some(Ok(totals)) => Err(events
                .first_problem
                .borrow()
                .clone()
                .unwrap_or_else(|| format!("{} problems", totals.problems))),
        };
        // A stream that ended early because the store failed may have looked sound.
        let verdict = match pipes.as_ref().and_then(|p| p.error_of(&name)) {
            Some(error) => Err(error),
            None => verdict,
        };
        match verdict {
            Ok(totals) => report.output(&format!(
                "{name}: ok, {}, {}",
                count(totals.items, "member"),
                human_bytes(totals.bytes)
            )),
            Err(reason) => {
                let more = events.problems.get().saturating_sub(1);
                let more = if more > 0 {
                    format!(" (and {more} more problems; --verbose lists them)")
                } else {
                    String::new()
                };
                report.output(&format!("{name}: FAILED: {reason}{more}"));
                failed += 1;
            }
        }
    }
    for above in &chain.above {
        report.output(&format!(
            "{}: FAILED: above the current level {top}: no snapshot records it, so it is not \
             part of the chain (a backup with remove-obsolete-backups removes it)",
            file_name(above)
        ));
        failed += 1;
    }
    if chosen.is_none() {
        return Ok(false);
    }
    let checked = chain.levels.len() + chain.above.len();
    report.info(&format!(
        "Verified {checked} backup file{} of levels 0..{top}: {}.",
        if checked == 1 { "" } else { "s" },
        if failed == 0 {
            "all ok".to_string()
        } else {
            format!("{failed} FAILED")
        }
    ));
    if compare {
        if failed > 0 {
            report.info("Not compared with the source: the chain did not verify.");
            return Ok(false);
        }
        let archives = chain.archives(None)?;
        let archives = match &pipes {
            // Every level is present (none failed): each has its pipe.
            Some(_) => readable,
            None => archives,
        };
        let compared = compare::compare(app, &settings, &backups, &archives);
        let streamed = pipes.as_ref().and_then(|p| p.first_error());
        return match (compared, streamed) {
            (_, Some(error)) => {
                report.error(&format!("Unable to compare with the source: {error}"));
                Ok(false)
            }
            (Ok(differences), None) => Ok(differences == 0),
            (Err(e), None) => {
                let message = provider_failure(pipes.as_ref(), e.message());
                report.error(&format!("Unable to compare with the source: {message}"));
                Ok(false)
            }
        };
    }
    Ok(failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testing::Sandbox;
    use crate::report::Verbosity;

    #[test]
    fn without_a_capable_provider_verify_says_so_after_the_chain_is_found() {
        let sb = Sandbox::new();
        let home = sb.spec("home", "incremental = yes");
        let (ok, _, memory) = sb.run(Verbosity::Normal, |app| run(app, &home, None, false));
        assert!(!ok);
        assert!(
            memory.err()[0].contains("no backup of \"home\""),
            "{:?}",
            memory.err()
        );
        sb.run(Verbosity::Normal, |app| {
            crate::app::create::run(app, std::slice::from_ref(&home))
        });
        let (ok, _, memory) = sb.run(Verbosity::Normal, |app| run(app, &home, None, false));
        assert!(!ok);
        assert_eq!(
            memory.err(),
            [
                "aa: Error! [home] Unable to verify the backups: no loaded provider can \
                 verify Tar backups (Fake lacks verify_v1)"
            ]
        );
    }
}

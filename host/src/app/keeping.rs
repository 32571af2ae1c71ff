//! Keeping old backups (`keep-old-backups`): before a backup is overwritten it is renamed with
//! a keeping ID inserted before its extension (`home.aa.tar.gz`); older kept backups shift
//! (`aa` -> `ab` ...) and the one that would go beyond `number-of-old-backups` is removed. For
//! an incremental archive this applies to every level being overwritten, and a kept chain
//! moves as a whole.
//!
//! The original removed the oldest kept backup before the new backup was made, so a failed run
//! lost it. Here that backup is only moved aside (keeping ID `ab-removing` and the like)
//! and removed by [`Keeping::commit`] once the new backup exists; [`Keeping::rollback`] undoes
//! every rename when it could not be made. Removing kept backups beyond the number
//! (`remove-obsolete-backups`) is likewise done on commit.
//!
//! The renames are planned first and written to the keeping journal ([`super::journal`])
//! before the first is done, so that a run stopped at any point is undone (or finished) by its
//! own signal handling or by the next run. Each rename, the commit and the rollback run as
//! [`interrupt::critical`] sections: the signal thread never acts in the middle of one.
//!
//! The backups are renamed through [`Backups`]: a local directory's by the archiver provider,
//! an object store's by server-side copies and deletes, in the same order, which loses no
//! backup whichever step a crash stops at (see [`super::journal`]).

use std::path::PathBuf;

use super::backups::Backups;
use super::journal::{self, Journal, Step};
use super::Failure;
use crate::interrupt::{self, InterruptGuard};
use crate::report::Report;

/// Keeping IDs run from `aa` (the most recent) to `zz`.
const KEEPING_ID_COUNT: i64 = 26 * 26;

/// The keeping ID with number `n` (`0` is `aa`).
pub fn keeping_id(n: i64) -> String {
    let n = n.clamp(0, KEEPING_ID_COUNT - 1);
    let digit = |d: i64| char::from(b'a' + d as u8);
    [digit(n / 26), digit(n % 26)].iter().collect()
}

fn keeping_number(id: &str) -> i64 {
    let b = id.as_bytes();
    i64::from(b[0] - b'a') * 26 + i64::from(b[1] - b'a')
}

/// A kept backup moved aside, to be removed on commit.
struct Held {
    keeping_id: String,
    /// First level of an incremental chain; `None` for a non-incremental backup.
    first_level: Option<u32>,
}

/// A rename of a backup: from keeping ID (`None`: the current backup) to keeping ID.
struct Planned {
    from: Option<String>,
    to: String,
    level: Option<u32>,
    hold: bool,
}

/// Where the journal goes and what it must know of the new backup (whose final name it takes
/// from the backups).
pub struct JournalPlace {
    pub path: PathBuf,
    pub overwrite_at_start: bool,
}

/// Renames done for keeping, to be committed or rolled back.
pub struct Keeping<'a> {
    backups: &'a Backups<'a>,
    report: &'a Report,
    incremental: bool,
    place: JournalPlace,
    /// The level of the new backup (`None`: not incremental).
    level: Option<u32>,
    /// The renames to do, in order.
    plan: Vec<Planned>,
    /// Once renaming started; with what undoes it on an interrupt.
    journal: Option<(Journal, InterruptGuard)>,
    held: Vec<Held>,
    /// Remove kept backups from this number on, on commit.
    remove_from: Option<i64>,
    /// A dry run: renames are planned ([`Keeping::changes`]), never done.
    dry: bool,
}

/// What keeping would do to one backup file, as a dry run shows it: the file (object) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Rename {
        from: String,
        to: String,
    },
    /// The oldest kept backup, beyond the number to keep.
    Remove(String),
    /// A kept backup beyond the number, removed with `remove-obsolete-backups`.
    RemoveObsolete(String),
}

impl<'a> Keeping<'a> {
    /// `place.final_path` is the new backup's final name as the journal names it
    /// ([`Backups::journal_name`]).
    pub fn new(
        backups: &'a Backups<'a>,
        report: &'a Report,
        incremental: bool,
        mut place: JournalPlace,
    ) -> Keeping<'a> {
        // A store is never written in place: its new backup appears only once complete.
        place.overwrite_at_start &= !backups.is_remote();
        Keeping {
            backups,
            report,
            incremental,
            place,
            level: None,
            plan: Vec::new(),
            journal: None,
            held: Vec::new(),
            remove_from: None,
            dry: false,
        }
    }

    /// This keeping for a dry run: [`Keeping::keep`] plans the renames without doing any.
    pub fn dry_run(mut self) -> Keeping<'a> {
        self.dry = true;
        self
    }

    /// Keeps the existing backup (or, incremental, the levels from `from_level` up) before it
    /// is overwritten. On failure the renames done so far are undone.
    pub fn keep(
        &mut self,
        number: i64,
        from_level: u32,
        remove_obsolete: bool,
    ) -> Result<(), Failure> {
        let number = if number > KEEPING_ID_COUNT {
            self.report.warning(&format!(
                "Configured number of old backups ({number}) exceed maximal possible value \
                 ({KEEPING_ID_COUNT}). Using the maximal possible value."
            ));
            KEEPING_ID_COUNT
        } else {
            number
        };
        self.level = self.incremental.then_some(from_level);
        let exists = if self.incremental {
            self.backups.any_level_exists(from_level, None)?
        } else {
            self.backups.exists(None, None)?
        };
        if exists {
            if number > 0 {
                self.report.info(if self.dry {
                    "The backup would keep already existing backups."
                } else {
                    "Keeping already existing backups."
                });
                let shifted = if self.incremental {
                    self.shift_incremental(number, from_level, None)
                } else {
                    self.shift(number, None)
                }
                .and_then(|()| if self.dry { Ok(()) } else { self.rename_all() });
                if let Err(e) = shifted {
                    self.rollback();
                    return Err(Failure::Keeping(format!(
                        "Unable to keep the old backups: {e}"
                    )));
                }
            } else {
                self.report.warning(
                    "Keeping of old backups is enabled but the number to keep is 0. No backups will be kept.",
                );
            }
        }
        if remove_obsolete {
            self.remove_from = Some(number.max(0));
        }
        Ok(())
    }

    /// Plans a rename; [`Keeping::rename_all`] does them.
    fn rename(&mut self, from: Option<&str>, to: &str, level: Option<u32>) -> Result<(), Failure> {
        self.plan.push(Planned {
            from: from.map(str::to_string),
            to: to.to_string(),
            level,
            hold: to.ends_with("-removing"),
        });
        Ok(())
    }

    /// Writes the journal of the planned renames, then does them.
    fn rename_all(&mut self) -> Result<(), Failure> {
        if self.plan.is_empty() {
            return Ok(());
        }
        let mut steps = Vec::new();
        for p in &self.plan {
            steps.push(Step {
                from: self.backups.journal_name(p.level, p.from.as_deref())?,
                to: self.backups.journal_name(p.level, Some(&p.to))?,
                hold: p.hold,
            });
        }
        let place = &self.place;
        let final_name = self.backups.journal_name(self.level, None)?;
        let journal = Journal::create_in(
            place.path.clone(),
            self.backups.store_record(),
            &final_name,
            place.overwrite_at_start,
            &steps,
        )
        .map_err(|e| Failure::Keeping(format!("{}: {e}", place.path.display())))?;
        let path = journal.path().to_path_buf();
        let guard = interrupt::on_interrupt(move || match journal::recover(&path, false) {
            Ok(None) => None,
            Ok(Some(recovered)) => Some(recovered.describe()),
            Err(e) => Some(format!("unable to recover the kept backups: {e}")),
        });
        self.journal = Some((journal, guard));
        for (i, p) in self.plan.iter().enumerate() {
            let Some((journal, _)) = self.journal.as_mut() else {
                break;
            };
            interrupt::critical(|| -> Result<(), Failure> {
                let shown = journal.path().display().to_string();
                let in_journal = |e: std::io::Error| Failure::Keeping(format!("{shown}: {e}"));
                self.backups
                    .keep(p.from.as_deref(), &p.to, p.level, &mut || {
                        journal.started(i).map_err(in_journal)
                    })?;
                journal.done(i).map_err(in_journal)
            })?;
        }
        Ok(())
    }

    fn shift(&mut self, number: i64, keeping: Option<&str>) -> Result<(), Failure> {
        let index = keeping.map_or(0, |k| keeping_number(k) + 1);
        let new_id = keeping_id(index);
        if self.backups.exists(None, Some(&new_id))? {
            if index + 1 < number {
                self.shift(number, Some(&new_id))?;
            } else if index + 1 == number {
                let held = format!("{new_id}-removing");
                self.rename(Some(&new_id), &held, None)?;
                self.held.push(Held {
                    keeping_id: held,
                    first_level: None,
                });
            }
        }
        if index < number {
            self.rename(keeping, &new_id, None)?;
        }
        Ok(())
    }

    fn shift_incremental(
        &mut self,
        number: i64,
        from_level: u32,
        keeping: Option<&str>,
    ) -> Result<(), Failure> {
        let index = keeping.map_or(0, |k| keeping_number(k) + 1);
        let new_id = keeping_id(index);
        if let Some(first) = self.first_existing_level(0, Some(&new_id))? {
            if index + 1 < number {
                self.shift_incremental(number, first, Some(&new_id))?;
            } else if index + 1 == number {
                let held = format!("{new_id}-removing");
                for level in self.existing_levels(first, Some(&new_id))? {
                    self.rename(Some(&new_id), &held, Some(level))?;
                }
                self.held.push(Held {
                    keeping_id: held,
                    first_level: Some(first),
                });
            }
        }
        if index < number {
            for level in self.existing_levels(from_level, keeping)? {
                self.rename(keeping, &new_id, Some(level))?;
            }
        }
        Ok(())
    }

    /// The lowest level from `from` on that has a backup.
    fn first_existing_level(
        &self,
        from: u32,
        keeping: Option<&str>,
    ) -> Result<Option<u32>, Failure> {
        if !self.backups.any_level_exists(from, keeping)? {
            return Ok(None);
        }
        // Bounded: the backups could vanish while we look (the original looped forever then).
        for level in from..from.saturating_add(10_000) {
            if self.backups.exists(Some(level), keeping)? {
                return Ok(Some(level));
            }
        }
        Ok(None)
    }

    /// The consecutive levels with a backup, starting with the first from `from` on.
    fn existing_levels(&self, from: u32, keeping: Option<&str>) -> Result<Vec<u32>, Failure> {
        let mut levels = Vec::new();
        if let Some(mut level) = self.first_existing_level(from, keeping)? {
            while self.backups.exists(Some(level), keeping)? {
                levels.push(level);
                level += 1;
            }
        }
        Ok(levels)
    }

    /// What [`Keeping::keep`] planned, and what [`Keeping::commit`] would then remove, in
    /// order; from the same plan a real run carries out.
    pub fn changes(&self) -> Result<Vec<Change>, Failure> {
        let mut changes = Vec::new();
        for p in &self.plan {
            let from = self.backups.name(p.level, p.from.as_deref())?;
            if p.hold {
                changes.push(Change::Remove(from));
            } else {
                let to = self.backups.name(p.level, Some(&p.to))?;
                changes.push(Change::Rename { from, to });
            }
        }
        // Renames only go to keeping IDs below the number, so the kept backups from it on are
        // the same before and after them.
        let Some(from) = self.remove_from else {
            return Ok(changes);
        };
        for n in from..KEEPING_ID_COUNT {
            let id = keeping_id(n);
            let levels: Vec<Option<u32>> = if self.incremental {
                match self.first_existing_level(0, Some(&id))? {
                    Some(first) => self
                        .existing_levels(first, Some(&id))?
                        .into_iter()
                        .map(Some)
                        .collect(),
                    None => Vec::new(),
                }
            } else if self.backups.exists(None, Some(&id))? {
                vec![None]
            } else {
                Vec::new()
            };
            for level in levels {
                changes.push(Change::RemoveObsolete(self.backups.name(level, Some(&id))?));
            }
        }
        Ok(changes)
    }

    /// The new backup exists: removes the backups moved aside and, with
    /// `remove-obsolete-backups`, the kept ones beyond the number to keep.
    pub fn commit(mut self) -> Result<(), Failure> {
        if let Some((mut journal, guard)) = self.journal.take() {
            interrupt::critical(|| -> Result<(), Failure> {
                let shown = journal.path().display().to_string();
                let in_journal = |e: std::io::Error| Failure::Keeping(format!("{shown}: {e}"));
                journal.complete().map_err(in_journal)?;
                self.remove_held()?;
                journal.remove().map_err(in_journal)
            })?;
            drop(guard);
        }
        let Some(from) = self.remove_from else {
            return Ok(());
        };
        for n in from..KEEPING_ID_COUNT {
            let id = keeping_id(n);
            if self.incremental {
                if let Some(first) = self.first_existing_level(0, Some(&id))? {
                    self.report.info(&format!(
                        "Removing obsolete kept incremental backup with keeping ID \"{id}\"."
                    ));
                    self.backups.remove_increments(first, Some(&id))?;
                }
            } else if self.backups.exists(None, Some(&id))? {
                self.report.info(&format!(
                    "Removing obsolete kept backup with keeping ID \"{id}\"."
                ));
                self.backups.remove(Some(&id))?;
            }
        }
        Ok(())
    }

    fn remove_held(&self) -> Result<(), Failure> {
        for held in &self.held {
            let original = held.keeping_id.trim_end_matches("-removing");
            match held.first_level {
                None => {
                    self.report.info(&format!(
                        "Removing kept backup with keeping ID \"{original}\"."
                    ));
                    self.backups.remove(Some(&held.keeping_id))?;
                }
                Some(first) => {
                    self.report.info(&format!(
                        "Removing kept incremental backup with keeping ID \"{original}\"."
                    ));
                    self.backups
                        .remove_increments(first, Some(&held.keeping_id))?;
                }
            }
        }
        Ok(())
    }

    /// The new backup could not be made: puts every renamed backup back under its old name.
    pub fn rollback(&mut self) {
        if let Some((journal, guard)) = self.journal.take() {
            let path = journal.path().to_path_buf();
            drop(journal);
            let store = self.backups.store();
            if let Err(e) = interrupt::critical(|| journal::recover_using(&path, true, store)) {
                self.report
                    .error(&format!("Unable to restore the kept backups: {e}"));
            }
            drop(guard);
        }
        self.held.clear();
        self.remove_from = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::create;
    use crate::app::testing::Sandbox;
    use crate::report::Verbosity;

    /// Backs up `home` once with `a.txt` saying `run N`; what it reported on standard output.
    fn run(sb: &Sandbox, n: usize, home: &crate::app::SpecRef) -> Vec<String> {
        sb.write_source(&format!("run {n}"));
        let (ok, report, memory) = sb.run(Verbosity::Normal, |app| {
            create::run(app, std::slice::from_ref(home))
        });
        assert!(ok, "{:?}", memory.err());
        assert_eq!(report.errors() + report.warnings(), 0, "{:?}", memory.err());
        memory.out()
    }

    #[test]
    fn kept_backups_shift_and_the_oldest_beyond_the_number_is_removed() {
        let sb = Sandbox::new();
        let home = sb.spec("home", "keep-old-backups = yes\nnumber-of-old-backups = 2");
        assert!(run(&sb, 1, &home).is_empty());
        assert_eq!(sb.dest_files(), ["home.tar"]);
        assert_eq!(
            run(&sb, 2, &home),
            ["[home] Keeping already existing backups."]
        );
        assert_eq!(sb.dest_files(), ["home.aa.tar", "home.tar"]);
        run(&sb, 3, &home);
        assert_eq!(sb.dest_files(), ["home.aa.tar", "home.ab.tar", "home.tar"]);
        let out = run(&sb, 4, &home);
        assert!(
            out.contains(&"[home] Removing kept backup with keeping ID \"ab\".".to_string()),
            "{out:?}"
        );
        assert_eq!(sb.dest_files(), ["home.aa.tar", "home.ab.tar", "home.tar"]);
        let runs: Vec<String> = ["home.tar", "home.aa.tar", "home.ab.tar"]
            .iter()
            .map(|f| sb.backup_content(f))
            .collect();
        assert_eq!(runs, ["a.txt: run 4\n", "a.txt: run 3\n", "a.txt: run 2\n"]);
    }

    #[test]
    fn keeping_nothing_is_a_warning_and_replaces_the_backup() {
        let sb = Sandbox::new();
        let home = sb.spec("home", "keep-old-backups = yes\nnumber-of-old-backups = 0");
        run(&sb, 1, &home);
        sb.write_source("run 2");
        let (ok, report, memory) = sb.run(Verbosity::Normal, |app| {
            create::run(app, std::slice::from_ref(&home))
        });
        assert!(ok);
        assert_eq!(report.warnings(), 1);
        assert_eq!(
            memory.err(),
            ["aa: Warning! [home] Keeping of old backups is enabled but the number to keep is 0. \
              No backups will be kept."]
        );
        assert_eq!(sb.dest_files(), ["home.tar"]);
        assert_eq!(sb.backup_content("home.tar"), "a.txt: run 2\n");
    }

    #[test]
    fn keeping_ids() {
        assert_eq!(keeping_id(0), "aa");
        assert_eq!(keeping_id(1), "ab");
        assert_eq!(keeping_id(26), "ba");
        assert_eq!(keeping_id(675), "zz");
        for n in [0, 1, 25, 26, 300, 675] {
            assert_eq!(keeping_number(&keeping_id(n)), n);
        }
    }

    /// Keeping in an object store: the same renames, made of server-side copies and deletes.
    mod on_a_store {
        use super::*;
        use crate::app::backups::on_moto::*;
        use crate::report::memory::Memory;
        use std::path::Path;

        /// One run of archive `home`: keeps what is there, makes the backup (of `level` for an
        /// incremental one) with `content`, commits; what it reported on standard output.
        fn run(
            backups: &Backups<'_>,
            journal: &Path,
            (number, remove_obsolete): (i64, bool),
            level: Option<u32>,
            content: &str,
        ) -> Vec<String> {
            let (report, memory) = Memory::report(Verbosity::Normal);
            let place = JournalPlace {
                path: journal.to_path_buf(),
                overwrite_at_start: true,
            };
            let mut keeping = Keeping::new(backups, &report, level.is_some(), place);
            // A store is never written in place.
            assert!(!keeping.place.overwrite_at_start);
            keeping
                .keep(number, level.unwrap_or(0), remove_obsolete)
                .unwrap();
            let store = backups.store().unwrap();
            put(store, &backups.name(level, None).unwrap(), content);
            keeping.commit().unwrap();
            assert!(!journal.exists());
            assert_eq!(report.errors() + report.warnings(), 0, "{:?}", memory.err());
            memory.out()
        }

        fn journal() -> (tempfile::TempDir, PathBuf) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("journal/home.keeping");
            (dir, path)
        }

        #[test]
        fn kept_backups_shift_and_the_oldest_beyond_the_number_is_removed() {
            let Some(moto) = moto() else {
                return;
            };
            let backups = backups(&moto, "host");
            let store = backups.store().unwrap();
            let (_dir, journal) = journal();
            assert!(run(&backups, &journal, (2, false), None, "run 1").is_empty());
            assert_eq!(contents(store), pairs(&[("home.tar.gz", "run 1")]));
            assert_eq!(
                run(&backups, &journal, (2, false), None, "run 2"),
                ["Keeping already existing backups."]
            );
            run(&backups, &journal, (2, false), None, "run 3");
            assert_eq!(
                contents(store),
                pairs(&[
                    ("home.aa.tar.gz", "run 2"),
                    ("home.ab.tar.gz", "run 1"),
                    ("home.tar.gz", "run 3"),
                ])
            );
            let out = run(&backups, &journal, (2, false), None, "run 4");
            assert!(
                out.contains(&"Removing kept backup with keeping ID \"ab\".".to_string()),
                "{out:?}"
            );
            assert_eq!(
                contents(store),
                pairs(&[
                    ("home.aa.tar.gz", "run 3"),
                    ("home.ab.tar.gz", "run 2"),
                    ("home.tar.gz", "run 4"),
                ])
            );
        }

        #[test]
        fn an_incremental_chain_is_kept_as_a_whole() {
            let Some(moto) = moto() else {
                return;
            };
            let backups = backups(&moto, "inc");
            let store = backups.store().unwrap();
            let (_dir, journal) = journal();
            for (level, content) in [(0, "a0"), (1, "a1"), (2, "a2"), (0, "b0"), (1, "b1")] {
                run(&backups, &journal, (1, false), Some(level), content);
            }
            // The restart to 0 kept the whole chain a; making level 1 again kept nothing, as
            // level 1 was not there then.
            assert_eq!(
                contents(store),
                pairs(&[
                    ("home.1.aa.tar.gz", "a1"),
                    ("home.1.tar.gz", "b1"),
                    ("home.2.aa.tar.gz", "a2"),
                    ("home.aa.tar.gz", "a0"),
                    ("home.tar.gz", "b0"),
                ])
            );
            // Chain b replaces chain a, all of whose levels go.
            let out = run(&backups, &journal, (1, false), Some(0), "c0");
            assert!(
                out.contains(
                    &"Removing kept incremental backup with keeping ID \"aa\".".to_string()
                ),
                "{out:?}"
            );
            assert_eq!(
                contents(store),
                pairs(&[
                    ("home.1.aa.tar.gz", "b1"),
                    ("home.aa.tar.gz", "b0"),
                    ("home.tar.gz", "c0"),
                ])
            );
        }

        #[test]
        fn obsolete_kept_backups_and_increments_are_removed() {
            let Some(moto) = moto() else {
                return;
            };
            let backups = backups(&moto, "obsolete");
            let store = backups.store().unwrap();
            for name in [
                "home.tar.gz",
                "home.aa.tar.gz",
                "home.ab.tar.gz",
                "home.ac.tar.gz",
            ] {
                put(store, name, name);
            }
            let (_dir, journal) = journal();
            let out = run(&backups, &journal, (1, true), None, "new");
            assert!(
                out.contains(&"Removing obsolete kept backup with keeping ID \"ac\".".to_string()),
                "{out:?}"
            );
            assert_eq!(
                contents(store),
                pairs(&[("home.aa.tar.gz", "home.tar.gz"), ("home.tar.gz", "new")])
            );

            // What a run of level 1 removes once made, with remove-obsolete-backups.
            let backups = crate::app::backups::on_moto::backups(&moto, "levels");
            let store = backups.store().unwrap();
            for name in [
                "home.tar.gz",
                "home.1.tar.gz",
                "home.2.tar.gz",
                "home.3.tar.gz",
            ] {
                put(store, name, name);
            }
            backups.remove_increments(2, None).unwrap();
            assert_eq!(
                contents(store),
                pairs(&[
                    ("home.1.tar.gz", "home.1.tar.gz"),
                    ("home.tar.gz", "home.tar.gz")
                ])
            );
        }

        #[test]
        fn a_failed_backup_gives_every_kept_backup_back() {
            let Some(moto) = moto() else {
                return;
            };
            for incremental in [false, true] {
                let backups = backups(&moto, &format!("rollback-{incremental}"));
                let store = backups.store().unwrap();
                let names: &[&str] = if incremental {
                    &[
                        "home.tar.gz",
                        "home.1.tar.gz",
                        "home.aa.tar.gz",
                        "home.1.aa.tar.gz",
                    ]
                } else {
                    &["home.tar.gz", "home.aa.tar.gz", "home.ab.tar.gz"]
                };
                for name in names {
                    put(store, name, name);
                }
                let before = contents(store);
                let (_dir, journal) = journal();
                let (report, _memory) = Memory::report(Verbosity::Normal);
                let place = JournalPlace {
                    path: journal.clone(),
                    overwrite_at_start: false,
                };
                let mut keeping = Keeping::new(&backups, &report, incremental, place);
                keeping.keep(2, 0, true).unwrap();
                assert_ne!(contents(store), before);
                // Each step marked as started (its new name free) before its copy, and done
                // after its delete: what recovery relies on.
                let text = std::fs::read_to_string(&journal).unwrap();
                let steps = text.lines().filter(|l| l.starts_with("rename ")).count()
                    + text.lines().filter(|l| l.starts_with("hold ")).count();
                assert_eq!(steps, if incremental { 4 } else { 3 }, "{text}");
                let marks: Vec<&str> = text
                    .lines()
                    .filter(|l| l.starts_with("start ") || l.starts_with("done "))
                    .collect();
                let expected: Vec<String> = (0..steps)
                    .flat_map(|i| [format!("start {i}"), format!("done {i}")])
                    .collect();
                assert_eq!(marks, expected);
                assert!(
                    text.contains(&format!("\nstore s3://bkp/rollback-{incremental}\n")),
                    "{text}"
                );
                keeping.rollback();
                assert_eq!(report.errors(), 0);
                assert_eq!(contents(store), before, "incremental: {incremental}");
                assert!(!journal.exists());
            }
        }

        /// The dry run's plan names the objects.
        #[test]
        fn a_dry_run_plans_with_object_names_and_changes_nothing() {
            let Some(moto) = moto() else {
                return;
            };
            let backups = backups(&moto, "dry");
            let store = backups.store().unwrap();
            for name in ["home.tar.gz", "home.aa.tar.gz", "home.ab.tar.gz"] {
                put(store, name, name);
            }
            let before = contents(store);
            let (_dir, journal) = journal();
            let (report, _memory) = Memory::report(Verbosity::Normal);
            let place = JournalPlace {
                path: journal.clone(),
                overwrite_at_start: false,
            };
            let mut keeping = Keeping::new(&backups, &report, false, place).dry_run();
            keeping.keep(1, 0, true).unwrap();
            let name = |n: &str| n.to_string();
            assert_eq!(
                keeping.changes().unwrap(),
                [
                    Change::Remove(name("home.aa.tar.gz")),
                    Change::Rename {
                        from: name("home.tar.gz"),
                        to: name("home.aa.tar.gz")
                    },
                    Change::RemoveObsolete(name("home.ab.tar.gz")),
                ]
            );
            assert_eq!(contents(store), before);
            assert!(!journal.exists());
        }
    }
}

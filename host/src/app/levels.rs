//! Which backup level to create next, and automatic level restarting.
//!
//! Without restarting the next level is one above the last one made (or `--level`). With
//! `restarting`, the level falls back ("restarts") when a limit is reached: to 0 after
//! `full-restart-after-count` restarts or `full-restart-after-age` days since the last full
//! restart; to the restart level (1, or the lowest level whose backup is no bigger than
//! `max-restart-level-size` percent of level 0) when the level would exceed
//! `restart-after-level` or `restart-after-age` days have passed since the last restart. The
//! dates, the restart count and the backup sizes are kept in the archive's storage realm under
//! the original's variable names, so a chain started by the Python `aa` goes on here.

use super::archive::ArchiveContext;
use super::{App, Failure};
use crate::config::{Opt, OptionSource};
use crate::storage::vars;

/// Why the next backup's level is lower than it would otherwise be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartReason {
    NoRestart,
    RestartCountLimitReached,
    LastFullRestartAgeLimitReached,
    BackupLevelLimitReached,
    LastRestartAgeLimitReached,
}

impl RestartReason {
    /// Whether this restart goes back to level 0.
    pub fn is_full(self) -> bool {
        matches!(
            self,
            RestartReason::RestartCountLimitReached | RestartReason::LastFullRestartAgeLimitReached
        )
    }

    pub fn describe(self) -> &'static str {
        match self {
            RestartReason::NoRestart => "No restart scheduled for the next backup.",
            RestartReason::RestartCountLimitReached => "Maximal restart count reached.",
            RestartReason::LastFullRestartAgeLimitReached => {
                "Maximal age without full restart reached."
            }
            RestartReason::BackupLevelLimitReached => "Maximal backup level reached.",
            RestartReason::LastRestartAgeLimitReached => "Maximal age without a restart reached.",
        }
    }
}

/// The level state of an archive whose archiver supports incremental backups (all `None`
/// otherwise).
#[derive(Debug, Clone, Default)]
pub struct LevelInfo {
    /// The highest level that can be created now (one above the last one made).
    pub max_level: Option<u32>,
    pub next_level: Option<u32>,
    pub restart_reason: Option<RestartReason>,
    /// The level a non-full restart would go back to.
    pub restart_level: Option<u32>,
}

impl LevelInfo {
    /// The level of the last backup made, if any.
    pub fn current_level(&self) -> Option<u32> {
        self.max_level.filter(|&m| m > 0).map(|m| m - 1)
    }

    /// Works the levels out; like the original this may repair missing restart variables in
    /// the storage (with an error message) when restarting was switched on for an existing
    /// chain.
    pub fn compute(app: &App<'_>, ctx: &ArchiveContext<'_, '_>) -> Result<LevelInfo, Failure> {
        LevelInfo::work_out(app, ctx, false)
    }

    /// [`LevelInfo::compute`] for a dry run: the same levels, but a missing restart variable
    /// is only said to be repaired, not saved.
    pub fn plan(app: &App<'_>, ctx: &ArchiveContext<'_, '_>) -> Result<LevelInfo, Failure> {
        LevelInfo::work_out(app, ctx, true)
    }

    fn work_out(
        app: &App<'_>,
        ctx: &ArchiveContext<'_, '_>,
        dry: bool,
    ) -> Result<LevelInfo, Failure> {
        if !ctx.supports(Opt::Incremental) {
            return Ok(LevelInfo::default());
        }
        let realm = Realm {
            app,
            name: ctx.settings.name(),
            dry,
        };
        let max = ctx.provider.get_max_backup_level(ctx.settings.name())?;
        let restart_level = realm.restart_level(ctx, max)?;
        let configured = ctx.settings.int(Opt::Level);
        let next = match configured {
            Some(l) if l < 0 => {
                return Err(Failure::Option(format!(
                    "The backup level {l} is not valid."
                )))
            }
            Some(l) if l <= i64::from(max) => l as u32,
            _ => max,
        };
        let (next, reason) = if ctx.settings.flag(Opt::Restarting) && configured.is_none() {
            realm.restart(ctx, next, restart_level)?
        } else {
            (next, RestartReason::NoRestart)
        };
        Ok(LevelInfo {
            max_level: Some(max),
            next_level: Some(next),
            restart_reason: Some(reason),
            restart_level: Some(restart_level),
        })
    }
}

/// Storage access for one archive.
struct Realm<'r, 'a> {
    app: &'r App<'a>,
    name: &'r str,
    /// A dry run: repairs are announced, never saved.
    dry: bool,
}

impl Realm<'_, '_> {
    fn get(&self, var: &str) -> Result<Option<String>, Failure> {
        Ok(self.app.storage.get(self.name, var)?)
    }

    fn save(&self, var: &str, value: impl std::fmt::Display) -> Result<(), Failure> {
        if self.dry {
            return Ok(());
        }
        Ok(self.app.storage.save(self.name, var, value)?)
    }

    /// A repair of the stored state: an error (a warning if `warning`) in a real run, a
    /// notice of what the run would do in a dry run.
    fn repair(&self, message: &str, warning: bool) {
        let report = self.app.report;
        if self.dry {
            report.info(&format!(
                "The backup would repair its level state: {message}"
            ));
        } else if warning {
            report.warning(message);
        } else {
            report.error(message);
        }
    }

    fn int(&self, var: &str) -> Result<Option<i64>, Failure> {
        stored_int(self.app, self.name, var)
    }

    fn date(&self, var: &str) -> Result<Option<i64>, Failure> {
        stored_date(self.app, self.name, var)
    }

    /// The stored value, or (with an error message, as the original) the fallback, saved.
    fn int_or_repair(&self, var: &str, message: &str) -> Result<i64, Failure> {
        if let Some(v) = self.int(var)? {
            return Ok(v);
        }
        self.repair(message, false);
        self.save(var, 0)?;
        Ok(0)
    }

    fn date_or_repair(&self, var: &str, message: &str, today: i64) -> Result<i64, Failure> {
        if let Some(d) = self.date(var)? {
            return Ok(d);
        }
        self.repair(message, false);
        self.save(var, format_date(today))?;
        Ok(today)
    }

    /// The size of the level's backup; a missing one is reported and stored as 0.
    fn size_or_zero(&self, level: u32) -> Result<i64, Failure> {
        let var = format!("{}{level}", vars::BACKUP_SIZE);
        if let Some(size) = self.int(&var)? {
            return Ok(size);
        }
        self.repair(
            &format!("Unable to obtain size of the level {level} backup file."),
            true,
        );
        self.save(&var, 0)?;
        Ok(0)
    }

    fn restart_level(&self, ctx: &ArchiveContext<'_, '_>, max: u32) -> Result<u32, Failure> {
        let limit = ctx.settings.int(Opt::MaxRestartLevelSize).unwrap_or(0);
        if limit == 0 || self.get(&format!("{}0", vars::BACKUP_SIZE))?.is_none() {
            return Ok(1);
        }
        let level0 = self.size_or_zero(0)?;
        let mut level = 1;
        if level0 > 0 {
            while level + 1 < max
                && (self.size_or_zero(level)? as f64 / level0 as f64) * 100.0 > limit as f64
            {
                level += 1;
            }
        }
        Ok(level)
    }

    fn restart(
        &self,
        ctx: &ArchiveContext<'_, '_>,
        next: u32,
        restart_level: u32,
    ) -> Result<(u32, RestartReason), Failure> {
        let settings = ctx.settings;
        let set = |opt| settings.int(opt).filter(|&v| v != 0);
        if next < 1 {
            return Ok((next, RestartReason::NoRestart));
        }
        if let Some(limit) = set(Opt::FullRestartAfterCount) {
            let count = self.int_or_repair(
                vars::RESTART_COUNT,
                "Unable to read the restart count. Setting it to 0.",
            )?;
            if count >= limit {
                return Ok((0, RestartReason::RestartCountLimitReached));
            }
        }
        let today = today();
        if let Some(limit) = set(Opt::FullRestartAfterAge) {
            let last = self.date_or_repair(
                vars::LAST_FULL_RESTART,
                "Unable to read the last full restart date. Setting it to today.",
                today,
            )?;
            if today - last > limit {
                return Ok((0, RestartReason::LastFullRestartAgeLimitReached));
            }
        }
        if next < 2 {
            return Ok((next, RestartReason::NoRestart));
        }
        if settings
            .int(Opt::RestartAfterLevel)
            .is_some_and(|limit| i64::from(next) > limit)
        {
            return Ok((restart_level, RestartReason::BackupLevelLimitReached));
        }
        if let Some(limit) = set(Opt::RestartAfterAge) {
            let last = self.date_or_repair(
                vars::LAST_RESTART,
                "Unable to read the last restart date. Setting it to today.",
                today,
            )?;
            if today - last > limit {
                return Ok((restart_level, RestartReason::LastRestartAgeLimitReached));
            }
        }
        Ok((next, RestartReason::NoRestart))
    }
}

/// Records what restarting needs after the backup `backup` of level `info.next_level` was
/// made: restart count and dates when a restart happened, and the backup's size.
pub fn save_level_info(
    app: &App<'_>,
    ctx: &ArchiveContext<'_, '_>,
    info: &LevelInfo,
    backup_size: u64,
) -> Result<(), Failure> {
    let (Some(next), Some(reason)) = (info.next_level, info.restart_reason) else {
        return Ok(());
    };
    if !saves_level_state(ctx) {
        return Ok(());
    }
    let realm = Realm {
        app,
        name: ctx.settings.name(),
        dry: false,
    };
    // Saved in one write, so a failure leaves the realm as it was, never half updated.
    let mut updates: Vec<(String, String)> = Vec::new();
    if reason != RestartReason::NoRestart {
        let count = realm.int(vars::RESTART_COUNT)?.unwrap_or(0);
        updates.push((vars::RESTART_COUNT.into(), (count + 1).to_string()));
    }
    if next < 2 || reason != RestartReason::NoRestart {
        let today = format_date(today()).to_string();
        updates.push((vars::LAST_RESTART.into(), today.clone()));
        if next == 0 {
            updates.push((vars::LAST_FULL_RESTART.into(), today));
            updates.push((vars::RESTART_COUNT.into(), 0.to_string()));
        }
    }
    updates.push((
        format!("{}{next}", vars::BACKUP_SIZE),
        backup_size.to_string(),
    ));
    app.storage.save_all(realm.name, &updates)?;
    // Sizes of the levels above `next` stay in the realm, as the original leaves them (it
    // drops them from memory only, after its last write). They are overwritten when the chain
    // reaches those levels again, and restarting never looks above the current level.
    Ok(())
}

/// Checks, before the backup is written, the state the level logic reads and, once the
/// backup exists, writes: the realm is readable and each restart variable in it holds a number
/// or a date; if the level state is to be saved, the storage directory exists (created again,
/// announced as at the start, if it was removed) and the realm can be written there. Without
/// this a broken realm or storage directory was found only after the backup was made, on
/// every run.
pub fn check_level_state(app: &App<'_>, ctx: &ArchiveContext<'_, '_>) -> Result<(), Failure> {
    if !ctx.supports(Opt::Incremental) || !ctx.settings.flag(Opt::Restarting) {
        return Ok(());
    }
    let name = ctx.settings.name();
    if saves_level_state(ctx) && app.storage.check_writable(name)? {
        app.report
            .notice(&crate::storage::created_notice(app.storage.dir()));
    }
    for (var, value) in app.storage.vars(name)? {
        let is_size = var
            .strip_prefix(vars::BACKUP_SIZE)
            .is_some_and(|level| !level.is_empty() && level.bytes().all(|b| b.is_ascii_digit()));
        if var == vars::LAST_RESTART || var == vars::LAST_FULL_RESTART {
            parse_stored_date(app, name, &var, &value)?;
        } else if is_size || var == vars::RESTART_COUNT {
            parse_stored_int(app, name, &var, &value)?;
        }
    }
    Ok(())
}

/// Whether the run saves the level state in the realm once the backup exists
/// ([`save_level_info`]).
pub fn saves_level_state(ctx: &ArchiveContext<'_, '_>) -> bool {
    ctx.incremental() && ctx.settings.flag(Opt::Restarting)
}

/// A number stored in `realm`, `None` if not stored.
pub fn stored_int(app: &App<'_>, realm: &str, var: &str) -> Result<Option<i64>, Failure> {
    app.storage
        .get(realm, var)?
        .map(|text| parse_stored_int(app, realm, var, &text))
        .transpose()
}

/// A date stored in `realm` (days since 1970-01-01), `None` if not stored.
pub fn stored_date(app: &App<'_>, realm: &str, var: &str) -> Result<Option<i64>, Failure> {
    app.storage
        .get(realm, var)?
        .map(|text| parse_stored_date(app, realm, var, &text))
        .transpose()
}

fn parse_stored_int(app: &App<'_>, realm: &str, var: &str, text: &str) -> Result<i64, Failure> {
    text.trim()
        .parse()
        .map_err(|_| stored_value_error(app, realm, var, text, "a number"))
}

fn parse_stored_date(app: &App<'_>, realm: &str, var: &str, text: &str) -> Result<i64, Failure> {
    parse_date(text).ok_or_else(|| stored_value_error(app, realm, var, text, "a date (YYYY-MM-DD)"))
}

fn stored_value_error(app: &App<'_>, realm: &str, var: &str, text: &str, what: &str) -> Failure {
    Failure::Storage(format!(
        "the value \"{text}\" of \"{var}\" in the storage realm \"{}\" is not {what}",
        app.storage.realm_file(realm).display()
    ))
}

/// Today's local date, in days since 1970-01-01 (the original used `date.today()`).
pub fn today() -> i64 {
    // jiff reads `TZ` as localtime(3) does: a zone name, a file or a POSIX rule such as
    // `AAT-05:30:00`; without it, /etc/localtime.
    let now = jiff::Zoned::now();
    let date = now.date();
    days_from_civil(
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD`, as Python's `str(date)`.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYY-MM-DD` (month and day may have one digit, as `strptime` allows).
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || y.len() != 4
        || !(1..=2).contains(&m.len())
        || !(1..=2).contains(&d.len())
        || ![y, m, d]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days_in_month)
        .contains(&d)
        .then(|| days_from_civil(y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::archive::ArchiveSettings;
    use crate::app::testing::Sandbox;
    use crate::app::{create, SpecRef};
    use crate::config::{RawOptions, Value};
    use crate::report::Verbosity;

    /// The levels `aa` would choose for the next backup of `home`, or why it cannot.
    fn levels(
        sb: &Sandbox,
        home: &SpecRef,
        command_line: &RawOptions,
    ) -> Result<LevelInfo, Failure> {
        let (info, _, _) = sb.run_with(command_line, Verbosity::Normal, |app| {
            let spec = app.load_spec(&home.path).unwrap();
            let settings = ArchiveSettings::new(spec, app.config).unwrap();
            let ctx = ArchiveContext::new(app, &settings).unwrap();
            LevelInfo::compute(app, &ctx)
        });
        info
    }

    fn next(sb: &Sandbox, home: &SpecRef) -> LevelInfo {
        levels(sb, home, &RawOptions::new()).unwrap()
    }

    fn level_option(level: i64) -> RawOptions {
        let mut raw = RawOptions::new();
        raw.set(Opt::Level, Some(Value::Int(level)));
        raw
    }

    /// Backs `home` up; the warnings it reported.
    fn backup(sb: &Sandbox, home: &SpecRef) -> Vec<String> {
        let (ok, report, memory) = sb.run(Verbosity::Normal, |app| {
            create::run(app, std::slice::from_ref(home))
        });
        assert!(ok && report.errors() == 0, "{:?}", memory.err());
        memory.err()
    }

    #[test]
    fn increments_follow_the_chain_and_restart_after_the_level_limit() {
        let sb = Sandbox::new();
        let home = sb.spec(
            "home",
            "incremental = yes\nrestarting = yes\nrestart-after-level = 2",
        );
        let first = next(&sb, &home);
        assert_eq!(first.max_level, Some(0));
        assert_eq!(first.next_level, Some(0));
        assert_eq!(first.current_level(), None);
        for _ in 0..3 {
            assert!(backup(&sb, &home).is_empty());
        }
        assert_eq!(sb.dest_files(), ["home.1.tar", "home.2.tar", "home.tar"]);
        let fourth = next(&sb, &home);
        assert_eq!(fourth.current_level(), Some(2));
        assert_eq!(fourth.next_level, Some(1));
        assert_eq!(
            fourth.restart_reason,
            Some(RestartReason::BackupLevelLimitReached)
        );
        assert_eq!(
            backup(&sb, &home),
            ["aa: Warning! [home] Maximal backup level reached. Restarting to level 1."]
        );
        // Level 1 was made again; the realm dates the restart today.
        let (last_restart, _, _) = sb.run(Verbosity::Normal, |app| {
            stored_date(app, "home", vars::LAST_RESTART).unwrap()
        });
        assert_eq!(last_restart, Some(today()));
        assert_eq!(next(&sb, &home).next_level, Some(2));
    }

    #[test]
    fn a_level_given_is_taken_unless_beyond_the_chain() {
        let sb = Sandbox::new();
        let home = sb.spec("home", "incremental = yes");
        let level = |l| levels(&sb, &home, &level_option(l)).map(|i| i.next_level);
        assert_eq!(level(5).unwrap(), Some(0));
        backup(&sb, &home);
        backup(&sb, &home);
        assert_eq!(level(5).unwrap(), Some(2));
        assert_eq!(level(1).unwrap(), Some(1));
        assert_eq!(level(0).unwrap(), Some(0));
        let failure = level(-1).unwrap_err();
        assert!(matches!(failure, Failure::Option(_)), "{failure:?}");
        assert_eq!(failure.to_string(), "The backup level -1 is not valid.");
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(parse_date("2000-03-01"), Some(days_from_civil(2000, 3, 1)));
        assert_eq!(parse_date("2024-2-9"), Some(days_from_civil(2024, 2, 9)));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(
            parse_date("2024-02-29").map(format_date).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(parse_date("24-02-01"), None);
        assert_eq!(parse_date("x"), None);
        for d in [-1000, 0, 11_016, 20_000, 60_000] {
            assert_eq!(parse_date(&format_date(d)), Some(d));
        }
        assert_eq!(
            days_from_civil(2026, 11, 26) - days_from_civil(2026, 10, 27),
            30
        );
    }
}

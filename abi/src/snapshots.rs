//! The state of incremental backups: GNU tar snapshot files (`--listed-incremental`), kept
//! by every provider that makes incremental backups in GNU tar's terms, in one layout, so
//! that the providers can continue each other's chains.
//!
//! Layout, as the original's: `<workDir>/snapshots/NAME.snar` for level 0 and
//! `NAME.LEVEL.snar` for higher levels. A level N backup starts from level N-1's snapshot
//! (level 0 from none) and writes its own snapshot to a private working file
//! ([`Snapshots::working_file`], [`Snapshots::working_copy`]), so an interrupted run never
//! alters a stored snapshot; only a completed run moves its working file into place (an
//! atomic rename within the directory, after `fsync`) and drops the snapshots above it, which
//! no longer describe the backups that follow the new level N ([`Snapshots::install`]).
//!
//! Snapshots are created mode 0600 (the original applied the umask to 0666): they are private
//! state that lists every backed-up name.
//!
//! Unlike the original's glob `NAME.*.snar`, only `NAME.<digits>.snar` belongs to `NAME`, so the
//! archive `proj` never picks up (or deletes) the snapshots of `proj.v2`.
//!
//! Besides the snapshot files, this module holds what the incremental methods of the service
//! API do with backup files regardless of how a provider writes them:
//! [`remove_backup_increments`] and [`does_any_backup_level_exist`], and the clock a snapshot's
//! dump time must be read from ([`dump_start_time`]).

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::naming::{accessible, archive_name_problem};
use crate::plugin::backup_path;
use crate::{BackupDefinition, ProviderError};

const SNAPSHOTS_SUBDIR: &str = "snapshots";
const SNAPSHOT_SUFFIX: &str = ".snar";
/// Working files end differently, so they are never taken for a stored snapshot.
const WORKING_PREFIX: &str = ".working-";
const WORKING_SUFFIX: &str = ".snar.tmp";

/// The dump time to record in the snapshot of a backup that starts now, as (seconds,
/// nanoseconds) since the epoch. Call it before reading anything of the tree: it waits until the
/// clock files are stamped with ticks past the present (one scheduler tick, 4 ms at HZ=250, and
/// the moment the kernel takes to publish it) and returns that tick.
///
/// The next level stores a file again only if its mtime or ctime is not older than this time,
/// so the time decides what each level holds. The kernel stamps files from its coarse clock,
/// which lags the precise clock by up to one tick, and, on file systems with multigrain
/// timestamps (ext4, xfs, btrfs, tmpfs since Linux 6.13), stamps a change from the precise clock
/// when the previous stamp has been looked at:
///
/// * a dump time from the precise clock (GNU tar's) can be later than the stamp of a change
///   made just after it; if the backup had already read that file, no level ever stores the
///   change (our tests hit this about every other run);
/// * the coarse clock's current value can be the stamp of a change made in the same tick just
///   before the backup started, and even the next tick's value can be older than a precise
///   stamp made before that tick was published; the next level would store that file again.
///
/// The first tick later than the precise time at the call is later than the stamp of every
/// change made before the call and no later than the stamp of any change made after the tick
/// was read, so each level holds exactly what changed since the previous one started, and no
/// change is missed.
pub fn dump_start_time() -> (i64, u32) {
    #[cfg(target_os = "linux")]
    if let (Some(now), Some(mut tick)) = (
        clock_now(libc::CLOCK_REALTIME),
        clock_now(libc::CLOCK_REALTIME_COARSE),
    ) {
        // Bounded in case the clock is stepped back at this very moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while tick <= now && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_micros(250));
            match clock_now(libc::CLOCK_REALTIME_COARSE) {
                Some(next) => tick = next,
                None => break,
            }
        }
        return tick;
    }
    // Elsewhere (or should the calls fail): the precise clock, one second early to stay safe.
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX) - 1,
            d.subsec_nanos(),
        ),
        Err(_) => (0, 0),
    }
}

/// The time by the real-time clock `clock`, as (seconds, nanoseconds).
#[cfg(target_os = "linux")]
fn clock_now(clock: libc::clockid_t) -> Option<(i64, u32)> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some((ts.tv_sec, ts.tv_nsec.clamp(0, 999_999_999) as u32))
}

/// The environment variable that turns off the device number check of incremental backups,
/// for every provider (GNU tar's `--no-check-device`): `1` (or `true`, `yes`) turns it off, `0`
/// (or `false`, `no`, empty) keeps it. On file systems whose device numbers change from one
/// mount to the next (some network, FUSE and removable file systems, LVM snapshots) every
/// directory would otherwise look replaced and each level would store everything. A variable
/// rather than a `.aa` option because the provider API has no per-call options yet.
pub const NO_CHECK_DEVICE_VAR: &str = "AA_NO_CHECK_DEVICE";

/// Whether incremental backups compare device numbers, as [`NO_CHECK_DEVICE_VAR`] says; a
/// value that means neither is an `INVALID_VALUE` error naming the variable.
pub fn check_device_from_env() -> Result<bool, ProviderError> {
    parse_check_device(std::env::var_os(NO_CHECK_DEVICE_VAR).as_deref())
}

/// [`check_device_from_env`] for the value `value` (`None`: not set).
pub fn parse_check_device(value: Option<&OsStr>) -> Result<bool, ProviderError> {
    let Some(value) = value else {
        return Ok(true);
    };
    match value.to_string_lossy().trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(false),
        "" | "0" | "false" | "no" => Ok(true),
        _ => Err(ProviderError::invalid_value(format!(
            "{NO_CHECK_DEVICE_VAR}: invalid value '{}' (expected 1 or 0)",
            value.to_string_lossy()
        ))),
    }
}

fn io_error(path: &Path, err: &io::Error) -> ProviderError {
    ProviderError::from_io(path.display(), err)
}

/// Parses a level token: a canonical positive decimal number (level 0 has no token).
pub fn parse_level(token: &[u8]) -> Option<u32> {
    if token.is_empty() || token[0] == b'0' || !token.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(token).ok()?.parse().ok()
}

/// The level of the snapshot `file_name` if it belongs to the archive `id`.
pub fn snapshot_level_for(file_name: &[u8], id: &str) -> Option<u32> {
    let stem = file_name.strip_suffix(SNAPSHOT_SUFFIX.as_bytes())?;
    let rest = stem.strip_prefix(id.as_bytes())?;
    if rest.is_empty() {
        return Some(0);
    }
    parse_level(rest.strip_prefix(b".")?)
}

/// Splits a snapshot file name into the archive name and the level.
pub fn parse_snapshot_name(file_name: &[u8]) -> Option<(&[u8], u32)> {
    let stem = file_name.strip_suffix(SNAPSHOT_SUFFIX.as_bytes())?;
    if stem.is_empty() {
        return None;
    }
    if let Some(dot) = stem.iter().rposition(|&b| b == b'.') {
        if let Some(level) = parse_level(&stem[dot + 1..]) {
            if dot > 0 {
                return Some((&stem[..dot], level));
            }
        }
    }
    Some((stem, 0))
}

/// Checks an archive name is usable as a file name prefix in the snapshots directory.
pub fn check_backup_id(id: &str) -> Result<(), ProviderError> {
    match archive_name_problem(id) {
        Some(problem) => Err(ProviderError::invalid_value(format!(
            "invalid backup id '{id}': it must be usable as a file name ({problem})"
        ))),
        None => Ok(()),
    }
}

/// The snapshots directory of one provider.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    /// The snapshots of the provider whose work directory is `work_dir`; nothing is created.
    pub fn new(work_dir: &Path) -> Snapshots {
        Snapshots {
            dir: work_dir.join(SNAPSHOTS_SUBDIR),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn create_dir(&self) -> Result<(), ProviderError> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, &e))
    }

    /// The snapshot of `level`, optionally of a kept backup (a name the original defined but
    /// never creates).
    pub fn path(&self, id: &str, level: u32, keeping_id: Option<&str>) -> PathBuf {
        let mut name = String::from(id);
        if level > 0 {
            name.push('.');
            name.push_str(&level.to_string());
        }
        if let Some(keep) = keeping_id.filter(|k| !k.is_empty()) {
            name.push('.');
            name.push_str(keep);
        }
        name.push_str(SNAPSHOT_SUFFIX);
        self.dir.join(name)
    }

    /// The regular files of the directory; none if it does not exist (yet).
    fn file_names(&self) -> Result<Vec<Vec<u8>>, ProviderError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&self.dir, &e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.dir, &e))?;
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                names.push(entry.file_name().as_bytes().to_vec());
            }
        }
        Ok(names)
    }

    /// Stored snapshot levels of `id`, ascending.
    pub fn levels(&self, id: &str) -> Result<Vec<u32>, ProviderError> {
        let mut levels: Vec<u32> = self
            .file_names()?
            .iter()
            .filter_map(|n| snapshot_level_for(n, id))
            .collect();
        levels.sort_unstable();
        Ok(levels)
    }

    /// The highest level that can be created now: one above the highest snapshot, 0 if none.
    pub fn max_level(&self, id: &str) -> Result<u32, ProviderError> {
        Ok(self.levels(id)?.last().map_or(0, |&l| l.saturating_add(1)))
    }

    /// The level a backup of `id` asked for with `level` gets: the next one for `None`; a
    /// level above [`Snapshots::max_level`] is refused.
    pub fn resolve_level(&self, id: &str, level: Option<u32>) -> Result<u32, ProviderError> {
        let max_level = self.max_level(id)?;
        let level = level.unwrap_or(max_level);
        if level > max_level {
            return Err(ProviderError::invalid_value(format!(
                "Backup level {level} of '{id}' is out of the interval 0..{max_level}."
            )));
        }
        self.check_level(id, level)?;
        Ok(level)
    }

    /// Checks that a level `level` backup of `id` will be able to read and store its snapshots:
    /// the previous level's snapshot, if present, is a regular file; the level's own, which
    /// [`Snapshots::install`] replaces, is a regular file or absent; the directory, if it
    /// exists yet, is one we can create files in. [`Snapshots::resolve_level`] asks it, so a
    /// provider learns of a bad path before it writes the backup, rather than after it replaced
    /// the old one.
    pub fn check_level(&self, id: &str, level: u32) -> Result<(), ProviderError> {
        match fs::metadata(&self.dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(&self.dir, &e)),
            Ok(m) if !m.is_dir() => {
                return Err(ProviderError::io(
                    libc::ENOTDIR,
                    format!(
                        "Snapshot directory \"{}\" is not a directory.",
                        self.dir.display()
                    ),
                ))
            }
            Ok(_) if !accessible(&self.dir, libc::W_OK | libc::X_OK) => {
                return Err(ProviderError::io(
                    libc::EACCES,
                    format!(
                        "Snapshot directory \"{}\" is not writable.",
                        self.dir.display()
                    ),
                ))
            }
            Ok(_) => {}
        }
        let own = self.path(id, level, None);
        let previous = level.checked_sub(1).map(|l| self.path(id, l, None));
        for path in previous.iter().chain([&own]) {
            match fs::symlink_metadata(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(path, &e)),
                Ok(m) if m.is_file() => {}
                Ok(m) => {
                    return Err(ProviderError::io(
                        if m.is_dir() {
                            libc::EISDIR
                        } else {
                            libc::EINVAL
                        },
                        format!("Snapshot \"{}\" is not a regular file.", path.display()),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Names of the archives that have snapshots, sorted and without duplicates.
    pub fn ids(&self) -> Result<Vec<String>, ProviderError> {
        let mut ids: Vec<String> = self
            .file_names()?
            .iter()
            .filter_map(|n| parse_snapshot_name(n))
            .filter_map(|(id, _)| std::str::from_utf8(id).ok().map(str::to_string))
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn remove(&self, path: &Path) -> Result<(), ProviderError> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(path, &e)),
            _ => Ok(()),
        }
    }

    /// Removes the snapshots of `id` of `level` and above.
    pub fn remove_from(&self, id: &str, level: u32) -> Result<(), ProviderError> {
        for l in self.levels(id)?.into_iter().filter(|&l| l >= level) {
            self.remove(&self.path(id, l, None))?;
        }
        Ok(())
    }

    /// Removes one snapshot if it exists.
    pub fn remove_one(
        &self,
        id: &str,
        level: u32,
        keeping_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        self.remove(&self.path(id, level, keeping_id))
    }

    /// A new, empty working file in the snapshots directory (created if needed), mode 0600.
    /// Deleted when dropped, unless [installed](Snapshots::install).
    pub fn working_file(&self) -> Result<WorkingFile, ProviderError> {
        self.create_dir()?;
        self.remove_abandoned_working_files();
        WorkingFile::create_in(&self.dir)
    }

    /// Removes the working files that a run killed before it could clean up (SIGKILL, a power
    /// cut) left behind. A working file is abandoned when the process named in it no longer
    /// exists and nobody holds its lock (a live run keeps it locked; the lock also covers a
    /// run in another PID namespace sharing the directory). Best effort: what cannot be
    /// checked or removed stays.
    fn remove_abandoned_working_files(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = working_file_pid(entry.file_name().as_bytes()) else {
                continue;
            };
            if process_exists(pid) {
                continue;
            }
            let path = entry.path();
            if let Ok(file) = File::open(&path) {
                if try_lock(&file) {
                    log::debug!("removing {}, left by a run that was killed", path.display());
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }

    /// A working file for a level `level` backup that starts as a copy of level `level - 1`'s
    /// snapshot, or empty for level 0 (GNU tar reads an empty file as "no previous dump").
    pub fn working_copy(&self, id: &str, level: u32) -> Result<WorkingFile, ProviderError> {
        let mut working = self.working_file()?;
        if level > 0 {
            let previous = self.path(id, level - 1, None);
            let mut source = File::open(&previous).map_err(|e| io_error(&previous, &e))?;
            io::copy(&mut source, working.file()).map_err(|e| io_error(&working.path, &e))?;
        }
        Ok(working)
    }

    /// Stores the snapshot of a completed level `level` backup and removes the levels above.
    /// Call it only once the backup itself is in place: a snapshot must never claim content
    /// that no stored backup holds.
    pub fn install(&self, id: &str, level: u32, working: WorkingFile) -> Result<(), ProviderError> {
        let target = self.path(id, level, None);
        working.persist(&target)?;
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.remove_from(id, level + 1)
    }

    /// Removes every snapshot of `id`.
    pub fn purge(&self, id: &str) -> Result<(), ProviderError> {
        self.remove_from(id, 0)
    }
}

/// The process id in the name of a working file (see [`WorkingFile::create_in`]).
fn working_file_pid(name: &[u8]) -> Option<libc::pid_t> {
    let rest = name
        .strip_prefix(WORKING_PREFIX.as_bytes())?
        .strip_suffix(WORKING_SUFFIX.as_bytes())?;
    let digits = rest.split(|&b| b == b'-').next()?;
    let pid: libc::pid_t = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (pid > 0).then_some(pid)
}

fn process_exists(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Takes an exclusive lock on `file` without waiting; it lasts until the file is closed.
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an open descriptor.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// A snapshot being written, removed when dropped unless it was installed.
#[derive(Debug)]
pub struct WorkingFile {
    path: PathBuf,
    file: File,
    keep: bool,
}

impl WorkingFile {
    /// Creates a file of a name no other working file has (a unique name from the process id,
    /// a counter and the time; `create_new` refuses to reuse one left by a crash).
    fn create_in(dir: &Path) -> Result<WorkingFile, ProviderError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut last_error = None;
        for _ in 0..100 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "{WORKING_PREFIX}{}-{}-{nanos:09}{WORKING_SUFFIX}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = dir.join(name);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => {
                    // Held while this run lives, so that no other run takes the file for
                    // abandoned (see `Snapshots::remove_abandoned_working_files`).
                    try_lock(&file);
                    return Ok(WorkingFile {
                        path,
                        file,
                        keep: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => return Err(io_error(dir, &e)),
            }
        }
        let err = last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists));
        Err(io_error(dir, &err))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file, open for reading and writing.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Makes the content durable and renames the file to `target` atomically.
    fn persist(mut self, target: &Path) -> Result<(), ProviderError> {
        // Whoever wrote it (us or GNU tar) may have replaced it; sync what is there now.
        File::open(&self.path)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error(&self.path, &e))?;
        fs::rename(&self.path, target).map_err(|e| io_error(target, &e))?;
        self.keep = true;
        Ok(())
    }
}

impl Deref for WorkingFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for WorkingFile {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkingFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The level of the backup file `file_name` of archive `id` (`NAME[.LEVEL][.KEEPID].EXT`), if it
/// is one.
pub fn backup_level_for(
    file_name: &[u8],
    id: &str,
    keeping_id: Option<&str>,
    ext: &str,
) -> Option<u32> {
    let rest = file_name.strip_prefix(id.as_bytes())?;
    let rest = rest.strip_suffix(ext.as_bytes())?.strip_suffix(b".")?;
    let rest = match keeping_id.filter(|k| !k.is_empty()) {
        Some(keep) => rest.strip_suffix(keep.as_bytes())?.strip_suffix(b".")?,
        None => rest,
    };
    if rest.is_empty() {
        return Some(0);
    }
    parse_level(rest.strip_prefix(b".")?)
}

/// Whether `dir` holds a backup of `id` of `from_level` or above.
pub fn any_backup_level_exists(
    dir: &Path,
    id: &str,
    keeping_id: Option<&str>,
    ext: &str,
    from_level: u32,
) -> Result<bool, ProviderError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error(dir, &e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, &e))?;
        let name = entry.file_name();
        let level = backup_level_for(OsStr::as_bytes(&name), id, keeping_id, ext);
        if level.is_some_and(|l| l >= from_level) && entry.path().is_file() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The service API's `doesAnyBackupLevelExist`: whether the destination holds a backup of
/// `definition` of `from_level` or above.
pub fn does_any_backup_level_exist(
    definition: &BackupDefinition,
    from_level: u32,
    keeping_id: Option<&str>,
) -> Result<bool, ProviderError> {
    let ext = definition.backup_type.extension().ok_or_else(|| {
        ProviderError::unsupported_type(format!(
            "Unsupported backup type: {}",
            definition.backup_type
        ))
    })?;
    any_backup_level_exists(
        definition.destination(),
        &definition.backup_id,
        keeping_id,
        ext,
        from_level,
    )
}

/// The service API's `removeBackupIncrements`: removes the backups of `level` (of the next
/// level to make if `None`) and above, up to the first missing one, with their snapshots.
pub fn remove_backup_increments(
    snapshots: &Snapshots,
    definition: &BackupDefinition,
    level: Option<u32>,
    keeping_id: Option<&str>,
) -> Result<(), ProviderError> {
    let id = definition.backup_id.as_str();
    check_backup_id(id)?;
    let level = match level {
        Some(level) => level,
        None => snapshots.max_level(id)?,
    };
    let mut current = level;
    loop {
        let path = backup_path(definition, Some(current), keeping_id)?;
        if fs::symlink_metadata(&path).is_err() {
            break;
        }
        fs::remove_file(&path).map_err(|e| io_error(&path, &e))?;
        snapshots.remove_one(id, current, keeping_id)?;
        current += 1;
    }
    // Snapshots without a backup file (e.g. the files were deleted by hand) would make the
    // next level build on content that no longer exists.
    if keeping_id.is_none() && snapshots.max_level(id)? > level {
        snapshots.remove_from(id, level)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(path: &Path) -> (i64, i64) {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).unwrap();
        // The later of the two times is the one a level compares.
        (meta.mtime(), meta.mtime_nsec()).max((meta.ctime(), meta.ctime_nsec()))
    }

    /// The race [`dump_start_time`] closes: a file written right after the dump time is read
    /// must never look older than it. With the precise clock this fails within a few rounds.
    #[test]
    fn a_change_after_the_dump_time_is_never_older_than_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        for round in 0..100 {
            let (sec, nsec) = dump_start_time();
            fs::write(&file, round.to_string()).unwrap();
            let stamp = stamp(&file);
            assert!(
                stamp >= (sec, i64::from(nsec)),
                "round {round}: stamp {stamp:?} is older than the dump time {sec}.{nsec:09}"
            );
        }
    }

    /// The other side: a file written right before the dump time is read is older than it, so
    /// the next level does not store it again. Its stamp is looked at first, so that a file
    /// system with multigrain timestamps stamps the change from the precise clock. With the
    /// coarse clock's current value this fails within a few rounds.
    #[test]
    fn a_change_before_the_dump_time_is_older_than_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        for round in 0..100 {
            fs::write(&file, round.to_string()).unwrap();
            let stamp = stamp(&file);
            let (sec, nsec) = dump_start_time();
            assert!(
                stamp < (sec, i64::from(nsec)),
                "round {round}: stamp {stamp:?} is not older than the dump time {sec}.{nsec:09}"
            );
        }
    }

    /// Working files of runs that are gone are removed; those of live runs stay.
    #[test]
    fn abandoned_working_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = Snapshots::new(dir.path());
        snapshots.create_dir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let name =
            |pid: u32, n: u32| format!("{WORKING_PREFIX}{pid}-{n}-000000001{WORKING_SUFFIX}");
        let path = |name: &str| snapshots.dir().join(name);
        let abandoned = name(dead, 0);
        let locked = name(dead, 1);
        let ours = name(std::process::id(), 2);
        for n in [
            &abandoned,
            &locked,
            &ours,
            "proj.snar",
            ".working-x.snar.tmp",
        ] {
            fs::write(path(n), b"").unwrap();
        }
        // A run in another PID namespace: its pid means nothing here, but it holds the lock.
        let holder = File::open(path(&locked)).unwrap();
        assert!(try_lock(&holder));

        let new = snapshots.working_file().unwrap();
        let mut left = fs::read_dir(snapshots.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>();
        left.sort();
        let new_name = new
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let mut expected = vec![
            locked,
            ours,
            new_name,
            "proj.snar".into(),
            ".working-x.snar.tmp".into(),
        ];
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(working_file_pid(b".working-12-0-5.snar.tmp"), Some(12));
        assert_eq!(working_file_pid(b".working-0-0-5.snar.tmp"), None);
        assert_eq!(working_file_pid(b".working-12-0-5.snar"), None);
    }

    #[test]
    fn no_check_device_values() {
        let parse = |v: Option<&str>| parse_check_device(v.map(OsStr::new));
        assert!(parse(None).unwrap());
        for off in ["1", "true", "YES", " 1 "] {
            assert!(!parse(Some(off)).unwrap(), "{off}");
        }
        for on in ["", "0", "false", "no"] {
            assert!(parse(Some(on)).unwrap(), "{on}");
        }
        let err = parse(Some("maybe")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "AA_NO_CHECK_DEVICE: invalid value 'maybe' (expected 1 or 0)"
        );
    }

    #[test]
    fn snapshot_names_belong_to_exactly_one_archive() {
        assert_eq!(snapshot_level_for(b"proj.snar", "proj"), Some(0));
        assert_eq!(snapshot_level_for(b"proj.3.snar", "proj"), Some(3));
        assert_eq!(snapshot_level_for(b"proj.v2.snar", "proj"), None);
        assert_eq!(snapshot_level_for(b"proj.v2.1.snar", "proj"), None);
        assert_eq!(snapshot_level_for(b"proj.v2.1.snar", "proj.v2"), Some(1));
        assert_eq!(snapshot_level_for(b"proj.03.snar", "proj"), None);
        assert_eq!(snapshot_level_for(b"proj.0.snar", "proj"), None);
        assert_eq!(snapshot_level_for(b"projx.snar", "proj"), None);
        assert_eq!(snapshot_level_for(b"proj.snar.tmp", "proj"), None);
        assert_eq!(snapshot_level_for(b"proj.99999999999.snar", "proj"), None);
    }

    #[test]
    fn parses_stored_names() {
        assert_eq!(parse_snapshot_name(b"home.snar"), Some((&b"home"[..], 0)));
        assert_eq!(parse_snapshot_name(b"home.2.snar"), Some((&b"home"[..], 2)));
        assert_eq!(
            parse_snapshot_name(b"proj.v2.snar"),
            Some((&b"proj.v2"[..], 0))
        );
        assert_eq!(parse_snapshot_name(b".working-x.snar.tmp"), None);
        assert_eq!(
            parse_snapshot_name(b".hidden.snar"),
            Some((&b".hidden"[..], 0))
        );
        assert_eq!(parse_snapshot_name(b"other.txt"), None);
        assert_eq!(parse_snapshot_name(b".snar"), None);
    }

    #[test]
    fn backup_names() {
        let l = |n: &[u8], k| backup_level_for(n, "proj", k, "tar.gz");
        assert_eq!(l(b"proj.tar.gz", None), Some(0));
        assert_eq!(l(b"proj.4.tar.gz", None), Some(4));
        assert_eq!(l(b"proj.aa.tar.gz", None), None);
        assert_eq!(l(b"proj.v2.tar.gz", None), None);
        assert_eq!(l(b"proj.tar.gz._partial", None), None);
        assert_eq!(l(b"proj.aa.tar.gz", Some("aa")), Some(0));
        assert_eq!(l(b"proj.2.aa.tar.gz", Some("aa")), Some(2));
        assert_eq!(l(b"proj.2.ab.tar.gz", Some("aa")), None);
        assert_eq!(l(b"proj.tar", None), None);
    }

    #[test]
    fn unusable_ids_are_refused() {
        for id in ["", ".", "..", "a/b", "a\0"] {
            let err = check_backup_id(id).unwrap_err();
            assert_eq!(err.kind, crate::ProviderErrorKind::INVALID_VALUE, "{id:?}");
        }
        for id in ["home", ".hidden", "proj.v2", "-x"] {
            assert!(check_backup_id(id).is_ok(), "{id:?}");
        }
    }

    #[test]
    fn a_snapshot_path_that_is_not_a_file_is_refused_before_the_backup() {
        let work = tempfile::tempdir().unwrap();
        let s = Snapshots::new(work.path());
        assert_eq!(s.resolve_level("p", None).unwrap(), 0, "no directory yet");
        s.create_dir().unwrap();
        fs::create_dir(s.path("p", 0, None)).unwrap();
        let refused = |level| s.resolve_level("p", level).unwrap_err().to_string();
        let shown = |level| s.path("p", level, None).display().to_string();
        assert_eq!(
            refused(None),
            format!("Snapshot \"{}\" is not a regular file.", shown(0))
        );
        fs::remove_dir(s.path("p", 0, None)).unwrap();
        fs::write(s.path("p", 0, None), b"level 0").unwrap();
        fs::create_dir(s.path("p", 1, None)).unwrap();
        assert_eq!(
            refused(None),
            format!("Snapshot \"{}\" is not a regular file.", shown(1))
        );
        // Level 2 would read level 1's.
        fs::write(s.path("p", 2, None), b"level 2").unwrap();
        assert_eq!(
            refused(Some(2)),
            format!("Snapshot \"{}\" is not a regular file.", shown(1))
        );
        assert_eq!(s.resolve_level("p", Some(0)).unwrap(), 0);

        let file = tempfile::tempdir().unwrap();
        fs::write(file.path().join(SNAPSHOTS_SUBDIR), b"").unwrap();
        let err = Snapshots::new(file.path()).check_level("p", 0).unwrap_err();
        assert!(err.to_string().ends_with("\" is not a directory."), "{err}");
    }

    #[test]
    fn snapshot_paths() {
        let s = Snapshots::new(Path::new("/w"));
        assert_eq!(s.path("p", 0, None), Path::new("/w/snapshots/p.snar"));
        assert_eq!(s.path("p", 2, None), Path::new("/w/snapshots/p.2.snar"));
        assert_eq!(
            s.path("p", 2, Some("aa")),
            Path::new("/w/snapshots/p.2.aa.snar")
        );
    }

    #[test]
    fn levels_and_ids_of_a_missing_directory_are_empty() {
        let work = tempfile::tempdir().unwrap();
        let s = Snapshots::new(work.path());
        assert_eq!(s.max_level("p").unwrap(), 0);
        assert!(s.ids().unwrap().is_empty());
        s.purge("p").unwrap();
        assert!(!s.dir().exists(), "reading creates nothing");
    }

    #[test]
    fn working_files_are_private_unique_and_removed_unless_installed() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let work = tempfile::tempdir().unwrap();
        let s = Snapshots::new(work.path());
        let mut a = s.working_file().unwrap();
        let b = s.working_file().unwrap();
        assert_ne!(a.path(), b.path());
        let mode = fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            s.ids().unwrap().is_empty(),
            "working files are not snapshots"
        );
        drop(b);
        a.file().write_all(b"level 0").unwrap();
        s.install("p", 0, a).unwrap();
        assert_eq!(fs::read(s.path("p", 0, None)).unwrap(), b"level 0");

        // Level 1 from level 0, then redoing level 0 drops level 1.
        let mut copy = s.working_copy("p", 1).unwrap();
        copy.file().write_all(b" + 1").unwrap();
        s.install("p", 1, copy).unwrap();
        assert_eq!(fs::read(s.path("p", 1, None)).unwrap(), b"level 0 + 1");
        assert_eq!(s.resolve_level("p", None).unwrap(), 2);
        let err = s.resolve_level("p", Some(3)).unwrap_err();
        assert_eq!(
            err.message(),
            "Backup level 3 of 'p' is out of the interval 0..2."
        );
        {
            let abandoned = s.working_copy("p", 1).unwrap();
            assert!(abandoned.path().exists());
        }
        s.install("p", 0, s.working_file().unwrap()).unwrap();
        assert_eq!(s.levels("p").unwrap(), [0]);
        assert_eq!(
            fs::read_dir(s.dir()).unwrap().count(),
            1,
            "nothing left over"
        );
    }
}

//! The keeping journal: what an interrupted keeping of old backups needs to be finished or
//! undone.
//!
//! Keeping renames the existing backups (`t.tar.xz` -> `t.aa.tar.xz`, the oldest to
//! `t.ab-removing.tar.xz`) before the new backup is made and removes the ones set aside once it
//! exists. A run stopped between the two (Ctrl-C, a shutdown, an OOM kill, a power cut) would
//! leave a `-removing` backup that makes every later keeping fail, and no current backup. So
//! before the first rename the planned renames are written to
//! `<user-config-dir>/journal/NAME.keeping` (atomically: temporary file, `fsync`, rename), and
//! every step is appended as it is done. Recovery reads it:
//!
//! - the new backup is complete (a file at its final name after every rename, which only a
//!   complete backup can be without `overwrite-at-start`; with it, the `complete` mark written
//!   once the provider returned): the backups set aside are removed (rolled forward);
//! - otherwise every rename done is undone, newest first, and with `overwrite-at-start` the
//!   half-written backup is removed first.
//!
//! Recovery is driven by the journal's marks and checks which side of each rename exists, so
//! it can itself be interrupted and run again. It runs when the interrupted run's signal
//! thread handles SIGINT, SIGTERM or SIGHUP (see `crate::interrupt`), and otherwise at the
//! start of the next run of the archive, under its lock. The journal lives in the user
//! configuration directory, not in the destination, which stays laid out as the original
//! lays it out. Paths are stored whole (a changed `dest-dir` does not matter), one per line
//! with `%` and newlines escaped.
//!
//! An object store (`dest-dir = s3://...`, see [`super::backups`]) has no rename: a step is a
//! server-side copy, then a delete of the original. Its journal starts with the store's URL and
//! the `s3-*` options it was opened with ([`StoreRecord`]; the credentials come from the
//! environment, as for the run), so recovery opens it again without the archive's
//! specification, and the steps name objects. A crash between the copy and the delete leaves
//! both names with the same content, which existence alone cannot tell from a backup someone
//! else put at the new name, so a store journal marks each step `start` once the new name is
//! checked free and before the copy, and each undo `undoing` before its copy back. Recovery then
//! settles the first step not done from what exists, and records how (`done`, or `undone` once
//! a half-made copy is deleted), before anything else changes, so a recovery interrupted in
//! turn never mistakes a name it restored for a half-made copy. "The new backup is complete"
//! is the same rule as for files without `overwrite-at-start`: an object at the final name once
//! every step is done, which an upload makes only when it completes. `overwrite-at-start` has
//! no meaning there (a store is never written in place) and is never recorded.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{renameat_with, RenameFlags, CWD};
use rustix::io::Errno;

use crate::destination::{Destination, DestinationError, S3Options, Store};

const SUBDIR: &str = "journal";
const HEADER: &str = "aa keeping journal 1";

/// One planned rename; `hold` for a backup set aside to be removed once the new one exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub from: PathBuf,
    pub to: PathBuf,
    pub hold: bool,
}

/// The object store a journal's names are in: its URL and the `s3-*` options it was opened
/// with (`None`: unset, completed from the environment as for the run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRecord {
    pub url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
}

impl StoreRecord {
    pub fn new(destination: &Destination, options: &S3Options) -> StoreRecord {
        StoreRecord {
            url: destination.to_string(),
            endpoint: options.endpoint.clone(),
            region: options.region.clone(),
            path_style: options.path_style,
        }
    }

    /// Opens the store again, with the credentials of the environment.
    pub fn open(&self) -> Result<Store, DestinationError> {
        let options = S3Options {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            path_style: self.path_style,
            ..S3Options::default()
        };
        Store::open(&Destination::parse(&self.url)?, &options)
    }
}

/// The journal of one archive's keeping, while it is in progress.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Its names are objects of a store: steps are marked when they start.
    store: bool,
}

/// The journal's path for archive `name`.
pub fn journal_path(user_config_dir: &Path, name: &str) -> PathBuf {
    user_config_dir.join(SUBDIR).join(format!("{name}.keeping"))
}

impl Journal {
    /// The journal of files' renames (what the tests of files use).
    #[cfg(test)]
    pub fn create(
        path: PathBuf,
        final_path: &Path,
        overwrite_at_start: bool,
        steps: &[Step],
    ) -> io::Result<Journal> {
        Journal::create_in(path, None, final_path, overwrite_at_start, steps)
    }

    /// Writes the journal of the planned `steps` before the first of them is done, for the
    /// backups of `store` (`None`: files, named by path), whose steps and final backup are then
    /// object names.
    pub fn create_in(
        path: PathBuf,
        store: Option<&StoreRecord>,
        final_path: &Path,
        overwrite_at_start: bool,
        steps: &[Step],
    ) -> io::Result<Journal> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let mut text = format!("{HEADER}\n").into_bytes();
        if let Some(store) = store {
            field(&mut text, "store", store.url.as_bytes());
            if let Some(endpoint) = &store.endpoint {
                field(&mut text, "s3-endpoint", endpoint.as_bytes());
            }
            if let Some(region) = &store.region {
                field(&mut text, "s3-region", region.as_bytes());
            }
            if let Some(path_style) = store.path_style {
                let value: &[u8] = if path_style { b"yes" } else { b"no" };
                field(&mut text, "s3-path-style", value);
            }
        }
        line(&mut text, "final", &[final_path]);
        if overwrite_at_start {
            text.extend_from_slice(b"overwrite-at-start\n");
        }
        for step in steps {
            let kind = if step.hold { "hold" } else { "rename" };
            line(&mut text, kind, &[&step.from, &step.to]);
        }
        let temporary = path.with_extension("keeping.new");
        let mut file = File::create(&temporary)?;
        file.write_all(&text)?;
        file.sync_all()?;
        fs::rename(&temporary, &path)?;
        let _ = File::open(dir).and_then(|d| d.sync_all());
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok(Journal {
            path,
            file,
            store: store.is_some(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that step `index` starts (its new name checked free), for a store's journal;
    /// a file's rename is one step of the file system, which needs no mark.
    pub fn started(&mut self, index: usize) -> io::Result<()> {
        if self.store {
            mark(&mut self.file, &format!("start {index}"))?;
        }
        Ok(())
    }

    /// Records step `index` as done.
    pub fn done(&mut self, index: usize) -> io::Result<()> {
        mark(&mut self.file, &format!("done {index}"))
    }

    /// Records that the new backup is complete.
    pub fn complete(&mut self) -> io::Result<()> {
        mark(&mut self.file, "complete")
    }

    /// The keeping is over (committed or rolled back): the journal goes.
    pub fn remove(self) -> io::Result<()> {
        fs::remove_file(&self.path)
    }
}

fn mark(file: &mut File, text: &str) -> io::Result<()> {
    file.write_all(format!("{text}\n").as_bytes())?;
    file.sync_data()
}

fn line(text: &mut Vec<u8>, kind: &str, paths: &[&Path]) {
    text.extend_from_slice(kind.as_bytes());
    for path in paths {
        text.push(b' ');
        escape(text, path.as_os_str().as_bytes());
    }
    text.push(b'\n');
}

fn field(text: &mut Vec<u8>, kind: &str, value: &[u8]) {
    text.extend_from_slice(kind.as_bytes());
    text.push(b' ');
    escape(text, value);
    text.push(b'\n');
}

fn escape(text: &mut Vec<u8>, value: &[u8]) {
    for &b in value {
        match b {
            b'%' | b'\n' | b' ' => text.extend_from_slice(format!("%{b:02X}").as_bytes()),
            _ => text.push(b),
        }
    }
}

fn unescape(field: &[u8]) -> Option<PathBuf> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'%' {
            let hex = std::str::from_utf8(field.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

/// A journal as read back.
#[derive(Debug, Default)]
struct Record {
    store: Option<StoreRecord>,
    final_path: PathBuf,
    overwrite_at_start: bool,
    steps: Vec<Step>,
    started: Vec<bool>,
    done: Vec<bool>,
    undoing: Vec<bool>,
    undone: Vec<bool>,
    complete: bool,
    rollback: bool,
    final_removed: bool,
}

fn read(path: &Path) -> io::Result<Record> {
    let bytes = fs::read(path)?;
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a keeping journal", path.display()),
        )
    };
    // A line cut short by a crash (the last one) was never acted upon.
    let complete_lines = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None => return Err(bad()),
    };
    let mut lines = complete_lines.split(|&b| b == b'\n');
    if lines.next() != Some(HEADER.as_bytes()) {
        return Err(bad());
    }
    let mut record = Record::default();
    let mut has_final = false;
    for line in lines {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let index = |record: &Record| -> Option<usize> {
            let i: usize = std::str::from_utf8(fields.get(1)?).ok()?.parse().ok()?;
            (i < record.steps.len()).then_some(i)
        };
        let text = || -> Option<String> {
            let value = unescape(fields.get(1)?)?;
            value.into_os_string().into_string().ok()
        };
        match fields[0] {
            b"store" => {
                record.store = Some(StoreRecord {
                    url: text().ok_or_else(bad)?,
                    endpoint: None,
                    region: None,
                    path_style: None,
                })
            }
            b"s3-endpoint" => in_store(&mut record, bad)?.endpoint = Some(text().ok_or_else(bad)?),
            b"s3-region" => in_store(&mut record, bad)?.region = Some(text().ok_or_else(bad)?),
            b"s3-path-style" => {
                in_store(&mut record, bad)?.path_style = Some(match text().as_deref() {
                    Some("yes") => true,
                    Some("no") => false,
                    _ => return Err(bad()),
                })
            }
            b"final" => {
                record.final_path = fields.get(1).and_then(|f| unescape(f)).ok_or_else(bad)?;
                has_final = true;
            }
            b"overwrite-at-start" => record.overwrite_at_start = true,
            kind @ (b"rename" | b"hold") => {
                let (Some(from), Some(to)) = (
                    fields.get(1).and_then(|f| unescape(f)),
                    fields.get(2).and_then(|f| unescape(f)),
                ) else {
                    return Err(bad());
                };
                record.steps.push(Step {
                    from,
                    to,
                    hold: kind == b"hold",
                });
            }
            b"start" => {
                let i = index(&record).ok_or_else(bad)?;
                record.started.resize(record.steps.len(), false);
                record.started[i] = true;
            }
            b"done" => {
                let i = index(&record).ok_or_else(bad)?;
                record.done.resize(record.steps.len(), false);
                record.done[i] = true;
            }
            b"undoing" => {
                let i = index(&record).ok_or_else(bad)?;
                record.undoing.resize(record.steps.len(), false);
                record.undoing[i] = true;
            }
            b"undone" => {
                let i = index(&record).ok_or_else(bad)?;
                record.undone.resize(record.steps.len(), false);
                record.undone[i] = true;
            }
            b"complete" => record.complete = true,
            b"rollback" => record.rollback = true,
            b"final-removed" => record.final_removed = true,
            _ => return Err(bad()),
        }
    }
    if !has_final {
        return Err(bad());
    }
    let n = record.steps.len();
    for marks in [
        &mut record.started,
        &mut record.done,
        &mut record.undoing,
        &mut record.undone,
    ] {
        marks.resize(n, false);
    }
    Ok(record)
}

/// The store of a journal being read: its options come after its `store` line.
fn in_store(record: &mut Record, bad: impl Fn() -> io::Error) -> io::Result<&mut StoreRecord> {
    record.store.as_mut().ok_or_else(bad)
}

/// What recovery did.
#[derive(Debug, PartialEq)]
pub enum Recovered {
    /// The new backup was complete; this many backups set aside were removed.
    Finished(usize),
    /// The new backup was not made; this many renames were undone.
    Undone(usize),
}

impl Recovered {
    /// One line for the user.
    pub fn describe(&self) -> String {
        match self {
            Recovered::Finished(_) => {
                "kept its complete backup and removed the old backups set aside".to_string()
            }
            Recovered::Undone(_) => "restored the old backups renamed for keeping".to_string(),
        }
    }
}

/// Finishes or undoes the keeping recorded in the journal at `path`, if there is one, and
/// removes the journal. With `undo`, the keeping is undone whatever state the new backup is
/// in (its run failed). On an error the journal stays, for the next run to try again. The
/// store of a store's journal is opened again as the journal says.
pub fn recover(path: &Path, undo: bool) -> io::Result<Option<Recovered>> {
    recover_using(path, undo, None)
}

/// [`recover`], with `store` as the store of a store's journal when it is open already (the
/// run that wrote the journal rolling back): it must be the one the journal names.
pub fn recover_using(
    path: &Path,
    undo: bool,
    store: Option<&Store>,
) -> io::Result<Option<Recovered>> {
    let record = match read(path) {
        Ok(record) => record,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let outcome = match (&record.store, store) {
        (None, _) => recover_files(path, record, undo)?,
        (Some(_), Some(store)) => recover_store(path, record, undo, store)?,
        (Some(named), None) => {
            let store = named.open()?;
            recover_store(path, record, undo, &store)?
        }
    };
    fs::remove_file(path)?;
    Ok(Some(outcome))
}

fn recover_files(path: &Path, mut record: Record, undo: bool) -> io::Result<Recovered> {
    // Only its destination tells what state the keeping is in; an absent one (not mounted)
    // is no evidence.
    let dest = record.final_path.parent().unwrap_or(Path::new("."));
    if !dest.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{}: the destination of the interrupted run is not there ({})",
                path.display(),
                dest.display()
            ),
        ));
    }
    // The first step not marked may have been done just before the run stopped.
    let first_unmarked = record
        .done
        .iter()
        .position(|d| !d)
        .unwrap_or(record.steps.len());
    if let Some(step) = record.steps.get(first_unmarked) {
        if !exists(&step.from) && exists(&step.to) {
            record.done[first_unmarked] = true;
        }
    }
    let all_done = record.done.iter().all(|&d| d);
    let complete =
        all_done && (record.complete || (!record.overwrite_at_start && exists(&record.final_path)));
    let outcome = if complete && !record.rollback && !undo {
        let mut removed = 0;
        for step in record.steps.iter().filter(|s| s.hold) {
            match fs::remove_file(&step.to) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_path(e, &step.to)),
            }
        }
        Recovered::Finished(removed)
    } else {
        let mut file = OpenOptions::new().append(true).open(path)?;
        if !record.rollback {
            mark(&mut file, "rollback")?;
        }
        // With overwrite-at-start, what is at the final name once every rename is done is
        // the unfinished new backup.
        if record.overwrite_at_start && all_done && !record.final_removed {
            match fs::remove_file(&record.final_path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_path(e, &record.final_path)),
            }
            mark(&mut file, "final-removed")?;
        }
        let mut undone = 0;
        for (i, step) in record.steps.iter().enumerate().rev() {
            if !record.done[i] || record.undone[i] {
                continue;
            }
            // Undone already, before a crash kept it from being marked.
            if exists(&step.to) {
                rename_noreplace(&step.to, &step.from).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "unable to restore \"{}\" to \"{}\": {e}",
                            step.to.display(),
                            step.from.display()
                        ),
                    )
                })?;
                undone += 1;
            }
            mark(&mut file, &format!("undone {i}"))?;
        }
        Recovered::Undone(undone)
    };
    Ok(outcome)
}

/// The object name a store journal's path field holds.
fn object(path: &Path) -> io::Result<&str> {
    path.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not an object name", path.display()),
        )
    })
}

/// [`recover_files`] for a store (see the module's doc): copies and deletes, each decided by
/// the journal's marks and what exists, each recorded before the next.
fn recover_store(
    path: &Path,
    mut record: Record,
    undo: bool,
    store: &Store,
) -> io::Result<Recovered> {
    let exists = |p: &Path| -> io::Result<bool> { Ok(store.exists(object(p)?)?) };
    let copy =
        |from: &Path, to: &Path| -> io::Result<()> { Ok(store.copy(object(from)?, object(to)?)?) };
    let delete = |p: &Path| -> io::Result<()> { Ok(store.delete(object(p)?)?) };
    let mut file = OpenOptions::new().append(true).open(path)?;
    // The first step not done may have been under way: settle it, and say how, before anything
    // else changes (an undo of an earlier step may bring back a name this one uses).
    if let Some(first) = record.done.iter().position(|d| !d) {
        if record.started[first] && !record.undone[first] {
            let step = &record.steps[first];
            if !exists(&step.from)? && exists(&step.to)? {
                mark(&mut file, &format!("done {first}"))?;
                record.done[first] = true;
            } else {
                // Copied, not yet deleted: the new name is the copy, its original still there.
                if exists(&step.to)? {
                    delete(&step.to)?;
                }
                mark(&mut file, &format!("undone {first}"))?;
                record.undone[first] = true;
            }
        }
    }
    let all_done = record.done.iter().all(|&d| d);
    let complete = all_done && (record.complete || exists(&record.final_path)?);
    if complete && !record.rollback && !undo {
        let mut removed = 0;
        for step in record.steps.iter().filter(|s| s.hold) {
            if exists(&step.to)? {
                delete(&step.to)?;
                removed += 1;
            }
        }
        return Ok(Recovered::Finished(removed));
    }
    if complete && !record.rollback {
        // Undoing would replace the complete new backup: left for the next run to finish.
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{}: the new backup \"{}\" is complete; the next run finishes the keeping",
                path.display(),
                record.final_path.display()
            ),
        ));
    }
    if !record.rollback {
        mark(&mut file, "rollback")?;
    }
    let mut undone = 0;
    for (i, step) in record.steps.iter().enumerate().rev() {
        if !record.done[i] || record.undone[i] {
            continue;
        }
        let (from, to) = (exists(&step.from)?, exists(&step.to)?);
        let restore_failed = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!(
                    "unable to restore \"{}\" to \"{}\": {e}",
                    step.to.display(),
                    step.from.display()
                ),
            )
        };
        match (from, to) {
            (false, true) => {
                if !record.undoing[i] {
                    mark(&mut file, &format!("undoing {i}"))?;
                }
                copy(&step.to, &step.from).map_err(restore_failed)?;
                delete(&step.to)?;
                undone += 1;
            }
            // Copied back before the stop: what is at the old name is that copy.
            (true, true) if record.undoing[i] => {
                delete(&step.to)?;
                undone += 1;
            }
            // Another backup at the old name (the new one, complete after all): never replaced.
            (true, true) => {
                return Err(restore_failed(io::Error::from(
                    io::ErrorKind::AlreadyExists,
                )))
            }
            // Undone already, before a crash kept it from being marked.
            _ => {}
        }
        mark(&mut file, &format!("undone {i}"))?;
    }
    Ok(Recovered::Undone(undone))
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Renames `from` to `to` unless `to` exists: undoing a rename never replaces a backup.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let error = match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    match error {
        // Not supported by the file system (NFS, some FUSE): a hard link refuses to replace
        // too; failing that, a check just before the rename.
        Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP => match fs::hard_link(from, to) {
            Ok(()) => fs::remove_file(from),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
            Err(_) if exists(to) => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
            Err(_) => fs::rename(from, to),
        },
        _ => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `t.tar`, `t.aa.tar`, `t.ab.tar` kept with number 2: the planned renames.
    fn setup() -> (tempfile::TempDir, PathBuf, Vec<Step>) {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        for n in ["t.tar", "t.aa.tar", "t.ab.tar"] {
            fs::write(p(n), n).unwrap();
        }
        let steps = vec![
            Step {
                from: p("t.ab.tar"),
                to: p("t.ab-removing.tar"),
                hold: true,
            },
            Step {
                from: p("t.aa.tar"),
                to: p("t.ab.tar"),
                hold: false,
            },
            Step {
                from: p("t.tar"),
                to: p("t.aa.tar"),
                hold: false,
            },
        ];
        let journal = dir.path().join("j/t.keeping");
        (dir, journal, steps)
    }

    fn contents(dir: &Path) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, fs::read_to_string(&p).unwrap())
            })
            .collect();
        v.sort();
        v
    }

    fn start(journal: &Path, dir: &Path, overwrite: bool, steps: &[Step], done: usize) {
        let mut j =
            Journal::create(journal.to_path_buf(), &dir.join("t.tar"), overwrite, steps).unwrap();
        for (i, step) in steps.iter().enumerate().take(done) {
            fs::rename(&step.from, &step.to).unwrap();
            j.done(i).unwrap();
        }
    }

    #[test]
    fn an_interrupted_keeping_is_undone_at_any_step() {
        for done in 0..=3 {
            for unmarked in [false, true] {
                let (dir, journal, steps) = setup();
                let before = contents(dir.path());
                start(&journal, dir.path(), false, &steps, done);
                if unmarked && done < 3 {
                    // Done, but stopped before it was marked.
                    fs::rename(&steps[done].from, &steps[done].to).unwrap();
                }
                let r = recover(&journal, false).unwrap();
                assert!(matches!(r, Some(Recovered::Undone(_))), "{done}: {r:?}");
                assert_eq!(contents(dir.path()), before, "{done} {unmarked}");
                assert!(!journal.exists());
                assert_eq!(recover(&journal, false).unwrap(), None);
            }
        }
    }

    #[test]
    fn a_complete_backup_is_kept_and_the_set_aside_one_removed() {
        let (dir, journal, steps) = setup();
        start(&journal, dir.path(), false, &steps, 3);
        fs::write(dir.path().join("t.tar"), "new").unwrap();
        assert_eq!(
            recover(&journal, false).unwrap(),
            Some(Recovered::Finished(1))
        );
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            contents(dir.path()),
            [
                s("t.aa.tar", "t.tar"),
                s("t.ab.tar", "t.aa.tar"),
                s("t.tar", "new")
            ]
        );
        assert!(!journal.exists());
    }

    #[test]
    fn overwrite_at_start_needs_the_complete_mark() {
        let (dir, journal, steps) = setup();
        let before = contents(dir.path());
        start(&journal, dir.path(), true, &steps, 3);
        fs::write(dir.path().join("t.tar"), "half").unwrap();
        assert_eq!(
            recover(&journal, false).unwrap(),
            Some(Recovered::Undone(3))
        );
        assert_eq!(contents(dir.path()), before);

        let (dir, journal, steps) = setup();
        start(&journal, dir.path(), true, &steps, 3);
        fs::write(dir.path().join("t.tar"), "new").unwrap();
        let mut j = OpenOptions::new().append(true).open(&journal).unwrap();
        mark(&mut j, "complete").unwrap();
        assert_eq!(
            recover(&journal, false).unwrap(),
            Some(Recovered::Finished(1))
        );
    }

    /// Recovery stopped midway and run again ends where one run would have.
    #[test]
    fn an_interrupted_recovery_is_finished() {
        for overwrite in [false, true] {
            let (dir, journal, steps) = setup();
            let before = contents(dir.path());
            start(&journal, dir.path(), overwrite, &steps, 3);
            if overwrite {
                fs::write(dir.path().join("t.tar"), "half").unwrap();
                fs::remove_file(dir.path().join("t.tar")).unwrap();
            }
            // The first two undone, the second not marked.
            let mut j = OpenOptions::new().append(true).open(&journal).unwrap();
            mark(&mut j, "rollback").unwrap();
            if overwrite {
                mark(&mut j, "final-removed").unwrap();
            }
            fs::rename(&steps[2].to, &steps[2].from).unwrap();
            mark(&mut j, "undone 2").unwrap();
            fs::rename(&steps[1].to, &steps[1].from).unwrap();
            // A complete-looking state must not make it roll forward now.
            assert_eq!(
                recover(&journal, false).unwrap(),
                Some(Recovered::Undone(1))
            );
            assert_eq!(contents(dir.path()), before, "{overwrite}");
        }
    }

    #[test]
    fn odd_paths_are_stored_whole() {
        let (dir, _, _) = setup();
        let odd = dir.path().join("a b%\nc");
        let journal = dir.path().join("j/odd.keeping");
        let steps = [Step {
            from: odd.clone(),
            to: odd.with_extension("x"),
            hold: false,
        }];
        let _ = Journal::create(journal.clone(), &odd, false, &steps).unwrap();
        let record = read(&journal).unwrap();
        assert_eq!(record.final_path, odd);
        assert_eq!(record.steps, steps);
    }

    #[test]
    fn a_store_s_journal_records_how_to_open_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("j/t.keeping");
        let store = StoreRecord {
            url: "s3://bkp/a b".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: None,
            path_style: Some(false),
        };
        let steps = [Step {
            from: "t.tar".into(),
            to: "t.aa.tar".into(),
            hold: false,
        }];
        let mut j = Journal::create_in(
            journal.clone(),
            Some(&store),
            Path::new("t.tar"),
            false,
            &steps,
        )
        .unwrap();
        j.started(0).unwrap();
        let record = read(&journal).unwrap();
        assert_eq!(record.store, Some(store));
        assert_eq!(record.steps, steps);
        assert_eq!(record.started, [true]);
        // A file's journal marks no start.
        let mut j = Journal::create(journal.clone(), Path::new("/d/t.tar"), false, &steps).unwrap();
        j.started(0).unwrap();
        let record = read(&journal).unwrap();
        assert_eq!((record.store, record.started), (None, vec![false]));
    }

    /// The keeping of `t.tar`, `t.aa.tar`, `t.ab.tar` with number 2, on a moto bucket: a
    /// rename there is a copy then a delete.
    mod on_a_store {
        use super::*;
        use crate::app::backups::on_moto::{self, contents, pairs, put};
        use aa_tests::Moto;

        /// Where a step was stopped.
        #[derive(Debug, Clone, Copy)]
        enum Stop {
            BeforeStart,
            Started,
            Copied,
            Deleted,
        }

        const STOPS: [Stop; 4] = [
            Stop::BeforeStart,
            Stop::Started,
            Stop::Copied,
            Stop::Deleted,
        ];

        fn steps() -> Vec<Step> {
            let step = |from: &str, to: &str, hold| Step {
                from: from.into(),
                to: to.into(),
                hold,
            };
            vec![
                step("t.ab.tar", "t.ab-removing.tar", true),
                step("t.aa.tar", "t.ab.tar", false),
                step("t.tar", "t.aa.tar", false),
            ]
        }

        fn before() -> Vec<(String, String)> {
            pairs(&[
                ("t.aa.tar", "run 2"),
                ("t.ab.tar", "run 1"),
                ("t.tar", "run 3"),
            ])
        }

        /// What a clean run leaves once its new backup (`run 4`) is made.
        fn after() -> Vec<(String, String)> {
            pairs(&[
                ("t.aa.tar", "run 3"),
                ("t.ab.tar", "run 2"),
                ("t.tar", "run 4"),
            ])
        }

        struct Case {
            store: Store,
            journal: PathBuf,
            _dir: tempfile::TempDir,
        }

        /// The three backups in `s3://bkp/PREFIX`, and a keeping of them as the run does it,
        /// stopped in step `k` at `stop` (`k` = 3: every step done).
        fn case(moto: &Moto, prefix: &str, k: usize, stop: Stop) -> Case {
            let (store, _, record) = on_moto::store(moto, prefix);
            for (name, text) in before() {
                put(&store, &name, &text);
            }
            let dir = tempfile::tempdir().unwrap();
            let journal = dir.path().join("j/t.keeping");
            let steps = steps();
            let mut j = Journal::create_in(
                journal.clone(),
                Some(&record),
                Path::new("t.tar"),
                false,
                &steps,
            )
            .unwrap();
            let name = |p: &Path| p.to_str().unwrap().to_string();
            for (i, step) in steps.iter().enumerate().take(k + 1) {
                let last = if i < k { Stop::Deleted } else { stop };
                if matches!(last, Stop::BeforeStart) {
                    break;
                }
                j.started(i).unwrap();
                if matches!(last, Stop::Copied | Stop::Deleted) {
                    store.copy(&name(&step.from), &name(&step.to)).unwrap();
                }
                if matches!(last, Stop::Deleted) {
                    store.delete(&name(&step.from)).unwrap();
                }
                if i < k {
                    j.done(i).unwrap();
                }
            }
            Case {
                store,
                journal,
                _dir: dir,
            }
        }

        fn append(journal: &Path, marks: &[&str]) {
            let mut file = OpenOptions::new().append(true).open(journal).unwrap();
            for text in marks {
                mark(&mut file, text).unwrap();
            }
        }

        #[test]
        fn a_keeping_stopped_at_any_step_is_undone_or_finished() {
            let Some(moto) = on_moto::moto() else {
                return;
            };
            for k in 0..=3 {
                // Every step done: where the last one stopped does not matter.
                let stops = if k < 3 { &STOPS[..] } else { &STOPS[3..] };
                for &stop in stops {
                    // Undone: no new backup was made.
                    let c = case(&moto, &format!("undo-{k}-{stop:?}"), k, stop);
                    let r = recover_using(&c.journal, false, Some(&c.store)).unwrap();
                    assert!(
                        matches!(r, Some(Recovered::Undone(_))),
                        "{k} {stop:?}: {r:?}"
                    );
                    assert_eq!(contents(&c.store), before(), "{k} {stop:?}");
                    assert!(!c.journal.exists());
                    assert_eq!(recover_using(&c.journal, false, None).unwrap(), None);
                }
            }
            // Finished: every step done and the new backup made (a run makes it only once the
            // last step is marked done, so an unmarked step never meets a new backup).
            let c = case(&moto, "forward", 3, Stop::Deleted);
            put(&c.store, "t.tar", "run 4");
            let r = recover_using(&c.journal, false, Some(&c.store)).unwrap();
            assert_eq!(r, Some(Recovered::Finished(1)));
            assert_eq!(contents(&c.store), after());
            assert!(!c.journal.exists());
            // The run failed after every step, before its backup was complete: undone.
            let c = case(&moto, "failed", 3, Stop::Deleted);
            let r = recover_using(&c.journal, true, Some(&c.store)).unwrap();
            assert_eq!(r, Some(Recovered::Undone(3)));
            assert_eq!(contents(&c.store), before());
        }

        /// A copy made and its original not yet deleted is the same backup twice: the copy goes
        /// when undoing, and the original when the step is finished, never the only one.
        #[test]
        fn a_step_stopped_between_copy_and_delete_loses_nothing() {
            let Some(moto) = on_moto::moto() else {
                return;
            };
            // The last step copied: the old backup is still at the final name, which must not
            // pass for a complete new one.
            let c = case(&moto, "copied-last", 2, Stop::Copied);
            assert_eq!(
                contents(&c.store),
                pairs(&[
                    ("t.aa.tar", "run 3"),
                    ("t.ab-removing.tar", "run 1"),
                    ("t.ab.tar", "run 2"),
                    ("t.tar", "run 3"),
                ])
            );
            let r = recover_using(&c.journal, false, Some(&c.store)).unwrap();
            assert_eq!(r, Some(Recovered::Undone(2)));
            assert_eq!(contents(&c.store), before());

            // Undoing, stopped between the copy back and the delete, at each step.
            for i in 0..3 {
                let c = case(&moto, &format!("undoing-{i}"), 3, Stop::Deleted);
                let name = |p: &Path| p.to_str().unwrap().to_string();
                let steps = steps();
                append(&c.journal, &["rollback"]);
                for j in (i + 1..3).rev() {
                    c.store
                        .copy(&name(&steps[j].to), &name(&steps[j].from))
                        .unwrap();
                    c.store.delete(&name(&steps[j].to)).unwrap();
                    append(
                        &c.journal,
                        &[&format!("undoing {j}"), &format!("undone {j}")],
                    );
                }
                append(&c.journal, &[&format!("undoing {i}")]);
                c.store
                    .copy(&name(&steps[i].to), &name(&steps[i].from))
                    .unwrap();
                let r = recover_using(&c.journal, false, Some(&c.store)).unwrap();
                assert!(matches!(r, Some(Recovered::Undone(_))), "{i}: {r:?}");
                assert_eq!(contents(&c.store), before(), "{i}");
            }

            // A recovery stopped after it deleted a half-made copy, then again while it restored
            // the step before: the name that copy had is a restored backup by then.
            let c = case(&moto, "settled", 2, Stop::Copied);
            c.store.delete("t.aa.tar").unwrap();
            append(&c.journal, &["undone 2", "rollback", "undoing 1"]);
            c.store.copy("t.ab.tar", "t.aa.tar").unwrap();
            let r = recover_using(&c.journal, false, Some(&c.store)).unwrap();
            assert_eq!(r, Some(Recovered::Undone(2)));
            assert_eq!(contents(&c.store), before());

            // Finishing, stopped after the backup set aside was deleted.
            let c = case(&moto, "finishing", 3, Stop::Deleted);
            put(&c.store, "t.tar", "run 4");
            append(&c.journal, &["complete"]);
            c.store.delete("t.ab-removing.tar").unwrap();
            let r = recover_using(&c.journal, false, Some(&c.store)).unwrap();
            assert_eq!(r, Some(Recovered::Finished(0)));
            assert_eq!(contents(&c.store), after());
        }

        /// The complete new backup is never replaced by an undo: the journal stays for the next
        /// run, which finishes the keeping.
        #[test]
        fn an_undo_never_replaces_a_backup() {
            let Some(moto) = on_moto::moto() else {
                return;
            };
            let c = case(&moto, "complete", 3, Stop::Deleted);
            put(&c.store, "t.tar", "run 4");
            let e = recover_using(&c.journal, true, Some(&c.store)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
            assert!(c.journal.exists());
            assert_eq!(contents(&c.store).len(), 4);
            assert_eq!(
                recover_using(&c.journal, false, Some(&c.store)).unwrap(),
                Some(Recovered::Finished(1))
            );
            assert_eq!(contents(&c.store), after());
        }
    }
}

//! `--verify --compare`: how the tree the chain restores differs from the source tree now, as
//! `duplicity verify --compare-data` tells it.
//!
//! The chain is restored into a temporary directory (removed afterwards) and compared, path by
//! path, with the source. The scope is the union of the paths restored and the paths a full
//! backup of the archive would store now (the provider's dry run: include and exclude entries
//! applied as a backup applies them), so a file excluded from the archive is never "new".
//! Without a provider that can dry-run, only the restored paths are compared (and said so).
//! One line per difference, `KIND: PATH (DETAIL)`. For each path: missing (in the backup, gone from the source), new (in the source, not in the
//! backup), type, content (bytes of a file, target of a symlink), mode (permission bits) and
//! mtime (seconds; not for directories, whose times change whenever an entry does).

use std::collections::BTreeSet;
use std::fs::{self, Metadata};
use std::io::{BufReader, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use aa_abi::capability::{ChainArchive, ItemEvents, RestoreRequest};
use aa_abi::PathBytes;

use super::archive::{ArchiveContext, ArchiveSettings};
use super::capable::{self, Capability};
use super::restore::{Backups, Events};
use super::{create, App, Failure};

/// Restores `archives` and compares the result with the source; the number of differences.
pub fn compare(
    app: &App<'_>,
    settings: &ArchiveSettings<'_>,
    backups: &Backups,
    archives: &[ChainArchive],
) -> Result<usize, Failure> {
    let report = app.report;
    let own = &backups.archiver.provider;
    let backup_type = backups.archiver.backup_type;
    let restorer = capable::choose(app, own, backup_type, Capability::Restore, true)?;
    let temporary = tempfile::Builder::new()
        .prefix("aa-compare-")
        .tempdir()
        .map_err(|e| Failure::Directory(format!("Unable to create a temporary directory: {e}")))?;
    let tree = temporary.path();
    report.info(&format!(
        "{} into a temporary directory to compare.",
        restorer.describe("Restoring", own).trim_end_matches('.')
    ));
    let request = RestoreRequest {
        archives: archives.to_vec().into(),
        target: PathBytes::new(tree),
        only: Default::default(),
        overwrite: false,
    };
    let events = Events::new(report);
    let restored = restorer
        .provider
        .restore(&request, &events)
        .unwrap_or_else(|| Err(aa_abi::error::ProviderError::other("no restore capability")))
        .map_err(|e| Failure::Provider(format!("the restore to compare failed: {e}")))?;
    if restored.problems > 0 {
        return Err(Failure::Provider(format!(
            "the restore to compare had {} problems",
            restored.problems
        )));
    }

    let root = settings.spec.path();
    let mut paths = BTreeSet::new();
    walk(tree, Path::new(""), &mut paths)
        .map_err(|e| Failure::Directory(format!("{}: {e}", tree.display())))?;
    match live_paths(app, settings) {
        Ok(live) => {
            report.info(
                "Scope: the paths restored and those a full backup of the archive would store now.",
            );
            paths.extend(live);
        }
        Err(e) => report.info(&format!(
            "Scope: the paths restored only, new files in the source are not looked for ({e})."
        )),
    }
    let mut differences = 0;
    for path in &paths {
        for (kind, detail) in differ(&tree.join(path), &root.join(path)) {
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            };
            report.output(&format!("{kind}: {}{detail}", path.display()));
            differences += 1;
        }
    }
    report.info(&format!(
        "Compared {} paths with the source: {}.",
        paths.len(),
        match differences {
            0 => "no difference".to_string(),
            1 => "1 difference".to_string(),
            n => format!("{n} differences"),
        }
    ));
    Ok(differences)
}

/// The paths a full backup would store now, from a provider's dry run.
fn live_paths(app: &App<'_>, settings: &ArchiveSettings<'_>) -> Result<Vec<PathBuf>, Failure> {
    let ctx = ArchiveContext::new(app, settings)?;
    let lister = capable::choose(
        app,
        &ctx.archiver.provider,
        ctx.backup_type(),
        Capability::DryRun,
        true,
    )?;
    let definition = create::backup_definition(app.report, &ctx)?;
    let names = Names::default();
    lister
        .provider
        .dry_run(&definition, None, &names)
        .unwrap_or_else(|| Err(aa_abi::error::ProviderError::other("no dry-run capability")))
        .map_err(|e| Failure::Provider(e.to_string()))?;
    Ok(names.0.into_inner())
}

#[derive(Default)]
struct Names(std::cell::RefCell<Vec<PathBuf>>);

impl ItemEvents for Names {
    fn item(&self, name: &Path, _size: u64) {
        let clean: PathBuf = name
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        if !clean.as_os_str().is_empty() {
            self.0.borrow_mut().push(clean);
        }
    }

    fn problem(&self, _name: Option<&Path>, _message: &str) {}
}

/// Every path below `dir` (relative to the walk's start), without following symbolic links.
fn walk(dir: &Path, relative: &Path, out: &mut BTreeSet<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &path, out)?;
        }
        out.insert(path);
    }
    Ok(())
}

fn kind(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_symlink() {
        "symlink"
    } else if t.is_dir() {
        "directory"
    } else if t.is_file() {
        "file"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "socket"
    }
}

/// How `restored` differs from `source`: (kind, detail) each, e.g. `("mode", "backup 0644,
/// source 0600")`.
fn differ(restored: &Path, source: &Path) -> Vec<(&'static str, String)> {
    let (backup, live) = match (fs::symlink_metadata(restored), fs::symlink_metadata(source)) {
        (Ok(b), Ok(l)) => (b, l),
        (Ok(_), Err(_)) => return vec![("missing", "in the backup, not in the source".into())],
        (Err(_), Ok(_)) => return vec![("new", "in the source, not in the backup".into())],
        (Err(_), Err(_)) => return Vec::new(),
    };
    if kind(&backup) != kind(&live) {
        return vec![(
            "type",
            format!("backup: {}, source: {}", kind(&backup), kind(&live)),
        )];
    }
    let mut out = Vec::new();
    let same_content = if backup.file_type().is_symlink() {
        fs::read_link(restored).ok() == fs::read_link(source).ok()
    } else if backup.is_file() {
        backup.len() == live.len() && same_bytes(restored, source).unwrap_or(false)
    } else {
        true
    };
    if !same_content {
        out.push(("content", String::new()));
    }
    if !backup.file_type().is_symlink() && backup.mode() & 0o7777 != live.mode() & 0o7777 {
        out.push((
            "mode",
            format!(
                "backup {:04o}, source {:04o}",
                backup.mode() & 0o7777,
                live.mode() & 0o7777
            ),
        ));
    }
    if !backup.is_dir() && backup.mtime() != live.mtime() {
        out.push((
            "mtime",
            format!(
                "backup {}, source {}",
                time(backup.mtime()),
                time(live.mtime())
            ),
        ));
    }
    out
}

fn time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

fn same_bytes(a: &Path, b: &Path) -> std::io::Result<bool> {
    let mut a = BufReader::new(fs::File::open(a)?);
    let mut b = BufReader::new(fs::File::open(b)?);
    let (mut x, mut y) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(b.read(&mut y[..1])? == 0);
        }
        b.read_exact(&mut y[..n])?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn differences_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (b, s) = (dir.path().join("b"), dir.path().join("s"));
        for d in [&b, &s] {
            fs::create_dir(d).unwrap();
            fs::write(d.join("same"), "x").unwrap();
        }
        let mtime = fs::metadata(s.join("same")).unwrap().modified().unwrap();
        fs::File::options()
            .write(true)
            .open(b.join("same"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert!(differ(&b.join("same"), &s.join("same")).is_empty());
        fs::write(b.join("f"), "old").unwrap();
        fs::write(s.join("f"), "new").unwrap();
        fs::set_permissions(s.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(b.join("f"), fs::Permissions::from_mode(0o644)).unwrap();
        let f = differ(&b.join("f"), &s.join("f"));
        assert_eq!(f[0], ("content", String::new()));
        assert_eq!(f[1], ("mode", "backup 0644, source 0600".to_string()));
        fs::create_dir(s.join("x")).unwrap();
        fs::write(b.join("x"), "").unwrap();
        assert_eq!(
            differ(&b.join("x"), &s.join("x")),
            [("type", "backup: file, source: directory".to_string())]
        );
        assert_eq!(
            differ(&b.join("gone"), &s.join("f")),
            [("new", "in the source, not in the backup".to_string())]
        );
        let mut all = BTreeSet::new();
        walk(&b, Path::new(""), &mut all).unwrap();
        assert_eq!(all.len(), 3);
    }
}

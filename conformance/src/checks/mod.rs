//! The checks, and which of them apply to a provider's declaration.
//!
//! Each check is a plain function of a [`Context`]; the registry below decides from the
//! identification which ones to run and for which backup types. The helpers here turn provider
//! results into check failures with messages that say what was called and what came back.

mod arguments;
mod backup;
mod incremental;
mod keeping;

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::{show, tree_diff, Compare, TreeRecord};
use aa_abi::{
    ArchiverFeature, BackupDefinition, BackupOperationError, BackupType, ProviderError,
    ProviderErrorKind, ProviderIdentification,
};

use crate::runner::{fail, Check, CheckResult, Context, Failure, Problem};
use crate::support::{added_members, kind_name, reported_errors, Recorder};

/// The backup id every check uses.
pub(crate) const NAME: &str = "proj";

/// The checks that apply to what `id` declares, in a stable order.
pub(crate) fn applicable(id: &ProviderIdentification) -> Vec<Check> {
    let pid = id.provider_id.as_str();
    let mut checks = vec![Check::new(
        pid,
        None,
        "identification",
        arguments::identification,
    )];

    let mut declared: Vec<BackupType> = Vec::new();
    for t in id.supported_backup_types() {
        if !declared.contains(&t) {
            declared.push(t);
        }
    }
    for &t in &declared {
        let features = id.features_for(t).unwrap_or(&[]);
        let strength = features.contains(&ArchiverFeature::CompressionStrength);
        let incremental = features.contains(&ArchiverFeature::Incremental);
        let mut add = |name: &str, body: fn(&Context<'_>) -> CheckResult| {
            checks.push(Check::new(pid, Some(t), name, body));
        };
        add("backup-file-name-and-format", backup::name_and_format);
        add("backup-extracts-identically", backup::extracts_identically);
        add("excludes-are-left-out", backup::excludes);
        add(
            "failed-run-keeps-old-backup",
            backup::failed_run_keeps_old_backup,
        );
        add(
            "successful-run-replaces-backup",
            backup::successful_run_replaces,
        );
        add("overwrite-at-start", backup::overwrite_at_start);
        if strength {
            add(
                "compression-strengths-0-and-9",
                arguments::strengths_0_and_9,
            );
            add(
                "compression-strength-out-of-range",
                arguments::strength_out_of_range,
            );
        } else {
            add("compression-strength-refused", arguments::strength_refused);
        }
        add("nothing-to-backup", arguments::nothing_to_backup);
        add("keep-and-remove-backup", keeping::keep_and_remove);
        add("keep-backup-errors", keeping::keep_errors);
        if incremental {
            add("incremental-chain-restores", incremental::chain_restores);
            add("incremental-levels-and-redo", incremental::levels_and_redo);
            add("incremental-keep-and-exists", incremental::keep_and_exists);
            add(
                "incremental-stored-ids-and-purge",
                incremental::stored_ids_and_purge,
            );
            add(
                "incremental-failed-run-keeps-state",
                incremental::failed_run_keeps_state,
            );
        } else {
            add("incremental-not-declared", incremental::not_declared);
        }
    }

    // One undeclared type this ABI knows (if any) and one it does not.
    let mut undeclared: Vec<BackupType> = BackupType::KNOWN
        .iter()
        .copied()
        .find(|t| !declared.contains(t))
        .into_iter()
        .collect();
    let mut unknown = BackupType(99);
    while declared.contains(&unknown) {
        unknown = BackupType(unknown.0 + 1);
    }
    undeclared.push(unknown);
    for t in undeclared {
        checks.push(Check::new(
            pid,
            Some(t),
            "undeclared-type-rejected",
            arguments::undeclared_type_rejected,
        ));
    }

    if !id.all_features().contains(&ArchiverFeature::Incremental) {
        checks.push(Check::new(
            pid,
            None,
            "incremental-not-implemented",
            incremental::not_implemented,
        ));
    }
    checks
}

// ---- calling the provider -------------------------------------------------------------------

/// The value of a provider call that must succeed.
pub(crate) fn call<T>(
    what: impl fmt::Display,
    result: Result<T, ProviderError>,
) -> Result<T, Problem> {
    result.map_err(|e| {
        Problem::Fail(Failure::new(format!(
            "{what} failed: {} ({})",
            e.message(),
            describe_kind(&e)
        )))
    })
}

/// The error of a provider call that must fail with one of `kinds`.
pub(crate) fn expect_error<T: fmt::Debug>(
    what: impl fmt::Display,
    result: Result<T, ProviderError>,
    kinds: &[ProviderErrorKind],
) -> Result<ProviderError, Problem> {
    let wanted = kinds
        .iter()
        .map(|&k| kind_name(k))
        .collect::<Vec<_>>()
        .join(" or ");
    match result {
        Ok(value) => fail!("{what} succeeded ({value:?}); expected a {wanted} error"),
        Err(e) if kinds.contains(&e.kind) => Ok(e),
        Err(e) => fail!(
            "{what} failed with {} ({}); expected {wanted}",
            describe_kind(&e),
            e.message()
        ),
    }
}

fn describe_kind(e: &ProviderError) -> String {
    if e.os_code != 0 {
        format!("{}, os error {}", kind_name(e.kind), e.os_code)
    } else {
        kind_name(e.kind)
    }
}

/// The backup file name the seed prescribes: `NAME[.LEVEL][.KEEPID].EXT`, no level token for
/// level 0. Spelt out here rather than taken from `aa_abi::naming`, which is under test.
pub(crate) fn file_name(id: &str, ext: &str, level: u32, keeping_id: Option<&str>) -> String {
    let mut name = id.to_string();
    if level > 0 {
        name += &format!(".{level}");
    }
    if let Some(keep) = keeping_id {
        name += &format!(".{keep}");
    }
    name + "." + ext
}

/// Sorted names in `dir`.
pub(crate) fn listing(dir: &Path) -> Result<Vec<String>, Problem> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| Problem::Fail(Failure::new(format!("read {}: {e}", dir.display()))))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Fails unless `dir` holds exactly `expected` (in any order).
pub(crate) fn expect_listing(dir: &Path, expected: &[&str], when: &str) -> CheckResult {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    let got = listing(dir)?;
    if got != want {
        fail!("{when}: the destination holds {got:?}, expected {want:?}");
    }
    Ok(())
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Problem> {
    fs::read(path).map_err(|e| Problem::Fail(Failure::new(format!("read {}: {e}", path.display()))))
}

/// Converts a fixture I/O error into a failure naming what was being done.
pub(crate) fn io<T>(what: &str, result: std::io::Result<T>) -> Result<T, Problem> {
    result.map_err(|e| Problem::Fail(Failure::new(format!("{what}: {e}"))))
}

/// Fails with the list of differences unless `diff` is empty.
pub(crate) fn expect_no_diff(diff: Vec<String>, what: &str) -> CheckResult {
    if diff.is_empty() {
        return Ok(());
    }
    Err(Failure::new(format!(
        "{what}: {} difference(s), first: {}",
        diff.len(),
        diff[0].trim()
    ))
    .with_details(diff)
    .into())
}

/// The format name `crate::detect_format` gives a backup of `backup_type`.
pub(crate) fn magic_format(backup_type: BackupType) -> Option<&'static str> {
    Some(match backup_type {
        BackupType::Tar => "tar",
        BackupType::TarGz => "gz",
        BackupType::TarBz2 => "bz2",
        BackupType::TarXz => "xz",
        BackupType::TarZst => "zst",
        _ => return None,
    })
}

// ---- fixtures -------------------------------------------------------------------------------

/// A definition of the backup `NAME` of the context's type.
pub(crate) fn definition(
    ctx: &Context<'_>,
    dest: &Path,
    root: &Path,
    includes: &[&str],
) -> BackupDefinition {
    BackupDefinition::new(NAME, ctx.backup_type, dest, root).include(includes.iter().copied())
}

/// `ctx/src/tree`: the full fixture ([`crate::full_fixture`]) plus a Unix socket. Returns `ctx/src`, the
/// backup root; the definition includes `tree`.
pub(crate) fn full_source(ctx: &Context<'_>) -> Result<PathBuf, Problem> {
    let root = ctx.mkdir("src")?;
    let tree = crate::full_fixture(&root);
    // Binding the socket changes the directory's time; put the fixture's time back.
    let meta = io("stat the fixture", fs::symlink_metadata(&tree))?;
    let listener = io("bind a socket", UnixListener::bind(tree.join("socket")))?;
    drop(listener);
    crate::set_mtime(&tree, (meta.mtime(), meta.mtime_nsec()));
    Ok(root)
}

/// `ctx/src/tree` with regular files and directories only (what every provider must store).
pub(crate) fn simple_source(ctx: &Context<'_>) -> Result<PathBuf, Problem> {
    let root = ctx.mkdir("src")?;
    crate::simple_fixture(&root);
    Ok(root)
}

fn under(path: &[u8], prefix: &[u8]) -> bool {
    path == prefix || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
}

/// Checks a backup against its source under the object-storage rule (see the crate docs).
///
/// `source` and `restored` are tree records of the backup root and of the GNU tar extraction
/// directory, `members` the archive's member names as GNU tar lists them, `excluded` the
/// definition's excludes (which must be absent and not reported as added).
pub(crate) fn verify_stored(
    source: &TreeRecord,
    restored: &TreeRecord,
    events: &Recorder,
    members: &BTreeSet<Vec<u8>>,
    excluded: &[&[u8]],
) -> CheckResult {
    let mut problems = Vec::new();
    let mut ignored: BTreeSet<Vec<u8>> = BTreeSet::new();
    for e in reported_errors(events) {
        match (e.error, &e.name) {
            (
                BackupOperationError::UnknownTypeIgnored | BackupOperationError::SocketIgnored,
                Some(name),
            ) => {
                ignored.insert(name.clone());
            }
            _ => problems.push(format!(
                "unexpected backup_operation_error: {}",
                e.describe()
            )),
        }
    }
    let reported = |path: &[u8]| ignored.iter().any(|i| under(path, i));

    let mut expected = TreeRecord::new();
    for (path, entry) in source {
        if path.is_empty() {
            continue;
        }
        if excluded.iter().any(|ex| under(path, ex)) {
            if restored.contains_key(path) {
                problems.push(format!("excluded but stored: {}", show(path)));
            }
            continue;
        }
        if !restored.contains_key(path) && reported(path) {
            continue;
        }
        let mut entry = entry.clone();
        // Hard links may be stored as copies; the content comparison still applies.
        entry.hardlink_group = None;
        expected.insert(path.clone(), entry);
    }
    let mut actual = restored.clone();
    actual.remove(&Vec::new());
    for entry in actual.values_mut() {
        entry.hardlink_group = None;
    }
    for line in tree_diff(&expected, &actual, Compare::default()) {
        problems.push(match line.strip_prefix("missing:") {
            Some(rest) => format!("neither stored nor reported: {}", rest.trim()),
            None => line,
        });
    }
    for (path, a) in &actual {
        if let Some(e) = expected.get(path) {
            // Whole seconds are compared above; digits below them, when kept, must be exact.
            if a.kind == e.kind && a.mtime_nanos != 0 && a.mtime_nanos != e.mtime_nanos {
                problems.push(format!(
                    "different:  {}: sub-second mtime expected {} (or none), got {}",
                    show(path),
                    e.mtime_nanos,
                    a.mtime_nanos
                ));
            }
        }
    }

    let added: BTreeSet<Vec<u8>> = added_members(events).into_iter().collect();
    for member in members.iter().filter(|m| !m.is_empty()) {
        if !added.contains(member) {
            problems.push(format!(
                "no file_add for the stored member {}",
                show(member)
            ));
        }
    }
    for name in added.iter().filter(|n| !n.is_empty()) {
        if !members.contains(name) {
            problems.push(format!(
                "file_add for {}, which the archive does not hold",
                show(name)
            ));
        }
    }
    expect_no_diff(
        problems,
        "the backup does not follow the object-storage rule",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, Kind};
    use aa_abi::BackupEvents;
    use aa_abi::BackupSubOperation;

    fn entry(kind: Kind, nanos: i64) -> Entry {
        Entry {
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_secs: 1_600_000_000,
            mtime_nanos: nanos,
            size: 0,
            content_hash: None,
            link_target: None,
            hardlink_group: None,
        }
    }

    fn record(entries: &[(&str, Kind, i64)]) -> TreeRecord {
        entries
            .iter()
            .map(|(p, k, n)| (p.as_bytes().to_vec(), entry(*k, *n)))
            .collect()
    }

    fn members(names: &[&str]) -> BTreeSet<Vec<u8>> {
        names.iter().map(|n| n.as_bytes().to_vec()).collect()
    }

    fn added(events: &Recorder, names: &[&str]) {
        for n in names {
            events.file_add(Path::new(n));
        }
    }

    fn ignored(events: &Recorder, name: &str, error: BackupOperationError) {
        events.backup_operation_error(BackupSubOperation::Open, error, Some(Path::new(name)), None);
    }

    fn summary(result: CheckResult) -> String {
        match result {
            Ok(()) => "ok".into(),
            Err(Problem::Fail(f)) => f.details.join("\n"),
            Err(Problem::Skip(s)) => s,
        }
    }

    const SOURCE: &[(&str, Kind, i64)] = &[
        ("", Kind::Dir, 5),
        ("t", Kind::Dir, 5),
        ("t/f", Kind::File, 123),
        ("t/sock", Kind::Socket, 7),
        ("t/odd", Kind::Dir, 9),
        ("t/odd/x", Kind::File, 9),
    ];

    #[test]
    fn stored_or_reported_passes() {
        let events = Recorder::default();
        added(&events, &["t/", "./t/f"]);
        ignored(&events, "t/sock", BackupOperationError::SocketIgnored);
        // A reported directory covers what is below it.
        ignored(&events, "t/odd", BackupOperationError::UnknownTypeIgnored);
        let restored = record(&[
            ("", Kind::Dir, 0),
            ("t", Kind::Dir, 5),
            ("t/f", Kind::File, 0),
        ]);
        let result = verify_stored(
            &record(SOURCE),
            &restored,
            &events,
            &members(&["t", "t/f"]),
            &[],
        );
        assert_eq!(summary(result), "ok");
    }

    #[test]
    fn silent_loss_wrong_times_and_events_fail() {
        let events = Recorder::default();
        added(&events, &["t", "t/f", "t/ghost"]);
        ignored(&events, "t/odd", BackupOperationError::PermissionDenied);
        let restored = record(&[("t", Kind::Dir, 5), ("t/f", Kind::File, 124)]);
        let text = summary(verify_stored(
            &record(SOURCE),
            &restored,
            &events,
            &members(&["t", "t/f", "t/unannounced"]),
            &[],
        ));
        for expected in [
            "unexpected backup_operation_error: Open/PermissionDenied t/odd",
            "neither stored nor reported: t/sock (Socket)",
            "neither stored nor reported: t/odd (Dir)",
            "neither stored nor reported: t/odd/x (File)",
            "t/f: sub-second mtime expected 123 (or none), got 124",
            "no file_add for the stored member t/unannounced",
            "file_add for t/ghost, which the archive does not hold",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
    }

    #[test]
    fn excluded_objects_must_be_absent() {
        let events = Recorder::default();
        ignored(&events, "t/sock", BackupOperationError::SocketIgnored);
        let restored = record(&[
            ("t", Kind::Dir, 5),
            ("t/f", Kind::File, 123),
            ("t/odd", Kind::Dir, 9),
        ]);
        let text = summary(verify_stored(
            &record(SOURCE),
            &restored,
            &events,
            &BTreeSet::new(),
            &[b"t/odd", b"t/f"],
        ));
        assert!(text.contains("excluded but stored: t/odd"), "{text}");
        assert!(text.contains("excluded but stored: t/f"), "{text}");
        assert!(!text.contains("t/odd/x"), "{text}");
    }

    #[test]
    fn file_names_follow_the_seed() {
        assert_eq!(file_name("p", "tar.gz", 0, None), "p.tar.gz");
        assert_eq!(file_name("p", "tar", 2, None), "p.2.tar");
        assert_eq!(file_name("p", "tar.xz", 0, Some("aa")), "p.aa.tar.xz");
        assert_eq!(file_name("p", "tar.xz", 3, Some("ab")), "p.3.ab.tar.xz");
    }
}

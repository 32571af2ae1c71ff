//! Incremental backups: restoring levels 0..N in order gives the tree at level N, and the
//! snapshot files are laid out and replaced as the original does.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{
    BackupDefinition, BackupOperationError, BackupSubOperation, BackupType, ProviderErrorKind,
};
use aa_plugin_tar_external::{TarExternal, TarExternalProvider};

use common::*;

const INCLUDES: [&str; 4] = ["dir", "empty", "long", "žluťoučký kůň"];

struct Setup {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    dst: PathBuf,
    snapshots: PathBuf,
    provider: TarExternalProvider,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let root = base.join("src");
    let dst = base.join("dst");
    fs::create_dir_all(&dst).unwrap();
    make_tree(&root);
    let provider = TarExternal::create(&base.join("work")).unwrap();
    Setup {
        snapshots: base.join("work/snapshots"),
        _tmp: tmp,
        base,
        root,
        dst,
        provider,
    }
}

fn definition(s: &Setup, id: &str, backup_type: BackupType) -> BackupDefinition {
    BackupDefinition::new(id, backup_type, &s.dst, &s.root).include(INCLUDES)
}

/// Restores `archives` in order into a fresh directory and compares with the source tree,
/// limited to the included names.
fn assert_restores_to_source(s: &Setup, archives: &[&Path], tag: &str) {
    let out = s.base.join(format!("restore-{tag}"));
    extract(archives, &out, true);
    // Only the included part of the source is expected back.
    let src = snapshot_tree(&s.root);
    let got = snapshot_tree(&out);
    let included = |k: &Vec<u8>| {
        INCLUDES
            .iter()
            .any(|p| k == p.as_bytes() || k.starts_with(format!("{p}/").as_bytes()))
    };
    let src: Vec<_> = src.into_iter().filter(|(k, _)| included(k)).collect();
    let got: Vec<_> = got.into_iter().collect();
    assert_eq!(src, got, "{tag}");
}

/// Changes of every kind an increment must carry.
fn change_tree(root: &Path, round: u32) {
    fs::write(
        root.join(format!("dir/new-{round}.txt")),
        format!("round {round}"),
    )
    .unwrap();
    fs::write(
        root.join("dir/file.txt"),
        format!("changed in round {round}\n"),
    )
    .unwrap();
    if round == 1 {
        fs::remove_file(root.join("dir/sub/big.bin")).unwrap();
        fs::rename(root.join("empty"), root.join("dir/moved-empty")).unwrap();
        fs::create_dir(root.join("empty")).unwrap();
    } else {
        fs::remove_file(root.join("dir/new-1.txt")).unwrap();
    }
    // Distinct, later times so tar sees the changes even within the same second.
    set_mtime(&root.join("dir/file.txt"), 1_900_000_000 + u64::from(round));
}

fn snapshot_files(s: &Setup) -> Vec<String> {
    dir_listing(&s.snapshots)
}

#[test]
fn levels_restore_to_the_current_tree() {
    let s = setup();
    let p = &s.provider;
    for (backup_type, ext) in [(BackupType::TarGz, "tar.gz"), (BackupType::Tar, "tar")] {
        let id = format!("inc-{}", ext.replace('.', "-"));
        let def = definition(&s, &id, backup_type);
        assert_eq!(p.get_max_backup_level(&id).unwrap(), 0);

        let l0 = p
            .backup_files_incrementally(&def, None, None, false, &Recorder::default())
            .unwrap();
        assert_eq!(l0, s.dst.join(format!("{id}.{ext}")));
        assert_eq!(p.get_max_backup_level(&id).unwrap(), 1);
        assert_restores_to_source(&s, &[&l0], &format!("{id}-0"));

        change_tree(&s.root, 1);
        let events = Recorder::default();
        let l1 = p
            .backup_files_incrementally(&def, Some(5), None, false, &events)
            .unwrap();
        assert_eq!(l1, s.dst.join(format!("{id}.1.{ext}")));
        // "Directory is new" is not reported; the moved directory is, and is no content error.
        let errors = events.errors();
        assert!(!errors.is_empty());
        for e in errors.iter() {
            assert_eq!(
                (e.operation, e.error),
                (
                    BackupSubOperation::Read,
                    BackupOperationError::DirectoryRenamed
                ),
                "{e:?}"
            );
        }
        assert!(errors
            .iter()
            .any(|e| e.name.as_deref() == Some(&b"dir/moved-empty"[..])));
        assert!(events.added().iter().any(|n| n == b"dir/new-1.txt"));
        // An increment, not a full dump: unchanged files are only in level 0.
        let unchanged = b"dir/sub/script.sh".to_vec();
        assert!(list(&l0).contains(&unchanged));
        assert!(!list(&l1).contains(&unchanged));
        assert!(list(&l1).contains(&b"dir/file.txt".to_vec()));
        assert_restores_to_source(&s, &[&l0, &l1], &format!("{id}-1"));

        change_tree(&s.root, 2);
        let l2 = p
            .backup_files_incrementally(&def, None, Some(2), false, &Recorder::default())
            .unwrap();
        assert_eq!(l2, s.dst.join(format!("{id}.2.{ext}")));
        assert_eq!(p.get_max_backup_level(&id).unwrap(), 3);
        assert_restores_to_source(&s, &[&l0, &l1, &l2], &format!("{id}-2"));

        // Redo level 1: it builds on level 0 and makes level 2's snapshot obsolete.
        fs::write(s.root.join("dir/redo.txt"), b"redo").unwrap();
        let l1b = p
            .backup_files_incrementally(&def, None, Some(1), false, &Recorder::default())
            .unwrap();
        assert_eq!(l1b, l1);
        assert_eq!(p.get_max_backup_level(&id).unwrap(), 2);
        assert_restores_to_source(&s, &[&l0, &l1b], &format!("{id}-1b"));

        // Reset the source for the next type.
        fs::remove_dir_all(&s.root).unwrap();
        make_tree(&s.root);
    }
    assert_eq!(
        snapshot_files(&s),
        [
            "inc-tar-gz.1.snar",
            "inc-tar-gz.snar",
            "inc-tar.1.snar",
            "inc-tar.snar"
        ]
    );
}

#[test]
fn level_out_of_range_and_failed_runs_leave_snapshots_untouched() {
    let s = setup();
    let p = &s.provider;
    let def = definition(&s, "b", BackupType::TarXz);
    p.backup_files_incrementally(&def, None, None, false, &Recorder::default())
        .unwrap();
    p.backup_files_incrementally(&def, None, None, false, &Recorder::default())
        .unwrap();
    let before: Vec<(String, Vec<u8>)> = snapshot_files(&s)
        .into_iter()
        .map(|n| (n.clone(), fs::read(s.snapshots.join(&n)).unwrap()))
        .collect();
    assert_eq!(before.len(), 2);
    let unchanged = || {
        let now: Vec<(String, Vec<u8>)> = snapshot_files(&s)
            .into_iter()
            .map(|n| (n.clone(), fs::read(s.snapshots.join(&n)).unwrap()))
            .collect();
        assert_eq!(now, before);
    };

    let err = p
        .backup_files_incrementally(&def, None, Some(3), false, &Recorder::default())
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::INVALID_VALUE);
    assert!(err.message().contains("0..2"), "{err}");
    unchanged();

    // tar fails (no destination directory): no snapshot changes, no working file left behind.
    let broken = BackupDefinition::new("b", BackupType::TarXz, s.base.join("nowhere"), &s.root)
        .include(["dir"]);
    for level in [0, 1, 2] {
        p.backup_files_incrementally(&broken, None, Some(level), false, &Recorder::default())
            .unwrap_err();
        unchanged();
    }
    assert_eq!(dir_listing(&s.dst), ["b.1.tar.xz", "b.tar.xz"]);
}

#[test]
fn archives_with_a_common_prefix_keep_their_own_snapshots() {
    let s = setup();
    let p = &s.provider;
    let proj = definition(&s, "proj", BackupType::TarZst);
    let v2 = definition(&s, "proj.v2", BackupType::TarZst);
    for _ in 0..3 {
        p.backup_files_incrementally(&v2, None, None, false, &Recorder::default())
            .unwrap();
    }
    p.backup_files_incrementally(&proj, None, None, false, &Recorder::default())
        .unwrap();
    assert_eq!(p.get_max_backup_level("proj").unwrap(), 1);
    assert_eq!(p.get_max_backup_level("proj.v2").unwrap(), 3);
    assert_eq!(p.get_stored_backup_ids().unwrap(), ["proj", "proj.v2"]);
    assert!(p.does_any_backup_level_exist(&proj, 0, None).unwrap());
    assert!(!p.does_any_backup_level_exist(&proj, 1, None).unwrap());
    assert!(p.does_any_backup_level_exist(&v2, 2, None).unwrap());

    // A new level 0 of proj must not drop proj.v2's higher levels.
    p.backup_files_incrementally(&proj, None, Some(0), false, &Recorder::default())
        .unwrap();
    assert_eq!(p.get_max_backup_level("proj.v2").unwrap(), 3);

    p.purge_stored_backup_data("proj").unwrap();
    assert_eq!(
        snapshot_files(&s),
        ["proj.v2.1.snar", "proj.v2.2.snar", "proj.v2.snar"]
    );
    assert_eq!(p.get_stored_backup_ids().unwrap(), ["proj.v2"]);
}

#[test]
fn removing_increments_removes_their_backups_and_snapshots() {
    let s = setup();
    let p = &s.provider;
    let def = definition(&s, "r", BackupType::TarBz2);
    for _ in 0..3 {
        p.backup_files_incrementally(&def, Some(1), None, false, &Recorder::default())
            .unwrap();
    }
    assert_eq!(
        dir_listing(&s.dst),
        ["r.1.tar.bz2", "r.2.tar.bz2", "r.tar.bz2"]
    );
    assert!(p.does_any_backup_level_exist(&def, 2, None).unwrap());

    // Kept backups are matched by their keeping id only.
    fs::write(s.dst.join("r.aa.tar.bz2"), b"kept 0").unwrap();
    fs::write(s.dst.join("r.1.aa.tar.bz2"), b"kept 1").unwrap();
    assert!(p.does_any_backup_level_exist(&def, 1, Some("aa")).unwrap());
    assert!(!p.does_any_backup_level_exist(&def, 2, Some("aa")).unwrap());
    p.remove_backup_increments(&def, Some(0), Some("aa"))
        .unwrap();
    assert_eq!(
        dir_listing(&s.dst),
        ["r.1.tar.bz2", "r.2.tar.bz2", "r.tar.bz2"]
    );
    assert_eq!(p.get_max_backup_level("r").unwrap(), 3);

    p.remove_backup_increments(&def, Some(1), None).unwrap();
    assert_eq!(dir_listing(&s.dst), ["r.tar.bz2"]);
    assert_eq!(snapshot_files(&s), ["r.snar"]);
    assert_eq!(p.get_max_backup_level("r").unwrap(), 1);
    assert!(!p.does_any_backup_level_exist(&def, 1, None).unwrap());

    // Snapshots whose backup files were deleted by hand are dropped as well.
    p.backup_files_incrementally(&def, None, None, false, &Recorder::default())
        .unwrap();
    fs::remove_file(s.dst.join("r.1.tar.bz2")).unwrap();
    p.remove_backup_increments(&def, Some(1), None).unwrap();
    assert_eq!(snapshot_files(&s), ["r.snar"]);
}

/// tar reads a private copy of the previous level's snapshot; when that snapshot is damaged,
/// the events and the error name the user's file, not the copy.
#[test]
fn a_damaged_snapshot_is_named_as_the_users_file() {
    let s = setup();
    let p = &s.provider;
    let def = definition(&s, "b", BackupType::TarGz);
    p.backup_files_incrementally(&def, None, None, false, &Recorder::default())
        .unwrap();
    let level0 = s.snapshots.join("b.snar");
    for damage in [&b"GNU tar-1.34-2\n123\0garbage\0\0"[..], b"junk"] {
        fs::write(&level0, damage).unwrap();
        let events = Recorder::default();
        let err = p
            .backup_files_incrementally(&def, None, None, false, &events)
            .unwrap_err();
        let shown = level0.display().to_string();
        assert!(err.message().contains(&shown), "{err}");
        let errors = events.errors();
        assert!(!errors.is_empty());
        for e in errors.iter() {
            let name = String::from_utf8_lossy(e.name.as_deref().unwrap_or_default());
            let text = format!("{name} {}", e.message.as_deref().unwrap_or_default());
            assert!(text.contains(&shown) && !text.contains(".working"), "{e:?}");
        }
        assert!(!err.message().contains(".working"), "{err}");
    }
}

//! Dry run (`DryRunning`): the members listed are exactly those the next real run stores,
//! full and incremental after changes, and nothing is written (state and destination as they
//! were).

use std::cell::RefCell;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use aa_abi::capability::{DryRunning, ItemEvents};
use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupDefinition, BackupType};
use aa_plugin_tar_external::{TarExternal, TarExternalProvider};
use aa_provider_kit::recording::Recorder;
use aa_tests::{record_tree, tree_diff, Compare};

#[derive(Default)]
struct Events {
    items: RefCell<Vec<(Vec<u8>, u64)>>,
}

impl ItemEvents for Events {
    fn item(&self, name: &Path, size: u64) {
        self.items
            .borrow_mut()
            .push((name.as_os_str().as_bytes().to_vec(), size));
    }
    fn problem(&self, name: Option<&Path>, message: &str) {
        panic!("unexpected problem {name:?}: {message}");
    }
}

/// Dry-runs `level`, checks nothing changed under `base` but `root`, and returns the names.
fn dry(
    p: &TarExternalProvider,
    def: &BackupDefinition,
    level: Option<u32>,
    watched: &[PathBuf],
) -> Vec<(Vec<u8>, u64)> {
    let before: Vec<_> = watched.iter().map(|d| record_tree(d)).collect();
    let events = Events::default();
    let totals = p.dry_run(def, level, &events).unwrap();
    let items = events.items.into_inner();
    assert_eq!(totals.items, items.len() as u64);
    assert_eq!(totals.bytes, items.iter().map(|(_, s)| s).sum::<u64>());
    for (dir, before) in watched.iter().zip(before) {
        let diff = tree_diff(&before, &record_tree(dir), Compare { mtime_nanos: true });
        assert!(diff.is_empty(), "{}: {diff:?}", dir.display());
    }
    items
}

fn names(items: &[(Vec<u8>, u64)]) -> Vec<Vec<u8>> {
    items.iter().map(|(n, _)| n.clone()).collect()
}

#[test]
fn dry_run_lists_what_the_next_real_run_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (root, dest, work) = (base.join("src"), base.join("dest"), base.join("work"));
    fs::create_dir_all(root.join("d/sub")).unwrap();
    fs::create_dir_all(&dest).unwrap();
    // The provider makes only `work/snapshots` (with its first incremental backup): the work
    // directory itself must exist to be watched.
    fs::create_dir_all(&work).unwrap();
    fs::write(root.join("d/a"), "aaaa").unwrap();
    fs::write(root.join("d/sub/b"), "bb").unwrap();
    fs::write(root.join("top"), "top").unwrap();
    std::os::unix::fs::symlink("a", root.join("d/link")).unwrap();
    // The host makes the work directory; the provider makes `snapshots/` in it when needed.
    fs::create_dir_all(&work).unwrap();
    let p = TarExternal::create(&work).unwrap();
    let def = BackupDefinition::new("dry", BackupType::TarGz, &dest, &root).include(["d", "top"]);
    let watched = [dest.clone(), work.clone()];

    // Full.
    let listed = dry(&p, &def, None, &watched);
    assert!(listed.contains(&(b"d/a".to_vec(), 4)), "{listed:?}");
    assert!(listed.contains(&(b"d/link".to_vec(), 0)), "{listed:?}");
    let real = Recorder::default();
    p.backup_files(&def, None, false, &real).unwrap();
    assert_eq!(names(&listed), real.added());

    // Level 0, then level 1 after changes.
    for (level, change) in [(0u32, false), (1, true)] {
        if change {
            fs::write(root.join("d/sub/new"), "new").unwrap();
            fs::write(root.join("d/a"), "changed content").unwrap();
            fs::remove_file(root.join("d/sub/b")).unwrap();
        }
        let listed = dry(&p, &def, Some(level), &watched);
        let real = Recorder::default();
        p.backup_files_incrementally(&def, None, Some(level), false, &real)
            .unwrap();
        assert_eq!(names(&listed), real.added(), "level {level}");
        if change {
            assert!(listed.contains(&(b"d/a".to_vec(), 15)), "{listed:?}");
            assert!(!names(&listed).contains(&b"top".to_vec()), "{listed:?}");
        }
    }
}

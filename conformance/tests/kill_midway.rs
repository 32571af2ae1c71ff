//! An incremental level whose compressor dies half-way through (TarExternal): the run fails,
//! every previous backup and every stored snapshot stays byte-identical, no `._partial` file
//! is left, and the chain then goes on as if the failed runs never happened.
//!
//! The compressor is replaced by a script placed first on `PATH`, which tar finds when it
//! starts `gzip` (or `pigz`). `PATH` is process-wide, so this binary holds this one test only.

mod common;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use aa_abi::host::{PluginLibrary, Provider};
use aa_abi::{BackupDefinition, BackupType};
use aa_conformance::support::{dir_state, partial_files, state_diff, Recorder};
use aa_conformance::{gnu_restore_incremental, noise, tree_diff, Compare, TreeBuilder};
use common::path_with_gzip_script;

fn level(p: &Provider, def: &BackupDefinition, expected: &Path) {
    let path = p
        .backup_files_incrementally(def, None, None, false, &Recorder::default())
        .unwrap_or_else(|e| panic!("level {}: {e:?}", expected.display()));
    assert_eq!(path, expected);
}

#[test]
fn tar_external_level_killed_midway_keeps_backups_and_snapshots() {
    let library = PluginLibrary::load(&common::builtin_plugin("aa_plugin_tar_external"))
        .unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    let dest = tmp.path().join("dest");
    let work = tmp.path().join("work");
    fs::create_dir_all(&dest).unwrap();
    let mut tree = TreeBuilder::new(root.join("data"));
    // Far more than the fake compressor reads, so tar is cut off in the middle of its output.
    tree.file("big.bin", &noise(2_000_000, 5), 0o644)
        .file("small.txt", b"level 0\n", 0o644)
        .dir("dir", 0o755)
        .file("dir/gone.txt", b"deleted before level 2\n", 0o644);
    tree.finish();

    let p = library.create_provider(&work).unwrap();
    let def = BackupDefinition::new("proj", BackupType::TarGz, &dest, &root).include(["data"]);
    let backup = |name: &str| dest.join(name);
    level(&p, &def, &backup("proj.tar.gz"));
    fs::write(root.join("data/small.txt"), b"level 1\n").unwrap();
    level(&p, &def, &backup("proj.1.tar.gz"));
    let snapshots = work.join("snapshots");
    for snar in ["proj.snar", "proj.1.snar"] {
        assert!(snapshots.join(snar).is_file(), "{snar} should exist");
    }

    // Changes for level 2, including new content the failed runs would have to store.
    fs::write(root.join("data/small.txt"), b"level 2\n").unwrap();
    fs::remove_file(root.join("data/dir/gone.txt")).unwrap();
    fs::write(root.join("data/new.bin"), noise(1_000_000, 6)).unwrap();

    let work_before = dir_state(&work);
    let dest_before = dir_state(&dest);
    let original_path = env::var_os("PATH").unwrap_or_default();
    let marker = tmp.path().join("fake-gzip-ran");
    // Under both names: TarExternal runs pigz instead of gzip where it is installed.
    let path = path_with_gzip_script(
        &tmp.path().join("bin"),
        &format!(
            "touch '{}'\nhead -c 65536 >/dev/null\nexit 1\n",
            marker.display()
        ),
    );
    env::set_var("PATH", path);

    for (what, level) in [
        ("new level 2", None),
        ("redo of level 1", Some(1)),
        ("redo of level 0", Some(0)),
    ] {
        for strength in [None, Some(9)] {
            let _ = fs::remove_file(&marker);
            let result =
                p.backup_files_incrementally(&def, strength, level, false, &Recorder::default());
            assert!(marker.exists(), "{what}: the fake gzip did not run");
            let err = result.expect_err(what);
            assert!(
                !err.message().is_empty(),
                "{what}: the error should say why"
            );
            let work_diff = state_diff(&work_before, &dir_state(&work));
            assert!(
                work_diff.is_empty(),
                "{what} changed the work directory:\n{work_diff:#?}"
            );
            let dest_diff = state_diff(&dest_before, &dir_state(&dest));
            assert!(
                dest_diff.is_empty(),
                "{what} changed the backups:\n{dest_diff:#?}"
            );
            assert_eq!(partial_files(&dest), Vec::<String>::new(), "{what}");
            assert_eq!(p.get_max_backup_level("proj").unwrap(), 2, "{what}");
        }
    }
    env::set_var("PATH", original_path);

    // With the real gzip back, level 2 is made on top of the intact chain and restores.
    level(&p, &def, &backup("proj.2.tar.gz"));
    let out = tmp.path().join("restored");
    let chain: Vec<PathBuf> = ["proj.tar.gz", "proj.1.tar.gz", "proj.2.tar.gz"]
        .iter()
        .map(|n| backup(n))
        .collect();
    let chain: Vec<&Path> = chain.iter().map(PathBuf::as_path).collect();
    gnu_restore_incremental(&chain, &out).unwrap();
    let mut expected = dir_state(&root);
    let mut restored = dir_state(&out);
    for state in [&mut expected, &mut restored] {
        state.values_mut().for_each(|e| e.hardlink_group = None);
    }
    let diff = tree_diff(&expected, &restored, Compare::default());
    assert!(diff.is_empty(), "restored chain differs:\n{diff:#?}");
}

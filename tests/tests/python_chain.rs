//! A user moving from the Python `aa` 2.0.6 keeps their incremental chains: each built-in
//! provider (TarExternal and TarInternal) reads the snapshot directory the original wrote
//! (committed under `fixtures/python-aa-2.0.6`, see its `make.sh`) and continues it with the
//! next level.

use std::fs;
use std::path::Path;
use std::process::Command;

use aa_abi::host::PluginLibrary;
use aa_abi::{BackupDefinition, BackupType, NoEvents};
use aa_tests::{builtin_plugin, workspace_dir};

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Restores an incremental chain in order, as GNU tar documents it.
fn restore(archives: &[&Path], dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    for archive in archives {
        let status = Command::new("tar")
            .args(["--listed-incremental=/dev/null", "-xf"])
            .arg(archive)
            .arg("-C")
            .arg(dest)
            .status()
            .unwrap();
        assert!(status.success(), "restoring {}", archive.display());
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn tar_external_continues_a_chain_written_by_python_aa() {
    continues_a_chain_written_by_python_aa("aa_plugin_tar_external");
}

#[test]
fn tar_internal_continues_a_chain_written_by_python_aa() {
    continues_a_chain_written_by_python_aa("aa_plugin_tar_internal");
}

/// Level 2 by the provider in `plugin` on top of the original's levels 0 and 1.
fn continues_a_chain_written_by_python_aa(plugin: &str) {
    let fixture = workspace_dir().join("tests/fixtures/python-aa-2.0.6");
    let tmp = tempfile::tempdir().unwrap();
    let (config, dest, src) = (
        tmp.path().join("config"),
        tmp.path().join("dest"),
        tmp.path().join("src"),
    );
    copy_dir(&fixture.join("config"), &config);
    copy_dir(&fixture.join("dest"), &dest);

    // The source as it was at level 1, rebuilt from the original's own archives.
    let level0 = dest.join("chain.tar.gz");
    let level1 = dest.join("chain.1.tar.gz");
    restore(&[&level0, &level1], &src);
    assert_eq!(read(&src.join("a.txt")), "second version\n");
    assert!(src.join("dir1/new.txt").exists() && !src.join("dir2/c.txt").exists());

    // Changes for level 2.
    fs::write(src.join("dir2/d.txt"), "d\n").unwrap();
    fs::write(src.join("dir1/b.txt"), "b changed\n").unwrap();
    fs::remove_file(src.join("dir1/new.txt")).unwrap();

    let library = PluginLibrary::load(&builtin_plugin(plugin)).unwrap();
    let provider = library.create_provider(&config).unwrap();
    assert_eq!(provider.get_max_backup_level("chain").unwrap(), 2);
    assert_eq!(
        provider.get_stored_backup_ids().unwrap(),
        vec!["chain".to_string()]
    );

    let definition = BackupDefinition::new("chain", BackupType::TarGz, &dest, &src)
        .include(["a.txt", "dir1", "dir2"]);
    let level2 = provider
        .backup_files_incrementally(&definition, None, None, false, &NoEvents)
        .unwrap();
    assert_eq!(level2, dest.join("chain.2.tar.gz"));

    // The original's snapshots are untouched and the new one sits beside them.
    for name in ["chain.snar", "chain.1.snar"] {
        let original = fs::read(fixture.join("config/snapshots").join(name)).unwrap();
        assert_eq!(
            fs::read(config.join("snapshots").join(name)).unwrap(),
            original,
            "{name}"
        );
    }
    assert!(config.join("snapshots/chain.2.snar").is_file());
    assert_eq!(provider.get_max_backup_level("chain").unwrap(), 3);

    let restored = tmp.path().join("restored");
    restore(&[&level0, &level1, &level2], &restored);
    assert_eq!(read(&restored.join("a.txt")), "second version\n");
    assert_eq!(read(&restored.join("dir1/b.txt")), "b changed\n");
    assert_eq!(read(&restored.join("dir2/d.txt")), "d\n");
    assert!(
        !restored.join("dir1/new.txt").exists(),
        "deleted at level 2"
    );
    assert!(!restored.join("dir2/c.txt").exists(), "deleted at level 1");
}

//! One incremental chain, two providers: TarExternal (GNU tar) and TarInternal share the
//! snapshot files of a work directory, so a chain can switch provider at any level, in both
//! directions. Each prefix of the chain must restore with GNU tar to the tree as it was.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_abi::host::{PluginLibrary, Provider};
use aa_abi::{BackupDefinition, BackupType, ProviderErrorKind};
use aa_conformance::support::{dir_state, Recorder};
use aa_conformance::{tree_diff, Compare, TreeBuilder};
use common::builtin_plugin;

fn provider(lib_name: &str, work: &Path) -> Provider {
    let library = PluginLibrary::load(&builtin_plugin(lib_name)).unwrap_or_else(|e| panic!("{e}"));
    library.create_provider(work).unwrap()
}

/// Restores `archives` in order with GNU tar in incremental mode. Run in the target rather
/// than with `-C`: GNU tar 1.34 creates the temporary directory of a directory swap relative
/// to its own working directory.
fn restore(archives: &[PathBuf], out: &Path) {
    fs::create_dir_all(out).unwrap();
    for archive in archives {
        let result = Command::new("tar")
            .current_dir(out)
            .args(["--listed-incremental=/dev/null", "-xpf"])
            .arg(archive)
            .output()
            .unwrap();
        assert!(
            result.status.success() && result.stderr.is_empty(),
            "restoring {}: {}",
            archive.display(),
            String::from_utf8_lossy(&result.stderr)
        );
    }
}

fn initial_tree(root: &Path) {
    let mut t = TreeBuilder::new(root.join("data"));
    t.file("keep.txt", b"never changes\n", 0o644)
        .file("edit.txt", b"version 0\n", 0o644)
        .file("gone.txt", b"deleted at level 1\n", 0o644)
        .file("move-me.txt", b"renamed at level 1\n", 0o644)
        .file("becomes-dir", b"a file until level 1\n", 0o644)
        .symlink("link", "keep.txt")
        .symlink("dangling", "nowhere")
        .dir("empty", 0o755)
        .dir("x", 0o755)
        .file("x/in-x", b"x\n", 0o644)
        .dir("y", 0o755)
        .file("y/in-y", b"y\n", 0o644)
        .dir("becomes-file", 0o755)
        .file("becomes-file/inner", b"inner\n", 0o644)
        .dir("old", 0o755)
        .dir("old/nested", 0o750)
        .file("old/a.txt", b"in a directory renamed at level 1\n", 0o644)
        .file("old/nested/b.txt", b"nested\n", 0o600)
        .hard_link("keep-hard.txt", "keep.txt");
    t.finish();
}

/// The changes made before `level`.
fn change_tree(root: &Path, level: u32) {
    let d = root.join("data");
    let mv = |from: &str, to: &str| fs::rename(d.join(from), d.join(to)).unwrap();
    let write = |name: &str, content: &str| fs::write(d.join(name), content).unwrap();
    match level {
        1 => {
            write("edit.txt", "edited at level 1\n");
            fs::remove_file(d.join("gone.txt")).unwrap();
            mv("move-me.txt", "moved.txt");
            mv("old", "new");
            mv("x", "swap");
            mv("y", "x");
            mv("swap", "y");
            fs::remove_file(d.join("becomes-dir")).unwrap();
            fs::create_dir(d.join("becomes-dir")).unwrap();
            write("becomes-dir/now", "inside\n");
            fs::remove_dir_all(d.join("becomes-file")).unwrap();
            write("becomes-file", "a file now\n");
            fs::create_dir(d.join("new-empty")).unwrap();
            fs::hard_link(d.join("edit.txt"), d.join("edit-hard.txt")).unwrap();
        }
        2 => {
            write("edit.txt", "edited again at level 2, longer\n");
            fs::remove_dir(d.join("empty")).unwrap();
            mv("new/a.txt", "new/a-renamed.txt");
            mv("becomes-dir", "became-dir");
            fs::remove_file(d.join("link")).unwrap();
            symlink("edit.txt", d.join("link")).unwrap();
            fs::create_dir_all(d.join("added/deep")).unwrap();
            write("added/deep/f", "added at level 2\n");
            fs::set_permissions(d.join("keep.txt"), fs::Permissions::from_mode(0o600)).unwrap();
        }
        _ => {
            write(&format!("new-{level}.txt"), "new\n");
            mv("new", &format!("new-{level}"));
            fs::remove_file(d.join("moved.txt")).unwrap();
            fs::remove_dir_all(d.join("became-dir")).unwrap();
        }
    }
}

/// Runs a chain of four levels of `id`, level N made by `providers[N % 2]`, and restores
/// every prefix.
fn chain(includes: &[&str], providers: [&str; 2], id: &str, backup_type: BackupType) {
    let tmp = tempfile::tempdir().unwrap();
    let (root, dest, work) = (
        tmp.path().join("src"),
        tmp.path().join("dest"),
        tmp.path().join("work"),
    );
    fs::create_dir_all(&dest).unwrap();
    initial_tree(&root);
    let providers = [provider(providers[0], &work), provider(providers[1], &work)];
    let def = BackupDefinition::new(id, backup_type, &dest, &root).include(includes);
    let mut archives = Vec::new();
    for level in 0..4u32 {
        if level > 0 {
            change_tree(&root, level);
        }
        let provider = &providers[level as usize % 2];
        let events = Recorder::default();
        let archive = provider
            .backup_files_incrementally(&def, None, None, false, &events)
            .unwrap_or_else(|e| panic!("{id} level {level}: {e}"));
        if let Some(e) = events.errors().iter().find(|e| e.error.is_content_error()) {
            panic!("{id} level {level} reported {}", e.describe());
        }
        archives.push(archive);
        for p in &providers {
            assert_eq!(p.get_max_backup_level(id).unwrap(), level + 1, "{id}");
            assert_eq!(p.get_stored_backup_ids().unwrap(), [id]);
        }
        let out = tmp.path().join(format!("restore-{level}"));
        restore(&archives, &out);
        let diff = tree_diff(
            &dir_state(&root),
            &dir_state(&out),
            Compare { mtime_nanos: true },
        );
        assert!(
            diff.is_empty(),
            "{id}: restoring levels 0..={level} differs:\n  {}",
            diff.join("\n  ")
        );
    }

    // A failed run of either provider leaves the shared state and the backups alone.
    let before = (dir_state(&work), dir_state(&dest));
    fs::rename(&root, tmp.path().join("away")).unwrap();
    for p in &providers {
        for level in [None, Some(2)] {
            let err = p
                .backup_files_incrementally(&def, None, level, false, &Recorder::default())
                .unwrap_err();
            assert_eq!(err.kind, ProviderErrorKind::IO, "{err:?}");
            assert_eq!((dir_state(&work), dir_state(&dest)), before);
        }
    }
}

#[test]
fn gnu_tar_first_then_alternating() {
    chain(
        &["."],
        ["aa_plugin_tar_external", "aa_plugin_tar_internal"],
        "external-first",
        BackupType::TarGz,
    );
}

#[test]
fn internal_first_then_alternating() {
    chain(
        &["data"],
        ["aa_plugin_tar_internal", "aa_plugin_tar_external"],
        "internal-first",
        BackupType::TarZst,
    );
}

#[test]
fn whole_root_internal_first() {
    chain(
        &["."],
        ["aa_plugin_tar_internal", "aa_plugin_tar_external"],
        "root",
        BackupType::Tar,
    );
}

//! The pure-Rust restore (`Restoring`): chains made by TarInternal restore to the source tree
//! of each level for every type, equal to GNU tar's `-G` restore where that is exact; archives
//! of GNU tar (long names, every sparse format) and of the Python `aa` 2.0.6 restore as GNU tar
//! restores them; hostile archives change nothing outside the target; damaged ones fail naming
//! the file; `only` and `overwrite` do what they say (those in `restore/checks.rs`).

use std::cell::RefCell;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_abi::capability::{ChainArchive, ItemEvents, RestoreRequest, Restoring, Totals};
use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupDefinition, BackupType, NoEvents, PathBytes};
use aa_plugin_tar_internal::{TarInternalPlugin, TarInternalProvider};
use aa_tests::{mkfifo, record_tree, tree_diff, workspace_dir, Compare, TreeRecord};

// ---- helpers ------------------------------------------------------------------------------

#[derive(Default)]
struct Events {
    items: RefCell<Vec<(PathBuf, u64)>>,
    problems: RefCell<Vec<String>>,
}

impl ItemEvents for Events {
    fn item(&self, name: &Path, size: u64) {
        self.items.borrow_mut().push((name.to_path_buf(), size));
    }
    fn problem(&self, name: Option<&Path>, message: &str) {
        self.problems.borrow_mut().push(format!(
            "{}: {message}",
            name.map(Path::display)
                .map(|d| d.to_string())
                .unwrap_or_default()
        ));
    }
}

fn provider(base: &Path) -> TarInternalProvider {
    TarInternalPlugin::create(&base.join("work")).unwrap()
}

fn chain(archives: &[(&Path, BackupType)]) -> Vec<ChainArchive> {
    archives
        .iter()
        .enumerate()
        .map(|(level, (path, backup_type))| ChainArchive {
            level: level as u32,
            backup_type: *backup_type,
            path: PathBytes::new(path),
        })
        .collect()
}

fn restore_with(
    p: &TarInternalProvider,
    archives: Vec<ChainArchive>,
    target: &Path,
    only: &[&str],
    overwrite: bool,
) -> (Result<Totals, aa_abi::ProviderError>, Events) {
    fs::create_dir_all(target).unwrap();
    let request = RestoreRequest {
        archives: archives.into(),
        target: PathBytes::new(target),
        only: only.iter().map(PathBytes::new).collect::<Vec<_>>().into(),
        overwrite,
    };
    let events = Events::default();
    let totals = p.restore(&request, &events);
    (totals, events)
}

/// Restores and expects no problem.
#[track_caller]
fn restore(p: &TarInternalProvider, archives: Vec<ChainArchive>, target: &Path) -> Totals {
    let (totals, events) = restore_with(p, archives, target, &[], false);
    let totals = totals.unwrap_or_else(|e| panic!("restore into {}: {e}", target.display()));
    assert_eq!(*events.problems.borrow(), Vec::<String>::new());
    assert_eq!(totals.problems, 0);
    assert_eq!(totals.items, events.items.borrow().len() as u64);
    totals
}

/// The tree without its root entry (the backup root is no member when the includes name
/// entries below it).
fn tree(dir: &Path) -> TreeRecord {
    let mut record = record_tree(dir);
    record.remove(&Vec::new());
    record
}

#[track_caller]
fn assert_trees(expected: &TreeRecord, actual: &TreeRecord, context: &str) {
    let diff = tree_diff(expected, actual, Compare { mtime_nanos: true });
    assert!(diff.is_empty(), "{context}:\n  {}", diff.join("\n  "));
}

/// GNU tar's `-G` restore of `archives` (each in its format) into `out`.
fn gnu_restore(archives: &[&Path], out: &Path) {
    fs::create_dir_all(out).unwrap();
    for archive in archives {
        let o = Command::new("tar")
            .current_dir(out)
            .args(["--listed-incremental=/dev/null", "-xpf"])
            .arg(archive)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

fn write(path: &Path, content: &str) {
    fs::write(path, content).unwrap();
}

// ---- chains made by TarInternal -----------------------------------------------------------

/// Every kind of object: nested and empty directories, symbolic and hard links, a FIFO, odd
/// modes, another owner, a non-UTF-8 name, a long path.
fn make_tree(root: &Path) {
    let d = root.join("data");
    for dir in ["a/b", "c", "empty", "x", "y", "p/sub/deep", "gone/inner"] {
        fs::create_dir_all(d.join(dir)).unwrap();
    }
    fs::create_dir_all(root.join("topdir/inner")).unwrap();
    write(&root.join("topdir/inner/t"), "t");
    write(&root.join("loose"), "a top-level file");
    for (file, content) in [
        ("top", "top"),
        ("a/f1", "f1"),
        ("a/b/f2", "f2"),
        ("c/f3", "f3"),
        ("x/fx", "in x"),
        ("y/fy", "in y"),
        ("p/sub/f", "f"),
        ("gone/inner/i", "i"),
        ("will-be-dir", "w"),
    ] {
        write(&d.join(file), content);
    }
    fs::write(
        d.join(std::ffi::OsStr::from_bytes(b"odd\nname \xff")),
        "odd",
    )
    .unwrap();
    let long = d.join("l".repeat(120)).join("m".repeat(120));
    fs::create_dir_all(&long).unwrap();
    write(&long.join("n".repeat(100)), "long path");
    symlink("top", d.join("link")).unwrap();
    symlink("a", d.join("dirlink")).unwrap();
    symlink("nowhere", d.join("dangling")).unwrap();
    fs::hard_link(d.join("top"), d.join("hard")).unwrap();
    fs::hard_link(d.join("c/f3"), d.join("a/f3-link")).unwrap();
    mkfifo(&d.join("fifo"));
    fs::set_permissions(d.join("a/f1"), fs::Permissions::from_mode(0o4751)).unwrap();
    fs::set_permissions(d.join("c"), fs::Permissions::from_mode(0o700)).unwrap();
    if aa_tests::is_root() {
        std::os::unix::fs::lchown(d.join("y/fy"), Some(1234), Some(4321)).unwrap();
        std::os::unix::fs::lchown(d.join("dangling"), Some(1234), Some(4321)).unwrap();
    }
}

/// The changes before `level`: deletions at the top level (a directory root) and deeper,
/// renames of files and directories (a swap among them), type changes, new and removed
/// directories, new hard links.
fn change_tree(root: &Path, level: u32) {
    let d = root.join("data");
    let mv = |from: &str, to: &str| fs::rename(d.join(from), d.join(to)).unwrap();
    match level {
        1 => {
            write(&d.join("new-file"), "new");
            write(&d.join("a/f1"), "f1, modified and longer");
            fs::remove_file(d.join("c/f3")).unwrap();
            mv("top", "top-renamed");
            mv("a/b", "a/bb");
            mv("x", "swap");
            mv("y", "x");
            mv("swap", "y");
            mv("p", "q");
            mv("empty", "c/empty-moved");
            fs::remove_file(d.join("will-be-dir")).unwrap();
            fs::create_dir(d.join("will-be-dir")).unwrap();
            write(&d.join("will-be-dir/inside"), "inside");
            fs::create_dir(d.join("new-empty")).unwrap();
            fs::remove_dir_all(root.join("topdir")).unwrap();
            write(&root.join("loose"), "the top-level file, changed");
        }
        2 => {
            fs::remove_dir_all(d.join("q")).unwrap();
            fs::remove_dir_all(d.join("gone")).unwrap();
            fs::remove_dir(d.join("new-empty")).unwrap();
            fs::remove_file(d.join("link")).unwrap();
            write(&d.join("link"), "a file where a link was");
            fs::create_dir_all(d.join("fresh/deeper")).unwrap();
            write(&d.join("fresh/deeper/one"), "one");
            fs::hard_link(d.join("fresh/deeper/one"), d.join("fresh/two")).unwrap();
            fs::create_dir_all(root.join("topdir")).unwrap();
            write(&root.join("topdir/back"), "back again");
        }
        _ => {
            write(&d.join("a/f1"), &format!("f1 at level {level}"));
            mv("a/bb", &format!("a/bb-{level}"));
            fs::remove_file(d.join("hard")).unwrap();
            fs::remove_dir_all(d.join("will-be-dir")).unwrap();
            write(&d.join("will-be-dir"), "a file again");
        }
    }
}

fn archive_type_cases() -> [BackupType; 5] {
    [
        BackupType::Tar,
        BackupType::TarGz,
        BackupType::TarBz2,
        BackupType::TarXz,
        BackupType::TarZst,
    ]
}

#[test]
fn chains_restore_to_the_tree_of_each_level_for_every_type() {
    for backup_type in archive_type_cases() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let (root, dest) = (base.join("src"), base.join("dest"));
        fs::create_dir_all(&dest).unwrap();
        make_tree(&root);
        let p = provider(base);
        let def = BackupDefinition::new("chain", backup_type, &dest, &root)
            .include(["data", "loose", "topdir"]);
        let mut archives = Vec::new();
        for level in 0..=4u32 {
            match level {
                0 => {}
                // A top-level file deleted: only the roots record tells.
                4 => fs::remove_file(root.join("loose")).unwrap(),
                _ => change_tree(&root, level),
            }
            archives.push(
                p.backup_files_incrementally(&def, None, None, false, &NoEvents)
                    .unwrap(),
            );
            let out = base.join(format!("restore-{level}"));
            let refs: Vec<(&Path, BackupType)> = archives
                .iter()
                .map(|a| (a.as_path(), backup_type))
                .collect();
            let totals = restore(&p, chain(&refs), &out);
            assert!(totals.items > 0 && totals.bytes > 0);
            assert_trees(
                &tree(&root),
                &tree(&out),
                &format!("{backup_type:?} level {level}"),
            );
        }
    }
}

#[test]
fn large_archives_of_every_type_restore() {
    // Several MB: bzip2 in parallel pieces, xz in several blocks, chunk boundaries in files.
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (root, dest) = (base.join("src"), base.join("dest"));
    fs::create_dir_all(root.join("d")).unwrap();
    fs::create_dir_all(&dest).unwrap();
    for i in 0..6u64 {
        fs::write(
            root.join(format!("d/noise{i}")),
            aa_tests::noise(1_500_000 + i as usize, i),
        )
        .unwrap();
        fs::write(
            root.join(format!("d/text{i}")),
            aa_tests::compressible_text(700_000),
        )
        .unwrap();
    }
    let p = provider(base);
    for backup_type in archive_type_cases() {
        let def = BackupDefinition::new(&format!("big{backup_type:?}"), backup_type, &dest, &root)
            .include(["d"]);
        let archive = p.backup_files(&def, None, false, &NoEvents).unwrap();
        let out = base.join(format!("out{backup_type:?}"));
        let totals = restore(&p, chain(&[(&archive, backup_type)]), &out);
        assert_eq!(totals.bytes, 6 * 2_200_000 + 15);
        assert_trees(&tree(&root), &tree(&out), &format!("{backup_type:?}"));
    }
}

#[test]
fn where_gnu_tar_is_exact_ours_equals_it() {
    // The whole root as the one include: every deletion is in a dumpdir, GNU tar's restore
    // is exact, and ours must be the same, the root's own attributes included.
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (root, dest) = (base.join("src"), base.join("dest"));
    fs::create_dir_all(&dest).unwrap();
    make_tree(&root);
    let p = provider(base);
    let def = BackupDefinition::new("whole", BackupType::TarGz, &dest, &root).include(["."]);
    let mut archives = vec![p
        .backup_files_incrementally(&def, None, None, false, &NoEvents)
        .unwrap()];
    for level in 1..=3 {
        change_tree(&root, level);
        archives.push(
            p.backup_files_incrementally(&def, None, None, false, &NoEvents)
                .unwrap(),
        );
    }
    let refs: Vec<&Path> = archives.iter().map(PathBuf::as_path).collect();
    let gnu = base.join("gnu");
    gnu_restore(&refs, &gnu);
    let ours = base.join("ours");
    let typed: Vec<(&Path, BackupType)> = refs.iter().map(|a| (*a, BackupType::TarGz)).collect();
    restore(&p, chain(&typed), &ours);
    let how = Compare { mtime_nanos: true };
    let diff = tree_diff(&record_tree(&gnu), &record_tree(&ours), how);
    assert!(
        diff.is_empty(),
        "ours differs from GNU tar's:\n  {}",
        diff.join("\n  ")
    );
    assert!(tree_diff(&tree(&root), &tree(&ours), how).is_empty());
}

// ---- the roots record ---------------------------------------------------------------------

/// A tar (uncompressed) with the roots record of `roots` in front of `tar`'s members.
fn with_record(tar: &Path, roots: &[&str], out: &Path) {
    let mut data = aa_provider_kit::roots::record_blocks(roots);
    let plain = fs::read(tar).unwrap();
    // Drop an existing record (TarInternal's own, once it writes one).
    let start = if plain.len() >= 512 && plain[156] == b'g' {
        let size = usize::from_str_radix(
            std::str::from_utf8(&plain[124..135])
                .unwrap()
                .trim_matches('\0'),
            8,
        )
        .unwrap();
        512 + size.div_ceil(512) * 512
    } else {
        0
    };
    data.extend_from_slice(&plain[start..]);
    fs::write(out, data).unwrap();
}

#[test]
fn the_roots_record_deletes_top_level_files_and_without_it_they_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (root, dest) = (base.join("src"), base.join("dest"));
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(root.join("dir")).unwrap();
    write(&root.join("dir/f"), "f");
    write(&root.join("gone.txt"), "gone");
    write(&root.join("kept.txt"), "kept");
    let p = provider(base);
    let def = BackupDefinition::new("r", BackupType::Tar, &dest, &root)
        .include(["dir", "gone.txt", "kept.txt"]);
    let l0 = p
        .backup_files_incrementally(&def, None, None, false, &NoEvents)
        .unwrap();
    fs::remove_file(root.join("gone.txt")).unwrap();
    fs::remove_dir_all(root.join("dir")).unwrap();
    let l1 = p
        .backup_files_incrementally(&def, None, None, false, &NoEvents)
        .unwrap();

    // With records: exact.
    let (r0, r1) = (base.join("r0.tar"), base.join("r1.tar"));
    with_record(&l0, &["dir", "gone.txt", "kept.txt"], &r0);
    with_record(&l1, &["kept.txt"], &r1);
    let out = base.join("with");
    restore(
        &p,
        chain(&[(&r0, BackupType::Tar), (&r1, BackupType::Tar)]),
        &out,
    );
    assert_trees(&tree(&root), &tree(&out), "with roots records");

    // Without (the original aa's archives): the directory root goes, the file root stays.
    let (p0, p1) = (base.join("p0.tar"), base.join("p1.tar"));
    strip_record(&l0, &p0);
    strip_record(&l1, &p1);
    let out = base.join("without");
    restore(
        &p,
        chain(&[(&p0, BackupType::Tar), (&p1, BackupType::Tar)]),
        &out,
    );
    assert!(!out.join("dir").exists());
    assert_eq!(fs::read(out.join("gone.txt")).unwrap(), b"gone");
    assert_eq!(fs::read(out.join("kept.txt")).unwrap(), b"kept");
}

fn strip_record(tar: &Path, out: &Path) {
    let plain = fs::read(tar).unwrap();
    if plain.len() >= 512 && plain[156] == b'g' {
        let size = usize::from_str_radix(
            std::str::from_utf8(&plain[124..135])
                .unwrap()
                .trim_matches('\0'),
            8,
        )
        .unwrap();
        fs::write(out, &plain[512 + size.div_ceil(512) * 512..]).unwrap();
    } else {
        fs::write(out, plain).unwrap();
    }
}

// ---- archives of GNU tar and of the Python aa ----------------------------------------------

#[test]
fn python_aa_chains_restore_as_gnu_tar_restores_them() {
    let fixtures = workspace_dir().join("tests/fixtures");
    for (dir, names) in [
        ("python-aa-2.0.6", &["chain.tar.gz", "chain.1.tar.gz"][..]),
        (
            "python-aa-2.0.6-restarting",
            &["rchain.tar.gz", "rchain.1.tar.gz", "rchain.2.tar.gz"][..],
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let archives: Vec<PathBuf> = names
            .iter()
            .map(|n| fixtures.join(dir).join("dest").join(n))
            .collect();
        let refs: Vec<&Path> = archives.iter().map(PathBuf::as_path).collect();
        let gnu = tmp.path().join("gnu");
        gnu_restore(&refs, &gnu);
        let ours = tmp.path().join("ours");
        let typed: Vec<(&Path, BackupType)> =
            refs.iter().map(|a| (*a, BackupType::TarGz)).collect();
        restore(&provider(tmp.path()), chain(&typed), &ours);
        assert_trees(&tree(&gnu), &tree(&ours), dir);
        if dir == "python-aa-2.0.6" {
            assert_eq!(fs::read(ours.join("a.txt")).unwrap(), b"second version\n");
            assert!(ours.join("dir1/new.txt").exists());
            assert!(ours.join("dir2").is_dir() && !ours.join("dir2/c.txt").exists());
        }
    }
}

#[test]
fn gnu_tar_chains_restore_in_both_formats() {
    // As TarExternal makes them (posix), and GNU tar's own format with `D` members.
    for format in ["--format=posix", "--format=gnu"] {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let root = base.join("src");
        make_tree(&root);
        let snar = base.join("chain.snar");
        let mut archives = Vec::new();
        for level in 0..=3u32 {
            if level > 0 {
                change_tree(&root, level);
            }
            let archive = base.join(format!("l{level}.tar.gz"));
            aa_tests::settle_timestamps();
            let o = Command::new("tar")
                .args([format, "--sort=name", "-z"])
                .arg(format!("--listed-incremental={}", snar.display()))
                .arg("-cf")
                .arg(&archive)
                .arg("-C")
                .arg(&root)
                // TarExternal names the includes that exist.
                .args(
                    ["data", "loose", "topdir"]
                        .iter()
                        .filter(|n| root.join(n).exists()),
                )
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            aa_tests::settle_timestamps();
            archives.push(archive);
            let typed: Vec<(&Path, BackupType)> = archives
                .iter()
                .map(|a| (a.as_path(), BackupType::TarGz))
                .collect();
            let out = base.join(format!("out{level}"));
            restore(&provider(base), chain(&typed), &out);
            let how = Compare {
                mtime_nanos: format == "--format=posix",
            };
            let diff = tree_diff(&tree(&root), &tree(&out), how);
            assert!(
                diff.is_empty(),
                "{format} level {level}:\n  {}",
                diff.join("\n  ")
            );
        }
    }
}

#[test]
fn a_file_listed_as_unchanged_but_in_no_earlier_level_is_reported_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let archives = aa_tests::chains::chain_with_a_lost_file(base);
    let out = base.join("out");
    let typed = [
        (archives[0].as_path(), BackupType::Tar),
        (archives[1].as_path(), BackupType::Tar),
    ];
    let (totals, events) = restore_with(&provider(base), chain(&typed), &out, &[], false);
    let totals = totals.unwrap();
    assert_eq!(
        *events.problems.borrow(),
        ["data/lost: missing: this level lists it as unchanged, but no earlier level holds it"]
    );
    assert_eq!(totals.problems, 1);
    assert_eq!(fs::read_to_string(out.join("data/kept")).unwrap(), "kept");
    assert_eq!(
        fs::read_to_string(out.join("data/new")).unwrap(),
        "new at level 1"
    );

    // Selected away, the loss is not this restore's.
    let only_new = base.join("only");
    let (totals, events) = restore_with(
        &provider(base),
        chain(&typed),
        &only_new,
        &["data/new"],
        false,
    );
    assert_eq!(
        totals.unwrap().problems,
        0,
        "{:?}",
        events.problems.borrow()
    );
}

#[test]
fn the_plugin_exports_restore_and_it_works_across_the_boundary() {
    let library =
        aa_abi::host::PluginLibrary::load(&aa_tests::builtin_plugin("aa_plugin_tar_internal"))
            .unwrap();
    assert!(library.capabilities().names().contains(&"restore_v1"));
    let tmp = tempfile::tempdir().unwrap();
    let plugin = library.create_provider(&tmp.path().join("work")).unwrap();
    let dest = workspace_dir().join("tests/fixtures/python-aa-2.0.6/dest");
    let (l0, l1) = (dest.join("chain.tar.gz"), dest.join("chain.1.tar.gz"));
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let request = RestoreRequest {
        archives: chain(&[(&l0, BackupType::TarGz), (&l1, BackupType::TarGz)]).into(),
        target: PathBytes::new(&out),
        only: Vec::<PathBytes>::new().into(),
        overwrite: false,
    };
    let events = Events::default();
    let totals = plugin
        .restore(&request, &events)
        .expect("the capability")
        .unwrap();
    assert_eq!(totals.problems, 0);
    assert_eq!(totals.items, events.items.borrow().len() as u64);
    assert_eq!(fs::read(out.join("a.txt")).unwrap(), b"second version\n");
    assert!(!out.join("dir2/c.txt").exists());
    // A type the provider lacks is refused before any work.
    let mut wrong = request.clone();
    wrong.archives = chain(&[(&l0, BackupType(99))]).into();
    assert!(plugin.restore(&wrong, &events).unwrap().is_err());
}

/// A file of `len` bytes with data only at the given offsets (holes elsewhere).
pub(crate) fn sparse_file(path: &Path, len: u64, data_at: &[u64]) {
    let f = fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
    for &at in data_at {
        std::os::unix::fs::FileExt::write_all_at(&f, &aa_tests::noise(5000, at), at).unwrap();
    }
}

#[test]
fn gnu_tar_archives_restore_long_names_and_every_sparse_format() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let src = base.join("src");
    fs::create_dir_all(&src).unwrap();
    sparse_file(
        &src.join("sparse"),
        50 << 20,
        &[0, 10 << 20, (50 << 20) - 5000],
    );
    sparse_file(&src.join("hole-at-end"), 8 << 20, &[4096]);
    let long = src.join("d".repeat(150)).join("e".repeat(150));
    fs::create_dir_all(&long).unwrap();
    write(&long.join("f".repeat(200)), "long");
    symlink("t".repeat(300), src.join("longlink")).unwrap();
    fs::hard_link(long.join("f".repeat(200)), src.join("hard")).unwrap();
    mkfifo(&src.join("fifo"));
    let devices = aa_tests::is_root()
        && Command::new("mknod")
            .arg(src.join("null"))
            .args(["c", "1", "3"])
            .status()
            .is_ok_and(|s| s.success());
    let p = provider(base);
    for (i, args) in [
        &["--format=gnu"][..],
        &["--format=gnu", "--sparse"],
        &["--format=posix", "--sparse"],
        &["--format=posix", "--sparse", "--sparse-version=0.0"],
        &["--format=posix", "--sparse", "--sparse-version=0.1"],
        &["--format=posix", "--sparse", "--sparse-version=1.0"],
        &["--format=oldgnu", "--sparse"],
    ]
    .into_iter()
    .enumerate()
    {
        let archive = base.join(format!("a{i}.tar"));
        let o = Command::new("tar")
            .args(args)
            .arg("-cf")
            .arg(&archive)
            .arg("-C")
            .arg(&src)
            .arg(".")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = base.join(format!("out{i}"));
        restore(&p, chain(&[(&archive, BackupType::Tar)]), &out);
        let how = Compare {
            mtime_nanos: args.contains(&"--format=posix"),
        };
        let diff = tree_diff(&record_tree(&src), &record_tree(&out), how);
        assert!(diff.is_empty(), "{args:?}:\n  {}", diff.join("\n  "));
        if devices {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            let m = fs::symlink_metadata(out.join("null")).unwrap();
            assert!(m.file_type().is_char_device(), "{args:?}");
            assert_eq!(
                m.rdev(),
                fs::symlink_metadata(src.join("null")).unwrap().rdev()
            );
        }
        if args.contains(&"--sparse") {
            let blocks =
                std::os::unix::fs::MetadataExt::blocks(&fs::metadata(out.join("sparse")).unwrap());
            assert!(
                blocks * 512 < 1 << 20,
                "{args:?}: holes filled ({blocks} blocks)"
            );
        }
    }
}

// Hostile archives, damage, overwrite and only.
#[path = "restore/checks.rs"]
mod checks;

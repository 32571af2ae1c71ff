//! The pure-Rust restore (`Restoring`): chains made by TarInternal restore to the source tree
//! of each level for every type, equal to GNU tar's `-G` restore where that is exact; archives
//! of GNU tar (long names, every sparse format) and of the Python `aa` 2.0.6 restore as GNU tar
//! restores them; hostile archives change nothing outside the target; damaged ones fail naming
//! the file; `only` and `overwrite` do what they say.

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
        for level in 0..=3u32 {
            if level > 0 {
                change_tree(&root, level);
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

/// A file of `len` bytes with data only at the given offsets (holes elsewhere).
fn sparse_file(path: &Path, len: u64, data_at: &[u64]) {
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

// ---- hostile archives ---------------------------------------------------------------------

/// One ustar header (and data) with a raw name, as no well-behaved writer would make it.
fn member(out: &mut Vec<u8>, name: &[u8], typeflag: u8, link: &[u8], data: &[u8]) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = len - 1);
        h[at..at + len].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, 0o644);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, data.len() as u64);
    octal(&mut h, 136, 12, 1_600_000_000);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

#[test]
fn hostile_archives_change_nothing_outside_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let outside = base.join("outside");
    fs::create_dir_all(&outside).unwrap();
    write(&outside.join("canary"), "canary");
    let target = base.join("target");
    let out = outside.display().to_string();
    let abs_file = format!("{out}/abs-written");
    let escape = "../outside/canary";

    let mut tar = Vec::new();
    member(&mut tar, b"ok.txt", b'0', b"", b"fine");
    member(&mut tar, b"../outside/dotdot", b'0', b"", b"x");
    member(&mut tar, b"a/../../outside/dotdot2", b'0', b"", b"x");
    member(&mut tar, abs_file.as_bytes(), b'0', b"", b"x");
    // A link to the outside, then members through it.
    member(&mut tar, b"to-outside", b'2', out.as_bytes(), b"");
    member(&mut tar, b"to-outside/through", b'0', b"", b"x");
    member(&mut tar, b"to-outside/canary", b'0', b"", b"overwritten");
    member(&mut tar, b"rel", b'2', b"../outside", b"");
    member(&mut tar, b"rel/canary", b'0', b"", b"overwritten");
    member(&mut tar, b"to-root", b'2', b"/", b"");
    member(&mut tar, b"to-root/tmp/aa-restore-hostile", b'0', b"", b"x");
    member(&mut tar, b"to-outside/newdir/", b'5', b"", b"");
    // Hard links to the outside, by name and through the link.
    member(&mut tar, b"hard1", b'1', escape.as_bytes(), b"");
    member(
        &mut tar,
        b"hard2",
        b'1',
        format!("{out}/canary").as_bytes(),
        b"",
    );
    member(&mut tar, b"hard3", b'1', b"to-outside/canary", b"");
    // A link inside the target is fine to write through.
    member(&mut tar, b"sub/", b'5', b"", b"");
    member(&mut tar, b"inside", b'2', b"sub", b"");
    member(
        &mut tar,
        b"inside/via-link",
        b'0',
        b"",
        b"through an inner link",
    );
    // Replacing the link to the outside by a file writes the file, not through the link.
    member(&mut tar, b"to-outside", b'0', b"", b"now a file");
    tar.extend_from_slice(&[0u8; 1024]);
    let archive = base.join("hostile.tar");
    fs::write(&archive, &tar).unwrap();

    let before = record_tree(&outside);
    let p = provider(base);
    let (totals, events) = restore_with(
        &p,
        chain(&[(&archive, BackupType::Tar)]),
        &target,
        &[],
        false,
    );
    let totals = totals.unwrap();
    let problems = events.problems.borrow().clone();
    assert_eq!(totals.problems, problems.len() as u64);
    assert_eq!(totals.problems, 11, "{problems:#?}");
    for refused in [
        "dotdot",
        "abs-written",
        "through",
        "canary",
        "tmp/aa-restore",
        "newdir",
        "hard1",
        "hard2",
        "hard3",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(refused)),
            "{refused} not reported: {problems:#?}"
        );
    }
    assert_trees(&before, &record_tree(&outside), "outside the target");
    assert!(!Path::new("/tmp/aa-restore-hostile").exists());
    assert_eq!(fs::read(target.join("ok.txt")).unwrap(), b"fine");
    assert_eq!(
        fs::read(target.join("sub/via-link")).unwrap(),
        b"through an inner link"
    );
    assert_eq!(fs::read(target.join("to-outside")).unwrap(), b"now a file");
    assert_eq!(
        fs::read_link(target.join("rel")).unwrap(),
        Path::new("../outside")
    );
}

/// A directory member with a GNU dumpdir, in the GNU format (`D`).
fn dumpdir_member(out: &mut Vec<u8>, name: &[u8], dumpdir: &[u8]) {
    member(out, name, b'D', b"", dumpdir);
}

#[test]
fn deletions_and_renames_of_hostile_dumpdirs_stay_in_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let outside = base.join("outside");
    fs::create_dir_all(outside.join("dir")).unwrap();
    write(&outside.join("dir/canary"), "canary");
    let target = base.join("target");

    // Level 0: a directory and a link in it to the outside directory.
    let mut l0 = Vec::new();
    dumpdir_member(&mut l0, b"d/", b"Dlink\0Yf\0\0");
    member(&mut l0, b"d/f", b'0', b"", b"f");
    member(
        &mut l0,
        b"d/link",
        b'2',
        outside.to_str().unwrap().as_bytes(),
        b"",
    );
    l0.extend_from_slice(&[0u8; 1024]);
    // Level 1: `d/link` as a directory whose dumpdir lists nothing (GNU tar would purge
    // `d/link/*` if it followed the link), renames out of and into the outside, and a deletion
    // through the link.
    let mut l1 = Vec::new();
    dumpdir_member(
        &mut l1,
        b"d/",
        b"Dlink\0Yf\0R../outside/dir\0Tstolen\0Rd/f\0T/tmp/aa-restore-moved\0\0",
    );
    dumpdir_member(&mut l1, b"d/link/", b"\0");
    l1.extend_from_slice(&[0u8; 1024]);
    let (a0, a1) = (base.join("l0.tar"), base.join("l1.tar"));
    fs::write(&a0, &l0).unwrap();
    fs::write(&a1, &l1).unwrap();

    let before = record_tree(&outside);
    let p = provider(base);
    let (totals, events) = restore_with(
        &p,
        chain(&[(&a0, BackupType::Tar), (&a1, BackupType::Tar)]),
        &target,
        &[],
        false,
    );
    totals.unwrap();
    let problems = events.problems.borrow().clone();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_trees(&before, &record_tree(&outside), "outside the target");
    assert!(!Path::new("/tmp/aa-restore-moved").exists());
    // The link was replaced by a directory, in the target.
    assert!(fs::symlink_metadata(target.join("d/link"))
        .unwrap()
        .is_dir());
    assert_eq!(fs::read(target.join("d/f")).unwrap(), b"f");
}

// ---- damage, overwrite, only --------------------------------------------------------------

#[test]
fn a_damaged_or_cut_archive_fails_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (root, dest) = (base.join("src"), base.join("dest"));
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&root).unwrap();
    write(&root.join("big"), &"x".repeat(100_000));
    let p = provider(base);
    for backup_type in archive_type_cases() {
        let def = BackupDefinition::new(&format!("d{backup_type:?}"), backup_type, &dest, &root)
            .include(["."]);
        let archive = p.backup_files(&def, None, false, &NoEvents).unwrap();
        let bytes = fs::read(&archive).unwrap();
        let cut = base.join(format!(
            "cut-{}",
            archive.file_name().unwrap().to_string_lossy()
        ));
        fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let (result, _) = restore_with(
            &p,
            chain(&[(&cut, backup_type)]),
            &base.join(format!("o{backup_type:?}")),
            &[],
            false,
        );
        let e = result.expect_err("a cut archive is an error");
        assert!(
            e.message().contains(&cut.display().to_string()),
            "{backup_type:?}: {e}"
        );
    }
    let missing = base.join("missing.tar");
    let (result, _) = restore_with(
        &p,
        chain(&[(&missing, BackupType::Tar)]),
        &base.join("om"),
        &[],
        false,
    );
    assert!(result.unwrap_err().message().contains("missing.tar"));
    let garbage = base.join("garbage.tar");
    fs::write(&garbage, "not a tar archive at all ".repeat(100)).unwrap();
    let (result, _) = restore_with(
        &p,
        chain(&[(&garbage, BackupType::Tar)]),
        &base.join("og"),
        &[],
        false,
    );
    assert!(result.unwrap_err().message().contains("garbage.tar"));
}

#[test]
fn overwrite_replaces_files_and_only_empty_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let mut tar = Vec::new();
    member(&mut tar, b"file", b'0', b"", b"new");
    member(&mut tar, b"was-empty-dir", b'0', b"", b"new");
    member(&mut tar, b"was-full-dir", b'0', b"", b"new");
    member(&mut tar, b"link", b'2', b"file", b"");
    tar.extend_from_slice(&[0u8; 1024]);
    let archive = base.join("a.tar");
    fs::write(&archive, &tar).unwrap();
    let target = base.join("target");
    fs::create_dir_all(target.join("was-empty-dir")).unwrap();
    fs::create_dir_all(target.join("was-full-dir")).unwrap();
    write(&target.join("was-full-dir/keep"), "keep");
    write(&target.join("file"), "old");
    write(&target.join("link"), "old");
    write(&target.join("unrelated"), "stays");
    let (totals, events) = restore_with(
        &provider(base),
        chain(&[(&archive, BackupType::Tar)]),
        &target,
        &[],
        true,
    );
    let totals = totals.unwrap();
    assert_eq!(totals.problems, 1, "{:?}", events.problems.borrow());
    assert!(events.problems.borrow()[0].contains("was-full-dir"));
    assert_eq!(fs::read(target.join("file")).unwrap(), b"new");
    assert_eq!(fs::read(target.join("was-empty-dir")).unwrap(), b"new");
    assert_eq!(fs::read(target.join("was-full-dir/keep")).unwrap(), b"keep");
    assert_eq!(
        fs::read_link(target.join("link")).unwrap(),
        Path::new("file")
    );
    assert_eq!(fs::read(target.join("unrelated")).unwrap(), b"stays");
}

#[test]
fn only_restores_the_given_paths_and_deletes_only_within_them() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (root, dest) = (base.join("src"), base.join("dest"));
    fs::create_dir_all(&dest).unwrap();
    make_tree(&root);
    let p = provider(base);
    let def = BackupDefinition::new("o", BackupType::TarZst, &dest, &root)
        .include(["data", "loose", "topdir"]);
    let mut archives = vec![p
        .backup_files_incrementally(&def, None, None, false, &NoEvents)
        .unwrap()];
    for level in 1..=2 {
        change_tree(&root, level);
        archives.push(
            p.backup_files_incrementally(&def, None, None, false, &NoEvents)
                .unwrap(),
        );
    }
    let typed: Vec<(&Path, BackupType)> = archives
        .iter()
        .map(|a| (a.as_path(), BackupType::TarZst))
        .collect();
    let out = base.join("out");
    let only = ["data/a", "data/fresh", "data/q", "topdir"];
    let (totals, events) = restore_with(&p, chain(&typed), &out, &only, false);
    totals.unwrap();
    assert!(
        events.problems.borrow().is_empty(),
        "{:?}",
        events.problems.borrow()
    );
    let expected: TreeRecord = tree(&root)
        .into_iter()
        .filter(|(k, _)| {
            only.iter().any(|o| {
                let o = o.as_bytes();
                k == o || (k.starts_with(o) && k.get(o.len()) == Some(&b'/'))
            })
        })
        .collect();
    let got: TreeRecord = tree(&out)
        .into_iter()
        .filter(|(_, e)| e.kind != aa_tests::Kind::Dir || !expected.is_empty())
        .collect();
    // Directories leading to the selection are made, with no attributes to compare.
    let got: TreeRecord = got
        .into_iter()
        .filter(|(k, _)| !["data"].contains(&String::from_utf8_lossy(k).as_ref()))
        .collect();
    // Hard link groups name members outside the selection: compare them apart.
    let strip = |r: TreeRecord| -> TreeRecord {
        r.into_iter()
            .map(|(k, mut e)| {
                e.hardlink_group = None;
                (k, e)
            })
            .collect()
    };
    assert_trees(&strip(expected), &strip(got), "only");
    assert!(!out.join("data/q").exists() && !out.join("loose").exists());
}

//! Restore through GNU tar (`Restoring`): chains made by TarExternal restore to the source tree
//! of each level for every type, deletions at the top level and deeper and renames included;
//! hostile archives change nothing outside the target and their members are reported.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_abi::capability::{ChainArchive, ItemEvents, RestoreRequest, Restoring, Totals};
use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupDefinition, BackupType, NoEvents, PathBytes};
use aa_plugin_tar_external::{TarExternal, TarExternalProvider};
use aa_tests::{mkfifo, record_tree, tree_diff, Compare, TreeRecord};

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
            name.map(|n| n.display().to_string()).unwrap_or_default()
        ));
    }
}

fn provider(base: &Path) -> TarExternalProvider {
    TarExternal::create(&base.join("work")).unwrap()
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
    p: &TarExternalProvider,
    archives: Vec<ChainArchive>,
    target: &Path,
    only: &[&str],
) -> (Result<Totals, aa_abi::ProviderError>, Events) {
    fs::create_dir_all(target).unwrap();
    let request = RestoreRequest {
        archives: archives.into(),
        target: PathBytes::new(target),
        only: only.iter().map(PathBytes::new).collect::<Vec<_>>().into(),
        overwrite: false,
    };
    let events = Events::default();
    let totals = p.restore(&request, &events);
    (totals, events)
}

/// Restores and expects no problem.
#[track_caller]
fn restore(p: &TarExternalProvider, archives: Vec<ChainArchive>, target: &Path) -> Totals {
    let (totals, events) = restore_with(p, archives, target, &[]);
    let totals = totals.unwrap_or_else(|e| panic!("restore into {}: {e}", target.display()));
    assert_eq!(*events.problems.borrow(), Vec::<String>::new());
    assert_eq!(totals.problems, 0);
    assert_eq!(totals.items, events.items.borrow().len() as u64);
    totals
}

/// The tree without its root entry (no member describes the backup root when the includes
/// name entries below it).
fn tree(dir: &Path) -> TreeRecord {
    let mut record = record_tree(dir);
    record.remove(&Vec::new());
    record
}

#[track_caller]
fn assert_trees(expected: &TreeRecord, actual: &TreeRecord, context: &str) {
    let diff = tree_diff(expected, actual, Compare { mtime_nanos: false });
    assert!(diff.is_empty(), "{context}:\n  {}", diff.join("\n  "));
}

fn write(path: &Path, content: &str) {
    fs::write(path, content).unwrap();
}

// ---- chains made by TarExternal -----------------------------------------------------------

fn make_tree(root: &Path) {
    let d = root.join("data");
    for dir in ["a/b", "c", "p/sub/deep", "gone/inner"] {
        fs::create_dir_all(d.join(dir)).unwrap();
    }
    fs::create_dir_all(root.join("topdir/inner")).unwrap();
    write(&root.join("topdir/inner/t"), "t");
    write(&root.join("loose"), "a top-level file");
    write(&root.join("kept"), "a top-level file that stays");
    for (file, content) in [
        ("top", "top"),
        ("a/f1", "f1"),
        ("a/b/f2", "f2"),
        ("c/f3", "f3"),
        ("p/sub/f", "f"),
        ("gone/inner/i", "i"),
    ] {
        write(&d.join(file), content);
    }
    symlink("top", d.join("link")).unwrap();
    fs::hard_link(d.join("top"), d.join("hard")).unwrap();
    mkfifo(&d.join("fifo"));
    fs::set_permissions(d.join("a/f1"), fs::Permissions::from_mode(0o751)).unwrap();
    fs::set_permissions(d.join("c"), fs::Permissions::from_mode(0o700)).unwrap();
}

/// The changes before `level`: deletions at the top level (a directory, a file) and deeper,
/// renames of files and directories.
fn change_tree(root: &Path, level: u32) {
    let d = root.join("data");
    let mv = |from: &str, to: &str| fs::rename(d.join(from), d.join(to)).unwrap();
    // Directories are "deleted" by moving them out of the tree, so that their inodes stay in
    // use: a directory made later with a freed inode number is a rename to GNU tar's snapshot,
    // which would make the chain depend on the file system's inode allocation.
    let graveyard = root.with_file_name(format!("graveyard-{level}"));
    fs::create_dir_all(&graveyard).unwrap();
    let remove_dir_all = |dir: PathBuf| {
        let name = dir
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('/', "_");
        fs::rename(&dir, graveyard.join(name)).unwrap();
    };
    match level {
        1 => {
            write(&d.join("new-file"), "new");
            write(&d.join("a/f1"), "f1, modified and longer");
            fs::remove_file(d.join("c/f3")).unwrap();
            mv("top", "top-renamed");
            mv("a/b", "a/bb");
            mv("p", "q");
            remove_dir_all(root.join("topdir"));
            fs::remove_file(root.join("loose")).unwrap();
        }
        _ => {
            remove_dir_all(d.join("q"));
            remove_dir_all(d.join("gone"));
            fs::create_dir_all(d.join("fresh/deeper")).unwrap();
            write(&d.join("fresh/deeper/one"), "one");
            mv("a/bb", "a/bbb");
            fs::create_dir_all(root.join("topdir")).unwrap();
            write(&root.join("topdir/back"), "back again");
        }
    }
}

const TYPES: [BackupType; 5] = [
    BackupType::Tar,
    BackupType::TarGz,
    BackupType::TarBz2,
    BackupType::TarXz,
    BackupType::TarZst,
];

#[test]
fn chains_restore_to_the_tree_of_each_level_for_every_type() {
    for backup_type in TYPES {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let (root, dest) = (base.join("src"), base.join("dest"));
        fs::create_dir_all(&dest).unwrap();
        make_tree(&root);
        let p = provider(base);
        let def = BackupDefinition::new("chain", backup_type, &dest, &root)
            .include(["data", "loose", "kept", "topdir"]);
        let mut archives = Vec::new();
        for level in 0..=2u32 {
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
fn only_restores_the_given_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (root, dest) = (base.join("src"), base.join("dest"));
    fs::create_dir_all(&dest).unwrap();
    make_tree(&root);
    let p = provider(base);
    let def = BackupDefinition::new("only", BackupType::TarGz, &dest, &root)
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
    let refs: Vec<(&Path, BackupType)> = archives
        .iter()
        .map(|a| (a.as_path(), BackupType::TarGz))
        .collect();
    // `data/gone` (deleted at level 2) and `data/gone/inner/i`: the level holds no member of
    // them, only the dumpdir of `data` tells they are gone.
    let gone = base.join("gone");
    let (totals, events) = restore_with(
        &p,
        chain(&refs),
        &gone,
        &["data/gone", "data/gone/inner/i", "data/c"],
    );
    totals.unwrap();
    assert_eq!(*events.problems.borrow(), Vec::<String>::new());
    assert!(!gone.join("data/gone").exists());
    assert!(gone.join("data/c").is_dir());
    let at_level_1 = base.join("at-level-1");
    let (totals, _) = restore_with(&p, chain(&refs[..2]), &at_level_1, &["data/gone"]);
    totals.unwrap();
    assert_eq!(
        fs::read_to_string(at_level_1.join("data/gone/inner/i")).unwrap(),
        "i"
    );

    let out = base.join("out");
    // Not `data/a`: its `b`, renamed at level 1, is one a selection under the final name
    // misses (renames are recorded in the dumpdir of `data`, which is not extracted).
    let (totals, events) = restore_with(&p, chain(&refs[..2]), &out, &["data/c", "topdir"]);
    let totals = totals.unwrap();
    assert_eq!(*events.problems.borrow(), Vec::<String>::new());
    assert!(totals.items > 0);
    let mut expected = tree(&root.join("data/c"));
    expected = expected
        .into_iter()
        .map(|(mut k, v)| {
            let mut name = b"data/c/".to_vec();
            name.append(&mut k);
            (name, v)
        })
        .collect();
    let mut got = tree(&out);
    // The directory leading to the selection is made, not restored.
    got.remove(b"data".as_slice());
    assert_eq!(
        got.remove(b"data/c".as_slice()),
        tree(&root.join("data")).remove(b"c".as_slice())
    );
    assert_trees(&expected, &got, "only data/c and the deleted topdir");
}

// ---- the roots record --------------------------------------------------------------------

/// The uncompressed start of `archive`, read with the type's own decompressor.
fn decompressed(archive: &Path, backup_type: BackupType) -> Vec<u8> {
    let program = match backup_type {
        BackupType::Tar => return fs::read(archive).unwrap(),
        BackupType::TarGz => "gzip",
        BackupType::TarBz2 => "bzip2",
        BackupType::TarXz => "xz",
        _ => "zstd",
    };
    let out = Command::new(program)
        .arg("-dc")
        .stdin(fs::File::open(archive).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{program} -dc {}", archive.display());
    out.stdout
}

#[test]
fn every_level_starts_with_the_roots_record_and_gnu_tar_reads_it_silently() {
    for backup_type in TYPES {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let (root, dest) = (base.join("src"), base.join("dest"));
        fs::create_dir_all(&dest).unwrap();
        make_tree(&root);
        let p = provider(base);
        let def = BackupDefinition::new("roots", backup_type, &dest, &root).include([
            "data",
            "loose",
            "kept",
            "topdir",
            "never-there",
        ]);
        let level0 = p
            .backup_files_incrementally(&def, None, None, false, &NoEvents)
            .unwrap();
        change_tree(&root, 1);
        let level1 = p
            .backup_files_incrementally(&def, None, None, false, &NoEvents)
            .unwrap();
        let roots = |archive: &Path| {
            aa_provider_kit::roots::read_record(&decompressed(archive, backup_type)[..]).unwrap()
        };
        let names = |list: &[&str]| list.iter().map(|n| n.as_bytes().to_vec()).collect();
        assert_eq!(
            roots(&level0),
            Some(names(&["data", "kept", "loose", "topdir"])),
            "{backup_type:?}"
        );
        assert_eq!(
            roots(&level1),
            Some(names(&["data", "kept"])),
            "{backup_type:?}"
        );
        let out = base.join("gnu");
        fs::create_dir_all(&out).unwrap();
        for archive in [&level0, &level1] {
            let listed = Command::new("tar")
                .arg("-tvf")
                .arg(archive)
                .output()
                .unwrap();
            assert!(listed.status.success(), "{backup_type:?}");
            assert_eq!(
                String::from_utf8_lossy(&listed.stderr),
                "",
                "{backup_type:?}"
            );
            assert!(String::from_utf8_lossy(&listed.stdout).contains("data/"));
            let extracted = Command::new("tar")
                .args(["-x", "-G", "-f"])
                .arg(archive)
                .arg("-C")
                .arg(&out)
                .output()
                .unwrap();
            assert!(extracted.status.success(), "{backup_type:?}");
            assert_eq!(
                String::from_utf8_lossy(&extracted.stderr),
                "",
                "{backup_type:?}"
            );
        }
        assert_eq!(
            fs::read_to_string(out.join("data/a/f1")).unwrap(),
            "f1, modified and longer"
        );
    }
}

// ---- hostile archives ---------------------------------------------------------------------

fn gnu_tar(args: &[&std::ffi::OsStr]) {
    let out = Command::new("tar").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every entry below `dir`, as a sorted list of names.
fn listing(dir: &Path) -> Vec<Vec<u8>> {
    tree(dir).into_keys().collect()
}

#[test]
fn hostile_members_are_refused_and_change_nothing_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let canary = base.join("canary");
    fs::create_dir_all(&canary).unwrap();
    write(&canary.join("keep"), "untouched");
    let target = base.join("target");
    fs::create_dir_all(&target).unwrap();
    let work = base.join("work-dir");
    fs::create_dir_all(work.join("stage/evil")).unwrap();
    write(&work.join("stage/evil/inside"), "written through the link");
    write(&work.join("stage/ok"), "fine");
    fs::create_dir_all(work.join("links")).unwrap();
    symlink(&canary, work.join("links/evil")).unwrap();
    symlink("/", work.join("links/root")).unwrap();
    fs::create_dir_all(work.join("links2/root")).unwrap();
    write(&work.join("links2/root/planted"), "planted");
    // `../x` and an absolute name, stored as given (-P).
    write(&base.join("escape"), "escaped");
    let hostile = base.join("hostile.tar");
    let abs = canary.join("absolute");
    write(&abs, "absolute member");
    let o = |s: &str| std::ffi::OsString::from(s);
    gnu_tar(&[
        o("-cPf").as_os_str(),
        hostile.as_os_str(),
        o("-C").as_os_str(),
        work.join("links").as_os_str(),
        o("evil").as_os_str(),
        o("root").as_os_str(),
        o("-C").as_os_str(),
        work.join("links2").as_os_str(),
        o("root/planted").as_os_str(),
        o("-C").as_os_str(),
        work.join("stage").as_os_str(),
        o("evil/inside").as_os_str(),
        o("ok").as_os_str(),
        o("../../escape").as_os_str(),
        abs.as_os_str(),
    ]);
    fs::remove_file(&abs).unwrap();
    fs::remove_file(base.join("escape")).unwrap();
    let names = common_list(&hostile);
    assert!(names.iter().any(|n| n == b"../../escape"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with(b"/")), "{names:?}");

    let before = record_tree(&canary);
    let p = provider(base);
    let (totals, events) = restore_with(&p, chain(&[(&hostile, BackupType::Tar)]), &target, &[]);
    let totals = totals.unwrap();
    let problems = events.problems.borrow().clone();
    assert!(totals.problems >= 3, "{problems:?}");
    assert!(
        problems.iter().any(|p| p.starts_with("../../escape: ")),
        "{problems:?}"
    );
    let abs_name = abs.display().to_string();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&format!("{abs_name}: "))),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("evil/inside: ")),
        "{problems:?}"
    );
    assert_eq!(record_tree(&canary), before);
    assert!(!base.join("escape").exists());
    assert!(!Path::new("/planted").exists());
    assert_eq!(fs::read_to_string(target.join("ok")).unwrap(), "fine");
    assert_eq!(fs::read_link(target.join("evil")).unwrap(), canary);
    // Excluded, not merely stripped and extracted (what GNU tar alone would do).
    assert_eq!(
        listing(&target),
        [b"evil".to_vec(), b"ok".to_vec(), b"root".to_vec()]
    );

    // A second level writing below the links the first one made: refused before GNU tar
    // (which follows existing links) sees it.
    let second = base.join("second.tar");
    gnu_tar(&[
        o("-cf").as_os_str(),
        second.as_os_str(),
        o("-C").as_os_str(),
        work.join("stage").as_os_str(),
        o("evil/inside").as_os_str(),
        o("-C").as_os_str(),
        work.join("links2").as_os_str(),
        o("root/planted").as_os_str(),
    ]);
    let target2 = base.join("target2");
    let (totals, events) = restore_with(
        &p,
        chain(&[(&hostile, BackupType::Tar), (&second, BackupType::Tar)]),
        &target2,
        &[],
    );
    let totals = totals.unwrap();
    let problems = events.problems.borrow().clone();
    assert!(
        problems
            .iter()
            .filter(|p| p.starts_with("evil/inside: ") || p.starts_with("root/planted: "))
            .count()
            >= 3,
        "{problems:?}"
    );
    assert!(totals.problems >= 5, "{problems:?}");
    assert_eq!(record_tree(&canary), before);
    assert!(!Path::new("/planted").exists());
    assert_eq!(
        listing(&target2),
        [b"evil".to_vec(), b"ok".to_vec(), b"root".to_vec()]
    );
}

#[test]
fn exclusion_of_refused_names_is_exact() {
    // A refused `a/../b` must not keep `a/..b` or `a` (a prefix) from being restored.
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let stage = base.join("stage");
    fs::create_dir_all(stage.join("a/sub")).unwrap();
    write(&stage.join("a/..b"), "dots in a name");
    write(&stage.join("a/sub/x"), "x");
    write(&stage.join("b"), "b");
    let archive = base.join("a.tar");
    let o = |s: &str| std::ffi::OsString::from(s);
    gnu_tar(&[
        o("-cPf").as_os_str(),
        archive.as_os_str(),
        o("-C").as_os_str(),
        stage.as_os_str(),
        o("a").as_os_str(),
        o("a/sub/../../b").as_os_str(),
    ]);
    let p = provider(base);
    let target = base.join("target");
    let (totals, events) = restore_with(&p, chain(&[(&archive, BackupType::Tar)]), &target, &[]);
    let totals = totals.unwrap();
    assert_eq!(
        *events.problems.borrow(),
        ["a/sub/../../b: name with a '..' component refused"]
    );
    assert_eq!(totals.problems, 1);
    assert_eq!(
        listing(&target),
        [
            b"a".to_vec(),
            b"a/..b".to_vec(),
            b"a/sub".to_vec(),
            b"a/sub/x".to_vec()
        ]
    );
}

#[test]
fn a_file_listed_as_unchanged_but_in_no_earlier_level_is_reported_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let archives = aa_tests::chains::chain_with_a_lost_file(base);
    let typed = [
        (archives[0].as_path(), BackupType::Tar),
        (archives[1].as_path(), BackupType::Tar),
    ];
    let out = base.join("out");
    let (totals, events) = restore_with(&provider(base), chain(&typed), &out, &[]);
    assert_eq!(
        *events.problems.borrow(),
        ["data/lost: missing: this level lists it as unchanged, but no earlier level holds it"]
    );
    assert_eq!(totals.unwrap().problems, 1);
    assert_eq!(fs::read_to_string(out.join("data/kept")).unwrap(), "kept");
    assert_eq!(
        fs::read_to_string(out.join("data/new")).unwrap(),
        "new at level 1"
    );

    // Selected away, the loss is not this restore's; selected, it is.
    let (totals, events) = restore_with(
        &provider(base),
        chain(&typed),
        &base.join("o1"),
        &["data/new"],
    );
    assert_eq!(
        totals.unwrap().problems,
        0,
        "{:?}",
        events.problems.borrow()
    );
    let (totals, _) = restore_with(&provider(base), chain(&typed), &base.join("o2"), &["data"]);
    assert_eq!(totals.unwrap().problems, 1);
}

#[test]
fn an_unreadable_archive_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let bad = base.join("bad.tar.gz");
    fs::write(&bad, b"this is not gzip data at all, not at all").unwrap();
    let p = provider(base);
    let (totals, _) = restore_with(
        &p,
        chain(&[(&bad, BackupType::TarGz)]),
        &base.join("t"),
        &[],
    );
    let err = totals.unwrap_err();
    assert!(
        err.message().starts_with(&format!("{}: ", bad.display())),
        "{}",
        err.message()
    );
    let missing = base.join("missing.tar");
    let (totals, _) = restore_with(
        &p,
        chain(&[(&missing, BackupType::Tar)]),
        &base.join("t2"),
        &[],
    );
    assert!(totals
        .unwrap_err()
        .message()
        .starts_with(&missing.display().to_string()));
}

/// Raw member names, `-P` so nothing is stripped.
fn common_list(archive: &Path) -> Vec<Vec<u8>> {
    let out = Command::new("tar")
        .args(["-tP", "--quoting-style=escape", "-f"])
        .arg(archive)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(aa_plugin_tar_external::quoting::unescape)
        .collect()
}

#[test]
fn hard_links_through_a_link_out_of_the_target_are_refused() {
    // Level 0 makes `evil`, a link to a directory outside; level 1 holds `x`, a hard link to
    // `evil/secret`: made, it would be the outside file itself, inside the target.
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let canary = base.join("canary");
    fs::create_dir_all(&canary).unwrap();
    write(&canary.join("secret"), "outside");
    let links = base.join("links");
    fs::create_dir_all(&links).unwrap();
    symlink(&canary, links.join("evil")).unwrap();
    let stage = base.join("stage");
    fs::create_dir_all(stage.join("evil")).unwrap();
    write(&stage.join("evil/secret"), "inside");
    fs::hard_link(stage.join("evil/secret"), stage.join("x")).unwrap();
    write(&stage.join("fine"), "fine");
    let (level0, level1) = (base.join("l0.tar"), base.join("l1.tar"));
    let o = std::ffi::OsStr::new;
    gnu_tar(&[
        o("-cf"),
        level0.as_os_str(),
        o("-C"),
        links.as_os_str(),
        o("evil"),
    ]);
    gnu_tar(&[
        o("-cf"),
        level1.as_os_str(),
        o("-C"),
        stage.as_os_str(),
        o("evil/secret"),
        o("x"),
        o("fine"),
    ]);
    let p = provider(base);
    let target = base.join("target");
    let (totals, events) = restore_with(
        &p,
        chain(&[(&level0, BackupType::Tar), (&level1, BackupType::Tar)]),
        &target,
        &[],
    );
    let totals = totals.unwrap();
    let problems = events.problems.borrow().clone();
    assert!(
        problems.iter().any(|p| p.starts_with("x: ")),
        "{problems:?}"
    );
    assert_eq!(totals.problems, 2, "{problems:?}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(canary.join("secret")).unwrap().nlink(), 1);
    assert_eq!(
        fs::read_to_string(canary.join("secret")).unwrap(),
        "outside"
    );
    assert_eq!(listing(&target), [b"evil".to_vec(), b"fine".to_vec()]);
}

// ---- chains of the Python aa --------------------------------------------------------------

/// GNU tar's own restore of a chain (`-G`, level by level), the reference where it is exact:
/// these chains delete nothing at the top level.
fn gnu_restore(archives: &[PathBuf], target: &Path) {
    fs::create_dir_all(target).unwrap();
    for archive in archives {
        gnu_tar(&[
            "-x".as_ref(),
            "-G".as_ref(),
            "-f".as_ref(),
            archive.as_os_str(),
            "-C".as_ref(),
            target.as_os_str(),
        ]);
    }
}

#[test]
fn python_aa_chains_restore_as_gnu_tar_restores_them() {
    let fixtures = aa_tests::workspace_dir().join("tests/fixtures");
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
        let gnu = tmp.path().join("gnu");
        gnu_restore(&archives, &gnu);
        let ours = tmp.path().join("ours");
        let typed: Vec<(&Path, BackupType)> = archives
            .iter()
            .map(|a| (a.as_path(), BackupType::TarGz))
            .collect();
        let totals = restore(&provider(tmp.path()), chain(&typed), &ours);
        assert!(totals.items > 0, "{dir}: nothing reported restored");
        assert_trees(&tree(&gnu), &tree(&ours), dir);
        if dir == "python-aa-2.0.6" {
            assert_eq!(fs::read(ours.join("a.txt")).unwrap(), b"second version\n");
            assert_eq!(fs::read(ours.join("dir1/new.txt")).unwrap(), b"new\n");
            assert!(ours.join("dir2").is_dir() && !ours.join("dir2/c.txt").exists());
        } else {
            assert_eq!(fs::read(ours.join("a.txt")).unwrap(), b"two\n");
            assert_eq!(fs::read(ours.join("dir/c.txt")).unwrap(), b"three\n");
        }
    }
}

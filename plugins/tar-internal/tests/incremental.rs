//! Incremental backups of the provider against GNU tar itself: levels restore with `tar
//! --listed-incremental=/dev/null -x` to the tree as it was (deletions, renames of files and
//! directories, type changes, empty directories, symbolic and hard links), GNU tar continues
//! a chain from our snapshot and we continue one from GNU tar's, our decisions and names are
//! GNU tar's, and a failed run changes nothing.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupDefinition, BackupType, NoEvents, ProviderErrorKind};
use aa_plugin_tar_internal::{
    Code, DirRecord, SnapshotReader, TarInternalPlugin, TarInternalProvider,
};

// ---- helpers ------------------------------------------------------------------------------

fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

/// Runs GNU tar; fails the test with its messages unless it succeeds without a word on
/// stderr other than the incremental notes ("Directory is new", "... renamed from ...").
fn gnu_tar(args: &[&OsStr]) {
    let out = Command::new("tar")
        .args(args)
        .output()
        .expect("GNU tar runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let unexpected: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("Directory is new") && !l.contains("has been renamed"))
        .collect();
    assert!(
        out.status.success() && unexpected.is_empty(),
        "tar {args:?} failed: {stderr}"
    );
}

/// A GNU tar level of `names` (relative to `root`) continuing the snapshot `snar`, as
/// TarExternal runs it.
fn gnu_level(root: &Path, snar: &Path, archive: &Path, names: &[&str]) {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("--create"),
        OsStr::new("--format=posix"),
        OsStr::new("--sort=name"),
    ];
    let snar = format!("--listed-incremental={}", snar.display());
    let file = format!("--file={}", archive.display());
    args.extend([OsStr::new(&snar), OsStr::new(&file), OsStr::new("-C")]);
    args.push(root.as_os_str());
    args.extend(names.iter().map(OsStr::new));
    // Before: what the test wrote is older than the dump time; after: the dump time is older
    // than what the test writes next.
    aa_tests::settle_timestamps();
    gnu_tar(&args);
    aa_tests::settle_timestamps();
}

fn restore(archives: &[&Path], out: &Path) {
    fs::create_dir_all(out).unwrap();
    for archive in archives {
        // In the target directory rather than with `-C`: GNU tar 1.34 makes the temporary
        // directory of a directory swap (`X` record) relative to its own working directory.
        let out_status = Command::new("tar")
            .current_dir(out)
            .args(["--listed-incremental=/dev/null", "-xpf"])
            .arg(archive)
            .output()
            .expect("GNU tar runs");
        assert!(
            out_status.status.success() && out_status.stderr.is_empty(),
            "restoring {} failed: {}",
            archive.display(),
            String::from_utf8_lossy(&out_status.stderr)
        );
    }
}

/// Member names as GNU tar lists them.
fn list(archive: &Path) -> Vec<Vec<u8>> {
    let out = Command::new("tar")
        .args(["--quoting-style=literal", "-tf"])
        .arg(archive)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn listed(archive: &Path, name: &str) -> bool {
    list(archive).iter().any(|n| n == name.as_bytes())
}

/// What must survive a restore of every object below `root`: type, permissions, content or
/// link target, file modification time, and which names share an inode. Directory times are
/// not compared (restoring a later level legitimately touches them).
fn state(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(root.join(&rel)).unwrap() {
            let name = rel.join(entry.unwrap().file_name());
            let key = name.as_os_str().as_bytes().to_vec();
            let m = fs::symlink_metadata(root.join(&name)).unwrap();
            let text = if m.is_dir() {
                stack.push(name.clone());
                format!("dir {:o}", m.mode() & 0o7777)
            } else if m.file_type().is_symlink() {
                format!("link -> {:?}", fs::read_link(root.join(&name)).unwrap())
            } else {
                if m.nlink() > 1 {
                    inodes.entry(m.ino()).or_default().push(key.clone());
                }
                format!(
                    "file {:o} {}.{:09} {:?}",
                    m.mode() & 0o7777,
                    m.mtime(),
                    m.mtime_nsec(),
                    String::from_utf8_lossy(&fs::read(root.join(&name)).unwrap())
                )
            };
            out.insert(key, text);
        }
    }
    for names in inodes.values().filter(|n| n.len() > 1) {
        let first = names.iter().min().unwrap().clone();
        for name in names {
            let text = out.get_mut(name).unwrap();
            text.push_str(&format!(" linked with {}", String::from_utf8_lossy(&first)));
        }
    }
    out
}

#[track_caller]
fn assert_restores(archives: &[&Path], root: &Path, out: &Path) {
    restore(archives, out);
    let (expected, got) = (state(root), state(out));
    if expected != got {
        let mut lines = Vec::new();
        for (k, v) in &expected {
            if got.get(k) != Some(v) {
                lines.push(format!(
                    "{}: expected {v}, got {:?}",
                    String::from_utf8_lossy(k),
                    got.get(k)
                ));
            }
        }
        for k in got.keys().filter(|k| !expected.contains_key(*k)) {
            lines.push(format!("{}: unexpected", String::from_utf8_lossy(k)));
        }
        panic!(
            "restoring {} levels into {} differs:\n  {}",
            archives.len(),
            out.display(),
            lines.join("\n  ")
        );
    }
}

fn write(path: &Path, content: &str) {
    fs::write(path, content).unwrap();
}

/// The tree: nested and empty directories, an odd name, symbolic links (to a file, to a
/// directory, dangling) and hard links (in one directory and across two).
fn make_tree(root: &Path) {
    let d = root.join("data");
    for dir in [
        "a/b",
        "c",
        "empty",
        "x",
        "y",
        "p/sub/deep",
        "z",
        "keep",
        "gone-dir/inner",
    ] {
        fs::create_dir_all(d.join(dir)).unwrap();
    }
    for (file, content) in [
        ("top", "top"),
        ("a/f1", "f1"),
        ("a/b/f2", "f2"),
        ("c/f3", "f3"),
        ("x/fx", "in x"),
        ("y/fy", "in y"),
        ("p/g", "g"),
        ("p/sub/f", "f"),
        ("p/sub/deep/d", "d"),
        ("z/keep", "keep"),
        ("keep/k", "k"),
        ("chmod-only", "c"),
        ("will-be-dir", "w"),
        ("will-be-link", "l"),
        ("gone-dir/inner/i", "i"),
    ] {
        write(&d.join(file), content);
    }
    fs::write(d.join(os(b"odd\nname \xff")), "odd").unwrap();
    symlink("top", d.join("link")).unwrap();
    symlink("a", d.join("dirlink")).unwrap();
    symlink("nowhere", d.join("dangling")).unwrap();
    fs::hard_link(d.join("top"), d.join("hard")).unwrap();
    fs::hard_link(d.join("c/f3"), d.join("a/f3-link")).unwrap();
    write(&root.join("loose"), "a top-level file");
}

/// The changes before `level`.
fn change_tree(root: &Path, level: u32) {
    let d = root.join("data");
    let mv = |from: &str, to: &str| fs::rename(d.join(from), d.join(to)).unwrap();
    // Directories are "deleted" by moving them out of the tree, so that their inodes stay in
    // use: a directory made later with a freed inode number is a rename to GNU tar's snapshot,
    // which would make the GNU tar levels depend on the file system's inode allocation.
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
            fs::remove_file(d.join("link")).unwrap();
            symlink("top-renamed", d.join("link")).unwrap();
            mv("a/b", "a/bb");
            mv("x", "swap");
            mv("y", "x");
            mv("swap", "y");
            mv("p", "q");
            mv("q/sub/deep", "q/sub/deeper");
            mv("empty", "c/empty-moved");
            fs::set_permissions(d.join("chmod-only"), fs::Permissions::from_mode(0o600)).unwrap();
            fs::remove_file(d.join("will-be-dir")).unwrap();
            fs::create_dir(d.join("will-be-dir")).unwrap();
            write(&d.join("will-be-dir/inside"), "inside");
            remove_dir_all(d.join("z"));
            write(&d.join("z"), "z is a file now");
            fs::create_dir(d.join(os(b"new dir \xfe"))).unwrap();
            write(&d.join(os(b"new dir \xfe/n")), "n");
            fs::create_dir(d.join("new-empty")).unwrap();
            fs::hard_link(d.join("keep/k"), d.join("keep/k2")).unwrap();
            write(&root.join("loose"), "the top-level file, changed");
        }
        2 => {
            remove_dir_all(d.join("q"));
            remove_dir_all(d.join("gone-dir"));
            fs::remove_dir(d.join("new-empty")).unwrap();
            mv("new-file", "new-file-renamed");
            write(&d.join("a/bb/f2"), "f2 modified");
            fs::remove_file(d.join("link")).unwrap();
            write(&d.join("link"), "a file where a link was");
            fs::remove_file(d.join("will-be-link")).unwrap();
            symlink("chmod-only", d.join("will-be-link")).unwrap();
            fs::create_dir_all(d.join("fresh/deeper")).unwrap();
            write(&d.join("fresh/deeper/one"), "one");
            fs::hard_link(d.join("fresh/deeper/one"), d.join("fresh/two")).unwrap();
            mv("will-be-dir", "was-will-be-dir");
        }
        _ => {
            write(&d.join("a/f1"), &format!("f1 at level {level}"));
            // Not a directory holding hard links: a file in a subdirectory of a renamed
            // directory is stored again, which breaks its links to unchanged names at
            // restore, with GNU tar's archives as with ours.
            mv("a/bb", &format!("a/bb-{level}"));
            write(&d.join(format!("new-{level}")), "new");
            fs::remove_file(d.join("hard")).unwrap();
        }
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    dest: PathBuf,
    snapshots: PathBuf,
    provider: TarInternalProvider,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let root = base.join("src");
    let dest = base.join("dest");
    fs::create_dir_all(&dest).unwrap();
    make_tree(&root);
    let provider = TarInternalPlugin::create(&base.join("work")).unwrap();
    Setup {
        snapshots: base.join("work/snapshots"),
        _tmp: tmp,
        base,
        root,
        dest,
        provider,
    }
}

impl Setup {
    fn definition(&self, id: &str, backup_type: BackupType, includes: &[&str]) -> BackupDefinition {
        BackupDefinition::new(id, backup_type, &self.dest, &self.root).include(includes)
    }

    fn level(&self, def: &BackupDefinition, level: Option<u32>) -> PathBuf {
        self.provider
            .backup_files_incrementally(def, None, level, false, &NoEvents)
            .unwrap_or_else(|e| panic!("level {level:?} of {}: {e}", def.backup_id))
    }

    fn snar(&self, id: &str, level: u32) -> PathBuf {
        match level {
            0 => self.snapshots.join(format!("{id}.snar")),
            l => self.snapshots.join(format!("{id}.{l}.snar")),
        }
    }

    /// The state directory and the destination, byte for byte.
    fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for dir in [&self.snapshots, &self.dest] {
            if let Ok(entries) = fs::read_dir(dir) {
                for entry in entries {
                    let path = entry.unwrap().path();
                    out.insert(path.clone(), fs::read(&path).unwrap());
                }
            }
        }
        out
    }
}

fn records(snar: &Path) -> Vec<DirRecord> {
    let file = std::io::BufReader::new(fs::File::open(snar).unwrap());
    SnapshotReader::new(file)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

// ---- tests --------------------------------------------------------------------------------

#[test]
fn levels_restore_to_the_tree_of_their_time() {
    for (includes, backup_type, id) in [
        (&["."][..], BackupType::TarGz, "whole"),
        (&["data", "loose"][..], BackupType::Tar, "parts"),
    ] {
        let s = setup();
        let def = s.definition(id, backup_type, includes);
        let mut archives = vec![s.level(&def, None)];
        assert_restores(&[&archives[0]], &s.root, &s.base.join("restore-0"));
        for level in 1..=3 {
            change_tree(&s.root, level);
            let archive = s.level(&def, None);
            assert_eq!(
                s.provider.get_max_backup_level(id).unwrap(),
                level + 1,
                "{id}"
            );
            archives.push(archive);
            let refs: Vec<&Path> = archives.iter().map(PathBuf::as_path).collect();
            assert_restores(&refs, &s.root, &s.base.join(format!("restore-{level}")));
        }
        // Increments, not full dumps: a file that never changes (its directory was renamed
        // at level 1) is only in level 0.
        let prefix = if id == "whole" { "./" } else { "" };
        assert!(listed(&archives[0], &format!("{prefix}data/y/fy")), "{id}");
        for later in &archives[1..] {
            assert!(!listed(later, &format!("{prefix}data/x/fy")), "{id}");
        }
        // Changed at levels 1 and 3 only.
        let f1 = format!("{prefix}data/a/f1");
        let with_f1: Vec<bool> = archives.iter().map(|a| listed(a, &f1)).collect();
        assert_eq!(with_f1, [true, true, false, true], "{id}");
    }
}

#[test]
fn gnu_tar_and_we_continue_each_others_chains() {
    let s = setup();
    let def = s.definition("mixed", BackupType::Tar, &["."]);
    let l0 = s.level(&def, None);

    // GNU tar level 1 from our level 0, in the shared layout, as TarExternal makes it.
    change_tree(&s.root, 1);
    fs::copy(s.snar("mixed", 0), s.snar("mixed", 1)).unwrap();
    let l1 = s.dest.join("mixed.1.tar");
    gnu_level(&s.root, &s.snar("mixed", 1), &l1, &["."]);
    assert_restores(&[&l0, &l1], &s.root, &s.base.join("restore-1"));
    assert!(
        !listed(&l1, "./data/x/fy"),
        "GNU tar saw our level 0: unchanged files are not stored again"
    );

    // Our level 2 from GNU tar's level 1.
    change_tree(&s.root, 2);
    assert_eq!(s.provider.get_max_backup_level("mixed").unwrap(), 2);
    let l2 = s.level(&def, None);
    assert_eq!(l2, s.dest.join("mixed.2.tar"));
    assert!(!listed(&l2, "./data/dirlink"));
    assert!(listed(&l2, "./data/a/bb/f2"));
    assert_restores(&[&l0, &l1, &l2], &s.root, &s.base.join("restore-2"));

    // GNU tar level 3 from ours.
    change_tree(&s.root, 3);
    fs::copy(s.snar("mixed", 2), s.snar("mixed", 3)).unwrap();
    let l3 = s.dest.join("mixed.3.tar");
    gnu_level(&s.root, &s.snar("mixed", 3), &l3, &["."]);
    assert!(!listed(&l3, "./data/dirlink"));
    assert_restores(&[&l0, &l1, &l2, &l3], &s.root, &s.base.join("restore-3"));

    // And ours once more, from GNU tar's level 3.
    write(&s.root.join("data/last"), "last");
    let l4 = s.level(&def, None);
    assert!(listed(&l4, "./data/last") && !listed(&l4, "./data/dirlink"));
    assert_restores(
        &[&l0, &l1, &l2, &l3, &l4],
        &s.root,
        &s.base.join("restore-4"),
    );
}

/// The same tree from the same previous snapshot: GNU tar and we store the same members and
/// write the same directory records (names and dumpdirs), which is what lets either one go on.
#[test]
fn same_members_and_records_as_gnu_tar() {
    for includes in [&["."][..], &["data", "loose"][..]] {
        let s = setup();
        let ours = s.definition("ours", BackupType::Tar, includes);
        s.level(&ours, None);
        fs::copy(s.snar("ours", 0), s.base.join("gnu.snar")).unwrap();
        let gnu0 = s.base.join("gnu0.tar");
        let gnu0_snar = s.base.join("gnu0.snar");
        gnu_level(&s.root, &gnu0_snar, &gnu0, includes);
        let sorted = |mut v: Vec<Vec<u8>>| {
            v.sort();
            v
        };
        let by_name = |records: Vec<DirRecord>| -> BTreeMap<Vec<u8>, Vec<(Code, Vec<u8>)>> {
            records
                .into_iter()
                .map(|r| {
                    let entries = r.entries.into_iter().map(|e| (e.code, e.name)).collect();
                    (r.name, entries)
                })
                .collect()
        };
        assert_eq!(
            sorted(list(&s.dest.join("ours.tar"))),
            sorted(list(&gnu0)),
            "level 0 members of {includes:?}"
        );
        assert_eq!(
            by_name(records(&s.snar("ours", 0))),
            by_name(records(&gnu0_snar))
        );

        change_tree(&s.root, 1);
        let l1 = s.level(&ours, None);
        let gnu1 = s.base.join("gnu1.tar");
        gnu_level(&s.root, &s.base.join("gnu.snar"), &gnu1, includes);
        assert_eq!(
            sorted(list(&l1)),
            sorted(list(&gnu1)),
            "level 1 members of {includes:?}"
        );
        let (ours, theirs) = (
            by_name(records(&s.snar("ours", 1))),
            by_name(records(&s.base.join("gnu.snar"))),
        );
        assert_eq!(ours, theirs, "level 1 records of {includes:?}");
        assert!(ours.keys().any(|n| n.ends_with(b"data/q/sub/deeper")));
    }
}

#[test]
fn failed_runs_leave_snapshots_and_backups_untouched() {
    let s = setup();
    let def = s.definition("keep", BackupType::TarXz, &["data"]);
    s.level(&def, None);
    change_tree(&s.root, 1);
    s.level(&def, None);
    let before = s.files();
    assert_eq!(before.len(), 4, "{:?}", before.keys());
    let unchanged = |what: &str| {
        assert_eq!(s.files(), before, "{what} changed the state or the backups");
    };

    // The root is gone: for the next level and for a redone level.
    let moved = s.base.join("src-away");
    fs::rename(&s.root, &moved).unwrap();
    for level in [None, Some(1), Some(0)] {
        let err = s
            .provider
            .backup_files_incrementally(&def, None, level, false, &NoEvents)
            .unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::IO, "{err:?}");
        assert!(err.message().contains("src"), "{err}");
        unchanged(&format!("level {level:?} without a root"));
    }
    fs::rename(&moved, &s.root).unwrap();

    // A level out of range.
    let err = s
        .provider
        .backup_files_incrementally(&def, None, Some(5), false, &NoEvents)
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::INVALID_VALUE);
    unchanged("a level out of range");

    // The destination is not writable.
    let locked = s.definition("keep", BackupType::TarXz, &["data"]);
    let mut locked = locked;
    locked.destination = aa_abi::PathBytes::new(s.base.join("no-such-dest"));
    let err = s
        .provider
        .backup_files_incrementally(&locked, None, None, false, &NoEvents)
        .unwrap_err();
    assert!(err.message().contains("no-such-dest"), "{err}");
    unchanged("a missing destination");

    // A damaged previous snapshot: a clear error naming it, nothing written.
    let previous = s.snar("keep", 1);
    let good = fs::read(&previous).unwrap();
    fs::write(&previous, b"GNU tar-1.34-2\n12\0x\0").unwrap();
    let damaged = s.files();
    let err = s
        .provider
        .backup_files_incrementally(&def, None, None, false, &NoEvents)
        .unwrap_err();
    assert!(
        err.message().contains("keep.1.snar") && err.message().contains("nanoseconds"),
        "{err}"
    );
    assert_eq!(s.files(), damaged);
    fs::write(&previous, good).unwrap();
    unchanged("a damaged snapshot");

    // The chain goes on from there.
    change_tree(&s.root, 2);
    let l2 = s.level(&def, None);
    assert_eq!(l2, s.dest.join("keep.2.tar.xz"));
    assert_eq!(s.files().len(), 6);
}

#[test]
fn excluded_names_are_kept_at_restore_and_never_stored() {
    let s = setup();
    let def = s
        .definition("ex", BackupType::Tar, &["."])
        .exclude(["data/x", "loose"]);
    let l0 = s.level(&def, None);
    assert!(!list(&l0).iter().any(|n| n.starts_with(b"./data/x")));
    write(&s.root.join("data/x/fx"), "changed but excluded");
    write(&s.root.join("data/new"), "new");
    let l1 = s.level(&def, None);
    assert_eq!(
        list(&l1)
            .into_iter()
            .filter(|n| !n.ends_with(b"/"))
            .collect::<Vec<_>>(),
        [b"./data/new".to_vec()]
    );
    // Restoring over a tree that has the excluded names leaves them alone, as GNU tar does.
    let out = s.base.join("restore");
    fs::create_dir_all(out.join("data/x")).unwrap();
    write(&out.join("data/x/mine"), "mine");
    restore(&[&l0, &l1], &out);
    assert_eq!(fs::read(out.join("data/x/mine")).unwrap(), b"mine");
    assert_eq!(fs::read(out.join("data/new")).unwrap(), b"new");
}

//! Tests against GNU tar 1.34 itself: its snapshot files read and written back byte for
//! byte, our decisions compared with the archives it makes from the same trees, and chains
//! mixing its levels with ours restored by `tar --listed-incremental=/dev/null -x`.
//!
//! Our levels are written here by a minimal test-only archive writer (directories with a
//! `GNU.dumpdir` pax record first, then the dumped files), which is all GNU tar needs to
//! restore them; the provider's real writer comes with the integration.
//!
//! Over 700 lines: one file per reference (GNU tar), each test a scenario of trees, levels and
//! restores that shares the tree builders and the mini archive writer above the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::detect::{child_name, Children, DirPlan, DirStat, ListedEntry, Options, Planner};
use super::dumpdir::{self, Item, RenameOp};
use super::snapshot::{
    encode_header, encode_record, DirRecord, Header, Snapshot, SnapshotReader, SnapshotWriter,
    Timestamp,
};

fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

/// Runs GNU tar; fails the test with its messages if it fails.
fn gnu_tar(args: &[&OsStr]) {
    let output = Command::new("tar")
        .args(args)
        .output()
        .expect("GNU tar runs");
    assert!(
        output.status.success(),
        "tar {:?} failed: {}",
        args,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A GNU tar level of the whole of `root`, named `./...` as with `tar -C root .`.
fn gnu_level(root: &Path, snapshot: &Path, archive: &Path, extra: &[&str]) {
    let mut args: Vec<std::ffi::OsString> = vec![
        "--create".into(),
        "--format=posix".into(),
        format!("--listed-incremental={}", snapshot.display()).into(),
        format!("--file={}", archive.display()).into(),
        "--directory".into(),
        root.into(),
    ];
    args.extend(extra.iter().map(Into::into));
    args.push(".".into());
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    // Before: what the test wrote is older than the dump time; after: the dump time is older
    // than what the test writes next.
    aa_tests::settle_timestamps();
    gnu_tar(&args);
    aa_tests::settle_timestamps();
}

fn restore(archives: &[&Path], target: &Path) {
    fs::create_dir_all(target).unwrap();
    for archive in archives {
        gnu_tar(&[
            OsStr::new("--extract"),
            OsStr::new("--listed-incremental=/dev/null"),
            OsStr::new("--file"),
            archive.as_os_str(),
            OsStr::new("--directory"),
            target.as_os_str(),
        ]);
    }
}

fn read_snapshot(path: &Path) -> (Header, Vec<DirRecord>) {
    let mut reader = SnapshotReader::new(BufReader::new(File::open(path).unwrap())).unwrap();
    let header = reader.header().cloned().expect("a header");
    let records = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    (header, records)
}

/// What an incremental archive holds: each directory's dumpdir, and the other members.
#[derive(Debug, Default)]
struct Level {
    dumpdirs: BTreeMap<Vec<u8>, Vec<u8>>,
    files: BTreeSet<Vec<u8>>,
}

/// The records of a pax extended header, split by their length prefixes (values may hold
/// newlines and NULs, which the `tar` crate's own iterator does not expect).
fn pax_records(mut data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut records = Vec::new();
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .expect("pax record length");
        let len: usize = std::str::from_utf8(&data[..space])
            .unwrap()
            .parse()
            .unwrap();
        let record = &data[space + 1..len - 1];
        let equals = record
            .iter()
            .position(|&b| b == b'=')
            .expect("pax key=value");
        records.push((record[..equals].to_vec(), record[equals + 1..].to_vec()));
        data = &data[len..];
    }
    records
}

fn read_archive(path: &Path) -> Level {
    let mut archive = tar::Archive::new(File::open(path).unwrap());
    let mut level = Level::default();
    let mut dumpdir = None;
    for entry in archive.entries().unwrap().raw(true) {
        let mut entry = entry.unwrap();
        if entry.header().entry_type() == tar::EntryType::XHeader {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            dumpdir = pax_records(&data)
                .into_iter()
                .find_map(|(key, value)| (key == b"GNU.dumpdir").then_some(value));
            continue;
        }
        let mut name = entry.path_bytes().into_owned();
        while name.len() > 1 && name.ends_with(b"/") {
            name.pop();
        }
        if entry.header().entry_type().is_dir() {
            let dumpdir = dumpdir
                .take()
                .expect("every directory of an incremental archive has a dumpdir");
            level.dumpdirs.insert(name, dumpdir);
        } else {
            assert!(dumpdir.take().is_none(), "a dumpdir on a non-directory");
            level.files.insert(name);
        }
    }
    level
}

/// Our planner over the whole of `root`, depth first, names as GNU tar gives them.
fn plan_tree(root: &Path, planner: &mut Planner) -> Vec<DirPlan> {
    fn visit(
        planner: &mut Planner,
        name: Vec<u8>,
        path: PathBuf,
        parent: Option<Children>,
        plans: &mut Vec<DirPlan>,
    ) {
        let stat = DirStat::from_metadata(&fs::symlink_metadata(&path).unwrap());
        let listing = fs::read_dir(&path)
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let metadata = fs::symlink_metadata(entry.path()).unwrap();
                ListedEntry::from_metadata(entry.file_name().as_bytes().to_vec(), &metadata)
            })
            .collect();
        let plan = planner
            .plan_directory(&name, stat, parent, listing)
            .unwrap();
        let children = plan.children;
        let subdirectories: Vec<Vec<u8>> = plan.subdirectories().map(<[u8]>::to_vec).collect();
        plans.push(plan);
        for sub in subdirectories {
            visit(
                planner,
                child_name(&name, &sub),
                path.join(os(&sub)),
                Some(children),
                plans,
            );
        }
    }
    let mut plans = Vec::new();
    visit(planner, b".".to_vec(), root.to_path_buf(), None, &mut plans);
    plans
}

/// Where an archive name is under `root`.
fn fs_path(root: &Path, name: &[u8]) -> PathBuf {
    let relative = name.strip_prefix(b"./").unwrap_or(name);
    if relative == b"." {
        root.to_path_buf()
    } else {
        root.join(os(relative))
    }
}

fn raw_name(header: &mut tar::Header, name: &[u8]) {
    let field = &mut header.as_old_mut().name;
    assert!(name.len() <= field.len(), "test names fit the name field");
    field.fill(0);
    field[..name.len()].copy_from_slice(name);
}

/// The test-only level writer: what the provider will do with the plans, minimally.
fn write_level(root: &Path, plans: &[DirPlan], renames: &[RenameOp], archive: &Path) {
    let mut builder = tar::Builder::new(BufWriter::new(File::create(archive).unwrap()));
    for (index, plan) in plans.iter().enumerate() {
        let dumpdir = plan
            .dumpdir(if index == 0 { renames } else { &[] })
            .unwrap();
        let mut record = Vec::new();
        let body_len = b" GNU.dumpdir=".len() + dumpdir.len() + 1;
        let mut total = body_len + 1;
        while total != body_len + total.to_string().len() {
            total = body_len + total.to_string().len();
        }
        record.extend_from_slice(format!("{total} GNU.dumpdir=").as_bytes());
        record.extend_from_slice(&dumpdir);
        record.push(b'\n');
        let mut pax = tar::Header::new_ustar();
        raw_name(&mut pax, b"PaxHeaders/dir");
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_mode(0o644);
        pax.set_size(record.len() as u64);
        pax.set_cksum();
        builder.append(&pax, record.as_slice()).unwrap();

        let metadata = fs::symlink_metadata(fs_path(root, &plan.record.name)).unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_metadata(&metadata);
        let mut name = plan.record.name.clone();
        name.push(b'/');
        raw_name(&mut header, &name);
        header.set_cksum();
        builder.append(&header, std::io::empty()).unwrap();
    }
    for plan in plans {
        for file in plan.dumped() {
            let name = child_name(&plan.record.name, file);
            let path = fs_path(root, &name);
            let metadata = fs::symlink_metadata(&path).unwrap();
            let mut header = tar::Header::new_ustar();
            header.set_metadata(&metadata);
            raw_name(&mut header, &name);
            if metadata.file_type().is_symlink() {
                header.set_link_name(fs::read_link(&path).unwrap()).unwrap();
                header.set_cksum();
                builder.append(&header, std::io::empty()).unwrap();
            } else {
                header.set_cksum();
                builder.append(&header, File::open(&path).unwrap()).unwrap();
            }
        }
    }
    builder.into_inner().unwrap();
}

fn write_snapshot(path: &Path, dump_time: Timestamp, plans: &[DirPlan]) {
    let file = BufWriter::new(File::create(path).unwrap());
    let mut writer = SnapshotWriter::new(file, &Header::new(dump_time)).unwrap();
    for plan in plans {
        writer.write_record(&plan.record).unwrap();
    }
    writer.finish().unwrap();
}

/// A tree as type plus content or target, for comparing restores (hard links and times are
/// not compared).
fn tree(root: &Path) -> BTreeMap<Vec<u8>, String> {
    fn visit(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<u8>, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let metadata = fs::symlink_metadata(&path).unwrap();
            if metadata.is_dir() {
                out.insert(relative, "dir".into());
                visit(root, &path, out);
            } else if metadata.file_type().is_symlink() {
                out.insert(
                    relative,
                    format!("link {:?}", fs::read_link(&path).unwrap()),
                );
            } else {
                let content = fs::read(&path).unwrap();
                out.insert(
                    relative,
                    format!("file {:?}", String::from_utf8_lossy(&content)),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, root, &mut out);
    out
}

fn write(path: &Path, content: &str) {
    fs::write(path, content).unwrap();
}

/// Files old enough to be unchanged for any later level, as most files of a real tree are.
fn age(root: &Path) {
    fn visit(dir: &Path) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let metadata = fs::symlink_metadata(&path).unwrap();
            if metadata.is_dir() {
                visit(&path);
            }
            if !metadata.file_type().is_symlink() {
                let old = File::options()
                    .write(metadata.is_file())
                    .read(true)
                    .open(&path);
                if let Ok(file) = old {
                    let time =
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
                    file.set_modified(time).ok();
                }
            }
        }
    }
    visit(root);
}

/// The test tree: nested and empty directories, odd names, a symlink and a hard link.
fn make_tree(root: &Path) {
    for dir in ["a/b", "c", "empty", "m1", "m2", "x", "y", "p/sub/deep", "z"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    write(&root.join("top"), "top");
    write(&root.join("a/f1"), "f1");
    write(&root.join("a/b/f2"), "f2");
    write(&root.join("c/f3"), "f3");
    write(&root.join("m1/fm1"), "m1");
    write(&root.join("m2/fm2"), "m2");
    write(&root.join("x/fx"), "x");
    write(&root.join("y/fy"), "y");
    write(&root.join("p/g"), "g");
    write(&root.join("p/sub/f"), "f");
    write(&root.join("p/sub/deep/d"), "d");
    write(&root.join("z/keep"), "keep");
    write(&root.join("chmod-only"), "c");
    write(&root.join("will-be-dir"), "w");
    fs::write(root.join(os(b"new\nline \xff\xfe")), "odd").unwrap();
    symlink("top", root.join("link")).unwrap();
    fs::hard_link(root.join("top"), root.join("hard")).unwrap();
    age(root);
}

/// Every kind of change of the issue: new, modified, deleted, renamed files; renamed
/// directories (simple, nested, a chain and a swap); type changes both ways.
fn change_tree(root: &Path) {
    write(&root.join("new-file"), "new");
    write(&root.join("a/f1"), "f1 modified");
    fs::remove_file(root.join("c/f3")).unwrap();
    fs::rename(root.join("top"), root.join("top-renamed")).unwrap();
    fs::rename(root.join("a/b"), root.join("a/bb")).unwrap();
    fs::rename(root.join("m2"), root.join("m3")).unwrap();
    fs::rename(root.join("m1"), root.join("m2")).unwrap();
    fs::rename(root.join("x"), root.join("swap")).unwrap();
    fs::rename(root.join("y"), root.join("x")).unwrap();
    fs::rename(root.join("swap"), root.join("y")).unwrap();
    fs::rename(root.join("p"), root.join("q")).unwrap();
    fs::rename(root.join("q/sub/deep"), root.join("q/sub/deeper")).unwrap();
    fs::rename(root.join("empty"), root.join("c/empty-moved")).unwrap();
    fs::set_permissions(root.join("chmod-only"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(root.join("will-be-dir")).unwrap();
    fs::create_dir(root.join("will-be-dir")).unwrap();
    write(&root.join("will-be-dir/inside"), "inside");
    fs::remove_dir_all(root.join("z")).unwrap();
    write(&root.join("z"), "z is a file now");
    fs::create_dir(root.join(os(b"new dir \xff"))).unwrap();
    write(&root.join(os(b"new dir \xff/n")), "n");
}

/// The archive names of the files our plans dump.
fn dumped_files(plans: &[DirPlan]) -> BTreeSet<Vec<u8>> {
    plans
        .iter()
        .flat_map(|plan| {
            plan.dumped()
                .map(|file| child_name(&plan.record.name, file))
        })
        .collect()
}

/// Applies rename records to a set of directory names, as extraction does.
fn apply_renames(mut names: BTreeMap<Vec<u8>, u64>, ops: &[RenameOp]) -> BTreeMap<Vec<u8>, u64> {
    for op in ops {
        let RenameOp::Rename { from, to } = op else {
            continue;
        };
        let moving: Vec<Vec<u8>> = names
            .keys()
            .filter(|name| {
                name.starts_with(from) && (name.len() == from.len() || name[from.len()] == b'/')
            })
            .cloned()
            .collect();
        assert!(
            !moving.is_empty(),
            "rename source {:?} exists",
            String::from_utf8_lossy(from)
        );
        assert!(
            !names.contains_key(to),
            "rename target {:?} is free",
            String::from_utf8_lossy(to)
        );
        for name in moving {
            let id = names.remove(&name).unwrap();
            let mut moved = to.clone();
            moved.extend_from_slice(&name[from.len()..]);
            names.insert(moved, id);
        }
    }
    names
}

fn split_dumpdir(bytes: &[u8]) -> (Vec<u8>, Vec<RenameOp>) {
    let mut entries = Vec::new();
    let mut ops = Vec::new();
    for item in dumpdir::parse(bytes).unwrap() {
        match item {
            Item::Entry(entry) => entries.push(entry),
            Item::Rename(op) => ops.push(op),
        }
    }
    (dumpdir::encode(&entries, &[]).unwrap(), ops)
}

/// Compares our plans for a level with the archive and snapshot GNU tar made of the same
/// tree from the same previous snapshot.
fn assert_same_decisions(
    plans: &[DirPlan],
    ops: &[RenameOp],
    gnu: &Level,
    gnu_snapshot: &Path,
    previous: &[DirRecord],
) {
    let ours: BTreeSet<Vec<u8>> = plans.iter().map(|p| p.record.name.clone()).collect();
    let theirs: BTreeSet<Vec<u8>> = gnu.dumpdirs.keys().cloned().collect();
    assert_eq!(ours, theirs, "directories");
    assert_eq!(dumped_files(plans), gnu.files, "dumped files");
    for (index, plan) in plans.iter().enumerate() {
        let (gnu_entries, gnu_ops) = split_dumpdir(&gnu.dumpdirs[&plan.record.name]);
        assert_eq!(
            String::from_utf8_lossy(&plan.dumpdir(&[]).unwrap()),
            String::from_utf8_lossy(&gnu_entries),
            "dumpdir of {:?}",
            String::from_utf8_lossy(&plan.record.name)
        );
        if index == 0 {
            // Same moves; the order of independent groups may differ from GNU tar's.
            let before: BTreeMap<Vec<u8>, u64> =
                previous.iter().map(|r| (r.name.clone(), r.ino)).collect();
            assert_eq!(
                apply_renames(before.clone(), ops),
                apply_renames(before, &gnu_ops)
            );
        } else {
            assert!(gnu_ops.is_empty());
        }
    }
    let (_, gnu_records) = read_snapshot(gnu_snapshot);
    let gnu_records: BTreeMap<Vec<u8>, DirRecord> = gnu_records
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    for plan in plans {
        let ours = &plan.record;
        let theirs = &gnu_records[&ours.name];
        assert_eq!((ours.nfs, &ours.entries), (theirs.nfs, &theirs.entries));
        if ours.mtime != theirs.mtime {
            // GNU tar 1.34 refreshes a known directory's mtime only when it dumps one of its
            // files (nothing reads the field); ours is always the current one.
            let before = previous.iter().find(|r| r.name == ours.name);
            assert_eq!(
                before.map(|r| r.mtime),
                Some(theirs.mtime),
                "mtime of {:?}",
                String::from_utf8_lossy(&ours.name)
            );
            assert_eq!(plan.dumped().count(), 0);
        }
        if (ours.dev, ours.ino) != (theirs.dev, theirs.ino) {
            // GNU tar 1.34 keeps the previous identity of a name reused by a renamed
            // directory; ours is the directory's current one.
            let name = String::from_utf8_lossy(&ours.name).into_owned();
            assert!(
                ["./x", "./y", "./m2"].contains(&name.as_str()),
                "identity of {name}"
            );
        }
    }
    assert_eq!(gnu_records.len(), plans.len());
}

#[test]
fn gnu_snapshots_read_and_write_back_byte_identical() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("t");
    make_tree(&root);
    let snapshot = work.path().join("s.snar");
    gnu_level(&root, &snapshot, &work.path().join("0.tar"), &[]);
    let level0 = fs::read(&snapshot).unwrap();
    change_tree(&root);
    gnu_level(&root, &snapshot, &work.path().join("1.tar"), &[]);
    let level1 = fs::read(&snapshot).unwrap();

    for bytes in [&level0, &level1] {
        let mut reader = SnapshotReader::new(bytes.as_slice()).unwrap();
        let mut written = Vec::new();
        encode_header(reader.header().unwrap(), &mut written).unwrap();
        assert_eq!(reader.header().unwrap().tar_version, b"1.34");
        let mut records = 0;
        for record in reader.by_ref() {
            encode_record(&record.unwrap(), &mut written).unwrap();
            records += 1;
        }
        assert!(records >= 10);
        assert_eq!(written, *bytes);
    }

    let (_, records) = read_snapshot(&work.path().join("s.snar"));
    let by_name: BTreeMap<_, _> = records.iter().map(|r| (r.name.clone(), r)).collect();
    let moved = by_name[&b"./c/empty-moved"[..]];
    assert!(
        moved.entries.is_empty(),
        "an empty directory has an empty dumpdir"
    );
    let root_names: Vec<&[u8]> = by_name[&b"."[..]]
        .entries
        .iter()
        .map(|e| &e.name[..])
        .collect();
    assert!(root_names.contains(&&b"new\nline \xff\xfe"[..]));
    assert!(by_name.contains_key(&b"./new dir \xff"[..]));
}

#[test]
fn decisions_and_dumpdirs_match_gnu_tar_and_levels_restore() {
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name);
    let root = path("t");
    make_tree(&root);

    // Level 0 by GNU tar, and ours of the same tree.
    let s0 = path("s0.snar");
    gnu_level(&root, &s0, &path("g0.tar"), &[]);
    let mut planner = Planner::new(Snapshot::empty(), Options::default());
    let plans = plan_tree(&root, &mut planner);
    assert_same_decisions(&plans, &[], &read_archive(&path("g0.tar")), &s0, &[]);
    let expected0 = tree(&root);

    change_tree(&root);

    // Level 1 by GNU tar from its level 0.
    fs::copy(&s0, path("g1.snar")).unwrap();
    gnu_level(&root, &path("g1.snar"), &path("g1.tar"), &[]);
    // Level 1 by us from the same level 0, same tree.
    let dump_time = Timestamp::dump_start();
    let mut planner = Planner::new(Snapshot::read(&s0).unwrap(), Options::default());
    let plans = plan_tree(&root, &mut planner);
    let ops = planner.rename_ops();
    // The same decisions when the previous snapshot's index is spilled to files (as for
    // trees of more than `index::MEMORY_ENTRIES` directories), renames included.
    let spilled = Snapshot::from_reader_in(fs::File::open(&s0).unwrap(), work.path(), 2).unwrap();
    assert!(spilled.index_on_disk());
    let mut spilled = Planner::new(spilled, Options::default());
    assert_eq!(plan_tree(&root, &mut spilled), plans);
    assert_eq!(spilled.rename_ops(), ops);
    let (_, previous) = read_snapshot(&s0);
    assert_same_decisions(
        &plans,
        &ops,
        &read_archive(&path("g1.tar")),
        &path("g1.snar"),
        &previous,
    );
    assert!(
        ops.iter().any(|op| matches!(op, RenameOp::TempDir(_))),
        "the swap is a cycle"
    );
    write_level(&root, &plans, &ops, &path("o1.tar"));
    write_snapshot(&path("o1.snar"), dump_time, &plans);
    let expected1 = tree(&root);

    // GNU level 0 + our level 1 restore the tree; so does GNU's own chain (test sanity).
    restore(&[&path("g0.tar"), &path("o1.tar")], &path("r-ours"));
    assert_eq!(tree(&path("r-ours")), expected1);
    restore(&[&path("g0.tar"), &path("g1.tar")], &path("r-gnu"));
    assert_eq!(tree(&path("r-gnu")), expected1);
    assert_ne!(expected0, expected1);

    // More changes, then GNU tar continues from our snapshot, and we from GNU tar's.
    write(&root.join("q/sub/f"), "changed in a renamed directory");
    fs::remove_dir_all(root.join("a/bb")).unwrap();
    fs::rename(root.join("c"), root.join("c2")).unwrap();
    write(&root.join("x/added"), "added");
    gnu_level(&root, &path("o1.snar"), &path("g2.tar"), &[]);
    let mut planner = Planner::new(
        Snapshot::read(&path("g1.snar")).unwrap(),
        Options::default(),
    );
    let plans = plan_tree(&root, &mut planner);
    write_level(&root, &plans, &planner.rename_ops(), &path("o2.tar"));
    let expected2 = tree(&root);

    restore(
        &[&path("g0.tar"), &path("o1.tar"), &path("g2.tar")],
        &path("r-mixed1"),
    );
    assert_eq!(tree(&path("r-mixed1")), expected2);
    restore(
        &[&path("g0.tar"), &path("g1.tar"), &path("o2.tar")],
        &path("r-mixed2"),
    );
    assert_eq!(tree(&path("r-mixed2")), expected2);

    // GNU tar's level 2 from our snapshot dumped only what changed since our level 1.
    let gnu2 = read_archive(&path("g2.tar"));
    assert!(gnu2.files.contains(&b"./q/sub/f"[..]), "{:?}", gnu2.files);
    assert!(gnu2.files.contains(&b"./x/added"[..]));
    assert!(
        !gnu2.files.contains(&b"./hard"[..]),
        "unchanged files are not dumped again"
    );
}

#[test]
fn no_check_device_matches_gnu_tar() {
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name);
    let root = path("t");
    fs::create_dir_all(root.join("d")).unwrap();
    write(&root.join("d/a"), "a");
    write(&root.join("b"), "b");
    age(&root);
    gnu_level(&root, &path("s.snar"), &path("0.tar"), &[]);

    // The same snapshot with every device number changed, as after a remount.
    let (header, records) = read_snapshot(&path("s.snar"));
    let mut moved = Vec::new();
    encode_header(&header, &mut moved).unwrap();
    for mut record in records {
        record.dev ^= 0x5a5a;
        encode_record(&record, &mut moved).unwrap();
    }
    fs::write(path("moved.snar"), &moved).unwrap();

    for (check_device, extra) in [(true, &[][..]), (false, &["--no-check-device"][..])] {
        fs::write(path("gnu.snar"), &moved).unwrap();
        gnu_level(&root, &path("gnu.snar"), &path("1.tar"), extra);
        let mut planner = Planner::new(
            Snapshot::from_reader(std::io::Cursor::new(moved.clone())).unwrap(),
            Options { check_device },
        );
        let plans = plan_tree(&root, &mut planner);
        let gnu = read_archive(&path("1.tar"));
        assert_eq!(
            dumped_files(&plans),
            gnu.files,
            "check_device {check_device}"
        );
        let expected: &[&[u8]] = if check_device {
            &[b"./b", b"./d/a"]
        } else {
            &[]
        };
        assert_eq!(
            gnu.files.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            expected
        );
        for plan in &plans {
            let (entries, _) = split_dumpdir(&gnu.dumpdirs[&plan.record.name]);
            assert_eq!(plan.dumpdir(&[]).unwrap(), entries);
        }
    }
}

#[test]
fn dump_time_boundary_is_inclusive_to_the_nanosecond() {
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name);
    let root = path("t");
    fs::create_dir(&root).unwrap();
    write(&root.join("a"), "a");
    let future = std::time::UNIX_EPOCH + std::time::Duration::new(4_000_000_000, 500_000_000);
    File::options()
        .write(true)
        .open(root.join("a"))
        .unwrap()
        .set_modified(future)
        .unwrap();
    gnu_level(&root, &path("s.snar"), &path("0.tar"), &[]);
    let (header, records) = read_snapshot(&path("s.snar"));

    for (nsec, dumped) in [
        (499_999_999, true),
        (500_000_000, true),
        (500_000_001, false),
    ] {
        let mut header = header.clone();
        header.dump_time = Timestamp {
            sec: 4_000_000_000,
            nsec,
        };
        let mut bytes = Vec::new();
        encode_header(&header, &mut bytes).unwrap();
        for record in &records {
            encode_record(record, &mut bytes).unwrap();
        }
        fs::write(path("t.snar"), &bytes).unwrap();
        gnu_level(&root, &path("t.snar"), &path("1.tar"), &[]);
        let gnu = read_archive(&path("1.tar"));
        let mut planner = Planner::new(
            Snapshot::from_reader(std::io::Cursor::new(bytes)).unwrap(),
            Options::default(),
        );
        let plans = plan_tree(&root, &mut planner);
        assert_eq!(gnu.files.contains(&b"./a"[..]), dumped, "GNU tar at {nsec}");
        assert_eq!(dumped_files(&plans), gnu.files, "at {nsec}");
    }
}

/// A small deterministic generator: the fuzz cases are the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// Reads `bytes` to the end: Ok, or an error whose offset lies within the input.
fn read_fully(bytes: &[u8]) {
    let result = SnapshotReader::new(bytes).and_then(|mut reader| {
        while reader.next_record()?.is_some() {}
        Ok(())
    });
    if let Err(err) = result {
        assert!(
            err.offset() <= bytes.len() as u64,
            "{err} for {} bytes",
            bytes.len()
        );
        assert!(err.to_string().starts_with("byte "), "{err}");
    }
    if let Err(err) = Snapshot::from_reader(std::io::Cursor::new(bytes.to_vec())) {
        assert!(err.offset() <= bytes.len() as u64, "{err}");
    }
    if let Err(err) = dumpdir::parse(bytes) {
        assert!(err.offset() <= bytes.len() as u64, "{err}");
    }
}

#[test]
fn damaged_snapshots_give_errors_with_offsets_never_panics() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("t");
    make_tree(&root);
    let snapshot = work.path().join("s.snar");
    gnu_level(&root, &snapshot, &work.path().join("0.tar"), &[]);
    let seed = fs::read(&snapshot).unwrap();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let interesting = [0u8, b'0', b'1', b'-', b'9', b'Y', b'N', b'D', b'\n', 0xff];
    let mut errors = 0;
    for _ in 0..20_000 {
        let mut bytes = seed.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(6) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = interesting[rng.below(interesting.len())],
                2 => bytes.truncate(at),
                3 => {
                    let len = rng.below(8);
                    bytes.splice(at..at, (0..len).map(|_| rng.next() as u8));
                }
                4 => {
                    let end = (at + rng.below(16)).min(bytes.len());
                    bytes.drain(at..end);
                }
                _ => {
                    let end = (at + rng.below(40)).min(bytes.len());
                    let chunk = bytes[at..end].to_vec();
                    bytes.splice(at..at, chunk);
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        read_fully(&bytes);
        if SnapshotReader::new(bytes.as_slice())
            .and_then(|reader| reader.collect::<Result<Vec<_>, _>>())
            .is_err()
        {
            errors += 1;
        }
    }
    // The mutations really produce bad input, not just variants of good input.
    assert!(errors > 10_000, "{errors} errors");
    for _ in 0..5_000 {
        let len = rng.below(64);
        let mut bytes: Vec<u8> = b"GNU tar-1.34-2\n".to_vec();
        bytes.extend((0..len).map(|_| interesting[rng.below(interesting.len())]));
        read_fully(&bytes);
        let random: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
        read_fully(&random);
    }
}

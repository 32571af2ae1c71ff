//! End-to-end tests of the provider: back up a tree holding every kind of object, extract it
//! with GNU tar and compare the trees; check the events, the exclusion and that a failed
//! backup leaves the previous one alone.
//!
//! Longer than most files (about 900 lines): the scenarios share one fixture of every object
//! kind and its comparison with GNU tar's extraction, which is the point of the file.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_abi::naming::partial_of;
use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{
    BackupDefinition, BackupEvents, BackupOperationError as Err_, BackupSubOperation as Op,
    BackupType, NoEvents,
};
use aa_plugin_tar_internal::{TarInternalPlugin, TarInternalProvider};
use aa_provider_kit::recording::{Recorder, ReportedError};
use aa_tests::is_root;

// ---- helpers ------------------------------------------------------------------------------

fn provider() -> TarInternalProvider {
    TarInternalPlugin::create(Path::new("/nonexistent-work-dir")).unwrap()
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Sets the modification time (with nanoseconds) of `p` itself, not of a link target.
fn set_mtime(p: &Path, secs: i64, nanos: i64) {
    let times = [
        libc::timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        },
    ];
    // SAFETY: a valid C string and two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            cstr(p).as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", p.display());
}

fn mkfifo(p: &Path) {
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(cstr(p).as_ptr(), 0o640) }, 0);
}

fn raw(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

type AddHook = Box<dyn Fn(&Path) + Send + Sync>;

/// Records events, and runs a hook when a file is added (to change it mid-backup).
struct OnAdd {
    inner: Recorder,
    hook: AddHook,
}

impl BackupEvents for OnAdd {
    fn file_add(&self, name: &Path) {
        self.inner.file_add(name);
        (self.hook)(name);
    }

    fn backup_operation_error(&self, op: Op, err: Err_, name: Option<&Path>, msg: Option<&str>) {
        self.inner.backup_operation_error(op, err, name, msg);
    }
}

/// The error event `(op, err, name, msg)`, as the recorder keeps it.
fn reported(op: Op, err: Err_, name: Option<&str>, msg: Option<&str>) -> ReportedError {
    ReportedError {
        operation: op,
        error: err,
        name: name.map(|n| n.as_bytes().to_vec()),
        message: msg.map(str::to_string),
    }
}

fn definition(
    t: BackupType,
    dest: &Path,
    root: &Path,
    inc: &[&Path],
    exc: &[&Path],
) -> BackupDefinition {
    BackupDefinition::new("test", t, dest, root)
        .include(inc.iter().copied())
        .exclude(exc.iter().copied())
}

fn extract(archive: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    let out = Command::new("tar")
        .arg("-xpf")
        .arg(archive)
        .arg("-C")
        .arg(dest)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // GNU tar warns about (but restores) the time before 1970 that the tree holds on purpose.
    let unexpected = stderr
        .lines()
        .any(|l| !l.contains("implausibly old time stamp"));
    assert!(
        out.status.success() && !unexpected,
        "tar -x failed: {stderr}"
    );
}

fn list(archive: &Path) -> Vec<Vec<u8>> {
    let out = Command::new("tar")
        .args(["--quoting-style=literal", "-tf"])
        .arg(archive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Everything the comparison looks at for one object.
#[derive(Debug, PartialEq, Eq)]
struct Desc {
    kind: &'static str,
    mode: u32,
    mtime: (i64, i64),
    content: Option<Vec<u8>>,
    link: Option<PathBuf>,
    rdev: u64,
    owner: Option<(u32, u32)>,
    /// For a multiply linked file: the first name (in byte order) of its inode.
    hard_link_group: Option<PathBuf>,
}

fn describe(root: &Path) -> BTreeMap<PathBuf, Desc> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    let mut names = Vec::new();
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let name = rel.join(e.unwrap().file_name());
            let m = fs::symlink_metadata(root.join(&name)).unwrap();
            if m.is_dir() {
                stack.push(name.clone());
            }
            names.push(name);
        }
    }
    names.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    for name in names {
        let path = root.join(&name);
        let m = fs::symlink_metadata(&path).unwrap();
        let ft = m.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_file() {
            "file"
        } else if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else {
            "other"
        };
        let hard_link_group = (!ft.is_dir() && m.nlink() > 1).then(|| {
            inodes
                .entry(m.ino())
                .or_insert_with(|| name.clone())
                .clone()
        });
        out.insert(
            name,
            Desc {
                kind,
                mode: if ft.is_symlink() {
                    0
                } else {
                    m.mode() & 0o7777
                },
                mtime: (m.mtime(), m.mtime_nsec()),
                content: ft.is_file().then(|| fs::read(&path).unwrap()),
                link: ft.is_symlink().then(|| fs::read_link(&path).unwrap()),
                rdev: m.rdev(),
                owner: is_root().then(|| (m.uid(), m.gid())),
                hard_link_group,
            },
        );
    }
    out
}

fn assert_same_tree(source: &Path, extracted: &Path) {
    let a = describe(source);
    let b = describe(extracted);
    for (name, desc) in &a {
        assert_eq!(Some(desc), b.get(name), "{}", name.display());
    }
    let a_names: Vec<_> = a.keys().collect();
    let b_names: Vec<_> = b.keys().collect();
    assert_eq!(a_names, b_names);
}

/// Builds a tree with every kind of object tar can store, under `root/tree`.
fn build_tree(root: &Path) -> bool {
    use std::os::unix::fs::symlink;
    let t = root.join("tree");
    fs::create_dir_all(t.join("dir/sub/deep")).unwrap();
    fs::create_dir_all(t.join("dir/empty")).unwrap();
    fs::create_dir_all(t.join("sticky")).unwrap();
    fs::write(t.join("dir/a"), b"alpha\n").unwrap();
    fs::write(t.join("dir/b-empty"), b"").unwrap();
    fs::write(
        t.join("dir/sub/deep/data"),
        (0..70_000u32)
            .map(|i| (i * 7 % 256) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    fs::write(t.join("setuid"), b"#!/bin/sh\n").unwrap();
    fs::write(t.join("private"), b"secret").unwrap();
    fs::set_permissions(t.join("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(t.join("private"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(t.join("sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
    // Symbolic links: relative, dangling, to a directory (not followed), long target.
    symlink("a", t.join("dir/link")).unwrap();
    symlink("nowhere/at/all", t.join("dangling")).unwrap();
    symlink("dir", t.join("dirlink")).unwrap();
    symlink("t".repeat(180), t.join("longlink")).unwrap();
    // Hard links, the first stored name comes from "dir/a".
    fs::create_dir(t.join("hl")).unwrap();
    fs::hard_link(t.join("dir/a"), t.join("hl/second")).unwrap();
    fs::hard_link(t.join("dir/a"), t.join("hl/third")).unwrap();
    // Names: over 100 bytes (ustar split), over 255 bytes (pax path), not UTF-8.
    let split = t.join("long").join("p".repeat(120)).join("n".repeat(90));
    fs::create_dir_all(split.parent().unwrap()).unwrap();
    fs::write(&split, b"split").unwrap();
    let very_long = t.join("long").join("q".repeat(200)).join("r".repeat(200));
    fs::create_dir_all(very_long.parent().unwrap()).unwrap();
    fs::write(&very_long, b"pax path").unwrap();
    fs::write(t.join(raw(b"caf\xe9")), b"latin-1 name").unwrap();
    let raw_dir = t.join(raw(&[&b"\xff\xfe-dir"[..], &b"\xe7".repeat(40)].concat()));
    fs::create_dir(&raw_dir).unwrap();
    fs::write(
        raw_dir.join(raw(&[b"\xe9".repeat(120), b"\xe8".repeat(120)].concat())),
        b"x",
    )
    .unwrap();
    fs::hard_link(&very_long, raw_dir.join("linked-long")).unwrap();
    // Special files.
    mkfifo(&t.join("fifo"));
    let mut devices = false;
    if is_root() {
        let dev = t.join("null");
        // SAFETY: a valid C string; creating a device node has no memory effects.
        let rc = unsafe {
            libc::mknod(
                cstr(&dev).as_ptr(),
                libc::S_IFCHR | 0o644,
                libc::makedev(1, 3),
            )
        };
        devices = rc == 0;
        let big = t.join("big-owner");
        fs::write(&big, b"owned by a large uid").unwrap();
        // SAFETY: a valid C string.
        let rc = unsafe { libc::lchown(cstr(&big).as_ptr(), 3_000_000, 3_000_001) };
        assert_eq!(rc, 0);
    }
    // Times last, deepest first, since creating entries changes directory times.
    let mut all = Vec::new();
    let mut stack = vec![t.clone()];
    while let Some(d) = stack.pop() {
        all.push(d.clone());
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            } else {
                all.push(p);
            }
        }
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in all.iter().enumerate() {
        let nanos = if i % 3 == 0 {
            0
        } else {
            123_456_789 + i as i64
        };
        set_mtime(p, 1_500_000_000 + i as i64 * 1000, nanos);
    }
    // One time before 1970 with a fraction: -1.25 s.
    set_mtime(&t.join("dir/b-empty"), -2, 750_000_000);
    devices
}

fn members_are_posix(archive_bytes: &[u8]) {
    let mut ar = tar::Archive::new(archive_bytes);
    for entry in ar.entries().unwrap().raw(true) {
        let entry = entry.unwrap();
        let h = entry.header();
        assert_eq!(
            &h.as_bytes()[257..265],
            b"ustar\x0000",
            "not a POSIX header"
        );
        assert!(
            b"0123456x".contains(&h.as_bytes()[156]),
            "unexpected typeflag {}",
            h.as_bytes()[156] as char
        );
    }
}

fn decompress(t: BackupType, path: &Path) -> Vec<u8> {
    let file = fs::File::open(path).unwrap();
    let mut out = Vec::new();
    match t {
        BackupType::Tar => {
            out = fs::read(path).unwrap();
        }
        BackupType::TarGz => {
            flate2::read::GzDecoder::new(file)
                .read_to_end(&mut out)
                .unwrap();
        }
        BackupType::TarBz2 => {
            bzip2::read::MultiBzDecoder::new(file)
                .read_to_end(&mut out)
                .unwrap();
        }
        BackupType::TarXz => {
            xz2::read::XzDecoder::new(file)
                .read_to_end(&mut out)
                .unwrap();
        }
        _ => out = zstd::decode_all(file).unwrap(),
    }
    out
}

// ---- tests --------------------------------------------------------------------------------

const ALL_TYPES: [BackupType; 5] = [
    BackupType::Tar,
    BackupType::TarGz,
    BackupType::TarBz2,
    BackupType::TarXz,
    BackupType::TarZst,
];

#[test]
fn identification() {
    let id = TarInternalPlugin::identification();
    assert_eq!(id.provider_id.as_str(), "TarInternal");
    assert!(!id.description.is_empty() && !id.description.contains('\n'));
    for t in ALL_TYPES {
        let features = id.features_for(t).unwrap();
        assert_eq!(
            features.contains(&aa_abi::ArchiverFeature::CompressionStrength),
            t != BackupType::Tar
        );
    }
    // Incremental backups are covered by tests/incremental.rs.
}

#[test]
fn every_type_extracts_to_an_identical_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let devices = build_tree(tmp.path());
    let root = tmp.path();
    let dest = tmp.path().join("backups");
    fs::create_dir(&dest).unwrap();
    let p = provider();
    for t in ALL_TYPES {
        let events = Recorder::default();
        let def = definition(t, &dest, root, &[Path::new("./tree/")], &[]);
        let strength = (t != BackupType::Tar).then_some(1);
        let path = p.backup_files(&def, strength, false, &events).unwrap();
        assert_eq!(path, dest.join(format!("test.{}", t.extension().unwrap())));
        assert_eq!(partial_files(&dest), Vec::<String>::new(), "{t}");
        assert_eq!(events.errors(), [], "{t}");

        let tool = match t {
            BackupType::TarGz => Some("gzip"),
            BackupType::TarBz2 => Some("bzip2"),
            BackupType::TarXz => Some("xz"),
            BackupType::TarZst => Some("zstd"),
            _ => None,
        };
        if let Some(tool) = tool {
            let out = Command::new(tool).arg("-t").arg(&path).output().unwrap();
            assert!(
                out.status.success(),
                "{tool} -t: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        members_are_posix(&decompress(t, &path));

        let out = tmp.path().join(format!("out-{t}"));
        extract(&path, &out);
        assert_same_tree(&root.join("tree"), &out.join("tree"));

        // Every stored object was announced once, by its path relative to the root.
        let added = events.added_paths();
        let listed: Vec<PathBuf> = list(&path)
            .iter()
            .map(|n| PathBuf::from(OsStr::from_bytes(n.strip_suffix(b"/").unwrap_or(n))))
            .collect();
        assert_eq!(added, listed, "{t}");
    }
    let described = describe(&root.join("tree"));
    assert_eq!(described.contains_key(Path::new("null")), devices);
    assert_eq!(described[Path::new("dir/b-empty")].mtime, (-2, 750_000_000));
}

#[test]
fn members_are_named_and_ordered_as_given() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    fs::create_dir_all(r.join("dir/sub")).unwrap();
    fs::create_dir_all(r.join("dir-x")).unwrap();
    for f in ["dir/b", "dir/a", "dir/sub/c", "dir-x/y", "top"] {
        fs::write(r.join(f), f).unwrap();
    }
    let def = definition(
        BackupType::Tar,
        r,
        r,
        &[
            Path::new("top"),
            Path::new("dir/a"),
            Path::new("dir-x"),
            Path::new("./dir"),
        ],
        &[],
    );
    let path = provider()
        .backup_files(&def, None, false, &NoEvents)
        .unwrap();
    let names: Vec<String> = list(&path)
        .into_iter()
        .map(|n| String::from_utf8(n).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "dir/",
            "dir/a",
            "dir/b",
            "dir/sub/",
            "dir/sub/c",
            "dir-x/",
            "dir-x/y",
            "top"
        ]
    );

    // The same input gives the same bytes.
    let first = fs::read(&path).unwrap();
    provider()
        .backup_files(&def, None, false, &NoEvents)
        .unwrap();
    assert_eq!(fs::read(&path).unwrap(), first);
}

#[test]
fn excluded_subtree_is_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("root");
    fs::create_dir_all(r.join("d/skip/deeper")).unwrap();
    fs::create_dir_all(r.join("d/keep")).unwrap();
    fs::write(r.join("d/skip/deeper/f"), b"1").unwrap();
    fs::write(r.join("d/keep/f"), b"2").unwrap();
    fs::write(r.join("d/skipped-not"), b"3").unwrap();
    fs::write(r.join("d/file"), b"4").unwrap();
    let def = definition(
        BackupType::TarGz,
        tmp.path(),
        &r,
        &[Path::new("d")],
        &[Path::new("./d/skip/"), Path::new("d/file")],
    );
    let events = Recorder::default();
    let path = provider()
        .backup_files(&def, Some(9), false, &events)
        .unwrap();
    let names: Vec<String> = list(&path)
        .into_iter()
        .map(|n| String::from_utf8(n).unwrap())
        .collect();
    assert_eq!(names, ["d/", "d/keep/", "d/keep/f", "d/skipped-not"]);
    assert_eq!(events.errors(), []);
}

#[test]
fn sockets_and_missing_includes_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("root");
    fs::create_dir_all(r.join("s")).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(r.join("s/sock")).unwrap();
    fs::write(r.join("s/file"), b"x").unwrap();
    let def = definition(
        BackupType::Tar,
        tmp.path(),
        &r,
        &[Path::new("s"), Path::new("missing")],
        &[],
    );
    let events = Recorder::default();
    let path = provider().backup_files(&def, None, false, &events).unwrap();
    assert_eq!(
        events.errors(),
        [
            reported(
                Op::Stat,
                Err_::UnknownOsError,
                Some("missing"),
                Some("No such file or directory")
            ),
            reported(Op::Open, Err_::SocketIgnored, Some("s/sock"), None),
        ]
    );
    assert_eq!(list(&path), [b"s/".to_vec(), b"s/file".to_vec()]);
}

/// A file that grows or shrinks while it is read is stored with the size announced in its
/// header, reported, and the archive stays valid.
#[test]
fn files_changing_while_read_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("root");
    fs::create_dir_all(&r).unwrap();
    fs::write(r.join("grows"), b"0123456789").unwrap();
    fs::write(r.join("shrinks"), b"0123456789").unwrap();
    fs::write(r.join("steady"), b"0123456789").unwrap();
    let hook_root = r.clone();
    let events = OnAdd {
        inner: Recorder::default(),
        hook: Box::new(move |name: &Path| {
            let p = hook_root.join(name);
            match name.to_str() {
                Some("grows") => fs::write(p, b"0123456789 and more").unwrap(),
                Some("shrinks") => fs::write(p, b"012").unwrap(),
                _ => {}
            }
        }),
    };
    let def = definition(BackupType::Tar, tmp.path(), &r, &[Path::new(".")], &[]);
    let path = provider().backup_files(&def, None, false, &events).unwrap();
    assert_eq!(
        events.inner.errors(),
        [
            reported(Op::Read, Err_::FileChanged, Some("grows"), None),
            reported(Op::Read, Err_::FileChanged, Some("shrinks"), None),
            reported(Op::Finish, Err_::SomeFilesChanged, None, None),
        ]
    );
    let out = tmp.path().join("out");
    extract(&path, &out);
    assert_eq!(fs::read(out.join("grows")).unwrap(), b"0123456789");
    assert_eq!(fs::read(out.join("shrinks")).unwrap(), b"012\0\0\0\0\0\0\0");
    assert_eq!(fs::read(out.join("steady")).unwrap(), b"0123456789");
}

/// The partial files in `dir`.
fn partial_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| partial_of(n.as_bytes()).is_some())
        .collect()
}

#[test]
fn failed_backup_keeps_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let old = dest.join("test.tar.gz");
    fs::write(&old, b"previous backup").unwrap();
    let p = provider();

    // Root missing.
    let def = definition(
        BackupType::TarGz,
        &dest,
        &tmp.path().join("gone"),
        &[Path::new("x")],
        &[],
    );
    let err = p.backup_files(&def, None, false, &NoEvents).unwrap_err();
    assert!(
        err.message().contains("gone: No such file or directory"),
        "{err}"
    );
    assert_eq!(fs::read(&old).unwrap(), b"previous backup");
    assert_eq!(partial_files(&dest), Vec::<String>::new());

    // Destination missing.
    fs::write(tmp.path().join("x"), b"x").unwrap();
    let def = definition(
        BackupType::TarGz,
        &tmp.path().join("nodest"),
        tmp.path(),
        &[Path::new("x")],
        &[],
    );
    let err = p.backup_files(&def, None, false, &NoEvents).unwrap_err();
    assert!(err.message().contains("No such file or directory"), "{err}");
    assert!(!tmp.path().join("nodest").exists());

    // Disk full: the backup, written in place, is a link to /dev/full, which fails every
    // write. (A partial file is always created anew, so it cannot be made such a link.)
    let full = tmp.path().join("full");
    fs::create_dir(&full).unwrap();
    let in_place = full.join("test.tar.gz");
    std::os::unix::fs::symlink("/dev/full", &in_place).unwrap();
    let def = definition(BackupType::TarGz, &full, tmp.path(), &[Path::new("x")], &[]);
    let err = p.backup_files(&def, None, true, &NoEvents).unwrap_err();
    assert_eq!(err.os_code, libc::ENOSPC);
    assert_eq!(
        err.message(),
        format!("{}: No space left on device", in_place.display())
    );
    assert!(
        fs::symlink_metadata(&in_place).is_err(),
        "half-written backup left"
    );
    assert_eq!(fs::read(&old).unwrap(), b"previous backup");
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 1);
}

#[test]
fn backup_inside_its_own_tree_does_not_store_itself() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("f"), b"data").unwrap();
    let def = definition(
        BackupType::Tar,
        tmp.path(),
        tmp.path(),
        &[Path::new(".")],
        &[],
    );
    let events = Recorder::default();
    let path = provider().backup_files(&def, None, false, &events).unwrap();
    assert_eq!(list(&path), [b"f".to_vec()]);
    assert_eq!(events.errors(), []);
}

#[test]
fn overwrite_at_start_writes_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("f"), b"data").unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("test.tar.zst"), b"old").unwrap();
    let def = definition(
        BackupType::TarZst,
        &dest,
        tmp.path(),
        &[Path::new("f")],
        &[],
    );
    let path = provider()
        .backup_files(&def, Some(0), true, &NoEvents)
        .unwrap();
    assert_eq!(list(&path), [b"f".to_vec()]);
}

/// Unreadable objects are reported as PermissionDenied and the rest is stored. Root reads
/// everything, so as root the test re-runs itself as user `nobody` (a copy of the binary in
/// `/tmp`, so a 0700 home does not stop it).
#[test]
fn permission_denied_is_reported() {
    if !aa_tests::unprivileged("permission_denied_is_reported") {
        return;
    }

    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("root");
    fs::create_dir_all(r.join("closed")).unwrap();
    fs::create_dir_all(r.join("noexec")).unwrap();
    fs::write(r.join("closed/inside"), b"x").unwrap();
    fs::write(r.join("noexec/inside"), b"x").unwrap();
    fs::write(r.join("unreadable"), b"x").unwrap();
    fs::write(r.join("readable"), b"x").unwrap();
    let mode = |p: &str, m| fs::set_permissions(r.join(p), fs::Permissions::from_mode(m)).unwrap();
    mode("unreadable", 0o000);
    mode("closed", 0o000);
    mode("noexec", 0o600);
    let events = Recorder::default();
    let def = definition(BackupType::Tar, tmp.path(), &r, &[Path::new(".")], &[]);
    let result = provider().backup_files(&def, None, false, &events);
    mode("closed", 0o755);
    mode("noexec", 0o755);
    let path = result.unwrap();
    let denied = |op, name: &str| reported(op, Err_::PermissionDenied, Some(name), None);
    assert_eq!(
        events.errors(),
        [
            denied(Op::Open, "closed"),
            denied(Op::Stat, "noexec/inside"),
            denied(Op::Open, "unreadable"),
        ]
    );
    assert_eq!(
        list(&path),
        [
            b"closed/".to_vec(),
            b"noexec/".to_vec(),
            b"readable".to_vec()
        ]
    );
}

/// Checks that every event is raised on the thread that started the backup.
struct OnCallingThread {
    inner: Recorder,
    thread: std::thread::ThreadId,
}

impl BackupEvents for OnCallingThread {
    fn file_add(&self, name: &Path) {
        assert_eq!(
            std::thread::current().id(),
            self.thread,
            "file_add off thread"
        );
        self.inner.file_add(name);
    }

    fn backup_operation_error(&self, op: Op, err: Err_, name: Option<&Path>, msg: Option<&str>) {
        assert_eq!(std::thread::current().id(), self.thread, "event off thread");
        self.inner.backup_operation_error(op, err, name, msg);
    }
}

/// Deterministic pseudo-random bytes (xorshift), incompressible for every codec.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A tree larger than several chunks of every codec (files spanning chunks, thousands of
/// small files, compressible and incompressible content) with a directory chain deeper than
/// the walk keeps open: every type extracts to an identical tree, the codec's own tool
/// accepts the whole file, a gzip backup is one member, and the events come in member order
/// on the calling thread.
#[test]
fn large_and_deep_trees_round_trip_through_the_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("big");
    for d in 0..23 {
        fs::create_dir_all(t.join(format!("small/{d:02}"))).unwrap();
    }
    for i in 0..2500u64 {
        let content = if i % 3 == 0 {
            noise(i, (i as usize * 37) % 3000)
        } else {
            format!("line {i}\n")
                .repeat((i as usize % 300) + 1)
                .into_bytes()
        };
        fs::write(t.join(format!("small/{:02}/f{i}", i % 23)), content).unwrap();
    }
    fs::write(t.join("random.bin"), noise(7, 1_700_000)).unwrap();
    let text: Vec<u8> = (0..120_000u32)
        .flat_map(|i| format!("{} {}\n", i % 977, i % 13).into_bytes())
        .collect();
    fs::write(t.join("text.txt"), &text).unwrap();
    let mut deep = t.join("deep");
    for level in 0..(aa_plugin_tar_internal::MAX_OPEN_DEPTH + 10) {
        deep = deep.join(format!("{}", level % 10));
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("at-this-level"), level.to_string()).unwrap();
    }
    let total: u64 = describe(&t)
        .values()
        .filter_map(|d| d.content.as_ref().map(|c| c.len() as u64))
        .sum();
    assert!(total > 4_000_000, "only {total} bytes");

    let dest = tmp.path().join("backups");
    fs::create_dir(&dest).unwrap();
    for bt in ALL_TYPES {
        let events = OnCallingThread {
            inner: Recorder::default(),
            thread: std::thread::current().id(),
        };
        let def = definition(bt, &dest, tmp.path(), &[Path::new("big")], &[]);
        let strength = (bt != BackupType::Tar).then_some(0);
        let path = provider()
            .backup_files(&def, strength, false, &events)
            .unwrap();
        assert_eq!(events.inner.errors(), [], "{bt}");

        let tool = match bt {
            BackupType::TarGz => Some("gzip"),
            BackupType::TarBz2 => Some("bzip2"),
            BackupType::TarXz => Some("xz"),
            BackupType::TarZst => Some("zstd"),
            _ => None,
        };
        if let Some(tool) = tool {
            let out = Command::new(tool).arg("-t").arg(&path).output().unwrap();
            assert!(out.status.success(), "{tool} -t failed");
        }
        let tar = decompress(bt, &path);
        assert_eq!(tar.len() % 10240, 0, "{bt}: not whole tar records");
        assert!(
            tar.len() as u64 > total,
            "{bt}: decoded only {} bytes",
            tar.len()
        );
        if bt == BackupType::TarGz {
            // One member: a decoder that stops after the first member still sees everything.
            let mut concatenated = Vec::new();
            flate2::read::MultiGzDecoder::new(fs::File::open(&path).unwrap())
                .read_to_end(&mut concatenated)
                .unwrap();
            assert_eq!(concatenated.len(), tar.len());
        }

        let out = tmp.path().join(format!("out-{bt}"));
        extract(&path, &out);
        assert_same_tree(&t, &out.join("big"));
        let listed: Vec<PathBuf> = list(&path)
            .iter()
            .map(|n| PathBuf::from(OsStr::from_bytes(n.strip_suffix(b"/").unwrap_or(n))))
            .collect();
        assert_eq!(events.inner.added_paths(), listed, "{bt}");
        fs::remove_dir_all(&out).unwrap();
    }
}

//! Non-incremental backups through the `ArchiverProvider` trait, checked by extracting the
//! result with GNU tar.

mod common;

use std::fs;
use std::os::unix::net::UnixListener;
use std::path::Path;

use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupDefinition, BackupOperationError as E, BackupSubOperation as Op, BackupType};
use aa_plugin_tar_external::{TarExternal, TarExternalProvider};

use common::*;

const TYPES: [(BackupType, &str); 5] = [
    (BackupType::Tar, "tar"),
    (BackupType::TarGz, "tar.gz"),
    (BackupType::TarBz2, "tar.bz2"),
    (BackupType::TarXz, "tar.xz"),
    (BackupType::TarZst, "tar.zst"),
];

fn provider(work: &Path) -> TarExternalProvider {
    TarExternal::create(work).unwrap()
}

#[test]
fn every_type_round_trips_through_gnu_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let top = make_tree(&root);
    let p = provider(&tmp.path().join("work"));
    for (backup_type, ext) in TYPES {
        let def = BackupDefinition::new("home", backup_type, &dst, &root)
            .include(top.iter().map(|n| os(n)));
        let events = Recorder::default();
        let path = p.backup_files(&def, None, false, &events).unwrap();
        assert_eq!(path, dst.join(format!("home.{ext}")));
        assert!(!dst.join(format!("home.{ext}._partial")).exists());
        assert_eq!(events.errors(), [], "{backup_type}");

        // Events name the members as stored, with unusual names decoded.
        let added = events.added();
        for name in [
            &b"caf\xe9"[..],
            b"new\nline",
            b"-dash",
            b"back\\slash",
            b"colon: space",
            b"dir/file.txt",
        ] {
            assert!(
                added.iter().any(|a| a == name),
                "{:?} not reported",
                os(name)
            );
        }
        assert!(added.iter().any(|a| a.starts_with(b"long/directory-with")));

        let out = tmp.path().join(format!("out-{ext}"));
        extract(&[&path], &out, false);
        assert_same_tree(&root, &out);
    }
}

#[test]
fn includes_are_sorted_by_bytes_and_excluded_subtrees_are_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    for d in ["a/b/c", "a/bc", "x"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in ["a/b/c/f", "a/bc/g", "x/y", "x/*", "back\\slash", "z"] {
        fs::write(root.join(f), f).unwrap();
    }
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let p = provider(&tmp.path().join("work"));

    // Exclude entries are exact member paths (no wildcards), in any of the accepted spellings.
    let def = BackupDefinition::new("ex", BackupType::Tar, &dst, &root)
        .include(["z", "./x/", "a", "back\\slash", "a/b/c"])
        .exclude(["a/b/", "./x/*", "back\\slash"]);
    let path = p
        .backup_files(&def, None, false, &Recorder::default())
        .unwrap();
    let names: Vec<String> = list(&path)
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    assert_eq!(names, ["a/", "a/bc/", "a/bc/g", "x/", "x/y", "z"]);

    // The same with the whole root included as ".".
    let def = BackupDefinition::new("dot", BackupType::Tar, &dst, &root)
        .include(["."])
        .exclude(["a/b", "x/*"]);
    let path = p
        .backup_files(&def, None, false, &Recorder::default())
        .unwrap();
    let names: Vec<String> = list(&path)
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "./",
            "./a/",
            "./a/bc/",
            "./a/bc/g",
            "./back\\slash",
            "./x/",
            "./x/y",
            "./z"
        ]
    );
}

/// Compressible, not trivially repetitive text.
fn text(len: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "archive",
        "backup",
        "level",
        "tar",
        "snapshot",
        "file",
        "directory",
        "restore",
        "compress",
        "stream",
        "block",
        "data",
    ];
    let mut state: u32 = 12345;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        out.extend_from_slice(WORDS[(state >> 16) as usize % WORDS.len()].as_bytes());
        out.push(if state & 0x700 == 0 { b'\n' } else { b' ' });
        if state & 0xf000 == 0 {
            out.extend_from_slice(format!("{}", state % 9973).as_bytes());
        }
    }
    out
}

#[test]
fn compression_strength_reaches_the_compressor() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("words.txt"), text(3_000_000)).unwrap();
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let p = provider(&tmp.path().join("work"));
    for (backup_type, ext) in &TYPES[1..] {
        let mut sizes = Vec::new();
        for strength in [0, 9] {
            let def = BackupDefinition::new(&format!("s{strength}"), *backup_type, &dst, &root)
                .include(["words.txt"]);
            let events = Recorder::default();
            let path = p
                .backup_files(&def, Some(strength), false, &events)
                .unwrap();
            // A warning from the compressor (e.g. about a deprecated variable) would be here.
            assert_eq!(events.errors(), [], "{ext} strength {strength}");
            sizes.push(fs::metadata(&path).unwrap().len());
            let out = tmp.path().join(format!("out-{ext}-{strength}"));
            extract(&[&path], &out, false);
            assert_same_tree(&root, &out);
        }
        assert!(
            sizes[1] < sizes[0],
            "{ext}: strength 9 gave {} bytes, 0 gave {}",
            sizes[1],
            sizes[0]
        );
    }
}

#[test]
fn failure_keeps_the_old_backup_and_leaves_no_partial_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("f"), b"content").unwrap();
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let p = provider(&tmp.path().join("work"));
    let def = BackupDefinition::new("b", BackupType::TarGz, &dst, &root).include(["f"]);
    let old = p
        .backup_files(&def, None, false, &Recorder::default())
        .unwrap();
    let old_bytes = fs::read(&old).unwrap();

    // The root directory is gone.
    let missing =
        BackupDefinition::new("b", BackupType::TarGz, &dst, tmp.path().join("gone")).include(["f"]);
    let err = p
        .backup_files(&missing, None, false, &Recorder::default())
        .unwrap_err();
    assert!(err.message().contains("gone"), "{err}");
    assert_eq!(fs::read(&old).unwrap(), old_bytes);
    assert_eq!(dir_listing(&dst), ["b.tar.gz"]);

    // Even with overwrite-at-start a failure detected before tar starts keeps the old backup.
    let err = p
        .backup_files(&missing, None, true, &Recorder::default())
        .unwrap_err();
    assert!(err.message().contains("gone"), "{err}");
    assert_eq!(fs::read(&old).unwrap(), old_bytes);

    // What sits at another run's partial name is never written to nor removed: each run
    // creates a partial file of its own. (GNU tar failing keeps the old backup too: the
    // fake tars of `run.rs` and the conformance kill test's failing compressor.)
    fs::create_dir(dst.join("b.tar.gz._partial")).unwrap();
    fs::write(dst.join("b.tar.gz._partial/keep"), b"").unwrap();
    p.backup_files(&def, None, false, &Recorder::default())
        .unwrap();
    assert_eq!(dir_listing(&dst), ["b.tar.gz", "b.tar.gz._partial"]);
}

#[test]
fn a_missing_destination_directory_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("f"), b"x").unwrap();
    let p = provider(&tmp.path().join("work"));
    let def =
        BackupDefinition::new("b", BackupType::Tar, tmp.path().join("nodst"), &root).include(["f"]);
    let err = p
        .backup_files(&def, None, false, &Recorder::default())
        .unwrap_err();
    assert!(
        err.message()
            .contains("nodst/b.tar: No such file or directory"),
        "{err}"
    );
    assert!(!tmp.path().join("nodst").exists());
}

#[test]
fn overwrite_at_start_writes_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("f"), b"new content").unwrap();
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    fs::write(dst.join("b.tar.xz"), b"old").unwrap();
    let p = provider(&tmp.path().join("work"));
    let def = BackupDefinition::new("b", BackupType::TarXz, &dst, &root).include(["f"]);
    let path = p
        .backup_files(&def, Some(3), true, &Recorder::default())
        .unwrap();
    assert_eq!(dir_listing(&dst), ["b.tar.xz"]);
    let out = tmp.path().join("out");
    extract(&[&path], &out, false);
    assert_same_tree(&root, &out);
}

#[test]
fn file_errors_become_events_and_the_backup_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("present"), b"x").unwrap();
    let _socket = UnixListener::bind(root.join("sock")).unwrap();
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let p = provider(&tmp.path().join("work"));

    // A socket alone: tar exits 0 and reports it.
    let def = BackupDefinition::new("s", BackupType::Tar, &dst, &root).include(["present", "sock"]);
    let events = Recorder::default();
    p.backup_files(&def, None, false, &events).unwrap();
    assert_eq!(
        events.errors(),
        [ReportedError {
            operation: Op::Open,
            error: E::SocketIgnored,
            name: Some(b"sock".to_vec()),
            message: None
        }]
    );

    // A vanished include: tar exits 2 after a reported file error, which the original accepts.
    let def = BackupDefinition::new("m", BackupType::TarGz, &dst, &root)
        .include(["present", "miss\ning"]);
    let events = Recorder::default();
    let path = p.backup_files(&def, None, false, &events).unwrap();
    assert_eq!(
        events.errors(),
        [ReportedError {
            operation: Op::Stat,
            error: E::UnknownOsError,
            name: Some(b"miss\ning".to_vec()),
            message: Some("No such file or directory".into())
        }]
    );
    assert_eq!(list(&path), [b"present".to_vec()]);
}

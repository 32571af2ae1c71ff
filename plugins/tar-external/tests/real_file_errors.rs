//! GNU tar's complaints about real files reach the events: an unreadable file and directory
//! (as an unprivileged user) and a file that grows while tar reads it. The classifier's unit
//! tests only feed it canned stderr lines; these make GNU tar itself say them.

mod common;

use std::fs;
use std::path::PathBuf;

use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupDefinition, BackupOperationError as E, BackupSubOperation as Op, BackupType};
use aa_plugin_tar_external::TarExternal;
use aa_tests::{
    chmod, is_rerun_of, noise, on_path, path_with_gzip_script, rerun_test, unprivileged, RunAs,
};

use common::*;

fn denied(operation: Op, name: &str) -> ReportedError {
    ReportedError {
        operation,
        error: E::PermissionDenied,
        name: Some(name.as_bytes().to_vec()),
        message: None,
    }
}

/// Run as `nobody` when the tests run as root, since root reads everything.
#[test]
fn unreadable_files_are_reported_as_permission_denied() {
    if !unprivileged("unreadable_files_are_reported_as_permission_denied") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    fs::create_dir_all(root.join("closed")).unwrap();
    fs::write(root.join("closed/inside"), b"x").unwrap();
    fs::write(root.join("readable"), b"readable").unwrap();
    fs::write(root.join("unreadable"), b"x").unwrap();
    chmod(&root.join("unreadable"), 0o000);
    chmod(&root.join("closed"), 0o000);
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let p = TarExternal::create(&tmp.path().join("work")).unwrap();
    let def = BackupDefinition::new("b", BackupType::TarGz, &dst, &root).include(["."]);
    let events = Recorder::default();
    let result = p.backup_files(&def, None, false, &events);
    chmod(&root.join("closed"), 0o755);
    let path = result.unwrap();
    assert_eq!(
        events.errors(),
        [
            denied(Op::Open, "./closed"),
            denied(Op::Open, "./unreadable")
        ]
    );
    // GNU tar stores nothing of a directory it cannot open.
    assert_eq!(list(&path), [b"./".to_vec(), b"./readable".to_vec()]);
}

/// `PATH` (to put the fake compressor first) is process-wide, so the body runs in a child.
#[test]
fn a_file_growing_while_tar_reads_it_is_reported_as_changed() {
    const NAME: &str = "a_file_growing_while_tar_reads_it_is_reported_as_changed";
    if !is_rerun_of(NAME) {
        let tmp = tempfile::tempdir().unwrap();
        // tar has stat'ed and opened a file by the time its header reaches the compressor, and
        // cannot read the rest of a file far larger than the pipe until the compressor reads
        // on: the file grows in the middle of tar's read, every time.
        let path = path_with_gzip_script(
            &tmp.path().join("bin"),
            &format!(
                "dd bs=512 count=1 of=\"$AA_TEST_FIRST\" 2>/dev/null\n\
                 echo grown >>\"$AA_TEST_GROWING\"\n\
                 cat \"$AA_TEST_FIRST\" - | exec '{}' \"$@\"\n",
                on_path("gzip").display()
            ),
        );
        let src = tmp.path().join("src");
        rerun_test(
            NAME,
            RunAs::Same,
            &[
                ("PATH", path.as_os_str()),
                ("AA_TEST_SRC", src.as_os_str()),
                ("AA_TEST_FIRST", tmp.path().join("first").as_os_str()),
                ("AA_TEST_GROWING", src.join("big").as_os_str()),
            ],
        );
        return;
    }

    let src = PathBuf::from(std::env::var_os("AA_TEST_SRC").unwrap());
    let tmp = src.parent().unwrap();
    fs::create_dir_all(&src).unwrap();
    let original = noise(4 << 20, 9);
    fs::write(src.join("big"), &original).unwrap();
    let dst = tmp.join("dst");
    fs::create_dir_all(&dst).unwrap();
    let p = TarExternal::create(&tmp.join("work")).unwrap();
    let def = BackupDefinition::new("g", BackupType::TarGz, &dst, &src).include(["big"]);
    let events = Recorder::default();
    let path = p.backup_files(&def, None, false, &events).unwrap();
    assert!(
        fs::read(src.join("big")).unwrap().ends_with(b"grown\n"),
        "the fake compressor did not run"
    );
    assert_eq!(
        events.errors(),
        [
            ReportedError {
                operation: Op::Read,
                error: E::FileChanged,
                name: Some(b"big".to_vec()),
                message: None,
            },
            ReportedError {
                operation: Op::Finish,
                error: E::SomeFilesChanged,
                name: None,
                message: None,
            }
        ]
    );
    // tar stores the size it saw at the start.
    let out = tmp.join("out");
    extract(&[&path], &out, false);
    assert_eq!(fs::read(out.join("big")).unwrap(), original);
}

//! `AA_NO_CHECK_DEVICE=1` reaches GNU tar as `--no-check-device`, as `TarInternal` honours it:
//! after the device number of the backed-up file system changed (as after remounting some
//! network or removable file systems), a level stores everything unless the check is off.
//!
//! A test binary of its own: it sets the variable, which is process-wide.

mod common;

use std::fs;
use std::path::Path;

use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::snapshots::NO_CHECK_DEVICE_VAR;
use aa_abi::{BackupDefinition, BackupType, NoEvents, ProviderErrorKind};
use aa_plugin_tar_external::TarExternal;
use common::list;

/// Rewrites a format 2 snapshot as if its file system had another device number. After the
/// header (version line, dump time), each directory record is: nfs flag, mtime seconds and
/// nanoseconds, device, inode, name, then its dumpdir entries, every field NUL-terminated,
/// and two NULs to end the record.
fn change_devices(snar: &Path) {
    let bytes = fs::read(snar).unwrap();
    let line_end = bytes.iter().position(|&b| b == b'\n').unwrap();
    let (version, body) = bytes.split_at(line_end + 1);
    let mut fields: Vec<Vec<u8>> = body.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    // The body ends with a NUL, which leaves one empty piece after it.
    assert_eq!(fields.pop(), Some(Vec::new()));
    let mut at = 2; // past the dump time
    while at < fields.len() {
        let dev: u64 = std::str::from_utf8(&fields[at + 3])
            .unwrap()
            .parse()
            .unwrap();
        fields[at + 3] = (dev ^ 0x100).to_string().into_bytes();
        at += 6;
        while !fields[at].is_empty() {
            at += 1;
        }
        at += 2;
    }
    let mut out = version.to_vec();
    for field in fields {
        out.extend_from_slice(&field);
        out.push(0);
    }
    fs::write(snar, out).unwrap();
}

fn files(archive: &Path) -> Vec<String> {
    list(archive)
        .into_iter()
        .filter(|n| !n.ends_with(b"/"))
        .map(|n| String::from_utf8(n).unwrap())
        .collect()
}

#[test]
fn no_check_device_reaches_gnu_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, dest) = (tmp.path().join("src"), tmp.path().join("dest"));
    fs::create_dir_all(root.join("data/sub")).unwrap();
    fs::create_dir_all(&dest).unwrap();
    fs::write(root.join("data/old"), "old").unwrap();
    fs::write(root.join("data/sub/old2"), "old2").unwrap();
    let provider = TarExternal::create(&tmp.path().join("work")).unwrap();
    let snar = tmp.path().join("work/snapshots/dev.snar");
    let def = BackupDefinition::new("dev", BackupType::Tar, &dest, &root).include(["data"]);
    let level = |level| {
        aa_tests::settle_timestamps();
        provider
            .backup_files_incrementally(&def, None, level, false, &NoEvents)
            .unwrap()
    };

    std::env::remove_var(NO_CHECK_DEVICE_VAR);
    level(None);
    let unchanged = fs::read(&snar).unwrap();
    change_devices(&snar);
    assert_ne!(fs::read(&snar).unwrap(), unchanged, "no device was changed");
    let moved_device = fs::read(&snar).unwrap();
    fs::write(root.join("data/new"), "new").unwrap();

    // Checked: every directory looks replaced, everything is stored again.
    let l1 = level(None);
    assert_eq!(files(&l1), ["data/new", "data/old", "data/sub/old2"]);

    // Not checked: only what changed.
    fs::write(&snar, &moved_device).unwrap();
    std::env::set_var(NO_CHECK_DEVICE_VAR, "1");
    let l1 = level(Some(1));
    assert_eq!(files(&l1), ["data/new"]);

    // A value that means neither: a clear error naming the variable, no new level.
    std::env::set_var(NO_CHECK_DEVICE_VAR, "sometimes");
    let err = provider
        .backup_files_incrementally(&def, None, None, false, &NoEvents)
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::INVALID_VALUE);
    assert!(err.message().starts_with(NO_CHECK_DEVICE_VAR), "{err}");
    assert!(!dest.join("dev.2.tar").exists());
    std::env::remove_var(NO_CHECK_DEVICE_VAR);
}

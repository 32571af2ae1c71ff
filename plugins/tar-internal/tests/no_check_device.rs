//! `AA_NO_CHECK_DEVICE=1`, the equivalent of GNU tar's `--no-check-device`: when the device
//! number of the backed-up file system changed since the previous level (as after remounting
//! some network or removable file systems), every directory looks replaced and the level
//! stores everything, unless the device check is off.
//!
//! A test binary of its own: it sets the variable, which is process-wide.

use std::fs;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::process::Command;

use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupDefinition, BackupType, NoEvents, ProviderErrorKind};
use aa_plugin_tar_internal::incremental::provider::NO_CHECK_DEVICE_VAR;
use aa_plugin_tar_internal::incremental::{SnapshotReader, SnapshotWriter};
use aa_plugin_tar_internal::TarInternalPlugin;

fn members(archive: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tf")
        .arg(archive)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.ends_with('/'))
        .map(str::to_string)
        .collect()
}

/// Rewrites the snapshot `snar` as if its file system had another device number.
fn change_devices(snar: &Path) {
    let mut reader = SnapshotReader::new(BufReader::new(fs::File::open(snar).unwrap())).unwrap();
    let header = reader.header().cloned().unwrap();
    let records: Vec<_> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    let mut writer =
        SnapshotWriter::new(BufWriter::new(fs::File::create(snar).unwrap()), &header).unwrap();
    for mut record in records {
        record.dev ^= 0x100;
        writer.write_record(&record).unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn no_check_device_recognises_directories_by_name_and_inode() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, dest) = (tmp.path().join("src"), tmp.path().join("dest"));
    fs::create_dir_all(root.join("data/sub")).unwrap();
    fs::create_dir_all(&dest).unwrap();
    fs::write(root.join("data/old"), "old").unwrap();
    fs::write(root.join("data/sub/old2"), "old2").unwrap();
    let provider = TarInternalPlugin::create(&tmp.path().join("work")).unwrap();
    let snar = tmp.path().join("work/snapshots/dev.snar");
    let def = BackupDefinition::new("dev", BackupType::Tar, &dest, &root).include(["data"]);
    let level = |level| {
        aa_tests::settle_timestamps();
        provider
            .backup_files_incrementally(&def, None, level, false, &NoEvents)
            .unwrap()
    };

    std::env::remove_var(NO_CHECK_DEVICE_VAR);
    let l0 = level(None);
    change_devices(&snar);
    let moved_device = fs::read(&snar).unwrap();
    fs::write(root.join("data/new"), "new").unwrap();

    // Checked: every directory looks replaced, everything is stored again.
    let l1 = level(None);
    assert_eq!(members(&l1), ["data/new", "data/old", "data/sub/old2"]);

    // Not checked: only what changed.
    fs::write(&snar, &moved_device).unwrap();
    std::env::set_var(NO_CHECK_DEVICE_VAR, "1");
    let l1 = level(Some(1));
    assert_eq!(members(&l1), ["data/new"]);
    let out = tmp.path().join("restore");
    fs::create_dir_all(&out).unwrap();
    for archive in [&l0, &l1] {
        let status = Command::new("tar")
            .current_dir(&out)
            .args(["--listed-incremental=/dev/null", "-xf"])
            .arg(archive)
            .status()
            .unwrap();
        assert!(status.success());
    }
    for file in ["data/new", "data/old", "data/sub/old2"] {
        assert_eq!(
            fs::read(out.join(file)).unwrap(),
            fs::read(root.join(file)).unwrap()
        );
    }

    // A value that means neither: a clear error naming the variable, nothing written.
    std::env::set_var(NO_CHECK_DEVICE_VAR, "sometimes");
    let before = fs::read_dir(tmp.path().join("work/snapshots"))
        .unwrap()
        .count();
    let err = provider
        .backup_files_incrementally(&def, None, None, false, &NoEvents)
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::INVALID_VALUE);
    assert!(err.message().starts_with(NO_CHECK_DEVICE_VAR), "{err}");
    assert_eq!(
        fs::read_dir(tmp.path().join("work/snapshots"))
            .unwrap()
            .count(),
        before
    );
    assert!(!dest.join("dev.2.tar").exists());
    std::env::remove_var(NO_CHECK_DEVICE_VAR);
}

//! `AA_NO_CHECK_DEVICE`: a GNU snapshot rewritten as if its file system had another device
//! number, and the scenario every provider that keeps GNU snapshots runs with it.
//!
//! The snapshot is read and written with the provider kit's reader and writer, the one place
//! GNU snapshot files are parsed.

use std::fs;
use std::path::Path;
use std::process::Command;

use aa_provider_kit::snapshot_file::{SnapshotReader, SnapshotWriter};

use crate::dir_names;

/// Rewrites the GNU tar snapshot file (format 2) `snar` as if its file system had another
/// device number: every directory record keeps all its fields but the device.
pub fn change_snapshot_devices(snar: &Path) {
    let bytes = fs::read(snar).expect("read the snapshot");
    let mut reader = SnapshotReader::new(&bytes[..]).expect("a GNU snapshot file");
    let header = reader.header().cloned().expect("a snapshot header");
    let mut writer = SnapshotWriter::new(Vec::new(), &header).expect("write to memory");
    while let Some(mut record) = reader.next_record().expect("a directory record") {
        record.dev ^= 0x100;
        writer.write_record(&record).expect("write to memory");
    }
    fs::write(snar, writer.finish().expect("write to memory")).expect("write the snapshot");
}

/// `AA_NO_CHECK_DEVICE` with any provider that keeps GNU snapshots in `work/snapshots`: after a
/// device number change, a level stores everything unless the variable turns the check off; a
/// value that means neither is an `INVALID_VALUE` error naming the variable. `provider` must
/// have been created on `tmp/work`. Sets the process-wide variable, so the calling test binary
/// must hold this test only.
pub fn no_check_device_scenario<P: aa_abi::plugin::ArchiverProvider>(provider: &P, tmp: &Path) {
    use aa_abi::{BackupDefinition, BackupType, NoEvents, ProviderErrorKind};
    use aa_provider_kit::NO_CHECK_DEVICE_VAR;

    let (root, dest) = (tmp.join("src"), tmp.join("dest"));
    fs::create_dir_all(root.join("data/sub")).unwrap();
    fs::create_dir_all(&dest).unwrap();
    fs::write(root.join("data/old"), "old").unwrap();
    fs::write(root.join("data/sub/old2"), "old2").unwrap();
    let snar = tmp.join("work/snapshots/dev.snar");
    let def = BackupDefinition::new("dev", BackupType::Tar, &dest, &root).include(["data"]);
    let level = |level| {
        provider
            .backup_files_incrementally(&def, None, level, false, &NoEvents)
            .unwrap_or_else(|e| panic!("level {level:?}: {e}"))
    };
    // The regular files stored (GNU tar lists directories with a trailing `/`).
    let files = |archive: &Path| -> Vec<String> {
        let out = Command::new("tar")
            .arg("-tf")
            .arg(archive)
            .output()
            .unwrap();
        assert!(out.status.success(), "tar -tf {}", archive.display());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.ends_with('/'))
            .map(str::to_string)
            .collect()
    };

    std::env::remove_var(NO_CHECK_DEVICE_VAR);
    let l0 = level(None);
    let unchanged = fs::read(&snar).unwrap();
    change_snapshot_devices(&snar);
    let moved_device = fs::read(&snar).unwrap();
    assert_ne!(moved_device, unchanged, "no device number was changed");
    fs::write(root.join("data/new"), "new").unwrap();

    // Checked: every directory looks replaced, everything is stored again.
    let l1 = level(None);
    assert_eq!(files(&l1), ["data/new", "data/old", "data/sub/old2"]);

    // Not checked: only what changed, and the chain restores.
    fs::write(&snar, &moved_device).unwrap();
    std::env::set_var(NO_CHECK_DEVICE_VAR, "1");
    let l1 = level(Some(1));
    assert_eq!(files(&l1), ["data/new"]);
    let out = tmp.join("restore");
    fs::create_dir_all(&out).unwrap();
    for archive in [&l0, &l1] {
        let status = Command::new("tar")
            .current_dir(&out)
            .args(["--listed-incremental=/dev/null", "-xf"])
            .arg(archive)
            .status()
            .unwrap();
        assert!(status.success(), "restoring {}", archive.display());
    }
    for file in ["data/new", "data/old", "data/sub/old2"] {
        assert_eq!(
            fs::read(out.join(file)).unwrap(),
            fs::read(root.join(file)).unwrap()
        );
    }

    // A value that means neither: a clear error naming the variable, nothing written.
    std::env::set_var(NO_CHECK_DEVICE_VAR, "sometimes");
    let snapshots_before = dir_names(&tmp.join("work/snapshots"));
    let err = provider
        .backup_files_incrementally(&def, None, None, false, &NoEvents)
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::INVALID_VALUE);
    assert!(err.message().starts_with(NO_CHECK_DEVICE_VAR), "{err}");
    assert_eq!(dir_names(&tmp.join("work/snapshots")), snapshots_before);
    assert!(!dest.join("dev.2.tar").exists());
    std::env::remove_var(NO_CHECK_DEVICE_VAR);
}

//! `AA_NO_CHECK_DEVICE`: a GNU snapshot rewritten as if its file system had another device
//! number, and the scenario every provider that keeps GNU snapshots runs with it.
//!
//! The snapshot is parsed by hand here for now; it is to read it with the provider kit's
//! snapshot reader once that exists, so GNU snapshot files are parsed in one place.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::dir_names;

/// Rewrites the GNU tar snapshot file (format 2) `snar` as if its file system had another
/// device number. After the header (version line, dump time), each directory record is: nfs
/// flag, mtime seconds and nanoseconds, device, inode, name, then its dumpdir entries, every
/// field NUL-terminated, and two NULs to end the record.
pub fn change_snapshot_devices(snar: &Path) {
    let bytes = fs::read(snar).expect("read the snapshot");
    let line_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .expect("a version line");
    let (version, body) = bytes.split_at(line_end + 1);
    assert!(version.ends_with(b"-2\n"), "not format 2: {version:?}");
    let mut fields: Vec<Vec<u8>> = body.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    // The body ends with a NUL, which leaves one empty piece after it.
    assert_eq!(fields.pop(), Some(Vec::new()));
    let mut at = 2; // past the dump time
    while at < fields.len() {
        let dev: u64 = std::str::from_utf8(&fields[at + 3])
            .ok()
            .and_then(|d| d.parse().ok())
            .expect("a device number");
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
    fs::write(snar, out).expect("write the snapshot");
}

/// `AA_NO_CHECK_DEVICE` with any provider that keeps GNU snapshots in `work/snapshots`: after a
/// device number change, a level stores everything unless the variable turns the check off; a
/// value that means neither is an `INVALID_VALUE` error naming the variable. `provider` must
/// have been created on `tmp/work`. Sets the process-wide variable, so the calling test binary
/// must hold this test only.
pub fn no_check_device_scenario<P: aa_abi::plugin::ArchiverProvider>(provider: &P, tmp: &Path) {
    use aa_abi::snapshots::NO_CHECK_DEVICE_VAR;
    use aa_abi::{BackupDefinition, BackupType, NoEvents, ProviderErrorKind};

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

//! A destination inside the backed-up tree: the archive's own backup files (the backup, its
//! levels, kept copies, the file being written) are never stored, by either provider, fully
//! or incrementally; other files there, other archives' backups included, are.

use std::collections::BTreeSet;
use std::fs;

use aa_abi::naming::is_own_backup_file;
use aa_tests::*;

const NOTICE: &str =
    "is inside the backed-up tree; this archive's own backup files are not stored.";

/// The members of `archive` that are files of archive `t` in `backups/`.
fn own_members(members: &BTreeSet<Vec<u8>>) -> Vec<String> {
    members
        .iter()
        .filter_map(|m| m.strip_prefix(b"backups/"))
        .filter(|name| is_own_backup_file(name, "t", "tar.gz"))
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect()
}

fn run(sb: &Sandbox, archiver: &str, archive: &str) -> AaOutput {
    let dest = sb.src_dir().join("backups");
    let spec = Spec::new(&sb.src_dir(), &["."], &dest).archiver(archiver);
    sb.write_spec_text("t", &format!("{}{archive}\n", spec.render()));
    let out = sb.aa().arg("t").run();
    out.assert_success();
    let notices = out.stdout.lines().filter(|l| l.contains(NOTICE)).count();
    assert_eq!(notices, 1, "{out}");
    assert!(
        out.stdout
            .contains(&format!("[t] Destination \"{}\" {NOTICE}", dest.display())),
        "{out}"
    );
    out
}

fn own_backups_are_not_stored(archiver: &str) {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.config_dir().join("storage")).unwrap();
    let data_len = 1_000_000;
    fs::write(sb.src_dir().join("data"), noise(data_len, 7)).unwrap();
    let backups = sb.src_dir().join("backups");
    fs::create_dir(&backups).unwrap();
    // Another archive's backups, and a level file of this one.
    for name in ["other.tar.gz", "t.v2.tar.gz"] {
        fs::write(backups.join(name), name).unwrap();
    }
    fs::write(backups.join("t.1.tar.gz"), noise(data_len, 8)).unwrap();

    let mut sizes = Vec::new();
    for _ in 0..3 {
        // From the second run on, the previous backup is kept as `t.aa.tar.gz`.
        run(&sb, archiver, "keep-old-backups = yes");
        let backup = backups.join("t.tar.gz");
        let members = gnu_list(&backup);
        assert_eq!(own_members(&members), Vec::<String>::new(), "{archiver}");
        for other in ["backups/other.tar.gz", "backups/t.v2.tar.gz", "data"] {
            assert!(
                members.contains(other.as_bytes()),
                "{archiver}: {other} missing"
            );
        }
        sizes.push(fs::metadata(&backup).unwrap().len());
    }
    assert!(backups.join("t.aa.tar.gz").exists());
    // Each holds the data once (it does not compress): no backup holds an earlier one.
    let limit = data_len as u64 + 100_000;
    assert!(
        sizes.iter().all(|&s| s < limit),
        "{archiver}: sizes {sizes:?}"
    );

    // Incremental: level 0 over the full backup, then level 1.
    for level in ["t.tar.gz", "t.1.tar.gz"] {
        settle_timestamps();
        fs::write(sb.src_dir().join("changed"), level).unwrap();
        run(&sb, archiver, "incremental = yes");
        let members = gnu_list(&backups.join(level));
        assert_eq!(
            own_members(&members),
            Vec::<String>::new(),
            "{archiver}: {level}"
        );
        assert!(
            members.contains(b"changed".as_slice()),
            "{archiver}: {level}"
        );
    }
}

/// The destination is the root and `*` the include: the wildcard names the backup, which
/// keeping then moves aside before the provider runs.
fn own_backups_named_by_includes_are_not_stored(archiver: &str) {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.config_dir().join("storage")).unwrap();
    fs::write(sb.src_dir().join("data"), "data").unwrap();
    fs::write(sb.src_dir().join("other.tar.gz"), "other").unwrap();
    let spec = Spec::new(&sb.src_dir(), &["*"], &sb.src_dir()).archiver(archiver);
    sb.write_spec_text("t", &format!("{}keep-old-backups = yes\n", spec.render()));
    for _ in 0..3 {
        let out = sb.aa().arg("t").run();
        out.assert_success();
        let members = gnu_list(&sb.src_dir().join("t.tar.gz"));
        let expected: BTreeSet<Vec<u8>> = [b"data".to_vec(), b"other.tar.gz".to_vec()].into();
        assert_eq!(members, expected, "{archiver}: {out}");
    }
}

#[test]
fn own_backups_named_by_includes_are_not_stored_by_tar_internal() {
    own_backups_named_by_includes_are_not_stored("targz_internal");
}

#[test]
fn own_backups_named_by_includes_are_not_stored_by_tar_external() {
    own_backups_named_by_includes_are_not_stored("targz");
}

#[test]
fn own_backups_are_not_stored_by_tar_internal() {
    own_backups_are_not_stored("targz_internal");
}

#[test]
fn own_backups_are_not_stored_by_tar_external() {
    own_backups_are_not_stored("targz");
}

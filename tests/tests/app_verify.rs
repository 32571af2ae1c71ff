//! `aa --verify`: the host's part, the chain's completeness (a backup file for every level the
//! snapshots record, none above), the line per backup, the summary and the exit status, and
//! `--compare`'s listing of differences. Whether a provider has the verify capability is asked
//! from `--list-providers`; each case checks its own outcome.

mod app_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use aa_tests::*;
use app_support::*;

/// Whether any built-in provider has `capability`, per `aa --list-providers`.
fn any_can(sb: &Sandbox, capability: &str) -> bool {
    let out = sb.aa().arg("--list-providers").run();
    out.assert_success();
    out.stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("capabilities: "))
        .any(|list| list.split(", ").any(|c| c == capability))
}

/// Levels 0..=2 of `home`, `a.txt` changing each time.
fn three_levels(sb: &Sandbox, archiver: &str) {
    small_source(sb);
    write_spec(
        sb,
        "home",
        &format!("incremental = yes\narchiver = {archiver}"),
    );
    for run in 0..3 {
        fs::write(sb.src_dir().join("a.txt"), format!("run {run}\n")).unwrap();
        settle_timestamps();
        sb.aa().arg("home").run().assert_success();
    }
}

#[test]
fn no_backup_is_an_error() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "home", "");
    let out = sb.aa().args(["--verify", "home"]).run();
    out.assert_clean_failure();
    assert!(
        out.error_lines()[0].starts_with("aa: Error! [home] Unable to verify: no backup of"),
        "{out}"
    );
    let out = sb.aa().arg("--verify").run();
    out.assert_clean_failure();
    assert_eq!(
        out.error_lines(),
        ["aa: Error! --verify needs the archive specification (AA_SPEC) of the archive."]
    );
}

fn a_missing_level_and_a_level_above_the_chain_are_found(archiver: &str) {
    let sb = Sandbox::new();
    three_levels(&sb, archiver);
    // Level 1 again: the snapshots now end at level 1, `home.2.tar.gz` is left above.
    settle_timestamps();
    sb.aa().args(["home", "-l", "1"]).run().assert_success();
    fs::remove_file(sb.dest_dir().join("home.1.tar.gz")).unwrap();
    let out = sb.aa().args(["--verify", "home"]).run();
    assert_eq!(out.code(), Some(1), "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.contains(&"home.1.tar.gz: FAILED: missing (level 1 of the chain 0..1)"),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(
            "home.2.tar.gz: FAILED: above the current level 1: no snapshot records it"
        )),
        "{out}"
    );
    if any_can(&sb, "verify_v1") {
        assert!(
            lines.iter().any(|l| l.starts_with("home.tar.gz: ok, ")),
            "{out}"
        );
        assert!(
            out.stdout
                .contains("[home] Verified 3 backup files of levels 0..1: 2 FAILED."),
            "{out}"
        );
    } else {
        assert!(
            out.stderr
                .contains("no loaded provider can verify TarGz backups"),
            "{out}"
        );
    }
}

fn a_flipped_byte_is_found(archiver: &str) {
    let sb = Sandbox::new();
    three_levels(&sb, archiver);
    if !any_can(&sb, "verify_v1") {
        let out = sb.aa().args(["--verify", "home"]).run();
        out.assert_clean_failure();
        return;
    }
    let out = sb.aa().args(["--verify", "home"]).run();
    out.assert_success();
    for name in ["home.tar.gz", "home.1.tar.gz", "home.2.tar.gz"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{name}: ok, "))),
            "{out}"
        );
    }
    let damaged = sb.dest_dir().join("home.1.tar.gz");
    let mut bytes = fs::read(&damaged).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    fs::write(&damaged, bytes).unwrap();
    let out = sb.aa().args(["--verify", "home"]).run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("home.1.tar.gz: FAILED: ")),
        "{out}"
    );
    assert!(out.stdout.contains(": 1 FAILED."), "{out}");
}

fn compare_lists_what_changed_since_the_backup(archiver: &str) {
    let sb = Sandbox::new();
    three_levels(&sb, archiver);
    fs::write(sb.src_dir().join("a.txt"), "changed\n").unwrap();
    fs::set_permissions(
        sb.src_dir().join("d/b.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::write(sb.src_dir().join("d/new.txt"), "new\n").unwrap();
    let out = sb.aa().args(["--verify", "--compare", "home"]).run();
    assert_eq!(out.code(), Some(1), "{out}");
    let capable = ["verify_v1", "restore_v1", "dry_run_v1"]
        .iter()
        .all(|c| any_can(&sb, c));
    if !capable {
        assert!(!out.error_lines().is_empty(), "{out}");
        return;
    }
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"content: a.txt"), "{out}");
    assert!(
        lines.contains(&"mode: d/b.txt (backup 0644, source 0600)"),
        "{out}"
    );
    assert!(
        lines.contains(&"new: d/new.txt (in the source, not in the backup)"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("[home] Scope: the paths restored and those a full backup"),
        "{out}"
    );
}

fn a_kept_chain_takes_its_lower_levels_from_the_current_one(archiver: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "home",
        &format!("incremental = yes\nkeep-old-backups = yes\narchiver = {archiver}"),
    );
    for level in ["0", "1", "2", "1"] {
        fs::write(sb.src_dir().join("a.txt"), format!("level {level}\n")).unwrap();
        settle_timestamps();
        sb.aa().args(["home", "-l", level]).run().assert_success();
    }
    assert_eq!(
        dest_files(&sb),
        [
            "home.1.aa.tar.gz",
            "home.1.tar.gz",
            "home.2.aa.tar.gz",
            "home.tar.gz"
        ]
    );
    let out = sb
        .aa()
        .args(["--verify", "home", "--keeping-id", "aa"])
        .run();
    if !any_can(&sb, "verify_v1") {
        out.assert_clean_failure();
        return;
    }
    out.assert_success();
    let verdicts: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(name, _)| name))
        .filter(|name| !name.starts_with('['))
        .collect();
    assert_eq!(
        verdicts,
        ["home.tar.gz", "home.1.aa.tar.gz", "home.2.aa.tar.gz"],
        "{out}"
    );
    let out = sb
        .aa()
        .args(["--verify", "home", "--keeping-id", "ab"])
        .run();
    out.assert_clean_failure();
    assert!(
        out.stderr.contains("no kept backup with keeping ID \"ab\""),
        "{out}"
    );
}

with_both_providers!(
    a_kept_chain_takes_its_lower_levels_from_the_current_one,
    a_missing_level_and_a_level_above_the_chain_are_found,
    a_flipped_byte_is_found,
    compare_lists_what_changed_since_the_backup
);

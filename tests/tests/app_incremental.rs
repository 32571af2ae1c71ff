//! Incremental backups through the `aa` binary: the level chain, `--level`, automatic level
//! restarting (each limit) and `remove-obsolete-backups`, checked on the backup files, the
//! snapshot files, the storage realm (in the original's format) and the exit code.

mod app_support;

use std::fs;

use aa_tests::*;
use app_support::*;

const SIZE0: &str = "archiving-size-level0";
const SIZE1: &str = "archiving-size-level1";
const SIZE2: &str = "archiving-size-level2";
const LAST_RESTART: &str = "archiving-last-restart";
const LAST_FULL_RESTART: &str = "archiving-last-full-restart";
const RESTART_COUNT: &str = "archiving-restart-count";

fn run(sb: &Sandbox, args: &[&str]) -> AaOutput {
    let out = sb.aa().args(args).run();
    out.assert_no_panic();
    out
}

fn each_run_makes_the_next_level_and_the_chain_restores_the_source(archiver: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "inc",
        &format!("archiver = {archiver}\nincremental = yes"),
    );

    run(&sb, &["inc"]).assert_success();
    fs::write(sb.src_dir().join("a.txt"), "a changed\n").unwrap();
    set_mtime(&sb.src_dir().join("a.txt"), (4_000_000_000, 0));
    run(&sb, &["inc"]).assert_success();
    fs::remove_file(sb.src_dir().join("d/b.txt")).unwrap();
    fs::write(sb.src_dir().join("d/c.txt"), "c\n").unwrap();
    set_mtime(&sb.src_dir().join("d/c.txt"), (4_000_000_100, 0));
    run(&sb, &["inc"]).assert_success();

    assert_eq!(
        dest_files(&sb),
        ["inc.1.tar.gz", "inc.2.tar.gz", "inc.tar.gz"]
    );
    assert_eq!(snapshots(&sb), ["inc.1.snar", "inc.2.snar", "inc.snar"]);
    // Without restarting nothing is stored in the realm.
    assert!(!realm_path(&sb, "inc").exists());

    let level1 = gnu_list(&sb.dest_dir().join("inc.1.tar.gz"));
    assert!(level1.contains(b"a.txt".as_slice()), "{level1:?}");
    assert!(
        !level1.contains(b"d/b.txt".as_slice()),
        "unchanged file in level 1: {level1:?}"
    );

    let restored = sb.path().join("restored");
    let chain: Vec<_> = ["inc.tar.gz", "inc.1.tar.gz", "inc.2.tar.gz"]
        .iter()
        .map(|n| sb.dest_dir().join(n))
        .collect();
    restore(&chain, &restored);
    assert_eq!(read(&restored.join("a.txt")), "a changed\n");
    assert_eq!(read(&restored.join("d/c.txt")), "c\n");
    assert!(!restored.join("d/b.txt").exists(), "deleted at level 2");
}

fn level_option_recreates_a_level_and_erases_what_is_above(archiver: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "inc",
        &format!("archiver = {archiver}\nincremental = yes"),
    );
    for _ in 0..3 {
        run(&sb, &["inc"]).assert_success();
    }
    assert_eq!(snapshots(&sb), ["inc.1.snar", "inc.2.snar", "inc.snar"]);

    run(&sb, &["-l", "1", "inc"]).assert_success();
    // The snapshot of level 2 is gone; its backup file stays without remove-obsolete-backups.
    assert_eq!(snapshots(&sb), ["inc.1.snar", "inc.snar"]);
    assert_eq!(
        dest_files(&sb),
        ["inc.1.tar.gz", "inc.2.tar.gz", "inc.tar.gz"]
    );

    run(&sb, &["--level=0", "--remove-obsolete-backups", "inc"]).assert_success();
    assert_eq!(snapshots(&sb), ["inc.snar"]);
    assert_eq!(dest_files(&sb), ["inc.tar.gz"]);

    // A level above the next one is refused with a warning and the next level is made.
    let out = run(&sb, &["--level", "5", "inc"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains(
            "aa: Warning! [inc] Backup level value 5 is too high. Using level 1 instead."
        ),
        "{out}"
    );
    assert_eq!(dest_files(&sb), ["inc.1.tar.gz", "inc.tar.gz"]);
}

fn restart_after_level_goes_back_to_level_1_and_records_the_restart(archiver: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "r",
        &format!(
            "archiver = {archiver}\nincremental = yes\nrestarting = yes\nrestart-after-level = 2"
        ),
    );
    for _ in 0..3 {
        run(&sb, &["r"]).assert_success();
    }
    assert_eq!(realm_var(&sb, "r", RESTART_COUNT).as_deref(), Some("0"));
    assert_eq!(realm_var(&sb, "r", LAST_RESTART), Some(today()));
    assert_eq!(realm_var(&sb, "r", LAST_FULL_RESTART), Some(today()));
    let size2 = fs::metadata(sb.dest_dir().join("r.2.tar.gz"))
        .unwrap()
        .len();
    assert_eq!(realm_var(&sb, "r", SIZE2), Some(size2.to_string()));

    let out = run(&sb, &["r"]);
    // A restart is announced with a warning, so the exit code is 1 as in the original.
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(
        out.error_lines(),
        ["aa: Warning! [r] Maximal backup level reached. Restarting to level 1."]
    );
    assert_eq!(snapshots(&sb), ["r.1.snar", "r.snar"]);
    assert_eq!(realm_var(&sb, "r", RESTART_COUNT).as_deref(), Some("1"));
    let size1 = fs::metadata(sb.dest_dir().join("r.1.tar.gz"))
        .unwrap()
        .len();
    assert_eq!(realm_var(&sb, "r", SIZE1), Some(size1.to_string()));
    // Sizes of the levels above the restart stay in the file, as the original leaves them.
    assert_eq!(realm_var(&sb, "r", SIZE2), Some(size2.to_string()));
    assert!(realm_var(&sb, "r", SIZE0).is_some());

    // --no-restarting beats the spec's restarting = yes: level 2, 3 and no warning.
    run(&sb, &["--no-restarting", "r"]).assert_success();
    run(&sb, &["--no-restarting", "r"]).assert_success();
    assert!(snapshots(&sb).contains(&"r.3.snar".to_string()));
}

fn full_restart_after_count_goes_back_to_level_0(archiver: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "f",
        &format!(
            "archiver = {archiver}\nincremental = yes\nrestarting = yes\n\
             restart-after-level = 2\nfull-restart-after-count = 1"
        ),
    );
    for _ in 0..3 {
        run(&sb, &["f"]).assert_success();
    }
    run(&sb, &["f"]); // restart to level 1, count 1
    assert_eq!(realm_var(&sb, "f", RESTART_COUNT).as_deref(), Some("1"));
    assert_eq!(snapshots(&sb), ["f.1.snar", "f.snar"]);

    let before = fs::read(sb.dest_dir().join("f.tar.gz")).unwrap();
    fs::write(sb.src_dir().join("d/new.txt"), "new\n").unwrap();
    let out = run(&sb, &["f"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .contains("Maximal backup level restart count reached. Restarting to level 0."),
        "{out}"
    );
    assert_eq!(snapshots(&sb), ["f.snar"]);
    assert_ne!(
        fs::read(sb.dest_dir().join("f.tar.gz")).unwrap(),
        before,
        "level 0 remade"
    );
    assert_eq!(realm_var(&sb, "f", RESTART_COUNT).as_deref(), Some("0"));
    assert_eq!(realm_var(&sb, "f", LAST_FULL_RESTART), Some(today()));
}

fn restart_ages_are_measured_from_the_stored_dates(archiver: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "age",
        &format!(
            "archiver = {archiver}\nincremental = yes\nrestarting = yes\nrestart-after-age = 5"
        ),
    );
    run(&sb, &["age"]).assert_success();
    run(&sb, &["age"]).assert_success();
    run(&sb, &["age"]).assert_success(); // level 2: the last restart is today
    assert_eq!(snapshots(&sb).len(), 3);

    // Pretend the last restart was 6 days ago.
    let mut vars: Vec<(&str, String)> = vec![
        (LAST_RESTART, date_days_ago(6)),
        (LAST_FULL_RESTART, date_days_ago(6)),
        (RESTART_COUNT, "0".into()),
    ];
    write_realm(&sb, "age", &vars);
    let out = run(&sb, &["age"]);
    assert_eq!(
        out.error_lines(),
        ["aa: Warning! [age] Maximal backup level restart age reached. Restarting to level 1."],
        "{out}"
    );
    assert_eq!(snapshots(&sb), ["age.1.snar", "age.snar"]);
    assert_eq!(realm_var(&sb, "age", LAST_RESTART), Some(today()));
    assert_eq!(realm_var(&sb, "age", RESTART_COUNT).as_deref(), Some("1"));

    // Full restart by age: 11 days since the last full restart, limit 10.
    write_spec(
        &sb,
        "age",
        &format!(
            "archiver = {archiver}\nincremental = yes\nrestarting = yes\n\
             full-restart-after-age = 10"
        ),
    );
    vars[1].1 = date_days_ago(11);
    write_realm(&sb, "age", &vars);
    let out = run(&sb, &["age"]);
    assert!(
        out.stderr.contains(
            "[age] Maximal backup level full restart age reached. Restarting to level 0."
        ),
        "{out}"
    );
    assert_eq!(snapshots(&sb), ["age.snar"]);
    assert_eq!(realm_var(&sb, "age", LAST_FULL_RESTART), Some(today()));

    // Exactly at the limit is not beyond it.
    vars[1].1 = date_days_ago(10);
    write_realm(&sb, "age", &vars);
    run(&sb, &["age"]).assert_success();
    assert_eq!(snapshots(&sb), ["age.1.snar", "age.snar"]);
}

fn max_restart_level_size_restarts_to_a_higher_level_when_level_1_is_big(archiver: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    let options =
        "incremental = yes\nrestarting = yes\nrestart-after-level = 3\nmax-restart-level-size = 50";
    write_spec(&sb, "m", &format!("archiver = {archiver}\n{options}"));
    for _ in 0..4 {
        run(&sb, &["m"]).assert_success();
    }
    assert_eq!(snapshots(&sb).len(), 4);
    // Level 1 is 90 % of level 0, level 2 10 %: the restart goes to level 2.
    let mut vars: Vec<(&str, String)> = vec![
        (LAST_RESTART, today()),
        (LAST_FULL_RESTART, today()),
        (RESTART_COUNT, "0".into()),
        (SIZE0, "1000".into()),
        (SIZE1, "900".into()),
        (SIZE2, "100".into()),
        ("archiving-size-level3", "100".into()),
    ];
    write_realm(&sb, "m", &vars);
    let listed = run(&sb, &["--list", "-v", "m"]);
    assert!(
        listed
            .stdout
            .contains("Target backup level for non-full restart: 2\n"),
        "{listed}"
    );
    assert!(
        listed
            .stdout
            .contains("Upcoming restart reason: Maximal backup level reached.\n"),
        "{listed}"
    );
    let out = run(&sb, &["m"]);
    assert!(
        out.stderr
            .contains("Maximal backup level reached. Restarting to level 2."),
        "{out}"
    );
    assert_eq!(snapshots(&sb), ["m.1.snar", "m.2.snar", "m.snar"]);

    // A missing size is reported (a warning) and taken as 0.
    vars.retain(|(k, _)| *k != SIZE1);
    write_realm(&sb, "m", &vars);
    let out = run(&sb, &["--list", "m"]);
    assert!(
        out.stderr
            .contains("Unable to obtain size of the level 1 backup file."),
        "{out}"
    );
    assert_eq!(realm_var(&sb, "m", SIZE1).as_deref(), Some("0"));
}

/// An archiver without the incremental feature (the example Hello provider) makes a full
/// backup; the option is reported and ignored, as the original did for `tar_internal`.
#[test]
fn archivers_without_incremental_support_make_full_backups_with_a_warning() {
    let sb = Sandbox::new();
    small_source(&sb);
    let plugin_dir = sb.mkdir("plugins");
    fs::copy(build_hello_provider(), plugin_dir.join("libhello.so")).unwrap();
    write_spec(&sb, "h", "archiver = tar@Hello\nincremental = yes");
    let out = sb.aa().arg("--plugin-dir").arg(&plugin_dir).arg("h").run();
    out.assert_no_panic();
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(
        out.error_lines(),
        ["aa: Warning! [h] Option \"incremental\" is not supported by the archiver of type \"tar@Hello\"."]
    );
    assert_eq!(dest_files(&sb), ["h.tar"]);
    assert!(snapshots(&sb).is_empty());
}

with_both_providers!(
    each_run_makes_the_next_level_and_the_chain_restores_the_source,
    level_option_recreates_a_level_and_erases_what_is_above,
    restart_after_level_goes_back_to_level_1_and_records_the_restart,
    full_restart_after_count_goes_back_to_level_0,
    restart_ages_are_measured_from_the_stored_dates,
    max_restart_level_size_restarts_to_a_higher_level_when_level_1_is_big,
);

//! Keeping old backups (`-k`, `--number-of-old-backups`, `--remove-obsolete-backups`): the
//! keeping IDs shift `aa` -> `ab` ..., the oldest beyond the number is removed, increments move
//! together, and a failed run gives every kept backup back.

mod app_support;

use std::fs;

use aa_tests::*;
use app_support::*;

/// Makes a backup whose content says which run it is.
fn backup_run(sb: &Sandbox, n: usize, args: &[&str]) -> AaOutput {
    fs::write(sb.src_dir().join("a.txt"), format!("run {n}\n")).unwrap();
    let out = sb.aa().args(args).run();
    out.assert_no_panic();
    out
}

/// The `run N` marker inside a backup.
fn run_of(sb: &Sandbox, file: &str) -> String {
    let dir = sb.path().join(format!("x-{file}"));
    gnu_extract(&sb.dest_dir().join(file), &dir);
    read(&dir.join("a.txt")).trim().to_string()
}

fn kept_backups_shift_and_the_oldest_beyond_the_number_is_removed(archiver: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    // The number comes from the command line: a spec's value would beat it.
    write_spec(
        &sb,
        "k",
        &format!("archiver = {archiver}\nkeep-old-backups = yes"),
    );
    let three = ["--number-of-old-backups", "3", "k"];
    for n in 1..=4 {
        let out = backup_run(&sb, n, &three);
        out.assert_success();
        if n > 1 {
            assert_eq!(
                out.stdout, "[k] Keeping already existing backups.\n",
                "{out}"
            );
        }
    }
    assert_eq!(
        dest_files(&sb),
        ["k.aa.tar.gz", "k.ab.tar.gz", "k.ac.tar.gz", "k.tar.gz"]
    );
    let order: Vec<String> = ["k.tar.gz", "k.aa.tar.gz", "k.ab.tar.gz", "k.ac.tar.gz"]
        .iter()
        .map(|f| run_of(&sb, f))
        .collect();
    assert_eq!(order, ["run 4", "run 3", "run 2", "run 1"]);

    let out = backup_run(&sb, 5, &three);
    out.assert_success();
    assert!(
        out.stdout
            .contains("[k] Removing kept backup with keeping ID \"ac\"."),
        "{out}"
    );
    assert_eq!(
        dest_files(&sb),
        ["k.aa.tar.gz", "k.ab.tar.gz", "k.ac.tar.gz", "k.tar.gz"]
    );
    assert_eq!(run_of(&sb, "k.ac.tar.gz"), "run 2");
    assert_eq!(run_of(&sb, "k.tar.gz"), "run 5");

    // Fewer to keep: only remove-obsolete-backups removes the ones beyond the number.
    backup_run(&sb, 6, &["--number-of-old-backups", "1", "k"]).assert_success();
    assert_eq!(
        dest_files(&sb),
        ["k.aa.tar.gz", "k.ab.tar.gz", "k.ac.tar.gz", "k.tar.gz"]
    );
    assert_eq!(run_of(&sb, "k.aa.tar.gz"), "run 5");
    let out = backup_run(
        &sb,
        7,
        &[
            "--number-of-old-backups",
            "1",
            "--remove-obsolete-backups",
            "k",
        ],
    );
    out.assert_success();
    assert!(
        out.stdout
            .contains("[k] Removing obsolete kept backup with keeping ID \"ab\".")
            && out
                .stdout
                .contains("[k] Removing obsolete kept backup with keeping ID \"ac\"."),
        "{out}"
    );
    assert_eq!(dest_files(&sb), ["k.aa.tar.gz", "k.tar.gz"]);
    assert_eq!(run_of(&sb, "k.aa.tar.gz"), "run 6");

    // --no-keep-old-backups beats the spec; the backup is simply replaced.
    backup_run(&sb, 8, &["--no-keep-old-backups", "k"]).assert_success();
    assert_eq!(dest_files(&sb), ["k.aa.tar.gz", "k.tar.gz"]);
    assert_eq!(run_of(&sb, "k.aa.tar.gz"), "run 6");
}

fn zero_backups_to_keep_is_a_warning(archiver: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "k", &format!("archiver = {archiver}"));
    backup_run(&sb, 1, &["k"]).assert_success();
    let out = backup_run(&sb, 2, &["-k", "--number-of-old-backups", "0", "k"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains(
            "aa: Warning! [k] Keeping of old backups is enabled but the number to keep is 0."
        ),
        "{out}"
    );
    assert_eq!(dest_files(&sb), ["k.tar.gz"]);
}

fn increments_are_kept_together_when_their_levels_are_overwritten(archiver: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "i",
        &format!("archiver = {archiver}\nincremental = yes\nkeep-old-backups = yes"),
    );
    for n in 1..=3 {
        backup_run(&sb, n, &["--number-of-old-backups", "2", "i"]).assert_success();
    }
    assert_eq!(dest_files(&sb), ["i.1.tar.gz", "i.2.tar.gz", "i.tar.gz"]);

    // Level 1 again: levels 1 and 2 are kept as "aa", level 0 stays.
    backup_run(&sb, 4, &["-l", "1", "--number-of-old-backups", "2", "i"]).assert_success();
    assert_eq!(
        dest_files(&sb),
        ["i.1.aa.tar.gz", "i.1.tar.gz", "i.2.aa.tar.gz", "i.tar.gz"]
    );
    // Level 0 again: the whole current chain becomes "aa", the previous "aa" becomes "ab".
    backup_run(&sb, 5, &["-l", "0", "--number-of-old-backups=2", "i"]).assert_success();
    assert_eq!(
        dest_files(&sb),
        [
            "i.1.aa.tar.gz",
            "i.1.ab.tar.gz",
            "i.2.ab.tar.gz",
            "i.aa.tar.gz",
            "i.tar.gz"
        ]
    );
    assert_eq!(run_of(&sb, "i.1.aa.tar.gz"), "run 4");
    assert_eq!(run_of(&sb, "i.aa.tar.gz"), "run 1");
    assert_eq!(snapshots(&sb), ["i.snar"]);

    // A spec's number beats the command line's.
    write_spec(
        &sb,
        "i",
        &format!(
            "archiver = {archiver}\nincremental = yes\nkeep-old-backups = yes\n\
             number-of-old-backups = 1"
        ),
    );

    // With one to keep and remove-obsolete-backups, "ab" goes and the chain is "aa" again.
    let out = backup_run(
        &sb,
        6,
        &[
            "-l",
            "0",
            "--number-of-old-backups",
            "5",
            "--remove-obsolete-backups",
            "i",
        ],
    );
    out.assert_success();
    assert!(
        out.stdout
            .contains("[i] Removing kept incremental backup with keeping ID \"aa\".")
            && out
                .stdout
                .contains("[i] Removing obsolete kept incremental backup with keeping ID \"ab\"."),
        "{out}"
    );
    assert_eq!(dest_files(&sb), ["i.aa.tar.gz", "i.tar.gz"]);
    assert_eq!(run_of(&sb, "i.aa.tar.gz"), "run 5");
}

fn a_failed_backup_gives_the_kept_backups_back(archiver: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "k",
        &format!("archiver = {archiver}\nkeep-old-backups = yes"),
    );
    backup_run(&sb, 1, &["k"]).assert_success();
    backup_run(&sb, 2, &["k"]).assert_success();
    assert_eq!(dest_files(&sb), ["k.aa.tar.gz", "k.tar.gz"]);
    let old: Vec<Vec<u8>> = ["k.aa.tar.gz", "k.tar.gz"]
        .iter()
        .map(|f| fs::read(sb.dest_dir().join(f)).unwrap())
        .collect();

    // Nothing to back up: the provider refuses after the old backups were moved for keeping.
    sb.write_spec_text(
        "k",
        &format!(
            "[Content]\npath = {}\ninclude-files = missing.txt\nexclude-files =\n[Archive]\ndest-dir = {}\nkeep-old-backups = yes\narchiver = {archiver}\n",
            sb.src_dir().display(),
            sb.dest_dir().display()
        ),
    );
    let out = sb.aa().arg("k").run();
    out.assert_clean_failure();
    assert!(out.stderr.contains("Nothing to backup"), "{out}");
    assert_eq!(dest_files(&sb), ["k.aa.tar.gz", "k.tar.gz"], "{out}");
    let now: Vec<Vec<u8>> = ["k.aa.tar.gz", "k.tar.gz"]
        .iter()
        .map(|f| fs::read(sb.dest_dir().join(f)).unwrap())
        .collect();
    assert_eq!(now, old, "the kept backups must be back under their names");
}

with_both_providers!(
    kept_backups_shift_and_the_oldest_beyond_the_number_is_removed,
    zero_backups_to_keep_is_a_warning,
    increments_are_kept_together_when_their_levels_are_overwritten,
    a_failed_backup_gives_the_kept_backups_back,
);

//! `--list` (plain and `--verbose`) of configured and orphaned archives, and `--purge` of
//! orphaned archive data. The output goes to a pipe here: listing must work without a terminal
//! (the original crashed).

mod app_support;

use std::fs;

use aa_tests::*;
use app_support::*;

/// Splits a plain listing line into its fields (the columns are space-padded).
fn fields(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Archives "inc" and "plain" made with `archiver`, and the orphan "gone".
fn setup(archiver: &str) -> Sandbox {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "inc",
        &format!(
            "archiver = {archiver}\nincremental = yes\nrestarting = yes\n\
             restart-after-level = 5\nrestart-after-age = 30"
        ),
    );
    write_spec(&sb, "plain", &format!("archiver = {archiver}"));
    sb.aa().args(["inc", "plain"]).run().assert_success();
    sb.aa().arg("inc").run().assert_success();
    // "gone" has stored data but no specification any more.
    write_spec(
        &sb,
        "gone",
        &format!("archiver = {archiver}\nincremental = yes\nrestarting = yes"),
    );
    sb.aa().arg("gone").run().assert_success();
    fs::remove_file(sb.specs_dir().join("gone.aa")).unwrap();
    sb
}

fn plain_listing_of_configured_and_orphaned_archives(archiver: &str) {
    let sb = setup(archiver);
    let out = sb.aa().arg("--list").run();
    out.assert_success();
    let lines: Vec<Vec<&str>> = out.stdout.lines().map(fields).collect();
    let src = sb.src_dir().display().to_string();
    let dest = sb.dest_dir().display().to_string();
    // Paths longer than their column are shortened with "~": compare what is certain.
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0][0], "inc");
    assert_eq!(lines[0][3], "1/2/5");
    assert_eq!(lines[1][0], "plain");
    assert_eq!(lines[1][3], "[-]/[-]/[10]");
    assert_eq!(lines[2], ["[gone]", "?", ".", "[0]/[?]/[10]"]);
    for line in &lines[..2] {
        assert!(src.ends_with(line[1].rsplit('~').next().unwrap()), "{out}");
        assert!(dest.ends_with(line[2].rsplit('~').next().unwrap()), "{out}");
    }
    // The columns line up at the assumed 80 columns of a non-terminal.
    for line in out.stdout.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }

    // Selecting one archive lists only it (and no orphan not selected).
    let out = sb.aa().args(["--list", "plain"]).run();
    out.assert_success();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let out = sb.aa().args(["--list", "gone"]).run();
    out.assert_success();
    assert_eq!(fields(out.stdout.trim_end())[0], "[gone]", "{out}");
}

fn verbose_listing_shows_every_detail(archiver: &str) {
    let sb = setup(archiver);
    write_realm(
        &sb,
        "inc",
        &[
            ("archiving-last-restart", date_days_ago(3)),
            ("archiving-last-full-restart", date_days_ago(7)),
            ("archiving-restart-count", "2".into()),
            ("archiving-size-level0", "1000".into()),
            ("archiving-size-level1", "10".into()),
        ],
    );
    let out = sb.aa().args(["--list", "-v"]).run();
    out.assert_success();
    let src = sb.src_dir().display().to_string();
    let dest = sb.dest_dir().display().to_string();
    let expected = format!(
        "Name: inc\nRoot: {src}\nArchiver type: {archiver}\nDestination directory: {dest}\n\
         Current backup level/next/max.: 1/2/5\n\
         Target backup level for non-full restart: 1\n\
         Upcoming restart reason: No restart scheduled for the next backup.\n\
         Restart count/max.: 2/-\n\
         Days since last restart/max.: 3/30\n\
         Days since last full restart/max.: 7/-\n\n\
         Name: plain\nRoot: {src}\nArchiver type: {archiver}\nDestination directory: {dest}\n\
         Current backup level/next/max.: [-]/[-]/[10]\n\
         Target backup level for non-full restart: [1]\n\
         Upcoming restart reason: [No restart scheduled for the next backup.]\n\
         Restart count/max.: [-]/[-]\n\
         Days since last restart/max.: [-]/[-]\n\
         Days since last full restart/max.: [-]/[-]\n\n\
         Name: [gone]\nRoot: ?\nArchiver type: targz\nDestination directory: .\n\
         Current backup level/next/max.: [0]/[?]/[10]\n\
         Target backup level for non-full restart: [?]\n\
         Upcoming restart reason: [?]\n\
         Restart count/max.: [0]/[-]\n\
         Days since last restart/max.: [0]/[-]\n\
         Days since last full restart/max.: [0]/[-]\n\n"
    );
    assert_eq!(out.stdout, expected, "{out}");

    // A restart that is due is announced.
    write_realm(
        &sb,
        "inc",
        &[
            ("archiving-last-restart", date_days_ago(31)),
            ("archiving-last-full-restart", date_days_ago(31)),
            ("archiving-restart-count", "0".into()),
        ],
    );
    let out = sb.aa().args(["--list", "-v", "inc"]).run();
    assert!(
        out.stdout
            .contains("Upcoming restart reason: Maximal age without a restart reached.\n"),
        "{out}"
    );
}

fn an_unreadable_spec_is_an_error_for_its_line_only(archiver: &str) {
    let sb = setup(archiver);
    sb.write_spec_text("broken", "[Content]\npath = /x\n");
    let out = sb.aa().arg("--list").run();
    out.assert_clean_failure();
    assert_eq!(out.stdout.lines().count(), 3, "{out}");
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "{out}");
    assert!(errors[0].starts_with("aa: Error! [broken] "), "{out}");
}

fn purge_removes_the_stored_data_of_orphans_only(archiver: &str) {
    let sb = setup(archiver);
    assert!(realm_path(&sb, "gone").is_file());
    assert!(snapshots(&sb).contains(&"gone.snar".to_string()));

    let out = sb.aa().arg("--purge").run();
    out.assert_clean_failure();
    assert!(out.stderr.contains("No archive name given"), "{out}");

    let out = sb.aa().args(["--purge", "inc"]).run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(
        out.error_lines(),
        ["aa: Warning! [inc] Archive is not orphaned. Not purging."]
    );
    let out = sb.aa().args(["--purge", "nothing"]).run();
    out.assert_success();
    assert_eq!(out.stdout, "[nothing] Nothing to purge.\n");

    let out = sb.aa().args(["-v", "--purge", "gone"]).run();
    out.assert_success();
    assert_eq!(out.stdout, "Purging gone.\n");
    assert!(!realm_path(&sb, "gone").exists());
    assert!(!snapshots(&sb).iter().any(|s| s.starts_with("gone")));
    // Backups themselves are never touched.
    assert!(dest_files(&sb).contains(&"gone.tar.gz".to_string()));
    assert!(realm_path(&sb, "inc").is_file());
}

fn purge_all_spares_configured_archives_and_unreadable_specs(archiver: &str) {
    let sb = setup(archiver);
    // "spare" has data, then its spec gets broken: --purge --all must not take it for an orphan.
    write_spec(
        &sb,
        "spare",
        &format!("archiver = {archiver}\nincremental = yes\nrestarting = yes"),
    );
    sb.aa().arg("spare").run().assert_success();
    sb.write_spec_text("spare", "[Content]\nbroken\n");

    let out = sb.aa().args(["--purge", "--all"]).run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(
        out.error_lines(),
        ["aa: Warning! [spare] Its archive specification file cannot be read. Not purging."]
    );
    assert!(!realm_path(&sb, "gone").exists());
    assert!(realm_path(&sb, "inc").is_file());
    assert!(realm_path(&sb, "spare").is_file());
    assert!(snapshots(&sb).contains(&"spare.snar".to_string()));
    assert!(snapshots(&sb).contains(&"inc.snar".to_string()));
}

with_both_providers!(
    plain_listing_of_configured_and_orphaned_archives,
    verbose_listing_shows_every_detail,
    an_unreadable_spec_is_an_error_for_its_line_only,
    purge_removes_the_stored_data_of_orphans_only,
    purge_all_spares_configured_archives_and_unreadable_specs,
);

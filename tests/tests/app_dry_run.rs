//! `aa --dry-run`: the plan it prints (level, backup file, kept backups renamed or removed)
//! from the real run's planning, and that it writes nothing and runs no command: the
//! destination, the user configuration directory (snapshots, storage realm, locks, keeping
//! journal) and the hooks' marker files are compared before and after. The members come from
//! the provider's dry-run capability; without it the run says so and fails.

mod app_support;

use std::fs;
use std::path::Path;

use aa_tests::*;
use app_support::*;

fn can_dry_run(sb: &Sandbox, provider: &str) -> bool {
    let out = sb.aa().arg("--list-providers").run();
    out.assert_success();
    let mut current = "";
    for line in out.stdout.lines() {
        if !line.starts_with(' ') {
            current = line.split_whitespace().next().unwrap_or_default();
        } else if let Some(list) = line.trim().strip_prefix("capabilities: ") {
            if current == provider && list.split(", ").any(|c| c == "dry_run_v1") {
                return true;
            }
        }
    }
    false
}

/// Everything under `dir`, names, contents, modes and times.
fn state(dir: &Path) -> TreeRecord {
    record_tree(dir)
}

fn a_dry_run_writes_nothing_and_runs_no_hook(archiver: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    let marker = sb.path().join("hook-ran");
    write_spec(
        &sb,
        "home",
        &format!(
            "archiver = {archiver}\nincremental = yes\nrestarting = yes\nkeep-old-backups = yes\n\
             remove-obsolete-backups = yes\ncommand-before-backup = touch {0}\n\
             command-after-backup = touch {0}",
            marker.display()
        ),
    );
    for run in 0..3 {
        fs::write(sb.src_dir().join("a.txt"), format!("run {run}\n")).unwrap();
        settle_timestamps();
        sb.aa().arg("home").run().assert_success();
    }
    fs::remove_file(&marker).unwrap();
    fs::write(sb.src_dir().join("d/c.txt"), "c\n").unwrap();
    let (dest, config) = (state(&sb.dest_dir()), state(&sb.config_dir()));

    let out = sb
        .aa()
        .args(["--dry-run", "-l", "1", "home"])
        .arg(format!(
            "--command-before-all-backups=touch {}",
            marker.display()
        ))
        .run();
    out.assert_no_panic();
    assert_same_tree(&dest, &state(&sb.dest_dir()), Compare::default(), "dest");
    assert_same_tree(
        &config,
        &state(&sb.config_dir()),
        Compare::default(),
        "config",
    );
    assert!(!marker.exists(), "a hook ran:\n{out}");

    let dest_dir = sb.dest_dir();
    let plan: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("[home] ") || l.starts_with("Not run"))
        .collect();
    let expected = [
        format!(
            "Not run (dry run), before all backups: 'touch {}'.",
            marker.display()
        ),
        "[home] Dry run: nothing is written and no command is run.".to_string(),
        format!(
            "[home] Level 1; backup file \"{}\" (replacing the existing one).",
            dest_dir.join("home.1.tar.gz").display()
        ),
        "[home] The backup would keep already existing backups.".to_string(),
        "[home] Would rename \"home.1.tar.gz\" to \"home.1.aa.tar.gz\".".to_string(),
        "[home] Would rename \"home.2.tar.gz\" to \"home.2.aa.tar.gz\".".to_string(),
        format!(
            "[home] Not run (dry run), before the backup: 'touch {}'.",
            marker.display()
        ),
        format!(
            "[home] Not run (dry run), after the backup: 'touch {}'.",
            marker.display()
        ),
    ];
    assert_eq!(plan[..expected.len()], expected, "{out}");

    let own = if archiver.ends_with("_internal") {
        "TarInternal"
    } else {
        "TarExternal"
    };
    let mut planned: Option<Vec<String>> = None;
    if can_dry_run(&sb, own) {
        out.assert_success();
        // Level 1 stores what changed since level 0: `a.txt` (runs 1 and 2) and `d/c.txt`.
        let members: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| !l.starts_with('[') && !l.starts_with("Not run"))
            .map(|l| l.split_whitespace().last().unwrap_or_default())
            .collect();
        assert!(
            members.contains(&"a.txt") && members.contains(&"d/c.txt"),
            "{out}"
        );
        planned = Some(members.iter().map(|m| m.to_string()).collect());
        assert!(!members.contains(&"d/b.txt"), "{out}");
        assert!(
            out.stdout.contains("[home] Would store ")
                && out.stdout.contains("in \"home.1.tar.gz\"."),
            "{out}"
        );
    } else {
        out.assert_clean_failure();
        assert_eq!(
            out.error_lines(),
            [format!(
                "aa: Error! [home] Unable to plan the backup: the archive's provider cannot \
                 dry-run TarGz backups ({own} lacks dry_run_v1)"
            )]
        );
    }

    // The real run then does what was planned.
    fs::write(sb.src_dir().join("a.txt"), "run 3\n").unwrap();
    settle_timestamps();
    let real = sb.aa().args(["-l", "1", "-v", "home"]).run();
    real.assert_success();
    if let Some(mut planned) = planned {
        // What the real run stored (its -v lines that are member names) is what was listed.
        let mut stored: Vec<String> = real
            .stdout
            .lines()
            .filter(|l| {
                !l.is_empty()
                    && !l.starts_with('[')
                    && !l.starts_with("Processing")
                    && !l.starts_with("Backup creation")
                    && !l.starts_with("Executing")
            })
            .map(str::to_string)
            .collect();
        planned.sort();
        stored.sort();
        assert_eq!(planned, stored, "{real}");
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
    assert!(marker.exists());
}

with_both_providers!(a_dry_run_writes_nothing_and_runs_no_hook);

#[test]
fn a_dry_run_needs_an_archive_and_is_a_command_of_its_own() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "home", "");
    let out = sb.aa().arg("--dry-run").run();
    out.assert_clean_failure();
    assert!(
        out.error_lines()[0].starts_with("aa: Error! No archive specification given."),
        "{out}"
    );
    let out = sb.aa().args(["--dry-run", "--list", "home"]).run();
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("--dry-run"), "{out}");
    // A non-incremental archive: its one backup file.
    let out = sb.aa().args(["--dry-run", "home"]).run();
    assert!(
        out.stdout.contains(&format!(
            "[home] Backup file \"{}\" (not incremental).",
            sb.dest_dir().join("home.tar.gz").display()
        )),
        "{out}"
    );
    assert!(dest_files(&sb).is_empty());
}

//! The archive's state is checked before its backup is written: a name that is not a file
//! name, a snapshot path that is not a file, a realm that cannot be read or holds a value that
//! is not a number, a storage directory that cannot be written. Each is one error line naming
//! what is wrong, exit code 1, and the old backups, snapshots and realm stay byte-identical with
//! no new backup file; the other archives of the run go on.

mod app_support;

use std::fs;

use aa_tests::*;
use app_support::*;

/// Everything in the sandbox but the lock files, whose content is the last run's process id.
fn state(sb: &Sandbox) -> TreeRecord {
    without(&record_tree(sb.path()), b"config/locks")
}

#[test]
fn a_name_that_is_not_a_file_name_is_refused_before_anything_is_written() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "good", "");
    let victim = sb.path().join("victim.lock");
    fs::write(&victim, "precious\n").unwrap();
    for (spec, name) in [("up", "../../victim"), ("deep", "a/b/c"), ("dots", "..")] {
        let text =
            spec_text(&sb, "").replacen("[Content]\n", &format!("[Content]\nname = {name}\n"), 1);
        sb.write_spec_text(spec, &text);
    }

    let out = sb.aa().args(["up", "deep", "dots", "good"]).run();
    out.assert_no_panic();
    assert_eq!(out.code(), Some(1), "{out}");
    let specs = sb.specs_dir();
    let line = |spec: &str, name: &str, problem: &str| {
        format!(
            "aa: Error! [{spec}] {}:2: invalid archive name \"{name}\" in option \"name\" of \
             section [Content]: {problem}",
            specs.join(format!("{spec}.aa")).display()
        )
    };
    assert_eq!(
        out.error_lines(),
        [
            line("up", "../../victim", "it contains \"/\""),
            line("deep", "a/b/c", "it contains \"/\""),
            line("dots", "..", "it is not a file name"),
        ],
        "{out}"
    );
    assert_eq!(read(&victim), "precious\n");
    assert_eq!(dir_names(&sb.config_dir().join("locks")), ["good.lock"]);
    assert!(!sb.path().join("a").exists() && !sb.config_dir().join("a").exists());
    // The other archive of the run was backed up.
    assert_eq!(dest_files(&sb), ["good.tar.gz"], "{out}");
}

const INCREMENTAL: &str = "incremental = yes\nrestarting = yes";

/// Runs `aa ARGS` expecting it to refuse before writing anything: exit code 1, exactly the
/// error line `expected`, and the sandbox as it was.
#[track_caller]
fn assert_refused_untouched(sb: &Sandbox, args: &[&str], expected: &str) {
    let before = state(sb);
    let out = sb.aa().args(args).run();
    out.assert_no_panic();
    assert_same_tree(
        &before,
        &state(sb),
        Compare { mtime_nanos: true },
        &out.to_string(),
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(out.error_lines(), [expected], "{out}");
}

/// A snapshot path that is a directory: the backup of that level is not written (the old one
/// stays, with its snapshots) for both providers, at level 0 and at level 1.
#[test]
fn a_snapshot_path_that_is_not_a_file_fails_before_the_backup() {
    for archiver in ["tar", "tar_internal"] {
        for level in [0, 1] {
            let sb = Sandbox::new();
            small_source(&sb);
            write_spec(&sb, "t", INCREMENTAL);
            sb.aa().args(["-a", archiver, "t"]).run().assert_success();
            let name = if level == 0 { "t.snar" } else { "t.1.snar" };
            let blocker = sb.config_dir().join("snapshots").join(name);
            let _ = fs::remove_file(&blocker);
            fs::create_dir(&blocker).unwrap();
            fs::write(blocker.join("inside"), "x").unwrap();
            assert_refused_untouched(
                &sb,
                &["-a", archiver, "t"],
                &format!(
                    "aa: Error! [t] Unable to create the backup: Snapshot \"{}\" is not a \
                     regular file.",
                    blocker.display()
                ),
            );
            assert_eq!(dest_files(&sb), ["t.tar"], "{archiver}, level {level}");
        }
    }
}

/// A realm that cannot be read, or whose restart variables are not numbers or dates, is an
/// error at backup time naming the realm file (before, the backup was made and then the run
/// said it was not, or nothing was said at all).
#[test]
fn a_broken_realm_fails_before_the_backup() {
    let cases = [
        ("garbage", None),
        (
            "[AutoArchive]\narchiving-restart-count = many\n",
            Some(("many", "archiving-restart-count", "a number")),
        ),
        (
            "[AutoArchive]\narchiving-size-level0 = 1k\n",
            Some(("1k", "archiving-size-level0", "a number")),
        ),
        (
            "[AutoArchive]\narchiving-last-restart = 2024-13-01\n",
            Some((
                "2024-13-01",
                "archiving-last-restart",
                "a date (YYYY-MM-DD)",
            )),
        ),
    ];
    for (content, problem) in cases {
        let sb = Sandbox::new();
        small_source(&sb);
        // Level 2 would restart to level 1, replacing the old level 1 backup.
        write_spec(&sb, "t", &format!("{INCREMENTAL}\nrestart-after-level = 1"));
        sb.aa().arg("t").run().assert_success();
        sb.aa().arg("t").run().assert_success();
        let realm = realm_path(&sb, "t");
        fs::write(&realm, content).unwrap();
        let shown = realm.display();
        let expected = match problem {
            None => format!(
                "aa: Error! [t] Unable to create the backup: unreadable storage realm: {shown}:1: \
                 \"garbage\" comes before the first [section] header"
            ),
            Some((value, var, what)) => format!(
                "aa: Error! [t] Unable to create the backup: the value \"{value}\" of \"{var}\" \
                 in the storage realm \"{shown}\" is not {what}"
            ),
        };
        assert_refused_untouched(&sb, &["t"], &expected);
        assert_eq!(dest_files(&sb), ["t.1.tar.gz", "t.tar.gz"], "{content}");
    }
}

/// A hook (here `command-before-all-backups`) that leaves a file where the storage directory
/// was: the level state could not be saved, so the backup is not made.
#[test]
fn a_storage_directory_that_cannot_take_the_realm_fails_before_the_backup() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "t", INCREMENTAL);
    sb.aa().arg("t").run().assert_success();
    let storage = sb.config_dir().join("storage");
    let hook = format!(
        "sh -c 'rm -r {0} && echo not a directory > {0}'",
        storage.display()
    );
    let out = sb
        .aa()
        .arg("--command-before-all-backups")
        .arg(&hook)
        .arg("t")
        .run();
    out.assert_no_panic();
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(
        out.error_lines(),
        [format!(
            "aa: Error! [t] Unable to create the backup: {}: Not a directory (os error 20)",
            storage.display()
        )],
        "{out}"
    );
    assert_eq!(dest_files(&sb), ["t.tar.gz"], "{out}");
    assert_eq!(snapshots(&sb), ["t.snar"], "{out}");
}

/// A storage directory removed since the start is created again, as the original announces
/// it, and the level state is saved there.
#[test]
fn a_removed_storage_directory_is_created_again_for_the_level_state() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "t", INCREMENTAL);
    sb.aa().arg("t").run().assert_success();
    let storage = sb.config_dir().join("storage");
    let out = sb
        .aa()
        .arg("--command-before-all-backups")
        .arg(format!("rm -r {}", storage.display()))
        .arg("t")
        .run();
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [format!(
            "aa: Warning! Storage directory does not exist. Creating \"{}\".",
            storage.display()
        )],
        "{out}"
    );
    assert_eq!(dest_files(&sb), ["t.1.tar.gz", "t.tar.gz"], "{out}");
    let size = fs::metadata(sb.dest_dir().join("t.1.tar.gz"))
        .unwrap()
        .len();
    assert_eq!(
        realm_var(&sb, "t", "archiving-size-level1"),
        Some(size.to_string())
    );
}

/// What fails once the backup exists is reported as such, and the level state is still saved:
/// here an obsolete increment that cannot be removed (a directory where `t.2.tar.gz` would be).
#[test]
fn a_failure_after_the_backup_says_the_backup_was_made() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "t",
        &format!("{INCREMENTAL}\nremove-obsolete-backups = yes"),
    );
    sb.aa().arg("t").run().assert_success();
    let obsolete = sb.dest_dir().join("t.2.tar.gz");
    fs::create_dir(&obsolete).unwrap();

    let out = sb.aa().arg("t").run();
    out.assert_no_panic();
    assert_eq!(out.code(), Some(1), "{out}");
    let backup = sb.dest_dir().join("t.1.tar.gz");
    assert_eq!(
        out.error_lines(),
        [format!(
            "aa: Error! [t] The backup \"{}\" was created, but the obsolete increments were not \
             removed: {}: Is a directory (os error 21)",
            backup.display(),
            obsolete.display()
        )],
        "{out}"
    );
    let size = fs::metadata(&backup).unwrap().len();
    assert_eq!(
        realm_var(&sb, "t", "archiving-size-level1"),
        Some(size.to_string()),
        "the level state is saved all the same"
    );
    assert_eq!(snapshots(&sb), ["t.1.snar", "t.snar"], "{out}");
}

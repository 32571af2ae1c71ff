//! The four command hooks: when they run, that they are split like Python's `shlex` and run
//! without a shell, what their output becomes, and that a failing before-command skips only
//! its own backup.

mod app_support;

use std::fs;

use aa_tests::*;
use app_support::*;

/// A hook that appends `word` to the sandbox's log file (through `sh`, run by aa without a
/// shell of its own).
fn log_hook(sb: &Sandbox, word: &str) -> String {
    format!(
        "sh -c 'echo {word} >> \"$0\"' '{}'",
        sb.path().join("log").display()
    )
}

fn log(sb: &Sandbox) -> Vec<String> {
    fs::read_to_string(sb.path().join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn hooks_run_in_order_around_each_backup_and_the_whole_run() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "one", "");
    write_spec(
        &sb,
        "two",
        &format!(
            "command-before-backup = {}",
            log_hook(&sb, "before-two-from-spec")
        ),
    );
    let out = sb
        .aa()
        .arg("--command-before-all-backups")
        .arg(log_hook(&sb, "before-all"))
        .arg("--command-after-all-backups")
        .arg(log_hook(&sb, "after-all"))
        .arg("--command-before-backup")
        .arg(log_hook(&sb, "before"))
        .arg("--command-after-backup")
        .arg(log_hook(&sb, "after"))
        .args(["one", "two"])
        .run();
    out.assert_success();
    assert_eq!(
        log(&sb),
        [
            "before-all",
            "before",
            "after",
            "before-two-from-spec",
            "after",
            "after-all"
        ]
    );
    assert_eq!(dest_files(&sb), ["one.tar.gz", "two.tar.gz"]);

    // --force-command-before-backup wins over the spec.
    fs::remove_file(sb.path().join("log")).unwrap();
    sb.aa()
        .arg("--force-command-before-backup")
        .arg(log_hook(&sb, "forced"))
        .arg("two")
        .run()
        .assert_success();
    assert_eq!(log(&sb), ["forced"]);
}

#[test]
fn a_failing_before_command_skips_only_that_backup() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "bad",
        "command-before-backup = false\ncommand-after-backup = touch after-bad",
    );
    write_spec(&sb, "good", "");
    let out = sb.aa().args(["bad", "good"]).run();
    out.assert_clean_failure();
    assert_eq!(
        out.error_lines(),
        ["aa: Error! [bad] Command did not finish successfully: 'false', exit code 1."]
    );
    assert_eq!(dest_files(&sb), ["good.tar.gz"]);
    assert!(
        !sb.path().join("after-bad").exists(),
        "no after-command for a skipped backup"
    );

    // A failing before-all command stops the run before any backup.
    fs::remove_file(sb.dest_dir().join("good.tar.gz")).unwrap();
    let out = sb
        .aa()
        .args([
            "--command-before-all-backups",
            "no-such-command-xyz",
            "good",
        ])
        .run();
    out.assert_clean_failure();
    assert!(out.stderr.contains("no-such-command-xyz"), "{out}");
    assert!(dest_files(&sb).is_empty());
}

#[test]
fn commands_are_split_like_shlex_and_run_without_a_shell() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "s", "");
    let out = sb
        .aa()
        .arg("--command-before-backup")
        .arg(r#"printf "%s|" 'a  b' "c \"d\"" $HOME ~ #x"#)
        .arg("s")
        .run();
    out.assert_success();
    // No shell: no variable or tilde expansion, `#` is not a comment; quotes group words.
    assert_eq!(
        out.stdout,
        r#"a  b|c "d"|$HOME|~|#x|"#.to_string() + "\n",
        "{out}"
    );

    // What a command prints on standard error is a warning; --quiet hides output, not the
    // exit code.
    let out = sb
        .aa()
        .args([
            "--command-after-backup",
            "sh -c 'echo out; echo oops >&2'",
            "s",
        ])
        .run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.error_lines(), ["aa: Warning! [s] oops"]);
    let out = sb
        .aa()
        .args([
            "-q",
            "--command-after-backup",
            "sh -c 'echo out; echo oops >&2'",
            "s",
        ])
        .run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out}");

    let out = sb
        .aa()
        .args(["--command-before-backup", "echo 'unclosed", "s"])
        .run();
    out.assert_clean_failure();
    assert!(out.stderr.contains("no closing quotation"), "{out}");
}

//! The status line of a running backup: drawn on a terminal (here the pseudo-terminal of
//! `script(1)`), counting stored objects and naming the current one, cleared at the end;
//! never drawn without a terminal, with `--quiet` or with `--verbose`.

mod app_support;

use std::process::Command;

use aa_tests::*;
use app_support::*;

/// Runs `aa ARGS k` on a pseudo-terminal and returns everything it wrote there.
fn on_a_terminal(sb: &Sandbox, args: &str) -> String {
    let command = format!(
        "{} --user-config-dir {} --archive-specs-dir {} {args} k",
        aa_bin().display(),
        sb.config_dir().display(),
        sb.specs_dir().display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("HOME", sb.path().join("home"))
        .current_dir(sb.path())
        .output()
        .expect("script(1) from util-linux runs a command on a pseudo-terminal");
    assert!(out.status.success(), "{command}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_backup_on_a_terminal_shows_a_status_line_and_clears_it() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "k", "");

    let shown = on_a_terminal(&sb, "");
    assert!(shown.contains("[k] "), "{shown:?}");
    assert!(shown.contains(" stored  d/b.txt"), "{shown:?}");
    // Cleared at the end: the last thing written erases the line.
    assert!(shown.ends_with("\r\x1b[2K"), "{shown:?}");
    assert!(sb.dest_dir().join("k.tar.gz").is_file());

    for quiet_or_verbose in ["-q", "-v"] {
        let shown = on_a_terminal(&sb, quiet_or_verbose);
        assert!(!shown.contains(" stored "), "{quiet_or_verbose}: {shown:?}");
    }
    // Without a terminal (pipes, cron): nothing of it.
    let out = sb.aa().arg("k").run();
    out.assert_success();
    assert!(!out.stderr.contains("stored"), "{out}");
}

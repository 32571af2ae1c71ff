//! The status line of a running backup: drawn on a terminal (here the pseudo-terminal of
//! `script(1)`), counting stored objects and bytes, with the rate, the totals and an ETA for a
//! full backup (no ETA for an incremental level), naming the current one, cleared at the end;
//! never drawn without a terminal, with `--quiet`, with `--verbose` or under `--json`.

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

/// The status lines drawn (the text between carriage returns and erasures).
fn drawn(shown: &str) -> Vec<&str> {
    shown
        .split(['\r', '\n'])
        .map(|l| l.trim_start_matches("\x1b[2K").trim_end())
        .filter(|l| l.contains("[k] "))
        .collect()
}

#[test]
fn a_backup_on_a_terminal_shows_a_status_line_and_clears_it() {
    let sb = Sandbox::new();
    small_source(&sb);
    std::fs::write(sb.src_dir().join("d/big.bin"), vec![1u8; 5000]).unwrap();
    write_spec(&sb, "k", "");

    let shown = on_a_terminal(&sb, "");
    let lines = drawn(&shown);
    // Files done of the total (a.txt, d, d/b.txt, d/big.bin), bytes of the total (decimal
    // units, as the rest of aa), the rate and the ETA, then the current name.
    let last = lines
        .iter()
        .rfind(|l| l.contains("d/b.txt") || l.contains("d/big.bin"))
        .unwrap_or_else(|| panic!("{shown:?}"));
    assert!(last.contains(" files, "), "{last:?}");
    assert!(last.contains("/4 files"), "{last:?}");
    assert!(last.contains("/5.00 kB, "), "{last:?}");
    assert!(last.contains("/s, ETA "), "{last:?}");
    // Cleared at the end: the last thing written erases the line.
    assert!(shown.ends_with("\r\x1b[2K"), "{shown:?}");
    assert!(sb.dest_dir().join("k.tar.gz").is_file());

    for quiet_verbose_or_json in ["-q", "-v", "--json"] {
        let shown = on_a_terminal(&sb, quiet_verbose_or_json);
        assert!(
            !shown.contains(" files, "),
            "{quiet_verbose_or_json}: {shown:?}"
        );
    }
    // Without a terminal (pipes, cron): nothing of it.
    let out = sb.aa().arg("k").run();
    out.assert_success();
    assert!(!out.stderr.contains("files"), "{out}");
}

/// An incremental level stores what changed, which no count beforehand tells: bytes, files
/// and rate, but no total and no ETA.
#[test]
fn an_incremental_level_has_no_eta() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "k", "incremental = yes");
    let level0 = on_a_terminal(&sb, "");
    assert!(level0.contains("ETA"), "{level0:?}");
    std::fs::write(sb.src_dir().join("d/new.txt"), "new\n").unwrap();
    let shown = on_a_terminal(&sb, "");
    let lines = drawn(&shown);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" files, ") && l.contains("B/s")),
        "{shown:?}"
    );
    assert!(!shown.contains("ETA"), "{shown:?}");
    assert!(sb.dest_dir().join("k.1.tar.gz").is_file());
}

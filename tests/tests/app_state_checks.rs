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
fn state(sb: &Sandbox) -> Snapshot {
    without(&snapshot(sb.path()), b"config/locks")
}

#[test]
fn a_name_that_is_not_a_file_name_is_refused_before_anything_is_written() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "good", "");
    let victim = sb.path().join("victim.lock");
    fs::write(&victim, "precious\n").unwrap();
    for (spec, name) in [("up", "../../victim"), ("deep", "a/b/c"), ("dots", "..")] {
        let text = spec_text(&sb, "").replacen(
            "[Content]\n",
            &format!("[Content]\nname = {name}\n"),
            1,
        );
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

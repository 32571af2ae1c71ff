//! The `aa-conformance` command line: the report format, filtering and exit codes.

mod common;

use std::process::Command;

use common::builtin_plugin;

fn run(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aa-conformance"))
        .args(args)
        .output()
        .expect("run aa-conformance");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn filtered_run_prints_one_line_per_check_and_the_summary() {
    let lib = builtin_plugin("aa_plugin_tar_internal");
    let (code, stdout, stderr) = run(&[
        "--filter".as_ref(),
        "TarGz/backup-file-name".as_ref(),
        lib.as_os_str(),
    ]);
    assert_eq!(
        stdout, "ok   TarInternal/TarGz/backup-file-name-and-format\n1 passed, 0 failed\n",
        "stderr: {stderr}"
    );
    assert_eq!(code, Some(0));
}

#[test]
fn plugin_dir_is_searched_and_an_unloadable_library_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("libbroken.so"), b"not a library").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored: not a .so").unwrap();
    std::fs::copy(
        builtin_plugin("aa_plugin_tar_internal"),
        dir.path().join("libaa_plugin_tar_internal.so"),
    )
    .unwrap();
    let (code, stdout, _) = run(&[
        "--filter".as_ref(),
        "Tar/nothing-to-backup".as_ref(),
        "--plugin-dir".as_ref(),
        dir.path().as_os_str(),
    ]);
    // Libraries of a directory are tested in name order.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0], "ok   TarInternal/Tar/nothing-to-backup");
    assert!(
        lines[1].starts_with("FAIL ") && lines[1].contains("libbroken.so: not a shared library"),
        "{stdout}"
    );
    assert_eq!(lines[2], "1 passed, 1 failed");
    assert_eq!(code, Some(1));
}

#[test]
fn no_library_is_a_usage_error() {
    let (code, stdout, stderr) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(stdout.is_empty());
    assert!(stderr.contains("no provider library given"), "{stderr}");
}

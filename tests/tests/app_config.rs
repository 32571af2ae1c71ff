//! Configuration files and option priority: system file < user file < command line < `.aa`
//! file < `--force-*`, `--no-*` beating its positive form, `--user-config-file`, and the
//! errors a configuration file can have.

mod app_support;

use std::fs;
use std::path::PathBuf;

use aa_tests::*;
use app_support::*;

/// The system configuration file of the sandbox (passed through `AA_SYSTEM_CONFIG_FILE`).
fn system_conf(sb: &Sandbox) -> PathBuf {
    sb.path().join("system-aa.conf")
}

fn aa(sb: &Sandbox) -> Aa {
    sb.aa().env("AA_SYSTEM_CONFIG_FILE", system_conf(sb))
}

/// A spec without `dest-dir`, so that the configuration decides where backups go.
fn bare_spec(sb: &Sandbox, name: &str, archive: &str) {
    sb.write_spec_text(
        name,
        &format!(
            "[Content]\npath = {}\ninclude-files = a.txt\nexclude-files =\n[Archive]\n{archive}\n",
            sb.src_dir().display()
        ),
    );
}

#[test]
fn each_source_overrides_the_one_below() {
    let sb = Sandbox::new();
    small_source(&sb);
    fs::write(
        system_conf(&sb),
        format!(
            "[Archive]\narchiver = tarbz2\ndest-dir = {}\n",
            sb.dest_dir().display()
        ),
    )
    .unwrap();
    bare_spec(&sb, "p", "");

    aa(&sb).arg("p").run().assert_success();
    assert_eq!(dest_files(&sb), ["p.tar.bz2"]);

    fs::write(
        sb.config_dir().join("aa.conf"),
        "[Archive]\narchiver = tarxz\n",
    )
    .unwrap();
    aa(&sb).arg("p").run().assert_success();
    assert!(dest_files(&sb).contains(&"p.tar.xz".to_string()));

    aa(&sb).args(["-a", "tar", "p"]).run().assert_success();
    assert!(dest_files(&sb).contains(&"p.tar".to_string()));

    bare_spec(&sb, "p", "archiver = targz");
    aa(&sb).args(["-a", "tar", "p"]).run().assert_success();
    assert!(dest_files(&sb).contains(&"p.tar.gz".to_string()));

    aa(&sb)
        .args(["-a", "tar", "--force-archiver", "tarzst", "p"])
        .run()
        .assert_success();
    assert_eq!(
        dest_files(&sb),
        ["p.tar", "p.tar.bz2", "p.tar.gz", "p.tar.xz", "p.tar.zst"]
    );
    assert_eq!(detect_format(&sb.dest_dir().join("p.tar.zst")), "zst");

    // A force option in a configuration file also beats the spec.
    fs::write(
        sb.config_dir().join("aa.conf"),
        "[Archive]\nforce-archiver = tar\n",
    )
    .unwrap();
    fs::remove_file(sb.dest_dir().join("p.tar")).unwrap();
    aa(&sb).arg("p").run().assert_success();
    assert!(dest_files(&sb).contains(&"p.tar".to_string()));
}

#[test]
fn negations_beat_positive_forms_and_paths_expand_tilde() {
    let sb = Sandbox::new();
    small_source(&sb);
    let home_backups = sb.path().join("home/backups");
    fs::create_dir_all(&home_backups).unwrap();
    fs::write(
        sb.config_dir().join("aa.conf"),
        "[Archive]\ndest-dir = ~/backups\nincremental = yes\n",
    )
    .unwrap();
    bare_spec(&sb, "n", "incremental = yes");

    aa(&sb).arg("n").run().assert_success();
    aa(&sb)
        .args(["--no-incremental", "n"])
        .run()
        .assert_success();
    // The second run made a full backup: no level 1, no second snapshot.
    assert_eq!(aa_tests::dir_names(&home_backups), ["n.tar.gz"]);
    assert_eq!(snapshots(&sb), ["n.snar"]);

    aa(&sb)
        .args(["--no-incremental", "--force-incremental", "n"])
        .run()
        .assert_success();
    assert_eq!(
        aa_tests::dir_names(&home_backups),
        ["n.1.tar.gz", "n.tar.gz"]
    );
}

#[test]
fn user_config_file_option() {
    let sb = Sandbox::new();
    small_source(&sb);
    bare_spec(&sb, "u", "");
    let other = sb.path().join("other.conf");
    fs::write(
        &other,
        format!(
            "[Archive]\narchiver = tar\ndest-dir = {}\n",
            sb.dest_dir().display()
        ),
    )
    .unwrap();
    // The default user file is not read when another one is given.
    fs::write(
        sb.config_dir().join("aa.conf"),
        "[Archive]\narchiver = tarxz\n",
    )
    .unwrap();
    aa(&sb)
        .arg("--user-config-file")
        .arg(&other)
        .arg("u")
        .run()
        .assert_success();
    assert_eq!(dest_files(&sb), ["u.tar"]);

    // A missing file is an error (the original only warned and went on without it).
    let out = aa(&sb)
        .arg("--user-config-file")
        .arg(sb.path().join("missing.conf"))
        .arg("u")
        .run();
    out.assert_clean_failure();
    assert!(out.stderr.contains("missing.conf"), "{out}");
    assert_eq!(dest_files(&sb), ["u.tar"]);
}

#[test]
fn the_system_file_can_move_the_user_configuration_directory() {
    let sb = Sandbox::new();
    small_source(&sb);
    let user_dir = sb.path().join("elsewhere");
    fs::write(
        system_conf(&sb),
        format!("[General]\nuser-config-dir = {}\n", user_dir.display()),
    )
    .unwrap();
    fs::create_dir_all(&user_dir).unwrap();
    fs::write(
        user_dir.join("aa.conf"),
        format!(
            "[Archive]\narchiver = tar\ndest-dir = {}\n",
            sb.dest_dir().display()
        ),
    )
    .unwrap();
    bare_spec(&sb, "s", "incremental = yes");
    // Without --user-config-dir (the sandbox's aa() passes one, so build the command here).
    let out = Command::new(aa_bin())
        .arg("--archive-specs-dir")
        .arg(sb.specs_dir())
        .arg("s")
        .env("AA_SYSTEM_CONFIG_FILE", system_conf(&sb))
        .env("HOME", sb.path().join("home"))
        .env_remove("AA_PLUGIN_PATH")
        .current_dir(sb.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dest_files(&sb), ["s.tar"]);
    assert!(user_dir.join("snapshots/s.snar").is_file());
    // The storage directory was created there, and announced.
    assert!(user_dir.join("storage").is_dir());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Storage directory does not exist"));
}

use std::process::Command;

#[test]
fn bad_configuration_files_are_fatal_errors_naming_file_and_option() {
    let sb = Sandbox::new();
    small_source(&sb);
    bare_spec(&sb, "b", &format!("dest-dir = {}", sb.dest_dir().display()));
    let cases: &[(&str, &str)] = &[
        ("[Archive]\nno-such-option = 1\n", "no-such-option"),
        ("[Archive]\nlevel = 1\n", "level"),
        ("[Archive]\nno-incremental = yes\n", "no-incremental"),
        ("[General]\nuser-config-dir = /tmp\n", "user-config-dir"),
        ("[Archive]\nnumber-of-old-backups = many\n", "many"),
        ("[Archive]\narchiver = zip\n", "zip"),
        ("[Other]\n", "[Other]"),
        ("no section header\n", "aa.conf"),
    ];
    for (content, needle) in cases {
        fs::write(sb.config_dir().join("aa.conf"), content).unwrap();
        let out = aa(&sb).arg("b").run();
        out.assert_no_panic();
        // As the original's fatal errors: exit code 2, nothing done.
        assert_eq!(out.code(), Some(2), "{content:?}:\n{out}");
        let lines = out.error_lines();
        assert_eq!(lines.len(), 1, "{content:?}:\n{out}");
        assert!(
            lines[0].starts_with("aa: Fatal Error! ") && lines[0].contains(needle),
            "{content:?}:\n{out}"
        );
        assert!(lines[0].contains("aa.conf"), "the file is named:\n{out}");
        assert!(dest_files(&sb).is_empty());
    }
    // user-config-dir is fine in the system file, level is not.
    fs::remove_file(sb.config_dir().join("aa.conf")).unwrap();
    fs::write(system_conf(&sb), "[Archive]\nlevel = 1\n").unwrap();
    assert_eq!(aa(&sb).arg("b").run().code(), Some(2));
}

#[test]
fn quiet_in_a_configuration_file_beats_verbose_on_the_command_line() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "q", "");
    fs::write(sb.config_dir().join("aa.conf"), "[General]\nquiet = yes\n").unwrap();
    let out = aa(&sb).args(["-v", "q"]).run();
    out.assert_success();
    assert!(out.stdout.is_empty(), "{out}");
    fs::write(sb.config_dir().join("aa.conf"), "[General]\nverbose = 1\n").unwrap();
    let out = aa(&sb).arg("q").run();
    out.assert_success();
    assert!(out.stdout.contains("Processing \"q\"..."), "{out}");
}

//! Failed runs: the previous backup survives, no `._partial` file is left behind, and the user
//! gets a one-line `aa: ` error naming what is wrong instead of a panic.

use std::fs;

use aa_tests::*;

const OLD: &[u8] = b"the previous backup\n";

#[test]
fn missing_source_directory_keeps_the_old_backup() {
    for (archiver, file) in [("targz", "data.tar.gz"), ("tarxz_internal", "data.tar.xz")] {
        let sb = Sandbox::new();
        let missing = sb.path().join("no-such-dir");
        sb.write_spec("data", &Spec::new(&missing, &["tree"], &sb.dest_dir()));
        fs::write(sb.dest_dir().join(file), OLD).unwrap();

        let out = sb.aa().args(["-a", archiver, "data"]).run();
        out.assert_clean_failure();
        assert!(
            out.stderr.contains(&missing.display().to_string()),
            "the error should name the missing directory:\n{out}"
        );
        assert_eq!(fs::read(sb.dest_dir().join(file)).unwrap(), OLD, "{out}");
        assert_eq!(dir_names(&sb.dest_dir()), [file], "{out}");
    }
}

/// The backup is written completely, then cannot be renamed over the old one (here a
/// directory): the run fails, the partial file is removed and the old one is untouched.
#[test]
fn failure_after_writing_removes_the_partial_file() {
    for (archiver, file) in [("tar", "data.tar"), ("tar_internal", "data.tar")] {
        let sb = Sandbox::new();
        simple_fixture(&sb.src_dir());
        sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));
        let blocker = sb.dest_dir().join(file);
        fs::create_dir(&blocker).unwrap();
        fs::write(blocker.join("keep.txt"), OLD).unwrap();

        let out = sb.aa().args(["-a", archiver, "data"]).run();
        out.assert_clean_failure();
        assert_eq!(
            dir_names(&sb.dest_dir()),
            [file],
            "{archiver} left files:\n{out}"
        );
        assert_eq!(fs::read(blocker.join("keep.txt")).unwrap(), OLD);
    }
}

/// A strength out of range reaches the provider layer through the `.aa` file (the command
/// line refuses it before any provider runs, see below): the provider side refuses it with
/// one line and the old backup is untouched.
#[test]
fn invalid_compression_level_keeps_the_old_backup() {
    let sb = Sandbox::new();
    simple_fixture(&sb.src_dir());
    let spec = Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()).render();
    sb.write_spec_text("data", &format!("{spec}compression-level = 42\n"));
    // Made beforehand, so that its one-time announcement is not among the error lines.
    fs::create_dir_all(sb.config_dir().join("storage")).unwrap();
    fs::write(sb.dest_dir().join("data.tar.gz"), OLD).unwrap();

    for archiver in ["targz", "targz_internal"] {
        let out = sb.aa().args(["-a", archiver, "data"]).run();
        out.assert_clean_failure();
        assert_eq!(
            out.error_lines(),
            [
                "aa: Error! [data] Unable to create the backup: Compression strength value 42 \
              is out of the interval 0..9."
            ],
            "{archiver}:\n{out}"
        );
        assert_eq!(fs::read(sb.dest_dir().join("data.tar.gz")).unwrap(), OLD);
        assert_eq!(dir_names(&sb.dest_dir()), ["data.tar.gz"], "{out}");
    }
}

/// `-c 42` is a usage error of the command line (exit 2, naming the value); nothing runs.
#[test]
fn invalid_compression_level_on_the_command_line_is_a_usage_error() {
    let sb = Sandbox::new();
    simple_fixture(&sb.src_dir());
    sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));
    fs::write(sb.dest_dir().join("data.tar.gz"), OLD).unwrap();
    let out = sb.aa().args(["-c", "42", "data"]).run();
    out.assert_no_panic();
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("'42'") && out.stderr.contains("--compression-level"),
        "the error should name the option and show the value:\n{out}"
    );
    assert_eq!(fs::read(sb.dest_dir().join("data.tar.gz")).unwrap(), OLD);
    assert_eq!(dir_names(&sb.dest_dir()), ["data.tar.gz"], "{out}");
}

#[test]
fn successful_run_replaces_the_old_backup() {
    for archiver in ["targz", "targz_internal"] {
        let sb = Sandbox::new();
        let expected = record_tree(&simple_fixture(&sb.src_dir()));
        sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));
        let archive = sb.dest_dir().join("data.tar.gz");
        fs::write(&archive, OLD).unwrap();

        let out = sb.aa().args(["-a", archiver, "data"]).run();
        out.assert_success();
        assert_eq!(dir_names(&sb.dest_dir()), ["data.tar.gz"], "{out}");
        let restored = sb.mkdir("restored");
        gnu_extract(&archive, &restored);
        assert_same_tree(
            &expected,
            &record_tree(&restored.join("tree")),
            Compare::default(),
            archiver,
        );
    }
}

#[test]
fn overwrite_at_start_still_produces_a_complete_backup() {
    let sb = Sandbox::new();
    let expected = record_tree(&simple_fixture(&sb.src_dir()));
    sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));
    let archive = sb.dest_dir().join("data.tar.bz2");
    fs::write(&archive, OLD).unwrap();

    let out = sb
        .aa()
        .args(["--overwrite-at-start", "-a", "tarbz2_internal", "data"])
        .run();
    out.assert_success();
    assert_eq!(dir_names(&sb.dest_dir()), ["data.tar.bz2"], "{out}");
    let restored = sb.mkdir("restored");
    gnu_extract(&archive, &restored);
    assert_same_tree(
        &expected,
        &record_tree(&restored.join("tree")),
        Compare::default(),
        "overwrite at start",
    );
}

#[test]
fn spec_without_path_gives_one_line_naming_file_and_option() {
    let sb = Sandbox::new();
    let mut spec = Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir());
    spec.path = None;
    sb.write_spec("nopath", &spec);

    let out = sb.aa().arg("nopath").run();
    out.assert_clean_failure();
    let lines = out.error_lines();
    let naming: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("nopath.aa") && l.contains("path"))
        .collect();
    assert_eq!(
        naming.len(),
        1,
        "expected one error line naming nopath.aa and the `path` option:\n{out}"
    );
    assert!(dir_names(&sb.dest_dir()).is_empty(), "{out}");
}

#[test]
fn malformed_spec_file_is_reported_by_name() {
    let sb = Sandbox::new();
    sb.write_spec_text("broken", "this is not\x01 an ini file\n[Content\npath\n");
    let out = sb.aa().arg("broken").run();
    out.assert_clean_failure();
    assert!(
        out.error_lines().iter().any(|l| l.contains("broken.aa")),
        "the error should name broken.aa:\n{out}"
    );
}

#[test]
fn unknown_spec_name_is_reported() {
    let sb = Sandbox::new();
    let out = sb.aa().arg("nosuchspec").run();
    out.assert_clean_failure();
    assert!(
        out.error_lines().iter().any(|l| l.contains("nosuchspec")),
        "{out}"
    );
}

#[test]
fn unknown_archivers_are_rejected_without_creating_files() {
    let sb = Sandbox::new();
    simple_fixture(&sb.src_dir());
    sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));

    for archiver in [
        "zip",
        "tar@NoSuchProvider",
        "targz@",
        "@TarInternal",
        "tarlz4@TarInternal",
    ] {
        let out = sb.aa().args(["-a", archiver, "data"]).run();
        out.assert_no_panic();
        assert_ne!(out.code(), Some(0), "{archiver} accepted:\n{out}");
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with("aa: ") || l.starts_with("error:")),
            "{archiver}: no error message:\n{out}"
        );
        assert!(dir_names(&sb.dest_dir()).is_empty(), "{archiver}:\n{out}");
    }

    // The same names in the spec file are a configuration error: exit code 1.
    let spec = Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()).archiver("tar@NoSuchProvider");
    sb.write_spec("badarchiver", &spec);
    let out = sb.aa().arg("badarchiver").run();
    out.assert_clean_failure();
    assert!(
        out.error_lines()
            .iter()
            .any(|l| l.to_ascii_lowercase().contains("nosuchprovider")),
        "the error should name the provider:\n{out}"
    );
    assert!(dir_names(&sb.dest_dir()).is_empty(), "{out}");
}

/// A destination directory that does not exist is one line naming the option, with either
/// provider (GNU tar would otherwise report three lines about a `._partial` file).
#[test]
fn missing_destination_is_one_line_naming_the_option() {
    for archiver in ["targz", "targz_internal"] {
        let sb = Sandbox::new();
        simple_fixture(&sb.src_dir());
        let missing = sb.path().join("no-such-dest");
        sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &missing));

        let out = sb.aa().args(["-a", archiver, "data"]).run();
        out.assert_clean_failure();
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("Error!"))
            .collect();
        assert_eq!(errors.len(), 1, "{archiver}:\n{out}");
        assert!(
            errors[0].contains(&format!(
                "Directory \"{}\" configured in the \"dest-dir\" option does not exist.",
                missing.display()
            )),
            "{archiver}:\n{out}"
        );
        assert!(!missing.exists());
    }
}

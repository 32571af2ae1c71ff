//! Selecting archives on the command line (`AA_SPEC` names and paths, `--all`), the message
//! format with the archive label, verbosity and exit codes.

mod app_support;

use std::fs;

use aa_tests::*;
use app_support::*;

#[test]
fn specs_by_name_by_path_and_all() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "one", "");
    write_spec(&sb, "two", "");
    let outside = sb.mkdir("elsewhere").join("three.aa");
    fs::write(&outside, spec_text(&sb, "")).unwrap();

    let out = sb.aa().arg("-v").arg(&outside).arg("one").run();
    out.assert_success();
    // Names first, then paths, as the original.
    let processing: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("Processing"))
        .collect();
    assert_eq!(
        processing,
        [
            "Processing \"one\"...".to_string(),
            format!("Processing \"{}\"...", outside.display())
        ]
    );
    assert_eq!(dest_files(&sb), ["one.tar.gz", "three.tar.gz"]);

    fs::remove_dir_all(sb.dest_dir()).unwrap();
    fs::create_dir(sb.dest_dir()).unwrap();
    sb.aa().arg("--all").run().assert_success();
    assert_eq!(dest_files(&sb), ["one.tar.gz", "two.tar.gz"]);
    // --no-all beats --all: without AA_SPEC that is an error.
    let out = sb.aa().args(["--all", "--no-all"]).run();
    out.assert_clean_failure();
    assert!(
        out.stderr.contains("No archive specification given"),
        "{out}"
    );
}

#[test]
fn each_archive_reports_on_its_own_line_and_the_others_go_ahead() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "good", "");
    sb.write_spec_text("nopath", "[Content]\ninclude-files = a\nexclude-files =\n");
    write_spec(&sb, "badvalue", "restart-after-level = ten");
    let elsewhere = sb.mkdir("some/long/directory/name");
    let by_path = elsewhere.join("missing.aa");
    let out = sb
        .aa()
        .args(["nopath", "good", "badvalue", "nosuch"])
        .arg(&by_path)
        .run();
    out.assert_clean_failure();
    assert_eq!(dest_files(&sb), ["good.tar.gz"]);
    let lines = out.error_lines();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("aa: Error! [nopath] ") && lines[0].contains("path"));
    assert!(lines[1].starts_with("aa: Error! [badvalue] ") && lines[1].contains(":8:"));
    assert!(lines[2].starts_with("aa: Error! [nosuch] ") && lines[2].contains("nosuch.aa"));
    // A path label keeps the file name and shortens the directory, as the original.
    assert!(lines[3].starts_with("aa: Error! ["), "{out}");
    assert!(
        lines[3].contains("~") && lines[3].contains("/missing.aa] "),
        "{out}"
    );
}

#[test]
fn warnings_make_the_exit_code_1_even_when_quiet() {
    let sb = Sandbox::new();
    small_source(&sb);
    sb.write_spec_text(
        "w",
        &format!(
            "[Content]\npath = {}\ninclude-files = a.txt missing*\nexclude-files =\n[Archive]\ndest-dir = {}\narchiver = tar\ncompression-level = 5\n",
            sb.src_dir().display(),
            sb.dest_dir().display()
        ),
    );
    let out = sb.aa().arg("w").run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(
        out.error_lines(),
        [
            "aa: Warning! [w] Option \"compression-level\" is not supported by the archiver of type \"tar\".",
            "aa: Warning! [w] Cannot access \"missing*\". No such file or directory."
        ]
    );
    assert_eq!(dest_files(&sb), ["w.tar"]);
    let out = sb.aa().args(["--qui", "w"]).run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.is_empty() && out.stdout.is_empty(), "{out}");

    // Verbose: the files added and the summary.
    let out = sb.aa().args(["-v", "--archiver", "tar", "w"]).run();
    assert!(out.stdout.contains("\na.txt\n"), "{out}");
    assert!(
        out.stdout.ends_with(
            "\nBackup creation completed successfully. One or more warnings were shown. Check program's output for details.\n"
        ),
        "{out}"
    );
}

#[test]
fn bad_command_line_values_are_usage_errors() {
    let sb = Sandbox::new();
    for args in [
        &["-c", "10", "x"][..],
        &["-a", "zip", "x"],
        &["--level", "one", "x"],
        &["--list", "--purge"],
        &["--no-such-option"],
    ] {
        let out = sb.aa().args(args).run();
        out.assert_no_panic();
        assert_eq!(out.code(), Some(2), "{args:?}:\n{out}");
    }
}

#[test]
fn state_directories_are_created_and_announced() {
    let sb = Sandbox::new();
    small_source(&sb);
    let user_dir = sb.path().join("fresh");
    let out = std::process::Command::new(aa_bin())
        .arg("--user-config-dir")
        .arg(&user_dir)
        .arg("--list")
        .env("HOME", sb.path().join("home"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // An empty specifications directory is a warning for --list.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("aa: Warning! No configured archive specification files were found."));
    assert!(user_dir.join("archive_specs").is_dir());
    assert!(user_dir.join("storage").is_dir());
    assert!(
        stderr.contains("User configuration directory does not exist. Creating"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Storage directory does not exist. Creating"),
        "{stderr}"
    );
    // The specifications directory inside a just-created user directory is not announced.
    assert!(
        !stderr.contains("Archive specifications directory"),
        "{stderr}"
    );
    // Once they exist, nothing more is announced.
    let out = std::process::Command::new(aa_bin())
        .arg("--user-config-dir")
        .arg(&user_dir)
        .arg("--list")
        .env("HOME", sb.path().join("home"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "aa: Warning! No configured archive specification files were found.\n"
    );
}

/// `--generate` (hidden, for `make install` and packagers): the manual page and completion
/// scripts come from the parser's own definition, so they name every option `aa` takes.
#[test]
fn generate_writes_the_manual_and_completions() {
    let sb = Sandbox::new();
    let run = |what: &str| {
        let out = sb.aa().args(["--generate", what]).run();
        out.assert_success();
        assert!(out.stderr.is_empty(), "{out}");
        out.stdout
    };
    let man = run("man");
    assert!(man.contains(".TH aa 1"), "{man}");
    for option in [
        "keep\\-old\\-backups",
        "restart\\-after\\-level",
        "plugin\\-dir",
    ] {
        assert!(man.contains(option), "the manual lacks {option}");
    }
    // The manual a user learns from: the option list and the manual's own sections.
    for section in [
        ".SH \"DESCRIPTION\"",
        ".SH \"ARCHIVE SPECIFICATION FILES\"",
        ".SS \"[External] (optional)\"",
        ".SH \"CONFIGURATION\"",
        ".SH \"JSON OUTPUT\"",
        ".SH \"EXIT STATUS\"",
        ".SH \"ENVIRONMENT\"",
        ".SH \"FILES\"",
        ".SH \"EXAMPLES\"",
    ] {
        assert!(man.contains(section), "the manual lacks {section}");
    }
    assert!(man.contains("\\fBAA_PLUGIN_PATH\\fR"), "{man}");
    assert!(man.contains("\\fB%(key)s\\fR"), "{man}");

    // The exit status table: the same statuses and words in the manual page, --help and the
    // README (all three are rendered from docs/manual.txt).
    let man_table: Vec<(String, String)> = man
        .split(".SH \"EXIT STATUS\"")
        .nth(1)
        .expect("an EXIT STATUS section")
        .split(".SH")
        .next()
        .unwrap()
        .split(".TP\n")
        .skip(1)
        .map(|item| {
            let (status, meaning) = item.split_once('\n').unwrap();
            let unroff = |t: &str| {
                t.replace("\\fB", "")
                    .replace("\\fR", "")
                    .replace("\\-", "-")
                    .trim()
                    .to_string()
            };
            (unroff(status), unroff(meaning))
        })
        .collect();
    let statuses: Vec<&str> = man_table.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses, ["0", "1", "2", "128+N"]);
    let readme = fs::read_to_string(workspace_dir().join("README.md")).unwrap();
    let readme_table: Vec<(String, String)> = readme
        .split("| status | when |\n|---|---|\n")
        .nth(1)
        .expect("the README's exit status table")
        .lines()
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
            (
                cells[0].trim().to_string(),
                cells[1].trim().replace('`', ""),
            )
        })
        .collect();
    assert_eq!(readme_table, man_table);
    let help = sb.aa().arg("--help").run();
    let mut help_table: Vec<(String, String)> = Vec::new();
    let help_block = help.stdout.split("Exit status:\n").nth(1).unwrap();
    for line in help_block.lines().take_while(|l| !l.is_empty()) {
        let status = line[..9].trim();
        let words = line[9..].trim();
        if status.is_empty() {
            let last = help_table.last_mut().unwrap();
            last.1 = format!("{} {words}", last.1);
        } else {
            help_table.push((status.to_string(), words.to_string()));
        }
    }
    assert_eq!(help_table, man_table);
    assert!(run("bash").contains("--keep-old-backups"));
    assert!(run("zsh").contains("--list-providers"));
    assert!(run("fish").contains("restart-after-level"));
    // Hidden from the help, and nothing else is done: no configuration directory appears.
    let help = sb.aa().arg("--help").run();
    assert!(!help.stdout.contains("--generate"), "{help}");
    assert!(!sb.config_dir().join("storage").exists());
    let bad = sb.aa().args(["--generate", "word"]).run();
    assert_eq!(bad.status.code(), Some(2), "{bad}");
}

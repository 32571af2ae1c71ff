//! `aa --restore`: what the host itself decides before and around the provider's restore
//! (the command line, the chain, the target, the choice of provider and its message, the
//! summary and the exit status), and `--list-providers` showing capabilities.
//!
//! Where the outcome depends on whether a loaded provider has the restore capability, the test
//! asks `--list-providers` and checks the outcome of that case: the restored tree equal to the
//! source, or the one-line error naming the type and what each provider lacks. The
//! cross-provider correctness of restores is `restore_matrix.rs`'s.

mod app_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use aa_tests::*;
use app_support::*;

/// Each loaded provider's capabilities, from `aa --list-providers` (with `extra` arguments).
fn capabilities(sb: &Sandbox, extra: &[&std::ffi::OsStr]) -> BTreeMap<String, Vec<String>> {
    let out = sb.aa().arg("--list-providers").args(extra).run();
    out.assert_success();
    let mut found = BTreeMap::new();
    let mut current = None;
    for line in out.stdout.lines() {
        if !line.starts_with(' ') {
            current = line.split_whitespace().next().map(str::to_string);
        } else if let Some(list) = line.trim().strip_prefix("capabilities: ") {
            let names = if list.starts_with('-') {
                Vec::new()
            } else {
                list.split(", ").map(str::to_string).collect()
            };
            found.insert(current.clone().expect("a provider line first"), names);
        }
    }
    found
}

fn can(caps: &BTreeMap<String, Vec<String>>, provider: &str, capability: &str) -> bool {
    caps.get(provider)
        .is_some_and(|c| c.iter().any(|n| n == capability))
}

fn target(sb: &Sandbox) -> PathBuf {
    sb.path().join("restored")
}

/// `src/` as the archive sees it (`a.txt` and `d`).
fn source_record(sb: &Sandbox) -> TreeRecord {
    let mut record = record_tree(&sb.src_dir());
    record.retain(|path, _| !path.is_empty());
    record
}

fn restored_record(dir: &Path) -> TreeRecord {
    let mut record = record_tree(dir);
    record.retain(|path, _| !path.is_empty());
    record
}

#[test]
fn list_providers_shows_each_providers_capabilities() {
    let sb = Sandbox::new();
    let plugins = sb.mkdir("plugins");
    fs::copy(
        build_hello_provider(),
        plugins.join("libaa_hello_provider.so"),
    )
    .unwrap();
    let caps = capabilities(&sb, &["--plugin-dir".as_ref(), plugins.as_os_str()]);
    // Every provider has the line; the example plugin, built on ABI 1.0 alone, has none.
    for provider in ["TarExternal", "TarInternal", "Hello"] {
        assert!(caps.contains_key(provider), "{caps:?}");
    }
    assert_eq!(caps["Hello"], Vec::<String>::new());
    for names in caps.values() {
        for name in names {
            assert!(
                ["restore_v1", "verify_v1", "dry_run_v1", "backup_to_sink_v1"]
                    .contains(&name.as_str()),
                "{caps:?}"
            );
        }
    }
}

#[test]
fn bad_option_combinations_are_usage_errors_naming_the_option() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "home", "");
    let cases: [(&[&str], &str); 8] = [
        (&["--restore", "home"], "--target"),
        (&["--target", "t", "home"], "--restore"),
        (&["--only", "a.txt", "home"], "--restore"),
        (&["--overwrite", "home"], "--restore"),
        (&["--keeping-id", "aa", "home"], "--restore|--verify"),
        (&["--compare", "home"], "--verify"),
        (
            &["--restore", "--verify", "--target", "t", "home"],
            "--verify",
        ),
        (&["--restore", "--all", "--target", "t"], "--all"),
    ];
    for (args, option) in cases {
        let out = sb.aa().args(args).run();
        out.assert_no_panic();
        assert_eq!(out.code(), Some(2), "{args:?}: {out}");
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.contains(option) || out.stderr.contains(option),
            "{args:?}: {out}"
        );
    }
    assert!(dest_files(&sb).is_empty());
    assert!(!sb.path().join("t").exists());
}

#[test]
fn no_backup_at_all_is_an_error_and_no_target_is_created() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "home", "incremental = yes");
    let out = sb
        .aa()
        .args(["--restore", "home", "--target"])
        .arg(target(&sb))
        .run();
    out.assert_clean_failure();
    let lines = out.error_lines();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with("aa: Error! [home] Unable to restore: no backup of \"home\" in \"")
            && lines[0].contains("home.tar.gz"),
        "{out}"
    );
    assert!(!target(&sb).exists());
}

#[test]
fn one_archive_and_a_keeping_id_that_is_one() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "home", "");
    write_spec(&sb, "work", "");
    sb.aa().arg("home").run().assert_success();
    let restore = |args: &[&str]| {
        sb.aa()
            .arg("--restore")
            .args(args)
            .arg("--target")
            .arg(target(&sb))
            .run()
    };
    let out = restore(&["home", "work"]);
    out.assert_clean_failure();
    assert_eq!(
        out.error_lines(),
        ["aa: Error! --restore works on one archive; 2 were given."]
    );
    let out = restore(&["home", "--keeping-id", "a1"]);
    out.assert_clean_failure();
    assert!(
        out.stderr
            .contains("--keeping-id \"a1\" is not a keeping ID (two letters, aa to zz)"),
        "{out}"
    );
    let out = restore(&["home", "--keeping-id", "aa"]);
    out.assert_clean_failure();
    assert!(
        out.stderr
            .contains("no kept backup with keeping ID \"aa\" of \"home\""),
        "{out}"
    );
    let out = restore(&["home", "--only", "../etc"]);
    out.assert_clean_failure();
    assert!(
        out.stderr
            .contains("--only \"../etc\": must not contain \"..\""),
        "{out}"
    );
    let out = restore(&["home", "--level", "-1"]);
    out.assert_clean_failure();
    assert!(
        out.stderr.contains("--level -1: a level is 0 or more."),
        "{out}"
    );
    assert!(!target(&sb).exists());
}

#[test]
fn a_target_that_is_not_empty_is_refused_without_overwrite() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "home", "");
    sb.aa().arg("home").run().assert_success();
    let target = target(&sb);
    fs::create_dir(&target).unwrap();
    fs::write(target.join("mine.txt"), "keep me\n").unwrap();
    let out = sb
        .aa()
        .args(["--restore", "home", "--target"])
        .arg(&target)
        .run();
    out.assert_clean_failure();
    assert_eq!(
        out.error_lines(),
        [format!(
            "aa: Error! [home] Unable to restore: --target \"{}\" is not empty; give \
             --overwrite to restore into it anyway.",
            target.display()
        )]
    );
    assert_eq!(dir_names(&target), ["mine.txt"]);
    assert_eq!(read(&target.join("mine.txt")), "keep me\n");

    let missing_parent = sb.path().join("nope/deeper");
    let out = sb
        .aa()
        .args(["--restore", "home", "--target"])
        .arg(&missing_parent)
        .run();
    out.assert_clean_failure();
    assert!(
        out.stderr.contains("its parent directory") && out.stderr.contains("does not exist"),
        "{out}"
    );
    assert!(!sb.path().join("nope").exists());

    // With --overwrite the host lets the provider in.
    let caps = capabilities(&sb, &[]);
    let out = sb
        .aa()
        .args(["--restore", "home", "--overwrite", "--target"])
        .arg(&target)
        .run();
    if can(&caps, "TarExternal", "restore_v1") || can(&caps, "TarInternal", "restore_v1") {
        out.assert_success();
        assert_eq!(read(&target.join("a.txt")), "a\n");
        assert_eq!(read(&target.join("d/b.txt")), "b\n");
    } else {
        out.assert_clean_failure();
        assert!(
            out.stderr.contains(
                "no loaded provider can restore TarGz backups (TarExternal lacks restore_v1; \
                 TarInternal lacks restore_v1)"
            ),
            "{out}"
        );
    }
}

/// Three levels of `home`, `a.txt` changing each time.
fn three_levels(sb: &Sandbox, archiver: &str) {
    small_source(sb);
    write_spec(
        sb,
        "home",
        &format!("incremental = yes\narchiver = {archiver}"),
    );
    for run in 0..3 {
        fs::write(sb.src_dir().join("a.txt"), format!("run {run}\n")).unwrap();
        settle_timestamps();
        sb.aa().arg("home").run().assert_success();
    }
}

fn a_missing_level_is_named_and_nothing_is_restored(archiver: &str) {
    let sb = Sandbox::new();
    three_levels(&sb, archiver);
    let ext = "tar.gz";
    assert_eq!(
        dest_files(&sb),
        [
            format!("home.1.{ext}"),
            format!("home.2.{ext}"),
            format!("home.{ext}")
        ]
    );
    let out = sb
        .aa()
        .args(["--restore", "home", "--level", "5", "--target"])
        .arg(target(&sb))
        .run();
    out.assert_clean_failure();
    assert!(
        out.stderr
            .contains("--level 5: the chain has no level above 2"),
        "{out}"
    );
    let missing = sb.dest_dir().join(format!("home.1.{ext}"));
    fs::remove_file(&missing).unwrap();
    let out = sb
        .aa()
        .args(["--restore", "home", "--target"])
        .arg(target(&sb))
        .run();
    out.assert_clean_failure();
    assert_eq!(
        out.error_lines(),
        [format!(
            "aa: Error! [home] Unable to restore: the backup file \"{}\" of level 1 is \
             missing: the chain 0..2 is incomplete, nothing was restored",
            missing.display()
        )]
    );
    assert!(!target(&sb).exists());
}

fn the_chain_is_restored_by_a_capable_provider_and_said(archiver: &str) {
    let sb = Sandbox::new();
    three_levels(&sb, archiver);
    // A deletion between levels: the restore must not bring it back.
    fs::remove_file(sb.src_dir().join("d/b.txt")).unwrap();
    fs::write(sb.src_dir().join("d/c.txt"), "c\n").unwrap();
    settle_timestamps();
    sb.aa().arg("home").run().assert_success();
    let own = if archiver.ends_with("_internal") {
        "TarInternal"
    } else {
        "TarExternal"
    };
    let caps = capabilities(&sb, &[]);
    let out = sb
        .aa()
        .args(["--restore", "home", "-v", "--target"])
        .arg(target(&sb))
        .run();
    if can(&caps, own, "restore_v1") {
        out.assert_success();
        assert!(
            out.stdout
                .contains(&format!("[home] Restoring with {own}.\n")),
            "{out}"
        );
        assert!(
            out.stdout.contains(&format!(
                "from 4 backups into \"{}\".",
                target(&sb).display()
            )),
            "{out}"
        );
        assert!(out.stdout.lines().any(|l| l == "d/c.txt"), "{out}");
        assert_same_tree(
            &source_record(&sb),
            &restored_record(&target(&sb)),
            Compare::default(),
            "restored chain",
        );
    } else if ["TarExternal", "TarInternal"]
        .iter()
        .any(|p| can(&caps, p, "restore_v1"))
    {
        out.assert_success();
        assert!(
            out.stdout
                .contains(&format!("({own}, the archive's provider, cannot).")),
            "{out}"
        );
        assert_same_tree(
            &source_record(&sb),
            &restored_record(&target(&sb)),
            Compare::default(),
            "restored chain by another provider",
        );
    } else {
        out.assert_clean_failure();
        assert!(
            out.stderr
                .contains("no loaded provider can restore TarGz backups"),
            "{out}"
        );
        assert!(!target(&sb).exists());
    }
}

with_both_providers!(
    a_missing_level_is_named_and_nothing_is_restored,
    the_chain_is_restored_by_a_capable_provider_and_said
);

#[test]
fn another_provider_restores_when_the_archives_cannot_and_it_is_said() {
    let sb = Sandbox::new();
    let plugins = sb.mkdir("plugins");
    fs::copy(
        build_hello_provider(),
        plugins.join("libaa_hello_provider.so"),
    )
    .unwrap();
    small_source(&sb);
    write_spec(&sb, "home", "archiver = tar@Hello");
    let with_plugins = |aa: Aa| aa.arg("--plugin-dir").arg(&plugins);
    with_plugins(sb.aa()).arg("home").run().assert_success();
    assert_eq!(dest_files(&sb), ["home.tar"]);
    let caps = capabilities(&sb, &["--plugin-dir".as_ref(), plugins.as_os_str()]);
    let out = with_plugins(sb.aa())
        .args(["--restore", "home", "--target"])
        .arg(target(&sb))
        .run();
    // Loading order: the built-in providers beside `aa`, then --plugin-dir.
    let capable = ["TarExternal", "TarInternal"]
        .into_iter()
        .find(|p| can(&caps, p, "restore_v1"));
    match capable {
        Some(provider) => {
            out.assert_success();
            assert!(
                out.stdout.contains(&format!(
                    "[home] Restoring with {provider} (Hello, the archive's provider, cannot).\n"
                )),
                "{out}"
            );
            assert_same_tree(
                &source_record(&sb),
                &restored_record(&target(&sb)),
                Compare::default(),
                "restored by another provider",
            );
        }
        None => {
            out.assert_clean_failure();
            assert_eq!(
                out.error_lines(),
                [
                    "aa: Error! [home] Unable to restore: no loaded provider can restore Tar \
                  backups (Hello lacks restore_v1; TarExternal lacks restore_v1; TarInternal \
                  lacks restore_v1)"
                ]
            );
            assert!(!target(&sb).exists());
        }
    }
}

#[test]
fn level_and_only_select_what_is_restored() {
    let sb = Sandbox::new();
    three_levels(&sb, "targz_internal");
    let caps = capabilities(&sb, &[]);
    let out = sb
        .aa()
        .args([
            "--restore",
            "home",
            "--level",
            "1",
            "--only",
            "./a.txt",
            "--target",
        ])
        .arg(target(&sb))
        .run();
    if !["TarExternal", "TarInternal"]
        .iter()
        .any(|p| can(&caps, p, "restore_v1"))
    {
        out.assert_clean_failure();
        return;
    }
    out.assert_success();
    assert!(out.stdout.contains("from 2 backups into"), "{out}");
    // Level 1 held `run 1`; `d` was not asked for.
    assert_eq!(dir_names(&target(&sb)), ["a.txt"]);
    assert_eq!(read(&target(&sb).join("a.txt")), "run 1\n");
}

//! A backup killed midway, with no chance to clean up (SIGKILL to `aa` and everything it
//! started, as a power cut would stop them), loses nothing: the backups and the state of the
//! chain are byte-identical to before the run; the next run removes what the killed one left
//! (its `._partial` backup and its snapshot working file) and continues the chain, which then
//! restores the source with GNU tar. With each provider, on a redo of level 0, the run that
//! would otherwise replace the most.

mod app_support;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use aa_abi::naming::partial_of;
use aa_tests::*;
use app_support::*;
use rustix::process::{kill_process, Pid, Signal};

/// Everything under `dir` but the lock files, whose content names the last process.
fn state(dir: &std::path::Path) -> TreeRecord {
    without(&record_tree(dir), b"locks")
}

fn is_leftover(name: &[u8]) -> bool {
    partial_of(name).is_some() || name.starts_with(b"snapshots/.working-")
}

fn killed_level_0_redo_loses_nothing(archiver: &str, ext: &str) {
    let sb = Sandbox::new();
    big_source(&sb);
    write_spec(&sb, "k", "incremental = yes");
    let run = |extra: &[&str]| {
        let out = sb.aa().args(["-a", archiver]).args(extra).arg("k").run();
        out.assert_success();
    };
    run(&[]);
    fs::write(sb.src_dir().join("a.txt"), "a, level 1\n").unwrap();
    run(&[]);
    let backups = [format!("k.1.{ext}"), format!("k.{ext}")];
    assert_eq!(dest_files(&sb), backups);
    let dest_before = record_tree(&sb.dest_dir());
    let config_before = state(&sb.config_dir());

    let (mut child, _) = started_writing(
        &sb,
        &["-a", archiver, "-c", "9", "--level", "0", "k"],
        &format!("k.{ext}"),
    );
    kill_group(&child);
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{archiver}: the run finished before it was killed; the tree is too small"
    );

    // Nothing was lost or changed; only leftovers were added.
    let leftovers = |snap: &TreeRecord| -> Vec<String> {
        snap.keys()
            .filter(|k| is_leftover(k))
            .map(|k| show(k))
            .collect()
    };
    let dest_after = record_tree(&sb.dest_dir());
    let config_after = state(&sb.config_dir());
    assert!(
        !leftovers(&dest_after).is_empty(),
        "{archiver}: the kill left no partial backup, so it came too late"
    );
    // Adding a leftover changes its directory's time; everything else must be as it was.
    let without_leftovers = |snap: TreeRecord| -> TreeRecord {
        snap.into_iter()
            .filter(|(k, _)| !is_leftover(k))
            .map(|(k, mut e)| {
                if e.kind == Kind::Dir {
                    (e.mtime_secs, e.mtime_nanos) = (0, 0);
                }
                (k, e)
            })
            .collect()
    };
    assert_same_tree(
        &without_leftovers(dest_before),
        &without_leftovers(dest_after),
        Compare::default(),
        &format!("{archiver}: backups after the kill"),
    );
    assert_same_tree(
        &without_leftovers(config_before),
        &without_leftovers(config_after),
        Compare::default(),
        &format!("{archiver}: snapshots and realms after the kill"),
    );

    // The next run continues the chain and cleans up.
    fs::write(sb.src_dir().join("d/b.txt"), "b, level 2\n").unwrap();
    run(&[]);
    assert_eq!(
        leftovers(&record_tree(&sb.dest_dir())),
        Vec::<String>::new(),
        "{archiver}"
    );
    assert_eq!(
        leftovers(&state(&sb.config_dir())),
        Vec::<String>::new(),
        "{archiver}"
    );
    assert_eq!(
        dest_files(&sb),
        [
            format!("k.1.{ext}"),
            format!("k.2.{ext}"),
            format!("k.{ext}")
        ]
    );
    let chain: Vec<PathBuf> = ["k", "k.1", "k.2"]
        .iter()
        .map(|n| sb.dest_dir().join(format!("{n}.{ext}")))
        .collect();
    let restored = sb.path().join("restored");
    restore(&chain, &restored);
    let mut expected = record_tree(&sb.src_dir());
    let mut got = record_tree(&restored);
    for snap in [&mut expected, &mut got] {
        // Directory times are not restored exactly by an incremental chain.
        snap.values_mut()
            .filter(|e| e.kind == Kind::Dir)
            .for_each(|e| (e.mtime_secs, e.mtime_nanos) = (0, 0));
    }
    assert_same_tree(&expected, &got, Compare::default(), archiver);
}

#[test]
fn tar_internal_killed_midway_loses_nothing() {
    killed_level_0_redo_loses_nothing("targz_internal", "tar.gz");
}

#[test]
fn tar_external_killed_midway_loses_nothing() {
    killed_level_0_redo_loses_nothing("targz", "tar.gz");
}

/// Ctrl-C (here SIGINT to `aa` alone, as `kill -INT` sends it) during a backup: `aa` removes
/// the unfinished `._partial` file itself and exits with 130; the previous backup is untouched.
fn interrupted_run_removes_its_unfinished_backup(archiver: &str, ext: &str) {
    let sb = Sandbox::new();
    big_source(&sb);
    write_spec(&sb, "k", "");
    let out = sb.aa().args(["-a", archiver, "k"]).run();
    out.assert_success();
    // The destination directory's own time changes with the partial file; its content not.
    let backups = || {
        let mut state = record_tree(&sb.dest_dir());
        state.remove(&b""[..]);
        state
    };
    let before = backups();

    let (mut child, partial) =
        started_writing(&sb, &["-a", archiver, "-c", "9", "k"], &format!("k.{ext}"));
    kill_process(Pid::from_child(&child), Signal::INT).unwrap();
    let status = child.wait().unwrap();
    kill_group(&child);
    assert_eq!(status.code(), Some(130), "{archiver}: {status:?}");
    assert!(!partial.exists(), "{archiver}: the partial file is left");
    assert_same_tree(
        &before,
        &backups(),
        Compare::default(),
        &format!("{archiver}: backups after the interrupt"),
    );
}

#[test]
fn tar_internal_interrupted_removes_its_unfinished_backup() {
    interrupted_run_removes_its_unfinished_backup("targz_internal", "tar.gz");
}

#[test]
fn tar_external_interrupted_removes_its_unfinished_backup() {
    interrupted_run_removes_its_unfinished_backup("targz", "tar.gz");
}

/// What `aa` starts keeps the default handling of Ctrl-C: the signals are neither blocked nor
/// ignored in a hook (so a terminal's Ctrl-C stops it as always). Blocking the signals in `aa`,
/// the other way to take them, would have been inherited by every child.
#[test]
fn hooks_keep_the_default_signal_handling() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "h",
        "command-before-backup = grep -E '^Sig(Blk|Ign):' /proc/self/status",
    );
    let out = sb.aa().arg("h").run();
    out.assert_success();
    let masks: Vec<u64> = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .filter_map(|line| {
            let at = line.find("SigBlk:").or_else(|| line.find("SigIgn:"))?;
            let hex = line[at + 7..].trim();
            Some(u64::from_str_radix(hex, 16).unwrap())
        })
        .collect();
    assert_eq!(masks.len(), 2, "{out}");
    for mask in masks {
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            assert_eq!(mask & (1 << (signal - 1)), 0, "{out}");
        }
    }
}

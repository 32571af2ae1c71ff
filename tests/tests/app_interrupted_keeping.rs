//! A run stopped while it keeps old backups, and runs of one archive from two machines.
//!
//! With `keep-old-backups` the old backups are renamed before the new one is written (the
//! oldest to a `-removing` name). A run stopped by SIGINT or SIGTERM puts them back before it
//! exits; one killed outright (a power cut) is undone by the next run, which says so, and every
//! later run keeps as usual. Two runs writing one backup (two configuration directories, so
//! two locks, one destination) never touch each other's partial file; the last to finish
//! wins, and the file at the final name is always a complete backup. With each provider.

mod app_support;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use aa_tests::*;
use app_support::*;
use rustix::process::{kill_process, Pid, Signal};

const KEEP_TWO: &str = "keep-old-backups = yes\nnumber-of-old-backups = 2";

/// The `run N` marker inside a backup.
fn run_of(sb: &Sandbox, file: &str) -> String {
    let dir = sb.path().join(format!("x-{file}"));
    let _ = fs::remove_dir_all(&dir);
    gnu_extract(&sb.dest_dir().join(file), &dir);
    read(&dir.join("a.txt")).trim().to_string()
}

/// A backup whose content says which run made it.
fn backup_run(sb: &Sandbox, archiver: &str, n: usize) -> AaOutput {
    fs::write(sb.src_dir().join("a.txt"), format!("run {n}\n")).unwrap();
    let out = sb.aa().args(["-a", archiver, "k"]).run();
    out.assert_no_panic();
    out
}

/// `k.EXT` (run 3), `k.aa.EXT` (run 2) and `k.ab.EXT` (run 1), of the small source.
fn three_kept(archiver: &str, ext: &str) -> Sandbox {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "k", KEEP_TWO);
    for n in 1..=3 {
        backup_run(&sb, archiver, n).assert_success();
    }
    assert_eq!(dest_files(&sb), kept_names(ext));
    sb
}

fn kept_names(ext: &str) -> [String; 3] {
    [
        format!("k.aa.{ext}"),
        format!("k.ab.{ext}"),
        format!("k.{ext}"),
    ]
}

/// The runs whose backups are current, `aa` and `ab`.
fn kept_runs(sb: &Sandbox, ext: &str) -> [String; 3] {
    ["k", "k.aa", "k.ab"].map(|n| run_of(sb, &format!("{n}.{ext}")))
}

/// The destination's content (its own times change with the partial file).
fn backups(sb: &Sandbox) -> TreeRecord {
    let mut state = record_tree(&sb.dest_dir());
    state.remove(&b""[..]);
    state
}

/// Starts run 4, of the big source at a high compression, so it is far from done when the
/// test stops it; the big files go once it is stopped.
fn start_run_4(sb: &Sandbox, archiver: &str, ext: &str) -> (std::process::Child, PathBuf) {
    fs::write(sb.src_dir().join("a.txt"), "run 4\n").unwrap();
    big_files(sb);
    started_writing(sb, &["-a", archiver, "-c", "9", "k"], &format!("k.{ext}"))
}

fn remove_big_files(sb: &Sandbox) {
    for i in 0..3 {
        fs::remove_file(sb.src_dir().join(format!("d/big-{i}.txt"))).unwrap();
    }
}

fn interrupted_keeping_is_undone(archiver: &str, ext: &str) {
    let sb = three_kept(archiver, ext);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let before = backups(&sb);
        let (mut child, partial) = start_run_4(&sb, archiver, ext);
        // `aa` alone (GNU tar keeps running meanwhile).
        let named = Signal::from_named_raw(signal).expect("a named signal");
        kill_process(Pid::from_child(&child), named).unwrap();
        let status = child.wait().unwrap();
        kill_group(&child);
        remove_big_files(&sb);
        assert_eq!(status.code(), Some(128 + signal), "{archiver}: {status:?}");
        assert!(!partial.exists(), "{archiver}: the partial file is left");
        assert_same_tree(
            &before,
            &backups(&sb),
            Compare::default(),
            &format!("{archiver}: backups after signal {signal}"),
        );
    }
    assert_eq!(kept_runs(&sb, ext), ["run 3", "run 2", "run 1"]);
    // And keeping goes on as before.
    backup_run(&sb, archiver, 5).assert_success();
    assert_eq!(dest_files(&sb), kept_names(ext));
    assert_eq!(kept_runs(&sb, ext), ["run 5", "run 3", "run 2"]);
}

#[test]
fn tar_internal_interrupted_keeping_is_undone() {
    interrupted_keeping_is_undone("targz_internal", "tar.gz");
}

#[test]
fn tar_external_interrupted_keeping_is_undone() {
    interrupted_keeping_is_undone("targz", "tar.gz");
}

fn killed_keeping_is_undone_by_the_next_run(archiver: &str, ext: &str) {
    let sb = three_kept(archiver, ext);
    let (mut child, partial) = start_run_4(&sb, archiver, ext);
    kill_group(&child);
    let status = child.wait().unwrap();
    remove_big_files(&sb);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{archiver}");
    // Killed between keeping and committing.
    assert!(
        !sb.dest_dir().join(format!("k.{ext}")).exists(),
        "{archiver}"
    );
    assert!(
        sb.dest_dir().join(format!("k.ab-removing.{ext}")).exists(),
        "{archiver}"
    );
    assert!(partial.exists(), "{archiver}");

    let out = backup_run(&sb, archiver, 5);
    out.assert_success();
    assert!(
        out.stdout.starts_with(
            "[k] Recovered from an interrupted run: restored the old backups renamed for \
             keeping.\n[k] Keeping already existing backups.\n"
        ),
        "{archiver}: {out}"
    );
    // The killed run's partial file was abandoned: removed.
    assert_eq!(dest_files(&sb), kept_names(ext), "{archiver}");
    assert_eq!(kept_runs(&sb, ext), ["run 5", "run 3", "run 2"]);
    for n in 6..=8 {
        let out = backup_run(&sb, archiver, n);
        out.assert_success();
        assert!(!out.stdout.contains("Recovered"), "{archiver}: {out}");
        assert_eq!(dest_files(&sb), kept_names(ext), "{archiver}");
        let runs = [n, n - 1, n - 2].map(|r| format!("run {}", if r == 4 { 3 } else { r }));
        assert_eq!(kept_runs(&sb, ext), runs, "{archiver}");
    }
    assert!(
        dir_names(&sb.config_dir().join("journal")).is_empty(),
        "{archiver}"
    );
}

#[test]
fn tar_internal_killed_keeping_is_undone_by_the_next_run() {
    killed_keeping_is_undone_by_the_next_run("targz_internal", "tar.gz");
}

#[test]
fn tar_external_killed_keeping_is_undone_by_the_next_run() {
    killed_keeping_is_undone_by_the_next_run("targz", "tar.gz");
}

/// Machine A is writing the backup (stopped meanwhile, so machine B's whole run falls inside
/// A's); B's run, under its own lock, leaves A's partial file alone and completes; A then
/// completes too, and its backup, the last moved into place, is the one at the final name.
fn two_machines_leave_each_other_alone(archiver: &str, ext: &str) {
    let sb = Sandbox::new();
    big_source(&sb);
    write_spec(&sb, "k", "");
    fs::write(sb.src_dir().join("a.txt"), "machine A\n").unwrap();
    // B backs up its own small tree into A's destination.
    let machine_b = Sandbox::new();
    small_source(&machine_b);
    fs::write(machine_b.src_dir().join("a.txt"), "machine B\n").unwrap();
    let b_spec = spec_text(&machine_b, "").replace(
        &machine_b.dest_dir().display().to_string(),
        &sb.dest_dir().display().to_string(),
    );
    machine_b.write_spec_text("k", &b_spec);
    let final_name = format!("k.{ext}");

    let (mut a, a_partial) = started_writing(&sb, &["-a", archiver, "-c", "9", "k"], &final_name);
    stop_group(&a);
    let a_written = fs::metadata(&a_partial).unwrap().len();

    let out = machine_b.aa().args(["-a", archiver, "k"]).run();
    out.assert_success();
    assert!(
        fs::metadata(&a_partial).is_ok_and(|m| m.len() == a_written),
        "{archiver}: machine B touched A's partial file"
    );
    assert_eq!(run_of(&sb, &final_name), "machine B");

    signal_group(&a, Signal::CONT);
    let status = a.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{archiver}: {status:?}");
    assert_eq!(dest_files(&sb), std::slice::from_ref(&final_name));
    // The whole backup: every big file with its last line.
    let restored = sb.path().join("restored");
    gnu_extract(&sb.dest_dir().join(&final_name), &restored);
    assert_eq!(read(&restored.join("a.txt")), "machine A\n");
    for i in 0..3 {
        let big = read(&restored.join(format!("d/big-{i}.txt")));
        assert!(big.ends_with(&format!("file {i}\n")), "{archiver}");
    }
}

#[test]
fn tar_internal_two_machines_leave_each_other_alone() {
    two_machines_leave_each_other_alone("targz_internal", "tar.gz");
}

#[test]
fn tar_external_two_machines_leave_each_other_alone() {
    two_machines_leave_each_other_alone("targz", "tar.gz");
}

/// With `overwrite-at-start` the new backup is written in place, at the name the current
/// backup was kept from: an interrupt removes the half-written file and restores the rest.
fn interrupted_keeping_in_place_is_undone(archiver: &str, ext: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "k", &format!("{KEEP_TWO}\noverwrite-at-start = yes"));
    for n in 1..=3 {
        backup_run(&sb, archiver, n).assert_success();
    }
    let before = backups(&sb);
    fs::write(sb.src_dir().join("a.txt"), "run 4\n").unwrap();
    big_files(&sb);
    let mut child = sb.aa().args(["-a", archiver, "-c", "9", "k"]).spawn();
    // Kept (the oldest set aside), and writing the new backup in place: only then are the
    // four names there at once.
    let mut all = kept_names(ext).to_vec();
    all.push(format!("k.ab-removing.{ext}"));
    all.sort();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while dest_files(&sb) != all {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{archiver}: ended early"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{archiver}: never wrote"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    kill_process(Pid::from_child(&child), Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    kill_group(&child);
    remove_big_files(&sb);
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{archiver}");
    assert_same_tree(
        &before,
        &backups(&sb),
        Compare::default(),
        &format!("{archiver}: backups after the interrupt"),
    );
}

#[test]
fn tar_internal_interrupted_keeping_in_place_is_undone() {
    interrupted_keeping_in_place_is_undone("targz_internal", "tar.gz");
}

#[test]
fn tar_external_interrupted_keeping_in_place_is_undone() {
    interrupted_keeping_in_place_is_undone("targz", "tar.gz");
}

/// An incremental chain is kept as a whole: a killed redo of level 0 that had moved the kept
/// chain aside (every level) is undone by the next run, level by level.
fn killed_keeping_of_a_chain_is_undone(archiver: &str, ext: &str) {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(
        &sb,
        "k",
        "incremental = yes\nkeep-old-backups = yes\nnumber-of-old-backups = 1",
    );
    let run = |n: usize, extra: &[&str]| {
        fs::write(sb.src_dir().join("a.txt"), format!("run {n}\n")).unwrap();
        settle_timestamps();
        let out = sb.aa().args(["-a", archiver]).args(extra).arg("k").run();
        out.assert_success();
        out
    };
    run(1, &[]);
    run(2, &[]);
    run(3, &["--level", "0"]);
    run(4, &[]);
    let chain = |keep: &str| [format!("k.1{keep}.{ext}"), format!("k{keep}.{ext}")];
    let mut names = [chain(".aa"), chain("")].concat();
    names.sort();
    assert_eq!(dest_files(&sb), names);

    fs::write(sb.src_dir().join("a.txt"), "run 5\n").unwrap();
    big_files(&sb);
    let (mut child, _) = started_writing(
        &sb,
        &["-a", archiver, "-c", "9", "--level", "0", "k"],
        &format!("k.{ext}"),
    );
    kill_group(&child);
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    remove_big_files(&sb);
    assert!(
        sb.dest_dir()
            .join(format!("k.1.aa-removing.{ext}"))
            .exists(),
        "{archiver}: {:?}",
        dest_files(&sb)
    );

    let out = run(6, &["--level", "0"]);
    assert!(
        out.stdout
            .starts_with("[k] Recovered from an interrupted run: restored the old backups"),
        "{archiver}: {out}"
    );
    // Recovered to the state before, then kept as usual: run 3's chain is now `aa`.
    let mut names = chain(".aa").to_vec();
    names.push(format!("k.{ext}"));
    names.sort();
    assert_eq!(dest_files(&sb), names, "{archiver}");
    assert_eq!(run_of(&sb, &format!("k.aa.{ext}")), "run 3");
    assert_eq!(run_of(&sb, &format!("k.1.aa.{ext}")), "run 4");
    assert_eq!(run_of(&sb, &format!("k.{ext}")), "run 6");
}

#[test]
fn tar_internal_killed_keeping_of_a_chain_is_undone() {
    killed_keeping_of_a_chain_is_undone("targz_internal", "tar.gz");
}

#[test]
fn tar_external_killed_keeping_of_a_chain_is_undone() {
    killed_keeping_of_a_chain_is_undone("targz", "tar.gz");
}

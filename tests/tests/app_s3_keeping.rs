//! Keeping old backups in an object store (`dest-dir = s3://bkp/host`, on moto): the kept
//! backups are the objects `home.aa.tar.gz`, `home.ab.tar.gz`..., renamed by server-side copy
//! and delete; an incremental chain is kept as a whole; obsolete levels are removed; a dry run
//! shows the plan with the objects' names; a failed or stopped run gives every kept backup
//! back (its own signal handling, or the next run from the keeping journal, which opens the
//! store again); `--purge` touches only the local state.
//!
//! Runs are stopped at a known point without racing them, with the fault injector
//! (tests/faults/shim.c): its `pause` mode blocks the source read for good once the keeping is
//! done, its `netreset` mode fails one send of the upload.

mod app_support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use aa_host::destination::Store;
use aa_tests::faults::injector;
use aa_tests::{Moto, Sandbox};
use app_support::moto_store;
use rustix::process::{kill_process, Pid, Signal};

const BUCKET: &str = "bkp";
const MIB: usize = 1 << 20;

fn aa(sb: &Sandbox) -> aa_tests::Aa {
    sb.aa()
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
}

/// A server with the bucket, a sandbox whose `a.txt` is the only source file, and archive
/// `home` with `options` backing up to `s3://bkp/host` as `.tar.gz`.
fn setup(options: &str) -> Option<(Moto, Sandbox)> {
    let moto = Moto::start()?;
    moto.create_bucket(BUCKET);
    let sb = Sandbox::new();
    fs::create_dir_all(sb.config_dir().join("storage")).unwrap();
    fs::create_dir_all(sb.src_dir()).unwrap();
    spec(&sb, &moto, "home", options);
    Some((moto, sb))
}

fn spec(sb: &Sandbox, moto: &Moto, name: &str, options: &str) {
    sb.write_spec_text(
        name,
        &format!(
            "[Content]\npath = {}\ninclude-files = *\nexclude-files =\n\n[Archive]\n\
             archiver = targz@TarInternal\ndest-dir = s3://{BUCKET}/host\ns3-endpoint = {}\n\
             {options}\n",
            sb.src_dir().display(),
            moto.endpoint()
        ),
    );
}

fn store(moto: &Moto) -> Store {
    moto_store(moto, &format!("s3://{BUCKET}/host"))
}

/// Every object under the prefix with its bytes.
fn objects(moto: &Moto) -> BTreeMap<String, Vec<u8>> {
    let store = store(moto);
    store
        .list()
        .unwrap()
        .into_iter()
        .map(|o| {
            let mut bytes = Vec::new();
            store
                .reader(&o.name)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            (o.name, bytes)
        })
        .collect()
}

fn names(moto: &Moto) -> Vec<String> {
    objects(moto).into_keys().collect()
}

/// What `a.txt` says in the backup `name`, extracted by GNU tar.
fn run_in(sb: &Sandbox, moto: &Moto, name: &str) -> String {
    let bytes = objects(moto)
        .remove(name)
        .unwrap_or_else(|| panic!("no object {name}"));
    let dir = sb.path().join(format!("x-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let mut tar = std::process::Command::new("tar")
        .args(["--gzip", "-xf", "-", "-C"])
        .arg(&dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tar.stdin.take().unwrap().write_all(&bytes).unwrap();
    assert!(tar.wait().unwrap().success(), "GNU tar extracts {name}");
    fs::read_to_string(dir.join("a.txt"))
        .unwrap()
        .trim()
        .to_string()
}

/// Backs up `home` with `a.txt` saying `run N`; its whole output.
fn backup(sb: &Sandbox, n: usize, args: &[&str]) -> String {
    fs::write(sb.src_dir().join("a.txt"), format!("run {n}\n")).unwrap();
    let out = aa(sb).args(args).arg("home").run();
    out.assert_success();
    out.all_output()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn kept_backups_shift_in_the_bucket_and_the_oldest_goes() {
    let Some((moto, sb)) = setup("keep-old-backups = yes\nnumber-of-old-backups = 2") else {
        return;
    };
    backup(&sb, 1, &[]);
    assert_eq!(names(&moto), ["home.tar.gz"]);
    let out = backup(&sb, 2, &[]);
    assert!(out.contains("Keeping already existing backups."), "{out}");
    assert_eq!(names(&moto), ["home.aa.tar.gz", "home.tar.gz"]);
    backup(&sb, 3, &[]);
    let kept = strings(&["home.aa.tar.gz", "home.ab.tar.gz", "home.tar.gz"]);
    assert_eq!(names(&moto), kept);
    let runs = |sb: &Sandbox| {
        kept.iter()
            .map(|n| run_in(sb, &moto, n))
            .collect::<Vec<_>>()
    };
    assert_eq!(runs(&sb), ["run 2", "run 1", "run 3"]);
    let out = backup(&sb, 4, &[]);
    assert!(
        out.contains("Removing kept backup with keeping ID \"ab\"."),
        "{out}"
    );
    assert_eq!(names(&moto), kept);
    assert_eq!(runs(&sb), ["run 3", "run 2", "run 4"]);
    assert_eq!(moto.pending_uploads(BUCKET), Vec::<String>::new());
}

#[test]
fn an_incremental_chain_is_kept_whole_and_obsolete_levels_are_removed() {
    let Some((moto, sb)) = setup(
        "incremental = yes\nkeep-old-backups = yes\nnumber-of-old-backups = 1\n\
         remove-obsolete-backups = yes",
    ) else {
        return;
    };
    for n in 0..3 {
        backup(&sb, n, &[]);
    }
    assert_eq!(
        names(&moto),
        ["home.1.tar.gz", "home.2.tar.gz", "home.tar.gz"]
    );
    // Level 0 again: the whole chain is kept.
    backup(&sb, 3, &["-l", "0"]);
    assert_eq!(
        names(&moto),
        [
            "home.1.aa.tar.gz",
            "home.2.aa.tar.gz",
            "home.aa.tar.gz",
            "home.tar.gz"
        ]
    );
    let run = |name: &str| run_in(&sb, &moto, name);
    assert_eq!(
        [
            run("home.aa.tar.gz"),
            run("home.1.aa.tar.gz"),
            run("home.2.aa.tar.gz"),
            run("home.tar.gz")
        ],
        ["run 0", "run 1", "run 2", "run 3"]
    );
    backup(&sb, 4, &[]);
    // Again: the kept chain of three levels goes as a whole, the current one is kept.
    let out = backup(&sb, 5, &["-l", "0"]);
    assert!(
        out.contains("Removing kept incremental backup with keeping ID \"aa\"."),
        "{out}"
    );
    assert_eq!(
        names(&moto),
        ["home.1.aa.tar.gz", "home.aa.tar.gz", "home.tar.gz"]
    );
    assert_eq!(
        [
            run("home.aa.tar.gz"),
            run("home.1.aa.tar.gz"),
            run("home.tar.gz")
        ],
        ["run 3", "run 4", "run 5"]
    );

    // Without keeping: the levels above the one made are removed.
    spec(
        &sb,
        &moto,
        "home",
        "incremental = yes\nremove-obsolete-backups = yes",
    );
    backup(&sb, 6, &[]);
    backup(&sb, 7, &[]);
    assert!(names(&moto).contains(&"home.2.tar.gz".to_string()));
    backup(&sb, 8, &["-l", "1"]);
    assert_eq!(
        names(&moto),
        [
            "home.1.aa.tar.gz",
            "home.1.tar.gz",
            "home.aa.tar.gz",
            "home.tar.gz"
        ]
    );
    assert_eq!(run("home.1.tar.gz"), "run 8");
}

#[test]
fn a_dry_run_shows_the_plan_with_the_objects_names() {
    let Some((moto, sb)) = setup("keep-old-backups = yes\nnumber-of-old-backups = 1") else {
        return;
    };
    backup(&sb, 1, &[]);
    backup(&sb, 2, &[]);
    let before = objects(&moto);
    let out = aa(&sb).args(["--dry-run", "home"]).run();
    let text = out.all_output();
    for line in [
        format!("Backup file \"s3://{BUCKET}/host/home.tar.gz\" (replacing the existing one) (not incremental)."),
        "Would remove \"home.aa.tar.gz\" (the oldest kept backup), once the new one exists.".into(),
        "Would rename \"home.tar.gz\" to \"home.aa.tar.gz\".".into(),
    ] {
        assert!(text.contains(&line), "no {line:?} in:\n{text}");
    }
    assert!(objects(&moto) == before, "the dry run changed the bucket");
}

/// A source the upload of which is several parts (6 MiB that do not compress), so that the
/// run can be stopped or failed in the middle of it.
fn big_source(sb: &Sandbox) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..6 * MIB)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(sb.src_dir().join("big"), noise).unwrap();
}

/// Three backups (`run 1` to `run 3`) kept with number 2, then the big source added.
fn three_kept() -> Option<(Moto, Sandbox, BTreeMap<String, Vec<u8>>)> {
    let (moto, sb) = setup("keep-old-backups = yes\nnumber-of-old-backups = 2")?;
    for n in 1..=3 {
        backup(&sb, n, &[]);
    }
    let before = objects(&moto);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["home.aa.tar.gz", "home.ab.tar.gz", "home.tar.gz"]
    );
    big_source(&sb);
    fs::write(sb.src_dir().join("a.txt"), "run 4\n").unwrap();
    Some((moto, sb, before))
}

#[test]
fn a_failed_upload_gives_every_kept_backup_back() {
    let Some((moto, sb, before)) = three_kept() else {
        return;
    };
    let log = sb.path().join("faults.log");
    // The keeping's requests are small: the send that passes 2 MiB is the upload's.
    let out = aa(&sb)
        .env("LD_PRELOAD", injector())
        .env("AA_FAULT_OP", "netreset")
        .env("AA_FAULT_ERRNO", "104")
        .env("AA_FAULT_AFTER", (2 * MIB).to_string())
        .env("AA_FAULT_ONLY", "aa")
        .env("AA_FAULT_LOG", &log)
        .arg("home")
        .run();
    out.assert_no_panic();
    assert_eq!(out.code(), Some(1), "{}", out.all_output());
    assert!(log.exists(), "the connection was never reset");
    assert!(objects(&moto) == before, "{}", out.all_output());
    assert_eq!(moto.pending_uploads(BUCKET), Vec::<String>::new());
    assert!(!sb.config_dir().join("journal/home.keeping").exists());
}

/// Starts the backup of the big source, which blocks for good once it has read 1 MiB of it:
/// the old backups are renamed by then.
fn start_stuck_run(sb: &Sandbox) -> std::process::Child {
    let log = sb.path().join("faults.log");
    let _ = fs::remove_file(&log);
    let src = fs::canonicalize(sb.src_dir()).unwrap();
    let mut child = aa(sb)
        .env("LD_PRELOAD", injector())
        .env("AA_FAULT_OP", "pause")
        .env("AA_FAULT_PREFIX", &src)
        .env("AA_FAULT_AFTER", MIB.to_string())
        .env("AA_FAULT_LOG", &log)
        .arg("home")
        .spawn_capturing();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !log.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("aa ended ({status}) before its source read paused:\n{err}");
        }
        assert!(Instant::now() < deadline, "the source read never paused");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

#[test]
fn a_stopped_run_gives_the_kept_backups_back_itself() {
    let Some((moto, sb, before)) = three_kept() else {
        return;
    };
    let child = start_stuck_run(&sb);
    // The keeping is done: the oldest set aside, the others shifted.
    assert_eq!(
        names(&moto),
        [
            "home.aa.tar.gz",
            "home.ab-removing.tar.gz",
            "home.ab.tar.gz"
        ]
    );
    kill_process(Pid::from_child(&child), Signal::TERM).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(128 + 15), "{stderr}");
    assert!(
        stderr.contains("restored the old backups renamed for keeping"),
        "{stderr}"
    );
    assert!(objects(&moto) == before, "{stderr}");
    assert!(!sb.config_dir().join("journal/home.keeping").exists());
}

#[test]
fn a_killed_run_is_undone_by_the_next_from_the_journal() {
    let Some((moto, sb, before)) = three_kept() else {
        return;
    };
    let child = start_stuck_run(&sb);
    // No signal handling: the journal is all that is left to tell the renames.
    kill_process(Pid::from_child(&child), Signal::KILL).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.signal_or_code(), Some(9));
    let journal = sb.config_dir().join("journal/home.keeping");
    assert!(journal.exists());
    let text = fs::read_to_string(&journal).unwrap();
    assert!(
        text.contains(&format!("store s3://{BUCKET}/host\n")),
        "{text}"
    );
    // The next run opens the store from the journal, puts the old backups back, then keeps
    // them as a clean run does.
    let out = backup(&sb, 4, &[]);
    assert!(
        out.contains(
            "Recovered from an interrupted run: restored the old backups renamed for keeping."
        ),
        "{out}"
    );
    assert!(!journal.exists());
    let after = objects(&moto);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        ["home.aa.tar.gz", "home.ab.tar.gz", "home.tar.gz"]
    );
    assert!(after["home.aa.tar.gz"] == before["home.tar.gz"]);
    assert!(after["home.ab.tar.gz"] == before["home.aa.tar.gz"]);
    assert_eq!(run_in(&sb, &moto, "home.tar.gz"), "run 4");
    assert_eq!(moto.pending_uploads(BUCKET), Vec::<String>::new());
}

#[test]
fn purge_of_a_remote_archive_touches_only_local_state() {
    // With restarting, the realm records the levels.
    let Some((moto, sb)) = setup("incremental = yes\nrestarting = yes") else {
        return;
    };
    backup(&sb, 1, &[]);
    backup(&sb, 2, &[]);
    let before = objects(&moto);
    assert_eq!(before.len(), 2);
    let realm = sb.config_dir().join("storage/home.realm");
    let snapshots = |sb: &Sandbox| -> Vec<String> {
        fs::read_dir(sb.config_dir().join("snapshots"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("home."))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(realm.is_file());
    assert!(!snapshots(&sb).is_empty());
    fs::remove_file(sb.specs_dir().join("home.aa")).unwrap();
    let out = aa(&sb).args(["-v", "--purge", "home"]).run();
    out.assert_success();
    assert_eq!(out.stdout, "Purging home.\n", "{}", out.all_output());
    assert!(!realm.exists());
    assert_eq!(snapshots(&sb), Vec::<String>::new());
    assert!(objects(&moto) == before, "purge changed the bucket");
}

trait SignalOrCode {
    fn signal_or_code(&self) -> Option<i32>;
}

impl SignalOrCode for std::process::ExitStatus {
    fn signal_or_code(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.signal().or(self.code())
    }
}

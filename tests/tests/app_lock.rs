//! One run per archive at a time: while a run processes an archive (here held in its
//! `command-before-backup`), a second run reports that archive as busy, naming the process,
//! goes on with its other archives and exits with 1; the first run is not disturbed, and once
//! it ended the archive can be backed up again. `--purge` respects the lock as well.

mod app_support;

use std::fs;
use std::time::{Duration, Instant};

use aa_tests::*;
use app_support::*;

#[test]
fn a_second_run_skips_an_archive_that_is_being_backed_up() {
    let sb = Sandbox::new();
    small_source(&sb);
    // The first run holds in its hook until the test lets it go (or a minute has passed, so a
    // failed test leaves nothing running).
    let go = sb.path().join("go");
    write_spec(
        &sb,
        "slow",
        &format!(
            "command-before-backup = sh -c 'i=0; while [ ! -e {} ] && [ $i -lt 3000 ]; \
             do sleep 0.02; i=$((i+1)); done'",
            go.display()
        ),
    );
    write_spec(&sb, "other", "");

    let mut first = sb.aa().arg("slow").spawn();
    let lock = sb.config_dir().join("locks/slow.lock");
    let pid = first.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::read_to_string(&lock)
        .map(|s| s.trim() != pid)
        .unwrap_or(true)
    {
        assert!(first.try_wait().unwrap().is_none(), "the first run ended");
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    let second = sb.aa().args(["slow", "other"]).run();
    assert_eq!(second.status.code(), Some(1), "{second}");
    assert!(
        second.stderr.contains(&format!(
            "Another aa run is processing this archive (process {pid})"
        )),
        "{second}"
    );
    assert_eq!(second.stderr.lines().count(), 1, "one line:\n{second}");
    assert!(first.try_wait().unwrap().is_none(), "the first run ended");
    assert_eq!(dest_files(&sb), ["other.tar.gz"], "{second}");

    fs::write(&go, "").unwrap();
    assert!(first.wait().unwrap().success());
    assert_eq!(dest_files(&sb), ["other.tar.gz", "slow.tar.gz"]);
    sb.aa().arg("slow").run().assert_success();
}

/// `--purge` takes the archive's lock too: the state of an archive being backed up (from a
/// specification given by path, so it looks orphaned) is not purged under it.
#[test]
fn purge_leaves_a_locked_archive_alone() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_realm(&sb, "orph", &[("archiving-restart-count", "1".to_string())]);
    let lock_dir = sb.config_dir().join("locks");
    fs::create_dir_all(&lock_dir).unwrap();
    let held = fs::File::create(lock_dir.join("orph.lock")).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .expect("hold the lock");

    let out = sb.aa().args(["--purge", "orph"]).run();
    out.assert_clean_failure();
    assert!(
        out.stderr
            .contains("Another aa run is processing this archive"),
        "{out}"
    );
    assert!(realm_path(&sb, "orph").exists(), "{out}");

    drop(held);
    sb.aa().args(["--purge", "orph"]).run().assert_success();
    assert!(!realm_path(&sb, "orph").exists());
}

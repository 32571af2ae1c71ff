//! Helpers shared by the `app_*` tests of the application (options, levels, keeping, hooks,
//! listing): a small source tree, `.aa` files with extra `[Archive]` options, the storage realm
//! and GNU tar restores of incremental chains.

#![allow(dead_code)]

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aa_abi::naming::partial_of;

use aa_host::destination::{Credentials, Destination, S3Options, Store};
use aa_tests::{Moto, Sandbox};
use rustix::process::{kill_process_group, Pid, Signal};

/// `src/a.txt` and `src/d/b.txt` in the sandbox. Also creates the storage directory, so that
/// its one-time announcement does not mix with the messages a test looks at.
pub fn small_source(sb: &Sandbox) {
    fs::create_dir_all(sb.config_dir().join("storage")).unwrap();
    fs::create_dir_all(sb.src_dir().join("d")).unwrap();
    fs::write(sb.src_dir().join("a.txt"), "a\n").unwrap();
    fs::write(sb.src_dir().join("d/b.txt"), "b\n").unwrap();
}

/// A spec backing up `a.txt` and `d` of the sandbox's source into its `dest/`, with
/// `archive` appended to the `[Archive]` section.
pub fn spec_text(sb: &Sandbox, archive: &str) -> String {
    format!(
        "[Content]\npath = {}\ninclude-files = a.txt d\nexclude-files =\n\n[Archive]\ndest-dir = {}\n{archive}\n",
        sb.src_dir().display(),
        sb.dest_dir().display()
    )
}

/// Writes `specs/NAME.aa` with [`spec_text`].
pub fn write_spec(sb: &Sandbox, name: &str, archive: &str) -> PathBuf {
    sb.write_spec_text(name, &spec_text(sb, archive))
}

pub fn realm_path(sb: &Sandbox, name: &str) -> PathBuf {
    sb.config_dir()
        .join("storage")
        .join(format!("{name}.realm"))
}

/// A variable of the archive's storage realm.
pub fn realm_var(sb: &Sandbox, name: &str, var: &str) -> Option<String> {
    let text = fs::read_to_string(realm_path(sb, name)).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(" = ")?;
        (k == var).then(|| v.to_string())
    })
}

/// Writes a realm in the original's format.
pub fn write_realm(sb: &Sandbox, name: &str, vars: &[(&str, String)]) {
    let mut text = String::from("[AutoArchive]\n");
    for (k, v) in vars {
        text += &format!("{k} = {v}\n");
    }
    text.push('\n');
    fs::create_dir_all(sb.config_dir().join("storage")).unwrap();
    fs::write(realm_path(sb, name), text).unwrap();
}

/// The local date `days` days ago as `YYYY-MM-DD` (what the original stores), in the time
/// zone the sandbox gives `aa` (see [`aa_tests::test_time_zone`]): never across a midnight.
pub fn date_days_ago(days: u32) -> String {
    aa_tests::local_date_days_ago(days)
}

pub fn today() -> String {
    date_days_ago(0)
}

/// Snapshot files in the user configuration directory.
pub fn snapshots(sb: &Sandbox) -> Vec<String> {
    let dir = sb.config_dir().join("snapshots");
    if !dir.exists() {
        return Vec::new();
    }
    aa_tests::dir_names(&dir)
}

/// Restores an incremental chain in order, as GNU tar documents it.
pub fn restore(archives: &[PathBuf], dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    for archive in archives {
        let status = Command::new("tar")
            .args(["--listed-incremental=/dev/null", "-xf"])
            .arg(archive)
            .arg("-C")
            .arg(dest)
            .status()
            .unwrap();
        assert!(status.success(), "restoring {}", archive.display());
    }
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Backup files in `dest/`, sorted.
pub fn dest_files(sb: &Sandbox) -> Vec<String> {
    aa_tests::dir_names(&sb.dest_dir())
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The small source plus enough compressible data that a run at level 9 lasts well over a
/// second.
pub fn big_source(sb: &Sandbox) {
    small_source(sb);
    big_files(sb);
}

/// The big files of [`big_source`], `d/big-N.txt`, each ending with the line `file N`.
pub fn big_files(sb: &Sandbox) {
    for i in 0..3 {
        let mut text = aa_tests::compressible_text(8 << 20);
        text.extend_from_slice(format!("file {i}\n").as_bytes());
        fs::write(sb.src_dir().join(format!("d/big-{i}.txt")), text).unwrap();
    }
}

/// The partial files of the backup `final_name` in the sandbox's destination.
pub fn partials_of(sb: &Sandbox, final_name: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(sb.dest_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| partial_of(p.file_name().unwrap().as_bytes()) == Some(final_name.as_bytes()))
        .collect();
    found.sort();
    found
}

/// Starts `aa` with `args` and returns it as soon as it is writing the backup `final_name`,
/// with the partial file it writes. Old backups were kept by then. Returning at once leaves
/// the caller the whole length of the backup (seconds at level 9) to act while it runs.
pub fn started_writing(
    sb: &Sandbox,
    args: &[&str],
    final_name: &str,
) -> (std::process::Child, PathBuf) {
    let mut child = sb.aa().args(args).spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    let partial = loop {
        if let Some(partial) = partials_of(sb, final_name).pop() {
            break partial;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?}: the run ended before it wrote anything"
        );
        assert!(
            Instant::now() < deadline,
            "{args:?}: no partial {final_name}"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    (child, partial)
}

/// Sends `signal` to what is left of `child`'s process group (`aa`, GNU tar, a compressor).
pub fn signal_group(child: &std::process::Child, signal: Signal) {
    // The group may be gone already, which is what a caller that kills it wants anyway.
    let _ = kill_process_group(Pid::from_child(child), signal);
}

/// Stops `child`'s process group and returns once every thread of every process in it is
/// stopped: `kill` only queues the signal, each thread stops on its own (a compressor's writer
/// thread may still be writing when its main thread shows stopped), and one still running
/// could write after the caller looked.
#[allow(dead_code)]
pub fn stop_group(child: &std::process::Child) {
    signal_group(child, Signal::STOP);
    let group = child.id().to_string();
    let threads = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|process| std::fs::read_dir(process.path().join("task")).ok())
            .flat_map(|tasks| tasks.flatten())
            .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
            .collect::<Vec<String>>()
    };
    for _ in 0..10_000 {
        let running = threads().iter().any(|stat| {
            // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
            fields.get(2) == Some(&group.as_str())
                && !matches!(fields.first(), Some(&"T") | Some(&"t") | Some(&"Z"))
        });
        if !running {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("process group {group} did not stop");
}

/// Kills what is left of `child`'s process group.
pub fn kill_group(child: &std::process::Child) {
    signal_group(child, Signal::KILL);
}

/// For each scenario `fn NAME(archiver: &str)`, a module `NAME` with one test per built-in
/// provider: `targz` (TarExternal) and `targz_internal` (TarInternal). Both make the same
/// backup files and keep the same state, so every assertion holds for either.
#[allow(unused_macros)]
macro_rules! with_both_providers {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn targz() {
                super::$name("targz");
            }

            #[test]
            fn targz_internal() {
                super::$name("targz_internal");
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use with_both_providers;

/// The store `url` (`s3://bucket/prefix`) on `moto`, opened through the host's storage
/// service with the credentials the tests give `aa`.
pub fn moto_store(moto: &Moto, url: &str) -> Store {
    let options = S3Options {
        endpoint: Some(moto.endpoint()),
        credentials: Some(Credentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        }),
        ..S3Options::default()
    };
    Store::open(&Destination::parse(url).unwrap(), &options).unwrap()
}

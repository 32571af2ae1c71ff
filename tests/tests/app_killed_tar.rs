//! `aa` killed alone (SIGKILL to `aa` only, as the OOM killer sends it) while TarExternal runs:
//! GNU tar and its compressor die with it instead of writing on beside the next run, and the
//! next run works.
//!
//! The compressor is a script first on `PATH` (named for both gzip and pigz) that passes its
//! input slowly to the real gzip, so the backup is still running when `aa` is killed however
//! fast the machine is, and that still ends when its input does, as a real compressor.

mod app_support;

use std::fs;
use std::time::{Duration, Instant};

use aa_tests::*;
use app_support::*;
use rustix::process::{kill_process, Pid, Signal};

/// The processes, other than zombies, in the process group `group`.
fn living_members(group: libc::pid_t) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ')'.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == group.to_string() && fields[0] != "Z" {
            found.push(format!("{})", head));
        }
    }
    found
}

#[test]
fn tar_and_its_compressor_die_with_aa() {
    let sb = Sandbox::new();
    small_source(&sb);
    fs::write(sb.src_dir().join("d/big.bin"), noise(4 << 20, 7)).unwrap();
    write_spec(&sb, "k", "archiver = targz");

    let gzip = on_path("gzip").display().to_string();
    let marker = sb.path().join("compressor-started");
    let path = path_with_gzip_script(
        &sb.path().join("bin"),
        &format!(
            "touch '{m}'\nchunk='{m}'.$$\n\
             while head -c 4096 >\"$chunk\" && [ -s \"$chunk\" ]; do cat \"$chunk\"; sleep 0.02; done \
             | '{gzip}' \"$@\"\nrm -f \"$chunk\"\n",
            m = marker.display()
        ),
    );

    let mut child = sb.aa().env("PATH", &path).arg("k").spawn();
    let group = child.id() as libc::pid_t;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(child.try_wait().unwrap().is_none(), "aa ended early");
        assert!(Instant::now() < deadline, "the compressor never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Our own child alone, not its process group.
    kill_process(Pid::from_child(&child), Signal::KILL).unwrap();
    child.wait().unwrap();

    // Everything `aa` started is in its process group; all of it must end, promptly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left = living_members(group);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = living_members(group);
    }
    assert!(
        left.is_empty(),
        "still running 10 s after aa was killed: {left:?}"
    );

    let out = sb.aa().arg("k").run();
    out.assert_success();
    assert_eq!(dest_files(&sb), ["k.tar.gz"]);
    let names = gnu_list(&sb.dest_dir().join("k.tar.gz"));
    assert!(names.contains(b"d/big.bin".as_slice()), "{names:?}");
}

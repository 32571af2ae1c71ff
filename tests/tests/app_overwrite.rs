//! `overwrite-at-start` gives up the old backup at the start, through the whole application:
//! while the backup is being written, the old backup is already gone and no `._partial` file
//! exists; without it, the old backup is intact and the new one goes to `._partial`.
//!
//! The run is held midway by a fake `gzip` first on `PATH` (only in `aa`'s environment): it
//! waits on a FIFO, and GNU tar creates the archive file before it starts the compressor, so
//! once the fake has opened the FIFO the output exists and nothing has been committed.

mod app_support;

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;

use aa_abi::naming::partial_of;
use aa_tests::*;
use app_support::*;

const OLD: &[u8] = b"the previous backup\n";

/// What the destination holds while the backup is being written.
struct Midway {
    backup: Option<Vec<u8>>,
    partial: bool,
}

/// Runs `aa o` with `args`, holding it on the fake compressor; returns what the destination
/// held then, after the run has succeeded.
fn run_held(sb: &Sandbox, args: &[&str]) -> Midway {
    let gate = sb.path().join("gate");
    mkfifo(&gate);
    let path = path_with_gzip_script(
        &sb.path().join("bin"),
        &format!(
            "read go <'{}'\nexec '{}' \"$@\"\n",
            gate.display(),
            on_path("gzip").display()
        ),
    );
    let aa = sb.aa().env("PATH", path).args(args).arg("o");
    let run = std::thread::spawn(move || aa.run());
    let mut gate_writer = loop {
        // Opening a FIFO without blocking succeeds once its reader (the fake gzip) has it open.
        match fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&gate)
        {
            Ok(file) => break file,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                if run.is_finished() {
                    panic!(
                        "aa ended before it started the compressor:\n{}",
                        run.join().unwrap()
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(e) => panic!("open {}: {e}", gate.display()),
        }
    };
    let backup = sb.dest_dir().join("o.tar.gz");
    let midway = Midway {
        backup: fs::read(&backup).ok(),
        partial: fs::read_dir(sb.dest_dir())
            .unwrap()
            .any(|e| partial_of(e.unwrap().file_name().as_bytes()) == Some(&b"o.tar.gz"[..])),
    };
    gate_writer.write_all(b"go\n").unwrap();
    drop(gate_writer);
    let out = run.join().unwrap();
    out.assert_success();
    assert_eq!(dest_files(sb), ["o.tar.gz"], "{out}");
    let restored = sb.mkdir("restored");
    restore(&[backup], &restored);
    assert_eq!(read(&restored.join("a.txt")), "a\n");
    midway
}

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "o", "archiver = targz");
    fs::write(sb.dest_dir().join("o.tar.gz"), OLD).unwrap();
    sb
}

#[test]
fn overwrite_at_start_gives_up_the_old_backup_at_the_start() {
    let sb = sandbox();
    let midway = run_held(&sb, &["--overwrite-at-start"]);
    assert_eq!(
        midway.backup.as_deref(),
        Some(&b""[..]),
        "while writing, the backup should be the new, still empty file"
    );
    assert!(!midway.partial, "a ._partial file was written instead");
}

#[test]
fn without_overwrite_at_start_the_old_backup_is_intact_while_writing() {
    let sb = sandbox();
    let midway = run_held(&sb, &[]);
    assert_eq!(midway.backup.as_deref(), Some(OLD));
    assert!(midway.partial, "no ._partial file while writing");
}

/// The same through the `.aa` file, where users usually set it.
#[test]
fn overwrite_at_start_in_the_spec_gives_up_the_old_backup_at_the_start() {
    let sb = sandbox();
    write_spec(&sb, "o", "archiver = targz\noverwrite-at-start = yes");
    let midway = run_held(&sb, &[]);
    assert_eq!(midway.backup.as_deref(), Some(&b""[..]));
    assert!(!midway.partial, "a ._partial file was written instead");
}

//! A backup to an object store stopped by SIGTERM or Ctrl-C (SIGINT) in the middle of its
//! multipart upload: `aa` aborts the upload before it exits, so the server holds no pending
//! multipart upload, the previous backup is the same object as before, and no other object
//! appeared.
//!
//! The run is stopped at a known point without racing it: the fault injector's `pause` mode
//! (tests/faults/shim.c) blocks the read that passes 20 MiB of the source for good, and the
//! test signals `aa` once the server shows the multipart upload as pending.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use aa_host::destination::{Credentials, Destination, S3Options, Store};
use aa_tests::faults::injector;
use aa_tests::{Moto, Sandbox};
use rustix::process::{kill_process, Pid, Signal};

const MIB: usize = 1 << 20;
const BUCKET: &str = "bkp";

/// `len` bytes that differ with `seed` and do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn spec(sb: &Sandbox, moto: &Moto, archiver: &str) {
    sb.write_spec_text(
        "home",
        &format!(
            "[Content]\npath = {}\ninclude-files = *\nexclude-files =\n\n[Archive]\n\
             archiver = {archiver}\ndest-dir = s3://{BUCKET}/host\ns3-endpoint = {}\n",
            sb.src_dir().display(),
            moto.endpoint()
        ),
    );
}

fn keys(moto: &Moto) -> Vec<String> {
    let (status, body) = moto.request("GET", &format!("/{BUCKET}?list-type=2"));
    assert_eq!(status, 200, "{body}");
    body.split("<Key>")
        .skip(1)
        .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_string()))
        .collect()
}

/// Waits (bounded) until `done`, failing with `what` if `child` ends first.
fn wait_for(child: &mut std::process::Child, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("aa ended ({status}) before {what}:\n{err}");
        }
        assert!(Instant::now() < deadline, "no {what} within 120 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn interrupted_upload(archiver: &str, signal: Signal) {
    let Some(moto) = Moto::start() else {
        return;
    };
    moto.create_bucket(BUCKET);
    let sb = Sandbox::new();
    fs::create_dir_all(sb.config_dir().join("storage")).unwrap();
    fs::create_dir_all(sb.src_dir()).unwrap();
    fs::write(sb.src_dir().join("first"), noise(6 * MIB, 1)).unwrap();
    spec(&sb, &moto, archiver);
    let creds = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let aa = || creds.iter().fold(sb.aa(), |aa, (k, v)| aa.env(k, v));
    aa().arg("home").run().assert_success();
    let key = "host/home.tar".to_string();
    assert_eq!(keys(&moto), [key.clone()]);
    // Read through the store: moto answers unsigned requests for a single-PUT object with 403.
    let before = object(&moto, "home.tar");

    // The next backup is larger than two parts, and stops reading its source after 20 MiB.
    fs::write(sb.src_dir().join("second"), noise(28 * MIB, 2)).unwrap();
    let log = sb.path().join("faults.log");
    let src = fs::canonicalize(sb.src_dir()).unwrap();
    let mut child = aa()
        .env("LD_PRELOAD", injector())
        .env("AA_FAULT_OP", "pause")
        .env("AA_FAULT_PREFIX", &src)
        .env("AA_FAULT_AFTER", (20 * MIB).to_string())
        .env("AA_FAULT_LOG", &log)
        .arg("home")
        .spawn_capturing();
    wait_for(&mut child, "the source read paused", || log.exists());
    wait_for(&mut child, "a pending multipart upload", || {
        !moto.pending_uploads(BUCKET).is_empty()
    });
    kill_process(Pid::from_child(&child), signal).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(128 + signal.as_raw()),
        "{archiver}: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "aborted the unfinished upload of s3://{BUCKET}/{key}"
        )),
        "{archiver}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        moto.pending_uploads(BUCKET),
        Vec::<String>::new(),
        "{stderr}"
    );
    assert_eq!(keys(&moto), [key.clone()]);
    assert!(
        object(&moto, "home.tar") == before,
        "the previous backup changed"
    );

    // Nothing of the stopped run is in the way of the next one.
    aa().arg("home").run().assert_success();
    let restored = sb.path().join("restored");
    fs::create_dir_all(&restored).unwrap();
    extract(&object(&moto, "home.tar"), &restored);
    for name in ["first", "second"] {
        assert!(
            fs::read(restored.join(name)).unwrap() == fs::read(src.join(name)).unwrap(),
            "{name} differs"
        );
    }
}

/// The backup `name` in `s3://bkp/host`, read through the host's store.
fn object(moto: &Moto, name: &str) -> Vec<u8> {
    let options = S3Options {
        endpoint: Some(moto.endpoint()),
        credentials: Some(Credentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        }),
        ..S3Options::default()
    };
    let destination = Destination::parse(&format!("s3://{BUCKET}/host")).unwrap();
    let store = Store::open(&destination, &options).unwrap();
    let mut bytes = Vec::new();
    store.reader(name).unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

/// Extracts a tar archive with GNU tar.
fn extract(archive: &[u8], into: &Path) {
    let mut tar = std::process::Command::new("tar")
        .arg("-xf")
        .arg("-")
        .arg("-C")
        .arg(into)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tar.stdin.take().unwrap().write_all(archive).unwrap();
    assert!(tar.wait().unwrap().success(), "GNU tar extracts the backup");
}

#[test]
fn sigterm_aborts_the_upload_of_tar_internal() {
    interrupted_upload("tar@TarInternal", Signal::TERM);
}

#[test]
fn sigint_aborts_the_upload_of_tar_external() {
    interrupted_upload("tar@TarExternal", Signal::INT);
}

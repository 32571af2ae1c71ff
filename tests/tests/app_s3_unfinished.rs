//! Backups to an object store that do not finish: stopped by SIGTERM or Ctrl-C (SIGINT), or
//! losing their connection, in the middle of the multipart upload. `aa` aborts the upload, so
//! the server holds no pending multipart upload, the previous backup is the same object as
//! before, no other object appeared, and the next run succeeds.
//!
//! The runs fail at a known point without racing them, with the fault injector
//! (tests/faults/shim.c): its `pause` mode blocks the read that passes 20 MiB of the source for
//! good, and the test signals `aa` once the server shows the multipart upload as pending; its
//! `netreset` mode fails one send on a socket after 12 MiB with ECONNRESET.

mod app_support;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use aa_tests::faults::injector;
use aa_tests::{Moto, Sandbox};
use app_support::moto_store;
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

/// A server with a bucket holding a first backup (6 MiB, one PUT) of a source to which a
/// second file (28 MiB, so the next backup is a multipart upload) was added since.
struct Setup {
    moto: Moto,
    sb: Sandbox,
    /// The first backup's bytes.
    before: Vec<u8>,
    /// The backup's object name (`home.tar.gz`) and key (`host/home.tar.gz`).
    name: String,
    key: String,
    /// The source, canonical (the fault injector compares canonical paths).
    src: std::path::PathBuf,
    log: std::path::PathBuf,
}

fn setup(archiver: &str) -> Option<Setup> {
    let moto = Moto::start()?;
    moto.create_bucket(BUCKET);
    let sb = Sandbox::new();
    fs::create_dir_all(sb.config_dir().join("storage")).unwrap();
    fs::create_dir_all(sb.src_dir()).unwrap();
    fs::write(sb.src_dir().join("first"), noise(6 * MIB, 1)).unwrap();
    spec(&sb, &moto, archiver);
    aa(&sb).arg("home").run().assert_success();
    let kind = archiver.split('@').next().unwrap();
    let name = format!(
        "home.tar{}",
        kind.strip_prefix("tar")
            .map_or(String::new(), |c| if c.is_empty() {
                c.to_string()
            } else {
                format!(".{c}")
            })
    );
    let key = format!("host/{name}");
    assert_eq!(keys(&moto), std::slice::from_ref(&key));
    // Read through the store: moto answers unsigned requests for a single-PUT object with 403.
    let before = object(&moto, &name);
    fs::write(sb.src_dir().join("second"), noise(28 * MIB, 2)).unwrap();
    let src = fs::canonicalize(sb.src_dir()).unwrap();
    let log = sb.path().join("faults.log");
    Some(Setup {
        moto,
        sb,
        before,
        name,
        key,
        src,
        log,
    })
}

fn aa(sb: &Sandbox) -> aa_tests::Aa {
    sb.aa()
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
}

/// Nothing of the failed run is left: no pending multipart upload, the first backup as it
/// was, no other object; and the next run makes a backup GNU tar extracts to the source.
fn nothing_left(setup: &Setup, output: &str) {
    let moto = &setup.moto;
    assert_eq!(
        moto.pending_uploads(BUCKET),
        Vec::<String>::new(),
        "{output}"
    );
    assert_eq!(keys(moto), std::slice::from_ref(&setup.key), "{output}");
    assert!(
        object(moto, &setup.name) == setup.before,
        "the previous backup changed"
    );
    aa(&setup.sb).arg("home").run().assert_success();
    let restored = setup.sb.path().join("restored");
    fs::create_dir_all(&restored).unwrap();
    extract(&object(moto, &setup.name), &setup.name, &restored);
    for name in ["first", "second"] {
        assert!(
            fs::read(restored.join(name)).unwrap() == fs::read(setup.src.join(name)).unwrap(),
            "{name} differs"
        );
    }
}

fn interrupted_upload(archiver: &str, signal: Signal) {
    let Some(setup) = setup(archiver) else {
        return;
    };
    let Setup {
        moto,
        sb,
        src,
        log,
        key,
        ..
    } = &setup;
    // The run stops reading its source after 20 MiB: two parts are on their way by then.
    let mut child = aa(sb)
        .env("LD_PRELOAD", injector())
        .env("AA_FAULT_OP", "pause")
        .env("AA_FAULT_PREFIX", src)
        .env("AA_FAULT_AFTER", (20 * MIB).to_string())
        .env("AA_FAULT_LOG", log)
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
    nothing_left(&setup, &stderr);
}

/// The connection drops while a part is being sent: the run fails with one line naming the
/// backup's URL, and aborts the upload.
fn lost_connection(archiver: &str) {
    let Some(setup) = setup(archiver) else {
        return;
    };
    let out = aa(&setup.sb)
        .env("LD_PRELOAD", injector())
        .env("AA_FAULT_OP", "netreset")
        .env("AA_FAULT_ERRNO", "104")
        .env("AA_FAULT_AFTER", (12 * MIB).to_string())
        .env("AA_FAULT_ONLY", "aa")
        .env("AA_FAULT_LOG", &setup.log)
        .arg("home")
        .run();
    out.assert_no_panic();
    assert_eq!(out.code(), Some(1), "{}", out.all_output());
    assert!(setup.log.exists(), "the connection was never reset");
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "{}", out.all_output());
    assert!(
        errors[0].contains(&format!("s3://{BUCKET}/{}: ", setup.key)),
        "{}",
        errors[0]
    );
    nothing_left(&setup, &out.all_output());
}

/// The backup `name` in `s3://bkp/host`, read through the host's store.
fn object(moto: &Moto, name: &str) -> Vec<u8> {
    let store = moto_store(moto, &format!("s3://{BUCKET}/host"));
    let mut bytes = Vec::new();
    store.reader(name).unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

/// Extracts the tar archive `name` (its extension tells the compression) with GNU tar.
fn extract(archive: &[u8], name: &str, into: &Path) {
    let compression = match name.rsplit('.').next() {
        Some("gz") => Some("--gzip"),
        Some("zst") => Some("--zstd"),
        _ => None,
    };
    let mut tar = std::process::Command::new("tar")
        .args(compression)
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

#[test]
fn a_lost_connection_aborts_the_upload_of_tar_internal() {
    lost_connection("targz@TarInternal");
}

#[test]
fn a_lost_connection_aborts_the_upload_of_tar_external() {
    lost_connection("tarzst@TarExternal");
}

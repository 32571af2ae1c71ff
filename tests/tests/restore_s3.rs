//! `aa --restore` and `aa --verify` with `dest-dir = s3://...` against a real S3 server
//! (moto): the chain is found from the bucket's listing and each backup is read from it as a
//! stream (the host serves a named pipe per level, see `host/src/app/object_pipes.rs`). The
//! chains are made by GNU tar (`--listed-incremental`) and uploaded under the names `aa` gives
//! them; the restored trees must equal the source, for both providers.

mod app_support;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_host::destination::{Destination, S3Options, Store};
use aa_tests::*;
use app_support::*;

const BUCKET: &str = "bkp";
const URL: &str = "s3://bkp/host/home";

fn store(moto: &Moto) -> Store {
    let options = S3Options {
        endpoint: Some(moto.endpoint()),
        region: Some("us-east-1".into()),
        path_style: Some(true),
        credentials: Some(aa_host::destination::Credentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        }),
        ..S3Options::default()
    };
    Store::open(&Destination::parse(URL).unwrap(), &options).unwrap()
}

fn put(store: &Store, name: &str, bytes: &[u8]) {
    use std::io::Write;
    let mut upload = store.upload(name).unwrap();
    upload.write_all(bytes).unwrap();
    upload.commit().unwrap();
}

fn get(store: &Store, name: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    store.reader(name).unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

/// The temporary directory `aa` is given (TMPDIR): it must be empty after every run.
fn tmp(sb: &Sandbox) -> PathBuf {
    let dir = sb.path().join("tmp");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// `aa` with the moto credentials and the sandbox's TMPDIR.
fn aa(sb: &Sandbox) -> Aa {
    sb.aa()
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("TMPDIR", tmp(sb))
}

/// A verification that found a bad backup: exit status 1, the verdict on standard output.
fn assert_verify_failed(out: &AaOutput) {
    out.assert_no_panic();
    assert_eq!(out.status.code(), Some(1), "{out}");
}

fn assert_tmp_empty(sb: &Sandbox) {
    assert_eq!(aa_tests::dir_names(&tmp(sb)), Vec::<String>::new());
}

/// `home.aa` backing up `a.txt` and `d` of the source into the bucket, with `archiver`.
fn write_remote_spec(sb: &Sandbox, moto: &Moto, archiver: &str) {
    sb.write_spec_text(
        "home",
        &format!(
            "[Content]\npath = {}\ninclude-files = a.txt d\nexclude-files =\n\n[Archive]\n\
             dest-dir = {URL}\ns3-endpoint = {}\ns3-region = us-east-1\narchiver = {archiver}\n\
             incremental = yes\n",
            sb.src_dir().display(),
            moto.endpoint()
        ),
    );
}

/// GNU tar's level `level` of `a.txt` and `d` of the source, continuing `snar`, as a
/// `.tar.gz`, or a plain `.tar` for `ext` `tar`.
fn gnu_tar_level(sb: &Sandbox, snar: &Path, level: u32, ext: &str) -> Vec<u8> {
    let made = sb.path().join("gnu");
    fs::create_dir_all(&made).unwrap();
    let file = made.join(format!("level{level}.{ext}"));
    let status = Command::new("tar")
        .arg(if ext == "tar" { "-cf" } else { "-czf" })
        .arg(&file)
        .arg(format!("--listed-incremental={}", snar.display()))
        .arg("-C")
        .arg(sb.src_dir())
        .args(["a.txt", "d"])
        .status()
        .unwrap();
    assert!(status.success(), "tar level {level}");
    fs::read(&file).unwrap()
}

/// Levels 0, 1, 2 of `home` by GNU tar, uploaded as `home.tar.gz`, `home.1.tar.gz`,
/// `home.2.tar.gz`: `a.txt` changes, `d/b.txt` is deleted and `d/c.txt` added at level 2.
fn gnu_chain_in_bucket(sb: &Sandbox, store: &Store) {
    gnu_chain_of_type(sb, store, "tar.gz");
}

fn gnu_chain_of_type(sb: &Sandbox, store: &Store, ext: &str) {
    small_source(sb);
    let snar = sb.path().join("home.snar");
    let names = [
        format!("home.{ext}"),
        format!("home.1.{ext}"),
        format!("home.2.{ext}"),
    ];
    for (level, name) in names.iter().enumerate() {
        fs::write(sb.src_dir().join("a.txt"), format!("run {level}\n")).unwrap();
        if level == 1 {
            // Many pipefuls, in a level a reader opens more than once (GNU tar tells the
            // compression from the first record, then reads again).
            fs::write(sb.src_dir().join("d/big.bin"), noise(3 << 20, level as u64)).unwrap();
        }
        if level == 2 {
            fs::remove_file(sb.src_dir().join("d/b.txt")).unwrap();
            fs::write(sb.src_dir().join("d/c.txt"), "c\n").unwrap();
        }
        settle_timestamps();
        let bytes = gnu_tar_level(sb, &snar, level as u32, ext);
        put(store, name, &bytes);
    }
}

/// `len` bytes that do not compress.
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

fn target(sb: &Sandbox) -> PathBuf {
    sb.path().join("restored")
}

fn restore(sb: &Sandbox) -> AaOutput {
    let out = aa(sb)
        .args(["--restore", "home", "-v", "--target"])
        .arg(target(sb))
        .run();
    assert_tmp_empty(sb);
    out
}

fn verify(sb: &Sandbox) -> AaOutput {
    let out = aa(sb).args(["--verify", "home"]).run();
    assert_tmp_empty(sb);
    out
}

fn the_chain_is_restored_and_verified_from_the_bucket(archiver: &str) {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket(BUCKET);
    let store = store(&moto);
    let sb = Sandbox::new();
    gnu_chain_in_bucket(&sb, &store);
    write_remote_spec(&sb, &moto, archiver);

    let out = restore(&sb);
    out.assert_success();
    assert!(
        out.stdout.contains(&format!(
            "from 3 backups into \"{}\".",
            target(&sb).display()
        )),
        "{out}"
    );
    assert!(out.stdout.lines().any(|l| l == "d/c.txt"), "{out}");
    assert_same_tree(
        &source_record(&sb),
        &restored_record(&target(&sb)),
        Compare::default(),
        "chain restored from the bucket",
    );

    let out = verify(&sb);
    out.assert_success();
    for name in ["home.tar.gz", "home.1.tar.gz", "home.2.tar.gz"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{name}: ok, "))),
            "{name}: {out}"
        );
    }
    assert!(
        out.stdout
            .contains("Verified 3 backup files of levels 0..2: all ok."),
        "{out}"
    );

    // With --only, TarInternal reads each level once more ahead (its renames).
    let only = sb.path().join("only");
    let out = aa(&sb)
        .args(["--restore", "home", "--only", "d", "--target"])
        .arg(&only)
        .run();
    assert_tmp_empty(&sb);
    out.assert_success();
    let mut expected = source_record(&sb);
    expected.retain(|path, _| path.starts_with(b"d"));
    assert_same_tree(
        &expected,
        &restored_record(&only),
        Compare::default(),
        "--only d restored from the bucket",
    );

    // The chain restored from the store is the source: no difference.
    let out = aa(&sb).args(["--verify", "--compare", "home"]).run();
    assert_tmp_empty(&sb);
    out.assert_success();
    assert!(
        out.stdout
            .contains("Verified 3 backup files of levels 0..2: all ok."),
        "{out}"
    );

    // `--list` shows the destination as written and touches nothing of it.
    let out = aa(&sb).arg("--list").run();
    out.assert_success();
    assert!(out.stdout.contains(URL), "{out}");
}

fn a_damaged_object_fails_verify_naming_its_url(archiver: &str) {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket(BUCKET);
    let store = store(&moto);
    let sb = Sandbox::new();
    gnu_chain_in_bucket(&sb, &store);
    write_remote_spec(&sb, &moto, archiver);
    let mut bytes = get(&store, "home.1.tar.gz");
    // A byte of the deflate data: the CRC32 (or the deflate structure) no longer holds.
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    put(&store, "home.1.tar.gz", &bytes);

    let out = verify(&sb);
    assert_verify_failed(&out);
    let url = format!("{URL}/home.1.tar.gz");
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("home.1.tar.gz: FAILED: "))
        .unwrap_or_else(|| panic!("no FAILED line: {out}"));
    assert!(line.contains(&url), "{line}");
    let tmp = tmp(&sb).display().to_string();
    assert!(
        !out.stdout.contains(&tmp) && !out.stderr.contains(&tmp),
        "{out}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("home.2.tar.gz: ok, ")),
        "{out}"
    );
    assert!(out.stdout.contains(": 1 FAILED."), "{out}");
}

fn a_missing_level_is_an_error_naming_the_object(archiver: &str) {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket(BUCKET);
    let store = store(&moto);
    let sb = Sandbox::new();
    gnu_chain_in_bucket(&sb, &store);
    write_remote_spec(&sb, &moto, archiver);
    store.delete("home.1.tar.gz").unwrap();

    let out = restore(&sb);
    out.assert_clean_failure();
    assert_eq!(
        out.error_lines(),
        [format!(
            "aa: Error! [home] Unable to restore: the backup file \"{URL}/home.1.tar.gz\" of \
             level 1 is missing: the chain 0..2 is incomplete, nothing was restored"
        )]
    );
    assert!(!target(&sb).exists());
    let out = verify(&sb);
    assert_verify_failed(&out);
    assert!(
        out.stdout
            .lines()
            .any(|l| l == "home.1.tar.gz: FAILED: missing (level 1 of the chain 0..2)"),
        "{out}"
    );
}

with_both_providers!(
    the_chain_is_restored_and_verified_from_the_bucket,
    a_damaged_object_fails_verify_naming_its_url,
    a_missing_level_is_an_error_naming_the_object
);

#[test]
fn no_backup_in_the_bucket_is_an_error_naming_the_url() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket(BUCKET);
    let sb = Sandbox::new();
    small_source(&sb);
    write_remote_spec(&sb, &moto, "targz");
    let out = restore(&sb);
    out.assert_clean_failure();
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].contains(&format!("no backup of \"home\" in \"{URL}\"")),
        "{out}"
    );
}

/// A proxy before moto that cuts the body of every GET of the object `key` in half and then
/// closes the connection: a store that fails in the middle of a stream. One request per
/// connection (each forwarded with `Connection: close`), which any HTTP client copes with.
struct CuttingProxy {
    port: u16,
}

/// What the proxy does to a GET of its object.
#[derive(Clone, Copy, PartialEq)]
enum Cut {
    /// Half the body, then close.
    Half,
    /// Never answer (the request is told on the channel given).
    Stall,
}

impl CuttingProxy {
    fn start(moto: &Moto, key: &str) -> CuttingProxy {
        Self::start_with(moto, key, Cut::Half, None)
    }

    fn start_with(
        moto: &Moto,
        key: &str,
        cut: Cut,
        stalled: Option<std::sync::mpsc::Sender<()>>,
    ) -> CuttingProxy {
        use std::net::{Ipv4Addr, TcpListener};
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = moto.endpoint().trim_start_matches("http://").to_string();
        let target = format!("GET /{BUCKET}/{key}");
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (upstream, target) = (upstream.clone(), target.clone());
                let stalled = stalled.clone();
                std::thread::spawn(move || {
                    let _ = Self::serve(client, &upstream, &target, cut, stalled);
                });
            }
        });
        CuttingProxy { port }
    }

    fn serve(
        mut client: std::net::TcpStream,
        upstream: &str,
        target: &str,
        how: Cut,
        stalled: Option<std::sync::mpsc::Sender<()>>,
    ) -> std::io::Result<()> {
        use std::io::Write;
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") {
            if client.read(&mut byte)? == 0 {
                return Ok(());
            }
            request.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&request).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        client.read_exact(&mut body)?;
        let (first, rest) = head.split_once("\r\n").unwrap_or((&head, ""));
        let cut = first.starts_with(target) && !first.contains('?');
        if cut && how == Cut::Stall {
            if let Some(stalled) = stalled {
                let _ = stalled.send(());
            }
            // Until the client gives up.
            while client.read(&mut byte)? > 0 {}
            return Ok(());
        }
        let rest: String = rest
            .split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        let mut server = std::net::TcpStream::connect(upstream)?;
        server.write_all(
            format!(
                "{first}\r\nConnection: close\r\n{}",
                rest.trim_end_matches("\r\n")
            )
            .as_bytes(),
        )?;
        server.write_all(b"\r\n\r\n")?;
        server.write_all(&body)?;
        let mut response = Vec::new();
        server.read_to_end(&mut response)?;
        if cut {
            let at = response
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(response.len(), |p| p + 4);
            let keep = at + (response.len() - at) / 2;
            response.truncate(keep);
        }
        client.write_all(&response)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A store that fails in the middle of a level: the run fails, with the store's one-line
/// error naming the object, whatever the provider made of the short stream.
fn a_store_failing_mid_stream_fails_the_run_naming_the_url(archiver: &str) {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket(BUCKET);
    let sb = Sandbox::new();
    gnu_chain_in_bucket(&sb, &store(&moto));
    let proxy = CuttingProxy::start(&moto, "host/home/home.1.tar.gz");
    let spec = format!(
        "[Content]\npath = {}\ninclude-files = a.txt d\nexclude-files =\n\n[Archive]\n\
         dest-dir = {URL}\ns3-endpoint = {}\ns3-region = us-east-1\narchiver = {archiver}\n\
         incremental = yes\n",
        sb.src_dir().display(),
        proxy.endpoint()
    );
    sb.write_spec_text("home", &spec);
    let url = format!("{URL}/home.1.tar.gz: ");
    let tmp = tmp(&sb).display().to_string();

    let out = restore(&sb);
    out.assert_clean_failure();
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].starts_with(&format!("aa: Error! [home] Unable to restore: {url}")),
        "{out}"
    );
    assert!(!out.stderr.contains(&tmp), "{out}");

    let out = verify(&sb);
    assert_verify_failed(&out);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with(&format!("home.1.tar.gz: FAILED: {url}"))),
        "{out}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("home.2.tar.gz: ok, ")),
        "{out}"
    );
    assert!(!out.stdout.contains(&tmp), "{out}");
}

/// An uncompressed chain: the providers read the tar stream from the pipe themselves (no
/// decompressor between), in reads of whatever size the pipe gives.
#[test]
fn a_plain_tar_chain_is_restored_and_verified_by_both_providers() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket(BUCKET);
    let store = store(&moto);
    for archiver in ["tar", "tar_internal"] {
        let sb = Sandbox::new();
        gnu_chain_of_type(&sb, &store, "tar");
        write_remote_spec(&sb, &moto, archiver);
        let out = restore(&sb);
        out.assert_success();
        assert_same_tree(
            &source_record(&sb),
            &restored_record(&target(&sb)),
            Compare::default(),
            &format!("plain tar chain restored by {archiver}"),
        );
        let out = verify(&sb);
        out.assert_success();
        assert!(
            out.stdout
                .contains("Verified 3 backup files of levels 0..2: all ok."),
            "{archiver}: {out}"
        );
    }
}

with_both_providers!(a_store_failing_mid_stream_fails_the_run_naming_the_url);

/// An interrupted restore from the store (its GET of a level never answered) leaves no pipe
/// and no temporary directory behind.
#[test]
fn an_interrupted_restore_leaves_no_pipe_behind() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket(BUCKET);
    let sb = Sandbox::new();
    gnu_chain_in_bucket(&sb, &store(&moto));
    let (tx, rx) = std::sync::mpsc::channel();
    let proxy = CuttingProxy::start_with(&moto, "host/home/home.tar.gz", Cut::Stall, Some(tx));
    let spec = format!(
        "[Content]\npath = {}\ninclude-files = a.txt d\nexclude-files =\n\n[Archive]\n\
         dest-dir = {URL}\ns3-endpoint = {}\ns3-region = us-east-1\narchiver = targz_internal\n\
         incremental = yes\n",
        sb.src_dir().display(),
        proxy.endpoint()
    );
    sb.write_spec_text("home", &spec);
    let mut child = aa(&sb)
        .args(["--restore", "home", "--target"])
        .arg(target(&sb))
        .spawn();
    // The provider reads level 0: its pipe is open and the GET waits for an answer.
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the GET of level 0 arrives");
    let streaming = aa_tests::dir_names(&tmp(&sb));
    assert_eq!(streaming.len(), 1, "{streaming:?}");
    assert!(streaming[0].starts_with("aa-stream-"), "{streaming:?}");
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_tmp_empty(&sb);
}

/// The round trip: `aa home` makes a chain in the bucket (the provider's snapshots record its
/// level), `aa --restore` rebuilds the source from it, `aa --verify` finds it sound.
fn backups_made_to_the_bucket_are_restored_from_it(archiver: &str) {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket(BUCKET);
    let sb = Sandbox::new();
    small_source(&sb);
    write_remote_spec(&sb, &moto, archiver);
    for run in 0..3 {
        fs::write(sb.src_dir().join("a.txt"), format!("run {run}\n")).unwrap();
        if run == 1 {
            fs::write(sb.src_dir().join("d/big.bin"), noise(3 << 20, 7)).unwrap();
        }
        if run == 2 {
            fs::remove_file(sb.src_dir().join("d/b.txt")).unwrap();
            fs::write(sb.src_dir().join("d/c.txt"), "c\n").unwrap();
        }
        settle_timestamps();
        aa(&sb).arg("home").run().assert_success();
    }
    let mut names: Vec<String> = store(&moto)
        .list()
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    names.sort();
    assert_eq!(names, ["home.1.tar.gz", "home.2.tar.gz", "home.tar.gz"]);

    let out = restore(&sb);
    out.assert_success();
    assert!(out.stdout.contains("from 3 backups into"), "{out}");
    assert_same_tree(
        &source_record(&sb),
        &restored_record(&target(&sb)),
        Compare::default(),
        "round trip through the bucket",
    );
    let out = verify(&sb);
    out.assert_success();
    assert!(
        out.stdout
            .contains("Verified 3 backup files of levels 0..2: all ok."),
        "{out}"
    );
    // The snapshots, not the listing, say where the chain ends.
    assert!(
        !out.stdout.contains("No snapshot records this chain"),
        "{out}"
    );
}

with_both_providers!(backups_made_to_the_bucket_are_restored_from_it);

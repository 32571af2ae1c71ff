//! The host's storage service against a real S3-compatible server (moto): multipart uploads
//! that become visible only when committed, aborted or dropped uploads that leave no object and
//! no pending multipart upload, server-side copy, listing sizes, and the one-line errors of a
//! missing bucket, refused credentials, a closed port and a silent endpoint.
//!
//! The service is reached through `aa_host::destination` (public but hidden from the docs):
//! the server harness is this crate's, so the tests live here rather than in the host.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use aa_host::destination::{Credentials, Destination, ObjectInfo, S3Options, Store, MIN_PART_SIZE};
use aa_tests::{free_port, Moto};

const MIB: usize = 1 << 20;

fn credentials() -> Credentials {
    Credentials {
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        session_token: None,
    }
}

/// Options for a server at `endpoint`: 5 MiB parts, one queued.
fn options(endpoint: &str) -> S3Options {
    S3Options {
        endpoint: Some(endpoint.to_string()),
        region: Some("us-east-1".into()),
        path_style: Some(true),
        part_size: MIN_PART_SIZE,
        queued_parts: 1,
        connect_timeout: Duration::from_secs(5),
        io_timeout: Duration::from_secs(30),
        credentials: Some(credentials()),
    }
}

fn open(url: &str, options: &S3Options) -> Store {
    Store::open(&Destination::parse(url).unwrap(), options).unwrap()
}

/// A server with a bucket `bkp`, and the store `s3://bkp/host/home` on it.
fn moto_and_store() -> Option<(Moto, Store)> {
    let moto = Moto::start()?;
    moto.create_bucket("bkp");
    let store = open("s3://bkp/host/home", &options(&moto.endpoint()));
    Some((moto, store))
}

/// `len` bytes that differ with `seed` and never repeat with a short period.
fn data(len: usize, seed: u64) -> Vec<u8> {
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

/// Writes `bytes` in pieces of an odd size, as a pipe would deliver them.
fn write_in_pieces(upload: &mut impl Write, bytes: &[u8]) {
    for piece in bytes.chunks(100_003) {
        upload.write_all(piece).unwrap();
    }
}

fn read_all(store: &Store, name: &str) -> Vec<u8> {
    let mut read = Vec::new();
    store.reader(name).unwrap().read_to_end(&mut read).unwrap();
    read
}

fn put(store: &Store, name: &str, bytes: &[u8]) {
    let mut upload = store.upload(name).unwrap();
    write_in_pieces(&mut upload, bytes);
    upload.commit().unwrap();
}

#[test]
fn a_multipart_upload_reads_back_equal() {
    let Some((moto, store)) = moto_and_store() else {
        return;
    };
    let bytes = data(12 * MIB, 1);
    put(&store, "home.1.aa.tar.gz", &bytes);
    // Three parts (5 + 5 + 2 MiB): S3 marks a multipart upload's ETag with its part count.
    assert!(
        moto.etag("bkp", "host/home/home.1.aa.tar.gz")
            .ends_with("-3"),
        "not uploaded in 3 parts"
    );
    assert_eq!(store.size("home.1.aa.tar.gz").unwrap(), bytes.len() as u64);
    assert!(store.exists("home.1.aa.tar.gz").unwrap());
    assert!(
        read_all(&store, "home.1.aa.tar.gz") == bytes,
        "read back differs"
    );
    assert_eq!(moto.pending_uploads("bkp"), Vec::<String>::new());
}

#[test]
fn aborted_and_dropped_uploads_leave_no_object_and_no_pending_upload() {
    let Some((moto, store)) = moto_and_store() else {
        return;
    };
    put(&store, "home.tar.gz", b"the previous backup");

    // Two full parts: OpenDAL holds back the first until the second comes, then starts the
    // multipart upload, so it exists on the server when it is aborted.
    let mut upload = store.upload("home.tar.gz").unwrap();
    write_in_pieces(&mut upload, &data(11 * MIB, 2));
    assert_eq!(moto.pending_uploads("bkp"), ["host/home/home.tar.gz"]);
    upload.abort().unwrap();
    assert_eq!(moto.pending_uploads("bkp"), Vec::<String>::new());
    assert_eq!(read_all(&store, "home.tar.gz"), b"the previous backup");

    let mut upload = store.upload("new.tar.gz").unwrap();
    write_in_pieces(&mut upload, &data(11 * MIB, 3));
    assert_eq!(moto.pending_uploads("bkp"), ["host/home/new.tar.gz"]);
    drop(upload);
    assert_eq!(moto.pending_uploads("bkp"), Vec::<String>::new());
    assert!(!store.exists("new.tar.gz").unwrap());

    // Aborted before any part was sent: nothing was started, nothing remains.
    let mut upload = store.upload("small.tar.gz").unwrap();
    upload.write_all(b"less than a part").unwrap();
    upload.abort().unwrap();
    assert!(!store.exists("small.tar.gz").unwrap());
    assert_eq!(
        store.list().unwrap(),
        [ObjectInfo {
            name: "home.tar.gz".into(),
            size: 19
        }]
    );
}

#[test]
fn the_previous_object_stays_intact_until_commit() {
    let Some((moto, store)) = moto_and_store() else {
        return;
    };
    let old = data(6 * MIB, 4);
    let new = data(11 * MIB, 5);
    put(&store, "home.tar.gz", &old);
    let mut upload = store.upload("home.tar.gz").unwrap();
    write_in_pieces(&mut upload, &new);
    // Everything written, two parts sent: the name still leads to the old backup.
    assert!(
        read_all(&store, "home.tar.gz") == old,
        "replaced before commit"
    );
    assert_eq!(store.size("home.tar.gz").unwrap(), old.len() as u64);
    upload.commit().unwrap();
    assert!(
        read_all(&store, "home.tar.gz") == new,
        "not replaced by commit"
    );
    assert_eq!(moto.pending_uploads("bkp"), Vec::<String>::new());
}

#[test]
fn copy_delete_and_list_sizes() {
    let Some((moto, store)) = moto_and_store() else {
        return;
    };
    let a = data(3 * MIB + 17, 6);
    let b = data(6 * MIB + 1, 7);
    put(&store, "home.tar.gz", &a);
    put(&store, "home.1.aa.tar.gz", &b);
    store.copy("home.tar.gz", "home.aa.tar.gz").unwrap();
    assert!(read_all(&store, "home.aa.tar.gz") == a, "the copy differs");
    store.delete("home.tar.gz").unwrap();
    // Deleting what is not there is no error (a repeated cleanup).
    store.delete("home.tar.gz").unwrap();
    // Objects outside the prefix, or below it, are not this destination's backups.
    let other = open("s3://bkp/host", &options(&moto.endpoint()));
    put(&other, "other.tar.gz", b"12345");
    let top = open("s3://bkp", &options(&moto.endpoint()));
    put(&top, "top.tar.gz", b"1");
    assert_eq!(
        store.list().unwrap(),
        [
            ObjectInfo {
                name: "home.1.aa.tar.gz".into(),
                size: b.len() as u64
            },
            ObjectInfo {
                name: "home.aa.tar.gz".into(),
                size: a.len() as u64
            },
        ]
    );
    assert_eq!(
        other.list().unwrap(),
        [ObjectInfo {
            name: "other.tar.gz".into(),
            size: 5
        }]
    );
    assert!(!store.exists("home.tar.gz").unwrap());
    let e = store.size("home.tar.gz").unwrap_err().to_string();
    assert_eq!(e, "s3://bkp/host/home/home.tar.gz: no such object");
}

/// An error is one line, starts with the URL of what was asked for, and says `why`.
fn assert_one_line(e: impl ToString, url: &str, why: &str) {
    let e = e.to_string();
    assert!(!e.contains('\n'), "{e}");
    assert!(e.starts_with(&format!("{url}: ")), "{e}");
    assert!(e.contains(why), "{e}");
}

#[test]
fn a_missing_bucket_is_one_line_naming_the_url() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let store = open("s3://nobucket/p", &options(&moto.endpoint()));
    let url = "s3://nobucket/p";
    assert_eq!(
        store.list().unwrap_err().to_string(),
        "s3://nobucket/p: no such bucket"
    );
    assert_one_line(
        store.exists("n.tar.gz").unwrap_err(),
        &format!("{url}/n.tar.gz"),
        "no such bucket",
    );
    assert_one_line(
        store.size("n.tar.gz").unwrap_err(),
        &format!("{url}/n.tar.gz"),
        "no such bucket",
    );
    let mut read = Vec::new();
    let e = match store.reader("n.tar.gz") {
        Err(e) => e.to_string(),
        Ok(mut reader) => reader.read_to_end(&mut read).unwrap_err().to_string(),
    };
    assert_one_line(e, &format!("{url}/n.tar.gz"), "no such bucket");
    // A small upload is sent at commit, a large one when its multipart upload starts.
    let mut upload = store.upload("n.tar.gz").unwrap();
    upload.write_all(b"x").unwrap();
    assert_one_line(
        upload.commit().unwrap_err(),
        &format!("{url}/n.tar.gz"),
        "no such bucket",
    );
    let mut upload = store.upload("n.tar.gz").unwrap();
    let e = upload.write_all(&data(11 * MIB, 8)).unwrap_err();
    assert_one_line(e, &format!("{url}/n.tar.gz"), "no such bucket");
}

#[test]
fn refused_credentials_are_one_line_naming_the_url() {
    let Some(moto) = Moto::start_checking_credentials() else {
        return;
    };
    let store = open("s3://bkp/p", &options(&moto.endpoint()));
    assert_one_line(store.list().unwrap_err(), "s3://bkp/p", "access denied");
    let mut upload = store.upload("n.tar.gz").unwrap();
    upload.write_all(b"x").unwrap();
    assert_one_line(
        upload.commit().unwrap_err(),
        "s3://bkp/p/n.tar.gz",
        "access denied",
    );
}

#[test]
fn a_closed_port_is_one_line_naming_the_url() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let store = open("s3://bkp/p", &options(&endpoint));
    let e = store.list().unwrap_err().to_string();
    assert_one_line(&e, "s3://bkp/p", &format!("cannot connect to {endpoint}"));
    assert!(e.contains("refused"), "{e}");
    assert_one_line(
        store.exists("n").unwrap_err(),
        "s3://bkp/p/n",
        "cannot connect",
    );
}

#[test]
fn a_silent_endpoint_times_out_instead_of_hanging() {
    // Connections are accepted by the kernel (the backlog) and never answered.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let options = S3Options {
        io_timeout: Duration::from_secs(1),
        ..options(&endpoint)
    };
    let store = open("s3://bkp/p", &options);
    assert_one_line(
        store.list().unwrap_err(),
        "s3://bkp/p",
        &format!("timed out talking to {endpoint}"),
    );
    drop(listener);
}

//! A real S3-compatible server for the object-store tests: moto's `moto_server` (PyPI
//! `moto[server]`, installed into `<target>/moto-venv` by `tests/setup-moto.sh`, which
//! `make test` and `.ci/run` run). It enforces S3's multipart rules (the 5 MiB minimum part,
//! aborts, `ListMultipartUploads`), which a mock of our own would only assume.
//!
//! Each [`Moto`] is one server on a free port of 127.0.0.1, stopped when dropped. The checks of
//! the server's state (pending multipart uploads, an object's ETag) are plain unsigned HTTP
//! requests: moto without authentication answers them, and they need no second S3 client.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{target_dir, under_ci, workspace_dir};

/// `moto_server` from `$AA_MOTO_VENV`, else `<target>/moto-venv`, else
/// `<workspace>/target/moto-venv`; `None` when none is installed.
pub fn moto_server_bin() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(venv) = std::env::var_os("AA_MOTO_VENV").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(venv).join("bin/moto_server"));
    }
    candidates.push(target_dir().join("moto-venv/bin/moto_server"));
    candidates.push(workspace_dir().join("target/moto-venv/bin/moto_server"));
    candidates.into_iter().find(|bin| bin.is_file())
}

/// A running `moto_server`, killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
    log: File,
}

/// How often, and how long apart, a starting server is asked whether it listens: up to a
/// minute on a loaded machine, and usually done after a second or two.
const START_TRIES: u32 = 600;
const START_POLL: Duration = Duration::from_millis(100);

impl Moto {
    /// Starts a server with authentication off (any credentials are accepted, as by a fresh
    /// MinIO with its root key). `None`, after saying so, when moto is not installed and the
    /// tests do not run under CI; under CI a missing moto fails the test.
    pub fn start() -> Option<Moto> {
        Moto::start_with_env(&[])
    }

    /// Starts a server that checks credentials: it knows no access key, so every request is
    /// refused as by a store given wrong credentials.
    pub fn start_checking_credentials() -> Option<Moto> {
        Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")])
    }

    fn start_with_env(env: &[(&str, &str)]) -> Option<Moto> {
        let Some(bin) = moto_server_bin() else {
            assert!(
                !under_ci(),
                "moto_server is not installed: run tests/setup-moto.sh (make test does)"
            );
            eprintln!("skipped: moto_server is not installed (run tests/setup-moto.sh)");
            return None;
        };
        // A free port can be taken by someone else before moto binds it: then moto exits and
        // another port is tried.
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = tempfile::tempfile().expect("a temporary file for moto's log");
            let mut command = Command::new(&bin);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("moto's log"))
                .stderr(log.try_clone().expect("moto's log"));
            // Each request's log line is written when it is answered, not when moto exits.
            command.env("PYTHONUNBUFFERED", "1");
            for (name, value) in env {
                command.env(name, value);
            }
            // No credentials or endpoint of the developer's reach the server.
            for name in ["AWS_ENDPOINT_URL", "AWS_PROFILE"] {
                command.env_remove(name);
            }
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
            let mut moto = Moto {
                child,
                port,
                log: log.try_clone().expect("moto's log"),
            };
            if moto.wait_until_listening() {
                return Some(moto);
            }
            last_log = moto.log();
            drop(moto);
        }
        panic!("moto_server did not start; its last output:\n{last_log}");
    }

    /// Polls until the server accepts a connection; false if it exited or never did.
    fn wait_until_listening(&mut self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        for _ in 0..START_TRIES {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                return true;
            }
            std::thread::sleep(START_POLL);
        }
        false
    }

    /// What the server wrote: its start-up lines, then one line per request it answered
    /// (`"PUT /bucket/key?partNumber=1&uploadId=... HTTP/1.1" 200 -`), written as it answers.
    pub fn log(&mut self) -> String {
        let mut text = String::new();
        let _ = self.log.rewind();
        let _ = self.log.read_to_string(&mut text);
        text
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The server's URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends one unsigned request; the status code and the body.
    pub fn request(&self, method: &str, path_and_query: &str) -> (u16, String) {
        let (status, _, body) = self.request_full(method, path_and_query);
        (status, body)
    }

    /// Sends one unsigned request; the status code, the headers (lowercase names) and the
    /// body.
    pub fn request_full(
        &self,
        method: &str,
        path_and_query: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
            .unwrap_or_else(|e| panic!("{}: {e}", self.endpoint()));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a read timeout");
        write!(
            stream,
            "{method} {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n",
            self.port
        )
        .expect("the request is sent");
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .unwrap_or_else(|e| panic!("{method} {path_and_query}: {e}"));
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{method} {path_and_query}: no status in {head:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers, body.to_string())
    }

    /// Creates `bucket`.
    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = self.request("PUT", &format!("/{bucket}"));
        assert_eq!(status, 200, "creating bucket {bucket}: {body}");
    }

    /// The keys of the multipart uploads pending in `bucket` (ListMultipartUploads).
    pub fn pending_uploads(&self, bucket: &str) -> Vec<String> {
        let (status, body) = self.request("GET", &format!("/{bucket}?uploads"));
        assert_eq!(status, 200, "ListMultipartUploads of {bucket}: {body}");
        body.split("<Upload>")
            .skip(1)
            .map(|upload| between(upload, "<Key>", "</Key>").unwrap_or_default())
            .collect()
    }

    /// The ETag of an object (a multipart upload's ends in `-PARTS`).
    pub fn etag(&self, bucket: &str, key: &str) -> String {
        let (status, headers, body) = self.request_full("HEAD", &format!("/{bucket}/{key}"));
        assert_eq!(status, 200, "HEAD {bucket}/{key}: {body}");
        headers
            .into_iter()
            .find(|(k, _)| k == "etag")
            .map(|(_, v)| v.trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("HEAD {bucket}/{key}: no ETag"))
    }
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].to_string())
}

/// A port of 127.0.0.1 that nobody listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

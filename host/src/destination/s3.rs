//! An S3-compatible object store as a destination, through Apache OpenDAL.
//!
//! OpenDAL 0.57 is the newest release whose declared rust-version (1.85) is our MSRV; only its
//! S3 service is built, over rustls. Its async API runs on a small tokio runtime each store
//! owns, every call blocking on it: the caller (`aa`'s archiving) is synchronous, and 0.57's
//! blocking writer cannot abort a multipart upload, which is the one thing this module must
//! never fail to do.
//!
//! OpenDAL's own configuration loading (environment, `~/.aws/config`, instance metadata) is
//! off: credentials, endpoint and region come from [`S3Options`] and [`Credentials`] only, so
//! the rules stated there (a private credentials file, nothing from a `.aa` file) cannot be
//! bypassed. No retry layer is installed and the HTTP client has connect and read timeouts, so
//! a dead endpoint is an error within those, never a hang.
//!
//! Memory: a backup is written in parts of [`S3Options::part_size`] bytes (S3's minimum is
//! 5 MiB, except for the last part), one sent at a time; OpenDAL fills the next part while one
//! is sent (and holds back the first: it starts the multipart upload only on the second part,
//! so a small backup is one PUT), and a queue of [`S3Options::queued_parts`] parts in front of
//! it keeps the backup being made meanwhile. An upload so holds at most
//! `part_size x (queued_parts + 2)` bytes of data, plus a [`COALESCE`] buffer: 24 MiB with
//! the defaults (8 MiB parts, 1 queued). Parts are not sent in parallel because OpenDAL
//! 0.57's parallel multipart writer does not bound its memory (see [`S3Store::upload`]).
//! S3 allows 10,000 parts: the default 8 MiB parts allow backups up to 78 GiB. A server-side
//! copy is one CopyObject, which S3 allows up to 5 GiB.

use std::io::{self, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use opendal::layers::HttpClientLayer;
use opendal::raw::HttpClient;
use opendal::services::S3;
use opendal::{Buffer, BufferStream, ErrorKind, Operator};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};

use super::{Credentials, DestinationError, ObjectInfo};

/// S3's smallest part of a multipart upload (all but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// The part size unless configured.
pub const DEFAULT_PART_SIZE: usize = 8 << 20;
/// How many parts are sent at once unless configured.
pub const DEFAULT_QUEUED_PARTS: usize = 1;
/// S3's largest part.
const MAX_PART_SIZE: usize = 5 << 30;
/// Small writes (a tar block) are gathered into pieces of this size before they go to OpenDAL:
/// fewer trips through the runtime, and fewer buffers in OpenDAL's part queue.
const COALESCE: usize = 256 << 10;

/// How to reach an object store. The application fills it from `aa.conf`; what is left `None`
/// comes from the environment as the AWS CLI reads it.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// The service's URL (`http://127.0.0.1:9000`); else `AWS_ENDPOINT_URL_S3`, else
    /// `AWS_ENDPOINT_URL`; else AWS.
    pub endpoint: Option<String>,
    /// Else `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing (`ENDPOINT/BUCKET/KEY`, what MinIO-like servers want) rather than
    /// virtual-hosted (`BUCKET.ENDPOINT/KEY`). `None`: path style when an endpoint is set
    /// (a self-hosted server), virtual-hosted for AWS.
    pub path_style: Option<bool>,
    /// Bytes per part of an upload, at least [`MIN_PART_SIZE`].
    pub part_size: usize,
    /// Parts queued while one is sent (0: the backup waits while a part is sent).
    pub queued_parts: usize,
    /// How long connecting to the endpoint may take.
    pub connect_timeout: Duration,
    /// How long the endpoint may leave a request unanswered or a transfer stalled.
    pub io_timeout: Duration,
    /// `None`: [`Credentials::from_environment`].
    pub credentials: Option<Credentials>,
}

impl Default for S3Options {
    fn default() -> S3Options {
        S3Options {
            endpoint: None,
            region: None,
            path_style: None,
            part_size: DEFAULT_PART_SIZE,
            queued_parts: DEFAULT_QUEUED_PARTS,
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(60),
            credentials: None,
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Where the store is, once the options are completed from the environment.
#[derive(Debug, PartialEq, Eq)]
struct Where {
    region: String,
    endpoint: Option<String>,
    path_style: bool,
}

impl S3Options {
    /// The region, endpoint and addressing, as the AWS CLI completes them: `AWS_REGION`, then
    /// `AWS_DEFAULT_REGION`; `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`.
    fn locate(&self, env: &dyn Fn(&str) -> Option<String>) -> Where {
        let region = self
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"));
        let path_style = self.path_style.unwrap_or(endpoint.is_some());
        Where {
            region,
            endpoint,
            path_style,
        }
    }
}

/// One bucket prefix of an object store.
#[derive(Debug)]
pub struct S3Store {
    runtime: Arc<Runtime>,
    op: Operator,
    /// `s3://bucket/prefix`, naming the objects in messages.
    url: String,
    endpoint: String,
    part_size: usize,
    queued_parts: usize,
}

impl S3Store {
    pub(super) fn open(
        bucket: &str,
        prefix: &str,
        url: &str,
        options: &S3Options,
    ) -> Result<S3Store, DestinationError> {
        let fail = |why: String| DestinationError::new(format!("{url}: {why}"));
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&options.part_size) {
            return Err(fail(format!(
                "part size {} is outside S3's 5 MiB to 5 GiB",
                options.part_size
            )));
        }
        let credentials = match &options.credentials {
            Some(c) => c.clone(),
            None => Credentials::from_environment().map_err(|e| fail(e.to_string()))?,
        };
        let Where {
            region,
            endpoint,
            path_style,
        } = options.locate(&env);

        let mut builder = S3::default()
            .bucket(bucket)
            .root(&format!("/{prefix}"))
            .region(&region)
            .access_key_id(&credentials.access_key_id)
            .secret_access_key(&credentials.secret_access_key)
            .disable_config_load()
            .disable_ec2_metadata();
        if let Some(token) = &credentials.session_token {
            builder = builder.session_token(token);
        }
        if let Some(endpoint) = &endpoint {
            builder = builder.endpoint(endpoint);
        }
        if !path_style {
            builder = builder.enable_virtual_host_style();
        }
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.io_timeout)
            .build()
            .map_err(|e| fail(format!("cannot set up the HTTP client: {e}")))?;
        let op = Operator::new(builder)
            .map_err(|e| fail(describe(&e, "")))?
            .layer(HttpClientLayer::new(HttpClient::with(client)))
            .finish();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("aa-s3")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the I/O runtime: {e}")))?;
        Ok(S3Store {
            runtime: Arc::new(runtime),
            op,
            url: url.to_string(),
            endpoint: endpoint.unwrap_or_else(|| format!("s3.{region}.amazonaws.com")),
            part_size: options.part_size,
            queued_parts: options.queued_parts,
        })
    }

    pub(super) fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    fn error(&self, name: Option<&str>, e: &opendal::Error) -> DestinationError {
        let what = name.map_or_else(|| self.url.clone(), |n| self.url(n));
        DestinationError::new(format!("{what}: {}", describe(e, &self.endpoint)))
    }

    pub(super) fn list(&self) -> Result<Vec<ObjectInfo>, DestinationError> {
        let entries = self
            .runtime
            .block_on(self.op.list("/"))
            .map_err(|e| self.error(None, &e))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().is_file() && !e.path().contains('/'))
            .map(|e| ObjectInfo {
                size: e.metadata().content_length(),
                name: e.path().to_string(),
            })
            .collect())
    }

    /// A HEAD answer carries no body: a missing bucket looks like a missing object. A listing
    /// tells them apart, asked only when the object seems missing.
    fn check_bucket(&self, name: &str) -> Result<(), DestinationError> {
        self.runtime
            .block_on(async {
                let mut lister = self.op.lister("/").await?;
                lister.next().await.transpose().map(drop)
            })
            .map_err(|e| self.error(Some(name), &e))
    }

    pub(super) fn exists(&self, name: &str) -> Result<bool, DestinationError> {
        match self.runtime.block_on(self.op.stat(name)) {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == ErrorKind::NotFound => self.check_bucket(name).map(|()| false),
            Err(e) => Err(self.error(Some(name), &e)),
        }
    }

    pub(super) fn size(&self, name: &str) -> Result<u64, DestinationError> {
        match self.runtime.block_on(self.op.stat(name)) {
            Ok(meta) => Ok(meta.content_length()),
            Err(e) => {
                if e.kind() == ErrorKind::NotFound {
                    self.check_bucket(name)?;
                }
                Err(self.error(Some(name), &e))
            }
        }
    }

    pub(super) fn reader(&self, name: &str) -> Result<S3Reader, DestinationError> {
        let stream = self
            .runtime
            .block_on(async { self.op.reader(name).await?.into_stream(..).await })
            .map_err(|e| self.error(Some(name), &e))?;
        Ok(S3Reader {
            runtime: self.runtime.clone(),
            stream,
            current: Buffer::new(),
            url: self.url(name),
            endpoint: self.endpoint.clone(),
        })
    }

    pub(super) fn upload(&self, name: &str) -> Result<S3Upload, DestinationError> {
        // One part sent at a time: OpenDAL 0.57's concurrent multipart writer keeps every
        // finished part's buffer until the upload completes when parts finish before the
        // next is handed over (a backup made more slowly than the store takes it), so its
        // memory grows with the backup. The queue in front of it keeps the backup being made
        // while a part is sent.
        let options = opendal::options::WriteOptions {
            chunk: Some(self.part_size),
            concurrent: 1,
            ..Default::default()
        };
        let writer = self
            .runtime
            .block_on(self.op.writer_options(name, options))
            .map_err(|e| self.error(Some(name), &e))?;
        let queue = self.queued_parts * self.part_size / COALESCE;
        Ok(S3Upload::start(
            &self.runtime,
            writer,
            queue,
            self.url(name),
            self.endpoint.clone(),
        ))
    }

    pub(super) fn copy(&self, from: &str, to: &str) -> Result<(), DestinationError> {
        self.runtime
            .block_on(self.op.copy(from, to))
            .map(drop)
            .map_err(|e| self.error(Some(from), &e))
    }

    pub(super) fn delete(&self, name: &str) -> Result<(), DestinationError> {
        self.runtime
            .block_on(self.op.delete(name))
            .map_err(|e| self.error(Some(name), &e))
    }
}

/// One line for an error of the store: what S3 said (its error code turned into words), or
/// why the endpoint could not be reached; never OpenDAL's debug dump of the response.
fn describe(e: &opendal::Error, endpoint: &str) -> String {
    let code = s3_error_code(e.message());
    match code.as_deref() {
        Some("NoSuchBucket") => return "no such bucket".into(),
        Some("NoSuchKey") => return "no such object".into(),
        Some("InvalidAccessKeyId") => {
            return "access denied: the store does not know this access key id".into()
        }
        Some("SignatureDoesNotMatch") => {
            return "access denied: the secret access key does not match".into()
        }
        Some("AccessDenied") => return "access denied".into(),
        Some("ExpiredToken" | "InvalidToken") => {
            return "access denied: the session token is invalid or expired".into()
        }
        Some("EntityTooSmall") => return "a part is below the store's minimum size".into(),
        _ => {}
    }
    // Transport errors: the reqwest error somewhere down the chain of sources.
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<reqwest::Error>() {
            if r.is_timeout() {
                return format!("timed out talking to {endpoint}");
            }
            if r.is_connect() {
                return format!("cannot connect to {endpoint}: {}", innermost(r));
            }
            return format!("talking to {endpoint}: {}", innermost(r));
        }
        source = s.source();
    }
    match (e.kind(), code) {
        (ErrorKind::NotFound, _) => "no such object".into(),
        (ErrorKind::PermissionDenied, _) => "access denied".into(),
        (_, Some(code)) => format!("the store answered {code}"),
        (kind, None) => {
            let first_line = e.message().lines().next().unwrap_or_default();
            format!("{kind}: {first_line}")
        }
    }
}

/// The innermost cause of an error, which is the informative one for a connection
/// ("Connection refused (os error 111)").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

/// The `Code` of an S3 error, as OpenDAL keeps it (`S3Error { code: "NoSuchBucket", ... }`) or
/// as the XML body says (`<Code>NoSuchBucket</Code>`).
fn s3_error_code(message: &str) -> Option<String> {
    let after = |start: &str, end: char| {
        let from = message.find(start)? + start.len();
        let len = message[from..].find(end)?;
        Some(message[from..from + len].to_string()).filter(|c| !c.is_empty())
    };
    after("code: \"", '"').or_else(|| after("<Code>", '<'))
}

/// An object being read as it arrives.
pub struct S3Reader {
    runtime: Arc<Runtime>,
    stream: BufferStream,
    current: Buffer,
    url: String,
    endpoint: String,
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use bytes::Buf;
        while self.current.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(next)) => self.current = next,
                Some(Err(e)) => {
                    return Err(io::Error::other(format!(
                        "{}: {}",
                        self.url,
                        describe(&e, &self.endpoint)
                    )))
                }
            }
        }
        let n = buf.len().min(self.current.remaining());
        self.current.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}

/// What the uploader task is told, in order.
enum Command {
    Data(Buffer),
    Commit,
}

/// How an upload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Committed,
    /// Given up (an abort asked for, or the upload dropped), the multipart upload aborted.
    Aborted,
    /// One line naming the object: why the upload failed (it was aborted, or says why not).
    Failed(String),
}

/// What an upload, its abort handles and its uploader task share.
struct Shared {
    /// Set once, by the uploader task as it ends.
    outcome: Mutex<Option<Outcome>>,
    ended: Condvar,
    /// Set to ask the uploader task to abort.
    abort: watch::Sender<bool>,
}

impl Shared {
    fn outcome(&self) -> MutexGuard<'_, Option<Outcome>> {
        // Poisoning holds no meaning here: the outcome is set once, whole.
        self.outcome.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the uploader task has ended; how.
    fn wait(&self) -> Outcome {
        let mut outcome = self.outcome();
        loop {
            if let Some(o) = outcome.as_ref() {
                return o.clone();
            }
            outcome = self.ended.wait(outcome).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A multipart upload in progress. Dropped without commit, it is aborted.
///
/// The bytes go, in pieces of [`COALESCE`], through a bounded queue to an uploader task on
/// the store's runtime, which hands them to OpenDAL: the caller fills the queue while a part
/// is sent, and waits when it is full. A failure or an abort ends the task, which aborts the
/// multipart upload; the next write then fails with its message.
pub struct S3Upload {
    /// `None` once the commit is sent.
    commands: Option<mpsc::Sender<Command>>,
    shared: Arc<Shared>,
    /// Written bytes not yet queued.
    pending: Vec<u8>,
    url: String,
}

/// Aborts an [`S3Upload`] from another thread; see [`super::AbortHandle`].
#[derive(Clone)]
pub struct S3AbortHandle {
    shared: Arc<Shared>,
}

impl S3AbortHandle {
    /// Aborts the upload unless it has already ended; says whether it aborted it. Waits until
    /// the abort is done (a part being sent is dropped; bounded by the I/O timeout).
    pub(super) fn abort(&self) -> Result<bool, DestinationError> {
        if self.shared.outcome().is_some() {
            return Ok(false);
        }
        self.shared.abort.send_replace(true);
        match self.shared.wait() {
            Outcome::Aborted => Ok(true),
            Outcome::Committed => Ok(false),
            Outcome::Failed(message) => Err(DestinationError::new(message)),
        }
    }
}

/// The uploader task: hands the queued bytes to OpenDAL's writer in order, then completes
/// the multipart upload on [`Command::Commit`]; aborts it when asked to, when a part fails,
/// or when the upload is dropped (the queue closed without a commit).
async fn upload(
    mut writer: opendal::Writer,
    mut commands: mpsc::Receiver<Command>,
    mut abort: watch::Receiver<bool>,
    url: String,
    endpoint: String,
) -> Outcome {
    loop {
        // An abort asked for wins over queued data (`biased`); a closed watch (every handle
        // gone) cannot happen while this runs, as the upload keeps one.
        let command = tokio::select! {
            biased;
            _ = abort.changed() => None,
            command = commands.recv() => command,
        };
        let failed = match command {
            Some(Command::Data(bytes)) => {
                let written = tokio::select! {
                    biased;
                    _ = abort.changed() => None,
                    written = writer.write(bytes) => Some(written),
                };
                match written {
                    Some(Ok(())) => continue,
                    Some(Err(e)) => e,
                    None => break,
                }
            }
            // Completing is not cut short by an abort: the object may be in place already.
            Some(Command::Commit) => match writer.close().await {
                Ok(_) => return Outcome::Committed,
                Err(e) => e,
            },
            None => break,
        };
        let aborted = writer.abort().await;
        return Outcome::Failed(failure(&url, &endpoint, &failed, aborted));
    }
    match writer.abort().await {
        Ok(()) => Outcome::Aborted,
        Err(e) => Outcome::Failed(format!(
            "{url}: the unfinished multipart upload could not be aborted ({}): the store \
             keeps its parts until they are aborted or a lifecycle rule removes them",
            describe(&e, &endpoint)
        )),
    }
}

/// The error `e` that ended an upload, and whether aborting it then failed too (the store
/// unreachable, say): its parts then stay on the store, which the user must know.
fn failure(url: &str, endpoint: &str, e: &opendal::Error, aborted: opendal::Result<()>) -> String {
    let mut message = format!("{url}: {}", describe(e, endpoint));
    if let Err(abort) = aborted {
        message += &format!(
            "; the unfinished multipart upload could not be aborted either ({}): the store \
             keeps its parts until they are aborted or a lifecycle rule removes them",
            describe(&abort, endpoint)
        );
    }
    message
}

impl S3Upload {
    fn start(
        runtime: &Runtime,
        writer: opendal::Writer,
        queue: usize,
        url: String,
        endpoint: String,
    ) -> S3Upload {
        let (commands, receiver) = mpsc::channel(queue.max(1));
        let (abort, aborted) = watch::channel(false);
        let shared = Arc::new(Shared {
            outcome: Mutex::new(None),
            ended: Condvar::new(),
            abort,
        });
        let task_shared = shared.clone();
        let task_url = url.clone();
        runtime.spawn(async move {
            let outcome = upload(writer, receiver, aborted, task_url, endpoint).await;
            *task_shared.outcome() = Some(outcome);
            task_shared.ended.notify_all();
        });
        S3Upload {
            commands: Some(commands),
            shared,
            pending: Vec::new(),
            url,
        }
    }

    pub(super) fn abort_handle(&self) -> S3AbortHandle {
        S3AbortHandle {
            shared: self.shared.clone(),
        }
    }

    /// Why the upload cannot go on: how its task ended.
    fn ended(&self) -> DestinationError {
        DestinationError::new(match self.shared.wait() {
            Outcome::Failed(message) => message,
            Outcome::Aborted => format!("{}: the upload was aborted", self.url),
            Outcome::Committed => format!("{}: the upload is already complete", self.url),
        })
    }

    fn send(&mut self, command: Command) -> Result<(), DestinationError> {
        let Some(commands) = self.commands.as_ref() else {
            return Err(self.ended());
        };
        // Waits while the queue is full. Never called on the runtime's threads: the callers
        // are the application's.
        if commands.blocking_send(command).is_err() {
            return Err(self.ended());
        }
        Ok(())
    }

    /// Queues the pending bytes.
    fn send_pending(&mut self) -> Result<(), DestinationError> {
        let piece = std::mem::take(&mut self.pending);
        self.send(Command::Data(Buffer::from(piece)))
    }

    pub(super) fn commit(mut self) -> Result<(), DestinationError> {
        if !self.pending.is_empty() {
            self.send_pending()?;
        }
        self.send(Command::Commit)?;
        self.commands = None;
        match self.shared.wait() {
            Outcome::Committed => Ok(()),
            _ => Err(self.ended()),
        }
    }

    pub(super) fn abort(self) -> Result<(), DestinationError> {
        self.abort_handle().abort().map(drop)
    }
}

impl Write for S3Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.shared.outcome().is_some() {
            return Err(self.ended().into());
        }
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(COALESCE);
        }
        let n = buf.len().min(COALESCE - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == COALESCE {
            self.send_pending()?;
        }
        Ok(n)
    }

    /// Nothing to do: a part smaller than S3's minimum cannot be sent before the last.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for S3Upload {
    /// Aborts an upload neither committed nor aborted, and waits for it: the process may end
    /// right after.
    fn drop(&mut self) {
        if self.shared.outcome().is_none() && self.commands.is_some() {
            if let Err(e) = self.abort_handle().abort() {
                log::warn!("{e} (aborting the unfinished upload)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_error_codes_are_found() {
        assert_eq!(
            s3_error_code(r#"S3Error { code: "NoSuchBucket", message: "x" }"#).as_deref(),
            Some("NoSuchBucket")
        );
        assert_eq!(
            s3_error_code("<Error><Code>AccessDenied</Code></Error>").as_deref(),
            Some("AccessDenied")
        );
        assert_eq!(s3_error_code("plain"), None);
    }

    #[test]
    fn options_are_completed_from_the_environment() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let aws = S3Options::default().locate(&vars(&[]));
        assert_eq!(
            aws,
            Where {
                region: "us-east-1".into(),
                endpoint: None,
                path_style: false
            }
        );
        let env = vars(&[
            ("AWS_DEFAULT_REGION", "eu-west-3"),
            ("AWS_ENDPOINT_URL", "http://general:9000"),
        ]);
        assert_eq!(
            S3Options::default().locate(&env),
            Where {
                region: "eu-west-3".into(),
                endpoint: Some("http://general:9000".into()),
                path_style: true
            }
        );
        let env = vars(&[
            ("AWS_REGION", "eu-north-1"),
            ("AWS_DEFAULT_REGION", "eu-west-3"),
            ("AWS_ENDPOINT_URL", "http://general:9000"),
            ("AWS_ENDPOINT_URL_S3", "http://s3only:9000"),
        ]);
        let found = S3Options::default().locate(&env);
        assert_eq!(found.region, "eu-north-1");
        assert_eq!(found.endpoint.as_deref(), Some("http://s3only:9000"));
        // What aa.conf sets wins over the environment.
        let configured = S3Options {
            region: Some("ap-south-1".into()),
            endpoint: Some("https://minio.lan".into()),
            path_style: Some(false),
            ..S3Options::default()
        };
        assert_eq!(
            configured.locate(&env),
            Where {
                region: "ap-south-1".into(),
                endpoint: Some("https://minio.lan".into()),
                path_style: false
            }
        );
    }

    #[test]
    fn bad_part_settings_are_refused_naming_the_url() {
        let creds = Credentials {
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
            session_token: None,
        };
        let small = S3Options {
            part_size: MIN_PART_SIZE - 1,
            credentials: Some(creds),
            ..S3Options::default()
        };
        let e = S3Store::open("bkp", "p", "s3://bkp/p", &small).unwrap_err();
        assert!(e.to_string().starts_with("s3://bkp/p: part size"), "{e}");
    }
}

//! Stored backups handed to a provider as paths that stream them: one named pipe (FIFO) per
//! object in a private temporary directory, each served by a host thread.
//!
//! The providers take a backup as a path (`ChainArchive`), and that stays so (older plugins
//! keep working); a backup in an object store is never downloaded whole to local disk.
//! Every open of a pipe for reading is one *round*: a fresh GET of the object, streamed into
//! the pipe from its first byte. A provider may read a backup more than once (GNU tar reads
//! the first record to tell the compression, closes the archive, and its decompressor opens
//! it again; `tar -t` before `tar -x`; a second reading for hard links), and each reading gets
//! the whole object. A round ends when the object is streamed, or quietly when its reader
//! closes early (EPIPE).
//!
//! A reader that closes and opens again must not land in the old round, whose pipe may still
//! hold data from the middle of the object: as soon as a reader has opened the pipe, and
//! before the first byte is written to it, the FIFO is replaced (a new one renamed over it),
//! so that the next open gets a pipe of its own.
//!
//! A store error ends its round (the reader sees the stream end early) and is kept, as one
//! line naming the object's URL: the caller fails the operation with it, whatever the
//! provider made of the short stream. The provider's messages name the pipes; [`ObjectPipes::shown`]
//! and [`ShownEvents`] name the objects instead.

use std::ffi::{CString, OsStr};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use aa_abi::capability::ItemEvents;

use crate::destination::{Destination, Store};

/// How much of an object a round reads from the store before writing it to the pipe.
const CHUNK: usize = 256 * 1024;

/// The store errors of the rounds so far: the object's name and the one-line message.
type Errors = Arc<Mutex<Vec<(String, String)>>>;

/// The pipes serving some objects of one store; see the module documentation. Dropping it
/// stops the servers and removes the directory.
pub struct ObjectPipes {
    dir: Option<tempfile::TempDir>,
    /// How the objects are named to the user, `s3://bucket/prefix/`.
    url_prefix: String,
    servers: Vec<Server>,
    errors: Errors,
    interrupt: Option<crate::interrupt::InterruptGuard>,
}

/// The thread that accepts the readers of one pipe, and its rounds.
struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    rounds: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl ObjectPipes {
    /// Makes a pipe for each of `names` (plain object names of `store`, which is at
    /// `destination`) and starts serving them.
    pub fn serve(
        store: Arc<Store>,
        destination: &Destination,
        names: &[String],
    ) -> io::Result<ObjectPipes> {
        let dir = tempfile::Builder::new()
            .prefix("aa-stream-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()?;
        let mut pipes = ObjectPipes {
            dir: None,
            url_prefix: destination.display_name(""),
            servers: Vec::new(),
            errors: Errors::default(),
            interrupt: None,
        };
        let base = dir.path().to_path_buf();
        pipes.dir = Some(dir);
        let removed = base.clone();
        // An interrupt ends the process without dropping this: the pipes go all the same.
        pipes.interrupt = Some(crate::interrupt::on_interrupt(move || {
            let _ = std::fs::remove_dir_all(&removed);
            None
        }));
        for name in names {
            let path = base.join(name);
            if pipes.servers.iter().any(|s| s.path == path) {
                continue;
            }
            mkfifo(&path)?;
            let server = Server {
                path: path.clone(),
                stop: Arc::new(AtomicBool::new(false)),
                acceptor: None,
                rounds: Arc::default(),
            };
            let accept = Acceptor {
                store: store.clone(),
                name: name.clone(),
                url: destination.display_name(name),
                path,
                stop: server.stop.clone(),
                rounds: server.rounds.clone(),
                errors: pipes.errors.clone(),
            };
            // Pushed first: a failed spawn still has its FIFO removed with the directory.
            pipes.servers.push(server);
            let handle = std::thread::Builder::new()
                .name("aa-object-pipe".into())
                .spawn(move || accept.run())?;
            if let Some(server) = pipes.servers.last_mut() {
                server.acceptor = Some(handle);
            }
        }
        Ok(pipes)
    }

    /// The pipe that streams the object `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// The first store error met while streaming `name`, if any.
    pub fn error_of(&self, name: &str) -> Option<String> {
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m.clone())
    }

    /// The first store error met while streaming any of the objects.
    pub fn first_error(&self) -> Option<String> {
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors.first().map(|(_, m)| m.clone())
    }

    /// `text` with each pipe's path replaced by its object's URL.
    pub fn shown(&self, text: &str) -> String {
        let dir = format!("{}/", self.dir().display());
        text.replace(&dir, &self.url_prefix)
    }

    /// A pipe's path as its object's URL; another path unchanged.
    fn shown_path(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(self.dir()) {
            Ok(rest) if !rest.as_os_str().is_empty() => {
                PathBuf::from(format!("{}{}", self.url_prefix, rest.display()))
            }
            _ => path.to_path_buf(),
        }
    }

    /// Stops the servers (each acceptor is released from its open by an open of ours),
    /// waits for the rounds and removes the directory.
    pub fn finish(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        for server in &mut self.servers {
            server.stop.store(true, Ordering::SeqCst);
            // Held until the acceptor is gone: whenever it opens the pipe, that open returns.
            let release = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&server.path);
            if let Some(acceptor) = server.acceptor.take() {
                // Without the pipe (the acceptor gave up), it is gone or going.
                if release.is_ok() || acceptor.is_finished() {
                    let _ = acceptor.join();
                }
            }
            drop(release);
            let rounds =
                std::mem::take(&mut *server.rounds.lock().unwrap_or_else(|e| e.into_inner()));
            for round in rounds {
                let _ = round.join();
            }
        }
        self.servers.clear();
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
        self.interrupt = None;
    }
}

impl Drop for ObjectPipes {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Makes a FIFO at `path`, readable and writable by the user only.
fn mkfifo(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in a path"))?;
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the pipe written through `file` has no reader any more.
fn reader_gone(file: &File) -> bool {
    let mut fd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, `fd` open for the call; a zero timeout does not block.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n == 1 && fd.revents & libc::POLLERR != 0
}

/// Accepts the readers of one pipe, a round each.
struct Acceptor {
    store: Arc<Store>,
    name: String,
    url: String,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    rounds: Arc<Mutex<Vec<JoinHandle<()>>>>,
    errors: Errors,
}

impl Acceptor {
    fn record(errors: &Errors, name: &str, message: String) {
        errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_string(), message));
    }

    fn run(self) {
        let next = self.path.with_file_name(format!(
            ".next-{}",
            self.path
                .file_name()
                .unwrap_or(OsStr::new(""))
                .to_string_lossy()
        ));
        loop {
            // Blocks until a reader opens the pipe (or `finish` does).
            let file = match OpenOptions::new().write(true).open(&self.path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let message = format!("{}: cannot serve it: {e}", self.url);
                    Self::record(&self.errors, &self.name, message);
                    return self.give_up();
                }
            };
            // Before the first byte: the next open gets a pipe of its own. And before the
            // stop is looked at: an open `finish` makes after this replacement reaches the
            // next open, one made before it is what this open returned for.
            let replaced = mkfifo(&next).and_then(|()| std::fs::rename(&next, &self.path));
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let round = Round {
                store: self.store.clone(),
                name: self.name.clone(),
                url: self.url.clone(),
                errors: self.errors.clone(),
            };
            match std::thread::Builder::new()
                .name("aa-object-round".into())
                .spawn(move || round.run(file))
            {
                Ok(handle) => self
                    .rounds
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(handle),
                Err(e) => {
                    let message = format!("{}: cannot stream it: {e}", self.url);
                    Self::record(&self.errors, &self.name, message);
                }
            }
            if let Err(e) = replaced {
                let message = format!("{}: cannot serve it again: {e}", self.url);
                Self::record(&self.errors, &self.name, message);
                return self.give_up();
            }
        }
    }

    /// No more rounds: the pipe goes, so that a later open fails rather than waits forever
    /// for a writer.
    fn give_up(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One reading of an object: a GET streamed into the pipe.
struct Round {
    store: Arc<Store>,
    name: String,
    url: String,
    errors: Errors,
}

impl Round {
    fn run(self, mut out: File) {
        let fail = |message: String, out: &File| {
            // Nobody reads any more: what the store did no longer matters.
            if !reader_gone(out) {
                Acceptor::record(&self.errors, &self.name, message);
            }
        };
        let mut reader = match self.store.reader(&self.name) {
            Ok(reader) => reader,
            Err(e) => return fail(e.to_string(), &out),
        };
        let mut buf = vec![0; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return fail(read_error(&self.url, &e), &out),
            };
            match out.write_all(&buf[..n]) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return,
                Err(e) => return fail(format!("{}: cannot stream it: {e}", self.url), &out),
            }
        }
    }
}

/// A read error as one line naming the object (the store's errors name it already).
fn read_error(url: &str, e: &io::Error) -> String {
    let text = e.to_string();
    if text.starts_with(url) {
        text
    } else {
        format!("{url}: {text}")
    }
}

/// A provider's events with the pipes named as their objects.
pub struct ShownEvents<'a> {
    pub inner: &'a dyn ItemEvents,
    pub pipes: Option<&'a ObjectPipes>,
}

impl ItemEvents for ShownEvents<'_> {
    fn item(&self, name: &Path, size: u64) {
        self.inner.item(name, size);
    }

    fn problem(&self, name: Option<&Path>, message: &str) {
        match self.pipes {
            Some(pipes) => {
                let name = name.map(|n| pipes.shown_path(n));
                self.inner.problem(name.as_deref(), &pipes.shown(message));
            }
            None => self.inner.problem(name, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::S3Options;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    fn local_store(dir: &Path) -> (Arc<Store>, Destination) {
        let destination = Destination::Local(dir.to_path_buf());
        let store = Store::open(&destination, &S3Options::default()).unwrap();
        (Arc::new(store), destination)
    }

    fn read(path: &Path) -> Vec<u8> {
        let mut data = Vec::new();
        File::open(path).unwrap().read_to_end(&mut data).unwrap();
        data
    }

    #[test]
    fn each_open_reads_the_whole_object_even_after_an_early_close() {
        let stored = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(stored.path().join("home.1.tar.gz"), &data).unwrap();
        let (store, destination) = local_store(stored.path());
        let pipes =
            ObjectPipes::serve(store, &destination, &["home.1.tar.gz".to_string()]).unwrap();
        let path = pipes.path("home.1.tar.gz");
        let dir = path.parent().unwrap().to_path_buf();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(std::fs::metadata(&path).unwrap().file_type().is_fifo());
        // As GNU tar tells the compression: the first record, then close.
        for _ in 0..3 {
            let mut head = vec![0; 10240];
            File::open(&path).unwrap().read_exact(&mut head).unwrap();
            assert_eq!(head, data[..10240]);
        }
        assert_eq!(read(&path), data);
        assert_eq!(read(&path), data);
        assert_eq!(pipes.first_error(), None);
        pipes.finish();
        assert!(!dir.exists());
    }

    #[test]
    fn a_store_error_names_the_object_and_messages_name_objects_not_pipes() {
        let stored = tempfile::tempdir().unwrap();
        let (store, destination) = local_store(stored.path());
        let pipes = ObjectPipes::serve(store, &destination, &["gone.tar".to_string()]).unwrap();
        let path = pipes.path("gone.tar");
        assert!(read(&path).is_empty());
        let shown = destination.display_name("gone.tar");
        let error = pipes.error_of("gone.tar").unwrap();
        assert!(error.contains(&shown), "{error}");
        assert!(!error.contains('\n'), "{error}");
        assert_eq!(pipes.error_of("other"), None);
        assert_eq!(
            pipes.shown(&format!("{}: damaged", path.display())),
            format!("{shown}: damaged")
        );
        assert_eq!(pipes.shown_path(&path), Path::new(&shown));
        assert_eq!(pipes.shown_path(Path::new("a/b")), Path::new("a/b"));
        let dir = path.parent().unwrap().to_path_buf();
        drop(pipes);
        assert!(!dir.exists());
    }

    #[test]
    fn servers_never_opened_shut_down() {
        let stored = tempfile::tempdir().unwrap();
        let (store, destination) = local_store(stored.path());
        let names = ["a".to_string(), "b".to_string(), "a".to_string()];
        let pipes = ObjectPipes::serve(store, &destination, &names).unwrap();
        let dir = pipes.path("a").parent().unwrap().to_path_buf();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        pipes.finish();
        assert!(!dir.exists());
    }
}

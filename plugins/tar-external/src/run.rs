//! Running GNU tar and turning its output into backup events.
//!
//! Names are written NUL-separated to tar's stdin while its stdout (the `--verbose` member list)
//! and stderr (diagnostics) are read by two threads that forward lines over one channel, so all
//! three pipes make progress at once and events are raised on the calling thread only (the
//! event sink need not be `Send`).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use aa_abi::{BackupEvents, BackupOperationError, BackupSubOperation};

use crate::classify::{classify, Fatal, StderrLine};
use crate::error::Error;
use crate::quoting::unescape;

/// How many of tar's last diagnostics are quoted in a failure message.
const CONTEXT_LINES: usize = 3;

pub(crate) enum Line {
    Out(Vec<u8>),
    Err(Vec<u8>),
}

/// One tar invocation.
pub struct TarRun<'a> {
    pub tar: &'a Path,
    pub args: Vec<OsString>,
    /// The names for `--files-from=-`, written NUL-terminated.
    pub names: Vec<Vec<u8>>,
    /// The archive being written, for messages.
    pub archive: &'a Path,
    /// What tar writes the archive to (`--file=/dev/fd/N`, see [`archive_through_fd`]): the
    /// open backup file or a pipe into it. Closed here as soon as tar has it, so a pipe ends
    /// when tar and its compressor do. `None` when tar is given a path.
    pub archive_fd: Option<OwnedFd>,
    /// Whether `archive_fd` is given to tar as its stdout (`--file=-`, the caller's operand)
    /// rather than as `/dev/fd/N`. tar then writes from the descriptor's offset on, keeping
    /// what the file holds before it (the roots record, module `prefix`), where `/dev/fd/N`
    /// would be opened with `O_TRUNC`; and, unlike with a pipe as `/dev/fd/N`, its compressor
    /// writes there directly, without zeros padding the last record (which bzip2 and xz
    /// reject after a stream). The member list then comes through `--index-file`.
    pub archive_on_stdout: bool,
}

/// The `--file` operand that makes tar write the already open `fd`. tar never opens the
/// backup by name then: a tar started while `aa` is being interrupted writes into the file
/// `aa` made (removed by then), never into a backup whose name was just given back.
pub fn archive_through_fd(fd: std::os::fd::RawFd) -> PathBuf {
    PathBuf::from(format!("/dev/fd/{fd}"))
}

/// Lets the child inherit `fd` (every descriptor is close-on-exec by default).
fn inherit_fd(command: &mut Command, fd: std::os::fd::RawFd) {
    // SAFETY: `pre_exec` runs the closure between fork and exec, where only async-signal-safe
    // calls are allowed: rustix's fcntl is the bare system call, which only changes the
    // child's copy of the flag. `fd` is open for as long as the caller holds the archive file,
    // which outlives the spawn.
    unsafe {
        command.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            Ok(())
        });
    }
}

/// What was seen on the output so far.
#[derive(Default)]
struct Outcome {
    content_error: bool,
    fatal: Option<Fatal>,
    recent: VecDeque<String>,
}

impl Outcome {
    fn remember(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_prefix("tar: ").unwrap_or(&line);
        if self.recent.len() == CONTEXT_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back(line.to_string());
    }

    fn context(&self) -> String {
        self.recent.iter().cloned().collect::<Vec<_>>().join("; ")
    }
}

pub(crate) fn forward_lines(
    source: impl Read,
    wrap: fn(Vec<u8>) -> Line,
    sink: mpsc::Sender<Line>,
) {
    let mut reader = BufReader::new(source);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                // Keep draining even if the receiver is gone, so tar never blocks on a full pipe.
                let _ = sink.send(wrap(line));
            }
        }
    }
}

pub(crate) fn write_names(stdin: impl Write, names: &[Vec<u8>]) -> io::Result<()> {
    let mut writer = BufWriter::new(stdin);
    for name in names {
        writer.write_all(name)?;
        writer.write_all(b"\0")?;
    }
    writer.flush()
}

fn raise(events: &dyn BackupEvents, outcome: &mut Outcome, line: Line) {
    match line {
        Line::Out(name) if !name.is_empty() => {
            let name = unescape(&name);
            events.file_add(Path::new(OsStr::from_bytes(&name)));
        }
        Line::Out(_) => {}
        Line::Err(text) => match classify(&text) {
            StderrLine::Ignore => {}
            StderrLine::Event {
                operation,
                error,
                name,
                message,
            } => {
                if operation != BackupSubOperation::Finish && error.is_content_error() {
                    outcome.content_error = true;
                }
                outcome.remember(&text);
                events.backup_operation_error(
                    operation,
                    error,
                    name.as_deref().map(|n| Path::new(OsStr::from_bytes(n))),
                    message.as_deref(),
                );
            }
            StderrLine::Fatal(fatal) => {
                outcome.fatal.get_or_insert(fatal);
            }
        },
    }
}

/// Makes the child started by `command` die when `aa` does, even when `aa` is killed outright
/// (SIGKILL, the OOM killer), so that no GNU tar goes on writing beside the next run. Its
/// compressor, tar's own child, then reads the end of its input and exits.
///
/// The kernel sends the signal when the *thread* that forked the child ends; [`run_tar`]
/// spawns and waits for tar on the calling thread, which so outlives it.
pub(crate) fn die_with_parent(command: &mut Command) {
    let parent = rustix::process::getpid();
    // SAFETY: `pre_exec` runs the closure between fork and exec, where only async-signal-safe
    // calls are allowed: rustix's prctl and getppid are the bare system calls.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // `aa` died before the prctl: the child was already handed to another parent.
            if rustix::process::getppid() != Some(parent) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        });
    }
}

/// `text` with every `from` replaced by `to`: tar names the archive by the descriptor path it
/// was given; the user is shown the backup's name.
fn replace_bytes(text: &[u8], from: &Path, to: &Path) -> Vec<u8> {
    let (from, to) = (from.as_os_str().as_bytes(), to.as_os_str().as_bytes());
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// `text` with the archive named where tar calls it `-` (its stdout) in a write error.
fn name_stdout(text: &[u8], archive: &Path) -> Vec<u8> {
    let Some(rest) = text.strip_prefix(b"tar: -: ") else {
        return text.to_vec();
    };
    if !(rest.starts_with(b"Cannot write") || rest.starts_with(b"Wrote only")) {
        return text.to_vec();
    }
    let mut out = b"tar: ".to_vec();
    out.extend_from_slice(archive.as_os_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(rest);
    out
}

/// A command running the GNU tar at `tar` as every run here needs it: it dies with this
/// process, and its messages can be parsed.
pub(crate) fn tar_command(tar: &Path) -> Command {
    let mut command = Command::new(tar);
    die_with_parent(&mut command);
    command
        // tar prefixes its messages with argv[0]; keep it "tar" whatever the binary's path.
        .arg0("tar")
        // English messages for the parser. TAR_OPTIONS could add options that change the archive
        // or the output format, so the command line here is the whole truth.
        .env("LC_ALL", "C")
        .env_remove("TAR_OPTIONS");
    command
}

/// Runs tar to completion, raising events for its output. Succeeds when tar produced a usable
/// archive: exit status 0, 1 (some files changed while read) or 2 after non-fatal file errors
/// that were reported as events (the original's rule).
pub fn run_tar(run: TarRun<'_>, events: &dyn BackupEvents) -> Result<(), Error> {
    let mut command = tar_command(run.tar);
    // Where the member list comes from: tar's stdout, or a pipe given as its index file.
    let mut index = None;
    let mut through_fd = None;
    match run.archive_fd {
        Some(fd) if run.archive_on_stdout => {
            let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| Error::spawn(run.tar, e.into()))?;
            inherit_fd(&mut command, write.as_raw_fd());
            command
                .arg(format!("--index-file=/dev/fd/{}", write.as_raw_fd()))
                .stdout(Stdio::from(fd));
            index = Some((read, write));
        }
        Some(fd) => {
            inherit_fd(&mut command, fd.as_raw_fd());
            through_fd = Some((archive_through_fd(fd.as_raw_fd()), fd));
            command.stdout(Stdio::piped());
        }
        None => {
            command.stdout(Stdio::piped());
        }
    }
    let mut child = command
        .args(&run.args)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::spawn(run.tar, e))?;
    // tar has its own copies now; the member list ends when tar's index file is closed.
    drop(command);
    let through_fd = through_fd.map(|(path, _fd)| path);
    let index = index.map(|(read, _write)| std::fs::File::from(read));
    let (stdin, stdout, stderr) = match (
        child.stdin.take(),
        index.map_or_else(
            || {
                child
                    .stdout
                    .take()
                    .map(|o| Box::new(o) as Box<dyn Read + Send>)
            },
            |i| Some(Box::new(i) as Box<dyn Read + Send>),
        ),
        child.stderr.take(),
    ) {
        (Some(i), Some(o), Some(e)) => (i, o, e),
        _ => unreachable!("all three streams were requested as pipes"),
    };
    let on_stdout = run.archive_on_stdout;

    let mut outcome = Outcome::default();
    let names = &run.names;
    let written = thread::scope(|scope| {
        let writer = scope.spawn(move || write_names(stdin, names));
        let (tx, rx) = mpsc::channel();
        let tx_err = tx.clone();
        scope.spawn(move || forward_lines(stdout, Line::Out, tx));
        scope.spawn(move || forward_lines(stderr, Line::Err, tx_err));
        for line in rx {
            let line = match (&through_fd, line) {
                (Some(fd_path), Line::Err(text)) => {
                    Line::Err(replace_bytes(&text, fd_path, run.archive))
                }
                (None, Line::Err(text)) if on_stdout => Line::Err(name_stdout(&text, run.archive)),
                (_, line) => line,
            };
            raise(events, &mut outcome, line);
        }
        writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("name writer panicked")))
    });
    let status = child.wait().map_err(|e| Error::spawn(run.tar, e))?;

    if let Some(fatal) = outcome.fatal.take() {
        return Err(match fatal {
            Fatal::NoSpace => Error::no_space(run.archive),
            Fatal::Incompatible(detail) => Error::incompatible(run.tar, detail),
            Fatal::NotRecoverable => {
                Error::tar_failed("unrecoverable error".to_string(), outcome.context())
            }
            Fatal::ReadError(line) => Error::tar_failed("a file could not be read".into(), line),
        });
    }
    match status.code() {
        Some(0) => {}
        Some(1) => events.backup_operation_error(
            BackupSubOperation::Finish,
            BackupOperationError::SomeFilesChanged,
            None,
            None,
        ),
        Some(2) if outcome.content_error => {}
        Some(code) => {
            return Err(Error::tar_failed(
                format!("exit status {code}"),
                outcome.context(),
            ))
        }
        None => {
            let signal = status.signal().unwrap_or(0);
            return Err(Error::tar_failed(
                format!("killed by signal {signal}"),
                outcome.context(),
            ));
        }
    }
    // tar read every name before it could finish; a failed write means it did not.
    written.map_err(|e| Error::tar_failed("reading the list of files".to_string(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aa_provider_kit::recording::Recorder;

    type Recorded = (BackupSubOperation, BackupOperationError, Option<Vec<u8>>);

    /// The error events without their messages, which these tests do not look at.
    fn errors(events: &Recorder) -> Vec<Recorded> {
        events
            .errors()
            .into_iter()
            .map(|e| (e.operation, e.error, e.name))
            .collect()
    }

    /// Runs a shell script in place of tar (no script file, so no "text file busy" races).
    fn fake_tar(script: &str, names: &[&[u8]]) -> (Result<(), Error>, Recorder) {
        let events = Recorder::default();
        let result = run_tar(
            TarRun {
                tar: Path::new("/bin/sh"),
                args: vec!["-c".into(), script.into()],
                names: names.iter().map(|n| n.to_vec()).collect(),
                archive: Path::new("/dst/b.tar"),
                archive_fd: None,
                archive_on_stdout: false,
            },
            &events,
        );
        (result, events)
    }

    #[test]
    fn names_go_nul_separated_to_stdin_and_stdout_lines_are_members() {
        let (result, events) = fake_tar(
            r"tr '\0' '\n'; printf 'caf\\351\nnew\\nline\n'",
            &[b"-dash", b"a b", b"dir/"],
        );
        result.unwrap();
        assert_eq!(
            events.added(),
            [
                b"-dash".to_vec(),
                b"a b".to_vec(),
                b"dir/".to_vec(),
                b"caf\xe9".to_vec(),
                b"new\nline".to_vec()
            ]
        );
        assert!(events.errors().is_empty());
    }

    #[test]
    fn write_errors_on_stdout_name_the_backup() {
        let archive = Path::new("/dst/b.tar.gz");
        assert_eq!(
            name_stdout(b"tar: -: Cannot write: No space left on device", archive),
            b"tar: /dst/b.tar.gz: Cannot write: No space left on device"
        );
        // A member named `-` is left alone.
        assert_eq!(
            name_stdout(b"tar: -: Cannot stat: No such file or directory", archive),
            b"tar: -: Cannot stat: No such file or directory"
        );
    }

    #[test]
    fn exit_status_rules() {
        use BackupOperationError as E;
        use BackupSubOperation as Op;

        let (result, events) = fake_tar(
            "cat >/dev/null; echo 'tar: f: file changed as we read it' >&2; exit 1",
            &[b"f"],
        );
        result.unwrap();
        assert_eq!(
            errors(&events),
            [
                (Op::Read, E::FileChanged, Some(b"f".to_vec())),
                (Op::Finish, E::SomeFilesChanged, None)
            ]
        );

        // Status 2 after a reported file error still leaves a usable archive.
        let (result, _) = fake_tar(
            "cat >/dev/null; echo 'tar: m: Cannot stat: No such file or directory' >&2; \
             echo 'tar: Exiting with failure status due to previous errors' >&2; exit 2",
            &[b"m"],
        );
        result.unwrap();

        // Status 2 without one does not; the message quotes tar.
        let (result, _) = fake_tar(
            "cat >/dev/null; echo 'tar: s: socket ignored' >&2; exit 2",
            &[b"s"],
        );
        assert_eq!(
            result.unwrap_err().to_string(),
            "GNU tar failed (exit status 2): s: socket ignored"
        );

        let (result, _) = fake_tar("cat >/dev/null; exit 64", &[b"x"]);
        assert_eq!(
            result.unwrap_err().to_string(),
            "GNU tar failed (exit status 64)"
        );

        let (result, _) = fake_tar("kill -9 $$", &[b"x"]);
        assert!(result
            .unwrap_err()
            .to_string()
            .starts_with("GNU tar failed (killed by signal 9)"));
    }

    #[test]
    fn fatal_messages_fail_the_run_whatever_the_status() {
        let (result, _) = fake_tar(
            "cat >/dev/null; echo 'tar: b.tar: Cannot write: No space left on device' >&2; \
             echo 'tar: Error is not recoverable: exiting now' >&2; exit 2",
            &[b"x"],
        );
        let err = aa_abi::ProviderError::from(result.unwrap_err());
        assert_eq!(err.os_code, libc::ENOSPC);
        assert_eq!(
            err.message(),
            "/dst/b.tar: No space left on device; the backup was not created"
        );

        let (result, _) = fake_tar(
            "cat >/dev/null; echo \"tar: unrecognized option '--zstd'\" >&2; exit 0",
            &[b"x"],
        );
        assert_eq!(
            result.unwrap_err().to_string(),
            "incompatible tar binary /bin/sh (tar: unrecognized option '--zstd'); \
             GNU tar 1.28 or newer is needed"
        );

        let (result, _) = fake_tar(
            "cat >/dev/null; echo 'tar: /r: Cannot chdir: No such file or directory' >&2; \
             echo 'tar: Error is not recoverable: exiting now' >&2; exit 2",
            &[b"x"],
        );
        assert_eq!(
            result.unwrap_err().to_string(),
            "GNU tar failed (unrecoverable error): /r: Cannot chdir: No such file or directory"
        );
    }
}

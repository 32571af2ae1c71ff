//! Classification of the lines GNU tar writes to stderr, as the original provider parsed them.
//!
//! Kept free of I/O so every rule can be unit-tested against real tar messages. The rules rely
//! on `LC_ALL=C` (English messages) and `--quoting-style=escape` (see [`crate::quoting`]).

use aa_abi::{BackupOperationError, BackupSubOperation};

use crate::quoting::{split_fields, unescape};

/// What a stderr line means for the backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StderrLine {
    /// Informational; not reported.
    Ignore,
    /// A non-fatal problem, reported through the `backupOperationError` event.
    Event {
        operation: BackupSubOperation,
        error: BackupOperationError,
        /// The file system object concerned, decoded to its original bytes.
        name: Option<Vec<u8>>,
        message: Option<String>,
    },
    /// The backup cannot be completed.
    Fatal(Fatal),
}

/// Why tar could not make the backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fatal {
    NoSpace,
    /// The binary does not understand the command line (too old, or not GNU tar).
    Incompatible(String),
    /// tar gave up; the preceding lines say why.
    NotRecoverable,
    /// A file could not be read (an I/O error): tar would store zeros in its place, a
    /// backup worse than the one it replaces. The line, which names the file.
    ReadError(String),
}

const TAR_PREFIX: &[u8] = b"tar: ";

fn eq_ci(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn starts_with_ci(a: &[u8], b: &str) -> bool {
    a.len() >= b.len() && eq_ci(&a[..b.len()], b)
}

fn contains_ci(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn event(
    operation: BackupSubOperation,
    error: BackupOperationError,
    name: Option<&[u8]>,
    message: Option<String>,
) -> StderrLine {
    StderrLine::Event {
        operation,
        error,
        name: name.map(unescape),
        message,
    }
}

/// Classifies one stderr line (without its line terminator).
pub fn classify(line: &[u8]) -> StderrLine {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return StderrLine::Ignore;
    }
    let fields = split_fields(line);
    let last = fields.last().copied().unwrap_or_default();

    // Fatal conditions first: they may come from tar or from the compressor it runs.
    if eq_ci(last.trim_ascii(), "No space left on device") {
        return StderrLine::Fatal(Fatal::NoSpace);
    }
    if contains_ci(line, "unrecognized option")
        || (starts_with_ci(line, "Try ") && contains_ci(line, "--help"))
    {
        return StderrLine::Fatal(Fatal::Incompatible(text(line)));
    }
    if contains_ci(line, "Error is not recoverable") {
        return StderrLine::Fatal(Fatal::NotRecoverable);
    }
    if line.starts_with(TAR_PREFIX) && contains_ci(line, ": Read error at byte ") {
        return StderrLine::Fatal(Fatal::ReadError(text(&line[TAR_PREFIX.len()..])));
    }

    let Some(body) = line.strip_prefix(TAR_PREFIX) else {
        // Not tar's own message (e.g. the compressor's); report it whole.
        return event(
            BackupSubOperation::Unknown,
            BackupOperationError::UnknownError,
            None,
            Some(text(line)),
        );
    };
    let fields = split_fields(body);
    if fields.len() == 1 {
        if eq_ci(body, "Exiting with failure status due to previous errors") {
            return StderrLine::Ignore;
        }
        return event(
            BackupSubOperation::Unknown,
            BackupOperationError::UnknownError,
            None,
            Some(text(line)),
        );
    }

    let name = fields[0];
    let what = fields[1];
    let detail = (fields.len() > 2).then(|| text(&fields[2..].join(&b": "[..])));
    let os_error = |operation| match &detail {
        Some(d) if d.contains("Permission denied") => event(
            operation,
            BackupOperationError::PermissionDenied,
            Some(name),
            None,
        ),
        _ => event(
            operation,
            BackupOperationError::UnknownOsError,
            Some(name),
            detail.clone(),
        ),
    };
    let simple = |operation, error| event(operation, error, Some(name), None);

    if eq_ci(what, "Directory is new") {
        StderrLine::Ignore
    } else if eq_ci(what, "Cannot stat") && detail.is_some() {
        os_error(BackupSubOperation::Stat)
    } else if eq_ci(what, "Cannot open") && detail.is_some() {
        os_error(BackupSubOperation::Open)
    } else if eq_ci(what, "socket ignored") {
        simple(
            BackupSubOperation::Open,
            BackupOperationError::SocketIgnored,
        )
    } else if eq_ci(what, "Unknown file type; file ignored") {
        simple(
            BackupSubOperation::Open,
            BackupOperationError::UnknownTypeIgnored,
        )
    } else if eq_ci(what, "file changed as we read it") {
        simple(BackupSubOperation::Read, BackupOperationError::FileChanged)
    } else if starts_with_ci(what, "Directory has been renamed") {
        simple(
            BackupSubOperation::Read,
            BackupOperationError::DirectoryRenamed,
        )
    } else {
        event(
            BackupSubOperation::UnknownFileOperation,
            BackupOperationError::UnknownError,
            Some(name),
            Some(text(&fields[1..].join(&b": "[..]))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BackupOperationError as E;
    use BackupSubOperation as Op;

    fn ev(op: Op, err: E, name: Option<&[u8]>, msg: Option<&str>) -> StderrLine {
        StderrLine::Event {
            operation: op,
            error: err,
            name: name.map(<[u8]>::to_vec),
            message: msg.map(str::to_string),
        }
    }

    #[test]
    fn ignored_lines() {
        for line in [
            &b"tar: Exiting with failure status due to previous errors"[..],
            b"tar: ./dir: Directory is new",
            b"tar: dir/sub: Directory is new",
            b"",
            b"  ",
        ] {
            assert_eq!(classify(line), StderrLine::Ignore, "{line:?}");
        }
    }

    #[test]
    fn stat_and_open_errors() {
        assert_eq!(
            classify(b"tar: missing: Cannot stat: No such file or directory"),
            ev(
                Op::Stat,
                E::UnknownOsError,
                Some(b"missing"),
                Some("No such file or directory")
            )
        );
        assert_eq!(
            classify(b"tar: secret: Cannot stat: Permission denied"),
            ev(Op::Stat, E::PermissionDenied, Some(b"secret"), None)
        );
        assert_eq!(
            classify(b"tar: d/secret: Cannot open: Permission denied"),
            ev(Op::Open, E::PermissionDenied, Some(b"d/secret"), None)
        );
        assert_eq!(
            classify(br"tar: caf\351\: x: Cannot open: Input/output error"),
            ev(
                Op::Open,
                E::UnknownOsError,
                Some(b"caf\xe9: x"),
                Some("Input/output error")
            )
        );
    }

    #[test]
    fn warnings_about_single_files() {
        assert_eq!(
            classify(b"tar: run/sock: socket ignored"),
            ev(Op::Open, E::SocketIgnored, Some(b"run/sock"), None)
        );
        assert_eq!(
            classify(b"tar: log/x.log: file changed as we read it"),
            ev(Op::Read, E::FileChanged, Some(b"log/x.log"), None)
        );
        assert_eq!(
            classify(b"tar: new: Directory has been renamed from 'old'"),
            ev(Op::Read, E::DirectoryRenamed, Some(b"new"), None)
        );
        assert_eq!(
            classify(b"tar: dev/odd: Unknown file type; file ignored"),
            ev(Op::Open, E::UnknownTypeIgnored, Some(b"dev/odd"), None)
        );
    }

    #[test]
    fn fatal_lines() {
        assert_eq!(
            classify(b"tar: b.tar._partial: Cannot write: No space left on device"),
            StderrLine::Fatal(Fatal::NoSpace)
        );
        assert_eq!(
            classify(b"gzip: stdout: No space left on device"),
            StderrLine::Fatal(Fatal::NoSpace)
        );
        assert_eq!(
            classify(b"tar: unrecognized option '--sort=name'"),
            StderrLine::Fatal(Fatal::Incompatible(
                "tar: unrecognized option '--sort=name'".into()
            ))
        );
        assert!(matches!(
            classify(b"Try 'tar --help' or 'tar --usage' for more information."),
            StderrLine::Fatal(Fatal::Incompatible(_))
        ));
        assert_eq!(
            classify(b"tar: Error is not recoverable: exiting now"),
            StderrLine::Fatal(Fatal::NotRecoverable)
        );
        // An I/O error reading a file: tar would store zeros instead (tests/tests/faults.rs).
        assert_eq!(
            classify(
                b"tar: d/noise.bin: Read error at byte 65536, while reading 10240 bytes: \
                  Input/output error"
            ),
            StderrLine::Fatal(Fatal::ReadError(
                "d/noise.bin: Read error at byte 65536, while reading 10240 bytes: \
                 Input/output error"
                    .into()
            ))
        );
    }

    #[test]
    fn unknown_lines() {
        assert_eq!(
            classify(b"tar: x: File removed before we read it"),
            ev(
                Op::UnknownFileOperation,
                E::UnknownError,
                Some(b"x"),
                Some("File removed before we read it")
            )
        );
        assert_eq!(
            classify(b"tar: /root: Cannot chdir: No such file or directory"),
            ev(
                Op::UnknownFileOperation,
                E::UnknownError,
                Some(b"/root"),
                Some("Cannot chdir: No such file or directory")
            )
        );
        assert_eq!(
            classify(b"tar: Removing leading `/' from member names"),
            ev(
                Op::Unknown,
                E::UnknownError,
                None,
                Some("tar: Removing leading `/' from member names")
            )
        );
        assert_eq!(
            classify(b"something odd"),
            ev(Op::Unknown, E::UnknownError, None, Some("something odd"))
        );
        // A file called "No space left on device" is not a full disk.
        assert_eq!(
            classify(b"tar: No space left on device: Cannot stat: Permission denied"),
            ev(
                Op::Stat,
                E::PermissionDenied,
                Some(b"No space left on device"),
                None
            )
        );
    }
}

//! Errors of this provider, converted to the ABI's [`ProviderError`] at the trait boundary.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use aa_abi::ProviderError;
use rustix::io::Errno;

/// A failed backup operation; [`fmt::Display`] gives one line naming what is at fault.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    /// No usable GNU tar; `looked` says where and what was found.
    TarNotFound {
        looked: String,
    },
    /// tar could not be started.
    Spawn {
        tar: PathBuf,
        source: io::Error,
    },
    /// A file operation of this provider failed.
    Io {
        path: PathBuf,
        source: io::Error,
    },
    NoSpace {
        archive: PathBuf,
    },
    Incompatible {
        tar: PathBuf,
        detail: String,
    },
    /// tar stopped with an unrecoverable error or an unexpected exit status.
    TarFailed {
        status: String,
        detail: String,
    },
    InvalidValue(String),
    /// An error the host gave (its byte sink), passed on as it is.
    Host(ProviderError),
}

impl Error {
    pub fn tar_not_found(looked: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::TarNotFound {
                looked: looked.into(),
            },
        }
    }

    pub fn spawn(tar: &Path, source: io::Error) -> Error {
        Error {
            kind: ErrorKind::Spawn {
                tar: tar.to_path_buf(),
                source,
            },
        }
    }

    pub fn io(path: &Path, source: io::Error) -> Error {
        Error {
            kind: ErrorKind::Io {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    pub fn no_space(archive: &Path) -> Error {
        Error {
            kind: ErrorKind::NoSpace {
                archive: archive.to_path_buf(),
            },
        }
    }

    pub fn incompatible(tar: &Path, detail: String) -> Error {
        Error {
            kind: ErrorKind::Incompatible {
                tar: tar.to_path_buf(),
                detail,
            },
        }
    }

    pub fn tar_failed(status: String, detail: String) -> Error {
        Error {
            kind: ErrorKind::TarFailed { status, detail },
        }
    }

    /// The error with `f` applied to the text tar gave (what follows the status).
    pub fn map_detail(self, f: impl FnOnce(String) -> String) -> Error {
        match self.kind {
            ErrorKind::TarFailed { status, detail } => Error::tar_failed(status, f(detail)),
            kind => Error { kind },
        }
    }

    /// An error of the host's byte sink, reported unchanged.
    pub fn host(error: ProviderError) -> Error {
        Error {
            kind: ErrorKind::Host(error),
        }
    }

    pub fn invalid_value(message: String) -> Error {
        Error {
            kind: ErrorKind::InvalidValue(message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::TarNotFound { looked } => write!(
                f,
                "GNU tar not found (looked in {looked}); install GNU tar or use a *_internal archiver"
            ),
            ErrorKind::Spawn { tar, source } => {
                write!(f, "cannot run GNU tar {}: {source}", tar.display())
            }
            ErrorKind::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ErrorKind::NoSpace { archive } => write!(
                f,
                "{}: No space left on device; the backup was not created",
                archive.display()
            ),
            ErrorKind::Incompatible { tar, detail } => write!(
                f,
                "incompatible tar binary {} ({detail}); GNU tar 1.28 or newer is needed",
                tar.display()
            ),
            ErrorKind::TarFailed { status, detail } if detail.is_empty() => {
                write!(f, "GNU tar failed ({status})")
            }
            ErrorKind::TarFailed { status, detail } => {
                write!(f, "GNU tar failed ({status}): {detail}")
            }
            ErrorKind::InvalidValue(message) => f.write_str(message),
            ErrorKind::Host(error) => f.write_str(error.message()),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for ProviderError {
    fn from(err: Error) -> ProviderError {
        let message = err.to_string();
        match err.kind {
            ErrorKind::TarNotFound { .. } => {
                ProviderError::io(Errno::NOENT.raw_os_error(), message)
            }
            ErrorKind::Spawn { source, .. } | ErrorKind::Io { source, .. } => {
                ProviderError::io(source.raw_os_error().unwrap_or(0), message)
            }
            ErrorKind::NoSpace { .. } => ProviderError::io(Errno::NOSPC.raw_os_error(), message),
            ErrorKind::InvalidValue(_) => ProviderError::invalid_value(message),
            ErrorKind::Host(error) => error,
            ErrorKind::Incompatible { .. } | ErrorKind::TarFailed { .. } => {
                ProviderError::other(message)
            }
        }
    }
}

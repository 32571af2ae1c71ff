//! [`IniError`]: every message of the reader, naming the file and the line at fault.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{MAX_FILE_SIZE, MAX_INTERPOLATION_DEPTH, MAX_VALUE_SIZE};

/// An error while reading an INI file or one of its values.
#[derive(Debug)]
pub(crate) struct IniError {
    path: PathBuf,
    line: Option<usize>,
    kind: ErrorKind,
}

#[derive(Debug)]
pub(super) enum ErrorKind {
    Io(std::io::Error),
    NotRegular(&'static str),
    TooLarge,
    NotUtf8,
    MissingSectionHeader(String),
    DuplicateSection(String),
    DuplicateOption {
        section: String,
        key: String,
    },
    NoDelimiter(String),
    EmptyKey(String),
    ContinuesValueless {
        section: String,
        key: String,
    },
    NoValue {
        section: String,
        key: String,
    },
    BadReference {
        section: String,
        key: String,
        rest: String,
    },
    BadPercent {
        section: String,
        key: String,
        rest: String,
    },
    UnknownReference {
        section: String,
        key: String,
        name: String,
    },
    InterpolationLoop {
        section: String,
        key: String,
    },
    ValueTooLarge {
        section: String,
        key: String,
    },
}

impl IniError {
    pub(super) fn new(path: &Path, line: Option<usize>, kind: ErrorKind) -> IniError {
        IniError {
            path: path.to_path_buf(),
            line,
            kind,
        }
    }

    /// The file the error is about.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based line at fault, when there is one.
    pub(crate) fn line(&self) -> Option<usize> {
        self.line
    }

    /// The message without the `file:line: ` prefix.
    pub(crate) fn message(&self) -> String {
        match &self.kind {
            ErrorKind::Io(e) => format!("cannot read the file: {e}"),
            ErrorKind::NotRegular(kind) => format!("not a regular file ({kind})"),
            ErrorKind::TooLarge => {
                format!("the file is larger than {MAX_FILE_SIZE} bytes, the limit for such a file")
            }
            ErrorKind::NotUtf8 => "the file is not valid UTF-8 text".to_string(),
            ErrorKind::MissingSectionHeader(text) => {
                format!("\"{text}\" comes before the first [section] header")
            }
            ErrorKind::DuplicateSection(name) => format!("duplicate section [{name}]"),
            ErrorKind::DuplicateOption { section, key } => {
                format!("duplicate option \"{key}\" in section [{section}]")
            }
            ErrorKind::NoDelimiter(text) => {
                format!("expected \"name = value\" but found \"{text}\"")
            }
            ErrorKind::EmptyKey(text) => format!("missing option name in \"{text}\""),
            ErrorKind::ContinuesValueless { section, key } => format!(
                "indented line continues option \"{key}\" in section [{section}], which has no value"
            ),
            ErrorKind::NoValue { section, key } => {
                format!("option \"{key}\" in section [{section}] has no value")
            }
            ErrorKind::BadReference { section, key, rest } => format!(
                "bad reference in option \"{key}\" of section [{section}]: expected \"%(name)s\" at \"{rest}\""
            ),
            ErrorKind::BadPercent { section, key, rest } => format!(
                "lone \"%\" in option \"{key}\" of section [{section}] at \"{rest}\" (write \"%%\" for a percent sign)"
            ),
            ErrorKind::UnknownReference { section, key, name } => format!(
                "option \"{key}\" in section [{section}] refers to \"%({name})s\", which is not an option of that section or [DEFAULT]"
            ),
            ErrorKind::InterpolationLoop { section, key } => format!(
                "interpolation loop in option \"{key}\" of section [{section}] (more than {MAX_INTERPOLATION_DEPTH} nested references)"
            ),
            ErrorKind::ValueTooLarge { section, key } => format!(
                "option \"{key}\" of section [{section}] expands to more than {MAX_VALUE_SIZE} bytes"
            ),
        }
    }
}

impl fmt::Display for IniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path.display(), line, self.message()),
            None => write!(f, "{}: {}", self.path.display(), self.message()),
        }
    }
}

impl std::error::Error for IniError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

//! [`SpecError`]: what is wrong with a specification, with the file and line at fault. The
//! messages are the interface users see; every kind is written out in one place.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{ARCHIVE, CONTENT, EXTERNAL, MAX_EXTERNAL_DEPTH, SPEC_EXTENSION};
use crate::ini::{IniError, MAX_VALUE_SIZE};
use crate::values::ValueError;

/// An error in an archive specification.
#[derive(Debug)]
pub struct SpecError {
    file: PathBuf,
    line: Option<usize>,
    // Boxed to keep `Result<_, SpecError>` small.
    kind: Box<Kind>,
}

#[derive(Debug)]
pub(super) enum Kind {
    Ini(IniError),
    UnknownSection(String),
    NotAllowed {
        section: String,
        key: String,
    },
    NoValue {
        section: &'static str,
        key: String,
    },
    MissingSection(&'static str),
    MissingOption {
        section: &'static str,
        key: &'static str,
    },
    EmptyOption {
        section: &'static str,
        key: &'static str,
    },
    Value(ValueError),
    InvalidName {
        name: String,
        problem: &'static str,
        /// From the `name` option (else from the file name).
        from_option: bool,
    },
    MalformedReference {
        key: String,
        reference: String,
    },
    UnknownExternal {
        key: String,
        name: String,
    },
    ReferencedFile {
        key: String,
        source: Box<SpecError>,
    },
    ReferencedOptionMissing {
        key: String,
        file: PathBuf,
        section: String,
        option: String,
    },
    ReferenceLoop {
        key: String,
    },
    ValueTooLarge {
        key: String,
    },
}

impl SpecError {
    pub(super) fn new(file: &Path, line: Option<usize>, kind: Kind) -> SpecError {
        SpecError {
            file: file.to_path_buf(),
            line,
            kind: Box::new(kind),
        }
    }

    /// The 1-based line at fault, when known (the program shows it in the message only).
    #[cfg(test)]
    pub(super) fn line(&self) -> Option<usize> {
        self.line
    }
}

impl From<IniError> for SpecError {
    fn from(e: IniError) -> SpecError {
        SpecError {
            file: e.path().to_path_buf(),
            line: e.line(),
            kind: Box::new(Kind::Ini(e)),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Kind::Ini(e) = &*self.kind {
            return write!(f, "{e}");
        }
        match self.line {
            Some(line) => write!(f, "{}:{}: ", self.file.display(), line)?,
            None => write!(f, "{}: ", self.file.display())?,
        }
        match &*self.kind {
            Kind::Ini(_) => Ok(()),
            Kind::UnknownSection(name) => write!(
                f,
                "unknown section [{name}] (valid sections: [{EXTERNAL}], [{ARCHIVE}], [{CONTENT}])"
            ),
            Kind::NotAllowed { section, key } => write!(
                f,
                "option \"{key}\" is not allowed in section [{section}] (it is not an archive option)"
            ),
            Kind::NoValue { section, key } => write!(
                f,
                "option \"{key}\" in section [{section}] has no value (write \"{key} =\" for an empty one)"
            ),
            Kind::MissingSection(section) => write!(f, "missing section [{section}]"),
            Kind::MissingOption { section, key } => {
                write!(f, "missing option \"{key}\" in section [{section}]")
            }
            Kind::EmptyOption { section, key } => {
                write!(f, "option \"{key}\" in section [{section}] is empty")
            }
            Kind::Value(e) => write!(f, "{e}"),
            Kind::InvalidName {
                name,
                problem,
                from_option,
            } => {
                write!(f, "invalid archive name \"{}\"", name.escape_debug())?;
                if *from_option {
                    write!(f, " in option \"name\" of section [{CONTENT}]")?;
                } else {
                    write!(f, " (the file name without \".{SPEC_EXTENSION}\")")?;
                }
                write!(f, ": {problem}")
            }
            Kind::MalformedReference { key, reference } => write!(
                f,
                "malformed reference {reference} in option \"{key}\" (expected @(name.option))"
            ),
            Kind::UnknownExternal { key, name } => write!(
                f,
                "option \"{key}\" refers to \"{name}\", which is not defined in [{EXTERNAL}]"
            ),
            Kind::ReferencedFile { key, source } => {
                write!(f, "in a file referenced by option \"{key}\": {source}")
            }
            Kind::ReferencedOptionMissing { key, file, section, option } => write!(
                f,
                "option \"{key}\" refers to option \"{option}\" of section [{section}] in {}, which does not exist",
                file.display()
            ),
            Kind::ReferenceLoop { key } => write!(
                f,
                "option \"{key}\": external references nested more than {MAX_EXTERNAL_DEPTH} levels deep (circular reference?)"
            ),
            Kind::ValueTooLarge { key } => write!(
                f,
                "option \"{key}\": its external references expand to more than {MAX_VALUE_SIZE} bytes"
            ),
        }
    }
}

impl std::error::Error for SpecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.kind {
            Kind::Ini(e) => Some(e),
            Kind::Value(e) => Some(e),
            Kind::ReferencedFile { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

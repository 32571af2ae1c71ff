//! The structured error a provider call returns across the boundary.
//!
//! It mirrors the exceptions of the original service API: `ValueError` (unsupported type,
//! invalid value), `RuntimeError` (unsupported feature, other), `NotImplementedError` and
//! `OSError` (with the OS error code, so `FileExistsError` and `FileNotFoundError` stay
//! distinguishable).

use std::fmt;
use std::io;

use abi_stable::std_types::RString;
use abi_stable::StableAbi;

/// Category of a [`ProviderError`]; an open set like the other ABI enumerations.
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct ProviderErrorKind(
    /// The value as it crosses the boundary.
    pub u32,
);

impl ProviderErrorKind {
    /// The backup type is not one the provider supports (`ValueError`).
    pub const UNSUPPORTED_TYPE: Self = Self(0);
    /// The feature is not supported for the backup type (`RuntimeError`).
    pub const UNSUPPORTED_FEATURE: Self = Self(1);
    /// An argument is out of range or malformed (`ValueError`).
    pub const INVALID_VALUE: Self = Self(2);
    /// The provider does not implement the method (`NotImplementedError`).
    pub const NOT_IMPLEMENTED: Self = Self(3);
    /// An operating system error, with its code in [`ProviderError::os_code`] (`OSError`).
    pub const IO: Self = Self(4);
    /// Anything else (`RuntimeError`).
    pub const OTHER: Self = Self(5);
}

/// A failed provider call.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// What kind of failure it is.
    pub kind: ProviderErrorKind,
    /// The OS error code (`errno`) for [`ProviderErrorKind::IO`], 0 otherwise.
    pub os_code: i32,
    /// One line for the user, naming what is at fault.
    pub message: RString,
}

impl ProviderError {
    /// An error of `kind` without an OS code.
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            os_code: 0,
            message: RString::from(message.into()),
        }
    }

    /// A [`ProviderErrorKind::UNSUPPORTED_TYPE`] error.
    pub fn unsupported_type(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::UNSUPPORTED_TYPE, message)
    }

    /// A [`ProviderErrorKind::UNSUPPORTED_FEATURE`] error.
    pub fn unsupported_feature(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::UNSUPPORTED_FEATURE, message)
    }

    /// A [`ProviderErrorKind::INVALID_VALUE`] error.
    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::INVALID_VALUE, message)
    }

    /// A [`ProviderErrorKind::NOT_IMPLEMENTED`] error.
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::NOT_IMPLEMENTED, message)
    }

    /// A [`ProviderErrorKind::OTHER`] error.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::OTHER, message)
    }

    /// An I/O error with its OS code and a message that should name the file at fault.
    pub fn io(os_code: i32, message: impl Into<String>) -> Self {
        ProviderError {
            kind: ProviderErrorKind::IO,
            os_code,
            message: RString::from(message.into()),
        }
    }

    /// Wraps an `io::Error`, prefixing its text with `context` (usually the path at fault).
    pub fn from_io(context: impl fmt::Display, err: &io::Error) -> Self {
        Self::io(err.raw_os_error().unwrap_or(0), format!("{context}: {err}"))
    }

    /// The kind as the original program's exception name; used in messages and tests.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ProviderErrorKind::UNSUPPORTED_TYPE => "unsupported backup type",
            ProviderErrorKind::UNSUPPORTED_FEATURE => "unsupported feature",
            ProviderErrorKind::INVALID_VALUE => "invalid value",
            ProviderErrorKind::NOT_IMPLEMENTED => "not implemented",
            ProviderErrorKind::IO => "I/O error",
            _ => "error",
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        self.message.as_str()
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.message, self.kind_name())?;
        if self.os_code != 0 {
            write!(f, ", os error {}", self.os_code)?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ProviderError {}

/// The text of an OS error without std's ` (os error N)` suffix, as `strerror` gives it (e.g.
/// "Too many levels of symbolic links").
pub fn os_message(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(i) if error.raw_os_error().is_some() => text[..i].to_string(),
        _ => text,
    }
}

impl From<io::Error> for ProviderError {
    fn from(err: io::Error) -> Self {
        Self::io(err.raw_os_error().unwrap_or(0), err.to_string())
    }
}

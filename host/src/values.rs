//! Option values as text: the parsing that configuration files, the command line and the
//! `[Archive]` section of specifications share, written once so that a value means the same
//! thing wherever it is written.
//!
//! [`is_py_space`] is here too: the configparser reader strips values with Python's notion of
//! white space, and the file lists of specifications are split on the same characters.

use std::fmt;

/// Python's `str.isspace()`: Unicode white space plus the ASCII separators `\x1c`..`\x1f`.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// An error in a boolean or integer option value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    option: String,
    value: String,
    expected: &'static str,
}

impl ValueError {
    /// A wrong `value` of `option`; `expected` describes the accepted values.
    pub(crate) fn new(option: &str, value: &str, expected: &'static str) -> ValueError {
        ValueError {
            option: option.to_string(),
            value: value.to_string(),
            expected,
        }
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrong value \"{}\" of option \"{}\" (expected {})",
            self.value, self.option, self.expected
        )
    }
}

impl std::error::Error for ValueError {}

/// Parses a boolean option value: `yes`/`true`/`on`/`1` or `no`/`false`/`off`/`0`, in any
/// case. An empty value means "unset" and gives `None`.
///
/// The original took `no`, `false` and `0` as false and anything else as true; other words
/// are rejected here so that a typo cannot switch an option on.
pub(crate) fn parse_bool(option: &str, value: &str) -> Result<Option<bool>, ValueError> {
    let word = value.trim().to_ascii_lowercase();
    match word.as_str() {
        "" => Ok(None),
        "yes" | "true" | "on" | "1" => Ok(Some(true)),
        "no" | "false" | "off" | "0" => Ok(Some(false)),
        _ => Err(ValueError::new(option, value, "yes or no")),
    }
}

/// Parses an integer option value as Python's `int()` does for ASCII digits: optional sign,
/// surrounding white space and single `_` between digits allowed. An empty value gives `None`.
pub(crate) fn parse_int(option: &str, value: &str) -> Result<Option<i64>, ValueError> {
    let text = value.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let error = || ValueError::new(option, value, "an integer");
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
    if !well_formed {
        return Err(error());
    }
    text.replace('_', "").parse().map(Some).map_err(|_| error())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a test looks at in an error; the program itself only shows the message.
    impl ValueError {
        fn option(&self) -> &str {
            &self.option
        }

        fn value(&self) -> &str {
            &self.value
        }
    }

    #[test]
    fn booleans() {
        for yes in ["yes", "YES", "True", "on", "1", " yes "] {
            assert_eq!(parse_bool("o", yes), Ok(Some(true)), "{yes}");
        }
        for no in ["no", "No", "FALSE", "off", "0"] {
            assert_eq!(parse_bool("o", no), Ok(Some(false)), "{no}");
        }
        assert_eq!(parse_bool("o", ""), Ok(None));
        let e = parse_bool("incremental", "maybe").unwrap_err();
        assert_eq!(
            e.to_string(),
            "wrong value \"maybe\" of option \"incremental\" (expected yes or no)"
        );
        assert_eq!((e.option(), e.value()), ("incremental", "maybe"));
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int("o", "6"), Ok(Some(6)));
        assert_eq!(parse_int("o", " -12 "), Ok(Some(-12)));
        assert_eq!(parse_int("o", "+1_000"), Ok(Some(1000)));
        assert_eq!(parse_int("o", ""), Ok(None));
        for bad in [
            "x",
            "1.5",
            "_1",
            "1_",
            "1__0",
            "+",
            "99999999999999999999",
            "1 2",
        ] {
            assert!(parse_int("o", bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_int("compression-level", "high")
                .unwrap_err()
                .to_string(),
            "wrong value \"high\" of option \"compression-level\" (expected an integer)"
        );
    }
}

//! Reading one specification file: the INI reader with the settings of the original's parser,
//! and the checks the original made on every file it read. A referenced file gets the same
//! checks as the referring one, so both loading and `[External]` references read through here.

use std::path::Path;

use super::error::{Kind, SpecError};
use super::{ARCHIVE, CONTENT, EXTERNAL};
use crate::ini::{Ini, IniOptions};

/// Configuration options that make no sense per archive; the original rejected them in every
/// section of a specification (and in `[DEFAULT]`), including referenced files.
const GENERAL_OPTIONS: [&str; 23] = [
    "level",
    "verbose",
    "quiet",
    "all",
    "archive-specs-dir",
    "user-config-file",
    "user-config-dir",
    "command-before-all-backups",
    "command-after-all-backups",
    "force-archiver",
    "force-incremental",
    "force-restarting",
    "force-compression-level",
    "force-dest-dir",
    "force-command-before-backup",
    "force-command-after-backup",
    "force-overwrite-at-start",
    "no-incremental",
    "no-restarting",
    "no-remove-obsolete-backups",
    "no-keep-old-backups",
    "no-all",
    "no-overwrite-at-start",
];

fn ini_options() -> IniOptions {
    // The original's parser kept option names as written and allowed valueless options
    // (needed for the `name` form in [External]).
    IniOptions {
        lowercase_keys: false,
        allow_no_value: true,
        interpolation: true,
    }
}

/// Parses a specification and applies the checks the original made on every file it read,
/// including referenced ones.
pub(super) fn read_spec(file: &Path) -> Result<Ini, SpecError> {
    let ini = Ini::load(file, ini_options())?;
    let at = |line, kind| Err(SpecError::new(file, Some(line), kind));
    for section in ini.sections() {
        if ![EXTERNAL, ARCHIVE, CONTENT].contains(&section) {
            return at(
                ini.section_line(section).unwrap_or(0),
                Kind::UnknownSection(section.into()),
            );
        }
    }
    for section in ini.sections() {
        for item in ini.items(section) {
            if GENERAL_OPTIONS.contains(&item.key) {
                let section = if item.from_default {
                    "DEFAULT"
                } else {
                    section
                };
                let kind = Kind::NotAllowed {
                    section: section.to_string(),
                    key: item.key.to_string(),
                };
                return at(item.line, kind);
            }
        }
    }
    for section in [ARCHIVE, CONTENT] {
        for item in ini.items(section) {
            if item.value.is_none() {
                let kind = Kind::NoValue {
                    section: if item.from_default {
                        "DEFAULT"
                    } else {
                        section
                    },
                    key: item.key.to_string(),
                };
                return at(item.line, kind);
            }
        }
    }
    Ok(ini)
}

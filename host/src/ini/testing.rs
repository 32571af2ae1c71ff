//! Helpers shared by the tests of the reader's modules.

use std::path::Path;

use super::{Ini, IniError, IniOptions};

pub(super) fn parse(text: &str) -> Result<Ini, IniError> {
    Ini::parse(text, Path::new("t.ini"), IniOptions::default())
}

pub(super) fn parse_with(text: &str, options: IniOptions) -> Result<Ini, IniError> {
    Ini::parse(text, Path::new("t.ini"), options)
}

pub(super) fn get(ini: &Ini, section: &str, key: &str) -> String {
    ini.get(section, key).unwrap().unwrap()
}

pub(super) fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

//! A reader for INI files that behaves like Python 3.11's `configparser.ConfigParser`.
//!
//! The archive specification files (`*.aa`) and the configuration files of the original
//! AutoArchive were read with Python's `configparser`, so existing files rely on its exact
//! rules: which lines are comments, how indented lines continue a value, that empty lines
//! inside a value are kept, that `[DEFAULT]` options show through in every section, and how
//! `%(name)s` interpolation works. This module reproduces those rules instead of following a
//! generic INI dialect, so that a file accepted by `aa` 2.0.6 means the same thing here.
//!
//! What is reproduced (Python's default settings unless [`IniOptions`] says otherwise):
//! - `[name]` headers (the name runs to the last `]` of the line and is case-sensitive);
//!   `[DEFAULT]` holds options visible in every section.
//! - `key = value` or `key : value`; the first delimiter wins; keys are lowercased and values
//!   stripped; no inline comments.
//! - Lines whose stripped form starts with `#` or `;` are comments, wherever they are.
//! - A line indented deeper than its option line continues the value (joined with `\n`);
//!   empty lines inside a value are kept, trailing ones dropped.
//! - Duplicate sections or options are errors (`strict=True`), as are lines before the first
//!   section header and lines without a delimiter (unless valueless options are allowed).
//! - `%(name)s` refers to an option of the same section or `[DEFAULT]`, `%%` is a literal `%`,
//!   any other `%` is an error, and nesting deeper than 10 levels is reported as a loop.
//!   Like Python, interpolation happens when a value is read, not when the file is parsed.
//!
//! Deliberate differences: a UTF-8 byte order mark at the start of the file is skipped (Python
//! would reject the first header), and a continuation line after a valueless option is an
//! error (Python crashes with an `AttributeError`). Errors name the file and the line.
//!
//! Every file `aa` reads as INI text (specifications, the files they reference, `aa.conf`,
//! storage realms) goes through `read_text_file` (by [`Ini::load`]), so a FIFO or a device
//! given as one cannot hang or exhaust a run: only regular files of at most [`MAX_FILE_SIZE`]
//! bytes are read.
//! Interpolation is likewise bounded: each `%(name)s` is expanded once per read value
//! (memoised), and a value that grows past [`MAX_VALUE_SIZE`] bytes is an error, where Python
//! would spend minutes and gigabytes on a few nested references.
//!
//! The reader is split by concept: `parse` turns text into sections and raw values (the
//! line rules above), `interpolate` expands `%(name)s` when a value is read, `file` reads a
//! file safely (`read_text_file`) and `error` words every message.

mod error;
mod file;
mod interpolate;
mod parse;
#[cfg(test)]
mod testing;

use std::path::{Path, PathBuf};

pub(crate) use self::error::IniError;

/// Name of the section whose options are visible in all other sections.
const DEFAULT_SECTION: &str = "DEFAULT";

/// Python's `MAX_INTERPOLATION_DEPTH`.
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// The largest file `read_text_file` reads (1 MiB); specifications and configuration files
/// are a few hundred bytes.
const MAX_FILE_SIZE: u64 = 1 << 20;

/// The largest value interpolation may produce (1 MiB), the same bound as a whole file.
pub(crate) const MAX_VALUE_SIZE: usize = 1 << 20;

/// Parser settings that differ between the users of the original's `configparser`.
///
/// [`Default`] gives Python's `ConfigParser()` defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IniOptions {
    /// Lowercase option names (Python's default `optionxform`). The archive specification
    /// parser of the original kept names as written.
    pub lowercase_keys: bool,
    /// Accept `key` lines without a delimiter; such options have no value
    /// (Python's `allow_no_value`).
    pub allow_no_value: bool,
    /// Expand `%(name)s` and `%%` when reading values (Python's `BasicInterpolation`); when
    /// false values are returned as written (`interpolation=None`).
    pub interpolation: bool,
}

impl Default for IniOptions {
    fn default() -> IniOptions {
        IniOptions {
            lowercase_keys: true,
            allow_no_value: false,
            interpolation: true,
        }
    }
}

/// One option as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item<'a> {
    /// The option name (lowercased when [`IniOptions::lowercase_keys`] is set).
    pub key: &'a str,
    /// The raw (not interpolated) value; `None` for a valueless option.
    pub value: Option<&'a str>,
    /// 1-based line of the option's `key = value` line.
    pub line: usize,
    /// True when the option comes from `[DEFAULT]` rather than the section itself.
    pub from_default: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    value: Option<String>,
    line: usize,
}

#[derive(Debug, Clone)]
struct Section {
    name: String,
    line: usize,
    entries: Vec<Entry>,
}

impl Section {
    fn new(name: &str, line: usize) -> Section {
        Section {
            name: name.to_string(),
            line,
            entries: Vec::new(),
        }
    }

    fn find(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// A parsed INI file.
#[derive(Debug, Clone)]
pub(crate) struct Ini {
    path: PathBuf,
    options: IniOptions,
    defaults: Section,
    sections: Vec<Section>,
}

impl Ini {
    /// The file this was read from (or the name given to [`Ini::parse`]).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Section names in file order, without `[DEFAULT]` (as Python's `sections()`).
    pub(crate) fn sections(&self) -> Vec<&str> {
        self.sections.iter().map(|s| s.name.as_str()).collect()
    }

    /// True if the file has the section; always false for `[DEFAULT]`.
    pub(crate) fn has_section(&self, section: &str) -> bool {
        self.section(section).is_some()
    }

    /// The line of the section's header.
    pub(crate) fn section_line(&self, section: &str) -> Option<usize> {
        self.section(section).map(|s| s.line)
    }

    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The options written in the section itself, in file order, without those inherited
    /// from `[DEFAULT]`. For `DEFAULT` these are the default options.
    pub(crate) fn own_items(&self, section: &str) -> Vec<Item<'_>> {
        let (sect, from_default) = if section == DEFAULT_SECTION {
            (Some(&self.defaults), true)
        } else {
            (self.section(section), false)
        };
        sect.map(|s| s.entries.iter().map(|e| item(e, from_default)).collect())
            .unwrap_or_default()
    }

    /// All options visible in the section: its own, then the `[DEFAULT]` ones it does not
    /// override. Empty when the section does not exist.
    pub(crate) fn items(&self, section: &str) -> Vec<Item<'_>> {
        if section != DEFAULT_SECTION && !self.has_section(section) {
            return Vec::new();
        }
        let mut items = self.own_items(section);
        if section != DEFAULT_SECTION {
            for e in &self.defaults.entries {
                if !items.iter().any(|i| i.key == e.key) {
                    items.push(item(e, true));
                }
            }
        }
        items
    }

    /// The raw option as visible in `section` (falling back to `[DEFAULT]`); `None` if the
    /// section does not exist or has no such option. `key` is lowercased first when
    /// [`IniOptions::lowercase_keys`] is set, as Python's `optionxform` does.
    pub(crate) fn item(&self, section: &str, key: &str) -> Option<Item<'_>> {
        let key = &self.xform(key);
        if section == DEFAULT_SECTION {
            return self.defaults.find(key).map(|e| item(e, true));
        }
        let sect = self.section(section)?;
        sect.find(key)
            .map(|e| item(e, false))
            .or_else(|| self.defaults.find(key).map(|e| item(e, true)))
    }

    /// True if `section` exists and the option is visible in it.
    #[cfg(test)]
    pub(crate) fn has_option(&self, section: &str, key: &str) -> bool {
        section != DEFAULT_SECTION && self.item(section, key).is_some()
    }

    fn xform(&self, key: &str) -> String {
        if self.options.lowercase_keys {
            key.to_lowercase()
        } else {
            key.to_string()
        }
    }
}

fn item(e: &Entry, from_default: bool) -> Item<'_> {
    Item {
        key: &e.key,
        value: e.value.as_deref(),
        line: e.line,
        from_default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the same inputs through Python's configparser and compares every value and
    /// whether parsing fails (and on which line). Skipped without python3.
    #[test]
    fn matches_python_configparser() {
        const SCRIPT: &str = r#"
import configparser, json, sys
text = open(sys.argv[1], encoding='utf-8', newline=None).read()
lower, nv, interp = (a == '1' for a in sys.argv[2:5])
kw = dict(allow_no_value=nv)
if not interp: kw['interpolation'] = None
p = configparser.ConfigParser(**kw)
if not lower: p.optionxform = lambda o: o
try:
    p.read_string(text, 't.ini')
except configparser.Error as e:
    print(json.dumps({'error': getattr(e, 'lineno', None) or (e.errors[0][0] if hasattr(e, 'errors') else None)}))
    sys.exit(0)
out = {}
for s in ['DEFAULT'] + p.sections():
    opts = list(p.defaults()) if s == 'DEFAULT' else p.options(s)
    vals = {}
    for o in opts:
        try:
            vals[o] = p.get(s, o)
        except (configparser.Error, TypeError):
            vals[o] = '<error>'
    out[s] = vals
print(json.dumps({'sections': out}))
"#;
        let cases: &[&str] = &[
            "[s]\na = 1\n",
            "[s]\na=b=c\nd:e\n f\n\n\n  g\n\nh = 1\n",
            "[s]\n  a = 1\n    b\n  c = 2\n\t\td\n",
            "[s]\na = x\n  # c\n  ; c\n  y\n",
            "[s]\na =\n\n  x\n",
            "[DEFAULT]\nd = %(s)s!\n[s]\ns = S\nx = %(d)s%%\n[t]\ns = T\n",
            "[s]\na = %(b)s\nb = %(c)s\nc = 1%%2\n",
            "[s]\na = 50%\nb = %(nope)s\nc = %(a\nd = %\n",
            "[s]\nA = 1\n[t]\nKey = %(KEY)s\nkey2 = %(Key)s\n",
            "[a]b]\nx=1\n[ c ]\ny : 2\n",
            "x = 1\n[s]\n",
            "[s]\na = 1\n[s]\n",
            "[s]\na = 1\nA = 2\n",
            "[s]\nbad line\na = 1\na = 2\n",
            "[s]\nbad line\n",
            "[s]\n= v\n",
            "[s]\nflag\nk = v\n",
            "[s]\r\na = 1\rb = 2\r\n  c\n",
            "[s]\na = 1 # x\nb = ;y\n# [t]\n",
            "[DEFAULT]\na=1\n[s]\n[DEFAULT]\nb=2\n",
            "[s]\n\x0ba = \x1cv\x1f\n",
            "[s]\nk = v\n\u{a0} cont\n",
            "[s]\n[]\n",
            "[s]\na = %(b)s\nb = %(a)s\n",
            // A reference expanded once and met again deeper, where it no longer fits
            // below the depth limit (c6), or still does (c5); and first met deep, then shallow.
            "[s]\ntop = %(x)s%(c1)s\nc1 = %(c2)s\nc2 = %(c3)s\nc3 = %(c4)s\nc4 = %(c5)s\n\
             c5 = %(c6)s\nc6 = %(x)s\nx = %(y)s\ny = %(z)s\nz = %%\n",
            "[s]\ntop = %(x)s%(c1)s\nc1 = %(c2)s\nc2 = %(c3)s\nc3 = %(c4)s\nc4 = %(c5)s\n\
             c5 = %(x)s\nx = %(y)s\ny = %(z)s\nz = %%\nlast = %(c1)s%(x)s\n",
            "[s]\na = %(b)s %(b)s %(c)s\nb = %(c)s-%(c)s\nc = %(d)s\nd = 1%%\ne = %(a)s%(missing)s\n",
        ];
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("case.ini");
        let mut ran = false;
        for (i, case) in cases.iter().enumerate() {
            for (lower, nv, interp) in [
                (true, false, true),
                (false, true, true),
                (true, false, false),
            ] {
                std::fs::write(&file, case).unwrap();
                let flag = |b: bool| if b { "1" } else { "0" };
                let output = std::process::Command::new("python3")
                    .args(["-c", SCRIPT])
                    .arg(&file)
                    .args([flag(lower), flag(nv), flag(interp)])
                    .output();
                let Ok(output) = output else {
                    eprintln!("python3 not available; skipping comparison");
                    return;
                };
                assert!(output.status.success(), "python failed: {output:?}");
                ran = true;
                let expected = String::from_utf8(output.stdout).unwrap();
                let options = IniOptions {
                    lowercase_keys: lower,
                    allow_no_value: nv,
                    interpolation: interp,
                };
                let actual = match Ini::parse(case, Path::new("t.ini"), options) {
                    Err(e) => format!("{{\"error\": {}}}", e.line().unwrap()),
                    Ok(ini) => {
                        let mut out = String::from("{\"sections\": {");
                        let names: Vec<&str> = std::iter::once(DEFAULT_SECTION)
                            .chain(ini.sections())
                            .collect();
                        for (n, s) in names.iter().enumerate() {
                            if n > 0 {
                                out.push_str(", ");
                            }
                            out.push_str(&format!("{}: {{", json(s)));
                            for (m, it) in ini.items(s).iter().enumerate() {
                                if m > 0 {
                                    out.push_str(", ");
                                }
                                let value = match (it.value, ini.get(s, it.key)) {
                                    (None, _) => "null".to_string(),
                                    (Some(_), Ok(v)) => json(&v.unwrap()),
                                    (Some(_), Err(_)) => json("<error>"),
                                };
                                out.push_str(&format!("{}: {}", json(it.key), value));
                            }
                            out.push('}');
                        }
                        out.push_str("}}");
                        out
                    }
                };
                assert_eq!(
                    actual.trim(),
                    expected.trim(),
                    "case {i} {case:?} lower={lower} nv={nv} interp={interp}"
                );
            }
        }
        assert!(ran);
    }

    /// Minimal JSON string encoding matching Python's `json.dumps` (ASCII-escaped).
    fn json(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

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
//! storage realms) goes through [`read_text_file`], so a FIFO or a device given as one cannot
//! hang or exhaust a run: only regular files of at most [`MAX_FILE_SIZE`] bytes are read.
//! Interpolation is likewise bounded: each `%(name)s` is expanded once per read value
//! (memoised), and a value that grows past [`MAX_VALUE_SIZE`] bytes is an error, where Python
//! would spend minutes and gigabytes on a few nested references.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Name of the section whose options are visible in all other sections.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// Python's `MAX_INTERPOLATION_DEPTH`.
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// The largest file [`read_text_file`] reads (1 MiB); specifications and configuration files
/// are a few hundred bytes.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// The largest value interpolation may produce (1 MiB), the same bound as a whole file.
pub const MAX_VALUE_SIZE: usize = 1 << 20;

/// Parser settings that differ between the users of the original's `configparser`.
///
/// [`Default`] gives Python's `ConfigParser()` defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IniOptions {
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
pub struct Item<'a> {
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
pub struct Ini {
    path: PathBuf,
    options: IniOptions,
    defaults: Section,
    sections: Vec<Section>,
}

/// An error while reading an INI file or one of its values.
#[derive(Debug)]
pub struct IniError {
    path: PathBuf,
    line: Option<usize>,
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
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
    fn new(path: &Path, line: Option<usize>, kind: ErrorKind) -> IniError {
        IniError {
            path: path.to_path_buf(),
            line,
            kind,
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based line at fault, when there is one.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The message without the `file:line: ` prefix.
    pub fn message(&self) -> String {
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

/// Reads the regular file at `path` (following symbolic links), at most [`MAX_FILE_SIZE`]
/// bytes. Anything else (a FIFO, a device, a directory) is refused without reading from it,
/// and the open itself cannot block: `O_NONBLOCK` keeps a FIFO without a writer from hanging.
pub fn read_text_file(path: &Path) -> Result<Vec<u8>, IniError> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

    let error = |kind| IniError::new(path, None, kind);
    // Rust opens every file with O_CLOEXEC.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| error(ErrorKind::Io(e)))?;
    let file_type = file
        .metadata()
        .map_err(|e| error(ErrorKind::Io(e)))?
        .file_type();
    if !file_type.is_file() {
        let kind = if file_type.is_dir() {
            "a directory"
        } else if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_char_device() {
            "a character device"
        } else if file_type.is_block_device() {
            "a block device"
        } else if file_type.is_socket() {
            "a socket"
        } else {
            "an unknown type"
        };
        return Err(error(ErrorKind::NotRegular(kind)));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(ErrorKind::Io(e)))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(error(ErrorKind::TooLarge));
    }
    Ok(bytes)
}

/// Python's `str.isspace()`: Unicode white space plus the ASCII separators `\x1c`..`\x1f`.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Splits like Python's universal newlines mode: `\n`, `\r\n` and a lone `\r` end a line.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// The header name if `line` (already stripped) is a section header: Python's
/// `\[(?P<header>.+)\]` matched at the start, so the name runs to the last `]`.
fn section_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

impl Ini {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path, options: IniOptions) -> Result<Ini, IniError> {
        let bytes = read_text_file(path)?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let line = 1 + e.as_bytes()[..valid]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                return Err(IniError::new(path, Some(line), ErrorKind::NotUtf8));
            }
        };
        Ini::parse(&text, path, options)
    }

    /// Parses `text`; `path` is only used to name the file in errors.
    pub fn parse(text: &str, path: &Path, options: IniOptions) -> Result<Ini, IniError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut ini = Ini {
            path: path.to_path_buf(),
            options,
            defaults: Section::new(DEFAULT_SECTION, 0),
            sections: Vec::new(),
        };
        // Values are collected line by line and joined at the end, as Python does.
        let mut pending: Vec<Vec<Option<Vec<String>>>> = Vec::new();
        let mut default_pending: Vec<Option<Vec<String>>> = Vec::new();
        // Index into `ini.sections`, or `None` for [DEFAULT]; the outer `None` means "no
        // section seen yet".
        let mut current: Option<Option<usize>> = None;
        let mut current_key: Option<usize> = None;
        let mut indent_level = 0usize;
        let mut seen_options: HashSet<(String, String)> = HashSet::new();
        // Python reports lines without a delimiter only at the end of the file, but raises
        // the other errors at once; keep that order so the same error is reported.
        let mut deferred: Option<IniError> = None;
        let err = |line: usize, kind: ErrorKind| IniError::new(path, Some(line), kind);

        for (index, raw_line) in split_lines(text).into_iter().enumerate() {
            let lineno = index + 1;
            let stripped = py_strip(raw_line);
            let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
            if stripped.is_empty() || is_comment {
                // An empty line (not a comment) belongs to the value being read, if any.
                if !is_comment {
                    if let (Some(sect), Some(k)) = (current, current_key) {
                        let values = match sect {
                            None => &mut default_pending,
                            Some(s) => &mut pending[s],
                        };
                        if let Some(lines) = values[k].as_mut() {
                            lines.push(String::new());
                        }
                    }
                }
                continue;
            }
            let indent = raw_line
                .char_indices()
                .find(|&(_, c)| !is_py_space(c))
                .map(|(i, _)| raw_line[..i].chars().count())
                .unwrap_or(0);

            if let (Some(sect), Some(k), true) = (current, current_key, indent > indent_level) {
                let (section, values) = match sect {
                    None => (&ini.defaults, &mut default_pending),
                    Some(s) => (&ini.sections[s], &mut pending[s]),
                };
                match values[k].as_mut() {
                    Some(lines) => lines.push(stripped.to_string()),
                    None => {
                        return Err(err(
                            lineno,
                            ErrorKind::ContinuesValueless {
                                section: section.name.clone(),
                                key: section.entries[k].key.clone(),
                            },
                        ))
                    }
                }
                continue;
            }

            indent_level = indent;
            if let Some(name) = section_header(stripped) {
                if name == DEFAULT_SECTION {
                    current = Some(None);
                } else if ini.sections.iter().any(|s| s.name == name) {
                    return Err(err(lineno, ErrorKind::DuplicateSection(name.to_string())));
                } else {
                    ini.sections.push(Section::new(name, lineno));
                    pending.push(Vec::new());
                    current = Some(Some(ini.sections.len() - 1));
                }
                current_key = None;
                continue;
            }
            let Some(sect) = current else {
                return Err(err(
                    lineno,
                    ErrorKind::MissingSectionHeader(stripped.to_string()),
                ));
            };

            let (key, value) = match stripped.find(['=', ':']) {
                Some(pos) => (
                    stripped[..pos].trim_end_matches(is_py_space),
                    Some(py_strip(&stripped[pos + 1..])),
                ),
                None if options.allow_no_value => (stripped, None),
                None => {
                    deferred.get_or_insert_with(|| {
                        err(lineno, ErrorKind::NoDelimiter(stripped.to_string()))
                    });
                    continue;
                }
            };
            if key.is_empty() {
                deferred
                    .get_or_insert_with(|| err(lineno, ErrorKind::EmptyKey(stripped.to_string())));
            }
            let key = if options.lowercase_keys {
                key.to_lowercase()
            } else {
                key.to_string()
            };
            let (section, values) = match sect {
                None => (&mut ini.defaults, &mut default_pending),
                Some(s) => (&mut ini.sections[s], &mut pending[s]),
            };
            if !seen_options.insert((section.name.clone(), key.clone())) {
                return Err(err(
                    lineno,
                    ErrorKind::DuplicateOption {
                        section: section.name.clone(),
                        key,
                    },
                ));
            }
            // A repeated [DEFAULT] header may not repeat an option, which the check above
            // already rejects, so a key is never present twice here.
            current_key = if key.is_empty() {
                None
            } else {
                Some(section.entries.len())
            };
            section.entries.push(Entry {
                key,
                value: None,
                line: lineno,
            });
            values.push(value.map(|v| vec![v.to_string()]));
        }
        if let Some(e) = deferred {
            return Err(e);
        }

        let join = |section: &mut Section, values: Vec<Option<Vec<String>>>| {
            for (entry, lines) in section.entries.iter_mut().zip(values) {
                entry.value = lines.map(|l| l.join("\n").trim_end_matches(is_py_space).to_string());
            }
        };
        join(&mut ini.defaults, default_pending);
        for (section, values) in ini.sections.iter_mut().zip(pending) {
            join(section, values);
        }
        Ok(ini)
    }

    /// The file this was read from (or the name given to [`Ini::parse`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Section names in file order, without `[DEFAULT]` (as Python's `sections()`).
    pub fn sections(&self) -> Vec<&str> {
        self.sections.iter().map(|s| s.name.as_str()).collect()
    }

    /// True if the file has the section; always false for `[DEFAULT]`.
    pub fn has_section(&self, section: &str) -> bool {
        self.section(section).is_some()
    }

    /// The line of the section's header.
    pub fn section_line(&self, section: &str) -> Option<usize> {
        self.section(section).map(|s| s.line)
    }

    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The options written in the section itself, in file order, without those inherited
    /// from `[DEFAULT]`. For `DEFAULT` these are the default options.
    pub fn own_items(&self, section: &str) -> Vec<Item<'_>> {
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
    pub fn items(&self, section: &str) -> Vec<Item<'_>> {
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
    pub fn item(&self, section: &str, key: &str) -> Option<Item<'_>> {
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
    pub fn has_option(&self, section: &str, key: &str) -> bool {
        section != DEFAULT_SECTION && self.item(section, key).is_some()
    }

    /// The option's value with interpolation applied (if enabled). `Ok(None)` if the section
    /// or option does not exist; a valueless option is an error.
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, IniError> {
        let key = self.xform(key);
        let Some(it) = self.item(section, &key) else {
            return Ok(None);
        };
        let Some(raw) = it.value else {
            return Err(self.no_value(section, &key, it.line));
        };
        if !self.options.interpolation {
            return Ok(Some(raw.to_string()));
        }
        let mut reading = Reading {
            section,
            key: &key,
            line: it.line,
            memo: HashMap::new(),
        };
        let mut out = String::new();
        self.interpolate(&mut reading, raw, 1, &mut out)?;
        Ok(Some(out))
    }

    fn xform(&self, key: &str) -> String {
        if self.options.lowercase_keys {
            key.to_lowercase()
        } else {
            key.to_string()
        }
    }

    fn no_value(&self, section: &str, key: &str, line: usize) -> IniError {
        IniError::new(
            &self.path,
            Some(line),
            ErrorKind::NoValue {
                section: section.to_string(),
                key: key.to_string(),
            },
        )
    }

    /// Python's `BasicInterpolation._interpolate_some`, appending to `out`; returns how many
    /// levels of references below `depth` were followed. Errors name the option being read
    /// and its line, however deep the reference that failed.
    fn interpolate(
        &self,
        reading: &mut Reading<'_>,
        mut rest: &str,
        depth: usize,
        out: &mut String,
    ) -> Result<usize, IniError> {
        let section = reading.section;
        let err = |reading: &Reading<'_>, kind| IniError::new(&self.path, Some(reading.line), kind);
        let names = |reading: &Reading<'_>| (section.to_string(), reading.key.to_string());
        if depth > MAX_INTERPOLATION_DEPTH {
            let (section, key) = names(reading);
            return Err(err(reading, ErrorKind::InterpolationLoop { section, key }));
        }
        let mut height = 0;
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            if let Some(after) = rest.strip_prefix("%%") {
                out.push('%');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("%(") {
                let Some((name, after)) = after
                    .split_once(')')
                    .filter(|(name, after)| !name.is_empty() && after.starts_with('s'))
                else {
                    let (section, key) = names(reading);
                    let rest = rest.to_string();
                    return Err(err(reading, ErrorKind::BadReference { section, key, rest }));
                };
                rest = &after[1..];
                let name = self.xform(name);
                let Some(found) = self.item(section, &name) else {
                    let (section, key) = names(reading);
                    return Err(err(
                        reading,
                        ErrorKind::UnknownReference { section, key, name },
                    ));
                };
                let Some(value) = found.value else {
                    return Err(self.no_value(section, &name, found.line));
                };
                if !value.contains('%') {
                    out.push_str(value);
                } else if let Some(done) = reading
                    .memo
                    .get(&name)
                    .filter(|done| depth + 1 + done.height <= MAX_INTERPOLATION_DEPTH)
                {
                    out.push_str(&done.value);
                    height = height.max(1 + done.height);
                } else {
                    // Not expanded yet, or it was but would now go too deep: expanding it
                    // again reports the error Python reports.
                    let mut value_out = String::new();
                    let below = self.interpolate(reading, value, depth + 1, &mut value_out)?;
                    out.push_str(&value_out);
                    height = height.max(1 + below);
                    let done = Expanded {
                        value: value_out,
                        height: below,
                    };
                    reading.memo.insert(name, done);
                }
            } else {
                let (section, key) = names(reading);
                let rest = rest.to_string();
                return Err(err(reading, ErrorKind::BadPercent { section, key, rest }));
            }
            if out.len() > MAX_VALUE_SIZE {
                let (section, key) = names(reading);
                return Err(err(reading, ErrorKind::ValueTooLarge { section, key }));
            }
        }
        out.push_str(rest);
        Ok(height)
    }
}

/// The option being read by [`Ini::get`] and the references expanded for it so far, so that
/// each is expanded once however often it is referred to.
struct Reading<'a> {
    section: &'a str,
    key: &'a str,
    line: usize,
    memo: HashMap<String, Expanded>,
}

/// The expansion of one referenced option and how many levels of references it followed.
struct Expanded {
    value: String,
    height: usize,
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

    fn parse(text: &str) -> Result<Ini, IniError> {
        Ini::parse(text, Path::new("t.ini"), IniOptions::default())
    }

    fn parse_with(text: &str, options: IniOptions) -> Result<Ini, IniError> {
        Ini::parse(text, Path::new("t.ini"), options)
    }

    fn get(ini: &Ini, section: &str, key: &str) -> String {
        ini.get(section, key).unwrap().unwrap()
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn sections_and_options() {
        let ini = parse("[a]\nx = 1\ny: 2\n[b]\nz=3\n").unwrap();
        assert_eq!(ini.sections(), ["a", "b"]);
        assert_eq!(get(&ini, "a", "x"), "1");
        assert_eq!(get(&ini, "a", "y"), "2");
        assert_eq!(get(&ini, "b", "z"), "3");
        assert_eq!(ini.get("a", "z").unwrap(), None);
        assert_eq!(ini.get("c", "x").unwrap(), None);
        assert_eq!(ini.section_line("b"), Some(4));
        assert_eq!(ini.item("b", "z").unwrap().line, 5);
    }

    #[test]
    fn first_delimiter_wins() {
        let ini = parse("[s]\na = b = c\nd : e = f\ng = h : i\nurl=http://x\n").unwrap();
        assert_eq!(get(&ini, "s", "a"), "b = c");
        assert_eq!(get(&ini, "s", "d"), "e = f");
        assert_eq!(get(&ini, "s", "g"), "h : i");
        assert_eq!(get(&ini, "s", "url"), "http://x");
    }

    #[test]
    fn keys_lowercased_and_values_stripped() {
        let ini = parse("[Sec]\n  Key Name \t=   some value  \n").unwrap();
        assert_eq!(ini.sections(), ["Sec"]);
        assert_eq!(ini.own_items("Sec")[0].key, "key name");
        assert_eq!(get(&ini, "Sec", "KEY NAME"), "some value");
        assert!(ini.has_option("Sec", "Key name"));
        assert_eq!(ini.item("Sec", "KEY NAME").unwrap().line, 2);
        assert!(!ini.has_section("sec"), "section names are case-sensitive");
    }

    #[test]
    fn keys_kept_when_not_lowercasing() {
        let options = IniOptions {
            lowercase_keys: false,
            ..IniOptions::default()
        };
        let ini = parse_with("[s]\nPath = 1\npath = 2\n", options).unwrap();
        assert_eq!(get(&ini, "s", "Path"), "1");
        assert_eq!(get(&ini, "s", "path"), "2");
    }

    #[test]
    fn comments_anywhere_but_not_inline() {
        let ini = parse("# c\n; c\n[s]\n  # indented comment\na = 1 # not a comment\nb = x ; y\n")
            .unwrap();
        assert_eq!(get(&ini, "s", "a"), "1 # not a comment");
        assert_eq!(get(&ini, "s", "b"), "x ; y");
        assert_eq!(ini.own_items("s").len(), 2);
    }

    #[test]
    fn continuation_lines() {
        let text = "[s]\na = one\n  two\n\n    three\n  # comment inside\n  four\n\n\nb = x\n";
        let ini = parse(text).unwrap();
        assert_eq!(get(&ini, "s", "a"), "one\ntwo\n\nthree\nfour");
        assert_eq!(get(&ini, "s", "b"), "x");
    }

    #[test]
    fn continuation_after_empty_value() {
        let ini = parse("[s]\na =\n  x\n  y\n").unwrap();
        assert_eq!(get(&ini, "s", "a"), "\nx\ny");
    }

    #[test]
    fn indented_option_lines_are_options() {
        // The indent is compared with the previous option line, not with column 0.
        let ini = parse("[s]\n  a = 1\n  b = 2\n    c\n").unwrap();
        assert_eq!(get(&ini, "s", "a"), "1");
        assert_eq!(get(&ini, "s", "b"), "2\nc");
    }

    #[test]
    fn header_right_after_option_is_not_continuation() {
        let ini = parse("[s]\na = 1\n[t]\n  b = 2\n").unwrap();
        assert_eq!(get(&ini, "t", "b"), "2");
    }

    #[test]
    fn indented_header_line_continues_value() {
        let ini = parse("[s]\na = 1\n  [t]\n").unwrap();
        assert_eq!(get(&ini, "s", "a"), "1\n[t]");
        assert_eq!(ini.sections(), ["s"]);
    }

    #[test]
    fn section_header_runs_to_last_bracket() {
        let ini = parse("[a]b] trailing\nx=1\n[ c ]\ny=2\n").unwrap();
        assert_eq!(ini.sections(), ["a]b", " c "]);
    }

    #[test]
    fn line_endings() {
        let ini = parse("[s]\r\na = 1\rb = 2\r\n  c\n").unwrap();
        assert_eq!(get(&ini, "s", "a"), "1");
        assert_eq!(get(&ini, "s", "b"), "2\nc");
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let ini = parse("\u{feff}[s]\na=1\n").unwrap();
        assert_eq!(ini.sections(), ["s"]);
    }

    #[test]
    fn defaults_visible_everywhere() {
        let ini = parse("[DEFAULT]\nbase = /b\nx = d\n[s]\nx = own\n").unwrap();
        assert_eq!(get(&ini, "s", "base"), "/b");
        assert_eq!(get(&ini, "s", "x"), "own");
        assert_eq!(get(&ini, DEFAULT_SECTION, "x"), "d");
        assert!(ini.has_option("s", "base"));
        assert!(!ini.has_section(DEFAULT_SECTION));
        assert_eq!(ini.sections(), ["s"]);
        let keys: Vec<_> = ini
            .items("s")
            .iter()
            .map(|i| (i.key, i.from_default))
            .collect();
        assert_eq!(keys, [("x", false), ("base", true)]);
        assert!(ini.items("missing").is_empty());
    }

    #[test]
    fn repeated_default_header_is_allowed() {
        let ini = parse("[DEFAULT]\na=1\n[s]\n[DEFAULT]\nb=2\n").unwrap();
        assert_eq!(get(&ini, "s", "b"), "2");
        assert_eq!(
            error("[DEFAULT]\na=1\n[DEFAULT]\na=2\n"),
            "t.ini:4: duplicate option \"a\" in section [DEFAULT]"
        );
    }

    #[test]
    fn duplicate_section() {
        assert_eq!(
            error("[s]\na=1\n[t]\n[s]\n"),
            "t.ini:4: duplicate section [s]"
        );
    }

    #[test]
    fn duplicate_option_case_insensitive() {
        assert_eq!(
            error("[Content]\npath = a\nPATH = b\n"),
            "t.ini:3: duplicate option \"path\" in section [Content]"
        );
    }

    #[test]
    fn missing_section_header() {
        assert_eq!(
            error("\n# c\nkey = v\n[s]\n"),
            "t.ini:3: \"key = v\" comes before the first [section] header"
        );
    }

    #[test]
    fn option_without_value() {
        assert_eq!(
            error("[s]\na = 1\njust a line\n"),
            "t.ini:3: expected \"name = value\" but found \"just a line\""
        );
        assert_eq!(
            error("[s]\n= 1\n"),
            "t.ini:2: missing option name in \"= 1\""
        );
    }

    #[test]
    fn syntax_errors_are_reported_after_fatal_ones() {
        // Python defers lines without a delimiter to the end of the file.
        assert_eq!(
            error("[s]\nbogus\na=1\na=2\n"),
            "t.ini:4: duplicate option \"a\" in section [s]"
        );
    }

    #[test]
    fn valueless_options_when_allowed() {
        let options = IniOptions {
            allow_no_value: true,
            ..IniOptions::default()
        };
        let ini = parse_with("[s]\nname\nother = \n", options).unwrap();
        assert_eq!(ini.item("s", "name").unwrap().value, None);
        assert_eq!(ini.item("s", "other").unwrap().value, Some(""));
        assert_eq!(
            ini.get("s", "name").unwrap_err().to_string(),
            "t.ini:2: option \"name\" in section [s] has no value"
        );
        let e = parse_with("[s]\nname\n  more\n", options).unwrap_err();
        assert_eq!(e.line(), Some(3));
    }

    #[test]
    fn interpolation() {
        let text = "[DEFAULT]\nhome = /h\n[s]\ndir = %(HOME)s/x\nfull = %(dir)s/y\npct = 50%%\n\
                    deep = %(pct)s!\n";
        let ini = parse(text).unwrap();
        assert_eq!(get(&ini, "s", "dir"), "/h/x");
        assert_eq!(get(&ini, "s", "full"), "/h/x/y");
        assert_eq!(get(&ini, "s", "pct"), "50%");
        assert_eq!(get(&ini, "s", "deep"), "50%!");
    }

    #[test]
    fn default_values_interpolate_in_the_reading_section() {
        let ini = parse("[DEFAULT]\nfull = %(dir)s/f\n[s]\ndir = /s\n").unwrap();
        assert_eq!(get(&ini, "s", "full"), "/s/f");
        assert!(ini.get(DEFAULT_SECTION, "full").is_err());
    }

    #[test]
    fn interpolation_disabled() {
        let options = IniOptions {
            interpolation: false,
            ..IniOptions::default()
        };
        let ini = parse_with("[s]\na = %(b)s 5%\n", options).unwrap();
        assert_eq!(get(&ini, "s", "a"), "%(b)s 5%");
    }

    #[test]
    fn interpolation_errors() {
        let ini =
            parse("[s]\na = 5%\nb = %(zz)s\nc = %(x)d\nd = %()s\ne = %(e)s\nf = 1\n").unwrap();
        let e = |key: &str| ini.get("s", key).unwrap_err().to_string();
        assert_eq!(
            e("a"),
            "t.ini:2: lone \"%\" in option \"a\" of section [s] at \"%\" (write \"%%\" for a percent sign)"
        );
        assert_eq!(
            e("b"),
            "t.ini:3: option \"b\" in section [s] refers to \"%(zz)s\", which is not an option of that section or [DEFAULT]"
        );
        assert!(e("c").starts_with("t.ini:4: bad reference"));
        assert!(e("d").starts_with("t.ini:5: bad reference"));
        assert_eq!(
            e("e"),
            "t.ini:6: interpolation loop in option \"e\" of section [s] (more than 10 nested references)"
        );
        assert_eq!(get(&ini, "s", "f"), "1");
    }

    #[test]
    fn interpolation_depth_limit_is_ten() {
        // a0 -> a1 -> ... each value containing '%' costs one level.
        let chain = |n: usize| {
            let mut text = String::from("[s]\n");
            for i in 0..n {
                text.push_str(&format!("a{i} = %(a{})s\n", i + 1));
            }
            text.push_str(&format!("a{n} = end\n"));
            parse(&text).unwrap()
        };
        assert_eq!(get(&chain(10), "s", "a0"), "end");
        assert!(chain(11).get("s", "a0").is_err());
    }

    #[test]
    fn references_are_expanded_once_and_values_bounded() {
        // Nine variables each referring ten times to the next: 10^9 copies of the last for
        // Python, which takes minutes and gigabytes; here one expansion each, and the size
        // limit. (`k` and the nine are ten levels, the most Python allows.)
        let bomb = |last: &str| {
            let mut text = String::from("[DEFAULT]\n");
            for i in 1..10 {
                let refs = format!("%(v{})s", i + 1).repeat(10);
                text.push_str(&format!("v{i} = {refs}\n"));
            }
            text.push_str(&format!("v10 = {last}\n[s]\nk = %(v1)s\n"));
            text
        };
        let (empty, large) = crate::test_support::bounded(move || {
            let get = |text: &str| {
                parse(text)
                    .unwrap()
                    .get("s", "k")
                    .map_err(|e| e.to_string())
            };
            (get(&bomb("")), get(&bomb("x")))
        });
        assert_eq!(empty.unwrap(), Some(String::new()));
        assert_eq!(
            large.unwrap_err(),
            format!(
                "t.ini:13: option \"k\" of section [s] expands to more than {MAX_VALUE_SIZE} bytes"
            )
        );
        // A value up to the limit is fine.
        let ini = parse(&format!(
            "[s]\nx = {}\nk = %(x)s%(x)s\n",
            "y".repeat(1 << 19)
        ))
        .unwrap();
        assert_eq!(get(&ini, "s", "k").len(), 1 << 20);
    }

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.ini");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let zero = dir.path().join("zero.ini");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let large = dir.path().join("large.ini");
        let mut text = String::from("[s]\n");
        while text.len() as u64 <= MAX_FILE_SIZE {
            text.push_str("# padding padding padding padding padding padding padding\n");
        }
        std::fs::write(&large, &text).unwrap();
        let at_limit = dir.path().join("limit.ini");
        std::fs::write(&at_limit, &text[text.len() - MAX_FILE_SIZE as usize..]).unwrap();
        let paths = [
            fifo.clone(),
            zero.clone(),
            large.clone(),
            dir.path().to_path_buf(),
        ];
        let errors = crate::test_support::bounded(move || {
            paths.map(|p| read_text_file(&p).unwrap_err().to_string())
        });
        assert_eq!(
            errors,
            [
                format!("{}: not a regular file (a FIFO)", fifo.display()),
                format!(
                    "{}: not a regular file (a character device)",
                    zero.display()
                ),
                format!(
                    "{}: the file is larger than {MAX_FILE_SIZE} bytes, the limit for such a file",
                    large.display()
                ),
                format!("{}: not a regular file (a directory)", dir.path().display()),
            ]
        );
        assert_eq!(
            read_text_file(&at_limit).unwrap().len() as u64,
            MAX_FILE_SIZE
        );
    }

    #[test]
    fn io_and_encoding_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.ini");
        let e = Ini::load(&missing, IniOptions::default()).unwrap_err();
        assert!(e
            .to_string()
            .starts_with(&format!("{}: cannot read", missing.display())));
        let bad = dir.path().join("bad.ini");
        std::fs::write(&bad, b"[s]\na = 1\nb = \xff\n").unwrap();
        let e = Ini::load(&bad, IniOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}:3: the file is not valid UTF-8 text", bad.display())
        );
    }

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

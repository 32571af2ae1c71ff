//! Archive specification files (`NAME.aa`): what to back up and how.
//!
//! A specification is an INI file read with the rules of the original AutoArchive (see
//! [`crate::ini`]): option names are case-sensitive, `%(name)s` interpolation applies, and
//! `@(external.option)` pulls a value from another specification named in `[External]`.
//!
//! - `[Content]` (required): `path` (the archive root, `~` expanded), `include-files`,
//!   `exclude-files` (both required; `exclude-files =` means nothing is excluded) and the
//!   optional `name` (default: the file name without `.aa`).
//! - `[Archive]` (optional): the configuration options a specification may override; they are
//!   kept as raw strings because their meaning (and defaults) belong to the application. An
//!   empty value (`incremental =`) means "unset" and still overrides the configuration.
//! - `[External]`: `name` refers to `name.aa` in the archive specifications directory,
//!   `name = some/file.aa` to a file relative to the referring one.
//!
//! As in the original, a key of `[Archive]` or `[Content]` that is no option of that section
//! is a variable: it does nothing itself but can be interpolated (`base = /srv`, `path =
//! %(base)s/data`). One that looks like a misspelt or misplaced option gets a note (shown with
//! `--verbose`), never an error: the original accepted such files. Configuration options that
//! make no sense per archive (`verbose`, `force-archiver`, ...) are errors in every section,
//! as in the original.
//!
//! Every file is read with [`crate::ini::read_text_file`] (regular files up to 1 MiB only),
//! each referenced file once per specification, and each referenced option resolved once.
//!
//! File lists are split like the original: `"quoted names"` may contain spaces, other names
//! end at white space; each name is normalised and stripped of a leading `/` and of leading
//! `..` components so that it stays below `path`. [`expand_wildcards`] then expands shell
//! wildcards the way Python's `glob.glob` did.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use aa_abi::naming::archive_name_problem;

use crate::ini::{Ini, IniError, IniOptions, MAX_VALUE_SIZE};
use crate::paths::expand_user;

/// Extension of archive specification files, without the dot.
pub const SPEC_EXTENSION: &str = "aa";

const EXTERNAL: &str = "External";
const ARCHIVE: &str = "Archive";
const CONTENT: &str = "Content";

/// Options a specification may set in `[Archive]`, overriding the configuration.
pub const ARCHIVE_OPTIONS: [&str; 16] = [
    "archiver",
    "compression-level",
    "dest-dir",
    "overwrite-at-start",
    "incremental",
    "restarting",
    "restart-after-level",
    "restart-after-age",
    "full-restart-after-count",
    "full-restart-after-age",
    "max-restart-level-size",
    "remove-obsolete-backups",
    "keep-old-backups",
    "number-of-old-backups",
    "command-before-backup",
    "command-after-backup",
];

/// Options of `[Content]`.
pub const CONTENT_OPTIONS: [&str; 4] = ["name", "path", "include-files", "exclude-files"];

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

/// The original gave up after 40 nested external references, assuming a cycle.
const MAX_EXTERNAL_DEPTH: usize = 40;

fn ini_options() -> IniOptions {
    // The original's parser kept option names as written and allowed valueless options
    // (needed for the `name` form in [External]).
    IniOptions {
        lowercase_keys: false,
        allow_no_value: true,
        interpolation: true,
    }
}

/// A loaded archive specification.
#[derive(Debug, Clone)]
pub struct ArchiveSpec {
    file: PathBuf,
    name: String,
    path: PathBuf,
    include_files: Vec<String>,
    exclude_files: Vec<String>,
    archive: Vec<ArchiveOption>,
    notes: Vec<String>,
}

#[derive(Debug, Clone)]
struct ArchiveOption {
    name: &'static str,
    value: String,
    line: usize,
}

impl ArchiveSpec {
    /// Loads the specification at `file`; bare `[External]` names are looked up next to it.
    pub fn load(file: &Path) -> Result<ArchiveSpec, SpecError> {
        let specs_dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
        ArchiveSpec::load_with_specs_dir(file, &specs_dir)
    }

    /// Loads the specification at `file`; a bare name `x` in `[External]` refers to
    /// `specs_dir/x.aa`.
    pub fn load_with_specs_dir(file: &Path, specs_dir: &Path) -> Result<ArchiveSpec, SpecError> {
        let ini = Rc::new(read_spec(file)?);
        if !ini.has_section(CONTENT) {
            return Err(SpecError::new(file, None, Kind::MissingSection(CONTENT)));
        }
        let notes = near_misses(&ini);
        let references = References::default();
        let reader = Reader {
            ini: ini.clone(),
            specs_dir,
            cache: &references,
        };
        let required = |key: &'static str| -> Result<(String, usize), SpecError> {
            reader.get(CONTENT, key)?.ok_or_else(|| {
                SpecError::new(
                    file,
                    None,
                    Kind::MissingOption {
                        section: CONTENT,
                        key,
                    },
                )
            })
        };

        let (path, line) = required("path")?;
        if path.is_empty() {
            let kind = Kind::EmptyOption {
                section: CONTENT,
                key: "path",
            };
            return Err(SpecError::new(file, Some(line), kind));
        }
        let path = expand_user(&path);
        let include_files = parse_file_list(&required("include-files")?.0);
        let exclude_files = parse_file_list(&required("exclude-files")?.0);
        // `name =` is the documented form of "undefined", so it falls back like a missing one.
        let (name, name_line) = match reader.get(CONTENT, "name")? {
            Some((name, line)) if !name.is_empty() => (name, Some(line)),
            _ => (
                file.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                None,
            ),
        };
        // Checked here, before anything builds a file name from it: `../x` would otherwise
        // name a lock, snapshot or realm file outside their directories.
        if let Some(problem) = archive_name_problem(&name) {
            let kind = Kind::InvalidName {
                name,
                problem,
                from_option: name_line.is_some(),
            };
            return Err(SpecError::new(file, name_line, kind));
        }

        let mut archive = Vec::new();
        // As in the original, [DEFAULT] values count only when an [Archive] section exists.
        if ini.has_section(ARCHIVE) {
            for name in ARCHIVE_OPTIONS {
                if let Some((value, line)) = reader.get(ARCHIVE, name)? {
                    archive.push(ArchiveOption { name, value, line });
                }
            }
        }

        Ok(ArchiveSpec {
            file: file.to_path_buf(),
            name,
            path,
            include_files,
            exclude_files,
            archive,
            notes,
        })
    }

    /// Notes about options that are probably misspelt or misplaced (see [`near_misses`]);
    /// `aa` shows them with `--verbose` only.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The specification file this was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The archive name (`name`, or the file name without the extension).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The archive root (`path`, with `~` expanded).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Normalised include patterns, relative to [`ArchiveSpec::path`]; sorted, no duplicates.
    pub fn include_files(&self) -> &[String] {
        &self.include_files
    }

    /// Normalised exclude patterns, relative to [`ArchiveSpec::path`]; sorted, no duplicates.
    pub fn exclude_files(&self) -> &[String] {
        &self.exclude_files
    }

    /// The raw value of an `[Archive]` option (one of [`ARCHIVE_OPTIONS`]), references
    /// resolved. `Some("")` means the specification explicitly leaves the option unset.
    pub fn archive_option(&self, name: &str) -> Option<&str> {
        self.archive_entry(name).map(|o| o.value.as_str())
    }

    /// All `[Archive]` options set by the specification, in [`ARCHIVE_OPTIONS`] order.
    pub fn archive_options(&self) -> impl Iterator<Item = (&str, &str)> {
        self.archive.iter().map(|o| (o.name, o.value.as_str()))
    }

    /// Like [`ArchiveSpec::archive_options`], with the line each option is on.
    pub fn archive_entries(&self) -> impl Iterator<Item = (&str, &str, usize)> {
        self.archive
            .iter()
            .map(|o| (o.name, o.value.as_str(), o.line))
    }

    /// An error about the value of an `[Archive]` option on `line`.
    pub fn value_error(&self, line: usize, error: ValueError) -> SpecError {
        SpecError::new(&self.file, Some(line), Kind::Value(error))
    }

    /// An `[Archive]` option as a boolean; `None` if absent or empty. Errors name the file
    /// and the line.
    pub fn bool_option(&self, name: &str) -> Result<Option<bool>, SpecError> {
        self.typed_option(name, parse_bool)
    }

    /// An `[Archive]` option as an integer; `None` if absent or empty.
    pub fn int_option(&self, name: &str) -> Result<Option<i64>, SpecError> {
        self.typed_option(name, parse_int)
    }

    /// An `[Archive]` option as a path with `~` expanded; `None` if absent or empty.
    pub fn path_option(&self, name: &str) -> Option<PathBuf> {
        self.archive_option(name)
            .filter(|v| !v.is_empty())
            .map(expand_user)
    }

    fn archive_entry(&self, name: &str) -> Option<&ArchiveOption> {
        self.archive.iter().find(|o| o.name == name)
    }

    fn typed_option<T>(
        &self,
        name: &str,
        parse: fn(&str, &str) -> Result<Option<T>, ValueError>,
    ) -> Result<Option<T>, SpecError> {
        let Some(entry) = self.archive_entry(name) else {
            return Ok(None);
        };
        parse(name, &entry.value)
            .map_err(|e| SpecError::new(&self.file, Some(entry.line), Kind::Value(e)))
    }
}

/// Reads values of one specification file, resolving `@(name.option)` references.
struct Reader<'a> {
    ini: Rc<Ini>,
    specs_dir: &'a Path,
    cache: &'a References,
}

/// What the references of one specification have read so far: each referenced file is read
/// (and checked) once, and each referenced option resolved once, however often it is referred
/// to; without this a chain of files each referring twice to the next took exponential time.
#[derive(Default)]
struct References {
    files: RefCell<HashMap<PathBuf, Rc<Ini>>>,
    values: RefCell<HashMap<OptionId, (String, usize)>>,
}

/// A referenced option: (file, section, option). [`References::values`] maps it to the
/// resolved value and how many levels of references resolving it followed.
type OptionId = (PathBuf, String, String);

impl References {
    fn file(&self, path: &Path) -> Result<Rc<Ini>, SpecError> {
        if let Some(ini) = self.files.borrow().get(path) {
            return Ok(ini.clone());
        }
        let ini = Rc::new(read_spec(path)?);
        self.files
            .borrow_mut()
            .insert(path.to_path_buf(), ini.clone());
        Ok(ini)
    }
}

/// A resolved value: the text, its line and how many levels of references it followed.
struct Resolved {
    value: String,
    line: usize,
    height: usize,
}

impl Reader<'_> {
    /// The interpolated and resolved value with its line, `None` if the option is absent.
    fn get(&self, section: &str, key: &str) -> Result<Option<(String, usize)>, SpecError> {
        Ok(self
            .get_at_depth(section, key, 0)?
            .map(|resolved| (resolved.value, resolved.line)))
    }

    fn get_at_depth(
        &self,
        section: &str,
        key: &str,
        depth: usize,
    ) -> Result<Option<Resolved>, SpecError> {
        let Some(item) = self.ini.item(section, key) else {
            return Ok(None);
        };
        let line = item.line;
        let value = self.ini.get(section, key).map_err(SpecError::from)?;
        let value = value.unwrap_or_default();
        let (value, height) = self.resolve_externals(section, key, line, value, depth)?;
        Ok(Some(Resolved {
            value,
            line,
            height,
        }))
    }

    fn error(&self, line: usize, kind: Kind) -> SpecError {
        SpecError::new(self.ini.path(), Some(line), kind)
    }

    /// Replaces each `@(name.option)` (optionally quoted, quotes included in the
    /// replacement) with `option` of the same section in the referenced file. Returns the
    /// value and how many levels of references were followed.
    fn resolve_externals(
        &self,
        section: &str,
        key: &str,
        line: usize,
        value: String,
        depth: usize,
    ) -> Result<(String, usize), SpecError> {
        if !self.ini.has_section(EXTERNAL) {
            return Ok((value, 0));
        }
        let references = find_references(&value);
        if references.is_empty() {
            return Ok((value, 0));
        }
        // Like the original, every [External] entry is evaluated whenever a value is read.
        let mut externals = Vec::new();
        let file_dir = self.ini.path().parent().unwrap_or(Path::new(""));
        for item in self.ini.items(EXTERNAL) {
            let target = match item.value {
                None => self
                    .specs_dir
                    .join(format!("{}.{SPEC_EXTENSION}", item.key)),
                Some(_) => {
                    let value = self.ini.get(EXTERNAL, item.key).map_err(SpecError::from)?;
                    file_dir.join(value.unwrap_or_default())
                }
            };
            let target = PathBuf::from(OsString::from_vec(normpath(target.as_os_str().as_bytes())));
            externals.push((item.key.to_string(), target));
        }

        let mut resolved = value.clone();
        let mut height = 0;
        for (text, inner) in references {
            let owner = || key.to_string();
            let Some((name, option)) = inner.split_once('.') else {
                let kind = Kind::MalformedReference {
                    key: owner(),
                    reference: text,
                };
                return Err(self.error(line, kind));
            };
            let Some((_, target)) = externals.iter().find(|(n, _)| n == name) else {
                let kind = Kind::UnknownExternal {
                    key: owner(),
                    name: name.to_string(),
                };
                return Err(self.error(line, kind));
            };
            if depth >= MAX_EXTERNAL_DEPTH {
                return Err(self.error(line, Kind::ReferenceLoop { key: owner() }));
            }
            let (replacement, below) = self
                .referenced_value(target, section, option, depth + 1)
                .map_err(|e| match e {
                    Lookup::File(e) => {
                        let kind = Kind::ReferencedFile {
                            key: owner(),
                            source: Box::new(e),
                        };
                        self.error(line, kind)
                    }
                    Lookup::Value(e) => e,
                    Lookup::Missing => {
                        let kind = Kind::ReferencedOptionMissing {
                            key: owner(),
                            file: target.clone(),
                            section: section.to_string(),
                            option: option.to_string(),
                        };
                        self.error(line, kind)
                    }
                })?;
            height = height.max(1 + below);
            // Checked before replacing, so that a huge result is never built.
            let count = resolved.matches(text.as_str()).count();
            let grown = resolved.len() - count * text.len() + count * replacement.len();
            if grown > MAX_VALUE_SIZE {
                return Err(self.error(line, Kind::ValueTooLarge { key: owner() }));
            }
            resolved = resolved.replace(&text, &replacement);
        }
        Ok((resolved, height))
    }

    /// `option` of `section` in the referenced file `target`, resolved at `depth`; from the
    /// cache when it was resolved before and still fits below the depth limit (otherwise
    /// resolving it again reports the loop where the original did).
    fn referenced_value(
        &self,
        target: &Path,
        section: &str,
        option: &str,
        depth: usize,
    ) -> Result<(String, usize), Lookup> {
        let cache_key = (
            target.to_path_buf(),
            section.to_string(),
            option.to_string(),
        );
        if let Some((value, height)) = self.cache.values.borrow().get(&cache_key) {
            if depth + height <= MAX_EXTERNAL_DEPTH {
                return Ok((value.clone(), *height));
            }
        }
        let reader = Reader {
            ini: self.cache.file(target).map_err(Lookup::File)?,
            specs_dir: self.specs_dir,
            cache: self.cache,
        };
        let resolved = reader
            .get_at_depth(section, option, depth)
            .map_err(Lookup::Value)?
            .ok_or(Lookup::Missing)?;
        self.cache
            .values
            .borrow_mut()
            .insert(cache_key, (resolved.value.clone(), resolved.height));
        Ok((resolved.value, resolved.height))
    }
}

/// Why a referenced value could not be had.
enum Lookup {
    /// The referenced file cannot be read or is not a valid specification.
    File(SpecError),
    /// Resolving the value failed (the error names where).
    Value(SpecError),
    /// The referenced file has no such option.
    Missing,
}

/// Finds `@(name.option)` references as the original's `(["']?)@\([a-zA-Z0-9-_.]+?\)\1`:
/// returns each matched text (with its quotes, if any) and the part between the parentheses.
fn find_references(value: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = value.chars().collect();
    let is_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    // Matches `@(name)` at `at`, returning the index after `)`.
    let bare = |at: usize| -> Option<usize> {
        if chars.get(at) != Some(&'@') || chars.get(at + 1) != Some(&'(') {
            return None;
        }
        let start = at + 2;
        let end = start + chars[start..].iter().take_while(|&&c| is_name(c)).count();
        (end > start && chars.get(end) == Some(&')')).then_some(end + 1)
    };
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let quote = chars[i];
        let quoted = if quote == '"' || quote == '\'' {
            bare(i + 1)
                .filter(|&end| chars.get(end) == Some(&quote))
                .map(|end| (i, end + 1, 1))
        } else {
            None
        };
        if let Some((start, end, q)) = quoted.or_else(|| bare(i).map(|end| (i, end, 0))) {
            let text: String = chars[start..end].iter().collect();
            let inner: String = chars[start + q + 2..end - q - 1].iter().collect();
            found.push((text, inner));
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

/// Parses a specification and applies the checks the original made on every file it read,
/// including referenced ones.
fn read_spec(file: &Path) -> Result<Ini, SpecError> {
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

/// Notes on the keys written in [Archive] or [Content] that are no option of that section:
/// like the original, such a key is a variable for `%(key)s` and nothing else, but one that
/// is one edit away from an option (`include-file`) or is an option of the other section is
/// probably a mistake.
fn near_misses(ini: &Ini) -> Vec<String> {
    let mut notes = Vec::new();
    for (section, own, other, other_name) in [
        (ARCHIVE, &ARCHIVE_OPTIONS[..], &CONTENT_OPTIONS[..], CONTENT),
        (CONTENT, &CONTENT_OPTIONS[..], &ARCHIVE_OPTIONS[..], ARCHIVE),
    ] {
        for item in ini.own_items(section) {
            if own.contains(&item.key) {
                continue;
            }
            let hint = if other.contains(&item.key) {
                format!("it belongs in [{other_name}]")
            } else if let Some(option) = own.iter().find(|o| one_edit_apart(o, item.key)) {
                format!("did you mean \"{option}\"?")
            } else {
                continue;
            };
            notes.push(format!(
                "{}:{}: \"{}\" is not an option of [{section}] and is only a variable ({hint})",
                ini.path().display(),
                item.line,
                item.key
            ));
        }
    }
    notes
}

/// True when `a` and `b` differ by exactly one inserted, deleted or replaced character
/// (Levenshtein distance 1).
fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if long.len() - short.len() > 1 || a == b {
        return false;
    }
    let prefix = short
        .iter()
        .zip(long.iter())
        .take_while(|(x, y)| x == y)
        .count();
    if short.len() == long.len() {
        short[prefix + 1..] == long[prefix + 1..]
    } else {
        short[prefix..] == long[prefix + 1..]
    }
}

/// Splits an `include-files`/`exclude-files` value into normalised names, sorted and
/// without duplicates.
///
/// Tokens are `"..."` (may hold spaces, not line breaks) or runs of non-space characters;
/// the text between the first and the last `"` of a token is taken when there is any. Each
/// name is normalised (`a/./b/../c` is `a/c`) and leading `/` and `..` components are
/// dropped; a name that is left empty (`/`, `..`) stands for the whole root, `.`.
pub fn parse_file_list(value: &str) -> Vec<String> {
    let chars: Vec<char> = value.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        // `".+?"`: the closing quote is the first one after at least one character, and
        // the quoted text cannot cross a line break.
        let quoted_end = if chars[i] == '"' {
            (i + 1..chars.len())
                .take_while(|&j| chars[j] != '\n')
                .find(|&j| j >= i + 2 && chars[j] == '"')
        } else {
            None
        };
        let end = match quoted_end {
            Some(j) => j + 1,
            None if is_py_space(chars[i]) => {
                i += 1;
                continue;
            }
            None => i + chars[i..].iter().take_while(|&&c| !is_py_space(c)).count(),
        };
        let token = &chars[i..end];
        i = end;
        let first = token.iter().position(|&c| c == '"');
        let last = token.iter().rposition(|&c| c == '"');
        let name: String = match (first, last) {
            (Some(f), Some(l)) if l >= f + 2 => token[f + 1..l].iter().collect(),
            _ => token.iter().collect(),
        };
        names.insert(normalize_list_name(&name));
    }
    names.into_iter().collect()
}

fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn normalize_list_name(name: &str) -> String {
    let normal = normpath(name.as_bytes());
    let normal = String::from_utf8(normal).unwrap_or_default();
    let kept: Vec<&str> = normal
        .split('/')
        .skip_while(|c| c.is_empty() || *c == "..")
        .collect();
    if kept.is_empty() {
        ".".to_string()
    } else {
        kept.join("/")
    }
}

/// Python's `posixpath.normpath`: collapses `//`, `.` and `name/..` without touching the
/// file system.
fn normpath(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let leading = path.iter().take_while(|&&b| b == b'/').count();
    // POSIX lets exactly two leading slashes mean something else, so Python keeps them.
    let prefix: &[u8] = match leading {
        0 => b"",
        2 => b"//",
        _ => b"/",
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if prefix.is_empty() {
                    parts.push(comp);
                }
            }
            _ => parts.push(comp),
        }
    }
    let mut out = prefix.to_vec();
    out.extend(parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
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
    pub fn new(option: &str, value: &str, expected: &'static str) -> ValueError {
        ValueError {
            option: option.to_string(),
            value: value.to_string(),
            expected,
        }
    }

    /// The option whose value is wrong.
    pub fn option(&self) -> &str {
        &self.option
    }

    /// The rejected value.
    pub fn value(&self) -> &str {
        &self.value
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
pub fn parse_bool(option: &str, value: &str) -> Result<Option<bool>, ValueError> {
    let word = value.trim().to_ascii_lowercase();
    match word.as_str() {
        "" => Ok(None),
        "yes" | "true" | "on" | "1" => Ok(Some(true)),
        "no" | "false" | "off" | "0" => Ok(Some(false)),
        _ => Err(ValueError {
            option: option.to_string(),
            value: value.to_string(),
            expected: "yes or no",
        }),
    }
}

/// Parses an integer option value as Python's `int()` does for ASCII digits: optional sign,
/// surrounding white space and single `_` between digits allowed. An empty value gives `None`.
pub fn parse_int(option: &str, value: &str) -> Result<Option<i64>, ValueError> {
    let text = value.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let error = || ValueError {
        option: option.to_string(),
        value: value.to_string(),
        expected: "an integer",
    };
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

/// Expands shell wildcards in `patterns` relative to `root` as the original did with
/// Python's `glob.glob`: `*`, `?` and `[...]` (`[!...]` negates) match within one path
/// component, and names starting with `.` only match a component pattern that starts with
/// `.`. A pattern without wildcards is taken as is when it exists (even as a dangling
/// symbolic link). Returns the matches relative to `root`, sorted and without duplicates,
/// and a warning for each pattern that matched nothing.
pub fn expand_wildcards(root: &Path, patterns: &[String]) -> (Vec<PathBuf>, Vec<String>) {
    let mut found = BTreeSet::new();
    let mut warnings = Vec::new();
    for pattern in patterns {
        let matches = glob(root, pattern, false);
        if matches.is_empty() {
            warnings.push(format!(
                "Cannot access \"{pattern}\". {}.",
                unmatched_reason(root, pattern)
            ));
        }
        found.extend(matches);
    }
    (found.into_iter().collect(), warnings)
}

/// Why `pattern` matched nothing: a symbolic link loop on its way is named as such; anything
/// else is "No such file or directory", as the original said. The part of a wildcard
/// pattern before its first wildcard component is looked up as a directory, the rest not.
fn unmatched_reason(root: &Path, pattern: &str) -> &'static str {
    let looked_up = if has_magic(pattern) {
        let fixed: PathBuf = Path::new(pattern)
            .components()
            .take_while(|c| !has_magic(&c.as_os_str().to_string_lossy()))
            .collect();
        root.join(fixed).metadata()
    } else {
        root.join(pattern).symlink_metadata()
    };
    match looked_up {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => "Too many levels of symbolic links",
        _ => "No such file or directory",
    }
}

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `os.path.split`: the head keeps no trailing slashes unless it is only slashes.
fn split_path(p: &str) -> (&str, &str) {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    let (head, tail) = p.split_at(i);
    let trimmed = head.trim_end_matches('/');
    (if trimmed.is_empty() { head } else { trimmed }, tail)
}

/// Python 3.11's `glob._iglob` without `**` recursion (which the original did not enable).
fn glob(root: &Path, pattern: &str, dir_only: bool) -> Vec<PathBuf> {
    let (dirname, basename) = split_path(pattern);
    if !has_magic(pattern) {
        let exists = if basename.is_empty() {
            root.join(dirname).is_dir()
        } else {
            root.join(pattern).symlink_metadata().is_ok()
        };
        return if exists {
            vec![PathBuf::from(pattern)]
        } else {
            Vec::new()
        };
    }
    if dirname.is_empty() {
        return glob_in_dir(root, basename, dir_only)
            .into_iter()
            .map(PathBuf::from)
            .collect();
    }
    let dirs = if has_magic(dirname) {
        glob(root, dirname, true)
    } else {
        vec![PathBuf::from(dirname)]
    };
    let mut out = Vec::new();
    for dir in dirs {
        let full = root.join(&dir);
        if has_magic(basename) {
            out.extend(
                glob_in_dir(&full, basename, dir_only)
                    .into_iter()
                    .map(|n| dir.join(n)),
            );
        } else if basename.is_empty() {
            if full.is_dir() {
                out.push(dir.join(""));
            }
        } else if full.join(basename).symlink_metadata().is_ok() {
            out.push(dir.join(basename));
        }
    }
    out
}

/// Names in `dir` matching one component pattern; unreadable directories give nothing.
fn glob_in_dir(dir: &Path, pattern: &str, dir_only: bool) -> Vec<OsString> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let tokens = compile_pattern(pattern);
    let hidden_ok = pattern.starts_with('.');
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !hidden_ok && name.as_bytes().first() == Some(&b'.') {
            continue;
        }
        // Intermediate components must be directories, following symbolic links.
        if dir_only && !std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let chars: Vec<char> = name.to_string_lossy().chars().collect();
        if pattern_matches(&tokens, &chars) {
            names.push(name);
        }
    }
    names
}

#[derive(Debug, PartialEq)]
enum Token {
    Char(char),
    AnyChar,
    AnyRun,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Compiles a component pattern with the rules of Python's `fnmatch.translate`: a `[`
/// without a closing `]` is literal, `]` first in a set is literal, `-` makes a range except
/// at either end or right after a range, reversed ranges match nothing, and `\` is literal.
fn compile_pattern(pattern: &str) -> Vec<Token> {
    let p: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            '*' => {
                if tokens.last() != Some(&Token::AnyRun) {
                    tokens.push(Token::AnyRun);
                }
            }
            '?' => tokens.push(Token::AnyChar),
            '[' => {
                let mut j = i;
                if p.get(j) == Some(&'!') {
                    j += 1;
                }
                if p.get(j) == Some(&']') {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    tokens.push(Token::Char('['));
                    continue;
                }
                let mut body = &p[i..j];
                i = j + 1;
                let negated = body.first() == Some(&'!');
                if negated {
                    body = &body[1..];
                }
                let mut ranges = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        if body[k] <= body[k + 2] {
                            ranges.push((body[k], body[k + 2]));
                        }
                        k += 3;
                    } else {
                        ranges.push((body[k], body[k]));
                        k += 1;
                    }
                }
                tokens.push(Token::Set { negated, ranges });
            }
            c => tokens.push(Token::Char(c)),
        }
    }
    tokens
}

fn token_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Char(t) => *t == c,
        Token::AnyChar => true,
        Token::AnyRun => unreachable!("runs are handled by pattern_matches"),
        Token::Set { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
    }
}

/// Whole-name match; a mismatch after `*` retries with the run one character longer.
fn pattern_matches(tokens: &[Token], name: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut retry: Option<(usize, usize)> = None;
    while n < name.len() {
        if t < tokens.len() && tokens[t] == Token::AnyRun {
            retry = Some((t, n));
            t += 1;
        } else if t < tokens.len() && token_matches(&tokens[t], name[n]) {
            t += 1;
            n += 1;
        } else if let Some((rt, rn)) = retry {
            t = rt + 1;
            n = rn + 1;
            retry = Some((rt, rn + 1));
        } else {
            return false;
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::AnyRun)
}

/// An error in an archive specification.
#[derive(Debug)]
pub struct SpecError {
    file: PathBuf,
    line: Option<usize>,
    // Boxed to keep `Result<_, SpecError>` small.
    kind: Box<Kind>,
}

#[derive(Debug)]
enum Kind {
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
    fn new(file: &Path, line: Option<usize>, kind: Kind) -> SpecError {
        SpecError {
            file: file.to_path_buf(),
            line,
            kind: Box::new(kind),
        }
    }

    /// The specification file at fault.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The 1-based line at fault, when known.
    pub fn line(&self) -> Option<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/spec")
            .join(name)
    }

    /// Writes `files` (name, text) into a new temporary directory.
    fn spec_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        dir
    }

    const MINIMAL: &str = "[Content]\npath = /data\ninclude-files = a\nexclude-files =\n";

    /// Loads `text` as `home.aa` and returns the error message with the directory removed.
    fn load_error(text: &str) -> String {
        let dir = spec_dir(&[("home.aa", text)]);
        let file = dir.path().join("home.aa");
        let e = ArchiveSpec::load(&file).unwrap_err();
        e.to_string()
            .replace(&format!("{}/", dir.path().display()), "")
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn full_fixture() {
        let spec = ArchiveSpec::load(&fixture("full.aa")).unwrap();
        assert_eq!(spec.name(), "my-archive");
        assert_eq!(spec.path(), expand_user("~/data"));
        assert_eq!(spec.file(), fixture("full.aa"));
        assert_eq!(
            spec.include_files(),
            strings(&[
                "abs/file",
                "documents",
                "music",
                "my videos",
                "photos",
                "up/one",
                "work stuff"
            ])
        );
        assert_eq!(spec.exclude_files(), strings(&["a/c", "documents/tmp"]));
        let options: Vec<_> = spec.archive_options().collect();
        assert_eq!(
            options,
            [
                ("archiver", "targz"),
                ("compression-level", "6"),
                ("dest-dir", "~/backups"),
                ("incremental", "yes"),
                ("restarting", ""),
                ("keep-old-backups", "no"),
                ("command-before-backup", "echo 100% done"),
            ]
        );
        assert_eq!(spec.bool_option("incremental").unwrap(), Some(true));
        assert_eq!(spec.bool_option("keep-old-backups").unwrap(), Some(false));
        assert_eq!(spec.bool_option("restarting").unwrap(), None);
        assert_eq!(spec.archive_option("restarting"), Some(""));
        assert_eq!(spec.bool_option("overwrite-at-start").unwrap(), None);
        assert_eq!(spec.int_option("compression-level").unwrap(), Some(6));
        assert_eq!(spec.path_option("dest-dir"), Some(expand_user("~/backups")));
        assert_eq!(spec.path_option("restarting"), None);
        assert_eq!(spec.archive_option("level"), None);
    }

    #[test]
    fn minimal_spec_and_default_name() {
        let dir = spec_dir(&[("home.aa", MINIMAL)]);
        let spec = ArchiveSpec::load(&dir.path().join("home.aa")).unwrap();
        assert_eq!(spec.name(), "home");
        assert_eq!(spec.path(), Path::new("/data"));
        assert_eq!(spec.include_files(), ["a"]);
        assert!(spec.exclude_files().is_empty());
        assert_eq!(spec.archive_options().count(), 0);
    }

    #[test]
    fn empty_name_falls_back_to_file_name() {
        let dir = spec_dir(&[("my.data.aa", &format!("{MINIMAL}name =\n"))]);
        let spec = ArchiveSpec::load(&dir.path().join("my.data.aa")).unwrap();
        assert_eq!(spec.name(), "my.data");
    }

    #[test]
    fn missing_section_and_options() {
        assert_eq!(
            load_error("[Archive]\n"),
            "home.aa: missing section [Content]"
        );
        assert_eq!(
            load_error("[Content]\ninclude-files = a\nexclude-files =\n"),
            "home.aa: missing option \"path\" in section [Content]"
        );
        assert_eq!(
            load_error("[Content]\npath = /\nexclude-files =\n"),
            "home.aa: missing option \"include-files\" in section [Content]"
        );
        assert_eq!(
            load_error("[Content]\npath = /\ninclude-files = a\n"),
            "home.aa: missing option \"exclude-files\" in section [Content]"
        );
        assert_eq!(
            load_error("[Content]\npath =\ninclude-files = a\nexclude-files =\n"),
            "home.aa:2: option \"path\" in section [Content] is empty"
        );
    }

    #[test]
    fn option_names_are_case_sensitive() {
        // `Path` is a variable, so `path` is missing.
        assert_eq!(
            load_error("[Content]\nPath = /\ninclude-files = a\nexclude-files =\n"),
            "home.aa: missing option \"path\" in section [Content]"
        );
    }

    #[test]
    fn unknown_sections_and_general_options() {
        assert_eq!(
            load_error(&format!("{MINIMAL}[General]\n")),
            "home.aa:5: unknown section [General] (valid sections: [External], [Archive], [Content])"
        );
        assert_eq!(
            load_error(&format!("{MINIMAL}[Archive]\nverbose = 1\n")),
            "home.aa:6: option \"verbose\" is not allowed in section [Archive] (it is not an archive option)"
        );
        assert_eq!(
            load_error(&format!("[DEFAULT]\nforce-archiver = tar\n{MINIMAL}")),
            "home.aa:2: option \"force-archiver\" is not allowed in section [DEFAULT] (it is not an archive option)"
        );
    }

    /// Loads `text` as `home.aa` and returns its notes with the directory removed.
    fn load_notes(text: &str) -> Vec<String> {
        let dir = spec_dir(&[("home.aa", text)]);
        let spec = ArchiveSpec::load(&dir.path().join("home.aa")).unwrap();
        let dir_prefix = format!("{}/", dir.path().display());
        spec.notes()
            .iter()
            .map(|n| n.replace(&dir_prefix, ""))
            .collect()
    }

    #[test]
    fn other_keys_are_variables() {
        let dir = spec_dir(&[(
            "home.aa",
            "[Content]\nbase = /srv\npath = %(base)s/data\ninclude-files = a\nexclude-files =\n\
             [Archive]\nmine = 9\ncompression-level = %(mine)s\n",
        )]);
        let spec = ArchiveSpec::load(&dir.path().join("home.aa")).unwrap();
        assert_eq!(spec.path(), Path::new("/srv/data"));
        assert_eq!(spec.archive_option("compression-level"), Some("9"));
        assert_eq!(spec.archive_option("mine"), None);
        assert!(spec.notes().is_empty(), "{:?}", spec.notes());
    }

    #[test]
    fn near_misses_and_misplaced_options_get_notes() {
        assert_eq!(
            load_notes(&format!("{MINIMAL}include-file = b\n[Archive]\narchivr = tar\npath = /\nbogus = 1\n")),
            [
                "home.aa:7: \"archivr\" is not an option of [Archive] and is only a variable (did you mean \"archiver\"?)",
                "home.aa:8: \"path\" is not an option of [Archive] and is only a variable (it belongs in [Content])",
                "home.aa:5: \"include-file\" is not an option of [Content] and is only a variable (did you mean \"include-files\"?)",
            ]
        );
        assert_eq!(
            load_notes(&format!("{MINIMAL}dest-dir = /b\n")),
            ["home.aa:5: \"dest-dir\" is not an option of [Content] and is only a variable (it belongs in [Archive])"]
        );
    }

    #[test]
    fn one_edit_apart_is_levenshtein_one() {
        assert!(one_edit_apart("include-files", "include-file"));
        assert!(one_edit_apart("include-files", "include-filess"));
        assert!(one_edit_apart("path", "pith"));
        assert!(one_edit_apart("path", "xpath"));
        assert!(!one_edit_apart("path", "path"));
        assert!(!one_edit_apart("path", "pa"));
        assert!(!one_edit_apart("path", "hpat"));
        assert!(!one_edit_apart("name", "base"));
    }

    #[test]
    fn valueless_options() {
        assert_eq!(
            load_error(&format!("{MINIMAL}name\n")),
            "home.aa:5: option \"name\" in section [Content] has no value (write \"name =\" for an empty one)"
        );
    }

    #[test]
    fn syntax_errors_come_from_the_ini_reader() {
        assert_eq!(
            load_error("[Content]\npath = /\npath = /x\n"),
            "home.aa:3: duplicate option \"path\" in section [Content]"
        );
        assert_eq!(load_error("path = /\n").split(':').nth(1), Some("1"));
        assert!(load_error(&format!("{MINIMAL}[Archive]\ndest-dir = 5%\n"))
            .starts_with("home.aa:6: lone \"%\""));
    }

    #[test]
    fn defaults_count_in_archive_only_when_it_exists() {
        let text = format!("[DEFAULT]\nincremental = yes\n{MINIMAL}");
        let dir = spec_dir(&[("a.aa", &text), ("b.aa", &format!("{text}[Archive]\n"))]);
        let a = ArchiveSpec::load(&dir.path().join("a.aa")).unwrap();
        assert_eq!(a.archive_option("incremental"), None);
        let b = ArchiveSpec::load(&dir.path().join("b.aa")).unwrap();
        assert_eq!(b.archive_option("incremental"), Some("yes"));
    }

    #[test]
    fn value_errors_name_file_option_and_line() {
        let dir = spec_dir(&[(
            "home.aa",
            &format!("{MINIMAL}[Archive]\nincremental = maybe\ncompression-level = high\n"),
        )]);
        let file = dir.path().join("home.aa");
        let spec = ArchiveSpec::load(&file).unwrap();
        let e = spec.bool_option("incremental").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}:6: wrong value \"maybe\" of option \"incremental\" (expected yes or no)",
                file.display()
            )
        );
        assert_eq!(e.line(), Some(6));
        let e = spec.int_option("compression-level").unwrap_err();
        assert!(e.to_string().ends_with(
            ":7: wrong value \"high\" of option \"compression-level\" (expected an integer)"
        ));
    }

    #[test]
    fn external_by_name_uses_the_specs_dir() {
        let dir = spec_dir(&[
            ("specs/lib.aa", "[Content]\npath = /\ninclude-files = x \"y z\"\nexclude-files = q\n"),
            (
                "elsewhere/home.aa",
                "[External]\nlib\n[Content]\npath = /\ninclude-files = @(lib.include-files) w\nexclude-files = '@(lib.exclude-files)'\n",
            ),
        ]);
        let spec = ArchiveSpec::load_with_specs_dir(
            &dir.path().join("elsewhere/home.aa"),
            &dir.path().join("specs"),
        )
        .unwrap();
        assert_eq!(spec.include_files(), ["w", "x", "y z"]);
        assert_eq!(spec.exclude_files(), ["q"]);
        // Without the specs dir the bare name is looked up next to the file and not found.
        let e = ArchiveSpec::load(&dir.path().join("elsewhere/home.aa")).unwrap_err();
        assert!(
            e.to_string()
                .contains("in a file referenced by option \"include-files\""),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("elsewhere/lib.aa: cannot read the file"),
            "{e}"
        );
    }

    #[test]
    fn references_are_left_alone_without_external_section() {
        let dir = spec_dir(&[(
            "h.aa",
            "[Content]\npath = /\ninclude-files = @(x.y)\nexclude-files =\n",
        )]);
        let spec = ArchiveSpec::load(&dir.path().join("h.aa")).unwrap();
        assert_eq!(spec.include_files(), ["@(x.y)"]);
    }

    #[test]
    fn external_reference_errors() {
        let head =
            "[External]\nother = other.aa\nself = home.aa\n[Content]\npath = /\nexclude-files =\n";
        let dir = spec_dir(&[(
            "other.aa",
            "[Content]\npath = /\ninclude-files = o\nexclude-files =\n[Archive]\n",
        )]);
        let check = |include: &str| {
            let file = dir.path().join("home.aa");
            fs::write(&file, format!("{head}include-files = {include}\n")).unwrap();
            ArchiveSpec::load(&file)
                .unwrap_err()
                .to_string()
                .replace(&format!("{}/", dir.path().display()), "")
        };
        assert_eq!(
            check("@(nobody.include-files)"),
            "home.aa:7: option \"include-files\" refers to \"nobody\", which is not defined in [External]"
        );
        assert_eq!(
            check("@(other)"),
            "home.aa:7: malformed reference @(other) in option \"include-files\" (expected @(name.option))"
        );
        assert_eq!(
            check("@(other.name)"),
            "home.aa:7: option \"include-files\" refers to option \"name\" of section [Content] in other.aa, which does not exist"
        );
        assert_eq!(
            check("@(self.include-files)"),
            "home.aa:7: option \"include-files\": external references nested more than 40 levels deep (circular reference?)"
        );
        fs::write(dir.path().join("other.aa"), "[Content]\n[Bad]\n").unwrap();
        assert_eq!(
            check("@(other.include-files)"),
            "home.aa:7: in a file referenced by option \"include-files\": other.aa:2: unknown section [Bad] (valid sections: [External], [Archive], [Content])"
        );
    }

    /// Files `f1.aa` .. `f30.aa`, each referring twice to the next for `exclude-files`;
    /// `f30.aa` ends the chain with `last`.
    fn reference_chain(last: &str) -> tempfile::TempDir {
        let mut files = Vec::new();
        for i in 1..30 {
            let next = i + 1;
            files.push((
                format!("f{i}.aa"),
                format!(
                    "[External]\nf{next}\n[Content]\npath = /\ninclude-files = a\n\
                     exclude-files = @(f{next}.exclude-files)@(f{next}.exclude-files)\n"
                ),
            ));
        }
        files.push((
            "f30.aa".to_string(),
            format!("[Content]\npath = /\ninclude-files = a\nexclude-files = {last}\n"),
        ));
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        spec_dir(&files)
    }

    #[test]
    fn each_referenced_option_is_resolved_once() {
        // 2^29 references for the original; here each file is read and resolved once.
        let (empty, large) = (reference_chain(""), reference_chain("x"));
        let paths = [empty.path().join("f1.aa"), large.path().join("f1.aa")];
        let [empty_result, large_result] = crate::test_support::bounded(move || {
            paths.map(|p| {
                ArchiveSpec::load(&p)
                    .map(|s| s.exclude_files().to_vec())
                    .map_err(|e| e.to_string())
            })
        });
        assert_eq!(empty_result.unwrap(), Vec::<String>::new());
        // f9.aa would be 2^21 bytes long.
        assert_eq!(
            large_result.unwrap_err(),
            format!(
                "{}/f9.aa:6: option \"exclude-files\": its external references expand to more than {MAX_VALUE_SIZE} bytes",
                large.path().display()
            )
        );
    }

    #[test]
    fn referenced_files_must_be_regular() {
        let dir = spec_dir(&[(
            "home.aa",
            "[External]\nzero = zero.aa\n[Content]\npath = /\ninclude-files = @(zero.x)\nexclude-files =\n",
        )]);
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.aa")).unwrap();
        let file = dir.path().join("home.aa");
        let e =
            crate::test_support::bounded(move || ArchiveSpec::load(&file).unwrap_err().to_string());
        let d = dir.path().display();
        assert_eq!(
            e,
            format!("{d}/home.aa:5: in a file referenced by option \"include-files\": {d}/zero.aa: not a regular file (a character device)")
        );
    }

    #[test]
    fn referenced_values_are_interpolated_in_their_own_file() {
        let dir = spec_dir(&[
            ("lib.aa", "[DEFAULT]\nv = from-lib\n[Content]\nlist = %(v)s\n"),
            (
                "h.aa",
                "[DEFAULT]\nv = from-home\n[External]\nlib = lib.aa\n[Content]\npath = /\ninclude-files = @(lib.list) %(v)s\nexclude-files =\n",
            ),
        ]);
        let spec = ArchiveSpec::load(&dir.path().join("h.aa")).unwrap();
        assert_eq!(spec.include_files(), ["from-home", "from-lib"]);
    }

    #[test]
    fn finds_references_like_the_original_regex() {
        let found = find_references("x @(a-b_c.d) \"@(e.f)\" '@(g.h)\" @(i+j.k) @() '@(l.m)'");
        let texts: Vec<&str> = found.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["@(a-b_c.d)", "\"@(e.f)\"", "@(g.h)", "'@(l.m)'"]);
        assert_eq!(found[1].1, "e.f");
    }

    #[test]
    fn file_list_tokens() {
        assert_eq!(parse_file_list(""), Vec::<String>::new());
        assert_eq!(parse_file_list("  b a\tb \n c "), strings(&["a", "b", "c"]));
        assert_eq!(
            parse_file_list("\"my docs\" x\"y z\""),
            strings(&["my docs", "x\"y", "z\""])
        );
        // Quotes inside a word: the text between the first and the last quote is kept.
        assert_eq!(parse_file_list("a\"b\"c"), strings(&["b"]));
        assert_eq!(parse_file_list("\"abc"), strings(&["\"abc"]));
        assert_eq!(parse_file_list("\"\""), strings(&["\"\""]));
        assert_eq!(parse_file_list("\"\"a\""), strings(&["\"a"]));
        // A quoted name cannot span lines.
        assert_eq!(parse_file_list("\"a\nb\""), strings(&["\"a", "b\""]));
    }

    #[test]
    fn file_list_normalisation() {
        assert_eq!(
            parse_file_list("/etc ../../up //two ./a/./b/ c/../d x/.. /"),
            strings(&[".", "a/b", "d", "etc", "two", "up"])
        );
        assert_eq!(parse_file_list("a/../../b"), strings(&["b"]));
        assert_eq!(parse_file_list("*/.* [ab]*"), strings(&["*/.*", "[ab]*"]));
    }

    #[test]
    fn normpath_matches_python() {
        let cases = [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//", "//"),
            ("///", "/"),
            ("//a//b/", "//a/b"),
            ("/../a", "/a"),
            ("../a/../..", "../.."),
            ("a/./b/../../..", ".."),
        ];
        for (input, expected) in cases {
            assert_eq!(normpath(input.as_bytes()), expected.as_bytes(), "{input}");
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

    #[test]
    fn tilde_expansion() {
        assert_eq!(expand_user("/abs/~x"), Path::new("/abs/~x"));
        assert_eq!(expand_user("rel"), Path::new("rel"));
        assert_eq!(
            expand_user("~no-such-user-xyz/a"),
            Path::new("~no-such-user-xyz/a")
        );
        if let Some(home) = std::env::var_os("HOME") {
            let home = PathBuf::from(home);
            assert_eq!(expand_user("~/a/b"), home.join("a/b"));
            assert_eq!(expand_user("~"), home.components().collect::<PathBuf>());
        }
        if Path::new("/root").is_dir()
            && fs::read_to_string("/etc/passwd").is_ok_and(|p| p.starts_with("root:"))
        {
            assert_eq!(expand_user("~root/x"), Path::new("/root/x"));
        }
    }

    fn tree() -> tempfile::TempDir {
        let dir = spec_dir(&[
            ("a.txt", ""),
            ("b.txt", ""),
            ("ab.log", ""),
            (".hidden", ""),
            ("[x]", ""),
            ("dir1/f1", ""),
            ("dir1/.h1", ""),
            ("dir2/f2", ""),
            ("dir2/sub/g", ""),
            (".hdir/f3", ""),
            ("with space/f", ""),
        ]);
        std::os::unix::fs::symlink("missing-target", dir.path().join("dangling")).unwrap();
        std::os::unix::fs::symlink("dir2", dir.path().join("linkdir")).unwrap();
        dir
    }

    fn expand(root: &Path, patterns: &[&str]) -> (Vec<String>, Vec<String>) {
        let (found, warnings) = expand_wildcards(root, &strings(patterns));
        let found = found
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        (found, warnings)
    }

    #[test]
    fn wildcards() {
        let dir = tree();
        let root = dir.path();
        assert_eq!(expand(root, &["*.txt"]).0, ["a.txt", "b.txt"]);
        assert_eq!(expand(root, &["?b.*"]).0, ["ab.log"]);
        assert_eq!(
            expand(root, &["[ab].txt", "[!a]*.txt"]).0,
            ["a.txt", "b.txt"]
        );
        assert_eq!(expand(root, &[".*"]).0, [".hdir", ".hidden"]);
        assert_eq!(expand(root, &["*/.*"]).0, ["dir1/.h1"]);
        assert_eq!(
            expand(root, &["*/f*"]).0,
            ["dir1/f1", "dir2/f2", "linkdir/f2", "with space/f"]
        );
        assert_eq!(expand(root, &["dir?/*/g"]).0, ["dir2/sub/g"]);
        assert_eq!(
            expand(root, &["[x]"]),
            (
                vec![],
                vec!["Cannot access \"[x]\". No such file or directory.".to_string()]
            )
        );
        assert_eq!(expand(root, &["[[]x]"]).0, ["[x]"]);
        assert_eq!(expand(root, &["dangling", "."]).0, [".", "dangling"]);
        assert_eq!(expand(root, &["*.txt", "a.txt"]).0, ["a.txt", "b.txt"]);
        let (found, warnings) = expand(root, &["nothing*", "missing", "dir1"]);
        assert_eq!(found, ["dir1"]);
        assert_eq!(
            warnings,
            [
                "Cannot access \"nothing*\". No such file or directory.",
                "Cannot access \"missing\". No such file or directory."
            ]
        );
    }

    #[test]
    fn a_symbolic_link_loop_is_named_in_the_warning() {
        let dir = tree();
        let root = dir.path();
        std::os::unix::fs::symlink("loop2", root.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", root.join("loop2")).unwrap();
        let (found, warnings) = expand(root, &["loop1/x", "loop2/*", "loop1", "dir1/none"]);
        // The loop itself is a symbolic link like any other and is stored.
        assert_eq!(found, ["loop1"]);
        assert_eq!(
            warnings,
            [
                "Cannot access \"loop1/x\". Too many levels of symbolic links.",
                "Cannot access \"loop2/*\". Too many levels of symbolic links.",
                "Cannot access \"dir1/none\". No such file or directory."
            ]
        );
    }

    #[test]
    fn component_patterns() {
        let m = |pattern: &str, name: &str| {
            pattern_matches(&compile_pattern(pattern), &name.chars().collect::<Vec<_>>())
        };
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXbYbc"));
        assert!(!m("a*b", "ab c"));
        assert!(m("[]]", "]"));
        assert!(m("[!]]", "a"));
        assert!(!m("[!]]", "]"));
        assert!(m("[a-c-e]", "-"));
        assert!(!m("[a-c-e]", "d"));
        assert!(!m("[z-a]", "m"));
        assert!(m("[!z-a]", "m"));
        assert!(m("[", "["));
        assert!(m("a\\b", "a\\b"));
        assert!(m("ä?", "äö"));
    }

    /// Compares [`compile_pattern`]/[`pattern_matches`] with `fnmatch.fnmatchcase` and
    /// [`expand_wildcards`] with `glob.glob`. Skipped without python3.
    #[test]
    fn matches_python_glob() {
        let patterns = [
            "*",
            "*.txt",
            "?b.*",
            "[ab]*",
            "[!a]*",
            "[a-b]*",
            "[b-a]*",
            "[]x]",
            "[!]]*",
            "[",
            "[[]x]",
            ".*",
            "*/.*",
            "*/*",
            "d*/f?",
            "dir?/*/g",
            "*/sub",
            "linkdir/*",
            ".h*/*",
            "dangling",
            "with space/*",
            "a\\*",
            "[--.]*",
            "[a-]*",
            "*[",
            "[!a-z]*",
            "no*",
            "dir1/",
        ];
        let dir = tree();
        let script = "import glob, json, os, sys\nos.chdir(sys.argv[1])\n\
                      print(json.dumps([sorted(set(glob.glob(p))) for p in sys.argv[2:]]))";
        let Ok(output) = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(dir.path())
            .args(patterns)
            .output()
        else {
            eprintln!("python3 not available; skipping comparison");
            return;
        };
        assert!(output.status.success(), "{output:?}");
        let expected = String::from_utf8(output.stdout).unwrap();
        let mut actual = String::from("[");
        for (i, pattern) in patterns.iter().enumerate() {
            let (found, _) = expand(dir.path(), &[pattern]);
            let quoted: Vec<String> = found
                .iter()
                .map(|f| format!("\"{}\"", f.replace('\\', "\\\\")))
                .collect();
            if i > 0 {
                actual.push_str(", ");
            }
            actual.push_str(&format!("[{}]", quoted.join(", ")));
        }
        actual.push(']');
        assert_eq!(actual, expected.trim());
    }
}

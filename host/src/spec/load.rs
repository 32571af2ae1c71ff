//! Loading a specification: the required `[Content]` options, the archive name (checked before
//! anything builds a file name from it), the `[Archive]` options the specification overrides,
//! and notes on keys that look like misspelt or misplaced options.
//!
//! As in the original, a key of `[Archive]` or `[Content]` that is no option of that section
//! is a variable: it does nothing itself but can be interpolated (`base = /srv`, `path =
//! %(base)s/data`). One that looks like a misspelt or misplaced option gets a note (shown with
//! `--verbose`), never an error: the original accepted such files. Configuration options that
//! make no sense per archive (`verbose`, `force-archiver`, ...) are errors in every section,
//! as in the original.
//!
//! Every file is read with [`crate::ini::Ini::load`] (regular files up to 1 MiB only),
//! each referenced file once per specification, and each referenced option resolved once.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use aa_abi::naming::archive_name_problem;

use super::error::{Kind, SpecError};
use super::external::{Reader, References};
use super::file_lists::parse_file_list;
use super::read::read_spec;
use super::{ARCHIVE, ARCHIVE_OPTIONS, CONTENT, CONTENT_OPTIONS};
use crate::ini::Ini;
use crate::paths::expand_user;
use crate::values::ValueError;

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
    /// Loads the specification at `file`; a bare name `x` in `[External]` refers to
    /// `specs_dir/x.aa`.
    pub(crate) fn load_with_specs_dir(
        file: &Path,
        specs_dir: &Path,
    ) -> Result<ArchiveSpec, SpecError> {
        let ini = Rc::new(read_spec(file)?);
        if !ini.has_section(CONTENT) {
            return Err(SpecError::new(file, None, Kind::MissingSection(CONTENT)));
        }
        let notes = near_misses(&ini);
        let references = References::default();
        let reader = Reader::new(ini.clone(), specs_dir, &references);
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
    pub(crate) fn notes(&self) -> &[String] {
        &self.notes
    }
    /// The archive name (`name`, or the file name without the extension).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The archive root (`path`, with `~` expanded).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Normalised include patterns, relative to [`ArchiveSpec::path`]; sorted, no duplicates.
    pub(crate) fn include_files(&self) -> &[String] {
        &self.include_files
    }

    /// Normalised exclude patterns, relative to [`ArchiveSpec::path`]; sorted, no duplicates.
    pub(crate) fn exclude_files(&self) -> &[String] {
        &self.exclude_files
    }

    /// The `[Archive]` options set by the specification, in [`ARCHIVE_OPTIONS`] order, with
    /// the line each is on; references are resolved, and `""` means explicitly unset.
    pub(crate) fn archive_entries(&self) -> impl Iterator<Item = (&str, &str, usize)> {
        self.archive
            .iter()
            .map(|o| (o.name, o.value.as_str(), o.line))
    }

    /// An error about the value of an `[Archive]` option on `line`.
    pub(crate) fn value_error(&self, line: usize, error: ValueError) -> SpecError {
        SpecError::new(&self.file, Some(line), Kind::Value(error))
    }
}

/// Conveniences of the tests: the application always passes the specifications directory,
/// and converts `[Archive]` values with [`crate::config::parse_value`].
#[cfg(test)]
impl ArchiveSpec {
    /// Loads the specification at `file`; bare `[External]` names are looked up next to it.
    pub(super) fn load(file: &Path) -> Result<ArchiveSpec, SpecError> {
        let specs_dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
        ArchiveSpec::load_with_specs_dir(file, &specs_dir)
    }

    /// The specification file this was loaded from.
    pub(super) fn file(&self) -> &Path {
        &self.file
    }

    /// The raw value of an `[Archive]` option (one of [`ARCHIVE_OPTIONS`]), references
    /// resolved. `Some("")` means the specification explicitly leaves the option unset.
    pub(super) fn archive_option(&self, name: &str) -> Option<&str> {
        self.archive_entry(name).map(|o| o.value.as_str())
    }

    /// All `[Archive]` options set by the specification, in [`ARCHIVE_OPTIONS`] order.
    pub(super) fn archive_options(&self) -> impl Iterator<Item = (&str, &str)> {
        self.archive.iter().map(|o| (o.name, o.value.as_str()))
    }

    /// An `[Archive]` option as a boolean; `None` if absent or empty. Errors name the file
    /// and the line.
    pub(super) fn bool_option(&self, name: &str) -> Result<Option<bool>, SpecError> {
        self.typed_option(name, crate::values::parse_bool)
    }

    /// An `[Archive]` option as an integer; `None` if absent or empty.
    pub(super) fn int_option(&self, name: &str) -> Result<Option<i64>, SpecError> {
        self.typed_option(name, crate::values::parse_int)
    }

    /// An `[Archive]` option as a path with `~` expanded; `None` if absent or empty.
    pub(super) fn path_option(&self, name: &str) -> Option<PathBuf> {
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

/// Notes on the keys written in `[Archive]` or `[Content]` that are no option of that section:
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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::spec::testing::{fixture, load_error, spec_dir, strings, MINIMAL};

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
}

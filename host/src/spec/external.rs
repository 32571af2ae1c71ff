//! `[External]` references: `@(name.option)` in a value is replaced with `option` of the same
//! section in the specification that `[External]` names `name`.
//!
//! The original resolved every reference anew, which takes exponential time on a chain of
//! files each referring twice to the next; here each referenced file is read (and checked)
//! once and each referenced option resolved once per loaded specification, with the
//! original's depth limit and the places it reported errors.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::error::{Kind, SpecError};
use super::file_lists::normpath;
use super::read::read_spec;
use super::{EXTERNAL, MAX_EXTERNAL_DEPTH, SPEC_EXTENSION};
use crate::ini::{Ini, MAX_VALUE_SIZE};

/// Reads values of one specification file, resolving `@(name.option)` references.
pub(super) struct Reader<'a> {
    ini: Rc<Ini>,
    specs_dir: &'a Path,
    cache: &'a References,
}

/// What the references of one specification have read so far: each referenced file is read
/// (and checked) once, and each referenced option resolved once, however often it is referred
/// to; without this a chain of files each referring twice to the next took exponential time.
#[derive(Default)]
pub(super) struct References {
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

impl<'a> Reader<'a> {
    /// A reader of `ini`; a bare name `x` in its `[External]` refers to `specs_dir/x.aa`.
    pub(super) fn new(ini: Rc<Ini>, specs_dir: &'a Path, cache: &'a References) -> Reader<'a> {
        Reader {
            ini,
            specs_dir,
            cache,
        }
    }

    /// The interpolated and resolved value with its line, `None` if the option is absent.
    pub(super) fn get(
        &self,
        section: &str,
        key: &str,
    ) -> Result<Option<(String, usize)>, SpecError> {
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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::spec::testing::spec_dir;
    use crate::spec::ArchiveSpec;

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
}

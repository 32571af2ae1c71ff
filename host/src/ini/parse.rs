//! The line rules of Python's `configparser`: sections, options, comments, continuation
//! lines and the order in which it reports errors. Values are kept raw here; they are
//! interpolated when read (see `interpolate`).

use std::collections::HashSet;
use std::path::Path;

use super::error::{ErrorKind, IniError};
use super::{Entry, Ini, IniOptions, Section, DEFAULT_SECTION};
use crate::values::is_py_space;

/// Python's `str.strip()`.
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
    /// Parses `text`; `path` is only used to name the file in errors.
    pub(crate) fn parse(text: &str, path: &Path, options: IniOptions) -> Result<Ini, IniError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ini::testing::{error, get, parse, parse_with};

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
}

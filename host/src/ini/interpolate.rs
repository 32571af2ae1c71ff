//! `%(name)s` interpolation as Python's `BasicInterpolation`, applied when a value is read.
//!
//! Unlike Python, each reference is expanded once per read value (memoised) and the result is
//! bounded by [`MAX_VALUE_SIZE`], so a few nested references cannot take minutes and
//! gigabytes; the depth limit and the errors are Python's.

use std::collections::HashMap;

use super::error::{ErrorKind, IniError};
use super::{Ini, MAX_INTERPOLATION_DEPTH, MAX_VALUE_SIZE};

impl Ini {
    /// The option's value with interpolation applied (if enabled). `Ok(None)` if the section
    /// or option does not exist; a valueless option is an error.
    pub(crate) fn get(&self, section: &str, key: &str) -> Result<Option<String>, IniError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ini::testing::{get, parse, parse_with};
    use crate::ini::{IniOptions, DEFAULT_SECTION};

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
}

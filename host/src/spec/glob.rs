//! Shell wildcards in file lists, expanded the way the original did with Python's `glob.glob`.
//!
//! This engine is ours on purpose: existing specifications rely on Python's exact rules
//! (`fnmatch.translate`'s sets and ranges, hidden names, dangling links, no `**`), which no
//! glob crate reproduces. A test compares it with Python when `python3` is available.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Expands shell wildcards in `patterns` relative to `root` as the original did with
/// Python's `glob.glob`: `*`, `?` and `[...]` (`[!...]` negates) match within one path
/// component, and names starting with `.` only match a component pattern that starts with
/// `.`. A pattern without wildcards is taken as is when it exists (even as a dangling
/// symbolic link). Returns the matches relative to `root`, sorted and without duplicates,
/// and a warning for each pattern that matched nothing.
pub(crate) fn expand_wildcards(root: &Path, patterns: &[String]) -> (Vec<PathBuf>, Vec<String>) {
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
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            "Too many levels of symbolic links"
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::testing::{spec_dir, strings};

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

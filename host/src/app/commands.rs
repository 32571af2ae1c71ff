//! The user's command hooks (`command-before-backup` and the like).
//!
//! A command string is split into words like Python's `shlex.split` (POSIX rules, no comments)
//! and run directly, without a shell. What it prints on standard output is shown (unless
//! `--quiet`), each line it prints on standard error is a warning, and a non-zero exit status is
//! an error.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::report::Report;

/// Runs `command` if it is set and not empty. The error is the message to show.
pub fn execute(report: &Report, command: Option<&str>) -> Result<(), String> {
    let Some(text) = command.filter(|c| !c.is_empty()) else {
        return Ok(());
    };
    let words = split(text).map_err(|e| format!("Cannot run the command '{text}': {e}."))?;
    let Some((program, args)) = words.split_first() else {
        return Ok(());
    };
    report.verbose(&format!("Executing command '{text}'"));
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("Error while executing command '{text}': {e}."))?;

    // Both streams are read at once so that neither can fill its pipe and block the command.
    let (tx, rx) = mpsc::channel();
    let mut readers = Vec::new();
    for (stream, is_error) in [
        (
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            false,
        ),
        (
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            true,
        ),
    ] {
        let Some(stream) = stream else { continue };
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                let _ = tx.send((is_error, String::from_utf8_lossy(&line).into_owned()));
                line.clear();
            }
        }));
    }
    drop(tx);
    for (is_error, line) in rx {
        if is_error {
            report.warning(&line);
        } else {
            report.normal(&line);
        }
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child
        .wait()
        .map_err(|e| format!("Error while executing command '{text}': {e}."))?;
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exit code {code}"),
            None => "killed by a signal".to_string(),
        };
        return Err(format!(
            "Command did not finish successfully: '{program}', {how}."
        ));
    }
    Ok(())
}

/// Splits `text` into words as Python's `shlex.split(text)` does: white space separates
/// words; `'...'` is literal; in `"..."` a backslash escapes only `"` and `\`; outside quotes a
/// backslash escapes any character; `#` is an ordinary character.
pub fn split(text: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err("no closing quotation"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\')) => word.push(ch),
                            Some(ch) => {
                                word.push('\\');
                                word.push(ch);
                            }
                            None => return Err("no escaped character"),
                        },
                        Some(ch) => word.push(ch),
                        None => return Err("no closing quotation"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(ch) => word.push(ch),
                    None => return Err("no escaped character"),
                }
            }
            ch => {
                in_word = true;
                word.push(ch);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_like_python_shlex() {
        let s = |t| split(t).unwrap();
        assert_eq!(
            s("foo arg1 'arg with spaces 2' arg3"),
            ["foo", "arg1", "arg with spaces 2", "arg3"]
        );
        assert_eq!(s("echo #not-a-comment"), ["echo", "#not-a-comment"]);
        assert_eq!(s(r#"a "b \"c\" \d" e\ f"#), ["a", r#"b "c" \d"#, "e f"]);
        assert_eq!(s("x '' y"), ["x", "", "y"]);
        assert_eq!(s("a'b'\"c\"d"), ["abcd"]);
        assert_eq!(s("  "), Vec::<String>::new());
        assert!(split("'open").is_err());
        assert!(split("x\\").is_err());
    }
}

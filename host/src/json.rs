//! `--json`: the [`Sink`] that writes every message and event as one JSON object per line on
//! standard output, for monitoring tools.
//!
//! Every line has `schema` ([`SCHEMA_VERSION`]), `type` and `archive` (the archive it is about,
//! or null); the types and their fields are in `docs/json-schema.json` and the README. Nothing
//! else is written to standard output, and nothing to standard error (except a command line
//! that cannot be parsed, which the parser reports before this sink exists, and the one line
//! `crate::interrupt` writes when a signal ends the run): a tool reads one stream and every
//! line of it parses. Lines are flushed one by one, so a tool following a
//! long backup sees each file as it is stored.

use std::io::Write;

use serde::Serialize;

use crate::report::{Event, Level, Message, Sink};

/// The version of the line format. Adding a field or a line type keeps it; removing or
/// changing the meaning of one makes it 2.
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON Schema of the lines (`aa --generate json-schema`).
pub const SCHEMA: &str = include_str!("../../docs/json-schema.json");

/// JSON lines on standard output.
pub struct Json;

/// One line: the fields every line has, then the message's or event's own.
#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    schema: u32,
    archive: Option<&'a str>,
    #[serde(flatten)]
    body: T,
}

/// A message's own fields.
#[derive(Serialize)]
struct MessageBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    level: Level,
    text: &'a str,
}

impl Json {
    fn write(&self, archive: Option<&str>, body: impl Serialize) {
        let line = Line {
            schema: SCHEMA_VERSION,
            archive,
            body,
        };
        if let Ok(text) = serde_json::to_string(&line) {
            let mut out = std::io::stdout().lock();
            // As for the human output: a closed standard output must not stop a backup.
            let _ = writeln!(out, "{text}").and_then(|()| out.flush());
        }
    }
}

impl Sink for Json {
    /// Text that is not a message (there is none for the commands `--json` works with) is
    /// still a valid line.
    fn out(&self, line: &str) {
        self.message(&Message {
            level: Level::Output,
            archive: None,
            text: line,
        });
    }

    fn err(&self, line: &str) {
        self.message(&Message {
            level: Level::Error,
            archive: None,
            text: line,
        });
    }

    fn message(&self, message: &Message<'_>) {
        self.write(
            message.archive,
            MessageBody {
                kind: "message",
                level: message.level,
                text: message.text,
            },
        );
    }

    fn structured(&self) -> bool {
        true
    }

    fn event(&self, archive: Option<&str>, event: &Event<'_>) {
        self.write(archive, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EntryKind, Summary};

    fn line(archive: Option<&str>, body: impl Serialize) -> serde_json::Value {
        let line = Line {
            schema: SCHEMA_VERSION,
            archive,
            body,
        };
        serde_json::to_value(&line).unwrap()
    }

    #[test]
    fn the_schema_has_this_version() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        assert_eq!(schema["properties"]["schema"]["const"], SCHEMA_VERSION);
    }

    #[test]
    fn events_are_flat_objects_with_the_common_fields() {
        let file = line(
            Some("home"),
            Event::File {
                name: "d/b.txt",
                kind: EntryKind::File,
                size: 2,
            },
        );
        assert_eq!(
            file,
            serde_json::json!({"schema": 1, "archive": "home", "type": "file",
                               "name": "d/b.txt", "kind": "file", "size": 2})
        );
        let summary = line(
            None,
            Event::Summary(Summary {
                command: "create",
                errors: 0,
                warnings: 1,
                files: 2,
                bytes: 4,
                backups: 1,
                exit_status: 1,
            }),
        );
        assert_eq!(summary["type"], "summary");
        assert_eq!(summary["archive"], serde_json::Value::Null);
        assert_eq!(summary["exit_status"], 1);
        let message = line(
            None,
            MessageBody {
                kind: "message",
                level: Level::Warning,
                text: "odd",
            },
        );
        assert_eq!(message["level"], "warning");
    }
}

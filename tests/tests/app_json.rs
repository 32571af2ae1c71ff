//! `--json`: backups, `--list` and `--list-providers` write one JSON object per line on
//! standard output and nothing on standard error; every line is checked against the
//! published schema (`docs/json-schema.json`, with the `jsonschema` crate), and the values
//! against the files themselves (names, kinds, sizes, backup sizes, levels, exit status).

mod app_support;

use std::collections::BTreeMap;
use std::fs;

use aa_tests::*;
use app_support::*;
use serde_json::Value;

/// The schema, itself checked against the JSON Schema meta-schema; the one `aa` has.
fn validator() -> jsonschema::Validator {
    let text = fs::read_to_string(workspace_dir().join("docs/json-schema.json")).unwrap();
    let built_in = Sandbox::new()
        .aa()
        .args(["--generate", "json-schema"])
        .run();
    assert_eq!(built_in.stdout, text, "aa --generate json-schema");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::meta::validate(&schema).expect("the schema is a valid JSON Schema");
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

/// Runs `aa --json ARGS`: every line of stdout is valid against the schema, stderr is empty,
/// and the last line is the summary, whose exit status is the process's. The lines.
#[track_caller]
fn json_run(sb: &Sandbox, args: &[&str]) -> Vec<Value> {
    let out = sb.aa().arg("--json").args(args).run();
    out.assert_no_panic();
    assert_eq!(out.stderr, "", "nothing on stderr under --json: {out}");
    let validator = validator();
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{out}"));
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{line}: {errors:?}");
            value
        })
        .collect();
    let summary = lines.last().expect("at least the summary");
    assert_eq!(summary["type"], "summary", "{out}");
    assert_eq!(
        summary["exit_status"].as_i64(),
        out.code().map(i64::from),
        "{out}"
    );
    assert_eq!(
        lines.iter().filter(|l| l["type"] == "summary").count(),
        1,
        "{out}"
    );
    lines
}

fn of_type<'l>(lines: &'l [Value], kind: &str) -> Vec<&'l Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

#[test]
fn the_validator_rejects_what_the_schema_does_not_describe() {
    // So that a passing validation means something.
    let v = validator();
    let good = serde_json::json!({"schema": 1, "archive": null, "type": "message",
                                  "level": "error", "text": "x"});
    assert!(v.is_valid(&good));
    for bad in [
        serde_json::json!({"schema": 2, "archive": null, "type": "message", "level": "error", "text": "x"}),
        serde_json::json!({"schema": 1, "archive": null, "type": "message", "level": "loud", "text": "x"}),
        serde_json::json!({"schema": 1, "archive": null, "type": "message", "level": "error", "text": "x", "extra": 1}),
        serde_json::json!({"schema": 1, "archive": "k", "type": "file", "name": "a", "kind": "file"}),
        serde_json::json!({"schema": 1, "archive": "k", "type": "backup", "file": "f", "level": -1, "size": 1, "duration_seconds": 0.1}),
    ] {
        assert!(!v.is_valid(&bad), "{bad}");
    }
}

#[test]
fn a_backup_run_reports_each_file_with_its_size_then_the_backup_and_a_summary() {
    let sb = Sandbox::new();
    small_source(&sb);
    fs::write(sb.src_dir().join("d/big.bin"), vec![7u8; 123_457]).unwrap();
    std::os::unix::fs::symlink("a.txt", sb.src_dir().join("d/link")).unwrap();
    for (name, archiver) in [("ext", "targz"), ("int", "tarzst_internal")] {
        write_spec(&sb, name, &format!("archiver = {archiver}"));
        let lines = json_run(&sb, &[name]);
        let files = of_type(&lines, "file");
        let stored: BTreeMap<String, (String, u64)> = files
            .iter()
            .map(|f| {
                assert_eq!(f["archive"], name);
                (
                    f["name"]
                        .as_str()
                        .unwrap()
                        .trim_end_matches('/')
                        .to_string(),
                    (
                        f["kind"].as_str().unwrap().to_string(),
                        f["size"].as_u64().unwrap(),
                    ),
                )
            })
            .collect();
        let expected: BTreeMap<String, (String, u64)> = [
            ("a.txt", "file", 2),
            ("d", "directory", 0),
            ("d/b.txt", "file", 2),
            ("d/big.bin", "file", 123_457),
            ("d/link", "symlink", 0),
        ]
        .into_iter()
        .map(|(n, k, s)| (n.to_string(), (k.to_string(), s)))
        .collect();
        assert_eq!(stored, expected, "{archiver}");

        let backups = of_type(&lines, "backup");
        assert_eq!(backups.len(), 1, "{lines:?}");
        let backup = backups[0];
        let file = backup["file"].as_str().unwrap();
        let extension = if archiver == "targz" { "gz" } else { "zst" };
        assert_eq!(
            file,
            sb.dest_dir()
                .join(format!("{name}.tar.{extension}"))
                .display()
                .to_string()
        );
        assert_eq!(
            backup["size"].as_u64(),
            Some(fs::metadata(file).unwrap().len())
        );
        assert_eq!(backup["level"], Value::Null);
        assert_eq!(backup["archive"], name);
        assert!(backup["duration_seconds"].as_f64().unwrap() >= 0.0);

        let summary = lines.last().unwrap();
        assert_eq!(summary["command"], "create");
        assert_eq!(summary["files"], 5);
        assert_eq!(summary["bytes"], 2 + 2 + 123_457);
        assert_eq!(summary["backups"], 1);
        assert_eq!(
            (summary["errors"].as_u64(), summary["warnings"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(summary["exit_status"], 0);
        // The backup is before the summary, after the files.
        assert_eq!(lines[lines.len() - 2]["type"], "backup");
    }
}

#[test]
fn incremental_levels_are_in_the_backup_lines() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "k", "incremental = yes");
    let level0 = json_run(&sb, &["k"]);
    assert_eq!(of_type(&level0, "backup")[0]["level"], 0);
    fs::write(sb.src_dir().join("d/new.txt"), "new file\n").unwrap();
    let level1 = json_run(&sb, &["k"]);
    let backup = of_type(&level1, "backup")[0];
    assert_eq!(backup["level"], 1);
    assert!(backup["file"].as_str().unwrap().ends_with("/k.1.tar.gz"));
    // Level 1 stores what changed: the new file (and the directories that hold it).
    let names: Vec<&str> = of_type(&level1, "file")
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"d/new.txt"), "{names:?}");
    assert!(!names.contains(&"a.txt"), "{names:?}");
    let new = of_type(&level1, "file")
        .into_iter()
        .find(|f| f["name"] == "d/new.txt")
        .unwrap();
    assert_eq!(new["size"], 9);
}

#[test]
fn warnings_and_errors_are_lines_too_and_quiet_hides_none() {
    let sb = Sandbox::new();
    small_source(&sb);
    sb.write_spec_text(
        "k",
        &spec_text(&sb, "").replace("include-files = a.txt d", "include-files = a.txt nosuch"),
    );
    sb.write_spec_text("broken", "[Content]\ninclude-files = a\nexclude-files =\n");
    for quiet in [false, true] {
        let args: &[&str] = if quiet {
            &["-q", "k", "broken"]
        } else {
            &["k", "broken"]
        };
        let lines = json_run(&sb, args);
        let messages = of_type(&lines, "message");
        let warning = messages
            .iter()
            .find(|m| m["level"] == "warning")
            .unwrap_or_else(|| panic!("{lines:?}"));
        assert_eq!(warning["archive"], "k");
        assert!(
            warning["text"].as_str().unwrap().contains("nosuch"),
            "{warning}"
        );
        let error = messages
            .iter()
            .find(|m| m["level"] == "error")
            .unwrap_or_else(|| panic!("{lines:?}"));
        assert_eq!(error["archive"], "broken");
        assert!(error["text"].as_str().unwrap().contains("path"), "{error}");
        let summary = lines.last().unwrap();
        assert_eq!(
            (summary["errors"].as_u64(), summary["warnings"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(summary["exit_status"], 1);
        assert_eq!(of_type(&lines, "backup").len(), 1);
    }
}

#[test]
fn list_shows_configured_and_orphaned_archives() {
    let sb = Sandbox::new();
    small_source(&sb);
    write_spec(&sb, "k", "incremental = yes\nrestarting = yes");
    write_spec(&sb, "plain", "");
    json_run(&sb, &["k"]);
    json_run(&sb, &["k"]);
    write_realm(&sb, "gone", &[("restart-count", "3".to_string())]);

    let lines = json_run(&sb, &["--list"]);
    let archives: BTreeMap<&str, &Value> = of_type(&lines, "archive")
        .into_iter()
        .map(|a| (a["name"].as_str().unwrap(), a))
        .collect();
    assert_eq!(
        archives.keys().copied().collect::<Vec<_>>(),
        ["gone", "k", "plain"]
    );
    let k = archives["k"];
    assert_eq!(k["orphaned"], false);
    assert_eq!(k["incremental"], true);
    assert_eq!(k["restarting"], true);
    assert_eq!(k["backup_level"], 1);
    assert_eq!(k["next_level"], 2);
    assert_eq!(k["archiver"], "targz");
    assert_eq!(k["root"], sb.src_dir().display().to_string());
    assert_eq!(k["dest_dir"], sb.dest_dir().display().to_string());
    assert_eq!(archives["plain"]["incremental"], false);
    let gone = archives["gone"];
    assert_eq!(gone["orphaned"], true);
    assert_eq!(gone["root"], Value::Null);
    let summary = lines.last().unwrap();
    assert_eq!(
        (summary["command"].as_str(), summary["exit_status"].as_i64()),
        (Some("list"), Some(0))
    );
}

#[test]
fn list_providers_names_each_provider_with_its_types_and_capabilities() {
    let sb = Sandbox::new();
    let lines = json_run(&sb, &["--list-providers"]);
    let providers: BTreeMap<&str, &Value> = of_type(&lines, "provider")
        .into_iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    assert_eq!(
        providers.keys().copied().collect::<Vec<_>>(),
        ["TarExternal", "TarInternal"]
    );
    for provider in providers.values() {
        let library = provider["library"].as_str().unwrap();
        assert!(std::path::Path::new(library).is_file(), "{library}");
        let types: Vec<&str> = provider["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["Tar", "TarGz", "TarBz2", "TarXz", "TarZst"]);
        assert!(provider["types"][1]["features"]
            .as_array()
            .unwrap()
            .contains(&Value::from("Incremental")));
        assert_eq!(
            provider["capabilities"],
            serde_json::json!(["restore_v1", "verify_v1", "dry_run_v1", "backup_to_sink_v1"])
        );
    }
    assert_eq!(lines.last().unwrap()["command"], "list-providers");

    // A plugin file that is not loaded is a notice line, and the run still succeeds.
    let plugins = sb.mkdir("plugins");
    fs::write(plugins.join("libjunk.so"), "not a library\n").unwrap();
    let lines = json_run(
        &sb,
        &[
            "--plugin-dir",
            plugins.to_str().unwrap(),
            "--list-providers",
        ],
    );
    let notice = lines
        .iter()
        .find(|l| l["level"] == "notice")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(
        notice["text"].as_str().unwrap().contains("libjunk.so"),
        "{notice}"
    );
    assert_eq!(of_type(&lines, "provider").len(), 2);
    assert_eq!(lines.last().unwrap()["exit_status"], 0);
    // Listing providers needs no state: nothing was created.
    assert!(!sb.config_dir().join("storage").exists());
}

#[test]
fn an_unusable_configuration_is_a_fatal_line_with_status_2() {
    let sb = Sandbox::new();
    let conf = sb.path().join("aa.conf");
    fs::write(&conf, "[Archive]\nlevel = 1\n").unwrap();
    let lines = json_run(
        &sb,
        &["--user-config-file", conf.to_str().unwrap(), "--list"],
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["level"], "fatal");
    assert!(
        lines[0]["text"].as_str().unwrap().contains("aa.conf"),
        "{lines:?}"
    );
    assert_eq!(lines[1]["exit_status"], 2);
    assert_eq!(lines[1]["errors"], 1);

    // The commands --json does not describe are a usage error, reported by the parser.
    let out = sb.aa().args(["--json", "--verify", "k"]).run();
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("--json"), "{out}");
    assert_eq!(out.stdout, "");
}

#[test]
fn an_archive_given_by_path_is_named_so_and_hook_output_is_a_line() {
    let sb = Sandbox::new();
    small_source(&sb);
    let elsewhere = sb.mkdir("elsewhere").join("p.aa");
    fs::write(
        &elsewhere,
        spec_text(
            &sb,
            "command-before-backup = sh -c 'echo before; echo oops >&2'",
        ),
    )
    .unwrap();
    let path = elsewhere.display().to_string();
    let lines = json_run(&sb, &[&path]);
    let hook = lines
        .iter()
        .find(|l| l["text"] == "before")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(
        (hook["level"].as_str(), hook["archive"].as_str()),
        (Some("output"), Some(path.as_str()))
    );
    // What a hook writes on its standard error is a warning, as in the text output.
    let warning = lines.iter().find(|l| l["text"] == "oops").unwrap();
    assert_eq!(warning["level"], "warning");
    let backup = of_type(&lines, "backup")[0];
    assert_eq!(backup["archive"], path.as_str());
    assert!(backup["file"].as_str().unwrap().ends_with("/p.tar.gz"));
    assert_eq!(lines.last().unwrap()["exit_status"], 1);
}

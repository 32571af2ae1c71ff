//! Plugin discovery and loading: the provider listing, one warning per unusable file in a plugin
//! directory (aa keeps working), and the third-party example plugin in `examples/hello-provider`,
//! both through `aa` and loaded directly with the `aa-abi` host API.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_abi::host::PluginLibrary;
use aa_abi::{BackupDefinition, BackupOperationError, BackupType};
use aa_provider_kit::recording::Recorder;
use aa_tests::*;

/// One provider as `aa --list-providers` prints it.
#[derive(Debug)]
struct Listed {
    id: String,
    library: PathBuf,
    description: Option<String>,
    /// (backup type, features) in printed order; `-` becomes no features.
    types: Vec<(String, Vec<String>)>,
    /// The capabilities line's names; `- (backups only)` becomes none.
    capabilities: Vec<String>,
}

fn parse_listing(stdout: &str) -> Vec<Listed> {
    let mut providers: Vec<Listed> = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(detail) = line.strip_prefix("  ") {
            let current = providers
                .last_mut()
                .unwrap_or_else(|| panic!("indented line before any provider: {line:?}"));
            let (key, value) = detail
                .split_once(':')
                .unwrap_or_else(|| panic!("detail line without `:`: {line:?}"));
            let value = value.trim();
            if key == "description" {
                current.description = Some(value.to_string());
            } else if key == "capabilities" {
                current.capabilities = match value {
                    "- (backups only)" => Vec::new(),
                    _ => value.split(',').map(|c| c.trim().to_string()).collect(),
                };
            } else {
                let features = match value {
                    "-" => Vec::new(),
                    _ => value.split(',').map(|f| f.trim().to_string()).collect(),
                };
                current.types.push((key.to_string(), features));
            }
        } else {
            let (id, library) = line
                .split_once("  ")
                .unwrap_or_else(|| panic!("provider line is not `ID  LIBRARY`: {line:?}"));
            providers.push(Listed {
                id: id.to_string(),
                library: PathBuf::from(library.trim()),
                description: None,
                types: Vec::new(),
                capabilities: Vec::new(),
            });
        }
    }
    providers
}

fn find<'a>(listing: &'a [Listed], id: &str) -> &'a Listed {
    let found: Vec<&Listed> = listing.iter().filter(|p| p.id == id).collect();
    assert_eq!(found.len(), 1, "{id} should be listed once: {listing:#?}");
    found[0]
}

fn type_names(p: &Listed) -> Vec<String> {
    p.types
        .iter()
        .map(|(t, _)| t.to_ascii_lowercase())
        .collect()
}

#[test]
fn list_providers_shows_the_builtin_providers() {
    let sb = Sandbox::new();
    let out = sb.aa().arg("--list-providers").run();
    out.assert_success();
    assert!(out.stderr.trim().is_empty(), "no warnings expected:\n{out}");
    let listing = parse_listing(&out.stdout);

    for (id, lib) in [
        ("TarInternal", "aa_plugin_tar_internal"),
        ("TarExternal", "aa_plugin_tar_external"),
    ] {
        let p = find(&listing, id);
        assert_eq!(
            fs::canonicalize(&p.library).unwrap(),
            fs::canonicalize(builtin_plugin(lib)).unwrap()
        );
        assert!(
            p.description.as_deref().is_some_and(|d| !d.is_empty()),
            "{p:?}"
        );
        assert_eq!(
            type_names(p),
            ["tar", "targz", "tarbz2", "tarxz", "tarzst"],
            "{p:?}"
        );
        let (_, gz_features) = &p.types[1];
        assert!(
            gz_features.iter().any(|f| f == "CompressionStrength"),
            "{id} supports -c for TarGz: {p:?}"
        );
    }
}

/// A shared library that is not an aa plugin: compiled from C, or a system library copied.
fn not_a_plugin_library(dir: &Path) -> PathBuf {
    let lib = dir.join("libnotplugin.so");
    let source = dir.join("notplugin.c");
    fs::write(&source, "int not_a_plugin(void) { return 42; }\n").unwrap();
    let compiled = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&source)
        .status()
        .is_ok_and(|s| s.success());
    fs::remove_file(&source).unwrap();
    if !compiled {
        let ldconfig = Command::new("ldconfig")
            .arg("-p")
            .output()
            .expect("ldconfig");
        let text = String::from_utf8_lossy(&ldconfig.stdout);
        let libz = text
            .lines()
            .find(|l| l.trim_start().starts_with("libz.so.1 "))
            .and_then(|l| l.split("=> ").nth(1))
            .expect("neither gcc nor libz.so.1 available");
        fs::copy(libz.trim(), &lib).unwrap();
    }
    lib
}

/// Fills `dir` with files aa must refuse, returning (file name, reason it must mention).
fn bad_plugin_dir(dir: &Path) -> Vec<(&'static str, Option<&'static str>)> {
    fs::write(dir.join("notes.txt"), "not a library\n").unwrap();
    fs::write(dir.join("libempty.so"), b"").unwrap();
    let real = fs::read(builtin_plugin("aa_plugin_tar_internal")).unwrap();
    fs::write(dir.join("libtrunc.so"), &real[..4000]).unwrap();
    not_a_plugin_library(dir);
    fs::write(dir.join("libdup.so"), &real).unwrap();
    vec![
        ("notes.txt", None),
        ("libempty.so", None),
        ("libtrunc.so", None),
        ("libnotplugin.so", None),
        ("libdup.so", Some("TarInternal")),
    ]
}

/// Checks one warning line per rejected file. The wording may be the contract's
/// `aa: warning: plugin FILE: REASON` or the original program's style
/// `aa: Warning! plugin "FILE" ignored: REASON`; what matters is one `aa: ` line per file that
/// names it and gives a reason.
#[track_caller]
fn assert_rejected_with_warnings(out: &AaOutput, expected: &[(&str, Option<&str>)]) {
    out.assert_success();
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| {
            l.starts_with("aa: ")
                && l.to_ascii_lowercase().contains("warning")
                && l.contains("plugin")
        })
        .collect();
    for (file, must_mention) in expected {
        let name = format!("/{file}");
        let about: Vec<&&str> = warnings.iter().filter(|l| l.contains(&name)).collect();
        assert_eq!(about.len(), 1, "one warning expected for {file}:\n{out}");
        let reason = about[0].split_once(&name).unwrap().1;
        let reason = reason
            .trim_start_matches(['"', ' '])
            .trim_start_matches("ignored");
        let reason = reason.trim_start_matches([':', ' ']);
        assert!(reason.len() > 3, "{file}: no reason given:\n{out}");
        if let Some(word) = must_mention {
            assert!(
                reason.to_ascii_lowercase().contains("duplicate") && reason.contains(word),
                "{file}: should be a duplicate {word}:\n{out}"
            );
        }
    }
    assert_eq!(
        warnings.len(),
        expected.len(),
        "unexpected warnings:\n{out}"
    );
    assert_eq!(
        out.stderr.lines().count(),
        expected.len(),
        "nothing but the warnings expected on stderr:\n{out}"
    );

    let listing = parse_listing(&out.stdout);
    for id in ["TarInternal", "TarExternal"] {
        let p = find(&listing, id);
        assert!(
            !p.library.ends_with("libdup.so"),
            "the built-in library should win: {p:?}"
        );
    }
}

#[test]
fn unusable_files_in_plugin_directories_give_one_warning_each() {
    let sb = Sandbox::new();
    let dir = sb.mkdir("plugins");
    let expected = bad_plugin_dir(&dir);

    let out = sb
        .aa()
        .arg("--list-providers")
        .arg("--plugin-dir")
        .arg(&dir)
        .run();
    assert_rejected_with_warnings(&out, &expected);

    let out = sb
        .aa()
        .arg("--list-providers")
        .env("AA_PLUGIN_PATH", &dir)
        .run();
    assert_rejected_with_warnings(&out, &expected);
}

/// A plugin directory that cannot be read is one warning naming it as a directory; the
/// built-in providers still load and the exit code stays 0.
#[test]
fn a_missing_plugin_directory_is_one_warning() {
    let sb = Sandbox::new();
    let missing = sb.path().join("no-plugins-here");
    let out = sb
        .aa()
        .arg("--plugin-dir")
        .arg(&missing)
        .arg("--list-providers")
        .run();
    out.assert_success();
    assert_eq!(
        out.stderr.trim(),
        format!(
            "aa: Warning! plugin directory \"{}\" ignored: cannot be read: No such file or directory (os error 2)",
            missing.display()
        ),
        "{out}"
    );
    let listing = parse_listing(&out.stdout);
    find(&listing, "TarInternal");
    find(&listing, "TarExternal");
}

#[test]
fn backups_still_work_next_to_unusable_plugins() {
    let sb = Sandbox::new();
    let dir = sb.mkdir("plugins");
    bad_plugin_dir(&dir);
    let expected = record_tree(&simple_fixture(&sb.src_dir()));
    sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));

    let out = sb
        .aa()
        .arg("--plugin-dir")
        .arg(&dir)
        .args(["-a", "targz_internal", "data"])
        .run();
    out.assert_no_panic();
    let archive = sb.dest_dir().join("data.tar.gz");
    assert!(archive.is_file(), "{out}");
    let restored = sb.mkdir("restored");
    gnu_extract(&archive, &restored);
    assert_same_tree(
        &expected,
        &record_tree(&restored.join("tree")),
        Compare::default(),
        "with bad plugins around",
    );
}

// ---- the example plugin -------------------------------------------------------------------

/// A plugin directory holding only the example plugin.
fn hello_plugin_dir(sb: &Sandbox) -> PathBuf {
    let dir = sb.mkdir("plugins");
    fs::copy(build_hello_provider(), dir.join("libaa_hello_provider.so")).unwrap();
    dir
}

#[test]
fn hello_plugin_is_listed_and_makes_restorable_backups() {
    let sb = Sandbox::new();
    let plugins = hello_plugin_dir(&sb);
    let expected = record_tree(&simple_fixture(&sb.src_dir()));
    sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));

    let out = sb
        .aa()
        .arg("--list-providers")
        .arg("--plugin-dir")
        .arg(&plugins)
        .run();
    out.assert_success();
    let listing = parse_listing(&out.stdout);
    let hello = find(&listing, "Hello");
    assert_eq!(hello.library, plugins.join("libaa_hello_provider.so"));
    assert!(hello.description.is_some(), "{hello:?}");
    assert_eq!(hello.types, [("Tar".to_string(), vec![])], "{out}");
    // Built on ABI 1.0 alone: no capability beyond backups.
    assert!(hello.capabilities.is_empty(), "{out}");
    find(&listing, "TarInternal");

    let out = sb
        .aa()
        .arg("--plugin-dir")
        .arg(&plugins)
        .args(["-a", "tar@Hello", "data"])
        .run();
    out.assert_success();
    assert_eq!(dir_names(&sb.dest_dir()), ["data.tar"], "{out}");
    let archive = sb.dest_dir().join("data.tar");
    assert_eq!(detect_format(&archive), "tar");
    let restored = sb.mkdir("restored");
    gnu_extract(&archive, &restored);
    assert_same_tree(
        &expected,
        &record_tree(&restored.join("tree")),
        Compare::default(),
        "tar@Hello",
    );
}

#[test]
fn hello_plugin_from_aa_plugin_path_and_spec_file() {
    let sb = Sandbox::new();
    let plugins = hello_plugin_dir(&sb);
    let expected = record_tree(&simple_fixture(&sb.src_dir()));
    let spec = Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()).archiver("tar@hello");
    sb.write_spec("data", &spec);

    let search_path = format!(
        "{}:{}",
        sb.path().join("absent").display(),
        plugins.display()
    );
    let out = sb
        .aa()
        .env("AA_PLUGIN_PATH", &search_path)
        .arg("data")
        .run();
    out.assert_success();
    let restored = sb.mkdir("restored");
    gnu_extract(&sb.dest_dir().join("data.tar"), &restored);
    assert_same_tree(
        &expected,
        &record_tree(&restored.join("tree")),
        Compare::default(),
        "tar@hello from the spec",
    );

    // Without the plugin directory the provider is unknown: a clean error, no backup.
    fs::remove_file(sb.dest_dir().join("data.tar")).unwrap();
    let out = sb.aa().arg("data").run();
    out.assert_clean_failure();
    assert!(dir_names(&sb.dest_dir()).is_empty(), "{out}");
}

#[test]
fn hello_plugin_refuses_types_it_does_not_support() {
    let sb = Sandbox::new();
    let plugins = hello_plugin_dir(&sb);
    simple_fixture(&sb.src_dir());
    sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));

    let out = sb
        .aa()
        .arg("--plugin-dir")
        .arg(&plugins)
        .args(["-a", "targz@Hello", "data"])
        .run();
    out.assert_clean_failure();
    assert!(dir_names(&sb.dest_dir()).is_empty(), "{out}");
}

/// The example plugin on its own, through the ABI the host uses: identification, what it
/// stores, what it reports as skipped, and the `._partial` discipline.
#[test]
fn hello_plugin_through_the_abi_directly() {
    let library = PluginLibrary::load(&build_hello_provider()).expect("load the example plugin");
    let id = library.identification().unwrap();
    assert_eq!(id.provider_id.as_str(), "Hello");
    assert_eq!(
        id.supported_backup_types().collect::<Vec<_>>(),
        [BackupType::Tar]
    );
    assert_eq!(id.features_for(BackupType::Tar), Some(&[][..]));

    let sb = Sandbox::new();
    let provider = library.create_provider(&sb.config_dir()).unwrap();
    let tree = full_fixture(&sb.src_dir());
    let definition = BackupDefinition::new("data", BackupType::Tar, sb.dest_dir(), sb.src_dir())
        .include(["tree"])
        .exclude(["tree/a"]);

    // What ustar with names under 100 bytes can hold: files and directories only, hard links
    // stored as separate copies, everything under `tree/a` excluded.
    let full = without(&record_tree(&tree), b"a");
    let fits = |rel: &[u8], kind: Kind| {
        let slash = usize::from(kind == Kind::Dir);
        let prefix = if rel.is_empty() { 4 } else { 5 }; // "tree" or "tree/"
        prefix + rel.len() + slash < 100
    };
    let mut expected = TreeRecord::new();
    let mut skipped = BTreeSet::new();
    for (rel, entry) in &full {
        let storable = matches!(entry.kind, Kind::File | Kind::Dir);
        let parent_kept = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => expected.contains_key(&rel[..i]),
            None => true,
        };
        if !parent_kept {
            continue; // inside a skipped directory: never visited
        }
        if storable && fits(rel, entry.kind) {
            let mut e = entry.clone();
            e.hardlink_group = None;
            expected.insert(rel.clone(), e);
        } else {
            skipped.insert([b"tree/".as_slice(), rel].concat());
        }
    }
    assert!(skipped.len() >= 7, "the fixture should exercise skipping");

    let events = Recorder::default();
    let old = sb.dest_dir().join("data.tar");
    let written = provider
        .backup_files(&definition, None, false, &events)
        .unwrap();
    assert_eq!(written, old);
    assert_eq!(dir_names(&sb.dest_dir()), ["data.tar"]);
    let restored = sb.mkdir("restored");
    gnu_extract(&written, &restored);
    assert_same_tree(
        &expected,
        &record_tree(&restored.join("tree")),
        Compare::default(),
        "Hello via the ABI",
    );

    let reported: BTreeSet<Vec<u8>> = events
        .errors()
        .into_iter()
        .map(|e| {
            let name = e.name.unwrap_or_default();
            assert_eq!(
                e.error,
                BackupOperationError::UnknownTypeIgnored,
                "{}",
                show(&name)
            );
            name
        })
        .collect();
    let show_set = |s: &BTreeSet<Vec<u8>>| s.iter().map(|p| show(p)).collect::<Vec<_>>();
    assert_eq!(show_set(&reported), show_set(&skipped));
    assert_eq!(events.added().len(), expected.len());

    // A failing run (the rename is blocked by a directory) leaves no partial file behind.
    fs::remove_file(&old).unwrap();
    fs::create_dir(&old).unwrap();
    let err = provider
        .backup_files(&definition, None, false, &Recorder::default())
        .unwrap_err();
    assert!(err.message().contains("data.tar"), "{err:?}");
    assert_eq!(dir_names(&sb.dest_dir()), ["data.tar"]);
    assert!(old.is_dir());

    // The checks of the ABI layer apply to third-party plugins too.
    let gz = BackupDefinition {
        backup_type: BackupType::TarGz,
        ..definition.clone()
    };
    assert!(provider.backup_files(&gz, None, false, &events).is_err());
    assert!(provider
        .backup_files(&definition, Some(5), false, &events)
        .is_err());
    assert_eq!(dir_names(&sb.dest_dir()), ["data.tar"]);
}

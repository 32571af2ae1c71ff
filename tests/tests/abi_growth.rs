//! The proof of ABI 1.0's growth rule (`abi/src/capability/mod.rs`): a plugin built against
//! the frozen ABI 1.0 crate (`tests/abi-1.0/`, never edited) loads in the current host, makes
//! backups and is reported without capabilities (and answers `None` for one added since, such
//! as `backup_to_sink_v1`), however `abi/` has grown since; a plugin of
//! 1.0 that exports the capabilities released with it is listed with them and called through
//! them; and a plugin exporting a capability whose layout differs from the host's is refused
//! with one line naming the capability.
//!
//! The plugins are the Hello example (`examples/hello-provider`), built against a copy of the
//! ABI crate by `aa_tests::HelloBuild`.

use std::fs;
use std::path::{Path, PathBuf};

use aa_tests::{
    assert_same_tree, gnu_extract, record_tree, simple_fixture, AaOutput, Compare, HelloBuild,
    Sandbox, Spec,
};

/// A `Restoring` impl for Hello that restores nothing, and its export: enough for a host to
/// find, check and call the capability.
const RESTORE_CAPABILITY: &str = r#"
impl aa_abi::capability::Restoring for HelloProvider {
    fn restore(
        &self,
        _request: &aa_abi::capability::RestoreRequest,
        _events: &dyn aa_abi::capability::ItemEvents,
    ) -> Result<aa_abi::capability::Totals, ProviderError> {
        Err(ProviderError::not_implemented("Hello's restore_v1 was called and restores nothing"))
    }
}

aa_abi::export_capabilities!(HelloPlugin: restore_v1);
"#;

/// A byte sink no provider may reach.
struct Unreachable;

impl aa_abi::capability::BackupSink for Unreachable {
    fn write(&mut self, _bytes: &[u8]) -> Result<(), aa_abi::ProviderError> {
        panic!("a 1.0 plugin wrote into a sink");
    }

    fn commit(&mut self) -> Result<(), aa_abi::ProviderError> {
        panic!("a 1.0 plugin committed a sink");
    }
}

/// `plugins/libhello.so` in a new sandbox, and `aa --list-providers` with it.
fn listed(library: &Path) -> (Sandbox, PathBuf, AaOutput) {
    let sb = Sandbox::new();
    let plugins = sb.mkdir("plugins");
    fs::copy(library, plugins.join("libhello.so")).unwrap();
    let out = sb
        .aa()
        .arg("--list-providers")
        .arg("--plugin-dir")
        .arg(&plugins)
        .run();
    out.assert_success();
    (sb, plugins, out)
}

/// The lines `--list-providers` prints about provider `id`: its header line and the indented
/// lines under it.
fn provider_block<'a>(out: &'a AaOutput, id: &str) -> Vec<&'a str> {
    let mut lines = out.stdout.lines().skip_while(|l| !l.starts_with(id));
    let Some(first) = lines.next() else {
        panic!("{id} is not listed:\n{out}");
    };
    let mut block = vec![first];
    block.extend(lines.take_while(|l| l.starts_with(' ')));
    block
}

/// The capabilities `--list-providers` reports for `id` (empty for "- (backups only)").
fn listed_capabilities(out: &AaOutput, id: &str) -> Vec<String> {
    let block = provider_block(out, id);
    let line = block
        .iter()
        .find_map(|l| l.trim().strip_prefix("capabilities:"))
        .unwrap_or_else(|| panic!("no capabilities line for {id}:\n{out}"))
        .trim();
    if line.starts_with('-') {
        return Vec::new();
    }
    line.split(", ").map(str::to_string).collect()
}

fn aa_with(sb: &Sandbox, plugins: &Path, args: &[&str]) -> AaOutput {
    let out = sb.aa().arg("--plugin-dir").arg(plugins).args(args).run();
    out.assert_no_panic();
    out
}

#[test]
fn hello_built_against_abi_1_0_loads_without_capabilities_and_makes_backups() {
    let library = HelloBuild::against_abi_1_0("abi-1-0").build();
    let (sb, plugins, out) = listed(&library);
    assert!(out.stderr.is_empty(), "no warning for a 1.0 plugin:\n{out}");
    assert!(
        listed_capabilities(&out, "Hello").is_empty(),
        "a 1.0 plugin has no capabilities:\n{out}"
    );
    assert_eq!(
        listed_capabilities(&out, "TarInternal"),
        ["restore_v1", "verify_v1", "dry_run_v1", "backup_to_sink_v1"],
        "{out}"
    );
    // Loaded directly, it lacks the capabilities added after it: backing up into a host's
    // byte sink (an object store) is answered "absent", and nothing of it is called.
    let hello = aa_abi::host::PluginLibrary::load(&library).unwrap();
    assert!(!hello.capabilities().can_backup_to_sink());
    let provider = hello
        .create_provider(&sb.path().join("hello-work"))
        .unwrap();
    let definition =
        aa_abi::BackupDefinition::new("data", aa_abi::BackupType::Tar, sb.dest_dir(), sb.src_dir())
            .include(["tree"]);
    assert!(provider
        .backup_to_sink(&definition, None, None, &mut Unreachable, &aa_abi::NoEvents)
        .is_none());

    // It makes backups, full ones (all Hello declares), each run replacing the last.
    let tree = simple_fixture(&sb.src_dir());
    sb.write_spec(
        "data",
        &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()).archiver("tar@Hello"),
    );
    aa_with(&sb, &plugins, &["data"]).assert_success();
    fs::write(tree.join("file.txt"), "second run\n").unwrap();
    aa_with(&sb, &plugins, &["data"]).assert_success();
    let extracted = sb.path().join("extracted");
    gnu_extract(&sb.dest_dir().join("data.tar"), &extracted);
    assert_same_tree(
        &record_tree(&tree),
        &record_tree(&extracted.join("tree")),
        Compare { mtime_nanos: false },
        "Hello (ABI 1.0) backup",
    );

    // A host given a plugin that lacks a capability uses a provider that has it, and says which.
    let target = sb.path().join("restored");
    let out = aa_with(
        &sb,
        &plugins,
        &["--restore", "data", "--target", target.to_str().unwrap()],
    );
    out.assert_success();
    assert!(
        out.all_output().contains("TarInternal") || out.all_output().contains("TarExternal"),
        "the restore names the provider used instead of Hello:\n{out}"
    );
    assert_same_tree(
        &record_tree(&tree),
        &record_tree(&target.join("tree")),
        Compare { mtime_nanos: false },
        "Hello (ABI 1.0) backup restored by aa --restore",
    );
}

#[test]
fn a_plugin_of_abi_1_0_exporting_restore_v1_is_listed_and_called_with_it() {
    let library = HelloBuild::against_abi_1_0("abi-1-0-restore")
        .append("hello/src/lib.rs", RESTORE_CAPABILITY)
        .build();
    let (sb, plugins, out) = listed(&library);
    assert!(out.stderr.is_empty(), "{out}");
    assert_eq!(listed_capabilities(&out, "Hello"), ["restore_v1"], "{out}");

    // The spec's provider can restore the type, so the host calls it, through the module
    // of the 1.0 crate.
    simple_fixture(&sb.src_dir());
    sb.write_spec(
        "data",
        &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()).archiver("tar@Hello"),
    );
    aa_with(&sb, &plugins, &["data"]).assert_success();
    let target = sb.path().join("restored");
    let out = aa_with(
        &sb,
        &plugins,
        &["--restore", "data", "--target", target.to_str().unwrap()],
    );
    out.assert_clean_failure();
    assert!(
        out.stderr
            .contains("Hello's restore_v1 was called and restores nothing"),
        "{out}"
    );
}

/// A `RestoreRequest` with a field the host's lacks: the layout check of `restore_v1` fails
/// (the type is reached through the module's `restore` signature), and the plugin is refused
/// with one line naming the capability, before anything of it is used.
#[test]
fn a_plugin_exporting_a_capability_with_a_wrong_layout_is_refused_naming_it() {
    let library = HelloBuild::against_current_abi("wrong-restore-layout")
        .edit(
            "abi/src/capability/types.rs",
            "    pub overwrite: bool,\n}",
            "    pub overwrite: bool,\n    /// Added without a new capability version.\n    pub added_later: u64,\n}",
        )
        .append("hello/src/lib.rs", RESTORE_CAPABILITY)
        .build();
    let (_sb, _plugins, out) = listed(&library);
    let stderr: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(stderr.len(), 1, "one line for the refused plugin:\n{out}");
    assert!(stderr[0].contains("libhello.so"), "{out}");
    assert!(
        stderr[0].contains("capability restore_v1 has an incompatible layout: "),
        "{out}"
    );
    assert!(stderr[0].contains("RestoreRequest"), "{out}");
    assert!(stderr[0].ends_with("rebuild the plugin"), "{out}");
    assert!(!out.stdout.contains("Hello"), "{out}");
    assert!(
        out.stdout.contains("TarInternal") && out.stdout.contains("TarExternal"),
        "{out}"
    );
}

/// A `restore` whose signature changed (an argument added) in place, instead of a `restore_v2`.
#[test]
fn a_plugin_exporting_a_capability_with_a_changed_signature_is_refused_naming_it() {
    let library = HelloBuild::against_current_abi("wrong-restore-signature")
        .edit(
            "abi/src/capability/ffi.rs",
            "        request: &RestoreRequest,\n        events: ItemEventsRef<'_>,\n    ) -> RResult<Totals, ProviderError>,",
            "        request: &RestoreRequest,\n        events: ItemEventsRef<'_>,\n        added_later: u32,\n    ) -> RResult<Totals, ProviderError>,",
        )
        .edit(
            "abi/src/capability/export.rs",
            "    events: ItemEventsRef<'_>,\n) -> RResult<Totals, ProviderError>\nwhere\n    P::Provider: Restoring,",
            "    events: ItemEventsRef<'_>,\n    _added_later: u32,\n) -> RResult<Totals, ProviderError>\nwhere\n    P::Provider: Restoring,",
        )
        .edit(
            "abi/src/capability/load.rs",
            "(&PathBytes::new(work_dir), request, sink)",
            "(&PathBytes::new(work_dir), request, sink, 0)",
        )
        .append("hello/src/lib.rs", RESTORE_CAPABILITY)
        .build();
    let (_sb, _plugins, out) = listed(&library);
    let stderr: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(stderr.len(), 1, "one line for the refused plugin:\n{out}");
    assert!(
        stderr[0].contains("libhello.so")
            && stderr[0].contains("capability restore_v1 has an incompatible layout: "),
        "{out}"
    );
    assert!(!out.stdout.contains("Hello"), "{out}");
}

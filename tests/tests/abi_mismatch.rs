//! A plugin built against an incompatible `aa-abi` is refused with a one-line reason and never
//! crashes the host. The incompatible plugins are the Hello example rebuilt against a copy of
//! `abi/` that was changed the way a careless release would change it: a field added to a
//! boundary type (layout check) or a new minor version (version check).
//!
//! And the growth abi_stable allows: a plugin whose root module has an entry appended after
//! the last prefix field (built against a newer `aa-abi` of the same version) loads and works
//! in this host. The other way round (a host whose root module grew, an older plugin) is
//! refused by abi_stable, which is why `abi/src/ffi.rs` treats such growth as a new version.

use std::fs;
use std::path::{Path, PathBuf};

use aa_tests::{build_cdylib, target_dir, workspace_dir, AaOutput, Sandbox};

/// How the copy of the ABI crate differs from the real one.
enum Change {
    /// A field added to `ProviderIdentification`, same version.
    Layout,
    /// Same layout, ABI version 0.2.0 (0.x versions are compatible within one minor version).
    Version,
    /// A root-module entry appended after the last prefix field: a newer, compatible plugin.
    NewerRootModule,
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "expected exactly one {from:?} to change"
    );
    text.replacen(from, to, 1)
}

/// Builds the Hello plugin against a changed copy of `abi/` and returns the library.
fn build_incompatible_hello(change: Change) -> PathBuf {
    let (tag, version) = match change {
        Change::Layout => ("layout", "0.1.0"),
        Change::Version => ("version", "0.2.0"),
        Change::NewerRootModule => ("newer-root-module", "0.1.0"),
    };
    // A stable location under target/ so cargo reuses its build between runs.
    let root = target_dir().join("abi-mismatch").join(tag);
    let abi = root.join("abi");
    let hello = root.join("hello");
    let _ = fs::remove_dir_all(abi.join("src"));
    let _ = fs::remove_dir_all(hello.join("src"));
    copy_tree(&workspace_dir().join("abi/src"), &abi.join("src"));
    copy_tree(
        &workspace_dir().join("examples/hello-provider/src"),
        &hello.join("src"),
    );

    fs::write(
        abi.join("Cargo.toml"),
        format!(
            "[package]\nname = \"aa-abi\"\nversion = \"{version}\"\nedition = \"2021\"\n\n\
             [lib]\nname = \"aa_abi\"\n\n[dependencies]\nabi_stable = \"0.11.3\"\nlibc = \"0.2\"\nlog = \"0.4\"\n"
        ),
    )
    .unwrap();
    if let Change::Version = change {
        // What abi_stable compares is the ABI's own constant, not the package version.
        let ffi = abi.join("src/ffi.rs");
        let text = fs::read_to_string(&ffi).unwrap();
        let text = replace_once(
            &text,
            "pub const ABI_VERSION: &str = \"0.1.0\";",
            "pub const ABI_VERSION: &str = \"0.2.0\";",
        );
        fs::write(&ffi, text).unwrap();
    }
    if let Change::NewerRootModule = change {
        let ffi = abi.join("src/ffi.rs");
        let text = fs::read_to_string(&ffi).unwrap();
        let text = replace_once(
            &text,
            "RResult<ArchiverProviderBox, ProviderError>,\n}",
            "RResult<ArchiverProviderBox, ProviderError>,\n    /// Added later.\n    pub added_later: extern \"C\" fn() -> u32,\n}",
        );
        fs::write(&ffi, text).unwrap();
        let plugin = abi.join("src/plugin.rs");
        let text = fs::read_to_string(&plugin).unwrap();
        let text = replace_once(
            &text,
            "        create_provider: create_entry::<P>,\n",
            "        create_provider: create_entry::<P>,\n        added_later: added_later_entry,\n",
        );
        fs::write(
            &plugin,
            format!("{text}\nextern \"C\" fn added_later_entry() -> u32 {{\n    7\n}}\n"),
        )
        .unwrap();
    }
    if let Change::Layout = change {
        let types = abi.join("src/types.rs");
        let text = fs::read_to_string(&types).unwrap();
        let text = replace_once(
            &text,
            "    pub backup_types: RVec<TypeFeatures>,\n}",
            "    pub backup_types: RVec<TypeFeatures>,\n    /// Added later.\n    pub added_later: u64,\n}",
        );
        let text = replace_once(
            &text,
            "            backup_types: RVec::new(),\n",
            "            backup_types: RVec::new(),\n            added_later: 0,\n",
        );
        fs::write(&types, text).unwrap();
    }

    let manifest =
        fs::read_to_string(workspace_dir().join("examples/hello-provider/Cargo.toml")).unwrap();
    let manifest = replace_once(&manifest, "path = \"../../abi\"", "path = \"../abi\"");
    fs::write(hello.join("Cargo.toml"), manifest).unwrap();
    fs::copy(
        workspace_dir().join("examples/hello-provider/Cargo.lock"),
        hello.join("Cargo.lock"),
    )
    .unwrap();

    build_cdylib(
        &hello.join("Cargo.toml"),
        &root.join("target"),
        "aa_hello_provider",
    )
}

/// A sandbox whose `plugins/` directory holds the Hello plugin built with `change`, and what
/// `aa --list-providers` says with that directory.
fn listed_with(change: Change) -> (Sandbox, PathBuf, AaOutput) {
    let library = build_incompatible_hello(change);
    let sb = Sandbox::new();
    let plugins = sb.mkdir("plugins");
    fs::copy(&library, plugins.join("libhello.so")).unwrap();
    let out = sb
        .aa()
        .arg("--list-providers")
        .arg("--plugin-dir")
        .arg(&plugins)
        .run();
    out.assert_success();
    (sb, plugins, out)
}

fn assert_refused(change: Change, expected_reason: &str) {
    let (_sb, _plugins, out) = listed_with(change);
    let stderr: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(stderr.len(), 1, "one line for the refused plugin:\n{out}");
    assert!(stderr[0].contains("libhello.so"), "{out}");
    assert!(stderr[0].contains(expected_reason), "{out}");
    assert!(stderr[0].contains("rebuild the plugin"), "{out}");
    assert!(!out.stdout.contains("Hello"), "{out}");
    assert!(
        out.stdout.contains("TarInternal") && out.stdout.contains("TarExternal"),
        "{out}"
    );
}

#[test]
fn a_plugin_with_a_changed_type_layout_is_refused() {
    assert_refused(Change::Layout, "incompatible plugin ABI");
}

#[test]
fn a_plugin_built_for_another_abi_version_is_refused() {
    assert_refused(Change::Version, "0.2.0");
}

#[test]
fn a_plugin_with_a_root_module_entry_appended_loads_and_works() {
    let (sb, plugins, out) = listed_with(Change::NewerRootModule);
    assert!(
        out.stderr.is_empty(),
        "no warning for a compatible plugin:\n{out}"
    );
    assert!(out.stdout.contains("Hello"), "{out}");

    // And it makes backups.
    aa_tests::simple_fixture(&sb.src_dir());
    sb.write_spec(
        "data",
        &aa_tests::Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()).archiver("tar@Hello"),
    );
    sb.aa()
        .args(["--plugin-dir"])
        .arg(&plugins)
        .arg("data")
        .run()
        .assert_success();
    assert!(sb.dest_dir().join("data.tar").is_file());
}

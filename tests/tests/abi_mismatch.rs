//! A plugin built against an incompatible `aa-abi` is refused with a one-line reason and never
//! crashes the host. The incompatible plugins are the Hello example rebuilt against a copy of
//! `abi/` that was changed the way a careless release would change it: a field added to a
//! boundary type (layout check), a new major ABI version (version check), a new 0.x package
//! version of the crate (abi_stable checks that too, in every type layout).
//!
//! And the growth abi_stable allows: a plugin whose root module has an entry appended after
//! the last prefix field (built against a newer `aa-abi` of the same version) loads and works
//! in this host, and so does one declaring a newer minor ABI version (1.1.0). The other way
//! round (a host whose root module grew, an older plugin) is refused by abi_stable, which is why
//! `abi/src/ffi.rs` freezes the root module and new abilities are capabilities
//! (`abi_growth.rs` proves that rule with the frozen ABI 1.0 crate).

use std::fs;
use std::path::PathBuf;

use aa_tests::{abi_package_version, AaOutput, HelloBuild, Sandbox};

/// How the copy of the ABI crate differs from the real one.
#[derive(Clone, Copy)]
enum Change {
    /// A field added to `ProviderIdentification`, same version.
    Layout,
    /// Same layout, ABI version 2.0.0: another major version.
    Major,
    /// Same layout, ABI version 1.1.0: a newer minor version.
    Minor,
    /// Same layout and ABI version, package version 0.2.0 instead of the workspace's 0.1.x.
    PackageVersion,
    /// A root-module entry appended after the last prefix field: a newer, compatible plugin.
    NewerRootModule,
}

const FFI: &str = "abi/src/ffi.rs";

/// Builds the Hello plugin against a changed copy of `abi/` and returns the library.
fn build_changed_hello(change: Change) -> PathBuf {
    let abi_version = |build: HelloBuild, version: &str| {
        build.edit(
            FFI,
            "pub const ABI_VERSION: &str = \"1.0.0\";",
            &format!("pub const ABI_VERSION: &str = \"{version}\";"),
        )
    };
    let build = match change {
        Change::Layout => HelloBuild::against_current_abi("mismatch-layout")
            .edit(
                "abi/src/types.rs",
                "    pub backup_types: RVec<TypeFeatures>,\n}",
                "    pub backup_types: RVec<TypeFeatures>,\n    /// Added later.\n    pub added_later: u64,\n}",
            )
            .edit(
                "abi/src/types.rs",
                "            backup_types: RVec::new(),\n",
                "            backup_types: RVec::new(),\n            added_later: 0,\n",
            ),
        Change::Major => abi_version(HelloBuild::against_current_abi("mismatch-major"), "2.0.0"),
        Change::Minor => abi_version(HelloBuild::against_current_abi("mismatch-minor"), "1.1.0"),
        Change::PackageVersion => {
            let current = abi_package_version();
            HelloBuild::against_current_abi("mismatch-package").edit(
                "abi/Cargo.toml",
                &format!("version = \"{current}\""),
                "version = \"0.2.0\"",
            )
        }
        Change::NewerRootModule => HelloBuild::against_current_abi("mismatch-newer-root")
            .edit(
                FFI,
                "RResult<ArchiverProviderBox, ProviderError>,\n}",
                "RResult<ArchiverProviderBox, ProviderError>,\n    /// Added later.\n    pub added_later: extern \"C\" fn() -> u32,\n}",
            )
            .edit(
                "abi/src/plugin.rs",
                "        create_provider: create_entry::<P>,\n",
                "        create_provider: create_entry::<P>,\n        added_later: added_later_entry,\n",
            )
            .append(
                "abi/src/plugin.rs",
                "\nextern \"C\" fn added_later_entry() -> u32 {\n    7\n}\n",
            ),
    };
    build.build()
}

/// A sandbox whose `plugins/` directory holds the Hello plugin built with `change`, and what
/// `aa --list-providers` says with that directory.
fn listed_with(change: Change) -> (Sandbox, PathBuf, AaOutput) {
    let library = build_changed_hello(change);
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

/// Loads without a warning and makes a backup.
fn assert_loads_and_works(change: Change) {
    let (sb, plugins, out) = listed_with(change);
    assert!(
        out.stderr.is_empty(),
        "no warning for a compatible plugin:\n{out}"
    );
    assert!(out.stdout.contains("Hello"), "{out}");

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
    let extracted = sb.path().join("extracted");
    aa_tests::gnu_extract(&sb.dest_dir().join("data.tar"), &extracted);
    assert_eq!(
        fs::read(extracted.join("tree/a/b/deep.txt")).unwrap(),
        b"deep content\n"
    );
}

#[test]
fn a_plugin_with_a_changed_type_layout_is_refused() {
    assert_refused(Change::Layout, "incompatible plugin ABI");
}

#[test]
fn a_plugin_built_for_another_major_abi_version_is_refused() {
    assert_refused(Change::Major, "built for plugin ABI 2.0.0");
}

/// abi_stable compares only the major version of an ABI 1.x or later (`check_version` in its
/// `lib_header.rs`: minors are compatible both ways), so a plugin declaring 1.1.0 loads in this
/// 1.0.0 host, as a 1.0.0 plugin would in a 1.1.0 host. That is why the ABI version says
/// nothing a host can act on within 1.x and growth goes through capabilities, which a host
/// finds by name.
#[test]
fn a_plugin_declaring_a_newer_minor_abi_version_loads_and_works() {
    assert_loads_and_works(Change::Minor);
}

/// abi_stable also records the package version of the crate defining each boundary type and
/// compares it by cargo's rule (0.y must match): an `aa-abi` released as 0.2.0 would refuse
/// every plugin built against 0.1.x even with identical layouts. So `abi/Cargo.toml` pins its
/// version instead of taking the workspace's.
#[test]
fn a_plugin_built_against_another_0_x_package_of_aa_abi_is_refused() {
    assert_refused(Change::PackageVersion, "incompatible package versions");
}

#[test]
fn a_plugin_with_a_root_module_entry_appended_loads_and_works() {
    assert_loads_and_works(Change::NewerRootModule);
}

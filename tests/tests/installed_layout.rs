//! An installed layout (`make install PREFIX=...`): `<prefix>/bin/aa` finds its plugins in
//! `<prefix>/lib/aa/plugins` with no flag and no environment variable.

use std::fs;

use aa_tests::{aa_bin, builtin_plugin, simple_fixture, Sandbox, Spec};

#[test]
fn installed_aa_finds_plugins_under_prefix_lib() {
    let sb = Sandbox::new();
    let prefix = sb.mkdir("prefix");
    let bin = prefix.join("bin");
    let plugins = prefix.join("lib/aa/plugins");
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(&plugins).unwrap();
    fs::copy(aa_bin(), bin.join("aa")).unwrap();
    for lib in ["aa_plugin_tar_internal", "aa_plugin_tar_external"] {
        fs::copy(builtin_plugin(lib), plugins.join(format!("lib{lib}.so"))).unwrap();
    }

    let out = sb.aa_at(&bin.join("aa")).arg("--list-providers").run();
    out.assert_success();
    for lib in [
        "libaa_plugin_tar_internal.so",
        "libaa_plugin_tar_external.so",
    ] {
        let expected = fs::canonicalize(plugins.join(lib)).unwrap();
        assert!(
            out.stdout.contains(&expected.display().to_string()),
            "{out}"
        );
    }
    assert!(out.stderr.is_empty(), "{out}");

    simple_fixture(&sb.src_dir());
    sb.write_spec(
        "data",
        &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()).archiver("tarzst_internal"),
    );
    sb.aa_at(&bin.join("aa")).arg("data").run().assert_success();
    assert!(sb.dest_dir().join("data.tar.zst").is_file());
}

//! Backups made by `aa` with every archiver of the two built-in providers restore, with GNU tar,
//! to a tree identical to the source: content, type, permissions, owner, modification time
//! (whole seconds) and link targets, for every kind of object in the full fixture.

use std::fs;
use std::path::Path;

use aa_tests::*;

/// Runs `aa -a ARCHIVER data` on the full fixture and checks the result end to end.
fn backup_restores_identically(archiver: &str, ext: &str, format: &str) {
    let sb = Sandbox::new();
    let tree = full_fixture(&sb.src_dir());
    let expected = record_tree(&tree);
    sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));

    let out = sb.aa().args(["-a", archiver, "data"]).run();
    out.assert_success();

    // Exactly the backup: no `._partial` or other leftovers.
    let name = format!("data.{ext}");
    assert_eq!(dir_names(&sb.dest_dir()), [name.as_str()], "{out}");
    let archive = sb.dest_dir().join(&name);
    assert_eq!(
        detect_format(&archive),
        format,
        "{archiver}: container format"
    );

    let restored = sb.mkdir("restored");
    gnu_extract(&archive, &restored);
    assert_same_tree(
        &expected,
        &record_tree(&restored.join("tree")),
        Compare::default(),
        archiver,
    );
    // Making a backup must not disturb what it backs up.
    assert_same_tree(
        &expected,
        &record_tree(&tree),
        Compare { mtime_nanos: true },
        "source after the backup",
    );
}

macro_rules! archiver_tests {
    ($($test:ident: $archiver:literal => $ext:literal, $format:literal;)+) => {$(
        #[test]
        fn $test() {
            backup_restores_identically($archiver, $ext, $format);
        }
    )+};
}

archiver_tests! {
    external_tar: "tar" => "tar", "tar";
    external_targz: "targz" => "tar.gz", "gz";
    external_tarbz2: "tarbz2" => "tar.bz2", "bz2";
    external_tarxz: "tarxz" => "tar.xz", "xz";
    external_tarzst: "tarzst" => "tar.zst", "zst";
    internal_tar: "tar_internal" => "tar", "tar";
    internal_targz: "targz_internal" => "tar.gz", "gz";
    internal_tarbz2: "tarbz2_internal" => "tar.bz2", "bz2";
    internal_tarxz: "tarxz_internal" => "tar.xz", "xz";
    internal_tarzst: "tarzst_internal" => "tar.zst", "zst";
}

/// Backs up the spec `name` (already written) with `archiver`, returning the backup path.
#[track_caller]
fn run_backup(sb: &Sandbox, name: &str, args: &[&str], file: &str) -> std::path::PathBuf {
    let out = sb.aa().args(args).arg(name).run();
    out.assert_success();
    let path = sb.dest_dir().join(file);
    assert!(path.is_file(), "{} missing:\n{out}", path.display());
    path
}

#[test]
fn both_providers_store_the_same_members() {
    let sb = Sandbox::new();
    let tree = full_fixture(&sb.src_dir());
    sb.write_spec("ext", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));
    sb.write_spec("int", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));
    // Every object of the fixture, named relative to the spec's path.
    let all: std::collections::BTreeSet<Vec<u8>> = record_tree(&tree)
        .into_keys()
        .map(|k| {
            [
                b"tree".as_slice(),
                if k.is_empty() { b"" } else { b"/" },
                &k,
            ]
            .concat()
        })
        .collect();

    for (external, internal, ext) in [
        ("tar", "tar_internal", "tar"),
        ("targz", "targz_internal", "tar.gz"),
        ("tarbz2", "tarbz2_internal", "tar.bz2"),
        ("tarxz", "tarxz_internal", "tar.xz"),
        ("tarzst", "tarzst_internal", "tar.zst"),
    ] {
        let e = gnu_list(&run_backup(
            &sb,
            "ext",
            &["-a", external],
            &format!("ext.{ext}"),
        ));
        let i = gnu_list(&run_backup(
            &sb,
            "int",
            &["-a", internal],
            &format!("int.{ext}"),
        ));
        let show_set = |s: &std::collections::BTreeSet<Vec<u8>>| {
            s.iter().map(|m| show(m)).collect::<Vec<_>>().join("\n  ")
        };
        assert_eq!(e, all, "{external} members:\n  {}", show_set(&e));
        assert_eq!(i, all, "{internal} members:\n  {}", show_set(&i));
    }
}

#[test]
fn excluded_subtrees_and_files_are_left_out_by_both_providers() {
    for archiver in ["tar", "tar_internal"] {
        let sb = Sandbox::new();
        let tree = full_fixture(&sb.src_dir());
        let spec = Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()).exclude(&[
            "tree/a",
            "tree/big.bin",
            "tree/long",
        ]);
        sb.write_spec("data", &spec);
        let archive = run_backup(&sb, "data", &["-a", archiver], "data.tar");

        let restored = sb.mkdir("restored");
        gnu_extract(&archive, &restored);
        let full = record_tree(&tree);
        let expected = without(&without(&without(&full, b"a"), b"big.bin"), b"long");
        assert!(expected.len() + 10 < full.len());
        assert_same_tree(
            &expected,
            &record_tree(&restored.join("tree")),
            Compare::default(),
            &format!("{archiver} with excludes"),
        );
    }
}

#[test]
fn general_archiver_spelling_and_case_insensitive_provider_ids() {
    let sb = Sandbox::new();
    let tree = simple_fixture(&sb.src_dir());
    let expected = record_tree(&tree);
    sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));

    for (archiver, file, format) in [
        ("targz@TarInternal", "data.tar.gz", "gz"),
        ("TARXZ@tarinternal", "data.tar.xz", "xz"),
        ("tarbz2@TarExternal", "data.tar.bz2", "bz2"),
        ("tarzst@tarexternal", "data.tar.zst", "zst"),
        ("tar@TarInternal", "data.tar", "tar"),
    ] {
        let archive = run_backup(&sb, "data", &["-a", archiver], file);
        assert_eq!(detect_format(&archive), format, "{archiver}");
        let restored = sb.path().join(format!("restored-{file}"));
        gnu_extract(&archive, &restored);
        assert_same_tree(
            &expected,
            &record_tree(&restored.join("tree")),
            Compare::default(),
            archiver,
        );
        fs::remove_file(&archive).unwrap();
    }
}

/// As in the original program, an option in the spec file wins over the command line (the
/// original has `--force-*` options to override it).
#[test]
fn archiver_from_the_spec_file_default_and_command_line() {
    let sb = Sandbox::new();
    simple_fixture(&sb.src_dir());

    // No archiver anywhere: targz.
    sb.write_spec(
        "plain",
        &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()),
    );
    let archive = run_backup(&sb, "plain", &[], "plain.tar.gz");
    assert_eq!(detect_format(&archive), "gz");

    // `-a` when the spec does not say.
    let archive = run_backup(&sb, "plain", &["-a", "tarxz"], "plain.tar.xz");
    assert_eq!(detect_format(&archive), "xz");

    // The spec's `archiver` option, which `-a` does not override.
    let spec = Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()).archiver("tarbz2_internal");
    sb.write_spec("configured", &spec);
    let archive = run_backup(&sb, "configured", &[], "configured.tar.bz2");
    assert_eq!(detect_format(&archive), "bz2");
    fs::remove_file(&archive).unwrap();
    let archive = run_backup(&sb, "configured", &["-a", "tarxz"], "configured.tar.bz2");
    assert_eq!(detect_format(&archive), "bz2");
    assert_eq!(
        dir_names(&sb.dest_dir()),
        ["configured.tar.bz2", "plain.tar.gz", "plain.tar.xz"]
    );
}

#[test]
fn destination_from_the_command_line_and_spec_given_by_path() {
    let sb = Sandbox::new();
    let expected = record_tree(&simple_fixture(&sb.src_dir()));
    let elsewhere = sb.mkdir("elsewhere");
    let spec_file = elsewhere.join("byfile.aa");
    let mut spec = Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir());
    spec.dest_dir = None;
    fs::write(&spec_file, spec.render()).unwrap();
    let other_dest = sb.mkdir("other-dest");

    let out = sb
        .aa()
        .arg("-d")
        .arg(&other_dest)
        .args(["-a", "tar_internal"])
        .arg(&spec_file)
        .run();
    out.assert_success();
    // The backup is named after the spec file and goes where -d says.
    assert_eq!(dir_names(&other_dest), ["byfile.tar"], "{out}");
    let restored = sb.mkdir("restored");
    gnu_extract(&other_dest.join("byfile.tar"), &restored);
    assert_same_tree(
        &expected,
        &record_tree(&restored.join("tree")),
        Compare::default(),
        "spec by path",
    );

    // Neither dest-dir nor -d: the current directory.
    let out = sb.aa().args(["-a", "tar"]).arg(&spec_file).run();
    out.assert_success();
    assert!(sb.path().join("byfile.tar").is_file(), "{out}");
}

/// A tree holding one large, very compressible text file.
fn text_fixture(parent: &Path) {
    let mut t = TreeBuilder::new(parent.join("tree"));
    t.file("text.txt", &compressible_text(1_500_000), 0o644);
    t.finish();
}

#[test]
fn compression_level_changes_the_size_for_both_providers() {
    for archiver in ["targz", "targz_internal"] {
        let sb = Sandbox::new();
        text_fixture(&sb.src_dir());
        let expected = record_tree(&sb.src_dir().join("tree"));
        sb.write_spec("data", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));

        let mut sizes = Vec::new();
        for level in ["1", "9"] {
            let archive = run_backup(&sb, "data", &["-a", archiver, "-c", level], "data.tar.gz");
            assert_eq!(detect_format(&archive), "gz");
            let restored = sb.path().join(format!("restored-{level}"));
            gnu_extract(&archive, &restored);
            assert_same_tree(
                &expected,
                &record_tree(&restored.join("tree")),
                Compare::default(),
                &format!("{archiver} -c {level}"),
            );
            sizes.push(fs::metadata(&archive).unwrap().len());
            fs::remove_file(&archive).unwrap();
        }
        assert!(
            sizes[0] > sizes[1],
            "{archiver}: -c 1 gave {} bytes, -c 9 gave {} bytes",
            sizes[0],
            sizes[1]
        );
    }
}

//! Trees at the edges of what a file system allows, through the `aa` binary with both
//! providers: directory chains deeper than a path the kernel takes at once (`PATH_MAX`), and
//! symbolic link loops.

use std::collections::BTreeSet;
use std::fs;

use aa_tests::*;

const DEPTH: usize = 4000;

fn spec(sb: &Sandbox, archiver: &str, include: &str, archive: &str) {
    let spec = Spec::new(&sb.src_dir(), &[include], &sb.dest_dir()).archiver(archiver);
    sb.write_spec_text("deep", &format!("{}{archive}\n", spec.render()));
}

/// GNU tar stores such a tree and lists it, but cannot extract it (it fails with "File name
/// too long" past `PATH_MAX`), so the listing is the reference. GNU tar 1.34 makes no
/// incremental level of it either ("Cannot stat: File name too long" past `PATH_MAX`), so
/// only `TarInternal` is asked for one.
fn deep_tree_is_stored_whole(archiver: &str, incremental: bool) {
    let sb = Sandbox::new();
    let chain = deep_tree(&sb.src_dir(), DEPTH, b"at the bottom");

    spec(&sb, archiver, "d", "");
    let out = sb.aa().arg("deep").run();
    out.assert_success();
    assert_eq!(
        gnu_list(&sb.dest_dir().join("deep.tar.gz")),
        chain,
        "{archiver}"
    );
    if !incremental {
        return;
    }

    // Incremental: level 0 holds everything; level 1 the directories (their dumpdirs) and a
    // new chain beside the old one.
    spec(&sb, archiver, ".", "incremental = yes");
    sb.aa().arg("deep").run().assert_success();
    // `./`, the root itself, is listed as the empty name.
    let mut expected = chain.clone();
    expected.insert(Vec::new());
    assert_eq!(
        gnu_list(&sb.dest_dir().join("deep.tar.gz")),
        expected,
        "{archiver}: level 0"
    );
    let new_dir = sb.src_dir().join("new");
    fs::create_dir(&new_dir).unwrap();
    let new_chain = deep_tree(&new_dir, DEPTH, b"new");
    settle_timestamps();
    let out = sb.aa().arg("deep").run();
    out.assert_success();
    let level1 = gnu_list(&sb.dest_dir().join("deep.1.tar.gz"));
    let mut expected: BTreeSet<Vec<u8>> = chain
        .iter()
        .filter(|m| !m.ends_with(b"/f"))
        .cloned()
        .collect();
    expected.extend([Vec::new(), b"new".to_vec()]);
    expected.extend(new_chain.iter().map(|m| [&b"new/"[..], m].concat()));
    assert_eq!(level1, expected, "{archiver}: level 1");
}

#[test]
fn deep_tree_is_stored_whole_by_tar_internal() {
    deep_tree_is_stored_whole("targz_internal", true);
}

#[test]
fn deep_tree_is_stored_whole_by_tar_external() {
    deep_tree_is_stored_whole("targz", false);
}

/// A symbolic link loop as the root or on the way to an include is reported as the loop it
/// is, not as a missing file.
fn symbolic_link_loops_are_named(archiver: &str) {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.config_dir().join("storage")).unwrap();
    let src = sb.src_dir();
    fs::write(src.join("f"), "f").unwrap();
    std::os::unix::fs::symlink("loop2", src.join("loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", src.join("loop2")).unwrap();

    let spec = Spec::new(&src, &["f", "loop1/x"], &sb.dest_dir()).archiver(archiver);
    sb.write_spec("inc", &spec);
    let out = sb.aa().arg("inc").run();
    out.assert_no_panic();
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(
        out.error_lines(),
        ["aa: Warning! [inc] Cannot access \"loop1/x\". Too many levels of symbolic links."],
        "{archiver}: {out}"
    );
    assert_eq!(
        gnu_list(&sb.dest_dir().join("inc.tar.gz")),
        [b"f".to_vec()].into()
    );

    let root = src.join("loop1");
    sb.write_spec(
        "root",
        &Spec::new(&root, &["."], &sb.dest_dir()).archiver(archiver),
    );
    let out = sb.aa().arg("root").run();
    out.assert_clean_failure();
    assert_eq!(
        out.error_lines(),
        [format!(
            "aa: Error! [root] Unable to create the backup: Directory \"{}\" configured in the \
             \"path\" option cannot be accessed: Too many levels of symbolic links.",
            root.display()
        )],
        "{archiver}: {out}"
    );
}

#[test]
fn symbolic_link_loops_are_named_for_tar_internal() {
    symbolic_link_loops_are_named("targz_internal");
}

#[test]
fn symbolic_link_loops_are_named_for_tar_external() {
    symbolic_link_loops_are_named("targz");
}

//! Self-tests of the test helpers: the fixture survives a GNU tar round trip (so any difference
//! found after an `aa` backup is the backup's fault), and the tree comparison really notices each
//! kind of damage (so a passing comparison means something).

use std::fs;
use std::process::Command;

use aa_tests::*;

fn gnu_tar_create(args: &[&str], archive: &std::path::Path, dir: &std::path::Path) {
    let status = Command::new("tar")
        .args(args)
        .arg("-cf")
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .arg("tree")
        .status()
        .expect("run tar");
    assert!(status.success());
}

#[test]
fn full_fixture_survives_a_gnu_tar_round_trip() {
    let sb = Sandbox::new();
    let tree = full_fixture(&sb.src_dir());
    let expected = record_tree(&tree);

    // Sanity of the fixture itself: every kind of object is there.
    let kinds: Vec<Kind> = expected.values().map(|e| e.kind).collect();
    for kind in [Kind::File, Kind::Dir, Kind::Symlink, Kind::Fifo] {
        assert!(kinds.contains(&kind), "fixture lacks a {kind:?}");
    }
    assert!(expected.values().any(|e| e.hardlink_group.is_some()));
    assert!(expected.values().any(|e| e.mtime_nanos == 999_999_999));
    assert!(expected.keys().any(|k| k.len() > 255));
    assert!(expected.keys().any(|k| std::str::from_utf8(k).is_err()));

    // GNU format keeps whole seconds.
    let archive = sb.path().join("gnu.tar");
    gnu_tar_create(&[], &archive, &sb.src_dir());
    let out = sb.mkdir("out-gnu");
    gnu_extract(&archive, &out);
    assert_same_tree(
        &expected,
        &record_tree(&out.join("tree")),
        Compare::default(),
        "GNU format",
    );

    // The pax format keeps nanoseconds too.
    let archive = sb.path().join("pax.tar.gz");
    gnu_tar_create(&["-z", "--format=posix"], &archive, &sb.src_dir());
    assert_eq!(detect_format(&archive), "gz");
    let out = sb.mkdir("out-pax");
    gnu_extract(&archive, &out);
    assert_same_tree(
        &expected,
        &record_tree(&out.join("tree")),
        Compare { mtime_nanos: true },
        "pax format",
    );
}

#[test]
fn comparison_reports_every_kind_of_damage() {
    let sb = Sandbox::new();
    let tree = full_fixture(&sb.src_dir());
    let expected = record_tree(&tree);
    assert!(tree_diff(&expected, &record_tree(&tree), Compare::default()).is_empty());

    chmod(&tree.join("private.txt"), 0o644);
    set_mtime(&tree.join("empty"), (1_000, 0));
    fs::write(tree.join("file.txt"), b"hello World\n").unwrap(); // same size
    fs::remove_file(tree.join("link-rel")).unwrap();
    std::os::unix::fs::symlink("empty", tree.join("link-rel")).unwrap();
    fs::remove_file(tree.join("hard2")).unwrap();
    fs::copy(tree.join("hard1"), tree.join("hard2")).unwrap();
    fs::remove_file(tree.join("fifo")).unwrap();
    fs::write(tree.join("fifo"), b"").unwrap();
    fs::remove_file(tree.join(bpath(b"caf\xe9"))).unwrap();
    fs::write(tree.join("extra"), b"").unwrap();

    let diff = tree_diff(&expected, &record_tree(&tree), Compare::default()).join("\n");
    for needle in [
        "private.txt: mode expected 0640, got 0644",
        "empty: mtime",
        "file.txt: content hash",
        "link-rel: link target expected Some(\"file.txt\"), got Some(\"empty\")",
        "hard1: hard link group",
        "hard2: hard link group",
        "fifo: kind expected Fifo, got File",
        "missing:    caf\\xe9",
        "unexpected: extra",
    ] {
        assert!(diff.contains(needle), "{needle:?} not reported in:\n{diff}");
    }
    // Several of the changes above also touched the root directory's mtime.
    assert!(diff.contains("different:  .: mtime"), "{diff}");
}

#[test]
fn nanosecond_differences_count_only_when_asked() {
    let sb = Sandbox::new();
    let tree = simple_fixture(&sb.src_dir());
    let expected = record_tree(&tree);
    let e = &expected[b"file.txt".as_slice()];
    set_mtime(&tree.join("file.txt"), (e.mtime_secs, 0));
    let actual = record_tree(&tree);
    assert!(tree_diff(&expected, &actual, Compare::default()).is_empty());
    assert_eq!(
        tree_diff(&expected, &actual, Compare { mtime_nanos: true }).len(),
        1
    );
}

#[test]
fn without_removes_a_subtree_only() {
    let sb = Sandbox::new();
    let snap = record_tree(&simple_fixture(&sb.src_dir()));
    let cut = without(&snap, b"a");
    assert!(!cut.contains_key(b"a".as_slice()));
    assert!(!cut.contains_key(b"a/b/deep.txt".as_slice()));
    assert_eq!(cut.len(), snap.len() - 3);
}

#[test]
fn spec_renders_as_an_ini_file() {
    let spec = Spec::new("/src".as_ref(), &["tree", "\"x y\""], "/dest".as_ref())
        .archiver("tar@Hello")
        .exclude(&["tree/a"]);
    assert_eq!(
        spec.render(),
        "[Content]\npath = /src\ninclude-files = tree \"x y\"\nexclude-files = tree/a\n\n\
         [Archive]\narchiver = tar@Hello\ndest-dir = /dest\n"
    );
}

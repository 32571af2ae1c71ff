//! `aa --dry-run` tells the truth and writes nothing: for each built-in provider and each
//! backup type, the members a dry run lists for level 0, for the next incremental level and
//! for a level given with `-l` are exactly those the real run then stores (as GNU tar lists the
//! backup it wrote), and the dry run leaves the destination and the state (snapshots, realm)
//! as they were.

use std::collections::BTreeSet;
use std::fs;

use aa_tests::chains::{dry_run_members, Builtin, ChainSandbox, TYPES};
use aa_tests::{
    gnu_list, noise, record_tree, show, tree_diff, without, Compare, TreeBuilder, TreeRecord,
};

/// The destination and the user configuration directory (without the lock directory, which
/// holds only lock files), to compare before and after a dry run.
fn state(c: &ChainSandbox) -> (TreeRecord, TreeRecord) {
    (
        record_tree(&c.sb.dest_dir()),
        without(&record_tree(&c.sb.config_dir()), b"locks"),
    )
}

fn shown(members: &BTreeSet<Vec<u8>>) -> Vec<String> {
    members.iter().map(|m| show(m)).collect()
}

/// Dry-runs `args`, then runs them for real, and checks the lists agree and the dry run wrote
/// nothing. `level` is the level the run makes.
fn dry_run_then_real(c: &ChainSandbox, args: &[&str], level: u32, context: &str) {
    let before = state(c);
    let mut dry: Vec<&str> = vec!["--dry-run"];
    dry.extend_from_slice(args);
    dry.push(&c.name);
    let out = c.aa(&dry);
    out.assert_success();
    let listed = dry_run_members(&out);
    assert!(!listed.is_empty(), "{context}: nothing listed:\n{out}");
    let file = c.backup_file(level, None);
    let file_name = file.file_name().unwrap().to_str().unwrap();
    assert!(
        out.stdout.contains(file_name),
        "{context}: the dry run names the backup file {file_name}:\n{out}"
    );
    let after = state(c);
    let changed: Vec<String> = tree_diff(&before.0, &after.0, Compare { mtime_nanos: true })
        .into_iter()
        .map(|d| format!("dest: {d}"))
        .chain(
            tree_diff(&before.1, &after.1, Compare { mtime_nanos: true })
                .into_iter()
                .map(|d| format!("config: {d}")),
        )
        .collect();
    assert!(
        changed.is_empty(),
        "{context}: the dry run changed the destination or the state:\n  {}\n{out}",
        changed.join("\n  ")
    );

    c.backup(args);
    let stored = gnu_list(&file);
    assert_eq!(
        shown(&listed),
        shown(&stored),
        "{context}: dry run (left) and real run (right) differ:\n{out}"
    );
}

fn dry_run_lists_what_the_real_run_stores(provider: Builtin) {
    for (base, ext) in TYPES {
        let c = ChainSandbox::new("p", &provider.archiver(base), ext);
        let mut t = TreeBuilder::new(c.src());
        t.file("keep.txt", b"kept\n", 0o644)
            .dir("d", 0o755)
            .dir("d/e", 0o755)
            .file("d/e/deep.txt", b"deep\n", 0o644)
            .file("d/big.bin", &noise(20_000, 3), 0o644)
            .file("gone.txt", b"deleted at level 1\n", 0o644)
            .file("h1", b"two names\n", 0o644)
            .hard_link("h2", "h1")
            .symlink("link", "keep.txt");
        t.finish();
        dry_run_then_real(&c, &[], 0, &format!("{ext} level 0"));

        fs::remove_file(c.src().join("gone.txt")).unwrap();
        c.write("d/e/deep.txt", b"changed at level 1\n");
        c.write("added.txt", b"added at level 1\n");
        dry_run_then_real(&c, &[], 1, &format!("{ext} level 1"));

        c.write("d/level2.txt", b"level 2\n");
        c.backup(&[]);
        c.write("keep.txt", b"changed after level 2\n");
        dry_run_then_real(&c, &["-l", "1"], 1, &format!("{ext} -l 1 after level 2"));
    }
}

#[test]
fn tar_internal_dry_run_lists_what_the_real_run_stores() {
    dry_run_lists_what_the_real_run_stores(Builtin::Internal);
}

#[test]
fn tar_external_dry_run_lists_what_the_real_run_stores() {
    dry_run_lists_what_the_real_run_stores(Builtin::External);
}

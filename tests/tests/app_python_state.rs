//! A user moving from the Python `aa` 2.0.6 keeps their restarting incremental chains: the
//! storage realm and snapshots it wrote (committed under
//! `fixtures/python-aa-2.0.6-restarting`, see its `make.sh`) are read, listed and continued by
//! our `aa`, which writes the realm back in the same format.

mod app_support;

use std::fs;

use aa_tests::*;
use app_support::*;

const FIXTURE: &str = "tests/fixtures/python-aa-2.0.6-restarting";

/// A sandbox holding the Python state, the source rebuilt from the Python backups, and the
/// spec the fixture was made with.
fn python_state() -> Sandbox {
    let sb = Sandbox::new();
    let fixture = workspace_dir().join(FIXTURE);
    copy_dir(&fixture.join("config"), &sb.config_dir());
    copy_dir(&fixture.join("dest"), &sb.dest_dir());
    let chain: Vec<_> = ["rchain.tar.gz", "rchain.1.tar.gz", "rchain.2.tar.gz"]
        .iter()
        .map(|n| sb.dest_dir().join(n))
        .collect();
    restore(&chain, &sb.src_dir());
    assert_eq!(read(&sb.src_dir().join("a.txt")), "two\n");
    assert_eq!(read(&sb.src_dir().join("dir/c.txt")), "three\n");
    sb.write_spec_text(
        "rchain",
        &format!(
            "[Content]\npath = {}\ninclude-files = a.txt dir\nexclude-files =\n[Archive]\n\
             dest-dir = {}\narchiver = targz\nincremental = yes\nrestarting = yes\n\
             restart-after-level = 2\n",
            sb.src_dir().display(),
            sb.dest_dir().display()
        ),
    );
    sb
}

fn fixture_realm_var(var: &str) -> String {
    let text = read(
        &workspace_dir()
            .join(FIXTURE)
            .join("config/storage/rchain.realm"),
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{var} = ")).map(str::to_string))
        .unwrap()
}

#[test]
fn the_python_realm_is_listed() {
    let sb = python_state();
    let out = sb.aa().args(["--list", "-v"]).run();
    out.assert_success();
    assert!(
        out.stdout
            .contains("Current backup level/next/max.: 2/1/2\n"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("Upcoming restart reason: Maximal backup level reached.\n"),
        "{out}"
    );
    assert!(out.stdout.contains("Restart count/max.: 0/-\n"), "{out}");
}

#[test]
fn the_python_chain_restarts_and_the_realm_is_updated_in_its_format() {
    let sb = python_state();
    fs::write(sb.src_dir().join("a.txt"), "four\n").unwrap();
    set_mtime(&sb.src_dir().join("a.txt"), (4_000_000_000, 0));

    let out = sb.aa().arg("rchain").run();
    out.assert_no_panic();
    assert_eq!(out.code(), Some(1), "a restart is a warning:\n{out}");
    assert_eq!(
        out.error_lines(),
        ["aa: Warning! [rchain] Maximal backup level reached. Restarting to level 1."]
    );

    // Level 0 and its snapshot are the original's, untouched; level 1 is new; level 2's
    // snapshot is gone (its backup file stays, as remove-obsolete-backups is off).
    let fixture = workspace_dir().join(FIXTURE);
    assert_eq!(
        fs::read(sb.config_dir().join("snapshots/rchain.snar")).unwrap(),
        fs::read(fixture.join("config/snapshots/rchain.snar")).unwrap()
    );
    assert_eq!(snapshots(&sb), ["rchain.1.snar", "rchain.snar"]);
    assert_eq!(
        dest_files(&sb),
        ["rchain.1.tar.gz", "rchain.2.tar.gz", "rchain.tar.gz"]
    );

    let size1 = fs::metadata(sb.dest_dir().join("rchain.1.tar.gz"))
        .unwrap()
        .len();
    let realm = read(&realm_path(&sb, "rchain"));
    let expected = format!(
        "[AutoArchive]\n\
         archiving-last-restart = {}\n\
         archiving-last-full-restart = {}\n\
         archiving-restart-count = 1\n\
         archiving-size-level0 = {}\n\
         archiving-size-level1 = {size1}\n\
         archiving-size-level2 = {}\n\n",
        today(),
        fixture_realm_var("archiving-last-full-restart"),
        fixture_realm_var("archiving-size-level0"),
        fixture_realm_var("archiving-size-level2"),
    );
    assert_eq!(realm, expected);

    let restored = sb.path().join("restored");
    restore(
        &[
            sb.dest_dir().join("rchain.tar.gz"),
            sb.dest_dir().join("rchain.1.tar.gz"),
        ],
        &restored,
    );
    assert_eq!(read(&restored.join("a.txt")), "four\n");
    assert_eq!(read(&restored.join("dir/c.txt")), "three\n");
    assert_eq!(read(&restored.join("dir/b.txt")), "b\n");

    // The next run goes on from level 1 without a restart.
    let out = sb.aa().arg("rchain").run();
    out.assert_success();
    assert_eq!(
        snapshots(&sb),
        ["rchain.1.snar", "rchain.2.snar", "rchain.snar"]
    );
}

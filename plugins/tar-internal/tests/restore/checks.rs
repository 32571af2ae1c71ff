//! The restore's checks: hostile archives change nothing outside the target, damaged ones
//! fail naming the file, `overwrite` and `only` do what they say.

use super::*;

// ---- hostile archives ---------------------------------------------------------------------

/// One ustar header (and data) with a raw name, as no well-behaved writer would make it.
fn member(out: &mut Vec<u8>, name: &[u8], typeflag: u8, link: &[u8], data: &[u8]) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = len - 1);
        h[at..at + len].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, 0o644);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, data.len() as u64);
    octal(&mut h, 136, 12, 1_600_000_000);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

#[test]
fn hostile_archives_change_nothing_outside_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let outside = base.join("outside");
    fs::create_dir_all(&outside).unwrap();
    write(&outside.join("canary"), "canary");
    let target = base.join("target");
    let out = outside.display().to_string();
    let abs_file = format!("{out}/abs-written");
    let escape = "../outside/canary";

    let mut tar = Vec::new();
    member(&mut tar, b"ok.txt", b'0', b"", b"fine");
    member(&mut tar, b"../outside/dotdot", b'0', b"", b"x");
    member(&mut tar, b"a/../../outside/dotdot2", b'0', b"", b"x");
    member(&mut tar, abs_file.as_bytes(), b'0', b"", b"x");
    // A link to the outside, then members through it.
    member(&mut tar, b"to-outside", b'2', out.as_bytes(), b"");
    member(&mut tar, b"to-outside/through", b'0', b"", b"x");
    member(&mut tar, b"to-outside/canary", b'0', b"", b"overwritten");
    member(&mut tar, b"rel", b'2', b"../outside", b"");
    member(&mut tar, b"rel/canary", b'0', b"", b"overwritten");
    member(&mut tar, b"to-root", b'2', b"/", b"");
    member(&mut tar, b"to-root/tmp/aa-restore-hostile", b'0', b"", b"x");
    member(&mut tar, b"to-outside/newdir/", b'5', b"", b"");
    // Hard links to the outside, by name and through the link.
    member(&mut tar, b"hard1", b'1', escape.as_bytes(), b"");
    member(
        &mut tar,
        b"hard2",
        b'1',
        format!("{out}/canary").as_bytes(),
        b"",
    );
    member(&mut tar, b"hard3", b'1', b"to-outside/canary", b"");
    // A link inside the target is fine to write through.
    member(&mut tar, b"sub/", b'5', b"", b"");
    member(&mut tar, b"inside", b'2', b"sub", b"");
    member(
        &mut tar,
        b"inside/via-link",
        b'0',
        b"",
        b"through an inner link",
    );
    // Replacing the link to the outside by a file writes the file, not through the link.
    member(&mut tar, b"to-outside", b'0', b"", b"now a file");
    tar.extend_from_slice(&[0u8; 1024]);
    let archive = base.join("hostile.tar");
    fs::write(&archive, &tar).unwrap();

    let before = record_tree(&outside);
    let p = provider(base);
    let (totals, events) = restore_with(
        &p,
        chain(&[(&archive, BackupType::Tar)]),
        &target,
        &[],
        false,
    );
    let totals = totals.unwrap();
    let problems = events.problems.borrow().clone();
    assert_eq!(totals.problems, problems.len() as u64);
    assert_eq!(totals.problems, 11, "{problems:#?}");
    for refused in [
        "dotdot",
        "abs-written",
        "through",
        "canary",
        "tmp/aa-restore",
        "newdir",
        "hard1",
        "hard2",
        "hard3",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(refused)),
            "{refused} not reported: {problems:#?}"
        );
    }
    assert_trees(&before, &record_tree(&outside), "outside the target");
    assert!(!Path::new("/tmp/aa-restore-hostile").exists());
    assert_eq!(fs::read(target.join("ok.txt")).unwrap(), b"fine");
    assert_eq!(
        fs::read(target.join("sub/via-link")).unwrap(),
        b"through an inner link"
    );
    assert_eq!(fs::read(target.join("to-outside")).unwrap(), b"now a file");
    assert_eq!(
        fs::read_link(target.join("rel")).unwrap(),
        Path::new("../outside")
    );
}

/// A directory member with a GNU dumpdir, in the GNU format (`D`).
fn dumpdir_member(out: &mut Vec<u8>, name: &[u8], dumpdir: &[u8]) {
    member(out, name, b'D', b"", dumpdir);
}

#[test]
fn deletions_and_renames_of_hostile_dumpdirs_stay_in_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let outside = base.join("outside");
    fs::create_dir_all(outside.join("dir")).unwrap();
    write(&outside.join("dir/canary"), "canary");
    let target = base.join("target");

    // Level 0: a directory and a link in it to the outside directory.
    let mut l0 = Vec::new();
    dumpdir_member(&mut l0, b"d/", b"Dlink\0Yf\0\0");
    member(&mut l0, b"d/f", b'0', b"", b"f");
    member(
        &mut l0,
        b"d/link",
        b'2',
        outside.to_str().unwrap().as_bytes(),
        b"",
    );
    l0.extend_from_slice(&[0u8; 1024]);
    // Level 1: `d/link` as a directory whose dumpdir lists nothing (GNU tar would purge
    // `d/link/*` if it followed the link), renames out of and into the outside, and a deletion
    // through the link.
    let mut l1 = Vec::new();
    dumpdir_member(
        &mut l1,
        b"d/",
        b"Dlink\0Yf\0R../outside/dir\0Tstolen\0Rd/f\0T/tmp/aa-restore-moved\0\0",
    );
    dumpdir_member(&mut l1, b"d/link/", b"\0");
    l1.extend_from_slice(&[0u8; 1024]);
    let (a0, a1) = (base.join("l0.tar"), base.join("l1.tar"));
    fs::write(&a0, &l0).unwrap();
    fs::write(&a1, &l1).unwrap();

    let before = record_tree(&outside);
    let p = provider(base);
    let (totals, events) = restore_with(
        &p,
        chain(&[(&a0, BackupType::Tar), (&a1, BackupType::Tar)]),
        &target,
        &[],
        false,
    );
    totals.unwrap();
    let problems = events.problems.borrow().clone();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_trees(&before, &record_tree(&outside), "outside the target");
    assert!(!Path::new("/tmp/aa-restore-moved").exists());
    // The link was replaced by a directory, in the target.
    assert!(fs::symlink_metadata(target.join("d/link"))
        .unwrap()
        .is_dir());
    assert_eq!(fs::read(target.join("d/f")).unwrap(), b"f");
}

// ---- damage, overwrite, only --------------------------------------------------------------

#[test]
fn a_damaged_or_cut_archive_fails_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (root, dest) = (base.join("src"), base.join("dest"));
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&root).unwrap();
    write(&root.join("big"), &"x".repeat(100_000));
    let p = provider(base);
    for backup_type in archive_type_cases() {
        let def = BackupDefinition::new(&format!("d{backup_type:?}"), backup_type, &dest, &root)
            .include(["."]);
        let archive = p.backup_files(&def, None, false, &NoEvents).unwrap();
        let bytes = fs::read(&archive).unwrap();
        let cut = base.join(format!(
            "cut-{}",
            archive.file_name().unwrap().to_string_lossy()
        ));
        fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let (result, _) = restore_with(
            &p,
            chain(&[(&cut, backup_type)]),
            &base.join(format!("o{backup_type:?}")),
            &[],
            false,
        );
        let e = result.expect_err("a cut archive is an error");
        assert!(
            e.message().contains(&cut.display().to_string()),
            "{backup_type:?}: {e}"
        );
        if backup_type != BackupType::Tar {
            // One flipped byte in the middle: the codec's checks find it.
            let mut flipped = bytes.clone();
            let middle = flipped.len() / 2;
            flipped[middle] ^= 0x55;
            let name = archive.file_name().unwrap().to_string_lossy();
            let bad = base.join(format!("flipped-{name}"));
            fs::write(&bad, &flipped).unwrap();
            let out = base.join(format!("f{backup_type:?}"));
            let (result, _) = restore_with(&p, chain(&[(&bad, backup_type)]), &out, &[], false);
            let e = result.expect_err("a damaged archive is an error");
            assert!(
                e.message().contains(&bad.display().to_string()),
                "{backup_type:?}: {e}"
            );
        }
    }
    let missing = base.join("missing.tar");
    let (result, _) = restore_with(
        &p,
        chain(&[(&missing, BackupType::Tar)]),
        &base.join("om"),
        &[],
        false,
    );
    assert!(result.unwrap_err().message().contains("missing.tar"));
    let garbage = base.join("garbage.tar");
    fs::write(&garbage, "not a tar archive at all ".repeat(100)).unwrap();
    let (result, _) = restore_with(
        &p,
        chain(&[(&garbage, BackupType::Tar)]),
        &base.join("og"),
        &[],
        false,
    );
    assert!(result.unwrap_err().message().contains("garbage.tar"));
}

#[test]
fn overwrite_replaces_files_and_only_empty_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let mut tar = Vec::new();
    member(&mut tar, b"file", b'0', b"", b"new");
    member(&mut tar, b"was-empty-dir", b'0', b"", b"new");
    member(&mut tar, b"was-full-dir", b'0', b"", b"new");
    member(&mut tar, b"link", b'2', b"file", b"");
    tar.extend_from_slice(&[0u8; 1024]);
    let archive = base.join("a.tar");
    fs::write(&archive, &tar).unwrap();
    let target = base.join("target");
    fs::create_dir_all(target.join("was-empty-dir")).unwrap();
    fs::create_dir_all(target.join("was-full-dir")).unwrap();
    write(&target.join("was-full-dir/keep"), "keep");
    write(&target.join("file"), "old");
    write(&target.join("link"), "old");
    write(&target.join("unrelated"), "stays");
    let (totals, events) = restore_with(
        &provider(base),
        chain(&[(&archive, BackupType::Tar)]),
        &target,
        &[],
        true,
    );
    let totals = totals.unwrap();
    assert_eq!(totals.problems, 1, "{:?}", events.problems.borrow());
    assert!(events.problems.borrow()[0].contains("was-full-dir"));
    assert_eq!(fs::read(target.join("file")).unwrap(), b"new");
    assert_eq!(fs::read(target.join("was-empty-dir")).unwrap(), b"new");
    assert_eq!(fs::read(target.join("was-full-dir/keep")).unwrap(), b"keep");
    assert_eq!(
        fs::read_link(target.join("link")).unwrap(),
        Path::new("file")
    );
    assert_eq!(fs::read(target.join("unrelated")).unwrap(), b"stays");
}

#[test]
fn only_restores_the_given_paths_and_deletes_only_within_them() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (root, dest) = (base.join("src"), base.join("dest"));
    fs::create_dir_all(&dest).unwrap();
    make_tree(&root);
    let p = provider(base);
    let def = BackupDefinition::new("o", BackupType::TarZst, &dest, &root)
        .include(["data", "loose", "topdir"]);
    let mut archives = vec![p
        .backup_files_incrementally(&def, None, None, false, &NoEvents)
        .unwrap()];
    for level in 1..=2 {
        change_tree(&root, level);
        archives.push(
            p.backup_files_incrementally(&def, None, None, false, &NoEvents)
                .unwrap(),
        );
    }
    let typed: Vec<(&Path, BackupType)> = archives
        .iter()
        .map(|a| (a.as_path(), BackupType::TarZst))
        .collect();
    let out = base.join("out");
    let only = ["data/a", "data/fresh/deeper/one", "data/q", "topdir"];
    let (totals, events) = restore_with(&p, chain(&typed), &out, &only, false);
    totals.unwrap();
    assert!(
        events.problems.borrow().is_empty(),
        "{:?}",
        events.problems.borrow()
    );
    let expected: TreeRecord = tree(&root)
        .into_iter()
        .filter(|(k, _)| {
            only.iter().any(|o| {
                let o = o.as_bytes();
                k == o || (k.starts_with(o) && k.get(o.len()) == Some(&b'/'))
            })
        })
        .collect();
    let got: TreeRecord = tree(&out)
        .into_iter()
        .filter(|(_, e)| e.kind != aa_tests::Kind::Dir || !expected.is_empty())
        .collect();
    // Directories leading to the selection are made, with no attributes to compare.
    let got: TreeRecord = got
        .into_iter()
        .filter(|(k, _)| {
            !["data", "data/fresh", "data/fresh/deeper"]
                .contains(&String::from_utf8_lossy(k).as_ref())
        })
        .collect();
    // Hard link groups name members outside the selection: compare them apart.
    let strip = |r: TreeRecord| -> TreeRecord {
        r.into_iter()
            .map(|(k, mut e)| {
                e.hardlink_group = None;
                (k, e)
            })
            .collect()
    };
    assert_trees(&strip(expected), &strip(got), "only");
    assert!(!out.join("data/q").exists() && !out.join("loose").exists());
}

#[test]
fn only_follows_renames_back_to_the_level_that_stores_the_content() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (root, dest) = (base.join("src"), base.join("dest"));
    fs::create_dir_all(root.join("d/sub/deeper")).unwrap();
    fs::create_dir_all(root.join("d/other")).unwrap();
    fs::create_dir_all(&dest).unwrap();
    write(&root.join("d/sub/f"), "unchanged since level 0");
    write(&root.join("d/sub/deeper/g"), "g");
    write(&root.join("d/other/o"), "o");
    let p = provider(base);
    let def = BackupDefinition::new("ren", BackupType::TarGz, &dest, &root).include(["d"]);
    let mut archives = vec![p
        .backup_files_incrementally(&def, None, None, false, &NoEvents)
        .unwrap()];
    fs::rename(root.join("d/sub"), root.join("d/moved")).unwrap();
    archives.push(
        p.backup_files_incrementally(&def, None, None, false, &NoEvents)
            .unwrap(),
    );
    fs::rename(root.join("d/moved"), root.join("d/again")).unwrap();
    fs::rename(root.join("d/other"), root.join("d/gone-out")).unwrap();
    archives.push(
        p.backup_files_incrementally(&def, None, None, false, &NoEvents)
            .unwrap(),
    );
    let typed: Vec<(&Path, BackupType)> = archives
        .iter()
        .map(|a| (a.as_path(), BackupType::TarGz))
        .collect();
    for (only, present, absent) in [
        (
            &["d/again/f"][..],
            &["d/again/f"][..],
            &["d/sub", "d/moved", "d/again/deeper"][..],
        ),
        (
            &["d/again"],
            &["d/again/f", "d/again/deeper/g"],
            &["d/sub", "d/moved", "d/other"],
        ),
        (&["d/other"], &[], &["d/other", "d/gone-out", "d/sub"]),
    ] {
        let out = base.join(format!("out-{}", only[0].replace('/', "-")));
        let (totals, events) = restore_with(&p, chain(&typed), &out, only, false);
        totals.unwrap();
        assert!(
            events.problems.borrow().is_empty(),
            "{only:?}: {:?}",
            events.problems.borrow()
        );
        for path in present {
            assert_eq!(
                fs::read(out.join(path)).ok(),
                fs::read(root.join(path)).ok(),
                "{only:?}: {path}"
            );
            assert!(out.join(path).exists(), "{only:?}: {path}");
        }
        for path in absent {
            assert!(
                !out.join(path).exists(),
                "{only:?}: {path} should not be there"
            );
        }
    }
}

#[test]
fn mutated_archives_fail_or_restore_but_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let src = base.join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    write(&src.join("d/f"), "content");
    sparse_file(&src.join("sparse"), 1 << 20, &[4096]);
    symlink("d/f", src.join("l")).unwrap();
    let mut archives = Vec::new();
    for format in ["--format=gnu", "--format=posix"] {
        let archive = base.join(format!("{format}.tar"));
        let o = Command::new("tar")
            .args([format, "--sparse", "-G"])
            .arg("-cf")
            .arg(&archive)
            .arg("-C")
            .arg(&src)
            .arg(".")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        archives.push(fs::read(&archive).unwrap());
    }
    let p = provider(base);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        let mut bytes = archives[round % 2].clone();
        // Headers and pax records are in the first blocks; hit them most.
        let span = if round % 3 == 0 { bytes.len() } else { 4096 };
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % span;
            bytes[at] = next() as u8;
        }
        let mutated = base.join("mutated.tar");
        fs::write(&mutated, &bytes).unwrap();
        let out = base.join(format!("m{round}"));
        // Either outcome is fine; a panic fails the test.
        let _ = restore_with(&p, chain(&[(&mutated, BackupType::Tar)]), &out, &[], false);
        fs::remove_dir_all(&out).ok();
    }
}

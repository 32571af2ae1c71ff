//! `aa --verify` finds damage: for each built-in provider and each backup type, an intact chain
//! (levels 0..2) verifies with one `ok` line per backup; one byte flipped in the middle of a
//! compressed backup is found (gzip CRC32, bzip2 block CRCs, xz and zstd checks) and named; a
//! missing level is found by verify and refused by restore, naming its file; `--compare` finds
//! a change in the source. (A plain `tar` backup has no checksum over its content, so a flipped
//! content byte there is found by no one; its chain checks still run.)

use std::fs;
use std::path::Path;

use aa_tests::chains::{Builtin, ChainSandbox, TYPES};
use aa_tests::{noise, AaOutput, TreeBuilder};

fn make_chain(c: &ChainSandbox) {
    let mut t = TreeBuilder::new(c.src());
    t.file("keep.txt", b"kept\n", 0o644)
        .dir("d", 0o755)
        .file("d/big.bin", &noise(120_000, 5), 0o644)
        .file("d/small.txt", b"small\n", 0o644);
    t.finish();
    c.backup(&[]);
    c.write("d/level1.txt", b"added at level 1\n");
    c.backup(&[]);
    c.write("level2.bin", &noise(30_000, 9));
    c.backup(&[]);
}

/// The line `verify` prints for `file`.
fn line_for<'a>(out: &'a AaOutput, file: &Path) -> &'a str {
    let name = file.file_name().unwrap().to_str().unwrap();
    out.stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no line for {name}:\n{out}"))
}

fn verify(c: &ChainSandbox, args: &[&str]) -> AaOutput {
    let mut all = vec!["--verify", c.name.as_str()];
    all.extend_from_slice(args);
    c.aa(&all)
}

fn verify_finds_damage(provider: Builtin) {
    for (base, ext) in TYPES {
        let c = ChainSandbox::new("v", &provider.archiver(base), ext);
        make_chain(&c);
        let files: Vec<_> = (0..=2).map(|l| c.backup_file(l, None)).collect();

        let out = verify(&c, &[]);
        out.assert_success();
        for file in &files {
            assert!(
                line_for(&out, file).contains(": ok, "),
                "{ext}: intact chain:\n{out}"
            );
        }

        if base != "tar" {
            // A byte in the middle of level 0, inside the compressed noise.
            let original = fs::read(&files[0]).unwrap();
            let mut damaged = original.clone();
            let middle = damaged.len() / 2;
            damaged[middle] ^= 0x01;
            fs::write(&files[0], &damaged).unwrap();
            let out = verify(&c, &[]);
            assert_eq!(out.code(), Some(1), "{ext}: flipped byte not found:\n{out}");
            assert!(
                line_for(&out, &files[0]).contains(": FAILED: "),
                "{ext}:\n{out}"
            );
            for file in &files[1..] {
                assert!(line_for(&out, file).contains(": ok, "), "{ext}:\n{out}");
            }
            fs::write(&files[0], &original).unwrap();
            verify(&c, &[]).assert_success();
        }

        // A missing level: verify names it, restore refuses the chain naming the file.
        let aside = c.sb.path().join("aside");
        fs::rename(&files[1], &aside).unwrap();
        let out = verify(&c, &[]);
        assert_eq!(
            out.code(),
            Some(1),
            "{ext}: missing level not found:\n{out}"
        );
        assert!(
            line_for(&out, &files[1]).contains(": FAILED: missing"),
            "{ext}:\n{out}"
        );
        let target = c.target("incomplete");
        let out = c.restore(&target, &[]);
        out.assert_clean_failure();
        let name = files[1].file_name().unwrap().to_str().unwrap();
        assert!(
            out.error_lines().iter().any(|l| l.contains(name)),
            "{ext}: the error names the missing file:\n{out}"
        );
        assert!(
            !target.exists() || fs::read_dir(&target).unwrap().next().is_none(),
            "{ext}: nothing restored from an incomplete chain"
        );
        fs::rename(&aside, &files[1]).unwrap();

        if base == "targz" {
            verify(&c, &["--compare"]).assert_success();
            c.write("d/small.txt", b"changed since the last backup\n");
            let out = verify(&c, &["--compare"]);
            assert_eq!(out.code(), Some(1), "{ext}: --compare:\n{out}");
            assert!(out.all_output().contains("d/small.txt"), "{out}");
        }
    }
}

#[test]
fn tar_internal_verify_finds_a_flipped_byte_and_a_missing_level() {
    verify_finds_damage(Builtin::Internal);
}

#[test]
fn tar_external_verify_finds_a_flipped_byte_and_a_missing_level() {
    verify_finds_damage(Builtin::External);
}

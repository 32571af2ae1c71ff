//! Replaying saved fuzz inputs on stable, shared by the replay tests of both entry crates
//! (`fuzz/entries`, `fuzz/entries-tar-internal`), which cannot be one crate: the two plugin
//! crates export the same plugin symbols and cannot be linked into one binary.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

/// Every fuzz target of both crates, so that each can check that no corpus directory is
/// orphaned.
pub const ALL_TARGETS: &[&str] = &[
    "ini",
    "spec",
    "snapshot",
    "dumpdir",
    "tar_stderr",
    "elf",
    "restore_reader",
    "verify_structure",
];

/// `fuzz/` (corpora in `corpus/<target>/`, past crashes in `regressions/<target>/`).
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the entry crates are in fuzz/")
        .to_path_buf()
}

/// The files of `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = read
        .map(|e| e.expect("reading a corpus directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every input of `kind` (`corpus` or `regressions`) of `targets` through its entry;
/// returns how many ran and the inputs that panicked, with the message.
pub fn replay(targets: &[(&str, fn(&[u8]))], kind: &str) -> (usize, Vec<String>) {
    let mut ran = 0;
    let mut failures = Vec::new();
    for (target, entry) in targets {
        for file in inputs(&fuzz_dir().join(kind).join(target)) {
            let data = fs::read(&file).expect("reading a fuzz input");
            ran += 1;
            if let Err(panic) = panic::catch_unwind(|| entry(&data)) {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                failures.push(format!("{}: {message}", file.display()));
            }
        }
    }
    (ran, failures)
}

/// Each of `targets` has seeds and a libFuzzer wrapper, and every corpus or regressions
/// directory belongs to a target, so a renamed target cannot silently stop being replayed.
pub fn check_layout(targets: &[(&str, fn(&[u8]))]) {
    for (target, _) in targets {
        assert!(
            ALL_TARGETS.contains(target),
            "{target} missing from ALL_TARGETS"
        );
        let seeds = inputs(&fuzz_dir().join("corpus").join(target));
        assert!(!seeds.is_empty(), "fuzz/corpus/{target}/ has no seeds");
        let wrapper = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
        assert!(wrapper.is_file(), "{} is missing", wrapper.display());
    }
    for kind in ["corpus", "regressions"] {
        let Ok(dirs) = fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for dir in dirs {
            let name = dir.expect("reading fuzz/").file_name();
            let name = name.to_string_lossy();
            assert!(
                ALL_TARGETS.contains(&name.as_ref()),
                "fuzz/{kind}/{name} is no target"
            );
        }
    }
}

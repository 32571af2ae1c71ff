//! The suite against the providers of this repository: the two built-in ones and the example
//! third-party plugin. Each must pass every check that applies to what it declares.

mod common;

use std::path::Path;

use aa_conformance::check_names;
use common::{builtin_plugin, run_suite};

/// Runs the suite on `library`, which must declare (at least) the checks named in `expected`.
fn assert_conforms(library: &Path, expected: &[&str]) {
    let names = check_names(library).unwrap_or_else(|e| panic!("{e}"));
    for check in expected {
        assert!(
            names.iter().any(|n| n == check),
            "{check} is not among the checks run for {}:\n{}",
            library.display(),
            names.join("\n")
        );
    }
    let (report, passed, failed) = run_suite(library);
    assert_eq!(failed, 0, "conformance failures:\n{report}");
    assert_eq!(
        passed,
        names.len(),
        "every check should have run:\n{report}"
    );
}

#[test]
fn tar_internal_conforms() {
    assert_conforms(
        &builtin_plugin("aa_plugin_tar_internal"),
        &[
            "TarInternal/TarZst/backup-extracts-identically",
            "TarInternal/TarXz/compression-strengths-0-and-9",
            "TarInternal/Tar/compression-strength-refused",
            "TarInternal/Tar/incremental-chain-restores",
            "TarInternal/TarGz/incremental-levels-and-redo",
            "TarInternal/TarZst/incremental-failed-run-keeps-state",
            "TarInternal/TarXz/incremental-stored-ids-and-purge",
        ],
    );
}

#[test]
fn tar_external_conforms() {
    assert_conforms(
        &builtin_plugin("aa_plugin_tar_external"),
        &[
            "TarExternal/Tar/backup-extracts-identically",
            "TarExternal/Tar/incremental-chain-restores",
            "TarExternal/TarZst/incremental-failed-run-keeps-state",
            "TarExternal/TarBz2/incremental-stored-ids-and-purge",
        ],
    );
}

#[test]
fn hello_example_conforms() {
    assert_conforms(
        &common::build_hello_provider(),
        &[
            "Hello/Tar/backup-extracts-identically",
            "Hello/Tar/failed-run-keeps-old-backup",
            "Hello/TarGz/undeclared-type-rejected",
            "Hello/incremental-not-implemented",
        ],
    );
}

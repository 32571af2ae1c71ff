//! Locating the provider libraries the tests run the suite against.

#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;

use aa_conformance::{run_library, Options, Verdict};

/// A plugin built by `cargo build --workspace`: `<target>/debug/lib<NAME>.so`. The plugins are
/// not dependencies of this crate (cdylibs cannot be), so they must be built beforehand.
pub fn built_plugin(lib_name: &str) -> PathBuf {
    let lib = aa_tests::target_dir()
        .join("debug")
        .join(format!("lib{lib_name}.so"));
    assert!(
        lib.is_file(),
        "{} not found; build the plugins first: cargo build --workspace",
        lib.display()
    );
    lib
}

/// Runs the whole suite on `library` and returns the printed report and the failure count.
pub fn run_suite(library: &std::path::Path) -> (String, usize, usize) {
    let mut report = Vec::new();
    let summary = run_library(library, &Options::default(), &mut |outcome| {
        report.push(outcome.to_string());
        if let Verdict::Failed(failure) = &outcome.verdict {
            report.extend(failure.details.iter().map(|d| format!("    | {d}")));
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    report.push(summary.to_string());
    (report.join("\n"), summary.passed, summary.failed)
}

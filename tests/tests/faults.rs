//! Faults injected, nothing lost: EIO and ENOSPC on the writes, syncs and renames of the
//! backup, the snapshots and the realm, EIO on reading the source, EINTR on every slow call
//! (see `aa_tests::faults` for what each case asserts).
//!
//! `make test` runs one fault of each kind with both providers and two types; `make faults`
//! runs the whole matrix (every fault, every type of both providers) and prints its table.

use aa_tests::faults::{all_faults, representative_faults, run_matrix, table, ARCHIVERS};

fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[track_caller]
fn assert_all_lost_nothing(rows: &[aa_tests::faults::Row]) {
    let text = table(rows);
    println!("{text}");
    let failed: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let e = r.outcome.as_ref().err()?;
            Some(format!(
                "{} / {} / {}: {e}",
                r.fault, r.archiver, r.scenario
            ))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{text}\n{} case(s) lost something:\n\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}

/// Every kind of fault, with TarExternal and TarInternal, uncompressed and gzip.
#[test]
fn representative_faults_lose_nothing() {
    let archivers: Vec<_> = ARCHIVERS
        .iter()
        .copied()
        .filter(|(a, _)| ["tar", "targz_internal"].contains(a))
        .collect();
    assert_all_lost_nothing(&run_matrix(&representative_faults(), &archivers, 1));
}

/// The whole matrix (`make faults`).
#[test]
#[ignore = "the full matrix takes minutes; run by `make faults`"]
fn every_fault_loses_nothing() {
    assert_all_lost_nothing(&run_matrix(&all_faults(), &ARCHIVERS, workers()));
}

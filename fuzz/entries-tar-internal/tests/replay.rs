//! Replays every saved fuzz input of this crate's targets through its entry point on
//! stable: the seed corpora (`fuzz/corpus/<target>/`) and every crash found so far
//! (`fuzz/regressions/<target>/`), so that `make test` keeps them fixed without nightly.

#[path = "../../entries/tests/shared/replay.rs"]
mod shared;

use aa_fuzz_entries_tar_internal::TARGETS;

#[test]
fn every_corpus_input_passes() {
    let (ran, failures) = shared::replay(TARGETS, "corpus");
    assert!(
        failures.is_empty(),
        "inputs that crash:\n{}",
        failures.join("\n")
    );
    assert!(ran >= TARGETS.len(), "only {ran} corpus inputs found");
}

#[test]
fn every_past_crash_stays_fixed() {
    let (_, failures) = shared::replay(TARGETS, "regressions");
    assert!(
        failures.is_empty(),
        "inputs that crash:\n{}",
        failures.join("\n")
    );
}

#[test]
fn corpora_match_the_targets() {
    shared::check_layout(TARGETS);
}

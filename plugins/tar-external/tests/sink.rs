//! TarExternal's `backup_to_sink_v1`: GNU tar's stdout streamed into the host's sink passes
//! the scenarios every provider passes (`aa_tests::sink_scenarios`, shared with TarInternal).

use std::path::Path;

use aa_abi::plugin::Plugin;
use aa_plugin_tar_external::{TarExternal, TarExternalProvider};
use aa_tests::sink_scenarios;

fn provider(work: &Path) -> TarExternalProvider {
    TarExternal::create(work).unwrap()
}

#[test]
fn every_type_extracts_to_the_source_tree() {
    sink_scenarios::every_type_extracts_to_the_source_tree(provider);
}

#[test]
fn an_incremental_chain_restores() {
    sink_scenarios::an_incremental_chain_restores(provider);
}

#[test]
fn a_failing_write_changes_nothing() {
    sink_scenarios::a_failing_write_changes_nothing(provider);
}

#[test]
fn a_failing_commit_installs_no_snapshot() {
    sink_scenarios::a_failing_commit_installs_no_snapshot(provider);
}

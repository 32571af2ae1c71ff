//! TarInternal's `backup_to_sink_v1`: the scenarios every provider passes (`sink_scenarios`),
//! and the bytes in the sink being those of the local backup file.

use std::fs;
use std::path::Path;

use aa_abi::capability::BackingUpToSink;
use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupType, NoEvents};
use aa_plugin_tar_internal::{TarInternalPlugin, TarInternalProvider};
use aa_tests::sink_scenarios::{self, Case, FileSink};

fn provider(work: &Path) -> TarInternalProvider {
    TarInternalPlugin::create(work).unwrap()
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

/// The sink gets the local backup file's bytes: TarInternal's archives of an unchanged tree
/// are the same from run to run (plain and gzip, whose chunks do not depend on the threads).
#[test]
fn the_sink_gets_the_bytes_of_the_local_file() {
    for backup_type in [BackupType::Tar, BackupType::TarGz] {
        let case = Case::new(backup_type);
        let p = provider(&case.work);
        let local = p
            .backup_files(&case.definition, None, false, &NoEvents)
            .unwrap();
        let out = case.output("sink");
        let mut sink = FileSink::new(&out);
        p.backup_to_sink(&case.definition, None, None, &mut sink, &NoEvents)
            .unwrap();
        assert!(
            fs::read(&out).unwrap() == fs::read(&local).unwrap(),
            "{backup_type}"
        );
    }
}

//! Each incremental level holds exactly what changed since the previous level started, even a
//! change made right before it starts (the scenario is shared: `aa_tests::exact_increments_scenario`).

use aa_abi::plugin::Plugin;
use aa_abi::BackupType;
use aa_plugin_tar_internal::TarInternalPlugin;

#[test]
fn each_level_holds_exactly_what_changed_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let provider = TarInternalPlugin::create(&tmp.path().join("work")).unwrap();
    aa_tests::exact_increments_scenario(&provider, tmp.path(), BackupType::Tar, 16);
}

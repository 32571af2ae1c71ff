//! `AA_NO_CHECK_DEVICE=1`, the equivalent of GNU tar's `--no-check-device`: when the device
//! number of the backed-up file system changed since the previous level (as after remounting
//! some network or removable file systems), every directory looks replaced and the level
//! stores everything, unless the device check is off (the scenario is shared with
//! `TarExternal`: `aa_tests::no_check_device_scenario`).
//!
//! A test binary of its own: it sets the variable, which is process-wide.

use aa_abi::plugin::Plugin;
use aa_plugin_tar_internal::TarInternalPlugin;

#[test]
fn no_check_device_recognises_directories_by_name_and_inode() {
    let tmp = tempfile::tempdir().unwrap();
    let provider = TarInternalPlugin::create(&tmp.path().join("work")).unwrap();
    aa_tests::no_check_device_scenario(&provider, tmp.path());
}

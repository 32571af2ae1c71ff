//! `AA_NO_CHECK_DEVICE=1` reaches GNU tar as `--no-check-device`, as `TarInternal` honours it
//! (the scenario is shared: `aa_tests::no_check_device_scenario`).
//!
//! A test binary of its own: it sets the variable, which is process-wide.

use aa_abi::plugin::Plugin;
use aa_plugin_tar_external::TarExternal;

#[test]
fn no_check_device_reaches_gnu_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let provider = TarExternal::create(&tmp.path().join("work")).unwrap();
    aa_tests::no_check_device_scenario(&provider, tmp.path());
}

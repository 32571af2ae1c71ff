//! Helpers for the end-to-end tests of the built `aa` binary and its plugins.
//!
//! The tests treat `aa` as a black box: they build a source tree holding every kind of file
//! system object, run the binary in a sandbox (its own config and archive-spec directories, no
//! `AA_PLUGIN_PATH` from the caller), extract the backup with GNU tar and compare the extracted
//! tree with the source, field by field. GNU tar is the reference because a backup is only
//! worth something if the standard tool restores it.
//!
//! The fixtures, the tree record and its diff, and the GNU tar wrappers are the conformance
//! crate's (checking archives against trees is what that published checker does); they are
//! re-exported here so that every test imports from one place. This crate adds what only the
//! end-to-end tests need, one concern a module:
//!
//! * `locate`: the workspace, the target directory, `aa` and its plugins, the example plugin;
//! * `sandbox`: a spec file, a private sandbox and a timed `aa` run in it;
//! * `clock`: the file clock against dump times, and the tests' fixed time zone;
//! * `fixtures`: a tree deeper than `PATH_MAX`, a sorted directory listing;
//! * `rerun`: re-running a test in a child process (as `nobody`, or with `PATH` changed);
//! * `path_fakes`: programs on `PATH` and fake ones put first;
//! * `python_aa`: the reference Python `aa` of the differential tests;
//! * `moto`: a real S3-compatible server (`moto_server`) for the object-store tests;
//! * `cutting_proxy`: a TCP forwarder that goes dead after a number of bytes (a server lost
//!   mid-transfer);
//! * `chains`: incremental chains through `aa`, for the restore, verify and dry-run matrices;
//! * `faults`: the fault injector (`faults/shim.c`) and the cases that must lose nothing;
//! * `abi_builds`: the Hello example built against a copy of an ABI crate (current or frozen);
//! * `increments`, `snapshot_devices`: scenarios every GNU-snapshot provider runs.

mod abi_builds;
pub mod chains;
mod clock;
mod cutting_proxy;
pub mod faults;
mod fixtures;
mod increments;
mod locate;
mod moto;
mod path_fakes;
mod python_aa;
mod rerun;
mod sandbox;
pub mod sink_scenarios;
mod snapshot_devices;

pub use aa_conformance::{
    assert_same_tree, bpath, chmod, compressible_text, detect_format, full_fixture, gnu_extract,
    gnu_list, gnu_restore_incremental, mkfifo, noise, record_tree, set_mtime, show, simple_fixture,
    tree_diff, without, Compare, Entry, Kind, TreeBuilder, TreeRecord,
};
pub use abi_builds::{abi_package_version, replace_once, HelloBuild};
pub use clock::{local_date_days_ago, settle_timestamps, test_time_zone};
pub use cutting_proxy::CuttingProxy;
pub use fixtures::{deep_tree, dir_names};
pub use increments::exact_increments_scenario;
pub use locate::{
    aa_bin, build_cdylib, build_hello_provider, builtin_plugin, target_dir, workspace_dir,
};
pub use moto::{free_port, moto_server_bin, Moto};
pub use path_fakes::{on_path, path_with_gzip_script, path_with_script};
pub use python_aa::{python_aa, under_ci};
pub use rerun::{is_rerun_of, is_root, rerun_test, unprivileged, RunAs, RERUN_VAR};
pub use sandbox::{Aa, AaOutput, Sandbox, Spec};
pub use snapshot_devices::{change_snapshot_devices, no_check_device_scenario};

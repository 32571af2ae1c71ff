//! The built plugin library, loaded as the host loads it, exports `backup_to_sink_v1` with a
//! layout the host accepts, and it works across the boundary (the scenario is shared with
//! TarInternal). It reads the library `cargo build` made (`cargo test` does not rebuild the
//! cdylib).

use aa_tests::sink_scenarios;

#[test]
fn the_library_backs_up_into_a_host_sink_through_the_abi() {
    sink_scenarios::across_the_abi("libaa_plugin_tar_external.so");
}

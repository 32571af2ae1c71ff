//! The entry points of TarInternal's fuzz targets, as `fuzz/entries` has them for the
//! others: a crate of its own because the two plugin crates export the same plugin symbols,
//! so no binary can link both.

/// The targets of this crate, by the name of its corpus directory and cargo-fuzz binary.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("restore_reader", restore_reader),
    ("verify_structure", verify_structure),
];

/// TarInternal's tar reader of restores, on raw tar bytes: every member, its sparse map,
/// data and dumpdir, as a restore reads them. Where verify's structure check also accepts the
/// archive, both must have seen the same number of members: a verified backup restores whole.
pub fn restore_reader(data: &[u8]) {
    let restored = aa_plugin_tar_internal::fuzzing::restore_reader(data);
    if let (Ok(restored), Ok(verified)) = (
        &restored,
        aa_plugin_tar_internal::fuzzing::verify_structure(data),
    ) {
        assert_eq!(
            *restored, verified,
            "restore and verify count different members"
        );
    }
}

/// TarInternal's tar structure check of verifies, on raw tar bytes.
pub fn verify_structure(data: &[u8]) {
    let _ = aa_plugin_tar_internal::fuzzing::verify_structure(data);
}

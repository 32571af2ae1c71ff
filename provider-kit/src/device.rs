//! `AA_NO_CHECK_DEVICE`: whether incremental backups recognise directories by device number.

use std::ffi::OsStr;

use aa_abi::ProviderError;

/// The environment variable that turns off the device number check of incremental backups,
/// for every provider (GNU tar's `--no-check-device`): `1` (or `true`, `yes`) turns it off, `0`
/// (or `false`, `no`, empty) keeps it. On file systems whose device numbers change from one
/// mount to the next (some network, FUSE and removable file systems, LVM snapshots) every
/// directory would otherwise look replaced and each level would store everything. A variable
/// rather than a `.aa` option because the provider API has no per-call options yet.
pub const NO_CHECK_DEVICE_VAR: &str = "AA_NO_CHECK_DEVICE";

/// Whether incremental backups compare device numbers, as [`NO_CHECK_DEVICE_VAR`] says; a
/// value that means neither is an `INVALID_VALUE` error naming the variable.
pub fn check_device_from_env() -> Result<bool, ProviderError> {
    parse_check_device(std::env::var_os(NO_CHECK_DEVICE_VAR).as_deref())
}

/// [`check_device_from_env`] for the value `value` (`None`: not set).
pub fn parse_check_device(value: Option<&OsStr>) -> Result<bool, ProviderError> {
    let Some(value) = value else {
        return Ok(true);
    };
    match value.to_string_lossy().trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(false),
        "" | "0" | "false" | "no" => Ok(true),
        _ => Err(ProviderError::invalid_value(format!(
            "{NO_CHECK_DEVICE_VAR}: invalid value '{}' (expected 1 or 0)",
            value.to_string_lossy()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_check_device_values() {
        let parse = |v: Option<&str>| parse_check_device(v.map(OsStr::new));
        assert!(parse(None).unwrap());
        for off in ["1", "true", "YES", " 1 "] {
            assert!(!parse(Some(off)).unwrap(), "{off}");
        }
        for on in ["", "0", "false", "no"] {
            assert!(parse(Some(on)).unwrap(), "{on}");
        }
        let err = parse(Some("maybe")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "AA_NO_CHECK_DEVICE: invalid value 'maybe' (expected 1 or 0)"
        );
    }
}

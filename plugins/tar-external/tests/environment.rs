//! Behaviour that depends on the process environment (`AA_TAR`, `PATH`). Environment changes
//! are process-wide, so everything runs in this binary's single test, one step after another.

mod common;

use std::env;
use std::fs;

use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupDefinition, BackupType};
use aa_plugin_tar_external::{TarExternal, TAR_OVERRIDE_VAR};

use common::*;

#[test]
fn tar_location_and_compressor_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("f"), vec![b'a'; 100_000]).unwrap();
    let dst = tmp.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let def = BackupDefinition::new("b", BackupType::TarGz, &dst, &root).include(["f"]);

    // No GNU tar where the override points: a clear error and nothing written.
    env::set_var(TAR_OVERRIDE_VAR, "/nonexistent");
    let p = TarExternal::create(&tmp.path().join("work")).unwrap();
    let err = p
        .backup_files(&def, None, false, &Recorder::default())
        .unwrap_err();
    assert_eq!(
        err.message(),
        "GNU tar not found (looked in AA_TAR=/nonexistent: No such file or directory); \
         install GNU tar or use a *_internal archiver"
    );
    assert!(dir_listing(&dst).is_empty());
    env::remove_var(TAR_OVERRIDE_VAR);

    // A good backup to protect.
    let p = TarExternal::create(&tmp.path().join("work")).unwrap();
    let old = p
        .backup_files(&def, Some(4), false, &Recorder::default())
        .unwrap();
    let old_bytes = fs::read(&old).unwrap();

    // The compressor tar starts dies half-way: the run fails, the old backup survives and the
    // partial file is removed.
    let original_path = env::var_os("PATH").unwrap_or_default();
    // Under both names: pigz runs instead of gzip where it is installed.
    let path =
        aa_tests::path_with_gzip_script(&tmp.path().join("bin"), "head -c 10 >/dev/null\nexit 3\n");
    env::set_var("PATH", path);
    for strength in [None, Some(9)] {
        let err = p
            .backup_files(&def, strength, false, &Recorder::default())
            .unwrap_err();
        assert!(err.message().starts_with("GNU tar failed"), "{err}");
        assert_eq!(fs::read(&old).unwrap(), old_bytes);
        assert_eq!(dir_listing(&dst), ["b.tar.gz"]);
    }
    env::set_var("PATH", original_path);
}

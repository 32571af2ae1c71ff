//! The built plugin library, loaded as the host loads it, exports the verify and dry-run
//! capabilities with layouts the host accepts, and they work across the boundary; so does
//! `backup_to_sink_v1` (`sink_scenarios::across_the_abi`). Like the
//! workspace's other tests of built plugins, it reads the library `cargo build` made
//! (`cargo test` does not rebuild the cdylib).

use std::cell::RefCell;
use std::fs;
use std::path::Path;

use aa_abi::capability::{ChainArchive, ItemEvents, DRY_RUN_V1, VERIFY_V1};
use aa_abi::host::PluginLibrary;
use aa_abi::{BackupDefinition, BackupType, NoEvents, PathBytes};
use aa_tests::sink_scenarios;

#[derive(Default)]
struct Items(RefCell<Vec<(String, u64)>>);

impl ItemEvents for Items {
    fn item(&self, name: &Path, size: u64) {
        self.0
            .borrow_mut()
            .push((name.to_string_lossy().into_owned(), size));
    }

    fn problem(&self, name: Option<&Path>, message: &str) {
        panic!("{name:?}: {message}");
    }
}

#[test]
fn the_library_verifies_and_dry_runs_through_the_abi() {
    let lib = aa_tests::target_dir().join("debug/libaa_plugin_tar_internal.so");
    assert!(
        lib.is_file(),
        "{} not found; build first: cargo build -p aa-plugin-tar-internal",
        lib.display()
    );
    let library = PluginLibrary::load(&lib).unwrap_or_else(|e| panic!("{}: {e}", lib.display()));
    let names = library.capabilities().names();
    assert!(
        names.contains(&VERIFY_V1) && names.contains(&DRY_RUN_V1),
        "{names:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let (root, dest) = (tmp.path().join("src"), tmp.path().join("dest"));
    fs::create_dir_all(root.join("d")).unwrap();
    fs::create_dir_all(&dest).unwrap();
    fs::write(root.join("d/f"), "twelve bytes").unwrap();
    let provider = library.create_provider(&tmp.path().join("work")).unwrap();
    let def = BackupDefinition::new("c", BackupType::TarXz, &dest, &root).include(["d"]);

    let listed = Items::default();
    let totals = provider.dry_run(&def, Some(0), &listed).unwrap().unwrap();
    assert_eq!(totals.items, 2);
    assert_eq!(totals.bytes, 12);
    assert!(
        !tmp.path().join("work").exists()
            || fs::read_dir(tmp.path().join("work"))
                .unwrap()
                .next()
                .is_none()
    );

    let archive = provider
        .backup_files_incrementally(&def, None, Some(0), false, &NoEvents)
        .unwrap();
    let checked = Items::default();
    let chain = ChainArchive {
        level: 0,
        backup_type: BackupType::TarXz,
        path: PathBytes::new(&archive),
    };
    let totals = provider.verify(&chain, &checked).unwrap().unwrap();
    assert_eq!(totals.items, 2);
    assert_eq!(checked.0.into_inner(), listed.0.into_inner());
}

#[test]
fn the_library_backs_up_into_a_host_sink_through_the_abi() {
    sink_scenarios::across_the_abi("libaa_plugin_tar_internal.so");
}

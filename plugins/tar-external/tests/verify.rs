//! Verify (`Verifying`): a sound backup of each type verifies, listing its members; one flipped
//! byte in the middle of a compressed backup is found by the decompressor's own check, one in
//! a tar header by GNU tar's header checksum; the error names the file.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};

use aa_abi::capability::{ChainArchive, ItemEvents, Verifying};
use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupDefinition, BackupType, NoEvents, PathBytes};
use aa_plugin_tar_external::TarExternal;

#[derive(Default)]
struct Events {
    items: RefCell<Vec<PathBuf>>,
}

impl ItemEvents for Events {
    fn item(&self, name: &Path, _size: u64) {
        self.items.borrow_mut().push(name.to_path_buf());
    }
    fn problem(&self, name: Option<&Path>, message: &str) {
        panic!("unexpected problem {name:?}: {message}");
    }
}

const TYPES: [BackupType; 5] = [
    BackupType::Tar,
    BackupType::TarGz,
    BackupType::TarBz2,
    BackupType::TarXz,
    BackupType::TarZst,
];

/// Content that does not compress away, so the middle of the file is compressed data.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn sound_backups_verify_and_a_flipped_byte_is_found() {
    for backup_type in TYPES {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let (root, dest) = (base.join("src"), base.join("dest"));
        fs::create_dir_all(root.join("dir")).unwrap();
        fs::create_dir_all(&dest).unwrap();
        fs::write(root.join("dir/a"), noise(200_000, 1)).unwrap();
        fs::write(root.join("dir/b"), "small").unwrap();
        let p = TarExternal::create(&base.join("work")).unwrap();
        let def = BackupDefinition::new("v", backup_type, &dest, &root).include(["dir"]);
        let path = p
            .backup_files_incrementally(&def, None, None, false, &NoEvents)
            .unwrap();
        let archive = ChainArchive {
            level: 0,
            backup_type,
            path: PathBytes::new(&path),
        };
        let events = Events::default();
        let totals = p.verify(&archive, &events).unwrap();
        assert_eq!(totals.items, 3, "{backup_type:?}");
        assert_eq!(
            *events.items.borrow(),
            [PathBuf::from("dir/"), "dir/a".into(), "dir/b".into()]
        );

        let mut bytes = fs::read(&path).unwrap();
        let at = if backup_type == BackupType::Tar {
            // The header of `dir/` (after the roots record): its name.
            let record = 1024;
            record + 2
        } else {
            bytes.len() / 2
        };
        bytes[at] ^= 0x55;
        fs::write(&path, bytes).unwrap();
        let err = p.verify(&archive, &Events::default()).unwrap_err();
        assert!(
            err.message().starts_with(&format!("{}: ", path.display())),
            "{backup_type:?}: {}",
            err.message()
        );
    }
}

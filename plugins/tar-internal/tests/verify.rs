//! The verify capability: sound backups of every type verify with the members GNU tar lists;
//! one flipped byte in the middle of each type's file (in a header for a plain tar, which has
//! no checksum over file data), a truncation, and a missing end are found and located.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_abi::capability::{ChainArchive, ItemEvents, Totals, Verifying};
use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupDefinition, BackupType, NoEvents, PathBytes, ProviderError};
use aa_plugin_tar_internal::{TarInternalPlugin, TarInternalProvider};

#[derive(Default)]
struct Items {
    items: RefCell<Vec<(String, u64)>>,
    problems: RefCell<Vec<String>>,
}

impl ItemEvents for Items {
    fn item(&self, name: &Path, size: u64) {
        self.items
            .borrow_mut()
            .push((name.to_string_lossy().into_owned(), size));
    }

    fn problem(&self, name: Option<&Path>, message: &str) {
        self.problems
            .borrow_mut()
            .push(format!("{name:?}: {message}"));
    }
}

/// Bytes that compress only somewhat, so the middle of a compressed file is data.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"abcdefghij klmnop\n"[(x % 18) as usize]
        })
        .collect()
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dest: PathBuf,
    provider: TarInternalProvider,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    let dest = tmp.path().join("dest");
    fs::create_dir_all(root.join("d/e")).unwrap();
    fs::create_dir_all(&dest).unwrap();
    for (i, name) in ["a", "d/b", "d/e/c", "d/e/f"].iter().enumerate() {
        fs::write(root.join(name), content(60_000 + i * 1000, i as u64 + 7)).unwrap();
    }
    std::os::unix::fs::symlink("a", root.join("link")).unwrap();
    let provider = TarInternalPlugin::create(&tmp.path().join("work")).unwrap();
    Setup {
        _tmp: tmp,
        root,
        dest,
        provider,
    }
}

impl Setup {
    fn backup(&self, backup_type: BackupType) -> PathBuf {
        let def = BackupDefinition::new("v", backup_type, &self.dest, &self.root).include(["."]);
        self.provider
            .backup_files(&def, None, true, &NoEvents)
            .unwrap()
    }

    fn verify(
        &self,
        path: &Path,
        backup_type: BackupType,
    ) -> (Result<Totals, ProviderError>, Items) {
        let archive = ChainArchive {
            level: 0,
            backup_type,
            path: PathBytes::new(path),
        };
        let items = Items::default();
        (self.provider.verify(&archive, &items), items)
    }
}

/// Member names as GNU tar lists them, relative to the root without a trailing `/`.
fn gnu_list(archive: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tf")
        .arg(archive)
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let l = l.trim_end_matches('/');
            let l = l.strip_prefix("./").filter(|r| !r.is_empty()).unwrap_or(l);
            if l.is_empty() { "." } else { l }.to_string()
        })
        .collect()
}

const TYPES: [BackupType; 5] = [
    BackupType::Tar,
    BackupType::TarGz,
    BackupType::TarBz2,
    BackupType::TarXz,
    BackupType::TarZst,
];

#[test]
fn sound_backups_verify_with_their_members() {
    let s = setup();
    for backup_type in TYPES {
        let path = s.backup(backup_type);
        let (totals, items) = s.verify(&path, backup_type);
        let totals = totals.unwrap_or_else(|e| panic!("{backup_type:?}: {}", e.message()));
        let names: Vec<String> = items
            .items
            .borrow()
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(names, gnu_list(&path), "{backup_type:?}");
        assert!(items.problems.borrow().is_empty(), "{:?}", items.problems);
        let sizes: u64 = items.items.borrow().iter().map(|(_, s)| s).sum();
        assert_eq!(totals.items, names.len() as u64);
        assert_eq!(totals.bytes, sizes);
        assert_eq!(sizes, 60_000 + 61_000 + 62_000 + 63_000, "{backup_type:?}");
        assert!(items
            .items
            .borrow()
            .contains(&("d/e/c".to_string(), 62_000)));
        assert!(items.items.borrow().contains(&("link".to_string(), 0)));
    }
}

/// Offsets of the member headers of a plain tar, found by walking its sizes.
fn header_offsets(tar: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        offsets.push(at);
        let field = std::str::from_utf8(&tar[at + 124..at + 135]).unwrap();
        let size = u64::from_str_radix(field.trim_matches(['\0', ' ']), 8).unwrap();
        at += 512 + (size as usize).div_ceil(512) * 512;
    }
    offsets
}

#[test]
fn a_flipped_byte_in_the_middle_is_found_in_every_type() {
    let s = setup();
    for backup_type in TYPES {
        let path = s.backup(backup_type);
        let mut bytes = fs::read(&path).unwrap();
        let at = if backup_type == BackupType::Tar {
            // Tar has no checksum over data: the header nearest the middle.
            let middle = bytes.len() / 2;
            *header_offsets(&bytes)
                .iter()
                .min_by_key(|&&o| o.abs_diff(middle))
                .unwrap()
                + 20
        } else {
            bytes.len() / 2
        };
        bytes[at] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        let (result, _) = s.verify(&path, backup_type);
        let error = result.expect_err(&format!("{backup_type:?}: a flipped byte at {at}"));
        let message = error.message();
        assert!(
            message.starts_with(&path.display().to_string()) && message.contains("offset"),
            "{backup_type:?}: {message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }
}

#[test]
fn truncation_is_found_and_located() {
    let s = setup();
    for backup_type in TYPES {
        let path = s.backup(backup_type);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let (result, _) = s.verify(&path, backup_type);
        let error = result.expect_err(&format!("{backup_type:?} cut"));
        assert!(error.message().contains("member"), "{}", error.message());
    }
    // A plain tar cut inside a member's data names that member.
    let path = s.backup(BackupType::Tar);
    let bytes = fs::read(&path).unwrap();
    let offsets = header_offsets(&bytes);
    // The last member with data (a file of 63,000 bytes).
    let last = *offsets
        .iter()
        .rev()
        .find(|&&o| bytes[o + 156] == b'0')
        .unwrap();
    let name = String::from_utf8_lossy(&bytes[last..last + 100])
        .trim_end_matches('\0')
        .to_string();
    fs::write(&path, &bytes[..last + 1024]).unwrap();
    let (result, _) = s.verify(&path, BackupType::Tar);
    let message = result.unwrap_err().message().to_string();
    assert!(
        message.contains(&format!("'{name}'")) && message.contains("ends inside a member"),
        "{message}"
    );
}

#[test]
fn a_missing_end_of_archive_is_a_problem() {
    let s = setup();
    let path = s.backup(BackupType::Tar);
    let bytes = fs::read(&path).unwrap();
    let offsets = header_offsets(&bytes);
    let end = {
        // The end of the last member: where the zero blocks start.
        let mut at = *offsets.last().unwrap() + 512;
        while bytes[at..at + 512].iter().any(|&b| b != 0) {
            at += 512;
        }
        at
    };
    fs::write(&path, &bytes[..end]).unwrap();
    let (result, items) = s.verify(&path, BackupType::Tar);
    assert_eq!(result.unwrap().problems, 1);
    assert!(items.problems.borrow()[0].contains("end-of-archive"));
}

#[test]
fn a_file_that_is_not_there_is_an_error_naming_it() {
    let s = setup();
    let path = s.dest.join("none.tar.gz");
    let (result, _) = s.verify(&path, BackupType::TarGz);
    let message = result.unwrap_err().message().to_string();
    assert!(message.contains("none.tar.gz"), "{message}");
}

/// Archives GNU tar writes (as the original `aa` and TarExternal do): GNU and pax formats,
/// incremental dumpdirs, long names, sparse files; verify lists what GNU tar lists.
#[test]
fn gnu_tar_archives_verify_with_their_members() {
    let s = setup();
    let long = "n".repeat(150);
    fs::write(s.root.join("d").join(&long), "a long name").unwrap();
    let sparse = fs::File::create(s.root.join("sparse")).unwrap();
    sparse.set_len(5 << 20).unwrap();
    drop(sparse);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(s.root.join("sparse"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"data at the start").unwrap();
    drop(f);
    for format in ["gnu", "posix"] {
        for (flag, backup_type, ext) in [
            ("-z", BackupType::TarGz, "tar.gz"),
            ("-j", BackupType::TarBz2, "tar.bz2"),
            ("--zstd", BackupType::TarZst, "tar.zst"),
        ] {
            let archive = s.dest.join(format!("gnu-{format}.{ext}"));
            let snar = s.dest.join(format!("gnu-{format}-{ext}.snar"));
            let out = Command::new("tar")
                .arg(format!("--format={format}"))
                .arg(format!("--listed-incremental={}", snar.display()))
                .args(["--sparse", flag, "-C"])
                .arg(&s.root)
                .arg("-cf")
                .arg(&archive)
                .arg(".")
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let (totals, items) = s.verify(&archive, backup_type);
            let totals = totals.unwrap_or_else(|e| panic!("{format} {ext}: {}", e.message()));
            assert_eq!(totals.problems, 0);
            let names: Vec<String> = items
                .items
                .borrow()
                .iter()
                .map(|(n, _)| n.clone())
                .collect();
            assert_eq!(names, gnu_list(&archive), "{format} {ext}");
            assert!(
                items
                    .items
                    .borrow()
                    .contains(&("sparse".to_string(), 5 << 20)),
                "{format} {ext}: {:?}",
                items.items
            );
            assert!(names.contains(&format!("d/{long}")));
        }
    }
}

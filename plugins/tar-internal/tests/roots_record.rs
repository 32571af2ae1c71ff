//! The roots record every incremental level starts with, and the end-of-archive blocks every
//! level ends with: GNU tar and bsdtar read the levels without a word on stderr, and the
//! record of each level holds the includes that existed then, so a top-level file and a
//! top-level directory deleted between two levels are missing from the later record.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_abi::capability::{ChainArchive, ItemEvents, Verifying};
use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupDefinition, BackupType, NoEvents, PathBytes};
use aa_plugin_tar_internal::{TarInternalPlugin, TarInternalProvider};
use aa_provider_kit::roots;

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// Runs `program` with `args` (in `dir`), which must succeed silently on stderr.
fn silent(program: &str, dir: &Path, args: &[&str], archive: &Path) -> Vec<u8> {
    let out = Command::new(program)
        .current_dir(dir)
        .args(args)
        .arg(archive)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{program} {args:?} {}: {}",
        archive.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn has_bsdtar() -> bool {
    Command::new("bsdtar").arg("--version").output().is_ok()
}

fn tar_stream(archive: &Path, backup_type: BackupType) -> Vec<u8> {
    let file = File::open(archive).unwrap();
    let mut bytes = Vec::new();
    match backup_type {
        BackupType::Tar => std::io::BufReader::new(file).read_to_end(&mut bytes),
        BackupType::TarZst => zstd::stream::read::Decoder::new(file)
            .unwrap()
            .read_to_end(&mut bytes),
        other => panic!("{other:?} not used here"),
    }
    .unwrap();
    bytes
}

/// The stream's member headers, walked by their sizes: checks that the last member is
/// followed by two zero blocks, and returns the type flag of the first header.
fn check_ends_with_marker(tar: &[u8]) -> u8 {
    let mut at = 0;
    while tar[at..at + 512].iter().any(|&b| b != 0) {
        let field = std::str::from_utf8(&tar[at + 124..at + 135]).unwrap();
        let size = u64::from_str_radix(field.trim_matches(['\0', ' ']), 8).unwrap();
        at += 512 + (size as usize).div_ceil(512) * 512;
        assert!(
            at + 1024 <= tar.len(),
            "the stream ends without end-of-archive blocks"
        );
    }
    assert!(tar[at..at + 1024].iter().all(|&b| b == 0));
    assert_eq!(tar.len() % 10240, 0, "padded to whole records");
    tar[156]
}

fn record(tar: &[u8]) -> Vec<String> {
    roots::read_record(tar)
        .unwrap()
        .expect("a roots record")
        .into_iter()
        .map(|r| String::from_utf8(r).unwrap())
        .collect()
}

struct NoItems;
impl ItemEvents for NoItems {
    fn item(&self, _: &Path, _: u64) {}
    fn problem(&self, name: Option<&Path>, message: &str) {
        panic!("{name:?}: {message}");
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    dest: PathBuf,
    provider: TarInternalProvider,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let root = base.join("src");
    let dest = base.join("dest");
    fs::create_dir_all(&dest).unwrap();
    write(&root.join("data/a"), "a");
    write(&root.join("data/sub/b"), "b");
    write(&root.join("top.txt"), "top");
    write(&root.join("gone.txt"), "deleted after level 0");
    write(&root.join("gone-dir/x"), "deleted after level 0");
    write(&root.join("excluded/e"), "never stored");
    let provider = TarInternalPlugin::create(&base.join("work")).unwrap();
    Setup {
        _tmp: tmp,
        base,
        root,
        dest,
        provider,
    }
}

#[test]
fn every_level_records_its_roots_and_reads_silently() {
    let bsdtar = has_bsdtar();
    for backup_type in [BackupType::Tar, BackupType::TarZst] {
        let s = setup();
        let includes = [
            "data",
            "data/sub/",
            "top.txt",
            "gone.txt",
            "gone-dir",
            "missing",
            "excluded",
        ];
        let def = BackupDefinition::new("r", backup_type, &s.dest, &s.root)
            .include(includes)
            .exclude(["excluded"]);
        let mut levels = Vec::new();
        for level in 0..3u32 {
            if level == 1 {
                fs::remove_file(s.root.join("gone.txt")).unwrap();
                fs::remove_dir_all(s.root.join("gone-dir")).unwrap();
            }
            aa_tests::settle_timestamps();
            let archive = s
                .provider
                .backup_files_incrementally(&def, None, Some(level), false, &NoEvents)
                .unwrap();
            aa_tests::settle_timestamps();
            let tar = tar_stream(&archive, backup_type);
            assert_eq!(check_ends_with_marker(&tar), b'g', "the record comes first");
            let expected: &[&str] = if level == 0 {
                &[
                    "data", "data/sub", "excluded", "gone-dir", "gone.txt", "top.txt",
                ]
            } else {
                // Deleted entries are no roots; the excluded one is (a restore leaves it).
                &["data", "data/sub", "excluded", "top.txt"]
            };
            assert_eq!(record(&tar), expected, "{backup_type:?} level {level}");

            // Readers skip the record without a word.
            silent("tar", &s.base, &["-tvf"], &archive);
            let listed = silent("tar", &s.base, &["-tf"], &archive);
            assert!(!String::from_utf8_lossy(&listed).contains("aa-roots"));
            if bsdtar {
                silent("bsdtar", &s.base, &["-tvf"], &archive);
            }
            // Our own verification finds the archive sound, end-of-archive included.
            let chain = ChainArchive {
                level,
                backup_type,
                path: PathBytes::new(&archive),
            };
            assert_eq!(s.provider.verify(&chain, &NoItems).unwrap().problems, 0);
            levels.push(archive);
        }

        // GNU tar's incremental extraction, level by level, silently; bsdtar extracts too.
        let out = s.base.join("gnu");
        fs::create_dir_all(&out).unwrap();
        for archive in &levels {
            silent("tar", &out, &["-x", "-G", "-f"], archive);
        }
        assert_eq!(fs::read_to_string(out.join("data/sub/b")).unwrap(), "b");
        assert!(!out.join("excluded").exists());
        if bsdtar {
            let out = s.base.join("bsd");
            fs::create_dir_all(&out).unwrap();
            silent("bsdtar", &out, &["-xf"], &levels[0]);
            assert_eq!(
                fs::read_to_string(out.join("gone.txt")).unwrap(),
                "deleted after level 0"
            );
            assert!(!out.join("aa-roots").exists());
        }
    }
}

#[test]
fn the_root_itself_is_recorded_as_dot() {
    let s = setup();
    let def = BackupDefinition::new("dot", BackupType::Tar, &s.dest, &s.root).include(["."]);
    let archive = s
        .provider
        .backup_files_incrementally(&def, None, Some(0), false, &NoEvents)
        .unwrap();
    let tar = tar_stream(&archive, BackupType::Tar);
    check_ends_with_marker(&tar);
    assert_eq!(record(&tar), ["."]);
}

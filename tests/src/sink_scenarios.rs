//! The `backup_to_sink_v1` scenarios both providers must pass, run by their `tests/sink.rs`:
//! every type into a file sink extracts with GNU
//! tar to the source tree and is a valid file of its type; an incremental chain through the
//! sink restores level by level; a sink failing a write midway or its commit gives an error,
//! and the snapshots stay byte for byte as they were (the level number too); and the built
//! plugin library does the same across the ABI boundary, as the host calls it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_abi::capability::{BackingUpToSink, BackupSink, BACKUP_TO_SINK_V1};
use aa_abi::host::PluginLibrary;
use aa_abi::{BackupDefinition, BackupType, NoEvents, ProviderError};

/// A byte sink that writes a file, as a host's local or remote storage would: the bytes go to
/// `path` and become the backup only on commit. It can fail a write once `fail_after` bytes
/// have been written, or fail its commit.
pub struct FileSink {
    file: fs::File,
    pub written: u64,
    fail_after: Option<u64>,
    fail_commit: bool,
    pub committed: bool,
}

impl FileSink {
    pub fn new(path: &Path) -> FileSink {
        FileSink {
            file: fs::File::create(path).unwrap(),
            written: 0,
            fail_after: None,
            fail_commit: false,
            committed: false,
        }
    }

    pub fn failing_after(path: &Path, bytes: u64) -> FileSink {
        FileSink {
            fail_after: Some(bytes),
            ..FileSink::new(path)
        }
    }

    pub fn failing_commit(path: &Path) -> FileSink {
        FileSink {
            fail_commit: true,
            ..FileSink::new(path)
        }
    }
}

impl BackupSink for FileSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), ProviderError> {
        assert!(!self.committed, "a write after the commit");
        if self
            .fail_after
            .is_some_and(|limit| self.written + bytes.len() as u64 > limit)
        {
            return Err(ProviderError::other("test sink: the connection was lost"));
        }
        self.file.write_all(bytes).unwrap();
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), ProviderError> {
        assert!(!self.committed, "a second commit");
        if self.fail_commit {
            return Err(ProviderError::other("test sink: the commit was refused"));
        }
        self.committed = true;
        Ok(())
    }
}

/// Every file of `dir` (the snapshots) with its bytes.
fn files_in(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(files_in(&path));
            } else {
                files.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// The decompressor's own integrity test (`tar -tf` for a plain tar): the bytes are a valid
/// file of the type.
pub fn assert_valid_archive(path: &Path, backup_type: BackupType) {
    let (program, args): (&str, &[&str]) = match backup_type {
        BackupType::Tar => ("tar", &["-tf"]),
        BackupType::TarGz => ("gzip", &["-t"]),
        BackupType::TarBz2 => ("bzip2", &["-t"]),
        BackupType::TarXz => ("xz", &["-t"]),
        _ => ("zstd", &["-t", "-q"]),
    };
    let out = Command::new(program).args(args).arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = match backup_type {
        BackupType::Tar => "tar",
        BackupType::TarGz => "gz",
        BackupType::TarBz2 => "bz2",
        BackupType::TarXz => "xz",
        _ => "zst",
    };
    assert_eq!(crate::detect_format(path), expected, "{}", path.display());
}

pub const TYPES: [BackupType; 5] = [
    BackupType::Tar,
    BackupType::TarGz,
    BackupType::TarBz2,
    BackupType::TarXz,
    BackupType::TarZst,
];

pub fn same_tree(source: &Path, restored: &Path, context: &str) {
    crate::assert_same_tree(
        &crate::record_tree(source),
        &crate::record_tree(restored),
        crate::Compare { mtime_nanos: false },
        context,
    );
}

/// A sandbox: the source tree `src/tree`, an empty destination, the provider's work directory.
pub struct Case {
    _tmp: tempfile::TempDir,
    pub base: PathBuf,
    pub work: PathBuf,
    pub dest: PathBuf,
    pub definition: BackupDefinition,
}

impl Case {
    pub fn new(backup_type: BackupType) -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let src = base.join("src");
        fs::create_dir_all(&src).unwrap();
        crate::simple_fixture(&src);
        let dest = base.join("dest");
        fs::create_dir_all(&dest).unwrap();
        let definition = BackupDefinition::new("s", backup_type, &dest, &src).include(["tree"]);
        Case {
            _tmp: tmp,
            work: base.join("work"),
            base,
            dest,
            definition,
        }
    }

    pub fn tree(&self) -> PathBuf {
        self.base.join("src/tree")
    }

    /// A new file path for a sink's output.
    pub fn output(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// Whether the destination directory is still empty: a sink backup writes nothing there.
    pub fn dest_is_empty(&self) -> bool {
        fs::read_dir(&self.dest).unwrap().next().is_none()
    }

    /// The snapshots and whatever else the provider keeps, with their bytes.
    pub fn state(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        files_in(&self.work)
    }
}

/// Every type: a full backup into a file sink is committed, valid for its type, and GNU tar
/// extracts it to the source tree; nothing is written to the destination directory.
pub fn every_type_extracts_to_the_source_tree<P: BackingUpToSink>(provider: impl Fn(&Path) -> P) {
    for backup_type in TYPES {
        let case = Case::new(backup_type);
        let out = case.output("backup");
        let mut sink = FileSink::new(&out);
        provider(&case.work)
            .backup_to_sink(&case.definition, None, None, &mut sink, &NoEvents)
            .unwrap_or_else(|e| panic!("{backup_type}: {e}"));
        assert!(sink.committed, "{backup_type}");
        assert!(case.dest_is_empty(), "{backup_type}");
        assert_valid_archive(&out, backup_type);
        let extracted = case.base.join("extracted");
        crate::gnu_extract(&out, &extracted);
        same_tree(
            &case.tree(),
            &extracted.join("tree"),
            &format!("{backup_type}"),
        );
    }
}

/// Every type: levels 0, 1 and 2 through the sink, with files added, changed and deleted and
/// a directory renamed in between, restore with GNU tar (`--listed-incremental=/dev/null`)
/// to the tree as it was at each level; each level installs its snapshot.
pub fn an_incremental_chain_restores<P: BackingUpToSink>(provider: impl Fn(&Path) -> P) {
    for backup_type in TYPES {
        let case = Case::new(backup_type);
        let tree = case.tree();
        let mut archives = Vec::new();
        for level in 0..3u32 {
            match level {
                1 => {
                    fs::write(tree.join("new.txt"), "added at level 1\n").unwrap();
                    fs::remove_file(tree.join("a/b/deep.txt")).unwrap();
                }
                2 => {
                    fs::rename(tree.join("a"), tree.join("renamed")).unwrap();
                    fs::write(tree.join("file.txt"), "changed at level 2\n").unwrap();
                }
                _ => {}
            }
            let out = case.output(&format!("level{level}"));
            let mut sink = FileSink::new(&out);
            let p = provider(&case.work);
            p.backup_to_sink(&case.definition, Some(9), Some(level), &mut sink, &NoEvents)
                .or_else(|e| {
                    // Plain tar has no compression strength.
                    if backup_type == BackupType::Tar {
                        p.backup_to_sink(&case.definition, None, Some(level), &mut sink, &NoEvents)
                    } else {
                        Err(e)
                    }
                })
                .unwrap_or_else(|e| panic!("{backup_type} level {level}: {e}"));
            assert!(sink.committed);
            assert!(case.dest_is_empty(), "{backup_type}");
            assert_valid_archive(&out, backup_type);
            assert_eq!(
                p.get_max_backup_level("s").unwrap(),
                level + 1,
                "{backup_type}"
            );
            archives.push(out);
            let restored = case.base.join(format!("restored{level}"));
            let chain: Vec<&Path> = archives.iter().map(PathBuf::as_path).collect();
            crate::gnu_restore_incremental(&chain, &restored).unwrap();
            same_tree(
                &tree,
                &restored.join("tree"),
                &format!("{backup_type} level {level}"),
            );
        }
    }
}

/// Incompressible content, so the backup is larger than the sink lets through.
fn add_large_file(case: &Case) {
    fs::write(case.tree().join("large.bin"), crate::noise(4 << 20, 7)).unwrap();
}

const FAIL_AFTER: u64 = 1_500_000;

/// Every type: a sink that fails once 1.5 MB went through ends the backup with the sink's
/// error, without a commit, for a full backup and for a level, and the level leaves the
/// provider's state (snapshots, level number) byte for byte as it was.
pub fn a_failing_write_changes_nothing<P: BackingUpToSink>(provider: impl Fn(&Path) -> P) {
    for backup_type in TYPES {
        let case = Case::new(backup_type);
        let p = provider(&case.work);
        let mut first = FileSink::new(&case.output("level0"));
        p.backup_to_sink(&case.definition, None, Some(0), &mut first, &NoEvents)
            .unwrap();
        add_large_file(&case);
        let before = case.state();
        assert!(!before.is_empty());

        let mut failing = FileSink::failing_after(&case.output("level1"), FAIL_AFTER);
        let error = p
            .backup_to_sink(&case.definition, None, Some(1), &mut failing, &NoEvents)
            .expect_err("the sink failed");
        assert_eq!(
            error.message(),
            "test sink: the connection was lost",
            "{backup_type}"
        );
        assert!(!failing.committed, "{backup_type}");
        assert!(failing.written > 0, "{backup_type}: the sink failed midway");
        assert!(
            case.state() == before,
            "{backup_type}: the snapshots changed"
        );
        assert_eq!(p.get_max_backup_level("s").unwrap(), 1, "{backup_type}");

        let mut failing = FileSink::failing_after(&case.output("full"), FAIL_AFTER);
        let error = p
            .backup_to_sink(&case.definition, None, None, &mut failing, &NoEvents)
            .expect_err("the sink failed");
        assert_eq!(error.message(), "test sink: the connection was lost");
        assert!(!failing.committed);
        assert!(
            case.state() == before,
            "{backup_type}: the snapshots changed"
        );
        assert!(case.dest_is_empty());
    }
}

/// Every type: a sink whose commit fails leaves the level's snapshot uninstalled (the next
/// level is still the same, the state byte for byte as it was); the level made again then
/// continues the chain.
pub fn a_failing_commit_installs_no_snapshot<P: BackingUpToSink>(provider: impl Fn(&Path) -> P) {
    for backup_type in TYPES {
        let case = Case::new(backup_type);
        let p = provider(&case.work);
        let level0 = case.output("level0");
        let mut first = FileSink::new(&level0);
        p.backup_to_sink(&case.definition, None, Some(0), &mut first, &NoEvents)
            .unwrap();
        fs::write(case.tree().join("new.txt"), "after level 0\n").unwrap();
        let before = case.state();

        let mut refusing = FileSink::failing_commit(&case.output("refused"));
        let error = p
            .backup_to_sink(&case.definition, None, Some(1), &mut refusing, &NoEvents)
            .expect_err("the commit failed");
        assert_eq!(error.message(), "test sink: the commit was refused");
        assert!(!refusing.committed);
        assert!(
            case.state() == before,
            "{backup_type}: the snapshots changed"
        );
        assert_eq!(p.get_max_backup_level("s").unwrap(), 1, "{backup_type}");

        let level1 = case.output("level1");
        let mut again = FileSink::new(&level1);
        p.backup_to_sink(&case.definition, None, Some(1), &mut again, &NoEvents)
            .unwrap();
        assert_eq!(p.get_max_backup_level("s").unwrap(), 2);
        let restored = case.base.join("restored");
        crate::gnu_restore_incremental(&[&level0, &level1], &restored).unwrap();
        same_tree(
            &case.tree(),
            &restored.join("tree"),
            &format!("{backup_type}"),
        );
    }
}

/// A sink whose writes panic: the host's panic must not unwind into the provider.
struct PanickingSink;

impl BackupSink for PanickingSink {
    fn write(&mut self, _bytes: &[u8]) -> Result<(), ProviderError> {
        panic!("the test sink panics");
    }

    fn commit(&mut self) -> Result<(), ProviderError> {
        panic!("the test sink panics");
    }
}

/// The built library `lib_name` (as `cargo build` made it) exports `backup_to_sink_v1` with a
/// layout the host accepts, and through it: a full backup and a level 0 go into the host's
/// sink and extract to the tree; the sink's error and the argument checks come back as
/// errors; a panicking sink is an error, not an abort; nothing is written to the destination.
pub fn across_the_abi(lib_name: &str) {
    let lib = crate::target_dir().join("debug").join(lib_name);
    assert!(
        lib.is_file(),
        "{} not found; build first: cargo build --workspace",
        lib.display()
    );
    let library = PluginLibrary::load(&lib).unwrap_or_else(|e| panic!("{}: {e}", lib.display()));
    assert!(library.capabilities().can_backup_to_sink());
    assert!(library.capabilities().names().contains(&BACKUP_TO_SINK_V1));

    let case = Case::new(BackupType::TarZst);
    let provider = library.create_provider(&case.work).unwrap();
    for (level, name) in [(None, "full"), (Some(0), "level0")] {
        let out = case.output(name);
        let mut sink = FileSink::new(&out);
        provider
            .backup_to_sink(&case.definition, Some(3), level, &mut sink, &NoEvents)
            .expect("the capability is present")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(sink.committed, "{name}");
        assert_valid_archive(&out, BackupType::TarZst);
        let extracted = case.base.join(format!("extracted-{name}"));
        crate::gnu_extract(&out, &extracted);
        same_tree(&case.tree(), &extracted.join("tree"), name);
    }
    assert_eq!(provider.get_max_backup_level("s").unwrap(), 1);

    add_large_file(&case);
    let before = case.state();
    let mut failing = FileSink::failing_after(&case.output("failed"), FAIL_AFTER);
    let error = provider
        .backup_to_sink(&case.definition, None, Some(1), &mut failing, &NoEvents)
        .unwrap()
        .unwrap_err();
    assert_eq!(error.message(), "test sink: the connection was lost");
    assert!(!failing.committed);
    assert!(case.state() == before, "the snapshots changed");

    // The checks every backup call passes: a strength out of range is refused up front.
    let mut unused = FileSink::new(&case.output("refused"));
    let error = provider
        .backup_to_sink(&case.definition, Some(99), None, &mut unused, &NoEvents)
        .unwrap()
        .unwrap_err();
    assert!(error.message().contains("out of the interval"), "{error}");
    assert_eq!(unused.written, 0);

    let error = provider
        .backup_to_sink(&case.definition, None, None, &mut PanickingSink, &NoEvents)
        .unwrap()
        .unwrap_err();
    assert_eq!(
        error.message(),
        "the backup's destination failed unexpectedly"
    );
    assert!(case.state() == before, "the snapshots changed");
    assert!(case.dest_is_empty());
}

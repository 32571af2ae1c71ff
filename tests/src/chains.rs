//! Incremental chains made through the `aa` binary, for the restore, verify and dry-run
//! matrices: the two built-in providers and the five backup types by their archiver names, a
//! sandbox whose archive backs up everything in `src/` (`include-files = *`, so that a
//! top-level entry can be deleted between levels), the `aa --restore/--verify/--dry-run`
//! invocations, and the tree records a restore is compared with.
//!
//! Every change between levels gives what it touches an explicit, distinct modification time in
//! the past (both providers see the change by its ctime, as GNU tar does), so that a restore
//! that gets a time wrong cannot match by chance, and no extraction meets a time in the future.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::{
    assert_same_tree, record_tree, set_mtime, AaOutput, Compare, Kind, Sandbox, TreeRecord,
};

/// A built-in provider, as an archive specification selects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `TarInternal`: `tar_internal`, `targz_internal`, ...
    Internal,
    /// `TarExternal` (GNU tar): `tar`, `targz`, ...
    External,
}

impl Builtin {
    /// The archiver name of backup type `base` (`tar`, `targz`, ...) with this provider.
    pub fn archiver(self, base: &str) -> String {
        match self {
            Builtin::Internal => format!("{base}_internal"),
            Builtin::External => base.to_string(),
        }
    }

    /// The provider id `aa` reports.
    pub fn id(self) -> &'static str {
        match self {
            Builtin::Internal => "TarInternal",
            Builtin::External => "TarExternal",
        }
    }

    /// The other built-in provider.
    pub fn other(self) -> Builtin {
        match self {
            Builtin::Internal => Builtin::External,
            Builtin::External => Builtin::Internal,
        }
    }
}

/// The backup types: archiver base name and backup file extension.
pub const TYPES: [(&str, &str); 5] = [
    ("tar", "tar"),
    ("targz", "tar.gz"),
    ("tarbz2", "tar.bz2"),
    ("tarxz", "tar.xz"),
    ("tarzst", "tar.zst"),
];

/// The compressed ones (whose formats have checksums).
pub fn compressed_types() -> impl Iterator<Item = (&'static str, &'static str)> {
    TYPES.into_iter().filter(|(base, _)| *base != "tar")
}

/// A sandbox with one incremental archive, `NAME`, of everything in `src/`.
pub struct ChainSandbox {
    pub sb: Sandbox,
    pub name: String,
    /// The extension of its backup files (`tar.gz`).
    pub ext: String,
    /// The next modification time a change gets (see [`ChainSandbox::touch`]).
    clock: Cell<i64>,
}

impl ChainSandbox {
    /// A sandbox whose archive `name` uses `archiver` (with backup files ending in `ext`).
    pub fn new(name: &str, archiver: &str, ext: &str) -> ChainSandbox {
        let sb = Sandbox::new();
        // Created beforehand, so that its one-time announcement is not part of any output.
        fs::create_dir_all(sb.config_dir().join("storage")).unwrap();
        let chain = ChainSandbox {
            sb,
            name: name.to_string(),
            ext: ext.to_string(),
            clock: Cell::new(1_700_000_000),
        };
        chain.set_archiver(archiver, "");
        chain
    }

    /// Rewrites the spec with `archiver` and `extra` `[Archive]` lines: how a restore is made
    /// to pick the other provider (it uses the spec's).
    pub fn set_archiver(&self, archiver: &str, extra: &str) {
        let text = format!(
            "[Content]\npath = {}\ninclude-files = *\nexclude-files =\n\n[Archive]\n\
             archiver = {archiver}\ndest-dir = {}\nincremental = yes\n{extra}\n",
            self.src().display(),
            self.sb.dest_dir().display()
        );
        self.sb.write_spec_text(&self.name, &text);
    }

    pub fn src(&self) -> PathBuf {
        self.sb.src_dir()
    }

    /// The backup file of `level` (`None`: not kept).
    pub fn backup_file(&self, level: u32, keeping_id: Option<&str>) -> PathBuf {
        let mut name = self.name.clone();
        if level > 0 {
            name += &format!(".{level}");
        }
        if let Some(id) = keeping_id {
            name += &format!(".{id}");
        }
        self.sb.dest_dir().join(format!("{name}.{}", self.ext))
    }

    /// Runs `aa` with `args` (the archive's name is not added).
    pub fn aa(&self, args: &[&str]) -> AaOutput {
        let out = self.sb.aa().args(args).run();
        out.assert_no_panic();
        out
    }

    /// Makes the next backup (with `args` before the archive's name); it must succeed.
    #[track_caller]
    pub fn backup(&self, args: &[&str]) -> AaOutput {
        let mut all: Vec<&str> = args.to_vec();
        all.push(&self.name);
        let out = self.aa(&all);
        out.assert_success();
        out
    }

    /// `aa --restore NAME --target TARGET ARGS...`.
    pub fn restore(&self, target: &Path, args: &[&str]) -> AaOutput {
        let mut all = vec!["--restore", &self.name, "--target"];
        let target = target.to_str().expect("a UTF-8 target");
        all.push(target);
        all.extend_from_slice(args);
        self.aa(&all)
    }

    /// A fresh, not yet existing target directory in the sandbox.
    pub fn target(&self, label: &str) -> PathBuf {
        let dir = self.sb.mkdir("restored").join(label);
        assert!(!dir.exists(), "{} used twice", dir.display());
        dir
    }

    /// Gives `rel` (in the source) the next modification time.
    pub fn touch(&self, rel: &str) {
        let t = self.clock.get();
        self.clock.set(t + 97);
        set_mtime(&self.src().join(rel), (t, 123_456_789));
    }

    /// Writes `content` to `rel` in the source (creating it) and touches it.
    pub fn write(&self, rel: &str, content: &[u8]) {
        fs::write(self.src().join(rel), content).unwrap();
        self.touch(rel);
    }

    /// Makes the directory `rel` in the source and touches it.
    pub fn mkdir(&self, rel: &str) {
        fs::create_dir(self.src().join(rel)).unwrap();
        self.touch(rel);
    }

    /// The source as a restore must reproduce it: everything below `src/` (the backup root
    /// itself is no member of any backup).
    pub fn source_record(&self) -> TreeRecord {
        below_root(record_tree(&self.src()))
    }
}

/// A record without its root entry.
pub fn below_root(mut record: TreeRecord) -> TreeRecord {
    record.remove(&Vec::new());
    record
}

/// The record of restored target `dir`, without the target itself.
pub fn restored_record(dir: &Path) -> TreeRecord {
    below_root(record_tree(dir))
}

/// `record` with directory modification times zeroed: GNU tar's restore of later levels
/// touches them, so a comparison with GNU tar's restore leaves them out.
pub fn without_dir_times(mut record: TreeRecord) -> TreeRecord {
    record
        .values_mut()
        .filter(|e| e.kind == Kind::Dir)
        .for_each(|e| (e.mtime_secs, e.mtime_nanos) = (0, 0));
    record
}

/// Asserts that the restore into `target` reproduced `expected` exactly (sub-second times
/// included: both providers write pax archives).
#[track_caller]
pub fn assert_restored(expected: &TreeRecord, target: &Path, context: &str) {
    assert_same_tree(
        expected,
        &restored_record(target),
        Compare { mtime_nanos: true },
        context,
    );
}

/// The members a dry run lists (the `SIZE  NAME` lines of its standard output), without a
/// trailing `/`.
pub fn dry_run_members(out: &AaOutput) -> BTreeSet<Vec<u8>> {
    out.stdout
        .lines()
        .filter_map(|line| {
            let (size, name) = line.trim_start().split_once("  ")?;
            if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let name = name.strip_suffix('/').unwrap_or(name);
            let name = name.strip_prefix("./").unwrap_or(name);
            Some(name.as_bytes().to_vec())
        })
        .collect()
}

/// A two-level GNU tar chain (posix format, uncompressed `l0.tar`, `l1.tar` in `base`) of
/// `base/src/data` whose level 1 lists `data/kept` and `data/lost` as unchanged (`N`) while
/// `data/lost` was cut out of level 0 afterwards, as an unreadable file or an edited archive
/// leaves it; level 1 adds `data/new`. A restore of it loses `data/lost`, and must say so.
pub fn chain_with_a_lost_file(base: &Path) -> [PathBuf; 2] {
    use std::process::Command;

    let root = base.join("src");
    fs::create_dir_all(root.join("data")).unwrap();
    fs::write(root.join("data/kept"), "kept").unwrap();
    fs::write(root.join("data/lost"), "lost").unwrap();
    let snar = base.join("chain.snar");
    let tar = |args: &[&std::ffi::OsStr]| {
        let o = Command::new("tar").args(args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let levels = [base.join("l0.tar"), base.join("l1.tar")];
    for (level, archive) in levels.iter().enumerate() {
        if level == 1 {
            fs::write(root.join("data/new"), "new at level 1").unwrap();
        }
        crate::settle_timestamps();
        let listed = format!("--listed-incremental={}", snar.display());
        tar(&[
            "--format=posix".as_ref(),
            "--sort=name".as_ref(),
            listed.as_ref(),
            "-cf".as_ref(),
            archive.as_os_str(),
            "-C".as_ref(),
            root.as_os_str(),
            "data".as_ref(),
        ]);
    }
    tar(&[
        "--delete".as_ref(),
        "-f".as_ref(),
        levels[0].as_os_str(),
        "data/lost".as_ref(),
    ]);
    levels
}

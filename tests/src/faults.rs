//! Fault injection: `aa` run with the `LD_PRELOAD` shim of `tests/faults/shim.c`, which fails
//! the writes, syncs or renames under one directory (the destination, the snapshots, the
//! realms) or the reads of the source, or interrupts every slow call with `EINTR`; and the
//! check that such a run loses nothing.
//!
//! libfiu's `fiu-run` fails calls by name for the whole process, which would break `aa`
//! before it reached the backup; the shim decides by the file a call works on, so only the
//! chosen directory fails, as one failing or full disk would. GNU tar and the compressors
//! inherit `LD_PRELOAD`, so what they write fails the same way. Each injected fault is logged,
//! so a case whose fault never happened is reported as such instead of passing.
//!
//! One case: a chain (levels 0 and 1, with restarting, so the realm is written too), then a
//! run with the fault, either a full backup over the existing level 0 or a new level 2. It
//! loses nothing when the run fails with an `aa:` error line naming the system error, without
//! a panic; the backups, snapshots and realm are unchanged (content, names); no partial or
//! working file is left; and the same run without the fault succeeds and its chain restores
//! the source with GNU tar. An `EINTR` run must simply succeed.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{
    gnu_restore_incremental, noise, record_tree, show, target_dir, tree_diff, without,
    workspace_dir, Compare, Kind, Sandbox, TreeRecord,
};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// Where the fault is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The destination directory (the backup being written).
    Destination,
    /// `<user-config-dir>/snapshots` (GNU tar snapshot files).
    Snapshots,
    /// `<user-config-dir>/storage` (the realm).
    Realm,
    /// The backed-up tree (reads only).
    Source,
}

impl Place {
    fn label(self) -> &'static str {
        match self {
            Place::Destination => "dest",
            Place::Snapshots => "snapshot",
            Place::Realm => "realm",
            Place::Source => "source",
        }
    }
}

/// Which call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Writes, once `after` bytes went through (in each process).
    Write {
        after: u64,
    },
    Fsync,
    Rename,
    /// Reads of regular files, once `after` bytes were read.
    Read {
        after: u64,
    },
    /// Every other slow call of each thread of `aa` (not of the programs it runs), `EINTR`.
    Eintr,
}

/// One fault: a call failing with an errno under a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub place: Place,
    pub call: Call,
    pub errno: i32,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errno = match self.errno {
            EIO => "EIO",
            ENOSPC => "ENOSPC",
            _ => "?",
        };
        let at = |after: u64| {
            if after == 0 {
                String::from("first")
            } else {
                format!("after {}K", after >> 10)
            }
        };
        match self.call {
            Call::Eintr => write!(f, "EINTR every slow call"),
            Call::Write { after } => {
                write!(f, "{errno} {} write {}", self.place.label(), at(after))
            }
            Call::Read { after } => write!(f, "{errno} {} read {}", self.place.label(), at(after)),
            Call::Fsync => write!(f, "{errno} {} fsync", self.place.label()),
            Call::Rename => write!(f, "{errno} {} rename", self.place.label()),
        }
    }
}

impl Fault {
    const fn new(place: Place, call: Call, errno: i32) -> Fault {
        Fault { place, call, errno }
    }

    /// The message `strerror` gives for the errno, which the error line must show.
    fn message(&self) -> &'static str {
        match self.errno {
            EIO => "Input/output error",
            ENOSPC => "No space left on device",
            _ => "",
        }
    }
}

/// Bytes after which a mid-stream fault fires: past the first buffers of every writer, well
/// before the end of the test's backups.
const MIDWAY: u64 = 64 << 10;

/// Every fault of the matrix.
pub fn all_faults() -> Vec<Fault> {
    use Call::*;
    use Place::*;
    let mut faults = Vec::new();
    for errno in [EIO, ENOSPC] {
        faults.push(Fault::new(Destination, Write { after: 0 }, errno));
        faults.push(Fault::new(Destination, Write { after: MIDWAY }, errno));
    }
    faults.push(Fault::new(Destination, Fsync, EIO));
    faults.push(Fault::new(Destination, Rename, EIO));
    for place in [Snapshots, Realm] {
        for errno in [EIO, ENOSPC] {
            faults.push(Fault::new(place, Write { after: 0 }, errno));
        }
        faults.push(Fault::new(place, Fsync, EIO));
        faults.push(Fault::new(place, Rename, EIO));
    }
    faults.push(Fault::new(Source, Read { after: 0 }, EIO));
    faults.push(Fault::new(Source, Read { after: MIDWAY }, EIO));
    faults.push(Fault::new(Source, Eintr, 4));
    faults
}

/// One fault of each kind (errno, place, call), for `make test`.
pub fn representative_faults() -> Vec<Fault> {
    use Call::*;
    use Place::*;
    vec![
        Fault::new(Destination, Write { after: MIDWAY }, ENOSPC),
        Fault::new(Destination, Fsync, EIO),
        Fault::new(Destination, Rename, EIO),
        Fault::new(Snapshots, Write { after: 0 }, EIO),
        Fault::new(Snapshots, Rename, EIO),
        Fault::new(Realm, Write { after: 0 }, ENOSPC),
        Fault::new(Realm, Fsync, EIO),
        Fault::new(Source, Read { after: MIDWAY }, EIO),
        Fault::new(Source, Eintr, 4),
    ]
}

/// Every archiver of both providers, with its backup file's extension.
pub const ARCHIVERS: [(&str, &str); 10] = [
    ("tar", "tar"),
    ("targz", "tar.gz"),
    ("tarbz2", "tar.bz2"),
    ("tarxz", "tar.xz"),
    ("tarzst", "tar.zst"),
    ("tar_internal", "tar"),
    ("targz_internal", "tar.gz"),
    ("tarbz2_internal", "tar.bz2"),
    ("tarxz_internal", "tar.xz"),
    ("tarzst_internal", "tar.zst"),
];

/// The run that meets the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A full backup (`--level 0`) replacing the existing level 0 of a chain.
    FullOverExisting,
    /// Level 2 over an existing chain of levels 0 and 1.
    LevelOverChain,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::FullOverExisting => "full over old",
            Scenario::LevelOverChain => "level 2",
        })
    }
}

/// The shim, compiled once per test process into the target directory.
pub fn injector() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let source = workspace_dir().join("tests/faults/shim.c");
            let dir = target_dir().join("faults");
            fs::create_dir_all(&dir).expect("create the injector's directory");
            let lib = dir.join("libaa_fault_shim.so");
            // Built beside and renamed, so a concurrent test process never loads half a file.
            let building = dir.join(format!("libaa_fault_shim.so.{}", std::process::id()));
            let out = Command::new("gcc")
                .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
                .arg(&building)
                .arg(&source)
                .arg("-ldl")
                .output()
                .expect("run gcc");
            assert!(
                out.status.success(),
                "compiling {} failed:\n{}",
                source.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            fs::rename(&building, &lib).expect("install the injector");
            lib
        })
        .clone()
}

/// The environment that makes `aa` (and what it starts) meet `fault` in `sb`, logging each
/// injected fault to `log`.
fn fault_env(fault: &Fault, sb: &Sandbox, log: &Path) -> Vec<(&'static str, OsString)> {
    let canonical = |p: PathBuf| fs::canonicalize(&p).unwrap_or(p).into_os_string();
    let prefix = match fault.place {
        Place::Destination => sb.dest_dir(),
        Place::Snapshots => sb.config_dir().join("snapshots"),
        Place::Realm => sb.config_dir().join("storage"),
        Place::Source => sb.src_dir(),
    };
    let (op, after) = match fault.call {
        Call::Write { after } => ("write", after),
        Call::Read { after } => ("read", after),
        Call::Fsync => ("fsync", 0),
        Call::Rename => ("rename", 0),
        Call::Eintr => ("eintr", 0),
    };
    let mut env = vec![
        ("LD_PRELOAD", injector().into_os_string()),
        ("AA_FAULT_OP", op.into()),
        ("AA_FAULT_PREFIX", canonical(prefix)),
        ("AA_FAULT_ERRNO", fault.errno.to_string().into()),
        ("AA_FAULT_AFTER", after.to_string().into()),
        ("AA_FAULT_LOG", log.as_os_str().to_os_string()),
    ];
    if fault.call == Call::Eintr {
        // Only `aa` installs signal handlers, so only its slow calls can be interrupted; GNU
        // tar and the compressors, which have none, never see EINTR (and do not all retry).
        env.push(("AA_FAULT_ONLY", "aa".into()));
    }
    env
}

/// The source: small files and incompressible ones, so that every writer passes [`MIDWAY`].
fn make_source(sb: &Sandbox) {
    let src = sb.src_dir();
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("a.txt"), "a\n").unwrap();
    fs::write(src.join("d/b.txt"), "b\n").unwrap();
    fs::write(src.join("d/noise.bin"), noise(300 << 10, 1)).unwrap();
}

fn write_spec(sb: &Sandbox) {
    sb.write_spec_text(
        "k",
        &format!(
            "[Content]\npath = {}\ninclude-files = a.txt d\nexclude-files =\n\n[Archive]\n\
             dest-dir = {}\nincremental = yes\nrestarting = yes\n",
            sb.src_dir().display(),
            sb.dest_dir().display()
        ),
    );
}

/// What a failed run must leave as it was: names, kinds, modes and contents of the backups
/// and of the state (not times: a directory's changes with the partial files made and
/// removed in it), without the lock files, which name the last process.
fn state(sb: &Sandbox) -> (TreeRecord, TreeRecord) {
    let timeless = |record: TreeRecord| -> TreeRecord {
        record
            .into_iter()
            .map(|(k, mut e)| {
                (e.mtime_secs, e.mtime_nanos) = (0, 0);
                (k, e)
            })
            .collect()
    };
    (
        timeless(record_tree(&sb.dest_dir())),
        timeless(without(&record_tree(&sb.config_dir()), b"locks")),
    )
}

/// Partial backups, snapshot working files and realm temporary files.
fn leftovers(sb: &Sandbox) -> Vec<String> {
    let (dest, config) = state(sb);
    dest.keys()
        .chain(config.keys())
        .map(|k| show(k))
        .filter(|name| {
            let base = name.rsplit('/').next().unwrap_or(name);
            base.contains("._partial") || base.starts_with(".working-") || base.ends_with(".tmp")
        })
        .collect()
}

fn diff_lines(what: &str, before: &TreeRecord, after: &TreeRecord) -> Result<(), String> {
    let diff = tree_diff(before, after, Compare::default());
    if diff.is_empty() {
        Ok(())
    } else {
        Err(format!("{what} changed: {}", diff.join("; ")))
    }
}

/// The chain the last run left restores the source with GNU tar.
fn chain_restores(sb: &Sandbox, ext: &str, levels: &[&str]) -> Result<(), String> {
    let archives: Vec<PathBuf> = levels
        .iter()
        .map(|l| sb.dest_dir().join(format!("{l}.{ext}")))
        .collect();
    let refs: Vec<&Path> = archives.iter().map(PathBuf::as_path).collect();
    let restored = sb.path().join("restored");
    let _ = fs::remove_dir_all(&restored);
    gnu_restore_incremental(&refs, &restored)?;
    let dirs_timeless = |mut record: TreeRecord| {
        // An incremental chain does not restore directory times exactly.
        record
            .values_mut()
            .filter(|e| e.kind == Kind::Dir)
            .for_each(|e| (e.mtime_secs, e.mtime_nanos) = (0, 0));
        record
    };
    let expected = dirs_timeless(record_tree(&sb.src_dir()));
    let got = dirs_timeless(record_tree(&restored));
    let diff = tree_diff(&expected, &got, Compare::default());
    if diff.is_empty() {
        Ok(())
    } else {
        Err(format!("restored chain differs: {}", diff.join("; ")))
    }
}

/// Runs one case; `Ok` when nothing was lost, else what went wrong.
pub fn check(archiver: &str, ext: &str, scenario: Scenario, fault: &Fault) -> Result<(), String> {
    let sb = Sandbox::new();
    make_source(&sb);
    fs::create_dir_all(sb.config_dir().join("storage")).unwrap();
    write_spec(&sb);
    let run = |extra: &[&str]| sb.aa().args(["-a", archiver]).args(extra).arg("k");
    for level in ["0", "1"] {
        if level == "1" {
            fs::write(sb.src_dir().join("d/b.txt"), "b, level 1\n").unwrap();
        }
        let out = run(&[]).run();
        if out.code() != Some(0) {
            return Err(format!("setup: level {level} failed:\n{out}"));
        }
    }
    let (args, chain): (&[&str], &[&str]) = match scenario {
        Scenario::FullOverExisting => {
            fs::write(sb.src_dir().join("a.txt"), "a, again\n").unwrap();
            (&["--level", "0"], &["k"])
        }
        Scenario::LevelOverChain => {
            fs::write(sb.src_dir().join("d/b.txt"), "b, level 2\n").unwrap();
            fs::write(sb.src_dir().join("d/new.bin"), noise(200 << 10, 2)).unwrap();
            (&[], &["k", "k.1", "k.2"])
        }
    };
    let before = state(&sb);
    let log = sb.path().join("faults.log");
    let mut faulty = run(args);
    for (key, value) in fault_env(fault, &sb, &log) {
        faulty = faulty.env(key, value);
    }
    let out = faulty.run();
    let fired = fs::read_to_string(&log).unwrap_or_default();
    if fired.is_empty() {
        return Err(format!("the fault never fired:\n{out}"));
    }
    let all = out.all_output();
    if let Some(marker) = ["panicked", "RUST_BACKTRACE", "stack backtrace"]
        .into_iter()
        .find(|m| all.contains(m))
    {
        return Err(format!("{marker}:\n{out}"));
    }
    let Some(code) = out.code() else {
        return Err(format!("killed by a signal:\n{out}"));
    };
    if fault.call == Call::Eintr {
        if code != 0 || !out.error_lines().is_empty() {
            return Err(format!("EINTR was not retried:\n{out}"));
        }
        return chain_restores(&sb, ext, chain);
    }
    if code == 0 {
        return Err(format!("the run succeeded despite the fault:\n{out}"));
    }
    let after = state(&sb);
    diff_lines("backups", &before.0, &after.0).map_err(|e| format!("{e}\n{out}"))?;
    diff_lines("snapshots/realm", &before.1, &after.1).map_err(|e| format!("{e}\n{out}"))?;
    let left = leftovers(&sb);
    if !left.is_empty() {
        return Err(format!("left {}:\n{out}", left.join(", ")));
    }
    let errors = out.error_lines();
    if errors.is_empty() {
        return Err(format!("no `aa:` error line:\n{out}"));
    }
    if let Some(line) = out
        .stderr
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with("aa: "))
    {
        return Err(format!("a message goes on over lines ({line:?}):\n{out}"));
    }
    // GNU tar reports a short write (a disk filling up) by its count, not by the errno.
    let says = |l: &&str| l.contains(fault.message()) || l.contains("Wrote only");
    if !errors.iter().any(says) {
        return Err(format!(
            "no error line says \"{}\":\n{out}",
            fault.message()
        ));
    }

    let next = run(args).run();
    if next.code() != Some(0) {
        return Err(format!("the next run failed:\n{next}"));
    }
    chain_restores(&sb, ext, chain)
}

/// One row of the table.
pub struct Row {
    pub fault: String,
    pub archiver: String,
    pub scenario: String,
    pub outcome: Result<(), String>,
}

/// Runs `faults` x `archivers` x both scenarios, `workers` cases at a time.
pub fn run_matrix(faults: &[Fault], archivers: &[(&str, &str)], workers: usize) -> Vec<Row> {
    let mut cases = Vec::new();
    for fault in faults {
        for &(archiver, ext) in archivers {
            for scenario in [Scenario::FullOverExisting, Scenario::LevelOverChain] {
                cases.push((*fault, archiver, ext, scenario));
            }
        }
    }
    injector();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let rows = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(fault, archiver, ext, scenario)) = cases.get(i) else {
                    break;
                };
                let outcome = std::panic::catch_unwind(|| check(archiver, ext, scenario, &fault))
                    .unwrap_or_else(|p| {
                        let text = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        Err(format!("the harness panicked: {text}"))
                    });
                rows.lock().unwrap().push((
                    i,
                    Row {
                        fault: fault.to_string(),
                        archiver: archiver.to_string(),
                        scenario: scenario.to_string(),
                        outcome,
                    },
                ));
            });
        }
    });
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by_key(|(i, _)| *i);
    rows.into_iter().map(|(_, row)| row).collect()
}

/// The table: one line per case, "nothing lost" or the first line of what went wrong.
pub fn table(rows: &[Row]) -> String {
    let width = |f: fn(&Row) -> &str| rows.iter().map(|r| f(r).len()).max().unwrap_or(0);
    let (wf, wa, ws) = (
        width(|r| &r.fault).max(5),
        width(|r| &r.archiver).max(8),
        width(|r| &r.scenario).max(8),
    );
    let mut out = format!(
        "{:wf$}  {:wa$}  {:ws$}  outcome\n",
        "fault", "archiver", "scenario"
    );
    for r in rows {
        let outcome = match &r.outcome {
            Ok(()) => "nothing lost".to_string(),
            Err(e) => format!("FAILED: {}", e.lines().next().unwrap_or("")),
        };
        out += &format!(
            "{:wf$}  {:wa$}  {:ws$}  {outcome}\n",
            r.fault, r.archiver, r.scenario
        );
    }
    out
}

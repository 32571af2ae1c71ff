//! Two sandboxes, one scenario: the machinery of the differential tests.
//!
//! A [`Pair`] holds one sandbox for the Python `aa` 2.0.6 and one for ours, built from the same
//! fixture. Every file written and every argument passed goes to both, with `@SB@` standing for
//! the sandbox's own path; every output read back has that path replaced by `@SB@` again, so the
//! two runs can be compared as text. [`Pair::assert_same_state`] compares what a user would look
//! at afterwards: the backup files, their members and content, and the state under the user
//! configuration directory. `AA_DIFF_TRACE=1` prints every run of both programs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aa_tests::{
    aa_bin, detect_format, gnu_extract, gnu_list, python_aa, record_tree, show, tree_diff,
    under_ci, Compare, Sandbox, TreeRecord,
};

/// Stands for a sandbox's path in spec text, arguments and normalised output.
pub const SB: &str = "@SB@";

/// Modification times before this are the fixtures' own (2020); later ones were made by the
/// scenario while it ran and differ between the two sandboxes by the time between the runs.
const FIXTURE_EPOCH_END: i64 = 1_700_000_000;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// One implementation and its sandbox.
pub struct Side {
    pub label: &'static str,
    program: PathBuf,
    sandbox: Sandbox,
    /// The Python `aa` asks its standard streams for the terminal width when printing `--list`
    /// and fails with an exception (OSError, or a negative width) without a sized terminal;
    /// ours must not need one, so it runs with stdin from /dev/null.
    needs_terminal: bool,
}

impl Side {
    pub fn root(&self) -> &Path {
        self.sandbox.path()
    }

    /// `rel` inside the sandbox (`@SB@` expanded, so paths from spec text work too).
    pub fn path(&self, rel: &str) -> PathBuf {
        let rel = rel.strip_prefix("@SB@/").unwrap_or(rel);
        self.root().join(rel)
    }

    pub fn fill(&self, text: &str) -> String {
        text.replace(SB, &self.root().display().to_string())
    }

    fn normalise(&self, text: &str) -> String {
        text.replace(&self.root().display().to_string(), SB)
    }

    /// Runs the side's program with the sandbox's configuration and spec directories and
    /// `$HOME`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_program(&self.program, self.needs_terminal, self.label, args)
    }

    /// Runs the Python `aa` `python` in this side's sandbox (to prepare state for ours).
    pub fn run_python(&self, python: &Side, args: &[&str]) -> Run {
        self.run_program(&python.program, true, python.label, args)
    }

    fn run_program(&self, program: &Path, needs_terminal: bool, label: &str, args: &[&str]) -> Run {
        let mut cmd = Command::new(program);
        cmd.arg("--user-config-dir")
            .arg(self.sandbox.config_dir())
            .arg("--archive-specs-dir")
            .arg(self.sandbox.specs_dir())
            .args(args.iter().map(|a| self.fill(a)))
            .env("HOME", self.root().join("home"))
            .env_remove("AA_PLUGIN_PATH")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LOG")
            .env_remove("COLUMNS")
            .current_dir(self.root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The master side must stay open while the child runs.
        let _master = if needs_terminal {
            let (master, slave) = sized_pty();
            cmd.stdin(Stdio::from(slave));
            Some(master)
        } else {
            // No terminal: ours takes the listing width from $COLUMNS, here the width of the
            // original's pseudo-terminal, so both lay out --list the same way.
            cmd.stdin(Stdio::null())
                .env("COLUMNS", PTY_COLUMNS.to_string());
            None
        };
        let command = format!("{label} (in {}'s sandbox) {}", self.label, args.join(" "));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let pid = rustix::process::Pid::from_child(&child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = match rx.recv_timeout(RUN_TIMEOUT) {
            Ok(output) => output.expect("wait for aa"),
            Err(_) => {
                // Not yet waited for (the thread still waits), so the pid is still the child's.
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                panic!("{command} did not finish within {RUN_TIMEOUT:?}");
            }
        };
        Run {
            command,
            code: output.status.code(),
            stdout: self.normalise(&String::from_utf8_lossy(&output.stdout)),
            stderr: self.normalise(&String::from_utf8_lossy(&output.stderr)),
        }
    }
}

/// Width of the original's pseudo-terminal, wide enough that `--list` never shortens a path.
const PTY_COLUMNS: u16 = 400;

/// A pseudo-terminal [`PTY_COLUMNS`] wide.
fn sized_pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 50,
        ws_col: PTY_COLUMNS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: valid out-pointers for the two descriptors, no name buffer, default termios and
    // a valid winsize.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty succeeded, so both are fresh descriptors owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// The outcome of one run, with the sandbox path replaced by `@SB@`.
pub struct Run {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}  -> exit {:?}", self.command, self.code)?;
        for line in self.stdout.lines() {
            writeln!(f, "  out| {line}")?;
        }
        for line in self.stderr.lines() {
            writeln!(f, "  err| {line}")?;
        }
        Ok(())
    }
}

impl Run {
    #[track_caller]
    pub fn assert_no_panic(&self) {
        assert!(
            self.code.is_some() && !self.stderr.contains("panicked"),
            "crashed:\n{self}"
        );
    }
}

/// The same scenario in two sandboxes: the Python `aa` 2.0.6 and ours.
pub struct Pair {
    pub py: Side,
    pub ours: Side,
}

impl Pair {
    /// Two empty sandboxes, or `None` (after a loud message) when the Python `aa` is not
    /// installed and the run is not under CI. Under CI its absence fails the test.
    pub fn new() -> Option<Pair> {
        let python = reference_aa()?;
        let side = |label, program, needs_terminal| {
            let sandbox = Sandbox::new();
            // A second destination for the scenarios that move backups elsewhere (dest-dir
            // must exist: neither program creates it).
            sandbox.mkdir("dest2");
            Side {
                label,
                program,
                sandbox,
                needs_terminal,
            }
        };
        Some(Pair {
            py: side("python-aa", python, true),
            ours: side("ours", aa_bin(), false),
        })
    }

    /// Like [`Pair::new`], with `fixture(parent)` building the same tree in both `src/`.
    pub fn with_tree(fixture: impl Fn(&Path) -> PathBuf) -> Option<Pair> {
        let pair = Pair::new()?;
        pair.each(|side| {
            fixture(&side.path("src"));
        });
        Some(pair)
    }

    pub fn sides(&self) -> [&Side; 2] {
        [&self.py, &self.ours]
    }

    pub fn each(&self, f: impl Fn(&Side)) {
        for side in self.sides() {
            f(side);
        }
    }

    /// Writes `text` (with `@SB@` expanded) to `rel` in both sandboxes.
    pub fn write(&self, rel: &str, text: &str) {
        self.each(|side| {
            let path = side.path(rel);
            fs::create_dir_all(path.parent().expect("a parent")).expect("create parent");
            fs::write(&path, side.fill(text))
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        });
    }

    /// Writes the archive specification `specs/NAME.aa`.
    pub fn spec(&self, name: &str, text: &str) {
        self.write(&format!("specs/{name}.aa"), text);
    }

    /// Writes the user configuration file `config/aa.conf`.
    pub fn conf(&self, text: &str) {
        self.write("config/aa.conf", text);
    }

    /// Runs both and returns (python, ours), without comparing anything.
    pub fn run_both(&self, args: &[&str]) -> (Run, Run) {
        let py = self.py.run(args);
        let ours = self.ours.run(args);
        if std::env::var_os("AA_DIFF_TRACE").is_some() {
            eprint!("{py}{ours}");
        }
        ours.assert_no_panic();
        (py, ours)
    }

    /// Runs both and asserts the same exit code.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> (Run, Run) {
        let (py, ours) = self.run_both(args);
        assert_eq!(
            py.code,
            ours.code,
            "exit codes differ for `aa {}`:\n{py}{ours}",
            args.join(" ")
        );
        (py, ours)
    }

    /// Runs both, asserts the same exit code and then the same state.
    #[track_caller]
    pub fn step(&self, args: &[&str]) -> (Run, Run) {
        let runs = self.run(args);
        self.assert_same_state(&format!("after `aa {}`", args.join(" ")), &runs);
        runs
    }

    /// Compares what the runs left behind: the files in `dest/`, `dest2/` and the sandbox root
    /// (names exactly), each archive's format, member names and extracted content, and the names
    /// in `config/snapshots` and `config/storage` with the variables of each storage realm.
    #[track_caller]
    pub fn assert_same_state(&self, context: &str, runs: &(Run, Run)) {
        let py = State::read(&self.py);
        let ours = State::read(&self.ours);
        let diff = py.diff(&ours);
        if !diff.is_empty() {
            panic!(
                "{context}: state differs (python-aa vs ours):\n  {}\n\nthe runs:\n{}{}",
                diff.join("\n  "),
                runs.0,
                runs.1
            );
        }
    }

    /// Like [`Pair::assert_same_state`] where the two deliberately made different backup
    /// files: only `files` (which both must have made) are compared, and all the other state.
    #[track_caller]
    pub fn assert_same_state_of(&self, files: &[&str], context: &str, runs: &(Run, Run)) {
        let (mut py, mut ours) = (State::read(&self.py), State::read(&self.ours));
        for (label, state) in [("python-aa", &mut py), ("ours", &mut ours)] {
            state.files.retain(|name, _| files.contains(&name.as_str()));
            assert_eq!(
                state.files.len(),
                files.len(),
                "{context}: {label} did not make all of {files:?}"
            );
        }
        let diff = py.diff(&ours);
        assert!(
            diff.is_empty(),
            "{context}: state differs (python-aa vs ours):\n  {}\n\nthe runs:\n{}{}",
            diff.join("\n  "),
            runs.0,
            runs.1
        );
    }
}

impl Pair {
    /// Asserts the backup files the reference made so far (`dest/...`, `dest2/...`, `./...`),
    /// so that a scenario in which both programs silently did nothing cannot pass.
    #[track_caller]
    pub fn expect_files(&self, expected: &[&str]) {
        let made: Vec<String> = State::read(&self.py).files.into_keys().collect();
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        assert_eq!(
            made, expected,
            "the Python aa made other files than the scenario expects"
        );
    }

    /// Asserts the members of one archive the reference made (directories without `/`).
    #[track_caller]
    pub fn expect_members(&self, archive: &str, expected: &[&str]) {
        let members: Vec<String> = gnu_list(&self.py.path(archive))
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect();
        assert_eq!(
            members, expected,
            "{archive}: the Python aa stored other members than the scenario expects"
        );
    }
}

/// The Python `aa`, or `None` with a loud message (a failure under CI).
fn reference_aa() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("AA_PYTHON_AA").filter(|b| !b.is_empty()) {
        assert!(
            Path::new(&bin).is_file(),
            "AA_PYTHON_AA={} is not a file",
            Path::new(&bin).display()
        );
    }
    match python_aa() {
        Some(bin) => Some(bin),
        None if under_ci() => panic!(
            "the Python aa 2.0.6 is not installed, and CI is set: run `make python-aa` \
             (tests/setup-python-aa.sh) or set AA_PYTHON_AA"
        ),
        None => {
            // Written to the stderr handle, not with eprintln!, which the test harness captures:
            // a skipped suite must be visible. Once per test process.
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!!!! SKIPPED: the differential tests need the Python aa 2.0.6; run \
                     `make python-aa` (tests/setup-python-aa.sh) or set AA_PYTHON_AA. !!!!!\n"
                );
            });
            None
        }
    }
}

// ---- state -------------------------------------------------------------------------------------

/// One file found in an output directory.
#[derive(Debug, PartialEq)]
struct OutputFile {
    format: &'static str,
    /// Member names (GNU tar's `dir/` spelt `dir`); empty for a file that is not an archive.
    members: BTreeSet<Vec<u8>>,
    /// The archive extracted on its own into an empty directory.
    content: TreeRecord,
}

struct State {
    /// Output-relative path (`dest/x.tar.gz`, `./x.tar`) to what it holds.
    files: BTreeMap<String, OutputFile>,
    snapshots: Option<Vec<String>>,
    storage: Option<Vec<String>>,
    /// Realm file name to its variables, normalised by [`realm_variables`].
    realms: BTreeMap<String, BTreeMap<String, String>>,
    /// `src/tree` with exact times, for [`accept_rounded_times`].
    source: TreeRecord,
}

impl State {
    fn read(side: &Side) -> State {
        let mut files = BTreeMap::new();
        let scratch = tempfile::tempdir().expect("scratch directory");
        for dir in ["dest", "dest2"] {
            let base = side.path(dir);
            if base.is_dir() {
                for rel in files_under(&base) {
                    let path = base.join(&rel);
                    let key = format!("{dir}/{rel}");
                    files.insert(key.clone(), OutputFile::read(&path, scratch.path(), &key));
                }
            }
        }
        // A backup made without any dest-dir lands in the current directory (the sandbox).
        for entry in fs::read_dir(side.root()).expect("read sandbox") {
            let entry = entry.expect("entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().expect("type").is_file() && name.contains(".tar") {
                let key = format!("./{name}");
                files.insert(
                    key.clone(),
                    OutputFile::read(&entry.path(), scratch.path(), &key),
                );
            }
        }
        let names = |dir: &str| {
            let dir = side.path(dir);
            dir.is_dir().then(|| files_under(&dir))
        };
        let storage = names("config/storage");
        let realms = storage
            .iter()
            .flatten()
            .filter(|name| name.ends_with(".realm"))
            .map(|name| {
                let text =
                    fs::read_to_string(side.path("config/storage").join(name)).expect("read realm");
                (name.clone(), realm_variables(&text))
            })
            .collect();
        let tree = side.path("src/tree");
        State {
            files,
            snapshots: names("config/snapshots"),
            storage,
            realms,
            source: if tree.is_dir() {
                record_tree(&tree)
            } else {
                TreeRecord::new()
            },
        }
    }

    fn diff(&self, ours: &State) -> Vec<String> {
        let mut out = Vec::new();
        let py_names: Vec<_> = self.files.keys().collect();
        let our_names: Vec<_> = ours.files.keys().collect();
        if py_names != our_names {
            out.push(format!(
                "backup files: python-aa {py_names:?}, ours {our_names:?}"
            ));
        }
        for (name, py) in &self.files {
            let Some(our) = ours.files.get(name) else {
                continue;
            };
            if py.format != our.format {
                out.push(format!(
                    "{name}: format python-aa {}, ours {}",
                    py.format, our.format
                ));
            }
            if py.members != our.members {
                let only = |a: &BTreeSet<Vec<u8>>, b: &BTreeSet<Vec<u8>>| {
                    a.difference(b).map(|m| show(m)).collect::<Vec<_>>()
                };
                out.push(format!(
                    "{name}: members only in python-aa's {:?}, only in ours {:?}",
                    only(&py.members, &our.members),
                    only(&our.members, &py.members)
                ));
            } else {
                let py_content = accept_rounded_times(&py.content, &our.content, &ours.source);
                for line in tree_diff(&py_content, &our.content, Compare::default()) {
                    out.push(format!("{name}: extracted content: {line}"));
                }
            }
        }
        let pairs = [
            ("config/snapshots", &self.snapshots, &ours.snapshots),
            ("config/storage", &self.storage, &ours.storage),
        ];
        for (what, py, our) in pairs {
            // An empty directory and no directory are the same to a user.
            let (py, our) = (
                py.clone().unwrap_or_default(),
                our.clone().unwrap_or_default(),
            );
            if py != our {
                out.push(format!("{what}: python-aa {py:?}, ours {our:?}"));
            }
        }
        for (name, py) in &self.realms {
            if let Some(our) = ours.realms.get(name) {
                if py != our {
                    out.push(format!(
                        "config/storage/{name}: python-aa {py:?}, ours {our:?}"
                    ));
                }
            }
        }
        out
    }
}

impl OutputFile {
    fn read(path: &Path, scratch: &Path, key: &str) -> OutputFile {
        let format = detect_format(path);
        if format == "unknown" {
            return OutputFile {
                format,
                members: BTreeSet::new(),
                content: TreeRecord::new(),
            };
        }
        let into = scratch.join(key.replace('/', "_"));
        gnu_extract(path, &into);
        OutputFile {
            format,
            members: gnu_list(path),
            content: fixture_times_only(record_tree(&into)),
        }
    }
}

/// The original's internal archivers (Python's tarfile) store a time as a float rounded to
/// whole seconds, so a source time of `S.999999999` is stored as `S + 1`; GNU tar and ours
/// truncate to `S`. That bug of the original is accepted here, and only there: where the
/// original has exactly one second more than ours, ours has the source's seconds, and the
/// source's nanoseconds are within a microsecond of the next second. Returns `py` with such
/// times replaced by ours.
fn accept_rounded_times(py: &TreeRecord, ours: &TreeRecord, source: &TreeRecord) -> TreeRecord {
    let mut py = py.clone();
    for (path, entry) in py.iter_mut() {
        let (Some(our), Some(src)) = (ours.get(path), source.get(path)) else {
            continue;
        };
        if entry.mtime_secs == our.mtime_secs + 1
            && our.mtime_secs == src.mtime_secs
            && src.mtime_nanos >= 999_999_000
        {
            entry.mtime_secs = our.mtime_secs;
        }
    }
    py
}

/// Keeps the fixtures' modification times and blanks the ones the scenario made while it ran
/// (see [`FIXTURE_EPOCH_END`]), so that only meaningful times are compared.
pub fn fixture_times_only(mut snap: TreeRecord) -> TreeRecord {
    for entry in snap.values_mut() {
        if entry.mtime_secs >= FIXTURE_EPOCH_END {
            entry.mtime_secs = 0;
        }
        entry.mtime_nanos = 0;
    }
    snap
}

/// Relative paths of the files (not directories) under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let entry = entry.expect("entry");
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().expect("type").is_dir() {
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// The variables of a storage realm (`[AutoArchive]` section, `name = value` lines), with dates
/// replaced by `<date>` (the two runs may straddle midnight) and sizes by `<size>` (an archive's
/// size depends on the times of the files made while the scenario ran).
pub fn realm_variables(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let (key, value) = (key.trim().to_string(), value.trim().to_string());
            let is_date = value.len() == 10
                && value.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                });
            let value = if is_date {
                "<date>".to_string()
            } else if key.starts_with("archiving-size-level") {
                "<size>".to_string()
            } else {
                value
            };
            (key, value)
        })
        .collect()
}

// ---- restoring chains --------------------------------------------------------------------------

/// Restores `archives` (paths relative to the sandbox) in order with GNU tar's incremental
/// extraction, which also applies the deletions recorded in each level, and snapshots the result
/// with only the fixtures' times kept.
pub fn restore_chain(side: &Side, archives: &[&str]) -> TreeRecord {
    let into = side.path("restored");
    if into.exists() {
        fs::remove_dir_all(&into).expect("clear restore directory");
    }
    fs::create_dir_all(&into).expect("create restore directory");
    for archive in archives {
        let out = Command::new("tar")
            .args(["--listed-incremental=/dev/null", "-xpf"])
            .arg(side.path(archive))
            .arg("-C")
            .arg(&into)
            .output()
            .expect("run GNU tar");
        assert!(
            out.status.success(),
            "{}: restoring {archive}: {}",
            side.label,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fixture_times_only(record_tree(&into))
}

/// The source tree `src/tree` of a side, with only the fixtures' times kept.
pub fn source_tree(side: &Side) -> TreeRecord {
    fixture_times_only(record_tree(&side.path("src/tree")))
}

// ---- --list ------------------------------------------------------------------------------------

/// The lines of a plain `--list` as whitespace-separated fields (name, root, destination,
/// levels), as a set: the original prints orphaned archives in hash order.
pub fn list_rows(stdout: &str) -> BTreeSet<Vec<String>> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The blocks of `--list --verbose` ("Key: value" lines, a blank line between archives), keyed
/// by the `Name` field.
pub fn list_blocks(stdout: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut blocks = BTreeMap::new();
    for block in stdout.split("\n\n") {
        let fields: BTreeMap<String, String> = block
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| match l.split_once(':') {
                Some((k, v)) => (
                    k.trim().to_string(),
                    v.split_whitespace().collect::<Vec<_>>().join(" "),
                ),
                None => (l.trim().to_string(), String::new()),
            })
            .collect();
        if fields.is_empty() {
            continue;
        }
        let name = fields.get("Name").cloned().unwrap_or_default();
        blocks.insert(name, fields);
    }
    blocks
}

//! Running `aa` as a black box: an archive specification file, a private sandbox directory
//! (its own config, spec, source, destination and home directories) and an `aa` invocation in
//! it with a time limit, whose output the tests assert on.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

use crate::{aa_bin, test_time_zone};

/// An archive specification file's content.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub path: Option<PathBuf>,
    /// Entries of `include-files`, written space-separated (quote them yourself if needed).
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub archiver: Option<String>,
    pub dest_dir: Option<PathBuf>,
}

impl Spec {
    pub fn new(path: &Path, include: &[&str], dest_dir: &Path) -> Spec {
        Spec {
            path: Some(path.to_path_buf()),
            include: include.iter().map(|s| s.to_string()).collect(),
            dest_dir: Some(dest_dir.to_path_buf()),
            ..Spec::default()
        }
    }

    pub fn archiver(mut self, archiver: &str) -> Spec {
        self.archiver = Some(archiver.to_string());
        self
    }

    pub fn exclude(mut self, exclude: &[&str]) -> Spec {
        self.exclude = exclude.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn render(&self) -> String {
        let mut s = String::from("[Content]\n");
        if let Some(path) = &self.path {
            s += &format!("path = {}\n", path.display());
        }
        s += &format!("include-files = {}\n", self.include.join(" "));
        // Always present, even empty: the original program requires the option.
        s += &format!("exclude-files = {}\n", self.exclude.join(" "));
        s += "\n[Archive]\n";
        if let Some(archiver) = &self.archiver {
            s += &format!("archiver = {archiver}\n");
        }
        if let Some(dest) = &self.dest_dir {
            s += &format!("dest-dir = {}\n", dest.display());
        }
        s
    }
}

/// A private directory for one test: `config/`, `specs/`, `src/`, `dest/` and a `home/` used as
/// `$HOME`, so nothing outside it is read or written.
pub struct Sandbox {
    tmp: TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let tmp = tempfile::Builder::new()
            .prefix("aa-test-")
            .tempdir()
            .expect("create sandbox");
        for sub in ["config", "specs", "src", "dest", "home"] {
            fs::create_dir(tmp.path().join(sub)).expect("create sandbox directory");
        }
        Sandbox { tmp }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.path().join("config")
    }

    pub fn specs_dir(&self) -> PathBuf {
        self.path().join("specs")
    }

    /// Where fixtures are built (`src/tree`) and the usual `path` of a spec.
    pub fn src_dir(&self) -> PathBuf {
        self.path().join("src")
    }

    pub fn dest_dir(&self) -> PathBuf {
        self.path().join("dest")
    }

    /// A fresh directory `name` inside the sandbox.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        fs::create_dir_all(&dir).expect("create directory");
        dir
    }

    /// Writes `specs/NAME.aa` and returns its path.
    pub fn write_spec(&self, name: &str, spec: &Spec) -> PathBuf {
        self.write_spec_text(name, &spec.render())
    }

    pub fn write_spec_text(&self, name: &str, text: &str) -> PathBuf {
        let path = self.specs_dir().join(format!("{name}.aa"));
        fs::write(&path, text).expect("write spec");
        path
    }

    /// An `aa` command with the sandbox's config and spec directories.
    pub fn aa(&self) -> Aa {
        self.aa_at(&aa_bin())
    }

    /// Like [`Sandbox::aa`], for an `aa` binary at another place (an installed copy).
    pub fn aa_at(&self, program: &Path) -> Aa {
        let mut cmd = Command::new(program);
        // As from an interactive shell: a test harness started in the background by a
        // non-interactive shell ignores SIGINT, and `aa` keeps an ignored signal ignored.
        // Raw libc: rustix has no safe way to reset a disposition, and std none at all.
        // SAFETY: pre_exec runs the closure between fork and exec, where only async-signal-safe
        // calls are allowed; signal(2) with SIG_DFL is one and touches no memory of ours.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                    libc::signal(signal, libc::SIG_DFL);
                }
                Ok(())
            });
        }
        cmd.arg("--user-config-dir")
            .arg(self.config_dir())
            .arg("--archive-specs-dir")
            .arg(self.specs_dir())
            .env_remove("AA_PLUGIN_PATH")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LOG")
            .env("HOME", self.path().join("home"))
            .env("TZ", &test_time_zone().0)
            .current_dir(self.path())
            .stdin(Stdio::null());
        Aa { cmd }
    }
}

/// A prepared `aa` invocation.
pub struct Aa {
    cmd: Command,
}

/// How long one `aa` run may take before the test gives up on it.
const AA_TIMEOUT: Duration = Duration::from_secs(60);

impl Aa {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Aa {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Aa {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Aa {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Aa {
        self.cmd.env_remove(key);
        self
    }

    /// Starts `aa` in a process group of its own (with everything it starts, such as GNU tar
    /// and a compressor), so that a test can kill the whole group at once, as a power cut
    /// would stop them. Output is discarded.
    pub fn spawn(mut self) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let description = format!("{:?}", self.cmd);
        self.cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {description}: {e}"))
    }

    /// Like [`Aa::spawn`], with the output kept for the caller (`wait_with_output`).
    pub fn spawn_capturing(mut self) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let description = format!("{:?}", self.cmd);
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {description}: {e}"))
    }

    /// Runs `aa`, killing it if it hangs.
    pub fn run(mut self) -> AaOutput {
        let description = format!("{:?}", self.cmd);
        let child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {description}: {e}"));
        let pid = rustix::process::Pid::from_child(&child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = match rx.recv_timeout(AA_TIMEOUT) {
            Ok(output) => output,
            Err(_) => {
                // Our own child, not yet waited for (the thread still waits), so the pid is
                // still its own.
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                panic!("{description} did not finish within {AA_TIMEOUT:?}");
            }
        }
        .expect("wait for aa");
        AaOutput {
            command: description,
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The outcome of an `aa` run.
pub struct AaOutput {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for AaOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n  exit: {}\n  stdout:\n{}\n  stderr:\n{}",
            self.command,
            self.status,
            indent(&self.stdout),
            indent(&self.stderr)
        )
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl AaOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout followed by stderr.
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Lines of stderr that start with `aa: ` (the one-line error format).
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("aa: "))
            .collect()
    }

    #[track_caller]
    pub fn assert_no_panic(&self) {
        let all = self.all_output();
        for marker in ["panicked", "RUST_BACKTRACE", "stack backtrace", "SIGSEGV"] {
            assert!(
                !all.contains(marker),
                "aa output contains {marker:?}:\n{self}"
            );
        }
        assert!(
            self.status.code().is_some(),
            "aa was killed by a signal:\n{self}"
        );
    }

    #[track_caller]
    pub fn assert_success(&self) {
        self.assert_no_panic();
        assert_eq!(self.code(), Some(0), "aa should succeed:\n{self}");
    }

    /// Exit code 1, at least one `aa: ` error line, no panic.
    #[track_caller]
    pub fn assert_clean_failure(&self) {
        self.assert_no_panic();
        assert_eq!(
            self.code(),
            Some(1),
            "aa should fail with exit code 1:\n{self}"
        );
        assert!(
            !self.error_lines().is_empty(),
            "aa failed without an `aa: ` error line:\n{self}"
        );
    }
}

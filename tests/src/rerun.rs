//! Re-running one test in a child process: as `nobody` (permission bits deny nothing to root,
//! and the tests often run as root), or with a process-wide variable such as `PATH` changed
//! without disturbing the tests running beside it.

use std::ffi::OsStr;
use std::fs;
use std::process::Command;

use crate::{chmod, under_ci};

/// Set in the environment of a test re-run by [`rerun_test`]: the child runs the test's body.
pub const RERUN_VAR: &str = "AA_TEST_RERUN";

/// Whether this process is the child [`rerun_test`] started for test `name`.
pub fn is_rerun_of(name: &str) -> bool {
    std::env::var_os(RERUN_VAR).is_some_and(|v| v == name)
}

/// Who runs the child of [`rerun_test`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    /// The same user as the test.
    Same,
    /// User and group 65534 (`nobody`/`nogroup`), no supplementary groups: permission bits
    /// only deny anything to an unprivileged user, and the tests often run as root.
    Nobody,
}

/// Runs test `name` (an exact name) of the current test binary again in a child process with
/// `env` added and [`RERUN_VAR`] set, and panics unless that one test passed there. Tests use
/// it for what a test cannot do in its own process: drop root (`RunAs::Nobody`), or change a
/// process-wide variable such as `PATH` without disturbing the tests running beside it.
///
/// For `RunAs::Nobody` the binary is copied into a fresh world-readable directory under
/// `/tmp`, so it runs even when the build lies under a 0700 home; the child gets `TMPDIR=/tmp`
/// and `/` as working directory for the same reason. When the user cannot be changed (not
/// root, or no `CAP_SETUID`), the test is skipped with a message, and fails under CI.
#[track_caller]
pub fn rerun_test(name: &str, run_as: RunAs, env: &[(&str, &OsStr)]) {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("the test binary's path");
    let copy_dir;
    let mut cmd = match run_as {
        RunAs::Same => Command::new(&exe),
        RunAs::Nobody => {
            copy_dir = tempfile::Builder::new()
                .prefix("aa-rerun-")
                .tempdir_in("/tmp")
                .expect("create a directory under /tmp");
            chmod(copy_dir.path(), 0o755);
            let copy = copy_dir.path().join("test-binary");
            fs::copy(&exe, &copy).expect("copy the test binary");
            chmod(&copy, 0o755);
            let mut cmd = Command::new(copy);
            // std drops the supplementary groups along with root.
            cmd.uid(65534).gid(65534);
            cmd.current_dir("/").env("TMPDIR", "/tmp");
            cmd
        }
    };
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(RERUN_VAR, name);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            assert!(
                !under_ci(),
                "{name}: cannot run the test as {run_as:?}: {e}"
            );
            eprintln!("skipped (outside CI only): cannot run {name} as {run_as:?}: {e}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} run as {run_as:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// Whether this process runs as root, for whom permission bits deny nothing.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// For test `name`, which needs permission bits to deny: `true` when the caller is to run the
/// body now (as an unprivileged user); as root, re-runs the test as `nobody` with
/// [`rerun_test`] and returns `false`.
#[track_caller]
pub fn unprivileged(name: &str) -> bool {
    if is_rerun_of(name) {
        assert!(
            !is_root(),
            "{name}: the re-run as nobody still runs as root"
        );
        return true;
    }
    if !is_root() {
        return true;
    }
    rerun_test(name, RunAs::Nobody, &[]);
    false
}

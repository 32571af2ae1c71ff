//! Loading a plugin for the first time in a child process, so that a file that crashes the
//! dynamic loader or its own initialisers costs a child, not the run: `aa --probe-plugin FILE`
//! (handled by `main` before the command line is parsed) loads FILE as `aa` would, asks it for
//! its identification and prints one line; the parent reads it, or the way the child ended.
//!
//! Which outcomes are a property of the file and may be remembered (`lasting`): the child's
//! answer (a plugin and its provider id, or refused by the ABI checks), a crash signal (SIGSEGV,
//! SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP) and a non-zero exit without an answer (the
//! dynamic loader exits with 127 on an inconsistent file). Never remembered: a library the
//! dynamic loader cannot open (often a missing dependency, which may be installed later), a
//! child that does not answer in time, one killed by another signal (Ctrl-C reaches it too),
//! and a child that cannot be started.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aa_abi::host::PluginLibrary;

use super::verdicts::Verdict;

/// The hidden first argument that makes `aa` a probe.
pub const PROBE_ARG: &str = "--probe-plugin";

/// The answer's first word, so that nothing else a plugin prints is taken for it.
const ANSWER: &str = "aa-plugin-probe-1";

/// A loader that takes longer than this is given up on (not remembered).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The answer's text for a library that failed in the dynamic loader (see the module doc).
const OPEN_FAILURE: &str = "cannot be opened as a library:";

/// The probe's side: loads `path` and prints the answer on standard output.
pub fn probe_main(path: &Path) -> ExitCode {
    let answer = match PluginLibrary::load(path) {
        Ok(library) => match library.identification() {
            Ok(id) => format!("{ANSWER} plugin {}", one_line(&id.provider_id)),
            Err(e) => format!(
                "{ANSWER} refused {}",
                one_line(&format!("the plugin failed to identify itself: {e}"))
            ),
        },
        Err(e) => format!("{ANSWER} refused {}", one_line(&e.to_string())),
    };
    println!("{answer}");
    ExitCode::SUCCESS
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// What a probe found, and whether it may be remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub verdict: Verdict,
    pub lasting: bool,
}

/// Probes `path` with the `aa` binary `exe`.
pub(crate) fn probe(exe: &Path, path: &Path) -> Outcome {
    let passing = |reason: String| Outcome {
        verdict: Verdict::Refused(reason),
        lasting: false,
    };
    let mut child = match Command::new(exe)
        .arg(PROBE_ARG)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // What a plugin prints while loading is not aa's output.
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return passing(format!("cannot be probed: {e}")),
    };
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    // Reads until the child (and anything it started) closes the pipe; a thread, so that a
    // loader that hangs can be given up on.
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.by_ref().take(64 * 1024).read_to_end(&mut out);
        let _ = tx.send(out);
    });
    let out = match rx.recv_timeout(PROBE_TIMEOUT) {
        Ok(out) => out,
        Err(_) => {
            // Our own child, not yet waited for, so the pid is still its own.
            let _ = child.kill();
            let _ = child.wait();
            return passing(format!(
                "does not finish loading within {} s",
                PROBE_TIMEOUT.as_secs()
            ));
        }
    };
    let status = match child.wait() {
        Ok(status) => status,
        Err(e) => return passing(format!("cannot be probed: {e}")),
    };
    judge(status, &out)
}

/// The outcome of a probe that ended with `status` after printing `out`.
fn judge(status: std::process::ExitStatus, out: &[u8]) -> Outcome {
    const CRASHES: [i32; 7] = [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGABRT,
        libc::SIGSYS,
        libc::SIGTRAP,
    ];
    if let Some(signal) = status.signal() {
        // Also when it answered first: a crash at exit (a plugin's finaliser) would end aa's
        // run the same way.
        return Outcome {
            verdict: Verdict::Refused(format!("crashes while loading (signal {signal})")),
            lasting: CRASHES.contains(&signal),
        };
    }
    let answer = String::from_utf8_lossy(out);
    let answer = answer
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(ANSWER)?.strip_prefix(' '));
    match (status.code(), answer) {
        (Some(0), Some(answer)) => {
            if let Some(id) = answer.strip_prefix("plugin ").filter(|id| !id.is_empty()) {
                Outcome {
                    verdict: Verdict::Plugin(id.to_string()),
                    lasting: true,
                }
            } else {
                let reason = answer.strip_prefix("refused ").unwrap_or(answer);
                Outcome {
                    verdict: Verdict::Refused(reason.to_string()),
                    lasting: !reason.starts_with(OPEN_FAILURE),
                }
            }
        }
        (code, _) => Outcome {
            verdict: Verdict::Refused(format!(
                "ends the process while loading (exit status {})",
                code.map_or_else(|| "unknown".to_string(), |c| c.to_string())
            )),
            lasting: code.is_some(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::ExitStatus;

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn answers_signals_and_exits_are_judged() {
        let ok = judge(exited(0), b"noise\naa-plugin-probe-1 plugin TarInternal\n");
        assert_eq!(ok.verdict, Verdict::Plugin("TarInternal".into()));
        assert!(ok.lasting);

        let abi = judge(
            exited(0),
            b"aa-plugin-probe-1 refused incompatible plugin ABI: x\n",
        );
        assert_eq!(
            abi.verdict,
            Verdict::Refused("incompatible plugin ABI: x".into())
        );
        assert!(abi.lasting);

        let open = judge(
            exited(0),
            b"aa-plugin-probe-1 refused cannot be opened as a library: libq.so.1: missing\n",
        );
        assert!(!open.lasting);

        let segv = judge(ExitStatus::from_raw(libc::SIGSEGV), b"");
        assert_eq!(
            segv.verdict,
            Verdict::Refused("crashes while loading (signal 11)".into())
        );
        assert!(segv.lasting);
        assert!(!judge(ExitStatus::from_raw(libc::SIGINT), b"").lasting);

        let ld = judge(exited(127), b"");
        assert_eq!(
            ld.verdict,
            Verdict::Refused("ends the process while loading (exit status 127)".into())
        );
        assert!(ld.lasting);
        // An answer with a failing exit is no answer.
        assert!(matches!(
            judge(exited(1), b"aa-plugin-probe-1 plugin X\n").verdict,
            Verdict::Refused(_)
        ));
        assert!(matches!(
            judge(exited(0), b"plugin X\n").verdict,
            Verdict::Refused(_)
        ));
    }
}

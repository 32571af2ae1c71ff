//! Running one check in isolation: its own temporary directory, its own provider instance, and
//! a `catch_unwind` so a panic (an assertion in a shared test helper, or a bug in the suite)
//! becomes a failed check instead of ending the run.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{mpsc, Once};
use std::thread;
use std::time::Duration;

use aa_abi::host::{PluginLibrary, Provider};
use aa_abi::{ArchiverFeature, BackupType, ProviderIdentification};
use tempfile::TempDir;

/// Why a check did not pass: a one-line summary and optional detail lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub summary: String,
    pub details: Vec<String>,
}

impl Failure {
    pub fn new(summary: impl Into<String>) -> Failure {
        let text: String = summary.into();
        // Keep the summary on one line; anything after the first line becomes detail.
        let mut lines = text.lines();
        let summary = lines.next().unwrap_or_default().to_string();
        Failure {
            summary,
            details: lines.map(str::to_string).collect(),
        }
    }

    pub fn with_details(mut self, details: impl IntoIterator<Item = String>) -> Failure {
        self.details.extend(details);
        self
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed(Failure),
    /// The check applies to the declaration but cannot be carried out (the reason says why).
    Skipped(String),
}

/// One check's name and verdict.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `Provider/Type/check` or, for provider-wide checks, `Provider/check`.
    pub name: String,
    pub verdict: Verdict,
}

/// `ok   NAME`, `FAIL NAME: summary` or `skip NAME: reason`; details are not included.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Passed => write!(f, "ok   {}", self.name),
            Verdict::Failed(failure) => write!(f, "FAIL {}: {}", self.name, failure.summary),
            Verdict::Skipped(reason) => write!(f, "skip {}: {reason}", self.name),
        }
    }
}

/// How a check body ends early.
#[derive(Debug)]
pub(crate) enum Problem {
    Fail(Failure),
    Skip(String),
}

impl From<Failure> for Problem {
    fn from(f: Failure) -> Problem {
        Problem::Fail(f)
    }
}

pub(crate) type CheckResult = Result<(), Problem>;

/// Fails the check with a formatted message.
macro_rules! fail {
    ($($arg:tt)+) => {
        return Err($crate::runner::Problem::Fail($crate::runner::Failure::new(format!($($arg)+))))
    };
}

/// Fails the check with a formatted message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            $crate::runner::fail!($($arg)+);
        }
    };
}

pub(crate) use {ensure, fail};

type Body = Box<dyn Fn(&Context<'_>) -> CheckResult + Send>;

/// A named behaviour check, bound to one backup type (or to none, for provider-wide checks).
pub(crate) struct Check {
    name: String,
    backup_type: Option<BackupType>,
    body: Body,
}

impl Check {
    pub fn new(
        provider_id: &str,
        backup_type: Option<BackupType>,
        name: &str,
        body: impl Fn(&Context<'_>) -> CheckResult + Send + 'static,
    ) -> Check {
        let name = match backup_type {
            Some(t) => format!("{provider_id}/{t}/{name}"),
            None => format!("{provider_id}/{name}"),
        };
        Check {
            name,
            backup_type,
            body: Box::new(body),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the check on a thread of its own ([`within`]), so that a provider that hangs
    /// fails this check after `timeout` instead of stopping the suite.
    pub fn run_within(
        self,
        timeout: Option<Duration>,
        library: &'static PluginLibrary,
        identification: &'static ProviderIdentification,
    ) -> Outcome {
        let name = self.name.clone();
        let verdict = within(timeout, &name, move || {
            self.run(library, identification).verdict
        });
        Outcome { name, verdict }
    }

    /// Runs the check in a fresh temporary directory, turning a panic into a failure.
    pub fn run(&self, library: &PluginLibrary, identification: &ProviderIdentification) -> Outcome {
        let verdict = match tempfile::Builder::new().prefix("aa-conformance-").tempdir() {
            Err(e) => Verdict::Failed(Failure::new(format!(
                "cannot create a temporary directory: {e}"
            ))),
            Ok(tmp) => {
                let context = Context {
                    library,
                    identification,
                    backup_type: self.backup_type.unwrap_or(BackupType::Tar),
                    tmp,
                };
                guarded(|| (self.body)(&context))
            }
        };
        Outcome {
            name: self.name.clone(),
            verdict,
        }
    }
}

/// What a check body works with.
pub(crate) struct Context<'a> {
    library: &'a PluginLibrary,
    pub identification: &'a ProviderIdentification,
    /// The type under test (`Tar` for provider-wide checks, which do not use it).
    pub backup_type: BackupType,
    tmp: TempDir,
}

impl Context<'_> {
    /// A path inside the check's private directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Creates (if needed) and returns a directory inside the check's private directory.
    pub fn mkdir(&self, rel: &str) -> Result<PathBuf, Problem> {
        let dir = self.path(rel);
        fs::create_dir_all(&dir)
            .map_err(|e| Problem::Fail(Failure::new(format!("mkdir {}: {e}", dir.display()))))?;
        Ok(dir)
    }

    /// The provider's persistent work directory for this check.
    pub fn work_dir(&self) -> PathBuf {
        self.path("work")
    }

    /// A new provider instance on [`Context::work_dir`].
    pub fn provider(&self) -> Result<Provider, Problem> {
        let work = self.mkdir("work")?;
        self.library
            .create_provider(&work)
            .map_err(|e| Problem::Fail(Failure::new(format!("create_provider failed: {e:?}"))))
    }

    /// The file name extension of the type under test.
    pub fn ext(&self) -> Result<&'static str, Problem> {
        self.backup_type.extension().ok_or_else(|| {
            Problem::Skip(format!(
                "{} is unknown to this version of the suite",
                self.backup_type
            ))
        })
    }

    pub fn has_feature(&self, feature: ArchiverFeature) -> bool {
        self.identification
            .features_for(self.backup_type)
            .is_some_and(|f| f.contains(&feature))
    }
}

// ---- time limit ---------------------------------------------------------------------------

/// Runs `body` on a new thread and waits for its verdict at most `timeout` (for ever with
/// `None`). A thread that does not finish in time cannot be stopped: it is left running
/// (holding its temporary directory) and the check fails saying so.
pub(crate) fn within(
    timeout: Option<Duration>,
    name: &str,
    body: impl FnOnce() -> Verdict + Send + 'static,
) -> Verdict {
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name(name.chars().take(60).collect())
        .spawn(move || {
            let _ = tx.send(body());
        });
    if let Err(e) = spawned {
        return Verdict::Failed(Failure::new(format!("cannot start a thread: {e}")));
    }
    let received = match timeout {
        Some(limit) => rx.recv_timeout(limit).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => Some(limit),
            mpsc::RecvTimeoutError::Disconnected => None,
        }),
        None => rx.recv().map_err(|_| None),
    };
    match received {
        Ok(verdict) => verdict,
        Err(Some(limit)) => Verdict::Failed(Failure::new(format!(
            "did not finish within {} s (the provider may hang; its thread is left running)",
            limit.as_secs_f64()
        ))),
        // `guarded` catches panics, so the thread ends without a verdict only if one escaped.
        Err(None) => Verdict::Failed(Failure::new("the check's thread ended without a verdict")),
    }
}

// ---- panic capture ------------------------------------------------------------------------

/// Runs a check body, turning a panic into a failure that carries the panic message.
fn guarded(body: impl FnOnce() -> CheckResult) -> Verdict {
    install_panic_hook();
    IN_CHECK.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(body));
    IN_CHECK.with(|c| c.set(false));
    match result {
        Ok(Ok(())) => Verdict::Passed,
        Ok(Err(Problem::Fail(failure))) => Verdict::Failed(failure),
        Ok(Err(Problem::Skip(reason))) => Verdict::Skipped(reason),
        Err(payload) => {
            let message = CAPTURED
                .with(|c| c.borrow_mut().take())
                .unwrap_or_else(|| payload_text(payload.as_ref()));
            Verdict::Failed(Failure::new(format!("panicked: {message}")))
        }
    }
}

thread_local! {
    /// Set while a check body runs on this thread: its panics are captured, not printed.
    static IN_CHECK: Cell<bool> = const { Cell::new(false) };
    static CAPTURED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Wraps the current panic hook once: panics inside a check are recorded with their location
/// for the failure message; every other panic (e.g. a test's own assertion) goes to the
/// previous hook as usual.
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_CHECK.with(Cell::get) {
                let location = info
                    .location()
                    .map(|l| format!(" (at {}:{})", l.file(), l.line()))
                    .unwrap_or_default();
                let message = format!("{}{location}", payload_text(info.payload()));
                CAPTURED.with(|c| *c.borrow_mut() = Some(message));
            } else {
                previous(info);
            }
        }));
    });
}

fn payload_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_summary_is_one_line() {
        let f = Failure::new("first\nsecond\nthird");
        assert_eq!(f.summary, "first");
        assert_eq!(f.details, ["second", "third"]);
    }

    #[test]
    fn a_panic_fails_only_its_own_check() {
        let verdicts: Vec<Verdict> = [
            guarded(|| Ok(())),
            guarded(|| panic!("boom\nsecond line")),
            guarded(|| {
                ensure!(1 + 1 == 3, "arithmetic is {}", "off");
                Ok(())
            }),
            guarded(|| Err(Problem::Skip("not applicable".into()))),
            guarded(|| Ok(())),
        ]
        .into();
        assert_eq!(verdicts[0], Verdict::Passed);
        match &verdicts[1] {
            Verdict::Failed(f) => {
                assert!(f.summary.starts_with("panicked: boom"), "{f:?}");
                assert!(f.details[0].starts_with("second line (at "), "{f:?}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        assert_eq!(
            verdicts[2],
            Verdict::Failed(Failure::new("arithmetic is off"))
        );
        assert_eq!(verdicts[3], Verdict::Skipped("not applicable".into()));
        assert_eq!(verdicts[4], Verdict::Passed);
        // Outside a check the previous hook is back in charge.
        assert!(!IN_CHECK.with(Cell::get));
    }

    #[test]
    fn a_check_that_hangs_fails_after_the_time_limit() {
        let limit = Some(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let verdict = within(limit, "hangs", || {
            thread::sleep(Duration::from_secs(30));
            Verdict::Passed
        });
        assert!(started.elapsed() < Duration::from_secs(10));
        match verdict {
            Verdict::Failed(f) => assert!(
                f.summary.starts_with("did not finish within 0.2 s"),
                "{f:?}"
            ),
            other => panic!("expected a failure, got {other:?}"),
        }
        assert_eq!(within(limit, "quick", || Verdict::Passed), Verdict::Passed);
        assert_eq!(
            within(None, "no limit", || Verdict::Passed),
            Verdict::Passed
        );
        let panicked = within(limit, "panics", || guarded(|| panic!("inside")));
        assert!(
            matches!(panicked, Verdict::Failed(f) if f.summary.starts_with("panicked: inside"))
        );
    }

    #[test]
    fn outcome_lines() {
        let o = |verdict| Outcome {
            name: "P/Tar/x".into(),
            verdict,
        };
        assert_eq!(o(Verdict::Passed).to_string(), "ok   P/Tar/x");
        assert_eq!(
            o(Verdict::Failed(Failure::new("bad"))).to_string(),
            "FAIL P/Tar/x: bad"
        );
        assert_eq!(
            o(Verdict::Skipped("why".into())).to_string(),
            "skip P/Tar/x: why"
        );
    }
}

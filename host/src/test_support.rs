//! Helpers for the unit tests.

use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` on a thread of its own and returns its result, failing the test when it takes
/// longer than a (generous) minute, so that a regression to runaway work fails instead of
/// hanging the test run. It is a guard, not a timing assertion.
pub fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    const LIMIT: Duration = Duration::from_secs(60);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("did not finish within {LIMIT:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the bounded code panicked"),
    }
}

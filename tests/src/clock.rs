//! The clocks the tests depend on: the kernel's file clock against a backup's dump time, and a
//! fixed local time zone in which midnight is always twelve hours away.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Waits (one scheduler tick at most) until the clock the kernel stamps files with has moved
/// past the present, so that everything written so far is older than the dump time of the next
/// backup, and the dump time of a backup GNU tar just made is older than anything written next.
///
/// Needed only around levels that GNU tar makes by itself, which takes its precise start time
/// as the dump time: without the wait, a file written in the same tick just before such a level
/// can be stored again by the next one, or a change made just after it missed. Our providers'
/// levels need no wait: they wait for that tick themselves
/// (`aa_provider_kit::dump_start_time`).
pub fn settle_timestamps() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970");
    let now = (now.as_secs() as i64, now.subsec_nanos());
    while aa_provider_kit::dump_start_time() <= now {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The local time zone every `aa` run of the tests gets (`TZ`), and its offset from UTC in
/// seconds: a fixed offset chosen once per test process so that local time is noon when the
/// process starts. `aa` counts days by the local date; with midnight twelve hours away, no test
/// sees the date change between writing a date and `aa` reading it, whenever it runs.
pub fn test_time_zone() -> &'static (String, i64) {
    static ZONE: std::sync::OnceLock<(String, i64)> = std::sync::OnceLock::new();
    ZONE.get_or_init(|| {
        let now = unix_now();
        let offset = 12 * 3600 - now.rem_euclid(86_400);
        // POSIX TZ gives the offset to add to local time to get UTC, so the sign is inverted.
        let (sign, abs) = if offset > 0 {
            ('-', offset)
        } else {
            ('+', -offset)
        };
        let zone = format!(
            "AAT{sign}{:02}:{:02}:{:02}",
            abs / 3600,
            abs / 60 % 60,
            abs % 60
        );
        (zone, offset)
    })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

/// The local date (in [`test_time_zone`]) `days` days ago, as `YYYY-MM-DD` (how the realm
/// stores dates). GNU `date` formats it, so the expectation does not come from `aa`'s code.
pub fn local_date_days_ago(days: u32) -> String {
    let local = unix_now() + test_time_zone().1 - i64::from(days) * 86_400;
    let out = Command::new("date")
        .args(["-u", &format!("--date=@{local}"), "+%Y-%m-%d"])
        .output()
        .expect("run date");
    assert!(out.status.success(), "date failed");
    String::from_utf8(out.stdout)
        .expect("a UTF-8 date")
        .trim()
        .to_string()
}

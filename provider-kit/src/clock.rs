//! The dump time of a level: when the backup starts, by the clock files are stamped with.

use std::time::{SystemTime, UNIX_EPOCH};

/// The dump time to record in the snapshot of a backup that starts now, as (seconds,
/// nanoseconds) since the epoch. Call it before reading anything of the tree: it waits until the
/// clock files are stamped with ticks past the present (one scheduler tick, 4 ms at HZ=250, and
/// the moment the kernel takes to publish it) and returns that tick.
///
/// The next level stores a file again only if its mtime or ctime is not older than this time,
/// so the time decides what each level holds. The kernel stamps files from its coarse clock,
/// which lags the precise clock by up to one tick, and, on file systems with multigrain
/// timestamps (ext4, xfs, btrfs, tmpfs since Linux 6.13), stamps a change from the precise clock
/// when the previous stamp has been looked at:
///
/// * a dump time from the precise clock (GNU tar's) can be later than the stamp of a change
///   made just after it; if the backup had already read that file, no level ever stores the
///   change (our tests hit this about every other run);
/// * the coarse clock's current value can be the stamp of a change made in the same tick just
///   before the backup started, and even the next tick's value can be older than a precise
///   stamp made before that tick was published; the next level would store that file again.
///
/// The first tick later than the precise time at the call is later than the stamp of every
/// change made before the call and no later than the stamp of any change made after the tick
/// was read, so each level holds exactly what changed since the previous one started, and no
/// change is missed.
pub fn dump_start_time() -> (i64, u32) {
    #[cfg(target_os = "linux")]
    if let (Some(now), Some(mut tick)) = (
        clock_now(ClockId::Realtime),
        clock_now(ClockId::RealtimeCoarse),
    ) {
        // Bounded in case the clock is stepped back at this very moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while tick <= now && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_micros(250));
            match clock_now(ClockId::RealtimeCoarse) {
                Some(next) => tick = next,
                None => break,
            }
        }
        return tick;
    }
    // Elsewhere (or should the calls fail): the precise clock, one second early to stay safe.
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX) - 1,
            d.subsec_nanos(),
        ),
        Err(_) => (0, 0),
    }
}

/// The time by the real-time clock `clock`, as (seconds, nanoseconds).
#[cfg(target_os = "linux")]
fn clock_now(clock: ClockId) -> Option<(i64, u32)> {
    let ts = rustix::time::clock_gettime(clock);
    Some((ts.tv_sec, ts.tv_nsec.clamp(0, 999_999_999) as u32))
}

#[cfg(target_os = "linux")]
use rustix::time::ClockId;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn stamp(path: &Path) -> (i64, i64) {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).unwrap();
        // The later of the two times is the one a level compares.
        (meta.mtime(), meta.mtime_nsec()).max((meta.ctime(), meta.ctime_nsec()))
    }

    /// The race [`dump_start_time`] closes: a file written right after the dump time is read
    /// must never look older than it. With the precise clock this fails within a few rounds.
    #[test]
    fn a_change_after_the_dump_time_is_never_older_than_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        for round in 0..100 {
            let (sec, nsec) = dump_start_time();
            fs::write(&file, round.to_string()).unwrap();
            let stamp = stamp(&file);
            assert!(
                stamp >= (sec, i64::from(nsec)),
                "round {round}: stamp {stamp:?} is older than the dump time {sec}.{nsec:09}"
            );
        }
    }

    /// The other side: a file written right before the dump time is read is older than it, so
    /// the next level does not store it again. Its stamp is looked at first, so that a file
    /// system with multigrain timestamps stamps the change from the precise clock. With the
    /// coarse clock's current value this fails within a few rounds.
    #[test]
    fn a_change_before_the_dump_time_is_older_than_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        for round in 0..100 {
            fs::write(&file, round.to_string()).unwrap();
            let stamp = stamp(&file);
            let (sec, nsec) = dump_start_time();
            assert!(
                stamp < (sec, i64::from(nsec)),
                "round {round}: stamp {stamp:?} is not older than the dump time {sec}.{nsec:09}"
            );
        }
    }
}

//! Compression options for GNU tar.
//!
//! The original passed the strength through the `GZIP`/`BZIP2`/`XZ_OPT`/`ZSTD_CLEVEL`
//! environment variables; gzip now warns that `GZIP` is deprecated, and that warning would reach
//! the stderr parser as an error. Instead the compressor is named with its level flag through
//! `--use-compress-program`, which GNU tar splits into words itself.
//!
//! GNU tar's own compressors are single-threaded; where a parallel one that writes the same
//! format and takes the same level flags is installed, it is used instead (pigz for gzip,
//! lbzip2 or pbzip2 for bzip2, `xz -T0`, `zstd -T0`). Their output is read by plain gzip,
//! bzip2, xz and zstd and by GNU tar: pigz writes one gzip member, lbzip2 one bzip2 stream,
//! pbzip2 concatenated streams, `xz -T0` a multi-block stream. TarExternal never decompresses.

use aa_abi::{BackupType, MAX_COMPRESSION_STRENGTH, MIN_COMPRESSION_STRENGTH};

/// A compressor GNU tar can drive and the range of its level flag.
struct Compressor {
    program: &'static str,
    /// The option that selects the compressor with its default level.
    tar_option: &'static str,
    levels: (u32, u32),
}

fn compressor(backup_type: BackupType) -> Option<Compressor> {
    let (program, tar_option, levels) = match backup_type {
        BackupType::TarGz => ("gzip", "--gzip", (1, 9)),
        BackupType::TarBz2 => ("bzip2", "--bzip2", (1, 9)),
        // xz accepts the whole 0..9 scale, so the strength is passed through unchanged.
        BackupType::TarXz => ("xz", "--xz", (0, 9)),
        BackupType::TarZst => ("zstd", "--zstd", (1, 19)),
        _ => return None,
    };
    Some(Compressor {
        program,
        tar_option,
        levels,
    })
}

/// The plain compressor program of `backup_type` (`gzip`, ...), `None` for a plain tar.
pub fn program(backup_type: BackupType) -> Option<&'static str> {
    compressor(backup_type).map(|c| c.program)
}

/// The parallel programs that can replace `backup_type`'s compressor, best first, with the
/// arguments that make them parallel.
fn parallel(backup_type: BackupType) -> &'static [(&'static str, &'static str)] {
    match backup_type {
        BackupType::TarGz => &[("pigz", "")],
        BackupType::TarBz2 => &[("lbzip2", ""), ("pbzip2", "")],
        BackupType::TarXz => &[("xz", " -T0")],
        BackupType::TarZst => &[("zstd", " -T0")],
        _ => &[],
    }
}

/// Maps `value` linearly from the interval `from` onto `to`, rounding half to even as the
/// original's `IntervalElement.remapTo` (Python's `round`) does.
pub fn remap(value: u32, from: (u32, u32), to: (u32, u32)) -> u32 {
    let value = value.clamp(from.0, from.1);
    let span = u64::from(from.1 - from.0);
    if span == 0 {
        return to.0;
    }
    let scaled = u64::from(value - from.0) * u64::from(to.1 - to.0);
    let (quotient, remainder) = (scaled / span, scaled % span);
    let rounded = match (2 * remainder).cmp(&span) {
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal => quotient + (quotient & 1),
        std::cmp::Ordering::Less => quotient,
    };
    to.0 + rounded as u32
}

/// The compressor level used for the user's compression `strength` (0..9); what
/// [`tar_option`] passes, for the tests.
#[cfg(test)]
fn compressor_level(backup_type: BackupType, strength: u32) -> Option<u32> {
    let c = compressor(backup_type)?;
    Some(remap(
        strength,
        (MIN_COMPRESSION_STRENGTH, MAX_COMPRESSION_STRENGTH),
        c.levels,
    ))
}

/// The tar option selecting the compression of `backup_type`, `None` for a plain tar: the
/// first parallel compressor for which `installed` says yes, else GNU tar's own.
///
/// Without a strength the compressor runs with its own default level (and its own
/// configuration, e.g. `XZ_DEFAULTS`); the parallel ones have the same defaults.
pub fn tar_option(
    backup_type: BackupType,
    strength: Option<u32>,
    installed: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let c = compressor(backup_type)?;
    let level = strength.map(|s| {
        format!(
            " -{}",
            remap(
                s,
                (MIN_COMPRESSION_STRENGTH, MAX_COMPRESSION_STRENGTH),
                c.levels
            )
        )
    });
    let parallel = parallel(backup_type)
        .iter()
        .find(|(program, _)| installed(program));
    Some(match (parallel, level) {
        (Some((program, args)), level) => format!(
            "--use-compress-program={program}{args}{}",
            level.unwrap_or_default()
        ),
        (None, None) => c.tar_option.to_string(),
        (None, Some(level)) => format!("--use-compress-program={}{level}", c.program),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remap_matches_the_original_table() {
        let gzip: Vec<u32> = (0..=9).map(|s| remap(s, (0, 9), (1, 9))).collect();
        assert_eq!(gzip, [1, 2, 3, 4, 5, 5, 6, 7, 8, 9]);
        let zstd: Vec<u32> = (0..=9).map(|s| remap(s, (0, 9), (1, 19))).collect();
        assert_eq!(zstd, [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
        let xz: Vec<u32> = (0..=9).map(|s| remap(s, (0, 9), (0, 9))).collect();
        assert_eq!(xz, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn remap_rounds_half_to_even() {
        // 1/2 * 2 = 1 exactly; 1/4 * 2 = 0.5 -> 0; 3/4 * 2 = 1.5 -> 2.
        assert_eq!(remap(1, (0, 2), (0, 2)), 1);
        assert_eq!(remap(1, (0, 4), (0, 2)), 0);
        assert_eq!(remap(3, (0, 4), (0, 2)), 2);
        assert_eq!(remap(5, (5, 5), (3, 7)), 3);
    }

    #[test]
    fn options_per_type_without_parallel_compressors() {
        let none = |_: &str| false;
        assert_eq!(tar_option(BackupType::Tar, None, &none), None);
        assert_eq!(tar_option(BackupType::Tar, Some(3), &none), None);
        assert_eq!(
            tar_option(BackupType::TarGz, None, &none).unwrap(),
            "--gzip"
        );
        assert_eq!(
            tar_option(BackupType::TarBz2, None, &none).unwrap(),
            "--bzip2"
        );
        assert_eq!(tar_option(BackupType::TarXz, None, &none).unwrap(), "--xz");
        assert_eq!(
            tar_option(BackupType::TarZst, None, &none).unwrap(),
            "--zstd"
        );
        assert_eq!(
            tar_option(BackupType::TarGz, Some(0), &none).unwrap(),
            "--use-compress-program=gzip -1"
        );
        assert_eq!(
            tar_option(BackupType::TarBz2, Some(5), &none).unwrap(),
            "--use-compress-program=bzip2 -5"
        );
        assert_eq!(
            tar_option(BackupType::TarXz, Some(0), &none).unwrap(),
            "--use-compress-program=xz -0"
        );
        assert_eq!(
            tar_option(BackupType::TarZst, Some(9), &none).unwrap(),
            "--use-compress-program=zstd -19"
        );
        assert_eq!(compressor_level(BackupType::TarGz, 9), Some(9));
        assert_eq!(compressor_level(BackupType::Tar, 9), None);
    }

    #[test]
    fn parallel_compressors_take_the_same_levels() {
        let all = |_: &str| true;
        let option = |t, s| tar_option(t, s, &all).unwrap();
        assert_eq!(
            option(BackupType::TarGz, None),
            "--use-compress-program=pigz"
        );
        assert_eq!(
            option(BackupType::TarGz, Some(0)),
            "--use-compress-program=pigz -1"
        );
        assert_eq!(
            option(BackupType::TarBz2, None),
            "--use-compress-program=lbzip2"
        );
        assert_eq!(
            option(BackupType::TarBz2, Some(5)),
            "--use-compress-program=lbzip2 -5"
        );
        assert_eq!(
            option(BackupType::TarXz, None),
            "--use-compress-program=xz -T0"
        );
        assert_eq!(
            option(BackupType::TarXz, Some(0)),
            "--use-compress-program=xz -T0 -0"
        );
        assert_eq!(
            option(BackupType::TarZst, None),
            "--use-compress-program=zstd -T0"
        );
        assert_eq!(
            option(BackupType::TarZst, Some(9)),
            "--use-compress-program=zstd -T0 -19"
        );
        assert_eq!(tar_option(BackupType::Tar, Some(9), &all), None);

        let pbzip2 = |p: &str| p == "pbzip2";
        assert_eq!(
            tar_option(BackupType::TarBz2, Some(9), &pbzip2).unwrap(),
            "--use-compress-program=pbzip2 -9"
        );
        assert_eq!(
            tar_option(BackupType::TarGz, Some(9), &pbzip2).unwrap(),
            "--use-compress-program=gzip -9"
        );
    }
}

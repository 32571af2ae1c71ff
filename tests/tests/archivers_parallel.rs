//! TarExternal compresses with the parallel compressor where one is installed (pigz, lbzip2 or
//! pbzip2, `xz -T0`, `zstd -T0`), at the same level, and falls back to gzip or bzip2 where
//! none is; either way GNU tar extracts the backup to the source tree.
//!
//! Which program ran is seen through wrappers first on `PATH` that record their name and
//! arguments and then run the real program. The real parallel tools must be installed
//! (`.ci/run` installs pigz, pbzip2 and lbzip2).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_tests::*;

/// The real `program`, found on the test's own `PATH`.
fn real(program: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap();
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        path.starts_with('/'),
        "{program} is not installed (.ci/run installs pigz, pbzip2 and lbzip2)"
    );
    path
}

/// A directory of wrappers for `programs` that append "NAME ARGS" to `log`.
fn wrappers(sb: &Sandbox, dir: &str, programs: &[&str], log: &Path) -> PathBuf {
    let bin = sb.mkdir(dir);
    for program in programs {
        let path = bin.join(program);
        fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{program} $*\" >>'{}'\nexec '{}' \"$@\"\n",
                log.display(),
                real(program)
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// Backs up the full fixture with `archiver` (and `-c 9` if `strong`) under `path` and returns
/// what the wrappers logged; the backup must extract to the source.
fn backup(sb: &Sandbox, archiver: &str, ext: &str, strong: bool, path: &str, log: &Path) -> String {
    let _ = fs::remove_file(log);
    let _ = fs::remove_dir_all(sb.dest_dir());
    fs::create_dir_all(sb.dest_dir()).unwrap();
    let mut aa = sb.aa().env("PATH", path).args(["-a", archiver]);
    if strong {
        aa = aa.args(["-c", "9"]);
    }
    aa.arg("p").run().assert_success();
    let archive = sb.dest_dir().join(format!("p.{ext}"));
    let out = sb.path().join(format!("x-{archiver}-{strong}"));
    gnu_extract(&archive, &out);
    let source = sb.src_dir().join("tree");
    assert_same_tree(
        &record_tree(&source),
        &record_tree(&out.join("tree")),
        Compare { mtime_nanos: true },
        archiver,
    );
    fs::read_to_string(log).unwrap_or_default()
}

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    full_fixture(&sb.src_dir());
    sb.write_spec("p", &Spec::new(&sb.src_dir(), &["tree"], &sb.dest_dir()));
    sb
}

#[test]
fn the_parallel_compressor_is_used_when_installed() {
    let sb = sandbox();
    let log = sb.path().join("ran.log");
    let tools = ["pigz", "lbzip2", "pbzip2", "xz", "zstd"];
    let bin = wrappers(&sb, "bin", &tools, &log);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    for (archiver, ext, plain, strong) in [
        ("targz", "tar.gz", "pigz \n", "pigz -9\n"),
        ("tarbz2", "tar.bz2", "lbzip2 \n", "lbzip2 -9\n"),
        ("tarxz", "tar.xz", "xz -T0\n", "xz -T0 -9\n"),
        ("tarzst", "tar.zst", "zstd -T0\n", "zstd -T0 -19\n"),
    ] {
        assert_eq!(backup(&sb, archiver, ext, false, &path, &log), plain);
        assert_eq!(backup(&sb, archiver, ext, true, &path, &log), strong);
    }
    // pbzip2 where lbzip2 is not: only the wrappers' directory is on PATH (aa finds tar in
    // /usr/bin or /bin by itself).
    let only = wrappers(&sb, "only-pbzip2", &["pbzip2"], &log);
    let ran = backup(&sb, "tarbz2", "tar.bz2", true, only.to_str().unwrap(), &log);
    assert_eq!(ran, "pbzip2 -9\n");
}

#[test]
fn without_a_parallel_compressor_gzip_and_bzip2_are_used() {
    let sb = sandbox();
    let log = sb.path().join("ran.log");
    // Nothing else on PATH: no pigz, lbzip2 or pbzip2 to find.
    let bin = wrappers(&sb, "bin", &["gzip", "bzip2"], &log);
    let path = bin.to_str().unwrap();
    assert_eq!(
        backup(&sb, "targz", "tar.gz", true, path, &log),
        "gzip -9\n"
    );
    assert_eq!(
        backup(&sb, "tarbz2", "tar.bz2", true, path, &log),
        "bzip2 -9\n"
    );
    // Without a level GNU tar runs them through --gzip / --bzip2, with its own arguments.
    assert!(backup(&sb, "targz", "tar.gz", false, path, &log).starts_with("gzip"));
    assert!(backup(&sb, "tarbz2", "tar.bz2", false, path, &log).starts_with("bzip2"));
}

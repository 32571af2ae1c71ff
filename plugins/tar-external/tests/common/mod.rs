//! Shared fixtures: a source tree with awkward members, extraction with GNU tar and a tree
//! comparison that covers type, content, mode, mtime, symlink target and hard links.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File, FileTimes};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn os(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// Every event raised, in order: the shared recorder of the provider kit.
#[allow(unused_imports)] // not every test binary names the error type
pub use aa_provider_kit::recording::{Recorder, ReportedError};

pub fn set_mtime(path: &Path, secs: u64) {
    let time = UNIX_EPOCH + Duration::from_secs(secs);
    File::open(path)
        .unwrap()
        .set_times(FileTimes::new().set_modified(time).set_accessed(time))
        .unwrap();
}

fn write(path: &Path, content: &[u8], mode: u32) {
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Fills `root` with the members every round-trip test checks; returns the top-level names.
pub fn make_tree(root: &Path) -> Vec<Vec<u8>> {
    fs::create_dir_all(root.join("dir/sub")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    write(&root.join("dir/file.txt"), b"hello\n", 0o640);
    write(
        &root.join("dir/sub/script.sh"),
        b"#!/bin/sh\necho hi\n",
        0o755,
    );
    write(&root.join("dir/sub/big.bin"), &vec![7u8; 300_000], 0o600);
    symlink("file.txt", root.join("dir/link")).unwrap();
    symlink("../nowhere", root.join("dir/dangling")).unwrap();
    fs::hard_link(root.join("dir/file.txt"), root.join("dir/hard")).unwrap();

    // A path far beyond the 100-byte ustar name field, and a 200-byte file name.
    let mut long = root.join("long");
    for i in 0..6 {
        long.push(format!("directory-with-a-rather-long-name-{i}"));
    }
    fs::create_dir_all(&long).unwrap();
    write(&long.join("x".repeat(200)), b"deep\n", 0o644);

    let odd: [&[u8]; 6] = [
        b"caf\xe9",
        "žluťoučký kůň".as_bytes(),
        b"new\nline",
        b"-dash",
        b"back\\slash",
        b"colon: space",
    ];
    for name in odd {
        write(&root.join(os(name)), name, 0o644);
    }

    // Times last, deepest first, so creating children does not touch them again.
    let mut paths: Vec<PathBuf> = Vec::new();
    collect(root, &mut paths);
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in paths.iter().enumerate() {
        if !p.symlink_metadata().unwrap().file_type().is_symlink() {
            set_mtime(p, 1_000_000_000 + 1000 * i as u64);
        }
    }
    let mut top: Vec<Vec<u8>> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    top.sort();
    top
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if path.symlink_metadata().unwrap().is_dir() {
            collect(&path, out);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
        mtime: i64,
    },
    File {
        mode: u32,
        mtime: i64,
        content: Vec<u8>,
        link_group: Vec<Vec<u8>>,
    },
    Symlink {
        target: Vec<u8>,
    },
    Other,
}

/// A comparable description of every object under `root` (not `root` itself).
pub fn snapshot_tree(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    let mut paths = Vec::new();
    collect(root, &mut paths);
    let rel = |p: &Path| {
        p.strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec()
    };
    let mut by_inode: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    for p in &paths {
        let meta = p.symlink_metadata().unwrap();
        if meta.is_file() {
            by_inode.entry(meta.ino()).or_default().push(rel(p));
        }
    }
    let mut tree = BTreeMap::new();
    for p in &paths {
        let meta = p.symlink_metadata().unwrap();
        let node = if meta.file_type().is_symlink() {
            Node::Symlink {
                target: fs::read_link(p).unwrap().as_os_str().as_bytes().to_vec(),
            }
        } else if meta.is_dir() {
            Node::Dir {
                mode: meta.mode() & 0o7777,
                mtime: meta.mtime(),
            }
        } else if meta.is_file() {
            let mut group = by_inode[&meta.ino()].clone();
            group.sort();
            Node::File {
                mode: meta.mode() & 0o7777,
                mtime: meta.mtime(),
                content: fs::read(p).unwrap(),
                link_group: group,
            }
        } else {
            Node::Other
        };
        tree.insert(rel(p), node);
    }
    tree
}

pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let (e, a) = (snapshot_tree(expected), snapshot_tree(actual));
    let e_names: Vec<_> = e
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let a_names: Vec<_> = a
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(e_names, a_names, "member names differ");
    for (name, node) in &e {
        assert_eq!(Some(node), a.get(name), "{}", String::from_utf8_lossy(name));
    }
}

/// Extracts `archives` in order into `dest` with GNU tar (incremental semantics when asked).
pub fn extract(archives: &[&Path], dest: &Path, incremental: bool) {
    fs::create_dir_all(dest).unwrap();
    for archive in archives {
        let mut cmd = Command::new("tar");
        cmd.arg("-x").arg("-f").arg(archive).arg("-C").arg(dest);
        if incremental {
            cmd.arg("--listed-incremental=/dev/null");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "tar -x {} failed: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Names stored in an archive, as GNU tar lists them (decoded from its escapes).
pub fn list(archive: &Path) -> Vec<Vec<u8>> {
    let out = Command::new("tar")
        .arg("-t")
        .arg("--quoting-style=escape")
        .arg("-f")
        .arg(archive)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(aa_plugin_tar_external::quoting::unescape)
        .collect()
}

/// Files directly in `dir`, sorted.
pub fn dir_listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn now_plus(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

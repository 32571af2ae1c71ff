//! Trees only the end-to-end tests need (the shared fixtures and the builder are the
//! conformance crate's, re-exported at this crate's root), and a directory listing.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// Builds a chain of `depth` directories `d` below `root` (`d/d/.../d`) with a file `f`
/// holding `content` at the bottom, by `mkdirat` from each new directory: `mkdir -p` and
/// `std::fs` stop at `PATH_MAX` (about 2,048 such levels). Returns the members a backup of
/// `d` must hold, as [`crate::gnu_list`] lists them.
pub fn deep_tree(root: &Path, depth: usize, content: &[u8]) -> BTreeSet<Vec<u8>> {
    use std::io::Write;
    let mut dir = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("open the root");
    let mut members = BTreeSet::new();
    let mut name = Vec::new();
    for _ in 0..depth {
        rustix::fs::mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).expect("mkdirat");
        dir = rustix::fs::openat(
            &dir,
            "d",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("openat");
        if !name.is_empty() {
            name.push(b'/');
        }
        name.push(b'd');
        members.insert(name.clone());
    }
    let file = rustix::fs::openat(
        &dir,
        "f",
        OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .expect("openat");
    fs::File::from(file)
        .write_all(content)
        .expect("write the file");
    members.insert([&name[..], b"/f"].concat());
    members
}

/// File names in `dir`, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

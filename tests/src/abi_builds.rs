//! The Hello example built against a copy of an ABI crate (the current `abi/`, or the frozen
//! ABI 1.0 of `tests/abi-1.0/`), possibly edited the way a release would change it: what the ABI
//! tests load into the current host to prove what loads and what is refused.
//!
//! Each build lives in `<target>/abi-builds/<tag>/` (`abi/` and `hello/`) and all share one
//! target directory, so abi_stable is compiled once. Files are written only when their content
//! changed, so cargo does not rebuild an unchanged copy on the next run. Each Hello copy gets a
//! package and library name of its own (`aa_hello_<tag>`), so that builds in the shared target
//! directory never overwrite one another's library.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::{build_cdylib, target_dir, workspace_dir};

/// A Hello plugin and the ABI crate it is built against, held in memory until [`build`].
///
/// [`build`]: HelloBuild::build
pub struct HelloBuild {
    tag: String,
    /// Path relative to the build's root (`abi/...`, `hello/...`) to content.
    files: BTreeMap<PathBuf, String>,
}

/// The manifest of a copy of the current `abi/` (whose own takes its version and lints from the
/// workspace), with package version `version`: abi_stable compares it too, in every type layout.
fn current_abi_manifest(version: &str) -> String {
    format!(
        "[package]\nname = \"aa-abi\"\nversion = \"{version}\"\nedition = \"2021\"\n\n\
         [lib]\nname = \"aa_abi\"\n\n[dependencies]\nabi_stable = \"0.11.3\"\nlibc = \"0.2\"\n\
         log = \"0.4\"\n\n[workspace]\n"
    )
}

fn read_tree(dir: &Path, rel: &Path, into: &mut BTreeMap<PathBuf, String>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let entry = entry.unwrap();
        let rel = rel.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            read_tree(&entry.path(), &rel, into);
        } else {
            let text = fs::read_to_string(entry.path())
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
            into.insert(rel, text);
        }
    }
}

/// The version `aa-abi`'s manifest gives (its own, or the workspace's).
pub fn abi_package_version() -> String {
    let manifest = fs::read_to_string(workspace_dir().join("abi/Cargo.toml")).unwrap();
    let from = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("version = \""))
            .map(|v| v.trim_end_matches('"').to_string())
    };
    from(&manifest)
        .or_else(|| from(&fs::read_to_string(workspace_dir().join("Cargo.toml")).unwrap()))
        .expect("a package version")
}

impl HelloBuild {
    /// Hello against a copy of the current `abi/`.
    pub fn against_current_abi(tag: &str) -> HelloBuild {
        let mut build = HelloBuild::hello(tag);
        read_tree(
            &workspace_dir().join("abi/src"),
            Path::new("abi/src"),
            &mut build.files,
        );
        build.files.insert(
            "abi/Cargo.toml".into(),
            current_abi_manifest(&abi_package_version()),
        );
        build
    }

    /// Hello against the frozen ABI 1.0 crate, `tests/abi-1.0/`, as it is.
    pub fn against_abi_1_0(tag: &str) -> HelloBuild {
        let mut build = HelloBuild::hello(tag);
        let frozen = workspace_dir().join("tests/abi-1.0");
        read_tree(&frozen.join("src"), Path::new("abi/src"), &mut build.files);
        let manifest = fs::read_to_string(frozen.join("Cargo.toml")).unwrap();
        build.files.insert("abi/Cargo.toml".into(), manifest);
        build
    }

    fn hello(tag: &str) -> HelloBuild {
        let example = workspace_dir().join("examples/hello-provider");
        let mut files = BTreeMap::new();
        read_tree(&example.join("src"), Path::new("hello/src"), &mut files);
        let manifest = fs::read_to_string(example.join("Cargo.toml")).unwrap();
        let lib = format!("aa_hello_{}", tag.replace('-', "_"));
        let manifest = replace_once(&manifest, "path = \"../../abi\"", "path = \"../abi\"");
        let manifest = replace_once(
            &manifest,
            "name = \"aa-hello-provider\"",
            &format!("name = \"{}\"", lib.replace('_', "-")),
        );
        let manifest = replace_once(
            &manifest,
            "name = \"aa_hello_provider\"",
            &format!("name = \"{lib}\""),
        );
        files.insert("hello/Cargo.toml".into(), manifest);
        let lock = fs::read_to_string(example.join("Cargo.lock")).unwrap();
        files.insert(
            "hello/Cargo.lock".into(),
            replace_once(
                &lock,
                "name = \"aa-hello-provider\"",
                &format!("name = \"{}\"", lib.replace('_', "-")),
            ),
        );
        HelloBuild {
            tag: tag.to_string(),
            files,
        }
    }

    /// Replaces the one occurrence of `from` in `file` (relative to the build: `abi/src/ffi.rs`,
    /// `hello/src/lib.rs`) with `to`; panics unless there is exactly one, so an edit never
    /// silently stops applying when the file changes.
    pub fn edit(mut self, file: &str, from: &str, to: &str) -> HelloBuild {
        let text = self
            .files
            .get(Path::new(file))
            .unwrap_or_else(|| panic!("{file}: no such file in the build"));
        let text = replace_once(text, from, to);
        self.files.insert(file.into(), text);
        self
    }

    /// Appends `text` to `file`.
    pub fn append(mut self, file: &str, text: &str) -> HelloBuild {
        let current = self
            .files
            .get_mut(Path::new(file))
            .unwrap_or_else(|| panic!("{file}: no such file in the build"));
        current.push_str(text);
        self
    }

    /// Writes the copy under `<target>/abi-builds/<tag>/`, builds it and returns the library.
    pub fn build(self) -> PathBuf {
        let area = target_dir().join("abi-builds");
        let root = area.join(&self.tag);
        let wanted: Vec<PathBuf> = self.files.keys().map(|rel| root.join(rel)).collect();
        for (rel, text) in &self.files {
            let path = root.join(rel);
            if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, text).unwrap();
            }
        }
        for sub in ["abi/src", "hello/src"] {
            remove_others(&root.join(sub), &wanted);
        }
        let lib = format!("aa_hello_{}", self.tag.replace('-', "_"));
        build_cdylib(&root.join("hello/Cargo.toml"), &area.join("target"), &lib)
    }
}

/// Removes the files under `dir` that are not `wanted` (left by an earlier version of a build).
fn remove_others(dir: &Path, wanted: &[PathBuf]) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            remove_others(&path, wanted);
        } else if !wanted.contains(&path) {
            fs::remove_file(&path).unwrap();
        }
    }
}

/// `text` with its one occurrence of `from` replaced by `to`; panics unless there is exactly one.
#[track_caller]
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "expected exactly one {from:?} to change"
    );
    text.replacen(from, to, 1)
}

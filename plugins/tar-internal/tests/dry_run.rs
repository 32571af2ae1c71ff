//! The dry-run capability: for a full backup and for incremental levels with changes between
//! them, the dry run lists exactly the members the next real run then reports (`file_add`)
//! and GNU tar lists in its archive, with their sizes; and it leaves the state directory and
//! the destination byte for byte as they were.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use aa_abi::capability::{DryRunning, ItemEvents, Totals};
use aa_abi::plugin::{ArchiverProvider, Plugin};
use aa_abi::{BackupDefinition, BackupOperationError, BackupType};
use aa_plugin_tar_internal::{TarInternalPlugin, TarInternalProvider};
use aa_provider_kit::recording::Recorder;

#[derive(Default)]
struct Items {
    items: RefCell<Vec<(String, u64)>>,
    problems: RefCell<Vec<String>>,
}

impl ItemEvents for Items {
    fn item(&self, name: &Path, size: u64) {
        self.items
            .borrow_mut()
            .push((name.to_string_lossy().into_owned(), size));
    }

    fn problem(&self, name: Option<&Path>, _message: &str) {
        let name = name.map_or("-".into(), |n| n.to_string_lossy().into_owned());
        self.problems.borrow_mut().push(name);
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    dest: PathBuf,
    provider: TarInternalProvider,
}

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let root = base.join("src");
    let dest = base.join("dest");
    fs::create_dir_all(&dest).unwrap();
    write(&root.join("top.txt"), "a top-level file");
    write(&root.join("data/a/f1"), "f1");
    write(&root.join("data/a/b/f2"), "f2, somewhat longer");
    write(&root.join("data/c/f3"), "f3");
    write(&root.join("data/keep"), "unchanged");
    fs::hard_link(root.join("data/keep"), root.join("data/keep-link")).unwrap();
    symlink("a/f1", root.join("data/link")).unwrap();
    fs::create_dir_all(root.join("data/empty")).unwrap();
    write(&root.join("other/o"), "another include");
    let provider = TarInternalPlugin::create(&base.join("work")).unwrap();
    Setup {
        _tmp: tmp,
        base,
        root,
        dest,
        provider,
    }
}

impl Setup {
    fn definition(&self, includes: &[&str]) -> BackupDefinition {
        BackupDefinition::new("dry", BackupType::TarGz, &self.dest, &self.root).include(includes)
    }

    /// Every file below the work directory and the destination, byte for byte.
    fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn visit(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    out.insert(path.clone(), Vec::new());
                    visit(&path, out);
                } else {
                    out.insert(path.clone(), fs::read(&path).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        visit(&self.base.join("work"), &mut out);
        visit(&self.dest, &mut out);
        out
    }

    /// The dry run, checked to leave everything as it was: totals, members, and the names
    /// of the problems.
    fn dry_run(&self, def: &BackupDefinition, level: Option<u32>) -> (Totals, Listed) {
        let before = self.files();
        let items = Items::default();
        let totals = self
            .provider
            .dry_run(def, level, &items)
            .unwrap_or_else(|e| panic!("dry run at {level:?}: {}", e.message()));
        assert_eq!(
            self.files(),
            before,
            "the dry run at {level:?} wrote something"
        );
        let problems = items.problems.into_inner();
        let items = items.items.into_inner();
        assert_eq!(totals.items, items.len() as u64);
        assert_eq!(totals.bytes, items.iter().map(|(_, s)| s).sum::<u64>());
        assert_eq!(totals.problems, problems.len() as u64);
        (totals, (items, problems))
    }
}

/// Members with their sizes, and the names problems were reported for.
type Listed = (Vec<(String, u64)>, Vec<String>);

/// The names the real run reported errors for (a renamed directory is only a note).
fn error_names(recorder: &Recorder) -> Vec<String> {
    recorder
        .errors()
        .iter()
        .filter(|e| e.error != BackupOperationError::DirectoryRenamed)
        .map(|e| {
            e.name
                .as_deref()
                .map_or("-".into(), |n| String::from_utf8_lossy(n).into_owned())
        })
        .collect()
}

fn names(items: &[(String, u64)]) -> Vec<String> {
    items.iter().map(|(n, _)| n.clone()).collect()
}

fn added(recorder: &Recorder) -> Vec<String> {
    recorder
        .added()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

/// Member names GNU tar lists, as the events name them (no `./`, no trailing `/`).
fn gnu_list(archive: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tf")
        .arg(archive)
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let l = l.trim_end_matches('/');
            let l = l.strip_prefix("./").filter(|r| !r.is_empty()).unwrap_or(l);
            if l.is_empty() { "." } else { l }.to_string()
        })
        .collect()
}

#[test]
fn a_full_dry_run_lists_what_the_backup_stores() {
    let s = setup();
    let def = s.definition(&["data", "top.txt", "missing"]);
    let (totals, (items, problems)) = s.dry_run(&def, None);
    assert_eq!(problems, ["missing"]);
    assert!(
        items.contains(&("data/a/b/f2".to_string(), 19)),
        "{items:?}"
    );
    assert!(items.contains(&("data/link".to_string(), 0)));
    // The second name of a hard link is a link member, without content.
    assert!(items.contains(&("data/keep-link".to_string(), 0)));
    assert_eq!(totals.bytes, 16 + 2 + 19 + 2 + 9);

    let recorder = Recorder::new();
    let archive = s
        .provider
        .backup_files(&def, None, false, &recorder)
        .unwrap();
    assert_eq!(names(&items), added(&recorder));
    assert_eq!(names(&items), gnu_list(&archive));
    assert_eq!(problems, error_names(&recorder));

    // With the backup in place (and so left out of the next one), the same again.
    let (_, (again, _)) = s.dry_run(&def, None);
    assert_eq!(again, items);
}

#[test]
fn incremental_dry_runs_list_what_each_level_stores() {
    let s = setup();
    let def = s.definition(&["data", "other", "top.txt"]);
    let root = &s.root;
    let changes: [&dyn Fn(); 3] = [
        &|| {},
        &|| {
            write(&root.join("data/a/f1"), "f1, changed");
            write(&root.join("data/new"), "new");
            fs::rename(root.join("data/a/b"), root.join("data/a/bb")).unwrap();
            fs::remove_file(root.join("data/c/f3")).unwrap();
            fs::hard_link(root.join("data/new"), root.join("data/c/new-link")).unwrap();
        },
        &|| {
            fs::remove_file(root.join("top.txt")).unwrap();
            fs::remove_dir_all(root.join("other")).unwrap();
            write(&root.join("data/empty/now-full"), "now full");
            fs::remove_file(root.join("data/link")).unwrap();
            write(&root.join("data/link"), "a file where a link was");
        },
    ];
    for (level, change) in changes.iter().enumerate() {
        let level = level as u32;
        change();
        aa_tests::settle_timestamps();
        let (_, (items, problems)) = s.dry_run(&def, Some(level));
        let recorder = Recorder::new();
        let archive = s
            .provider
            .backup_files_incrementally(&def, None, Some(level), false, &recorder)
            .unwrap();
        aa_tests::settle_timestamps();
        assert_eq!(names(&items), added(&recorder), "level {level}");
        assert_eq!(names(&items), gnu_list(&archive), "level {level}");
        assert_eq!(problems, error_names(&recorder), "level {level}");
        match level {
            0 => assert!(items.contains(&("top.txt".to_string(), 16)), "{items:?}"),
            1 => {
                assert!(items.contains(&("data/a/f1".to_string(), 11)), "{items:?}");
                assert!(!names(&items).contains(&"data/keep".to_string()));
                assert!(!names(&items).contains(&"top.txt".to_string()));
            }
            _ => {
                assert!(items.contains(&("data/link".to_string(), 23)), "{items:?}");
                assert_eq!(problems, ["other", "top.txt"]);
            }
        }
    }
    // A dry run of an earlier level, with the later ones in place, changes none of them.
    let (_, (items, _)) = s.dry_run(&def, Some(1));
    assert!(names(&items).contains(&"data/empty/now-full".to_string()));
}

//! Exact increments, for any provider that keeps GNU snapshots: each level holds exactly what
//! changed since the previous level started, however close to a level's start the change was
//! made, and the chain restores with GNU tar.
//!
//! The test changes a file and starts the next level at once, over and over; with a dump time
//! taken from the clock files are stamped with, without waiting for it to tick over, a change
//! made in the same tick as a level's start was stored again by the level after it (3 levels
//! of 8 held two files).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use aa_abi::plugin::ArchiverProvider;
use aa_abi::{BackupDefinition, BackupType, NoEvents};

use crate::{assert_same_tree, gnu_list, gnu_restore_incremental, record_tree, Compare, Kind};

/// The file changed right before level `level` (1..): a new one every other level, otherwise
/// the one the previous level has just stored, so that a change made right after a level
/// stored the file is checked too.
fn changed_before(level: usize) -> String {
    format!("data/f{:02}", level.div_ceil(2))
}

/// Makes a level 0 and then `levels` levels of archive `exact` of `tmp/src/data` into
/// `tmp/dest` with `provider`, changing one file right before each, and checks every level
/// holds that file only (and the directory, which GNU's format stores at every level), and that
/// GNU tar restores the chain to the final tree.
pub fn exact_increments_scenario<P: ArchiverProvider>(
    provider: &P,
    tmp: &Path,
    backup_type: BackupType,
    levels: usize,
) {
    let (root, dest) = (tmp.join("src"), tmp.join("dest"));
    fs::create_dir_all(root.join("data")).unwrap();
    fs::create_dir_all(&dest).unwrap();
    for level in 1..=levels {
        fs::write(root.join(changed_before(level)), "level 0\n").unwrap();
    }
    let def = BackupDefinition::new("exact", backup_type, &dest, &root).include(["data"]);
    let level = |n: usize| {
        provider
            .backup_files_incrementally(&def, None, Some(n as u32), false, &NoEvents)
            .unwrap_or_else(|e| panic!("level {n}: {e}"))
    };
    let mut chain = vec![level(0)];
    let mut wrong = Vec::new();
    for n in 1..=levels {
        let changed = changed_before(n);
        fs::write(root.join(&changed), format!("level {n}\n")).unwrap();
        let archive = level(n);
        let members = gnu_list(&archive);
        let expected: BTreeSet<Vec<u8>> = [b"data".to_vec(), changed.into_bytes()].into();
        if members != expected {
            let shown: Vec<String> = members.iter().map(|m| crate::show(m)).collect();
            wrong.push(format!("level {n}: {}", shown.join(" ")));
        }
        chain.push(archive);
    }
    assert!(
        wrong.is_empty(),
        "{backup_type}: {} of {levels} levels do not hold exactly the file changed before \
         them:\n  {}",
        wrong.len(),
        wrong.join("\n  ")
    );

    let restored = tmp.join("restored");
    let refs: Vec<&Path> = chain.iter().map(|p| p.as_path()).collect();
    gnu_restore_incremental(&refs, &restored).unwrap();
    let zero_dir_times = |mut record: crate::TreeRecord| {
        // Restoring a later level legitimately touches directory times.
        record
            .values_mut()
            .filter(|e| e.kind == Kind::Dir)
            .for_each(|e| (e.mtime_secs, e.mtime_nanos) = (0, 0));
        record
    };
    assert_same_tree(
        &zero_dir_times(record_tree(&root)),
        &zero_dir_times(record_tree(&restored)),
        Compare { mtime_nanos: true },
        &format!("{backup_type}: levels 0..{levels} restored"),
    );
}

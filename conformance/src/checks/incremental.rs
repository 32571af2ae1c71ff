//! Incremental backups (types declaring `Incremental`), and the refusal of the incremental
//! methods where it is not declared.
//!
//! The reference for what a chain holds is GNU tar itself: levels 0..N restored in order in
//! incremental mode must give the tree as it was when level N was made, including the absence
//! of what was deleted or renamed away since level 0. Directory modification times are not
//! compared (restoring a later level legitimately touches them); everything else is.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{gnu_restore_incremental, noise, tree_diff, Compare, TreeBuilder, TreeRecord};
use aa_abi::host::Provider;
use aa_abi::{ArchiverFeature, BackupDefinition, ProviderErrorKind};

use super::{
    call, expect_error, expect_listing, expect_no_diff, file_name, io, listing, read, NAME,
};
use crate::runner::{ensure, fail, CheckResult, Context, Failure, Problem};
use crate::support::{dir_state, partial_files, reported_errors, state_diff, Recorder};

const NOT_SUPPORTED: [ProviderErrorKind; 2] = [
    ProviderErrorKind::NOT_IMPLEMENTED,
    ProviderErrorKind::UNSUPPORTED_FEATURE,
];

// ---- the fixture and its evolution ------------------------------------------------------------

/// `root/data` as of level 0.
fn initial_tree(root: &Path) {
    let mut t = TreeBuilder::new(root.join("data"));
    t.file("keep.txt", b"never changes\n", 0o644)
        .file("edit.txt", b"version 0\n", 0o644)
        .file("gone.txt", b"deleted before level 1\n", 0o644)
        .file("move-me.txt", b"renamed before level 1\n", 0o644)
        .file("big.bin", &noise(200_000, 11), 0o644)
        .symlink("link", "keep.txt")
        .dir("empty", 0o755)
        .dir("dir", 0o755)
        .file("dir/inner.txt", b"inner\n", 0o644)
        .dir("dir/sub", 0o750)
        .file("dir/sub/deep.txt", b"deep\n", 0o600)
        .dir("olddir", 0o755)
        .file(
            "olddir/a.txt",
            b"in a directory renamed before level 1\n",
            0o644,
        )
        .dir("olddir/nested", 0o755)
        .file("olddir/nested/b.txt", b"nested in it\n", 0o644);
    t.finish();
}

/// The changes made before `level`: modifications, new, deleted and renamed files, renamed
/// directories, a replaced symbolic link and a permission change.
fn change_tree(root: &Path, level: u32) -> io::Result<()> {
    let d = root.join("data");
    match level {
        1 => {
            fs::write(d.join("edit.txt"), b"edited before level 1\n")?;
            fs::remove_file(d.join("gone.txt"))?;
            fs::rename(d.join("move-me.txt"), d.join("moved.txt"))?;
            fs::rename(d.join("olddir"), d.join("newdir"))?;
            fs::write(d.join("new-1.txt"), b"new at level 1\n")?;
            fs::write(d.join("dir/sub/new.txt"), b"new in sub at level 1\n")?;
        }
        2 => {
            fs::write(
                d.join("edit.txt"),
                b"edited again before level 2, now longer\n",
            )?;
            fs::remove_dir_all(d.join("dir/sub"))?;
            fs::rename(d.join("newdir/a.txt"), d.join("newdir/a-renamed.txt"))?;
            fs::write(d.join("new-2.txt"), b"new at level 2\n")?;
            fs::remove_file(d.join("link"))?;
            symlink("edit.txt", d.join("link"))?;
            fs::create_dir(d.join("added"))?;
            fs::write(d.join("added/f.txt"), b"in a directory added at level 2\n")?;
        }
        _ => {
            fs::write(d.join("edit.txt"), format!("level {level}\n"))?;
            fs::rename(d.join("newdir"), d.join(format!("newdir-{level}")))?;
            if d.join("new-1.txt").exists() {
                fs::remove_file(d.join("new-1.txt"))?;
            }
            fs::write(d.join("big.bin"), noise(200_000, u64::from(level) + 100))?;
            if d.join("moved.txt").exists() {
                fs::rename(d.join("moved.txt"), d.join("dir/moved.txt"))?;
            }
            fs::set_permissions(d.join("keep.txt"), fs::Permissions::from_mode(0o600))?;
            fs::write(d.join(format!("new-{level}.txt")), b"new\n")?;
        }
    }
    Ok(())
}

/// The tree as a restore must reproduce it: directory times and hard link identity aside.
fn expected_state(root: &Path) -> TreeRecord {
    let mut state = dir_state(root);
    for entry in state.values_mut() {
        entry.hardlink_group = None;
    }
    state
}

/// One incremental backup `id` of the context's type, over `root/data`.
struct Chain<'a> {
    ctx: &'a Context<'a>,
    provider: &'a Provider,
    def: BackupDefinition,
    root: PathBuf,
    dest: PathBuf,
    ext: &'static str,
    id: String,
}

impl<'a> Chain<'a> {
    fn new(ctx: &'a Context<'a>, provider: &'a Provider, id: &str) -> Result<Chain<'a>, Problem> {
        let root = ctx.path("src");
        if !root.join("data").exists() {
            ctx.mkdir("src")?;
            initial_tree(&root);
        }
        let dest = ctx.mkdir("dest")?;
        let def = BackupDefinition::new(id, ctx.backup_type, &dest, &root).include(["data"]);
        Ok(Chain {
            ctx,
            provider,
            def,
            root,
            dest,
            ext: ctx.ext()?,
            id: id.to_string(),
        })
    }

    fn path(&self, level: u32, keeping_id: Option<&str>) -> PathBuf {
        self.dest
            .join(file_name(&self.id, self.ext, level, keeping_id))
    }

    fn max_level(&self) -> Result<u32, Problem> {
        call(
            format!("get_max_backup_level({:?})", self.id),
            self.provider.get_max_backup_level(&self.id),
        )
    }

    fn expect_max_level(&self, expected: u32, when: &str) -> CheckResult {
        let max = self.max_level()?;
        ensure!(
            max == expected,
            "get_max_backup_level({:?}) is {max} {when}, expected {expected}",
            self.id
        );
        Ok(())
    }

    /// Makes the backup of `level` (`None`: the next one, which must be `expect`), checking
    /// the returned name and the new maximal level.
    fn backup(&self, level: Option<u32>, expect: u32) -> Result<PathBuf, Problem> {
        let events = Recorder::default();
        let what = format!("backup_files_incrementally({:?}, level={level:?})", self.id);
        let path = call(
            &what,
            self.provider
                .backup_files_incrementally(&self.def, None, level, false, &events),
        )?;
        ensure!(
            path == self.path(expect, None),
            "{what} returned {}, expected {}",
            path.display(),
            self.path(expect, None).display()
        );
        if let Some(e) = reported_errors(&events)
            .iter()
            .find(|e| e.error.is_content_error())
        {
            fail!("{what} reported {}", e.describe());
        }
        self.expect_max_level(expect + 1, &format!("after level {expect}"))?;
        ensure!(
            partial_files(&self.dest).is_empty(),
            "a ._partial file remains after {what}"
        );
        Ok(path)
    }

    /// Restores `levels` in order into a fresh directory and compares it with `expected`.
    fn expect_restores(
        &self,
        archives: &[PathBuf],
        expected: &TreeRecord,
        tag: &str,
    ) -> CheckResult {
        let out = self.ctx.path(&format!("restore-{}-{tag}", self.id));
        let refs: Vec<&Path> = archives.iter().map(PathBuf::as_path).collect();
        gnu_restore_incremental(&refs, &out).map_err(|e| Problem::Fail(Failure::new(e)))?;
        expect_no_diff(
            tree_diff(expected, &expected_state(&out), Compare::default()),
            &format!("restoring {tag} does not give the tree as it was"),
        )
    }

    /// Changes the tree for `level` and makes it as the next level, returning its path.
    fn next(&self, level: u32) -> Result<PathBuf, Problem> {
        if level > 0 {
            io(
                &format!("change the tree for level {level}"),
                change_tree(&self.root, level),
            )?;
        }
        self.backup(None, level)
    }
}

fn levels_tag(n: u32) -> String {
    format!("levels 0..{n}")
}

// ---- the checks ------------------------------------------------------------------------------

/// Levels 0..3, each restored (with all below it) to the tree as it was at that level.
pub(crate) fn chain_restores(ctx: &Context<'_>) -> CheckResult {
    let p = ctx.provider()?;
    let chain = Chain::new(ctx, &p, NAME)?;
    chain.expect_max_level(0, "before any backup")?;
    let mut archives = Vec::new();
    for level in 0..=3 {
        archives.push(chain.next(level)?);
        let state = expected_state(&chain.root);
        chain.expect_restores(&archives, &state, &levels_tag(level))?;
    }
    let names: Vec<String> = (0..=3)
        .map(|l| file_name(NAME, chain.ext, l, None))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    expect_listing(&chain.dest, &names, "after levels 0..3")
}

/// Level bounds, removing increments, and redoing a lower level.
pub(crate) fn levels_and_redo(ctx: &Context<'_>) -> CheckResult {
    let p = ctx.provider()?;
    let chain = Chain::new(ctx, &p, NAME)?;
    for level in 0..=3 {
        chain.next(level)?;
    }

    // A level above the maximum is refused and changes nothing.
    let work = dir_state(&ctx.work_dir());
    let dest = dir_state(&chain.dest);
    expect_error(
        "backup_files_incrementally(level=5) with maximal level 4",
        p.backup_files_incrementally(&chain.def, None, Some(5), false, &Recorder::default()),
        &[ProviderErrorKind::INVALID_VALUE],
    )?;
    expect_no_diff(
        state_diff(&work, &dir_state(&ctx.work_dir())),
        "the refused level changed the work directory",
    )?;
    expect_no_diff(
        state_diff(&dest, &dir_state(&chain.dest)),
        "the refused level changed the destination",
    )?;
    chain.expect_max_level(4, "after the refused level")?;

    call(
        "remove_backup_increments(level=3)",
        p.remove_backup_increments(&chain.def, Some(3), None),
    )?;
    ensure!(
        !chain.path(3, None).exists(),
        "remove_backup_increments(level=3) left level 3"
    );
    ensure!(
        chain.path(2, None).is_file(),
        "remove_backup_increments(level=3) removed level 2"
    );
    chain.expect_max_level(3, "after remove_backup_increments(level=3)")?;

    // Redo level 1 on a changed tree: the maximum drops to 2, and 0 + new 1 restore the tree.
    io(
        "change the tree",
        fs::write(chain.root.join("data/redo.txt"), b"redo\n"),
    )?;
    io(
        "change the tree",
        fs::remove_file(chain.root.join("data/keep.txt")),
    )?;
    let level1 = chain.backup(Some(1), 1)?;
    chain.expect_restores(
        &[chain.path(0, None), level1],
        &expected_state(&chain.root),
        "level 0 and the redone level 1",
    )?;

    call(
        "remove_backup_increments(level=1)",
        p.remove_backup_increments(&chain.def, Some(1), None),
    )?;
    chain.expect_max_level(1, "after remove_backup_increments(level=1)")?;
    let level0 = file_name(NAME, chain.ext, 0, None);
    expect_listing(
        &chain.dest,
        &[&level0],
        "after remove_backup_increments(level=1)",
    )
}

/// Keeping levels under keeping ids, and `does_any_backup_level_exist` for both names.
pub(crate) fn keep_and_exists(ctx: &Context<'_>) -> CheckResult {
    let p = ctx.provider()?;
    let chain = Chain::new(ctx, &p, NAME)?;
    let mut bytes = Vec::new();
    for level in 0..=2 {
        bytes.push(read(&chain.next(level)?)?);
    }
    let any = |from: u32, keep: Option<&str>| {
        call(
            format!("does_any_backup_level_exist(from_level={from}, keeping_id={keep:?})"),
            p.does_any_backup_level_exist(&chain.def, from, keep),
        )
    };
    let expect_any = |from: u32, keep: Option<&str>, expected: bool, when: &str| -> CheckResult {
        let got = any(from, keep)?;
        ensure!(
            got == expected,
            "does_any_backup_level_exist(from_level={from}, keeping_id={keep:?}) is {got} {when}, expected {expected}"
        );
        Ok(())
    };
    expect_any(0, None, true, "with levels 0..2")?;
    expect_any(2, None, true, "with levels 0..2")?;
    expect_any(3, None, false, "with levels 0..2")?;
    expect_any(0, Some("aa"), false, "before keeping")?;
    let exists = call(
        "does_backup_exist(level=2)",
        p.does_backup_exist(&chain.def, Some(2), None),
    )?;
    ensure!(
        exists,
        "does_backup_exist(level=2) is false with levels 0..2"
    );

    for level in 0..=2 {
        call(
            format!("keep_backup(level={level}, None -> aa)"),
            p.keep_backup(&chain.def, None, "aa", Some(level)),
        )?;
    }
    for level in 0..=2 {
        let kept = chain.path(level, Some("aa"));
        ensure!(
            kept.is_file() && read(&kept)? == bytes[level as usize],
            "{} is not the kept level {level}",
            kept.display()
        );
    }
    let names: Vec<String> = (0..=2)
        .map(|l| file_name(NAME, chain.ext, l, Some("aa")))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    expect_listing(&chain.dest, &names, "after keeping levels 0..2 as aa")?;
    expect_any(0, None, false, "after keeping every level")?;
    expect_any(0, Some("aa"), true, "after keeping levels 0..2")?;
    expect_any(2, Some("aa"), true, "after keeping levels 0..2")?;
    expect_any(3, Some("aa"), false, "after keeping levels 0..2")?;
    let exists = call(
        "does_backup_exist(level=1, keeping_id=aa)",
        p.does_backup_exist(&chain.def, Some(1), Some("aa")),
    )?;
    ensure!(
        exists,
        "does_backup_exist(level=1, keeping_id=aa) is false after keeping it"
    );

    let e = expect_error(
        "keep_backup(level=1) of a nonexistent kept backup",
        p.keep_backup(&chain.def, Some("zz"), "ab", Some(1)),
        &[ProviderErrorKind::IO],
    )?;
    ensure!(
        e.os_code == rustix::io::Errno::NOENT.raw_os_error(),
        "keep_backup of a nonexistent level: os error {}, expected ENOENT",
        e.os_code
    );

    call(
        "remove_backup_increments(level=1, keeping_id=aa)",
        p.remove_backup_increments(&chain.def, Some(1), Some("aa")),
    )?;
    expect_listing(
        &chain.dest,
        &[&file_name(NAME, chain.ext, 0, Some("aa"))],
        "after remove_backup_increments(level=1, keeping_id=aa)",
    )?;
    expect_any(1, Some("aa"), false, "after removing kept levels 1..")?;
    expect_any(0, Some("aa"), true, "after removing kept levels 1..")?;

    call(
        "keep_backup(level=0, aa -> ab)",
        p.keep_backup(&chain.def, Some("aa"), "ab", Some(0)),
    )?;
    expect_listing(
        &chain.dest,
        &[&file_name(NAME, chain.ext, 0, Some("ab"))],
        "after keep_backup(level=0, aa -> ab)",
    )
}

/// Stored ids, and a purge that removes exactly one id's state.
pub(crate) fn stored_ids_and_purge(ctx: &Context<'_>) -> CheckResult {
    let p = ctx.provider()?;
    let ids = call("get_stored_backup_ids", p.get_stored_backup_ids())?;
    ensure!(
        ids.is_empty(),
        "a fresh work directory has stored ids {ids:?}"
    );

    let other_id = format!("{NAME}.v2");
    let main = Chain::new(ctx, &p, NAME)?;
    let other = Chain::new(ctx, &p, &other_id)?;
    main.backup(None, 0)?;
    let mut other_archives = vec![other.backup(None, 0)?];
    io("change the tree", change_tree(&other.root, 1))?;
    other_archives.push(other.backup(None, 1)?);

    let ids = call("get_stored_backup_ids", p.get_stored_backup_ids())?;
    for id in [NAME, other_id.as_str()] {
        ensure!(
            ids.iter().any(|i| i == id),
            "get_stored_backup_ids gives {ids:?}, without {id:?}"
        );
    }

    call(
        format!("purge_stored_backup_data({NAME:?})"),
        p.purge_stored_backup_data(NAME),
    )?;
    let ids = call("get_stored_backup_ids", p.get_stored_backup_ids())?;
    ensure!(
        !ids.iter().any(|i| i == NAME),
        "get_stored_backup_ids still gives {NAME:?} after purging it: {ids:?}"
    );
    ensure!(
        ids.contains(&other_id),
        "purging {NAME:?} also purged {other_id:?}: stored ids are {ids:?}"
    );
    main.expect_max_level(0, "after purging it")?;
    other.expect_max_level(2, &format!("after purging {NAME:?}"))?;

    // The other chain goes on where it was.
    io("change the tree", change_tree(&other.root, 2))?;
    other_archives.push(other.backup(None, 2)?);
    other.expect_restores(
        &other_archives,
        &expected_state(&other.root),
        &format!("{other_id} levels 0..2 after purging {NAME}"),
    )
}

/// Failed incremental runs leave the work directory (the snapshot state), every backup and
/// the maximal level exactly as they were; the chain then goes on normally.
pub(crate) fn failed_run_keeps_state(ctx: &Context<'_>) -> CheckResult {
    let p = ctx.provider()?;
    let chain = Chain::new(ctx, &p, NAME)?;
    let mut archives = vec![chain.next(0)?, chain.next(1)?];
    let work = dir_state(&ctx.work_dir());
    let dest = dir_state(&chain.dest);
    let unchanged = |what: &str| -> CheckResult {
        expect_no_diff(
            state_diff(&work, &dir_state(&ctx.work_dir())),
            &format!("{what} changed the work directory"),
        )?;
        expect_no_diff(
            state_diff(&dest, &dir_state(&chain.dest)),
            &format!("{what} changed the destination"),
        )?;
        ensure!(
            partial_files(&chain.dest).is_empty(),
            "{what} left a ._partial file"
        );
        chain.expect_max_level(2, &format!("after {what}"))
    };

    let away = ctx.path("src-away");
    io("move the root away", fs::rename(&chain.root, &away))?;
    for level in [None, Some(1), Some(0)] {
        let what = format!("backup_files_incrementally(level={level:?}) with the root missing");
        let result =
            p.backup_files_incrementally(&chain.def, None, level, false, &Recorder::default());
        if let Ok(path) = result {
            fail!(
                "{what} succeeded (returned {}); it must fail",
                path.display()
            );
        }
        unchanged(&what)?;
    }
    io("move the root back", fs::rename(&away, &chain.root))?;

    let refused = [
        (
            "backup_files_incrementally(level=3) with maximal level 2",
            p.backup_files_incrementally(&chain.def, None, Some(3), false, &Recorder::default()),
            ProviderErrorKind::INVALID_VALUE,
        ),
        (
            "backup_files_incrementally with no includes",
            p.backup_files_incrementally(
                &BackupDefinition {
                    include_files: Default::default(),
                    ..chain.def.clone()
                },
                None,
                None,
                false,
                &Recorder::default(),
            ),
            ProviderErrorKind::OTHER,
        ),
    ];
    for (what, result, kind) in refused {
        expect_error(what, result, &[kind])?;
        unchanged(what)?;
    }
    if ctx.has_feature(ArchiverFeature::CompressionStrength) {
        let what = "backup_files_incrementally with strength 10";
        expect_error(
            what,
            p.backup_files_incrementally(&chain.def, Some(10), None, false, &Recorder::default()),
            &[ProviderErrorKind::INVALID_VALUE],
        )?;
        unchanged(what)?;
    }

    archives.push(chain.next(2)?);
    chain.expect_restores(
        &archives,
        &expected_state(&chain.root),
        "levels 0..2 after the failed runs",
    )
}

/// A type without `Incremental`: the incremental methods are refused and write nothing.
pub(crate) fn not_declared(ctx: &Context<'_>) -> CheckResult {
    let root = super::simple_source(ctx)?;
    let dest = ctx.mkdir("dest")?;
    let p = ctx.provider()?;
    let def = super::definition(ctx, &dest, &root, &["tree"]);
    expect_error(
        "backup_files_incrementally",
        p.backup_files_incrementally(&def, None, None, false, &Recorder::default()),
        &NOT_SUPPORTED,
    )?;
    expect_error(
        "remove_backup_increments",
        p.remove_backup_increments(&def, Some(0), None),
        &NOT_SUPPORTED,
    )?;
    expect_error(
        "does_any_backup_level_exist",
        p.does_any_backup_level_exist(&def, 0, None),
        &NOT_SUPPORTED,
    )?;
    let left = listing(&dest)?;
    ensure!(left.is_empty(), "refused incremental calls wrote {left:?}");
    Ok(())
}

/// No type declares `Incremental`: the maximal level is not available either.
pub(crate) fn not_implemented(ctx: &Context<'_>) -> CheckResult {
    let p = ctx.provider()?;
    expect_error(
        "get_max_backup_level",
        p.get_max_backup_level(NAME),
        &NOT_SUPPORTED,
    )?;
    Ok(())
}

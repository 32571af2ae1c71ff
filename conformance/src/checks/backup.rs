//! Non-incremental backups: the file a backup lands in, what it holds, excludes, and the
//! overwrite discipline (a failed run never destroys the previous backup).

use std::cell::RefCell;
use std::fs;
use std::path::Path;

use aa_abi::{BackupEvents, BackupOperationError, BackupSubOperation};

use crate::{detect_format, gnu_extract, gnu_list, record_tree, tree_diff, Compare};

use super::{
    call, definition, expect_listing, expect_no_diff, file_name, full_source, io, magic_format,
    read, simple_source, verify_stored,
};
use crate::runner::{ensure, fail, CheckResult, Context};
use crate::support::{normalise_member, partial_files, Recorder};

/// `backup_files` returns exactly `DEST/NAME.EXT`, writes nothing else, in the type's format.
pub(crate) fn name_and_format(ctx: &Context<'_>) -> CheckResult {
    let ext = ctx.ext()?;
    let root = simple_source(ctx)?;
    let dest = ctx.mkdir("dest")?;
    let p = ctx.provider()?;
    let def = definition(ctx, &dest, &root, &["tree"]);
    let path = call(
        "backup_files",
        p.backup_files(&def, None, false, &Recorder::default()),
    )?;
    let name = file_name(super::NAME, ext, 0, None);
    ensure!(
        path == dest.join(&name),
        "backup_files returned {}, expected {}",
        path.display(),
        dest.join(&name).display()
    );
    expect_listing(&dest, &[&name], "after backup_files")?;
    if let Some(format) = magic_format(ctx.backup_type) {
        let found = detect_format(&path);
        ensure!(
            found == format,
            "{name} has the magic bytes of '{found}', expected '{format}'"
        );
    }
    Ok(())
}

/// The full fixture (every kind of object, a socket, long and non-UTF-8 names, nanosecond
/// times) follows the object-storage rule, and the source is left untouched.
pub(crate) fn extracts_identically(ctx: &Context<'_>) -> CheckResult {
    let root = full_source(ctx)?;
    let dest = ctx.mkdir("dest")?;
    let p = ctx.provider()?;
    let before = record_tree(&root);
    let events = Recorder::default();
    let def = definition(ctx, &dest, &root, &["tree"]);
    let path = call("backup_files", p.backup_files(&def, None, false, &events))?;
    let out = ctx.path("restored");
    gnu_extract(&path, &out);
    verify_stored(&before, &record_tree(&out), &events, &gnu_list(&path), &[])?;
    expect_no_diff(
        tree_diff(&before, &record_tree(&root), Compare { mtime_nanos: true }),
        "making the backup changed the source",
    )
}

/// An excluded subtree and an excluded single file are absent; everything else is there.
pub(crate) fn excludes(ctx: &Context<'_>) -> CheckResult {
    let root = full_source(ctx)?;
    let dest = ctx.mkdir("dest")?;
    let p = ctx.provider()?;
    let source = record_tree(&root);
    let events = Recorder::default();
    let excluded: [&[u8]; 2] = [b"tree/a/b", b"tree/file.txt"];
    ensure!(
        excluded.iter().all(|e| source.contains_key(*e)),
        "the fixture lacks an object the check excludes"
    );
    let def = definition(ctx, &dest, &root, &["tree"]).exclude(["tree/a/b", "tree/file.txt"]);
    let path = call(
        "backup_files with excludes",
        p.backup_files(&def, None, false, &events),
    )?;
    let out = ctx.path("restored");
    gnu_extract(&path, &out);
    verify_stored(
        &source,
        &record_tree(&out),
        &events,
        &gnu_list(&path),
        &excluded,
    )
}

/// With the root gone the run must fail, and the previous backup must survive unchanged.
pub(crate) fn failed_run_keeps_old_backup(ctx: &Context<'_>) -> CheckResult {
    let ext = ctx.ext()?;
    let root = simple_source(ctx)?;
    let dest = ctx.mkdir("dest")?;
    let p = ctx.provider()?;
    let def = definition(ctx, &dest, &root, &["tree"]);
    let old = call(
        "backup_files",
        p.backup_files(&def, None, false, &Recorder::default()),
    )?;
    let old_bytes = read(&old)?;

    io(
        "move the root away",
        fs::rename(&root, ctx.path("src-away")),
    )?;
    let result = p.backup_files(&def, None, false, &Recorder::default());
    ensure!(
        result.is_err(),
        "backup_files succeeded with the backup root missing (returned {:?}); it must fail",
        result
    );
    ensure!(
        old.is_file() && read(&old)? == old_bytes,
        "the failed run changed or removed the previous backup {}",
        old.display()
    );
    let name = file_name(super::NAME, ext, 0, None);
    expect_listing(&dest, &[&name], "after the failed run")?;
    ensure!(partial_files(&dest).is_empty(), "a ._partial file remains");
    Ok(())
}

/// Changes the simple fixture so a new backup differs from the old one.
fn change_source(root: &std::path::Path) -> CheckResult {
    io(
        "change the source",
        fs::write(
            root.join("tree/file.txt"),
            b"changed after the first backup\n",
        ),
    )?;
    io(
        "add to the source",
        fs::write(
            root.join("tree/a/added.txt"),
            b"added after the first backup\n",
        ),
    )?;
    Ok(())
}

/// Where [`replaces`] looks at the destination: the last member in byte order, stored after
/// [`BULK`], which no pipe holds: when it is reported, the provider (or the compressor GNU tar
/// feeds through a pipe) is well into writing its output.
const LAST: &str = "tree/zz-last.txt";
const BULK: &str = "tree/0-bulk.bin";

/// A second backup over an existing one, with `overwrite_at_start` as given: the result
/// replaces the old backup and, while it is written, the old backup is intact and a
/// `._partial` file exists (without the flag), or the old backup is already overwritten and
/// there is no `._partial` file (with it).
fn replaces(ctx: &Context<'_>, overwrite_at_start: bool) -> CheckResult {
    let ext = ctx.ext()?;
    let root = simple_source(ctx)?;
    io(
        "add a large file to the source",
        fs::write(root.join(BULK), crate::noise(2 << 20, 11)),
    )?;
    io("add to the source", fs::write(root.join(LAST), b"last\n"))?;
    let dest = ctx.mkdir("dest")?;
    let p = ctx.provider()?;
    let def = definition(ctx, &dest, &root, &["tree"]);
    let old = call(
        "backup_files",
        p.backup_files(&def, None, false, &Recorder::default()),
    )?;
    let old_bytes = read(&old)?;

    change_source(&root)?;
    let what = format!("backup_files (overwrite_at_start={overwrite_at_start}) over an old backup");
    let watcher = WhileWriting {
        inner: Recorder::default(),
        dest: &dest,
        backup: &old,
        old_bytes: &old_bytes,
        seen: RefCell::new(None),
    };
    let new = call(
        &what,
        p.backup_files(&def, None, overwrite_at_start, &watcher),
    )?;
    let Some(seen) = watcher.seen.into_inner() else {
        fail!("{what} did not report storing {LAST}");
    };
    if overwrite_at_start {
        ensure!(
            !seen.old_backup_intact,
            "{what}: the old backup was still intact while the new one was written; \
             overwrite_at_start must write over it from the start"
        );
        ensure!(
            seen.partial.is_empty(),
            "{what}: {:?} existed while the backup was written; overwrite_at_start writes in place",
            seen.partial
        );
    } else {
        ensure!(
            seen.old_backup_intact,
            "{what}: the old backup was changed or gone while the new one was written"
        );
        ensure!(
            !seen.partial.is_empty(),
            "{what}: no ._partial file while the backup was written"
        );
    }
    ensure!(
        new == old,
        "{what} returned {}, expected {}",
        new.display(),
        old.display()
    );
    let name = file_name(super::NAME, ext, 0, None);
    expect_listing(&dest, &[&name], &what)?;
    ensure!(
        read(&new)? != old_bytes,
        "{what} left the old backup in place"
    );
    let out = ctx.path("restored");
    gnu_extract(&new, &out);
    expect_no_diff(
        tree_diff(
            &record_tree(&root.join("tree")),
            &record_tree(&out.join("tree")),
            Compare::default(),
        ),
        "the new backup does not restore the changed source",
    )
}

/// What the destination held when the provider reported storing [`LAST`].
struct Seen {
    old_backup_intact: bool,
    partial: Vec<String>,
}

/// Records events and looks at the destination when [`LAST`] is reported.
struct WhileWriting<'a> {
    inner: Recorder,
    dest: &'a Path,
    backup: &'a Path,
    old_bytes: &'a [u8],
    seen: RefCell<Option<Seen>>,
}

impl BackupEvents for WhileWriting<'_> {
    fn file_add(&self, name: &Path) {
        let mut seen = self.seen.borrow_mut();
        if normalise_member(name.as_os_str().as_encoded_bytes()) == LAST.as_bytes() {
            *seen = Some(Seen {
                old_backup_intact: fs::read(self.backup).ok().as_deref() == Some(self.old_bytes),
                partial: partial_files(self.dest),
            });
        }
        self.inner.file_add(name);
    }

    fn backup_operation_error(
        &self,
        operation: BackupSubOperation,
        error: BackupOperationError,
        name: Option<&Path>,
        message: Option<&str>,
    ) {
        self.inner
            .backup_operation_error(operation, error, name, message);
    }
}

pub(crate) fn successful_run_replaces(ctx: &Context<'_>) -> CheckResult {
    replaces(ctx, false)
}

pub(crate) fn overwrite_at_start(ctx: &Context<'_>) -> CheckResult {
    replaces(ctx, true)
}

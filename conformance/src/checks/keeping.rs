//! Kept backups: `keep_backup` renames `NAME.EXT` to `NAME.KEEPID.EXT`, `does_backup_exist` and
//! `remove_backup` address either name, and the seed's `FileExistsError`/`FileNotFoundError`
//! arrive as I/O errors with their OS codes.

use aa_abi::ProviderErrorKind;

use super::{call, definition, expect_error, expect_listing, file_name, read, simple_source, NAME};
use crate::runner::{ensure, CheckResult, Context};
use crate::support::Recorder;

pub(crate) fn keep_and_remove(ctx: &Context<'_>) -> CheckResult {
    let ext = ctx.ext()?;
    let root = simple_source(ctx)?;
    let dest = ctx.mkdir("dest")?;
    let p = ctx.provider()?;
    let def = definition(ctx, &dest, &root, &["tree"]);
    let current = file_name(NAME, ext, 0, None);
    let kept_aa = file_name(NAME, ext, 0, Some("aa"));
    let kept_ab = file_name(NAME, ext, 0, Some("ab"));
    let exists = |keep: Option<&str>| {
        call(
            format!("does_backup_exist(keeping_id={keep:?})"),
            p.does_backup_exist(&def, None, keep),
        )
    };

    ensure!(
        !exists(None)?,
        "does_backup_exist is true before any backup"
    );
    let path = call(
        "backup_files",
        p.backup_files(&def, None, false, &Recorder::default()),
    )?;
    let bytes = read(&path)?;
    ensure!(
        exists(None)?,
        "does_backup_exist is false after backup_files"
    );
    ensure!(
        !exists(Some("aa"))?,
        "does_backup_exist(\"aa\") is true before keeping"
    );

    call(
        "keep_backup(None -> aa)",
        p.keep_backup(&def, None, "aa", None),
    )?;
    expect_listing(&dest, &[&kept_aa], "after keep_backup(None -> aa)")?;
    ensure!(
        read(&dest.join(&kept_aa))? == bytes,
        "{kept_aa} is not the kept backup"
    );
    ensure!(
        !exists(None)?,
        "does_backup_exist is true after keeping the backup"
    );
    ensure!(
        exists(Some("aa"))?,
        "does_backup_exist(\"aa\") is false after keeping"
    );

    call(
        "keep_backup(aa -> ab)",
        p.keep_backup(&def, Some("aa"), "ab", None),
    )?;
    expect_listing(&dest, &[&kept_ab], "after keep_backup(aa -> ab)")?;
    ensure!(
        read(&dest.join(&kept_ab))? == bytes,
        "{kept_ab} is not the kept backup"
    );

    call(
        "backup_files",
        p.backup_files(&def, None, false, &Recorder::default()),
    )?;
    expect_listing(&dest, &[&current, &kept_ab], "after a new backup")?;

    call(
        "remove_backup(keeping_id=ab)",
        p.remove_backup(&def, Some("ab")),
    )?;
    expect_listing(&dest, &[&current], "after remove_backup(keeping_id=ab)")?;
    ensure!(
        !exists(Some("ab"))?,
        "does_backup_exist(\"ab\") is true after removing it"
    );
    call("remove_backup", p.remove_backup(&def, None))?;
    expect_listing(&dest, &[], "after remove_backup")?;
    ensure!(
        !exists(None)?,
        "does_backup_exist is true after remove_backup"
    );
    Ok(())
}

pub(crate) fn keep_errors(ctx: &Context<'_>) -> CheckResult {
    let ext = ctx.ext()?;
    let root = simple_source(ctx)?;
    let dest = ctx.mkdir("dest")?;
    let p = ctx.provider()?;
    let def = definition(ctx, &dest, &root, &["tree"]);
    let current = file_name(NAME, ext, 0, None);
    let kept_aa = file_name(NAME, ext, 0, Some("aa"));

    call(
        "backup_files",
        p.backup_files(&def, None, false, &Recorder::default()),
    )?;
    let kept_bytes = read(&dest.join(&current))?;
    call(
        "keep_backup(None -> aa)",
        p.keep_backup(&def, None, "aa", None),
    )?;
    io_change(&root)?;
    call(
        "backup_files",
        p.backup_files(&def, None, false, &Recorder::default()),
    )?;
    let current_bytes = read(&dest.join(&current))?;

    // Keeping onto an existing kept backup: FileExistsError, and neither file is touched.
    let e = expect_error(
        "keep_backup onto an existing kept backup",
        p.keep_backup(&def, None, "aa", None),
        &[ProviderErrorKind::IO],
    )?;
    ensure!(
        e.os_code == rustix::io::Errno::EXIST.raw_os_error(),
        "keep_backup onto an existing kept backup: os error {}, expected EEXIST ({})",
        e.os_code,
        rustix::io::Errno::EXIST.raw_os_error()
    );
    ensure!(
        read(&dest.join(&kept_aa))? == kept_bytes && read(&dest.join(&current))? == current_bytes,
        "the refused keep_backup changed a backup"
    );

    // Keeping a backup that does not exist: FileNotFoundError.
    let e = expect_error(
        "keep_backup of a nonexistent kept backup",
        p.keep_backup(&def, Some("zz"), "ac", None),
        &[ProviderErrorKind::IO],
    )?;
    ensure!(
        e.os_code == rustix::io::Errno::NOENT.raw_os_error(),
        "keep_backup of a nonexistent backup: os error {}, expected ENOENT ({})",
        e.os_code,
        rustix::io::Errno::NOENT.raw_os_error()
    );

    expect_error(
        "keep_backup with an empty new keeping id",
        p.keep_backup(&def, None, "", None),
        &[ProviderErrorKind::INVALID_VALUE],
    )?;
    expect_listing(
        &dest,
        &[&current, &kept_aa],
        "after the refused keep_backup calls",
    )
}

fn io_change(root: &std::path::Path) -> CheckResult {
    super::io(
        "change the source",
        std::fs::write(root.join("tree/file.txt"), b"second version\n"),
    )
}

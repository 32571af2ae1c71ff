//! The argument rules of the seed's base class: declared types and features, compression
//! strength range, nothing to back up; plus the identification itself.

use std::fs;

use crate::{compressible_text, gnu_extract, record_tree, tree_diff, Compare, TreeBuilder};
use aa_abi::{ArchiverFeature, ProviderErrorKind, MAX_COMPRESSION_STRENGTH};

use super::{call, definition, expect_error, expect_listing, expect_no_diff, simple_source};
use crate::runner::{ensure, fail, CheckResult, Context};
use crate::support::Recorder;

/// The identification is well formed and stable, and a provider can be created.
pub(crate) fn identification(ctx: &Context<'_>) -> CheckResult {
    let id = ctx.identification;
    let pid = id.provider_id.as_str();
    ensure!(
        !pid.is_empty() && !pid.contains(|c: char| c.is_whitespace() || c == '@' || c == '/'),
        "provider id {pid:?} must be a non-empty word (it is written as TYPE@ID)"
    );
    ensure!(!id.backup_types.is_empty(), "no backup type is declared");
    let mut seen = Vec::new();
    for t in id.backup_types.iter() {
        ensure!(
            !seen.contains(&t.backup_type),
            "{} is declared more than once",
            t.backup_type
        );
        seen.push(t.backup_type);
        let mut features = t.features.to_vec();
        features.sort();
        features.dedup();
        ensure!(
            features.len() == t.features.len(),
            "{} declares a feature more than once",
            t.backup_type
        );
        ensure!(
            t.backup_type.is_compressed()
                || !t.features.contains(&ArchiverFeature::CompressionStrength),
            "{} declares CompressionStrength but does not compress",
            t.backup_type
        );
    }
    ctx.provider()?;
    Ok(())
}

/// A backup type the provider did not declare is refused by every method taking a definition.
pub(crate) fn undeclared_type_rejected(ctx: &Context<'_>) -> CheckResult {
    let root = simple_source(ctx)?;
    let dest = ctx.mkdir("dest")?;
    let p = ctx.provider()?;
    let def = definition(ctx, &dest, &root, &["tree"]);
    let unsupported = [ProviderErrorKind::UNSUPPORTED_TYPE];
    let events = Recorder::default();
    expect_error(
        "backup_files",
        p.backup_files(&def, None, false, &events),
        &unsupported,
    )?;
    expect_error(
        "backup_files_incrementally",
        p.backup_files_incrementally(&def, None, None, false, &events),
        &unsupported,
    )?;
    expect_error("remove_backup", p.remove_backup(&def, None), &unsupported)?;
    expect_error(
        "does_backup_exist",
        p.does_backup_exist(&def, None, None),
        &unsupported,
    )?;
    expect_error(
        "keep_backup",
        p.keep_backup(&def, None, "aa", None),
        &unsupported,
    )?;
    expect_listing(&dest, &[], "after calls with an undeclared type")
}

/// A directory of compressible text: strength makes a visible difference on it.
fn compressible_source(ctx: &Context<'_>) -> Result<std::path::PathBuf, crate::runner::Problem> {
    let root = ctx.mkdir("src")?;
    let mut t = TreeBuilder::new(root.join("tree"));
    t.file("text.txt", &compressible_text(1_000_000), 0o644)
        .dir("sub", 0o755)
        .file("sub/more.txt", &compressible_text(50_000), 0o644);
    t.finish();
    Ok(root)
}

/// Strengths 0 and 9 both give valid archives, and 9 is not larger than 0.
pub(crate) fn strengths_0_and_9(ctx: &Context<'_>) -> CheckResult {
    let root = compressible_source(ctx)?;
    let p = ctx.provider()?;
    let source = record_tree(&root.join("tree"));
    let mut sizes = Vec::new();
    for strength in [0, MAX_COMPRESSION_STRENGTH] {
        let dest = ctx.mkdir(&format!("dest-{strength}"))?;
        let def = definition(ctx, &dest, &root, &["tree"]);
        let what = format!("backup_files with strength {strength}");
        let path = call(
            &what,
            p.backup_files(&def, Some(strength), false, &Recorder::default()),
        )?;
        let out = ctx.path(&format!("restored-{strength}"));
        gnu_extract(&path, &out);
        expect_no_diff(
            tree_diff(&source, &record_tree(&out.join("tree")), Compare::default()),
            &format!("the backup made with strength {strength} does not restore the source"),
        )?;
        sizes.push(fs::metadata(&path).map(|m| m.len()).unwrap_or(0));
    }
    ensure!(
        sizes[1] <= sizes[0],
        "strength 9 gave a larger archive ({} bytes) than strength 0 ({} bytes)",
        sizes[1],
        sizes[0]
    );
    Ok(())
}

/// A strength above the maximum is an invalid value, and nothing is written.
pub(crate) fn strength_out_of_range(ctx: &Context<'_>) -> CheckResult {
    let root = simple_source(ctx)?;
    let dest = ctx.mkdir("dest")?;
    let p = ctx.provider()?;
    let def = definition(ctx, &dest, &root, &["tree"]);
    for strength in [MAX_COMPRESSION_STRENGTH + 1, u32::MAX] {
        expect_error(
            format!("backup_files with strength {strength}"),
            p.backup_files(&def, Some(strength), false, &Recorder::default()),
            &[ProviderErrorKind::INVALID_VALUE],
        )?;
    }
    if ctx.has_feature(ArchiverFeature::Incremental) {
        expect_error(
            "backup_files_incrementally with strength 10",
            p.backup_files_incrementally(&def, Some(10), None, false, &Recorder::default()),
            &[ProviderErrorKind::INVALID_VALUE],
        )?;
    }
    expect_listing(&dest, &[], "after refused strengths")
}

/// Any strength for a type without `CompressionStrength` is an unsupported feature.
pub(crate) fn strength_refused(ctx: &Context<'_>) -> CheckResult {
    let root = simple_source(ctx)?;
    let dest = ctx.mkdir("dest")?;
    let p = ctx.provider()?;
    let def = definition(ctx, &dest, &root, &["tree"]);
    for strength in [0, 5] {
        expect_error(
            format!("backup_files with strength {strength}"),
            p.backup_files(&def, Some(strength), false, &Recorder::default()),
            &[ProviderErrorKind::UNSUPPORTED_FEATURE],
        )?;
    }
    if ctx.has_feature(ArchiverFeature::Incremental) {
        expect_error(
            "backup_files_incrementally with strength 5",
            p.backup_files_incrementally(&def, Some(5), None, false, &Recorder::default()),
            &[ProviderErrorKind::UNSUPPORTED_FEATURE],
        )?;
    }
    expect_listing(&dest, &[], "after refused strengths")
}

/// An empty include list is refused with the seed's "Nothing to backup.".
pub(crate) fn nothing_to_backup(ctx: &Context<'_>) -> CheckResult {
    let root = simple_source(ctx)?;
    let dest = ctx.mkdir("dest")?;
    let p = ctx.provider()?;
    let def = definition(ctx, &dest, &root, &[]);
    let mut results = vec![(
        "backup_files with no includes",
        p.backup_files(&def, None, false, &Recorder::default()),
    )];
    if ctx.has_feature(ArchiverFeature::Incremental) {
        results.push((
            "backup_files_incrementally with no includes",
            p.backup_files_incrementally(&def, None, None, false, &Recorder::default()),
        ));
    }
    for (what, result) in results {
        let e = expect_error(what, result, &[ProviderErrorKind::OTHER])?;
        if e.message() != "Nothing to backup." {
            fail!(
                "{what}: message {:?}, expected \"Nothing to backup.\"",
                e.message()
            );
        }
    }
    expect_listing(&dest, &[], "after refused empty includes")
}

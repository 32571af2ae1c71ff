//! The command line, with the original program's option names, short forms and defaults.
//!
//! Like the original's `argparse` parser, long options may be abbreviated to any unambiguous
//! prefix and a repeated option takes its last value. Values are checked here (the archiver
//! name, a compression level of 0 to 9, integers), so a bad value is a usage error (exit code
//! 2) before anything is done; [`Cli::raw_options`] then hands them to the configuration as its
//! command-line layer.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{ArgAction, CommandFactory, Parser, ValueEnum};
use clap_complete::Shell;

use crate::archiver::Archiver;
use crate::config::{Opt, RawOptions, Value};
use crate::paths::expand_tilde;

const ARCHIVERS: &str = "tar, targz, tarbz2, tarxz, tarzst (GNU tar), the same with _internal \
                         (built-in), or TYPE@PROVIDER for any loaded provider (see \
                         --list-providers).";

/// `--help`'s text after the options: the archivers and the exit statuses of the manual
/// (`crate::manual`), wrapped for an 80-column terminal.
fn after_long_help() -> String {
    let mut text = format!("Archivers: {ARCHIVERS}\n\nExit status:");
    for (status, meaning) in crate::manual::exit_statuses() {
        let mut line = format!("  {status:<7}");
        for word in meaning.split(' ') {
            if line.len() + word.len() >= 80 {
                text += &format!("\n{}", line.trim_end());
                line = " ".repeat(9);
            }
            line += word;
            line += " ";
        }
        text += &format!("\n{}", line.trim_end());
    }
    text + "\n\nThe manual (man aa) describes the .aa files, aa.conf, --json, the environment and \
            the files aa keeps."
}

/// aa: make backups as described by archive specification files (NAME.aa).
#[derive(Debug, Parser)]
#[command(
    name = "aa",
    version,
    about = "AutoArchive: creates backups described by archive specification files (.aa files), \
             optionally incremental, with GNU tar or the built-in archiver.",
    override_usage = "aa [options] [command] [AA_SPEC ...]\n       aa --restore AA_SPEC --target DIR [--level N] [--keeping-id ID] [--only PATH]... [--overwrite]\n       aa --verify AA_SPEC [--keeping-id ID] [--compare]\n       aa --dry-run [-i] [-l N] AA_SPEC ...",
    infer_long_args = true,
    group = clap::ArgGroup::new("command").multiple(false),
    group = clap::ArgGroup::new("chain_command").args(["restore", "verify"]).multiple(false),
    args_override_self = true,
    after_help = format!(
        "Archivers: {ARCHIVERS}\nExit status: 0 when no error or warning was shown, 1 when one \
         was (even one hidden by --quiet), 2 for a usage error or a broken aa.conf; --help tells \
         more."
    ),
    after_long_help = after_long_help()
)]
pub struct Cli {
    /// Archive specification: a NAME, looked up as NAME.aa in the archive specifications
    /// directory, or the path of a file ending with .aa.
    #[arg(value_name = "AA_SPEC")]
    pub specs: Vec<String>,

    /// Show configured and orphaned archives.
    #[arg(long, help_heading = "Commands", group = "command")]
    pub list: bool,

    /// Purge the stored data of an orphaned archive.
    #[arg(long, help_heading = "Commands", group = "command")]
    pub purge: bool,

    /// List the loaded archiver providers with their library, backup types, features and
    /// capabilities (restore, verify, dry run).
    #[arg(long, help_heading = "Commands", group = "command")]
    pub list_providers: bool,

    /// Restore the current chain of AA_SPEC's backups (level 0 and every increment, or up to
    /// --level) into --target DIR, exactly as the tree was at the last level.
    #[arg(
        long,
        help_heading = "Commands",
        group = "command",
        requires = "target",
        conflicts_with = "all"
    )]
    pub restore: bool,

    /// Check every backup of AA_SPEC's current chain (compression checksums, tar structure)
    /// and that the chain is complete; exit status 1 on any problem.
    #[arg(long, help_heading = "Commands", group = "command", conflicts_with_all = ["all", "level"])]
    pub verify: bool,

    /// Show what the backup would do (level, backup file, kept backups renamed or removed,
    /// every member with its size) without writing anything or running any command.
    #[arg(long, help_heading = "Commands", group = "command")]
    pub dry_run: bool,

    /// With --restore: the directory to restore into; created if missing (its parent must
    /// exist); refused when not empty unless --overwrite is given.
    #[arg(
        long,
        value_name = "DIR",
        requires = "restore",
        help_heading = "Restore and verify options"
    )]
    pub target: Option<PathBuf>,

    /// With --restore or --verify: the kept chain (aa, ab, ...) instead of the current one.
    #[arg(
        long,
        value_name = "ID",
        requires = "chain_command",
        help_heading = "Restore and verify options"
    )]
    pub keeping_id: Option<String>,

    /// With --restore: restore only PATH (relative to the archive's path) and what is below
    /// it (repeatable).
    #[arg(
        long,
        value_name = "PATH",
        requires = "restore",
        help_heading = "Restore and verify options"
    )]
    pub only: Vec<PathBuf>,

    /// With --restore: restore into a target that is not empty, replacing what the backups
    /// hold.
    #[arg(
        long,
        requires = "restore",
        help_heading = "Restore and verify options"
    )]
    pub overwrite: bool,

    /// With --verify: also restore the chain into a temporary directory and list how it
    /// differs from the source tree now (content, type, mode, mtime, missing, new).
    #[arg(long, requires = "verify", help_heading = "Restore and verify options")]
    pub compare: bool,

    /// Archiver type: tar, targz, tarbz2, tarxz, tarzst, tar_internal, targz_internal,
    /// tarbz2_internal, ... (default: targz).
    #[arg(short = 'a', long, value_name = "ARCHIVER", value_parser = parse_archiver, help_heading = "Archiving options")]
    pub archiver: Option<Archiver>,

    /// Compression strength, 0 (fastest) to 9 (strongest); default: the compressor's own.
    #[arg(short = 'c', long, value_name = "NUM", value_parser = clap::value_parser!(u32).range(0..=9), help_heading = "Archiving options")]
    pub compression_level: Option<u32>,

    /// Directory where the backup is created, or an object store as s3://BUCKET/PREFIX
    /// (default: the current directory).
    #[arg(
        short = 'd',
        long,
        value_name = "DIR_PATH",
        help_heading = "Archiving options"
    )]
    pub dest_dir: Option<PathBuf>,

    /// Overwrite the old backup when the creation of the new one starts, not when it is
    /// complete (saves space on the backup volume).
    #[arg(long, help_heading = "Archiving options")]
    pub overwrite_at_start: bool,

    /// URL of the object store of an s3:// destination, such as http://127.0.0.1:9000 for a
    /// self-hosted server (default: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, else AWS).
    #[arg(long, value_name = "URL", help_heading = "Object storage options")]
    pub s3_endpoint: Option<String>,

    /// Region of the object store (default: AWS_REGION, then AWS_DEFAULT_REGION, else
    /// us-east-1).
    #[arg(long, value_name = "REGION", help_heading = "Object storage options")]
    pub s3_region: Option<String>,

    /// Path-style addressing (ENDPOINT/BUCKET/KEY), as MinIO-like servers want; the default
    /// when an endpoint is set.
    #[arg(long, help_heading = "Object storage options")]
    pub s3_path_style: bool,

    /// Make an incremental backup.
    #[arg(short = 'i', long, help_heading = "Incremental archiving options")]
    pub incremental: bool,

    /// Backup level to create; everything stored about higher levels is erased (default: the
    /// next level). With --restore: the last level to restore (default: the current level).
    #[arg(
        short = 'l',
        long,
        value_name = "LEVEL",
        allow_negative_numbers = true,
        help_heading = "Incremental archiving options"
    )]
    pub level: Option<i64>,

    /// Restart the backup level automatically (see the *restart-* options).
    #[arg(long, help_heading = "Incremental archiving options")]
    pub restarting: bool,

    /// Highest backup level; when reached, the level restarts to a lower one (usually 1, see
    /// --max-restart-level-size) (default: 10).
    #[arg(
        long,
        value_name = "LEVEL",
        allow_negative_numbers = true,
        help_heading = "Incremental archiving options"
    )]
    pub restart_after_level: Option<i64>,

    /// Days after which the backup level restarts to 1 or higher.
    #[arg(
        long,
        value_name = "DAYS",
        allow_negative_numbers = true,
        help_heading = "Incremental archiving options"
    )]
    pub restart_after_age: Option<i64>,

    /// Number of level restarts after which the level restarts to 0.
    #[arg(
        long,
        value_name = "COUNT",
        allow_negative_numbers = true,
        help_heading = "Incremental archiving options"
    )]
    pub full_restart_after_count: Option<i64>,

    /// Days after which the backup level restarts to 0.
    #[arg(
        long,
        value_name = "DAYS",
        allow_negative_numbers = true,
        help_heading = "Incremental archiving options"
    )]
    pub full_restart_after_age: Option<i64>,

    /// Largest size, in percent of the level 0 backup, of a backup whose level may be the
    /// target of a restart.
    #[arg(
        long,
        value_name = "PERCENTAGE",
        allow_negative_numbers = true,
        help_heading = "Incremental archiving options"
    )]
    pub max_restart_level_size: Option<i64>,

    /// Remove the backups of levels above the one being created (made obsolete by a restart).
    #[arg(long, help_heading = "Incremental archiving options")]
    pub remove_obsolete_backups: bool,

    /// Keep old backups: rename a backup about to be overwritten by inserting a keeping ID
    /// (aa, ab, ... zz; aa is the most recent) before its extension, with all its increments.
    #[arg(short = 'k', long, help_heading = "Options for keeping old backups")]
    pub keep_old_backups: bool,

    /// Number of old backups to keep with --keep-old-backups (default: 1).
    #[arg(
        long,
        value_name = "NUM",
        allow_negative_numbers = true,
        help_heading = "Options for keeping old backups"
    )]
    pub number_of_old_backups: Option<i64>,

    /// Command run once before the backups of the selected archives.
    #[arg(
        long,
        value_name = "COMMAND_BEFORE_ALL",
        help_heading = "Command execution options"
    )]
    pub command_before_all_backups: Option<String>,

    /// Command run once after the backups of the selected archives.
    #[arg(
        long,
        value_name = "COMMAND_AFTER_ALL",
        help_heading = "Command execution options"
    )]
    pub command_after_all_backups: Option<String>,

    /// Command run before each backup; if it fails, that backup is not made.
    #[arg(
        long,
        value_name = "COMMAND_BEFORE",
        help_heading = "Command execution options"
    )]
    pub command_before_backup: Option<String>,

    /// Command run after each backup.
    #[arg(
        long,
        value_name = "COMMAND_AFTER",
        help_heading = "Command execution options"
    )]
    pub command_after_backup: Option<String>,

    /// Verbose output.
    #[arg(short = 'v', long, action = ArgAction::Count, help_heading = "General options")]
    pub verbose: u8,

    /// Quiet output: only errors are shown; wins over --verbose.
    #[arg(short = 'q', long, help_heading = "General options")]
    pub quiet: bool,

    /// Operate on all configured archives as well as those given as AA_SPEC (the default of
    /// --list when no AA_SPEC is given).
    #[arg(long, help_heading = "General options")]
    pub all: bool,

    /// Directory with archive specification files (default: <user-config-dir>/archive_specs).
    #[arg(long, value_name = "DIR_PATH", help_heading = "General options")]
    pub archive_specs_dir: Option<PathBuf>,

    /// User configuration file (default: <user-config-dir>/aa.conf).
    #[arg(long, value_name = "FILE_PATH", help_heading = "General options")]
    pub user_config_file: Option<PathBuf>,

    /// User configuration directory (default: ~/.config/aa).
    #[arg(long, value_name = "DIR_PATH", help_heading = "General options")]
    pub user_config_dir: Option<PathBuf>,

    /// Additional directory to load archiver plugins from (repeatable; see also AA_PLUGIN_PATH).
    #[arg(long, value_name = "DIR_PATH", help_heading = "General options")]
    pub plugin_dir: Vec<PathBuf>,

    /// Write every message and result as one JSON object per line on standard output, and
    /// nothing on standard error (with backups, --list, --list-providers and --purge; the
    /// schema is in the manual and docs/json-schema.json).
    #[arg(long, help_heading = "General options", conflicts_with_all = ["restore", "verify", "dry_run"])]
    pub json: bool,

    /// Writes the manual page or a shell completion script to standard output and exits (for
    /// `make install` and packagers; hidden from the help).
    #[arg(long, value_enum, value_name = "WHAT", hide = true)]
    pub generate: Option<Generate>,

    /// Force the archiver type, whatever the .aa file says.
    #[arg(long, value_name = "ARCHIVER", value_parser = parse_archiver, help_heading = "Force options")]
    pub force_archiver: Option<Archiver>,

    /// Force incremental backups.
    #[arg(long, help_heading = "Force options")]
    pub force_incremental: bool,

    /// Force backup level restarting.
    #[arg(long, help_heading = "Force options")]
    pub force_restarting: bool,

    /// Force the compression strength.
    #[arg(long, value_name = "NUM", value_parser = clap::value_parser!(u32).range(0..=9), help_heading = "Force options")]
    pub force_compression_level: Option<u32>,

    /// Force the directory where backups are created.
    #[arg(long, value_name = "DIR_PATH", help_heading = "Force options")]
    pub force_dest_dir: Option<PathBuf>,

    /// Force the command run before each backup.
    #[arg(long, value_name = "COMMAND_BEFORE", help_heading = "Force options")]
    pub force_command_before_backup: Option<String>,

    /// Force the command run after each backup.
    #[arg(long, value_name = "COMMAND_AFTER", help_heading = "Force options")]
    pub force_command_after_backup: Option<String>,

    /// Force overwriting backups at the start of their creation.
    #[arg(long, help_heading = "Force options")]
    pub force_overwrite_at_start: bool,

    /// No incremental backups.
    #[arg(long, help_heading = "Negation options")]
    pub no_incremental: bool,

    /// No backup level restarting.
    #[arg(long, help_heading = "Negation options")]
    pub no_restarting: bool,

    /// Do not remove obsolete backups.
    #[arg(long, help_heading = "Negation options")]
    pub no_remove_obsolete_backups: bool,

    /// Do not keep old backups.
    #[arg(long, help_heading = "Negation options")]
    pub no_keep_old_backups: bool,

    /// Do not operate on all configured archives.
    #[arg(long, help_heading = "Negation options")]
    pub no_all: bool,

    /// Overwrite a backup only once the new one is complete.
    #[arg(long, help_heading = "Negation options")]
    pub no_overwrite_at_start: bool,
}

fn parse_archiver(name: &str) -> Result<Archiver, String> {
    Archiver::parse(name).map_err(|e| e.to_string())
}

/// What `--generate` writes: the manual page (roff) or a completion script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    Man,
    /// The README's sections that come from the manual.
    Markdown,
    /// The JSON Schema of the `--json` lines.
    JsonSchema,
    Bash,
    Zsh,
    Fish,
}

/// Writes what `what` names, made from the same definition as the parser, so the manual and
/// the completions never disagree with the options `aa` takes.
pub fn generate(what: Generate, out: &mut dyn Write) -> io::Result<()> {
    let mut command = <Cli as CommandFactory>::command();
    let shell = match what {
        Generate::Man => return write_man(command, out),
        Generate::Markdown => return crate::manual::write_markdown(out),
        Generate::JsonSchema => return out.write_all(crate::json::SCHEMA.as_bytes()),
        Generate::Bash => Shell::Bash,
        Generate::Zsh => Shell::Zsh,
        Generate::Fish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "aa", out);
    Ok(())
}

/// The manual page: clap's title, name, synopsis and options, and the manual's own sections
/// (`crate::manual`): its DESCRIPTION in place of clap's one line, the rest after OPTIONS.
fn write_man(command: clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let man = clap_mangen::Man::new(command);
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    for section in crate::manual::sections()
        .iter()
        .filter(|s| s.title == "DESCRIPTION")
    {
        crate::manual::write_roff_section(out, section)?;
    }
    man.render_options_section(out)?;
    crate::manual::write_roff(out, &["DESCRIPTION"])?;
    man.render_version_section(out)
}

/// The command the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Create,
    List,
    Purge,
    ListProviders,
    Restore,
    Verify,
    DryRun,
}

impl Command {
    /// The command's name in the JSON summary.
    pub fn name(self) -> &'static str {
        match self {
            Command::Create => "create",
            Command::List => "list",
            Command::Purge => "purge",
            Command::ListProviders => "list-providers",
            Command::Restore => "restore",
            Command::Verify => "verify",
            Command::DryRun => "dry-run",
        }
    }
}

impl Cli {
    pub fn command(&self) -> Command {
        if self.list_providers {
            Command::ListProviders
        } else if self.list {
            Command::List
        } else if self.purge {
            Command::Purge
        } else if self.restore {
            Command::Restore
        } else if self.verify {
            Command::Verify
        } else if self.dry_run {
            Command::DryRun
        } else {
            Command::Create
        }
    }

    /// The options given on the command line, as a configuration layer.
    pub fn raw_options(&self) -> RawOptions {
        let mut raw = RawOptions::new();
        let flags = [
            (self.overwrite_at_start, Opt::OverwriteAtStart),
            (self.s3_path_style, Opt::S3PathStyle),
            (self.incremental, Opt::Incremental),
            (self.restarting, Opt::Restarting),
            (self.remove_obsolete_backups, Opt::RemoveObsoleteBackups),
            (self.keep_old_backups, Opt::KeepOldBackups),
            (self.quiet, Opt::Quiet),
            (self.all, Opt::All),
            (self.force_incremental, Opt::ForceIncremental),
            (self.force_restarting, Opt::ForceRestarting),
            (self.force_overwrite_at_start, Opt::ForceOverwriteAtStart),
            (self.no_incremental, Opt::NoIncremental),
            (self.no_restarting, Opt::NoRestarting),
            (
                self.no_remove_obsolete_backups,
                Opt::NoRemoveObsoleteBackups,
            ),
            (self.no_keep_old_backups, Opt::NoKeepOldBackups),
            (self.no_all, Opt::NoAll),
            (self.no_overwrite_at_start, Opt::NoOverwriteAtStart),
        ];
        // Like the original, only what was given counts: an absent flag does not hide a
        // configuration file's value.
        for (given, opt) in flags {
            if given {
                raw.set(opt, Some(Value::Bool(true)));
            }
        }
        let ints = [
            (self.level, Opt::Level),
            (self.restart_after_level, Opt::RestartAfterLevel),
            (self.restart_after_age, Opt::RestartAfterAge),
            (self.full_restart_after_count, Opt::FullRestartAfterCount),
            (self.full_restart_after_age, Opt::FullRestartAfterAge),
            (self.max_restart_level_size, Opt::MaxRestartLevelSize),
            (self.number_of_old_backups, Opt::NumberOfOldBackups),
            (self.compression_level.map(i64::from), Opt::CompressionLevel),
            (
                self.force_compression_level.map(i64::from),
                Opt::ForceCompressionLevel,
            ),
        ];
        for (value, opt) in ints {
            if let Some(v) = value {
                raw.set(opt, Some(Value::Int(v)));
            }
        }
        if self.verbose > 0 {
            raw.set(Opt::Verbose, Some(Value::Int(i64::from(self.verbose))));
        }
        let strings = [
            (
                &self.command_before_all_backups,
                Opt::CommandBeforeAllBackups,
            ),
            (&self.command_after_all_backups, Opt::CommandAfterAllBackups),
            (&self.command_before_backup, Opt::CommandBeforeBackup),
            (&self.command_after_backup, Opt::CommandAfterBackup),
            (&self.s3_endpoint, Opt::S3Endpoint),
            (&self.s3_region, Opt::S3Region),
            (
                &self.force_command_before_backup,
                Opt::ForceCommandBeforeBackup,
            ),
            (
                &self.force_command_after_backup,
                Opt::ForceCommandAfterBackup,
            ),
        ];
        for (value, opt) in strings {
            if let Some(v) = value {
                raw.set(opt, Some(Value::Str(v.clone())));
            }
        }
        let paths = [
            (&self.dest_dir, Opt::DestDir),
            (&self.archive_specs_dir, Opt::ArchiveSpecsDir),
            (&self.user_config_file, Opt::UserConfigFile),
            (&self.user_config_dir, Opt::UserConfigDir),
            (&self.force_dest_dir, Opt::ForceDestDir),
        ];
        for (value, opt) in paths {
            if let Some(p) = value {
                let value = (!p.as_os_str().is_empty()).then(|| Value::Path(expand_tilde(p)));
                raw.set(opt, value);
            }
        }
        for (value, opt) in [
            (&self.archiver, Opt::Archiver),
            (&self.force_archiver, Opt::ForceArchiver),
        ] {
            if let Some(a) = value {
                raw.set(opt, Some(Value::Archiver(a.clone())));
            }
        }
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Configuration, OptionSource};

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("aa").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn options_become_a_configuration_layer() {
        let cli = parse(&[
            "-ik",
            "-l",
            "2",
            "--number-of-old-backups=3",
            "-vv",
            "-a",
            "tarxz",
            "x",
        ]);
        let c = Configuration::from_raw(cli.raw_options());
        assert!(c.flag(Opt::Incremental) && c.flag(Opt::KeepOldBackups));
        assert_eq!(c.int(Opt::Level), Some(2));
        assert_eq!(c.int(Opt::NumberOfOldBackups), Some(3));
        assert_eq!(c.int(Opt::Verbose), Some(2));
        assert_eq!(c.archiver(Opt::Archiver).unwrap().to_string(), "tarxz");
        assert!(!c.is_present(Opt::Restarting));
        assert_eq!(cli.specs, ["x"]);
        assert_eq!(cli.command(), Command::Create);
    }

    #[test]
    fn abbreviations_and_repetition_as_argparse() {
        let cli = parse(&["--incr", "--list", "-c", "1", "-c", "2"]);
        assert!(cli.incremental && cli.list && !cli.list_providers);
        assert_eq!(cli.compression_level, Some(2));
        assert!(Cli::try_parse_from(["aa", "-c", "10"]).is_err());
        assert!(Cli::try_parse_from(["aa", "-a", "zip"]).is_err());
        assert!(Cli::try_parse_from(["aa", "--list", "--purge"]).is_err());
        assert_eq!(parse(&["--list-p"]).command(), Command::ListProviders);
    }
}

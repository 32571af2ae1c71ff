//! The command line, with the original program's option names and short forms.

use std::path::PathBuf;

use clap::{ArgAction, Parser};

/// aa: make backups as described by archive specification files (NAME.aa).
#[derive(Debug, Parser)]
#[command(
    name = "aa",
    version,
    about = "A simple backup utility: creates tar backups described by archive specification files.",
    after_help = "Archivers: tar, targz, tarbz2, tarxz, tarzst (GNU tar), the same with _internal \
                  (built-in), or TYPE@PROVIDER for any loaded provider (see --list-providers)."
)]
pub struct Cli {
    /// Archive specification: NAME (searched in the archive specifications directory) or a
    /// path to a file ending with .aa.
    #[arg(value_name = "AA_SPEC")]
    pub specs: Vec<String>,

    /// List the loaded archiver providers with their library, backup types and features.
    #[arg(long, help_heading = "Commands")]
    pub list_providers: bool,

    /// Archiver type (default: targz).
    #[arg(
        short = 'a',
        long,
        value_name = "ARCHIVER",
        help_heading = "Archiving options"
    )]
    pub archiver: Option<String>,

    /// Compression strength, 0 (fastest) to 9 (strongest); default: the compressor's own.
    #[arg(
        short = 'c',
        long,
        value_name = "NUM",
        help_heading = "Archiving options"
    )]
    pub compression_level: Option<String>,

    /// Directory where the backup is created (default: the current directory).
    #[arg(
        short = 'd',
        long,
        value_name = "DIR_PATH",
        help_heading = "Archiving options"
    )]
    pub dest_dir: Option<PathBuf>,

    /// Overwrite the old backup at the start of creation instead of at the end.
    #[arg(long, help_heading = "Archiving options")]
    pub overwrite_at_start: bool,

    /// Turn on verbose output.
    #[arg(short = 'v', long, action = ArgAction::SetTrue, help_heading = "General options")]
    pub verbose: bool,

    /// Show only errors; wins over --verbose.
    #[arg(short = 'q', long, help_heading = "General options")]
    pub quiet: bool,

    /// Directory with archive specification files (default: <user-config-dir>/archive_specs).
    #[arg(long, value_name = "DIR_PATH", help_heading = "General options")]
    pub archive_specs_dir: Option<PathBuf>,

    /// User configuration directory (default: ~/.config/aa).
    #[arg(long, value_name = "DIR_PATH", help_heading = "General options")]
    pub user_config_dir: Option<PathBuf>,

    /// Additional directory to load archiver plugins from (repeatable; see also AA_PLUGIN_PATH).
    #[arg(long, value_name = "DIR_PATH", help_heading = "General options")]
    pub plugin_dir: Vec<PathBuf>,
}

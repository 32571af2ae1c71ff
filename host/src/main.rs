//! The `aa` command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Diagnostics for developers: AA_LOG=debug (env_logger syntax). Users see the UI messages.
    env_logger::Builder::new()
        .parse_env(env_logger::Env::new().filter("AA_LOG"))
        .format_timestamp(None)
        .init();
    let cli = aa_host::cli::Cli::parse();
    aa_host::run(cli)
}

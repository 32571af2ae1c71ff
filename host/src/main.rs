//! The `aa` command.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `aa --probe-plugin FILE`: the child in which the plugin loader first loads a file (see
    // the plugin loader's `probe` module). Not an option of the command line: nothing else runs.
    let args: Vec<std::ffi::OsString> = std::env::args_os().take(4).collect();
    if args.len() == 3 && args[1] == aa_host::PROBE_PLUGIN_ARG {
        return aa_host::probe_plugin(std::path::Path::new(&args[2]));
    }
    // Ctrl-C removes an unfinished backup (see the module).
    aa_host::install_interrupt_handling();
    // Diagnostics for developers: AA_LOG=debug (env_logger syntax). Users see the UI messages.
    env_logger::Builder::new()
        .parse_env(env_logger::Env::new().filter("AA_LOG"))
        .format_timestamp(None)
        .init();
    let cli = aa_host::Cli::parse();
    if let Some(what) = cli.generate {
        let mut out = std::io::stdout().lock();
        return match aa_host::generate(what, &mut out).and_then(|()| out.flush()) {
            // A reader that stopped early (`| head`) is no failure.
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("aa: cannot write to standard output: {e}");
                ExitCode::FAILURE
            }
        };
    }
    aa_host::run(cli)
}

//! `aa-conformance`: runs the provider conformance suite against provider libraries and prints
//! one line per check, then `N passed, M failed[, K skipped]`. Exits with 1 if any check failed
//! or a library could not be tested, 2 on a usage error.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use aa_conformance::{run_library, Options, Summary, Verdict, DEFAULT_TIMEOUT};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "aa-conformance",
    version,
    about = "Checks that aa archiver provider libraries behave as the archiver service API requires"
)]
struct Cli {
    /// Run only the checks whose name (Provider/Type/check) contains SUBSTR.
    #[arg(long, value_name = "SUBSTR")]
    filter: Option<String>,

    /// Also test every shared library (*.so) in DIR; may be repeated.
    #[arg(long = "plugin-dir", value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,

    /// Fail a check that takes longer than SECS seconds (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,

    /// Print the detail lines of each failure below it.
    #[arg(short, long)]
    verbose: bool,

    /// Provider libraries to test.
    #[arg(value_name = "LIBRARY")]
    libraries: Vec<PathBuf>,
}

/// Shared libraries directly in `dir`, sorted by name.
fn libraries_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut libs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "so") && p.is_file())
        .collect();
    libs.sort();
    Ok(libs)
}

/// Refuses what is not an ELF file before `dlopen` sees it: loading a damaged library can
/// crash the process instead of returning an error.
fn screen(path: &Path) -> Result<(), String> {
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if magic != *b"\x7fELF" {
        return Err(format!(
            "{}: not a shared library (no ELF header)",
            path.display()
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut libraries = cli.libraries.clone();
    let mut total = Summary::default();
    let mut stdout = io::stdout().lock();
    for dir in &cli.plugin_dirs {
        match libraries_in(dir) {
            Ok(found) => libraries.extend(found),
            Err(e) => {
                let _ = writeln!(stdout, "FAIL {e}");
                total.failed += 1;
            }
        }
    }
    if libraries.is_empty() && total.failed == 0 {
        eprintln!(
            "aa-conformance: no provider library given (pass LIBRARY.so or --plugin-dir DIR)"
        );
        return ExitCode::from(2);
    }

    let options = Options {
        filter: cli.filter,
        timeout: (cli.timeout > 0).then(|| Duration::from_secs(cli.timeout)),
    };
    for library in &libraries {
        let tested = screen(library).map_err(|e| e.to_string()).and_then(|()| {
            run_library(library, &options, &mut |outcome| {
                let _ = writeln!(stdout, "{outcome}");
                if let (true, Verdict::Failed(failure)) = (cli.verbose, &outcome.verdict) {
                    for line in &failure.details {
                        let _ = writeln!(stdout, "    | {line}");
                    }
                }
                let _ = stdout.flush();
            })
            .map_err(|e| e.to_string())
        });
        match tested {
            Ok(summary) => total.add(&summary),
            Err(e) => {
                let _ = writeln!(stdout, "FAIL {e}");
                total.failed += 1;
            }
        }
    }
    let _ = writeln!(stdout, "{total}");
    if total.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

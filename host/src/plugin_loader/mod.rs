//! Finds and loads archiver provider plugins, running nothing it has not checked: loading a
//! library runs its code with the rights of whoever runs `aa` (often root), and a broken one
//! can crash the process inside the dynamic loader, where no error handling reaches.
//!
//! Search order (the first provider with a given id wins):
//! 1. the directory of the running executable, so `cargo build` / `cargo run` need no flag; only
//!    `*.so` files there are considered, since that directory also holds the binary itself;
//! 2. `<prefix>/lib/aa/plugins` of an installed layout (`<prefix>/bin/aa`);
//! 3. every `--plugin-dir DIR`, then every directory of `AA_PLUGIN_PATH` (colon-separated).
//!
//! In the directories of 2 and 3 every regular file is a candidate, and every file that is not
//! loaded is reported with a one-line reason. Each candidate passes, in order:
//! 1. trust (`trust.rs`): the file and its directory up to `/` are owned by root or the user
//!    and writable by no one else, as ssh and sudo require; a refused directory is one line and
//!    none of its files is looked at;
//! 2. screening (`elf.rs`): a complete ELF shared object for this machine whose dynamic symbol
//!    table defines the `aa` root-module symbol, read from the file without running any of it,
//!    so a library that is no plugin never runs;
//! 3. a probe (`probe.rs`): the first time a file is seen it is loaded in a child process, so
//!    that a crash ends the child and not `aa`, and the verdict (the provider id, or why not)
//!    is remembered (`verdicts.rs`); a file that crashes is reported, and a duplicate provider
//!    is known from its verdict and never loaded here;
//! 4. loading, with abi_stable's layout checks, in this process.
//!
//! The executable's directory is judged (trust) only when it holds a `*.so` file, so an `aa`
//! in a directory of loose permissions but without plugins there gets no warning about it.

pub(crate) mod elf;
mod probe;
mod trust;
mod verdicts;

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use aa_abi::host::PluginLibrary;
use aa_abi::ProviderIdentification;

pub use probe::{probe_main, PROBE_ARG};
use trust::Trust;
use verdicts::{FileKey, Verdict, Verdicts};

/// Environment variable with extra plugin directories.
pub const PLUGIN_PATH_ENV: &str = "AA_PLUGIN_PATH";

/// A directory to search, and whether it is dedicated to plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDir {
    pub path: PathBuf,
    /// In a dedicated directory every file is expected to be a plugin and is reported if not.
    pub dedicated: bool,
}

/// The directories to search, in order.
pub fn search_dirs(
    exe: Option<&Path>,
    plugin_dirs: &[PathBuf],
    env_path: Option<&std::ffi::OsStr>,
) -> Vec<SearchDir> {
    let mut dirs = Vec::new();
    if let Some(bin_dir) = exe.and_then(Path::parent) {
        dirs.push(SearchDir {
            path: bin_dir.to_path_buf(),
            dedicated: false,
        });
        if let Some(prefix) = bin_dir.parent() {
            let installed = prefix.join("lib/aa/plugins");
            if installed.is_dir() {
                dirs.push(SearchDir {
                    path: installed,
                    dedicated: true,
                });
            }
        }
    }
    for dir in plugin_dirs {
        dirs.push(SearchDir {
            path: dir.clone(),
            dedicated: true,
        });
    }
    if let Some(env_path) = env_path {
        for dir in std::env::split_paths(env_path).filter(|d| !d.as_os_str().is_empty()) {
            dirs.push(SearchDir {
                path: dir,
                dedicated: true,
            });
        }
    }
    dirs
}

/// A plugin that loaded and identified itself.
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub library: PluginLibrary,
    pub identification: ProviderIdentification,
}

/// A file (or directory) that was not loaded, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub path: PathBuf,
    /// Whether `path` is a plugin directory rather than a file in one.
    pub directory: bool,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.directory {
            "plugin directory"
        } else {
            "plugin"
        };
        write!(
            f,
            "{what} \"{}\" ignored: {}",
            self.path.display(),
            self.reason
        )
    }
}

/// Loads every plugin found in `dirs`.
pub fn load_plugins(dirs: &[SearchDir]) -> (Vec<LoadedPlugin>, Vec<Rejection>) {
    let exe = std::env::current_exe().ok();
    let mut loader = Loader {
        trust: Trust::new(),
        verdicts: Verdicts::load(exe.as_deref()),
        exe,
        loaded: Vec::new(),
    };
    let mut rejected = Vec::new();
    let mut seen_files = HashSet::new();
    let mut seen_dirs = HashSet::new();
    for dir in dirs {
        let canonical_dir = fs::canonicalize(&dir.path).unwrap_or_else(|_| dir.path.clone());
        if !seen_dirs.insert(canonical_dir) {
            continue;
        }
        let entries = match fs::read_dir(&dir.path) {
            Ok(entries) => entries,
            Err(e) => {
                if dir.dedicated {
                    rejected.push(Rejection {
                        path: dir.path.clone(),
                        directory: true,
                        reason: format!("cannot be read: {e}"),
                    });
                }
                continue;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|path| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                !name.starts_with('.') && (dir.dedicated || has_library_suffix(&name))
            })
            .collect();
        // The executable's directory is only judged when it offers something to load.
        if files.is_empty() && !dir.dedicated {
            continue;
        }
        if let Err(reason) = loader.trust.check_dir(&dir.path) {
            rejected.push(Rejection {
                path: dir.path.clone(),
                directory: true,
                reason,
            });
            continue;
        }
        files.sort();
        let mut candidates = Vec::new();
        for path in files {
            let real_path = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if !seen_files.insert(real_path.clone()) {
                continue;
            }
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let checked = loader.check(&path, has_library_suffix(&name));
            candidates.push(Candidate {
                path,
                real_path,
                checked,
            });
        }
        loader.probe_unknown(&mut candidates);
        // In name order, so the first of two providers with one id is always the same.
        for candidate in candidates {
            let outcome = match candidate.checked {
                Ok(Some(checked)) => loader.load(&candidate.path, checked),
                Ok(None) => Ok(()),
                Err(reason) => Err(reason),
            };
            if let Err(reason) = outcome {
                rejected.push(Rejection {
                    path: candidate.path,
                    directory: false,
                    reason,
                });
            }
        }
    }
    loader.verdicts.save();
    (loader.loaded, rejected)
}

fn has_library_suffix(name: &str) -> bool {
    name.ends_with(".so") || name.contains(".so.")
}

/// How many candidates are probed at once.
const PARALLEL_PROBES: usize = 8;

/// A candidate file of a directory, and what its checks found.
struct Candidate {
    path: PathBuf,
    real_path: PathBuf,
    checked: Result<Option<Checked>, String>,
}

/// A candidate that passed the checks, with its verdict when known.
struct Checked {
    key: FileKey,
    known: Option<Verdict>,
}

/// What loading needs across the candidates of one run.
struct Loader {
    trust: Trust,
    verdicts: Verdicts,
    /// This `aa`, which probes candidates; without it they are loaded unprobed.
    exe: Option<PathBuf>,
    loaded: Vec<LoadedPlugin>,
}

impl Loader {
    /// Checks and screens one candidate and looks its verdict up: `Ok(None)` for what is
    /// silently skipped (a directory).
    fn check(&mut self, path: &Path, is_library_name: bool) -> Result<Option<Checked>, String> {
        let meta = fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
        if meta.is_dir() {
            return Ok(None);
        }
        let meta = self.trust.check_file(path)?;
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        if !is_library_name {
            return Err("not a shared library (the name does not end with .so)".into());
        }
        elf::screen_file(path)?;
        let key = FileKey::of(&meta);
        let known = self.verdicts.get(&key).cloned();
        if let Some(verdict) = &known {
            log::debug!("plugin {}: known verdict: {verdict}", path.display());
        }
        Ok(Some(Checked { key, known }))
    }

    /// Probes the candidates without a known verdict, all at once (each is a child process
    /// that mostly waits for the dynamic loader), and remembers what lasts.
    fn probe_unknown(&mut self, candidates: &mut [Candidate]) {
        let Some(exe) = self.exe.as_deref() else {
            return;
        };
        let unknown: Vec<usize> = (0..candidates.len())
            .filter(|&i| {
                matches!(
                    &candidates[i].checked,
                    Ok(Some(Checked { known: None, .. }))
                )
            })
            .collect();
        let mut outcomes = Vec::new();
        // A few at a time: a directory of many new files must not fork them all at once.
        for batch in unknown.chunks(PARALLEL_PROBES) {
            std::thread::scope(|scope| {
                let probes: Vec<_> = batch
                    .iter()
                    .map(|&i| {
                        let path = &candidates[i].path;
                        log::debug!("plugin {}: probing it in a child process", path.display());
                        (i, scope.spawn(move || probe::probe(exe, path)))
                    })
                    .collect();
                for (i, probe) in probes {
                    let outcome = probe.join().unwrap_or_else(|_| probe::Outcome {
                        verdict: Verdict::Refused("cannot be probed".into()),
                        lasting: false,
                    });
                    outcomes.push((i, outcome));
                }
            });
        }
        for (i, outcome) in outcomes {
            let candidate = &mut candidates[i];
            log::debug!(
                "plugin {}: probe verdict: {}",
                candidate.path.display(),
                outcome.verdict
            );
            if let Ok(Some(checked)) = &mut candidate.checked {
                if outcome.lasting {
                    self.verdicts
                        .put(&candidate.real_path, &checked.key, outcome.verdict.clone());
                }
                checked.known = Some(outcome.verdict);
            }
        }
    }

    /// Loads a checked candidate into this process, unless its verdict refuses it or names a
    /// provider already loaded.
    fn load(&mut self, path: &Path, checked: Checked) -> Result<(), String> {
        match &checked.known {
            Some(Verdict::Refused(reason)) => return Err(reason.clone()),
            // A duplicate is known from its verdict and never loaded into this process.
            Some(Verdict::Plugin(id)) => self.not_a_duplicate(id)?,
            None => log::debug!("plugin {}: loaded without a probe", path.display()),
        }
        let library = PluginLibrary::load(path).map_err(|e| e.to_string())?;
        let identification = library
            .identification()
            .map_err(|e| format!("the plugin failed to identify itself: {e}"))?;
        self.not_a_duplicate(&identification.provider_id)?;
        library.install_logger();
        log::debug!(
            "loaded provider {} from {}",
            identification.provider_id,
            path.display()
        );
        self.loaded.push(LoadedPlugin {
            path: path.to_path_buf(),
            library,
            identification,
        });
        Ok(())
    }

    fn not_a_duplicate(&self, provider_id: &str) -> Result<(), String> {
        match self.loaded.iter().find(|p| {
            p.identification
                .provider_id
                .eq_ignore_ascii_case(provider_id)
        }) {
            Some(first) => Err(format!(
                "duplicate provider \"{provider_id}\" (already loaded from {})",
                first.path.display()
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_order_is_exe_dir_then_installed_then_options_then_env() {
        let dirs = search_dirs(
            Some(Path::new("/nonexistent/bin/aa")),
            &[PathBuf::from("/opt/p")],
            Some(std::ffi::OsStr::new("/x:/y")),
        );
        let paths: Vec<_> = dirs.iter().map(|d| d.path.to_str().unwrap()).collect();
        assert_eq!(paths, ["/nonexistent/bin", "/opt/p", "/x", "/y"]);
        assert!(!dirs[0].dedicated && dirs[1].dedicated);
    }
}

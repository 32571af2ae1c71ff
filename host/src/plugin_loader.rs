//! Finds and loads archiver provider plugins.
//!
//! Search order (the first provider with a given id wins):
//! 1. the directory of the running executable, so `cargo build` / `cargo run` need no flag; only
//!    `*.so` files there are considered, since that directory also holds the binary itself;
//! 2. `<prefix>/lib/aa/plugins` of an installed layout (`<prefix>/bin/aa`);
//! 3. every `--plugin-dir DIR`, then every directory of `AA_PLUGIN_PATH` (colon-separated).
//!
//! In the directories of 2 and 3 every regular file is a candidate, and every file that is not
//! loaded is reported with a one-line reason. Candidates are screened before `dlopen`: a
//! truncated or foreign ELF file can crash the process inside the dynamic loader, which no error
//! handling can recover from.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use aa_abi::host::PluginLibrary;
use aa_abi::ProviderIdentification;

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
    let mut loaded: Vec<LoadedPlugin> = Vec::new();
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
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for path in files {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let is_library_name = has_library_suffix(&name);
            if !dir.dedicated && !is_library_name {
                continue;
            }
            let canonical = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if !seen_files.insert(canonical) {
                continue;
            }
            match load_one(&path, is_library_name, &loaded) {
                Ok(Some(plugin)) => loaded.push(plugin),
                Ok(None) => {}
                Err(reason) => rejected.push(Rejection {
                    path,
                    directory: false,
                    reason,
                }),
            }
        }
    }
    (loaded, rejected)
}

fn has_library_suffix(name: &str) -> bool {
    name.ends_with(".so") || name.contains(".so.")
}

fn load_one(
    path: &Path,
    is_library_name: bool,
    loaded: &[LoadedPlugin],
) -> Result<Option<LoadedPlugin>, String> {
    let meta = fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if meta.is_dir() {
        return Ok(None);
    }
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if !is_library_name {
        return Err("not a shared library (the name does not end with .so)".into());
    }
    screen_elf(path, meta.len())?;
    let library = PluginLibrary::load(path).map_err(|e| e.to_string())?;
    let identification = library
        .identification()
        .map_err(|e| format!("the plugin failed to identify itself: {e}"))?;
    if let Some(first) = loaded.iter().find(|p| {
        p.identification
            .provider_id
            .eq_ignore_ascii_case(&identification.provider_id)
    }) {
        return Err(format!(
            "duplicate provider \"{}\" (already loaded from {})",
            identification.provider_id,
            first.path.display()
        ));
    }
    library.install_logger();
    log::debug!(
        "loaded provider {} from {}",
        identification.provider_id,
        path.display()
    );
    Ok(Some(LoadedPlugin {
        path: path.to_path_buf(),
        library,
        identification,
    }))
}

/// Checks that `path` is a complete ELF shared object for this machine, so that `dlopen` is
/// not handed a file it could crash on.
pub fn screen_elf(path: &Path, len: u64) -> Result<(), String> {
    let mut header = [0u8; 64];
    let mut file = File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let n = read_up_to(&mut file, &mut header).map_err(|e| format!("cannot read it: {e}"))?;
    if n == 0 {
        return Err("empty file".into());
    }
    if n < header.len() || &header[..4] != b"\x7fELF" {
        return Err("not a shared library (no ELF header)".into());
    }
    check_elf_header(&header, len)
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut total = 0;
    while total < buf.len() {
        match file.read(&mut buf[total..]) {
            Ok(0) => break,
            Ok(n) => total += n,
            // A signal arriving during the read is no reason to refuse the plugin.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// Validates the fixed ELF header (64-bit, little-endian, this machine) and that the program
/// and section header tables lie inside the file: a truncated library fails the latter.
fn check_elf_header(h: &[u8; 64], len: u64) -> Result<(), String> {
    const ELFCLASS64: u8 = 2;
    const ELFDATA2LSB: u8 = 1;
    const ET_DYN: u16 = 3;
    if h[4] != ELFCLASS64 || h[5] != ELFDATA2LSB {
        return Err("not a 64-bit little-endian ELF library".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
    let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes"));
    if u16_at(16) != ET_DYN {
        return Err("not a shared library (ELF file of another type)".into());
    }
    if u16_at(18) != host_machine() {
        return Err(format!(
            "built for another machine (ELF machine {})",
            u16_at(18)
        ));
    }
    let tables = [
        ("program headers", u64_at(32), u16_at(54), u16_at(56)),
        ("section headers", u64_at(40), u16_at(58), u16_at(60)),
    ];
    for (what, offset, entry_size, count) in tables {
        let end = offset.saturating_add(u64::from(entry_size) * u64::from(count));
        if end > len {
            return Err(format!(
                "truncated file ({what} end at byte {end}, the file has {len})"
            ));
        }
    }
    Ok(())
}

fn host_machine() -> u16 {
    if cfg!(target_arch = "x86_64") {
        62
    } else if cfg!(target_arch = "aarch64") {
        183
    } else if cfg!(target_arch = "riscv64") {
        243
    } else if cfg!(target_arch = "powerpc64") {
        21
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screening_rejects_empty_text_and_truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("libempty.so");
        fs::write(&empty, b"").unwrap();
        assert_eq!(screen_elf(&empty, 0).unwrap_err(), "empty file");

        let text = dir.path().join("libtext.so");
        fs::write(
            &text,
            b"this is not a library, just some text that is long enough to fill a header",
        )
        .unwrap();
        assert!(screen_elf(&text, 80).unwrap_err().contains("no ELF header"));

        // The test binary is a complete ELF file (a PIE, so of the shared-object type); its
        // first 4000 bytes are not.
        let exe = std::env::current_exe().unwrap();
        let len = fs::metadata(&exe).unwrap().len();
        assert_eq!(screen_elf(&exe, len), Ok(()));
        let truncated = dir.path().join("libtrunc.so");
        fs::write(&truncated, &fs::read(&exe).unwrap()[..4000]).unwrap();
        let err = screen_elf(&truncated, 4000).unwrap_err();
        assert!(err.starts_with("truncated file"), "{err}");
    }

    #[test]
    fn truncation_is_detected_from_the_header() {
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[16..18].copy_from_slice(&3u16.to_le_bytes());
        h[18..20].copy_from_slice(&host_machine().to_le_bytes());
        h[40..48].copy_from_slice(&10_000u64.to_le_bytes()); // section headers at 10000
        h[58..60].copy_from_slice(&64u16.to_le_bytes());
        h[60..62].copy_from_slice(&30u16.to_le_bytes());
        assert!(check_elf_header(&h, 20_000).is_ok());
        assert!(check_elf_header(&h, 4_000)
            .unwrap_err()
            .starts_with("truncated file"));
    }

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

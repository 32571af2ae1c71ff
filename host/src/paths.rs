//! Path helpers shared by the configuration and the application.

use std::path::{Path, PathBuf};

/// Expands a leading `~` or `~/` to the home directory, as the original does for paths in
/// options and archive specifications.
pub fn expand_tilde(path: &Path) -> PathBuf {
    let Ok(rest) = path.strip_prefix("~") else {
        return path.to_path_buf();
    };
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// The default user configuration directory: `$XDG_CONFIG_HOME/aa` or `~/.config/aa`.
pub fn default_user_config_dir() -> PathBuf {
    use etcetera::BaseStrategy;
    match etcetera::choose_base_strategy() {
        Ok(strategy) => strategy.config_dir().join("aa"),
        Err(_) => expand_tilde(Path::new("~/.config/aa")),
    }
}

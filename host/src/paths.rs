//! Path helpers shared by the configuration and the application.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::process::getuid;

/// [`expand_user`] for a path that may not be UTF-8 (such a path is returned unchanged).
pub fn expand_tilde(path: &Path) -> PathBuf {
    match path.to_str() {
        Some(s) => expand_user(s),
        None => path.to_path_buf(),
    }
}

/// Expands `~` and `~user` at the start of `path` like Python's `os.path.expanduser`:
/// `~` is `$HOME` (or the password database entry when unset); an unknown user leaves the
/// path unchanged.
pub fn expand_user(path: &str) -> PathBuf {
    let Some(rest) = path.strip_prefix('~') else {
        return PathBuf::from(path);
    };
    let (user, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let home = if user.is_empty() {
        std::env::var_os("HOME").or_else(|| home_from_passwd(None))
    } else {
        home_from_passwd(Some(user))
    };
    let Some(home) = home else {
        return PathBuf::from(path);
    };
    let mut out = home.as_bytes().to_vec();
    while out.last() == Some(&b'/') {
        out.pop();
    }
    out.extend_from_slice(tail.as_bytes());
    if out.is_empty() {
        out.push(b'/');
    }
    PathBuf::from(OsString::from_vec(out))
}

/// The home directory of `user` (or of the current user) from the password database.
///
/// Raw libc: the password database is libc's (NSS: files, LDAP, systemd-userdb); rustix does
/// not read it, and a crate for it would wrap these same two calls.
fn home_from_passwd(user: Option<&str>) -> Option<OsString> {
    let name = match user {
        Some(u) => Some(std::ffi::CString::new(u).ok()?),
        None => None,
    };
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `passwd` is plain data, for which all zeroes is a valid value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let buf_ptr = buf.as_mut_ptr().cast::<libc::c_char>();
        // SAFETY: `name` is NUL-terminated and `buf_ptr` is `buf.len()` bytes long; the *_r
        // functions fill `pwd` with pointers into `buf`, which outlives every use of them below.
        let rc = unsafe {
            match &name {
                Some(n) => libc::getpwnam_r(n.as_ptr(), &mut pwd, buf_ptr, buf.len(), &mut result),
                None => {
                    libc::getpwuid_r(getuid().as_raw(), &mut pwd, buf_ptr, buf.len(), &mut result)
                }
            }
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        // SAFETY: on success `pw_dir` points to a NUL-terminated string inside `buf`.
        let dir = unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) };
        return Some(OsStr::from_bytes(dir.to_bytes()).to_os_string());
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

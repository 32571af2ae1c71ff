//! The application's persistent storage: `<user-config-dir>/storage/NAME.realm`, one realm per
//! archive, holding what backup level restarting needs between runs (restart dates, restart
//! count, backup sizes per level).
//!
//! The files keep the original's format (Python's `RawConfigParser`): a `[AutoArchive]`
//! section with `variable = value` lines, so that state written by the Python `aa` is read and
//! continued, and the other way round. Unlike the original, each change is written to a
//! temporary file that is then renamed over the realm, so a crash never leaves a truncated
//! realm.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use aa_abi::naming::accessible;
use rustix::io::Errno;

use crate::atomic_write::replace;
use crate::ini::{Ini, IniOptions};

/// The storage subdirectory of the user configuration directory.
pub const STORAGE_SUBDIR: &str = "storage";
const REALM_SUFFIX: &str = ".realm";
/// What the user is told when the storage directory is created, as the original words it.
pub fn created_notice(dir: &Path) -> String {
    format!(
        "Storage directory does not exist. Creating \"{}\".",
        dir.display()
    )
}

/// The section every variable lives in.
pub const DEFAULT_SECTION: &str = "AutoArchive";

/// Variable names used for backup level restarting, as the original named them.
pub mod vars {
    pub const LAST_RESTART: &str = "archiving-last-restart";
    pub const LAST_FULL_RESTART: &str = "archiving-last-full-restart";
    pub const RESTART_COUNT: &str = "archiving-restart-count";
    /// Followed by the level number.
    pub const BACKUP_SIZE: &str = "archiving-size-level";
}

/// The content of one realm file: sections of variables, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Realm {
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl Realm {
    /// The realm in `path`; an error is the reader's message, which names the file.
    fn parse(path: &Path) -> Result<Realm, String> {
        let options = IniOptions {
            lowercase_keys: true,
            allow_no_value: false,
            interpolation: false,
        };
        let ini = Ini::load(path, options).map_err(|e| e.to_string())?;
        let mut realm = Realm::default();
        for section in ini.sections() {
            let vars = ini
                .own_items(section)
                .into_iter()
                .map(|i| (i.key.to_string(), i.value.unwrap_or("").to_string()))
                .collect();
            realm.sections.push((section.to_string(), vars));
        }
        Ok(realm)
    }

    fn section(&self) -> Option<&Vec<(String, String)>> {
        self.sections
            .iter()
            .find(|(name, _)| name == DEFAULT_SECTION)
            .map(|(_, vars)| vars)
    }

    fn get(&self, var: &str) -> Option<&str> {
        self.section()?
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, var: &str, value: String) {
        let index = match self.sections.iter().position(|(n, _)| n == DEFAULT_SECTION) {
            Some(i) => i,
            None => {
                self.sections
                    .push((DEFAULT_SECTION.to_string(), Vec::new()));
                self.sections.len() - 1
            }
        };
        let vars = &mut self.sections[index].1;
        match vars.iter_mut().find(|(k, _)| k == var) {
            Some(entry) => entry.1 = value,
            None => vars.push((var.to_string(), value)),
        }
    }

    /// The file content, as `RawConfigParser.write` lays it out.
    fn render(&self) -> String {
        let mut out = String::new();
        for (name, vars) in &self.sections {
            out.push_str(&format!("[{name}]\n"));
            for (k, v) in vars {
                out.push_str(&format!("{k} = {}\n", v.replace('\n', "\n\t")));
            }
            out.push('\n');
        }
        out
    }
}

/// The realm files of the user configuration directory, read at start.
pub struct Storage {
    dir: PathBuf,
    realms: RefCell<BTreeMap<String, Result<Realm, String>>>,
}

impl Storage {
    /// Reads every realm in `<user_config_dir>/storage`, creating the directory if needed
    /// (the flag tells whether it was created). A realm that cannot be read is remembered as
    /// broken: only the archive it belongs to fails.
    pub fn open(user_config_dir: &Path) -> Result<(Storage, bool), StorageError> {
        Storage::open_with(user_config_dir, true)
    }

    /// [`Storage::open`] for a run that writes nothing (a dry run): a missing storage
    /// directory is an empty storage, not created.
    pub fn open_read_only(user_config_dir: &Path) -> Result<Storage, StorageError> {
        Storage::open_with(user_config_dir, false).map(|(storage, _)| storage)
    }

    fn open_with(user_config_dir: &Path, create: bool) -> Result<(Storage, bool), StorageError> {
        let dir = user_config_dir.join(STORAGE_SUBDIR);
        let mut created = false;
        if !dir.exists() {
            if !create {
                return Ok((
                    Storage {
                        dir,
                        realms: RefCell::new(BTreeMap::new()),
                    },
                    false,
                ));
            }
            fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
            created = true;
        }
        let mut realms = BTreeMap::new();
        let entries = fs::read_dir(&dir).map_err(|e| StorageError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(&dir, e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            // As the original's `*.realm` glob: hidden files are not realms.
            let Some(realm) = name.strip_suffix(REALM_SUFFIX) else {
                continue;
            };
            if name.starts_with('.') || realm.is_empty() {
                continue;
            }
            realms.insert(realm.to_string(), Realm::parse(&entry.path()));
        }
        Ok((
            Storage {
                dir,
                realms: RefCell::new(realms),
            },
            created,
        ))
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `realm`.
    pub fn realm_file(&self, realm: &str) -> PathBuf {
        self.dir.join(format!("{realm}{REALM_SUFFIX}"))
    }

    /// Names of the stored realms.
    pub fn realm_names(&self) -> Vec<String> {
        self.realms.borrow().keys().cloned().collect()
    }

    fn with_realm<T>(
        &self,
        realm: &str,
        f: impl FnOnce(Option<&Realm>) -> T,
    ) -> Result<T, StorageError> {
        match self.realms.borrow().get(realm) {
            None => Ok(f(None)),
            Some(Ok(r)) => Ok(f(Some(r))),
            Some(Err(e)) => Err(StorageError {
                kind: StorageErrorKind::Broken(e.clone()),
            }),
        }
    }

    /// The value of `var` in `realm`, `None` if it is not stored.
    pub fn get(&self, realm: &str, var: &str) -> Result<Option<String>, StorageError> {
        self.with_realm(realm, |r| r.and_then(|r| r.get(var)).map(str::to_string))
    }

    /// Every variable stored in `realm`, in file order.
    pub fn vars(&self, realm: &str) -> Result<Vec<(String, String)>, StorageError> {
        self.with_realm(realm, |r| {
            r.and_then(Realm::section).cloned().unwrap_or_default()
        })
    }

    /// Makes sure `realm` can be saved, before a backup relies on saving it: the realm was
    /// readable, the storage directory exists (true if it had to be created again, having
    /// been removed since the start) and takes files, and the realm's file is absent or a
    /// regular file that a new one can replace.
    pub fn check_writable(&self, realm: &str) -> Result<bool, StorageError> {
        self.with_realm(realm, |_| ())?;
        let dir = &self.dir;
        let created = match fs::metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
                true
            }
            Err(e) => return Err(StorageError::io(dir, e)),
            Ok(m) if !m.is_dir() => return Err(StorageError::os(dir, Errno::NOTDIR)),
            Ok(_) => false,
        };
        if !accessible(dir, libc::W_OK | libc::X_OK) {
            return Err(StorageError::os(dir, Errno::ACCESS));
        }
        let file = self.realm_file(realm);
        match fs::metadata(&file) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(&file, e)),
            Ok(m) if m.is_file() => {}
            Ok(m) if m.is_dir() => return Err(StorageError::os(&file, Errno::ISDIR)),
            Ok(_) => return Err(StorageError::os(&file, Errno::INVAL)),
        }
        Ok(created)
    }

    /// Does what [`Storage::write`] will do (write the realm to a temporary file, sync it,
    /// rename it) with today's content and a name of its own, then removes it: a full or
    /// failing disk is found before the backup replaces the previous one, not after. The
    /// directory's times are put back, so that a run failing later, before its backup, leaves
    /// the storage directory as it found it.
    pub fn probe_write(&self, realm: &str) -> Result<(), StorageError> {
        let content = self.with_realm(realm, |r| r.cloned().unwrap_or_default())?;
        let times = fs::metadata(&self.dir).and_then(|m| {
            Ok(fs::FileTimes::new()
                .set_accessed(m.accessed()?)
                .set_modified(m.modified()?))
        });
        let temp = |what: &str| {
            self.dir.join(format!(
                ".{realm}{REALM_SUFFIX}.{}.{what}.tmp",
                std::process::id()
            ))
        };
        let renamed = temp("probed");
        let result = replace(&renamed, &temp("probe"), content.render().as_bytes(), 0o666);
        let _ = fs::remove_file(&renamed);
        if let Ok(times) = times {
            // Best effort: the times are cosmetic, the probe's verdict is not.
            let _ = fs::File::open(&self.dir).and_then(|d| d.set_times(times));
        }
        result.map_err(|e| StorageError::io(&self.realm_file(realm), e))
    }

    /// Stores `value` as `var` of `realm` and writes the realm file.
    pub fn save(
        &self,
        realm: &str,
        var: &str,
        value: impl fmt::Display,
    ) -> Result<(), StorageError> {
        self.save_all(realm, &[(var.to_string(), value.to_string())])
    }

    /// Stores each `(var, value)` of `updates`, in order, into `realm` with one write of
    /// its file.
    pub fn save_all(&self, realm: &str, updates: &[(String, String)]) -> Result<(), StorageError> {
        let mut content = self.with_realm(realm, |r| r.cloned().unwrap_or_default())?;
        for (var, value) in updates {
            content.set(var, value.clone());
        }
        self.write(realm, content)
    }

    /// Deletes `realm` and its file; false if there was no such realm.
    pub fn remove_realm(&self, realm: &str) -> Result<bool, StorageError> {
        if !self.realms.borrow().contains_key(realm) {
            return Ok(false);
        }
        let file = self.realm_file(realm);
        match fs::remove_file(&file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(StorageError::io(&file, e))
            }
            _ => {}
        }
        self.realms.borrow_mut().remove(realm);
        Ok(true)
    }

    fn write(&self, realm: &str, content: Realm) -> Result<(), StorageError> {
        let file = self.realm_file(realm);
        let temp = self
            .dir
            .join(format!(".{realm}{REALM_SUFFIX}.{}.tmp", std::process::id()));
        replace(&file, &temp, content.render().as_bytes(), 0o666)
            .map_err(|e| StorageError::io(&file, e))?;
        self.realms
            .borrow_mut()
            .insert(realm.to_string(), Ok(content));
        Ok(())
    }
}

/// A failure to read or write the storage.
#[derive(Debug)]
pub struct StorageError {
    kind: StorageErrorKind,
}

#[derive(Debug)]
enum StorageErrorKind {
    Io { path: PathBuf, source: io::Error },
    Broken(String),
}

impl StorageError {
    fn os(path: &Path, code: Errno) -> StorageError {
        StorageError::io(path, code.into())
    }

    fn io(path: &Path, source: io::Error) -> StorageError {
        StorageError {
            kind: StorageErrorKind::Io {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            StorageErrorKind::Io { path, source } => write!(f, "{}: {source}", path.display()),
            StorageErrorKind::Broken(e) => write!(f, "unreadable storage realm: {e}"),
        }
    }
}

impl std::error::Error for StorageError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_the_original_format() {
        let dir = tempfile::tempdir().unwrap();
        let storage_dir = dir.path().join(STORAGE_SUBDIR);
        fs::create_dir(&storage_dir).unwrap();
        let python =
            "[AutoArchive]\narchiving-last-restart = 2024-01-02\narchiving-restart-count = 0\n\
                      archiving-size-level0 = 302\n\n";
        fs::write(storage_dir.join("p.realm"), python).unwrap();
        fs::write(storage_dir.join(".hidden.realm"), python).unwrap();
        fs::write(storage_dir.join("broken.realm"), "no header\n").unwrap();

        let (s, created) = Storage::open(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(s.realm_names(), ["broken", "p"]);
        assert_eq!(
            s.get("p", vars::LAST_RESTART).unwrap().as_deref(),
            Some("2024-01-02")
        );
        assert!(s.get("broken", vars::LAST_RESTART).is_err());
        assert!(s.get("none", vars::LAST_RESTART).unwrap().is_none());

        s.save("p", "archiving-size-level1", 222).unwrap();
        s.save("p", vars::RESTART_COUNT, "1").unwrap();
        assert_eq!(
            fs::read_to_string(storage_dir.join("p.realm")).unwrap(),
            "[AutoArchive]\narchiving-last-restart = 2024-01-02\narchiving-restart-count = 1\n\
             archiving-size-level0 = 302\narchiving-size-level1 = 222\n\n"
        );
        s.save("new", vars::RESTART_COUNT, 0).unwrap();
        assert_eq!(
            fs::read_to_string(storage_dir.join("new.realm")).unwrap(),
            "[AutoArchive]\narchiving-restart-count = 0\n\n"
        );
        assert!(s.remove_realm("new").unwrap());
        assert!(!storage_dir.join("new.realm").exists());
        assert!(!s.remove_realm("new").unwrap());
        let leftovers: Vec<_> = fs::read_dir(&storage_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}

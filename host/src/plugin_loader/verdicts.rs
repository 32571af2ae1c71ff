//! The probe verdicts remembered between runs, so that a plugin is probed in a child process
//! once rather than on every start: `<cache dir>/aa/plugin-verdicts`
//! (`$XDG_CACHE_HOME/aa/plugin-verdicts`, by default `~/.cache/aa/plugin-verdicts`).
//!
//! A verdict is keyed by the identity of the `aa` binary that reached it (a newer `aa` may
//! judge the same file differently, e.g. on the ABI) and of the plugin file: device, inode,
//! size, modification and status-change times in nanoseconds. Writing a file changes its
//! status-change time, which only the clock can set, so a file replaced in place with the same
//! size and modification time is noticed too; what stays possible is changing a file below the
//! file system (a raw device) or turning the clock back, both only for root, an accepted risk.
//! Only verdicts that depend on the file alone are stored (see `probe.rs`): never a timeout, a
//! probe killed from outside, or a library that failed to open (a missing dependency may be
//! installed tomorrow).
//!
//! The file is the user's own: one owned by someone else or writable by group or others is
//! ignored (a root `aa` with another user's `HOME` must not believe that user), and it is only
//! created in a directory the user owns. It is written to a temporary file and renamed, mode
//! 0600. Nothing here is ever an error: a cache that cannot be read or written means probing
//! again.

use std::fmt;
use std::fs::{self, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const HEADER: &str = "aa plugin verdicts 1";
const FILE_NAME: &str = "plugin-verdicts";
/// Older entries beyond this are dropped (each rebuild of a plugin or of aa adds some).
const MAX_ENTRIES: usize = 256;
const MAX_FILE_SIZE: u64 = 1 << 20;

/// The identity of a file as far as a verdict is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileKey(String);

impl FileKey {
    pub(crate) fn of(meta: &Metadata) -> FileKey {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        FileKey(format!(
            "{}:{}:{}:{}:{}",
            meta.dev(),
            meta.ino(),
            meta.size(),
            ns(meta.mtime(), meta.mtime_nsec()),
            ns(meta.ctime(), meta.ctime_nsec())
        ))
    }
}

/// What probing a file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// An `aa` plugin providing this provider id.
    Plugin(String),
    /// Not loadable, with the one-line reason.
    Refused(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Plugin(id) => write!(f, "plugin of provider {id}"),
            Verdict::Refused(reason) => write!(f, "refused: {reason}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    host: String,
    file: String,
    path: String,
    verdict: Verdict,
}

/// The verdicts of the cache file, and those added in this run.
pub(crate) struct Verdicts {
    /// Where the file is; `None` without a cache directory (nothing is stored).
    path: Option<PathBuf>,
    /// The key of the running `aa`; `None` when unknown (nothing is looked up or stored).
    host: Option<String>,
    entries: Vec<Entry>,
    changed: bool,
}

impl Verdicts {
    /// The verdicts stored for the `aa` binary `exe`.
    pub(crate) fn load(exe: Option<&Path>) -> Verdicts {
        let host = exe
            .and_then(|e| fs::metadata(e).ok())
            .map(|m| FileKey::of(&m).0);
        let path = cache_file();
        let entries = match (&path, &host) {
            (Some(path), Some(_)) => read_entries(path).unwrap_or_else(|why| {
                log::debug!("plugin verdict cache {} not used: {why}", path.display());
                Vec::new()
            }),
            _ => Vec::new(),
        };
        Verdicts {
            path,
            host,
            entries,
            changed: false,
        }
    }

    #[cfg(test)]
    fn at(path: PathBuf, host: &str) -> Verdicts {
        let entries = read_entries(&path).unwrap_or_default();
        Verdicts {
            path: Some(path),
            host: Some(host.to_string()),
            entries,
            changed: false,
        }
    }

    /// The verdict stored for the file with `key`.
    pub(crate) fn get(&self, key: &FileKey) -> Option<&Verdict> {
        let host = self.host.as_ref()?;
        self.entries
            .iter()
            .rev()
            .find(|e| &e.host == host && e.file == key.0)
            .map(|e| &e.verdict)
    }

    /// Remembers `verdict` for the file at `path` with `key`, replacing what this `aa` knew of
    /// that path.
    pub(crate) fn put(&mut self, path: &Path, key: &FileKey, verdict: Verdict) {
        let Some(host) = self.host.clone() else {
            return;
        };
        let path = escape(path.as_os_str().as_encoded_bytes());
        self.entries
            .retain(|e| !(e.host == host && (e.path == path || e.file == key.0)));
        self.entries.push(Entry {
            host,
            file: key.0.clone(),
            path,
            verdict,
        });
        self.changed = true;
    }

    /// Writes the file if anything was added; failures are logged only.
    pub(crate) fn save(&mut self) {
        if !self.changed {
            return;
        }
        let Some(path) = &self.path else {
            return;
        };
        let excess = self.entries.len().saturating_sub(MAX_ENTRIES);
        self.entries.drain(..excess);
        match write_entries(path, &self.entries) {
            Ok(()) => self.changed = false,
            Err(why) => log::debug!("plugin verdicts not stored in {}: {why}", path.display()),
        }
    }
}

fn cache_file() -> Option<PathBuf> {
    use etcetera::BaseStrategy;
    let strategy = etcetera::choose_base_strategy().ok()?;
    Some(strategy.cache_dir().join("aa").join(FILE_NAME))
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn read_entries(path: &Path) -> Result<Vec<Entry>, String> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.uid() != euid() {
        return Err(format!("owned by uid {}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "writable by others (mode {:04o})",
            meta.mode() & 0o7777
        ));
    }
    let mut text = String::new();
    Read::by_ref(&mut file)
        .take(MAX_FILE_SIZE)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(parse(&text))
}

fn parse(text: &str) -> Vec<Entry> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Vec::new();
    }
    // A line that does not parse (a future format, damage) is dropped, never guessed at.
    lines
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let host = fields.next()?.to_string();
            let file = fields.next()?.to_string();
            let kind = fields.next()?;
            let text = unescape(fields.next()?)?;
            let path = fields.next()?.to_string();
            if fields.next().is_some() || host.is_empty() || file.is_empty() {
                return None;
            }
            let verdict = match kind {
                "plugin" if !text.is_empty() => Verdict::Plugin(text),
                "refused" if !text.is_empty() => Verdict::Refused(text),
                _ => return None,
            };
            Some(Entry {
                host,
                file,
                path,
                verdict,
            })
        })
        .collect()
}

fn render(entries: &[Entry]) -> String {
    let mut text = format!("{HEADER}\n");
    for e in entries {
        let (kind, value) = match &e.verdict {
            Verdict::Plugin(id) => ("plugin", id),
            Verdict::Refused(reason) => ("refused", reason),
        };
        text += &format!(
            "{}\t{}\t{kind}\t{}\t{}\n",
            e.host,
            e.file,
            escape(value.as_bytes()),
            e.path
        );
    }
    text
}

fn write_entries(path: &Path, entries: &[Entry]) -> Result<(), String> {
    let dir = path.parent().ok_or("no directory")?;
    ensure_own_dir(dir)?;
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    crate::atomic_write::replace(path, &tmp, render(entries).as_bytes(), 0o600)
        .map_err(|e| e.to_string())
}

/// Makes `dir` (mode 0700) unless it exists, but only below a directory the user owns: a root
/// `aa` with another user's `HOME` leaves that home alone.
fn ensure_own_dir(dir: &Path) -> Result<(), String> {
    let owner = |p: &Path| fs::metadata(p).map(|m| m.uid());
    if let Ok(uid) = owner(dir) {
        return if uid == euid() {
            Ok(())
        } else {
            Err(format!("{} is owned by uid {uid}", dir.display()))
        };
    }
    let existing = dir
        .ancestors()
        .find(|a| a.exists())
        .ok_or("no existing ancestor")?;
    match owner(existing) {
        Ok(uid) if uid == euid() => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| e.to_string()),
        Ok(uid) => Err(format!("{} is owned by uid {uid}", existing.display())),
        Err(e) => Err(e.to_string()),
    }
}

/// Printable ASCII but `\` stays; everything else (tab, newline, non-ASCII) becomes `\xHH`.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

fn unescape(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'\\' {
            let hex = tail.get(..3).filter(|h| h[0] == b'x')?;
            let hex = std::str::from_utf8(&hex[1..]).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[3..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn escaping_round_trips() {
        for s in ["plain", "tab\there", "back\\slash", "new\nline", "ünï"] {
            assert_eq!(unescape(&escape(s.as_bytes())).as_deref(), Some(s));
            assert!(!escape(s.as_bytes()).contains(['\t', '\n']));
        }
        assert_eq!(unescape("bad\\x4"), None);
        assert_eq!(unescape("bad\\q00"), None);
    }

    #[test]
    fn verdicts_are_stored_and_found_again_only_by_the_same_host() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("cache/aa").join(FILE_NAME);
        let key = FileKey("1:2:3:4:5".into());
        let other = FileKey("1:2:3:4:6".into());
        let mut v = Verdicts::at(file.clone(), "host-a");
        assert_eq!(v.get(&key), None);
        v.put(
            Path::new("/p/liba.so"),
            &key,
            Verdict::Plugin("A\tB".into()),
        );
        v.put(
            Path::new("/p/libb.so"),
            &other,
            Verdict::Refused("crashes while loading (signal 11)".into()),
        );
        v.save();
        let meta = fs::metadata(&file).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);

        let v = Verdicts::at(file.clone(), "host-a");
        assert_eq!(v.get(&key), Some(&Verdict::Plugin("A\tB".into())));
        assert_eq!(
            v.get(&other),
            Some(&Verdict::Refused(
                "crashes while loading (signal 11)".into()
            ))
        );
        assert_eq!(Verdicts::at(file.clone(), "host-b").get(&key), None);

        // A new verdict for a path replaces the old one.
        let mut v = Verdicts::at(file.clone(), "host-a");
        let newer = FileKey("1:2:3:9:9".into());
        v.put(Path::new("/p/liba.so"), &newer, Verdict::Plugin("A".into()));
        v.save();
        let v = Verdicts::at(file.clone(), "host-a");
        assert_eq!(v.get(&key), None);
        assert_eq!(v.entries.len(), 2);

        // A file others can write is not believed.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(read_entries(&file).unwrap_err().contains("writable"));
    }

    #[test]
    fn damaged_lines_are_dropped() {
        let text = format!(
            "{HEADER}\nh\tf\tplugin\tX\t/p\nh\tf\tmaybe\tX\t/p\nh\tf\tplugin\n\t\t\t\t\nh\tg\trefused\tbad\\x\t/p\n"
        );
        let entries = parse(&text);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].verdict, Verdict::Plugin("X".into()));
        assert!(parse("other header\nh\tf\tplugin\tX\t/p\n").is_empty());
    }
}

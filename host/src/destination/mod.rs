//! Where backups are stored: a local directory or an S3-compatible object store, behind one
//! interface ([`Store`]), chosen by the destination ([`Destination::parse`]).
//!
//! A backup becomes visible under its name only when it is complete ([`Upload::commit`]), so a
//! failed or interrupted run never replaces a good backup with a broken one: a local directory
//! keeps `aa`'s `._partial` + fsync + rename discipline ([`aa_abi::naming::OutputFile`]), an
//! object store completes a multipart upload. An upload aborted or dropped before it commits
//! leaves nothing behind: no partial file, no object, no pending multipart upload.
//!
//! `Store` is an enum rather than a trait object: there are two kinds of destination, both
//! known here, matches over them are checked for exhaustiveness, and [`Store::reader`] and
//! [`Store::upload`] return concrete types (no boxing, no object-safety contortions for
//! `commit(self)`). A third backend is one more variant.
//!
//! The application does not use it yet; the tests reach it through `aa_host::destination`.

mod credentials;
mod local;
mod s3;

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub use credentials::Credentials;
pub use s3::{S3Options, DEFAULT_PART_SIZE, DEFAULT_QUEUED_PARTS, MIN_PART_SIZE};

/// An error of a destination, as one line naming the directory, URL or object concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationError {
    message: String,
}

impl DestinationError {
    fn new(message: impl Into<String>) -> DestinationError {
        DestinationError {
            message: message.into(),
        }
    }
}

impl fmt::Display for DestinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DestinationError {}

impl From<DestinationError> for io::Error {
    fn from(e: DestinationError) -> io::Error {
        io::Error::other(e.message)
    }
}

/// Where the backups of an archive go, as the user wrote it (`dest-dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A directory on this machine.
    Local(PathBuf),
    /// `s3://BUCKET/PREFIX`: the objects named `PREFIX/NAME` in `BUCKET` (an empty prefix is
    /// the top of the bucket).
    S3 { bucket: String, prefix: String },
}

impl Destination {
    /// Parses a `dest-dir` value: `s3://bucket[/prefix]`, or else a local directory. Another
    /// URL scheme is refused rather than taken for a directory named `gs:`.
    pub fn parse(value: &str) -> Result<Destination, DestinationError> {
        let fail = |why: &str| Err(DestinationError::new(format!("{value}: {why}")));
        if value.is_empty() {
            return fail("an empty destination");
        }
        let Some((scheme, rest)) = value.split_once("://") else {
            return Ok(Destination::Local(PathBuf::from(value)));
        };
        let looks_like_scheme = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !looks_like_scheme {
            return Ok(Destination::Local(PathBuf::from(value)));
        }
        if !scheme.eq_ignore_ascii_case("s3") {
            return fail(&format!(
                "unsupported URL scheme '{scheme}' (a destination is a directory or s3://bucket/prefix)"
            ));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if let Some(problem) = bucket_name_problem(bucket) {
            return fail(&format!("bad bucket name '{bucket}': {problem}"));
        }
        let prefix = prefix.trim_end_matches('/');
        if prefix
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
            && !prefix.is_empty()
        {
            return fail("the prefix has an empty, '.' or '..' segment");
        }
        if prefix.contains(['\0', '?', '#']) {
            return fail("the prefix has a NUL, '?' or '#'");
        }
        Ok(Destination::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// Whether the backups go to another machine.
    pub fn is_remote(&self) -> bool {
        !matches!(self, Destination::Local(_))
    }

    /// How an object of this destination is named to the user: a path, or an `s3://` URL.
    pub fn display_name(&self, name: &str) -> String {
        match self {
            Destination::Local(dir) => dir.join(name).display().to_string(),
            Destination::S3 { .. } => format!("{self}/{name}"),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Local(dir) => write!(f, "{}", dir.display()),
            Destination::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Destination::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// What is wrong with an S3 bucket name (the rules for general purpose buckets), if anything.
fn bucket_name_problem(bucket: &str) -> Option<&'static str> {
    if bucket.is_empty() {
        return Some("missing");
    }
    if !(3..=63).contains(&bucket.len()) {
        return Some("a bucket name has 3 to 63 characters");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Some("only lowercase letters, digits, '.' and '-' are allowed");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bucket.as_bytes()[0]) || !alnum(bucket.as_bytes()[bucket.len() - 1]) {
        return Some("it must begin and end with a letter or digit");
    }
    if bucket.contains("..") {
        return Some("two adjacent periods");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("it must not look like an IP address");
    }
    if ["xn--", "sthree-"].iter().any(|p| bucket.starts_with(p))
        || ["-s3alias", "--ol-s3"].iter().any(|s| bucket.ends_with(s))
    {
        return Some("a prefix or suffix reserved by S3");
    }
    None
}

/// A backup stored at a destination: its name (no directory or prefix) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
}

/// An open destination: the backups of one directory or one bucket prefix.
#[derive(Debug)]
pub enum Store {
    Local(local::LocalDir),
    S3(s3::S3Store),
}

impl Store {
    /// Opens `destination`; `options` matter only for an object store, whose credentials are
    /// read here (see [`Credentials`]). Nothing is contacted yet: the first operation tells
    /// whether the bucket exists and the credentials are accepted.
    pub fn open(destination: &Destination, options: &S3Options) -> Result<Store, DestinationError> {
        match destination {
            Destination::Local(dir) => Ok(Store::Local(local::LocalDir::new(dir.clone()))),
            Destination::S3 { bucket, prefix } => Ok(Store::S3(s3::S3Store::open(
                bucket,
                prefix,
                &destination.to_string(),
                options,
            )?)),
        }
    }

    /// The backups stored there (regular files, not partial ones; objects directly under the
    /// prefix), sorted by name.
    pub fn list(&self) -> Result<Vec<ObjectInfo>, DestinationError> {
        let mut objects = match self {
            Store::Local(d) => d.list()?,
            Store::S3(s) => s.list()?,
        };
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(objects)
    }

    /// Whether a backup named `name` is stored.
    pub fn exists(&self, name: &str) -> Result<bool, DestinationError> {
        match self {
            Store::Local(d) => d.exists(check_name(self, name)?),
            Store::S3(s) => s.exists(check_name(self, name)?),
        }
    }

    /// The size in bytes of the backup `name`.
    pub fn size(&self, name: &str) -> Result<u64, DestinationError> {
        match self {
            Store::Local(d) => d.size(check_name(self, name)?),
            Store::S3(s) => s.size(check_name(self, name)?),
        }
    }

    /// Reads the backup `name` as a stream (an object store's is one GET, read as it arrives).
    pub fn reader(&self, name: &str) -> Result<ObjectReader, DestinationError> {
        let inner = match self {
            Store::Local(d) => ReaderInner::Local(d.reader(check_name(self, name)?)?),
            Store::S3(s) => ReaderInner::S3(Box::new(s.reader(check_name(self, name)?)?)),
        };
        Ok(ObjectReader { inner })
    }

    /// Starts writing the backup `name`; it replaces a backup of that name only when
    /// [`Upload::commit`] succeeds.
    pub fn upload(&self, name: &str) -> Result<Upload, DestinationError> {
        let inner = match self {
            Store::Local(d) => UploadInner::Local(d.upload(check_name(self, name)?)?),
            Store::S3(s) => UploadInner::S3(s.upload(check_name(self, name)?)?),
        };
        Ok(Upload { inner })
    }

    /// Copies the backup `from` to `to` (replacing it), on the store's side for an object
    /// store; `to` appears complete or not at all.
    pub fn copy(&self, from: &str, to: &str) -> Result<(), DestinationError> {
        let (from, to) = (check_name(self, from)?, check_name(self, to)?);
        match self {
            Store::Local(d) => d.copy(from, to),
            Store::S3(s) => s.copy(from, to),
        }
    }

    /// Deletes the backup `name`; deleting one that is not there is no error.
    pub fn delete(&self, name: &str) -> Result<(), DestinationError> {
        match self {
            Store::Local(d) => d.delete(check_name(self, name)?),
            Store::S3(s) => s.delete(check_name(self, name)?),
        }
    }

    fn display_name(&self, name: &str) -> String {
        match self {
            Store::Local(d) => d.path(name).display().to_string(),
            Store::S3(s) => s.url(name),
        }
    }
}

/// A backup name is one plain file name: the store's directory or prefix is never escaped.
fn check_name<'n>(store: &Store, name: &'n str) -> Result<&'n str, DestinationError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(DestinationError::new(format!(
            "{}: not a plain backup name",
            store.display_name(name)
        )));
    }
    Ok(name)
}

/// A stored backup being read; see [`Store::reader`].
pub struct ObjectReader {
    inner: ReaderInner,
}

enum ReaderInner {
    Local(std::fs::File),
    // Boxed: its stream state is large, a file is one descriptor.
    S3(Box<s3::S3Reader>),
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            ReaderInner::Local(f) => f.read(buf),
            ReaderInner::S3(r) => r.read(buf),
        }
    }
}

/// A backup being written; see [`Store::upload`]. Dropped without [`Upload::commit`], it is
/// aborted.
pub struct Upload {
    inner: UploadInner,
}

enum UploadInner {
    Local(local::LocalUpload),
    S3(s3::S3Upload),
}

impl Upload {
    /// Makes the backup visible under its name, replacing the previous one: after the data is
    /// on disk (fsync, rename) or the multipart upload completed. On error nothing replaced
    /// the previous backup, and what was written is removed.
    pub fn commit(self) -> Result<(), DestinationError> {
        match self.inner {
            UploadInner::Local(u) => u.commit(),
            UploadInner::S3(u) => u.commit(),
        }
    }

    /// What aborts this upload from another thread (the signal thread, on Ctrl-C): `None`
    /// for a local file, which the interrupt handling removes by its name.
    pub fn abort_handle(&self) -> Option<AbortHandle> {
        match &self.inner {
            UploadInner::Local(_) => None,
            UploadInner::S3(u) => Some(AbortHandle(u.abort_handle())),
        }
    }

    /// Gives the backup up: the partial file is removed, the multipart upload aborted.
    pub fn abort(self) -> Result<(), DestinationError> {
        match self.inner {
            UploadInner::Local(u) => u.abort(),
            UploadInner::S3(u) => u.abort(),
        }
    }
}

/// Aborts an [`Upload`] from another thread, between two of its writes: what a signal
/// handler uses, as the process ends before the writing thread would drop its upload. The
/// upload's next write then fails.
#[derive(Clone)]
pub struct AbortHandle(s3::S3AbortHandle);

impl AbortHandle {
    /// Aborts the upload unless it is already committed or aborted; says whether it aborted.
    pub fn abort(&self) -> Result<bool, DestinationError> {
        self.0.abort()
    }
}

impl Write for Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            UploadInner::Local(u) => u.write(buf),
            UploadInner::S3(u) => u.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            UploadInner::Local(u) => u.flush(),
            UploadInner::S3(u) => u.flush(),
        }
    }
}

/// The path of `name` in `dir`, for messages.
fn path_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, prefix: &str) -> Destination {
        Destination::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn urls_and_directories_are_told_apart() {
        assert_eq!(Destination::parse("s3://bkp").unwrap(), s3("bkp", ""));
        assert_eq!(Destination::parse("s3://bkp/").unwrap(), s3("bkp", ""));
        assert_eq!(
            Destination::parse("s3://my.bkp-1/host/home/").unwrap(),
            s3("my.bkp-1", "host/home")
        );
        assert_eq!(Destination::parse("S3://bkp/a").unwrap(), s3("bkp", "a"));
        assert_eq!(
            Destination::parse("/var/backups").unwrap(),
            Destination::Local("/var/backups".into())
        );
        // Not a scheme: a relative directory with "://" further on.
        assert_eq!(
            Destination::parse("./x://y").unwrap(),
            Destination::Local("./x://y".into())
        );
        assert_eq!(
            s3("bkp", "a/b").display_name("n.tar.gz"),
            "s3://bkp/a/b/n.tar.gz"
        );
        assert_eq!(s3("bkp", "").display_name("n"), "s3://bkp/n");
        assert!(s3("bkp", "").is_remote());
        assert!(!Destination::parse("d").unwrap().is_remote());
    }

    #[test]
    fn bad_destinations_are_one_line_naming_the_value() {
        for (value, why) in [
            ("", "empty"),
            ("gs://bkp/x", "unsupported URL scheme 'gs'"),
            ("s3://", "bad bucket name '': missing"),
            ("s3:///prefix", "missing"),
            ("s3://ab", "3 to 63"),
            ("s3://Backups", "lowercase"),
            ("s3://bkp_1", "lowercase"),
            ("s3://-bkp", "begin and end"),
            ("s3://bkp.", "begin and end"),
            ("s3://a..b", "adjacent periods"),
            ("s3://192.168.1.1", "IP address"),
            ("s3://xn--bkp", "reserved"),
            ("s3://bkp-s3alias", "reserved"),
            ("s3://bkp/a//b", "empty, '.' or '..' segment"),
            ("s3://bkp/../b", "empty, '.' or '..' segment"),
            ("s3://bkp/a?b", "'?'"),
        ] {
            let e = Destination::parse(value).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{value}: ")), "{value}: {e}");
            assert!(e.contains(why), "{value}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let long = format!("s3://{}", "a".repeat(64));
        assert!(Destination::parse(&long).is_err());
        let max = format!("s3://{}", "a".repeat(63));
        assert!(Destination::parse(&max).is_ok());
    }

    #[test]
    fn names_never_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &Destination::Local(dir.path().into()),
            &S3Options::default(),
        )
        .unwrap();
        for name in ["", ".", "..", "a/b", "../x"] {
            let e = store.exists(name).unwrap_err().to_string();
            assert!(e.ends_with(": not a plain backup name"), "{e}");
            assert!(store.upload(name).is_err());
        }
    }
}

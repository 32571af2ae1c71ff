//! Plain data that crosses the plugin boundary: backup types, features, the sub-operations and
//! errors reported by the `backupOperationError` event, the backup definition and the provider
//! identification.
//!
//! Every enumeration here is a `#[repr(transparent)]` newtype over `u32` with associated
//! constants instead of a Rust `enum`: a plugin built against an older `aa-abi` must keep loading
//! when a later version adds a variant (the original program grew `TarZst` in 2.0), and a value
//! it does not know must be representable rather than undefined behaviour.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use abi_stable::std_types::{RString, RVec};
use abi_stable::StableAbi;

/// Minimal compression strength value.
pub const MIN_COMPRESSION_STRENGTH: u32 = 0;
/// Maximal compression strength value.
pub const MAX_COMPRESSION_STRENGTH: u32 = 9;

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $value:expr => $text:expr ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(
            /// The value as it crosses the boundary.
            pub u32,
        );

        #[allow(non_upper_case_globals)]
        impl $name {
            $(
                $(#[$vmeta])*
                #[doc = concat!("The original's `", $text, "`.")]
                pub const $variant: $name = $name($value);
            )+

            /// Every value this version of the ABI knows, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The name used in the original program (e.g. `TarGz`), or `None` for a value
            /// this version does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($text), )+
                    _ => None,
                }
            }

            /// Parses a name as printed by [`Self::name`], ignoring ASCII case.
            pub fn from_name(name: &str) -> Option<$name> {
                Self::KNOWN.iter().copied().find(|v| v.name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

open_enum! {
    /// Type of a backup: the tar container and its compression.
    BackupType {
        Tar = 0 => "Tar",
        TarGz = 1 => "TarGz",
        TarBz2 = 2 => "TarBz2",
        TarXz = 3 => "TarXz",
        TarZst = 4 => "TarZst",
    }
}

impl BackupType {
    /// File name extension (without the leading dot) of backups of this type, exactly as the
    /// original names them.
    pub fn extension(self) -> Option<&'static str> {
        Some(match self {
            BackupType::Tar => "tar",
            BackupType::TarGz => "tar.gz",
            BackupType::TarBz2 => "tar.bz2",
            BackupType::TarXz => "tar.xz",
            BackupType::TarZst => "tar.zst",
            _ => return None,
        })
    }

    /// Whether the type compresses its content (and so may support a compression strength).
    pub fn is_compressed(self) -> bool {
        self != BackupType::Tar
    }
}

open_enum! {
    /// Optional capabilities of an archiver provider, declared per backup type.
    ArchiverFeature {
        CompressionStrength = 0 => "CompressionStrength",
        Incremental = 1 => "Incremental",
    }
}

open_enum! {
    /// The operation that was running when a non-fatal backup error occurred.
    BackupSubOperation {
        Unknown = 0 => "Unknown",
        UnknownFileOperation = 1 => "UnknownFileOperation",
        Stat = 2 => "Stat",
        Open = 3 => "Open",
        Read = 4 => "Read",
        Finish = 5 => "Finish",
    }
}

open_enum! {
    /// Non-fatal errors reported through the `backupOperationError` event.
    BackupOperationError {
        UnknownError = 0 => "UnknownError",
        UnknownOsError = 1 => "UnknownOsError",
        PermissionDenied = 2 => "PermissionDenied",
        SocketIgnored = 3 => "SocketIgnored",
        UnknownTypeIgnored = 4 => "UnknownTypeIgnored",
        FileChanged = 5 => "FileChanged",
        SomeFilesChanged = 6 => "SomeFilesChanged",
        DirectoryRenamed = 7 => "DirectoryRenamed",
    }
}

impl BackupOperationError {
    /// Whether the error means the backup misses content the user asked for (as opposed to
    /// objects that tar cannot store anyway, such as sockets). The application treats these as
    /// a failed backup operation.
    pub fn is_content_error(self) -> bool {
        matches!(
            self,
            BackupOperationError::UnknownError
                | BackupOperationError::UnknownOsError
                | BackupOperationError::PermissionDenied
        )
    }
}

/// A file system path carried as raw bytes, so that names which are not valid UTF-8 survive the
/// boundary unchanged (Unix only, as is the whole program).
#[repr(transparent)]
#[derive(StableAbi, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PathBytes(pub RVec<u8>);

impl PathBytes {
    /// The bytes of `path`.
    pub fn new(path: impl AsRef<Path>) -> PathBytes {
        PathBytes(path.as_ref().as_os_str().as_bytes().into())
    }

    /// The bytes as a path.
    pub fn as_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(self.0.as_slice()))
    }
}

impl fmt::Debug for PathBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_path(), f)
    }
}

impl<P: AsRef<Path>> From<P> for PathBytes {
    fn from(path: P) -> PathBytes {
        PathBytes::new(path)
    }
}

/// Everything needed to create one backup.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct BackupDefinition {
    /// The backup identifier, typically the archive name; the backup file name starts with it.
    pub backup_id: RString,
    /// The archive format and compression.
    pub backup_type: BackupType,
    /// Directory which contains the backup files.
    pub destination: PathBytes,
    /// Root directory of the source content; include and exclude paths are relative to it.
    pub root: PathBytes,
    /// Source file system objects, relative to `root`, wildcards already expanded.
    pub include_files: RVec<PathBytes>,
    /// Excluded objects, relative to `root`. An entry is matched exactly against a member's
    /// path; an excluded directory excludes its whole subtree.
    pub exclude_files: RVec<PathBytes>,
}

impl BackupDefinition {
    /// A definition without includes or excludes.
    pub fn new(
        backup_id: &str,
        backup_type: BackupType,
        destination: impl AsRef<Path>,
        root: impl AsRef<Path>,
    ) -> BackupDefinition {
        BackupDefinition {
            backup_id: backup_id.into(),
            backup_type,
            destination: PathBytes::new(destination),
            root: PathBytes::new(root),
            include_files: RVec::new(),
            exclude_files: RVec::new(),
        }
    }

    /// Adds include entries.
    pub fn include<P: AsRef<Path>>(mut self, paths: impl IntoIterator<Item = P>) -> Self {
        self.include_files
            .extend(paths.into_iter().map(PathBytes::new));
        self
    }

    /// Adds exclude entries.
    pub fn exclude<P: AsRef<Path>>(mut self, paths: impl IntoIterator<Item = P>) -> Self {
        self.exclude_files
            .extend(paths.into_iter().map(PathBytes::new));
        self
    }

    /// [`BackupDefinition::destination`] as a path.
    pub fn destination(&self) -> &Path {
        self.destination.as_path()
    }

    /// [`BackupDefinition::root`] as a path.
    pub fn root(&self) -> &Path {
        self.root.as_path()
    }

    /// The include entries as paths.
    pub fn includes(&self) -> impl Iterator<Item = &Path> {
        self.include_files.iter().map(PathBytes::as_path)
    }

    /// The exclude entries as paths.
    pub fn excludes(&self) -> impl Iterator<Item = &Path> {
        self.exclude_files.iter().map(PathBytes::as_path)
    }
}

/// Features a provider supports for one backup type.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct TypeFeatures {
    /// The backup type.
    pub backup_type: BackupType,
    /// What the provider supports for it.
    pub features: RVec<ArchiverFeature>,
}

/// What a provider is and what it can do; available without creating the provider.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct ProviderIdentification {
    /// Unique provider name, e.g. `TarInternal`. Matched case-insensitively by the host.
    pub provider_id: RString,
    /// One-line human description.
    pub description: RString,
    /// The supported backup types, each with its features.
    pub backup_types: RVec<TypeFeatures>,
}

impl ProviderIdentification {
    /// An identification without backup types.
    pub fn new(provider_id: &str, description: &str) -> Self {
        ProviderIdentification {
            provider_id: provider_id.into(),
            description: description.into(),
            backup_types: RVec::new(),
        }
    }

    /// Declares a supported backup type with its features (builder style).
    pub fn with_type(mut self, backup_type: BackupType, features: &[ArchiverFeature]) -> Self {
        self.backup_types.push(TypeFeatures {
            backup_type,
            features: features.iter().copied().collect(),
        });
        self
    }

    /// The supported backup types, in the order declared.
    pub fn supported_backup_types(&self) -> impl Iterator<Item = BackupType> + '_ {
        self.backup_types.iter().map(|t| t.backup_type)
    }

    /// Whether `backup_type` is supported.
    pub fn supports_type(&self, backup_type: BackupType) -> bool {
        self.supported_backup_types().any(|t| t == backup_type)
    }

    /// Features for one backup type, or `None` if the type is not supported.
    pub fn features_for(&self, backup_type: BackupType) -> Option<&[ArchiverFeature]> {
        self.backup_types
            .iter()
            .find(|t| t.backup_type == backup_type)
            .map(|t| t.features.as_slice())
    }

    /// Union of the features over every supported type, in `ArchiverFeature` order.
    pub fn all_features(&self) -> Vec<ArchiverFeature> {
        let mut all: Vec<ArchiverFeature> = self
            .backup_types
            .iter()
            .flat_map(|t| t.features.iter().copied())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_display_without_panicking() {
        assert_eq!(BackupType(42).to_string(), "BackupType(42)");
        assert_eq!(BackupType(42).extension(), None);
        assert_eq!(BackupType::TarZst.to_string(), "TarZst");
    }

    #[test]
    fn names_round_trip() {
        for t in BackupType::KNOWN {
            assert_eq!(BackupType::from_name(t.name().unwrap()), Some(*t));
        }
        assert_eq!(BackupType::from_name("targz"), Some(BackupType::TarGz));
    }

    #[test]
    fn non_utf8_paths_survive() {
        let raw = OsStr::from_bytes(b"caf\xe9/x");
        let p = PathBytes::new(raw);
        assert_eq!(p.as_path().as_os_str().as_bytes(), b"caf\xe9/x");
    }
}

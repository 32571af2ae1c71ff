//! The archiver service: its identification, the component that registers every loaded
//! archiver plugin as a provider, and the archiver names users write (`targz`,
//! `tar_internal`, `tarzst@MyProvider`).

use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;

use aa_abi::capability::Capabilities;
use aa_abi::host::Provider;
use aa_abi::{BackupType, ProviderIdentification};

use crate::plugin_loader::LoadedPlugin;
use crate::service::{ServiceAccessor, ServiceComponent, ServiceIdentification};

/// Provider id of the pure-Rust provider.
pub const TAR_INTERNAL: &str = "TarInternal";
/// Provider id of the GNU tar provider.
pub const TAR_EXTERNAL: &str = "TarExternal";

/// Identifies the archiver service.
pub struct ArchiverService;

/// What is known of an archiver provider before it is created.
#[derive(Debug, Clone)]
pub struct ArchiverProviderInfo {
    pub identification: ProviderIdentification,
    /// The library the provider comes from.
    pub library: PathBuf,
    /// What the plugin can do beyond ABI 1.0 (restore, verify, dry run), checked when it was
    /// loaded: the application chooses a provider for those actions without creating any.
    pub capabilities: Capabilities,
}

impl ServiceIdentification for ArchiverService {
    type Interface = Provider;
    type ProviderIdentification = ArchiverProviderInfo;
    const NAME: &'static str = "archiver";
}

/// Registers the providers of every loaded archiver plugin.
pub struct ArchiverServiceComponent;

impl ArchiverServiceComponent {
    pub fn new(
        accessor: &mut ServiceAccessor,
        plugins: &[LoadedPlugin],
    ) -> ArchiverServiceComponent {
        for plugin in plugins {
            let library = plugin.library;
            let info = ArchiverProviderInfo {
                identification: plugin.identification.clone(),
                library: plugin.path.clone(),
                capabilities: library.capabilities(),
            };
            let registered = accessor.register_service::<ArchiverService>(
                &plugin.identification.provider_id,
                info,
                Box::new(move |work_dir| {
                    library
                        .create_provider(work_dir)
                        .map(Rc::new)
                        .map_err(|e| e.to_string())
                }),
            );
            // The loader already refuses duplicate ids; a failure here would be a bug there.
            if let Err(e) = registered {
                log::warn!("{e}");
            }
        }
        ArchiverServiceComponent
    }
}

impl ServiceComponent for ArchiverServiceComponent {
    fn destroy_services(&mut self, accessor: &mut ServiceAccessor) {
        let _ = accessor.unregister_service::<ArchiverService>();
    }
}

/// A parsed archiver name: the backup type and the provider that makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archiver {
    pub backup_type: BackupType,
    pub provider: String,
}

/// The type part of archiver names, as the original spells it.
const TYPE_NAMES: [(&str, BackupType); 5] = [
    ("tar", BackupType::Tar),
    ("targz", BackupType::TarGz),
    ("tarbz2", BackupType::TarBz2),
    ("tarxz", BackupType::TarXz),
    ("tarzst", BackupType::TarZst),
];

fn type_name(backup_type: BackupType) -> Option<&'static str> {
    TYPE_NAMES
        .iter()
        .find(|(_, t)| *t == backup_type)
        .map(|(n, _)| *n)
}

/// Why an archiver name was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiverNameError(String);

impl fmt::Display for ArchiverNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown archiver \"{}\" (expected tar, targz, tarbz2, tarxz or tarzst, optionally followed by \
             _internal or by @PROVIDER)",
            self.0
        )
    }
}

impl std::error::Error for ArchiverNameError {}

impl Archiver {
    /// Parses `TYPE`, `TYPE_internal` or `TYPE@PROVIDER` (case-insensitive type).
    pub fn parse(name: &str) -> Result<Archiver, ArchiverNameError> {
        let err = || ArchiverNameError(name.to_string());
        let trimmed = name.trim();
        let (type_part, provider) = match trimmed.split_once('@') {
            Some((t, p)) if !p.trim().is_empty() => (t.trim(), p.trim().to_string()),
            Some(_) => return Err(err()),
            None => match trimmed.strip_suffix("_internal") {
                Some(t) => (t, TAR_INTERNAL.to_string()),
                None => (trimmed, TAR_EXTERNAL.to_string()),
            },
        };
        let backup_type = TYPE_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(type_part))
            .map(|(_, t)| *t)
            .ok_or_else(err)?;
        Ok(Archiver {
            backup_type,
            provider,
        })
    }
}

impl fmt::Display for Archiver {
    /// The original's spelling where one exists, `TYPE@PROVIDER` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = type_name(self.backup_type).unwrap_or("?");
        if self.provider.eq_ignore_ascii_case(TAR_EXTERNAL) {
            f.write_str(t)
        } else if self.provider.eq_ignore_ascii_case(TAR_INTERNAL) {
            write!(f, "{t}_internal")
        } else {
            write!(f, "{t}@{}", self.provider)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_spellings_and_provider_spelling() {
        let p = |s| Archiver::parse(s).unwrap();
        assert_eq!(
            p("targz"),
            Archiver {
                backup_type: BackupType::TarGz,
                provider: TAR_EXTERNAL.into()
            }
        );
        assert_eq!(p("tarbz2_internal").provider, TAR_INTERNAL);
        assert_eq!(p("tarzst_internal").backup_type, BackupType::TarZst);
        assert_eq!(
            p("TarXz@Hello"),
            Archiver {
                backup_type: BackupType::TarXz,
                provider: "Hello".into()
            }
        );
        assert!(Archiver::parse("zip").is_err());
        assert!(Archiver::parse("tar@").is_err());
        for s in ["tar", "targz_internal", "tarzst@Hello"] {
            assert_eq!(p(s).to_string(), s);
        }
        assert_eq!(p("tarxz@tarinternal").to_string(), "tarxz_internal");
    }
}

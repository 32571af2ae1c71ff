//! The backup files of one archive at its destination, as keeping old backups and the removal
//! of obsolete ones see them: whether a backup (a level, a kept one) exists, renaming it to a
//! keeping ID, removing it.
//!
//! A local destination is the archiver provider's business, as in the original: its
//! `does_backup_exist`, `keep_backup`, `remove_backup_increments`... work on the files of the
//! backup definition's destination ([`Backups::Local`] only delegates). An object store
//! (`dest-dir = s3://bucket/prefix`) is the host's: the provider only streams the backup into an
//! upload, and [`Backups::Remote`] works on the objects of a [`Store`], named exactly as
//! [`backup_file_name`] names the files (`home.1.aa.tar.gz`). A store has no rename: keeping
//! is a server-side copy, then a delete of the original, so a crash between the two leaves the
//! backup under both names (see [`super::journal`] for how recovery tells that state apart).
//!
//! An enum, as [`Store`] is: two kinds of destination, both known here.

use std::path::PathBuf;

use aa_abi::host::Provider;
use aa_abi::naming::{backup_file_name, backup_file_path, backup_level_for};
use aa_abi::{BackupDefinition, BackupType};

use super::archive::{s3_options, ArchiveContext};
use super::chain::{self, file_name, Query};
use super::journal::StoreRecord;
use super::Failure;
use crate::destination::{Destination, Store};

/// The backups of one archive at its destination.
pub enum Backups<'a> {
    /// Files of a local directory, through the archiver provider.
    Local {
        provider: &'a Provider,
        definition: &'a BackupDefinition,
    },
    /// Objects of a store (boxed: a store is large, and there is one per archive's run).
    Remote(Box<Remote>),
}

/// The backups of one archive in an object store.
pub struct Remote {
    store: Store,
    destination: Destination,
    /// How the store was opened, for the keeping journal to open it again.
    record: StoreRecord,
    name: String,
    backup_type: BackupType,
}

fn unknown_type() -> Failure {
    Failure::Option("unknown backup type".into())
}

impl<'a> Backups<'a> {
    /// The backups of the archive of `ctx`: its provider's files for a local destination, the
    /// objects of its store (opened with the archive's `s3-*` options) for a remote one.
    pub fn of(
        ctx: &'a ArchiveContext<'_, '_>,
        definition: &'a BackupDefinition,
    ) -> Result<Backups<'a>, Failure> {
        let destination = ctx.target()?;
        if !destination.is_remote() {
            return Ok(Backups::Local {
                provider: &ctx.provider,
                definition,
            });
        }
        let options = s3_options(ctx.settings);
        Ok(Backups::Remote(Box::new(Remote {
            store: ctx.open_store()?,
            record: StoreRecord::new(&destination, &options),
            destination,
            name: ctx.settings.name().to_string(),
            backup_type: ctx.backup_type(),
        })))
    }

    /// The backups of archive `name` in `store`, opened on `destination` as `record` says.
    #[cfg(test)]
    pub fn remote(
        store: Store,
        destination: Destination,
        record: StoreRecord,
        name: &str,
        backup_type: BackupType,
    ) -> Backups<'a> {
        Backups::Remote(Box::new(Remote {
            store,
            destination,
            record,
            name: name.to_string(),
            backup_type,
        }))
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, Backups::Remote(_))
    }

    /// The store of a remote destination.
    pub fn store(&self) -> Option<&Store> {
        match self {
            Backups::Local { .. } => None,
            Backups::Remote(r) => Some(&r.store),
        }
    }

    /// The destination of a remote store.
    pub fn destination(&self) -> Option<&Destination> {
        match self {
            Backups::Local { .. } => None,
            Backups::Remote(r) => Some(&r.destination),
        }
    }

    /// What the keeping journal records to open the store again; `None` for local files.
    pub fn store_record(&self) -> Option<&StoreRecord> {
        match self {
            Backups::Local { .. } => None,
            Backups::Remote(r) => Some(&r.record),
        }
    }

    /// The file (object) name of a backup: `NAME[.LEVEL][.KEEPID].EXT`.
    pub fn name(&self, level: Option<u32>, keeping: Option<&str>) -> Result<String, Failure> {
        match self {
            Backups::Local { definition, .. } => backup_file_name(
                &definition.backup_id,
                definition.backup_type,
                level,
                keeping,
            ),
            Backups::Remote(r) => backup_file_name(&r.name, r.backup_type, level, keeping),
        }
        .ok_or_else(unknown_type)
    }

    /// How the journal names a backup: its whole path for a local file (a changed `dest-dir`
    /// does not matter), its object name in a store (the journal names the store).
    pub fn journal_name(
        &self,
        level: Option<u32>,
        keeping: Option<&str>,
    ) -> Result<PathBuf, Failure> {
        match self {
            Backups::Local { definition, .. } => backup_file_path(
                definition.destination(),
                &definition.backup_id,
                definition.backup_type,
                level,
                keeping,
            )
            .ok_or_else(unknown_type),
            Backups::Remote(_) => self.name(level, keeping).map(PathBuf::from),
        }
    }

    /// A backup as the user is shown it: a path, or an `s3://` URL.
    pub fn shown(&self, level: Option<u32>, keeping: Option<&str>) -> Result<String, Failure> {
        match self {
            Backups::Local { .. } => Ok(self.journal_name(level, keeping)?.display().to_string()),
            Backups::Remote(r) => Ok(r.destination.display_name(&self.name(level, keeping)?)),
        }
    }

    /// Whether the backup (of `level`, with keeping ID `keeping`) exists.
    pub fn exists(&self, level: Option<u32>, keeping: Option<&str>) -> Result<bool, Failure> {
        match self {
            Backups::Local {
                provider,
                definition,
            } => Ok(provider.does_backup_exist(definition, level, keeping)?),
            Backups::Remote(r) => Ok(r.store.exists(&self.name(level, keeping)?)?),
        }
    }

    /// Whether a backup of `from_level` or above exists.
    pub fn any_level_exists(
        &self,
        from_level: u32,
        keeping: Option<&str>,
    ) -> Result<bool, Failure> {
        match self {
            Backups::Local {
                provider,
                definition,
            } => Ok(provider.does_any_backup_level_exist(definition, from_level, keeping)?),
            Backups::Remote(r) => Ok(r.levels(keeping)?.iter().any(|&l| l >= from_level)),
        }
    }

    /// Renames the backup with keeping ID `from` (`None`: the current one) to keeping ID `to`;
    /// a backup already named `to` is an error and stays. `started` is called once that is
    /// checked and before anything changes: what the journal marks for a store, where the
    /// rename is a copy then a delete and a crash between the two leaves both names.
    pub fn keep(
        &self,
        from: Option<&str>,
        to: &str,
        level: Option<u32>,
        started: &mut dyn FnMut() -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        match self {
            Backups::Local {
                provider,
                definition,
            } => {
                started()?;
                Ok(provider.keep_backup(definition, from, to, level)?)
            }
            Backups::Remote(r) => {
                let (source, target) = (self.name(level, from)?, self.name(level, Some(to))?);
                if r.store.exists(&target)? {
                    return Err(Failure::Destination(format!(
                        "{}: backup already exists",
                        r.destination.display_name(&target)
                    )));
                }
                started()?;
                r.store.copy(&source, &target)?;
                Ok(r.store.delete(&source)?)
            }
        }
    }

    /// Removes the (non-incremental) backup with keeping ID `keeping`.
    pub fn remove(&self, keeping: Option<&str>) -> Result<(), Failure> {
        match self {
            Backups::Local {
                provider,
                definition,
            } => Ok(provider.remove_backup(definition, keeping)?),
            Backups::Remote(r) => Ok(r.store.delete(&self.name(None, keeping)?)?),
        }
    }

    /// Removes the backups of `from_level` and above, up to the first missing level. On a
    /// store only the objects go: the snapshots above a level are the provider's, dropped when
    /// it made that level, and a kept chain has none.
    pub fn remove_increments(&self, from_level: u32, keeping: Option<&str>) -> Result<(), Failure> {
        match self {
            Backups::Local {
                provider,
                definition,
            } => Ok(provider.remove_backup_increments(definition, Some(from_level), keeping)?),
            Backups::Remote(r) => {
                // Bounded, as the levels could keep appearing while we look.
                for level in from_level..from_level.saturating_add(10_000) {
                    let name = self.name(Some(level), keeping)?;
                    if !r.store.exists(&name)? {
                        break;
                    }
                    r.store.delete(&name)?;
                }
                Ok(())
            }
        }
    }

    /// The names of the current chain's backups of levels above `level`, which the removal of
    /// obsolete increments removes after a backup of `level` (as a dry run names them).
    pub fn names_above(&self, level: u32) -> Result<Vec<String>, Failure> {
        match self {
            Backups::Local { definition, .. } => {
                let query = Query {
                    destination: definition.destination(),
                    name: &definition.backup_id,
                    backup_type: definition.backup_type,
                    incremental: true,
                    keeping_id: None,
                    snapshot_level: None,
                };
                Ok(chain::files_above(&query, level)?
                    .iter()
                    .map(|p| file_name(p))
                    .collect())
            }
            Backups::Remote(r) => r
                .levels(None)?
                .into_iter()
                .filter(|&l| l > level)
                .map(|l| self.name(Some(l), None))
                .collect(),
        }
    }
}

impl Remote {
    /// The levels with a backup of keeping ID `keeping` in the store, sorted.
    fn levels(&self, keeping: Option<&str>) -> Result<Vec<u32>, Failure> {
        let ext = self.backup_type.extension().ok_or_else(unknown_type)?;
        let mut levels: Vec<u32> = self
            .store
            .list()?
            .iter()
            .filter_map(|o| backup_level_for(o.name.as_bytes(), &self.name, keeping, ext))
            .collect();
        levels.sort_unstable();
        levels.dedup();
        Ok(levels)
    }
}

/// Stores on a moto server, for the tests of keeping in an object store.
#[cfg(test)]
pub(crate) mod on_moto {
    use std::io::{Read, Write};
    use std::time::Duration;

    use aa_abi::BackupType;
    use aa_tests::Moto;

    use super::Backups;
    use crate::app::journal::StoreRecord;
    use crate::destination::{Credentials, Destination, S3Options, Store, MIN_PART_SIZE};

    /// A server with a bucket `bkp`; `None` (the test is skipped) when moto is not installed.
    pub(crate) fn moto() -> Option<Moto> {
        let moto = Moto::start()?;
        moto.create_bucket("bkp");
        Some(moto)
    }

    fn options(moto: &Moto) -> S3Options {
        S3Options {
            endpoint: Some(moto.endpoint()),
            region: Some("us-east-1".into()),
            path_style: Some(true),
            part_size: MIN_PART_SIZE,
            queued_parts: 1,
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(30),
            credentials: Some(Credentials {
                access_key_id: "testing".into(),
                secret_access_key: "testing".into(),
                session_token: None,
            }),
        }
    }

    /// The store `s3://bkp/PREFIX` and what a journal records of it.
    pub(crate) fn store(moto: &Moto, prefix: &str) -> (Store, Destination, StoreRecord) {
        let destination = Destination::parse(&format!("s3://bkp/{prefix}")).unwrap();
        let options = options(moto);
        let store = Store::open(&destination, &options).unwrap();
        (
            store,
            destination.clone(),
            StoreRecord::new(&destination, &options),
        )
    }

    /// The `.tar.gz` backups of archive `home` in `s3://bkp/PREFIX`.
    pub(crate) fn backups(moto: &Moto, prefix: &str) -> Backups<'static> {
        let (store, destination, record) = store(moto, prefix);
        Backups::remote(store, destination, record, "home", BackupType::TarGz)
    }

    /// Uploads `text` as the object `name`, as a backup run would.
    pub(crate) fn put(store: &Store, name: &str, text: &str) {
        let mut upload = store.upload(name).unwrap();
        upload.write_all(text.as_bytes()).unwrap();
        upload.commit().unwrap();
    }

    /// Every object of the store with its content, sorted by name.
    pub(crate) fn contents(store: &Store) -> Vec<(String, String)> {
        store
            .list()
            .unwrap()
            .into_iter()
            .map(|o| {
                let mut text = String::new();
                store
                    .reader(&o.name)
                    .unwrap()
                    .read_to_string(&mut text)
                    .unwrap();
                (o.name, text)
            })
            .collect()
    }

    /// `(name, content)` pairs, for comparing with [`contents`].
    pub(crate) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, c)| (n.to_string(), c.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::on_moto::*;
    use super::*;

    #[test]
    fn a_store_s_backups_are_found_kept_and_removed_by_their_object_names() {
        let Some(moto) = moto() else {
            return;
        };
        let backups = backups(&moto, "host");
        let store = backups.store().unwrap();
        for name in [
            "home.tar.gz",
            "home.1.tar.gz",
            "home.2.tar.gz",
            "homes.1.tar.gz",
        ] {
            put(store, name, name);
        }
        assert_eq!(
            backups.name(Some(1), Some("aa")).unwrap(),
            "home.1.aa.tar.gz"
        );
        assert_eq!(
            backups.shown(Some(2), None).unwrap(),
            "s3://bkp/host/home.2.tar.gz"
        );
        assert_eq!(
            backups.journal_name(None, Some("ab")).unwrap(),
            PathBuf::from("home.ab.tar.gz")
        );
        assert!(backups.exists(None, None).unwrap());
        assert!(backups.exists(Some(2), None).unwrap());
        assert!(!backups.exists(Some(3), None).unwrap());
        assert!(!backups.exists(None, Some("aa")).unwrap());
        assert!(backups.any_level_exists(2, None).unwrap());
        assert!(!backups.any_level_exists(3, None).unwrap());
        assert!(!backups.any_level_exists(0, Some("aa")).unwrap());
        assert_eq!(
            backups.names_above(0).unwrap(),
            ["home.1.tar.gz", "home.2.tar.gz"]
        );

        let mut started = 0;
        backups
            .keep(None, "aa", None, &mut || {
                started += 1;
                Ok(())
            })
            .unwrap();
        backups.keep(None, "aa", Some(1), &mut || Ok(())).unwrap();
        assert_eq!(started, 1);
        assert!(backups.any_level_exists(0, Some("aa")).unwrap());
        assert!(!backups.exists(None, None).unwrap());
        assert_eq!(
            contents(store),
            pairs(&[
                ("home.1.aa.tar.gz", "home.1.tar.gz"),
                ("home.2.tar.gz", "home.2.tar.gz"),
                ("home.aa.tar.gz", "home.tar.gz"),
                ("homes.1.tar.gz", "homes.1.tar.gz"),
            ])
        );

        // A backup at the new name is never replaced, and nothing starts.
        put(store, "home.tar.gz", "new");
        let refused = backups.keep(None, "aa", None, &mut || panic!("started"));
        assert_eq!(
            refused.unwrap_err().to_string(),
            "s3://bkp/host/home.aa.tar.gz: backup already exists"
        );
        assert_eq!(contents(store).len(), 5);

        backups.remove(Some("aa")).unwrap();
        backups.remove_increments(2, None).unwrap();
        backups.remove_increments(1, Some("aa")).unwrap();
        assert_eq!(
            contents(store),
            pairs(&[("home.tar.gz", "new"), ("homes.1.tar.gz", "homes.1.tar.gz")])
        );
    }

    #[test]
    fn an_unreachable_store_is_an_error_naming_it() {
        let Some(moto) = moto() else {
            return;
        };
        let (store, destination, record) = store(&moto, "x");
        drop(moto);
        let backups = Backups::remote(store, destination, record, "home", BackupType::Tar);
        let e = backups.exists(None, None).unwrap_err().to_string();
        assert!(e.contains("s3://bkp/x"), "{e}");
    }
}

//! Choosing the provider for an action beyond making backups (restore, verify, dry run): the
//! archive's own provider when its plugin has the capability and handles the backup type,
//! else the first loaded provider that does. The choice is made from what the loader recorded
//! ([`crate::archiver::ArchiverProviderInfo::capabilities`]), so no other provider is created.

use std::rc::Rc;

use aa_abi::capability::{Capabilities, DRY_RUN_V1, RESTORE_V1, VERIFY_V1};
use aa_abi::host::Provider;
use aa_abi::BackupType;

use super::{App, Failure};
use crate::archiver::ArchiverService;

/// A capability an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    Restore,
    Verify,
    DryRun,
}

impl Capability {
    /// Its name as plugins export it and `--list-providers` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Restore => RESTORE_V1,
            Capability::Verify => VERIFY_V1,
            Capability::DryRun => DRY_RUN_V1,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Capability::Restore => "restore",
            Capability::Verify => "verify",
            Capability::DryRun => "dry-run",
        }
    }

    fn present(self, capabilities: &Capabilities) -> bool {
        match self {
            Capability::Restore => capabilities.can_restore(),
            Capability::Verify => capabilities.can_verify(),
            Capability::DryRun => capabilities.can_dry_run(),
        }
    }
}

/// The provider chosen, and whether it is the archive's own.
pub struct Chosen {
    pub id: String,
    pub provider: Rc<Provider>,
    pub own: bool,
}

impl Chosen {
    /// The info line that says which provider does the work.
    pub fn describe(&self, what: &str, own_id: &str) -> String {
        if self.own {
            format!("{what} with {}.", self.id)
        } else {
            format!(
                "{what} with {} ({own_id}, the archive's provider, cannot).",
                self.id
            )
        }
    }
}

/// The provider to `capability` backups of `backup_type` with, preferring `own` (the
/// archive's provider); when `any` is false only `own` is considered. The error names the type
/// and lists every loaded provider with what it lacks.
pub fn choose(
    app: &App<'_>,
    own: &str,
    backup_type: BackupType,
    capability: Capability,
    any: bool,
) -> Result<Chosen, Failure> {
    let mut providers = app.services.provider_identifications::<ArchiverService>();
    // A stable sort: the archive's provider first, the others in loading order.
    providers.sort_by_key(|(id, _)| !id.eq_ignore_ascii_case(own));
    let mut why_not = Vec::new();
    for (id, info) in providers {
        let is_own = id.eq_ignore_ascii_case(own);
        if !is_own && !any {
            continue;
        }
        if !capability.present(&info.capabilities) {
            why_not.push(format!("{id} lacks {}", capability.name()));
        } else if info.identification.features_for(backup_type).is_none() {
            why_not.push(format!("{id} does not handle {backup_type}"));
        } else {
            match app.services.get_or_create_service::<ArchiverService>(id) {
                Ok(provider) => {
                    return Ok(Chosen {
                        id: id.to_string(),
                        provider,
                        own: is_own,
                    })
                }
                Err(e) => why_not.push(e.to_string()),
            }
        }
    }
    let which = if any {
        "no loaded provider can"
    } else {
        "the archive's provider cannot"
    };
    let loaded = if why_not.is_empty() {
        format!("provider {own} is not loaded")
    } else {
        why_not.join("; ")
    };
    Err(Failure::Provider(format!(
        "{which} {} {backup_type} backups ({loaded})",
        capability.verb()
    )))
}

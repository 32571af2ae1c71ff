//! Hard links selected by `only` whose file is not: a tar hard link names an earlier member of
//! the same archive, whose content the restore skipped because it lies outside the selection.
//! Such links are noted while the level is read; afterwards the level is read once more (only
//! then, and only up to the last file needed), the file's content is written at the first
//! link's name and the other links are made to it.

use std::collections::HashMap;
use std::fs::File;

use aa_abi::capability::ChainArchive;
use aa_abi::ProviderError;
use aa_provider_kit::beneath::components;
use aa_provider_kit::fatal;

use super::chain::Restorer;
use super::decompress::Stream;
use super::reader::{Kind, Member, Reader};

impl Restorer<'_> {
    /// Whether `m`, a selected hard link, names a file this level did not select; it is then
    /// noted, for [`Restorer::links_into_selection`].
    pub(super) fn link_outside_selection(&mut self, m: &Member, rel: &[u8]) -> bool {
        // A name that is not clean is refused when the link is extracted.
        let Ok(parts) = components(&m.link) else {
            return false;
        };
        let target = parts.join(&b'/');
        if !self.skipped_files.contains(&target) {
            return false;
        }
        self.pending_links.push((rel.to_vec(), target));
        true
    }

    /// Makes the noted links from a second reading of `archive`.
    pub(super) fn links_into_selection(
        &mut self,
        archive: &ChainArchive,
    ) -> Result<(), ProviderError> {
        self.skipped_files.clear();
        if self.pending_links.is_empty() {
            return Ok(());
        }
        let mut wanted: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
        for (link, target) in std::mem::take(&mut self.pending_links) {
            wanted.entry(target).or_default().push(link);
        }
        let file = File::open(archive.path()).map_err(|e| fatal(archive.path(), &e))?;
        let mut stream =
            Stream::spawn(file, archive.backup_type).map_err(|e| fatal(archive.path(), &e))?;
        let mut reader = Reader::new(&mut stream);
        while !wanted.is_empty() {
            let Some(member) = reader.next().map_err(|e| fatal(archive.path(), &e))? else {
                break;
            };
            if member.kind != Kind::File {
                continue;
            }
            let Ok(parts) = components(&member.name) else {
                continue;
            };
            let Some(links) = wanted.remove(&parts.join(&b'/')) else {
                continue;
            };
            let Some((first, others)) = links.split_first() else {
                continue;
            };
            let result = match self.extract(&mut reader, &member, first) {
                Ok(size) => {
                    self.count_bytes(size);
                    self.item(first, size);
                    Ok(())
                }
                Err(e) => Err(e),
            };
            self.settle(archive, first, result)?;
            for other in others {
                let mut link = member.clone();
                link.kind = Kind::HardLink;
                link.link = first.clone();
                let result = match self.extract(&mut reader, &link, other) {
                    Ok(_) => {
                        self.item(other, 0);
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                self.settle(archive, other, result)?;
            }
        }
        for (target, links) in wanted {
            for link in links {
                let message = format!(
                    "hard link to {:?}: the file is not in the archive",
                    String::from_utf8_lossy(&target)
                );
                self.problem(&link, &message);
            }
        }
        Ok(())
    }
}

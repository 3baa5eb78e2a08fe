//! What a publisher offers, and how people find it without an index server.
//!
//! - A **catalog** lists a publisher's names with their latest revisions, in signed
//!   pages stored in the DHT under keys derived from (publisher, page number), so
//!   `ls-remote PUBLISHER` needs no names in advance.
//! - A **directory** is a node's signed list of the publishers whose catalogs it keeps
//!   and re-announces.
//! - **Search words**: each word of a published name or tag is announced as a DHT
//!   provider key derived from the normalised word, pointing at nodes that keep
//!   catalogs using it. A searcher follows word → nodes → directories → catalogs, and
//!   believes only what the catalogs' signatures prove.

use serde::{Deserialize, Serialize};

use crate::labels::{validate_labels, validate_tag, ArtifactKind};
use crate::limits::{
    MAX_CATALOG_ENTRIES_PER_PAGE, MAX_CATALOG_PAGES, MAX_CATALOG_PAGE_BYTES, MAX_DIRECTORY_BYTES,
    MAX_DIRECTORY_PUBLISHERS, MAX_TAGS,
};
use crate::publisher_key::PublisherKey;
use crate::signed::{invalid, RecordBody, RecordError, Signed};
use crate::ContentId;

/// The BLAKE3 key-derivation context of [`catalog_key`].
pub const CATALOG_KEY_CONTEXT: &str = "seedbank 2026-11-27 catalog page key v1";
/// The BLAKE3 key-derivation context of [`directory_key`].
pub const DIRECTORY_KEY_CONTEXT: &str = "seedbank 2026-11-27 directory key v1";
/// The BLAKE3 key-derivation context of [`word_key`].
pub const WORD_KEY_CONTEXT: &str = "seedbank 2026-11-27 search word key v1";
/// Shortest word indexed: single letters match everything.
pub const MIN_WORD_CHARS: usize = 2;
/// Longest word indexed.
pub const MAX_WORD_CHARS: usize = 32;
/// Most words one name and its tags are indexed under.
pub const MAX_WORDS_PER_ENTRY: usize = 24;

/// One name in a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// The name.
    pub name: String,
    /// Its latest revision label.
    pub revision: String,
    /// The latest revision's root.
    pub root: ContentId,
    /// Model or dataset.
    pub kind: ArtifactKind,
    /// Total bytes of its files.
    pub size: u64,
    /// SPDX licence.
    pub licence: Option<String>,
    /// Words describing it.
    pub tags: Vec<String>,
}

/// One page of a publisher's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogPage {
    /// This page's number, from 0.
    pub page: u16,
    /// How many pages the catalog has.
    pub pages: u16,
    /// Grows with every change; the highest wins.
    pub sequence: u64,
    /// Names on this page, in name order.
    pub entries: Vec<CatalogEntry>,
}

/// A catalog page with its publisher's signature.
pub type SignedCatalogPage = Signed<CatalogPage>;

/// The DHT key of page `page` of `publisher`'s catalog.
pub fn catalog_key(publisher: &PublisherKey, page: u16) -> [u8; 32] {
    let mut material = publisher.as_bytes().to_vec();
    material.extend_from_slice(&page.to_be_bytes());
    blake3::derive_key(CATALOG_KEY_CONTEXT, &material)
}

impl RecordBody for CatalogPage {
    const KIND: u8 = 3;
    const WHAT: &'static str = "catalog page";
    const MAX_BYTES: usize = MAX_CATALOG_PAGE_BYTES;

    fn validate(&self, _signer: &PublisherKey) -> Result<(), RecordError> {
        if self.pages == 0 || usize::from(self.pages) > MAX_CATALOG_PAGES || self.page >= self.pages
        {
            return Err(invalid(
                Self::WHAT,
                format!(
                    "page {} of {} (at most {MAX_CATALOG_PAGES} pages)",
                    self.page, self.pages
                ),
            ));
        }
        if self.entries.len() > MAX_CATALOG_ENTRIES_PER_PAGE {
            return Err(invalid(
                Self::WHAT,
                format!("{} entries on one page", self.entries.len()),
            ));
        }
        for entry in &self.entries {
            validate_labels(&entry.name, &entry.revision, entry.licence.as_deref())
                .map_err(|e| invalid(Self::WHAT, e))?;
            if entry.tags.len() > MAX_TAGS {
                return Err(invalid(Self::WHAT, "too many tags"));
            }
            for tag in &entry.tags {
                validate_tag(tag).map_err(|e| invalid(Self::WHAT, e))?;
            }
        }
        for pair in self.entries.windows(2) {
            if pair[0].name >= pair[1].name {
                return Err(invalid(
                    Self::WHAT,
                    format!("{:?} is duplicated or out of order", pair[1].name),
                ));
            }
        }
        Ok(())
    }
}

/// Splits `entries` (sorted by name, unique) into signed-size pages numbered from 0.
/// Fails if they need more than [`MAX_CATALOG_PAGES`] pages.
pub fn paginate(
    entries: Vec<CatalogEntry>,
    sequence: u64,
) -> Result<Vec<CatalogPage>, RecordError> {
    // Room for the envelope: header, signer, sequence and page numbers, signature.
    const ENVELOPE: usize = 160;
    let mut pages: Vec<Vec<CatalogEntry>> = vec![Vec::new()];
    let mut page_bytes = 0;
    for entry in entries {
        let entry_bytes = postcard::to_stdvec(&entry)
            .map_err(|e| invalid(CatalogPage::WHAT, e))?
            .len();
        let current = pages.last().map_or(0, Vec::len);
        if current > 0
            && (current == MAX_CATALOG_ENTRIES_PER_PAGE
                || page_bytes + entry_bytes + ENVELOPE > MAX_CATALOG_PAGE_BYTES)
        {
            pages.push(Vec::new());
            page_bytes = 0;
        }
        page_bytes += entry_bytes;
        if let Some(page) = pages.last_mut() {
            page.push(entry);
        }
    }
    if pages.len() > MAX_CATALOG_PAGES {
        return Err(invalid(
            CatalogPage::WHAT,
            format!(
                "the catalog needs {} pages, more than the limit of {MAX_CATALOG_PAGES}",
                pages.len()
            ),
        ));
    }
    let count = pages.len() as u16;
    Ok(pages
        .into_iter()
        .enumerate()
        .map(|(page, entries)| CatalogPage {
            page: page as u16,
            pages: count,
            sequence,
            entries,
        })
        .collect())
}

/// A node's list of the publishers whose catalogs it keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// Grows with every change; the highest wins.
    pub sequence: u64,
    /// The publishers, sorted and unique.
    pub publishers: Vec<PublisherKey>,
}

/// A directory with its node's signature.
pub type SignedDirectory = Signed<Directory>;

/// The DHT key of the directory of the node whose key is `node`.
pub fn directory_key(node: &PublisherKey) -> [u8; 32] {
    blake3::derive_key(DIRECTORY_KEY_CONTEXT, node.as_bytes())
}

impl RecordBody for Directory {
    const KIND: u8 = 4;
    const WHAT: &'static str = "directory";
    const MAX_BYTES: usize = MAX_DIRECTORY_BYTES;

    fn validate(&self, _signer: &PublisherKey) -> Result<(), RecordError> {
        if self.publishers.len() > MAX_DIRECTORY_PUBLISHERS {
            return Err(invalid(
                Self::WHAT,
                format!("{} publishers", self.publishers.len()),
            ));
        }
        if self.publishers.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(invalid(Self::WHAT, "publishers are duplicated or unsorted"));
        }
        Ok(())
    }
}

/// The DHT provider key of a search word (already normalised).
pub fn word_key(word: &str) -> [u8; 32] {
    blake3::derive_key(WORD_KEY_CONTEXT, word.as_bytes())
}

/// The normalised words of `text`: split at anything but letters and digits,
/// lowercased, [`MIN_WORD_CHARS`]..=[`MAX_WORD_CHARS`] long.
pub fn words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| (MIN_WORD_CHARS..=MAX_WORD_CHARS).contains(&w.len()))
        .map(str::to_ascii_lowercase)
        .collect();
    words.sort();
    words.dedup();
    words
}

/// The words an entry is found by: those of its name and of its tags, bounded.
pub fn entry_words(name: &str, tags: &[String]) -> Vec<String> {
    let mut all = words(name);
    for tag in tags {
        all.extend(words(tag));
    }
    all.sort();
    all.dedup();
    all.truncate(MAX_WORDS_PER_ENTRY);
    all
}

impl CatalogEntry {
    /// True if every one of `query` (normalised words) is a word of this entry, or a
    /// prefix of one.
    pub fn matches(&self, query: &[String]) -> bool {
        let own = entry_words(&self.name, &self.tags);
        query
            .iter()
            .all(|q| own.iter().any(|w| w.starts_with(q.as_str())))
    }
}

/// Which record a DHT value is, checked against the key it is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtRecord {
    /// A name record.
    Name(Box<crate::name_record::SignedNameRecord>),
    /// A catalog page.
    Catalog(SignedCatalogPage),
    /// A node's directory.
    Directory(SignedDirectory),
}

impl DhtRecord {
    /// Decodes and checks untrusted DHT bytes stored under `key`: size, type, signature,
    /// rules, and that `key` is the one derived from the record's own contents.
    pub fn check(key: &[u8], bytes: &[u8]) -> Result<Self, RecordError> {
        use crate::name_record::{check_name_key, NameRecord};
        match bytes.get(1) {
            Some(&NameRecord::KIND) => {
                let record = crate::name_record::SignedNameRecord::decode(bytes)?;
                check_name_key(key, &record)?;
                Ok(Self::Name(Box::new(record)))
            }
            Some(&CatalogPage::KIND) => {
                let record = SignedCatalogPage::decode(bytes)?;
                if key != catalog_key(record.signer(), record.body().page) {
                    return Err(RecordError::WrongKey(CatalogPage::WHAT));
                }
                Ok(Self::Catalog(record))
            }
            Some(&Directory::KIND) => {
                let record = SignedDirectory::decode(bytes)?;
                if key != directory_key(record.signer()) {
                    return Err(RecordError::WrongKey(Directory::WHAT));
                }
                Ok(Self::Directory(record))
            }
            Some(&other) => Err(RecordError::WrongKind {
                expected: "name record, catalog page or directory",
                found: other,
            }),
            None => Err(RecordError::Truncated("DHT record")),
        }
    }

    /// Its sequence number: of two valid records under one key, the higher wins.
    pub fn sequence(&self) -> u64 {
        match self {
            Self::Name(r) => r.body().sequence,
            Self::Catalog(r) => r.body().sequence,
            Self::Directory(r) => r.body().sequence,
        }
    }

    /// The encoded bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Name(r) => r.encode(),
            Self::Catalog(r) => r.encode(),
            Self::Directory(r) => r.encode(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publisher_key::PublisherSecret;
    use crate::BlobHash;

    fn entry(name: &str) -> CatalogEntry {
        CatalogEntry {
            name: name.into(),
            revision: "v1".into(),
            root: ContentId(BlobHash([1; 32])),
            kind: ArtifactKind::Model,
            size: 10,
            licence: Some("MIT".into()),
            tags: vec!["text-generation".into()],
        }
    }

    #[test]
    fn words_are_normalised_and_matched_by_prefix() {
        assert_eq!(words("Toy-Model_v2.1"), vec!["model", "toy", "v2"]);
        let e = entry("toy-llama");
        assert!(e.matches(&words("toy")));
        assert!(e.matches(&words("LLAMA toy")));
        assert!(e.matches(&words("generation")));
        assert!(!e.matches(&words("toy mistral")));
    }

    #[test]
    fn a_large_catalog_is_paged_and_every_page_signs_within_its_limit() {
        let secret = PublisherSecret::from_seed([9; 32]);
        let entries: Vec<_> = (0..500).map(|i| entry(&format!("model-{i:04}"))).collect();
        let pages = paginate(entries, 7).unwrap();
        assert!(pages.len() > 1);
        let total: usize = pages.iter().map(|p| p.entries.len()).sum();
        assert_eq!(total, 500);
        for page in pages {
            let signed = Signed::sign(page.clone(), &secret).unwrap();
            let key = catalog_key(&secret.public(), page.page);
            assert!(matches!(
                DhtRecord::check(&key, &signed.encode()),
                Ok(DhtRecord::Catalog(_))
            ));
            let wrong = catalog_key(&secret.public(), page.page + 1);
            assert!(DhtRecord::check(&wrong, &signed.encode()).is_err());
        }
    }

    #[test]
    fn a_catalog_too_large_for_its_page_limit_is_refused() {
        let entries: Vec<_> = (0..MAX_CATALOG_ENTRIES_PER_PAGE * MAX_CATALOG_PAGES + 1)
            .map(|i| entry(&format!("m{i:06}")))
            .collect();
        assert!(paginate(entries, 1).is_err());
    }

    #[test]
    fn directories_are_checked_against_their_node_key() {
        let node = PublisherSecret::from_seed([4; 32]);
        let other = PublisherSecret::from_seed([5; 32]);
        let signed = Signed::sign(
            Directory {
                sequence: 1,
                publishers: vec![other.public()],
            },
            &node,
        )
        .unwrap();
        assert!(DhtRecord::check(&directory_key(&node.public()), &signed.encode()).is_ok());
        assert!(DhtRecord::check(&directory_key(&other.public()), &signed.encode()).is_err());
    }
}

//! The label store of tracehound: who is behind an address.
//!
//! A [`LabelStore`] is one SQLite file (WAL mode, migrations via `PRAGMA user_version`) holding
//! - **tags**: claims "address/cluster/transaction X on chain C is <label> (<category>) according to <source>",
//!   unique per (kind, chain, subject, label, source) so importing a file twice changes nothing;
//! - **actors**: the people, groups and services behind addresses (GraphSense ActorPack, OFAC SDN entries);
//! - **categories**: a taxonomy seeded with GraphSense concept ids ([`CATEGORIES`]);
//! - an **audit log**: one row per import, per hand-added tag and per API key created or revoked;
//! - **API keys** of `tracehound serve`: name, role and the SHA-256 of the key (never the key).
//!
//! Importers read OFAC's legacy `sdn.csv`, `sdn_advanced.xml` and per-asset address lists, GraphSense
//! TagPacks and ActorPacks, and CSV label lists (Forta/Etherscan, incident attacker lists). A bad row is
//! reported with its file and line and the rest of the file is imported; a file that cannot be read at all is
//! an error and nothing of it is stored (each file is one transaction). [`LabelStore::import_defaults`] loads
//! a bundled, permissively licensed set (`data/labels/`) embedded in the binary.
//!
//! ```no_run
//! use tracehound_labels::LabelStore;
//! let mut store = LabelStore::open(std::path::Path::new("data/labels.sqlite"))?;
//! store.import_defaults()?;
//! for tag in store.tags_for("ethereum", &["0x098B716B8Aaf21512996dC57EB0615e2383E2f96".to_string()])? {
//!     println!("{} {} ({}, {})", tag.subject, tag.label, tag.category, tag.source);
//! }
//! # Ok::<(), tracehound_labels::Error>(())
//! ```

#![warn(missing_docs)]

pub mod address;
pub mod defaults;
mod import;
pub mod model;
mod store;
pub mod taxonomy;

pub use address::{chain_for_currency, chain_name, check_address, normalize_address, KNOWN_CHAINS};
pub use defaults::{BundledFile, BundledKind, BUNDLED_FILES, SUSPECTED_ONLY_INCIDENTS};
pub use model::{Actor, ActorDetails, ApiKey, AuditEntry, CsvImport, ImportReport, NewTag, RowError, SearchResults, StoreCounts, SubjectKind, Tag};
pub use store::LabelStore;
pub use taxonomy::{canonical_category, category_known, confidence_level, CATEGORIES, CONFIDENCE_LEVELS};

/// Roles an API key can have, from the least to the most allowed.
pub const API_ROLES: [&str; 3] = ["viewer", "analyst", "admin"];

/// Errors of the label store. Each names the file (and line, where there is one) it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read (or the store's directory does not exist).
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be parsed at all; nothing of it was stored.
    #[error("{file}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        file: String,
        /// 1-based line, where known.
        line: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// SQLite failed on the store's database file.
    #[error("{file}: database error: {source}")]
    Database {
        /// The database file.
        file: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer tracehound.
    #[error("{file}: label store schema version {found} is newer than this tracehound supports ({supported})")]
    SchemaTooNew {
        /// The database file.
        file: String,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A tag given to [`LabelStore::add_tag`] is not valid.
    #[error("invalid tag: {0}")]
    InvalidTag(String),
    /// An actor given to [`LabelStore::upsert_actor`] is not valid.
    #[error("invalid actor: {0}")]
    InvalidActor(String),
    /// An API key given to [`LabelStore::create_api_key`] is not valid.
    #[error("invalid API key: {0}")]
    InvalidApiKey(String),
    /// An actor name matches several actors.
    #[error("actor {query:?} is ambiguous; it matches {}", candidates.join(", "))]
    AmbiguousActor {
        /// The name that was asked for.
        query: String,
        /// Up to 10 matching actor ids.
        candidates: Vec<String>,
    },
}

/// Result of the label store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The records of the label store and the reports its operations return.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What a tag is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// An address (normalized with [`crate::normalize_address`]).
    #[default]
    Address,
    /// A cluster id of tracehound's clustering.
    Cluster,
    /// A transaction hash.
    Transaction,
}

impl SubjectKind {
    /// Every kind, in a stable order.
    pub const ALL: [SubjectKind; 3] = [SubjectKind::Address, SubjectKind::Cluster, SubjectKind::Transaction];

    /// The name stored in the `subject_kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Address => "address",
            SubjectKind::Cluster => "cluster",
            SubjectKind::Transaction => "transaction",
        }
    }

    /// Parses a stored (or typed) kind name, case-insensitively; `tx` is accepted for `transaction`.
    pub fn from_name(name: &str) -> Option<SubjectKind> {
        match name.trim().to_ascii_lowercase().as_str() {
            "address" => Some(SubjectKind::Address),
            "cluster" => Some(SubjectKind::Cluster),
            "transaction" | "tx" => Some(SubjectKind::Transaction),
            _ => None,
        }
    }
}

impl fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tag as stored: one claim "this subject is <label> (<category>) according to <source>".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tag {
    /// Row id.
    pub id: i64,
    /// What the tag is attached to.
    pub subject_kind: SubjectKind,
    /// Chain name (`bitcoin`, `ethereum`, …).
    pub chain: String,
    /// Normalized address, cluster id or transaction hash.
    pub subject: String,
    /// Human-readable label (`LAZARUS GROUP`, `Binance 14`).
    pub label: String,
    /// Category id (see [`crate::CATEGORIES`]; unknown ids are kept as given).
    pub category: String,
    /// Actor id this subject belongs to, if known.
    pub actor: Option<String>,
    /// Where the claim comes from (`OFAC SDN (DPRK3)`, a URL, …).
    pub source: String,
    /// GraphSense confidence id (`authority_data`, `web_crawl`, …).
    pub confidence: Option<String>,
    /// Confidence level 0–100 of [`Tag::confidence`] on GraphSense's scale.
    pub confidence_level: Option<i64>,
    /// Whether the tag stands for the whole cluster of the address (GraphSense `is_cluster_definer`).
    pub is_cluster_definer: bool,
    /// GraphSense abuse id as given by the source (`sanction`, `service_hack`, …).
    pub abuse: Option<String>,
    /// File name the tag was imported from (`None` for tags added by hand).
    pub origin_file: Option<String>,
    /// When the tag was stored (UTC, RFC 3339).
    pub created_at: String,
    /// Who stored it (pack creator, `tracehound-import`, or the user given to `add_tag`).
    pub author: Option<String>,
}

/// A tag to add with [`crate::LabelStore::add_tag`]; importers build the same record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NewTag {
    /// What the tag is attached to.
    pub subject_kind: SubjectKind,
    /// Chain name; currency codes and spellings like `Bitcoin` are resolved with [`crate::chain_name`].
    pub chain: String,
    /// Address (normalized on insert), cluster id or transaction hash.
    pub subject: String,
    /// Human-readable label.
    pub label: String,
    /// Category id; GraphSense ids are mapped (see [`crate::canonical_category`]); empty means `unknown`.
    pub category: String,
    /// Actor id, if known.
    pub actor: Option<String>,
    /// Where the claim comes from.
    pub source: String,
    /// GraphSense confidence id; its level is looked up on insert.
    pub confidence: Option<String>,
    /// Who adds the tag.
    pub author: Option<String>,
    /// GraphSense abuse id, if any.
    pub abuse: Option<String>,
    /// Whether the tag stands for the whole cluster.
    pub is_cluster_definer: bool,
    /// File the tag comes from, if any.
    pub origin_file: Option<String>,
}

/// An actor: a person, group, organization or service that controls addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// Stable id (`lazarusgroup`, `binance`, `ofac-27307`).
    pub id: String,
    /// Display name.
    pub label: String,
    /// ISO-3166 alpha-2 country of the first jurisdiction, if any.
    pub country: Option<String>,
    /// ISO-3166 alpha-2 jurisdictions.
    pub jurisdictions: Vec<String>,
    /// Other names.
    pub aliases: Vec<String>,
    /// Category ids as the source gives them (GraphSense concepts such as `sanction`, `service_hack`).
    pub categories: Vec<String>,
    /// Web address of the actor or of a page about it.
    pub uri: Option<String>,
    /// Where the actor record comes from.
    pub sources: Vec<String>,
}

/// An actor with a summary of its tags, as returned by [`crate::LabelStore::actor`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActorDetails {
    /// The actor record.
    pub actor: Actor,
    /// When the actor was stored.
    pub created_at: String,
    /// Number of tags that name this actor.
    pub tag_count: u64,
    /// Tag count per chain.
    pub tags_by_chain: BTreeMap<String, u64>,
    /// Tag count per category.
    pub tags_by_category: BTreeMap<String, u64>,
    /// Up to 20 of the actor's tags (the most confident first).
    pub sample_tags: Vec<Tag>,
}

/// Options of a CSV label-list import.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CsvImport {
    /// Name of the list (stored as tag source; a row's own `source`/`data_source` is added in parentheses).
    pub source: String,
    /// Category for rows without a category column (else inferred from `data_source`, else `unknown`).
    pub category: Option<String>,
    /// Chain for files without a chain column; default `ethereum`.
    pub chain: Option<String>,
    /// Actor for every row that has no `actor` column value; never given to rows whose `role` is `victim…`, and given
    /// to `sanctioned` rows only when their label names the actor (an incident list's other SDN entries are not it).
    pub actor: Option<String>,
    /// GraphSense confidence id for rows without a confidence column.
    pub confidence: Option<String>,
}

/// A row of an input file that could not be imported; the rest of the file still was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// The file.
    pub file: String,
    /// 1-based line where the row starts.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// The outcome of importing one file.
///
/// `inserted` and `unchanged` count the file's records: tags for tag files, actors for an actor pack.
/// `actors_inserted` counts new actor rows (for an actor pack it equals `inserted`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportReport {
    /// The file as given.
    pub file: String,
    /// Detected format (`ofac_sdn_csv`, `ofac_sdn_advanced_xml`, `ofac_address_list`, `graphsense_tagpack`,
    /// `graphsense_actorpack`, `csv`).
    pub format: String,
    /// Records newly stored.
    pub inserted: u64,
    /// Records that were already stored (or repeated within the file).
    pub unchanged: u64,
    /// Actor rows newly stored.
    pub actors_inserted: u64,
    /// Rows that were skipped, with the reason.
    pub errors: Vec<RowError>,
    /// Nothing of the file was stored because it had bad rows and good rows were not to be kept
    /// ([`crate::LabelStore::set_keep_good_rows`]).
    pub rejected: bool,
}

/// Matches of [`crate::LabelStore::search`]: actors first, then tags.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct SearchResults {
    /// Actors whose id, label or an alias contains the query.
    pub actors: Vec<Actor>,
    /// Tags whose label, subject or actor contains the query.
    pub tags: Vec<Tag>,
}

/// Sizes of the store.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct StoreCounts {
    /// Number of tags.
    pub tags: u64,
    /// Number of actors.
    pub actors: u64,
    /// Tags per source.
    pub by_source: BTreeMap<String, u64>,
    /// Tags per category.
    pub by_category: BTreeMap<String, u64>,
    /// Tags per chain.
    pub by_chain: BTreeMap<String, u64>,
}

/// An API key of `tracehound serve` as stored: never the key, only who holds it and its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Key id (what `keys revoke` takes).
    pub id: i64,
    /// Who or what holds the key.
    pub name: String,
    /// `viewer`, `analyst` or `admin`.
    pub role: String,
    /// When it was created (UTC, RFC 3339).
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// One row of the audit log: who did what, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Row id, increasing.
    pub id: i64,
    /// When (UTC, RFC 3339).
    pub at: String,
    /// Who: an importer, a user, or an API key (`api key 3 (alice)`).
    pub author: Option<String>,
    /// What: `import`, `add_tag`, `upsert_actor`, `create_api_key`, `revoke_api_key`.
    pub action: String,
    /// The details of the action.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

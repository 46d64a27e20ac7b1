//! What a screening answers: the risk of an address, an output, a transaction or a transfer,
//! with the exposures, tags and rules behind it.

use crate::risk::{Flow, Severity};
use serde::{Deserialize, Serialize};

/// What was screened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// An address.
    Address,
    /// One output `txid:vout` (UTXO chains): the funds of that output.
    Output,
    /// A transaction: the funds it moved.
    Transaction,
    /// A transfer (a deposit): a transaction and the receiving address, `tx/address`.
    Transfer,
}

/// Whether the data answers for the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The subject is in the data and the result is based on it.
    Screened,
    /// The subject never appears in the ingested data nor in the labels: no data, which is not
    /// "low risk".
    NoData,
}

/// A tag on the subject or its entity, with its source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TagEvidence {
    /// Address the tag is on (the subject, or another member of its cluster).
    pub address: String,
    /// Label.
    pub label: String,
    /// Category of the label taxonomy.
    pub category: String,
    /// Source of the tag.
    pub source: String,
    /// Confidence 0–100.
    pub confidence: u32,
    /// Actor id, when attributed.
    pub actor: Option<String>,
}

/// The entity (cluster) an address belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EntityInfo {
    /// Cluster id (the smallest address id of the cluster).
    pub cluster_id: u32,
    /// Addresses in the cluster.
    pub size: u64,
    /// Its label, when a member is tagged.
    pub label: Option<String>,
}

/// Exposure to one risk category in one direction. Amounts are base units as decimal strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExposureLine {
    /// Risk category.
    pub category: String,
    /// Received from, or sent to.
    pub flow: Flow,
    /// Asset (`BTC`, `ETH`, a token contract).
    pub asset: String,
    /// Value exchanged directly (one transaction) with addresses of the category.
    pub direct: String,
    /// Value that traces (haircut) to the category through one or more intermediaries.
    pub indirect: String,
    /// `(direct + indirect)` as a share of all value of that flow, 0–1.
    pub share: f64,
}

/// A contributing source of an indirect exposure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceEvidence {
    /// Address of the source (or sink).
    pub address: String,
    /// Its label.
    pub label: String,
    /// Base units attributed to it, decimal string.
    pub amount: String,
}

/// One rule of the policy that fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    /// Rule name from the policy.
    pub rule: String,
    /// Severity it sets.
    pub severity: Severity,
    /// What was found, in words.
    pub message: String,
    /// Tags behind it.
    pub tags: Vec<TagEvidence>,
    /// Top contributing sources (indirect exposure), largest first.
    pub sources: Vec<SourceEvidence>,
}

/// The answer for one screened subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScreenResult {
    /// Chain.
    pub chain: String,
    /// The subject as given.
    pub subject: String,
    /// What it is.
    pub kind: SubjectKind,
    /// Whether there is data.
    pub status: Status,
    /// Risk level (`none` when screened and no rule fired; absent with no data).
    pub risk: Option<Severity>,
    /// Score 0–10 (absent with no data).
    pub score: Option<f64>,
    /// Value the subject covers (received by an address, the output's or transfer's value), base
    /// units as a decimal string.
    pub value: String,
    /// The entity of the address.
    pub entity: Option<EntityInfo>,
    /// Tags on the address and its entity.
    pub tags: Vec<TagEvidence>,
    /// Actor behind it, if attributed.
    pub actor: Option<String>,
    /// Country of the actor.
    pub country: Option<String>,
    /// Exposures (only categories with a non-zero amount).
    pub exposures: Vec<ExposureLine>,
    /// The rules that fired, most severe first.
    pub reasons: Vec<Reason>,
    /// What limited the answer (a trace of the funds cut short by its limits), in words.
    pub notes: Vec<String>,
}

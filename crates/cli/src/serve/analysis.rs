//! The documents of traces, bulk screening, incidents, statistics, labels and the audit log, and
//! the requests that ask for them.

use super::problem::ApiError;
use super::state::AppState;
use super::views::PageParams;
use crate::trace::{SeedSide, TraceRequest};
use serde::{Deserialize, Serialize};
use tracehound_labels::{Actor, ApiKey, AuditEntry, SubjectKind, Tag};
use tracehound_report::Incident;
use tracehound_screen::ScreenResult;
use utoipa::{IntoParams, ToSchema};

/// Most hops a trace may follow here.
pub const MAX_HOPS: u32 = 50;
/// Most outputs or address pools a trace may visit here.
pub const MAX_NODES: u64 = 100_000;
/// Most seeds of one trace.
pub const MAX_SEEDS: usize = 1000;
/// Most subjects of one bulk screening.
pub const MAX_SCREEN_ITEMS: usize = 10_000;

/// Taint model of a trace.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelName {
    /// Every output carries the tainted share of the inputs (proportional).
    #[default]
    Haircut,
    /// First in, first out.
    Fifo,
    /// Every output of a tainted transaction is tainted in full.
    Poison,
}

/// Which way a trace follows the funds.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DirectionName {
    /// Where the funds went.
    #[default]
    Forward,
    /// Where they came from.
    Backward,
}

/// Which side of an address seed is traced.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeedName {
    /// What the address received in the window (an attacker's loot).
    #[default]
    Received,
    /// What it sent in the window (a drained victim's loss; forward only).
    Sent,
}

/// What happens to the tainted part of fees.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeesName {
    /// Accounted as fees.
    #[default]
    Drop,
    /// Followed to the block's miner or fee recipient.
    Follow,
}

/// A trace to run: `tracehound trace`'s options, each limit bounded by the server.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceBody {
    /// Chain as stored.
    pub chain: String,
    /// Seeds: addresses, outputs `txid:vout`, transaction hashes (1 to 1000).
    #[schema(min_items = 1, max_items = 1000)]
    pub from: Vec<String>,
    /// Taint model.
    #[serde(default)]
    pub model: ModelName,
    /// Direction.
    #[serde(default)]
    pub direction: DirectionName,
    /// Side of address seeds.
    #[serde(default)]
    pub seed: SeedName,
    /// Transactions (UTXO) or transfers (accounts) to follow from the seeds, 1 to 50 (default 10).
    #[schema(minimum = 1, maximum = 50)]
    pub max_hops: Option<u32>,
    /// Outputs or address pools to visit at most, 1 to 100,000 (default 100,000).
    #[schema(minimum = 1, maximum = 100000)]
    pub max_nodes: Option<u64>,
    /// Taint below this many base units is not followed (decimal string; default 0).
    #[schema(pattern = "^[0-9]{1,38}$")]
    pub min_amount: Option<String>,
    /// Start: a date `YYYY-MM-DD` (address seeds count what arrived since then).
    pub since: Option<String>,
    /// The chain as of this block height or date: later spends count as still held.
    pub until: Option<String>,
    /// Label categories where the trace stops (default exchange, mixing_service, bridge, coinjoin; empty: nowhere).
    pub stop_at: Option<Vec<String>>,
    /// Tainted fees.
    #[serde(default)]
    pub fees: FeesName,
}

impl TraceBody {
    /// The CLI's trace request, checked; 400 with what is wrong.
    pub fn request(self) -> Result<TraceRequest, ApiError> {
        if self.from.is_empty() || self.from.len() > MAX_SEEDS {
            return Err(ApiError::bad_request(format!("from: give 1 to {MAX_SEEDS} seeds (got {})", self.from.len())));
        }
        if let Some(s) = self.from.iter().find(|s| s.trim().is_empty() || s.len() > 200) {
            return Err(ApiError::bad_request(format!("from: {s:?} is not an address, an output txid:vout or a transaction hash")));
        }
        let max_hops = self.max_hops.unwrap_or(10);
        if !(1..=MAX_HOPS).contains(&max_hops) {
            return Err(ApiError::bad_request(format!("max_hops {max_hops}: give 1 to {MAX_HOPS}")));
        }
        let max_nodes = self.max_nodes.unwrap_or(MAX_NODES);
        if !(1..=MAX_NODES).contains(&max_nodes) {
            return Err(ApiError::bad_request(format!("max_nodes {max_nodes}: give 1 to {MAX_NODES}")));
        }
        let min_amount = match &self.min_amount {
            Some(m) => m.parse::<u128>().map_err(|_| ApiError::bad_request(format!("min_amount {m:?}: a whole number of base units, as a string")))?,
            None => 0,
        };
        let stop_at = match &self.stop_at {
            Some(list) if list.is_empty() => "none".to_string(),
            Some(list) => list.join(","),
            None => crate::trace::DEFAULT_STOP_AT.to_string(),
        };
        let model = match self.model {
            ModelName::Haircut => "haircut",
            ModelName::Fifo => "fifo",
            ModelName::Poison => "poison",
        };
        let direction = match self.direction {
            DirectionName::Forward => "forward",
            DirectionName::Backward => "backward",
        };
        let fees = match self.fees {
            FeesName::Drop => "drop",
            FeesName::Follow => "follow",
        };
        let mut req =
            crate::trace_request(self.chain, self.from, model, direction, max_hops, min_amount, self.since, self.until, max_nodes as usize, &stop_at, fees)
                .map_err(ApiError::from_input)?;
        req.seed_side = match self.seed {
            SeedName::Received => SeedSide::Received,
            SeedName::Sent => SeedSide::Sent,
        };
        Ok(req)
    }
}

/// A labelled service a trace reached, with the amount and the addresses that received it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SinkAmountDoc {
    /// Category (`exchange`, `mixing_service`, `bridge`, `coinjoin`, …).
    pub category: String,
    /// The service.
    pub name: String,
    /// Tainted base units that reached it.
    pub amount: String,
    /// Its addresses that received them.
    pub addresses: Vec<AddressAmountDoc>,
}

/// An amount at one address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddressAmountDoc {
    /// The address.
    pub address: String,
    /// Base units.
    pub amount: String,
}

/// A still-held output or balance with its tainted part.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HeldDoc {
    /// Holding address.
    pub address: String,
    /// `txid:vout` (UTXO chains).
    pub output: Option<String>,
    /// Asset.
    pub asset: String,
    /// Value of the output or balance.
    pub value: String,
    /// Its tainted part.
    pub tainted: String,
}

/// Where the seed amount ended up; under haircut and FIFO the buckets sum to the seed amount.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountingDoc {
    /// Labelled services reached, largest first.
    pub sinks: Vec<SinkAmountDoc>,
    /// Still held, output by output or balance by balance.
    pub held: Vec<HeldDoc>,
    /// Sum of the tainted parts held.
    pub held_total: String,
    /// Paid as fees.
    pub fees: String,
    /// Not followed: below `min_amount`.
    pub below_threshold: String,
    /// Still moving at the hop limit.
    pub hop_limit: String,
    /// Not followed: node limit reached.
    pub node_limit: String,
    /// Backward: newly mined coins.
    pub mined: String,
    /// Backward: inputs outside the data.
    pub unresolved: String,
}

/// An edge of the flow graph.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EdgeDoc {
    /// Sending address.
    pub from: String,
    /// Receiving address.
    pub to: String,
    /// Asset.
    pub asset: String,
    /// Tainted base units moved.
    pub amount: String,
    /// Hop number (1 = the first transaction after the seed).
    pub hop: u32,
    /// Transaction.
    pub tx: String,
    /// Block height.
    pub height: u64,
    /// Block time, unix seconds.
    pub time: u64,
}

/// A node of the flow graph.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeDoc {
    /// Address.
    pub address: String,
    /// Its label, if known.
    pub label: Option<String>,
    /// Its category, if labelled.
    pub category: Option<String>,
    /// Whether the trace started here.
    pub seed: bool,
}

/// What one seed contributed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SeedAmountDoc {
    /// The seed (an address with the side it takes).
    pub seed: String,
    /// Base units.
    pub amount: String,
}

/// The limits a trace ran with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LimitsDoc {
    /// Hops.
    pub max_hops: u32,
    /// Dust threshold, base units.
    pub min_amount: String,
    /// Chain as of this height.
    pub until_height: Option<u64>,
    /// Movements since this unix time.
    pub since_time: Option<u64>,
    /// Movements until this unix time.
    pub until_time: Option<u64>,
    /// Nodes visited at most.
    pub max_nodes: u64,
}

/// One trace: the flow graph and the accounting of the seed amount.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TraceDoc {
    /// Chain.
    pub chain: String,
    /// Taint model.
    pub model: String,
    /// Direction.
    pub direction: String,
    /// Unit of every amount (`sat`, `wei`, …).
    pub unit: String,
    /// Asset traced.
    pub asset: String,
    /// Account chains: the flow followed (a seed asset, or what a swap turned it into).
    pub flow: Option<String>,
    /// The seeds as resolved.
    pub seeds: Vec<String>,
    /// Amount traced.
    pub seed_amount: String,
    /// What each seed contributed.
    pub seed_amounts: Vec<SeedAmountDoc>,
    /// Where it went.
    pub accounting: AccountingDoc,
    /// Nodes of the flow graph.
    pub nodes: Vec<NodeDoc>,
    /// Edges of the flow graph.
    pub edges: Vec<EdgeDoc>,
    /// Limits applied.
    pub limits: LimitsDoc,
}

/// The traces of a request: one on UTXO chains, one per flow (asset) on account chains.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TraceResponse {
    /// The traces.
    pub traces: Vec<TraceDoc>,
}

/// Runs a trace.
pub fn trace(st: &AppState, req: TraceRequest) -> Result<TraceResponse, ApiError> {
    st.store_with(&req.chain)?;
    let traces = crate::trace::run_trace(&st.data_dir, &req).map_err(ApiError::from_input)?;
    let traces = traces.iter().map(trace_doc).collect::<Result<Vec<_>, _>>()?;
    Ok(TraceResponse { traces })
}

fn trace_doc(t: &tracehound_trace::Trace) -> Result<TraceDoc, ApiError> {
    serde_json::to_value(t).and_then(serde_json::from_value).map_err(|e| ApiError::internal(&e.into()))
}

/// Subjects to screen in one request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreenBody {
    /// Chain as stored.
    pub chain: String,
    /// Addresses, outputs `txid:vout`, transaction hashes or transfers `tx/address` (1 to 10,000;
    /// more is answered 413).
    #[schema(min_items = 1, max_items = 10000)]
    pub items: Vec<String>,
}

/// Screening results, one per subject, in the order given.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScreenResponse {
    /// Chain.
    pub chain: String,
    /// One result per subject.
    pub results: Vec<ScreenResult>,
}

/// A page of incidents, by id.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentsPage {
    /// Version (content digest) of the registry the incidents come from.
    pub registry_version: String,
    /// Incidents of this page.
    pub items: Vec<Incident>,
    /// Cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One destination of an incident's funds, valued in USD.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DestinationDoc {
    /// `exchange`, `mixing_service`, `bridge`, `coinjoin`, `still_held`, `fees`, `hop_limit`, …
    pub kind: String,
    /// The service, or a description.
    pub label: String,
    /// Base units.
    pub amount: String,
    /// The amount in whole coins, for people.
    pub amount_text: String,
    /// USD at the time of the movements (absent without a price).
    pub usd: Option<f64>,
}

/// The accounting of one traced flow of an incident.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowDoc {
    /// Chain.
    pub chain: String,
    /// Asset or flow.
    pub flow: String,
    /// Taint model.
    pub model: String,
    /// Amount traced from the incident's seeds, base units.
    pub seed_amount: String,
    /// The same for people.
    pub seed_amount_text: String,
    /// Sum of the destinations, for people.
    pub total_text: String,
    /// Where it went.
    pub destinations: Vec<DestinationDoc>,
}

/// Where an incident's funds went, per chain and flow (haircut, 10 hops).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentAccounting {
    /// USD from the simulated price series (a simulated case), not market prices.
    pub simulated_prices: bool,
    /// Seeds not in the ingested data, skipped.
    pub seeds_not_found: Vec<String>,
    /// One accounting per chain and flow.
    pub flows: Vec<FlowDoc>,
}

/// An incident and, when its chains are ingested, the accounting of its traced funds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentDetail {
    /// The incident.
    pub incident: Incident,
    /// Its traced accounting, when it could be traced here.
    pub accounting: Option<IncidentAccounting>,
    /// Why there is no accounting, when there is none.
    pub accounting_note: Option<String>,
}

/// Traces an incident's funds; `Err` says why it could not be.
pub fn incident_accounting(st: &AppState, inc: &Incident) -> Result<IncidentAccounting, String> {
    let store = tracehound_tables::Store::open(&st.data_dir).map_err(|e| e.to_string())?;
    let stored = store.manifest().chain_names();
    if inc.trace_seeds().next().is_none() {
        return Err("the incident has no seeds to trace (roles attacker, attacker_contract, laundering)".into());
    }
    if !inc.trace_seeds().any(|s| stored.contains(&s.chain)) {
        let chains: std::collections::BTreeSet<&str> = inc.trace_seeds().map(|s| s.chain.as_str()).collect();
        return Err(format!("none of its seeds' chains ({}) is ingested here", chains.into_iter().collect::<Vec<_>>().join(", ")));
    }
    let r = crate::incidents::trace_incident(&st.data_dir, &inc.id, tracehound_trace::Model::Haircut, 10).map_err(|e| crate::error_line(&e))?;
    Ok(IncidentAccounting {
        simulated_prices: r.simulated_prices,
        seeds_not_found: r.seeds_not_found,
        flows: r
            .flows
            .into_iter()
            .map(|f| FlowDoc {
                chain: f.chain,
                flow: f.flow,
                model: f.trace.model.to_string(),
                seed_amount: f.seed_amount.to_string(),
                seed_amount_text: f.seed_amount_text,
                total_text: f.total_text,
                destinations: f
                    .destinations
                    .into_iter()
                    .map(|d| DestinationDoc { kind: d.kind, label: d.label, amount: d.amount.to_string(), amount_text: d.amount_text, usd: d.usd })
                    .collect(),
            })
            .collect(),
    })
}

/// How `GET /v1/stats` groups and filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Dimensions, comma-separated: actor, country, year, victim_type, category, attribution (default year).
    pub by: Option<String>,
    /// Count simulated cases (the demo's heist) too.
    pub include_simulated: Option<bool>,
    /// Count only incidents attributed at least this strongly: government, sanctions_monitor, company, researcher, suspected.
    pub min_attribution: Option<String>,
    /// Count only incidents of this actor id.
    pub actor: Option<String>,
}

/// A label search: text and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Text to look for (case-insensitive substring of id, label, alias, address).
    #[param(min_length = 1)]
    pub q: String,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,6}$")]
    pub cursor: Option<String>,
    /// Items of each kind per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Actors and tags matching a search.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchPage {
    /// Actors whose id, label or an alias matches.
    pub actors: Vec<Actor>,
    /// Tags whose label, subject or actor matches.
    pub tags: Vec<Tag>,
    /// Cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Searches are paged up to this many results of each kind.
const MAX_SEARCH_DEPTH: usize = 100_000;

/// `GET /v1/labels/search`.
pub fn search(st: &AppState, p: &SearchParams) -> Result<SearchPage, ApiError> {
    if p.q.trim().is_empty() {
        return Err(ApiError::bad_request("q: give the text to look for"));
    }
    let page = PageParams { cursor: p.cursor.clone(), limit: p.limit };
    let (limit, start) = (page.limit()?, page.cursor::<usize>()?.unwrap_or(0));
    if start + limit > MAX_SEARCH_DEPTH {
        return Err(ApiError::bad_request(format!("searches page through the first {MAX_SEARCH_DEPTH} results; narrow the query")));
    }
    let labels = crate::labels::open_labels(&st.data_dir)?;
    let r = labels.search(&p.q, start + limit + 1).map_err(|e| ApiError::internal(&e.into()))?;
    let more = r.actors.len() > start + limit || r.tags.len() > start + limit;
    Ok(SearchPage {
        actors: r.actors.into_iter().skip(start).take(limit).collect(),
        tags: r.tags.into_iter().skip(start).take(limit).collect(),
        next_cursor: more.then(|| (start + limit).to_string()),
    })
}

/// A tag to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTagBody {
    /// Chain (`bitcoin`, `ethereum`, …; it need not be ingested).
    pub chain: String,
    /// Address, cluster id or transaction hash.
    pub subject: String,
    /// What the subject is (default address).
    pub kind: Option<SubjectKind>,
    /// The label.
    pub label: String,
    /// Category of the taxonomy (default unknown).
    pub category: Option<String>,
    /// Actor id, label or alias.
    pub actor: Option<String>,
    /// Where the knowledge comes from (default `api`).
    pub source: Option<String>,
}

/// The tag as stored, and whether it was new.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TagWritten {
    /// False when the same tag (subject, label, source) was already stored: nothing changed.
    pub inserted: bool,
    /// The stored tag.
    pub tag: Tag,
}

/// Adds a tag as `who` (audited), then rewrites the `tags` table.
pub fn add_tag(st: &AppState, body: NewTagBody, who: &str) -> Result<TagWritten, ApiError> {
    let _one_writer = st.label_writes.lock().unwrap_or_else(|e| e.into_inner());
    let mut labels = crate::labels::open_labels(&st.data_dir)?;
    let actor = match body.actor.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        Some(name) => Some(
            labels
                .actor(name)
                .map_err(|e| ApiError::from_input(e.into()))?
                .ok_or_else(|| ApiError::bad_request(format!("no actor {name:?} is known; search with /v1/labels/search?q={name}")))?
                .actor
                .id,
        ),
        None => None,
    };
    let kind = body.kind.unwrap_or_default();
    let source = body.source.unwrap_or_else(|| "api".into());
    let tag = tracehound_labels::NewTag {
        subject_kind: kind,
        chain: body.chain.clone(),
        subject: body.subject.clone(),
        label: body.label.clone(),
        category: body.category.unwrap_or_else(|| "unknown".into()),
        actor,
        source: source.clone(),
        confidence: Some("manual".into()),
        author: Some(who.to_string()),
        abuse: None,
        is_cluster_definer: false,
        origin_file: None,
    };
    let inserted = labels.add_tag(&tag).map_err(|e| ApiError::from_input(e.into()))?;
    crate::labels::write_tags_table(&st.data_dir, &labels)?;
    let stored = labels
        .tags_of_kind(kind, &body.chain, &body.subject)
        .map_err(|e| ApiError::internal(&e.into()))?
        .into_iter()
        .find(|t| t.label == body.label.trim() && t.source == source.trim())
        .ok_or_else(|| ApiError::internal(&anyhow::anyhow!("the tag just added is not in the label store")))?;
    Ok(TagWritten { inserted, tag: stored })
}

/// A page of the audit log, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditPage {
    /// Entries of this page.
    pub items: Vec<AuditEntry>,
    /// Cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// API keys (never the keys themselves).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyList {
    /// Every key, revoked ones included.
    pub items: Vec<ApiKey>,
}

/// Whether the server is up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// tracehound's version.
    pub version: String,
}

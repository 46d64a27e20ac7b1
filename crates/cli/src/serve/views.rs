//! What the API answers, as typed documents (each with its OpenAPI schema), and the functions
//! that make them from the CLI's own lookups. Amounts are base units (satoshi, wei, token units)
//! as decimal strings: they exceed what JSON numbers carry exactly.

use super::problem::ApiError;
use super::state::AppState;
use crate::chains::ChainIndex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use tracehound_graph::index::{NONE, NO_ADDRESS};
use tracehound_graph::transfers::NO_TX;
use tracehound_screen::{ExposureLine, Reason, ScreenResult, Severity, Status};
use utoipa::{IntoParams, ToSchema};

/// Largest page a list returns.
pub const MAX_PAGE: usize = 1000;

/// Paging of a list: where to continue and how many items to return.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// `next_cursor` of the previous page; absent for the first page.
    #[param(pattern = "^[0-9]{1,19}$")]
    pub cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Paging of the incidents, by id.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentPageParams {
    /// `next_cursor` of the previous page (the last id it listed); absent for the first page.
    #[param(pattern = "^[a-z0-9_]+$")]
    pub cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

impl PageParams {
    /// The page size, checked.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(100),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::bad_request(format!("limit {n}: give 1 to {MAX_PAGE}"))),
        }
    }

    /// The cursor as the number it is made of.
    pub fn cursor<T: std::str::FromStr>(&self) -> Result<Option<T>, ApiError> {
        self.cursor.as_deref().map(|c| c.parse::<T>().map_err(|_| ApiError::bad_request(format!("cursor {c:?} is not one this server gave")))).transpose()
    }
}

/// A tag on an address (or on a cluster), as lookups show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TagRef {
    /// The tagged address, when the tag is on a member of a cluster or on one address of a transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The label.
    pub label: String,
    /// Category of the label taxonomy.
    pub category: String,
    /// Actor id, when attributed.
    pub actor: Option<String>,
    /// Where the tag comes from.
    pub source: String,
    /// Confidence name (`authority_data`, `manual`, …).
    pub confidence: Option<String>,
}

/// Received, sent, fees paid and balance of one asset, in base units.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssetFlows {
    /// Asset: the chain's coin (`BTC`, `ETH`) or a token contract address.
    pub asset: String,
    /// Received.
    pub received: String,
    /// Sent.
    pub sent: String,
    /// Gas fees paid (account chains; absent on UTXO chains, where transactions pay fees).
    #[serde(default)]
    pub fees: Option<String>,
    /// Balance (received - sent - fees; funds from before the ingested blocks are not known).
    pub balance: String,
}

/// When an address was seen.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SeenAt {
    /// Transaction (absent for a withdrawal).
    pub transaction: Option<String>,
    /// Block height.
    pub block_number: u64,
    /// Block time, unix seconds (UTXO chains).
    #[serde(default)]
    pub timestamp: Option<u64>,
}

/// The entity (cluster) of an address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterSummary {
    /// Cluster id (the smallest address id of the cluster).
    pub id: u32,
    /// Addresses in the cluster.
    pub size: u64,
    /// Tags of its members.
    pub tags: Vec<TagRef>,
    /// Actors its members are attributed to.
    pub actors: Vec<String>,
    /// Contradictions among its tags (two exchanges, a service tagged as a thief).
    pub conflicts: Vec<String>,
}

/// What is known of an address: activity, entity, labels and risk.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AddressView {
    /// Chain.
    pub chain: String,
    /// The address.
    pub address: String,
    /// Whether the ingested data shows it (an address known only to the labels is not seen).
    pub seen: bool,
    /// Dense id of the address in the index.
    pub address_id: Option<u32>,
    /// Script type of its first output (UTXO chains).
    pub script_type: Option<String>,
    /// Transactions it took part in.
    pub transactions: u64,
    /// Received, sent and balance per asset.
    pub balances: Vec<AssetFlows>,
    /// First activity.
    pub first_seen: Option<SeenAt>,
    /// Last activity.
    pub last_seen: Option<SeenAt>,
    /// Its entity, once `tracehound cluster` has run on the current data.
    pub cluster: Option<ClusterSummary>,
    /// Tags on the address itself.
    pub tags: Vec<TagRef>,
    /// The actor behind it (its own tags', else its entity's, else screening's).
    pub actor: Option<String>,
    /// The actor's country (ISO 3166 alpha-2).
    pub country: Option<String>,
    /// Risk level from screening.
    pub risk: Option<Severity>,
    /// Risk score 0–10 from screening.
    pub score: Option<f64>,
    /// Whether screening found data on it.
    pub screening: Status,
    /// Exposure to each risk category (received from, sent to), direct and indirect.
    pub exposure: Vec<ExposureLine>,
    /// The rules of the risk policy that fired.
    pub reasons: Vec<Reason>,
}

#[derive(Deserialize)]
struct RawAddress {
    seen: bool,
    address_id: Option<u32>,
    activity: Option<RawActivity>,
    tags: Vec<TagRef>,
    cluster: Option<ClusterSummary>,
}

#[derive(Deserialize)]
struct RawActivity {
    #[serde(rename = "type")]
    script_type: Option<String>,
    transactions: u64,
    received_sat: Option<u64>,
    sent_sat: Option<u64>,
    balance_sat: Option<u64>,
    assets: Option<Vec<AssetFlows>>,
    first_seen: Option<SeenAt>,
    last_seen: Option<SeenAt>,
}

fn internal(e: anyhow::Error) -> ApiError {
    ApiError::internal(&e)
}

/// Screens one subject (with the exposure index of what is committed and labelled now); a
/// malformed subject is a 400.
pub fn screen_one(st: &AppState, chain: &str, subject: &str) -> Result<ScreenResult, ApiError> {
    let screener = st.screener(chain)?;
    screen_one_with(&screener, subject)
}

/// Screens one subject with `screener`; a malformed subject is a 400 naming it.
pub fn screen_one_with(screener: &crate::screening::Screener, subject: &str) -> Result<ScreenResult, ApiError> {
    screener.screen(subject).map_err(|e| ApiError::from_input(e.context(format!("subject {subject:?}"))))
}

/// `GET /v1/chains/{chain}/addresses/{address}`.
pub fn address(st: &AppState, chain: &str, address: &str) -> Result<AddressView, ApiError> {
    let (store, idx) = st.index(chain)?;
    let value = crate::entities::address_value(&st.data_dir, &store, chain, &idx, address).map_err(internal)?;
    let raw: RawAddress = serde_json::from_value(value).map_err(|e| internal(e.into()))?;
    if !raw.seen && raw.tags.is_empty() {
        let height = idx.addresses().chunks().last().map(|c| c.last);
        return Err(ApiError::not_found(format!(
            "address {address} does not appear on {chain} (up to height {}) and no tag names it",
            height.map_or("-".into(), |h| h.to_string())
        )));
    }
    let screened = screen_one(st, chain, address)?;
    let native = tracehound_trace::native_symbol(chain);
    let (mut view_type, mut transactions, mut balances, mut first, mut last) = (None, 0, vec![], None, None);
    if let Some(a) = raw.activity {
        view_type = a.script_type;
        transactions = a.transactions;
        first = a.first_seen;
        last = a.last_seen;
        balances = match a.assets {
            Some(assets) => assets,
            None => vec![AssetFlows {
                asset: native.into(),
                received: a.received_sat.unwrap_or(0).to_string(),
                sent: a.sent_sat.unwrap_or(0).to_string(),
                fees: None,
                balance: a.balance_sat.unwrap_or(0).to_string(),
            }],
        };
    }
    let actor = raw
        .tags
        .iter()
        .find_map(|t| t.actor.clone())
        .or_else(|| raw.cluster.as_ref().and_then(|c| c.actors.first().cloned()))
        .or_else(|| screened.actor.clone());
    let country = match &actor {
        Some(a) => crate::labels::open_labels(&st.data_dir)
            .and_then(|l| Ok(l.actor(a)?))
            .ok()
            .flatten()
            .and_then(|d| d.actor.country)
            .or_else(|| screened.country.clone()),
        None => screened.country.clone(),
    };
    Ok(AddressView {
        chain: chain.into(),
        address: address.into(),
        seen: raw.seen,
        address_id: raw.address_id,
        script_type: view_type,
        transactions,
        balances,
        first_seen: first,
        last_seen: last,
        cluster: raw.cluster,
        tags: raw.tags,
        actor,
        country,
        risk: screened.risk,
        score: screened.score,
        screening: screened.status,
        exposure: screened.exposures,
        reasons: screened.reasons,
    })
}

/// What one transaction moved for an address, per asset.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TxFlow {
    /// Asset.
    pub asset: String,
    /// Received by the address in the transaction.
    pub received: String,
    /// Sent by the address in the transaction.
    pub sent: String,
    /// Gas fee the address paid (account chains).
    pub fees: Option<String>,
}

/// A transaction of an address.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AddressTx {
    /// Transaction hash (absent for a withdrawal on an account chain).
    pub transaction: Option<String>,
    /// Block height.
    pub block_number: u64,
    /// Block time, unix seconds (UTXO chains).
    pub timestamp: Option<u64>,
    /// What it moved for the address.
    pub flows: Vec<TxFlow>,
}

/// A page of an address's transactions, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AddressTxPage {
    /// Chain.
    pub chain: String,
    /// The address.
    pub address: String,
    /// The transactions of this page.
    pub items: Vec<AddressTx>,
    /// Cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /v1/chains/{chain}/addresses/{address}/transactions`.
pub fn address_transactions(st: &AppState, chain: &str, address: &str, page: &PageParams) -> Result<AddressTxPage, ApiError> {
    let limit = page.limit()?;
    let (_, idx) = st.index(chain)?;
    let a = idx.addresses().address_id(address).ok_or_else(|| ApiError::not_found(format!("address {address} does not appear on {chain}")))?;
    let (items, next) = match &*idx {
        ChainIndex::Utxo(i) => {
            let native = tracehound_trace::native_symbol(chain);
            let (value, spender) = (i.out_value(), i.out_spender());
            let mut per_tx: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
            for &o in i.outputs_of(a) {
                per_tx.entry(i.tx_of_output(o)).or_default().0 += value[o as usize];
                if spender[o as usize] != NONE {
                    per_tx.entry(i.tx_of_input(spender[o as usize])).or_default().1 += value[o as usize];
                }
            }
            let start = match page.cursor::<u32>()? {
                Some(c) => std::ops::Bound::Excluded(c),
                None => std::ops::Bound::Unbounded,
            };
            let mut items = vec![];
            let (mut next, mut last) = (None, 0u32);
            for (&t, &(received, sent)) in per_tx.range((start, std::ops::Bound::Unbounded)) {
                if items.len() == limit {
                    next = Some(last.to_string());
                    break;
                }
                last = t;
                items.push(AddressTx {
                    transaction: Some(i.tx_hash(t)),
                    block_number: i.tx_height()[t as usize] as u64,
                    timestamp: Some(i.tx_time()[t as usize] as u64),
                    flows: vec![TxFlow { asset: native.into(), received: received.to_string(), sent: sent.to_string(), fees: None }],
                });
            }
            (items, next)
        }
        ChainIndex::Evm(i) => {
            let moves = i.movements_of(a);
            let start = match page.cursor::<u64>()? {
                Some(c) => moves.partition_point(|&m| m <= c),
                None => 0,
            };
            let mut items: Vec<AddressTx> = vec![];
            let mut next = None;
            let mut k = start;
            while k < moves.len() {
                let t = i.tx_of(moves[k]);
                let mut end = k + 1;
                while t != NO_TX && end < moves.len() && i.tx_of(moves[end]) == t {
                    end += 1;
                }
                if items.len() == limit {
                    next = Some(moves[k - 1].to_string());
                    break;
                }
                let mut per_asset: BTreeMap<&str, [u128; 3]> = BTreeMap::new();
                for &m in &moves[k..end] {
                    let (from, to, asset) = i.ends(m);
                    let e = per_asset.entry(i.asset(asset)).or_default();
                    let amount = i.amount(m);
                    if from == a && to == NO_ADDRESS {
                        e[2] += amount;
                    } else {
                        if from == a {
                            e[1] += amount;
                        }
                        if to == a {
                            e[0] += amount;
                        }
                    }
                }
                items.push(AddressTx {
                    transaction: (t != NO_TX).then(|| i.tx_hash(t)),
                    block_number: i.block(moves[k]),
                    timestamp: None,
                    flows: per_asset
                        .into_iter()
                        .map(|(asset, [r, s, f])| TxFlow { asset: asset.into(), received: r.to_string(), sent: s.to_string(), fees: Some(f.to_string()) })
                        .collect(),
                });
                k = end;
            }
            (items, next)
        }
    };
    Ok(AddressTxPage { chain: chain.into(), address: address.into(), items, next_cursor: next })
}

/// An entity (cluster): its size, holdings, tags and a page of its member addresses.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClusterView {
    /// Chain.
    pub chain: String,
    /// Cluster id (the smallest address id of the cluster).
    pub cluster_id: u32,
    /// Addresses in the cluster.
    pub size: u64,
    /// Outputs its members received (UTXO chains).
    pub outputs: Option<u64>,
    /// Received, sent and balance per asset, of the members together.
    pub balances: Vec<AssetFlows>,
    /// Tags of its members (and of the cluster itself).
    pub tags: Vec<TagRef>,
    /// Actors its members are attributed to.
    pub actors: Vec<String>,
    /// Contradictions among its tags.
    pub conflicts: Vec<String>,
    /// Member addresses of this page, in id order.
    pub addresses: Vec<String>,
    /// Cursor of the next page of addresses; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct RawEntity {
    size: u64,
    tags: Vec<TagRef>,
    actors: Vec<String>,
    conflicts: Vec<String>,
    outputs: Option<u64>,
    received_sat: Option<u64>,
    balance_sat: Option<u64>,
    assets: Option<Vec<AssetFlows>>,
}

/// `GET /v1/chains/{chain}/clusters/{id}`.
pub fn cluster(st: &AppState, chain: &str, id: u32, page: &PageParams) -> Result<ClusterView, ApiError> {
    let limit = page.limit()?;
    let (store, idx) = st.index(chain)?;
    let clusters = tracehound_graph::Clusters::open_current(store.root(), idx.addresses())
        .map_err(|e| ApiError::not_found(format!("no clusters of the current data of {chain}: run `tracehound cluster --chain {chain}` ({e})")))?;
    let members = clusters.members(id);
    if members.is_empty() {
        return Err(ApiError::not_found(format!("{id} is not a cluster id on {chain}: cluster ids are the smallest address id of their cluster")));
    }
    let value = crate::entities::entity_value(&st.data_dir, &store, chain, &idx, &id.to_string(), None).map_err(internal)?;
    let raw: RawEntity = serde_json::from_value(value).map_err(|e| internal(e.into()))?;
    let start: usize = page.cursor::<usize>()?.unwrap_or(0);
    let listed: Vec<String> = members.iter().skip(start).take(limit).map(|&a| idx.addresses().address(a).to_string()).collect();
    let next = (start + listed.len() < members.len()).then(|| (start + listed.len()).to_string());
    let balances = match raw.assets {
        Some(a) => a,
        None => {
            let (received, balance) = (raw.received_sat.unwrap_or(0), raw.balance_sat.unwrap_or(0));
            vec![AssetFlows {
                asset: tracehound_trace::native_symbol(chain).into(),
                received: received.to_string(),
                sent: received.saturating_sub(balance).to_string(),
                fees: None,
                balance: balance.to_string(),
            }]
        }
    };
    Ok(ClusterView {
        chain: chain.into(),
        cluster_id: id,
        size: raw.size,
        outputs: raw.outputs,
        balances,
        tags: raw.tags,
        actors: raw.actors,
        conflicts: raw.conflicts,
        addresses: listed,
        next_cursor: next,
    })
}

/// An input of a UTXO transaction.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TxInput {
    /// Position in the transaction.
    pub index: u64,
    /// The output it spends, `txid:vout` (absent for the coinbase or an output outside the data).
    pub spent_output: Option<String>,
    /// Address of the spent output.
    pub address: Option<String>,
    /// Value of the spent output.
    pub value: Option<String>,
}

/// An output of a UTXO transaction.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TxOutput {
    /// Position in the transaction (vout).
    pub index: u64,
    /// Address it pays (absent for scripts without one).
    pub address: Option<String>,
    /// Value.
    pub value: String,
    /// Script type (Bitcoin Core's names).
    pub script_type: String,
    /// Transaction that spent it, if spent.
    pub spent_by: Option<String>,
}

/// A movement of value in an account-chain transaction (the `transfers` table).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TxTransfer {
    /// Order within the transaction.
    pub position: i64,
    /// `native_tx`, `internal`, `erc20`, `erc721`, …
    pub kind: String,
    /// Asset: the chain's coin or a token contract.
    pub asset: String,
    /// Token symbol, where known.
    pub asset_symbol: Option<String>,
    /// Token id (ERC-721).
    pub token_id: Option<String>,
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: Option<String>,
    /// Amount in base units.
    pub amount: String,
}

/// A transaction: inputs and outputs (UTXO chains) or transfers (account chains), with the
/// labels of the addresses involved.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransactionView {
    /// Chain.
    pub chain: String,
    /// Transaction hash.
    pub hash: String,
    /// Block height.
    pub block_number: u64,
    /// Block time, unix seconds.
    pub timestamp: Option<u64>,
    /// Fee (UTXO chains, when every input is in the data).
    pub fee: Option<String>,
    /// Inputs (UTXO chains).
    pub inputs: Vec<TxInput>,
    /// Outputs (UTXO chains).
    pub outputs: Vec<TxOutput>,
    /// Transfers (account chains).
    pub transfers: Vec<TxTransfer>,
    /// Tags of the addresses involved.
    pub labels: Vec<TagRef>,
}

/// `GET /v1/chains/{chain}/transactions/{hash}`.
pub fn transaction(st: &AppState, chain: &str, hash: &str) -> Result<TransactionView, ApiError> {
    let (store, idx) = st.index(chain)?;
    let missing = || ApiError::not_found(format!("transaction {hash} is not in the ingested data of {chain}"));
    let mut view = TransactionView {
        chain: chain.into(),
        hash: hash.into(),
        block_number: 0,
        timestamp: None,
        fee: None,
        inputs: vec![],
        outputs: vec![],
        transfers: vec![],
        labels: vec![],
    };
    let mut addresses = BTreeSet::new();
    match &*idx {
        ChainIndex::Utxo(i) => {
            let hex = hash.to_ascii_lowercase();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ApiError::bad_request(format!("{hash:?} is not a transaction hash (64 hex digits)")));
            }
            let t = i.tx_id(&hex).ok_or_else(missing)?;
            view.hash = hex;
            view.block_number = i.tx_height()[t as usize] as u64;
            view.timestamp = Some(i.tx_time()[t as usize] as u64);
            let (value, addr, spender, prevout) = (i.out_value(), i.out_addr(), i.out_spender(), i.in_prevout());
            let address = |o: u64| (addr[o as usize] != NO_ADDRESS).then(|| i.address(addr[o as usize]).to_string());
            let (mut total_in, mut resolved) = (0u64, true);
            let ins = i.tx_in_start()[t as usize]..i.tx_in_start()[t as usize + 1];
            for (n, k) in ins.enumerate() {
                let p = prevout[k as usize];
                if p == NONE {
                    resolved = false;
                    view.inputs.push(TxInput { index: n as u64, spent_output: None, address: None, value: None });
                    continue;
                }
                let pt = i.tx_of_output(p);
                total_in += value[p as usize];
                let a = address(p);
                addresses.extend(a.clone());
                view.inputs.push(TxInput {
                    index: n as u64,
                    spent_output: Some(format!("{}:{}", i.tx_hash(pt), p - i.tx_out_start()[pt as usize])),
                    address: a,
                    value: Some(value[p as usize].to_string()),
                });
            }
            let outs = i.tx_out_start()[t as usize]..i.tx_out_start()[t as usize + 1];
            let mut total_out = 0u64;
            for (n, o) in outs.enumerate() {
                total_out += value[o as usize];
                let a = address(o);
                addresses.extend(a.clone());
                view.outputs.push(TxOutput {
                    index: n as u64,
                    address: a,
                    value: value[o as usize].to_string(),
                    script_type: i.output_type(o).as_str().to_string(),
                    spent_by: (spender[o as usize] != NONE).then(|| i.tx_hash(i.tx_of_input(spender[o as usize]))),
                });
            }
            let coinbase = view.inputs.len() == 1 && view.inputs[0].spent_output.is_none();
            view.fee = (resolved && !coinbase && !view.inputs.is_empty()).then(|| total_in.saturating_sub(total_out).to_string());
        }
        ChainIndex::Evm(i) => {
            let hex = hash.to_ascii_lowercase();
            let digits = hex.strip_prefix("0x").unwrap_or("");
            if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ApiError::bad_request(format!("{hash:?} is not a transaction hash (0x + 64 hex digits)")));
            }
            let t = i.tx_id(&hex).ok_or_else(missing)?;
            view.hash = hex.clone();
            view.block_number = i.tx_block(t);
            // The transfer index has no transaction → movements list: the table answers.
            let sql = format!(
                "SELECT position, kind, asset, asset_symbol, token_id, from_address, to_address, amount_raw, block_timestamp \
                 FROM \"{chain}\".transfers WHERE transaction_hash = '{hex}' ORDER BY position"
            );
            let batches = crate::block_on(async {
                let ctx = tracehound_tables::sql::session(&store, Some(chain)).await?;
                tracehound_tables::sql::query(&ctx, &sql).await
            })
            .map_err(|e| internal(e.into()))?;
            for b in &batches {
                let cols: Vec<_> = (0..b.num_columns())
                    .map(|c| datafusion::arrow::compute::cast(b.column(c), &datafusion::arrow::datatypes::DataType::Utf8))
                    .collect::<Result<_, _>>()
                    .map_err(|e| internal(e.into()))?;
                use datafusion::arrow::array::{Array, AsArray};
                let get = |c: usize, k: usize| {
                    let a = cols[c].as_string::<i32>();
                    (!a.is_null(k)).then(|| a.value(k).to_string())
                };
                for k in 0..b.num_rows() {
                    let from = get(5, k).unwrap_or_default();
                    let to = get(6, k);
                    addresses.insert(from.clone());
                    addresses.extend(to.clone());
                    view.timestamp = get(8, k).and_then(|t| t.parse().ok()).or(view.timestamp);
                    view.transfers.push(TxTransfer {
                        position: get(0, k).and_then(|p| p.parse().ok()).unwrap_or(0),
                        kind: get(1, k).unwrap_or_default(),
                        // The table names the chain's coin `native`; balances and traces name it by its symbol.
                        asset: get(2, k).map(|a| if a == "native" { tracehound_trace::native_symbol(chain).to_string() } else { a }).unwrap_or_default(),
                        asset_symbol: get(3, k),
                        token_id: get(4, k),
                        from,
                        to,
                        amount: get(7, k).unwrap_or_default(),
                    });
                }
            }
        }
    }
    let labels = crate::labels::open_labels(&st.data_dir).map_err(internal)?;
    let list: Vec<String> = addresses.into_iter().collect();
    for t in labels.tags_for(chain, &list).map_err(|e| internal(e.into()))? {
        view.labels.push(TagRef { address: Some(t.subject), label: t.label, category: t.category, actor: t.actor, source: t.source, confidence: t.confidence });
    }
    Ok(view)
}

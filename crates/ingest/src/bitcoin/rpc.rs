//! Ingest from a node's JSON-RPC: Bitcoin Core, and Litecoin, Dogecoin and Bitcoin Cash nodes,
//! which answer the same calls. Blocks come from `getblockhash` + `getblock <hash> 2`; each
//! transaction's raw `hex` is decoded with the same code as the block-file path, so both paths
//! give identical rows. Nodes that do not answer verbosity 2 (older Dogecoin and Bitcoin Cash
//! releases) are detected on the first block and read with `getblock <hash> true` plus
//! `getrawtransaction <txid> 0` for each transaction. Inputs spending outputs from before the range are resolved with
//! `getrawtransaction <txid> true` (value parsed exactly from the node's decimal string).
//!
//! Requests are batched (JSON-RPC arrays), run `concurrency` at a time, and retried with
//! exponential backoff on transport errors and HTTP 5xx/429.

use super::rows::RowBuilder;
use super::utxo::{Prevout, PrevoutSource};
use super::utxo_spill::UtxoStore;
use super::{commit_info, IngestReport};
use crate::jsonrpc::{split_credentials, RpcClient};
use crate::resume_point;
use crate::{Error, Event};
use bitcoin::block::{Header, Version};
use bitcoin::consensus::deserialize;
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Transaction, TxMerkleNode, Txid};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use tracehound_core::{amount::parse_btc, UtxoChain};
use tracehound_memory::StageMeter;
use tracehound_tables::Store;

/// Options of a JSON-RPC ingest.
#[derive(Debug, Clone)]
pub struct RpcOptions {
    /// Node URL, optionally with `user:password@`.
    pub url: String,
    /// Bitcoin Core's `.cookie` file, used when the URL has no credentials.
    pub cookie: Option<PathBuf>,
    /// The chain; asked from `getblockchaininfo` when `None` (Bitcoin networks only).
    pub chain: Option<UtxoChain>,
    /// First height.
    pub from: u64,
    /// Last height (the node's tip when `None`).
    pub to: Option<u64>,
    /// Blocks per batched request.
    pub batch_size: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Retries of a failed request.
    pub retries: u32,
    /// Close a chunk after this many blocks.
    pub chunk_blocks: u64,
    /// Memory budget of the run in bytes. `None`: the outputs seen are kept up to 4 million and
    /// then forgotten (fetched again from the node when spent). With a limit, the map gets its
    /// share ([`utxo_budget`](super::blk::utxo_budget)) and the oldest outputs beyond it are
    /// written to scratch files under the data directory instead of being fetched again.
    pub memory_limit: Option<u64>,
}

impl RpcOptions {
    /// Defaults: batches of 10 blocks, 4 requests in flight, 5 retries, chunks of 1,000 blocks.
    pub fn new(url: impl Into<String>) -> RpcOptions {
        RpcOptions {
            url: url.into(),
            cookie: None,
            chain: None,
            from: 0,
            to: None,
            batch_size: 10,
            concurrency: 4,
            retries: 5,
            chunk_blocks: 1000,
            memory_limit: None,
        }
    }
}

/// Genesis block hash of Dogecoin's mainnet.
const DOGECOIN_GENESIS: &str = "1a91e3dace36e2be3bf030a65679fe821aa1d6ef92e7c9902eb318182c355691";
/// Genesis block hash of Litecoin's mainnet.
const LITECOIN_GENESIS: &str = "12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2";

/// Names the chain a node serves. Litecoin and Dogecoin nodes call their mainnet `main` like
/// Bitcoin Core does, so their genesis block tells them apart; Bitcoin Cash shares Bitcoin's
/// genesis, so its node software (`getnetworkinfo`'s `subversion`) does. Bitcoin's own networks
/// come from `getblockchaininfo`'s `chain`.
fn detect_chain(client: &RpcClient) -> Result<UtxoChain, Error> {
    let info =
        client.call("getblockchaininfo", json!([])).map_err(|e| Error::Input(format!("cannot ask the node which chain it serves ({e}); give --chain")))?;
    let name = info.get("chain").and_then(Value::as_str).unwrap_or_default();
    let genesis = client.call("getblockhash", json!([0])).ok();
    let genesis = genesis.as_ref().and_then(Value::as_str);
    match genesis {
        Some(DOGECOIN_GENESIS) => return Ok(UtxoChain::Dogecoin),
        Some(LITECOIN_GENESIS) => return Ok(UtxoChain::Litecoin),
        _ => {}
    }
    let give_chain = |what: String| Error::Input(format!("{what}; give --chain (bitcoin, litecoin, dogecoin, bitcoin_cash, …) to say how to read it"));
    let network = client.call("getnetworkinfo", json!([])).unwrap_or_default();
    let software = network.get("subversion").and_then(Value::as_str).unwrap_or_default();
    let lower = software.to_ascii_lowercase();
    if lower.contains("bitcoin sv") || lower.contains("bitcoin abc") || lower.contains("ecash") {
        return Err(give_chain(format!("the node runs {software}, a chain tracehound does not name")));
    }
    let cash = ["bitcoin cash", "bch unlimited", "bchn"].iter().any(|k| lower.contains(k));
    if cash {
        return match name {
            "main" => Ok(UtxoChain::BitcoinCash),
            _ => Err(give_chain(format!("the node runs {software} on network {name:?}, which tracehound does not name"))),
        };
    }
    let chain = UtxoChain::from_name(name).map_err(|_| give_chain(format!("the node serves chain {name:?}")))?;
    // Litecoin and Dogecoin test networks also call themselves "test" or "regtest": a genesis
    // block that is not Bitcoin's says so.
    let network = match chain {
        UtxoChain::Bitcoin => Some(bitcoin::Network::Bitcoin),
        UtxoChain::BitcoinTestnet => Some(bitcoin::Network::Testnet),
        UtxoChain::BitcoinTestnet4 => Some(bitcoin::Network::Testnet4),
        UtxoChain::BitcoinSignet => Some(bitcoin::Network::Signet),
        UtxoChain::BitcoinRegtest => Some(bitcoin::Network::Regtest),
        _ => None,
    };
    if let (Some(network), Some(genesis)) = (network, genesis) {
        let expected = bitcoin::constants::genesis_block(network).block_hash().to_string();
        // Custom signets have a genesis of their own but Bitcoin's rules and addresses.
        if genesis != expected && chain != UtxoChain::BitcoinSignet {
            return Err(give_chain(format!("the node calls its network {name:?} but its genesis block {genesis} is not Bitcoin's {expected}")));
        }
    }
    Ok(chain)
}

/// Rebuilds a block from `getblock <hash> 2` and checks that its hash is the node's.
pub fn block_from_json(v: &Value) -> Result<(u64, Block), Error> {
    let bad = |reason: String| Error::Rpc { method: "getblock".into(), reason };
    let hash = v.get("hash").and_then(Value::as_str).unwrap_or_default();
    let txs = v.get("tx").and_then(Value::as_array).ok_or_else(|| bad(format!("block {hash}: tx is not a list")))?;
    let mut txdata = Vec::with_capacity(txs.len());
    for t in txs {
        let hex = t.get("hex").and_then(Value::as_str).ok_or_else(|| bad(format!("block {hash}: a transaction has no hex (use getblock verbosity 2)")))?;
        txdata.push(decode_tx(hex).map_err(|e| bad(format!("block {hash}: {e}")))?);
    }
    block_from_parts(v, txdata)
}

/// Decodes a transaction from its consensus hex.
fn decode_tx(hex: &str) -> Result<Transaction, String> {
    let bytes = hex::decode(hex).map_err(|e| format!("transaction hex: {e}"))?;
    deserialize(&bytes).map_err(|e| format!("transaction does not decode: {e}"))
}

/// Rebuilds a block from the header fields of a `getblock` reply (verbosity 1 or 2) and its
/// transactions, checking the header's hash against the node's and the transactions against
/// the merkle root.
pub fn block_from_parts(v: &Value, txdata: Vec<Transaction>) -> Result<(u64, Block), Error> {
    let bad = |reason: String| Error::Rpc { method: "getblock".into(), reason };
    let field = |k: &str| v.get(k).ok_or_else(|| bad(format!("reply has no {k:?}")));
    let hex_u32 = |k: &str| -> Result<u32, Error> { u32::from_str_radix(field(k)?.as_str().unwrap_or_default(), 16).map_err(|e| bad(format!("{k}: {e}"))) };
    let hash_field = |k: &str| -> Result<String, Error> { Ok(field(k)?.as_str().ok_or_else(|| bad(format!("{k} is not a string")))?.to_string()) };
    let height = field("height")?.as_u64().ok_or_else(|| bad("height is not a number".into()))?;
    let prev = match v.get("previousblockhash").and_then(Value::as_str) {
        Some(h) => BlockHash::from_str(h).map_err(|e| bad(format!("previousblockhash: {e}")))?,
        None => BlockHash::all_zeros(),
    };
    let header = Header {
        version: Version::from_consensus(field("version")?.as_i64().ok_or_else(|| bad("version".into()))? as i32),
        prev_blockhash: prev,
        merkle_root: TxMerkleNode::from_str(&hash_field("merkleroot")?).map_err(|e| bad(format!("merkleroot: {e}")))?,
        time: field("time")?.as_u64().ok_or_else(|| bad("time".into()))? as u32,
        bits: CompactTarget::from_consensus(hex_u32("bits")?),
        nonce: field("nonce")?.as_u64().ok_or_else(|| bad("nonce".into()))? as u32,
    };
    let expected = hash_field("hash")?;
    if header.block_hash().to_string() != expected {
        return Err(bad(format!("block {expected} at height {height}: header fields hash to {}, not to the block's hash", header.block_hash())));
    }
    let mut seen = HashSet::with_capacity(txdata.len());
    if let Some(dup) = txdata.iter().map(|t| t.compute_txid()).find(|t| !seen.insert(*t)) {
        // A repeated transaction keeps the merkle root (CVE-2012-2459) but is never valid.
        return Err(bad(format!("block {expected} at height {height}: transaction {dup} appears twice")));
    }
    let block = Block { header, txdata };
    if block.compute_merkle_root() != Some(header.merkle_root) {
        return Err(bad(format!("block {expected} at height {height}: its transactions do not hash to the merkle root {}", header.merkle_root)));
    }
    Ok((height, block))
}

/// How the node answers `getblock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetBlockMode {
    /// `getblock <hash> 2`: header and every transaction's hex in one reply (Bitcoin Core ≥ 0.15).
    Verbosity2,
    /// `getblock <hash> true` lists txids only; each transaction comes from
    /// `getrawtransaction <txid> 0` (older nodes, e.g. Dogecoin 1.14 and early Bitcoin Cash
    /// releases; they need `-txindex`).
    Verbosity1,
}

impl GetBlockMode {
    /// The verbosity level used for `getblock`.
    pub fn verbosity(self) -> u8 {
        match self {
            GetBlockMode::Verbosity2 => 2,
            GetBlockMode::Verbosity1 => 1,
        }
    }
}

/// Asks for `hash` with verbosity 2; a node that refuses it, or answers with txids only, is
/// read with verbosity 1 and `getrawtransaction` (with a warning that says why). When
/// verbosity 1 fails too, the verbosity-2 error is the one reported.
fn detect_getblock_mode(client: &RpcClient, hash: &Value, progress: &dyn Fn(Event)) -> Result<GetBlockMode, Error> {
    let why = match client.call("getblock", json!([hash, 2])) {
        Ok(reply) => {
            let has_hex = reply.get("tx").and_then(Value::as_array).is_some_and(|txs| txs.first().is_none_or(|t| t.get("hex").is_some()));
            if has_hex {
                return Ok(GetBlockMode::Verbosity2);
            }
            Error::Rpc { method: "getblock".into(), reason: format!("block {hash}: verbosity 2 answered without transaction hex") }
        }
        Err(e) => e,
    };
    match client.call("getblock", json!([hash, true])) {
        Ok(reply) if reply.get("tx").and_then(Value::as_array).is_some() => {
            progress(Event::Warning(format!("{why}: reading blocks with getblock verbosity 1 and getrawtransaction (the node needs -txindex)")));
            Ok(GetBlockMode::Verbosity1)
        }
        _ => Err(why),
    }
}

/// The transaction of a `getrawtransaction` reply: a hex string (verbose 0) or an object with
/// `hex` (verbose 1).
fn raw_tx_from_reply(txid: &str, reply: &Value) -> Result<Transaction, Error> {
    let bad = |reason: String| Error::Rpc { method: "getrawtransaction".into(), reason: format!("{txid}: {reason}") };
    let hex = reply.as_str().or_else(|| reply.get("hex").and_then(Value::as_str)).ok_or_else(|| bad("reply has no transaction hex".into()))?;
    decode_tx(hex).map_err(bad)
}

/// Reads blocks `hashes` with verbosity 1, then their transactions with `getrawtransaction`.
fn fetch_verbosity1(client: &RpcClient, hashes: Vec<Value>, batch: usize) -> Result<Vec<(u64, Block)>, Error> {
    let replies = client.batch("getblock", hashes.into_iter().map(|h| json!([h, true])).collect())?;
    let mut out = Vec::with_capacity(replies.len());
    for reply in replies {
        let hash = reply.get("hash").and_then(Value::as_str).unwrap_or_default().to_string();
        let bad = |reason: String| Error::Rpc { method: "getblock".into(), reason: format!("block {hash}: {reason}") };
        let txids: Vec<Value> = reply.get("tx").and_then(Value::as_array).ok_or_else(|| bad("tx is not a list".into()))?.clone();
        let mut txdata = Vec::with_capacity(txids.len());
        if reply.get("height").and_then(Value::as_u64) == Some(0) {
            // No node returns the genesis coinbase with getrawtransaction: read the block raw.
            let raw = client.call("getblock", json!([hash, false]))?;
            let bytes = hex::decode(raw.as_str().unwrap_or_default()).map_err(|e| bad(format!("raw block hex: {e}")))?;
            let block: Block = deserialize(&bytes).map_err(|e| bad(format!("raw block does not decode: {e}")))?;
            txdata = block.txdata;
        } else {
            for ids in txids.chunks(batch.max(1) * 10) {
                let raws = client.batch("getrawtransaction", ids.iter().map(|t| json!([t, 0])).collect())?;
                for (id, raw) in ids.iter().zip(&raws) {
                    txdata.push(raw_tx_from_reply(id.as_str().unwrap_or_default(), raw)?);
                }
            }
        }
        for (i, (tx, id)) in txdata.iter().zip(&txids).enumerate() {
            if tx.compute_txid().to_string() != id.as_str().unwrap_or_default() {
                return Err(bad(format!("transaction {i} is {}, not the {id} the block lists", tx.compute_txid())));
            }
        }
        out.push(block_from_parts(&reply, txdata)?);
    }
    Ok(out)
}

/// Prevouts seen in this run, plus the ones fetched with `getrawtransaction`.
struct RpcPrevouts {
    known: UtxoStore,
}

impl PrevoutSource for RpcPrevouts {
    fn spend(&mut self, outpoint: &OutPoint) -> Option<Prevout> {
        self.known.spend(outpoint)
    }
    fn add(&mut self, txid: &Txid, vout: u32, value: u64, script: &bitcoin::Script) {
        self.known.add(txid, vout, value, script)
    }
}

#[derive(serde::Deserialize)]
struct RawVout<'a> {
    #[serde(borrow)]
    value: &'a RawValue,
    n: u32,
    #[serde(rename = "scriptPubKey")]
    script_pub_key: ScriptPubKey,
}
#[derive(serde::Deserialize)]
struct ScriptPubKey {
    hex: String,
}
#[derive(serde::Deserialize)]
struct RawTx<'a> {
    #[serde(borrow)]
    vout: Vec<RawVout<'a>>,
}

impl RpcPrevouts {
    /// Fetches the outputs that `block`'s inputs spend and that this run has not seen.
    fn fetch_missing(&mut self, client: &RpcClient, block: &Block, batch: usize) -> Result<(), Error> {
        let created: HashSet<Txid> = block.txdata.iter().map(|t| t.compute_txid()).collect();
        let mut wanted: Vec<Txid> = Vec::new();
        for o in block.txdata.iter().filter(|t| !t.is_coinbase()).flat_map(|t| t.input.iter().map(|i| i.previous_output)) {
            if !created.contains(&o.txid) && !self.known.contains(&o) {
                wanted.push(o.txid);
            }
        }
        wanted.sort();
        wanted.dedup();
        for ids in wanted.chunks(batch.max(1) * 10) {
            let replies = client.batch("getrawtransaction", ids.iter().map(|t| json!([t.to_string(), true])).collect())?;
            for (txid, reply) in ids.iter().zip(replies) {
                let text = reply.to_string();
                let raw: RawTx = serde_json::from_str(&text).map_err(|e| Error::Rpc { method: "getrawtransaction".into(), reason: format!("{txid}: {e}") })?;
                for o in raw.vout {
                    let value = parse_btc(o.value.get())
                        .map_err(|e| Error::Rpc { method: "getrawtransaction".into(), reason: format!("{txid} output {}: {e}", o.n) })?;
                    let script = ScriptBuf::from_bytes(
                        hex::decode(&o.script_pub_key.hex).map_err(|e| Error::Rpc { method: "getrawtransaction".into(), reason: format!("{txid}: {e}") })?,
                    );
                    self.known.add(txid, o.n, value, &script);
                }
            }
        }
        Ok(())
    }
}

/// Fetches blocks `heights` with `concurrency` batched requests in flight; results in height order.
fn fetch_blocks(client: &RpcClient, heights: &[u64], batch: usize, concurrency: usize, mode: GetBlockMode) -> Result<Vec<(u64, Block)>, Error> {
    let per_thread = heights.len().div_ceil(concurrency.max(1)).max(1);
    let results: Vec<Result<Vec<(u64, Block)>, Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = heights
            .chunks(per_thread)
            .map(|hs| {
                s.spawn(move || -> Result<Vec<(u64, Block)>, Error> {
                    let mut out = vec![];
                    for part in hs.chunks(batch.max(1)) {
                        let hashes = client.batch("getblockhash", part.iter().map(|h| json!([h])).collect())?;
                        let blocks = match mode {
                            GetBlockMode::Verbosity2 => client
                                .batch("getblock", hashes.into_iter().map(|h| json!([h, 2])).collect())?
                                .iter()
                                .map(block_from_json)
                                .collect::<Result<Vec<_>, Error>>()?,
                            GetBlockMode::Verbosity1 => fetch_verbosity1(client, hashes, batch)?,
                        };
                        for (h, (height, block)) in part.iter().zip(blocks) {
                            if height != *h {
                                return Err(Error::Rpc { method: "getblock".into(), reason: format!("asked for height {h}, got {height}") });
                            }
                            out.push((height, block));
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("fetch thread")).collect()
    });
    let mut all = vec![];
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

/// Ingests blocks `from..=to` from a node into `store`, resuming after what it already holds.
pub fn ingest_rpc(store: &mut Store, opts: &RpcOptions, progress: &dyn Fn(Event)) -> Result<IngestReport, Error> {
    let meter = opts.memory_limit.map(|limit| StageMeter::start("ingest", limit));
    let mut prevouts = RpcPrevouts { known: UtxoStore::new(opts.memory_limit.map(super::blk::utxo_budget), store.root()) };
    let result = ingest_with(store, opts, &mut prevouts, progress);
    let mut report = result?;
    report.utxos = prevouts.known.len();
    report.utxos_on_disk = prevouts.known.on_disk();
    report.memory = meter.map(|m| {
        m.spilled(prevouts.known.spilled_bytes());
        m.report()
    });
    Ok(report)
}

fn ingest_with(store: &mut Store, opts: &RpcOptions, prevouts: &mut RpcPrevouts, progress: &dyn Fn(Event)) -> Result<IngestReport, Error> {
    let client = RpcClient::new(&opts.url, opts.cookie.as_deref(), opts.retries)?.with_version("1.0");
    let chain = match opts.chain {
        Some(c) => c,
        None => detect_chain(&client)?,
    };
    let to = match opts.to {
        Some(t) => t,
        None => {
            client.call("getblockcount", json!([]))?.as_u64().ok_or_else(|| Error::Rpc { method: "getblockcount".into(), reason: "not a number".into() })?
        }
    };
    if to < opts.from {
        return Err(Error::Input(format!("--to {to} is below --from {}", opts.from)));
    }
    let mut report = IngestReport { chain: chain.name().to_string(), first: Some(opts.from), tip: Some(to), ..Default::default() };
    // Compare stored chunk tips with the node's blocks to resume (or roll back after a reorg).
    let stored_tips: Vec<u64> =
        store.chain(chain.name()).map(|c| c.chunks.iter().map(|ch| ch.last).filter(|h| (opts.from..=to).contains(h)).collect()).unwrap_or_default();
    let tip_hashes: HashMap<u64, String> = stored_tips
        .iter()
        .zip(client.batch("getblockhash", stored_tips.iter().map(|h| json!([h])).collect())?)
        .map(|(h, v)| (*h, v.as_str().unwrap_or_default().to_string()))
        .collect();
    let start = resume_point(store, chain.name(), opts.from, &|h| tip_hashes.get(&h).cloned(), progress)?;
    report.resumed_after = start.checked_sub(1).filter(|_| start > opts.from);
    if start > to {
        return Ok(report);
    }
    let first_hash = client.call("getblockhash", json!([start]))?;
    let mode = detect_getblock_mode(&client, &first_hash, progress)?;
    report.getblock_verbosity = Some(mode.verbosity());
    progress(Event::Planned { from: start, to });
    let mut rows = RowBuilder::new(chain.address_params());
    let info = commit_info("rpc", &split_credentials(&opts.url).0, 0);
    let window = (opts.batch_size.max(1) * opts.concurrency.max(1)) as u64;
    let mut open: Option<(u64, u64, String)> = None;
    let mut h = start;
    while h <= to {
        let heights: Vec<u64> = (h..=to.min(h + window - 1)).collect();
        h += heights.len() as u64;
        for (height, block) in fetch_blocks(&client, &heights, opts.batch_size, opts.concurrency, mode)? {
            prevouts.fetch_missing(&client, &block, opts.batch_size)?;
            let txids: Vec<Txid> = block.txdata.iter().map(|t| t.compute_txid()).collect();
            let counts = rows.push_block(&block, &txids, height, prevouts, true);
            if let Some((path, source)) = prevouts.known.take_error() {
                return Err(Error::Io { path, source });
            }
            report.blocks += 1;
            report.transactions += counts.transactions;
            report.inputs += counts.inputs;
            report.outputs += counts.outputs;
            report.unresolved_inputs += counts.unresolved;
            let first = open.as_ref().map_or(height, |o| o.0);
            open = Some((first, height, block.block_hash().to_string()));
            progress(Event::Block { height, transactions: counts.transactions });
            if height + 1 - first >= opts.chunk_blocks.max(1) || height == to {
                let (first, last, hash) = open.take().expect("open chunk");
                let tables: Vec<(&str, Vec<_>)> = rows.finish();
                store.commit_chunk(chain.name(), first, last, &hash, &tables, info.clone())?;
                report.chunks += 1;
            }
        }
        // Without a memory limit, keep the cache of this run's outputs bounded: what is
        // forgotten is fetched again if spent. With one, the store spills instead.
        if opts.memory_limit.is_none() && prevouts.known.len() > 4_000_000 {
            prevouts.known.clear();
        }
    }
    Ok(report)
}

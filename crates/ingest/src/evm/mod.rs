//! EVM chains from any JSON-RPC node: blocks with their transactions, receipts
//! (`eth_getBlockReceipts`, or `eth_getTransactionReceipt` per transaction where the node lacks
//! it), internal transfers (`trace_block`, else `debug_traceBlockByNumber` with `callTracer`),
//! and the token transfers and value transfers derived from them.
//!
//! Blocks are fetched in batched requests, `concurrency` at a time, and committed in chunks
//! through [`tracehound_tables::Store`] (kill -9 safe). Every block must link to the one before it
//! by hash: when the node reorganizes while we read, the uncommitted blocks are dropped and the
//! stored chunks above the fork point are rolled back before reading again.

pub mod replies;
pub mod rows;
pub mod tokens;

use crate::jsonrpc::{split_credentials, RpcClient};
use crate::{Error, Event};
use datafusion::arrow::record_batch::RecordBatch;
use replies::Block;
use rows::{BlockReplies, EvmRowBuilder, Traces};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tracehound_core::evm::{evm_chain_name, parse_quantity_u64};
use tracehound_tables::Store;

/// How internal transfers are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceMode {
    /// `trace_block` where the node answers it, else `debug_traceBlockByNumber`, else none (with a warning).
    Auto,
    /// Parity-style `trace_block` (erigon, nethermind, reth, anvil).
    Parity,
    /// `debug_traceBlockByNumber` with geth's `callTracer` (geth, reth, anvil).
    Geth,
    /// No traces: no `traces` rows and no internal transfers.
    None,
}

/// Options of an EVM ingest.
#[derive(Debug, Clone)]
pub struct EvmOptions {
    /// Node URL (credentials may be given as `user:password@`).
    pub url: String,
    /// Chain name; by default from `eth_chainId` (`ethereum`, `bsc`, …, `evm_<id>`).
    pub chain: Option<String>,
    /// First block.
    pub from: u64,
    /// Last block; `None` is the node's head minus `confirmations`.
    pub to: Option<u64>,
    /// Blocks behind the head that are not read yet (they may still be reorganized).
    pub confirmations: u64,
    /// Blocks per batched request.
    pub batch_size: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Retries of a failed request.
    pub retries: u32,
    /// Requests per second at most (hosted endpoints), unlimited when `None`.
    pub max_requests_per_second: Option<f64>,
    /// Close a chunk after this many blocks.
    pub chunk_blocks: u64,
    /// …or after this many rows of all tables.
    pub chunk_rows: usize,
    /// How to read internal transfers.
    pub traces: TraceMode,
}

impl EvmOptions {
    /// Defaults: batches of 20 blocks, 4 in flight, 5 retries, chunks of 10,000 blocks or 1M rows.
    pub fn new(url: impl Into<String>) -> EvmOptions {
        EvmOptions {
            url: url.into(),
            chain: None,
            from: 0,
            to: None,
            confirmations: 0,
            batch_size: 20,
            concurrency: 4,
            retries: 5,
            max_requests_per_second: None,
            chunk_blocks: 10_000,
            chunk_rows: 1_000_000,
            traces: TraceMode::Auto,
        }
    }
}

/// What an EVM ingest run did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct EvmReport {
    /// Chain name (schema in SQL).
    pub chain: String,
    /// Its EIP-155 chain id.
    pub chain_id: u64,
    /// Height after which this run resumed.
    pub resumed_after: Option<u64>,
    /// Last height now stored.
    pub tip: Option<u64>,
    /// Blocks written.
    pub blocks: u64,
    /// Transactions written.
    pub transactions: u64,
    /// Logs written.
    pub logs: u64,
    /// Trace rows written.
    pub traces: u64,
    /// Token transfers written.
    pub token_transfers: u64,
    /// Transfers written.
    pub transfers: u64,
    /// Chunks committed.
    pub chunks: u64,
    /// Times the node reorganized under this run (blocks dropped and read again).
    pub reorgs: u64,
    /// Which receipts call was used.
    pub receipts_method: String,
    /// Which traces call was used (`none` when the node has neither).
    pub traces_method: String,
    /// The refresh of the chain's `tokens` table at the end of the run (`None` when it failed:
    /// a warning says why, and `tokens refresh` does it again).
    pub tokens: Option<tokens::TokensReport>,
}

/// What the node can answer, found once per run.
#[derive(Debug, Clone, Copy)]
struct Capabilities {
    block_receipts: bool,
    traces: TraceMode,
}

fn is_unsupported(err: &Value) -> bool {
    let code = err.get("code").and_then(Value::as_i64);
    let msg = err.get("message").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    code == Some(-32601) || msg.contains("not found") || msg.contains("not supported") || msg.contains("unsupported") || msg.contains("does not exist")
}

fn hex_height(h: u64) -> Value {
    Value::String(format!("{h:#x}"))
}

fn geth_params(h: u64) -> Value {
    json!([hex_height(h), {"tracer": "callTracer"}])
}

fn detect(client: &RpcClient, probe: u64, wanted: TraceMode, progress: &dyn Fn(Event)) -> Result<Capabilities, Error> {
    let replies = client.batch_calls(&[
        ("eth_getBlockReceipts", json!([hex_height(probe)])),
        ("trace_block", json!([hex_height(probe)])),
        ("debug_traceBlockByNumber", geth_params(probe)),
    ])?;
    let block_receipts = match &replies[0] {
        Ok(v) => v.is_array(),
        Err(e) if is_unsupported(e) => false,
        Err(e) => return Err(Error::Rpc { method: "eth_getBlockReceipts".into(), reason: e.to_string() }),
    };
    // A method exists unless the node says it does not (geth cannot trace its genesis block,
    // for one, but traces every other).
    let parity = replies[1].as_ref().map_or_else(|e| !is_unsupported(e), Value::is_array);
    let geth = replies[2].as_ref().map_or_else(|e| !is_unsupported(e), Value::is_array);
    let traces = match wanted {
        TraceMode::Auto if parity => TraceMode::Parity,
        TraceMode::Auto if geth => TraceMode::Geth,
        TraceMode::Auto => {
            progress(Event::Warning("the node answers neither trace_block nor debug_traceBlockByNumber: no traces, so internal transfers are missing".into()));
            TraceMode::None
        }
        TraceMode::Parity if !parity => {
            return Err(Error::Input(format!("--traces parity: the node does not answer trace_block ({:?})", replies[1].as_ref().err())))
        }
        TraceMode::Geth if !geth => {
            return Err(Error::Input(format!("--traces geth: the node does not answer debug_traceBlockByNumber ({:?})", replies[2].as_ref().err())))
        }
        other => other,
    };
    Ok(Capabilities { block_receipts, traces })
}

/// Asks the node for its chain id.
pub fn chain_id(client: &RpcClient) -> Result<u64, Error> {
    let v = client.call("eth_chainId", json!([]))?;
    v.as_str().and_then(|s| parse_quantity_u64(s).ok()).ok_or_else(|| Error::Rpc { method: "eth_chainId".into(), reason: format!("not a quantity: {v}") })
}

/// The node's head block number.
pub fn head(client: &RpcClient) -> Result<u64, Error> {
    let v = client.call("eth_blockNumber", json!([]))?;
    v.as_str().and_then(|s| parse_quantity_u64(s).ok()).ok_or_else(|| Error::Rpc { method: "eth_blockNumber".into(), reason: format!("not a quantity: {v}") })
}

fn block_hashes(client: &RpcClient, heights: &[u64]) -> Result<HashMap<u64, String>, Error> {
    let replies = client.batch("eth_getBlockByNumber", heights.iter().map(|h| json!([hex_height(*h), false])).collect())?;
    Ok(heights.iter().zip(replies).filter_map(|(h, b)| b.get("hash").and_then(Value::as_str).map(|s| (*h, s.to_ascii_lowercase()))).collect())
}

/// Fetches blocks `heights` with everything the tables need in one batched request (plus one for
/// receipts where the node lacks `eth_getBlockReceipts`) and hands the replies, in height order,
/// to `use_replies`: they borrow the reply text, which lives only for this call.
fn fetch_batch<R>(
    client: &RpcClient,
    caps: Capabilities,
    heights: &[u64],
    use_replies: impl FnOnce(Vec<BlockReplies<'_>>) -> Result<R, Error>,
) -> Result<R, Error> {
    let mut out = Vec::with_capacity(heights.len());
    let mut calls: Vec<(&'static str, Value)> = vec![];
    for h in heights {
        calls.push(("eth_getBlockByNumber", json!([hex_height(*h), true])));
        if caps.block_receipts {
            calls.push(("eth_getBlockReceipts", json!([hex_height(*h)])));
        }
        match caps.traces {
            TraceMode::Parity => calls.push(("trace_block", json!([hex_height(*h)]))),
            TraceMode::Geth => calls.push(("debug_traceBlockByNumber", geth_params(*h))),
            _ => {}
        }
    }
    // Each result stays a slice of the reply text until it is read into its own type.
    let text = client.batch_text(&calls)?;
    let replies = crate::jsonrpc::read_replies::<&RawValue>(&text, &calls)?;
    let mut it = calls.iter().zip(replies);
    let mut next = |h: u64| -> Result<(&'static str, &RawValue), Error> {
        let ((method, _), r) = it.next().expect("one reply per call");
        let v = r.map_err(|e| Error::Rpc { method: method.to_string(), reason: format!("block {h}: {e}") })?;
        match v {
            Some(raw) if raw.get() != "null" => Ok((*method, raw)),
            _ => Err(Error::Reorg(format!("{method} block {h}: the node has no such block (null reply)"))),
        }
    };
    for h in heights {
        let block: Block = typed(next(*h)?, *h)?;
        let receipts = if caps.block_receipts { typed(next(*h)?, *h)? } else { vec![] };
        let empty = block.transactions.as_ref().is_some_and(Vec::is_empty);
        // A block without transactions has no traces to read (and geth refuses the genesis block).
        let traces = match caps.traces {
            TraceMode::Parity => Traces::Parity(match next(*h) {
                Ok(reply) => typed(reply, *h)?,
                Err(_) if empty => vec![],
                Err(e) => return Err(e),
            }),
            TraceMode::Geth => Traces::Geth(match next(*h) {
                Ok(reply) => typed(reply, *h)?,
                Err(_) if empty => vec![],
                Err(e) => return Err(e),
            }),
            _ => Traces::None,
        };
        out.push(BlockReplies { block, receipts, traces });
    }
    if !caps.block_receipts {
        let hashes: Vec<Value> = out.iter().flat_map(|b| b.block.transactions.iter().flatten()).filter_map(|t| t.hash.as_deref()).map(|h| json!([h])).collect();
        let receipts = client.batch("eth_getTransactionReceipt", hashes)?;
        let mut it = receipts.into_iter();
        for b in &mut out {
            let count = b.block.transactions.as_ref().map_or(0, Vec::len);
            b.receipts = it
                .by_ref()
                .take(count)
                .map(|r| {
                    serde::Deserialize::deserialize(r)
                        .map_err(|e: serde_json::Error| Error::Rpc { method: "eth_getTransactionReceipt".into(), reason: e.to_string() })
                })
                .collect::<Result<_, _>>()?;
        }
    }
    use_replies(out)
}

/// One call's result read into its type; an error names the method and block.
fn typed<'a, T: serde::Deserialize<'a>>((method, raw): (&str, &'a RawValue), height: u64) -> Result<T, Error> {
    serde_json::from_str(raw.get()).map_err(|e| Error::Rpc { method: method.into(), reason: format!("block {height}: {e}") })
}

/// Ingests blocks into `store`, resuming after what it holds (rolling back first when the node
/// no longer has the stored tip: a reorg).
pub fn ingest_evm(store: &mut Store, opts: &EvmOptions, progress: &dyn Fn(Event)) -> Result<EvmReport, Error> {
    let client = RpcClient::new(&opts.url, None, opts.retries)?.with_rate_limit(opts.max_requests_per_second);
    let id = chain_id(&client)?;
    let chain = opts.chain.clone().unwrap_or_else(|| evm_chain_name(id));
    if store.chain(&chain).is_some_and(|c| c.kind() != tracehound_tables::ChainKind::Evm) {
        return Err(Error::Input(format!("{chain} in {} holds UTXO tables; give another --chain name", store.root().display())));
    }
    if let Some(stored) = store.chain(&chain).and_then(|c| c.info.get("chain_id")).and_then(Value::as_u64) {
        if stored != id {
            return Err(Error::Input(format!("{chain} in {} was ingested from chain id {stored}, but this node serves chain id {id}", store.root().display())));
        }
    }
    let mut report = EvmReport { chain: chain.clone(), chain_id: id, ..Default::default() };
    // Probe the last block to read: the genesis block is not traceable on some nodes.
    let probe = match opts.to {
        Some(t) => t,
        None => head(&client)?.saturating_sub(opts.confirmations),
    }
    .max(opts.from);
    let caps = detect(&client, probe, opts.traces, progress)?;
    report.receipts_method = if caps.block_receipts { "eth_getBlockReceipts" } else { "eth_getTransactionReceipt" }.into();
    report.traces_method = match caps.traces {
        TraceMode::Parity => "trace_block",
        TraceMode::Geth => "debug_traceBlockByNumber",
        _ => "none",
    }
    .into();
    let mut info = BTreeMap::new();
    info.insert("kind".to_string(), Value::from("evm"));
    info.insert("chain_id".to_string(), Value::from(id));
    info.insert("source".to_string(), Value::from("evm-rpc"));
    info.insert("location".to_string(), Value::from(split_credentials(&opts.url).0));
    info.insert("traces".to_string(), Value::from(report.traces_method.clone()));

    // A reorg while reading sends us back here; a node that keeps reorganizing is an error.
    for _attempt in 0..20 {
        match ingest_once(store, &client, caps, opts, &chain, &info, &mut report, progress)? {
            Pass::Done => {
                report.tip = store.chain(&chain).and_then(|c| c.tip()).map(|t| t.0);
                // Token metadata of what this run added (all of it after a reorg under the run).
                let since = report.resumed_after.map(|h| h + 1).filter(|_| report.reorgs == 0);
                match tokens::refresh_tokens(store, &chain, Some(&client), since) {
                    Ok(t) => report.tokens = Some(t),
                    Err(e) => progress(Event::Warning(format!(
                        "token metadata of {chain} not refreshed: {e}; run `tracehound tokens refresh --chain {chain} --rpc …`"
                    ))),
                }
                return Ok(report);
            }
            Pass::Reorged => {
                report.reorgs += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Err(Error::Rpc { method: "eth_getBlockByNumber".into(), reason: "the node reorganized 20 times while being read; try again with --confirmations".into() })
}

enum Pass {
    Done,
    Reorged,
}

#[allow(clippy::too_many_arguments)]
fn ingest_once(
    store: &mut Store,
    client: &RpcClient,
    caps: Capabilities,
    opts: &EvmOptions,
    chain: &str,
    info: &BTreeMap<String, Value>,
    report: &mut EvmReport,
    progress: &dyn Fn(Event),
) -> Result<Pass, Error> {
    let head = head(client)?;
    let to = match opts.to {
        Some(t) if t > head => return Err(Error::Input(format!("--to {t} is above the node's head {head}"))),
        Some(t) => t,
        None => match head.checked_sub(opts.confirmations) {
            Some(t) => t,
            None => return Ok(Pass::Done),
        },
    };
    let stored_tips: Vec<u64> = store.chain(chain).map(|c| c.chunks.iter().map(|ch| ch.last).filter(|h| *h <= head).collect()).unwrap_or_default();
    if let Some((tip, _)) = store.chain(chain).and_then(|c| c.tip()) {
        if tip > head {
            progress(Event::Warning(format!(
                "the node's head {head} is below the stored tip {tip} of {chain} (a node still syncing, or a reorg to a shorter chain); blocks above {head} are checked once the node has them"
            )));
        }
    }
    // The newest chunk first: when the node agrees with it, nothing below needs a look.
    let top: Vec<u64> = stored_tips.last().copied().into_iter().collect();
    let mut hashes = block_hashes(client, &top)?;
    let top_agrees =
        store.chain(chain).and_then(|c| c.chunks.iter().rev().find(|ch| ch.last <= head)).is_some_and(|ch| hashes.get(&ch.last) == Some(&ch.last_hash));
    if !top_agrees {
        for part in stored_tips.chunks(100) {
            hashes.extend(block_hashes(client, part)?);
        }
    }
    let start = crate::resume_point(store, chain, opts.from, &|h| hashes.get(&h).cloned(), progress)?;
    refresh_imports(store, chain, progress)?;
    report.resumed_after = report.resumed_after.or(start.checked_sub(1).filter(|_| start > opts.from));
    if start > to {
        return Ok(Pass::Done);
    }
    progress(Event::Planned { from: start, to });
    let mut pending = PendingTables::default();
    let mut prev_hash: Option<String> = store.chain(chain).and_then(|c| c.tip()).filter(|(h, _)| h + 1 == start).map(|(_, hash)| hash.to_string());
    let mut open_first: Option<u64> = None;
    // A small newest chunk (as `sync` leaves at the head) grows instead of being followed by
    // another small file: its rows are carried into the next commit, which replaces it.
    let mut carried: Option<Vec<(String, Vec<RecordBatch>)>> = None;
    let mut carried_rows = 0usize;
    let small = |c: &&tracehound_tables::Chunk| {
        c.last + 1 == start && c.last + 1 - c.first < opts.chunk_blocks && (c.tables.values().map(|f| f.rows).sum::<u64>() as usize) < opts.chunk_rows / 2
    };
    if let Some(last) = store.chain(chain).and_then(|c| c.chunks.last()).filter(small) {
        carried_rows = last.tables.values().map(|f| f.rows as usize).sum();
        let mut tables = vec![];
        for (name, f) in &last.tables {
            tables.push((name.clone(), tracehound_tables::export::read_chunk_file(&store.root().join(&f.path))?));
        }
        open_first = Some(last.first);
        carried = Some(tables);
    }
    // Blocks are fetched by `concurrency` workers, one batch at a time each, in height order,
    // while this thread turns the batches into rows in order: the node always has requests to
    // answer, with no pause between groups of batches. Workers stay at most `ahead` batches in
    // front of the rows, which bounds the replies held in memory.
    let batch = opts.batch_size.max(1) as u64;
    let n_batches = (to - start) / batch + 1;
    let workers = opts.concurrency.max(1);
    let ahead = 3 * workers as u64;
    let next_batch = AtomicU64::new(0);
    let consumed = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::channel::<(u64, Result<BatchRows, Error>)>();
        for _ in 0..workers {
            let sender = sender.clone();
            let (next_batch, consumed, stop) = (&next_batch, &consumed, &stop);
            scope.spawn(move || {
                // A worker that panics stops the others, so the reader sees the channel close.
                let _on_panic = StopOnPanic(stop);
                loop {
                    let k = next_batch.fetch_add(1, Ordering::SeqCst);
                    if k >= n_batches {
                        return;
                    }
                    while k >= consumed.load(Ordering::SeqCst) + ahead {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let first = start + k * batch;
                    let heights: Vec<u64> = (first..=to.min(first + batch - 1)).collect();
                    // Rows are made here, where the replies were parsed: their memory is freed
                    // by the thread that allocated it.
                    let fetched = fetch_batch(client, caps, &heights, |replies| BatchRows::build(chain, replies));
                    let failed = fetched.is_err();
                    // A closed channel: the reader stopped (an error or a reorg); so do we.
                    if sender.send((k, fetched)).is_err() || failed {
                        stop.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            });
        }
        drop(sender);
        // Whatever way this returns, the workers stop after their current request.
        let _stop_workers = StopOnDrop(&stop);
        let mut waiting: BTreeMap<u64, Result<BatchRows, Error>> = BTreeMap::new();
        let mut want = 0u64;
        while want < n_batches {
            let fetched = match waiting.remove(&want) {
                Some(f) => f,
                None => match receiver.recv() {
                    Ok((k, f)) => {
                        waiting.insert(k, f);
                        continue;
                    }
                    // Every worker stopped: one of them failed on a later batch.
                    Err(_) => std::mem::take(&mut waiting).into_values().find_map(Result::err).map_or_else(
                        || Err(Error::Rpc { method: "eth_getBlockByNumber".into(), reason: format!("the fetching threads stopped before batch {want}") }),
                        Err,
                    ),
                },
            };
            want += 1;
            consumed.store(want, Ordering::SeqCst);
            let fetched = match fetched {
                Ok(f) => f,
                // A block the node announced and no longer has: its chain got shorter under us.
                Err(e @ Error::Reorg(_)) => {
                    progress(Event::Warning(format!("{e}; reading again")));
                    return Ok(Pass::Reorged);
                }
                Err(e) => return Err(e),
            };
            // Where the uncommitted part of this batch's tables starts, per table.
            let mut taken = [0usize; 6];
            let mut upto = [0usize; 6];
            for link in &fetched.blocks {
                if prev_hash.as_ref().is_some_and(|p| *p != link.parent_hash) {
                    progress(Event::Warning(format!("block {} does not follow the block before it: the node reorganized; reading again", link.counts.number)));
                    return Ok(Pass::Reorged);
                }
                let counts = link.counts;
                let height = counts.number;
                prev_hash = Some(link.hash.clone());
                report.blocks += 1;
                report.transactions += counts.transactions;
                report.logs += counts.logs;
                report.traces += counts.traces;
                report.token_transfers += counts.token_transfers;
                report.transfers += counts.transfers;
                for (u, n) in upto.iter_mut().zip(table_rows(&counts)) {
                    *u += n;
                }
                let first = *open_first.get_or_insert(height);
                progress(Event::Block { height, transactions: counts.transactions });
                let held_rows = pending.rows() + upto.iter().zip(&taken).map(|(u, t)| u - t).sum::<usize>();
                if height + 1 - first >= opts.chunk_blocks.max(1) || held_rows + carried_rows >= opts.chunk_rows || height == to {
                    pending.take(&fetched.tables, &mut taken, &upto);
                    let mut tables = pending.finish();
                    match carried.take() {
                        Some(old) => {
                            for (name, batches) in &mut tables {
                                if let Some((_, before)) = old.iter().find(|(n, _)| n == name) {
                                    let mut all = before.clone();
                                    all.append(batches);
                                    *batches = all;
                                }
                            }
                            store.replace_last_chunk(chain, first, height, &link.hash, &tables, info.clone())?;
                            carried_rows = 0;
                        }
                        None => store.commit_chunk(chain, first, height, &link.hash, &tables, info.clone())?,
                    }
                    refresh_imports(store, chain, progress)?;
                    report.chunks += 1;
                    open_first = None;
                }
            }
            pending.take(&fetched.tables, &mut taken, &upto);
        }
        Ok(Pass::Done)
    })
}

/// Imported transfers that the node's blocks now give are no longer read (node rows win); rows a
/// rolled-back block had are read again.
fn refresh_imports(store: &mut Store, chain: &str, progress: &dyn Fn(Event)) -> Result<(), Error> {
    if let Some(n) = crate::transfers_csv::refresh_imported_transfers(store, chain)? {
        if n > 0 {
            progress(Event::Warning(format!("{n} imported transfers of {chain} are now read from the node's blocks instead")));
        }
    }
    Ok(())
}

/// One block of a fetched batch: what links it to its parent, and its row counts.
struct BlockLink {
    hash: String,
    parent_hash: String,
    counts: rows::BlockCounts,
}

/// A batch of blocks turned into rows by a fetching thread.
struct BatchRows {
    blocks: Vec<BlockLink>,
    /// Per table, in [`tracehound_tables::evm_schema::EVM_TABLES`] order, the rows of all the
    /// batch's blocks in height order.
    tables: Vec<(&'static str, Vec<RecordBatch>)>,
}

impl BatchRows {
    /// The rows of `replies` (blocks in height order) for `chain`'s tables.
    fn build(chain: &str, replies: Vec<BlockReplies<'_>>) -> Result<BatchRows, Error> {
        let mut rows = EvmRowBuilder::new(chain);
        let mut blocks = Vec::with_capacity(replies.len());
        for b in replies {
            let hash = b.block.hash.as_deref().unwrap_or_default().to_ascii_lowercase();
            let parent_hash = b.block.parent_hash.as_deref().unwrap_or_default().to_ascii_lowercase();
            let pushed = rows.push_block(b);
            let counts = match pushed {
                Ok(c) => c,
                Err(e) => {
                    rows.finish()?;
                    return Err(e);
                }
            };
            blocks.push(BlockLink { hash, parent_hash, counts });
        }
        Ok(BatchRows { blocks, tables: rows.finish()? })
    }
}

/// Rows of one block per table, in [`tracehound_tables::evm_schema::EVM_TABLES`] order.
fn table_rows(c: &rows::BlockCounts) -> [usize; 6] {
    [1, c.transactions as usize, c.logs as usize, c.traces as usize, c.token_transfers as usize, c.transfers as usize]
}

/// The rows of the open chunk, as slices of the fetched batches.
#[derive(Default)]
struct PendingTables {
    tables: Vec<(&'static str, Vec<RecordBatch>)>,
    rows: usize,
}

impl PendingTables {
    fn rows(&self) -> usize {
        self.rows
    }

    /// Adds rows `taken[t]..upto[t]` of each table of `batch`, and marks them taken.
    fn take(&mut self, batch: &[(&'static str, Vec<RecordBatch>)], taken: &mut [usize; 6], upto: &[usize; 6]) {
        if self.tables.is_empty() {
            self.tables = batch.iter().map(|(name, _)| (*name, vec![])).collect();
        }
        for (t, (_, batches)) in batch.iter().enumerate() {
            let (mut from, to) = (taken[t], upto[t]);
            // The batch's rows of one table may come in several record batches.
            let mut offset = 0;
            for b in batches {
                let end = offset + b.num_rows();
                if from < end && from < to {
                    let stop = to.min(end);
                    self.tables[t].1.push(b.slice(from - offset, stop - from));
                    self.rows += stop - from;
                    from = stop;
                }
                offset = end;
            }
            taken[t] = to;
        }
    }

    /// The held rows per table (an empty batch for a table without any); starts over.
    fn finish(&mut self) -> Vec<(&'static str, Vec<RecordBatch>)> {
        self.rows = 0;
        let mut tables = std::mem::take(&mut self.tables);
        for (name, batches) in &mut tables {
            if batches.is_empty() {
                batches.push(RecordBatch::new_empty(tracehound_tables::evm_schema::evm_table(name).expect("an EVM table")));
            }
        }
        tables
    }
}

/// Sets the flag when dropped during a panic: the other fetching threads stop too.
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

/// Sets the flag when dropped: tells fetching threads to stop, however their reader returns.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Options of `sync`: ingest, then follow the head.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// What to ingest each round (`to` is ignored: the head minus confirmations).
    pub ingest: EvmOptions,
    /// Wait between polls of the head.
    pub poll: Duration,
    /// Stop after this many rounds (forever when `None`).
    pub rounds: Option<u64>,
}

/// Follows the node's head forever (or `rounds` rounds): each round ingests up to the head
/// minus the confirmations, rolling back reorganized blocks first.
pub fn sync_evm(store: &mut Store, opts: &SyncOptions, progress: &dyn Fn(Event), on_round: &dyn Fn(&EvmReport)) -> Result<(), Error> {
    let mut ingest = opts.ingest.clone();
    ingest.to = None;
    let mut round = 0u64;
    loop {
        match ingest_evm(store, &ingest, progress) {
            Ok(r) => on_round(&r),
            // The node is down or failing: try again next round; everything committed stays.
            Err(e @ Error::Rpc { .. }) if round > 0 => {
                progress(Event::Warning(format!("{e}; trying again in {:?}", opts.poll)));
            }
            Err(e) => return Err(e),
        }
        round += 1;
        if opts.rounds.is_some_and(|n| round >= n) {
            return Ok(());
        }
        std::thread::sleep(opts.poll);
    }
}

//! Ingest from Bitcoin Core's block files: scan headers, pick the best chain, then read, resolve
//! and write its blocks in three threads: read + decode + the rows that need no input resolution
//! (`blocks`, `outputs`) → resolve inputs + their rows (`transactions`, `inputs`) → write Parquet.
//! Chunks are written batch by batch, so memory holds a batch of rows, not a chunk.

use super::blkfile::{BlockFiles, IndexedBlock};
use super::chain::best_chain;
use super::rows::{utxo_tables, ChainBatch, ChainRows, SpendRows};
use super::utxo_spill::UtxoStore;
use super::{commit_info, IngestReport};
use crate::resume_point;
use crate::{Error, Event};
use bitcoin::{Block, Txid};
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::ScopedJoinHandle;
use tracehound_core::UtxoChain;
use tracehound_memory::StageMeter;
use tracehound_tables::{OpenChunk, Store, SyncedChunk};

/// Options of a block-file ingest.
#[derive(Debug, Clone)]
pub struct BlkOptions {
    /// Bitcoin Core's data directory or its `blocks` folder.
    pub blocks_dir: PathBuf,
    /// The chain, when the files' magic should not decide it.
    pub chain: Option<UtxoChain>,
    /// Last height to ingest (the tip when `None`).
    pub to: Option<u64>,
    /// Skip corrupt records with a warning instead of stopping.
    pub skip_corrupt: bool,
    /// Close a chunk after this many blocks…
    pub chunk_blocks: u64,
    /// …or after this many transactions, whichever comes first.
    pub chunk_transactions: u64,
    /// Memory budget of the run in bytes (`None`: no limit, nothing spilled). The unspent-output
    /// map gets what the pipeline leaves of it ([`utxo_budget`]); beyond that the oldest unspent
    /// outputs are written to scratch files under the data directory.
    pub memory_limit: Option<u64>,
    /// The unspent-output map's own budget in bytes, instead of the share of `memory_limit`
    /// (tests force spilling with a tiny one).
    pub utxo_map_bytes: Option<u64>,
}

impl BlkOptions {
    /// Defaults: the whole best chain, chunks of up to 1,000 blocks or 100,000 transactions.
    pub fn new(blocks_dir: impl Into<PathBuf>) -> BlkOptions {
        BlkOptions {
            blocks_dir: blocks_dir.into(),
            chain: None,
            to: None,
            skip_corrupt: false,
            chunk_blocks: 1000,
            chunk_transactions: 100_000,
            memory_limit: None,
            utxo_map_bytes: None,
        }
    }
}

/// Memory the ingest pipeline needs besides the unspent-output map: blocks in flight between the
/// threads, a batch of Arrow rows on each side, the Parquet writers' pages and the allocator's
/// slack. Measured as the peak RSS of an ingest minus its map (BENCHMARKS.md, "Ingest under a
/// memory budget").
pub const PIPELINE_BYTES: u64 = 192 << 20;

/// The unspent-output map's share of a memory limit: what [`PIPELINE_BYTES`] leaves, and at
/// least a quarter of the limit (a limit below what the pipeline needs is exceeded regardless).
pub fn utxo_budget(memory_limit: u64) -> u64 {
    memory_limit.saturating_sub(PIPELINE_BYTES).max(memory_limit / 4)
}

/// Transactions per batch of rows handed to the writer: chunks are written in pieces this size,
/// so that memory holds a batch of rows, not a whole chunk. 2,048 with row groups of 8,192 rows
/// took the peak RSS of a 1M-transaction ingest from 280-330 to 215-235 MiB at the same speed
/// (BENCHMARKS.md).
const BATCH_TRANSACTIONS: u64 = 2_048;

struct Decoded {
    height: u64,
    block: Block,
    txids: Vec<Txid>,
    emit: bool,
    /// Set on the last block of a batch: the reader's rows of the batch, and whether the chunk
    /// closes with this block.
    boundary: Option<(ChainBatch, bool)>,
}

enum ReadMsg {
    Block(Box<Decoded>),
    /// The reader stops before the end of the chain (a block that does not decode), with its rows
    /// of the open chunk: with `--skip-corrupt` the warning to give, without it its error follows.
    Stopped {
        warning: Option<String>,
        rows: Option<ChainBatch>,
    },
}

enum WriteMsg {
    /// Rows of the chunk that starts at block `first`, one batch per table in
    /// [`UTXO_TABLES`](tracehound_tables::schema::UTXO_TABLES) order.
    Rows { first: u64, tables: [(&'static str, RecordBatch); 4] },
    /// The chunk is complete: blocks `first..=last`.
    Close { last: u64, last_hash: String },
}

/// Ingests the best chain of the block files into `store`, resuming after what it already holds.
pub fn ingest_blk_files(store: &mut Store, opts: &BlkOptions, progress: &dyn Fn(Event)) -> Result<IngestReport, Error> {
    let meter = opts.memory_limit.map(|limit| StageMeter::start("ingest", limit));
    let mut report = ingest_metered(store, opts, meter.as_ref(), progress)?;
    report.memory = meter.map(|m| m.report());
    Ok(report)
}

fn ingest_metered(store: &mut Store, opts: &BlkOptions, meter: Option<&StageMeter>, progress: &dyn Fn(Event)) -> Result<IngestReport, Error> {
    let mut files = BlockFiles::open(&opts.blocks_dir, opts.chain)?;
    let chain = files.chain;
    progress(Event::Phase(format!("scanning {} block files of {chain}", files.files.len())));
    let scan = files.scan(opts.skip_corrupt)?;
    for s in &scan.skipped {
        progress(Event::Warning(format!("skipped corrupt record: {s}")));
    }
    let mut indexed = scan.blocks;
    let mut skipped = scan.skipped;
    // A block still being written at the end of the newest file is simply not seen this run: the
    // chain ends at the last complete block, and the next run (resuming after the stored tip)
    // finds the block whole.
    let partial_tail = scan.partial_tail;
    let mut buf = Vec::new();
    // The height of a chain that does not start at genesis comes from its first block's coinbase.
    let (best, root_height) = loop {
        let best = best_chain(&indexed);
        let Some(root) = best.blocks.first().copied() else {
            if !skipped.is_empty() || partial_tail.is_some() {
                return Ok(IngestReport { chain: chain.name().to_string(), bytes_read: scan.bytes, skipped, partial_tail, ..Default::default() });
            }
            return Err(Error::Input(format!("no blocks found in {}", files.dir.display())));
        };
        if best.starts_at_genesis {
            break (best, 0);
        }
        let height = files.read_block(root.location, &mut buf).and_then(|block| {
            block.bip34_block_height().map_err(|e| Error::Corrupt {
                file: files.files[root.location.file as usize].clone(),
                offset: root.location.offset - 8,
                reason: format!("the first stored block is not the genesis block (pruned data?) and its height cannot be read from the coinbase (BIP34): {e}"),
            })
        });
        match height {
            Ok(h) => break (best, h),
            Err(e @ Error::Corrupt { .. }) if opts.skip_corrupt => {
                progress(Event::Warning(format!("skipped: {e}")));
                skipped.push(e.to_string());
                indexed.retain(|b| b.hash != root.hash);
            }
            Err(e) => return Err(e),
        }
    };
    let report_stale = best.stale;
    let mut report =
        IngestReport { chain: chain.name().to_string(), stale_blocks: report_stale, bytes_read: scan.bytes, skipped, partial_tail, ..Default::default() };
    let mut blocks: Vec<IndexedBlock> = best.blocks;
    if let Some(to) = opts.to {
        if to < root_height {
            return Err(Error::Input(format!("--to {to} is below the first stored block, height {root_height}")));
        }
        blocks.truncate((to - root_height + 1) as usize);
    }
    let last_height = root_height + blocks.len() as u64 - 1;
    let hash_at = |h: u64| (h >= root_height && h <= last_height).then(|| blocks[(h - root_height) as usize].hash.to_string());
    let start = resume_point(store, chain.name(), root_height, &hash_at, progress)?;
    report.first = Some(root_height);
    report.tip = Some(last_height);
    report.resumed_after = start.checked_sub(1).filter(|_| start > root_height);
    if start > last_height {
        return Ok(report);
    }
    progress(Event::Planned { from: start, to: last_height });
    if start > root_height {
        progress(Event::Phase(format!("rebuilding unspent outputs of heights {root_height}..{start}")));
    }
    let info = commit_info("blk", &files.dir.display().to_string(), best.stale);
    let params = chain.address_params();
    let chunk_blocks = opts.chunk_blocks.max(1);
    let chunk_txs = opts.chunk_transactions.max(1);
    let skip_corrupt = opts.skip_corrupt;
    let utxos = UtxoStore::new(opts.utxo_map_bytes.or(opts.memory_limit.map(utxo_budget)), store.root());

    std::thread::scope(|s| -> Result<(), Error> {
        let (block_tx, block_rx) = sync_channel::<ReadMsg>(8);
        let (chunk_tx, chunk_rx) = sync_channel::<WriteMsg>(1);
        let chunking = Chunking { blocks: chunk_blocks, transactions: chunk_txs };
        let reader = s.spawn(move || read_blocks(&mut files, &blocks, root_height, start, skip_corrupt, params, chunking, block_tx));
        let chain_name = chain.name();
        let writer = s.spawn(move || write_chunks(store, chain_name, chunk_rx, info));
        let built = build_rows(block_rx, chunk_tx, params, utxos, &mut report, meter, progress);
        let read = reader.join().expect("reader thread");
        let written = writer.join().expect("writer thread");
        // Report the first cause: a writer error makes the builder's send fail, not the reverse.
        written?;
        read?;
        built
    })?;
    Ok(report)
}

/// Where chunks and batches end, decided by the reader from the blocks it emits.
#[derive(Clone, Copy)]
struct Chunking {
    blocks: u64,
    transactions: u64,
}

/// Reads and decodes the chain's blocks, computes txids and builds the rows that need no input
/// resolution (`blocks`, `outputs`), marking where batches and chunks end.
#[allow(clippy::too_many_arguments)]
fn read_blocks(
    files: &mut BlockFiles,
    blocks: &[IndexedBlock],
    root_height: u64,
    start: u64,
    skip_corrupt: bool,
    params: tracehound_core::chain::AddressParams,
    chunking: Chunking,
    out: SyncSender<ReadMsg>,
) -> Result<(), Error> {
    let mut buf = Vec::with_capacity(4 << 20);
    let mut rows = ChainRows::new(params);
    let mut chunk_first: Option<u64> = None;
    let (mut chunk_txs, mut batch_txs) = (0u64, 0u64);
    let last_height = root_height + blocks.len() as u64 - 1;
    for (i, b) in blocks.iter().enumerate() {
        let height = root_height + i as u64;
        let block = match files.read_block(b.location, &mut buf) {
            Ok(block) => block,
            Err(e) => {
                let open = chunk_first.is_some().then(|| rows.finish());
                if matches!(e, Error::Corrupt { .. }) && skip_corrupt {
                    // The chain cannot continue past a block that does not decode.
                    let _ = out.send(ReadMsg::Stopped { warning: Some(format!("stopped before height {height}: {e}")), rows: open });
                    return Ok(());
                }
                // What was read before the error is a valid prefix: it is committed, then the error reported.
                let _ = out.send(ReadMsg::Stopped { warning: None, rows: open });
                return Err(e);
            }
        };
        let txids = block.txdata.iter().map(|t| t.compute_txid()).collect::<Vec<_>>();
        let emit = height >= start;
        let mut boundary = None;
        if emit {
            rows.push_block(&block, &txids, height);
            let first = *chunk_first.get_or_insert(height);
            let n = block.txdata.len() as u64;
            chunk_txs += n;
            batch_txs += n;
            let close = height + 1 - first >= chunking.blocks || chunk_txs >= chunking.transactions || height == last_height;
            if close || batch_txs >= BATCH_TRANSACTIONS {
                boundary = Some((rows.finish(), close));
                batch_txs = 0;
            }
            if close {
                chunk_first = None;
                chunk_txs = 0;
            }
        }
        if out.send(ReadMsg::Block(Box::new(Decoded { height, block, txids, emit, boundary }))).is_err() {
            return Ok(()); // the builder stopped; its error is reported
        }
    }
    Ok(())
}

/// Resolves every input through the unspent-output map and builds the `transactions` and
/// `inputs` rows; hands each batch, with the reader's rows, to the writer.
fn build_rows(
    input: Receiver<ReadMsg>,
    output: SyncSender<WriteMsg>,
    params: tracehound_core::chain::AddressParams,
    mut utxos: UtxoStore,
    report: &mut IngestReport,
    meter: Option<&StageMeter>,
    progress: &dyn Fn(Event),
) -> Result<(), Error> {
    let result = resolve_blocks(input, output, params, &mut utxos, report, progress);
    report.utxos = utxos.len();
    report.utxos_on_disk = utxos.on_disk();
    if let Some(m) = meter {
        m.spilled(utxos.spilled_bytes());
    }
    result
}

fn resolve_blocks(
    input: Receiver<ReadMsg>,
    output: SyncSender<WriteMsg>,
    params: tracehound_core::chain::AddressParams,
    utxos: &mut UtxoStore,
    report: &mut IngestReport,
    progress: &dyn Fn(Event),
) -> Result<(), Error> {
    let mut rows = SpendRows::new(params);
    let mut open: Option<(u64, u64, String)> = None; // first, last, last hash of the open chunk
    let mut last_written = report.resumed_after;
    while let Ok(msg) = input.recv() {
        let d = match msg {
            ReadMsg::Block(d) => d,
            ReadMsg::Stopped { warning, rows: chain_rows } => {
                if let (Some((first, last, last_hash)), Some(chain_rows)) = (open.take(), chain_rows) {
                    let tables = utxo_tables(chain_rows, rows.finish());
                    if output.send(WriteMsg::Rows { first, tables }).is_ok() && output.send(WriteMsg::Close { last, last_hash }).is_ok() {
                        report.chunks += 1;
                    }
                }
                if let Some(w) = warning {
                    report.tip = last_written;
                    progress(Event::Warning(w));
                }
                break;
            }
        };
        let counts = rows.push_block(&d.block, &d.txids, d.height, utxos, d.emit);
        if let Some((path, source)) = utxos.take_error() {
            // The block's inputs may be resolved wrongly: stop before its rows are written.
            return Err(Error::Io { path, source });
        }
        if !d.emit {
            continue;
        }
        report.blocks += 1;
        report.transactions += counts.transactions;
        report.inputs += counts.inputs;
        report.outputs += counts.outputs;
        report.unresolved_inputs += counts.unresolved;
        last_written = Some(d.height);
        let hash = d.block.block_hash().to_string();
        let first = open.as_ref().map_or(d.height, |o| o.0);
        open = Some((first, d.height, hash));
        progress(Event::Block { height: d.height, transactions: counts.transactions });
        if let Some((chain_rows, close)) = d.boundary {
            let tables = utxo_tables(chain_rows, rows.finish());
            if output.send(WriteMsg::Rows { first, tables }).is_err() {
                return Ok(()); // the writer failed; its error is reported
            }
            if close {
                let (_, last, last_hash) = open.take().expect("open chunk");
                if output.send(WriteMsg::Close { last, last_hash }).is_err() {
                    return Ok(());
                }
                report.chunks += 1;
            }
        }
    }
    Ok(())
}

/// A closed chunk whose files are being fsynced: the sync thread, the chunk's last block and
/// that block's hash.
type Syncing<'scope> = (ScopedJoinHandle<'scope, Result<SyncedChunk, tracehound_tables::Error>>, u64, String);

/// Writes batches into the open chunk's files and commits each chunk when it closes. A closed
/// chunk's files are fsynced on a thread of their own while the next chunk is written; chunks are
/// committed in order, each only once its files are on disk. When writing fails, the chunk
/// already synced is still committed.
fn write_chunks(store: &mut Store, chain: &str, input: Receiver<WriteMsg>, info: BTreeMap<String, serde_json::Value>) -> Result<(), Error> {
    std::thread::scope(|s| {
        let mut open: Option<OpenChunk> = None;
        let mut syncing: Option<Syncing<'_>> = None;
        let mut result = Ok(());
        while let Ok(msg) = input.recv() {
            result = match msg {
                WriteMsg::Rows { first, tables } => write_rows(store, chain, &mut open, first, &tables),
                WriteMsg::Close { last, last_hash } => open.take().expect("a chunk closes after its rows").close().map_err(Error::from).and_then(|closed| {
                    commit_synced(store, syncing.take(), &info)?;
                    syncing = Some((s.spawn(move || closed.sync()), last, last_hash));
                    Ok(())
                }),
            };
            if result.is_err() {
                break;
            }
        }
        result.and(commit_synced(store, syncing, &info))
    })
}

/// Appends a batch of each table to the open chunk, opening it at block `first` if none is.
fn write_rows(store: &Store, chain: &str, open: &mut Option<OpenChunk>, first: u64, tables: &[(&'static str, RecordBatch); 4]) -> Result<(), Error> {
    let chunk = match open {
        Some(c) => c,
        None => {
            let schemas: Vec<(&str, _)> = tables.iter().map(|(t, b)| (*t, b.schema())).collect();
            open.insert(store.open_chunk(chain, first, &schemas)?)
        }
    };
    for (i, (_, batch)) in tables.iter().enumerate() {
        chunk.write(i, batch)?;
    }
    Ok(())
}

/// Waits for a chunk's files to be on disk, then commits it.
fn commit_synced(store: &mut Store, pending: Option<Syncing<'_>>, info: &BTreeMap<String, serde_json::Value>) -> Result<(), Error> {
    if let Some((sync, last, last_hash)) = pending {
        let synced = sync.join().expect("sync thread")?;
        store.commit_synced_chunk(synced, last, &last_hash, info.clone())?;
    }
    Ok(())
}

//! Ingest from Bitcoin Core's block files: scan headers, pick the best chain, then read, resolve
//! and write its blocks in three threads (read + decode → resolve + build rows → write Parquet).

use super::blkfile::{BlockFiles, IndexedBlock};
use super::chain::best_chain;
use super::rows::RowBuilder;
use super::utxo::UtxoMap;
use super::{commit_info, IngestReport};
use crate::resume_point;
use crate::{Error, Event};
use bitcoin::{Block, Txid};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use tracehound_core::UtxoChain;
use tracehound_tables::Store;

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
}

impl BlkOptions {
    /// Defaults: the whole best chain, chunks of up to 1,000 blocks or 100,000 transactions.
    pub fn new(blocks_dir: impl Into<PathBuf>) -> BlkOptions {
        BlkOptions { blocks_dir: blocks_dir.into(), chain: None, to: None, skip_corrupt: false, chunk_blocks: 1000, chunk_transactions: 100_000 }
    }
}

struct Decoded {
    height: u64,
    block: Block,
    txids: Vec<Txid>,
    emit: bool,
}

enum ReadMsg {
    Block(Box<Decoded>),
    /// `--skip-corrupt` met a block that does not decode: the chain ends before it.
    StoppedAt(String),
}

struct ChunkRows {
    first: u64,
    last: u64,
    last_hash: String,
    tables: Vec<(&'static str, Vec<datafusion::arrow::record_batch::RecordBatch>)>,
}

/// Ingests the best chain of the block files into `store`, resuming after what it already holds.
pub fn ingest_blk_files(store: &mut Store, opts: &BlkOptions, progress: &dyn Fn(Event)) -> Result<IngestReport, Error> {
    let mut files = BlockFiles::open(&opts.blocks_dir, opts.chain)?;
    let chain = files.chain;
    progress(Event::Phase(format!("scanning {} block files of {chain}", files.files.len())));
    let scan = files.scan(opts.skip_corrupt)?;
    for s in &scan.skipped {
        progress(Event::Warning(format!("skipped corrupt record: {s}")));
    }
    let mut indexed = scan.blocks;
    let mut skipped = scan.skipped;
    let mut buf = Vec::new();
    // The height of a chain that does not start at genesis comes from its first block's coinbase.
    let (best, root_height) = loop {
        let best = best_chain(&indexed);
        let Some(root) = best.blocks.first().copied() else {
            if !skipped.is_empty() {
                return Ok(IngestReport { chain: chain.name().to_string(), bytes_read: scan.bytes, skipped, ..Default::default() });
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
    let mut report = IngestReport { chain: chain.name().to_string(), stale_blocks: report_stale, bytes_read: scan.bytes, skipped, ..Default::default() };
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

    std::thread::scope(|s| -> Result<(), Error> {
        let (block_tx, block_rx) = sync_channel::<ReadMsg>(8);
        let (chunk_tx, chunk_rx) = sync_channel::<ChunkRows>(1);
        let reader = s.spawn(move || read_blocks(&mut files, &blocks, root_height, start, skip_corrupt, block_tx));
        let chain_name = chain.name();
        let writer = s.spawn(move || write_chunks(store, chain_name, chunk_rx, info));
        let built = build_rows(block_rx, chunk_tx, params, chunk_blocks, chunk_txs, &mut report, progress);
        let read = reader.join().expect("reader thread");
        let written = writer.join().expect("writer thread");
        // Report the first cause: a writer error makes the builder's send fail, not the reverse.
        written?;
        read?;
        built
    })?;
    Ok(report)
}

fn read_blocks(
    files: &mut BlockFiles,
    blocks: &[IndexedBlock],
    root_height: u64,
    start: u64,
    skip_corrupt: bool,
    out: SyncSender<ReadMsg>,
) -> Result<(), Error> {
    let mut buf = Vec::with_capacity(4 << 20);
    for (i, b) in blocks.iter().enumerate() {
        let height = root_height + i as u64;
        let block = match files.read_block(b.location, &mut buf) {
            Ok(block) => block,
            Err(e @ Error::Corrupt { .. }) if skip_corrupt => {
                // The chain cannot continue past a block that does not decode.
                let _ = out.send(ReadMsg::StoppedAt(format!("stopped before height {height}: {e}")));
                return Ok(());
            }
            // Dropping the sender ends the builder; what it built so far is a valid prefix.
            Err(e) => return Err(e),
        };
        let txids = block.txdata.iter().map(|t| t.compute_txid()).collect();
        if out.send(ReadMsg::Block(Box::new(Decoded { height, block, txids, emit: height >= start }))).is_err() {
            return Ok(()); // the builder stopped; its error is reported
        }
    }
    Ok(())
}

fn build_rows(
    input: Receiver<ReadMsg>,
    output: SyncSender<ChunkRows>,
    params: tracehound_core::chain::AddressParams,
    chunk_blocks: u64,
    chunk_txs: u64,
    report: &mut IngestReport,
    progress: &dyn Fn(Event),
) -> Result<(), Error> {
    let mut rows = RowBuilder::new(params);
    let mut utxos = UtxoMap::new();
    let mut open: Option<(u64, u64, String)> = None; // first, last, last hash of the open chunk
    let mut last_written = report.resumed_after;
    while let Ok(msg) = input.recv() {
        let d = match msg {
            ReadMsg::Block(d) => d,
            ReadMsg::StoppedAt(w) => {
                report.tip = last_written;
                progress(Event::Warning(w));
                break;
            }
        };
        let counts = rows.push_block(&d.block, &d.txids, d.height, &mut utxos, d.emit);
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
        if d.height + 1 - first >= chunk_blocks || rows.buffered_transactions() >= chunk_txs {
            let (first, last, last_hash) = open.take().expect("open chunk");
            if output.send(ChunkRows { first, last, last_hash, tables: rows.finish() }).is_err() {
                return Ok(()); // the writer failed; its error is reported
            }
            report.chunks += 1;
        }
    }
    if let Some((first, last, last_hash)) = open.take() {
        let _ = output.send(ChunkRows { first, last, last_hash, tables: rows.finish() });
        report.chunks += 1;
    }
    report.utxos = utxos.len() as u64;
    Ok(())
}

fn write_chunks(store: &mut Store, chain: &str, input: Receiver<ChunkRows>, info: BTreeMap<String, serde_json::Value>) -> Result<(), Error> {
    while let Ok(c) = input.recv() {
        let tables: Vec<(&str, Vec<_>)> = c.tables.into_iter().collect();
        store.commit_chunk(chain, c.first, c.last, &c.last_hash, &tables, info.clone())?;
    }
    Ok(())
}

//! `tracehound ingest evm`, `sync evm` and `import transfers`.

use crate::progress::IngestProgress;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use tracehound_ingest::evm::{ingest_evm, sync_evm, EvmOptions, EvmReport, SyncOptions, TraceMode};
use tracehound_ingest::transfers_csv::{import_transfers_csv, CsvImportOptions};
use tracehound_tables::Store;

/// Node access options shared by `ingest evm` and `sync evm`.
#[derive(clap::Args, Debug, Clone)]
pub struct EvmArgs {
    /// Node URL, e.g. http://127.0.0.1:8545 (credentials as http://user:pass@host/).
    #[arg(long)]
    pub rpc: String,
    /// Chain name for the tables (default: from eth_chainId: ethereum, bsc, polygon, arbitrum, …, or evm_<id>).
    #[arg(long)]
    pub chain: Option<String>,
    /// How to read internal transfers: auto (trace_block, else debug_traceBlockByNumber), parity, geth, none.
    #[arg(long, value_enum, default_value_t = TracesArg::Auto)]
    pub traces: TracesArg,
    /// Blocks per batched request.
    #[arg(long, default_value_t = 20)]
    pub batch_size: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Retries of a failed request (exponential backoff).
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// At most this many HTTP requests per second (for hosted endpoints).
    #[arg(long)]
    pub max_rps: Option<f64>,
    /// Blocks per committed chunk.
    #[arg(long, default_value_t = 10_000)]
    pub chunk_blocks: u64,
    /// Print reports as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--traces`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum TracesArg {
    /// trace_block where the node has it, else debug_traceBlockByNumber (callTracer).
    Auto,
    /// trace_block (erigon, nethermind, reth, anvil).
    Parity,
    /// debug_traceBlockByNumber with callTracer (geth, reth, anvil).
    Geth,
    /// No traces (no internal transfers).
    None,
}

impl EvmArgs {
    fn options(&self) -> EvmOptions {
        let mut o = EvmOptions::new(self.rpc.clone());
        o.chain = self.chain.clone();
        o.batch_size = self.batch_size;
        o.concurrency = self.concurrency;
        o.retries = self.retries;
        o.max_requests_per_second = self.max_rps;
        o.chunk_blocks = self.chunk_blocks;
        o.traces = match self.traces {
            TracesArg::Auto => TraceMode::Auto,
            TracesArg::Parity => TraceMode::Parity,
            TracesArg::Geth => TraceMode::Geth,
            TracesArg::None => TraceMode::None,
        };
        o
    }
}

fn parse_to(to: &str) -> Result<Option<u64>> {
    match to {
        "latest" | "head" => Ok(None),
        n => n.parse().map(Some).map_err(|_| anyhow::anyhow!("--to {n:?}: give a block number or `latest`")),
    }
}

fn print_report(r: &EvmReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    match r.resumed_after {
        Some(h) if r.blocks == 0 => println!("{} (chain id {}): already up to date at height {h}", r.chain, r.chain_id),
        _ => println!(
            "{} (chain id {}): wrote {} blocks ({} transactions, {} logs, {} traces, {} token transfers, {} transfers) in {} chunks; tip {}",
            r.chain,
            r.chain_id,
            r.blocks,
            r.transactions,
            r.logs,
            r.traces,
            r.token_transfers,
            r.transfers,
            r.chunks,
            r.tip.map_or("-".into(), |t| t.to_string())
        ),
    }
    if r.reorgs > 0 {
        println!("  the node reorganized {} times while being read; reorganized blocks were read again", r.reorgs);
    }
    if let Some(t) = r.tokens.as_ref().filter(|t| t.asked > 0) {
        println!("  token metadata: {} new tokens asked from the node; {} tokens known ({} from the bundled list)", t.asked, t.tokens, t.bundled);
    }
    Ok(())
}

/// `tracehound ingest evm`.
pub fn ingest_cmd(data_dir: &Path, args: &EvmArgs, from: u64, to: &str, confirmations: u64) -> Result<()> {
    let mut store = Store::open_for_write(data_dir)?;
    let mut opts = args.options();
    opts.from = from;
    opts.to = parse_to(to)?;
    opts.confirmations = confirmations;
    let p = IngestProgress::new();
    let r = ingest_evm(&mut store, &opts, &|e| p.handle(e));
    p.finish();
    let r = r?;
    if !args.json {
        println!("receipts via {}, traces via {}", r.receipts_method, r.traces_method);
    }
    print_report(&r, args.json)
}

/// `tracehound sync evm`: follow the head until interrupted (every commit is atomic, so Ctrl-C
/// or kill at any moment loses nothing).
pub fn sync_cmd(data_dir: &Path, args: &EvmArgs, from: u64, confirmations: u64, poll_seconds: f64, rounds: Option<u64>) -> Result<()> {
    let mut store = Store::open_for_write(data_dir)?;
    let mut ingest = args.options();
    ingest.from = from;
    ingest.confirmations = confirmations;
    let opts = SyncOptions { ingest, poll: std::time::Duration::from_secs_f64(poll_seconds.max(0.05)), rounds };
    let p = IngestProgress::new();
    let json = args.json;
    let r = sync_evm(&mut store, &opts, &|e| p.handle(e), &|r| {
        if r.blocks > 0 || r.reorgs > 0 {
            p.finish();
            let _ = print_report(r, json);
        }
    });
    p.finish();
    r.map_err(Into::into)
}

/// `tracehound import transfers`.
pub fn import_cmd(data_dir: &Path, files: &[PathBuf], chain: &str, decimals: Option<u32>, keep_good_rows: bool, json: bool) -> Result<()> {
    if files.is_empty() {
        bail!("give one or more CSV files");
    }
    let chain = match tracehound_core::evm::evm_chain_id(chain) {
        Some(id) => tracehound_core::evm::evm_chain_name(id),
        None => {
            bail!("--chain {chain:?}: not an EVM chain name (ethereum, bsc, polygon, arbitrum, optimism, base, avalanche, ronin, harmony, … or evm_<chain id>)")
        }
    };
    let mut store = Store::open_for_write(data_dir)?;
    let mut bad = 0;
    let mut rejected = vec![];
    for f in files {
        let r = import_transfers_csv(&mut store, f, &CsvImportOptions { chain: chain.clone(), decimals, keep_good_rows })?;
        for b in &r.bad_rows {
            eprintln!("bad row: {b}");
        }
        bad += r.bad_rows.len();
        if !r.bad_rows.is_empty() && !r.stored {
            rejected.push(r.file.clone());
        }
        if json {
            println!("{}", serde_json::to_string(&r)?);
            continue;
        }
        if r.already_imported {
            println!("{}: already imported, nothing changed", r.file);
            continue;
        }
        if !r.stored {
            println!("{}: not stored ({} good rows, {} bad rows listed above)", r.file, r.rows, r.bad_rows.len());
            continue;
        }
        let mut notes = vec![];
        if r.duplicates > 0 {
            notes.push(format!("{} already imported from other files", r.duplicates));
        }
        if r.from_node > 0 {
            notes.push(format!("{} already ingested from a node (node rows win)", r.from_node));
        }
        if r.failed_skipped > 0 {
            notes.push(format!("{} failed transactions skipped", r.failed_skipped));
        }
        if !r.bad_rows.is_empty() {
            notes.push(format!("{} bad rows skipped (listed above)", r.bad_rows.len()));
        }
        let what = if r.replaced { format!("replacing its earlier import: {:+} rows in", r.added) } else { format!("{} added to", r.added) };
        println!("{}: {} rows, {what} {chain}.transfers{}", r.file, r.rows, if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) });
    }
    if !rejected.is_empty() {
        return Err(crate::RejectedRows(format!(
            "{bad} bad rows (listed above): nothing of {} was stored; fix the rows, or give --keep-good-rows to store the good rows",
            rejected.join(", ")
        ))
        .into());
    }
    if bad > 0 {
        eprintln!("{bad} bad rows were not imported; the good rows were (--keep-good-rows)");
    }
    Ok(())
}

/// `tracehound tokens refresh`: the `tokens` table of a chain from the bundled list and, with
/// `rpc`, the node (only tokens not yet in the table are asked).
pub fn tokens_refresh_cmd(data_dir: &Path, chain: &str, rpc: Option<&str>, max_rps: Option<f64>, json: bool) -> Result<()> {
    use tracehound_ingest::evm::tokens::{chain_id_of, refresh_tokens};
    let store = Store::open_for_write(data_dir)?;
    let stored = store.manifest().chain_names();
    if !stored.contains(chain) {
        bail!("no chain {chain:?} in {}; stored chains: {}", data_dir.display(), stored.into_iter().collect::<Vec<_>>().join(", "));
    }
    if store.manifest().chain_kind(chain) != tracehound_tables::ChainKind::Evm {
        bail!("{chain} is a UTXO chain: token metadata is for EVM chains");
    }
    let client = rpc.map(|url| tracehound_ingest::jsonrpc::RpcClient::new(url, None, 5).map(|c| c.with_rate_limit(max_rps))).transpose()?;
    if let (Some(c), Some(id)) = (&client, chain_id_of(&store, chain)) {
        let node = tracehound_ingest::evm::chain_id(c)?;
        if node != id {
            bail!("--rpc serves chain id {node}, but {chain} is chain id {id}");
        }
    }
    let r = refresh_tokens(&store, chain, client.as_ref(), None)?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    println!("{chain}: {} tokens with metadata ({} from the bundled list, {} asked from the node)", r.tokens, r.bundled, r.asked);
    if r.unknown > 0 {
        println!("  {} tokens are not in the bundled list: give --rpc <node of {chain}> to ask the node", r.unknown);
    }
    Ok(())
}

//! Bitcoin and its relatives (Litecoin, Dogecoin, Bitcoin Cash over RPC): block files, JSON-RPC,
//! and the rows both produce.

pub mod blk;
pub mod blkfile;
pub mod chain;
pub mod rows;
pub mod rpc;
pub mod utxo;
pub mod utxo_spill;

use serde::Serialize;
use std::collections::BTreeMap;

/// What an ingest run did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestReport {
    /// Chain name (schema in SQL).
    pub chain: String,
    /// First height of the source.
    pub first: Option<u64>,
    /// Last height now stored.
    pub tip: Option<u64>,
    /// Height after which this run resumed, when the store already held blocks.
    pub resumed_after: Option<u64>,
    /// Blocks written by this run.
    pub blocks: u64,
    /// Transactions written.
    pub transactions: u64,
    /// Inputs written (coinbase inputs included).
    pub inputs: u64,
    /// Outputs written.
    pub outputs: u64,
    /// Inputs whose spent output is not in the data (pruned source).
    pub unresolved_inputs: u64,
    /// Blocks found but not on the best chain.
    pub stale_blocks: u64,
    /// Bytes of block files scanned.
    pub bytes_read: u64,
    /// Corrupt records skipped with `--skip-corrupt`.
    pub skipped: Vec<String>,
    /// A block cut short at the very end of the newest block file (Bitcoin Core is writing it, or
    /// stopped mid-write): not ingested this run, picked up by the next (block-file ingest only).
    pub partial_tail: Option<blkfile::PartialTail>,
    /// Chunks committed.
    pub chunks: u64,
    /// Unspent outputs held at the end.
    pub utxos: u64,
    /// Of those, the ones held on disk because the memory budget was reached.
    pub utxos_on_disk: u64,
    /// Peak memory and bytes spilled, when the run had a memory limit.
    pub memory: Option<tracehound_memory::StageMemory>,
    /// The `getblock` verbosity the node answered (JSON-RPC ingest only): 2, or 1 for older
    /// nodes read transaction by transaction.
    pub getblock_verbosity: Option<u8>,
}

pub(crate) fn commit_info(source: &str, location: &str, stale: u64) -> BTreeMap<String, serde_json::Value> {
    let mut m = BTreeMap::new();
    m.insert("source".into(), source.into());
    m.insert("location".into(), location.into());
    m.insert("stale_blocks_skipped".into(), stale.into());
    m
}

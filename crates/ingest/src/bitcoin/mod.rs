//! Bitcoin and its relatives (Litecoin, Dogecoin, Bitcoin Cash over RPC): block files, JSON-RPC,
//! and the rows both produce.

pub mod blk;
pub mod blkfile;
pub mod chain;
pub mod rows;
pub mod rpc;
pub mod utxo;

use crate::{Error, Event};
use serde::Serialize;
use std::collections::BTreeMap;
use tracehound_tables::Store;

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
    /// Chunks committed.
    pub chunks: u64,
    /// Unspent outputs held at the end.
    pub utxos: u64,
}

pub(crate) fn commit_info(source: &str, location: &str, stale: u64) -> BTreeMap<String, serde_json::Value> {
    let mut m = BTreeMap::new();
    m.insert("source".into(), source.into());
    m.insert("location".into(), location.into());
    m.insert("stale_blocks_skipped".into(), stale.into());
    m
}

/// Where ingest resumes: after the stored tip when the source agrees with it. When a stored
/// block's hash differs from the source's block at that height (a reorg), the chunks from the
/// fork point up are rolled back first. Stored blocks beyond the source's range are kept.
pub(crate) fn resume_point(store: &mut Store, chain: &str, root: u64, hash_at: &dyn Fn(u64) -> Option<String>, progress: &dyn Fn(Event)) -> Result<u64, Error> {
    let Some(stored) = store.chain(chain) else { return Ok(root) };
    let (tip, _) = stored.tip().expect("stored chains have chunks");
    let verifiable: Vec<_> = stored.chunks.iter().filter(|c| hash_at(c.last).is_some()).collect();
    let Some(top) = verifiable.last() else { return Ok(tip + 1) };
    if hash_at(top.last).as_deref() == Some(top.last_hash.as_str()) {
        return Ok(tip + 1);
    }
    let keep = verifiable.iter().rev().find(|c| hash_at(c.last).as_deref() == Some(c.last_hash.as_str())).map(|c| c.last);
    progress(Event::Warning(format!(
        "stored block {} of {chain} is not on the source's best chain (reorg): rolling back to {}",
        top.last,
        keep.map_or("nothing".to_string(), |k| format!("height {k}"))
    )));
    let new_tip = store.rollback(chain, keep)?;
    Ok(new_tip.map_or(root, |t| t + 1))
}

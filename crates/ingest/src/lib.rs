//! Reads chain data into tracehound's tables.
//!
//! * [`bitcoin::blk`]: Bitcoin Core's `blk*.dat` files, the fast path (best chain, XOR
//!   obfuscation, pruned directories, input resolution with a compact UTXO map).
//! * [`bitcoin::rpc`]: any node answering Bitcoin Core's JSON-RPC (`getblockhash`, `getblock`,
//!   `getrawtransaction`), batched, with retries.
//!
//! Both write through [`bitcoin::rows::RowBuilder`] and commit chunks atomically to a
//! [`tracehound_tables::Store`], so a run killed at any moment resumes with no row lost or
//! duplicated.
//!
//! ```no_run
//! use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
//! let mut store = tracehound_tables::Store::open_for_write("tracehound-data")?;
//! let report = ingest_blk_files(&mut store, &BlkOptions::new("/home/me/.bitcoin/blocks"), &|_| {})?;
//! println!("{} blocks", report.blocks);
//! # Ok::<(), tracehound_ingest::Error>(())
//! ```

pub mod bitcoin;
pub mod evm;
pub mod jsonrpc;
pub mod transfers_csv;

use std::path::{Path, PathBuf};

/// Errors while reading sources or committing their rows.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A source file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A source file holds something that is not what it should be.
    #[error("{file} at byte offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The node answered with an error or something unreadable.
    #[error("RPC {method}: {reason}")]
    Rpc {
        /// The call.
        method: String,
        /// What went wrong.
        reason: String,
    },
    /// The request itself cannot be done.
    #[error("{0}")]
    Input(String),
    /// The node's chain changed while it was being read (a block vanished, or answers of one
    /// call belong to another block than the others): read again.
    #[error("the node reorganized while answering: {0}")]
    Reorg(String),
    /// The store refused a commit.
    #[error(transparent)]
    Store(#[from] tracehound_tables::Error),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source }
    }
}

/// What ingest reports while it runs, for progress bars and warnings.
#[derive(Debug, Clone)]
pub enum Event {
    /// The work ahead is known: blocks to process (from, to inclusive).
    Planned {
        /// First height to write.
        from: u64,
        /// Last height to write.
        to: u64,
    },
    /// A block was processed.
    Block {
        /// Its height.
        height: u64,
        /// Transactions in it.
        transactions: u64,
    },
    /// Something was skipped or looks wrong, but ingest goes on.
    Warning(String),
    /// A phase started (scan, replay, …).
    Phase(String),
}

/// Where ingest resumes: after the stored tip when the source agrees with it. When a stored
/// block's hash differs from the source's block at that height (a reorg), the chunks from the
/// fork point up are rolled back first. Stored blocks beyond the source's range are kept.
pub(crate) fn resume_point(
    store: &mut tracehound_tables::Store,
    chain: &str,
    root: u64,
    hash_at: &dyn Fn(u64) -> Option<String>,
    progress: &dyn Fn(Event),
) -> Result<u64, Error> {
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

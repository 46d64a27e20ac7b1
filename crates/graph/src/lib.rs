//! tracehound's graph layer: the memory-mapped graph index over a UTXO chain's tables
//! ([`index`]), the transfer index over an account chain's `transfers` ([`transfers`]), and
//! address clustering with the evidence of every merge ([`cluster`], [`account`]).
//!
//! Everything that walks the transaction graph (clustering, tracing, screening) reads the index,
//! never the Parquet tables row by row.

pub mod account;
pub mod cluster;
pub mod file;
pub mod index;
mod spill;
pub mod transfers;

pub use cluster::{ClusterConfig, Clusters, UnionFind};
pub use index::ChunkRef;
pub use index::{GraphIndex, IndexMeta};
pub use transfers::{TransferIndex, TransferMeta};

use std::path::{Path, PathBuf};

/// Result of the graph crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the index and clustering. Each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is damaged (bad magic, truncated, checksum mismatch, inconsistent arrays).
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file of another format version.
    #[error("{path}: format version {found}, this tracehound reads version {expected}")]
    Version {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this code reads.
        expected: u32,
    },
    /// The index or clustering does not cover the stored tables.
    #[error("{0}")]
    Stale(String),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The tables could not be read.
    #[error(transparent)]
    Tables(#[from] tracehound_tables::Error),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source }
    }
}

/// What entities need of an index, UTXO ([`GraphIndex`]) or account ([`TransferIndex`]): the
/// blocks it covers, its address strings and its transactions.
pub trait AddressIndex {
    /// Chain name.
    fn chain(&self) -> &str;
    /// Table chunks covered.
    fn chunks(&self) -> &[ChunkRef];
    /// Number of transactions.
    fn tx_count(&self) -> usize;
    /// Number of addresses.
    fn address_count(&self) -> usize;
    /// The address string of id `a`.
    fn address(&self, a: u32) -> &str;
    /// The id of an address string.
    fn address_id(&self, address: &str) -> Option<u32>;
    /// The hash of transaction `t`, as the chain's explorers write it.
    fn tx_hash(&self, t: u32) -> String;
    /// The block of transaction `t`.
    fn tx_block(&self, t: u32) -> u64;
}

impl AddressIndex for GraphIndex {
    fn chain(&self) -> &str {
        &self.meta().chain
    }
    fn chunks(&self) -> &[ChunkRef] {
        &self.meta().chunks
    }
    fn tx_count(&self) -> usize {
        GraphIndex::tx_count(self)
    }
    fn address_count(&self) -> usize {
        GraphIndex::address_count(self)
    }
    fn address(&self, a: u32) -> &str {
        GraphIndex::address(self, a)
    }
    fn address_id(&self, address: &str) -> Option<u32> {
        GraphIndex::address_id(self, address)
    }
    fn tx_hash(&self, t: u32) -> String {
        GraphIndex::tx_hash(self, t)
    }
    fn tx_block(&self, t: u32) -> u64 {
        self.tx_height()[t as usize] as u64
    }
}

impl AddressIndex for TransferIndex {
    fn chain(&self) -> &str {
        &self.meta().chain
    }
    fn chunks(&self) -> &[ChunkRef] {
        &self.meta().chunks
    }
    fn tx_count(&self) -> usize {
        self.meta().transactions as usize
    }
    fn address_count(&self) -> usize {
        TransferIndex::address_count(self)
    }
    fn address(&self, a: u32) -> &str {
        TransferIndex::address(self, a)
    }
    fn address_id(&self, address: &str) -> Option<u32> {
        TransferIndex::address_id(self, address)
    }
    fn tx_hash(&self, t: u32) -> String {
        TransferIndex::tx_hash(self, t)
    }
    fn tx_block(&self, t: u32) -> u64 {
        TransferIndex::tx_block(self, t)
    }
}

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder, UInt32Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use std::sync::Arc;

/// Writes the derived table `address_clusters` (chain, address, address_id, cluster_id,
/// cluster_size) of `clusters` so SQL can join it with the chain tables. Returns (rows, bytes).
pub fn write_cluster_table(store: &tracehound_tables::Store, idx: &dyn AddressIndex, clusters: &Clusters) -> Result<(u64, u64)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("chain", DataType::Utf8, false),
        Field::new("address", DataType::Utf8, false),
        Field::new("address_id", DataType::UInt32, false),
        Field::new("cluster_id", DataType::UInt32, false),
        Field::new("cluster_size", DataType::UInt64, false),
    ]));
    let chain = idx.chain();
    let ids = clusters.cluster_ids();
    const ROWS: usize = 1 << 16;
    // One batch at a time: the table has a row per address.
    let mut batches = (0..ids.len().max(1)).step_by(ROWS).map(|start| {
        let end = (start + ROWS).min(ids.len());
        let mut chains = StringBuilder::new();
        let mut addrs = StringBuilder::new();
        for a in start..end {
            chains.append_value(chain);
            addrs.append_value(idx.address(a as u32));
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(chains.finish()),
            Arc::new(addrs.finish()),
            Arc::new(UInt32Array::from_iter_values(start as u32..end as u32)),
            Arc::new(UInt32Array::from_iter_values(ids[start..end].iter().copied())),
            Arc::new(UInt64Array::from_iter_values(ids[start..end].iter().map(|&c| clusters.members(c).len() as u64))),
        ];
        RecordBatch::try_new(schema.clone(), cols).expect("columns match the schema")
    });
    Ok(store.write_derived_stream(Some(chain), "address_clusters", schema.clone(), &mut batches)?)
}

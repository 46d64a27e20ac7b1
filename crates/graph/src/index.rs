//! The graph index of a UTXO chain: dense ids and fixed-width arrays over the `transactions`,
//! `inputs` and `outputs` tables, memory-mapped for traversal.
//!
//! Ids are positions in chain order: transaction ids are `u32`, input and output ids `u64`,
//! address ids `u32` in order of first appearance, so extending the index with new blocks never
//! renumbers anything already indexed. Arrays (one section each in `graph.thg`):
//!
//! | section | type | meaning |
//! |---|---|---|
//! | `txid` | `[u8; 32]` per tx | hash, in display byte order |
//! | `tx_height`, `tx_time` | `u32` per tx | block height and timestamp |
//! | `tx_in_start`, `tx_out_start` | `u64` per tx + 1 | input and output ranges of each tx |
//! | `out_value` | `u64` per output | satoshi |
//! | `out_addr` | `u32` per output | address id, [`NO_ADDRESS`] for none |
//! | `out_type` | `u8` per output | position in [`ScriptType::ALL`] |
//! | `out_spender` | `u64` per output | spending input id, [`NONE`] if unspent |
//! | `in_prevout` | `u64` per input | spent output id, [`NONE`] for coinbase or unresolved |
//! | `in_tx`, `out_tx` | `u32` per input, per output | the transaction holding it |
//! | `addr_offsets`, `addr_bytes` | `u64` per address + 1, bytes | address strings |
//! | `addr_out_start`, `addr_outs` | CSR | outputs paying each address, in time order |
//! | `addr_key_id` | `u32` per address | address ids sorted by [`address_key`] of their string (then id): address string → id by binary search |
//! | `txid_key_id` | `u32` per tx | tx ids sorted by their txid's first 8 bytes (then id): txid → tx id |
//!
//! The lookups keep only the sorted ids: a search computes each probed entry's key from the
//! address string or txid it already stores (8 bytes per address and per transaction less than
//! storing the keys; a lookup reads about 30 entries, and lookups are not on any walk's path).
//!
//! The index remembers which table chunks (by last block hash) it covers. If the tables only grew,
//! [`update`] reads the new chunks and appends; if they were rolled back by a reorg, or the file
//! is missing, stale, of another version or fails its checksum, it is rebuilt from the tables and
//! the reason is reported. It is never used silently out of date: [`GraphIndex::open_current`]
//! refuses an index that does not match the tables.

use crate::file::{self, SectionFile};
use crate::spill::{write_lists, DiskMap, Sorter, SpillTo, SpillVec};
use crate::{Error, Result};
use datafusion::arrow::array::{Array, AsArray, RecordBatch, RecordBatchReader};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{UInt32Type, UInt64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracehound_core::script::ScriptType;
use tracehound_memory::{Scratch, StageMemory, StageMeter};
use tracehound_tables::{Chunk, Store};

/// Address id of an output without an address.
pub const NO_ADDRESS: u32 = u32::MAX;
/// Input or output id meaning "none" (unspent output, coinbase or unresolved input).
pub const NONE: u64 = u64::MAX;
/// Format version of `graph.thg`.
pub const INDEX_VERSION: u32 = 4;
const MAGIC: [u8; 8] = *b"THGRAPH\0";

/// A chunk of the tables the index covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// First block height.
    pub first: u64,
    /// Last block height.
    pub last: u64,
    /// Hash of the last block.
    pub last_hash: String,
}

impl From<&Chunk> for ChunkRef {
    fn from(c: &Chunk) -> ChunkRef {
        ChunkRef { first: c.first, last: c.last, last_hash: c.last_hash.clone() }
    }
}

/// What an index holds (the `meta` section).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexMeta {
    /// Chain name.
    pub chain: String,
    /// Table chunks covered, in order.
    pub chunks: Vec<ChunkRef>,
    /// Transactions indexed.
    pub transactions: u64,
    /// Inputs indexed (coinbase inputs included).
    pub inputs: u64,
    /// Outputs indexed.
    pub outputs: u64,
    /// Distinct addresses.
    pub addresses: u64,
    /// Inputs whose spent output is not in the tables (pruned data).
    pub unresolved_inputs: u64,
}

impl IndexMeta {
    /// Height of the last indexed block.
    pub fn tip_height(&self) -> Option<u64> {
        self.chunks.last().map(|c| c.last)
    }
}

/// Where the index files of `chain` live under the data directory.
pub fn index_dir(data_dir: &Path, chain: &str) -> PathBuf {
    data_dir.join("index").join(chain)
}

/// Path of the graph index file of `chain`.
pub fn index_path(data_dir: &Path, chain: &str) -> PathBuf {
    index_dir(data_dir, chain).join("graph.thg")
}

/// Stable 64-bit FNV-1a hash of an address string (the lookup key; not for security).
pub fn address_key(address: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in address.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The id stored with `key` in a lookup section (`keys` sorted, `ids` beside them) for which
/// `is` holds: keys are hashes, so equal keys are checked against the real value.
pub(crate) fn find_key(keys: &[u64], ids: &[u32], key: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
    let start = keys.partition_point(|&x| x < key);
    (start..keys.len()).take_while(|&i| keys[i] == key).map(|i| ids[i]).find(|&id| is(id))
}

fn txid_key(txid: &[u8; 32]) -> u64 {
    u64::from_le_bytes(txid[..8].try_into().expect("8 bytes"))
}

/// A memory-mapped graph index.
pub struct GraphIndex {
    file: SectionFile,
    meta: IndexMeta,
}

const SECTIONS: [&str; 18] = [
    "txid",
    "tx_height",
    "tx_time",
    "tx_in_start",
    "tx_out_start",
    "out_value",
    "out_addr",
    "out_type",
    "out_spender",
    "in_prevout",
    "in_tx",
    "out_tx",
    "addr_offsets",
    "addr_bytes",
    "addr_out_start",
    "addr_outs",
    "addr_key_id",
    "txid_key_id",
];

impl GraphIndex {
    /// Opens the index file at `path`, verifying its checksum and the lengths of its arrays, and
    /// that its ranges and ids are consistent, once after it is written (see
    /// [`SectionFile::open_once_checked`]; [`GraphIndex::verify`] checks it again).
    pub fn open(path: &Path) -> Result<GraphIndex> {
        let (file, checked_before) = SectionFile::open_once_checked(path, MAGIC, INDEX_VERSION)?;
        let meta: IndexMeta =
            serde_json::from_slice(file.slice::<u8>("meta")?).map_err(|e| Error::Corrupt { path: path.to_path_buf(), reason: format!("meta section: {e}") })?;
        for s in SECTIONS {
            file.slice::<u8>(s)?;
        }
        // Every section must cast to its element type before the typed accessors may be used.
        for s in ["tx_in_start", "tx_out_start", "out_value", "out_spender", "in_prevout", "addr_offsets", "addr_out_start", "addr_outs"] {
            file.slice::<u64>(s)?;
        }
        for s in ["tx_height", "tx_time", "out_addr", "in_tx", "out_tx", "addr_key_id", "txid_key_id"] {
            file.slice::<u32>(s)?;
        }
        file.slice::<[u8; 32]>("txid")?;
        let idx = GraphIndex { file, meta };
        let (t, i, o, a) = (idx.meta.transactions as usize, idx.meta.inputs as usize, idx.meta.outputs as usize, idx.meta.addresses as usize);
        let lens = [
            (idx.txid().len(), t),
            (idx.tx_height().len(), t),
            (idx.tx_time().len(), t),
            (idx.tx_in_start().len(), t + 1),
            (idx.tx_out_start().len(), t + 1),
            (idx.out_value().len(), o),
            (idx.out_addr().len(), o),
            (idx.out_type().len(), o),
            (idx.out_spender().len(), o),
            (idx.in_prevout().len(), i),
            (idx.in_tx().len(), i),
            (idx.out_tx().len(), o),
            (idx.sl::<u64>("addr_offsets").len(), a + 1),
            (idx.addr_out_start().len(), a + 1),
            (idx.sl::<u32>("addr_key_id").len(), a),
            (idx.sl::<u32>("txid_key_id").len(), t),
        ];
        if let Some((found, want)) = lens.iter().find(|(f, w)| f != w) {
            return Err(Error::Corrupt { path: path.to_path_buf(), reason: format!("an array holds {found} entries where the header counts {want}") });
        }
        if checked_before {
            return Ok(idx);
        }
        let ranges_ok = |v: &[u64], end: usize| v.first() == Some(&0) && v.windows(2).all(|w| w[0] <= w[1]) && v.last() == Some(&(end as u64));
        // Each transaction's inputs and outputs name it as theirs.
        let owners_ok =
            |start: &[u64], owner: &[u32]| start.windows(2).enumerate().all(|(t, r)| owner[r[0] as usize..r[1] as usize].iter().all(|&x| x as usize == t));
        if !(ranges_ok(idx.tx_in_start(), i) && ranges_ok(idx.tx_out_start(), o)) {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                reason: "transaction ranges are not in order or do not cover the inputs and outputs".into(),
            });
        }
        if !(owners_ok(idx.tx_in_start(), idx.in_tx()) && owners_ok(idx.tx_out_start(), idx.out_tx())) {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                reason: "an input or output names another transaction than the one whose range holds it".into(),
            });
        }
        let ok = ranges_ok(idx.sl::<u64>("addr_offsets"), idx.sl::<u8>("addr_bytes").len())
            && ranges_ok(idx.addr_out_start(), idx.addr_outs().len())
            && idx.sl::<u8>("addr_bytes").is_ascii()
            && idx.addr_outs().iter().all(|&x| x < o as u64)
            && idx.out_addr().iter().all(|&x| x == NO_ADDRESS || (x as usize) < a)
            && idx.out_spender().iter().all(|&x| x == NONE || x < i as u64)
            && idx.in_prevout().iter().all(|&x| x == NONE || x < o as u64)
            && idx.sl::<u32>("addr_key_id").iter().all(|&x| (x as usize) < a)
            && idx.sl::<u32>("txid_key_id").iter().all(|&x| (x as usize) < t);
        if !ok {
            return Err(Error::Corrupt { path: path.to_path_buf(), reason: "ranges or ids point outside their arrays".into() });
        }
        idx.file.mark_checked();
        Ok(idx)
    }

    /// Opens the index file at `path` with every check, even if it passed them before.
    pub fn verify(path: &Path) -> Result<GraphIndex> {
        let _ = std::fs::remove_file(file::checked_path(path));
        GraphIndex::open(path)
    }

    /// Opens the index of `chain` and checks that it covers exactly the stored tables.
    pub fn open_current(store: &Store, chain: &str) -> Result<GraphIndex> {
        let path = index_path(store.root(), chain);
        if !path.exists() {
            return Err(Error::Stale(format!("no graph index for chain {chain:?} yet; run `tracehound index`")));
        }
        let idx = GraphIndex::open(&path)?;
        let want: Vec<ChunkRef> = store.chain(chain).map(|c| c.chunks.iter().map(ChunkRef::from).collect()).unwrap_or_default();
        if idx.meta.chunks != want {
            return Err(Error::Stale(format!(
                "the graph index of {chain:?} covers blocks up to {:?} but the tables hold up to {:?}; run `tracehound index`",
                idx.meta.tip_height(),
                want.last().map(|c| c.last)
            )));
        }
        Ok(idx)
    }

    fn sl<T: bytemuck::Pod>(&self, name: &str) -> &[T] {
        self.file.slice(name).expect("sections are checked when the index is opened")
    }

    /// What the index holds.
    pub fn meta(&self) -> &IndexMeta {
        &self.meta
    }
    /// Number of transactions.
    pub fn tx_count(&self) -> usize {
        self.meta.transactions as usize
    }
    /// Number of addresses.
    pub fn address_count(&self) -> usize {
        self.meta.addresses as usize
    }
    /// Transaction hashes (display byte order).
    pub fn txid(&self) -> &[[u8; 32]] {
        self.sl("txid")
    }
    /// Block height of each transaction.
    pub fn tx_height(&self) -> &[u32] {
        self.sl("tx_height")
    }
    /// Block timestamp of each transaction.
    pub fn tx_time(&self) -> &[u32] {
        self.sl("tx_time")
    }
    /// Start of each transaction's inputs (one more entry than transactions).
    pub fn tx_in_start(&self) -> &[u64] {
        self.sl("tx_in_start")
    }
    /// Start of each transaction's outputs (one more entry than transactions).
    pub fn tx_out_start(&self) -> &[u64] {
        self.sl("tx_out_start")
    }
    /// Value of each output in satoshi.
    pub fn out_value(&self) -> &[u64] {
        self.sl("out_value")
    }
    /// Address id of each output ([`NO_ADDRESS`] for none).
    pub fn out_addr(&self) -> &[u32] {
        self.sl("out_addr")
    }
    /// Script type code of each output (position in [`ScriptType::ALL`]).
    pub fn out_type(&self) -> &[u8] {
        self.sl("out_type")
    }
    /// Spending input of each output ([`NONE`] if unspent).
    pub fn out_spender(&self) -> &[u64] {
        self.sl("out_spender")
    }
    /// Spent output of each input ([`NONE`] for coinbase or unresolved).
    pub fn in_prevout(&self) -> &[u64] {
        self.sl("in_prevout")
    }
    /// Transaction of each input.
    pub fn in_tx(&self) -> &[u32] {
        self.sl("in_tx")
    }
    /// Transaction of each output.
    pub fn out_tx(&self) -> &[u32] {
        self.sl("out_tx")
    }
    /// CSR offsets of [`Self::addr_outs`] per address.
    pub fn addr_out_start(&self) -> &[u64] {
        self.sl("addr_out_start")
    }
    /// Outputs paying each address, in time order.
    pub fn addr_outs(&self) -> &[u64] {
        self.sl("addr_outs")
    }
    /// Outputs paying address `a`, in time order.
    pub fn outputs_of(&self, a: u32) -> &[u64] {
        let s = self.addr_out_start();
        &self.addr_outs()[s[a as usize] as usize..s[a as usize + 1] as usize]
    }

    /// The address string of id `a`.
    pub fn address(&self, a: u32) -> &str {
        let off = self.sl::<u64>("addr_offsets");
        let bytes = &self.sl::<u8>("addr_bytes")[off[a as usize] as usize..off[a as usize + 1] as usize];
        std::str::from_utf8(bytes).expect("addresses are stored as UTF-8")
    }

    /// The id of `address`, if indexed.
    pub fn address_id(&self, address: &str) -> Option<u32> {
        let ids = self.sl::<u32>("addr_key_id");
        let key = address_key(address);
        let start = ids.partition_point(|&id| address_key(self.address(id)) < key);
        ids[start..].iter().take_while(|&&id| address_key(self.address(id)) == key).copied().find(|&id| self.address(id) == address)
    }

    /// The id of the transaction with hash `txid` (hex, display order), if indexed.
    pub fn tx_id(&self, txid: &str) -> Option<u32> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(txid, &mut bytes).ok()?;
        let ids = self.sl::<u32>("txid_key_id");
        let (txids, key) = (self.txid(), txid_key(&bytes));
        let start = ids.partition_point(|&id| txid_key(&txids[id as usize]) < key);
        ids[start..].iter().take_while(|&&id| txid_key(&txids[id as usize]) == key).copied().find(|&id| txids[id as usize] == bytes)
    }

    /// The hash of transaction `t` in hex.
    pub fn tx_hash(&self, t: u32) -> String {
        let mut buf = [0u8; 64];
        hex::encode_to_slice(self.txid()[t as usize], &mut buf).expect("64 bytes for 32");
        std::str::from_utf8(&buf).expect("hex is ascii").to_string()
    }

    /// The transaction holding input `i`.
    pub fn tx_of_input(&self, i: u64) -> u32 {
        self.in_tx()[i as usize]
    }

    /// The transaction holding output `o`.
    pub fn tx_of_output(&self, o: u64) -> u32 {
        self.out_tx()[o as usize]
    }

    /// Script type of output `o`.
    pub fn output_type(&self, o: u64) -> ScriptType {
        ScriptType::ALL.get(self.out_type()[o as usize] as usize).copied().unwrap_or(ScriptType::NonStandard)
    }
}

/// What [`update`] did.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReport {
    /// `unchanged`, `extended` or `rebuilt`.
    pub action: &'static str,
    /// Why the index was rebuilt, when it was.
    pub reason: Option<String>,
    /// Chunks read from the tables.
    pub chunks_read: usize,
    /// Transactions added.
    pub transactions_added: u64,
    /// Counts after the update.
    pub meta: IndexMeta,
    /// Size of the index file in bytes.
    pub bytes: u64,
    /// Peak memory and bytes spilled while updating.
    pub memory: StageMemory,
}

/// Progress of [`update`].
#[derive(Debug, Clone)]
pub enum IndexEvent {
    /// `chunks` chunks are to be read.
    Planned {
        /// Chunks to read.
        chunks: usize,
        /// Whether the index is rebuilt (with the reason) rather than extended.
        rebuild: Option<String>,
    },
    /// One chunk was read.
    Chunk {
        /// Its last height.
        last: u64,
        /// Transactions in it.
        transactions: u64,
    },
}

/// Brings the index of `chain` up to date with the stored tables: nothing if current, appends the
/// new chunks if the tables only grew, rebuilds otherwise. Holds everything in memory while it
/// builds; [`update_within`] keeps to a memory budget.
pub fn update(store: &Store, chain: &str, progress: &mut dyn FnMut(IndexEvent)) -> Result<UpdateReport> {
    update_within(store, chain, None, progress)
}

/// [`update`] within `memory_limit` bytes (`None`: no limit): the build's maps, sorts and
/// arrays spill to a scratch directory under the data directory beyond their share of it
/// (see [`crate::spill`]'s building blocks). The index written is the same, byte for byte.
pub fn update_within(store: &Store, chain: &str, memory_limit: Option<u64>, progress: &mut dyn FnMut(IndexEvent)) -> Result<UpdateReport> {
    let Some(cm) = store.chain(chain) else {
        return Err(Error::NotFound(format!("no chain {chain:?} is stored; ingest it first")));
    };
    for table in ["transactions", "inputs", "outputs"] {
        if !cm.table_names().contains(table) {
            return Err(Error::NotFound(format!("chain {chain:?} has no {table} table: the graph index covers UTXO chains")));
        }
    }
    let meter = StageMeter::start("index", memory_limit.unwrap_or(0));
    let want: Vec<ChunkRef> = cm.chunks.iter().map(ChunkRef::from).collect();
    let path = index_path(store.root(), chain);
    let existing = GraphIndex::open(&path);
    if let Ok(idx) = &existing {
        if idx.meta.chunks == want {
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            return Ok(UpdateReport {
                action: "unchanged",
                reason: None,
                chunks_read: 0,
                transactions_added: 0,
                meta: idx.meta.clone(),
                bytes,
                memory: meter.report(),
            });
        }
    }
    let scratch = Scratch::new(store.root(), "index").map_err(|e| Error::io(&store.root().join("scratch"), e))?;
    let to = SpillTo::new(scratch, meter.clone());
    let budget = Budget::new(memory_limit);
    let (mut builder, reason) = match existing {
        Ok(idx) if want.starts_with(&idx.meta.chunks) && idx.meta.chain == chain => (Builder::from_index(&idx, &budget, &to)?, None),
        Ok(idx) => (Builder::new(chain, &budget, &to), Some(format!("the tables were rolled back below height {:?} (reorg)", idx.meta.tip_height()))),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => (Builder::new(chain, &budget, &to), Some("no index yet".to_string())),
        Err(e) => (Builder::new(chain, &budget, &to), Some(format!("the index was unusable: {e}"))),
    };
    let start = builder.meta.chunks.len();
    let before = builder.meta.transactions;
    progress(IndexEvent::Planned { chunks: want.len() - start, rebuild: reason.clone() });
    for chunk in &cm.chunks[start..] {
        let file = |t: &str| store.root().join(&chunk.tables[t].path);
        let n = builder.add_chunk(&file("transactions"), &file("outputs"), &file("inputs"))?;
        builder.meta.chunks.push(ChunkRef::from(chunk));
        progress(IndexEvent::Chunk { last: chunk.last, transactions: n });
    }
    let meta = builder.meta.clone();
    let bytes = builder.write(&path, &budget)?;
    let action = if reason.is_some() { "rebuilt" } else { "extended" };
    Ok(UpdateReport {
        action,
        reason,
        chunks_read: want.len() - start,
        transactions_added: meta.transactions - before,
        meta,
        bytes,
        memory: to.meter().report(),
    })
}

/// How a build shares its memory limit (bytes per structure; `None` everywhere without a limit).
/// The rest of the limit is for reading one chunk of the tables at a time.
struct Budget {
    /// Each append-only array's values in memory.
    array: Option<u64>,
    /// The address → id map.
    addresses: Option<u64>,
    /// The txid → outputs map.
    txids: Option<u64>,
    /// Each lookup-section sort.
    sort: Option<u64>,
    /// The passes that derive spenders and the address → outputs lists, after the maps are gone.
    window: Option<u64>,
}

impl Budget {
    fn new(limit: Option<u64>) -> Budget {
        let share = |f: f64| limit.map(|l| (l as f64 * f) as u64);
        // Maps 45% and sorts 10% while chunks are read (the rest: the chunk's batches, the
        // arrays' 15% in all); at the end the maps are gone and the windows take half.
        Budget { array: share(0.15 / 11.0), addresses: share(0.30), txids: share(0.15), sort: share(0.05), window: share(0.5) }
    }
}

/// The index while it is built or extended: append-only arrays, the two lookup maps and the two
/// lookup sorts, each within its share of the budget.
struct Builder {
    meta: IndexMeta,
    txid: SpillVec<[u8; 32]>,
    tx_height: SpillVec<u32>,
    tx_time: SpillVec<u32>,
    tx_in_start: SpillVec<u64>,
    tx_out_start: SpillVec<u64>,
    out_value: SpillVec<u64>,
    out_addr: SpillVec<u32>,
    out_type: SpillVec<u8>,
    in_prevout: SpillVec<u64>,
    addr_offsets: SpillVec<u64>,
    addr_bytes: SpillVec<u8>,
    /// Outputs that pay an address (the length of `addr_outs`).
    addressed_outputs: u64,
    /// Address key ([`address_map_key`]) → address id.
    addr_ids: DiskMap,
    /// txid (first 16 bytes) → first output id and output count ([`pack_outputs`]).
    tx_ids: DiskMap,
    addr_keys: Sorter,
    tx_keys: Sorter,
}

/// The key of an address in the build's map: its FNV-1a hash (the index's lookup key) and a
/// SipHash of it, 128 bits, so two addresses share a key with a chance below 10⁻²⁰ on a chain of
/// Bitcoin's size. The map lives only while the index is built.
pub(crate) fn address_map_key(address: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let mut sip = std::hash::DefaultHasher::new();
    address.hash(&mut sip);
    ((address_key(address) as u128) << 64) | sip.finish() as u128
}

/// The key of a txid in the build's map: its first 16 bytes (txids are uniformly random; the
/// same txid twice, as in Bitcoin's two duplicated coinbases, resolves to the newer one).
fn txid_map_key(txid: &[u8; 32]) -> u128 {
    u128::from_le_bytes(txid[..16].try_into().expect("16 bytes"))
}

const OUT_COUNT_BITS: u32 = 24;

/// A transaction's first output id and output count in one `u64` (40 + 24 bits).
fn pack_outputs(start: u64, count: u64) -> Option<u64> {
    (start < 1 << (64 - OUT_COUNT_BITS) && count < 1 << OUT_COUNT_BITS).then_some(start << OUT_COUNT_BITS | count)
}

fn unpack_outputs(v: u64) -> (u64, u64) {
    (v >> OUT_COUNT_BITS, v & ((1 << OUT_COUNT_BITS) - 1))
}

/// The rows of some columns of a Parquet file, read a batch at a time and handed out in
/// batches of the length asked for, so a chunk of the tables is never read whole.
struct BatchRows {
    path: PathBuf,
    reader: datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    pending: std::collections::VecDeque<RecordBatch>,
    buffered: u64,
    taken: u64,
}

/// Transactions per batch read (with their outputs and inputs). Measured on a 63,707-transaction
/// chain within 16 MiB: 1,024 peaked at 38 MiB of heap, 8,192 at 68 MiB, at the same speed.
const BATCH_ROWS: usize = 1024;

impl BatchRows {
    fn open(path: &Path, columns: &[&str]) -> Result<BatchRows> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let pq = |e: &dyn std::fmt::Display| Error::Corrupt { path: path.to_path_buf(), reason: e.to_string() };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| pq(&e))?;
        for c in columns {
            if builder.schema().field_with_name(c).is_err() {
                return Err(pq(&format!("column {c} is missing")));
            }
        }
        let fields = builder.parquet_schema().columns().iter().enumerate().filter(|(_, c)| columns.contains(&c.path().parts()[0].as_str())).map(|(i, _)| i);
        let mask = ProjectionMask::leaves(builder.parquet_schema(), fields);
        let reader = builder.with_projection(mask).with_batch_size(BATCH_ROWS).build().map_err(|e| pq(&e))?;
        Ok(BatchRows { path: path.to_path_buf(), reader, pending: Default::default(), buffered: 0, taken: 0 })
    }

    fn read(&mut self) -> Result<bool> {
        match self.reader.next() {
            Some(b) => {
                let b = b.map_err(|e| Error::Corrupt { path: self.path.clone(), reason: e.to_string() })?;
                self.buffered += b.num_rows() as u64;
                self.pending.push_back(b);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The next batch as the file has it, if any rows are left.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.pending.is_empty() && !self.read()? {
            return Ok(None);
        }
        let b = self.pending.pop_front().expect("read");
        self.buffered -= b.num_rows() as u64;
        self.taken += b.num_rows() as u64;
        Ok(Some(b))
    }

    /// The next `n` rows, as one batch.
    fn take(&mut self, n: u64) -> Result<RecordBatch> {
        while self.buffered < n {
            if !self.read()? {
                return Err(Error::Corrupt {
                    path: self.path.clone(),
                    reason: format!("{} rows where the transactions count {} or more", self.taken + self.buffered, self.taken + n),
                });
            }
        }
        let mut parts = vec![];
        let mut need = n as usize;
        while need > 0 {
            let b = self.pending.pop_front().expect("buffered");
            if b.num_rows() <= need {
                need -= b.num_rows();
                parts.push(b);
            } else {
                parts.push(b.slice(0, need));
                self.pending.push_front(b.slice(need, b.num_rows() - need));
                need = 0;
            }
        }
        self.buffered -= n;
        self.taken += n;
        let schema = self.reader.schema();
        if parts.len() == 1 {
            return Ok(parts.pop().expect("one"));
        }
        concat_batches(&schema, &parts).map_err(|e| Error::Corrupt { path: self.path.clone(), reason: e.to_string() })
    }

    /// Rows handed out so far.
    fn taken(&self) -> u64 {
        self.taken
    }

    /// Fails if rows are left that no transaction counted.
    fn check_end(&mut self) -> Result<()> {
        while self.read()? {}
        if self.buffered > 0 {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                reason: format!("{} rows where the transactions count {}", self.taken + self.buffered, self.taken),
            });
        }
        Ok(())
    }
}

fn decode_txid(hex_str: &str, path: &Path, row: usize) -> Result<[u8; 32]> {
    let mut b = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut b)
        .map_err(|e| Error::Corrupt { path: path.to_path_buf(), reason: format!("row {row}: transaction hash {hex_str:?}: {e}") })?;
    Ok(b)
}

impl Builder {
    fn new(chain: &str, budget: &Budget, to: &SpillTo) -> Builder {
        let mut b = Builder {
            meta: IndexMeta { chain: chain.to_string(), ..Default::default() },
            txid: SpillVec::new("txid", budget.array, to),
            tx_height: SpillVec::new("tx_height", budget.array, to),
            tx_time: SpillVec::new("tx_time", budget.array, to),
            tx_in_start: SpillVec::new("tx_in_start", budget.array, to),
            tx_out_start: SpillVec::new("tx_out_start", budget.array, to),
            out_value: SpillVec::new("out_value", budget.array, to),
            out_addr: SpillVec::new("out_addr", budget.array, to),
            out_type: SpillVec::new("out_type", budget.array, to),
            in_prevout: SpillVec::new("in_prevout", budget.array, to),
            addr_offsets: SpillVec::new("addr_offsets", budget.array, to),
            addr_bytes: SpillVec::new("addr_bytes", budget.array, to),
            addressed_outputs: 0,
            addr_ids: DiskMap::new(budget.addresses, to),
            tx_ids: DiskMap::new(budget.txids, to),
            addr_keys: Sorter::new(budget.sort, to),
            tx_keys: Sorter::new(budget.sort, to),
        };
        for v in [&mut b.tx_in_start, &mut b.tx_out_start, &mut b.addr_offsets] {
            v.push(0).expect("one value stays in memory");
        }
        b
    }

    /// A builder that extends `idx`: its arrays start with the index's sections (read from the
    /// file as they are written out), its maps and sorts are filled from them.
    fn from_index(idx: &GraphIndex, budget: &Budget, to: &SpillTo) -> Result<Builder> {
        let mut b = Builder::new(&idx.meta.chain, budget, to);
        b.meta = idx.meta.clone();
        let path = idx.file.path().to_path_buf();
        let file = Arc::new(File::open(&path).map_err(|e| Error::io(&path, e))?);
        fn base<T: bytemuck::Pod>(v: &mut SpillVec<T>, idx: &GraphIndex, file: &Arc<File>, path: &Path, name: &str) {
            let r = idx.file.range(name).expect("sections are checked when the index is opened");
            let values: &[T] = idx.sl(name);
            *v = SpillVec::new(v.name(), v.cap_bytes(), v.spill_to());
            v.set_base(file.clone(), path, r.start as u64, values.len() as u64, values.last().copied());
        }
        base(&mut b.txid, idx, &file, &path, "txid");
        base(&mut b.tx_height, idx, &file, &path, "tx_height");
        base(&mut b.tx_time, idx, &file, &path, "tx_time");
        base(&mut b.tx_in_start, idx, &file, &path, "tx_in_start");
        base(&mut b.tx_out_start, idx, &file, &path, "tx_out_start");
        base(&mut b.out_value, idx, &file, &path, "out_value");
        base(&mut b.out_addr, idx, &file, &path, "out_addr");
        base(&mut b.out_type, idx, &file, &path, "out_type");
        base(&mut b.in_prevout, idx, &file, &path, "in_prevout");
        base(&mut b.addr_offsets, idx, &file, &path, "addr_offsets");
        base(&mut b.addr_bytes, idx, &file, &path, "addr_bytes");
        b.addressed_outputs = idx.addr_outs().len() as u64;
        for a in 0..idx.address_count() as u32 {
            b.addr_ids.insert(address_map_key(idx.address(a)), a as u64)?;
        }
        let starts = idx.tx_out_start();
        for (t, id) in idx.txid().iter().enumerate() {
            let packed = pack_outputs(starts[t], starts[t + 1] - starts[t]).ok_or_else(|| too_many_outputs(&path, t))?;
            b.tx_ids.insert(txid_map_key(id), packed)?;
        }
        for &id in idx.sl::<u32>("addr_key_id") {
            b.addr_keys.push(address_key(idx.address(id)), id)?;
        }
        for &id in idx.sl::<u32>("txid_key_id") {
            b.tx_keys.push(txid_key(&idx.txid()[id as usize]), id)?;
        }
        Ok(b)
    }

    fn intern(&mut self, address: &str) -> Result<u32> {
        let key = address_map_key(address);
        if let Some(id) = self.addr_ids.get(key)? {
            return Ok(id as u32);
        }
        let id = self.meta.addresses as u32;
        self.meta.addresses += 1;
        self.addr_ids.insert(key, id as u64)?;
        self.addr_keys.push(address_key(address), id)?;
        self.addr_bytes.extend(address.as_bytes())?;
        let end = self.addr_offsets.last().unwrap_or(0) + address.len() as u64;
        self.addr_offsets.push(end)?;
        Ok(id)
    }

    /// Appends one chunk; returns its number of transactions.
    /// Appends one chunk, a batch of transactions (with their outputs and inputs) at a time;
    /// returns its number of transactions.
    fn add_chunk(&mut self, txs_path: &Path, outs_path: &Path, ins_path: &Path) -> Result<u64> {
        let mut txs = BatchRows::open(txs_path, &["hash", "block_number", "block_timestamp", "input_count", "output_count"])?;
        let mut outs = BatchRows::open(outs_path, &["transaction_hash", "index", "value", "type", "addresses"])?;
        let mut ins = BatchRows::open(ins_path, &["transaction_hash", "index", "spent_transaction_hash", "spent_output_index"])?;
        let mut n = 0u64;
        while let Some(batch) = txs.next_batch()? {
            let want = |name: &str| -> u64 { batch.column_by_name(name).expect("read").as_primitive::<UInt32Type>().values().iter().map(|&c| c as u64).sum() };
            let (o, i) = (outs.take(want("output_count"))?, ins.take(want("input_count"))?);
            self.add_rows(
                &batch,
                &o,
                &i,
                (txs_path, outs_path, ins_path),
                (txs.taken() - batch.num_rows() as u64, outs.taken() - o.num_rows() as u64, ins.taken() - i.num_rows() as u64),
            )?;
            n += batch.num_rows() as u64;
        }
        outs.check_end()?;
        ins.check_end()?;
        Ok(n)
    }

    /// Appends transactions `txs` with their outputs `outs` and inputs `ins` (the rows of the
    /// three tables that belong to them); `paths` and `first` (the rows' numbers in their files)
    /// name them in errors.
    fn add_rows(&mut self, txs: &RecordBatch, outs: &RecordBatch, ins: &RecordBatch, paths: (&Path, &Path, &Path), first: (u64, u64, u64)) -> Result<()> {
        let (txs_path, outs_path, ins_path) = paths;
        let col = |b: &RecordBatch, n: &str| b.column_by_name(n).expect("checked by BatchRows::open").clone();
        let corrupt = |path: &Path, reason: String| Error::Corrupt { path: path.to_path_buf(), reason };
        let (hash, height, time) = (col(txs, "hash"), col(txs, "block_number"), col(txs, "block_timestamp"));
        let (hash, height, time) =
            (hash.as_string::<i32>(), height.as_primitive::<UInt64Type>(), time.as_primitive::<datafusion::arrow::datatypes::Int64Type>());
        let (in_count, out_count) = (col(txs, "input_count"), col(txs, "output_count"));
        let (in_count, out_count) = (in_count.as_primitive::<UInt32Type>(), out_count.as_primitive::<UInt32Type>());
        let (o_tx, o_index, o_value, o_type, o_addrs) =
            (col(outs, "transaction_hash"), col(outs, "index"), col(outs, "value"), col(outs, "type"), col(outs, "addresses"));
        let (o_tx, o_index, o_value, o_type, o_addrs) = (
            o_tx.as_string::<i32>(),
            o_index.as_primitive::<UInt32Type>(),
            o_value.as_primitive::<UInt64Type>(),
            o_type.as_string::<i32>(),
            o_addrs.as_list::<i32>(),
        );
        let o_addr_values = o_addrs.values().as_string::<i32>().clone();
        let (i_tx, i_index, i_spent, i_vout) =
            (col(ins, "transaction_hash"), col(ins, "index"), col(ins, "spent_transaction_hash"), col(ins, "spent_output_index"));
        let (i_tx, i_index, i_spent, i_vout) =
            (i_tx.as_string::<i32>(), i_index.as_primitive::<UInt32Type>(), i_spent.as_string::<i32>(), i_vout.as_primitive::<UInt32Type>());
        let (t_first, o_first, i_first) = (first.0 as usize, first.1 as usize, first.2 as usize);
        let type_codes: Vec<(String, u8)> = ScriptType::ALL.iter().enumerate().map(|(i, t)| (t.as_str().to_string(), i as u8)).collect();
        let nonstandard = ScriptType::ALL.iter().position(|t| *t == ScriptType::NonStandard).expect("listed") as u8;
        let (mut orow, mut irow) = (0usize, 0usize);
        let mut joined = String::new();
        for t in 0..txs.num_rows() {
            let h = hash.value(t);
            let id = decode_txid(h, txs_path, t_first + t)?;
            let tx = self.meta.transactions as u32;
            self.txid.push(id)?;
            self.tx_keys.push(txid_key(&id), tx)?;
            self.tx_height.push(height.value(t) as u32)?;
            self.tx_time.push(time.value(t).clamp(0, u32::MAX as i64) as u32)?;
            let n_out = out_count.value(t) as usize;
            let n_in = in_count.value(t) as usize;
            let first_out = self.meta.outputs;
            for k in 0..n_out {
                let r = orow + k;
                if o_tx.value(r) != h || o_index.value(r) as usize != k {
                    return Err(corrupt(
                        outs_path,
                        format!("row {} is output {}:{} where {h}:{k} was expected (tables out of order)", o_first + r, o_tx.value(r), o_index.value(r)),
                    ));
                }
                self.out_value.push(o_value.value(r))?;
                let ty = o_type.value(r);
                self.out_type.push(type_codes.iter().find(|(n, _)| n == ty).map(|(_, c)| *c).unwrap_or(nonstandard))?;
                let offsets = o_addrs.value_offsets();
                let (s, e) = (offsets[r] as usize, offsets[r + 1] as usize);
                let addr = match e - s {
                    0 => NO_ADDRESS,
                    1 => self.intern(o_addr_values.value(s))?,
                    _ => {
                        // A bare multisig output: its keys together are one address.
                        joined.clear();
                        for (j, i) in (s..e).enumerate() {
                            if j > 0 {
                                joined.push(',');
                            }
                            joined.push_str(o_addr_values.value(i));
                        }
                        let j = joined.clone();
                        self.intern(&j)?
                    }
                };
                if addr != NO_ADDRESS {
                    self.addressed_outputs += 1;
                }
                self.out_addr.push(addr)?;
            }
            orow += n_out;
            self.meta.outputs += n_out as u64;
            self.tx_out_start.push(self.meta.outputs)?;
            for k in 0..n_in {
                let r = irow + k;
                if i_tx.value(r) != h || i_index.value(r) as usize != k {
                    return Err(corrupt(
                        ins_path,
                        format!("row {} is input {}:{} where {h}:{k} was expected (tables out of order)", i_first + r, i_tx.value(r), i_index.value(r)),
                    ));
                }
                let prevout = if i_spent.is_null(r) {
                    NONE
                } else {
                    let spent = decode_txid(i_spent.value(r), ins_path, i_first + r)?;
                    match self.tx_ids.get(txid_map_key(&spent))? {
                        Some(packed) => {
                            let (start, count) = unpack_outputs(packed);
                            let vout = i_vout.value(r) as u64;
                            if vout >= count {
                                return Err(corrupt(
                                    ins_path,
                                    format!("row {} spends output {} of {} which has fewer outputs", i_first + r, i_vout.value(r), i_spent.value(r)),
                                ));
                            }
                            start + vout
                        }
                        None => {
                            self.meta.unresolved_inputs += 1;
                            NONE
                        }
                    }
                };
                self.in_prevout.push(prevout)?;
            }
            irow += n_in;
            self.meta.inputs += n_in as u64;
            self.tx_in_start.push(self.meta.inputs)?;
            let packed = pack_outputs(first_out, n_out as u64).ok_or_else(|| too_many_outputs(txs_path, t_first + t))?;
            self.tx_ids.insert(txid_map_key(&id), packed)?;
            self.meta.transactions += 1;
        }
        Ok(())
    }

    /// Writes the index file: the arrays as they are, then what derives from them (each
    /// output's spender, each input's and output's transaction, address → outputs, the sorted
    /// lookups), in passes over windows that fit the budget.
    fn write(self, path: &Path, budget: &Budget) -> Result<u64> {
        let Builder {
            meta,
            mut txid,
            mut tx_height,
            mut tx_time,
            mut tx_in_start,
            mut tx_out_start,
            mut out_value,
            mut out_addr,
            mut out_type,
            mut in_prevout,
            mut addr_offsets,
            mut addr_bytes,
            addressed_outputs,
            addr_ids,
            tx_ids,
            addr_keys,
            tx_keys,
        } = self;
        drop((addr_ids, tx_ids));
        let addr_keys = addr_keys.finish()?;
        let tx_keys = tx_keys.finish()?;
        // The maps are gone: their memory goes back before the windows take theirs.
        tracehound_memory::release_free_memory();
        let (t, i, o, a) = (meta.transactions, meta.inputs, meta.outputs, meta.addresses);
        assert_eq!((txid.len(), in_prevout.len(), out_addr.len(), addr_keys.len(), tx_keys.len()), (t, i, o, a, t));
        let meta_bytes = serde_json::to_vec(&meta).expect("meta serializes");
        let sections: Vec<(String, u64)> = [
            ("meta", meta_bytes.len() as u64),
            ("txid", txid.byte_len()),
            ("tx_height", tx_height.byte_len()),
            ("tx_time", tx_time.byte_len()),
            ("tx_in_start", tx_in_start.byte_len()),
            ("tx_out_start", tx_out_start.byte_len()),
            ("out_value", out_value.byte_len()),
            ("out_addr", out_addr.byte_len()),
            ("out_type", out_type.byte_len()),
            ("out_spender", 8 * o),
            ("in_prevout", in_prevout.byte_len()),
            ("in_tx", 4 * i),
            ("out_tx", 4 * o),
            ("addr_offsets", addr_offsets.byte_len()),
            ("addr_bytes", addr_bytes.byte_len()),
            ("addr_out_start", 8 * (a + 1)),
            ("addr_outs", 8 * addressed_outputs),
            ("addr_key_id", 4 * a),
            ("txid_key_id", 4 * t),
        ]
        .iter()
        .map(|(n, l)| (n.to_string(), *l))
        .collect();
        let window = |bytes_per_item: u64| budget.window.map_or(u64::MAX, |w| (w / bytes_per_item).max(1024));
        fn bytes<T: bytemuck::Pod>(v: &[T]) -> &[u8] {
            bytemuck::cast_slice(v)
        }
        file::write_streamed(path, MAGIC, INDEX_VERSION, &sections, &mut |s, sink| match sections[s].0.as_str() {
            "meta" => sink(&meta_bytes),
            "txid" => txid.for_each(&mut |v| sink(bytes(v))),
            "tx_height" => tx_height.for_each(&mut |v| sink(bytes(v))),
            "tx_time" => tx_time.for_each(&mut |v| sink(bytes(v))),
            "tx_in_start" => tx_in_start.for_each(&mut |v| sink(bytes(v))),
            "tx_out_start" => tx_out_start.for_each(&mut |v| sink(bytes(v))),
            "out_value" => out_value.for_each(&mut |v| sink(bytes(v))),
            "out_addr" => out_addr.for_each(&mut |v| sink(bytes(v))),
            "out_type" => out_type.for_each(&mut |v| sink(bytes(v))),
            "in_prevout" => in_prevout.for_each(&mut |v| sink(bytes(v))),
            "addr_offsets" => addr_offsets.for_each(&mut |v| sink(bytes(v))),
            "addr_bytes" => addr_bytes.for_each(&mut |v| sink(bytes(v))),
            "out_spender" => {
                // The inverse of in_prevout, a window of outputs per pass.
                let w = window(8);
                let mut lo = 0;
                while lo < o {
                    let hi = o.min(lo.saturating_add(w));
                    let mut spender = vec![NONE; (hi - lo) as usize];
                    let mut input = 0u64;
                    in_prevout.for_each(&mut |v| {
                        for &p in v {
                            if p != NONE && p >= lo && p < hi {
                                spender[(p - lo) as usize] = input;
                            }
                            input += 1;
                        }
                        Ok(())
                    })?;
                    sink(bytes(&spender))?;
                    lo = hi;
                }
                Ok(())
            }
            "in_tx" => owners_streamed(&mut tx_in_start, sink),
            "out_tx" => owners_streamed(&mut tx_out_start, sink),
            "addr_out_start" | "addr_outs" => {
                // Address → outputs in output order (time order), a window of addresses per pass.
                let starts_only = sections[s].0 == "addr_out_start";
                write_lists(
                    a,
                    window(16),
                    window(8),
                    starts_only,
                    &mut |f| {
                        let mut output = 0u64;
                        out_addr.for_each(&mut |v| {
                            for &x in v {
                                if x != NO_ADDRESS {
                                    f(output, x);
                                }
                                output += 1;
                            }
                            Ok(())
                        })
                    },
                    sink,
                )
            }
            "addr_key_id" => addr_keys.for_each(&mut |v| sink(bytes(&v.iter().map(|p| p.1).collect::<Vec<u32>>()))),
            "txid_key_id" => tx_keys.for_each(&mut |v| sink(bytes(&v.iter().map(|p| p.1).collect::<Vec<u32>>()))),
            other => unreachable!("section {other} has no writer"),
        })
    }
}

/// Streams the transaction of each input (or output) from the transactions' ranges.
fn owners_streamed(start: &mut SpillVec<u64>, sink: &mut file::Sink) -> Result<()> {
    let mut prev: Option<u64> = None;
    let mut t = 0u32;
    let mut buf: Vec<u32> = Vec::with_capacity(1 << 16);
    start.for_each(&mut |v| {
        for &s in v {
            if let Some(p) = prev {
                for _ in p..s {
                    buf.push(t);
                    if buf.len() == buf.capacity() {
                        sink(bytemuck::cast_slice(&buf))?;
                        buf.clear();
                    }
                }
                t += 1;
            }
            prev = Some(s);
        }
        Ok(())
    })?;
    sink(bytemuck::cast_slice(&buf))
}

fn too_many_outputs(path: &Path, row: usize) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        reason: format!("row {row}: a transaction with 2^24 outputs or more, or 2^40 outputs in all, is beyond the index"),
    }
}

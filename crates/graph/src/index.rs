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
//! | `addr_key`, `addr_key_id` | sorted `u64` hash, `u32` | address string → id |
//! | `txid_key`, `txid_key_id` | sorted `u64` prefix, `u32` | txid → tx id |
//!
//! The index remembers which table chunks (by last block hash) it covers. If the tables only grew,
//! [`update`] reads the new chunks and appends; if they were rolled back by a reorg, or the file
//! is missing, stale, of another version or fails its checksum, it is rebuilt from the tables and
//! the reason is reported. It is never used silently out of date: [`GraphIndex::open_current`]
//! refuses an index that does not match the tables.

use crate::file::{SectionFile, SectionWriter};
use crate::{Error, Result};
use datafusion::arrow::array::{Array, AsArray, RecordBatch, RecordBatchReader};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{UInt32Type, UInt64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use tracehound_core::script::ScriptType;
use tracehound_tables::{Chunk, Store};

/// Address id of an output without an address.
pub const NO_ADDRESS: u32 = u32::MAX;
/// Input or output id meaning "none" (unspent output, coinbase or unresolved input).
pub const NONE: u64 = u64::MAX;
/// Format version of `graph.thg`.
pub const INDEX_VERSION: u32 = 3;
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

const SECTIONS: [&str; 20] = [
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
    "addr_key",
    "addr_key_id",
    "txid_key",
    "txid_key_id",
];

impl GraphIndex {
    /// Opens the index file at `path`, verifying its checksum and the lengths of its arrays.
    pub fn open(path: &Path) -> Result<GraphIndex> {
        let file = SectionFile::open(path, MAGIC, INDEX_VERSION, true)?;
        let meta: IndexMeta =
            serde_json::from_slice(file.slice::<u8>("meta")?).map_err(|e| Error::Corrupt { path: path.to_path_buf(), reason: format!("meta section: {e}") })?;
        for s in SECTIONS {
            file.slice::<u8>(s)?;
        }
        // Every section must cast to its element type before the typed accessors may be used.
        for s in
            ["tx_in_start", "tx_out_start", "out_value", "out_spender", "in_prevout", "addr_offsets", "addr_out_start", "addr_outs", "addr_key", "txid_key"]
        {
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
            (idx.sl::<u64>("addr_key").len(), a),
            (idx.sl::<u64>("txid_key").len(), t),
        ];
        if let Some((found, want)) = lens.iter().find(|(f, w)| f != w) {
            return Err(Error::Corrupt { path: path.to_path_buf(), reason: format!("an array holds {found} entries where the header counts {want}") });
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
        Ok(idx)
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
        let keys = self.sl::<u64>("addr_key");
        let ids = self.sl::<u32>("addr_key_id");
        find_key(keys, ids, address_key(address), |id| self.address(id) == address)
    }

    /// The id of the transaction with hash `txid` (hex, display order), if indexed.
    pub fn tx_id(&self, txid: &str) -> Option<u32> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(txid, &mut bytes).ok()?;
        let keys = self.sl::<u64>("txid_key");
        let ids = self.sl::<u32>("txid_key_id");
        find_key(keys, ids, txid_key(&bytes), |id| self.txid()[id as usize] == bytes)
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
/// new chunks if the tables only grew, rebuilds otherwise.
pub fn update(store: &Store, chain: &str, progress: &mut dyn FnMut(IndexEvent)) -> Result<UpdateReport> {
    let Some(cm) = store.chain(chain) else {
        return Err(Error::NotFound(format!("no chain {chain:?} is stored; ingest it first")));
    };
    for table in ["transactions", "inputs", "outputs"] {
        if !cm.table_names().contains(table) {
            return Err(Error::NotFound(format!("chain {chain:?} has no {table} table: the graph index covers UTXO chains")));
        }
    }
    let want: Vec<ChunkRef> = cm.chunks.iter().map(ChunkRef::from).collect();
    let path = index_path(store.root(), chain);
    let (mut builder, reason) = match GraphIndex::open(&path) {
        Ok(idx) if idx.meta.chunks == want => {
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            return Ok(UpdateReport { action: "unchanged", reason: None, chunks_read: 0, transactions_added: 0, meta: idx.meta.clone(), bytes });
        }
        Ok(idx) if want.starts_with(&idx.meta.chunks) && idx.meta.chain == chain => (Builder::from_index(&idx), None),
        Ok(idx) => (Builder::new(chain), Some(format!("the tables were rolled back below height {:?} (reorg)", idx.meta.tip_height()))),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => (Builder::new(chain), Some("no index yet".to_string())),
        Err(e) => (Builder::new(chain), Some(format!("the index was unusable: {e}"))),
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
    let bytes = builder.write(&path)?;
    let action = if reason.is_some() { "rebuilt" } else { "extended" };
    Ok(UpdateReport {
        action,
        reason,
        chunks_read: want.len() - start,
        transactions_added: builder.meta.transactions - before,
        meta: builder.meta.clone(),
        bytes,
    })
}

/// The index in memory while it is built or extended.
struct Builder {
    meta: IndexMeta,
    txid: Vec<[u8; 32]>,
    tx_height: Vec<u32>,
    tx_time: Vec<u32>,
    tx_in_start: Vec<u64>,
    tx_out_start: Vec<u64>,
    out_value: Vec<u64>,
    out_addr: Vec<u32>,
    out_type: Vec<u8>,
    out_spender: Vec<u64>,
    in_prevout: Vec<u64>,
    addr_offsets: Vec<u64>,
    addr_bytes: Vec<u8>,
    addr_ids: HashMap<Box<str>, u32>,
    tx_ids: HashMap<[u8; 32], u32>,
}

/// The transaction of each input (or output), from the transactions' ranges.
fn owners(start: &[u64]) -> Vec<u32> {
    let mut owner = Vec::with_capacity(start.last().copied().unwrap_or(0) as usize);
    for (t, r) in start.windows(2).enumerate() {
        owner.resize(r[1] as usize, t as u32);
    }
    owner
}

/// Reads `columns` of the Parquet file at `path` into one batch; a missing column is an error.
pub(crate) fn read_columns(path: &Path, columns: &[&str]) -> Result<RecordBatch> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let pq = |e: &dyn std::fmt::Display| Error::Corrupt { path: path.to_path_buf(), reason: e.to_string() };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| pq(&e))?;
    let fields = builder.parquet_schema().columns().iter().enumerate().filter(|(_, c)| columns.contains(&c.path().parts()[0].as_str())).map(|(i, _)| i);
    let mask = ProjectionMask::leaves(builder.parquet_schema(), fields);
    let reader = builder.with_projection(mask).with_batch_size(64 * 1024).build().map_err(|e| pq(&e))?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| pq(&e))?;
    let batch = concat_batches(&schema, &batches).map_err(|e| pq(&e))?;
    for c in columns {
        if batch.column_by_name(c).is_none() {
            return Err(pq(&format!("column {c} is missing")));
        }
    }
    Ok(batch)
}

fn decode_txid(hex_str: &str, path: &Path, row: usize) -> Result<[u8; 32]> {
    let mut b = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut b)
        .map_err(|e| Error::Corrupt { path: path.to_path_buf(), reason: format!("row {row}: transaction hash {hex_str:?}: {e}") })?;
    Ok(b)
}

impl Builder {
    fn new(chain: &str) -> Builder {
        Builder {
            meta: IndexMeta { chain: chain.to_string(), ..Default::default() },
            txid: vec![],
            tx_height: vec![],
            tx_time: vec![],
            tx_in_start: vec![0],
            tx_out_start: vec![0],
            out_value: vec![],
            out_addr: vec![],
            out_type: vec![],
            out_spender: vec![],
            in_prevout: vec![],
            addr_offsets: vec![0],
            addr_bytes: vec![],
            addr_ids: HashMap::new(),
            tx_ids: HashMap::new(),
        }
    }

    fn from_index(idx: &GraphIndex) -> Builder {
        let mut b = Builder {
            meta: idx.meta.clone(),
            txid: idx.txid().to_vec(),
            tx_height: idx.tx_height().to_vec(),
            tx_time: idx.tx_time().to_vec(),
            tx_in_start: idx.tx_in_start().to_vec(),
            tx_out_start: idx.tx_out_start().to_vec(),
            out_value: idx.out_value().to_vec(),
            out_addr: idx.out_addr().to_vec(),
            out_type: idx.out_type().to_vec(),
            out_spender: idx.out_spender().to_vec(),
            in_prevout: idx.in_prevout().to_vec(),
            addr_offsets: idx.sl::<u64>("addr_offsets").to_vec(),
            addr_bytes: idx.sl::<u8>("addr_bytes").to_vec(),
            addr_ids: HashMap::with_capacity(idx.address_count()),
            tx_ids: HashMap::with_capacity(idx.tx_count()),
        };
        for a in 0..idx.address_count() as u32 {
            b.addr_ids.insert(idx.address(a).into(), a);
        }
        for (t, id) in b.txid.iter().enumerate() {
            b.tx_ids.insert(*id, t as u32);
        }
        b
    }

    fn intern(&mut self, address: &str) -> u32 {
        if let Some(&id) = self.addr_ids.get(address) {
            return id;
        }
        let id = self.addr_ids.len() as u32;
        self.addr_ids.insert(address.into(), id);
        self.addr_bytes.extend_from_slice(address.as_bytes());
        self.addr_offsets.push(self.addr_bytes.len() as u64);
        id
    }

    /// Appends one chunk; returns its number of transactions.
    fn add_chunk(&mut self, txs_path: &Path, outs_path: &Path, ins_path: &Path) -> Result<u64> {
        let txs = read_columns(txs_path, &["hash", "block_number", "block_timestamp", "input_count", "output_count"])?;
        let outs = read_columns(outs_path, &["transaction_hash", "index", "value", "type", "addresses"])?;
        let ins = read_columns(ins_path, &["transaction_hash", "index", "spent_transaction_hash", "spent_output_index"])?;
        let col = |b: &RecordBatch, n: &str| b.column_by_name(n).expect("checked by read_columns").clone();
        let corrupt = |path: &Path, reason: String| Error::Corrupt { path: path.to_path_buf(), reason };
        let (hash, height, time) = (col(&txs, "hash"), col(&txs, "block_number"), col(&txs, "block_timestamp"));
        let (hash, height, time) =
            (hash.as_string::<i32>(), height.as_primitive::<UInt64Type>(), time.as_primitive::<datafusion::arrow::datatypes::Int64Type>());
        let (in_count, out_count) = (col(&txs, "input_count"), col(&txs, "output_count"));
        let (in_count, out_count) = (in_count.as_primitive::<UInt32Type>(), out_count.as_primitive::<UInt32Type>());
        let (o_tx, o_index, o_value, o_type, o_addrs) =
            (col(&outs, "transaction_hash"), col(&outs, "index"), col(&outs, "value"), col(&outs, "type"), col(&outs, "addresses"));
        let (o_tx, o_index, o_value, o_type, o_addrs) = (
            o_tx.as_string::<i32>(),
            o_index.as_primitive::<UInt32Type>(),
            o_value.as_primitive::<UInt64Type>(),
            o_type.as_string::<i32>(),
            o_addrs.as_list::<i32>(),
        );
        let o_addr_values = o_addrs.values().as_string::<i32>().clone();
        let (i_tx, i_index, i_spent, i_vout) =
            (col(&ins, "transaction_hash"), col(&ins, "index"), col(&ins, "spent_transaction_hash"), col(&ins, "spent_output_index"));
        let (i_tx, i_index, i_spent, i_vout) =
            (i_tx.as_string::<i32>(), i_index.as_primitive::<UInt32Type>(), i_spent.as_string::<i32>(), i_vout.as_primitive::<UInt32Type>());
        let want_outs: u64 = out_count.values().iter().map(|&c| c as u64).sum();
        let want_ins: u64 = in_count.values().iter().map(|&c| c as u64).sum();
        if want_outs != outs.num_rows() as u64 {
            return Err(corrupt(outs_path, format!("{} rows where the transactions count {want_outs} outputs", outs.num_rows())));
        }
        if want_ins != ins.num_rows() as u64 {
            return Err(corrupt(ins_path, format!("{} rows where the transactions count {want_ins} inputs", ins.num_rows())));
        }
        let type_codes: Vec<(String, u8)> = ScriptType::ALL.iter().enumerate().map(|(i, t)| (t.as_str().to_string(), i as u8)).collect();
        let nonstandard = ScriptType::ALL.iter().position(|t| *t == ScriptType::NonStandard).expect("listed") as u8;
        let (mut orow, mut irow) = (0usize, 0usize);
        let mut joined = String::new();
        for t in 0..txs.num_rows() {
            let h = hash.value(t);
            let id = decode_txid(h, txs_path, t)?;
            let tx = self.txid.len() as u32;
            self.txid.push(id);
            self.tx_height.push(height.value(t) as u32);
            self.tx_time.push(time.value(t).clamp(0, u32::MAX as i64) as u32);
            let n_out = out_count.value(t) as usize;
            let n_in = in_count.value(t) as usize;
            for k in 0..n_out {
                let r = orow + k;
                if o_tx.value(r) != h || o_index.value(r) as usize != k {
                    return Err(corrupt(
                        outs_path,
                        format!("row {r} is output {}:{} where {h}:{k} was expected (tables out of order)", o_tx.value(r), o_index.value(r)),
                    ));
                }
                self.out_value.push(o_value.value(r));
                let ty = o_type.value(r);
                self.out_type.push(type_codes.iter().find(|(n, _)| n == ty).map(|(_, c)| *c).unwrap_or(nonstandard));
                let offsets = o_addrs.value_offsets();
                let (s, e) = (offsets[r] as usize, offsets[r + 1] as usize);
                let addr = match e - s {
                    0 => NO_ADDRESS,
                    1 => self.intern(o_addr_values.value(s)),
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
                        self.intern(&j)
                    }
                };
                self.out_addr.push(addr);
                self.out_spender.push(NONE);
            }
            orow += n_out;
            self.tx_out_start.push(self.out_value.len() as u64);
            for k in 0..n_in {
                let r = irow + k;
                if i_tx.value(r) != h || i_index.value(r) as usize != k {
                    return Err(corrupt(
                        ins_path,
                        format!("row {r} is input {}:{} where {h}:{k} was expected (tables out of order)", i_tx.value(r), i_index.value(r)),
                    ));
                }
                let input = self.in_prevout.len() as u64;
                let prevout = if i_spent.is_null(r) {
                    NONE
                } else {
                    let spent = decode_txid(i_spent.value(r), ins_path, r)?;
                    match self.tx_ids.get(&spent) {
                        Some(&st) => {
                            let o = self.tx_out_start[st as usize] + i_vout.value(r) as u64;
                            if o >= self.tx_out_start[st as usize + 1] {
                                return Err(corrupt(
                                    ins_path,
                                    format!("row {r} spends output {} of {} which has fewer outputs", i_vout.value(r), i_spent.value(r)),
                                ));
                            }
                            self.out_spender[o as usize] = input;
                            o
                        }
                        None => {
                            self.meta.unresolved_inputs += 1;
                            NONE
                        }
                    }
                };
                self.in_prevout.push(prevout);
            }
            irow += n_in;
            self.tx_in_start.push(self.in_prevout.len() as u64);
            self.tx_ids.insert(id, tx);
        }
        self.meta.transactions = self.txid.len() as u64;
        self.meta.inputs = self.in_prevout.len() as u64;
        self.meta.outputs = self.out_value.len() as u64;
        self.meta.addresses = self.addr_ids.len() as u64;
        Ok(txs.num_rows() as u64)
    }

    fn write(&self, path: &Path) -> Result<u64> {
        let naddr = self.addr_ids.len();
        // Address → outputs (CSR), in output order, which is time order.
        let mut start = vec![0u64; naddr + 1];
        for &a in &self.out_addr {
            if a != NO_ADDRESS {
                start[a as usize + 1] += 1;
            }
        }
        for i in 0..naddr {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut outs = vec![0u64; start[naddr] as usize];
        for (o, &a) in self.out_addr.iter().enumerate() {
            if a != NO_ADDRESS {
                outs[fill[a as usize] as usize] = o as u64;
                fill[a as usize] += 1;
            }
        }
        let mut addr_keys: Vec<(u64, u32)> = self.addr_ids.iter().map(|(s, &id)| (address_key(s), id)).collect();
        addr_keys.sort_unstable();
        let mut tx_keys: Vec<(u64, u32)> = self.txid.iter().enumerate().map(|(t, id)| (txid_key(id), t as u32)).collect();
        tx_keys.sort_unstable();
        let mut w = SectionWriter::new(MAGIC, INDEX_VERSION);
        w.add_bytes("meta", serde_json::to_vec(&self.meta).expect("meta serializes"));
        w.add("txid", &self.txid);
        w.add("tx_height", &self.tx_height);
        w.add("tx_time", &self.tx_time);
        w.add("tx_in_start", &self.tx_in_start);
        w.add("tx_out_start", &self.tx_out_start);
        w.add("out_value", &self.out_value);
        w.add("out_addr", &self.out_addr);
        w.add("out_type", &self.out_type);
        w.add("out_spender", &self.out_spender);
        w.add("in_prevout", &self.in_prevout);
        w.add("in_tx", &owners(&self.tx_in_start));
        w.add("out_tx", &owners(&self.tx_out_start));
        w.add("addr_offsets", &self.addr_offsets);
        w.add("addr_bytes", &self.addr_bytes);
        w.add("addr_out_start", &start);
        w.add("addr_outs", &outs);
        w.add("addr_key", &addr_keys.iter().map(|k| k.0).collect::<Vec<_>>());
        w.add("addr_key_id", &addr_keys.iter().map(|k| k.1).collect::<Vec<_>>());
        w.add("txid_key", &tx_keys.iter().map(|k| k.0).collect::<Vec<_>>());
        w.add("txid_key_id", &tx_keys.iter().map(|k| k.1).collect::<Vec<_>>());
        w.write(path)
    }
}

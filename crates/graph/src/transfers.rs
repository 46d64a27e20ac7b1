//! The graph index of an account chain (EVM): every movement of value of the `transfers` table,
//! plus each transaction's gas fee, as fixed-width arrays in replay order, memory-mapped.
//!
//! Movements are sorted in chain order (block, transaction index, position; a transaction's gas
//! fee first, as the EVM buys gas before it runs). Address ids are `u32` in order of first
//! appearance, asset ids `u32` (the native coin and every token contract), transaction ids `u32`.
//! Arrays (one section each in `transfers.thg`):
//!
//! | section | type | meaning |
//! |---|---|---|
//! | `mv_block`, `mv_time` | `u64` per movement | block number and timestamp |
//! | `mv_tx`, `mv_tx_index` | `u32` per movement | transaction id ([`NO_TX`] for a withdrawal) and index in its block |
//! | `mv_position` | `i64` per movement | order within the transaction (gas fee: −1) |
//! | `mv_from`, `mv_to` | `u32` per movement | address ids; `mv_to` is [`NO_ADDRESS`] for a gas fee |
//! | `mv_asset` | `u32` per movement | asset id |
//! | `mv_amount_lo`, `mv_amount_hi` | `u64` per movement | base units, the low and high 64 bits |
//! | `addr_offsets`, `addr_bytes` | `u64` per address + 1, bytes | address strings (lower case) |
//! | `addr_mv_start`, `addr_mvs` | CSR | movements sent or received by each address, in chain order |
//! | `addr_key`, `addr_key_id` | sorted `u64` hash, `u32` | address string → id |
//! | `asset_offsets`, `asset_bytes` | `u64` per asset + 1, bytes | asset names (`ETH`, token contracts) |
//! | `tx_hash`, `tx_block` | `[u8; 32]`, `u64` per tx | transaction hashes and blocks |
//! | `tx_key`, `tx_key_id` | sorted `u64`, `u32` | transaction hash → id |
//!
//! The index records the table chunks and imported files it covers. When only new chunks were
//! added it reads just those and appends them (ids stay stable); after a rollback (reorg), a new
//! import, or when the file is missing, damaged or of another version, it is rebuilt, and the
//! reason is reported. [`TransferIndex::open_current`] refuses an index that does not match the
//! tables. Amounts of 2^128 base units or more (spam tokens) cannot be traced and are counted as
//! skipped.

use crate::file::{SectionFile, SectionWriter};
use crate::index::{address_key, find_key, index_dir, read_columns, ChunkRef, IndexEvent, NO_ADDRESS};
use crate::{Error, Result};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tracehound_tables::Store;

pub use crate::account::Movement;

/// Format version of `transfers.thg`.
pub const TRANSFERS_VERSION: u32 = 2;
const MAGIC: [u8; 8] = *b"THXFERS\0";
/// Transaction id of a movement without a transaction (a withdrawal).
pub const NO_TX: u32 = u32::MAX;
/// The sender of a token mint (a transfer without a sender).
pub const ISSUANCE: &str = "(issuance)";

/// What a transfer index holds (the `meta` section).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferMeta {
    /// Chain name.
    pub chain: String,
    /// Symbol of the native coin (the asset name of native movements).
    pub native: String,
    /// Table chunks covered, in order.
    pub chunks: Vec<ChunkRef>,
    /// SHA-256 of the imported transfer files covered.
    pub imports: Vec<String>,
    /// Movements indexed (transfers and gas fees).
    pub movements: u64,
    /// Distinct addresses.
    pub addresses: u64,
    /// Distinct assets.
    pub assets: u64,
    /// Distinct transactions.
    pub transactions: u64,
    /// Transfers left out: ERC-721 (a token id is not an amount) and amounts of 2^128 or more.
    pub skipped: u64,
}

impl TransferMeta {
    /// Height of the last indexed block.
    pub fn tip_height(&self) -> Option<u64> {
        self.chunks.last().map(|c| c.last)
    }
}

/// Path of the transfer index of `chain`.
pub fn transfers_path(data_dir: &Path, chain: &str) -> PathBuf {
    index_dir(data_dir, chain).join("transfers.thg")
}

/// A memory-mapped transfer index.
pub struct TransferIndex {
    file: SectionFile,
    meta: TransferMeta,
}

const U64_SECTIONS: [&str; 9] =
    ["mv_block", "mv_time", "mv_amount_lo", "mv_amount_hi", "addr_offsets", "addr_mv_start", "addr_mvs", "addr_key", "asset_offsets"];
const U32_SECTIONS: [&str; 7] = ["mv_tx", "mv_tx_index", "mv_from", "mv_to", "mv_asset", "addr_key_id", "tx_key_id"];

impl TransferIndex {
    /// Opens the file at `path`, verifying its checksum, the lengths of its arrays and that every
    /// id points inside its array.
    pub fn open(path: &Path) -> Result<TransferIndex> {
        let file = SectionFile::open(path, MAGIC, TRANSFERS_VERSION, true)?;
        let corrupt = |reason: String| Error::Corrupt { path: path.to_path_buf(), reason };
        let meta: TransferMeta = serde_json::from_slice(file.slice::<u8>("meta")?).map_err(|e| corrupt(format!("meta section: {e}")))?;
        for s in U64_SECTIONS.iter().chain(["tx_key", "tx_block"].iter()) {
            file.slice::<u64>(s)?;
        }
        for s in U32_SECTIONS {
            file.slice::<u32>(s)?;
        }
        file.slice::<i64>("mv_position")?;
        file.slice::<[u8; 32]>("tx_hash")?;
        file.slice::<u8>("addr_bytes")?;
        file.slice::<u8>("asset_bytes")?;
        let count = |n: u64, what: &str| -> Result<usize> {
            usize::try_from(n).ok().filter(|&n| n < u32::MAX as usize).ok_or_else(|| corrupt(format!("the header counts {n} {what}")))
        };
        let (m, a, s, t) =
            (meta.movements as usize, count(meta.addresses, "addresses")?, count(meta.assets, "assets")?, count(meta.transactions, "transactions")?);
        let idx = TransferIndex { file, meta };
        let mut lens: Vec<(usize, usize)> = ["mv_block", "mv_time", "mv_amount_lo", "mv_amount_hi"].iter().map(|n| (idx.sl::<u64>(n).len(), m)).collect();
        lens.extend(["mv_tx", "mv_tx_index", "mv_from", "mv_to", "mv_asset"].iter().map(|n| (idx.sl::<u32>(n).len(), m)));
        lens.extend([
            (idx.sl::<i64>("mv_position").len(), m),
            (idx.sl::<u64>("addr_offsets").len(), a + 1),
            (idx.sl::<u64>("addr_mv_start").len(), a + 1),
            (idx.sl::<u64>("addr_key").len(), a),
            (idx.sl::<u32>("addr_key_id").len(), a),
            (idx.sl::<u32>("tx_key_id").len(), t),
            (idx.sl::<u64>("asset_offsets").len(), s + 1),
            (idx.sl::<[u8; 32]>("tx_hash").len(), t),
            (idx.sl::<u64>("tx_key").len(), t),
            (idx.sl::<u64>("tx_block").len(), t),
        ]);
        if let Some((found, want)) = lens.iter().find(|(f, w)| f != w) {
            return Err(corrupt(format!("an array holds {found} entries where the header counts {want}")));
        }
        let ranges_ok = |v: &[u64], end: usize| v.first() == Some(&0) && v.windows(2).all(|w| w[0] <= w[1]) && v.last() == Some(&(end as u64));
        let below = |name: &str, n: usize| idx.sl::<u32>(name).iter().all(|&x| (x as usize) < n);
        let ok = ranges_ok(idx.sl::<u64>("addr_offsets"), idx.sl::<u8>("addr_bytes").len())
            && ranges_ok(idx.sl::<u64>("asset_offsets"), idx.sl::<u8>("asset_bytes").len())
            && ranges_ok(idx.sl::<u64>("addr_mv_start"), idx.sl::<u64>("addr_mvs").len())
            && idx.sl::<u8>("addr_bytes").is_ascii()
            && idx.sl::<u8>("asset_bytes").is_ascii()
            && idx.sl::<u64>("addr_mvs").iter().all(|&x| (x as usize) < m)
            && below("mv_from", a)
            && idx.sl::<u32>("mv_to").iter().all(|&x| x == NO_ADDRESS || (x as usize) < a)
            && below("mv_asset", s)
            && idx.sl::<u32>("mv_tx").iter().all(|&x| x == NO_TX || (x as usize) < t)
            && below("addr_key_id", a)
            && below("tx_key_id", t);
        if !ok {
            return Err(corrupt("ranges or ids point outside their arrays".into()));
        }
        Ok(idx)
    }

    /// Opens the transfer index of `chain` and checks that it covers exactly the stored tables.
    pub fn open_current(store: &Store, chain: &str) -> Result<TransferIndex> {
        let path = transfers_path(store.root(), chain);
        if !path.exists() {
            return Err(Error::Stale(format!("no transfer index for chain {chain:?} yet; run `tracehound index`")));
        }
        let idx = TransferIndex::open(&path)?;
        let (chunks, imports) = coverage(store, chain);
        if idx.meta.chunks != chunks || idx.meta.imports != imports {
            return Err(Error::Stale(format!(
                "the transfer index of {chain:?} covers blocks up to {:?} but the tables hold up to {:?}; run `tracehound index`",
                idx.meta.tip_height(),
                chunks.last().map(|c| c.last)
            )));
        }
        Ok(idx)
    }

    fn sl<T: bytemuck::Pod>(&self, name: &str) -> &[T] {
        self.file.slice(name).expect("sections are checked when the index is opened")
    }

    /// What the index holds.
    pub fn meta(&self) -> &TransferMeta {
        &self.meta
    }

    /// Number of movements.
    pub fn len(&self) -> usize {
        self.meta.movements as usize
    }

    /// Whether no movement is indexed.
    pub fn is_empty(&self) -> bool {
        self.meta.movements == 0
    }

    /// Number of addresses.
    pub fn address_count(&self) -> usize {
        self.meta.addresses as usize
    }

    /// The address string of id `a`.
    pub fn address(&self, a: u32) -> &str {
        let off = self.sl::<u64>("addr_offsets");
        std::str::from_utf8(&self.sl::<u8>("addr_bytes")[off[a as usize] as usize..off[a as usize + 1] as usize]).expect("checked on open")
    }

    /// The id of `address` (any case), if indexed.
    pub fn address_id(&self, address: &str) -> Option<u32> {
        let address = address.to_ascii_lowercase();
        let keys = self.sl::<u64>("addr_key");
        let ids = self.sl::<u32>("addr_key_id");
        find_key(keys, ids, address_key(&address), |id| self.address(id) == address)
    }

    /// The asset name of id `s` (`ETH` or a token contract).
    pub fn asset(&self, s: u32) -> &str {
        let off = self.sl::<u64>("asset_offsets");
        std::str::from_utf8(&self.sl::<u8>("asset_bytes")[off[s as usize] as usize..off[s as usize + 1] as usize]).expect("checked on open")
    }

    /// The hash of transaction `t` (`0x` + hex).
    pub fn tx_hash(&self, t: u32) -> String {
        format!("0x{}", hex::encode(self.sl::<[u8; 32]>("tx_hash")[t as usize]))
    }

    /// The block of transaction `t`.
    pub fn tx_block(&self, t: u32) -> u64 {
        self.sl::<u64>("tx_block")[t as usize]
    }

    /// The id of the transaction with hash `hash` (`0x` + 64 hex), if indexed.
    pub fn tx_id(&self, hash: &str) -> Option<u32> {
        let bytes = parse_hash(hash)?;
        let keys = self.sl::<u64>("tx_key");
        let ids = self.sl::<u32>("tx_key_id");
        find_key(keys, ids, hash_key(&bytes), |id| self.sl::<[u8; 32]>("tx_hash")[id as usize] == bytes)
    }

    /// Movements sent or received by address `a`, in chain order.
    pub fn movements_of(&self, a: u32) -> &[u64] {
        let s = self.sl::<u64>("addr_mv_start");
        &self.sl::<u64>("addr_mvs")[s[a as usize] as usize..s[a as usize + 1] as usize]
    }

    /// Transaction id of movement `i` ([`NO_TX`] for a withdrawal).
    pub fn tx_of(&self, i: u64) -> u32 {
        self.sl::<u32>("mv_tx")[i as usize]
    }

    /// Block number of movement `i`.
    pub fn block(&self, i: u64) -> u64 {
        self.sl::<u64>("mv_block")[i as usize]
    }

    /// Sender, receiver ([`NO_ADDRESS`] for a gas fee) and asset ids of movement `i`.
    pub fn ends(&self, i: u64) -> (u32, u32, u32) {
        let i = i as usize;
        (self.sl::<u32>("mv_from")[i], self.sl::<u32>("mv_to")[i], self.sl::<u32>("mv_asset")[i])
    }

    /// Amount of movement `i` in base units.
    pub fn amount(&self, i: u64) -> u128 {
        let i = i as usize;
        (self.sl::<u64>("mv_amount_hi")[i] as u128) << 64 | self.sl::<u64>("mv_amount_lo")[i] as u128
    }

    /// Movement `i` with its strings.
    pub fn movement(&self, i: u64) -> Movement {
        let k = i as usize;
        let (from, to, asset) = self.ends(i);
        Movement {
            block: self.sl::<u64>("mv_block")[k],
            time: self.sl::<u64>("mv_time")[k],
            tx_index: self.sl::<u32>("mv_tx_index")[k],
            position: self.sl::<i64>("mv_position")[k],
            tx: match self.sl::<u32>("mv_tx")[k] {
                NO_TX => String::new(),
                t => self.tx_hash(t),
            },
            from: self.address(from).to_string(),
            to: if to == NO_ADDRESS { String::new() } else { self.address(to).to_string() },
            asset: self.asset(asset).to_string(),
            amount: self.amount(i),
        }
    }

    /// Every movement, in chain order, with its strings (what the account tracer replays).
    pub fn movements(&self) -> Vec<Movement> {
        (0..self.len() as u64).map(|i| self.movement(i)).collect()
    }
}

fn parse_hash(hash: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hash.strip_prefix("0x").unwrap_or(hash), &mut bytes).ok()?;
    Some(bytes)
}

fn hash_key(hash: &[u8; 32]) -> u64 {
    u64::from_le_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// The chunks and imported transfer files of `chain` an index must cover.
fn coverage(store: &Store, chain: &str) -> (Vec<ChunkRef>, Vec<String>) {
    let chunks = store.chain(chain).map(|c| c.chunks.iter().filter(|c| c.tables.contains_key("transfers")).map(ChunkRef::from).collect()).unwrap_or_default();
    let imports = match store.manifest().merged_imports.get(chain).and_then(|m| m.get("transfers")) {
        Some(merged) => vec![merged.path.clone()],
        None => {
            store.manifest().imports.get(chain).map(|v| v.iter().filter(|i| i.table == "transfers").map(|i| i.sha256.clone()).collect()).unwrap_or_default()
        }
    };
    (chunks, imports)
}

/// What [`update`] did.
#[derive(Debug, Clone, Serialize)]
pub struct TransferUpdate {
    /// `unchanged`, `extended` or `rebuilt`.
    pub action: &'static str,
    /// Why the index was rebuilt, when it was.
    pub reason: Option<String>,
    /// Chunks and imported files read.
    pub files_read: usize,
    /// Movements added.
    pub movements_added: u64,
    /// Counts after the update.
    pub meta: TransferMeta,
    /// Size of the index file in bytes.
    pub bytes: u64,
}

/// Brings the transfer index of `chain` up to date with its `transfers` and `transactions`
/// tables: nothing if current, appends the new chunks if the tables only grew, rebuilds otherwise.
/// `native` names the native coin (`ETH`, `BNB`, …).
pub fn update(store: &Store, chain: &str, native: &str, progress: &mut dyn FnMut(IndexEvent)) -> Result<TransferUpdate> {
    let (want_chunks, want_imports) = coverage(store, chain);
    if want_chunks.is_empty() && want_imports.is_empty() {
        return Err(Error::NotFound(format!("chain {chain:?} has no transfers table: ingest it with `tracehound ingest evm` or import transfers")));
    }
    let path = transfers_path(store.root(), chain);
    let (mut b, reason) = match TransferIndex::open(&path) {
        Ok(idx) if idx.meta.chunks == want_chunks && idx.meta.imports == want_imports && idx.meta.native == native => {
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            return Ok(TransferUpdate { action: "unchanged", reason: None, files_read: 0, movements_added: 0, meta: idx.meta.clone(), bytes });
        }
        Ok(idx)
            if want_chunks.starts_with(&idx.meta.chunks)
                && idx.meta.imports.is_empty()
                && want_imports.is_empty()
                && idx.meta.chain == chain
                && idx.meta.native == native =>
        {
            (Builder::from_index(&idx), None)
        }
        Ok(idx) if !want_chunks.starts_with(&idx.meta.chunks) => {
            (Builder::new(chain, native), Some(format!("the tables were rolled back below height {:?} (reorg)", idx.meta.tip_height())))
        }
        Ok(_) => (Builder::new(chain, native), Some("imported transfers changed".to_string())),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            (Builder::new(chain, native), Some("no transfer index yet".to_string()))
        }
        Err(e) => (Builder::new(chain, native), Some(format!("the transfer index was unusable: {e}"))),
    };
    let cm = store.chain(chain);
    let chunks: Vec<_> = cm.map(|c| c.chunks.iter().filter(|c| c.tables.contains_key("transfers")).collect()).unwrap_or_default();
    let start = b.meta.chunks.len();
    // The imported rows readers see: the merged file, or (data directories from before it) each file.
    let imports: Vec<(String, String)> = match store.manifest().merged_imports.get(chain).and_then(|m| m.get("transfers")) {
        Some(merged) => vec![(merged.path.clone(), merged.path.clone())],
        None => store
            .manifest()
            .imports
            .get(chain)
            .map(|v| v.iter().filter(|i| i.table == "transfers").map(|i| (i.file.path.clone(), i.sha256.clone())).collect())
            .unwrap_or_default(),
    };
    let before = b.movements.len() as u64;
    progress(IndexEvent::Planned { chunks: chunks.len() - start + imports.len(), rebuild: reason.clone() });
    for chunk in &chunks[start..] {
        let n = b.add_transfers(&store.root().join(&chunk.tables["transfers"].path))?;
        if let Some(txs) = chunk.tables.get("transactions") {
            b.add_fees(&store.root().join(&txs.path))?;
        }
        b.meta.chunks.push(ChunkRef::from(*chunk));
        progress(IndexEvent::Chunk { last: chunk.last, transactions: n });
    }
    for (path, key) in &imports {
        let n = b.add_transfers(&store.root().join(path))?;
        b.meta.imports.push(key.clone());
        progress(IndexEvent::Chunk { last: 0, transactions: n });
    }
    let bytes = b.write(&path, before)?;
    Ok(TransferUpdate {
        action: if reason.is_some() { "rebuilt" } else { "extended" },
        reason,
        files_read: chunks.len() - start + imports.len(),
        movements_added: b.meta.movements - before,
        meta: b.meta.clone(),
        bytes,
    })
}

/// One movement while the index is built.
#[derive(Debug, Clone, Copy)]
struct Row {
    block: u64,
    time: u64,
    tx: u32,
    tx_index: u32,
    position: i64,
    from: u32,
    to: u32,
    asset: u32,
    amount: u128,
}

struct Builder {
    meta: TransferMeta,
    movements: Vec<Row>,
    addr_offsets: Vec<u64>,
    addr_bytes: Vec<u8>,
    addr_ids: HashMap<Box<str>, u32>,
    assets: Vec<String>,
    asset_ids: HashMap<String, u32>,
    tx_hash: Vec<[u8; 32]>,
    tx_block: Vec<u64>,
    tx_ids: HashMap<[u8; 32], u32>,
}

fn strings(b: &RecordBatch, name: &str, path: &Path) -> Result<Vec<Option<String>>> {
    let c = cast(b.column_by_name(name).expect("checked by read_columns"), &DataType::Utf8)
        .map_err(|e| Error::Corrupt { path: path.to_path_buf(), reason: format!("column {name}: {e}") })?;
    let c = c.as_string::<i32>();
    Ok((0..c.len()).map(|k| (!c.is_null(k)).then(|| c.value(k).to_string())).collect())
}

fn integers(b: &RecordBatch, name: &str, path: &Path) -> Result<Vec<Option<i64>>> {
    let c = cast(b.column_by_name(name).expect("checked by read_columns"), &DataType::Int64)
        .map_err(|e| Error::Corrupt { path: path.to_path_buf(), reason: format!("column {name}: {e}") })?;
    let c = c.as_primitive::<Int64Type>();
    Ok((0..c.len()).map(|k| (!c.is_null(k)).then(|| c.value(k))).collect())
}

impl Builder {
    fn new(chain: &str, native: &str) -> Builder {
        Builder {
            meta: TransferMeta { chain: chain.into(), native: native.into(), ..Default::default() },
            movements: vec![],
            addr_offsets: vec![0],
            addr_bytes: vec![],
            addr_ids: HashMap::new(),
            assets: vec![],
            asset_ids: HashMap::new(),
            tx_hash: vec![],
            tx_block: vec![],
            tx_ids: HashMap::new(),
        }
    }

    fn from_index(idx: &TransferIndex) -> Builder {
        let mut b = Builder::new(&idx.meta.chain, &idx.meta.native);
        b.meta = idx.meta.clone();
        b.addr_offsets = idx.sl::<u64>("addr_offsets").to_vec();
        b.addr_bytes = idx.sl::<u8>("addr_bytes").to_vec();
        for a in 0..idx.address_count() as u32 {
            b.addr_ids.insert(idx.address(a).into(), a);
        }
        for s in 0..idx.meta.assets as u32 {
            b.assets.push(idx.asset(s).to_string());
            b.asset_ids.insert(idx.asset(s).to_string(), s);
        }
        b.tx_hash = idx.sl::<[u8; 32]>("tx_hash").to_vec();
        b.tx_block = idx.sl::<u64>("tx_block").to_vec();
        for (t, h) in b.tx_hash.iter().enumerate() {
            b.tx_ids.insert(*h, t as u32);
        }
        let (block, time, tx, txi, pos) =
            (idx.sl::<u64>("mv_block"), idx.sl::<u64>("mv_time"), idx.sl::<u32>("mv_tx"), idx.sl::<u32>("mv_tx_index"), idx.sl::<i64>("mv_position"));
        for i in 0..idx.len() {
            let (from, to, asset) = idx.ends(i as u64);
            b.movements.push(Row {
                block: block[i],
                time: time[i],
                tx: tx[i],
                tx_index: txi[i],
                position: pos[i],
                from,
                to,
                asset,
                amount: idx.amount(i as u64),
            });
        }
        b
    }

    fn address(&mut self, address: &str) -> u32 {
        let address = address.to_ascii_lowercase();
        if let Some(&id) = self.addr_ids.get(address.as_str()) {
            return id;
        }
        let id = self.addr_ids.len() as u32;
        self.addr_bytes.extend_from_slice(address.as_bytes());
        self.addr_offsets.push(self.addr_bytes.len() as u64);
        self.addr_ids.insert(address.into(), id);
        id
    }

    fn asset(&mut self, asset: &str) -> u32 {
        let name = if asset == "native" { self.meta.native.clone() } else { asset.to_ascii_lowercase() };
        if let Some(&id) = self.asset_ids.get(&name) {
            return id;
        }
        let id = self.assets.len() as u32;
        self.assets.push(name.clone());
        self.asset_ids.insert(name, id);
        id
    }

    fn tx(&mut self, hash: &str, block: u64, path: &Path, row: usize) -> Result<u32> {
        let bytes = parse_hash(hash)
            .ok_or_else(|| Error::Corrupt { path: path.to_path_buf(), reason: format!("row {row}: transaction hash {hash:?} is not 0x + 64 hex") })?;
        if let Some(&t) = self.tx_ids.get(&bytes) {
            return Ok(t);
        }
        let t = self.tx_hash.len() as u32;
        self.tx_hash.push(bytes);
        self.tx_block.push(block);
        self.tx_ids.insert(bytes, t);
        Ok(t)
    }

    /// Adds the rows of a `transfers` file; returns how many were added.
    fn add_transfers(&mut self, path: &Path) -> Result<u64> {
        let cols = [
            "block_number",
            "block_timestamp",
            "transaction_hash",
            "transaction_index",
            "position",
            "kind",
            "asset",
            "from_address",
            "to_address",
            "amount_raw",
        ];
        let b = read_columns(path, &cols)?;
        let (block, time, txi, pos) = (
            integers(&b, "block_number", path)?,
            integers(&b, "block_timestamp", path)?,
            integers(&b, "transaction_index", path)?,
            integers(&b, "position", path)?,
        );
        let (tx, kind, asset, from, to, amount) = (
            strings(&b, "transaction_hash", path)?,
            strings(&b, "kind", path)?,
            strings(&b, "asset", path)?,
            strings(&b, "from_address", path)?,
            strings(&b, "to_address", path)?,
            strings(&b, "amount_raw", path)?,
        );
        let mut added = 0;
        for k in 0..b.num_rows() {
            let amount = amount[k].as_deref().and_then(|a| a.parse::<u128>().ok());
            let (Some(amount), true) = (amount, kind[k].as_deref() != Some("erc721")) else {
                self.meta.skipped += 1;
                continue;
            };
            // A transfer without a receiver (a burn to nowhere) leaves the sender for "(burn)".
            let to_addr = to[k].as_deref().unwrap_or("(burn)");
            let row = self.row(&block, &time, &txi, &pos, &tx, k, path)?;
            let (f, t, s) = (self.address(from[k].as_deref().unwrap_or(ISSUANCE)), self.address(to_addr), self.asset(asset[k].as_deref().unwrap_or("native")));
            self.movements.push(Row { from: f, to: t, asset: s, amount, ..row });
            added += 1;
        }
        Ok(added)
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        block: &[Option<i64>],
        time: &[Option<i64>],
        txi: &[Option<i64>],
        pos: &[Option<i64>],
        tx: &[Option<String>],
        k: usize,
        path: &Path,
    ) -> Result<Row> {
        let number = block[k].unwrap_or(0) as u64;
        let t = match tx[k].as_deref() {
            Some(h) => self.tx(h, number, path, k)?,
            // Withdrawals (consensus-layer payouts) have no transaction.
            None => NO_TX,
        };
        Ok(Row {
            block: block[k].unwrap_or(0) as u64,
            time: time[k].unwrap_or(0) as u64,
            tx: t,
            tx_index: txi[k].map(|x| x as u32).unwrap_or(u32::MAX),
            position: pos[k].unwrap_or(0),
            from: 0,
            to: 0,
            asset: 0,
            amount: 0,
        })
    }

    /// Adds each transaction's gas fee (gas used × effective price) from a `transactions` file.
    fn add_fees(&mut self, path: &Path) -> Result<()> {
        let b = read_columns(
            path,
            &["block_number", "block_timestamp", "transaction_index", "hash", "from_address", "receipt_gas_used", "receipt_effective_gas_price"],
        )?;
        let (block, time, txi) = (integers(&b, "block_number", path)?, integers(&b, "block_timestamp", path)?, integers(&b, "transaction_index", path)?);
        let (hash, from, gas, price) = (
            strings(&b, "hash", path)?,
            strings(&b, "from_address", path)?,
            integers(&b, "receipt_gas_used", path)?,
            strings(&b, "receipt_effective_gas_price", path)?,
        );
        for k in 0..b.num_rows() {
            let fee = (gas[k].unwrap_or(0) as u128).checked_mul(price[k].as_deref().unwrap_or("0").parse::<u128>().unwrap_or(0)).unwrap_or(0);
            let (Some(h), Some(f)) = (hash[k].as_deref(), from[k].as_deref()) else { continue };
            if fee == 0 {
                continue;
            }
            let t = self.tx(h, block[k].unwrap_or(0) as u64, path, k)?;
            let (from, asset) = (self.address(f), self.asset("native"));
            self.movements.push(Row {
                block: block[k].unwrap_or(0) as u64,
                time: time[k].unwrap_or(0) as u64,
                tx: t,
                tx_index: txi[k].unwrap_or(0) as u32,
                position: -1,
                from,
                to: NO_ADDRESS,
                asset,
                amount: fee,
            });
        }
        Ok(())
    }

    /// Sorts the movements added since `sorted` (the old ones are in order and come first, as new
    /// chunks hold later blocks) and writes the file.
    fn write(&mut self, path: &Path, sorted: u64) -> Result<u64> {
        self.movements[sorted as usize..].sort_by_key(|r| (r.block, r.tx_index, r.position, r.tx));
        let naddr = self.addr_ids.len();
        let m = &self.movements;
        let mut start = vec![0u64; naddr + 1];
        for r in m {
            start[r.from as usize + 1] += 1;
            if r.to != NO_ADDRESS && r.to != r.from {
                start[r.to as usize + 1] += 1;
            }
        }
        for i in 0..naddr {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut mvs = vec![0u64; start[naddr] as usize];
        for (i, r) in m.iter().enumerate() {
            for a in [r.from, r.to] {
                if a == NO_ADDRESS || (a == r.to && r.to == r.from) {
                    continue;
                }
                mvs[fill[a as usize] as usize] = i as u64;
                fill[a as usize] += 1;
            }
        }
        let mut addr_keys: Vec<(u64, u32)> = self.addr_ids.iter().map(|(s, &id)| (address_key(s), id)).collect();
        addr_keys.sort_unstable();
        let mut tx_keys: Vec<(u64, u32)> = self.tx_hash.iter().enumerate().map(|(t, h)| (hash_key(h), t as u32)).collect();
        tx_keys.sort_unstable();
        let mut asset_offsets = vec![0u64];
        let mut asset_bytes = vec![];
        for a in &self.assets {
            asset_bytes.extend_from_slice(a.as_bytes());
            asset_offsets.push(asset_bytes.len() as u64);
        }
        self.meta.movements = m.len() as u64;
        self.meta.addresses = naddr as u64;
        self.meta.assets = self.assets.len() as u64;
        self.meta.transactions = self.tx_hash.len() as u64;
        let mut w = SectionWriter::new(MAGIC, TRANSFERS_VERSION);
        w.add_bytes("meta", serde_json::to_vec(&self.meta).expect("meta serializes"));
        w.add("mv_block", &m.iter().map(|r| r.block).collect::<Vec<_>>());
        w.add("mv_time", &m.iter().map(|r| r.time).collect::<Vec<_>>());
        w.add("mv_tx", &m.iter().map(|r| r.tx).collect::<Vec<_>>());
        w.add("mv_tx_index", &m.iter().map(|r| r.tx_index).collect::<Vec<_>>());
        w.add("mv_position", &m.iter().map(|r| r.position).collect::<Vec<_>>());
        w.add("mv_from", &m.iter().map(|r| r.from).collect::<Vec<_>>());
        w.add("mv_to", &m.iter().map(|r| r.to).collect::<Vec<_>>());
        w.add("mv_asset", &m.iter().map(|r| r.asset).collect::<Vec<_>>());
        w.add("mv_amount_lo", &m.iter().map(|r| r.amount as u64).collect::<Vec<_>>());
        w.add("mv_amount_hi", &m.iter().map(|r| (r.amount >> 64) as u64).collect::<Vec<_>>());
        w.add("addr_offsets", &self.addr_offsets);
        w.add("addr_bytes", &self.addr_bytes);
        w.add("addr_mv_start", &start);
        w.add("addr_mvs", &mvs);
        w.add("addr_key", &addr_keys.iter().map(|k| k.0).collect::<Vec<_>>());
        w.add("addr_key_id", &addr_keys.iter().map(|k| k.1).collect::<Vec<_>>());
        w.add("asset_offsets", &asset_offsets);
        w.add_bytes("asset_bytes", asset_bytes);
        w.add("tx_hash", &self.tx_hash);
        w.add("tx_block", &self.tx_block);
        w.add("tx_key", &tx_keys.iter().map(|k| k.0).collect::<Vec<_>>());
        w.add("tx_key_id", &tx_keys.iter().map(|k| k.1).collect::<Vec<_>>());
        w.write(path)
    }
}

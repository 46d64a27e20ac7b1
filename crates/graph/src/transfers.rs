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
//!
//! [`update_within`] builds within a memory budget, with the building blocks of the graph index:
//! the address, asset and transaction maps spill as sorted runs, the new movements are sorted
//! into replay order externally, the arrays spill, and the address → movements lists are written
//! a window of addresses at a time; the file is the same, byte for byte, as without a limit.

use crate::file::{self, SectionFile};
use crate::index::{address_key, address_map_key, find_key, index_dir, ChunkRef, IndexEvent, NO_ADDRESS};
use crate::spill::{write_lists, DiskMap, RecordSorter, Sorter, SpillTo, SpillVec};
use crate::{Error, Result};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracehound_memory::{Scratch, StageMemory, StageMeter};
use tracehound_tables::Store;

pub use crate::account::Movement;

/// Format version of `transfers.thg`.
pub const TRANSFERS_VERSION: u32 = 3;
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
        let (file, checked_before) = SectionFile::open_once_checked(path, MAGIC, TRANSFERS_VERSION)?;
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
        if checked_before {
            return Ok(idx);
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
        idx.file.mark_checked();
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
    /// Peak memory and bytes spilled while updating.
    pub memory: StageMemory,
}

/// Brings the transfer index of `chain` up to date with its `transfers` and `transactions`
/// tables: nothing if current, appends the new chunks if the tables only grew, rebuilds otherwise.
/// `native` names the native coin (`ETH`, `BNB`, …). Holds everything in memory while it builds;
/// [`update_within`] keeps to a memory budget.
pub fn update(store: &Store, chain: &str, native: &str, progress: &mut dyn FnMut(IndexEvent)) -> Result<TransferUpdate> {
    update_within(store, chain, native, None, progress)
}

/// [`update`] within `memory_limit` bytes (`None`: no limit): the address, asset and transaction
/// maps, the arrays, the sort of the new movements into replay order and the lookup sorts spill
/// to a scratch directory under the data directory beyond their share of it, and the address →
/// movements lists are written a window of addresses at a time. The index written is the same,
/// byte for byte.
pub fn update_within(store: &Store, chain: &str, native: &str, memory_limit: Option<u64>, progress: &mut dyn FnMut(IndexEvent)) -> Result<TransferUpdate> {
    let (want_chunks, want_imports) = coverage(store, chain);
    if want_chunks.is_empty() && want_imports.is_empty() {
        return Err(Error::NotFound(format!("chain {chain:?} has no transfers table: ingest it with `tracehound ingest evm` or import transfers")));
    }
    let meter = StageMeter::start("transfers", memory_limit.unwrap_or(0));
    let path = transfers_path(store.root(), chain);
    let existing = TransferIndex::open(&path);
    if let Ok(idx) = &existing {
        if idx.meta.chunks == want_chunks && idx.meta.imports == want_imports && idx.meta.native == native {
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            return Ok(TransferUpdate {
                action: "unchanged",
                reason: None,
                files_read: 0,
                movements_added: 0,
                meta: idx.meta.clone(),
                bytes,
                memory: meter.report(),
            });
        }
    }
    let scratch = Scratch::new(store.root(), "transfers").map_err(|e| Error::io(&store.root().join("scratch"), e))?;
    let to = SpillTo::new(scratch, meter.clone());
    let budget = Budget::new(memory_limit);
    let new = || Builder::new(chain, native, &budget, &to);
    let (mut b, reason) = match existing {
        Ok(idx)
            if want_chunks.starts_with(&idx.meta.chunks)
                && idx.meta.imports.is_empty()
                && want_imports.is_empty()
                && idx.meta.chain == chain
                && idx.meta.native == native =>
        {
            (Builder::from_index(idx, &budget, &to)?, None)
        }
        Ok(idx) if !want_chunks.starts_with(&idx.meta.chunks) => {
            (new(), Some(format!("the tables were rolled back below height {:?} (reorg)", idx.meta.tip_height())))
        }
        Ok(_) => (new(), Some("imported transfers changed".to_string())),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => (new(), Some("no transfer index yet".to_string())),
        Err(e) => (new(), Some(format!("the transfer index was unusable: {e}"))),
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
    let added = b.added;
    let (meta, bytes) = b.write(&path, &budget)?;
    Ok(TransferUpdate {
        action: if reason.is_some() { "rebuilt" } else { "extended" },
        reason,
        files_read: chunks.len() - start + imports.len(),
        movements_added: added,
        meta,
        bytes,
        memory: to.meter().report(),
    })
}

/// How a build shares its memory limit (bytes per structure; `None` everywhere without a limit).
/// The rest of the limit is for reading a batch of a table's rows at a time.
struct Budget {
    /// Each append-only array's values in memory.
    array: Option<u64>,
    /// The address → id map.
    addresses: Option<u64>,
    /// The asset → id map.
    assets: Option<u64>,
    /// The transaction hash → id map.
    txs: Option<u64>,
    /// The sort of the new movements into replay order.
    movements: Option<u64>,
    /// Each lookup-section sort.
    sort: Option<u64>,
    /// The passes that derive the address → movements lists, after the maps are gone.
    window: Option<u64>,
}

impl Budget {
    fn new(limit: Option<u64>) -> Budget {
        let share = |f: f64| limit.map(|l| (l as f64 * f) as u64);
        // While the tables are read: maps 42%, the movement sort 20%, the two lookup sorts 8%,
        // the six arrays 10% in all (the rest: a batch of rows). At the end the maps are gone
        // and the windows take half.
        Budget {
            array: share(0.10 / 6.0),
            addresses: share(0.25),
            assets: share(0.02),
            txs: share(0.15),
            movements: share(0.20),
            sort: share(0.04),
            window: share(0.5),
        }
    }
}

/// One movement while the index is built: its place in replay order (block, transaction index,
/// position, transaction, then the order it was read in, so equal keys keep it as a stable sort
/// would) and what it carries. 72 bytes, no padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct Row {
    block: u64,
    position: i64,
    seq: u64,
    time: u64,
    amount_lo: u64,
    amount_hi: u64,
    tx_index: u32,
    tx: u32,
    from: u32,
    to: u32,
    asset: u32,
    pad: u32,
}

// SAFETY: `Row` is `repr(C)` of integers only, 72 bytes with no padding (checked below), and
// every bit pattern is a valid value.
unsafe impl bytemuck::Zeroable for Row {}
unsafe impl bytemuck::Pod for Row {}
const _: () = assert!(std::mem::size_of::<Row>() == 72);

impl Row {
    fn key(&self) -> (u64, u32, i64, u32, u64) {
        (self.block, self.tx_index, self.position, self.tx, self.seq)
    }
    fn amount(&self) -> u128 {
        (self.amount_hi as u128) << 64 | self.amount_lo as u128
    }
}

impl Ord for Row {
    fn cmp(&self, other: &Row) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Row {
    fn partial_cmp(&self, other: &Row) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The index while it is built or extended: the movements of the index being extended (read
/// from its file as they are written out), the new movements in an external sort, the append-only
/// arrays, the three maps and the two lookup sorts, each within its share of the budget.
struct Builder {
    meta: TransferMeta,
    /// The index being extended: its movements come first and keep their ids.
    old: Option<TransferIndex>,
    /// New movements, sorted into replay order when the file is written.
    movements: RecordSorter<Row>,
    /// New movements so far.
    added: u64,
    /// Places in `addr_mvs`: one per movement, two when it has a receiver other than its sender.
    links: u64,
    addr_offsets: SpillVec<u64>,
    addr_bytes: SpillVec<u8>,
    /// Address key ([`address_map_key`]) → address id.
    addr_ids: DiskMap,
    addr_keys: Sorter,
    asset_offsets: SpillVec<u64>,
    asset_bytes: SpillVec<u8>,
    /// Asset name key ([`address_map_key`]) → asset id.
    asset_ids: DiskMap,
    tx_hash: SpillVec<[u8; 32]>,
    tx_block: SpillVec<u64>,
    /// Transaction hash key ([`tx_map_key`]) → transaction id.
    tx_ids: DiskMap,
    tx_keys: Sorter,
}

/// The key of a transaction hash in the build's map: FNV-1a and SipHash of its 32 bytes, 128
/// bits (hashes that share most of their bytes, as test chains' do, still get distinct keys).
fn tx_map_key(hash: &[u8; 32]) -> u128 {
    use std::hash::{Hash, Hasher};
    let mut sip = std::hash::DefaultHasher::new();
    hash.hash(&mut sip);
    let mut fnv: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in hash {
        fnv ^= b as u64;
        fnv = fnv.wrapping_mul(0x0000_0100_0000_01b3);
    }
    ((fnv as u128) << 64) | sip.finish() as u128
}

/// `s` in lower case, borrowed when it is already.
fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

const BATCH_ROWS: usize = 8192;

/// Hands the rows of `columns` of the Parquet file at `path` to `f` a batch at a time, with the
/// number of the batch's first row; a missing column is an error.
fn for_each_batch(path: &Path, columns: &[&str], f: &mut dyn FnMut(&RecordBatch, usize) -> Result<()>) -> Result<()> {
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
    let mut first = 0;
    for b in reader {
        let b = b.map_err(|e| pq(&e))?;
        f(&b, first)?;
        first += b.num_rows();
    }
    Ok(())
}

fn strings(b: &RecordBatch, name: &str, path: &Path) -> Result<ArrayRef> {
    cast(b.column_by_name(name).expect("checked by for_each_batch"), &DataType::Utf8)
        .map_err(|e| Error::Corrupt { path: path.to_path_buf(), reason: format!("column {name}: {e}") })
}

fn integers(b: &RecordBatch, name: &str, path: &Path) -> Result<ArrayRef> {
    cast(b.column_by_name(name).expect("checked by for_each_batch"), &DataType::Int64)
        .map_err(|e| Error::Corrupt { path: path.to_path_buf(), reason: format!("column {name}: {e}") })
}

fn str_at(c: &ArrayRef, k: usize) -> Option<&str> {
    let c = c.as_string::<i32>();
    (!c.is_null(k)).then(|| c.value(k))
}

fn int_at(c: &ArrayRef, k: usize) -> Option<i64> {
    let c = c.as_primitive::<Int64Type>();
    (!c.is_null(k)).then(|| c.value(k))
}

impl Builder {
    fn new(chain: &str, native: &str, budget: &Budget, to: &SpillTo) -> Builder {
        let mut b = Builder {
            meta: TransferMeta { chain: chain.into(), native: native.into(), ..Default::default() },
            old: None,
            movements: RecordSorter::new("movements", budget.movements, to),
            added: 0,
            links: 0,
            addr_offsets: SpillVec::new("addr_offsets", budget.array, to),
            addr_bytes: SpillVec::new("addr_bytes", budget.array, to),
            addr_ids: DiskMap::new(budget.addresses, to),
            addr_keys: Sorter::new(budget.sort, to),
            asset_offsets: SpillVec::new("asset_offsets", budget.array, to),
            asset_bytes: SpillVec::new("asset_bytes", budget.array, to),
            asset_ids: DiskMap::new(budget.assets, to),
            tx_hash: SpillVec::new("tx_hash", budget.array, to),
            tx_block: SpillVec::new("tx_block", budget.array, to),
            tx_ids: DiskMap::new(budget.txs, to),
            tx_keys: Sorter::new(budget.sort, to),
        };
        for v in [&mut b.addr_offsets, &mut b.asset_offsets] {
            v.push(0).expect("one value stays in memory");
        }
        b
    }

    /// A builder that extends `idx`: its arrays start with the index's sections (read from the
    /// file as they are written out), its maps and sorts are filled from them, and its movements
    /// are read from the file when the new file is written.
    fn from_index(idx: TransferIndex, budget: &Budget, to: &SpillTo) -> Result<Builder> {
        let mut b = Builder::new(&idx.meta.chain, &idx.meta.native, budget, to);
        b.meta = idx.meta.clone();
        let path = idx.file.path().to_path_buf();
        let file = Arc::new(File::open(&path).map_err(|e| Error::io(&path, e))?);
        fn base<T: bytemuck::Pod>(v: &mut SpillVec<T>, idx: &TransferIndex, file: &Arc<File>, path: &Path) {
            let name = v.name();
            let r = idx.file.range(name).expect("sections are checked when the index is opened");
            let values: &[T] = idx.sl(name);
            *v = SpillVec::new(name, v.cap_bytes(), v.spill_to());
            v.set_base(file.clone(), path, r.start as u64, values.len() as u64, values.last().copied());
        }
        base(&mut b.addr_offsets, &idx, &file, &path);
        base(&mut b.addr_bytes, &idx, &file, &path);
        base(&mut b.asset_offsets, &idx, &file, &path);
        base(&mut b.asset_bytes, &idx, &file, &path);
        base(&mut b.tx_hash, &idx, &file, &path);
        base(&mut b.tx_block, &idx, &file, &path);
        for a in 0..idx.address_count() as u32 {
            b.addr_ids.insert(address_map_key(idx.address(a)), a as u64)?;
        }
        for s in 0..idx.meta.assets as u32 {
            b.asset_ids.insert(address_map_key(idx.asset(s)), s as u64)?;
        }
        for (t, h) in idx.sl::<[u8; 32]>("tx_hash").iter().enumerate() {
            b.tx_ids.insert(tx_map_key(h), t as u64)?;
        }
        for (&k, &id) in idx.sl::<u64>("addr_key").iter().zip(idx.sl::<u32>("addr_key_id")) {
            b.addr_keys.push(k, id)?;
        }
        for (&k, &id) in idx.sl::<u64>("tx_key").iter().zip(idx.sl::<u32>("tx_key_id")) {
            b.tx_keys.push(k, id)?;
        }
        b.links = idx.sl::<u64>("addr_mvs").len() as u64;
        b.old = Some(idx);
        Ok(b)
    }

    fn address(&mut self, address: &str) -> Result<u32> {
        let address = lower(address);
        let key = address_map_key(&address);
        if let Some(id) = self.addr_ids.get(key)? {
            return Ok(id as u32);
        }
        let id = self.meta.addresses as u32;
        self.meta.addresses += 1;
        self.addr_ids.insert(key, id as u64)?;
        self.addr_keys.push(address_key(&address), id)?;
        self.addr_bytes.extend(address.as_bytes())?;
        let end = self.addr_offsets.last().unwrap_or(0) + address.len() as u64;
        self.addr_offsets.push(end)?;
        Ok(id)
    }

    fn asset(&mut self, asset: &str) -> Result<u32> {
        let name = if asset == "native" { Cow::Borrowed(self.meta.native.as_str()) } else { lower(asset) };
        let key = address_map_key(&name);
        if let Some(id) = self.asset_ids.get(key)? {
            return Ok(id as u32);
        }
        let id = self.meta.assets as u32;
        let end = self.asset_offsets.last().unwrap_or(0) + name.len() as u64;
        self.asset_bytes.extend(name.as_bytes())?;
        self.asset_offsets.push(end)?;
        self.asset_ids.insert(key, id as u64)?;
        self.meta.assets += 1;
        Ok(id)
    }

    fn tx(&mut self, hash: &str, block: u64, path: &Path, row: usize) -> Result<u32> {
        let bytes = parse_hash(hash)
            .ok_or_else(|| Error::Corrupt { path: path.to_path_buf(), reason: format!("row {row}: transaction hash {hash:?} is not 0x + 64 hex") })?;
        let key = tx_map_key(&bytes);
        if let Some(t) = self.tx_ids.get(key)? {
            return Ok(t as u32);
        }
        let t = self.meta.transactions as u32;
        self.meta.transactions += 1;
        self.tx_hash.push(bytes)?;
        self.tx_block.push(block)?;
        self.tx_ids.insert(key, t as u64)?;
        self.tx_keys.push(hash_key(&bytes), t)?;
        Ok(t)
    }

    /// Adds a new movement.
    fn push(&mut self, mut row: Row) -> Result<()> {
        row.seq = self.added;
        self.added += 1;
        self.links += if row.to != NO_ADDRESS && row.to != row.from { 2 } else { 1 };
        self.movements.push(row)
    }

    /// Adds the rows of a `transfers` file, a batch at a time; returns how many were added.
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
        let mut added = 0;
        for_each_batch(path, &cols, &mut |b, first| {
            let (block, time, txi, pos) = (
                integers(b, "block_number", path)?,
                integers(b, "block_timestamp", path)?,
                integers(b, "transaction_index", path)?,
                integers(b, "position", path)?,
            );
            let (tx, kind, asset, from, to, amount) = (
                strings(b, "transaction_hash", path)?,
                strings(b, "kind", path)?,
                strings(b, "asset", path)?,
                strings(b, "from_address", path)?,
                strings(b, "to_address", path)?,
                strings(b, "amount_raw", path)?,
            );
            for k in 0..b.num_rows() {
                let amount = str_at(&amount, k).and_then(|a| a.parse::<u128>().ok());
                let (Some(amount), true) = (amount, str_at(&kind, k) != Some("erc721")) else {
                    self.meta.skipped += 1;
                    continue;
                };
                let number = int_at(&block, k).unwrap_or(0) as u64;
                let t = match str_at(&tx, k) {
                    Some(h) => self.tx(h, number, path, first + k)?,
                    // Withdrawals (consensus-layer payouts) have no transaction.
                    None => NO_TX,
                };
                // A transfer without a receiver (a burn to nowhere) leaves the sender for "(burn)".
                let f = self.address(str_at(&from, k).unwrap_or(ISSUANCE))?;
                let r = self.address(str_at(&to, k).unwrap_or("(burn)"))?;
                let s = self.asset(str_at(&asset, k).unwrap_or("native"))?;
                self.push(Row {
                    block: number,
                    position: int_at(&pos, k).unwrap_or(0),
                    seq: 0,
                    time: int_at(&time, k).unwrap_or(0) as u64,
                    amount_lo: amount as u64,
                    amount_hi: (amount >> 64) as u64,
                    tx_index: int_at(&txi, k).map(|x| x as u32).unwrap_or(u32::MAX),
                    tx: t,
                    from: f,
                    to: r,
                    asset: s,
                    pad: 0,
                })?;
                added += 1;
            }
            Ok(())
        })?;
        Ok(added)
    }

    /// Adds each transaction's gas fee (gas used × effective price) from a `transactions` file.
    fn add_fees(&mut self, path: &Path) -> Result<()> {
        let cols = ["block_number", "block_timestamp", "transaction_index", "hash", "from_address", "receipt_gas_used", "receipt_effective_gas_price"];
        for_each_batch(path, &cols, &mut |b, first| {
            let (block, time, txi) = (integers(b, "block_number", path)?, integers(b, "block_timestamp", path)?, integers(b, "transaction_index", path)?);
            let (hash, from, gas, price) = (
                strings(b, "hash", path)?,
                strings(b, "from_address", path)?,
                integers(b, "receipt_gas_used", path)?,
                strings(b, "receipt_effective_gas_price", path)?,
            );
            for k in 0..b.num_rows() {
                let fee = (int_at(&gas, k).unwrap_or(0) as u128).checked_mul(str_at(&price, k).unwrap_or("0").parse::<u128>().unwrap_or(0)).unwrap_or(0);
                let (Some(h), Some(f)) = (str_at(&hash, k), str_at(&from, k)) else { continue };
                if fee == 0 {
                    continue;
                }
                let number = int_at(&block, k).unwrap_or(0) as u64;
                let t = self.tx(h, number, path, first + k)?;
                let (from, asset) = (self.address(f)?, self.asset("native")?);
                self.push(Row {
                    block: number,
                    position: -1,
                    seq: 0,
                    time: int_at(&time, k).unwrap_or(0) as u64,
                    amount_lo: fee as u64,
                    amount_hi: (fee >> 64) as u64,
                    tx_index: int_at(&txi, k).unwrap_or(0) as u32,
                    tx: t,
                    from,
                    to: NO_ADDRESS,
                    asset,
                    pad: 0,
                })?;
            }
            Ok(())
        })
    }

    /// Sorts the new movements (the old ones are in order and come first, as new chunks hold
    /// later blocks) and writes the file: the movement columns from the old file and the sorted
    /// run, the arrays as they are, the address → movements lists in passes over windows of
    /// addresses that fit the budget, the lookups from their sorts. Returns the meta and the
    /// file's size.
    fn write(self, path: &Path, budget: &Budget) -> Result<(TransferMeta, u64)> {
        let Builder {
            mut meta,
            old,
            movements,
            added,
            links,
            mut addr_offsets,
            mut addr_bytes,
            addr_ids,
            addr_keys,
            mut asset_offsets,
            mut asset_bytes,
            asset_ids,
            mut tx_hash,
            mut tx_block,
            tx_ids,
            tx_keys,
        } = self;
        drop((addr_ids, asset_ids, tx_ids));
        let new = movements.finish()?;
        let addr_keys = addr_keys.finish()?;
        let tx_keys = tx_keys.finish()?;
        // The maps are gone: their memory goes back before the windows take theirs.
        tracehound_memory::release_free_memory();
        let old_len = old.as_ref().map_or(0, |o| o.len() as u64);
        meta.movements = old_len + added;
        let (m, a, t) = (meta.movements, meta.addresses, meta.transactions);
        assert_eq!((new.len(), addr_offsets.len(), addr_keys.len(), tx_hash.len(), tx_keys.len()), (added, a + 1, a, t, t));
        assert_eq!(asset_offsets.len(), meta.assets + 1);
        let meta_bytes = serde_json::to_vec(&meta).expect("meta serializes");
        let sections: Vec<(String, u64)> = [
            ("meta", meta_bytes.len() as u64),
            ("mv_block", 8 * m),
            ("mv_time", 8 * m),
            ("mv_tx", 4 * m),
            ("mv_tx_index", 4 * m),
            ("mv_position", 8 * m),
            ("mv_from", 4 * m),
            ("mv_to", 4 * m),
            ("mv_asset", 4 * m),
            ("mv_amount_lo", 8 * m),
            ("mv_amount_hi", 8 * m),
            ("addr_offsets", addr_offsets.byte_len()),
            ("addr_bytes", addr_bytes.byte_len()),
            ("addr_mv_start", 8 * (a + 1)),
            ("addr_mvs", 8 * links),
            ("addr_key", 8 * a),
            ("addr_key_id", 4 * a),
            ("asset_offsets", asset_offsets.byte_len()),
            ("asset_bytes", asset_bytes.byte_len()),
            ("tx_hash", tx_hash.byte_len()),
            ("tx_block", tx_block.byte_len()),
            ("tx_key", 8 * t),
            ("tx_key_id", 4 * t),
        ]
        .iter()
        .map(|(n, l)| (n.to_string(), *l))
        .collect();
        let window = |bytes_per_item: u64| budget.window.map_or(u64::MAX, |w| (w / bytes_per_item).max(1024));
        fn bytes<T: bytemuck::Pod>(v: &[T]) -> &[u8] {
            bytemuck::cast_slice(v)
        }
        // A movement column: the old index's section (mapped, not copied), then the new movements'.
        let column = |name: &str, field: fn(&Row) -> u64, size: usize, sink: &mut dyn FnMut(&[u8]) -> Result<()>| -> Result<()> {
            if let Some(o) = &old {
                sink(o.sl::<u8>(name))?;
            }
            let mut buf: Vec<u8> = Vec::new();
            new.for_each(&mut |rows| {
                buf.clear();
                for r in rows {
                    buf.extend_from_slice(&field(r).to_le_bytes()[..size]);
                }
                sink(&buf)
            })
        };
        // Every movement's sender and receiver, in order, a block at a time.
        let ends = |f: &mut dyn FnMut(u32, u32)| -> Result<()> {
            if let Some(o) = &old {
                for (&from, &to) in o.sl::<u32>("mv_from").iter().zip(o.sl::<u32>("mv_to")) {
                    f(from, to);
                }
            }
            new.for_each(&mut |rows| {
                for r in rows {
                    f(r.from, r.to);
                }
                Ok(())
            })
        };
        file::write_streamed(path, MAGIC, TRANSFERS_VERSION, &sections, &mut |s, sink| match sections[s].0.as_str() {
            "meta" => sink(&meta_bytes),
            "mv_block" => column("mv_block", |r| r.block, 8, sink),
            "mv_time" => column("mv_time", |r| r.time, 8, sink),
            "mv_tx" => column("mv_tx", |r| r.tx as u64, 4, sink),
            "mv_tx_index" => column("mv_tx_index", |r| r.tx_index as u64, 4, sink),
            "mv_position" => column("mv_position", |r| r.position as u64, 8, sink),
            "mv_from" => column("mv_from", |r| r.from as u64, 4, sink),
            "mv_to" => column("mv_to", |r| r.to as u64, 4, sink),
            "mv_asset" => column("mv_asset", |r| r.asset as u64, 4, sink),
            "mv_amount_lo" => column("mv_amount_lo", |r| r.amount() as u64, 8, sink),
            "mv_amount_hi" => column("mv_amount_hi", |r| (r.amount() >> 64) as u64, 8, sink),
            "addr_offsets" => addr_offsets.for_each(&mut |v| sink(bytes(v))),
            "addr_bytes" => addr_bytes.for_each(&mut |v| sink(bytes(v))),
            "addr_mv_start" | "addr_mvs" => {
                // Address → movements in chain order, a window of addresses per pass. A movement
                // is listed under its sender and under its receiver, once when they are the same
                // address.
                let starts_only = sections[s].0 == "addr_mv_start";
                write_lists(
                    a,
                    window(32),
                    window(16),
                    starts_only,
                    &mut |f| {
                        let mut i = 0u64;
                        ends(&mut |from, to| {
                            if from != NO_ADDRESS {
                                f(i, from);
                            }
                            if to != from && to != NO_ADDRESS {
                                f(i, to);
                            }
                            i += 1;
                        })
                    },
                    sink,
                )
            }
            "addr_key" => addr_keys.for_each(&mut |v| sink(bytes(&v.iter().map(|p| p.0).collect::<Vec<u64>>()))),
            "addr_key_id" => addr_keys.for_each(&mut |v| sink(bytes(&v.iter().map(|p| p.1).collect::<Vec<u32>>()))),
            "asset_offsets" => asset_offsets.for_each(&mut |v| sink(bytes(v))),
            "asset_bytes" => asset_bytes.for_each(&mut |v| sink(bytes(v))),
            "tx_hash" => tx_hash.for_each(&mut |v| sink(bytes(v))),
            "tx_block" => tx_block.for_each(&mut |v| sink(bytes(v))),
            "tx_key" => tx_keys.for_each(&mut |v| sink(bytes(&v.iter().map(|p| p.0).collect::<Vec<u64>>()))),
            "tx_key_id" => tx_keys.for_each(&mut |v| sink(bytes(&v.iter().map(|p| p.1).collect::<Vec<u32>>()))),
            other => unreachable!("section {other} has no writer"),
        })
        .map(|bytes| (meta, bytes))
    }
}

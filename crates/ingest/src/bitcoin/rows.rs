//! Turns decoded blocks into rows of the `blocks`, `transactions`, `inputs` and `outputs` tables.
//! Both ingest paths (block files and JSON-RPC) go through [`RowBuilder`], so they give identical rows.

use super::utxo::{Prevout, PrevoutSource};
use bitcoin::{Block, Txid};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int32Builder, Int64Builder, ListBuilder, PrimitiveBuilder, StringBuilder, UInt32Builder, UInt64Builder,
};
use datafusion::arrow::datatypes::ArrowPrimitiveType;
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::Arc;
use tracehound_core::chain::AddressParams;
use tracehound_core::script::classify_with;
use tracehound_tables::schema;

/// Counts of what a block contributed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BlockCounts {
    /// Transactions.
    pub transactions: u64,
    /// Inputs, the coinbase input included.
    pub inputs: u64,
    /// Outputs.
    pub outputs: u64,
    /// Inputs whose spent output was not found (pruned data).
    pub unresolved: u64,
}

/// Arrow builders for the four UTXO tables: [`ChainRows`] and [`SpendRows`] together.
pub struct RowBuilder {
    chain: ChainRows,
    spend: SpendRows,
}

/// The rows that need no input resolution: `blocks` and `outputs`. The block-file ingest builds
/// them on the reading thread while another thread resolves inputs.
pub struct ChainRows {
    params: AddressParams,
    blocks: BlockCols,
    outs: OutputCols,
    hex: HexBuf,
    /// Where each address is written before it is appended (one buffer for every output).
    address: String,
}

/// The rows that need each input's spent output: `transactions` and `inputs`. Keeps the
/// unspent-output map up to date with every block, emitted or not.
pub struct SpendRows {
    params: AddressParams,
    txs: TxCols,
    ins: InputCols,
    tx_rows: u64,
    hex: HexBuf,
    /// Where each address is written before it is appended (one buffer for every input).
    address: String,
    /// The spent outputs of the block being added (kept to reuse its allocation).
    resolved: Vec<Option<Prevout>>,
}

/// The `blocks` and `outputs` batches of a run of blocks ([`ChainRows::finish`]).
pub struct ChainBatch {
    /// Rows of `blocks`.
    pub blocks: RecordBatch,
    /// Rows of `outputs`.
    pub outputs: RecordBatch,
}

/// The `transactions` and `inputs` batches of a run of blocks ([`SpendRows::finish`]).
pub struct SpendBatch {
    /// Rows of `transactions`.
    pub transactions: RecordBatch,
    /// Rows of `inputs`.
    pub inputs: RecordBatch,
}

/// Puts the four tables' batches in [`schema::UTXO_TABLES`] order.
pub fn utxo_tables(chain: ChainBatch, spend: SpendBatch) -> [(&'static str, RecordBatch); 4] {
    [("blocks", chain.blocks), ("transactions", spend.transactions), ("inputs", spend.inputs), ("outputs", chain.outputs)]
}

#[derive(Default)]
struct BlockCols {
    hash: StringBuilder,
    number: UInt64Builder,
    prev_hash: StringBuilder,
    timestamp: Int64Builder,
    merkle_root: StringBuilder,
    version: Int32Builder,
    bits: StringBuilder,
    nonce: StringBuilder,
    size: UInt64Builder,
    stripped_size: UInt64Builder,
    weight: UInt64Builder,
    transaction_count: UInt64Builder,
    coinbase_param: StringBuilder,
}

#[derive(Default)]
struct TxCols {
    hash: StringBuilder,
    block_number: UInt64Builder,
    block_hash: StringBuilder,
    block_timestamp: Int64Builder,
    index: UInt32Builder,
    is_coinbase: BooleanBuilder,
    version: Int32Builder,
    lock_time: UInt32Builder,
    size: UInt64Builder,
    virtual_size: UInt64Builder,
    input_count: UInt32Builder,
    output_count: UInt32Builder,
    input_value: UInt64Builder,
    output_value: UInt64Builder,
    fee: UInt64Builder,
}

#[derive(Default)]
struct InputCols {
    transaction_hash: StringBuilder,
    block_number: UInt64Builder,
    block_timestamp: Int64Builder,
    index: UInt32Builder,
    spent_transaction_hash: StringBuilder,
    spent_output_index: UInt32Builder,
    value: UInt64Builder,
    kind: StringBuilder,
    addresses: ListBuilder<StringBuilder>,
    required_signatures: UInt32Builder,
    sequence: UInt32Builder,
    script_hex: StringBuilder,
}

#[derive(Default)]
struct OutputCols {
    transaction_hash: StringBuilder,
    block_number: UInt64Builder,
    block_timestamp: Int64Builder,
    index: UInt32Builder,
    value: UInt64Builder,
    kind: StringBuilder,
    addresses: ListBuilder<StringBuilder>,
    required_signatures: UInt32Builder,
    script_hex: StringBuilder,
}

/// Size of the block without witness data (header, transaction count, transactions' base sizes).
fn stripped_size(block: &Block) -> u64 {
    let txs: usize = block.txdata.iter().map(|t| t.base_size()).sum();
    (80 + bitcoin::consensus::encode::VarInt(block.txdata.len() as u64).size() + txs) as u64
}

/// A hash in the byte-reversed hex that explorers and RPC show, into a stack buffer.
fn display_hex<'a>(hash: &[u8; 32], buf: &'a mut [u8; 64]) -> &'a str {
    let mut rev = *hash;
    rev.reverse();
    hex::encode_to_slice(rev, buf).expect("64 bytes for 32");
    std::str::from_utf8(buf).expect("hex is ascii")
}

/// A reusable buffer for hex text, so that no row allocates a string of its own.
#[derive(Default)]
struct HexBuf(Vec<u8>);

impl HexBuf {
    /// `bytes` in lower-case hex.
    fn hex(&mut self, bytes: &[u8]) -> &str {
        let out = self.room(bytes.len() * 2);
        hex::encode_to_slice(bytes, out).expect("twice the length");
        std::str::from_utf8(out).expect("hex is ascii")
    }

    /// A hash in the byte-reversed hex that explorers and RPC show.
    fn display(&mut self, hash: &[u8; 32]) -> &str {
        let buf: &mut [u8; 64] = self.room(64).try_into().expect("64 bytes");
        display_hex(hash, buf)
    }

    /// The first `len` bytes of the buffer, grown if needed but never shrunk, so that the next
    /// row does not zero it again.
    fn room(&mut self, len: usize) -> &mut [u8] {
        if self.0.len() < len {
            self.0.resize(len, 0);
        }
        &mut self.0[..len]
    }
}

/// A builder that hands over its rows and starts again with room for as many, so that the next
/// batch, about the same size, fills it without regrowing (each regrowth copies the column).
trait FinishPresized {
    /// The rows built so far, as an array; the builder is left empty with that much capacity.
    fn finish_presized(&mut self) -> ArrayRef;
}

impl FinishPresized for StringBuilder {
    fn finish_presized(&mut self) -> ArrayRef {
        let a = self.finish();
        *self = StringBuilder::with_capacity(a.len(), a.value_data().len());
        Arc::new(a)
    }
}

impl<T: ArrowPrimitiveType> FinishPresized for PrimitiveBuilder<T> {
    fn finish_presized(&mut self) -> ArrayRef {
        let a = self.finish();
        *self = PrimitiveBuilder::with_capacity(a.len());
        Arc::new(a)
    }
}

impl FinishPresized for BooleanBuilder {
    fn finish_presized(&mut self) -> ArrayRef {
        let a = self.finish();
        *self = BooleanBuilder::with_capacity(a.len());
        Arc::new(a)
    }
}

impl FinishPresized for ListBuilder<StringBuilder> {
    fn finish_presized(&mut self) -> ArrayRef {
        let a = self.finish();
        let values = a.values().as_string::<i32>();
        *self = ListBuilder::with_capacity(StringBuilder::with_capacity(values.len(), values.value_data().len()), a.len());
        Arc::new(a)
    }
}

fn batch(schema: datafusion::arrow::datatypes::SchemaRef, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(schema, columns).expect("builders follow the schema")
}

impl RowBuilder {
    /// An empty builder for a chain with address encoding `params`.
    pub fn new(params: AddressParams) -> RowBuilder {
        RowBuilder { chain: ChainRows::new(params), spend: SpendRows::new(params) }
    }

    /// Transactions buffered since the last [`RowBuilder::finish`].
    pub fn buffered_transactions(&self) -> u64 {
        self.spend.buffered_transactions()
    }

    /// Appends the rows of `block` at `height`. `txids` are the block's transaction ids in order.
    /// Inputs are resolved through `prevouts`, which also receives the block's new outputs.
    /// With `emit` false the prevout map is updated but no row is written (replay after a restart).
    pub fn push_block(&mut self, block: &Block, txids: &[Txid], height: u64, prevouts: &mut dyn PrevoutSource, emit: bool) -> BlockCounts {
        if emit {
            self.chain.push_block(block, txids, height);
        }
        self.spend.push_block(block, txids, height, prevouts, emit)
    }

    /// Takes the buffered rows as one batch per table, in [`schema::UTXO_TABLES`] order.
    pub fn finish(&mut self) -> Vec<(&'static str, Vec<RecordBatch>)> {
        utxo_tables(self.chain.finish(), self.spend.finish()).into_iter().map(|(t, b)| (t, vec![b])).collect()
    }
}

impl ChainRows {
    /// An empty builder for a chain with address encoding `params`.
    pub fn new(params: AddressParams) -> ChainRows {
        ChainRows { params, blocks: BlockCols::default(), outs: OutputCols::default(), hex: HexBuf::default(), address: String::new() }
    }

    /// Appends the `blocks` row and the `outputs` rows of `block` at `height`.
    pub fn push_block(&mut self, block: &Block, txids: &[Txid], height: u64) {
        let time = block.header.time as i64;
        let b = &mut self.blocks;
        let h = &block.header;
        b.hash.append_value(self.hex.display(block.block_hash().as_ref()));
        b.number.append_value(height);
        b.prev_hash.append_value(self.hex.display(h.prev_blockhash.as_ref()));
        b.timestamp.append_value(time);
        b.merkle_root.append_value(self.hex.display(h.merkle_root.as_ref()));
        b.version.append_value(h.version.to_consensus());
        b.bits.append_value(format!("{:08x}", h.bits.to_consensus()));
        b.nonce.append_value(format!("{:x}", h.nonce));
        b.size.append_value(block.total_size() as u64);
        b.stripped_size.append_value(stripped_size(block));
        b.weight.append_value(block.weight().to_wu());
        b.transaction_count.append_value(block.txdata.len() as u64);
        let coinbase_param = block.txdata.first().and_then(|t| t.input.first()).map(|i| i.script_sig.as_bytes()).unwrap_or_default();
        b.coinbase_param.append_value(self.hex.hex(coinbase_param));
        let c = &mut self.outs;
        for (tx, txid) in block.txdata.iter().zip(txids) {
            let mut txid_buf = [0u8; 64];
            let txid_hex = display_hex(txid.as_ref(), &mut txid_buf);
            for (vout, out) in tx.output.iter().enumerate() {
                let class = classify_with(&out.script_pubkey, &self.params, &mut self.address, |a| c.addresses.values().append_value(a));
                c.addresses.append(true);
                c.transaction_hash.append_value(txid_hex);
                c.block_number.append_value(height);
                c.block_timestamp.append_value(time);
                c.index.append_value(vout as u32);
                c.value.append_value(out.value.to_sat());
                c.kind.append_value(class.kind.as_str());
                c.required_signatures.append_option(class.required_signatures);
                c.script_hex.append_value(self.hex.hex(out.script_pubkey.as_bytes()));
            }
        }
    }

    /// Takes the buffered rows.
    pub fn finish(&mut self) -> ChainBatch {
        let b = &mut self.blocks;
        let blocks: Vec<ArrayRef> = vec![
            b.hash.finish_presized(),
            b.number.finish_presized(),
            b.prev_hash.finish_presized(),
            b.timestamp.finish_presized(),
            b.merkle_root.finish_presized(),
            b.version.finish_presized(),
            b.bits.finish_presized(),
            b.nonce.finish_presized(),
            b.size.finish_presized(),
            b.stripped_size.finish_presized(),
            b.weight.finish_presized(),
            b.transaction_count.finish_presized(),
            b.coinbase_param.finish_presized(),
        ];
        let o = &mut self.outs;
        let outs: Vec<ArrayRef> = vec![
            o.transaction_hash.finish_presized(),
            o.block_number.finish_presized(),
            o.block_timestamp.finish_presized(),
            o.index.finish_presized(),
            o.value.finish_presized(),
            o.kind.finish_presized(),
            o.addresses.finish_presized(),
            o.required_signatures.finish_presized(),
            o.script_hex.finish_presized(),
        ];
        ChainBatch { blocks: batch(schema::blocks(), blocks), outputs: batch(schema::outputs(), outs) }
    }
}

impl SpendRows {
    /// An empty builder for a chain with address encoding `params`.
    pub fn new(params: AddressParams) -> SpendRows {
        SpendRows {
            params,
            txs: TxCols::default(),
            ins: InputCols::default(),
            tx_rows: 0,
            hex: HexBuf::default(),
            address: String::new(),
            resolved: Vec::new(),
        }
    }

    /// Transactions buffered since the last [`SpendRows::finish`].
    pub fn buffered_transactions(&self) -> u64 {
        self.tx_rows
    }

    /// Resolves the inputs of `block` at `height` through `prevouts`, which also receives the
    /// block's new outputs, and appends its `transactions` and `inputs` rows. With `emit` false
    /// the prevout map is updated but no row is written (replay after a restart).
    pub fn push_block(&mut self, block: &Block, txids: &[Txid], height: u64, prevouts: &mut dyn PrevoutSource, emit: bool) -> BlockCounts {
        let mut counts = BlockCounts::default();
        // First every input is resolved and every output recorded, in block order (a transaction
        // may spend an earlier one of the same block): a tight loop of map lookups, whose cache
        // misses overlap, instead of one lookup between each input's rows.
        let mut resolved = std::mem::take(&mut self.resolved);
        resolved.clear();
        for (tx, txid) in block.txdata.iter().zip(txids) {
            counts.transactions += 1;
            counts.inputs += tx.input.len() as u64;
            counts.outputs += tx.output.len() as u64;
            if !tx.is_coinbase() {
                resolved.extend(tx.input.iter().map(|input| prevouts.spend(&input.previous_output)));
            }
            for (vout, out) in tx.output.iter().enumerate() {
                prevouts.add(txid, vout as u32, out.value.to_sat(), &out.script_pubkey);
            }
        }
        counts.unresolved = resolved.iter().filter(|p| p.is_none()).count() as u64;
        if emit {
            self.push_rows(block, txids, height, &resolved);
        }
        self.resolved = resolved;
        counts
    }

    /// Appends the rows of `block`, given the spent output of each non-coinbase input in order.
    fn push_rows(&mut self, block: &Block, txids: &[Txid], height: u64, resolved: &[Option<Prevout>]) {
        let mut block_hash_buf = [0u8; 64];
        let block_hash = display_hex(block.block_hash().as_ref(), &mut block_hash_buf);
        let time = block.header.time as i64;
        let mut prevouts = resolved.iter();
        for (tx_index, (tx, txid)) in block.txdata.iter().zip(txids).enumerate() {
            let is_coinbase = tx.is_coinbase();
            let mut txid_buf = [0u8; 64];
            let txid_hex = display_hex(txid.as_ref(), &mut txid_buf);
            let mut input_value: Option<u64> = Some(0);
            for (i, input) in tx.input.iter().enumerate() {
                let prevout = if is_coinbase { None } else { prevouts.next().expect("one per non-coinbase input").as_ref() };
                if !is_coinbase {
                    input_value = input_value.zip(prevout).map(|(v, p)| v + p.value);
                }
                let c = &mut self.ins;
                c.transaction_hash.append_value(txid_hex);
                c.block_number.append_value(height);
                c.block_timestamp.append_value(time);
                c.index.append_value(i as u32);
                if is_coinbase {
                    c.spent_transaction_hash.append_null();
                    c.spent_output_index.append_null();
                } else {
                    c.spent_transaction_hash.append_value(self.hex.display(input.previous_output.txid.as_ref()));
                    c.spent_output_index.append_value(input.previous_output.vout);
                }
                match prevout {
                    Some(p) => {
                        let class = classify_with(&p.script, &self.params, &mut self.address, |a| c.addresses.values().append_value(a));
                        c.addresses.append(true);
                        c.value.append_value(p.value);
                        c.kind.append_value(class.kind.as_str());
                        c.required_signatures.append_option(class.required_signatures);
                    }
                    None => {
                        c.value.append_null();
                        c.kind.append_null();
                        c.addresses.append(false);
                        c.required_signatures.append_null();
                    }
                }
                c.sequence.append_value(input.sequence.0);
                c.script_hex.append_value(self.hex.hex(input.script_sig.as_bytes()));
            }
            let output_value: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
            self.tx_rows += 1;
            let t = &mut self.txs;
            t.hash.append_value(txid_hex);
            t.block_number.append_value(height);
            t.block_hash.append_value(block_hash);
            t.block_timestamp.append_value(time);
            t.index.append_value(tx_index as u32);
            t.is_coinbase.append_value(is_coinbase);
            t.version.append_value(tx.version.0);
            t.lock_time.append_value(tx.lock_time.to_consensus_u32());
            t.size.append_value(tx.total_size() as u64);
            t.virtual_size.append_value(tx.vsize() as u64);
            t.input_count.append_value(tx.input.len() as u32);
            t.output_count.append_value(tx.output.len() as u32);
            t.input_value.append_option(input_value);
            t.output_value.append_value(output_value);
            // A coinbase pays no fee; otherwise fee is only known when every input is resolved.
            let fee = if is_coinbase { Some(0) } else { input_value.and_then(|iv| iv.checked_sub(output_value)) };
            t.fee.append_option(fee);
        }
    }

    /// Takes the buffered rows.
    pub fn finish(&mut self) -> SpendBatch {
        self.tx_rows = 0;
        let t = &mut self.txs;
        let txs: Vec<ArrayRef> = vec![
            t.hash.finish_presized(),
            t.block_number.finish_presized(),
            t.block_hash.finish_presized(),
            t.block_timestamp.finish_presized(),
            t.index.finish_presized(),
            t.is_coinbase.finish_presized(),
            t.version.finish_presized(),
            t.lock_time.finish_presized(),
            t.size.finish_presized(),
            t.virtual_size.finish_presized(),
            t.input_count.finish_presized(),
            t.output_count.finish_presized(),
            t.input_value.finish_presized(),
            t.output_value.finish_presized(),
            t.fee.finish_presized(),
        ];
        let i = &mut self.ins;
        let ins: Vec<ArrayRef> = vec![
            i.transaction_hash.finish_presized(),
            i.block_number.finish_presized(),
            i.block_timestamp.finish_presized(),
            i.index.finish_presized(),
            i.spent_transaction_hash.finish_presized(),
            i.spent_output_index.finish_presized(),
            i.value.finish_presized(),
            i.kind.finish_presized(),
            i.addresses.finish_presized(),
            i.required_signatures.finish_presized(),
            i.sequence.finish_presized(),
            i.script_hex.finish_presized(),
        ];
        SpendBatch { transactions: batch(schema::transactions(), txs), inputs: batch(schema::inputs(), ins) }
    }
}

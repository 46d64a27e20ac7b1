//! JSON-RPC replies of an EVM node → rows of the EVM tables. The one place that does, for every
//! source of blocks (one-shot ingest and `sync`).
//!
//! Rows are plain structs, turned into the Arrow columns of the table schemas
//! (`tracehound_tables::evm_schema`) one column at a time by [`columns`].

pub mod columns;

use super::replies::{Block, CallFrame, GethTrace, ParityTrace, Quantity, Receipt, Text, Transaction};
use crate::Error;
use datafusion::arrow::record_batch::RecordBatch;
use std::borrow::Cow;
use std::fmt::Write;
use std::sync::Arc;
use tracehound_core::evm::{to_decimal128, uint256_word, U256};

/// `keccak256("Transfer(address,address,uint256)")`, the topic of ERC-20 and ERC-721 transfers.
pub const TRANSFER_TOPIC: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// Everything the node said about one block.
#[derive(Debug)]
pub struct BlockReplies<'a> {
    /// `eth_getBlockByNumber(n, true)`.
    pub block: Block<'a>,
    /// The receipts of its transactions, in transaction order.
    pub receipts: Vec<Receipt<'a>>,
    /// Its traces: parity `trace_block` rows, or geth `callTracer` results, or none.
    pub traces: Traces<'a>,
}

/// The traces of a block, in the shape the node gave them.
#[derive(Debug)]
pub enum Traces<'a> {
    /// The node was not asked for traces: internal transfers are unknown.
    None,
    /// `trace_block` (erigon, nethermind, reth, anvil): flat rows with `traceAddress`.
    Parity(Vec<ParityTrace<'a>>),
    /// `debug_traceBlockByNumber` with `callTracer` (geth, reth, anvil): one call tree per transaction.
    Geth(Vec<GethTrace<'a>>),
}

/// Counts of what one block added.
#[derive(Debug, Default, Clone, Copy)]
pub struct BlockCounts {
    /// The block's number.
    pub number: u64,
    /// Transactions.
    pub transactions: u64,
    /// Event logs.
    pub logs: u64,
    /// Trace rows.
    pub traces: u64,
    /// Token transfers.
    pub token_transfers: u64,
    /// Transfers (all kinds).
    pub transfers: u64,
}

#[cfg_attr(test, derive(serde::Serialize))]
struct BlockRow<'a> {
    number: u64,
    hash: Cow<'a, str>,
    parent_hash: Cow<'a, str>,
    nonce: Option<Cow<'a, str>>,
    sha3_uncles: Option<Cow<'a, str>>,
    logs_bloom: Option<Cow<'a, str>>,
    transactions_root: Option<Cow<'a, str>>,
    state_root: Option<Cow<'a, str>>,
    receipts_root: Option<Cow<'a, str>>,
    miner: Option<Cow<'a, str>>,
    #[cfg_attr(test, serde(serialize_with = "tests::opt_decimal_text"))]
    difficulty: Option<i128>,
    #[cfg_attr(test, serde(serialize_with = "tests::opt_decimal_text"))]
    total_difficulty: Option<i128>,
    size: Option<u64>,
    extra_data: Option<Cow<'a, str>>,
    gas_limit: u64,
    gas_used: u64,
    timestamp: i64,
    transaction_count: u64,
    #[cfg_attr(test, serde(serialize_with = "tests::opt_decimal_text"))]
    base_fee_per_gas: Option<i128>,
    withdrawals_root: Option<Cow<'a, str>>,
    withdrawals: Option<String>,
    blob_gas_used: Option<u64>,
    excess_blob_gas: Option<u64>,
    parent_beacon_block_root: Option<Cow<'a, str>>,
}

#[cfg_attr(test, derive(serde::Serialize))]
struct TxRow<'a> {
    hash: Cow<'a, str>,
    nonce: u64,
    block_hash: Cow<'a, str>,
    block_number: u64,
    transaction_index: u32,
    from_address: Cow<'a, str>,
    to_address: Option<Cow<'a, str>>,
    #[cfg_attr(test, serde(serialize_with = "tests::decimal_text"))]
    value: i128,
    gas: u64,
    #[cfg_attr(test, serde(serialize_with = "tests::opt_decimal_text"))]
    gas_price: Option<i128>,
    input: Cow<'a, str>,
    block_timestamp: i64,
    #[cfg_attr(test, serde(serialize_with = "tests::opt_decimal_text"))]
    max_fee_per_gas: Option<i128>,
    #[cfg_attr(test, serde(serialize_with = "tests::opt_decimal_text"))]
    max_priority_fee_per_gas: Option<i128>,
    transaction_type: Option<u32>,
    #[cfg_attr(test, serde(serialize_with = "tests::opt_decimal_text"))]
    max_fee_per_blob_gas: Option<i128>,
    blob_versioned_hashes: Option<Vec<Cow<'a, str>>>,
    authorization_list: Option<Cow<'a, str>>,
    receipt_cumulative_gas_used: Option<u64>,
    receipt_gas_used: Option<u64>,
    receipt_contract_address: Option<Cow<'a, str>>,
    receipt_root: Option<Cow<'a, str>>,
    receipt_status: Option<u8>,
    #[cfg_attr(test, serde(serialize_with = "tests::opt_decimal_text"))]
    receipt_effective_gas_price: Option<i128>,
    receipt_blob_gas_used: Option<u64>,
    #[cfg_attr(test, serde(serialize_with = "tests::opt_decimal_text"))]
    receipt_blob_gas_price: Option<i128>,
}

#[cfg_attr(test, derive(serde::Serialize))]
struct LogRow<'a> {
    log_index: u32,
    transaction_hash: Cow<'a, str>,
    transaction_index: u32,
    block_hash: Cow<'a, str>,
    block_number: u64,
    block_timestamp: i64,
    address: Cow<'a, str>,
    data: Cow<'a, str>,
    topics: Vec<Cow<'a, str>>,
}

#[cfg_attr(test, derive(serde::Serialize))]
struct TraceRow<'a> {
    block_number: u64,
    block_hash: Cow<'a, str>,
    block_timestamp: i64,
    transaction_hash: Option<Cow<'a, str>>,
    transaction_index: Option<u32>,
    from_address: Option<Cow<'a, str>>,
    to_address: Option<Cow<'a, str>>,
    #[cfg_attr(test, serde(serialize_with = "tests::opt_decimal_text"))]
    value: Option<i128>,
    input: Option<Cow<'a, str>>,
    output: Option<Cow<'a, str>>,
    trace_type: Cow<'a, str>,
    call_type: Option<Cow<'a, str>>,
    reward_type: Option<Cow<'a, str>>,
    gas: Option<u64>,
    gas_used: Option<u64>,
    subtraces: u32,
    trace_address: Vec<u32>,
    error: Option<Cow<'a, str>>,
    status: u8,
    trace_id: String,
}

#[cfg_attr(test, derive(serde::Serialize))]
struct TokenTransferRow<'a> {
    token_address: Cow<'a, str>,
    from_address: Cow<'a, str>,
    to_address: Cow<'a, str>,
    value: String,
    transaction_hash: Cow<'a, str>,
    transaction_index: u32,
    log_index: u32,
    block_number: u64,
    block_hash: Cow<'a, str>,
    block_timestamp: i64,
    token_standard: &'static str,
}

/// One row of the `transfers` table (also written by the explorer CSV import).
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct TransferRow<'a> {
    /// Chain name.
    pub chain: Arc<str>,
    /// Block height.
    pub block_number: u64,
    /// Block time, Unix seconds.
    pub block_timestamp: i64,
    /// Transaction (none for withdrawals and rewards).
    pub transaction_hash: Option<Cow<'a, str>>,
    /// Position of the transaction in its block.
    pub transaction_index: Option<u32>,
    /// Order of this transfer within its transaction (or block, for withdrawals).
    pub position: u32,
    /// native_tx, internal, erc20, erc721, withdrawal or reward.
    pub kind: &'static str,
    /// `native` or the token contract address.
    pub asset: Cow<'a, str>,
    /// The token's symbol, where known (explorer exports).
    pub asset_symbol: Option<String>,
    /// ERC-721 token id.
    pub token_id: Option<String>,
    /// Sender (none for withdrawals and rewards).
    pub from_address: Option<Cow<'a, str>>,
    /// Receiver.
    pub to_address: Option<Cow<'a, str>>,
    /// Amount as a `Decimal128(38, 0)` integer, none when it is 10^38 or more.
    #[cfg_attr(test, serde(serialize_with = "tests::opt_decimal_text"))]
    pub amount: Option<i128>,
    /// Exact amount, decimal.
    pub amount_raw: String,
    /// `node`, or `import:<file>` for rows from an explorer export.
    pub source: Arc<str>,
}

impl TransferRow<'_> {
    /// Sets `amount` and `amount_raw` from an exact value.
    pub fn with_amount(mut self, v: U256) -> Self {
        self.amount = to_decimal128(v);
        self.amount_raw = v.to_string();
        self
    }
}

/// Accumulates the rows of some blocks (a fetched batch) until [`EvmRowBuilder::finish`]. The
/// rows borrow the replies' text.
pub struct EvmRowBuilder<'a> {
    chain: Arc<str>,
    /// `node`, the source of every transfer row made here.
    source: Arc<str>,
    blocks: Vec<BlockRow<'a>>,
    txs: Vec<TxRow<'a>>,
    logs: Vec<LogRow<'a>>,
    traces: Vec<TraceRow<'a>>,
    token_transfers: Vec<TokenTransferRow<'a>>,
    transfers: Vec<TransferRow<'a>>,
}

/// Reads the fields of a typed reply, naming the block and object in its errors.
struct Fields<'a> {
    what: &'a str,
    /// The transaction the object belongs to, by position.
    tx: Option<usize>,
}

impl std::fmt::Display for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.tx {
            Some(i) => write!(f, "{} transaction {i}", self.what),
            None => f.write_str(self.what),
        }
    }
}

impl Fields<'_> {
    fn err(&self, field: &str, reason: impl std::fmt::Display) -> Error {
        Error::Rpc { method: "evm".into(), reason: format!("{self}: field {field:?}: {reason}") }
    }
    /// Hex text, lowercased.
    fn hex<'t>(&self, field: &str, text: Option<Text<'t>>) -> Result<Cow<'t, str>, Error> {
        lower(text).ok_or_else(|| self.err(field, "missing"))
    }
    fn opt_u256(&self, field: &str, q: &Option<Quantity>) -> Result<Option<U256>, Error> {
        match q {
            None => Ok(None),
            Some(Quantity::Value(v)) => Ok(Some(*v)),
            Some(Quantity::Bad(why)) => Err(self.err(field, why)),
        }
    }
    fn u256(&self, field: &str, q: &Option<Quantity>) -> Result<U256, Error> {
        self.opt_u256(field, q)?.ok_or_else(|| self.err(field, "missing"))
    }
    fn opt_u64(&self, field: &str, q: &Option<Quantity>) -> Result<Option<u64>, Error> {
        self.opt_u256(field, q)?.map(|v| u64::try_from(v).map_err(|_| self.err(field, "does not fit 64 bits"))).transpose()
    }
    fn u64(&self, field: &str, q: &Option<Quantity>) -> Result<u64, Error> {
        self.opt_u64(field, q)?.ok_or_else(|| self.err(field, "missing"))
    }
    fn u32(&self, field: &str, q: &Option<Quantity>) -> Result<u32, Error> {
        u32::try_from(self.u64(field, q)?).map_err(|_| self.err(field, "does not fit 32 bits"))
    }
    /// A native amount: exact decimal that must fit `Decimal128(38, 0)`.
    fn opt_wei(&self, field: &str, q: &Option<Quantity>) -> Result<Option<i128>, Error> {
        self.opt_u256(field, q)?
            .map(|v| to_decimal128(v).ok_or_else(|| self.err(field, format!("{v} wei is 10^38 or more and does not fit the table's Decimal128(38, 0)"))))
            .transpose()
    }
}

/// Hex text lowercased (nodes may checksum-case addresses); copied only when it has capitals.
fn lower(text: Option<Text<'_>>) -> Option<Cow<'_, str>> {
    text.map(|Text(t)| if t.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(t.to_ascii_lowercase()) } else { t })
}

impl<'a> EvmRowBuilder<'a> {
    /// A builder for `chain`'s rows.
    pub fn new(chain: &str) -> EvmRowBuilder<'a> {
        EvmRowBuilder {
            chain: chain.into(),
            source: "node".into(),
            blocks: vec![],
            txs: vec![],
            logs: vec![],
            traces: vec![],
            token_transfers: vec![],
            transfers: vec![],
        }
    }

    /// Rows of all tables held since the last finish.
    pub fn pending_rows(&self) -> usize {
        self.blocks.len() + self.txs.len() + self.logs.len() + self.traces.len() + self.token_transfers.len() + self.transfers.len()
    }

    /// Adds one block. On error nothing of the block is kept.
    pub fn push_block(&mut self, r: BlockReplies<'a>) -> Result<BlockCounts, Error> {
        let marks = (self.blocks.len(), self.txs.len(), self.logs.len(), self.traces.len(), self.token_transfers.len(), self.transfers.len());
        let result = self.push_block_inner(r);
        if result.is_err() {
            self.blocks.truncate(marks.0);
            self.txs.truncate(marks.1);
            self.logs.truncate(marks.2);
            self.traces.truncate(marks.3);
            self.token_transfers.truncate(marks.4);
            self.transfers.truncate(marks.5);
        }
        result
    }

    fn push_block_inner(&mut self, r: BlockReplies<'a>) -> Result<BlockCounts, Error> {
        let BlockReplies { block: b, receipts, traces } = r;
        let number = Fields { what: "block", tx: None }.u64("number", &b.number)?;
        let what = format!("block {number}");
        let f = Fields { what: &what, tx: None };
        let hash = f.hex("hash", b.hash)?;
        let timestamp = f.u64("timestamp", &b.timestamp)? as i64;
        let txs = b.transactions.ok_or_else(|| f.err("transactions", "missing (ask with full transactions)"))?;
        if receipts.len() != txs.len() {
            return Err(f.err("transactions", format!("{} transactions but {} receipts", txs.len(), receipts.len())));
        }
        let transfers_before = self.transfers.len();
        let withdrawals = match b.withdrawals {
            Some(ws) => {
                let mut out = vec![];
                for (i, w) in ws.into_iter().enumerate() {
                    let gwei = f.u256("amount", &w.amount)?;
                    let address = f.hex("address", w.address)?;
                    // ethereum-etl's key order.
                    let row = format!(
                        r#"{{"index":{},"validator_index":{},"address":"{}","amount":{}}}"#,
                        f.u64("index", &w.index)?,
                        f.u64("validatorIndex", &w.validator_index)?,
                        address,
                        f.u64("amount", &w.amount)?
                    );
                    let amount = gwei * U256::from(1_000_000_000u64);
                    self.transfers.push(
                        self.transfer(number, timestamp, None, None, i as u32, "withdrawal", Cow::Borrowed("native"), None, Some(address)).with_amount(amount),
                    );
                    out.push(row);
                }
                Some(format!("[{}]", out.join(",")))
            }
            None => None,
        };
        let mut counts = BlockCounts { number, transactions: txs.len() as u64, ..Default::default() };
        self.blocks.push(BlockRow {
            number,
            hash: hash.clone(),
            parent_hash: f.hex("parentHash", b.parent_hash)?,
            nonce: lower(b.nonce),
            sha3_uncles: lower(b.sha3_uncles),
            logs_bloom: lower(b.logs_bloom),
            transactions_root: lower(b.transactions_root),
            state_root: lower(b.state_root),
            receipts_root: lower(b.receipts_root),
            miner: lower(b.miner),
            difficulty: f.opt_wei("difficulty", &b.difficulty)?,
            total_difficulty: f.opt_wei("totalDifficulty", &b.total_difficulty)?,
            size: f.opt_u64("size", &b.size)?,
            extra_data: lower(b.extra_data),
            gas_limit: f.u64("gasLimit", &b.gas_limit)?,
            gas_used: f.u64("gasUsed", &b.gas_used)?,
            timestamp,
            transaction_count: txs.len() as u64,
            base_fee_per_gas: f.opt_wei("baseFeePerGas", &b.base_fee_per_gas)?,
            withdrawals_root: lower(b.withdrawals_root),
            withdrawals,
            blob_gas_used: f.opt_u64("blobGasUsed", &b.blob_gas_used)?,
            excess_blob_gas: f.opt_u64("excessBlobGas", &b.excess_blob_gas)?,
            parent_beacon_block_root: lower(b.parent_beacon_block_root),
        });

        // Traces first: they decide which internal transfers happened, and, for receipts
        // without a status (before Byzantium), whether the transaction failed.
        let traces = self.trace_rows(traces, number, &hash, timestamp, &txs)?;
        let mut top_level_failed = std::collections::HashMap::new();
        for t in &traces {
            if t.trace_address.is_empty() {
                if let Some(h) = &t.transaction_hash {
                    top_level_failed.insert(h.clone(), t.error.is_some());
                }
            }
        }

        let mut per_tx_transfers: Vec<Vec<TransferRow>> = vec![vec![]; txs.len()];
        for (i, (t, rc)) in txs.into_iter().zip(receipts).enumerate() {
            let tf = Fields { what: &what, tx: Some(i) };
            let tx_hash = tf.hex("hash", t.hash)?;
            let rc_hash = tf.hex("transactionHash", rc.transaction_hash)?;
            if *rc_hash != *tx_hash {
                return Err(Error::Reorg(format!("{tf}: receipt of {rc_hash} where {tx_hash} was expected")));
            }
            if let Some(bh) = lower(rc.block_hash) {
                if *bh != *hash {
                    return Err(Error::Reorg(format!("{tf}: receipt from block {bh}, not {hash}")));
                }
            }
            let index = tf.u32("transactionIndex", &t.transaction_index)?;
            let status = tf.opt_u64("status", &rc.status)?.map(|s| s as u8);
            // Before Byzantium receipts have no status: the trace says whether the transaction
            // failed; without traces, a failed transaction of that era used all its gas.
            let failed = match (status, top_level_failed.get(&*tx_hash)) {
                (Some(s), _) => s == 0,
                (None, Some(f)) => *f,
                (None, None) => tf.opt_u64("gasUsed", &rc.gas_used)?.is_some_and(|used| Some(used) == tf.opt_u64("gas", &t.gas).ok().flatten()),
            };
            let value = tf.u256("value", &t.value)?;
            let from = tf.hex("from", t.from)?;
            let to = lower(t.to);
            let contract_address = lower(rc.contract_address);
            let auth = t.authorization_list.map(|a| a.to_string());
            let blob_hashes = t.blob_versioned_hashes.map(|hashes| hashes.into_iter().filter_map(|h| lower(Some(h))).collect::<Vec<_>>());
            self.txs.push(TxRow {
                hash: tx_hash.clone(),
                nonce: tf.u64("nonce", &t.nonce)?,
                block_hash: hash.clone(),
                block_number: number,
                transaction_index: index,
                from_address: from.clone(),
                to_address: to.clone(),
                value: to_decimal128(value).ok_or_else(|| tf.err("value", format!("{value} wei does not fit Decimal128(38, 0)")))?,
                gas: tf.u64("gas", &t.gas)?,
                gas_price: tf.opt_wei("gasPrice", &t.gas_price)?,
                input: lower(t.input).or(lower(t.data)).unwrap_or_else(|| "0x".into()),
                block_timestamp: timestamp,
                max_fee_per_gas: tf.opt_wei("maxFeePerGas", &t.max_fee_per_gas)?,
                max_priority_fee_per_gas: tf.opt_wei("maxPriorityFeePerGas", &t.max_priority_fee_per_gas)?,
                transaction_type: tf.opt_u64("type", &t.kind)?.map(|x| x as u32),
                max_fee_per_blob_gas: tf.opt_wei("maxFeePerBlobGas", &t.max_fee_per_blob_gas)?,
                blob_versioned_hashes: blob_hashes,
                authorization_list: auth.map(Cow::Owned),
                receipt_cumulative_gas_used: tf.opt_u64("cumulativeGasUsed", &rc.cumulative_gas_used)?,
                receipt_gas_used: tf.opt_u64("gasUsed", &rc.gas_used)?,
                receipt_contract_address: contract_address.clone(),
                receipt_root: lower(rc.root),
                receipt_status: status,
                receipt_effective_gas_price: tf.opt_wei("effectiveGasPrice", &rc.effective_gas_price)?,
                receipt_blob_gas_used: tf.opt_u64("blobGasUsed", &rc.blob_gas_used)?,
                receipt_blob_gas_price: tf.opt_wei("blobGasPrice", &rc.blob_gas_price)?,
            });
            let out = &mut per_tx_transfers[i];
            if !failed && !value.is_zero() {
                let dest = to.or(contract_address);
                out.push(
                    self.transfer(number, timestamp, Some(&tx_hash), Some(index), 0, "native_tx", Cow::Borrowed("native"), Some(from), dest).with_amount(value),
                );
            }
            let logs = rc.logs.ok_or_else(|| tf.err("logs", "missing"))?;
            for l in logs {
                let topics = l.topics.ok_or_else(|| tf.err("topics", "missing"))?.into_iter().filter_map(|t| lower(Some(t))).collect();
                let log = LogRow {
                    log_index: tf.u32("logIndex", &l.log_index)?,
                    transaction_hash: tx_hash.clone(),
                    transaction_index: index,
                    block_hash: hash.clone(),
                    block_number: number,
                    block_timestamp: timestamp,
                    address: tf.hex("address", l.address)?,
                    data: tf.hex("data", l.data)?,
                    topics,
                };
                if let Some(tt) = token_transfer(&log) {
                    let (kind, token_id, amount) = match tt.token_standard {
                        "erc721" => ("erc721", Some(tt.value.clone()), U256::from(1)),
                        _ => ("erc20", None, tracehound_core::evm::parse_decimal_u256(&tt.value).expect("decimal we wrote")),
                    };
                    let mut row = self.transfer(
                        number,
                        timestamp,
                        Some(&tx_hash),
                        Some(index),
                        0,
                        kind,
                        tt.token_address.clone(),
                        Some(tt.from_address.clone()),
                        Some(tt.to_address.clone()),
                    );
                    row.token_id = token_id;
                    out.push(row.with_amount(amount));
                    self.token_transfers.push(tt);
                    counts.token_transfers += 1;
                }
                self.logs.push(log);
                counts.logs += 1;
            }
        }
        // Internal transfers: value moved by successful frames below the top level.
        for t in &traces {
            let (Some(h), Some(ti)) = (&t.transaction_hash, t.transaction_index) else { continue };
            let moves_value = match &*t.trace_type {
                "call" => matches!(t.call_type.as_deref(), Some("call") | None),
                "create" | "create2" | "suicide" => true,
                _ => false,
            };
            if t.trace_address.is_empty() || t.status != 1 || !moves_value {
                continue;
            }
            let Some(v) = t.value.map(|v| U256::from(v as u128)) else { continue };
            if v.is_zero() || (ti as usize) >= per_tx_transfers.len() {
                continue;
            }
            let row = self
                .transfer(number, timestamp, Some(h), Some(ti), 0, "internal", Cow::Borrowed("native"), t.from_address.clone(), t.to_address.clone())
                .with_amount(v);
            // Internal transfers come after the transaction's own value and before its token events.
            let out = &mut per_tx_transfers[ti as usize];
            let at = out.iter().position(|x| x.kind == "erc20" || x.kind == "erc721").unwrap_or(out.len());
            out.insert(at, row);
        }
        for t in &traces {
            if t.trace_type == "reward" && t.status == 1 {
                if let Some(v) = t.value.map(|v| U256::from(v as u128)) {
                    let position = (self.transfers.len() - transfers_before) as u32;
                    self.transfers.push(
                        self.transfer(number, timestamp, None, None, position, "reward", Cow::Borrowed("native"), None, t.to_address.clone()).with_amount(v),
                    );
                }
            }
        }
        for out in per_tx_transfers {
            for (p, mut row) in out.into_iter().enumerate() {
                row.position = p as u32;
                self.transfers.push(row);
            }
        }
        counts.traces = traces.len() as u64;
        counts.transfers = (self.transfers.len() - transfers_before) as u64;
        self.traces.extend(traces);
        Ok(counts)
    }

    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &self,
        block_number: u64,
        block_timestamp: i64,
        tx: Option<&Cow<'a, str>>,
        index: Option<u32>,
        position: u32,
        kind: &'static str,
        asset: Cow<'a, str>,
        from: Option<Cow<'a, str>>,
        to: Option<Cow<'a, str>>,
    ) -> TransferRow<'a> {
        TransferRow {
            chain: self.chain.clone(),
            block_number,
            block_timestamp,
            transaction_hash: tx.cloned(),
            transaction_index: index,
            position,
            kind,
            asset,
            asset_symbol: None,
            token_id: None,
            from_address: from,
            to_address: to,
            amount: None,
            amount_raw: String::new(),
            source: self.source.clone(),
        }
    }

    fn trace_rows(&self, traces: Traces<'a>, number: u64, hash: &Cow<'a, str>, timestamp: i64, txs: &[Transaction<'a>]) -> Result<Vec<TraceRow<'a>>, Error> {
        let what = format!("block {number} traces");
        let mut rows = match traces {
            Traces::None => return Ok(vec![]),
            Traces::Parity(list) => {
                let mut rows = Vec::with_capacity(list.len());
                for t in list {
                    if let Some(bh) = &t.block_hash {
                        if !bh.eq_ignore_ascii_case(hash) {
                            return Err(Error::Reorg(format!("trace_block {what}: traces of block {bh}, not {hash}")));
                        }
                    }
                    rows.push(parity_row(t, number, hash, timestamp, &what)?);
                }
                rows
            }
            Traces::Geth(list) => {
                if list.len() != txs.len() {
                    return Err(Error::Rpc {
                        method: "debug_traceBlockByNumber".into(),
                        reason: format!("{what}: {} results for {} transactions", list.len(), txs.len()),
                    });
                }
                let mut rows = vec![];
                for (i, (r, tx)) in list.into_iter().zip(txs).enumerate() {
                    let tx_hash = Fields { what: &what, tx: Some(i) }.hex("hash", tx.hash.clone())?;
                    if let Some(th) = &r.tx_hash {
                        if !th.eq_ignore_ascii_case(&tx_hash) {
                            return Err(Error::Reorg(format!("debug_traceBlockByNumber {what}: trace of transaction {th} where {tx_hash} was expected")));
                        }
                    }
                    if let Some(e) = r.error.filter(|e| !e.is_null()) {
                        return Err(Error::Rpc { method: "debug_traceBlockByNumber".into(), reason: format!("{what}: transaction {tx_hash}: {e}") });
                    }
                    let frame = r.result.ok_or_else(|| Error::Rpc {
                        method: "debug_traceBlockByNumber".into(),
                        reason: format!("{what}: transaction {tx_hash}: neither a result nor an error"),
                    })?;
                    flatten_geth(frame, &mut vec![], &tx_hash, i as u32, number, hash, timestamp, &what, &mut rows)?;
                }
                rows
            }
        };
        set_statuses_and_ids(&mut rows);
        Ok(rows)
    }

    /// The held rows as one record batch per table, in
    /// [`tracehound_tables::evm_schema::EVM_TABLES`] order; starts over (the row vectors keep
    /// their memory for the next blocks).
    pub fn finish(&mut self) -> Result<Vec<(&'static str, Vec<RecordBatch>)>, Error> {
        let batches = [
            columns::blocks(&self.blocks)?,
            columns::transactions(&self.txs)?,
            columns::logs(&self.logs)?,
            columns::traces(&self.traces)?,
            columns::token_transfers(&self.token_transfers)?,
            columns::transfers(&self.transfers)?,
        ];
        self.blocks.clear();
        self.txs.clear();
        self.logs.clear();
        self.traces.clear();
        self.token_transfers.clear();
        self.transfers.clear();
        Ok(tracehound_tables::evm_schema::EVM_TABLES.into_iter().zip(batches.map(|b| vec![b])).collect())
    }
}

/// The ERC-20 / ERC-721 transfer a log records, decoded as ethereum-etl does: topic 0 is
/// `Transfer`, and topics plus 32-byte data words are exactly four (ERC-20: from and to indexed,
/// value in data; ERC-721: from, to and token id indexed).
fn token_transfer<'a>(log: &LogRow<'a>) -> Option<TokenTransferRow<'a>> {
    if log.topics.first().map(|t| &**t) != Some(TRANSFER_TOPIC) {
        return None;
    }
    let data = hex::decode(log.data.trim_start_matches("0x")).ok()?;
    if data.len() % 32 != 0 {
        return None;
    }
    let mut words: Vec<[u8; 32]> = vec![];
    for t in &log.topics[1..] {
        let b = hex::decode(t.trim_start_matches("0x")).ok()?;
        words.push(b.try_into().ok()?);
    }
    let indexed = words.len();
    for c in data.chunks(32) {
        words.push(c.try_into().expect("32-byte chunk"));
    }
    if words.len() != 3 {
        return None;
    }
    let address = |w: &[u8; 32]| Cow::Owned(format!("0x{}", hex::encode(&w[12..])));
    Some(TokenTransferRow {
        token_address: log.address.clone(),
        from_address: address(&words[0]),
        to_address: address(&words[1]),
        value: uint256_word(&words[2]).to_string(),
        transaction_hash: log.transaction_hash.clone(),
        transaction_index: log.transaction_index,
        log_index: log.log_index,
        block_number: log.block_number,
        block_hash: log.block_hash.clone(),
        block_timestamp: log.block_timestamp,
        token_standard: if indexed == 3 { "erc721" } else { "erc20" },
    })
}

fn parity_row<'a>(t: ParityTrace<'a>, number: u64, hash: &Cow<'a, str>, timestamp: i64, what: &str) -> Result<TraceRow<'a>, Error> {
    let f = Fields { what, tx: None };
    let action = t.action.ok_or_else(|| f.err("action", "missing"))?;
    let result = t.result.unwrap_or_default();
    let trace_type = t.kind.ok_or_else(|| f.err("type", "missing"))?;
    let mut row = TraceRow {
        block_number: number,
        block_hash: hash.clone(),
        block_timestamp: timestamp,
        transaction_hash: lower(t.transaction_hash),
        transaction_index: f.opt_u64("transactionPosition", &t.transaction_position)?.map(|x| x as u32),
        from_address: None,
        to_address: None,
        value: None,
        input: None,
        output: None,
        trace_type: Cow::Borrowed(""),
        call_type: None,
        reward_type: None,
        gas: None,
        gas_used: None,
        subtraces: f.opt_u64("subtraces", &t.subtraces)?.unwrap_or(0) as u32,
        trace_address: t.trace_address.ok_or_else(|| f.err("traceAddress", "missing"))?,
        error: t.error.map(|e| e.0).filter(|e| !e.is_empty()),
        status: 1,
        trace_id: String::new(),
    };
    match &*trace_type {
        "call" => {
            row.from_address = lower(action.from);
            row.to_address = lower(action.to);
            row.value = f.opt_wei("value", &action.value)?;
            row.input = lower(action.input);
            row.output = lower(result.output);
            row.call_type = action.call_type.map(|t| t.0);
            row.gas = f.opt_u64("gas", &action.gas)?;
            row.gas_used = f.opt_u64("gasUsed", &result.gas_used)?;
        }
        "create" => {
            row.from_address = lower(action.from);
            row.to_address = lower(result.address);
            row.value = f.opt_wei("value", &action.value)?;
            row.input = lower(action.init);
            row.output = lower(result.code);
            row.gas = f.opt_u64("gas", &action.gas)?;
            row.gas_used = f.opt_u64("gasUsed", &result.gas_used)?;
        }
        "suicide" | "selfdestruct" => {
            row.trace_type = "suicide".into();
            row.from_address = lower(action.address);
            row.to_address = lower(action.refund_address);
            row.value = f.opt_wei("balance", &action.balance)?;
        }
        "reward" => {
            row.to_address = lower(action.author);
            row.value = f.opt_wei("value", &action.value)?;
            row.reward_type = action.reward_type.map(|t| t.0);
        }
        _ => {}
    }
    if row.trace_type.is_empty() {
        row.trace_type = trace_type.0;
    }
    Ok(row)
}

// The hashes stay `Cow`s so that a borrowed one is shared by every frame, not copied.
#[allow(clippy::too_many_arguments, clippy::ptr_arg)]
fn flatten_geth<'a>(
    frame: CallFrame<'a>,
    address: &mut Vec<u32>,
    tx_hash: &Cow<'a, str>,
    tx_index: u32,
    number: u64,
    hash: &Cow<'a, str>,
    timestamp: i64,
    what: &str,
    out: &mut Vec<TraceRow<'a>>,
) -> Result<(), Error> {
    let f = Fields { what, tx: None };
    let kind = frame.kind.as_deref().ok_or_else(|| f.err("type", "missing"))?.to_ascii_uppercase();
    let calls = frame.calls.unwrap_or_default();
    let (trace_type, call_type) = match kind.as_str() {
        "CREATE" => ("create", None),
        // As ethereum-etl's geth path writes it.
        "CREATE2" => ("create2", None),
        "SELFDESTRUCT" | "SUICIDE" => ("suicide", None),
        other => ("call", Some(other.to_ascii_lowercase())),
    };
    out.push(TraceRow {
        block_number: number,
        block_hash: hash.clone(),
        block_timestamp: timestamp,
        transaction_hash: Some(tx_hash.clone()),
        transaction_index: Some(tx_index),
        from_address: lower(frame.from),
        to_address: lower(frame.to),
        value: f.opt_wei("value", &frame.value)?,
        input: lower(frame.input),
        output: lower(frame.output),
        trace_type: trace_type.into(),
        call_type: call_type.map(Cow::Owned),
        reward_type: None,
        gas: f.opt_u64("gas", &frame.gas)?,
        gas_used: f.opt_u64("gasUsed", &frame.gas_used)?,
        subtraces: calls.len() as u32,
        trace_address: address.clone(),
        error: frame.error.map(|e| e.0).filter(|e| !e.is_empty()),
        status: 1,
        trace_id: String::new(),
    });
    for (i, c) in calls.into_iter().enumerate() {
        address.push(i as u32);
        flatten_geth(c, address, tx_hash, tx_index, number, hash, timestamp, what, out)?;
        address.pop();
    }
    Ok(())
}

/// ethereum-etl's rules: a frame fails when it or any parent has an error; ids are
/// `<type>_<tx hash>_<trace address joined by _>` (so a root frame's id ends in `_`), and
/// `<type>_<block>_<n>` for block-level traces.
fn set_statuses_and_ids<'a>(rows: &mut [TraceRow<'a>]) {
    let failed: std::collections::HashSet<(Cow<'a, str>, Vec<u32>)> =
        rows.iter().filter(|r| r.error.is_some()).filter_map(|r| r.transaction_hash.clone().map(|h| (h, r.trace_address.clone()))).collect();
    // Block-level traces are numbered per type in the order of (reward_type, from, to, value).
    let mut block_level: Vec<usize> = (0..rows.len()).filter(|i| rows[*i].transaction_hash.is_none()).collect();
    let key = |r: &TraceRow<'a>| (r.trace_type.clone(), r.reward_type.clone(), r.from_address.clone(), r.to_address.clone(), r.value);
    block_level.sort_by_key(|i| key(&rows[*i]));
    let mut numbered: std::collections::HashMap<String, usize> = Default::default();
    for i in block_level {
        let r = &mut rows[i];
        r.status = r.error.is_none() as u8;
        let n = numbered.entry(r.trace_type.to_string()).or_default();
        r.trace_id = format!("{}_{}_{}", r.trace_type, r.block_number, n);
        *n += 1;
    }
    for r in rows.iter_mut() {
        if let Some(h) = &r.transaction_hash {
            // Its parents are the frames whose addresses are the shorter prefixes of its own.
            let parent_failed = !failed.is_empty() && (0..r.trace_address.len()).any(|n| failed.contains(&(h.clone(), r.trace_address[..n].to_vec())));
            r.status = (r.error.is_none() && !parent_failed) as u8;
            let mut id = format!("{}_{}_", r.trace_type, h);
            for (k, a) in r.trace_address.iter().enumerate() {
                if k > 0 {
                    id.push('_');
                }
                write!(id, "{a}").expect("writing to a String");
            }
            r.trace_id = id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A reply read from a JSON value (its text owned).
    fn owned<T: serde::Deserialize<'static>>(v: Value) -> T {
        T::deserialize(v).unwrap()
    }

    /// A block's replies as a node would send them.
    fn replies(block: Value, receipts: Vec<Value>, traces: Traces<'static>) -> BlockReplies<'static> {
        BlockReplies { block: owned(block), receipts: owned(Value::Array(receipts)), traces }
    }

    fn parity(traces: Vec<Value>) -> Traces<'static> {
        Traces::Parity(owned(Value::Array(traces)))
    }

    fn log<'a>(topics: Vec<&'a str>, data: &'a str) -> LogRow<'a> {
        LogRow {
            log_index: 3,
            transaction_hash: "0xaa".into(),
            transaction_index: 1,
            block_hash: "0xbb".into(),
            block_number: 7,
            block_timestamp: 1,
            address: "0x5fbdb2315678afecb367f032d93f642f64180aa3".into(),
            data: data.into(),
            topics: topics.into_iter().map(Cow::Borrowed).collect(),
        }
    }

    const FROM: &str = "0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266";
    const TO: &str = "0x00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8";

    /// The ERC-20 Transfer with value 2^256 − 1 − 999 decodes exactly.
    #[test]
    fn erc20_value_known_answer() {
        let data = format!("0x{}fc18", "f".repeat(60));
        let t = token_transfer(&log(vec![TRANSFER_TOPIC, FROM, TO], &data)).unwrap();
        assert_eq!(t.value, "115792089237316195423570985008687907853269984665640564039457584007913129638936");
        assert_eq!(t.token_standard, "erc20");
        assert_eq!(t.from_address, "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
        assert_eq!(t.to_address, "0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
        let row = TransferRow {
            chain: "x".into(),
            block_number: 0,
            block_timestamp: 0,
            transaction_hash: None,
            transaction_index: None,
            position: 0,
            kind: "erc20",
            asset: "a".into(),
            asset_symbol: None,
            token_id: None,
            from_address: None,
            to_address: None,
            amount: None,
            amount_raw: String::new(),
            source: "node".into(),
        }
        .with_amount(U256::MAX - U256::from(999));
        assert_eq!(row.amount, None, "too large for Decimal128(38, 0)");
        assert_eq!(row.amount_raw, t.value);
    }

    /// ERC-721 (token id indexed) is recognised; other shapes are not transfers (as in ethereum-etl).
    #[test]
    fn token_transfer_shapes() {
        let id = format!("0x{:064x}", 42);
        let t = token_transfer(&log(vec![TRANSFER_TOPIC, FROM, TO, &id], "0x")).unwrap();
        assert_eq!((t.token_standard, t.value.as_str()), ("erc721", "42"));
        assert!(token_transfer(&log(vec![TRANSFER_TOPIC, FROM], &format!("0x{:064x}", 7))).is_none());
        assert!(token_transfer(&log(vec![TRANSFER_TOPIC, FROM, TO], &format!("0x{:064x}{:064x}", 1, 2))).is_none());
        assert!(token_transfer(&log(vec![FROM, FROM, TO], &format!("0x{:064x}", 1))).is_none());
    }

    const TRACED_TX: &str = "0x078024d4d8f40c0ada21d8f061aabfff272b455cef216e935a2ee0e1bc5b7b08";

    /// A block whose one transaction has a reverted frame (with a child) and a successful one.
    fn traced_block() -> BlockReplies<'static> {
        let tx = TRACED_TX;
        let block = json!({
            "number": "0x7", "hash": "0xB1", "parentHash": "0xb0", "gasLimit": "0x1", "gasUsed": "0x1", "timestamp": "0x10",
            "transactions": [{"hash": tx, "nonce": "0x0", "transactionIndex": "0x0", "from": "0xA", "to": "0xC", "value": "0x2", "gas": "0x5208", "input": "0x"}],
        });
        let receipt = json!({"transactionHash": tx, "status": "0x1", "logs": [], "gasUsed": "0x1", "cumulativeGasUsed": "0x1"});
        let call = |addr: Vec<u32>, from: &str, to: &str, value: &str, error: Option<&str>| {
            let mut t = json!({"type": "call", "action": {"callType": "call", "from": from, "to": to, "value": value, "gas": "0x0", "input": "0x"},
                "result": {"gasUsed": "0x0", "output": "0x"}, "subtraces": 1, "traceAddress": addr, "transactionHash": tx, "transactionPosition": 0});
            if let Some(e) = error {
                t["error"] = json!(e);
            }
            t
        };
        let traces = vec![
            call(vec![], "0xa", "0xc", "0x2", None),
            call(vec![0], "0xc", "0xd", "0x5", Some("Reverted")),
            call(vec![0, 0], "0xd", "0xe", "0x1", None),
            call(vec![1], "0xc", "0xf", "0x7", None),
        ];
        replies(block, vec![receipt], parity(traces))
    }

    /// Failed frames and their children move nothing; ids follow ethereum-etl.
    #[test]
    fn trace_status_and_transfers() {
        let tx = TRACED_TX;
        let mut b = EvmRowBuilder::new("anvil");
        let c = b.push_block(traced_block()).unwrap();
        assert_eq!(c.traces, 4);
        let statuses: Vec<u8> = b.traces.iter().map(|t| t.status).collect();
        assert_eq!(statuses, vec![1, 0, 0, 1]);
        assert_eq!(b.traces[0].trace_id, format!("call_{tx}_"));
        assert_eq!(b.traces[2].trace_id, format!("call_{tx}_0_0"));
        let moved: Vec<(&str, Option<&str>, String)> = b.transfers.iter().map(|t| (t.kind, t.to_address.as_deref(), t.amount_raw.clone())).collect();
        assert_eq!(moved, vec![("native_tx", Some("0xc"), "2".to_string()), ("internal", Some("0xf"), "7".to_string())]);
        assert_eq!(b.blocks[0].hash, "0xb1", "hashes are lowercased");
    }

    /// A bad field names the block, the transaction and the field; nothing of the block stays.
    #[test]
    fn bad_fields_are_named() {
        let block = json!({"number": "0x9", "hash": "0xb", "parentHash": "0xa", "gasLimit": "0x1", "gasUsed": "0x1", "timestamp": "0x10",
            "transactions": [{"hash": "0x1", "nonce": "0x0", "transactionIndex": "0x0", "from": "0xa", "to": null, "value": "12", "gas": "0x1", "input": "0x"}]});
        let receipt = json!({"transactionHash": "0x1", "status": "0x1", "logs": []});
        let mut b = EvmRowBuilder::new("anvil");
        let e = b.push_block(replies(block, vec![receipt], Traces::None)).unwrap_err().to_string();
        assert!(e.contains("block 9 transaction 0") && e.contains("\"value\""), "{e}");
        assert_eq!(b.pending_rows(), 0);
    }

    /// A block with an EIP-4844 transaction, a withdrawal, and a pre-Byzantium receipt whose
    /// trace says the transaction failed.
    fn blob_block() -> BlockReplies<'static> {
        let blob_tx = "0x01";
        let old_tx = "0x02";
        let block = json!({
            "number": "0x10", "hash": "0xb", "parentHash": "0xa", "gasLimit": "0x1", "gasUsed": "0x1", "timestamp": "0x20",
            "withdrawals": [{"index": "0x5", "validatorIndex": "0x9", "address": "0xAA", "amount": "0x3b9aca00"}],
            "transactions": [
                {"hash": blob_tx, "type": "0x3", "nonce": "0x0", "transactionIndex": "0x0", "from": "0xa", "to": "0xb", "value": "0x0", "gas": "0x1",
                 "input": "0x", "maxFeePerBlobGas": "0x10", "blobVersionedHashes": ["0x01AB"], "maxFeePerGas": "0x5", "maxPriorityFeePerGas": "0x1"},
                {"hash": old_tx, "type": "0x0", "nonce": "0x1", "transactionIndex": "0x1", "from": "0xa", "to": "0xc", "value": "0x64", "gas": "0x1", "input": "0x", "gasPrice": "0x2"},
            ],
        });
        let receipts = vec![
            json!({"transactionHash": blob_tx, "status": "0x1", "logs": [], "blobGasUsed": "0x20000", "blobGasPrice": "0x3"}),
            json!({"transactionHash": old_tx, "root": "0xRR", "logs": []}),
        ];
        let traces = vec![json!({"type": "call", "action": {"callType": "call", "from": "0xa", "to": "0xc", "value": "0x64", "gas": "0x0", "input": "0x"},
            "error": "Out of gas", "subtraces": 0, "traceAddress": [], "transactionHash": old_tx, "transactionPosition": 1})];
        replies(block, receipts, parity(traces))
    }

    /// EIP-4844 fields, withdrawals (credited in gwei) and a pre-Byzantium receipt (no status:
    /// the trace tells that the transaction failed, so its value moved nothing).
    #[test]
    fn blobs_withdrawals_and_receipts_without_status() {
        let mut b = EvmRowBuilder::new("ethereum");
        b.push_block(blob_block()).unwrap();
        let t = &b.txs[0];
        assert_eq!((t.transaction_type, t.max_fee_per_blob_gas), (Some(3), Some(16)));
        assert_eq!(t.blob_versioned_hashes.as_deref(), Some(&[Cow::Borrowed("0x01ab")][..]));
        assert_eq!((t.receipt_blob_gas_used, t.receipt_blob_gas_price), (Some(131072), Some(3)));
        assert_eq!((b.txs[1].receipt_status, b.txs[1].receipt_root.as_deref()), (None, Some("0xrr")));
        let moved: Vec<(&str, Option<&str>, &str)> = b.transfers.iter().map(|t| (t.kind, t.to_address.as_deref(), t.amount_raw.as_str())).collect();
        assert_eq!(moved, vec![("withdrawal", Some("0xaa"), "1000000000000000000")], "1 ETH withdrawn; the failed old transaction moved nothing");
        assert_eq!(b.blocks[0].withdrawals.as_deref(), Some(r#"[{"index":5,"validator_index":9,"address":"0xaa","amount":1000000000}]"#));
        let tables = b.finish().unwrap();
        assert_eq!(tables.iter().map(|(_, v)| v[0].num_rows()).collect::<Vec<_>>(), vec![1, 2, 0, 1, 0, 1]);
    }

    /// A contract creation (geth traces) whose receipt has an ERC-20 and an ERC-721 `Transfer`.
    fn token_block() -> BlockReplies<'static> {
        let tx = "0x03";
        let token = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
        let block = json!({
            "number": "0x11", "hash": "0xc", "parentHash": "0xb", "gasLimit": "0x1c9c380", "gasUsed": "0x5208", "timestamp": "0x30",
            "miner": "0x0000000000000000000000000000000000000000", "baseFeePerGas": "0x3b9aca00", "size": "0x2a0",
            "transactions": [{"hash": tx, "type": "0x2", "nonce": "0x7", "transactionIndex": "0x0", "from": "0xa", "to": null, "value": "0xde0b6b3a7640000",
                "gas": "0x5208", "input": "0x6080", "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x1", "gasPrice": "0x3b9aca01"}],
        });
        let logs = json!([
            {"logIndex": "0x0", "address": token, "data": format!("0x{:064x}", 1000), "topics": [TRANSFER_TOPIC, FROM, TO]},
            {"logIndex": "0x1", "address": token, "data": "0x", "topics": [TRANSFER_TOPIC, FROM, TO, format!("0x{:064x}", 42)]},
        ]);
        let receipt = json!({"transactionHash": tx, "status": "0x1", "logs": logs, "gasUsed": "0x5208", "cumulativeGasUsed": "0x5208",
            "contractAddress": token, "effectiveGasPrice": "0x3b9aca01"});
        let frame = json!({"type": "CREATE", "from": "0xa", "to": token, "value": "0xde0b6b3a7640000", "gas": "0x0", "gasUsed": "0x0", "input": "0x6080",
            "output": "0x00", "calls": [{"type": "CALL", "from": token, "to": "0xb", "value": "0x1", "gas": "0x0", "gasUsed": "0x0", "input": "0x"}]});
        replies(block, vec![receipt], Traces::Geth(owned(json!([{"txHash": tx, "result": frame}]))))
    }

    /// Decimals as text for arrow-json, whose serializer has no i128.
    pub(super) fn decimal_text<S: serde::Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    /// [`decimal_text`] of a value that may be null.
    pub(super) fn opt_decimal_text<S: serde::Serializer>(v: &Option<i128>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => decimal_text(v, s),
            None => s.serialize_none(),
        }
    }

    /// The same rows serialized by name through arrow-json: the reference the columns are checked against.
    fn by_name<T: serde::Serialize>(schema: datafusion::arrow::datatypes::SchemaRef, rows: &[T]) -> RecordBatch {
        let mut decoder = datafusion::arrow::json::ReaderBuilder::new(schema.clone()).build_decoder().unwrap();
        decoder.serialize(rows).unwrap();
        decoder.flush().unwrap().unwrap_or_else(|| RecordBatch::new_empty(schema))
    }

    /// Every column of every table holds what the row field of the same name holds (nulls, lists,
    /// decimals and all), so no column can be written under another's name.
    #[test]
    fn columns_match_a_by_name_serialization() {
        use tracehound_tables::evm_schema;
        let mut b = EvmRowBuilder::new("ethereum");
        for block in [traced_block(), blob_block(), token_block()] {
            b.push_block(block).unwrap();
        }
        assert_eq!((b.blocks.len(), b.txs.len(), b.logs.len(), b.traces.len(), b.token_transfers.len(), b.transfers.len()), (3, 4, 2, 7, 2, 7));
        let expected = [
            by_name(evm_schema::blocks(), &b.blocks),
            by_name(evm_schema::transactions(), &b.txs),
            by_name(evm_schema::logs(), &b.logs),
            by_name(evm_schema::traces(), &b.traces),
            by_name(evm_schema::token_transfers(), &b.token_transfers),
            by_name(evm_schema::transfers(), &b.transfers),
        ];
        let tables = b.finish().unwrap();
        for ((name, got), want) in tables.iter().zip(&expected) {
            assert_eq!(&got[0], want, "table {name}");
        }
    }
}

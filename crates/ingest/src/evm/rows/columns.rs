//! Row slices → Arrow record batches of the EVM tables, one column at a time.
//!
//! Each table's columns are listed in its schema's order (`tracehound_tables::evm_schema`);
//! `RecordBatch::try_new` refuses a column of the wrong type or a null in a non-null column, and
//! a unit test checks every table against a by-name serialization of the same rows.

use super::{BlockRow, LogRow, TokenTransferRow, TraceRow, TransferRow, TxRow};
use crate::Error;
use datafusion::arrow::array::{ArrayRef, ArrowPrimitiveType, Decimal128Array, ListBuilder, PrimitiveArray, StringBuilder, UInt32Builder};
use datafusion::arrow::datatypes::{Int64Type, SchemaRef, UInt32Type, UInt64Type, UInt8Type};
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::Arc;
use tracehound_tables::evm_schema;

/// A text column; the bytes are counted first so the data buffer is allocated once.
fn text<T>(rows: &[T], f: impl Fn(&T) -> Option<&str>) -> ArrayRef {
    let bytes = rows.iter().map(|r| f(r).map_or(0, str::len)).sum();
    let mut b = StringBuilder::with_capacity(rows.len(), bytes);
    for r in rows {
        b.append_option(f(r));
    }
    Arc::new(b.finish())
}

/// A column of integers with no nulls.
fn ints<T, P: ArrowPrimitiveType>(rows: &[T], f: impl Fn(&T) -> P::Native) -> ArrayRef {
    Arc::new(PrimitiveArray::<P>::from_iter_values(rows.iter().map(f)))
}

/// A column of integers that may be null.
fn opt_ints<T, P: ArrowPrimitiveType>(rows: &[T], f: impl Fn(&T) -> Option<P::Native>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<PrimitiveArray<P>>())
}

/// A `Decimal128(38, 0)` column (the rows hold values below 10^38).
fn decimals<T>(rows: &[T], column: &str, f: impl Fn(&T) -> Option<i128>) -> Result<ArrayRef, Error> {
    let array = rows.iter().map(f).collect::<Decimal128Array>().with_precision_and_scale(38, 0).map_err(|e| Error::Input(format!("{column}: {e}")))?;
    Ok(Arc::new(array))
}

/// A list-of-text column (`None`: a null list).
fn text_lists<T, S: AsRef<str>>(rows: &[T], f: impl Fn(&T) -> Option<&[S]>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for r in rows {
        match f(r) {
            Some(items) => {
                for s in items {
                    b.values().append_value(s.as_ref());
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch, Error> {
    RecordBatch::try_new(schema, columns).map_err(|e| Error::Input(format!("rows do not fit their table's schema: {e}")))
}

/// `blocks`.
pub(super) fn blocks(rows: &[BlockRow]) -> Result<RecordBatch, Error> {
    batch(
        evm_schema::blocks(),
        vec![
            ints::<_, UInt64Type>(rows, |r| r.number),
            text(rows, |r| Some(&r.hash)),
            text(rows, |r| Some(&r.parent_hash)),
            text(rows, |r| r.nonce.as_deref()),
            text(rows, |r| r.sha3_uncles.as_deref()),
            text(rows, |r| r.logs_bloom.as_deref()),
            text(rows, |r| r.transactions_root.as_deref()),
            text(rows, |r| r.state_root.as_deref()),
            text(rows, |r| r.receipts_root.as_deref()),
            text(rows, |r| r.miner.as_deref()),
            decimals(rows, "blocks.difficulty", |r| r.difficulty)?,
            decimals(rows, "blocks.total_difficulty", |r| r.total_difficulty)?,
            opt_ints::<_, UInt64Type>(rows, |r| r.size),
            text(rows, |r| r.extra_data.as_deref()),
            ints::<_, UInt64Type>(rows, |r| r.gas_limit),
            ints::<_, UInt64Type>(rows, |r| r.gas_used),
            ints::<_, Int64Type>(rows, |r| r.timestamp),
            ints::<_, UInt64Type>(rows, |r| r.transaction_count),
            decimals(rows, "blocks.base_fee_per_gas", |r| r.base_fee_per_gas)?,
            text(rows, |r| r.withdrawals_root.as_deref()),
            text(rows, |r| r.withdrawals.as_deref()),
            opt_ints::<_, UInt64Type>(rows, |r| r.blob_gas_used),
            opt_ints::<_, UInt64Type>(rows, |r| r.excess_blob_gas),
            text(rows, |r| r.parent_beacon_block_root.as_deref()),
        ],
    )
}

/// `transactions`.
pub(super) fn transactions(rows: &[TxRow]) -> Result<RecordBatch, Error> {
    batch(
        evm_schema::transactions(),
        vec![
            text(rows, |r| Some(&r.hash)),
            ints::<_, UInt64Type>(rows, |r| r.nonce),
            text(rows, |r| Some(&r.block_hash)),
            ints::<_, UInt64Type>(rows, |r| r.block_number),
            ints::<_, UInt32Type>(rows, |r| r.transaction_index),
            text(rows, |r| Some(&r.from_address)),
            text(rows, |r| r.to_address.as_deref()),
            decimals(rows, "transactions.value", |r| Some(r.value))?,
            ints::<_, UInt64Type>(rows, |r| r.gas),
            decimals(rows, "transactions.gas_price", |r| r.gas_price)?,
            text(rows, |r| Some(&r.input)),
            ints::<_, Int64Type>(rows, |r| r.block_timestamp),
            decimals(rows, "transactions.max_fee_per_gas", |r| r.max_fee_per_gas)?,
            decimals(rows, "transactions.max_priority_fee_per_gas", |r| r.max_priority_fee_per_gas)?,
            opt_ints::<_, UInt32Type>(rows, |r| r.transaction_type),
            decimals(rows, "transactions.max_fee_per_blob_gas", |r| r.max_fee_per_blob_gas)?,
            text_lists(rows, |r| r.blob_versioned_hashes.as_deref()),
            text(rows, |r| r.authorization_list.as_deref()),
            opt_ints::<_, UInt64Type>(rows, |r| r.receipt_cumulative_gas_used),
            opt_ints::<_, UInt64Type>(rows, |r| r.receipt_gas_used),
            text(rows, |r| r.receipt_contract_address.as_deref()),
            text(rows, |r| r.receipt_root.as_deref()),
            opt_ints::<_, UInt8Type>(rows, |r| r.receipt_status),
            decimals(rows, "transactions.receipt_effective_gas_price", |r| r.receipt_effective_gas_price)?,
            opt_ints::<_, UInt64Type>(rows, |r| r.receipt_blob_gas_used),
            decimals(rows, "transactions.receipt_blob_gas_price", |r| r.receipt_blob_gas_price)?,
        ],
    )
}

/// `logs`.
pub(super) fn logs(rows: &[LogRow]) -> Result<RecordBatch, Error> {
    batch(
        evm_schema::logs(),
        vec![
            ints::<_, UInt32Type>(rows, |r| r.log_index),
            text(rows, |r| Some(&r.transaction_hash)),
            ints::<_, UInt32Type>(rows, |r| r.transaction_index),
            text(rows, |r| Some(&r.block_hash)),
            ints::<_, UInt64Type>(rows, |r| r.block_number),
            ints::<_, Int64Type>(rows, |r| r.block_timestamp),
            text(rows, |r| Some(&r.address)),
            text(rows, |r| Some(&r.data)),
            text_lists(rows, |r| Some(r.topics.as_slice())),
        ],
    )
}

/// `traces`.
pub(super) fn traces(rows: &[TraceRow]) -> Result<RecordBatch, Error> {
    let mut addresses = ListBuilder::new(UInt32Builder::new());
    for r in rows {
        addresses.values().append_slice(&r.trace_address);
        addresses.append(true);
    }
    batch(
        evm_schema::traces(),
        vec![
            ints::<_, UInt64Type>(rows, |r| r.block_number),
            text(rows, |r| Some(&r.block_hash)),
            ints::<_, Int64Type>(rows, |r| r.block_timestamp),
            text(rows, |r| r.transaction_hash.as_deref()),
            opt_ints::<_, UInt32Type>(rows, |r| r.transaction_index),
            text(rows, |r| r.from_address.as_deref()),
            text(rows, |r| r.to_address.as_deref()),
            decimals(rows, "traces.value", |r| r.value)?,
            text(rows, |r| r.input.as_deref()),
            text(rows, |r| r.output.as_deref()),
            text(rows, |r| Some(&r.trace_type)),
            text(rows, |r| r.call_type.as_deref()),
            text(rows, |r| r.reward_type.as_deref()),
            opt_ints::<_, UInt64Type>(rows, |r| r.gas),
            opt_ints::<_, UInt64Type>(rows, |r| r.gas_used),
            ints::<_, UInt32Type>(rows, |r| r.subtraces),
            Arc::new(addresses.finish()),
            text(rows, |r| r.error.as_deref()),
            ints::<_, UInt8Type>(rows, |r| r.status),
            text(rows, |r| Some(&r.trace_id)),
        ],
    )
}

/// `token_transfers`.
pub(super) fn token_transfers(rows: &[TokenTransferRow]) -> Result<RecordBatch, Error> {
    batch(
        evm_schema::token_transfers(),
        vec![
            text(rows, |r| Some(&r.token_address)),
            text(rows, |r| Some(&r.from_address)),
            text(rows, |r| Some(&r.to_address)),
            text(rows, |r| Some(&r.value)),
            text(rows, |r| Some(&r.transaction_hash)),
            ints::<_, UInt32Type>(rows, |r| r.transaction_index),
            ints::<_, UInt32Type>(rows, |r| r.log_index),
            ints::<_, UInt64Type>(rows, |r| r.block_number),
            text(rows, |r| Some(&r.block_hash)),
            ints::<_, Int64Type>(rows, |r| r.block_timestamp),
            text(rows, |r| Some(r.token_standard)),
        ],
    )
}

/// `transfers` (also what the explorer CSV import writes).
pub fn transfers(rows: &[TransferRow]) -> Result<RecordBatch, Error> {
    batch(
        evm_schema::transfers(),
        vec![
            text(rows, |r| Some(&r.chain)),
            ints::<_, UInt64Type>(rows, |r| r.block_number),
            ints::<_, Int64Type>(rows, |r| r.block_timestamp),
            text(rows, |r| r.transaction_hash.as_deref()),
            opt_ints::<_, UInt32Type>(rows, |r| r.transaction_index),
            ints::<_, UInt32Type>(rows, |r| r.position),
            text(rows, |r| Some(r.kind)),
            text(rows, |r| Some(&r.asset)),
            text(rows, |r| r.asset_symbol.as_deref()),
            text(rows, |r| r.token_id.as_deref()),
            text(rows, |r| r.from_address.as_deref()),
            text(rows, |r| r.to_address.as_deref()),
            decimals(rows, "transfers.amount", |r| r.amount)?,
            text(rows, |r| Some(&r.amount_raw)),
            text(rows, |r| Some(&r.source)),
        ],
    )
}

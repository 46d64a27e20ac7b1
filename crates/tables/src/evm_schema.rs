//! Arrow schemas of the EVM tables. Column names follow ethereum-etl (and BigQuery's
//! `crypto_ethereum`, whose `transactions` carry the receipt fields as `receipt_*`).
//!
//! Native amounts (wei, gas prices) are `Decimal128(38, 0)`: exact, summable in SQL, and enough
//! for any native balance of a real chain (10^38 wei = 10^20 ETH). Token amounts can use all 256
//! bits, so `token_transfers.value` is the exact decimal string (as ethereum-etl and BigQuery
//! store it) and `transfers` carries both `amount` (decimal, null when ≥ 10^38) and `amount_raw`.

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::sync::{Arc, OnceLock};

/// The EVM tables written per chunk, in the order they are written.
pub const EVM_TABLES: [&str; 6] = ["blocks", "transactions", "logs", "traces", "token_transfers", "transfers"];

/// The type of native amounts: `Decimal128(38, 0)`.
pub const WEI: DataType = DataType::Decimal128(38, 0);

fn f(name: &str, t: DataType, nullable: bool) -> Field {
    Field::new(name, t, nullable)
}

fn list(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", t, true)))
}

macro_rules! schema {
    ($name:ident, $doc:literal, [$(($col:literal, $t:expr, $null:literal)),* $(,)?]) => {
        #[doc = $doc]
        pub fn $name() -> SchemaRef {
            static S: OnceLock<SchemaRef> = OnceLock::new();
            S.get_or_init(|| {
                #[allow(unused_imports)]
                use DataType::*;
                Arc::new(Schema::new(vec![$(f($col, $t, $null)),*]))
            })
            .clone()
        }
    };
}

schema!(
    blocks,
    "`blocks`: one row per block of the canonical chain.",
    [
        ("number", UInt64, false),
        ("hash", Utf8, false),
        ("parent_hash", Utf8, false),
        ("nonce", Utf8, true),
        ("sha3_uncles", Utf8, true),
        ("logs_bloom", Utf8, true),
        ("transactions_root", Utf8, true),
        ("state_root", Utf8, true),
        ("receipts_root", Utf8, true),
        ("miner", Utf8, true),
        ("difficulty", WEI, true),
        ("total_difficulty", WEI, true),
        ("size", UInt64, true),
        ("extra_data", Utf8, true),
        ("gas_limit", UInt64, false),
        ("gas_used", UInt64, false),
        ("timestamp", Int64, false),
        ("transaction_count", UInt64, false),
        ("base_fee_per_gas", WEI, true),
        ("withdrawals_root", Utf8, true),
        ("withdrawals", Utf8, true),
        ("blob_gas_used", UInt64, true),
        ("excess_blob_gas", UInt64, true),
        ("parent_beacon_block_root", Utf8, true),
    ]
);

schema!(
    transactions,
    "`transactions`: one row per transaction, with its receipt's fields (`receipt_*`).",
    [
        ("hash", Utf8, false),
        ("nonce", UInt64, false),
        ("block_hash", Utf8, false),
        ("block_number", UInt64, false),
        ("transaction_index", UInt32, false),
        ("from_address", Utf8, false),
        ("to_address", Utf8, true),
        ("value", WEI, false),
        ("gas", UInt64, false),
        ("gas_price", WEI, true),
        ("input", Utf8, false),
        ("block_timestamp", Int64, false),
        ("max_fee_per_gas", WEI, true),
        ("max_priority_fee_per_gas", WEI, true),
        ("transaction_type", UInt32, true),
        ("max_fee_per_blob_gas", WEI, true),
        ("blob_versioned_hashes", list(Utf8), true),
        ("authorization_list", Utf8, true),
        ("receipt_cumulative_gas_used", UInt64, true),
        ("receipt_gas_used", UInt64, true),
        ("receipt_contract_address", Utf8, true),
        ("receipt_root", Utf8, true),
        ("receipt_status", UInt8, true),
        ("receipt_effective_gas_price", WEI, true),
        ("receipt_blob_gas_used", UInt64, true),
        ("receipt_blob_gas_price", WEI, true),
    ]
);

schema!(
    logs,
    "`logs`: one row per event log of a transaction receipt.",
    [
        ("log_index", UInt32, false),
        ("transaction_hash", Utf8, false),
        ("transaction_index", UInt32, false),
        ("block_hash", Utf8, false),
        ("block_number", UInt64, false),
        ("block_timestamp", Int64, false),
        ("address", Utf8, false),
        ("data", Utf8, false),
        ("topics", list(Utf8), false),
    ]
);

schema!(
    traces,
    "`traces`: parity-style trace rows (from `trace_block`, or flattened geth `callTracer` frames); `status` is 0 when the frame or one of its parents failed.",
    [
        ("block_number", UInt64, false),
        ("block_hash", Utf8, false),
        ("block_timestamp", Int64, false),
        ("transaction_hash", Utf8, true),
        ("transaction_index", UInt32, true),
        ("from_address", Utf8, true),
        ("to_address", Utf8, true),
        ("value", WEI, true),
        ("input", Utf8, true),
        ("output", Utf8, true),
        ("trace_type", Utf8, false),
        ("call_type", Utf8, true),
        ("reward_type", Utf8, true),
        ("gas", UInt64, true),
        ("gas_used", UInt64, true),
        ("subtraces", UInt32, false),
        ("trace_address", list(UInt32), false),
        ("error", Utf8, true),
        ("status", UInt8, false),
        ("trace_id", Utf8, false),
    ]
);

schema!(
    token_transfers,
    "`token_transfers`: ERC-20 and ERC-721 `Transfer` events; `value` is the exact uint256 as a decimal string (the token id for ERC-721).",
    [
        ("token_address", Utf8, false),
        ("from_address", Utf8, false),
        ("to_address", Utf8, false),
        ("value", Utf8, false),
        ("transaction_hash", Utf8, false),
        ("transaction_index", UInt32, false),
        ("log_index", UInt32, false),
        ("block_number", UInt64, false),
        ("block_hash", Utf8, false),
        ("block_timestamp", Int64, false),
        ("token_standard", Utf8, false),
    ]
);

schema!(transfers, "`transfers`: every movement of value, the view analyses read. `kind` is native_tx, internal, erc20, erc721 or withdrawal; failed transactions and reverted calls move nothing and are absent. `position` orders the transfers of one transaction (the transaction's own value first, then internal transfers in call order, then token events in log order). `asset` is `native` or the token contract.", [
    ("chain", Utf8, false),
    ("block_number", UInt64, false),
    ("block_timestamp", Int64, false),
    ("transaction_hash", Utf8, true),
    ("transaction_index", UInt32, true),
    ("position", UInt32, false),
    ("kind", Utf8, false),
    ("asset", Utf8, false),
    ("asset_symbol", Utf8, true),
    ("token_id", Utf8, true),
    ("from_address", Utf8, true),
    ("to_address", Utf8, true),
    ("amount", WEI, true),
    ("amount_raw", Utf8, false),
    ("source", Utf8, false),
]);

schema!(
    tokens,
    "`tokens`: a derived table of each EVM chain (`derived/<chain>/tokens.parquet`), one row per token contract that appears in its `token_transfers` or `transfers.asset`: `symbol`, `name` and `decimals` as the contract answers `eth_call` of `symbol()`, `name()` and `decimals()` (`source` = `node`; null where it does not answer, as ethereum-etl's `export_tokens`), or from the bundled list of major tokens (`source` = `bundled`). Amounts stay in base units everywhere; this table is what shows them in whole units.",
    [
        ("address", Utf8, false),
        ("symbol", Utf8, true),
        ("name", Utf8, true),
        ("decimals", UInt8, true),
        ("source", Utf8, false),
    ]
);

/// The schema of an EVM table by name.
pub fn evm_table(name: &str) -> Option<SchemaRef> {
    match name {
        "blocks" => Some(blocks()),
        "transactions" => Some(transactions()),
        "logs" => Some(logs()),
        "traces" => Some(traces()),
        "token_transfers" => Some(token_transfers()),
        "transfers" => Some(transfers()),
        _ => None,
    }
}

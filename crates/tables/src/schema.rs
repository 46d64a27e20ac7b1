//! Arrow schemas of the UTXO tables. Column names follow bitcoin-etl and the public BigQuery
//! `crypto_bitcoin` dataset; values are exact integers of satoshi, never floats.

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::sync::{Arc, OnceLock};

/// The UTXO tables, in the order they are written.
pub const UTXO_TABLES: [&str; 4] = ["blocks", "transactions", "inputs", "outputs"];

fn f(name: &str, t: DataType, nullable: bool) -> Field {
    Field::new(name, t, nullable)
}

/// The type of `addresses` columns: a list of address strings.
pub fn address_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// `blocks`: one row per block of the best chain.
pub fn blocks() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        use DataType::*;
        Arc::new(Schema::new(vec![
            f("hash", Utf8, false),
            f("number", UInt64, false),
            f("prev_hash", Utf8, false),
            f("timestamp", Int64, false),
            f("merkle_root", Utf8, false),
            f("version", Int32, false),
            f("bits", Utf8, false),
            f("nonce", Utf8, false),
            f("size", UInt64, false),
            f("stripped_size", UInt64, false),
            f("weight", UInt64, false),
            f("transaction_count", UInt64, false),
            f("coinbase_param", Utf8, false),
        ]))
    })
    .clone()
}

/// `transactions`: one row per transaction. `input_value` and `fee` are null when an input could
/// not be resolved (pruned data): never a made-up value or a negative fee.
pub fn transactions() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        use DataType::*;
        Arc::new(Schema::new(vec![
            f("hash", Utf8, false),
            f("block_number", UInt64, false),
            f("block_hash", Utf8, false),
            f("block_timestamp", Int64, false),
            f("index", UInt32, false),
            f("is_coinbase", Boolean, false),
            f("version", Int32, false),
            f("lock_time", UInt32, false),
            f("size", UInt64, false),
            f("virtual_size", UInt64, false),
            f("input_count", UInt32, false),
            f("output_count", UInt32, false),
            f("input_value", UInt64, true),
            f("output_value", UInt64, false),
            f("fee", UInt64, true),
        ]))
    })
    .clone()
}

/// `inputs`: one row per input. `value`, `type`, `addresses` come from the spent output; they
/// are null (unresolved) when that output is not in the ingested data.
pub fn inputs() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        use DataType::*;
        Arc::new(Schema::new(vec![
            f("transaction_hash", Utf8, false),
            f("block_number", UInt64, false),
            f("block_timestamp", Int64, false),
            f("index", UInt32, false),
            f("spent_transaction_hash", Utf8, true),
            f("spent_output_index", UInt32, true),
            f("value", UInt64, true),
            f("type", Utf8, true),
            f("addresses", address_list_type(), true),
            f("required_signatures", UInt32, true),
            f("sequence", UInt32, false),
            f("script_hex", Utf8, false),
        ]))
    })
    .clone()
}

/// `outputs`: one row per output.
pub fn outputs() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        use DataType::*;
        Arc::new(Schema::new(vec![
            f("transaction_hash", Utf8, false),
            f("block_number", UInt64, false),
            f("block_timestamp", Int64, false),
            f("index", UInt32, false),
            f("value", UInt64, false),
            f("type", Utf8, false),
            f("addresses", address_list_type(), false),
            f("required_signatures", UInt32, true),
            f("script_hex", Utf8, false),
        ]))
    })
    .clone()
}

/// The schema of a UTXO table by name.
pub fn utxo_table(name: &str) -> Option<SchemaRef> {
    match name {
        "blocks" => Some(blocks()),
        "transactions" => Some(transactions()),
        "inputs" => Some(inputs()),
        "outputs" => Some(outputs()),
        _ => None,
    }
}

/// The schema of `table` for a chain of `kind`, if it is one of the chain tables.
pub fn chain_table(kind: crate::ChainKind, table: &str) -> Option<SchemaRef> {
    match kind {
        crate::ChainKind::Utxo => utxo_table(table),
        crate::ChainKind::Evm => crate::evm_schema::evm_table(table),
    }
}

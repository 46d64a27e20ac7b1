//! The replies of an EVM node, typed: only the fields the tables need, read straight from the
//! reply text with no JSON tree in between (fields the tables do not use are skipped unread).
//!
//! Quantities are parsed while reading. One that is not a quantity is kept as text, so that the
//! row builder can name the block, transaction and field it came from.
//!
//! Each field is the node's JSON field of the same name in camelCase (`parent_hash` is
//! `parentHash`), as the JSON-RPC specification defines it; only fields with another name or
//! meaning have a doc comment of their own. A field the node leaves out or sends as null is `None`.

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use tracehound_core::evm::{parse_quantity, U256};

/// A JSON-RPC quantity: hex text (`"0x1a"`), or a JSON number as some nodes write small ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quantity {
    /// The value.
    Value(U256),
    /// Not a quantity: why, with the text as given.
    Bad(String),
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Quantity, D::Error> {
        struct QuantityVisitor;
        impl Visitor<'_> for QuantityVisitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a quantity (hex text or an unsigned integer)")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Quantity, E> {
                Ok(parse_quantity(s).map_or_else(|e| Quantity::Bad(e.to_string()), Quantity::Value))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Quantity, E> {
                Ok(Quantity::Value(U256::from(n)))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Quantity, E> {
                Ok(u64::try_from(n).map_or_else(|_| Quantity::Bad(format!("{n} is negative")), |n| Quantity::Value(U256::from(n))))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Quantity, E> {
                Ok(Quantity::Bad(format!("{n} is not an unsigned integer")))
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Quantity, E> {
                Ok(Quantity::Bad(format!("{b} is not a quantity")))
            }
        }
        d.deserialize_any(QuantityVisitor)
    }
}

/// `eth_getBlockByNumber(n, true)`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Block {
    pub number: Option<Quantity>,
    pub hash: Option<String>,
    pub parent_hash: Option<String>,
    pub nonce: Option<String>,
    pub sha3_uncles: Option<String>,
    pub logs_bloom: Option<String>,
    pub transactions_root: Option<String>,
    pub state_root: Option<String>,
    pub receipts_root: Option<String>,
    pub miner: Option<String>,
    pub difficulty: Option<Quantity>,
    pub total_difficulty: Option<Quantity>,
    pub size: Option<Quantity>,
    pub extra_data: Option<String>,
    pub gas_limit: Option<Quantity>,
    pub gas_used: Option<Quantity>,
    pub timestamp: Option<Quantity>,
    pub base_fee_per_gas: Option<Quantity>,
    pub withdrawals_root: Option<String>,
    pub withdrawals: Option<Vec<Withdrawal>>,
    pub blob_gas_used: Option<Quantity>,
    pub excess_blob_gas: Option<Quantity>,
    pub parent_beacon_block_root: Option<String>,
    /// Full transaction objects (the block must be asked for with them).
    pub transactions: Option<Vec<Transaction>>,
}

/// An EIP-4895 withdrawal.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Withdrawal {
    pub index: Option<Quantity>,
    pub validator_index: Option<Quantity>,
    pub address: Option<String>,
    /// In gwei.
    pub amount: Option<Quantity>,
}

/// A transaction of a block.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Transaction {
    pub hash: Option<String>,
    pub nonce: Option<Quantity>,
    pub transaction_index: Option<Quantity>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub value: Option<Quantity>,
    pub gas: Option<Quantity>,
    pub gas_price: Option<Quantity>,
    pub input: Option<String>,
    /// What some nodes call `input`.
    pub data: Option<String>,
    pub max_fee_per_gas: Option<Quantity>,
    pub max_priority_fee_per_gas: Option<Quantity>,
    #[serde(rename = "type")]
    pub kind: Option<Quantity>,
    pub max_fee_per_blob_gas: Option<Quantity>,
    pub blob_versioned_hashes: Option<Vec<String>>,
    /// EIP-7702 authorizations, kept as JSON.
    pub authorization_list: Option<serde_json::Value>,
}

/// A transaction receipt.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Receipt {
    pub transaction_hash: Option<String>,
    pub block_hash: Option<String>,
    pub status: Option<Quantity>,
    pub gas_used: Option<Quantity>,
    pub cumulative_gas_used: Option<Quantity>,
    pub contract_address: Option<String>,
    /// Before Byzantium: the state root instead of a status.
    pub root: Option<String>,
    pub effective_gas_price: Option<Quantity>,
    pub blob_gas_used: Option<Quantity>,
    pub blob_gas_price: Option<Quantity>,
    pub logs: Option<Vec<Log>>,
}

/// An event log of a receipt.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Log {
    pub log_index: Option<Quantity>,
    pub address: Option<String>,
    pub data: Option<String>,
    pub topics: Option<Vec<String>>,
}

/// One row of parity `trace_block`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ParityTrace {
    pub block_hash: Option<String>,
    pub action: Option<TraceAction>,
    pub result: Option<TraceResult>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub trace_address: Option<Vec<u32>>,
    pub transaction_hash: Option<String>,
    pub transaction_position: Option<Quantity>,
    pub subtraces: Option<Quantity>,
    pub error: Option<String>,
}

/// What a parity trace did: a call, a creation, a self-destruct or a block reward.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TraceAction {
    pub from: Option<String>,
    pub to: Option<String>,
    pub value: Option<Quantity>,
    pub input: Option<String>,
    pub call_type: Option<String>,
    pub gas: Option<Quantity>,
    /// A creation's code.
    pub init: Option<String>,
    /// A self-destructing contract.
    pub address: Option<String>,
    pub refund_address: Option<String>,
    /// What a self-destruct sent.
    pub balance: Option<Quantity>,
    /// A reward's receiver.
    pub author: Option<String>,
    pub reward_type: Option<String>,
}

/// What a parity trace returned.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TraceResult {
    pub output: Option<String>,
    pub gas_used: Option<Quantity>,
    /// A created contract.
    pub address: Option<String>,
    pub code: Option<String>,
}

/// One transaction of geth's `debug_traceBlockByNumber` with `callTracer`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct GethTrace {
    pub tx_hash: Option<String>,
    pub result: Option<CallFrame>,
    /// Why the node could not trace the transaction.
    pub error: Option<serde_json::Value>,
}

/// A `callTracer` call frame and the frames below it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct CallFrame {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub value: Option<Quantity>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub gas: Option<Quantity>,
    pub gas_used: Option<Quantity>,
    pub error: Option<String>,
    pub calls: Option<Vec<CallFrame>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_or_keep_why_not() {
        let q: Vec<Quantity> = serde_json::from_str(r#"["0x1f", 31, "12", "0x", -1, 1.5]"#).unwrap();
        assert_eq!(q[0], Quantity::Value(U256::from(31)));
        assert_eq!(q[1], Quantity::Value(U256::from(31)));
        assert!(matches!(&q[2], Quantity::Bad(why) if why.contains("0x")), "{:?}", q[2]);
        assert!(matches!(&q[3], Quantity::Bad(_)));
        assert!(matches!(&q[4], Quantity::Bad(why) if why.contains("negative")));
        assert!(matches!(&q[5], Quantity::Bad(_)));
    }
}

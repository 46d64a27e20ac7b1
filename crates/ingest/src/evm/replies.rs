//! The replies of an EVM node, typed: only the fields the tables need, read straight from the
//! reply text with no JSON tree in between (fields the tables do not use are skipped unread).
//!
//! Text fields borrow from the reply text (nothing is copied until the Arrow columns are built);
//! quantities are parsed while reading. One that is not a quantity is kept as text, so that the
//! row builder can name the block, transaction and field it came from.
//!
//! Each field is the node's JSON field of the same name in camelCase (`parent_hash` is
//! `parentHash`), as the JSON-RPC specification defines it; only fields with another name or
//! meaning have a doc comment of their own. A field the node leaves out or sends as null is `None`.

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
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

/// Text of a reply: a slice of the reply text where it can be (no escapes), else owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text<'a>, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a str>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// `eth_getBlockByNumber(n, true)`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Block<'a> {
    pub number: Option<Quantity>,
    #[serde(borrow)]
    pub hash: Option<Text<'a>>,
    #[serde(borrow)]
    pub parent_hash: Option<Text<'a>>,
    #[serde(borrow)]
    pub nonce: Option<Text<'a>>,
    #[serde(borrow)]
    pub sha3_uncles: Option<Text<'a>>,
    #[serde(borrow)]
    pub logs_bloom: Option<Text<'a>>,
    #[serde(borrow)]
    pub transactions_root: Option<Text<'a>>,
    #[serde(borrow)]
    pub state_root: Option<Text<'a>>,
    #[serde(borrow)]
    pub receipts_root: Option<Text<'a>>,
    #[serde(borrow)]
    pub miner: Option<Text<'a>>,
    pub difficulty: Option<Quantity>,
    pub total_difficulty: Option<Quantity>,
    pub size: Option<Quantity>,
    #[serde(borrow)]
    pub extra_data: Option<Text<'a>>,
    pub gas_limit: Option<Quantity>,
    pub gas_used: Option<Quantity>,
    pub timestamp: Option<Quantity>,
    pub base_fee_per_gas: Option<Quantity>,
    #[serde(borrow)]
    pub withdrawals_root: Option<Text<'a>>,
    #[serde(borrow)]
    pub withdrawals: Option<Vec<Withdrawal<'a>>>,
    pub blob_gas_used: Option<Quantity>,
    pub excess_blob_gas: Option<Quantity>,
    #[serde(borrow)]
    pub parent_beacon_block_root: Option<Text<'a>>,
    /// Full transaction objects (the block must be asked for with them).
    #[serde(borrow)]
    pub transactions: Option<Vec<Transaction<'a>>>,
}

/// An EIP-4895 withdrawal.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Withdrawal<'a> {
    pub index: Option<Quantity>,
    pub validator_index: Option<Quantity>,
    #[serde(borrow)]
    pub address: Option<Text<'a>>,
    /// In gwei.
    pub amount: Option<Quantity>,
}

/// A transaction of a block.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Transaction<'a> {
    #[serde(borrow)]
    pub hash: Option<Text<'a>>,
    pub nonce: Option<Quantity>,
    pub transaction_index: Option<Quantity>,
    #[serde(borrow)]
    pub from: Option<Text<'a>>,
    #[serde(borrow)]
    pub to: Option<Text<'a>>,
    pub value: Option<Quantity>,
    pub gas: Option<Quantity>,
    pub gas_price: Option<Quantity>,
    #[serde(borrow)]
    pub input: Option<Text<'a>>,
    /// What some nodes call `input`.
    #[serde(borrow)]
    pub data: Option<Text<'a>>,
    pub max_fee_per_gas: Option<Quantity>,
    pub max_priority_fee_per_gas: Option<Quantity>,
    #[serde(rename = "type")]
    pub kind: Option<Quantity>,
    pub max_fee_per_blob_gas: Option<Quantity>,
    #[serde(borrow)]
    pub blob_versioned_hashes: Option<Vec<Text<'a>>>,
    /// EIP-7702 authorizations, kept as JSON.
    pub authorization_list: Option<serde_json::Value>,
}

/// A transaction receipt.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Receipt<'a> {
    #[serde(borrow)]
    pub transaction_hash: Option<Text<'a>>,
    #[serde(borrow)]
    pub block_hash: Option<Text<'a>>,
    pub status: Option<Quantity>,
    pub gas_used: Option<Quantity>,
    pub cumulative_gas_used: Option<Quantity>,
    #[serde(borrow)]
    pub contract_address: Option<Text<'a>>,
    /// Before Byzantium: the state root instead of a status.
    #[serde(borrow)]
    pub root: Option<Text<'a>>,
    pub effective_gas_price: Option<Quantity>,
    pub blob_gas_used: Option<Quantity>,
    pub blob_gas_price: Option<Quantity>,
    #[serde(borrow)]
    pub logs: Option<Vec<Log<'a>>>,
}

/// An event log of a receipt.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Log<'a> {
    pub log_index: Option<Quantity>,
    #[serde(borrow)]
    pub address: Option<Text<'a>>,
    #[serde(borrow)]
    pub data: Option<Text<'a>>,
    #[serde(borrow)]
    pub topics: Option<Vec<Text<'a>>>,
}

/// One row of parity `trace_block`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ParityTrace<'a> {
    #[serde(borrow)]
    pub block_hash: Option<Text<'a>>,
    #[serde(borrow)]
    pub action: Option<TraceAction<'a>>,
    #[serde(borrow)]
    pub result: Option<TraceResult<'a>>,
    #[serde(rename = "type")]
    #[serde(borrow)]
    pub kind: Option<Text<'a>>,
    pub trace_address: Option<Vec<u32>>,
    #[serde(borrow)]
    pub transaction_hash: Option<Text<'a>>,
    pub transaction_position: Option<Quantity>,
    pub subtraces: Option<Quantity>,
    #[serde(borrow)]
    pub error: Option<Text<'a>>,
}

/// What a parity trace did: a call, a creation, a self-destruct or a block reward.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TraceAction<'a> {
    #[serde(borrow)]
    pub from: Option<Text<'a>>,
    #[serde(borrow)]
    pub to: Option<Text<'a>>,
    pub value: Option<Quantity>,
    #[serde(borrow)]
    pub input: Option<Text<'a>>,
    #[serde(borrow)]
    pub call_type: Option<Text<'a>>,
    pub gas: Option<Quantity>,
    /// A creation's code.
    #[serde(borrow)]
    pub init: Option<Text<'a>>,
    /// A self-destructing contract.
    #[serde(borrow)]
    pub address: Option<Text<'a>>,
    #[serde(borrow)]
    pub refund_address: Option<Text<'a>>,
    /// What a self-destruct sent.
    pub balance: Option<Quantity>,
    /// A reward's receiver.
    #[serde(borrow)]
    pub author: Option<Text<'a>>,
    #[serde(borrow)]
    pub reward_type: Option<Text<'a>>,
}

/// What a parity trace returned.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TraceResult<'a> {
    #[serde(borrow)]
    pub output: Option<Text<'a>>,
    pub gas_used: Option<Quantity>,
    /// A created contract.
    #[serde(borrow)]
    pub address: Option<Text<'a>>,
    #[serde(borrow)]
    pub code: Option<Text<'a>>,
}

/// One transaction of geth's `debug_traceBlockByNumber` with `callTracer`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct GethTrace<'a> {
    #[serde(borrow)]
    pub tx_hash: Option<Text<'a>>,
    #[serde(borrow)]
    pub result: Option<CallFrame<'a>>,
    /// Why the node could not trace the transaction.
    pub error: Option<serde_json::Value>,
}

/// A `callTracer` call frame and the frames below it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct CallFrame<'a> {
    #[serde(rename = "type")]
    #[serde(borrow)]
    pub kind: Option<Text<'a>>,
    #[serde(borrow)]
    pub from: Option<Text<'a>>,
    #[serde(borrow)]
    pub to: Option<Text<'a>>,
    pub value: Option<Quantity>,
    #[serde(borrow)]
    pub input: Option<Text<'a>>,
    #[serde(borrow)]
    pub output: Option<Text<'a>>,
    pub gas: Option<Quantity>,
    pub gas_used: Option<Quantity>,
    #[serde(borrow)]
    pub error: Option<Text<'a>>,
    #[serde(borrow)]
    pub calls: Option<Vec<CallFrame<'a>>>,
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

    #[test]
    fn text_borrows_from_the_reply_unless_escaped() {
        let t: Vec<Text> = serde_json::from_str(r#"["0xab", "a\"b"]"#).unwrap();
        assert!(matches!(t[0].0, Cow::Borrowed("0xab")));
        assert!(matches!(&t[1].0, Cow::Owned(s) if s == "a\"b"));
        let owned = Text::deserialize(serde_json::json!("0xcd")).unwrap();
        assert_eq!(&*owned, "0xcd");
    }
}

//! Taint tracing: where did the coins of a seed go (forward), or where did they come from
//! (backward)?
//!
//! * [`utxo`]: Bitcoin-like chains, over the graph index. Taint flows through transactions,
//!   from inputs to outputs, under one of three [`Model`]s.
//! * [`account`]: EVM chains, over the `transfers` table. Every address is a pool, per asset.
//!
//! Every trace ends in an [`Accounting`] of the seed amount: what reached each labelled service
//! (exchange, mixer, bridge, …), what is still held (listed output by output or address by
//! address), what went to fees, what fell below the dust threshold, and what was still moving when
//! a limit was reached. Under haircut and FIFO the accounting sums exactly to the seed amount
//! (integer arithmetic, no rounding lost); under poison every reached coin counts in full, so it
//! sums to more.

pub mod account;
pub mod export;
pub mod mem;
pub mod utxo;

use serde::{Deserialize, Serialize};
use std::fmt;

/// How taint spreads through a transaction (or an address, on account chains).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// Every output of a tainted transaction is tainted in full.
    Poison,
    /// Every output carries the tainted share of the inputs in proportion to its value.
    Haircut,
    /// First in, first out (Anderson et al. 2018): the n-th satoshi in is the n-th out; fees are
    /// paid by the last satoshis. On account chains: by time order.
    Fifo,
}

impl Model {
    /// Parses `poison`, `haircut` or `fifo`.
    pub fn from_name(s: &str) -> Option<Model> {
        match s.to_ascii_lowercase().as_str() {
            "poison" => Some(Model::Poison),
            "haircut" => Some(Model::Haircut),
            "fifo" => Some(Model::Fifo),
            _ => None,
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Model::Poison => "poison",
            Model::Haircut => "haircut",
            Model::Fifo => "fifo",
        })
    }
}

/// Which way to follow the coins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Where the seed's coins went.
    Forward,
    /// Where the seed's coins came from.
    Backward,
}

/// What happens to the tainted part of a transaction fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fees {
    /// It is accounted as "fees" and followed no further.
    Drop,
    /// It flows into the coinbase outputs of the block that holds the transaction (UTXO), or to
    /// the block's fee recipient (accounts, see [`account::route_fees`]; the EIP-1559 base fee
    /// is burned and stays in "fees").
    Follow,
}

/// Limits of a trace. What a limit stops is accounted, never lost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// Transactions (hops) to follow from the seed.
    pub max_hops: u32,
    /// Taint below this amount (base units) is not followed: "below threshold".
    #[serde(with = "crate::amount")]
    pub min_amount: u128,
    /// Trace the chain as of this block height: later spends count as still held.
    pub until_height: Option<u64>,
    /// Ignore movements before this unix time (seeds by address: only what arrived since).
    pub since_time: Option<u64>,
    /// Ignore movements after this unix time (like `until_height`).
    pub until_time: Option<u64>,
    /// Outputs (UTXO) or address pools (accounts) to visit at most: "node limit".
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_hops: 10, min_amount: 0, until_height: None, since_time: None, until_time: None, max_nodes: 1_000_000 }
    }
}

/// A labelled service where a trace stops (forward: funds reached it; backward: funds came from it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sink {
    /// Category of the label store (`exchange`, `mixing_service`, `bridge`, …) or `coinjoin`.
    pub category: String,
    /// The service's name (a label, or the entity's label).
    pub name: String,
}

/// Amount that reached one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkAmount {
    /// The sink.
    #[serde(flatten)]
    pub sink: Sink,
    /// Tainted base units that reached it.
    #[serde(with = "crate::amount")]
    pub amount: u128,
    /// Addresses of the sink that received them, with the amount each.
    pub addresses: Vec<AddressAmount>,
}

/// An amount at one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressAmount {
    /// The address.
    pub address: String,
    /// Base units.
    #[serde(with = "crate::amount")]
    pub amount: u128,
}

/// Amounts are written as decimal strings in JSON: they exceed 2^64 (wei) and most JSON readers
/// lose precision above 2^53.
pub mod amount {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a `u128` as a decimal string.
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    /// Reads a decimal string (or a number) as a `u128`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            S(String),
            N(u64),
        }
        match Either::deserialize(d)? {
            Either::S(s) => s.parse().map_err(serde::de::Error::custom),
            Either::N(n) => Ok(n as u128),
        }
    }
}

/// A still-held output (UTXO) or balance (account) with its tainted part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The holding address.
    pub address: String,
    /// `txid:vout` of the output (UTXO chains); `None` for an account balance.
    pub output: Option<String>,
    /// Asset (`BTC`, `ETH`, a token contract address).
    pub asset: String,
    /// Value of the output (UTXO) or the tainted pool's balance (accounts).
    #[serde(with = "crate::amount")]
    pub value: u128,
    /// Tainted part of it.
    #[serde(with = "crate::amount")]
    pub tainted: u128,
}

/// Where the seed amount ended up. Under haircut and FIFO, [`Accounting::total`] equals the seed
/// amount exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// Labelled services reached, largest first.
    pub sinks: Vec<SinkAmount>,
    /// Still held: unspent outputs or balances, by address.
    pub held: Vec<Held>,
    /// Sum of the tainted parts of [`Accounting::held`].
    #[serde(with = "crate::amount")]
    pub held_total: u128,
    /// Paid as transaction fees (with `--fees drop`), or burned as EIP-1559 base fees (with
    /// `--fees follow` on account chains).
    #[serde(with = "crate::amount")]
    pub fees: u128,
    /// Dust not followed (below `min_amount`).
    #[serde(with = "crate::amount")]
    pub below_threshold: u128,
    /// Still moving when `max_hops` was reached.
    #[serde(with = "crate::amount")]
    pub hop_limit: u128,
    /// Not followed because `max_nodes` was reached.
    #[serde(with = "crate::amount")]
    pub node_limit: u128,
    /// Backward traces: newly mined coins (coinbase) the seed came from.
    #[serde(with = "crate::amount")]
    pub mined: u128,
    /// Backward traces: inputs whose spent output is not in the data (pruned or unresolved).
    #[serde(with = "crate::amount")]
    pub unresolved: u128,
}

impl Accounting {
    /// Sum of every bucket.
    pub fn total(&self) -> u128 {
        self.sinks.iter().map(|s| s.amount).sum::<u128>()
            + self.held_total
            + self.fees
            + self.below_threshold
            + self.hop_limit
            + self.node_limit
            + self.mined
            + self.unresolved
    }

    /// Amount that reached sinks of `category`.
    pub fn by_category(&self, category: &str) -> u128 {
        self.sinks.iter().filter(|s| s.sink.category == category).map(|s| s.amount).sum()
    }
}

/// An edge of the flow graph: tainted value moved from one address to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// Sending address (or entity).
    pub from: String,
    /// Receiving address (or entity).
    pub to: String,
    /// Asset moved.
    pub asset: String,
    /// Tainted base units moved.
    #[serde(with = "crate::amount")]
    pub amount: u128,
    /// Hop number (1 = the first transaction after the seed).
    pub hop: u32,
    /// Transaction.
    pub tx: String,
    /// Block height.
    pub height: u64,
    /// Block time (unix seconds).
    pub time: u64,
}

/// A node of the flow graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Address.
    pub address: String,
    /// Its label or sink name, if known.
    pub label: Option<String>,
    /// Its category, if labelled.
    pub category: Option<String>,
    /// Whether the trace started here.
    pub seed: bool,
}

/// The result of a trace: the flow graph and the accounting of the seed amount.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trace {
    /// Chain traced.
    pub chain: String,
    /// Model used.
    pub model: Model,
    /// Direction.
    pub direction: Direction,
    /// Unit of every amount (`sat`, `wei`, or `<asset> base units`).
    pub unit: String,
    /// Asset traced (`BTC`, `ETH`, a token contract).
    pub asset: String,
    /// On account chains: the flow this trace follows (a seed asset, or what a swap turned it into).
    pub flow: Option<String>,
    /// The seeds, as given and resolved.
    pub seeds: Vec<String>,
    /// Amount traced from the seeds.
    #[serde(with = "crate::amount")]
    pub seed_amount: u128,
    /// What each seed contributed to `seed_amount` (a seed that contributed nothing is absent).
    #[serde(default)]
    pub seed_amounts: Vec<SeedAmount>,
    /// Where it went.
    pub accounting: Accounting,
    /// Nodes of the flow graph.
    pub nodes: Vec<Node>,
    /// Edges of the flow graph.
    pub edges: Vec<Edge>,
    /// Limits applied.
    pub limits: Limits,
}

/// What one seed contributed to a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedAmount {
    /// The seed: an output, a transaction, or an address with the side it takes (`… (received)`,
    /// `… (sent)`).
    pub seed: String,
    /// Amount it contributed.
    #[serde(with = "crate::amount")]
    pub amount: u128,
}

/// The flow graph of `t` with its addresses grouped into entities: `entity_of` names the entity
/// of an address (`None`: the address stands alone). Edges between the same two entities in the
/// same transaction and hop are summed, and movements inside one entity are left out; a node is
/// a seed if any member is, and takes the label of a labelled member. The accounting is unchanged.
pub fn group_nodes(t: &Trace, entity_of: &dyn Fn(&str) -> Option<String>) -> Trace {
    let name = |a: &str| entity_of(a).unwrap_or_else(|| a.to_string());
    let mut edges: std::collections::BTreeMap<(u32, String, String, String), Edge> = std::collections::BTreeMap::new();
    for e in &t.edges {
        let (from, to) = (name(&e.from), name(&e.to));
        if from == to {
            continue;
        }
        edges.entry((e.hop, e.tx.clone(), from.clone(), to.clone())).and_modify(|x| x.amount += e.amount).or_insert(Edge { from, to, ..e.clone() });
    }
    let mut nodes: std::collections::BTreeMap<String, Node> = std::collections::BTreeMap::new();
    for n in &t.nodes {
        let key = name(&n.address);
        let g = nodes.entry(key.clone()).or_insert(Node { address: key, label: None, category: None, seed: false });
        g.seed |= n.seed;
        if g.label.is_none() {
            g.label = n.label.clone();
            g.category = n.category.clone();
        }
    }
    Trace { edges: edges.into_values().collect(), nodes: nodes.into_values().collect(), ..t.clone() }
}

/// The symbol of a chain's native coin (`BTC`, `LTC`, `ETH`, `BNB`, …), for display and pricing.
pub fn native_symbol(chain: &str) -> &'static str {
    match chain {
        c if c.starts_with("bitcoin_cash") => "BCH",
        c if c.starts_with("bitcoin") => "BTC",
        c if c.starts_with("litecoin") => "LTC",
        c if c.starts_with("dogecoin") => "DOGE",
        "bsc" | "bnb" => "BNB",
        "polygon" => "POL",
        "avalanche" => "AVAX",
        "fantom" => "FTM",
        "gnosis" => "XDAI",
        _ => "ETH",
    }
}

/// Errors of tracing; each names the seed or the field it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A seed that is not in the data.
    #[error("seed {seed:?}: {reason}")]
    Seed {
        /// The seed as given.
        seed: String,
        /// Why it cannot be used.
        reason: String,
    },
}

/// Result of tracing.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Splits `amount` over `weights` in proportion, exactly: the parts sum to `amount` (largest
/// remainders get the leftover units; ties go to the earlier part). All weights zero: nothing.
/// Products beyond 128 bits are computed in 256 bits.
pub fn split_exact(amount: u128, weights: &[u128]) -> Vec<u128> {
    let total: u128 = weights.iter().sum();
    if total == 0 || amount == 0 {
        return vec![0; weights.len()];
    }
    if amount == total {
        // The whole: every part is its weight (the common case of a fully tainted transaction).
        return weights.to_vec();
    }
    let mut parts = Vec::with_capacity(weights.len());
    let mut given = 0u128;
    for &w in weights {
        let q = share(amount, w, total).0;
        parts.push(q);
        given += q;
    }
    let mut left = amount - given;
    if left > 0 {
        // Remainders are computed again only when units are left over (the rare case).
        let mut rems: Vec<(u128, usize)> = weights.iter().enumerate().map(|(i, &w)| (share(amount, w, total).1, i)).collect();
        rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in rems.iter().cycle() {
            if left == 0 {
                break;
            }
            if weights[i] > 0 {
                parts[i] += 1;
                left -= 1;
            }
        }
    }
    parts
}

/// `amount * w / total` and its remainder, in 128 bits when the product fits, else 256.
fn share(amount: u128, w: u128, total: u128) -> (u128, u128) {
    match amount.checked_mul(w) {
        Some(p) if p <= u64::MAX as u128 && total <= u64::MAX as u128 => {
            // Both fit 64 bits: one hardware division instead of a 128-bit library call.
            let (p, t) = (p as u64, total as u64);
            ((p / t) as u128, (p % t) as u128)
        }
        Some(p) => {
            let q = p / total;
            (q, p - q * total)
        }
        None => {
            let p = alloy_primitives::U256::from(amount) * alloy_primitives::U256::from(w);
            let t = alloy_primitives::U256::from(total);
            (u128::try_from(p / t).expect("a part never exceeds the amount"), u128::try_from(p % t).expect("below total"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn split_known_answers() {
        assert_eq!(split_exact(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split_exact(100, &[50, 30, 20]), vec![50, 30, 20]);
        assert_eq!(split_exact(7, &[0, 5]), vec![0, 7]);
        assert_eq!(split_exact(7, &[0, 0]), vec![0, 0]);
    }

    /// The plain version: every share and remainder in 256 bits, remainders always sorted.
    fn split_reference(amount: u128, weights: &[u128]) -> Vec<u128> {
        use alloy_primitives::U256;
        let total: u128 = weights.iter().sum();
        if total == 0 {
            return vec![0; weights.len()];
        }
        let t = U256::from(total);
        let shares: Vec<(u128, u128)> = weights
            .iter()
            .map(|&w| {
                let p = U256::from(amount) * U256::from(w);
                (u128::try_from(p / t).unwrap(), u128::try_from(p % t).unwrap())
            })
            .collect();
        let mut parts: Vec<u128> = shares.iter().map(|s| s.0).collect();
        let mut left = amount - parts.iter().sum::<u128>();
        let mut order: Vec<usize> = (0..weights.len()).collect();
        order.sort_by(|&a, &b| shares[b].1.cmp(&shares[a].1).then(a.cmp(&b)));
        for &i in order.iter().cycle() {
            if left == 0 {
                break;
            }
            if weights[i] > 0 {
                parts[i] += 1;
                left -= 1;
            }
        }
        parts
    }

    proptest! {
        #[test]
        fn split_agrees_with_the_plain_version(amount in prop_oneof![0u128..1000, 0u128..1u128 << 64, 0u128..1u128 << 120], weights in proptest::collection::vec(prop_oneof![0u128..1000, 0u128..1u128 << 64, 0u128..1u128 << 100], 1..12)) {
            prop_assert_eq!(split_exact(amount, &weights), split_reference(amount, &weights));
            prop_assert_eq!(split_exact(weights.iter().sum(), &weights), split_reference(weights.iter().sum(), &weights));
        }

        #[test]
        fn split_is_exact_and_proportional(amount in 0u128..1u128 << 100, weights in proptest::collection::vec(0u128..1u128 << 90, 1..12)) {
            let parts = split_exact(amount, &weights);
            let total: u128 = weights.iter().sum();
            if total > 0 {
                prop_assert_eq!(parts.iter().sum::<u128>(), amount);
                for (p, w) in parts.iter().zip(&weights) {
                    let exact = amount as f64 * *w as f64 / total as f64;
                    prop_assert!((*p as f64 - exact).abs() <= 1.0 + exact * 1e-9);
                }
            }
        }
    }
}

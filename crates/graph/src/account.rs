//! Entities on account chains (EVM): the deposit-address heuristic (Victor, FC 2020).
//!
//! Exchanges give each customer a deposit address and sweep what arrives there into their hot
//! wallet. An address is taken for a deposit address of exchange E when:
//!
//! * everything it sends (gas fees aside) goes to addresses labelled as E's,
//! * it received from someone other than E, and each of its sends to E follows such a receipt
//!   within `window_blocks` blocks (forwarder contracts pass ETH on in the same transaction; EOA
//!   deposit addresses are swept later; the exchange's own gas top-ups do not count), and
//! * of every asset it sent to E it forwarded at least half of what it received from outside
//!   (a sweep passes on the deposit less its fee).
//!
//! Each detection keeps its evidence: the receipt and the forwarding transaction.
//! [`cluster_deposits`] turns the detections into entities: each deposit address joins the
//! exchange address it forwards to, in the same union-find and clusters file as UTXO chains.

use crate::cluster::{clusters_path, write_clusters, ClusterConfig, ClustersMeta, Evidence, Merge, RULE_DEPOSIT};
use crate::spill::SpillTo;
use crate::transfers::TransferIndex;
use crate::{Result, UnionFind};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tracehound_memory::{Scratch, StageMeter};

/// Clusters an account chain from the deposit addresses `found`: each joins the exchange address
/// it forwarded to (union-find over the transfer index's address ids, 4 bytes per address; the
/// cluster id is the smallest address id), with the first forwarding transaction as the evidence
/// of the merge. Writes `clusters.thc` next to the transfer index; every other address is a
/// cluster of its own.
pub fn cluster_deposits(data_dir: &Path, idx: &TransferIndex, found: &[DepositAddress]) -> Result<ClustersMeta> {
    let mut uf = UnionFind::new(idx.address_count());
    let scratch = Scratch::new(data_dir, "cluster").map_err(|e| crate::Error::io(&data_dir.join("scratch"), e))?;
    let to = SpillTo::new(scratch, StageMeter::start("cluster", 0));
    let mut merges = Evidence::new(None, &to);
    for d in found {
        let (Some(a), Some(b), Some(tx)) = (idx.address_id(&d.address), idx.address_id(&d.forwarded_to), idx.tx_id(&d.forwarded_in)) else { continue };
        if uf.union(a, b) {
            merges.push(Merge { a, b, tx, rule: RULE_DEPOSIT })?;
        }
    }
    let chain = idx.meta().chain.clone();
    write_clusters(&clusters_path(data_dir, &chain), &chain, idx, &ClusterConfig::default(), uf.roots(), merges, &[], None)
}

/// One value movement (a row of the `transfers` table), or a gas fee (`to` empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    /// Block number.
    pub block: u64,
    /// Block time (unix seconds).
    pub time: u64,
    /// Transaction index in the block.
    pub tx_index: u32,
    /// Position in the transaction (fees are -1: they sort first).
    pub position: i64,
    /// Transaction hash.
    pub tx: String,
    /// Sender.
    pub from: String,
    /// Receiver (empty for a fee).
    pub to: String,
    /// Asset: `ETH` (native) or the token contract.
    pub asset: String,
    /// Base units.
    pub amount: u128,
}

/// A deposit address found, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DepositAddress {
    /// The deposit address.
    pub address: String,
    /// The exchange (its label in the store).
    pub exchange: String,
    /// The exchange address it forwarded to.
    pub forwarded_to: String,
    /// A receipt from outside the exchange (tx hash).
    pub received_in: String,
    /// The first forwarding transaction.
    pub forwarded_in: String,
    /// Number of forwards.
    pub forwards: usize,
}

/// Finds deposit addresses of the exchanges in `exchange_of` (address → exchange name), over
/// `movements` in chain order.
pub fn deposit_addresses(movements: &[Movement], exchange_of: &HashMap<String, String>, window_blocks: u64) -> Vec<DepositAddress> {
    #[derive(Default)]
    struct Seen {
        last_receipt: Option<u64>,
        outside_receipt: Option<String>,
        exchange: Option<(String, String, String)>,
        forwards: usize,
        disqualified: bool,
        received: BTreeMap<String, u128>,
        forwarded: BTreeMap<String, u128>,
    }
    let mut seen: BTreeMap<&str, Seen> = BTreeMap::new();
    for m in movements {
        if m.to.is_empty() || m.amount == 0 {
            continue; // gas fees and empty calls say nothing
        }
        if !exchange_of.contains_key(&m.from) {
            let r = seen.entry(m.to.as_str()).or_default();
            r.last_receipt = Some(m.block);
            *r.received.entry(m.asset.clone()).or_default() = r.received.get(&m.asset).copied().unwrap_or(0).saturating_add(m.amount);
            if r.outside_receipt.is_none() {
                r.outside_receipt = Some(m.tx.clone());
            }
        }
        if exchange_of.contains_key(&m.from) {
            continue;
        }
        let s = seen.entry(m.from.as_str()).or_default();
        match exchange_of.get(&m.to) {
            Some(ex) => {
                let in_window = s.last_receipt.is_some_and(|b| m.block.saturating_sub(b) <= window_blocks);
                match &s.exchange {
                    Some((e, _, _)) if e != ex => s.disqualified = true,
                    Some(_) => {}
                    None => s.exchange = Some((ex.clone(), m.to.clone(), m.tx.clone())),
                }
                if !in_window {
                    s.disqualified = true;
                }
                s.forwards += 1;
                *s.forwarded.entry(m.asset.clone()).or_default() = s.forwarded.get(&m.asset).copied().unwrap_or(0).saturating_add(m.amount);
            }
            None => s.disqualified = true,
        }
    }
    seen.into_iter()
        .filter(|(_, s)| !s.disqualified && s.forwards > 0)
        .filter(|(_, s)| s.forwarded.iter().all(|(asset, f)| f.saturating_mul(2) >= s.received.get(asset).copied().unwrap_or(0)))
        .filter_map(|(a, s)| {
            let (exchange, forwarded_to, forwarded_in) = s.exchange?;
            Some(DepositAddress { address: a.to_string(), exchange, forwarded_to, received_in: s.outside_receipt?, forwarded_in, forwards: s.forwards })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(block: u64, tx: &str, from: &str, to: &str, amount: u128) -> Movement {
        Movement { block, time: block * 12, tx_index: 0, position: 0, tx: tx.into(), from: from.into(), to: to.into(), asset: "ETH".into(), amount }
    }

    #[test]
    fn forwarders_and_swept_addresses_join_their_exchange_others_do_not() {
        let ex: HashMap<String, String> = [("hot".to_string(), "Exchange".to_string()), ("hot2".to_string(), "Other".to_string())].into();
        let m = vec![
            mv(1, "a", "alice", "d1", 10),
            mv(1, "a", "d1", "hot", 10), // a forwarder: same transaction
            mv(2, "b", "bob", "d2", 5),
            mv(9, "c", "d2", "hot", 5), // swept 7 blocks later
            mv(3, "d", "carol", "late", 5),
            mv(500, "e", "late", "hot", 5), // outside the window
            mv(4, "f", "dave", "mixed", 5),
            mv(4, "g", "mixed", "hot", 2),
            mv(5, "h", "mixed", "erin", 3), // also pays someone else
            mv(6, "i", "frank", "two", 5),
            mv(6, "j", "two", "hot", 2),
            mv(7, "k", "two", "hot2", 3), // two exchanges
            mv(8, "l", "hot", "own", 5),
            mv(8, "m", "own", "hot", 5), // the exchange's own money only
            mv(10, "n", "gina", "saver", 100),
            mv(11, "o", "saver", "hot", 10), // keeps most of it: a customer paying in, not a deposit address
            mv(12, "p", "henry", "topped", 5),
            mv(300, "q", "hot", "topped", 1), // a gas top-up from the exchange does not reopen the window
            mv(301, "r", "topped", "hot", 5),
        ];
        let found = deposit_addresses(&m, &ex, 100);
        let names: Vec<&str> = found.iter().map(|d| d.address.as_str()).collect();
        assert_eq!(names, vec!["d1", "d2"]);
        assert_eq!((found[1].received_in.as_str(), found[1].forwarded_in.as_str(), found[1].exchange.as_str()), ("b", "c", "Exchange"));
    }
}

//! Taint tracing on an account chain (EVM), over the `transfers` table.
//!
//! Every (address, asset) is a pool. Movements are replayed in chain order (block, transaction,
//! position; a transaction's gas fee is charged before its transfers, as the EVM buys gas first):
//!
//! * Haircut: a pool sends the tainted share `tainted / balance` of every amount it sends, and
//!   pays that share of its gas fees.
//! * FIFO: a pool is a queue of lots in arrival order; a send takes the oldest lots first.
//! * Poison: once a pool holds any taint, everything it sends is tainted in full.
//!
//! Balances come from the transfers themselves. Funds the data does not show arriving (genesis
//! allocations, blocks before the ingested range) are treated as clean and as the oldest lot.
//!
//! Taint is kept per *flow*: one flow per seed asset, plus one flow per (flow, asset) a swap turns
//! it into. A transfer into an address labelled as a swap (category `defi_dex`) is accounted as
//! reaching that swap, and what the swap pays out in the same transaction is tainted in the same
//! proportion as what it took in (tainted in / total in), as a new flow "`<asset> from swap`".
//! Each flow has its own accounting, which sums exactly to its seed amount under haircut and FIFO.

use crate::{Accounting, AddressAmount, Direction, Edge, Error, Held, Limits, Model, Node, Result, SeedAmount, Sink, SinkAmount, Trace};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

pub use tracehound_graph::account::Movement;

mod backward;

/// Where an account trace starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seed {
    /// Everything this address receives in the time window (every asset).
    Address(String),
    /// Everything this address sends in the time window (every asset; gas fees aside): how a
    /// drained victim's loss is followed forward. Forward traces only.
    Sent(String),
    /// Everything the transfers of this transaction move to their receivers (the senders are the
    /// victims); its gas fee is not part of it.
    Transaction(String),
}

/// Where a transaction's gas fee goes (EIP-1559): the base fee is burned, the rest (the priority
/// fee, or the whole fee before London) is paid to the block's fee recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeePayout {
    /// The block's fee recipient (`blocks.miner`).
    pub recipient: String,
    /// Base units burned (gas used × base fee per gas; 0 before London).
    pub burned: u128,
}

/// Turns every gas fee of `movements` (a movement with an empty `to`) whose transaction is in
/// `payouts` into what the chain did with it: the burned part stays a fee (accounted as "fees"),
/// the rest becomes a movement to the block's fee recipient, so taint follows it (`--fees
/// follow`). Order is kept: both parts take the fee's place.
pub fn route_fees(movements: &[Movement], payouts: &HashMap<String, FeePayout>) -> Vec<Movement> {
    let mut out = Vec::with_capacity(movements.len() + movements.len() / 4);
    for m in movements {
        match (m.to.is_empty()).then(|| payouts.get(&m.tx)).flatten() {
            Some(p) => {
                let burned = p.burned.min(m.amount);
                if burned > 0 {
                    out.push(Movement { amount: burned, ..m.clone() });
                }
                if m.amount > burned {
                    out.push(Movement { to: p.recipient.clone(), amount: m.amount - burned, ..m.clone() });
                }
            }
            None => out.push(m.clone()),
        }
    }
    out
}

/// Labelled addresses: where a trace stops, and swaps it passes through.
#[derive(Debug, Clone, Default)]
pub struct Services {
    /// Address → sink (exchange, mixer, bridge, …): the trace stops there.
    pub sinks: HashMap<String, Sink>,
    /// Address → swap name: the trace continues in what it pays out in the same transaction.
    pub swaps: HashMap<String, String>,
}

#[derive(Debug, Clone, Default)]
struct Pool {
    balance: u128,
    /// Tainted amount per flow.
    taint: BTreeMap<u16, u128>,
    /// FIFO lots: (amount, flow or clean); only kept once the pool is tainted.
    lots: VecDeque<(u128, Option<u16>)>,
    tracked: bool,
    hop: u32,
}

/// What a swap took in within one transaction, per asset: (tainted per flow, total).
type SwapIn = BTreeMap<String, (BTreeMap<u16, u128>, u128)>;

/// (hop, tx, from, to) of an edge; its value is (amount, block, time).
type EdgeKey = (u32, String, String, String);

struct Flow {
    name: String,
    asset: String,
    seed_amount: u128,
    /// What each seed contributed, by [`seed_name`].
    seed_by: BTreeMap<String, u128>,
    acc: Accounting,
    sinks: BTreeMap<Sink, BTreeMap<String, u128>>,
    edges: BTreeMap<EdgeKey, (u128, u64, u64)>,
    seed_addresses: BTreeSet<String>,
}

/// Traces `seeds` through `movements` (in chain order) and returns one [`Trace`] per flow.
pub fn trace(
    chain: &str,
    movements: &[Movement],
    seeds: &[Seed],
    services: &Services,
    model: Model,
    direction: Direction,
    limits: &Limits,
) -> Result<Vec<Trace>> {
    if direction == Direction::Backward {
        return backward::trace(chain, movements, seeds, services, model, limits);
    }
    let seed_addrs: HashSet<&str> = seeds.iter().filter_map(|s| if let Seed::Address(a) = s { Some(a.as_str()) } else { None }).collect();
    let seed_txs: HashSet<&str> = seeds.iter().filter_map(|s| if let Seed::Transaction(t) = s { Some(t.as_str()) } else { None }).collect();
    let seed_sent: HashSet<&str> = seeds.iter().filter_map(|s| if let Seed::Sent(a) = s { Some(a.as_str()) } else { None }).collect();
    let mut pools: HashMap<(String, String), Pool> = HashMap::new();
    let mut flows: Vec<Flow> = vec![];
    let mut flow_of: HashMap<(Option<u16>, String), u16> = HashMap::new();
    // Per (swap address, tx): taint taken in per flow, and the total taken in.
    let mut swap_in: HashMap<(String, String), SwapIn> = HashMap::new();
    let mut tainted_pools = 0usize;

    for m in chain_order(movements, services).into_iter().map(|i| &movements[i]) {
        if limits.until_time.is_some_and(|u| m.time > u) || limits.until_height.is_some_and(|h| m.block > h) {
            break;
        }
        let in_window = limits.since_time.is_none_or(|s| m.time >= s);
        // What the sender gives up: pieces of (amount, flow) taken from its pool.
        let key_from = (m.from.clone(), m.asset.clone());
        let sender = pools.entry(key_from.clone()).or_default();
        if sender.balance < m.amount {
            // Funds the data does not show arriving: clean, and older than anything known.
            let missing = m.amount - sender.balance;
            sender.balance += missing;
            if sender.tracked && model == Model::Fifo {
                sender.lots.push_front((missing, None));
            }
        }
        let pieces = take(sender, m.amount, model);
        let sender_hop = sender.hop;
        let from_is_swap = services.swaps.contains_key(&m.from);
        // A seed that sends: the part of the movement not already tainted leaves it as loot.
        let mut sent_seed = None;
        if in_window && !m.to.is_empty() && seed_sent.contains(m.from.as_str()) {
            let clean = m.amount.saturating_sub(pieces.iter().map(|x| x.1).sum::<u128>());
            if clean > 0 {
                let f = new_flow(&mut flows, &mut flow_of, None, &m.asset, FROM_SWAP);
                let flow = &mut flows[f as usize];
                flow.seed_amount += clean;
                flow.seed_addresses.insert(m.from.clone());
                *flow.seed_by.entry(seed_name(&Seed::Sent(m.from.clone()))).or_default() += clean;
                sent_seed = Some((f, clean, 1));
            }
        }

        if m.to.is_empty() {
            // A gas fee.
            for (f, a) in pieces {
                flows[f as usize].acc.fees += a;
            }
            continue;
        }
        let mut incoming: Vec<(u16, u128, u32)> = pieces.into_iter().map(|(f, a)| (f, a, sender_hop + 1)).collect();
        incoming.extend(sent_seed);
        // Seeds: what a seed address receives in the window, or what a seed transaction moves.
        let by_tx = seed_txs.contains(m.tx.as_str()) && m.position >= 0;
        if in_window && (seed_addrs.contains(m.to.as_str()) || by_tx) {
            let clean = m.amount.saturating_sub(incoming.iter().map(|x| x.1).sum::<u128>());
            if clean > 0 {
                let f = new_flow(&mut flows, &mut flow_of, None, &m.asset, FROM_SWAP);
                let flow = &mut flows[f as usize];
                flow.seed_amount += clean;
                flow.seed_addresses.insert(m.to.clone());
                let seed = if by_tx { Seed::Transaction(m.tx.clone()) } else { Seed::Address(m.to.clone()) };
                *flow.seed_by.entry(seed_name(&seed)).or_default() += clean;
                incoming.push((f, clean, 0));
            }
        }
        // Swap payouts: tainted in the proportion the swap took in within this transaction.
        if from_is_swap && incoming.is_empty() {
            if let Some(by_asset) = swap_in.get(&(m.from.clone(), m.tx.clone())) {
                // Each asset taken in weighs equally; within an asset, by its tainted share. One
                // exact split keeps the tainted parts within the amount paid out.
                let mut weights: BTreeMap<u16, u128> = BTreeMap::new();
                let n_assets = by_asset.len() as u128;
                let scale: u128 = 1 << 64;
                let mut clean_weight = 0u128;
                for (taken, total) in by_asset.values() {
                    let tainted: u128 = taken.values().sum();
                    for (f, a) in taken {
                        *weights.entry(*f).or_default() += crate::split_exact(scale, &[*a, total - a.min(total)])[0] / n_assets;
                    }
                    clean_weight += crate::split_exact(scale, &[tainted.min(*total), total - tainted.min(*total)])[1] / n_assets;
                }
                let flows_in: Vec<u16> = weights.keys().copied().collect();
                let mut w: Vec<u128> = weights.values().copied().collect();
                w.push(clean_weight);
                let parts = crate::split_exact(m.amount, &w);
                for (k, f) in flows_in.into_iter().enumerate() {
                    let derived = parts[k];
                    if derived > 0 {
                        let d = new_flow(&mut flows, &mut flow_of, Some(f), &m.asset, FROM_SWAP);
                        flows[d as usize].seed_amount += derived;
                        flows[d as usize].seed_addresses.insert(m.from.clone());
                        incoming.push((d, derived, 1));
                    }
                }
            }
        }
        // The receiver.
        if let Some(sink) = services.sinks.get(&m.to) {
            for &(f, a, hop) in &incoming {
                *flows[f as usize].sinks.entry(sink.clone()).or_default().entry(m.to.clone()).or_default() += a;
                edge(&mut flows[f as usize], hop, m, a);
            }
            credit(&mut pools, m, &[], model);
            continue;
        }
        if services.swaps.contains_key(&m.to) {
            let e = swap_in.entry((m.to.clone(), m.tx.clone())).or_default().entry(m.asset.clone()).or_default();
            e.1 += m.amount;
            for &(f, a, hop) in &incoming {
                *e.0.entry(f).or_default() += a;
                let name = services.swaps[&m.to].clone();
                *flows[f as usize].sinks.entry(Sink { category: "swap".into(), name }).or_default().entry(m.to.clone()).or_default() += a;
                edge(&mut flows[f as usize], hop, m, a);
            }
            credit(&mut pools, m, &[], model);
            continue;
        }
        let mut kept = vec![];
        for (f, a, hop) in incoming {
            let flow = &mut flows[f as usize];
            if hop > 0 && a < limits.min_amount {
                flow.acc.below_threshold += a;
            } else if hop > limits.max_hops {
                flow.acc.hop_limit += a;
            } else {
                if hop > 0 {
                    edge(flow, hop, m, a);
                }
                kept.push((f, a, hop));
            }
        }
        let receiver_tracked = pools.get(&(m.to.clone(), m.asset.clone())).is_some_and(|p| p.tracked);
        if !kept.is_empty() && !receiver_tracked {
            if tainted_pools >= limits.max_nodes {
                for (f, a, _) in kept.drain(..) {
                    flows[f as usize].acc.node_limit += a;
                }
            } else {
                tainted_pools += 1;
            }
        }
        credit(&mut pools, m, &kept, model);
    }

    // Still held: every tainted pool.
    let mut held: Vec<(u16, Held)> = vec![];
    for ((addr, asset), p) in &pools {
        for (&f, &t) in &p.taint {
            // Poison never lowers a pool's taint: what it holds is at most its balance.
            let t = if model == Model::Poison { t.min(p.balance) } else { t };
            if t > 0 {
                held.push((f, Held { address: addr.clone(), output: None, asset: asset.clone(), value: p.balance, tainted: t }));
            }
        }
    }
    finish(chain, flows, held, services, model, direction, limits, seeds)
}

/// Turns the flows of a trace into one [`Trace`] each; `held` pairs a flow with a still-held balance.
#[allow(clippy::too_many_arguments)]
fn finish(
    chain: &str,
    flows: Vec<Flow>,
    mut held: Vec<(u16, Held)>,
    services: &Services,
    model: Model,
    direction: Direction,
    limits: &Limits,
    seeds: &[Seed],
) -> Result<Vec<Trace>> {
    held.sort_by(|a, b| (a.0, std::cmp::Reverse(a.1.tainted), &a.1.address).cmp(&(b.0, std::cmp::Reverse(b.1.tainted), &b.1.address)));
    let mut out = vec![];
    for (i, flow) in flows.into_iter().enumerate() {
        let mut acc = flow.acc;
        for (sink, by_addr) in flow.sinks {
            let mut addresses: Vec<AddressAmount> = by_addr.into_iter().map(|(address, amount)| AddressAmount { address, amount }).collect();
            addresses.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.address.cmp(&b.address)));
            acc.sinks.push(SinkAmount { sink, amount: addresses.iter().map(|x| x.amount).sum(), addresses });
        }
        acc.sinks.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.sink.cmp(&b.sink)));
        acc.held = held.iter().filter(|h| h.0 as usize == i).map(|h| h.1.clone()).collect();
        acc.held_total = acc.held.iter().map(|h| h.tainted).sum();
        let edges: Vec<Edge> = flow
            .edges
            .into_iter()
            .map(|((hop, tx, from, to), (amount, height, time))| Edge { from, to, asset: flow.asset.clone(), amount, hop, tx, height, time })
            .collect();
        let mut names: BTreeSet<String> = edges.iter().flat_map(|e| [e.from.clone(), e.to.clone()]).collect();
        names.extend(flow.seed_addresses.iter().cloned());
        let nodes = names
            .into_iter()
            .map(|a| {
                let sink = services.sinks.get(&a).cloned().or_else(|| services.swaps.get(&a).map(|n| Sink { category: "swap".into(), name: n.clone() }));
                Node { seed: flow.seed_addresses.contains(&a), label: sink.as_ref().map(|s| s.name.clone()), category: sink.map(|s| s.category), address: a }
            })
            .collect();
        out.push(Trace {
            chain: chain.into(),
            model,
            direction,
            unit: format!("{} base units", flow.asset),
            asset: flow.asset.clone(),
            flow: Some(flow.name),
            seeds: flow.seed_addresses.into_iter().collect(),
            seed_amount: flow.seed_amount,
            seed_amounts: flow.seed_by.into_iter().map(|(seed, amount)| SeedAmount { seed, amount }).collect(),
            accounting: acc,
            nodes,
            edges,
            limits: limits.clone(),
        });
    }
    if out.is_empty() {
        let what = if direction == Direction::Forward { "received nothing in the time window" } else { "received nothing in the time window to trace back" };
        return Err(Error::Seed { seed: format!("{seeds:?}"), reason: what.into() });
    }
    Ok(out)
}

/// How a seed is named in [`Trace::seed_amounts`].
pub fn seed_name(seed: &Seed) -> String {
    match seed {
        Seed::Address(a) => format!("{a} (received)"),
        Seed::Sent(a) => format!("{a} (sent)"),
        Seed::Transaction(t) => t.clone(),
    }
}

/// How a forward flow derived by a swap is named: "`<asset>` from swap of `<flow>`".
const FROM_SWAP: &str = "from swap of";

/// The flow of `asset` (a seed asset when `parent` is `None`, else what a swap turned flow
/// `parent` into, named "`<asset> <derived> <parent>`"), created on first use.
fn new_flow(flows: &mut Vec<Flow>, flow_of: &mut HashMap<(Option<u16>, String), u16>, parent: Option<u16>, asset: &str, derived: &str) -> u16 {
    *flow_of.entry((parent, asset.to_string())).or_insert_with(|| {
        let name = match parent {
            None => asset.to_string(),
            Some(p) => format!("{asset} {derived} {}", flows[p as usize].name),
        };
        flows.push(Flow {
            name,
            asset: asset.to_string(),
            seed_amount: 0,
            seed_by: BTreeMap::new(),
            acc: Accounting::default(),
            sinks: BTreeMap::new(),
            edges: BTreeMap::new(),
            seed_addresses: BTreeSet::new(),
        });
        (flows.len() - 1) as u16
    })
}

/// Indices of `movements` in the order they are replayed: chain order, and within a transaction
/// what a swap pays out after everything else (token events follow internal transfers in
/// `position` order, but a swap takes before it pays).
fn chain_order(movements: &[Movement], services: &Services) -> Vec<usize> {
    let mut order: Vec<usize> = (0..movements.len()).collect();
    order.sort_by_key(|&i| {
        let m = &movements[i];
        (m.block, m.tx_index, services.swaps.contains_key(&m.from), m.position, i)
    });
    order
}

fn edge(flow: &mut Flow, hop: u32, m: &Movement, a: u128) {
    let e = flow.edges.entry((hop, m.tx.clone(), m.from.clone(), m.to.clone())).or_insert((0, m.block, m.time));
    e.0 += a;
}

/// Takes `amount` from the pool and returns the tainted pieces it carries, per flow.
fn take(p: &mut Pool, amount: u128, model: Model) -> Vec<(u16, u128)> {
    let mut pieces: BTreeMap<u16, u128> = BTreeMap::new();
    if p.tracked {
        match model {
            Model::Haircut => {
                // One exact split of the amount over the flows and the clean rest of the pool.
                let before = p.balance;
                let tainted: u128 = p.taint.values().sum();
                if amount >= before {
                    for (f, t) in p.taint.iter_mut() {
                        if *t > 0 {
                            pieces.insert(*f, std::mem::take(t));
                        }
                    }
                } else {
                    let mut w: Vec<u128> = p.taint.values().copied().collect();
                    w.push(before - tainted.min(before));
                    let parts = crate::split_exact(amount, &w);
                    for ((f, t), part) in p.taint.iter_mut().zip(parts) {
                        let share = part.min(*t);
                        *t -= share;
                        if share > 0 {
                            pieces.insert(*f, share);
                        }
                    }
                }
            }
            Model::Fifo => {
                let mut left = amount;
                while left > 0 {
                    let Some(front) = p.lots.front_mut() else { break };
                    let a = front.0.min(left);
                    front.0 -= a;
                    left -= a;
                    if let Some(f) = front.1 {
                        *pieces.entry(f).or_default() += a;
                        *p.taint.get_mut(&f).expect("lot flow") -= a;
                    }
                    if front.0 == 0 {
                        p.lots.pop_front();
                    }
                }
            }
            Model::Poison => {
                // Everything sent by a tainted pool is tainted, attributed to its largest flow.
                if let Some((&f, _)) = p.taint.iter().max_by_key(|x| *x.1) {
                    pieces.insert(f, amount);
                }
            }
        }
    }
    p.balance -= amount;
    pieces.into_iter().collect()
}

/// Credits the receiver of `m` with `m.amount`, of which `tainted` pieces (flow, amount, hop).
fn credit(pools: &mut HashMap<(String, String), Pool>, m: &Movement, tainted: &[(u16, u128, u32)], model: Model) {
    let p = pools.entry((m.to.clone(), m.asset.clone())).or_default();
    let tainted_sum: u128 = tainted.iter().map(|x| x.1).sum();
    if tainted_sum > 0 && !p.tracked {
        p.tracked = true;
        p.hop = u32::MAX;
        if p.balance > 0 && model == Model::Fifo {
            p.lots.push_back((p.balance, None));
        }
    }
    // Spam tokens mint amounts near 2^128: saturate rather than overflow.
    p.balance = p.balance.saturating_add(m.amount);
    if p.tracked {
        let clean = m.amount - tainted_sum.min(m.amount);
        if clean > 0 && model == Model::Fifo {
            p.lots.push_back((clean, None));
        }
        for &(f, a, hop) in tainted {
            if model == Model::Fifo {
                p.lots.push_back((a, Some(f)));
            }
            *p.taint.entry(f).or_default() += a;
            p.hop = p.hop.min(hop);
        }
    }
}

//! Backward taint tracing on an account chain: where did what a seed received come from?
//!
//! A first pass replays every movement forward to learn each pool's balance after every credit
//! (haircut) and each movement's place in the sender's and receiver's queues (FIFO). Funds a pool
//! sends without the data showing them arrive (genesis allocations, block rewards, blocks before
//! the ingested range) become a *pre-data credit* just before the send.
//!
//! The second pass walks the movements in reverse, carrying a *demand* per pool: the part of the
//! pool's balance at that moment whose origin is sought.
//!
//! * Haircut: a credit of `a` that left the pool at balance `B` holds the share `a / B` of
//!   everything demanded from the pool at that moment, which moves to the sender.
//! * FIFO: a demand is a set of unit ranges of the pool's arrivals; the k-th unit a pool sends is
//!   the k-th it received, so a credit takes the demanded units it brought and hands the sender
//!   the same units of its sends.
//! * Poison: every pool that paid a tainted pool before the moment of the taint is tainted, for
//!   the full amount it paid.
//!
//! A demand that reaches a labelled service (exchange, mixer, bridge, …) stops there: the funds
//! came from it. One that reaches a swap continues, in proportion, into what the swap took in
//! within the same transaction (a new flow per asset). What pre-data credits supplied is
//! `unresolved`. Under haircut and FIFO the accounting sums exactly to the seed amount.

use super::{chain_order, edge, finish, new_flow, Flow, Movement, Seed, Services};
use crate::{Direction, Error, Limits, Model, Result, Sink, Trace};

use std::collections::{BTreeMap, HashMap, HashSet};

/// How a backward flow through a swap is named: "`<asset>` into swap for `<flow>`".
const INTO_SWAP: &str = "into swap for";

/// What the forward pass learned of one movement.
#[derive(Debug, Clone, Copy, Default)]
struct Step {
    /// Funds the sender lacked, credited to it just before the send (pre-data).
    missing: u128,
    /// The receiver's balance just after this credit.
    receiver_balance: u128,
    /// FIFO: position of the pre-data credit in the sender's arrivals.
    missing_in: u128,
    /// FIFO: position of this send in the sender's sends (= in its arrivals).
    sent_at: u128,
    /// FIFO: position of this credit in the receiver's arrivals.
    received_at: u128,
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    balance: u128,
    received: u128,
    sent: u128,
}

/// Demand on one pool.
#[derive(Debug, Default)]
struct Demand {
    /// Haircut and poison: amount demanded per flow.
    amount: BTreeMap<u16, u128>,
    /// FIFO: demanded arrival ranges, start → (end, flows); the ranges are disjoint, and a unit
    /// sought more than once (coins that came back to a seed) lists its flow once per time.
    ranges: Ranges,
    hop: u32,
}

impl Demand {
    fn is_empty(&self) -> bool {
        self.amount.values().all(|&a| a == 0) && self.ranges.is_empty()
    }
}

/// A piece of demand handed to a sender: flow, amount and, under FIFO, the sender's ranges.
struct Piece {
    flow: u16,
    amount: u128,
    ranges: Vec<(u128, u128)>,
}

/// Traces `seeds` backward through `movements` (in chain order): one [`Trace`] per flow.
pub(super) fn trace(chain: &str, movements: &[Movement], seeds: &[Seed], services: &Services, model: Model, limits: &Limits) -> Result<Vec<Trace>> {
    let order: Vec<usize> = chain_order(movements, services)
        .into_iter()
        .filter(|&i| {
            let m = &movements[i];
            !(limits.until_time.is_some_and(|u| m.time > u) || limits.until_height.is_some_and(|h| m.block > h))
        })
        .collect();

    // Forward pass.
    let mut steps = vec![Step::default(); movements.len()];
    let mut totals: HashMap<(&str, &str), Totals> = HashMap::new();
    for &i in &order {
        let m = &movements[i];
        let s = &mut steps[i];
        let sender = totals.entry((m.from.as_str(), m.asset.as_str())).or_default();
        if sender.balance < m.amount {
            s.missing = m.amount - sender.balance;
            s.missing_in = sender.received;
            sender.received = sender.received.saturating_add(s.missing);
            sender.balance = m.amount;
        }
        s.sent_at = sender.sent;
        sender.sent = sender.sent.saturating_add(m.amount);
        sender.balance -= m.amount;
        if m.to.is_empty() {
            continue;
        }
        let receiver = totals.entry((m.to.as_str(), m.asset.as_str())).or_default();
        s.received_at = receiver.received;
        receiver.received = receiver.received.saturating_add(m.amount);
        receiver.balance = receiver.balance.saturating_add(m.amount);
        s.receiver_balance = receiver.balance;
    }

    // What each swap took in, per transaction: the movements into it (before its payouts).
    let mut position = vec![usize::MAX; movements.len()];
    for (k, &i) in order.iter().enumerate() {
        position[i] = k;
    }
    let mut swap_inputs: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    let mut swap_paid: HashMap<(&str, &str, &str), u128> = HashMap::new();
    for &i in &order {
        let m = &movements[i];
        if services.swaps.contains_key(&m.to) {
            swap_inputs.entry((m.to.as_str(), m.tx.as_str())).or_default().push(i);
        }
        if services.swaps.contains_key(&m.from) && !m.to.is_empty() {
            let paid = swap_paid.entry((m.from.as_str(), m.tx.as_str(), m.asset.as_str())).or_default();
            *paid = paid.saturating_add(m.amount);
        }
    }

    if let Some(Seed::Sent(a)) = seeds.iter().find(|s| matches!(s, Seed::Sent(_))) {
        return Err(Error::Seed {
            seed: a.clone(),
            reason: "a backward trace starts from what an address received (seed side `received`), not from what it sent".into(),
        });
    }
    let seed_addrs: HashSet<&str> = seeds.iter().filter_map(|s| if let Seed::Address(a) = s { Some(a.as_str()) } else { None }).collect();
    let seed_txs: HashSet<&str> = seeds.iter().filter_map(|s| if let Seed::Transaction(t) = s { Some(t.as_str()) } else { None }).collect();
    let mut flows: Vec<Flow> = vec![];
    let mut flow_of: HashMap<(Option<u16>, String), u16> = HashMap::new();
    let mut demand: HashMap<(String, String), Demand> = HashMap::new();
    // Swap inputs owed a share of a payout, found while passing the payout: movement → pieces.
    let mut owed: HashMap<usize, Vec<(u16, u128, u32)>> = HashMap::new();
    let mut pools_reached = 0usize;

    for &i in order.iter().rev() {
        let m = &movements[i];
        let step = steps[i];
        let mut pieces: Vec<(Piece, u32)> = vec![];
        if !m.to.is_empty() {
            let in_window = limits.since_time.is_none_or(|s| m.time >= s);
            if in_window && (seed_addrs.contains(m.to.as_str()) || (seed_txs.contains(m.tx.as_str()) && m.position >= 0)) {
                // A seed: everything this credit brought is sought.
                let f = new_flow(&mut flows, &mut flow_of, None, &m.asset, INTO_SWAP);
                flows[f as usize].seed_amount = flows[f as usize].seed_amount.saturating_add(m.amount);
                flows[f as usize].seed_addresses.insert(m.to.clone());
                let seed = if seed_addrs.contains(m.to.as_str()) { Seed::Address(m.to.clone()) } else { Seed::Transaction(m.tx.clone()) };
                *flows[f as usize].seed_by.entry(super::seed_name(&seed)).or_default() += m.amount;
                pieces.push((Piece { flow: f, amount: m.amount, ranges: vec![(step.sent_at, step.sent_at.saturating_add(m.amount))] }, 1));
            }
            if let Some(d) = demand.get_mut(&(m.to.clone(), m.asset.clone())) {
                let hop = d.hop.saturating_add(1);
                for mut p in take(d, m.amount, &step, model) {
                    // The same units of the sender's sends.
                    for r in p.ranges.iter_mut() {
                        *r = (step.sent_at.saturating_add(r.0), step.sent_at.saturating_add(r.1));
                    }
                    pieces.push((p, hop));
                }
            }
            if let Some(list) = owed.remove(&i) {
                // This movement paid a swap whose payout is sought.
                // Each owed share takes the next units of this send, so FIFO ranges never overlap.
                let mut offset = step.sent_at;
                for (flow, amount, hop) in list {
                    let end = offset.saturating_add(amount);
                    pieces.push((Piece { flow, amount, ranges: vec![(offset, end)] }, hop));
                    offset = end;
                }
            }
        }
        // The sender: where the demand goes.
        for (piece, hop) in pieces {
            if piece.amount == 0 {
                continue;
            }
            let flow = &mut flows[piece.flow as usize];
            if let Some(sink) = services.sinks.get(&m.from) {
                *flow.sinks.entry(sink.clone()).or_default().entry(m.from.clone()).or_default() += piece.amount;
                edge(flow, hop, m, piece.amount);
                continue;
            }
            if let Some(name) = services.swaps.get(&m.from) {
                *flow.sinks.entry(Sink { category: "swap".into(), name: name.clone() }).or_default().entry(m.from.clone()).or_default() += piece.amount;
                edge(flow, hop, m, piece.amount);
                let paid = swap_paid.get(&(m.from.as_str(), m.tx.as_str(), m.asset.as_str())).copied().unwrap_or(0);
                let mut inputs = swap_inputs.get(&(m.from.as_str(), m.tx.as_str())).cloned().unwrap_or_default();
                inputs.retain(|&j| position[j] < position[i]);
                if inputs.is_empty() || paid == 0 {
                    // Paid from the swap's own pool: the swap is where it came from.
                    continue;
                }
                // The share `amount / paid` of the payout came from that share of every input.
                for j in inputs {
                    let input = &movements[j];
                    let share = crate::split_exact(input.amount, &[piece.amount, paid - piece.amount.min(paid)])[0];
                    if share > 0 {
                        let d = new_flow(&mut flows, &mut flow_of, Some(piece.flow), &input.asset, INTO_SWAP);
                        flows[d as usize].seed_amount += share;
                        flows[d as usize].seed_addresses.insert(m.from.clone());
                        owed.entry(j).or_default().push((d, share, hop + 1));
                    }
                }
                continue;
            }
            if piece.amount < limits.min_amount {
                flow.acc.below_threshold += piece.amount;
                continue;
            }
            if hop > limits.max_hops {
                flow.acc.hop_limit += piece.amount;
                continue;
            }
            let key = (m.from.clone(), m.asset.clone());
            if demand.get(&key).is_none_or(|d| d.is_empty()) {
                if pools_reached >= limits.max_nodes {
                    flow.acc.node_limit += piece.amount;
                    continue;
                }
                pools_reached += 1;
            }
            edge(flow, hop, m, piece.amount);
            let d = demand.entry(key).or_insert_with(|| Demand { hop: u32::MAX, ..Demand::default() });
            d.hop = d.hop.min(hop);
            match model {
                Model::Fifo => {
                    for (a, b) in piece.ranges {
                        add_range(&mut d.ranges, a, b, piece.flow);
                    }
                }
                _ => *d.amount.entry(piece.flow).or_default() += piece.amount,
            }
        }
        // The sender's pre-data credit, just before its send.
        if step.missing > 0 {
            if let Some(d) = demand.get_mut(&(m.from.clone(), m.asset.clone())) {
                let pre = Step { receiver_balance: m.amount, received_at: step.missing_in, ..Step::default() };
                for p in take(d, step.missing, &pre, model) {
                    flows[p.flow as usize].acc.unresolved += p.amount;
                }
            }
        }
    }
    // Demand left at the start of the data: nothing shows where it came from.
    if model != Model::Poison {
        for d in demand.values() {
            for (&f, &a) in &d.amount {
                flows[f as usize].acc.unresolved += a;
            }
            for (&a, (b, fs)) in &d.ranges {
                for &f in fs {
                    flows[f as usize].acc.unresolved += b - a;
                }
            }
        }
    }
    finish(chain, flows, vec![], services, model, Direction::Backward, limits, seeds)
}

/// Takes from a pool's demand what a credit of `amount` brought (the credit is described by
/// `step`: the balance just after it, and its place in the pool's arrivals); returns it as pieces
/// for the sender, with the sender's ranges under FIFO.
fn take(d: &mut Demand, amount: u128, step: &Step, model: Model) -> Vec<Piece> {
    let mut out = vec![];
    match model {
        Model::Haircut => {
            let after = step.receiver_balance.max(amount);
            for (&f, a) in d.amount.iter_mut() {
                let share = crate::split_exact(*a, &[amount, after - amount])[0];
                *a -= share;
                if share > 0 {
                    out.push(Piece { flow: f, amount: share, ranges: vec![] });
                }
            }
        }
        Model::Poison => {
            // A tainted pool taints every payer in full; attributed to its largest flow.
            if let Some((&f, _)) = d.amount.iter().filter(|x| *x.1 > 0).max_by_key(|x| *x.1) {
                out.push(Piece { flow: f, amount, ranges: vec![] });
            }
        }
        Model::Fifo => {
            let (lo, hi) = (step.received_at, step.received_at.saturating_add(amount));
            split_at(&mut d.ranges, lo);
            split_at(&mut d.ranges, hi);
            let hits: Vec<u128> = d.ranges.range(lo..hi).map(|(&s, _)| s).collect();
            let mut by_flow: BTreeMap<u16, Piece> = BTreeMap::new();
            for s in hits {
                let (e, fs) = d.ranges.remove(&s).expect("range present");
                for f in fs {
                    // Offsets into this credit: the caller maps them onto the sender's sends.
                    let p = by_flow.entry(f).or_insert_with(|| Piece { flow: f, amount: 0, ranges: vec![] });
                    p.amount += e - s;
                    p.ranges.push((s - lo, e - lo));
                }
            }
            out.extend(by_flow.into_values());
        }
    }
    out
}

/// Demanded FIFO ranges of a pool's arrivals: start → (end, flows), disjoint.
type Ranges = BTreeMap<u128, (u128, Vec<u16>)>;

/// Splits the range that contains `x` (if any) into two at `x`.
fn split_at(ranges: &mut Ranges, x: u128) {
    if let Some((&s, (e, fs))) = ranges.range(..x).next_back() {
        if *e > x {
            let (e, fs) = (*e, fs.clone());
            ranges.insert(s, (x, fs.clone()));
            ranges.insert(x, (e, fs));
        }
    }
}

/// Adds the units `a..b` for `flow`: once more where they are already sought.
fn add_range(ranges: &mut Ranges, a: u128, b: u128, flow: u16) {
    if a >= b {
        return;
    }
    split_at(ranges, a);
    split_at(ranges, b);
    let inside: Vec<(u128, u128)> = ranges.range(a..b).map(|(&s, (e, _))| (s, *e)).collect();
    let mut at = a;
    for (s, e) in inside {
        if at < s {
            ranges.insert(at, (s, vec![flow]));
        }
        ranges.get_mut(&s).expect("range present").1.push(flow);
        at = e;
    }
    if at < b {
        ranges.insert(at, (b, vec![flow]));
    }
}

//! Taint tracing on a UTXO chain, over the arrays of the graph index.
//!
//! Taint moves hop by hop: a tainted output is spent by a transaction, and the transaction's model
//! decides which of its outputs carry the taint on.
//!
//! * Haircut: the tainted amount entering a transaction is split over its outputs and its fee in
//!   proportion to their values, in integers that sum exactly ([`crate::split_exact`]).
//! * FIFO: a transaction lays its inputs end to end (in input order) and its outputs end to end;
//!   the n-th satoshi in is the n-th satoshi out, and the fee is paid by the last satoshis in.
//!   Taint is kept as exact satoshi ranges inside each output, so FIFO is exact too.
//! * Poison: every output of a transaction with a tainted input is tainted in full; each
//!   transaction is followed once.
//!
//! Backward traces run the same rules the other way: the seed output's satoshis come from the
//! inputs of its transaction (haircut: in proportion to input values; FIFO: by position).

use crate::{split_exact, Accounting, AddressAmount, Direction, Edge, Error, Fees, Held, Limits, Model, Node, Result, Sink, SinkAmount, Trace};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, HashMap, HashSet};
use tracehound_graph::cluster::coinjoin_kind;
use tracehound_graph::index::{NONE, NO_ADDRESS};
use tracehound_graph::GraphIndex;

/// The arrays of a UTXO graph that tracing reads (the graph index's sections, or any other source
/// of the same shape, e.g. a random graph in a test).
#[derive(Clone, Copy)]
pub struct UtxoGraph<'a> {
    /// Block height per transaction.
    pub tx_height: &'a [u32],
    /// Block time per transaction.
    pub tx_time: &'a [u32],
    /// Input range of each transaction (`len = txs + 1`).
    pub tx_in_start: &'a [u64],
    /// Output range of each transaction (`len = txs + 1`).
    pub tx_out_start: &'a [u64],
    /// Value of each output.
    pub out_value: &'a [u64],
    /// Address id of each output ([`NO_ADDRESS`] for none).
    pub out_addr: &'a [u32],
    /// Spending input of each output ([`NONE`] if unspent).
    pub out_spender: &'a [u64],
    /// Spent output of each input ([`NONE`] for coinbase or unresolved).
    pub in_prevout: &'a [u64],
    /// Transaction of each input.
    pub in_tx: &'a [u32],
    /// Transaction of each output.
    pub out_tx: &'a [u32],
    /// Outputs paying each address (CSR start, `len = addresses + 1`); empty: scan `out_addr`.
    pub addr_out_start: &'a [u64],
    /// Outputs paying each address, in chain order (CSR values).
    pub addr_outs: &'a [u64],
}

impl<'a> UtxoGraph<'a> {
    /// The arrays of a graph index.
    pub fn of(idx: &'a GraphIndex) -> UtxoGraph<'a> {
        UtxoGraph {
            tx_height: idx.tx_height(),
            tx_time: idx.tx_time(),
            tx_in_start: idx.tx_in_start(),
            tx_out_start: idx.tx_out_start(),
            out_value: idx.out_value(),
            out_addr: idx.out_addr(),
            out_spender: idx.out_spender(),
            in_prevout: idx.in_prevout(),
            in_tx: idx.in_tx(),
            out_tx: idx.out_tx(),
            addr_out_start: idx.addr_out_start(),
            addr_outs: idx.addr_outs(),
        }
    }

    fn tx_of_input(&self, i: u64) -> u32 {
        self.in_tx[i as usize]
    }

    fn tx_of_output(&self, o: u64) -> u32 {
        self.out_tx[o as usize]
    }

    fn inputs(&self, t: u32) -> std::ops::Range<u64> {
        self.tx_in_start[t as usize]..self.tx_in_start[t as usize + 1]
    }

    fn outputs(&self, t: u32) -> std::ops::Range<u64> {
        self.tx_out_start[t as usize]..self.tx_out_start[t as usize + 1]
    }

    fn is_coinbase(&self, t: u32) -> bool {
        let r = self.inputs(t);
        r.end - r.start == 1 && self.in_prevout[r.start as usize] == NONE && self.first_tx_at(self.tx_height[t as usize]) == t
    }

    fn first_tx_at(&self, height: u32) -> u32 {
        self.tx_height.partition_point(|&h| h < height) as u32
    }
}

/// Labelled services where a trace stops, by address id.
#[derive(Debug, Clone, Default)]
pub struct Sinks {
    /// The services.
    pub list: Vec<Sink>,
    /// Address id → position in `list`.
    pub by_address: HashMap<u32, u32>,
    /// Stop at CoinJoin transactions, as sinks of category `coinjoin`.
    pub coinjoins: bool,
}

impl Sinks {
    /// Marks `addresses` as belonging to `sink` (an address already marked keeps its first sink).
    pub fn add(&mut self, sink: Sink, addresses: impl IntoIterator<Item = u32>) {
        let id = match self.list.iter().position(|s| *s == sink) {
            Some(i) => i as u32,
            None => {
                self.list.push(sink);
                (self.list.len() - 1) as u32
            }
        };
        for a in addresses {
            self.by_address.entry(a).or_insert(id);
        }
    }
}

/// Where a trace starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seed {
    /// One output, in full.
    Output(u64),
    /// Every output of a transaction.
    Transaction(u32),
    /// Every output paying an address (within the time window).
    Address(u32),
    /// Every output of an address spent within the time window: what it sent.
    AddressSent(u32),
}

/// Options of a UTXO trace.
#[derive(Debug, Clone)]
pub struct Options {
    /// Taint model.
    pub model: Model,
    /// Direction.
    pub direction: Direction,
    /// Fee handling.
    pub fees: Fees,
    /// Limits.
    pub limits: Limits,
}

/// Taint carried by one output: an amount (haircut, poison) or satoshi ranges inside the output
/// (FIFO), sorted and disjoint, relative to the output's first satoshi.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Taint {
    Amount(u64),
    Ranges(Vec<(u64, u64)>),
}

impl Taint {
    fn amount(&self) -> u64 {
        match self {
            Taint::Amount(a) => *a,
            Taint::Ranges(r) => r.iter().map(|(a, b)| b - a).sum(),
        }
    }

    fn merge(&mut self, other: Taint) {
        match (self, other) {
            (Taint::Amount(a), Taint::Amount(b)) => *a += b,
            (Taint::Ranges(a), Taint::Ranges(b)) => {
                a.extend(b);
                normalize(a);
            }
            _ => unreachable!("one model per trace"),
        }
    }
}

fn normalize(r: &mut Vec<(u64, u64)>) {
    r.retain(|(a, b)| b > a);
    r.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(r.len());
    for &(a, b) in r.iter() {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    *r = out;
}

/// `reached` sorted by output, the taint of an output reached more than once merged into one entry.
fn merge_by_output(mut reached: Vec<(u64, Taint)>) -> Vec<(u64, Taint)> {
    reached.sort_by_key(|r| r.0);
    let mut out: Vec<(u64, Taint)> = Vec::with_capacity(reached.len());
    for (o, taint) in reached {
        match out.last_mut() {
            Some(last) if last.0 == o => last.1.merge(taint),
            _ => out.push((o, taint)),
        }
    }
    out
}

/// Lowers each part of `parts` to its `room` and gives the units taken off to the first parts with
/// room left, in order; returns the units no part had room for.
fn fit_within(parts: &mut [u128], room: &[u128]) -> u128 {
    let mut excess = 0u128;
    for (p, &r) in parts.iter_mut().zip(room) {
        if *p > r {
            excess += *p - r;
            *p = r;
        }
    }
    for (p, &r) in parts.iter_mut().zip(room) {
        if excess == 0 {
            break;
        }
        let add = (r - *p).min(excess);
        *p += add;
        excess -= add;
    }
    excess
}

/// The parts of `ranges` (absolute positions) inside `[lo, hi)`, shifted to start at `lo`.
fn clip(ranges: &[(u64, u64)], lo: u64, hi: u64) -> Vec<(u64, u64)> {
    ranges.iter().filter(|&&(a, b)| a.max(lo) < b.min(hi)).map(|&(a, b)| (a.max(lo) - lo, b.min(hi) - lo)).collect()
}

/// Names of what the raw trace refers to, for [`Trace`]'s strings.
pub trait Names {
    /// Address string of an address id.
    fn address(&self, a: u32) -> String;
    /// Transaction hash of a transaction id.
    fn tx(&self, t: u32) -> String;
}

impl Names for GraphIndex {
    fn address(&self, a: u32) -> String {
        if a == NO_ADDRESS {
            "(no address)".into()
        } else {
            GraphIndex::address(self, a).to_string()
        }
    }
    fn tx(&self, t: u32) -> String {
        self.tx_hash(t)
    }
}

struct Run<'a> {
    g: UtxoGraph<'a>,
    sinks: &'a Sinks,
    opts: &'a Options,
    acc: Accounting,
    sink_amounts: BTreeMap<u32, BTreeMap<u32, u128>>,
    coinjoin_amounts: BTreeMap<u32, u128>,
    held: Vec<(u64, u64)>,
    /// Edge pieces `((from, to, tx, hop), amount)`, summed by key in [`Run::finish`].
    edges: Vec<((u32, u32, u32, u32), u128)>,
    visited: FxHashSet<u64>,
    poisoned: FxHashSet<u32>,
    coinbase_fill: FxHashMap<u64, u64>,
    /// Haircut: taint given so far to each reached output, and to each transaction's fee. A
    /// transaction entered at several hops splits each arrival with its own rounding; these keep
    /// the roundings from adding up past a value.
    haircut_given: FxHashMap<u64, u64>,
    haircut_fee_given: FxHashMap<u32, u64>,
}

/// Traces `seeds` over `g`. `names` turns ids into strings for the result.
pub fn trace(g: UtxoGraph<'_>, names: &dyn Names, chain: &str, seeds: &[Seed], sinks: &Sinks, opts: &Options) -> Result<Trace> {
    let mut run = Run {
        g,
        sinks,
        opts,
        acc: Accounting::default(),
        sink_amounts: BTreeMap::new(),
        coinjoin_amounts: BTreeMap::new(),
        held: vec![],
        edges: vec![],
        visited: FxHashSet::default(),
        poisoned: FxHashSet::default(),
        coinbase_fill: FxHashMap::default(),
        haircut_given: FxHashMap::default(),
        haircut_fee_given: FxHashMap::default(),
    };
    let mut frontier: BTreeMap<u64, Taint> = BTreeMap::new();
    let mut seed_amount = 0u128;
    let mut seed_names = vec![];
    let mut seed_amounts = vec![];
    for s in seeds {
        let outs: Vec<u64> = match s {
            Seed::Output(o) => {
                if *o as usize >= g.out_value.len() {
                    return Err(Error::Seed { seed: format!("output #{o}"), reason: "not in the index".into() });
                }
                vec![*o]
            }
            Seed::Transaction(t) => g.outputs(*t).collect(),
            Seed::Address(a) => address_outputs(&g, *a, &opts.limits),
            Seed::AddressSent(a) => spent_outputs(&g, *a, &opts.limits),
        };
        let before = seed_amount;
        for o in outs {
            let v = g.out_value[o as usize];
            let taint = match opts.model {
                Model::Fifo => Taint::Ranges(if v > 0 { vec![(0, v)] } else { vec![] }),
                _ => Taint::Amount(v),
            };
            if frontier.insert(o, taint).is_none() {
                run.haircut_given.insert(o, v);
                seed_amount += v as u128;
                seed_names.push(o);
            }
        }
        if seed_amount > before {
            let name = match s {
                Seed::Output(o) => {
                    let t = g.tx_of_output(*o);
                    format!("{}:{}", names.tx(t), o - g.tx_out_start[t as usize])
                }
                Seed::Transaction(t) => names.tx(*t),
                Seed::Address(a) => format!("{} (received)", names.address(*a)),
                Seed::AddressSent(a) => format!("{} (sent)", names.address(*a)),
            };
            seed_amounts.push(crate::SeedAmount { seed: name, amount: seed_amount - before });
        }
    }
    if frontier.is_empty() {
        return Err(Error::Seed { seed: format!("{seeds:?}"), reason: "no output with value in the time window".into() });
    }
    let seed_addrs: HashSet<u32> = frontier.keys().map(|&o| g.out_addr[o as usize]).collect();
    match opts.direction {
        Direction::Forward => run.forward(frontier.into_iter().collect()),
        Direction::Backward => run.backward(frontier),
    }
    let mut t = run.finish(names, chain, seed_amount, &seed_names, &seed_addrs);
    t.seed_amounts = seed_amounts;
    Ok(t)
}

/// Outputs of address `a` spent by a transaction within the time window (what it sent).
fn spent_outputs(g: &UtxoGraph<'_>, a: u32, limits: &Limits) -> Vec<u64> {
    let all = address_outputs(g, a, &Limits { since_time: None, until_time: None, until_height: None, ..limits.clone() });
    all.into_iter().filter(|&o| g.out_spender[o as usize] != NONE && in_window(g, g.tx_of_input(g.out_spender[o as usize]), limits)).collect()
}

/// Outputs paying address `a` within the time window.
fn address_outputs(g: &UtxoGraph<'_>, a: u32, limits: &Limits) -> Vec<u64> {
    let all: Vec<u64> = if g.addr_out_start.len() > a as usize + 1 {
        g.addr_outs[g.addr_out_start[a as usize] as usize..g.addr_out_start[a as usize + 1] as usize].to_vec()
    } else {
        (0..g.out_addr.len() as u64).filter(|&o| g.out_addr[o as usize] == a).collect()
    };
    all.into_iter().filter(|&o| in_window(g, g.tx_of_output(o), limits)).collect()
}

/// Whether transaction `t` lies within the time window of `limits`.
fn in_window(g: &UtxoGraph<'_>, t: u32, limits: &Limits) -> bool {
    let (time, height) = (g.tx_time[t as usize] as u64, g.tx_height[t as usize] as u64);
    limits.since_time.is_none_or(|s| time >= s) && limits.until_time.is_none_or(|u| time <= u) && limits.until_height.is_none_or(|h| height <= h)
}

impl Run<'_> {
    fn beyond_window(&self, t: u32) -> bool {
        let l = &self.opts.limits;
        l.until_height.is_some_and(|h| self.g.tx_height[t as usize] as u64 > h) || l.until_time.is_some_and(|u| self.g.tx_time[t as usize] as u64 > u)
    }

    fn sink_of_output(&self, o: u64) -> Option<u32> {
        let a = self.g.out_addr[o as usize];
        if a == NO_ADDRESS {
            return None;
        }
        self.sinks.by_address.get(&a).copied()
    }

    fn is_coinjoin(&self, t: u32) -> bool {
        if !self.sinks.coinjoins {
            return false;
        }
        let ins = self.g.inputs(t);
        let outs = self.g.outputs(t);
        coinjoin_kind((ins.end - ins.start) as usize, &self.g.out_value[outs.start as usize..outs.end as usize]).is_some()
    }

    /// Haircut: how much more taint output `o` of value `value` can take.
    fn haircut_room(&self, o: u64, value: u64) -> u128 {
        value.saturating_sub(self.haircut_given.get(&o).copied().unwrap_or(0)) as u128
    }

    /// Books `taint` of output `o` at hop `hop`; returns the spending transaction to follow, if any.
    fn settle(&mut self, o: u64, taint: &Taint, hop: u32) -> Option<u32> {
        let amount = taint.amount() as u128;
        if amount == 0 {
            return None;
        }
        if hop > 0 {
            if let Some(s) = self.sink_of_output(o) {
                *self.sink_amounts.entry(s).or_default().entry(self.g.out_addr[o as usize]).or_default() += amount;
                return None;
            }
            if amount < self.opts.limits.min_amount {
                self.acc.below_threshold += amount;
                return None;
            }
        }
        let spender = self.g.out_spender[o as usize];
        let t = (spender != NONE).then(|| self.g.tx_of_input(spender));
        let Some(t) = t.filter(|&t| !self.beyond_window(t)) else {
            self.held.push((o, amount as u64));
            return None;
        };
        if self.is_coinjoin(t) {
            *self.coinjoin_amounts.entry(t).or_default() += amount;
            return None;
        }
        if hop >= self.opts.limits.max_hops {
            self.acc.hop_limit += amount;
            return None;
        }
        if !self.visited.contains(&o) && self.visited.len() >= self.opts.limits.max_nodes {
            self.acc.node_limit += amount;
            return None;
        }
        self.visited.insert(o);
        Some(t)
    }

    /// Follows `frontier` (tainted outputs, sorted, one entry each) hop by hop.
    fn forward(&mut self, mut frontier: Vec<(u64, Taint)>) {
        let mut hop = 0u32;
        // Taint entering spending transactions: (transaction, spent output, input, taint).
        let mut entering: Vec<(u32, u64, u64, Taint)> = vec![];
        let mut ins: Vec<(u64, Taint)> = vec![];
        while !frontier.is_empty() {
            entering.clear();
            for (o, taint) in frontier.drain(..) {
                if let Some(t) = self.settle(o, &taint, hop) {
                    entering.push((t, o, self.g.out_spender[o as usize], taint));
                }
            }
            hop += 1;
            // Transaction by transaction, each one's inputs in the order of the outputs they spend.
            entering.sort_unstable_by_key(|e| (e.0, e.1));
            let mut next: Vec<(u64, Taint)> = vec![];
            let mut it = entering.drain(..).peekable();
            while let Some((t, _, i, taint)) = it.next() {
                ins.clear();
                ins.push((i, taint));
                while let Some((_, _, i, taint)) = it.next_if(|e| e.0 == t) {
                    ins.push((i, taint));
                }
                self.spread(t, &ins, hop, &mut next);
            }
            drop(it);
            frontier = merge_by_output(next);
        }
    }

    /// Appends to `reached` the outputs of `t` (and coinbase outputs, for followed fees) that the
    /// taint of its inputs `ins` reaches.
    fn spread(&mut self, t: u32, ins: &[(u64, Taint)], hop: u32, reached: &mut Vec<(u64, Taint)>) {
        let g = self.g;
        let outs = g.outputs(t);
        let out_values: &[u64] = &g.out_value[outs.start as usize..outs.end as usize];
        let in_value: u64 = g.inputs(t).map(|i| g.in_prevout[i as usize]).filter(|&p| p != NONE).map(|p| g.out_value[p as usize]).sum();
        let out_sum: u64 = out_values.iter().sum();
        let fee = in_value.saturating_sub(out_sum);
        let base = reached.len();
        let mut fee_taint = 0u128;
        // FIFO: where each tainted input lies among the inputs laid end to end (index in `ins`,
        // first and past-the-end satoshi), and where each reached output starts, for exact edges.
        let mut fifo_spans: Vec<(usize, u64, u64)> = vec![];
        let mut fifo_starts: Vec<u64> = vec![];
        match self.opts.model {
            Model::Poison => {
                // The whole fee of a poisoned transaction is tainted too.
                if self.poisoned.insert(t) {
                    for (k, &v) in out_values.iter().enumerate() {
                        reached.push((outs.start + k as u64, Taint::Amount(v)));
                    }
                    fee_taint = fee as u128;
                }
            }
            Model::Haircut => {
                let entering: u128 = ins.iter().map(|(_, x)| x.amount() as u128).sum();
                let mut weights: Vec<u128> = out_values.iter().map(|&v| v as u128).collect();
                weights.push(fee as u128);
                let mut parts = split_exact(entering, &weights);
                let mut room: Vec<u128> = outs.clone().zip(out_values).map(|(o, &v)| self.haircut_room(o, v)).collect();
                room.push(fee.saturating_sub(self.haircut_fee_given.get(&t).copied().unwrap_or(0)) as u128);
                // Nothing is left over while every input carries no more taint than its value.
                let left = fit_within(&mut parts, &room);
                parts[out_values.len()] += left;
                for (k, &p) in parts[..out_values.len()].iter().enumerate() {
                    if p > 0 {
                        let o = outs.start + k as u64;
                        *self.haircut_given.entry(o).or_default() += p as u64;
                        reached.push((o, Taint::Amount(p as u64)));
                    }
                }
                fee_taint = parts[out_values.len()];
                *self.haircut_fee_given.entry(t).or_default() += fee_taint as u64;
            }
            Model::Fifo => {
                // Absolute positions of the tainted satoshis among the inputs laid end to end.
                let mut offset = 0u64;
                let mut abs = vec![];
                let by_input: HashMap<u64, (usize, &Taint)> = ins.iter().enumerate().map(|(k, (i, x))| (*i, (k, x))).collect();
                for i in g.inputs(t) {
                    let p = g.in_prevout[i as usize];
                    let v = if p == NONE { 0 } else { g.out_value[p as usize] };
                    if let Some((k, Taint::Ranges(r))) = by_input.get(&i) {
                        abs.extend(r.iter().map(|(a, b)| (a + offset, b + offset)));
                        fifo_spans.push((*k, offset, offset + v));
                    }
                    offset += v;
                }
                normalize(&mut abs);
                let mut start = 0u64;
                for (k, &v) in out_values.iter().enumerate() {
                    let r = clip(&abs, start, start + v);
                    if !r.is_empty() {
                        reached.push((outs.start + k as u64, Taint::Ranges(r)));
                        fifo_starts.push(start);
                    }
                    start += v;
                }
                fee_taint = clip(&abs, out_sum, u64::MAX).iter().map(|(a, b)| (b - a) as u128).sum();
            }
        }
        // Edges: from each tainted input's address to each reached output's address. FIFO knows
        // which input's satoshis each output took; haircut and poison split in proportion to the
        // inputs' taint.
        let from_addr = |i: u64| g.out_addr[g.in_prevout[i as usize] as usize];
        if let [(i, _)] = ins {
            let from = from_addr(*i);
            for (o, taint) in &reached[base..] {
                self.edges.push(((from, g.out_addr[*o as usize], t, hop), taint.amount() as u128));
            }
        } else if self.opts.model == Model::Fifo {
            for ((o, taint), &start) in reached[base..].iter().zip(&fifo_starts) {
                let Taint::Ranges(r) = taint else { unreachable!("FIFO carries ranges") };
                let to = g.out_addr[*o as usize];
                for &(k, lo, hi) in &fifo_spans {
                    let part: u64 = r.iter().map(|&(a, b)| (b + start).min(hi).saturating_sub((a + start).max(lo))).sum();
                    if part > 0 {
                        self.edges.push(((from_addr(ins[k].0), to, t, hop), part as u128));
                    }
                }
            }
        } else {
            let weights: Vec<u128> = ins.iter().map(|(_, x)| x.amount() as u128).collect();
            for (o, taint) in &reached[base..] {
                let to = g.out_addr[*o as usize];
                for (k, part) in split_exact(taint.amount() as u128, &weights).into_iter().enumerate() {
                    if part > 0 {
                        self.edges.push(((from_addr(ins[k].0), to, t, hop), part));
                    }
                }
            }
        }
        if fee_taint > 0 {
            match self.opts.fees {
                Fees::Drop => self.acc.fees += fee_taint,
                Fees::Follow => {
                    let cb = g.first_tx_at(g.tx_height[t as usize]);
                    let cb_outs = g.outputs(cb);
                    let values: Vec<u128> = g.out_value[cb_outs.start as usize..cb_outs.end as usize].iter().map(|&v| v as u128).collect();
                    if values.iter().all(|&v| v == 0) || !g.is_coinbase(cb) {
                        self.acc.fees += fee_taint;
                    } else if self.opts.model == Model::Poison {
                        // A coinbase with a tainted input (a tainted fee): every output in full,
                        // once.
                        if self.poisoned.insert(cb) {
                            for o in cb_outs.clone() {
                                reached.push((o, Taint::Amount(g.out_value[o as usize])));
                            }
                        }
                    } else {
                        let mut parts = split_exact(fee_taint, &values);
                        if self.opts.model == Model::Haircut {
                            let room: Vec<u128> = cb_outs.clone().zip(&values).map(|(o, &v)| self.haircut_room(o, v as u64)).collect();
                            self.acc.fees += fit_within(&mut parts, &room);
                            for (k, &p) in parts.iter().enumerate() {
                                *self.haircut_given.entry(cb_outs.start + k as u64).or_default() += p as u64;
                            }
                        }
                        for (k, part) in parts.into_iter().enumerate() {
                            if part > 0 {
                                let o = cb_outs.start + k as u64;
                                let taint = match self.opts.model {
                                    // Fees of several transactions fill the output one after the other.
                                    Model::Fifo => {
                                        let cur = self.coinbase_fill.entry(o).or_insert(0);
                                        let end = (*cur + part as u64).min(g.out_value[o as usize]);
                                        let r = (*cur, end);
                                        *cur = end;
                                        Taint::Ranges(vec![r])
                                    }
                                    _ => Taint::Amount(part as u64),
                                };
                                reached.push((cb_outs.start + k as u64, taint));
                            }
                        }
                    }
                }
            }
        }
    }

    fn backward(&mut self, mut frontier: BTreeMap<u64, Taint>) {
        let g = self.g;
        let mut hop = 0u32;
        while !frontier.is_empty() {
            let mut next: BTreeMap<u64, Taint> = BTreeMap::new();
            for (o, taint) in std::mem::take(&mut frontier) {
                let amount = taint.amount() as u128;
                if amount == 0 {
                    continue;
                }
                if hop > 0 {
                    if let Some(s) = self.sink_of_output(o) {
                        *self.sink_amounts.entry(s).or_default().entry(g.out_addr[o as usize]).or_default() += amount;
                        continue;
                    }
                    if amount < self.opts.limits.min_amount {
                        self.acc.below_threshold += amount;
                        continue;
                    }
                }
                let t = g.tx_of_output(o);
                if g.is_coinbase(t) {
                    self.acc.mined += amount;
                    if self.opts.model == Model::Poison && self.opts.fees == Fees::Follow && hop < self.opts.limits.max_hops {
                        // Poison with fees followed: a coinbase takes in the fees of its block, so
                        // every transaction of the block that paid one is a source, in full.
                        self.poison_fee_payers(t, o, hop, &mut next);
                    }
                    continue;
                }
                if hop >= self.opts.limits.max_hops {
                    self.acc.hop_limit += amount;
                    continue;
                }
                if self.is_coinjoin(t) {
                    *self.coinjoin_amounts.entry(t).or_default() += amount;
                    continue;
                }
                if !self.visited.contains(&o) && self.visited.len() >= self.opts.limits.max_nodes {
                    self.acc.node_limit += amount;
                    continue;
                }
                self.visited.insert(o);
                let ins: Vec<(u64, u64)> = g
                    .inputs(t)
                    .map(|i| {
                        let p = g.in_prevout[i as usize];
                        (p, if p == NONE { 0 } else { g.out_value[p as usize] })
                    })
                    .collect();
                let unresolved = g.inputs(t).any(|i| g.in_prevout[i as usize] == NONE);
                let mut reached: Vec<(u64, Taint)> = vec![];
                match (&taint, self.opts.model) {
                    (_, Model::Poison) => {
                        if self.poisoned.insert(t) {
                            reached.extend(ins.iter().filter(|x| x.0 != NONE).map(|&(p, v)| (p, Taint::Amount(v))));
                        }
                    }
                    (_, Model::Haircut) => {
                        // Inputs outside the data are given what the known inputs do not cover.
                        let known: u64 = ins.iter().map(|x| x.1).sum();
                        let out_sum: u64 = g.outputs(t).map(|x| g.out_value[x as usize]).sum();
                        let mut weights: Vec<u128> = ins.iter().map(|x| x.1 as u128).collect();
                        weights.push(if unresolved { out_sum.saturating_sub(known) as u128 } else { 0 });
                        let mut parts = split_exact(amount, &weights);
                        parts.pop();
                        for (k, p) in parts.into_iter().enumerate() {
                            if p > 0 {
                                reached.push((ins[k].0, Taint::Amount(p as u64)));
                            }
                        }
                    }
                    (Taint::Ranges(r), Model::Fifo) => {
                        let outs = g.outputs(t);
                        let start: u64 = (outs.start..o).map(|x| g.out_value[x as usize]).sum();
                        let abs: Vec<(u64, u64)> = r.iter().map(|(a, b)| (a + start, b + start)).collect();
                        let mut offset = 0u64;
                        for &(p, v) in &ins {
                            if p == NONE {
                                break; // its length is unknown: the rest stays unresolved
                            }
                            let part = clip(&abs, offset, offset + v);
                            if !part.is_empty() {
                                reached.push((p, Taint::Ranges(part)));
                            }
                            offset += v;
                        }
                    }
                    (Taint::Amount(_), Model::Fifo) => unreachable!("FIFO carries ranges"),
                }
                if unresolved && reached.iter().map(|x| x.1.amount() as u128).sum::<u128>() < amount && self.opts.model != Model::Poison {
                    // Value of inputs outside the data cannot be placed: it stays unresolved.
                    let placed: u128 = reached.iter().map(|x| x.1.amount() as u128).sum();
                    self.acc.unresolved += amount - placed;
                }
                for (p, part) in reached {
                    if p == NONE {
                        self.acc.unresolved += part.amount() as u128;
                        continue;
                    }
                    self.edges.push(((g.out_addr[p as usize], g.out_addr[o as usize], t, hop + 1), part.amount() as u128));
                    match next.get_mut(&p) {
                        Some(x) => x.merge(part),
                        None => {
                            next.insert(p, part);
                        }
                    }
                }
            }
            hop += 1;
            frontier = next;
        }
    }

    /// Backward poison with fees followed: the coinbase `cb` (whose output `o` is tainted) was paid
    /// the fees of its block, so every input of each fee-paying transaction of the block is a
    /// source, in full (each transaction once).
    fn poison_fee_payers(&mut self, cb: u32, o: u64, hop: u32, next: &mut BTreeMap<u64, Taint>) {
        let g = self.g;
        if !self.poisoned.insert(cb) {
            return;
        }
        let height = g.tx_height[cb as usize];
        let end = g.first_tx_at(height + 1);
        for t in cb + 1..end {
            let ins: Vec<u64> = g.inputs(t).map(|i| g.in_prevout[i as usize]).filter(|&p| p != NONE).collect();
            let in_value: u64 = ins.iter().map(|&p| g.out_value[p as usize]).sum();
            let out_sum: u64 = g.outputs(t).map(|x| g.out_value[x as usize]).sum();
            if in_value <= out_sum || !self.poisoned.insert(t) {
                continue;
            }
            for p in ins {
                let v = g.out_value[p as usize];
                self.edges.push(((g.out_addr[p as usize], g.out_addr[o as usize], t, hop + 1), v as u128));
                next.entry(p).or_insert(Taint::Amount(v));
            }
        }
    }

    fn finish(mut self, names: &dyn Names, chain: &str, seed_amount: u128, seeds: &[u64], seed_addrs: &HashSet<u32>) -> Trace {
        let g = self.g;
        let asset = crate::native_symbol(chain).to_string();
        let output_name = |o: u64| {
            let t = g.tx_of_output(o);
            format!("{}:{}", names.tx(t), o - g.tx_out_start[t as usize])
        };
        for (s, by_addr) in &self.sink_amounts {
            let mut addresses: Vec<AddressAmount> = by_addr.iter().map(|(a, v)| AddressAmount { address: names.address(*a), amount: *v }).collect();
            addresses.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.address.cmp(&b.address)));
            self.acc.sinks.push(SinkAmount { sink: self.sinks.list[*s as usize].clone(), amount: by_addr.values().sum(), addresses });
        }
        for (t, amount) in &self.coinjoin_amounts {
            self.acc.sinks.push(SinkAmount {
                sink: Sink { category: "coinjoin".into(), name: format!("CoinJoin {}", names.tx(*t)) },
                amount: *amount,
                addresses: vec![],
            });
        }
        self.acc.sinks.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.sink.cmp(&b.sink)));
        // An output reached at two hops (its transaction entered twice) is held once, with the
        // taint of both arrivals.
        let mut by_output: BTreeMap<u64, u64> = BTreeMap::new();
        for &(o, tainted) in &self.held {
            let t = by_output.entry(o).or_default();
            *t = t.saturating_add(tainted);
            if self.opts.model == Model::Poison {
                *t = (*t).min(g.out_value[o as usize]);
            }
        }
        let mut held: Vec<(u64, u64)> = by_output.into_iter().collect();
        held.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for &(o, tainted) in &held {
            self.acc.held.push(Held {
                address: names.address(g.out_addr[o as usize]),
                output: Some(output_name(o)),
                asset: asset.clone(),
                value: g.out_value[o as usize] as u128,
                tainted: tainted as u128,
            });
            self.acc.held_total += tainted as u128;
        }
        // Summed by key, sorted and named by ids: each address and transaction is turned into a
        // string once.
        let mut raw = std::mem::take(&mut self.edges);
        raw.sort_unstable_by_key(|&((from, to, t, hop), _)| (hop, t, from, to));
        raw.dedup_by(|later, first| {
            let same = later.0 == first.0;
            if same {
                first.1 += later.1;
            }
            same
        });
        let mut address_names: HashMap<u32, String> = HashMap::new();
        let mut name_of = |a: u32| address_names.entry(a).or_insert_with(|| names.address(a)).clone();
        let mut tx_names: HashMap<u32, String> = HashMap::new();
        let mut edges = Vec::with_capacity(raw.len());
        for &((from, to, t, hop), amount) in &raw {
            let tx = tx_names.entry(t).or_insert_with(|| names.tx(t)).clone();
            edges.push(Edge {
                from: name_of(from),
                to: name_of(to),
                asset: asset.clone(),
                amount,
                hop,
                tx,
                height: g.tx_height[t as usize] as u64,
                time: g.tx_time[t as usize] as u64,
            });
        }
        let mut node_ids: Vec<u32> = raw.iter().flat_map(|&((from, to, _, _), _)| [from, to]).chain(seed_addrs.iter().copied()).collect();
        node_ids.sort_unstable();
        node_ids.dedup();
        let mut nodes: Vec<Node> = node_ids
            .into_iter()
            .map(|a| {
                let sink = self.sinks.by_address.get(&a).filter(|_| a != NO_ADDRESS).map(|&s| &self.sinks.list[s as usize]);
                Node { address: name_of(a), label: sink.map(|s| s.name.clone()), category: sink.map(|s| s.category.clone()), seed: seed_addrs.contains(&a) }
            })
            .collect();
        nodes.sort_by(|a, b| a.address.cmp(&b.address));
        Trace {
            chain: chain.into(),
            model: self.opts.model,
            direction: self.opts.direction,
            unit: "sat".into(),
            asset: asset.clone(),
            flow: None,
            seeds: seeds.iter().map(|&o| output_name(o)).collect(),
            seed_amount,
            seed_amounts: vec![],
            accounting: self.acc,
            nodes,
            edges,
            limits: self.opts.limits.clone(),
        }
    }
}

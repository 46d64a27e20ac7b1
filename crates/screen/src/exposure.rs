//! Exposure: for every address, how much of what it received came from each risk category, and
//! how much of what it sent went to each, directly (one transaction away) and indirectly
//! (through intermediaries), under the haircut model.
//!
//! Haircut taint is linear, so every category is carried at once, in one pass over the chain:
//!
//! * **Received** (chronological): each output holds a small vector of amounts per (category,
//!   hop). A transaction adds up its inputs' vectors (an input spending an output of a *source*
//!   — an address tagged with a risk category, or a member of such an entity — counts in full
//!   as that category at hop 0) and gives each output the share `value / inputs` of the sum, in
//!   integers that sum exactly ([`tracehound_trace::split_exact`]); the fee's share is dropped.
//!   An address's received exposure is the sum over the outputs paying it. This is what a
//!   backward haircut trace from the address attributes to each category's sources.
//! * **Sent** (reverse chronological): each spent output holds where its value went. A
//!   transaction adds up its outputs' destinations (an output paying a source counts in full as
//!   that category at hop 0) and gives each input the share `value / inputs`. This is what a
//!   forward haircut trace of what the address sent attributes to each category.
//!
//! Hop 1 is *direct* exposure (the counterparty of the transaction is the source or
//! destination); hops ≥ 2 are *indirect*. With a hop horizon, amounts beyond it are not counted.
//!
//! Only outputs that carry a non-zero vector are kept, in a map of live outputs: an output's
//! vector is dropped when it is consumed.

use crate::risk::{CategoryId, Flow};
use crate::runs::{Record, Runs};
use rustc_hash::FxHashMap;
use tracehound_graph::index::{NONE, NO_ADDRESS};
use tracehound_memory::Scratch;
use tracehound_trace::split_exact;
use tracehound_trace::utxo::UtxoGraph;

/// Marks an address that is no source in [`Sources`].
pub const NO_CATEGORY: u8 = u8::MAX;

/// The category of the entries that hold an address's whole flow (what it received, or sent, in
/// all), in `direct`: the denominator of exposure shares.
pub const TOTAL: u8 = 254;

/// The risk category of every address that is a source (tagged, or in a tagged entity), by
/// address id; [`NO_CATEGORY`] for the rest.
pub type Sources = Vec<u8>;

/// Options of an exposure build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Count only what moved within this many transactions of a source (`None`: any number).
    pub horizon: Option<u8>,
}

/// Exposure of one address to one category in one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Address id.
    pub address: u32,
    /// Asset id (UTXO chains: 0, the native coin; accounts: the transfer index's asset id).
    pub asset: u32,
    /// Risk category.
    pub category: CategoryId,
    /// Received or sent.
    pub flow: Flow,
    /// Base units exchanged directly with the category (hop 1).
    pub direct: u128,
    /// Base units that trace to the category through intermediaries (hops ≥ 2).
    pub indirect: u128,
}

/// Amounts per (category, hop), sorted by key; tiny in practice (a handful of categories).
type Vector = Vec<(CategoryId, u8, u128)>;

fn add_into(sum: &mut Vector, key: (CategoryId, u8), amount: u128) {
    match sum.binary_search_by_key(&key, |e| (e.0, e.1)) {
        Ok(i) => sum[i].2 = sum[i].2.saturating_add(amount),
        Err(i) => sum.insert(i, (key.0, key.1, amount)),
    }
}

/// The hop an amount has after one more transaction, or `None` past the horizon.
fn next_hop(hop: u8, opts: &Options) -> Option<u8> {
    match opts.horizon {
        None => Some((hop + 1).min(2)),
        Some(h) => (hop < h).then_some(hop + 1),
    }
}

/// Sums per (address or entity id, asset, category, flow, hop ≥ 2 ?), turned into [`Entry`]s in
/// order at the end. Within a budget, the sums spill as sorted runs when the map is full, and the
/// runs are merged (adding up equal keys) at the end.
pub struct Totals<'a> {
    map: FxHashMap<(u32, u32, CategoryId, Flow, bool), u128>,
    cap: usize,
    runs: Option<Runs<'a>>,
}

/// Bytes per entry of the sums' map as budgeted: 33 bytes of key, value and control byte, twice
/// that at the table's lowest load, and the 32-byte record it becomes when spilled.
const TOTALS_ENTRY_BYTES: u64 = 96;
/// Bytes per live output of the vectors' map as budgeted (the table's slot at its lowest load,
/// and the vector's first allocation of four 32-byte elements with the allocator's header), and
/// per element beyond.
const LIVE_ENTRY_BYTES: u64 = 224;
const LIVE_ELEMENT_BYTES: u64 = 32;

impl<'a> Totals<'a> {
    /// Empty sums, keeping half of `budget` in memory (`None`: everything).
    pub fn new(budget: Option<&Budget<'a>>) -> Totals<'a> {
        match budget {
            None => Totals { map: FxHashMap::default(), cap: usize::MAX, runs: None },
            Some(b) => Totals {
                map: FxHashMap::default(),
                cap: ((b.bytes / 2) / TOTALS_ENTRY_BYTES).max(16) as usize,
                runs: Some(Runs::new(b.scratch, "exposure-sums")),
            },
        }
    }

    fn add(&mut self, address: u32, asset: u32, category: CategoryId, flow: Flow, hop: u8, amount: u128) -> std::io::Result<()> {
        if address != NO_ADDRESS && amount > 0 {
            let v = self.map.entry((address, asset, category, flow, hop >= 2)).or_default();
            *v = v.saturating_add(amount);
            if self.map.len() >= self.cap {
                let records = self.drain();
                self.runs.as_mut().expect("a cap comes with runs").write(records)?;
            }
        }
        Ok(())
    }

    fn drain(&mut self) -> Vec<Record> {
        // The table is given back, not kept for reuse: its size counts against the budget.
        std::mem::take(&mut self.map)
            .into_iter()
            .map(|((a, asset, c, flow, indirect), v)| {
                let flow = match flow {
                    Flow::Received => 0u64,
                    Flow::Sent => 1,
                };
                [(a as u64) << 32 | asset as u64, (c as u64) << 2 | flow << 1 | indirect as u64, v as u64, (v >> 64) as u64]
            })
            .collect()
    }

    /// Adds the amounts of `e` under id `id` (an entity's sums from its members' entries).
    pub fn add_entry(&mut self, id: u32, e: &Entry) -> std::io::Result<()> {
        self.add(id, e.asset, e.category, e.flow, 1, e.direct)?;
        self.add(id, e.asset, e.category, e.flow, 2, e.indirect)
    }

    /// Hands every entry to `emit`, sorted by (id, asset, category, flow); returns the bytes
    /// spilled.
    pub fn finish(mut self, emit: &mut dyn FnMut(Entry)) -> std::io::Result<u64> {
        let mut records = self.drain();
        let mut spilled = 0;
        let mut next: Box<dyn FnMut() -> std::io::Result<Option<Record>>> = match self.runs.take() {
            Some(mut runs) if !runs.is_empty() => {
                runs.write(records)?;
                spilled = runs.spilled;
                let mut m = runs.merged()?;
                Box::new(move || m.next())
            }
            _ => {
                records.sort_unstable();
                let mut it = records.into_iter();
                Box::new(move || Ok(it.next()))
            }
        };
        let mut cur: Option<Entry> = None;
        while let Some(r) = next()? {
            let (address, asset, category) = ((r[0] >> 32) as u32, r[0] as u32, (r[1] >> 2) as u8);
            let flow = if (r[1] >> 1) & 1 == 0 { Flow::Received } else { Flow::Sent };
            let v = r[2] as u128 | (r[3] as u128) << 64;
            let same = cur.as_ref().is_some_and(|e| (e.address, e.asset, e.category, e.flow) == (address, asset, category, flow));
            if !same {
                if let Some(e) = cur.take() {
                    emit(e);
                }
                cur = Some(Entry { address, asset, category, flow, direct: 0, indirect: 0 });
            }
            let e = cur.as_mut().expect("set above");
            if r[1] & 1 == 1 {
                e.indirect = e.indirect.saturating_add(v);
            } else {
                e.direct = e.direct.saturating_add(v);
            }
        }
        if let Some(e) = cur {
            emit(e);
        }
        Ok(spilled)
    }
}

/// The vectors of outputs not consumed yet, keyed by output id. Within a budget, they spill as
/// sorted runs keyed by the order in which the pass consumes them.
struct Live<'a> {
    map: FxHashMap<u64, Vector>,
    elements: u64,
    cap: u64,
    runs: Option<Runs<'a>>,
}

impl<'a> Live<'a> {
    fn new(budget: Option<&Budget<'a>>, name: &'static str) -> Live<'a> {
        match budget {
            None => Live { map: FxHashMap::default(), elements: 0, cap: u64::MAX, runs: None },
            Some(b) => Live { map: FxHashMap::default(), elements: 0, cap: (b.bytes / 2).max(256), runs: Some(Runs::new(b.scratch, name)) },
        }
    }

    /// Adds to the vector of output `o`; `key` is the order in which it will be consumed.
    fn add(&mut self, o: u64, c: CategoryId, hop: u8, amount: u128, key: &dyn Fn(u64) -> u64) -> std::io::Result<()> {
        let v = self.map.entry(o).or_default();
        let before = v.len();
        add_into(v, (c, hop), amount);
        self.elements += (v.len() - before) as u64;
        if self.map.len() as u64 * LIVE_ENTRY_BYTES + self.elements * LIVE_ELEMENT_BYTES > self.cap {
            let mut records = Vec::with_capacity(self.elements as usize);
            for (o, v) in std::mem::take(&mut self.map) {
                records.extend(v.into_iter().map(|(c, hop, a)| [key(o), (c as u64) << 8 | hop as u64, a as u64, (a >> 64) as u64]));
            }
            self.elements = 0;
            self.runs.as_mut().expect("a cap comes with runs").write(records)?;
        }
        Ok(())
    }

    /// Takes the vector of output `o` (consumed in `key` order) and hands its parts to `f`.
    fn take(&mut self, o: u64, key: u64, f: &mut dyn FnMut(CategoryId, u8, u128)) -> std::io::Result<()> {
        if let Some(v) = self.map.remove(&o) {
            self.elements = self.elements.saturating_sub(v.len() as u64);
            for (c, hop, a) in v {
                f(c, hop, a);
            }
        }
        if let Some(runs) = &mut self.runs {
            runs.take(key, &mut |r| f((r[1] >> 8) as u8, r[1] as u8, r[2] as u128 | (r[3] as u128) << 64))?;
        }
        Ok(())
    }

    fn spilled(&self) -> u64 {
        self.runs.as_ref().map_or(0, |r| r.spilled)
    }
}

/// A memory budget for the exposure pass: bytes for its maps, and where to spill the rest.
pub struct Budget<'a> {
    /// Bytes for the live vectors and the per-address sums together (half each).
    pub bytes: u64,
    /// Scratch directory for the spilled runs.
    pub scratch: &'a Scratch,
}

/// The exposure of every address of a UTXO chain: entries sorted by (address, asset, category,
/// flow), each address's totals among them.
pub fn utxo_exposure(g: UtxoGraph<'_>, sources: &[u8], opts: &Options) -> Vec<Entry> {
    let mut out = vec![];
    utxo_exposure_within(g, sources, opts, None, &mut |e| out.push(e)).expect("nothing is spilled without a budget");
    out
}

/// [`utxo_exposure`] within a memory budget: the live vectors and the sums spill to sorted runs
/// in the budget's scratch directory when their share is full; the entries, the same as without
/// a budget, are handed to `emit` in order. Returns the bytes spilled.
pub fn utxo_exposure_within(g: UtxoGraph<'_>, sources: &[u8], opts: &Options, budget: Option<Budget<'_>>, emit: &mut dyn FnMut(Entry)) -> std::io::Result<u64> {
    // The sums take half the budget; the live vectors of each pass (one after the other) the other.
    let mut totals = Totals::new(budget.as_ref());
    let spilled = received(g, sources, opts, &mut totals, budget.as_ref())?;
    // What the received pass freed goes back before the sent pass (the binary's allocator keeps
    // freed memory otherwise).
    tracehound_memory::release_free_memory();
    let spilled = spilled + sent(g, sources, opts, &mut totals, budget.as_ref())?;
    tracehound_memory::release_free_memory();
    Ok(spilled + totals.finish(emit)?)
}

fn source_of(sources: &[u8], address: u32) -> Option<CategoryId> {
    match sources.get(address as usize) {
        Some(&c) if c != NO_CATEGORY => Some(c),
        _ => None,
    }
}

/// Splits each (category, hop) amount of `sum` over `weights` (the last weight is the part that
/// is dropped: the fee, or inputs outside the data) and hands part `k` to `give(k, category,
/// hop, amount)`.
fn split_vector(sum: &Vector, weights: &[u128], opts: &Options, give: &mut dyn FnMut(usize, CategoryId, u8, u128)) {
    for &(c, hop, amount) in sum {
        let Some(hop) = next_hop(hop, opts) else { continue };
        for (k, part) in split_exact(amount, weights).into_iter().enumerate().take(weights.len() - 1) {
            if part > 0 {
                give(k, c, hop, part);
            }
        }
    }
}

fn received(g: UtxoGraph<'_>, sources: &[u8], opts: &Options, totals: &mut Totals, budget: Option<&Budget>) -> std::io::Result<u64> {
    let mut live = Live::new(budget, "exposure-received");
    let spender = |o: u64| g.out_spender[o as usize];
    let mut sum: Vector = vec![];
    let mut weights: Vec<u128> = vec![];
    let txs = g.tx_in_start.len().saturating_sub(1);
    for t in 0..txs {
        let (ins, outs) = (g.tx_in_start[t]..g.tx_in_start[t + 1], g.tx_out_start[t]..g.tx_out_start[t + 1]);
        for o in outs.clone() {
            totals.add(g.out_addr[o as usize], 0, TOTAL, Flow::Received, 1, g.out_value[o as usize] as u128)?;
        }
        sum.clear();
        let mut known = 0u64;
        let mut unresolved = false;
        for i in ins {
            let p = g.in_prevout[i as usize];
            if p == NONE {
                unresolved = true;
                continue;
            }
            let v = g.out_value[p as usize];
            known += v;
            let source = source_of(sources, g.out_addr[p as usize]);
            live.take(p, i, &mut |c, hop, a| {
                if source.is_none() {
                    add_into(&mut sum, (c, hop), a);
                }
            })?;
            if let Some(c) = source {
                add_into(&mut sum, (c, 0), v as u128);
            }
        }
        if sum.is_empty() {
            continue;
        }
        let out_sum: u64 = outs.clone().map(|o| g.out_value[o as usize]).sum();
        // Inputs outside the data are given what the known inputs do not cover, as a backward
        // trace does.
        let denominator = if unresolved { known.max(out_sum) } else { known };
        weights.clear();
        weights.extend(outs.clone().map(|o| g.out_value[o as usize] as u128));
        weights.push(denominator.saturating_sub(out_sum) as u128);
        let first = outs.start;
        let mut result = Ok(());
        split_vector(&sum, &weights, opts, &mut |k, c, hop, part| {
            let o = first + k as u64;
            let r = totals.add(g.out_addr[o as usize], 0, c, Flow::Received, hop, part).and_then(|()| {
                if g.out_spender[o as usize] != NONE && source_of(sources, g.out_addr[o as usize]).is_none() {
                    live.add(o, c, hop, part, &spender)
                } else {
                    Ok(())
                }
            });
            if result.is_ok() {
                result = r;
            }
        });
        result?;
    }
    Ok(live.spilled())
}

fn sent(g: UtxoGraph<'_>, sources: &[u8], opts: &Options, totals: &mut Totals, budget: Option<&Budget>) -> std::io::Result<u64> {
    let mut live = Live::new(budget, "exposure-sent");
    // Outputs are consumed from the last to the first.
    let order = |o: u64| u64::MAX - o;
    let mut sum: Vector = vec![];
    let mut weights: Vec<u128> = vec![];
    let mut prevouts: Vec<u64> = vec![];
    let txs = g.tx_in_start.len().saturating_sub(1);
    for t in (0..txs).rev() {
        let (ins, outs) = (g.tx_in_start[t]..g.tx_in_start[t + 1], g.tx_out_start[t]..g.tx_out_start[t + 1]);
        for i in ins.clone() {
            let p = g.in_prevout[i as usize];
            if p != NONE {
                totals.add(g.out_addr[p as usize], 0, TOTAL, Flow::Sent, 1, g.out_value[p as usize] as u128)?;
            }
        }
        sum.clear();
        for o in outs.rev() {
            let source = source_of(sources, g.out_addr[o as usize]);
            live.take(o, order(o), &mut |c, hop, a| {
                if source.is_none() {
                    add_into(&mut sum, (c, hop), a);
                }
            })?;
            if let Some(c) = source {
                add_into(&mut sum, (c, 0), g.out_value[o as usize] as u128);
            }
        }
        if sum.is_empty() {
            continue;
        }
        prevouts.clear();
        prevouts.extend(ins.map(|i| g.in_prevout[i as usize]));
        if prevouts.iter().all(|&p| p == NONE) {
            continue; // a coinbase: its value was minted, it was sent by no one
        }
        let known: u64 = prevouts.iter().filter(|&&p| p != NONE).map(|&p| g.out_value[p as usize]).sum();
        let out_sum: u64 = (g.tx_out_start[t]..g.tx_out_start[t + 1]).map(|o| g.out_value[o as usize]).sum();
        let unresolved = prevouts.contains(&NONE);
        weights.clear();
        weights.extend(prevouts.iter().map(|&p| if p == NONE { 0 } else { g.out_value[p as usize] as u128 }));
        weights.push(if unresolved { out_sum.saturating_sub(known) as u128 } else { 0 });
        let mut result = Ok(());
        split_vector(&sum, &weights, opts, &mut |k, c, hop, part| {
            let p = prevouts[k];
            let r = totals.add(g.out_addr[p as usize], 0, c, Flow::Sent, hop, part).and_then(|()| live.add(p, c, hop, part, &order));
            if result.is_ok() {
                result = r;
            }
        });
        result?;
    }
    Ok(live.spilled())
}

/// The movements of an account chain that exposure replays, in chain order (the transfer index
/// holds them so; a gas fee has no receiver).
pub trait Movements {
    /// Number of movements.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sender, receiver ([`NO_ADDRESS`] for a fee) and asset of movement `i`.
    fn ends(&self, i: usize) -> (u32, u32, u32);
    /// Amount of movement `i`.
    fn amount(&self, i: usize) -> u128;
}

impl Movements for tracehound_graph::TransferIndex {
    fn len(&self) -> usize {
        tracehound_graph::TransferIndex::len(self)
    }
    fn ends(&self, i: usize) -> (u32, u32, u32) {
        tracehound_graph::TransferIndex::ends(self, i as u64)
    }
    fn amount(&self, i: usize) -> u128 {
        tracehound_graph::TransferIndex::amount(self, i as u64)
    }
}

/// A pool: one address's balance of one asset, with the amounts of it per (category, hop).
#[derive(Default)]
struct Pool {
    balance: u128,
    vector: Vector,
}

/// Takes the share `amount / balance` of every entry of `vector` out of it (exact integer splits).
fn take_share(vector: &mut Vector, amount: u128, balance: u128) -> Vector {
    let mut out = vec![];
    for e in vector.iter_mut() {
        let part = if amount >= balance { e.2 } else { split_exact(e.2, &[amount, balance - amount])[0].min(e.2) };
        if part > 0 {
            e.2 -= part;
            out.push((e.0, e.1, part));
        }
    }
    vector.retain(|e| e.2 > 0);
    out
}

/// The exposure of every address of an account chain, per asset: entries sorted by (address,
/// asset, category, flow). Every (address, asset) is a pool, as in an account trace: a send
/// carries the share `amount / balance` of the pool's vector (haircut); funds a pool sends without
/// the data showing them arrive are clean. Unlike a trace, exposure does not follow a swap from
/// one asset into another (a pool holds one asset): with swaps labelled (`defi_dex`), a trace
/// attributes what a swap paid out to what it took in, and exposure does not.
///
/// Its pools, per-movement balances and sums are held in memory (not yet within a budget).
pub fn account_exposure(m: &dyn Movements, sources: &[u8], opts: &Options) -> Vec<Entry> {
    let mut out = vec![];
    let n = m.len();
    // Received, in chain order; the receiver's balance after each credit is kept for the
    // reverse pass, and the credit the sender lacked before each send (funds from before the data).
    let mut pools: FxHashMap<(u32, u32), Pool> = FxHashMap::default();
    let mut after_credit: Vec<u128> = Vec::with_capacity(n);
    let mut missing: Vec<u128> = Vec::with_capacity(n);
    let mut totals = Totals::new(None);
    for i in 0..n {
        let (from, to, asset) = m.ends(i);
        let amount = m.amount(i);
        if to != NO_ADDRESS {
            add_sum(&mut totals, to, asset, TOTAL, Flow::Received, 1, amount);
        }
        let sender = pools.entry((from, asset)).or_default();
        let lacked = amount.saturating_sub(sender.balance);
        missing.push(lacked);
        sender.balance = sender.balance.saturating_add(lacked);
        let carried: Vector = match source_of(sources, from) {
            Some(c) => {
                sender.vector.clear();
                vec![(c, 0, amount)]
            }
            None => take_share(&mut sender.vector, amount, sender.balance),
        };
        sender.balance -= amount;
        if to == NO_ADDRESS {
            after_credit.push(0);
            continue;
        }
        let receiver = pools.entry((to, asset)).or_default();
        receiver.balance = receiver.balance.saturating_add(amount);
        after_credit.push(receiver.balance);
        for (c, hop, a) in carried {
            let Some(hop) = next_hop(hop, opts) else { continue };
            add_sum(&mut totals, to, asset, c, Flow::Received, hop, a);
            if source_of(sources, to).is_none() {
                add_into(&mut receiver.vector, (c, hop), a);
            }
        }
    }
    // Sent, in reverse: each pool holds where its balance at that moment goes.
    let mut pools: FxHashMap<(u32, u32), Vector> = FxHashMap::default();
    for i in (0..n).rev() {
        let (from, to, asset) = m.ends(i);
        let amount = m.amount(i);
        add_sum(&mut totals, from, asset, TOTAL, Flow::Sent, 1, amount);
        let went: Vector = if to == NO_ADDRESS {
            vec![]
        } else if let Some(c) = source_of(sources, to) {
            vec![(c, 0, amount)]
        } else {
            match pools.get_mut(&(to, asset)) {
                Some(v) => take_share(v, amount, after_credit[i]),
                None => vec![],
            }
        };
        let sender = pools.entry((from, asset)).or_default();
        for (c, hop, a) in went {
            let Some(hop) = next_hop(hop, opts) else { continue };
            add_sum(&mut totals, from, asset, c, Flow::Sent, hop, a);
            if source_of(sources, from).is_none() {
                add_into(sender, (c, hop), a);
            }
        }
        if missing[i] > 0 {
            // Funds from before the data entered just before this send: they carry their share
            // of where the pool's balance went, and that share has no sender in the data.
            take_share(sender, missing[i], amount);
        }
    }
    totals.finish(&mut |e| out.push(e)).expect("nothing is spilled without a budget");
    out
}

/// [`Totals::add`] without a budget, where nothing can fail.
fn add_sum(totals: &mut Totals, address: u32, asset: u32, category: CategoryId, flow: Flow, hop: u8, amount: u128) {
    totals.add(address, asset, category, flow, hop, amount).expect("nothing is spilled without a budget");
}

//! Address clustering over the graph index: union-find with the multi-input heuristic, CoinJoin
//! detection, scored change heuristics, and the evidence of every merge.
//!
//! The union-find stores one `u32` parent per address and always makes the smaller id the root,
//! so a cluster's id is the smallest address id in it. That makes ids independent of the order of
//! merges: clustering the first blocks and then the rest gives the clusters of clustering all
//! blocks at once, and a cluster is renamed only when it merges with an older one.

use crate::file::{self, SectionFile};
use crate::index::{index_dir, ChunkRef, GraphIndex, NONE, NO_ADDRESS};
use crate::spill::{SpillTo, SpillVec};
use crate::{AddressIndex, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use tracehound_core::script::ScriptType;
use tracehound_memory::{Scratch, StageMemory, StageMeter};

/// Format version of `clusters.thc`.
pub const CLUSTERS_VERSION: u32 = 2;
const MAGIC: [u8; 8] = *b"THCLUST\0";

/// Union-find over dense `u32` ids: 4 bytes per element, path halving, smaller id is the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    /// `n` singletons.
    pub fn new(n: usize) -> UnionFind {
        UnionFind { parent: (0..n as u32).collect() }
    }

    /// Continues from a parent array (e.g. a stored clustering).
    pub fn from_parents(parent: Vec<u32>) -> UnionFind {
        UnionFind { parent }
    }

    /// Adds singletons up to `n` elements.
    pub fn grow(&mut self, n: usize) {
        let from = self.parent.len() as u32;
        self.parent.extend(from..n as u32);
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// The root (smallest id) of `x`'s set.
    #[inline]
    pub fn find(&mut self, mut x: u32) -> u32 {
        let p = &mut self.parent;
        while p[x as usize] != x {
            let grand = p[p[x as usize] as usize];
            p[x as usize] = grand;
            x = grand;
        }
        x
    }

    /// Joins the sets of `a` and `b`; false if they were one already.
    #[inline]
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[hi as usize] = lo;
        true
    }

    /// The root of every element (fully compressed).
    pub fn roots(mut self) -> Vec<u32> {
        for x in 0..self.parent.len() {
            // Parents have smaller ids and are final by the time we reach x.
            let p = self.parent[x];
            self.parent[x] = self.parent[p as usize];
        }
        self.parent
    }
}

/// Kinds of CoinJoin recognised by their structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoinJoinKind {
    /// Samourai/Sparrow Whirlpool: 5 inputs, 5 outputs of one pool denomination.
    Whirlpool,
    /// Wasabi 2 (WabiSabi): ≥ 50 inputs and outputs, most outputs in groups of equal values.
    Wasabi2,
    /// Wasabi 1: ≥ 10 equal outputs of about 0.1 BTC.
    Wasabi1,
    /// JoinMarket and other equal-output joins: ≥ 3 equal outputs, and no more other (change)
    /// outputs than equal outputs + 1 or than inputs.
    EqualOutputs,
}

impl CoinJoinKind {
    const ALL: [CoinJoinKind; 4] = [CoinJoinKind::Whirlpool, CoinJoinKind::Wasabi2, CoinJoinKind::Wasabi1, CoinJoinKind::EqualOutputs];
    /// The name used in evidence and output.
    pub fn as_str(self) -> &'static str {
        match self {
            CoinJoinKind::Whirlpool => "whirlpool",
            CoinJoinKind::Wasabi2 => "wasabi2",
            CoinJoinKind::Wasabi1 => "wasabi1",
            CoinJoinKind::EqualOutputs => "equal_outputs",
        }
    }
}

const WHIRLPOOL_POOLS: [u64; 4] = [100_000, 1_000_000, 5_000_000, 50_000_000];
const DUST: u64 = 1_000;

/// Recognises a CoinJoin from the values of its outputs and its number of inputs.
pub fn coinjoin_kind(n_inputs: usize, output_values: &[u64]) -> Option<CoinJoinKind> {
    let n_out = output_values.len();
    if n_inputs < 2 || n_out < 3 {
        return None;
    }
    // Sorted non-dust values (on the stack for ordinary transactions): equal values form runs.
    let mut small = [0u64; 32];
    let mut large = vec![];
    let values: &mut [u64] = if n_out <= small.len() {
        small[..n_out].copy_from_slice(output_values);
        &mut small[..n_out]
    } else {
        large.extend_from_slice(output_values);
        &mut large
    };
    values.sort_unstable();
    let (mut value, mut k, mut in_groups) = (0u64, 0usize, 0usize);
    let mut i = 0;
    while i < values.len() {
        let mut j = i + 1;
        while j < values.len() && values[j] == values[i] {
            j += 1;
        }
        if values[i] > DUST {
            let run = j - i;
            if run >= 2 {
                in_groups += run;
            }
            if run > k || (run == k && values[i] > value) {
                (value, k) = (values[i], run);
            }
        }
        i = j;
    }
    if k == 0 {
        return None;
    }
    if n_inputs == 5 && n_out == 5 && k == 5 && WHIRLPOOL_POOLS.contains(&value) {
        return Some(CoinJoinKind::Whirlpool);
    }
    if n_inputs >= 50 && n_out >= 50 && in_groups * 2 >= n_out {
        return Some(CoinJoinKind::Wasabi2);
    }
    // A participant may take several equal outputs, but has at least one input of its own and at
    // most one change output.
    let changes = n_out - k;
    if k >= 10 && (9_000_000..=11_000_000).contains(&value) && changes <= n_inputs {
        return Some(CoinJoinKind::Wasabi1);
    }
    if k >= 3 && changes <= k + 1 && changes <= n_inputs {
        return Some(CoinJoinKind::EqualOutputs);
    }
    None
}

/// The change heuristics. Each output of a transaction gets a score: the rules that fire on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeRule {
    /// The output's script type is the type of every input, and no other output has it.
    AddressType,
    /// The output's address was never seen before, and it is the only such output.
    FreshAddress,
    /// Every other output is a round amount (a multiple of 0.001 BTC), this one is not.
    RoundNumber,
    /// The output is smaller than every input (else an input would have been unneeded), and it
    /// is the only such output.
    OptimalChange,
    /// One input, two outputs, and this output is spent the same way (a peeling chain goes on).
    PeelingChain,
}

impl ChangeRule {
    /// All rules.
    pub const ALL: [ChangeRule; 5] =
        [ChangeRule::AddressType, ChangeRule::FreshAddress, ChangeRule::RoundNumber, ChangeRule::OptimalChange, ChangeRule::PeelingChain];

    /// The rule's name (`address_type`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeRule::AddressType => "address_type",
            ChangeRule::FreshAddress => "fresh_address",
            ChangeRule::RoundNumber => "round_number",
            ChangeRule::OptimalChange => "optimal_change",
            ChangeRule::PeelingChain => "peeling_chain",
        }
    }

    /// The rule of name `name`.
    pub fn from_name(name: &str) -> Option<ChangeRule> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Rule names of a bit set.
pub fn rule_names(bits: u8) -> Vec<&'static str> {
    ChangeRule::ALL.iter().filter(|r| bits & r.bit() != 0).map(|r| r.as_str()).collect()
}

/// Which heuristics to apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Change rules whose change outputs are merged with the inputs. Empty: multi-input only.
    pub change_rules: Vec<ChangeRule>,
}

impl ClusterConfig {
    fn change_bits(&self) -> u8 {
        self.change_rules.iter().fold(0, |b, r| b | r.bit())
    }
}

/// The change scores of one transaction's outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeScore {
    /// Output position in the transaction.
    pub vout: u32,
    /// Rules that fired.
    pub rules: Vec<&'static str>,
}

/// The change rules that fire on each output of transaction `t` (bit sets, by output position).
/// Empty for coinbases, CoinJoins, single-output transactions and unresolved inputs.
pub fn change_bits(idx: &GraphIndex, t: u32) -> Vec<u8> {
    let (ins, outs) = (idx.tx_in_start(), idx.tx_out_start());
    let (i0, i1) = (ins[t as usize], ins[t as usize + 1]);
    let (o0, o1) = (outs[t as usize], outs[t as usize + 1]);
    let n_out = (o1 - o0) as usize;
    let prevout = idx.in_prevout();
    if n_out < 2 || (i0..i1).any(|i| prevout[i as usize] == NONE) {
        return vec![];
    }
    let value = idx.out_value();
    let values = &value[o0 as usize..o1 as usize];
    if coinjoin_kind((i1 - i0) as usize, values).is_some() {
        return vec![];
    }
    let (addr, ty, spender) = (idx.out_addr(), idx.out_type(), idx.out_spender());
    let in_values: Vec<u64> = (i0..i1).map(|i| value[prevout[i as usize] as usize]).collect();
    let in_types: Vec<u8> = (i0..i1).map(|i| ty[prevout[i as usize] as usize]).collect();
    let in_addrs: Vec<u32> = (i0..i1).map(|i| addr[prevout[i as usize] as usize]).collect();
    let min_in = in_values.iter().copied().min().unwrap_or(0);
    let mut bits = vec![0u8; n_out];
    let single_type = in_types.iter().all(|&x| x == in_types[0]).then_some(in_types[0]);
    let round = |v: u64| v.is_multiple_of(100_000);
    let fresh = |o: u64| {
        let a = addr[o as usize];
        a != NO_ADDRESS && idx.outputs_of(a).first() == Some(&o) && !in_addrs.contains(&a)
    };
    let is_peel_tx = |tx: u32| {
        let (a, b) = (ins[tx as usize], ins[tx as usize + 1]);
        let (c, d) = (outs[tx as usize], outs[tx as usize + 1]);
        b - a == 1 && d - c == 2
    };
    let this_is_peel = is_peel_tx(t);
    let mut candidates = [0usize; 5];
    for k in 0..n_out {
        let o = o0 + k as u64;
        let mut b = 0u8;
        if let Some(st) = single_type {
            if ty[o as usize] == st && (o0..o1).filter(|&x| x != o).all(|x| ty[x as usize] != st) {
                b |= ChangeRule::AddressType.bit();
            }
        }
        if fresh(o) {
            b |= ChangeRule::FreshAddress.bit();
        }
        if !round(values[k]) && (o0..o1).filter(|&x| x != o).all(|x| round(value[x as usize])) {
            b |= ChangeRule::RoundNumber.bit();
        }
        if values[k] < min_in {
            b |= ChangeRule::OptimalChange.bit();
        }
        if this_is_peel && spender[o as usize] != NONE && is_peel_tx(idx.tx_of_input(spender[o as usize])) {
            b |= ChangeRule::PeelingChain.bit();
        }
        for (r, c) in ChangeRule::ALL.iter().zip(candidates.iter_mut()) {
            if b & r.bit() != 0 {
                *c += 1;
            }
        }
        bits[k] = b;
    }
    // Rules that must single out one output fire only when they do.
    for r in [ChangeRule::FreshAddress, ChangeRule::OptimalChange, ChangeRule::PeelingChain] {
        if candidates[r as usize] > 1 {
            for b in bits.iter_mut() {
                *b &= !r.bit();
            }
        }
    }
    bits
}

/// The change output of a transaction under `enabled` rules: the one output on which enabled
/// rules fire, when they fire on no other output (rules pointing at different outputs disagree)
/// and, when several rules are enabled, at least two of them agree (a single rule such as
/// `fresh_address` often points at the payee instead).
pub fn change_output(bits: &[u8], enabled: u8) -> Option<(usize, u8)> {
    let mut fired = bits.iter().enumerate().filter(|(_, b)| *b & enabled != 0);
    let (k, b) = fired.next()?;
    if fired.next().is_some() {
        return None;
    }
    let needed = if enabled.count_ones() > 1 { 2 } else { 1 };
    ((b & enabled).count_ones() >= needed).then_some((k, b & enabled))
}

/// Why two addresses were merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merge {
    /// One address.
    pub a: u32,
    /// The other.
    pub b: u32,
    /// The transaction.
    pub tx: u32,
    /// 0 for multi-input; for change, the change rule bits (shifted by 8) with [`RULE_CHANGE`]
    /// in the low byte; [`RULE_DEPOSIT`] for a deposit address joining its exchange.
    pub rule: u32,
}

/// Low byte of [`Merge::rule`] for a change merge.
pub const RULE_CHANGE: u32 = 1;
/// [`Merge::rule`] of a deposit address joining the exchange it forwards to (account chains).
pub const RULE_DEPOSIT: u32 = 2;

impl Merge {
    /// A readable name of the rule (`multi_input`, `change(fresh_address+…)`, `deposit_address`).
    pub fn rule_name(&self) -> String {
        match self.rule & 0xff {
            0 => "multi_input".to_string(),
            RULE_DEPOSIT => "deposit_address".to_string(),
            _ => format!("change({})", rule_names((self.rule >> 8) as u8).join("+")),
        }
    }
}

/// What the clusters file holds besides the arrays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClustersMeta {
    /// Chain name.
    pub chain: String,
    /// Heuristics used.
    pub config: ClusterConfig,
    /// Index chunks covered.
    pub chunks: Vec<ChunkRef>,
    /// Transactions processed.
    pub transactions: u64,
    /// Addresses.
    pub addresses: u64,
    /// Clusters (singletons included).
    pub clusters: u64,
    /// Size of the largest cluster.
    pub largest_cluster: u64,
    /// Merges by multi-input.
    pub multi_input_merges: u64,
    /// Merges by change.
    pub change_merges: u64,
    /// Merges by the deposit-address heuristic (account chains).
    #[serde(default)]
    pub deposit_merges: u64,
    /// CoinJoins found, by kind.
    pub coinjoins: std::collections::BTreeMap<String, u64>,
}

/// A stored clustering, memory-mapped.
pub struct Clusters {
    file: SectionFile,
    meta: ClustersMeta,
}

/// Path of the clusters file of `chain`.
pub fn clusters_path(data_dir: &Path, chain: &str) -> PathBuf {
    index_dir(data_dir, chain).join("clusters.thc")
}

/// What [`cluster`] did.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    /// `full` or `incremental` (only the new transactions were read).
    pub mode: &'static str,
    /// Transactions processed in this run.
    pub transactions_processed: u64,
    /// The result.
    pub meta: ClustersMeta,
    /// Peak memory and bytes spilled.
    pub memory: StageMemory,
}

/// Clusters the addresses of `idx` with `config` and writes `clusters.thc` next to the index.
/// Multi-input clustering continues from a stored clustering of an older index of the same chain.
/// Holds the evidence in memory; [`cluster_within`] keeps to a memory budget.
pub fn cluster(data_dir: &Path, idx: &GraphIndex, config: &ClusterConfig, progress: &mut dyn FnMut(u64, u64)) -> Result<ClusterReport> {
    cluster_within(data_dir, idx, config, None, progress)
}

/// [`cluster`] within `memory_limit` bytes (`None`: no limit). The union-find (4 bytes per
/// address) stays in memory; the evidence of the merges (16 bytes each) spills to scratch files
/// beyond a share of the limit, and the member lists are written a window of clusters at a time.
/// The file written is the same, byte for byte.
pub fn cluster_within(
    data_dir: &Path,
    idx: &GraphIndex,
    config: &ClusterConfig,
    memory_limit: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ClusterReport> {
    let meter = StageMeter::start("cluster", memory_limit.unwrap_or(0));
    let chain = idx.meta().chain.clone();
    let path = clusters_path(data_dir, &chain);
    let previous = Clusters::open(&path)
        .ok()
        .filter(|c| c.meta.config == *config && config.change_rules.is_empty() && idx.meta().chunks.starts_with(&c.meta.chunks) && c.meta.chain == chain);
    if let Some(p) = &previous {
        if p.meta.chunks == idx.meta().chunks {
            return Ok(ClusterReport { mode: "unchanged", transactions_processed: 0, meta: p.meta.clone(), memory: meter.report() });
        }
    }
    let scratch = Scratch::new(data_dir, "cluster").map_err(|e| Error::io(&data_dir.join("scratch"), e))?;
    let to = SpillTo::new(scratch, meter.clone());
    let budget = ClusterBudget::new(memory_limit, idx.address_count() as u64);
    let mut evidence = Evidence::new(budget.evidence, &to);
    let (mut uf, mut coinjoins, start) = match &previous {
        Some(p) => {
            let mut uf = UnionFind::from_parents(p.cluster_ids().to_vec());
            uf.grow(idx.address_count());
            evidence.extend_from(p)?;
            (uf, p.coinjoins(), p.meta.transactions as u32)
        }
        None => (UnionFind::new(idx.address_count()), vec![], 0),
    };
    let mode = if previous.is_some() { "incremental" } else { "full" };
    drop(previous);
    let n = idx.tx_count() as u32;
    multi_input(idx, start..n, &mut uf, &mut |m| evidence.push(m), &mut coinjoins, progress)?;
    let enabled = config.change_bits();
    if enabled != 0 {
        let (outs, addr, prevout, ins) = (idx.tx_out_start(), idx.out_addr(), idx.in_prevout(), idx.tx_in_start());
        for t in 0..n {
            let bits = change_bits(idx, t);
            if let Some((k, fired)) = change_output(&bits, enabled) {
                let o = outs[t as usize] as usize + k;
                let first_in = prevout[ins[t as usize] as usize];
                let (a, b) = (addr[first_in as usize], addr[o]);
                if a != NO_ADDRESS && b != NO_ADDRESS && uf.union(a, b) {
                    evidence.push(Merge { a, b, tx: t, rule: RULE_CHANGE | (fired as u32) << 8 })?;
                }
            }
        }
    }
    let roots = uf.roots();
    tracehound_memory::release_free_memory();
    let meta = write_clusters(&path, &chain, idx, config, roots, evidence, &coinjoins, budget.window)?;
    Ok(ClusterReport { mode, transactions_processed: (n - start) as u64, meta, memory: to.meter().report() })
}

/// How clustering shares its limit beyond the union-find: the evidence's share, and the window
/// of the member-list passes (bytes).
struct ClusterBudget {
    evidence: Option<u64>,
    window: Option<u64>,
}

impl ClusterBudget {
    fn new(limit: Option<u64>, addresses: u64) -> ClusterBudget {
        let rest = limit.map(|l| l.saturating_sub(4 * addresses));
        ClusterBudget { evidence: rest.map(|r| (r / 8).min(1 << 28)), window: rest.map(|r| r / 2) }
    }
}

/// The merges of a clustering run, as the four evidence columns of the file (spilled beyond
/// their budget), with counts per rule.
pub(crate) struct Evidence {
    a: SpillVec<u32>,
    b: SpillVec<u32>,
    tx: SpillVec<u32>,
    rule: SpillVec<u32>,
    multi_input: u64,
    change: u64,
    deposit: u64,
}

impl Evidence {
    /// No merges yet; at most about `cap_bytes` of them in memory (`None`: all).
    pub(crate) fn new(cap_bytes: Option<u64>, to: &SpillTo) -> Evidence {
        let each = cap_bytes.map(|c| c / 4);
        Evidence {
            a: SpillVec::new("ev_a", each, to),
            b: SpillVec::new("ev_b", each, to),
            tx: SpillVec::new("ev_tx", each, to),
            rule: SpillVec::new("ev_rule", each, to),
            multi_input: 0,
            change: 0,
            deposit: 0,
        }
    }

    /// Records a merge.
    pub(crate) fn push(&mut self, m: Merge) -> Result<()> {
        match m.rule & 0xff {
            0 => self.multi_input += 1,
            RULE_CHANGE => self.change += 1,
            RULE_DEPOSIT => self.deposit += 1,
            _ => {}
        }
        self.a.push(m.a)?;
        self.b.push(m.b)?;
        self.tx.push(m.tx)?;
        self.rule.push(m.rule)
    }

    /// Records the merges of a stored clustering (read from its file, not held).
    fn extend_from(&mut self, c: &Clusters) -> Result<()> {
        for i in 0..c.merge_count() {
            self.push(c.merge(i))?;
        }
        Ok(())
    }
}

/// The multi-input pass over transactions `range`: every input address of a transaction that is
/// not a CoinJoin joins the first input's address. Hands each merge to `on_merge` and records
/// CoinJoins.
pub fn multi_input(
    idx: &GraphIndex,
    range: std::ops::Range<u32>,
    uf: &mut UnionFind,
    on_merge: &mut dyn FnMut(Merge) -> Result<()>,
    coinjoins: &mut Vec<(u32, CoinJoinKind)>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    let (ins, outs, prevout, addr, value) = (idx.tx_in_start(), idx.tx_out_start(), idx.in_prevout(), idx.out_addr(), idx.out_value());
    let total = range.end as u64;
    for t in range {
        let (i0, i1) = (ins[t as usize] as usize, ins[t as usize + 1] as usize);
        if i1 - i0 < 2 {
            continue;
        }
        let (o0, o1) = (outs[t as usize] as usize, outs[t as usize + 1] as usize);
        if o1 - o0 >= 3 {
            if let Some(kind) = coinjoin_kind(i1 - i0, &value[o0..o1]) {
                coinjoins.push((t, kind));
                continue;
            }
        }
        let mut first = NO_ADDRESS;
        for &p in &prevout[i0..i1] {
            if p == NONE {
                continue;
            }
            let a = addr[p as usize];
            if a == NO_ADDRESS {
                continue;
            }
            if first == NO_ADDRESS {
                first = a;
            } else if uf.union(first, a) {
                on_merge(Merge { a: first, b: a, tx: t, rule: 0 })?;
            }
        }
        if t.is_multiple_of(1 << 20) {
            progress(t as u64, total);
        }
    }
    progress(total, total);
    Ok(())
}

/// Writes a clusters file: each address's cluster id (`roots`), the members of each cluster
/// (grouped by cluster id, a window of `window` bytes of clusters per pass; `None`: one pass),
/// the evidence and the CoinJoins.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_clusters(
    path: &Path,
    chain: &str,
    idx: &dyn AddressIndex,
    config: &ClusterConfig,
    roots: Vec<u32>,
    mut evidence: Evidence,
    coinjoins: &[(u32, CoinJoinKind)],
    window: Option<u64>,
) -> Result<ClustersMeta> {
    let n = roots.len() as u64;
    let w = window.map_or(u64::MAX, |w| (w / 8).max(1024));
    let windows = || (0..n.div_ceil(w.min(n.max(1)))).map(move |k| (k * w, n.min((k + 1) * w)));
    // Members per cluster id in window [lo, hi).
    let counts = |lo: u64, hi: u64| {
        let mut count = vec![0u32; (hi - lo) as usize];
        for &r in &roots {
            if (r as u64) >= lo && (r as u64) < hi {
                count[(r as u64 - lo) as usize] += 1;
            }
        }
        count
    };
    let (mut clusters, mut largest) = (0u64, 0u64);
    for (lo, hi) in windows() {
        let c = counts(lo, hi);
        clusters += c.iter().filter(|&&x| x > 0).count() as u64;
        largest = largest.max(c.iter().copied().max().unwrap_or(0) as u64);
    }
    let mut by_kind = std::collections::BTreeMap::new();
    for (_, k) in coinjoins {
        *by_kind.entry(k.as_str().to_string()).or_insert(0u64) += 1;
    }
    let meta = ClustersMeta {
        chain: chain.to_string(),
        config: config.clone(),
        chunks: idx.chunks().to_vec(),
        transactions: idx.tx_count() as u64,
        addresses: n,
        clusters,
        largest_cluster: largest,
        multi_input_merges: evidence.multi_input,
        change_merges: evidence.change,
        deposit_merges: evidence.deposit,
        coinjoins: by_kind,
    };
    let meta_bytes = serde_json::to_vec(&meta).expect("meta serializes");
    let merges = evidence.a.byte_len();
    let sections: Vec<(String, u64)> = [
        ("meta", meta_bytes.len() as u64),
        ("cluster", 4 * n),
        ("member_start", 4 * (n + 1)),
        ("members", 4 * n),
        ("ev_a", merges),
        ("ev_b", merges),
        ("ev_tx", merges),
        ("ev_rule", merges),
        ("coinjoin_tx", 4 * coinjoins.len() as u64),
        ("coinjoin_kind", coinjoins.len() as u64),
    ]
    .iter()
    .map(|(s, l)| (s.to_string(), *l))
    .collect();
    fn bytes<T: bytemuck::Pod>(v: &[T]) -> &[u8] {
        bytemuck::cast_slice(v)
    }
    file::write_streamed(path, MAGIC, CLUSTERS_VERSION, &sections, &mut |s, sink| match sections[s].0.as_str() {
        "meta" => sink(&meta_bytes),
        "cluster" => sink(bytes(&roots)),
        "member_start" => {
            let mut base = 0u32;
            for (lo, hi) in windows() {
                let mut c = counts(lo, hi);
                for x in c.iter_mut() {
                    let k = *x;
                    *x = base;
                    base += k;
                }
                sink(bytes(&c))?;
            }
            sink(bytes(&[base]))
        }
        "members" => {
            for (lo, hi) in windows() {
                let mut place = counts(lo, hi);
                let mut total = 0u32;
                for x in place.iter_mut() {
                    let k = *x;
                    *x = total;
                    total += k;
                }
                // A window of clusters may hold more members than fit: its places in turn.
                let pw = w.max(1) as u32;
                let mut plo = 0u32;
                while plo < total {
                    let phi = total.min(plo.saturating_add(pw));
                    let mut at = place.clone();
                    let mut members = vec![0u32; (phi - plo) as usize];
                    for (a, &r) in roots.iter().enumerate() {
                        if (r as u64) >= lo && (r as u64) < hi {
                            let p = &mut at[(r as u64 - lo) as usize];
                            if *p >= plo && *p < phi {
                                members[(*p - plo) as usize] = a as u32;
                            }
                            *p += 1;
                        }
                    }
                    sink(bytes(&members))?;
                    plo = phi;
                }
            }
            Ok(())
        }
        "ev_a" => evidence.a.for_each(&mut |v| sink(bytes(v))),
        "ev_b" => evidence.b.for_each(&mut |v| sink(bytes(v))),
        "ev_tx" => evidence.tx.for_each(&mut |v| sink(bytes(v))),
        "ev_rule" => evidence.rule.for_each(&mut |v| sink(bytes(v))),
        "coinjoin_tx" => sink(bytes(&coinjoins.iter().map(|c| c.0).collect::<Vec<u32>>())),
        "coinjoin_kind" => sink(&coinjoins.iter().map(|c| c.1 as u8).collect::<Vec<u8>>()),
        other => unreachable!("section {other} has no writer"),
    })?;
    Ok(meta)
}

/// One step of an explanation: `from` and `to` were joined by `tx` under `rule`.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainStep {
    /// Address joined from.
    pub from: String,
    /// Address joined to.
    pub to: String,
    /// Transaction hash.
    pub transaction: String,
    /// Block height.
    pub block_number: u64,
    /// Rule (`multi_input`, `change(...)`, `deposit_address`).
    pub rule: String,
}

impl Clusters {
    /// Opens a clusters file, checking it (in full once after it is written: see
    /// [`SectionFile::open_once_checked`]).
    pub fn open(path: &Path) -> Result<Clusters> {
        let (file, checked_before) = SectionFile::open_once_checked(path, MAGIC, CLUSTERS_VERSION)?;
        let meta: ClustersMeta =
            serde_json::from_slice(file.slice::<u8>("meta")?).map_err(|e| Error::Corrupt { path: path.to_path_buf(), reason: format!("meta section: {e}") })?;
        let n = meta.addresses as usize;
        let c = Clusters { file, meta };
        for (s, want) in [("cluster", n), ("member_start", n + 1), ("members", n)] {
            if c.file.slice::<u32>(s)?.len() != want {
                return Err(Error::Corrupt { path: path.to_path_buf(), reason: format!("section {s} has the wrong length") });
            }
        }
        let e = c.file.slice::<u32>("ev_a")?.len();
        for s in ["ev_b", "ev_tx", "ev_rule"] {
            if c.file.slice::<u32>(s)?.len() != e {
                return Err(Error::Corrupt { path: path.to_path_buf(), reason: format!("section {s} has the wrong length") });
            }
        }
        if c.file.slice::<u32>("coinjoin_tx")?.len() != c.file.slice::<u8>("coinjoin_kind")?.len() {
            return Err(Error::Corrupt { path: path.to_path_buf(), reason: "coinjoin sections differ in length".into() });
        }
        if checked_before {
            return Ok(c);
        }
        let start = c.file.slice::<u32>("member_start")?;
        let in_range = |name: &str| -> Result<bool> { Ok(c.file.slice::<u32>(name)?.iter().all(|&x| (x as usize) < n)) };
        if start.first() != Some(&0)
            || start.last() != Some(&(n as u32))
            || !start.windows(2).all(|w| w[0] <= w[1])
            || !in_range("cluster")?
            || !in_range("members")?
            || !in_range("ev_a")?
            || !in_range("ev_b")?
        {
            return Err(Error::Corrupt { path: path.to_path_buf(), reason: "cluster ids or member ranges point outside their arrays".into() });
        }
        c.file.mark_checked();
        Ok(c)
    }

    /// Opens the clustering of `idx`'s chain and checks it covers the same blocks and addresses.
    pub fn open_current(data_dir: &Path, idx: &dyn AddressIndex) -> Result<Clusters> {
        let chain = idx.chain();
        let path = clusters_path(data_dir, chain);
        if !path.exists() {
            return Err(Error::Stale(format!("chain {chain:?} is not clustered yet; run `tracehound cluster`")));
        }
        let c = Clusters::open(&path)?;
        if c.meta.chunks != idx.chunks() || c.meta.addresses != idx.address_count() as u64 {
            return Err(Error::Stale(format!("the clusters of {chain:?} are older than the graph index; run `tracehound cluster`")));
        }
        Ok(c)
    }

    /// What the file holds.
    pub fn meta(&self) -> &ClustersMeta {
        &self.meta
    }

    /// Cluster id of every address.
    pub fn cluster_ids(&self) -> &[u32] {
        self.file.slice("cluster").expect("checked on open")
    }

    /// Cluster id of address `a`.
    pub fn cluster_of(&self, a: u32) -> u32 {
        self.cluster_ids()[a as usize]
    }

    /// Members of cluster `c` (empty if `c` is not a cluster id).
    pub fn members(&self, c: u32) -> &[u32] {
        let start: &[u32] = self.file.slice("member_start").expect("checked on open");
        let members: &[u32] = self.file.slice("members").expect("checked on open");
        match (start.get(c as usize), start.get(c as usize + 1)) {
            (Some(&s), Some(&e)) => &members[s as usize..e as usize],
            _ => &[],
        }
    }

    /// Every recorded merge (all in memory: 16 bytes each; [`Clusters::merge`] reads one).
    pub fn merges(&self) -> Vec<Merge> {
        (0..self.merge_count()).map(|i| self.merge(i)).collect()
    }

    /// Number of recorded merges.
    pub fn merge_count(&self) -> usize {
        self.file.slice::<u32>("ev_a").expect("checked on open").len()
    }

    /// Merge `i`, in the order they were made.
    pub fn merge(&self, i: usize) -> Merge {
        let s = |n: &str| -> u32 { self.file.slice::<u32>(n).expect("checked on open")[i] };
        Merge { a: s("ev_a"), b: s("ev_b"), tx: s("ev_tx"), rule: s("ev_rule") }
    }

    /// Every CoinJoin found, with its kind.
    pub fn coinjoins(&self) -> Vec<(u32, CoinJoinKind)> {
        let tx: &[u32] = self.file.slice("coinjoin_tx").expect("checked on open");
        let kind: &[u8] = self.file.slice("coinjoin_kind").expect("checked on open");
        tx.iter().zip(kind).map(|(&t, &k)| (t, CoinJoinKind::ALL[(k as usize).min(3)])).collect()
    }

    /// The shortest chain of merges joining addresses `a` and `b`, or `None` if they are in
    /// different clusters.
    pub fn explain(&self, idx: &dyn AddressIndex, a: u32, b: u32) -> Option<Vec<ExplainStep>> {
        let c = self.cluster_of(a);
        if c != self.cluster_of(b) {
            return None;
        }
        let ev_a: &[u32] = self.file.slice("ev_a").expect("checked on open");
        let merges: Vec<Merge> = (0..ev_a.len()).filter(|&i| self.cluster_of(ev_a[i]) == c).map(|i| self.merge(i)).collect();
        let mut adj: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, m) in merges.iter().enumerate() {
            adj.entry(m.a).or_default().push(i);
            adj.entry(m.b).or_default().push(i);
        }
        let mut came: HashMap<u32, (u32, usize)> = HashMap::new();
        let mut queue = VecDeque::from([a]);
        came.insert(a, (a, usize::MAX));
        while let Some(x) = queue.pop_front() {
            if x == b {
                break;
            }
            for &i in adj.get(&x).map(|v| v.as_slice()).unwrap_or(&[]) {
                let y = if merges[i].a == x { merges[i].b } else { merges[i].a };
                if let std::collections::hash_map::Entry::Vacant(e) = came.entry(y) {
                    e.insert((x, i));
                    queue.push_back(y);
                }
            }
        }
        let mut steps = vec![];
        let mut x = b;
        while x != a {
            let (prev, i) = *came.get(&x)?;
            let m = merges[i];
            steps.push(ExplainStep {
                from: idx.address(prev).to_string(),
                to: idx.address(x).to_string(),
                transaction: idx.tx_hash(m.tx),
                block_number: idx.tx_block(m.tx),
                rule: m.rule_name(),
            });
            x = prev;
        }
        steps.reverse();
        Some(steps)
    }
}

/// Pairwise precision and recall of clusters against true wallets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairwiseScore {
    /// Addresses compared (those with a known wallet).
    pub addresses: u64,
    /// Address pairs put in one cluster.
    pub predicted_pairs: u128,
    /// Address pairs in one wallet.
    pub true_pairs: u128,
    /// Pairs in one cluster and one wallet.
    pub correct_pairs: u128,
    /// correct / predicted (1 when nothing was predicted).
    pub precision: f64,
    /// correct / true (1 when there is nothing to find).
    pub recall: f64,
}

/// Scores `clusters` (cluster id per item) against `truth` (wallet per item, `None` if unknown).
pub fn pairwise_score(clusters: &[u32], truth: &[Option<u32>]) -> PairwiseScore {
    let pairs = |n: u64| (n as u128) * (n.saturating_sub(1) as u128) / 2;
    let mut cells: HashMap<(u32, u32), u64> = HashMap::new();
    let mut by_cluster: HashMap<u32, u64> = HashMap::new();
    let mut by_wallet: HashMap<u32, u64> = HashMap::new();
    let mut n = 0;
    for (c, w) in clusters.iter().zip(truth) {
        if let Some(w) = w {
            n += 1;
            *cells.entry((*c, *w)).or_default() += 1;
            *by_cluster.entry(*c).or_default() += 1;
            *by_wallet.entry(*w).or_default() += 1;
        }
    }
    let correct: u128 = cells.values().map(|&x| pairs(x)).sum();
    let predicted: u128 = by_cluster.values().map(|&x| pairs(x)).sum();
    let true_pairs: u128 = by_wallet.values().map(|&x| pairs(x)).sum();
    let ratio = |a: u128, b: u128| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    PairwiseScore {
        addresses: n,
        predicted_pairs: predicted,
        true_pairs,
        correct_pairs: correct,
        precision: ratio(correct, predicted),
        recall: ratio(correct, true_pairs),
    }
}

/// The script type of an output as its Bitcoin Core name.
pub fn type_name(code: u8) -> &'static str {
    ScriptType::ALL.get(code as usize).map(|t| t.as_str()).unwrap_or("nonstandard")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain textbook union-find (rank, full path compression) as a second implementation.
    fn reference(n: usize, edges: &[(u32, u32)]) -> Vec<u32> {
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(p: &mut [usize], x: usize) -> usize {
            if p[x] != x {
                let r = find(p, p[x]);
                p[x] = r;
            }
            p[x]
        }
        for &(a, b) in edges {
            let (ra, rb) = (find(&mut parent, a as usize), find(&mut parent, b as usize));
            if ra != rb {
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
        // Smallest member of each set.
        let mut min_of = vec![u32::MAX; n];
        for x in 0..n {
            let r = find(&mut parent, x);
            min_of[r] = min_of[r].min(x as u32);
        }
        (0..n).map(|x| min_of[find(&mut parent, x)]).collect()
    }

    proptest! {
        #[test]
        fn union_find_agrees_with_reference(n in 1usize..200, edges in proptest::collection::vec((0u32..200, 0u32..200), 0..300), split in 0usize..300) {
            let edges: Vec<(u32, u32)> = edges.into_iter().map(|(a, b)| (a % n as u32, b % n as u32)).collect();
            let mut uf = UnionFind::new(n);
            for &(a, b) in &edges {
                uf.union(a, b);
            }
            let expected = reference(n, &edges);
            prop_assert_eq!(uf.clone().roots(), expected.clone());
            // In two batches (as incremental runs do), the ids are the same.
            let split = split.min(edges.len());
            let mut first = UnionFind::new(n);
            for &(a, b) in &edges[..split] {
                first.union(a, b);
            }
            let mut second = UnionFind::from_parents(first.roots());
            for &(a, b) in &edges[split..] {
                second.union(a, b);
            }
            prop_assert_eq!(second.roots(), expected);
        }
    }

    /// The CoinJoin rules written plainly with a hash map, as a second implementation.
    fn coinjoin_reference(n_inputs: usize, outs: &[u64]) -> Option<CoinJoinKind> {
        if n_inputs < 2 || outs.len() < 3 {
            return None;
        }
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for &v in outs.iter().filter(|&&v| v > DUST) {
            *counts.entry(v).or_default() += 1;
        }
        let (&value, &k) = counts.iter().max_by_key(|(v, c)| (**c, **v))?;
        let in_groups: usize = counts.values().filter(|&&c| c >= 2).sum();
        let changes = outs.len() - k;
        if n_inputs == 5 && outs.len() == 5 && k == 5 && WHIRLPOOL_POOLS.contains(&value) {
            Some(CoinJoinKind::Whirlpool)
        } else if n_inputs >= 50 && outs.len() >= 50 && in_groups * 2 >= outs.len() {
            Some(CoinJoinKind::Wasabi2)
        } else if k >= 10 && (9_000_000..=11_000_000).contains(&value) && changes <= n_inputs {
            Some(CoinJoinKind::Wasabi1)
        } else if k >= 3 && changes <= k + 1 && changes <= n_inputs {
            Some(CoinJoinKind::EqualOutputs)
        } else {
            None
        }
    }

    proptest! {
        #[test]
        fn coinjoin_rules_agree_with_reference(n_inputs in 0usize..80, outs in proptest::collection::vec(prop_oneof![Just(100_000u64), Just(10_000_000), Just(500), 0u64..3, 1_000u64..1_010], 0..90)) {
            prop_assert_eq!(coinjoin_kind(n_inputs, &outs), coinjoin_reference(n_inputs, &outs));
        }
    }

    #[test]
    fn coinjoin_shapes() {
        let btc = 100_000_000u64;
        assert_eq!(coinjoin_kind(5, &[btc / 20; 5]), Some(CoinJoinKind::Whirlpool));
        assert_eq!(coinjoin_kind(5, &[btc / 20 + 1; 5]), Some(CoinJoinKind::EqualOutputs));
        let mut wasabi1 = vec![10_000_000u64; 30];
        wasabi1.extend((0..25).map(|i| 1_000_000 + i * 777));
        assert_eq!(coinjoin_kind(40, &wasabi1), Some(CoinJoinKind::Wasabi1));
        let mut wasabi2 = vec![];
        for d in [5_000u64, 10_000, 20_000, 50_000, 100_000, 200_000] {
            wasabi2.extend([d; 12]);
        }
        wasabi2.extend((0..10).map(|i| 33_333 + i));
        assert_eq!(coinjoin_kind(60, &wasabi2), Some(CoinJoinKind::Wasabi2));
        // A payment with change, a batch payout from one input, and two equal outputs are not.
        assert_eq!(coinjoin_kind(2, &[5_000_000, 1_234_567]), None);
        assert_eq!(coinjoin_kind(1, &[1_000_000; 10]), None);
        assert_eq!(coinjoin_kind(3, &[1_000_000, 1_000_000, 777_777]), None);
        // Too many distinct outputs for the equal ones to be the participants'.
        assert_eq!(coinjoin_kind(3, &[1_000_000, 1_000_000, 1_000_000, 5, 6_000, 7_000, 8_000, 9_000, 10_000]), None);
    }

    #[test]
    fn change_output_needs_enabled_rules_to_agree() {
        let fresh = ChangeRule::FreshAddress.bit();
        let optimal = ChangeRule::OptimalChange.bit();
        let round = ChangeRule::RoundNumber.bit();
        assert_eq!(change_output(&[fresh, 0], fresh), Some((0, fresh)));
        assert_eq!(change_output(&[fresh, 0], fresh | optimal), None, "with several rules enabled, two must agree");
        assert_eq!(change_output(&[0, fresh | optimal | round], fresh | optimal), Some((1, fresh | optimal)));
        assert_eq!(change_output(&[fresh, optimal], fresh | optimal), None, "rules pointing at different outputs disagree");
        assert_eq!(change_output(&[fresh | optimal, optimal], fresh | optimal), None);
        assert_eq!(change_output(&[fresh, optimal], fresh), Some((0, fresh)), "a disabled rule does not count");
        assert_eq!(change_output(&[fresh, 0], optimal), None);
    }

    #[test]
    fn pairwise_known_answer() {
        // Clusters {0,1,2} {3}; wallets {0,1} {2,3}.
        let s = pairwise_score(&[0, 0, 0, 3], &[Some(0), Some(0), Some(1), Some(1)]);
        assert_eq!((s.predicted_pairs, s.true_pairs, s.correct_pairs), (3, 2, 1));
        assert!((s.precision - 1.0 / 3.0).abs() < 1e-12 && (s.recall - 0.5).abs() < 1e-12);
    }
}

//! `cargo bench -p tracehound-bench --bench cluster`: the union-find pass of multi-input
//! clustering over a simulated chain's graph index, tracehound's `UnionFind` (4 bytes per
//! address, path halving, smallest id as root) side by side with two plain union-finds on the
//! same input pairs: a textbook one (usize parents, union by rank, recursive full path
//! compression) and petgraph's `UnionFind<u32>`.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `BENCH_CLUSTER_BLOCKS` | 40000 | Blocks to simulate (about 10.4M inputs at 200 tx/block) |
//! | `BENCH_TXS_PER_BLOCK` | 200 | Target transactions per block |
//!
//! Without `--bench` (as `cargo test --benches` runs it) it does a smoke run on 300 blocks.

use std::path::Path;
use std::time::Instant;
use tracehound_graph::cluster::{self, UnionFind};
use tracehound_graph::index::{GraphIndex, NONE, NO_ADDRESS};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn vm_hwm_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
}

/// The (first input address, other input address) pairs the multi-input pass unions, CoinJoins excluded.
fn pairs(idx: &GraphIndex) -> Vec<(u32, u32)> {
    let (ins, outs, prevout, addr, value) = (idx.tx_in_start(), idx.tx_out_start(), idx.in_prevout(), idx.out_addr(), idx.out_value());
    let mut v = vec![];
    for t in 0..idx.tx_count() {
        let (i0, i1) = (ins[t] as usize, ins[t + 1] as usize);
        let (o0, o1) = (outs[t] as usize, outs[t + 1] as usize);
        if i1 - i0 < 2 || cluster::coinjoin_kind(i1 - i0, &value[o0..o1]).is_some() {
            continue;
        }
        let mut first = NO_ADDRESS;
        for &p in &prevout[i0..i1] {
            if p == NONE || addr[p as usize] == NO_ADDRESS {
                continue;
            }
            if first == NO_ADDRESS {
                first = addr[p as usize];
            } else {
                v.push((first, addr[p as usize]));
            }
        }
    }
    v
}

struct Textbook {
    parent: Vec<usize>,
    rank: Vec<u8>,
}

impl Textbook {
    fn find(&mut self, x: usize) -> usize {
        if self.parent[x] != x {
            let r = self.find(self.parent[x]);
            self.parent[x] = r;
        }
        self.parent[x]
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        match self.rank[ra].cmp(&self.rank[rb]) {
            std::cmp::Ordering::Less => self.parent[ra] = rb,
            std::cmp::Ordering::Greater => self.parent[rb] = ra,
            std::cmp::Ordering::Equal => {
                self.parent[rb] = ra;
                self.rank[ra] += 1;
            }
        }
    }
}

fn best_of<F: FnMut() -> usize>(runs: usize, mut f: F) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut out = 0;
    for _ in 0..runs {
        let t = Instant::now();
        out = std::hint::black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, out)
}

fn main() {
    tracehound_bench::configure_allocator();
    let full = std::env::args().any(|a| a == "--bench");
    let blocks = if full { env_u64("BENCH_CLUSTER_BLOCKS", 40_000) } else { 300 };
    let txs = env_u64("BENCH_TXS_PER_BLOCK", 200) as u32;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target").to_string());
    let root = Path::new(&target).join(format!("bench-cluster-{blocks}-{txs}"));
    let idx = tracehound_bench::prepare_index(blocks, txs, &root);
    let n = idx.address_count();
    let inputs = idx.in_prevout().len();
    let runs = if full { 5 } else { 1 };
    eprintln!("chain: {} transactions, {inputs} inputs, {n} addresses", idx.tx_count());

    // The whole multi-input pass as `tracehound cluster` runs it: reading the index, CoinJoin
    // checks, unions and evidence.
    let (pass, merges) = best_of(runs, || {
        let mut uf = UnionFind::new(n);
        let (mut merges, mut cj) = (vec![], vec![]);
        cluster::multi_input(
            &idx,
            0..idx.tx_count() as u32,
            &mut uf,
            &mut |m| {
                merges.push(m);
                Ok(())
            },
            &mut cj,
            &mut |_, _| {},
        )
        .unwrap();
        merges.len()
    });
    let p = pairs(&idx);
    let (ours, _) = best_of(runs, || {
        let mut uf = UnionFind::new(n);
        p.iter().filter(|&&(a, b)| uf.union(a, b)).count()
    });
    let (textbook, _) = best_of(runs, || {
        let mut uf = Textbook { parent: (0..n).collect(), rank: vec![0; n] };
        for &(a, b) in &p {
            uf.union(a as usize, b as usize);
        }
        uf.parent.len()
    });
    let (petgraph, _) = best_of(runs, || {
        let mut uf = petgraph::unionfind::UnionFind::<u32>::new(n);
        p.iter().filter(|&&(a, b)| uf.union(a, b)).count()
    });
    let rate = |s: f64| inputs as f64 / s / 1e6;
    let pair_rate = |s: f64| p.len() as f64 / s / 1e6;
    println!("| work | seconds | M inputs/s | M unions/s | bytes/address | vs tracehound |");
    println!("|---|---|---|---|---|---|");
    println!("| tracehound multi-input pass (index walk + CoinJoin checks + unions + evidence; {merges} merges) | {pass:.3} | {:.1} | – | 4 | – |", rate(pass));
    println!("| tracehound `UnionFind` on the {} input pairs | {ours:.3} | {:.1} | {:.1} | 4 | 1.00 |", p.len(), rate(ours), pair_rate(ours));
    println!(
        "| textbook union-find (usize, rank, full compression) | {textbook:.3} | {:.1} | {:.1} | 9 | {:.2}x slower |",
        rate(textbook),
        pair_rate(textbook),
        textbook / ours
    );
    println!("| petgraph 0.8 `UnionFind<u32>` | {petgraph:.3} | {:.1} | {:.1} | 5 | {:.2}x slower |", rate(petgraph), pair_rate(petgraph), petgraph / ours);
    println!(
        "\n{} transactions, {inputs} inputs, {n} addresses; single thread; best of {runs}; peak RSS of the process {:.0} MiB (index mapped)",
        idx.tx_count(),
        vm_hwm_mib()
    );
}

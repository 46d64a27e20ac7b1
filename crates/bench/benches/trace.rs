//! `cargo bench -p tracehound-bench --bench trace`: 10-hop taint traces over a simulated chain's
//! graph index, haircut and FIFO, forward, with nothing to stop them (no sinks): the heist's loot
//! and random outputs of the chain's first half as seeds.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `BENCH_TRACE_BLOCKS` | 80000 | Blocks to simulate (about 10.3M transactions at 200 tx/block) |
//! | `BENCH_TXS_PER_BLOCK` | 200 | Target transactions per block |
//! | `BENCH_TRACE_SEEDS` | 50 | Random seed outputs |
//!
//! Without `--bench` (as `cargo test --benches` runs it) it does a smoke run on 300 blocks.

use std::path::Path;
use std::time::Instant;
use tracehound_trace::utxo::{trace, Options, Seed, Sinks, UtxoGraph};
use tracehound_trace::{Direction, Fees, Limits, Model};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    tracehound_bench::configure_allocator();
    let full = std::env::args().any(|a| a == "--bench");
    let blocks = if full { env_u64("BENCH_TRACE_BLOCKS", 80_000) } else { 300 };
    let txs = env_u64("BENCH_TXS_PER_BLOCK", 200) as u32;
    let n_seeds = if full { env_u64("BENCH_TRACE_SEEDS", 50) } else { 5 };
    let target = tracehound_bench::target_dir();
    let root = Path::new(&target).join(format!("bench-cluster-{blocks}-{txs}"));
    let idx = tracehound_bench::prepare_index(blocks, txs, &root);
    let g = UtxoGraph::of(&idx);
    eprintln!("chain: {} transactions, {} outputs, {} addresses", idx.tx_count(), g.out_value.len(), idx.address_count());

    // Seeds: the heist's loot, and outputs spread over the first half of the chain (deterministic).
    // Only the heist's txid is needed of the ground truth (2 GB at this size): read just that
    // field, streaming, instead of holding the whole document in memory next to the index.
    #[derive(serde::Deserialize)]
    struct Heist {
        txid: String,
    }
    #[derive(serde::Deserialize)]
    struct Truth {
        heist: Option<Heist>,
    }
    let file = std::fs::File::open(root.join("sim/ground_truth.json")).expect("ground truth");
    let truth: Truth = serde_json::from_reader(std::io::BufReader::with_capacity(1 << 20, file)).expect("json");
    let mut seeds: Vec<(String, u64)> = vec![];
    if let Some(h) = truth.heist {
        let t = idx.tx_id(&h.txid).expect("heist tx indexed");
        seeds.push(("heist loot".into(), idx.tx_out_start()[t as usize]));
    }
    let half = g.out_value.len() as u64 / 2;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while seeds.len() < n_seeds as usize + 1 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let o = x % half;
        if g.out_value[o as usize] > 0 {
            seeds.push((format!("output #{o}"), o));
        }
    }

    // Each trace runs twice: first on a cold index (its pages may still be on disk), then warm
    // (as in a server that keeps the index mapped). The table gives the warm times and the
    // slowest cold one.
    println!("| model | seeds | median ms | p90 ms | max ms | max ms, cold | still-held outputs (median) | edges (median) |");
    println!("|---|---|---|---|---|---|---|---|");
    for model in [Model::Haircut, Model::Fifo, Model::Poison] {
        let opts = Options { model, direction: Direction::Forward, fees: Fees::Drop, limits: Limits { max_hops: 10, ..Limits::default() } };
        let mut times = vec![];
        let mut cold: f64 = 0.0;
        let mut reached = vec![];
        let mut edges = vec![];
        for (name, o) in &seeds {
            let start = Instant::now();
            trace(g, &idx, "bitcoin_regtest", &[Seed::Output(*o)], &Sinks::default(), &opts).expect("trace");
            cold = cold.max(start.elapsed().as_secs_f64() * 1e3);
            let start = Instant::now();
            let t = trace(g, &idx, "bitcoin_regtest", &[Seed::Output(*o)], &Sinks::default(), &opts).expect("trace");
            let ms = start.elapsed().as_secs_f64() * 1e3;
            if model != Model::Poison {
                assert_eq!(t.accounting.total(), t.seed_amount, "{name}: accounting");
            }
            if name == "heist loot" {
                eprintln!(
                    "{model} heist loot: {ms:.2} ms, {} edges, {} held outputs, hop limit {} sat",
                    t.edges.len(),
                    t.accounting.held.len(),
                    t.accounting.hop_limit
                );
            }
            times.push(ms);
            reached.push(t.accounting.held.len() as f64);
            edges.push(t.edges.len() as f64);
        }
        let max = times.iter().cloned().fold(0.0, f64::max);
        println!(
            "| {model} | {} | {:.2} | {:.2} | {:.2} | {cold:.2} | {:.0} | {:.0} |",
            seeds.len(),
            percentile(&mut times.clone(), 0.5),
            percentile(&mut times, 0.9),
            max,
            percentile(&mut reached, 0.5),
            percentile(&mut edges, 0.5)
        );
    }
}

//! Simulator throughput: `cargo run --release -p tracehound-simulate --example throughput --
//! <blocks> <txs-per-block> <out-dir>` simulates a chain (seed 7) and prints transactions per
//! second, files and bytes written.

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_string());
    let blocks: u64 = arg(0, "8000").parse().expect("blocks: a number");
    let txs_per_block: u32 = arg(1, "200").parse().expect("txs-per-block: a number");
    let out = std::path::PathBuf::from(arg(2, "sim-throughput"));
    let cfg = tracehound_simulate::SimConfig { blocks, txs_per_block, seed: 7, ..Default::default() };
    let start = Instant::now();
    let truth = tracehound_simulate::simulate(&cfg, &out).unwrap_or_else(|e| panic!("simulate into {}: {e}", out.display()));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} blocks, {} transactions, {} files, {} bytes in {secs:.2} s: {:.0} transactions/s",
        truth.tip_height,
        truth.transactions,
        truth.files,
        truth.bytes,
        truth.transactions as f64 / secs
    );
}

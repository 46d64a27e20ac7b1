//! `cargo bench -p tracehound-bench --bench evm_ingest`: EVM node → tables, in one run against the
//! same anvil chain (the EVM scenario plus `BENCH_EVM_BLOCKS` blocks of mixed activity):
//!
//! * **node limit**: the same JSON-RPC calls tracehound makes (`eth_getBlockByNumber` with
//!   transactions, `eth_getBlockReceipts`, `trace_block`), batched and concurrent alike, with
//!   the replies read and dropped: what the node can serve.
//! * **tracehound**: `ingest_evm` into a fresh data directory (Parquet written).
//! * **ethereum-etl** 2.4.2 (PyPI), with its defaults: `export_blocks_and_transactions`,
//!   `export_receipts_and_logs`, `export_traces`, `extract_token_transfers`.
//!
//! Rows = blocks + transactions + receipts + logs + traces (+ token transfers, which both derive
//! from logs). Without `--bench` (`cargo test --benches`) it does a 200-block smoke run.

use std::time::Instant;
use tracehound_ingest::evm::{ingest_evm, EvmOptions, TraceMode};
use tracehound_tables::Store;
use tracehound_testing::Anvil;

const BATCH: usize = 20;
const CONCURRENCY: usize = 4;

fn main() {
    tracehound_bench::configure_allocator();
    let bench = std::env::args().any(|a| a == "--bench");
    let blocks: u64 = std::env::var("BENCH_EVM_BLOCKS").ok().and_then(|v| v.parse().ok()).unwrap_or(if bench { 20_000 } else { 200 });
    let tools = std::env::var("BENCH_EVM_TOOLS").unwrap_or_else(|_| "node,tracehound,ethereum-etl".into());
    let scratch = tempfile::tempdir().unwrap();
    let node = Anvil::start_for_scenario_with(&["--max-persisted-states", "0"]);
    let started = Instant::now();
    node.run_scenario(&scratch.path().join("truth.json"), &["--bulk-blocks", &blocks.to_string()]);
    let head = u64::from_str_radix(node.rpc("eth_blockNumber", serde_json::json!([])).unwrap().as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    eprintln!("anvil chain of {} blocks made in {:.0} s", head + 1, started.elapsed().as_secs_f64());

    let mut results: Vec<(&str, f64, u64)> = vec![];
    // CPU seconds each reader used in this process and in the node, to tell waiting from working.
    let node_pid = node.pid().to_string();
    let mut cpu: Vec<(&str, f64, f64)> = vec![];
    let cpu_now = || (tracehound_bench::cpu_seconds("self"), tracehound_bench::cpu_seconds(&node_pid));
    // tracehound first: its row counts are the reference for the node's limit.
    let data = scratch.path().join("data");
    let mut store = Store::open_for_write(&data).unwrap();
    let mut o = EvmOptions::new(node.url.clone());
    o.batch_size = BATCH;
    o.concurrency = CONCURRENCY;
    o.traces = TraceMode::Parity;
    let (c0, n0) = cpu_now();
    let t = Instant::now();
    let r = ingest_evm(&mut store, &o, &|_| {}).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let (c1, n1) = cpu_now();
    cpu.push(("tracehound", c1 - c0, n1 - n0));
    let rows = r.blocks + 2 * r.transactions + r.logs + r.traces;
    if tools.contains("tracehound") {
        results.push(("tracehound", secs, rows));
    }
    drop(store);

    if tools.contains("node") {
        let (c0, n0) = cpu_now();
        let t = Instant::now();
        let bytes = raw_fetch(&node.url, head);
        let secs = t.elapsed().as_secs_f64();
        let (c1, n1) = cpu_now();
        cpu.push(("node limit", c1 - c0, n1 - n0));
        eprintln!("node: {bytes} bytes of replies");
        results.push(("node limit (same calls, replies dropped)", secs, rows));
    }

    if tools.contains("ethereum-etl") {
        let etl = scratch.path().join("etl");
        std::fs::create_dir_all(&etl).unwrap();
        let run = |args: &[&str]| tracehound_testing::run_ethereum_etl(&etl, args);
        let end = head.to_string();
        let n0 = cpu_now().1;
        let t = Instant::now();
        run(&[
            "export_blocks_and_transactions",
            "-s",
            "0",
            "-e",
            &end,
            "-p",
            &node.url,
            "--blocks-output",
            "blocks.csv",
            "--transactions-output",
            "transactions.csv",
        ]);
        run(&["extract_csv_column", "-i", "transactions.csv", "-c", "hash", "-o", "tx_hashes.txt"]);
        run(&["export_receipts_and_logs", "-t", "tx_hashes.txt", "-p", &node.url, "--receipts-output", "receipts.csv", "--logs-output", "logs.csv"]);
        run(&["export_traces", "-s", "0", "-e", &end, "-p", &node.url, "-o", "traces.csv"]);
        run(&["extract_token_transfers", "-l", "logs.csv", "-o", "token_transfers.csv"]);
        let secs = t.elapsed().as_secs_f64();
        cpu.push(("ethereum-etl (its own processes not counted)", 0.0, cpu_now().1 - n0));
        let count = |f: &str| std::fs::read_to_string(etl.join(f)).map(|s| s.lines().count().saturating_sub(1) as u64).unwrap_or(0);
        let etl_rows = count("blocks.csv") + count("transactions.csv") + count("receipts.csv") + count("logs.csv") + count("traces.csv");
        assert_eq!(etl_rows, rows, "ethereum-etl and tracehound read the same rows");
        results.push(("ethereum-etl 2.4.2", secs, etl_rows));
    }

    println!("\nEVM ingest of {} anvil blocks ({rows} rows: blocks, transactions, receipts, logs, traces)\n", head + 1);
    println!("| tool | seconds | rows/s | tracehound's rate ÷ this |");
    println!("|---|---:|---:|---:|");
    let ours = results.iter().find(|r| r.0 == "tracehound").map(|r| r.2 as f64 / r.1);
    for (name, secs, rows) in &results {
        let rate = *rows as f64 / secs;
        println!("| {name} | {secs:.2} | {rate:.0} | {} |", ours.map_or("-".into(), |o| format!("{:.2}", o / rate)));
    }
    println!("\n| reader | CPU s in this process | CPU s in the node |");
    println!("|---|---:|---:|");
    for (name, own, node) in &cpu {
        println!("| {name} | {own:.2} | {node:.2} |");
    }
}

/// The calls of `ingest_evm` for blocks 0..=head, in batches of `BATCH` blocks on `CONCURRENCY`
/// threads, each reply read whole and dropped. Returns the bytes read.
fn raw_fetch(url: &str, head: u64) -> u64 {
    let heights: Vec<u64> = (0..=head).collect();
    let per_thread = heights.len().div_ceil(CONCURRENCY);
    std::thread::scope(|s| {
        let handles: Vec<_> = heights
            .chunks(per_thread)
            .map(|hs| {
                s.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                    let mut bytes = 0u64;
                    for part in hs.chunks(BATCH) {
                        let mut calls = vec![];
                        for h in part {
                            let n = format!("{h:#x}");
                            calls.push(serde_json::json!({"jsonrpc": "2.0", "id": calls.len(), "method": "eth_getBlockByNumber", "params": [n, true]}));
                            calls.push(serde_json::json!({"jsonrpc": "2.0", "id": calls.len(), "method": "eth_getBlockReceipts", "params": [n]}));
                            calls.push(serde_json::json!({"jsonrpc": "2.0", "id": calls.len(), "method": "trace_block", "params": [n]}));
                        }
                        let body = serde_json::to_string(&calls).unwrap();
                        let mut resp = agent.post(url).header("Content-Type", "application/json").send(&body).unwrap();
                        bytes += resp.body_mut().with_config().limit(1 << 31).read_to_vec().unwrap().len() as u64;
                    }
                    bytes
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

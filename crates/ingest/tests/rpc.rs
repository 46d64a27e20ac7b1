//! JSON-RPC ingest against recorded Bitcoin Core responses (bitcoin-etl's expected exports as
//! the peer's answers) and against the block-file path on the same simulated chain.

use serde_json::Value;
use std::path::Path;
use tracehound_core::UtxoChain;
use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
use tracehound_ingest::bitcoin::blkfile::BlockFiles;
use tracehound_ingest::bitcoin::chain::best_chain;
use tracehound_ingest::bitcoin::rpc::{ingest_rpc, RpcOptions};
use tracehound_tables::Store;
use tracehound_testing::{table_rows, testdata, BlocksNode, RecordedNode};

fn export(data: &Path, table: &str) -> Vec<Value> {
    let store = Store::open(data).unwrap();
    let mut buf = vec![];
    tracehound_tables::etl::export_etl(&store, "bitcoin", table, &mut buf).unwrap();
    String::from_utf8(buf).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Compares every field bitcoin-etl wrote, except its rendering of scripts as asm and its item ids.
fn assert_same(ours: &Value, expected: &Value, path: &str) {
    match expected {
        Value::Object(m) => {
            for (k, v) in m {
                if ["script_asm", "item_id"].contains(&k.as_str()) {
                    continue;
                }
                let o = ours.get(k).unwrap_or_else(|| panic!("{path}.{k} missing in {ours}"));
                assert_same(o, v, &format!("{path}.{k}"));
            }
        }
        Value::Array(a) => {
            let o = ours.as_array().unwrap_or_else(|| panic!("{path} is not a list: {ours}"));
            assert_eq!(o.len(), a.len(), "{path} length");
            for (i, (x, y)) in o.iter().zip(a).enumerate() {
                assert_same(x, y, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(ours, expected, "{path}"),
    }
}

fn recorded_case(case: &str) {
    let dir = testdata().join("bitcoin/bitcoin-etl-rpc/test_export_blocks_job/bitcoin").join(case);
    let read = |f: &str| -> Vec<Value> {
        std::fs::read_to_string(dir.join(f)).unwrap().lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let expected_blocks = read("expected_blocks.json");
    let expected_txs = read("expected_transactions.json");
    let heights: Vec<u64> = expected_blocks.iter().map(|b| b["number"].as_u64().unwrap()).collect();
    let node = RecordedNode::start(std::slice::from_ref(&dir));
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open_for_write(tmp.path()).unwrap();
    let mut opts = RpcOptions::new(format!("http://user:pass@{}", node.url.trim_start_matches("http://")));
    opts.chain = Some(UtxoChain::Bitcoin);
    opts.from = heights[0];
    opts.to = Some(*heights.last().unwrap());
    let report = ingest_rpc(&mut store, &opts, &|_| {}).unwrap();
    assert_eq!(report.blocks, heights.len() as u64);
    assert_eq!(report.unresolved_inputs, 0, "every input resolved through getrawtransaction");
    drop(store);
    let blocks = export(tmp.path(), "blocks");
    assert_eq!(blocks.len(), expected_blocks.len());
    for (o, e) in blocks.iter().zip(&expected_blocks) {
        assert_same(o, e, &format!("{case} block"));
    }
    let txs = export(tmp.path(), "transactions");
    assert_eq!(txs.len(), expected_txs.len());
    for (o, e) in txs.iter().zip(&expected_txs) {
        assert_same(o, e, &format!("{case} tx {}", e["hash"]));
    }
}

#[test]
fn genesis_block_equals_bitcoin_etl() {
    recorded_case("block_0");
}

#[test]
fn block_1_equals_bitcoin_etl() {
    recorded_case("block_1");
}

#[test]
fn block_without_transactions_equals_bitcoin_etl() {
    recorded_case("block_without_transactions");
}

#[test]
fn resolved_inputs_p2pk_and_fees_equal_bitcoin_etl() {
    recorded_case("stream_50001_50002");
}

#[test]
fn an_unknown_method_reply_names_the_call() {
    let node = RecordedNode::start(&[testdata().join("bitcoin/bitcoin-etl-rpc/test_export_blocks_job/bitcoin/block_0")]);
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open_for_write(tmp.path()).unwrap();
    let mut opts = RpcOptions::new(node.url.clone());
    opts.chain = Some(UtxoChain::Bitcoin);
    opts.from = 5;
    opts.to = Some(5);
    let err = ingest_rpc(&mut store, &opts, &|_| {}).unwrap_err().to_string();
    assert!(err.contains("getblockhash") && err.contains("no recording"), "{err}");
    assert!(store.manifest().chains.is_empty());
}

#[test]
fn rpc_and_block_files_give_identical_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tracehound_simulate::SimConfig { blocks: 220, txs_per_block: 20, seed: 11, ..Default::default() };
    tracehound_simulate::simulate(&cfg, &tmp.path().join("sim")).unwrap();
    let from_files = tmp.path().join("a");
    {
        let mut store = Store::open_for_write(&from_files).unwrap();
        ingest_blk_files(&mut store, &BlkOptions::new(tmp.path().join("sim")), &|_| {}).unwrap();
    }
    // Serve the best chain of the same files over JSON-RPC.
    let mut files = BlockFiles::open(&tmp.path().join("sim"), None).unwrap();
    let scan = files.scan(false).unwrap();
    let chain = best_chain(&scan.blocks);
    let mut buf = vec![];
    let blocks = chain.blocks.iter().map(|b| files.read_block(b.location, &mut buf).unwrap()).collect();
    let node = BlocksNode::start(blocks, "regtest");
    let from_rpc = tmp.path().join("b");
    {
        let mut store = Store::open_for_write(&from_rpc).unwrap();
        let mut opts = RpcOptions::new(node.url.clone());
        opts.chunk_blocks = 64;
        let r = ingest_rpc(&mut store, &opts, &|_| {}).unwrap();
        assert_eq!(r.chain, "bitcoin_regtest", "chain detected with getblockchaininfo");
        assert_eq!(r.unresolved_inputs, 0);
    }
    for (table, order) in
        [("blocks", "number"), ("transactions", "block_number, index"), ("inputs", "transaction_hash, index"), ("outputs", "transaction_hash, index")]
    {
        let sql = format!("SELECT * FROM {table} ORDER BY {order}");
        let a = table_rows(&from_files, &sql);
        let b = table_rows(&from_rpc, &sql);
        assert!(!a.is_empty());
        assert_eq!(a.len(), b.len(), "{table} row count");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{table}");
        }
    }
}

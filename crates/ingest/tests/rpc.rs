//! JSON-RPC ingest against recorded Bitcoin Core responses (bitcoin-etl's expected exports as
//! the peer's answers) and against the block-file path on the same simulated chain.

use serde_json::Value;
use std::path::{Path, PathBuf};
use tracehound_core::UtxoChain;
use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
use tracehound_ingest::bitcoin::blkfile::BlockFiles;
use tracehound_ingest::bitcoin::chain::best_chain;
use tracehound_ingest::bitcoin::rpc::{ingest_rpc, RpcOptions};
use tracehound_tables::Store;
use tracehound_testing::{table_rows, testdata, BlocksNode, RecordedNode};

fn export_chain(data: &Path, chain: &str, table: &str) -> Vec<Value> {
    let store = Store::open(data).unwrap();
    let mut buf = vec![];
    tracehound_tables::etl::export_etl(&store, chain, table, &mut buf).unwrap();
    String::from_utf8(buf).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Fields bitcoin-etl leaves null when the node does not report them (verbosity-1 nodes): they
/// are checked against the raw bytes by [`assert_sizes_from_raw`] instead.
const NULL_ON_OLD_NODES: [&str; 5] = ["size", "virtual_size", "stripped_size", "weight", "index"];

/// Compares every field bitcoin-etl wrote, except its rendering of scripts as asm, its item ids,
/// and the fields it left null for lack of node data.
fn assert_same(ours: &Value, expected: &Value, path: &str) {
    match expected {
        Value::Object(m) => {
            for (k, v) in m {
                if ["script_asm", "item_id"].contains(&k.as_str()) || (v.is_null() && NULL_ON_OLD_NODES.contains(&k.as_str())) {
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

/// The size fields bitcoin-etl leaves null on old nodes, checked against the recorded raw
/// transactions: none of these chains has segwit, so sizes equal byte lengths and weight is 4×.
fn assert_sizes_from_raw(dir: &Path, blocks: &[Value], txs: &[Value]) {
    let mut block_tx_bytes = std::collections::HashMap::new();
    for (i, tx) in txs.iter().enumerate() {
        let hash = tx["hash"].as_str().unwrap();
        let raw: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("rpc_response_getrawtransaction_{hash}.json"))).unwrap()).unwrap();
        let len = raw["hex"].as_str().unwrap().len() as u64 / 2;
        assert_eq!(tx["size"].as_u64(), Some(len), "tx {hash} size");
        assert_eq!(tx["virtual_size"].as_u64(), Some(len), "tx {hash} virtual_size");
        assert_eq!(tx["index"].as_u64(), Some(i as u64), "tx {hash} index (one block per case)");
        *block_tx_bytes.entry(tx["block_hash"].as_str().unwrap().to_string()).or_insert(0u64) += len;
    }
    for b in blocks {
        let size = b["size"].as_u64().unwrap();
        // Header (80) + transaction count (one byte below 253) + transactions.
        assert_eq!(size, 80 + 1 + block_tx_bytes[b["hash"].as_str().unwrap()], "block size");
        assert_eq!(b["stripped_size"].as_u64(), Some(size));
        assert_eq!(b["weight"].as_u64(), Some(4 * size));
    }
}

fn case_dir(chain_dir: &str, case: &str) -> PathBuf {
    testdata().join("bitcoin/bitcoin-etl-rpc/test_export_blocks_job").join(chain_dir).join(case)
}

fn recorded_case(case: &str) {
    recorded_case_on(UtxoChain::Bitcoin, "bitcoin", case, 2);
}

/// Ingests a recorded case of `chain` and compares the export with bitcoin-etl's; `verbosity`
/// is the `getblock` verbosity the node's recordings answer.
fn recorded_case_on(chain: UtxoChain, chain_dir: &str, case: &str, verbosity: u8) {
    let dir = case_dir(chain_dir, case);
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
    opts.chain = Some(chain);
    opts.from = heights[0];
    opts.to = Some(*heights.last().unwrap());
    let report = ingest_rpc(&mut store, &opts, &|_| {}).unwrap();
    assert_eq!(report.blocks, heights.len() as u64);
    assert_eq!(report.getblock_verbosity, Some(verbosity));
    assert_eq!(report.unresolved_inputs, 0, "every input resolved through getrawtransaction");
    drop(store);
    let schema = chain.name();
    let blocks = export_chain(tmp.path(), schema, "blocks");
    assert_eq!(blocks.len(), expected_blocks.len());
    for (o, e) in blocks.iter().zip(&expected_blocks) {
        assert_same(o, e, &format!("{case} block"));
    }
    let txs = export_chain(tmp.path(), schema, "transactions");
    assert_eq!(txs.len(), expected_txs.len());
    for (o, e) in txs.iter().zip(&expected_txs) {
        assert_same(o, e, &format!("{case} tx {}", e["hash"]));
    }
    if verbosity == 1 {
        assert_sizes_from_raw(&dir, &blocks, &txs);
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
fn bitcoin_cash_block_with_duplicate_txid_equals_bitcoin_etl() {
    // Recorded from a node without getblock verbosity 2: read with verbosity 1 + getrawtransaction.
    recorded_case_on(UtxoChain::BitcoinCash, "bitcoin_cash", "block_with_duplicate_txid", 1);
}

#[test]
fn dogecoin_block_equals_bitcoin_etl() {
    recorded_case_on(UtxoChain::Dogecoin, "dogecoin", "block_without_transactions", 1);
}

/// The Dogecoin recordings of block 2 with its coinbase transaction replaced by `tx_hex`, listed
/// in the block as `listed_txid` (the recorded txid when `None`), the raw transaction answered as
/// a plain hex string (what `getrawtransaction <txid> 0` returns) when `plain` is set.
fn doge_with_tx(tx_hex: &str, listed_txid: Option<&str>, plain: bool) -> tempfile::TempDir {
    const TXID: &str = "3b14b76d22a3f2859d73316002bc1b9bfc7f37e2c3393be9b722b62bbd786983";
    let dir = node_dir("dogecoin", "block_without_transactions", &[]);
    let raw_path = dir.path().join(format!("rpc_response_getrawtransaction_{TXID}.json"));
    let mut raw: Value = serde_json::from_str(&std::fs::read_to_string(&raw_path).unwrap()).unwrap();
    raw["hex"] = Value::String(tx_hex.into());
    let reply = if plain { Value::String(tx_hex.into()) } else { raw };
    std::fs::remove_file(&raw_path).unwrap();
    let listed = listed_txid.unwrap_or(TXID);
    std::fs::write(dir.path().join(format!("rpc_response_getrawtransaction_{listed}.json")), reply.to_string()).unwrap();
    if listed != TXID {
        let block_path = dir.path().join("rpc_response_getblock_ea5380659e02a68c073369e502125c634b2fb0aaf351b9360c673368c4f20c96_True.json");
        let text = std::fs::read_to_string(&block_path).unwrap().replace(TXID, listed);
        // The header's merkle root stays the recorded one.
        let text = text.replace(&format!("\"merkleroot\": \"{listed}\""), &format!("\"merkleroot\": \"{TXID}\""));
        std::fs::write(&block_path, text).unwrap();
    }
    dir
}

type Ingested = (Result<tracehound_ingest::bitcoin::IngestReport, String>, tempfile::TempDir);

/// Ingests block `height` from the recordings in `dir` into a fresh store (the chain detected
/// when `chain` is `None`); a failed ingest must leave the store empty.
fn ingest_recorded(dir: &Path, chain: Option<UtxoChain>, height: u64) -> Ingested {
    let node = RecordedNode::start(&[dir.to_path_buf()]);
    let data = tempfile::tempdir().unwrap();
    let mut store = Store::open_for_write(data.path()).unwrap();
    let mut opts = RpcOptions::new(node.url.clone());
    opts.chain = chain;
    opts.from = height;
    opts.to = Some(height);
    let r = ingest_rpc(&mut store, &opts, &|_| {}).map_err(|e| e.to_string());
    if r.is_err() {
        assert!(store.manifest().chains.is_empty(), "nothing committed");
    }
    (r, data)
}

fn ingest_doge_block_2(dir: &Path) -> Ingested {
    ingest_recorded(dir, Some(UtxoChain::Dogecoin), 2)
}

fn doge_coinbase_hex() -> String {
    let raw = case_dir("dogecoin", "block_without_transactions")
        .join("rpc_response_getrawtransaction_3b14b76d22a3f2859d73316002bc1b9bfc7f37e2c3393be9b722b62bbd786983.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(raw).unwrap()).unwrap();
    v["hex"].as_str().unwrap().to_string()
}

#[test]
fn raw_transactions_as_plain_hex_strings_are_read() {
    let dir = doge_with_tx(&doge_coinbase_hex(), None, true);
    let (r, data) = ingest_doge_block_2(dir.path());
    assert_eq!(r.unwrap().transactions, 1);
    let txs = export_chain(data.path(), "dogecoin", "transactions");
    assert_eq!(txs[0]["hash"], "3b14b76d22a3f2859d73316002bc1b9bfc7f37e2c3393be9b722b62bbd786983");
    assert_eq!(txs[0]["outputs"][0]["addresses"][0], "DPsvwvYRgt66ntxno9mMuBfwhg9nAMmGrD");
}

#[test]
fn transactions_that_the_block_does_not_commit_to_are_refused() {
    // The coinbase with its lock time changed: a node that answers another transaction than the
    // block lists is refused by txid ...
    let hex = doge_coinbase_hex();
    let changed = format!("{}01000000", &hex[..hex.len() - 8]);
    let (r, _data) = ingest_doge_block_2(doge_with_tx(&changed, None, false).path());
    let err = r.unwrap_err();
    assert!(err.contains("not the") && err.contains("3b14b76d22a3f2859d73316002bc1b9bfc7f37e2c3393be9b722b62bbd786983"), "{err}");
    // ... and one whose block lists the changed transaction by the merkle root of its header.
    use bitcoin::consensus::deserialize;
    let tx: bitcoin::Transaction = deserialize(&hex_decode(&changed)).unwrap();
    let txid = tx.compute_txid().to_string();
    let (r, _data) = ingest_doge_block_2(doge_with_tx(&changed, Some(&txid), false).path());
    let err = r.unwrap_err();
    assert!(err.contains("merkle root") && err.contains("ea5380659e02a68c073369e502125c634b2fb0aaf351b9360c673368c4f20c96"), "{err}");
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// A recorded case plus the answers a node gives about itself.
fn node_dir(chain_dir: &str, case: &str, extra: &[(&str, Value)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(case_dir(chain_dir, case)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
    }
    for (name, v) in extra {
        std::fs::write(tmp.path().join(format!("rpc_response_{name}.json")), v.to_string()).unwrap();
    }
    tmp
}

fn ingest_detected(dir: &Path, height: u64) -> Result<tracehound_ingest::bitcoin::IngestReport, String> {
    ingest_recorded(dir, None, height).0
}

#[test]
fn dogecoin_and_bitcoin_cash_nodes_are_told_from_bitcoin() {
    let main = serde_json::json!({"chain": "main", "blocks": 100});
    // A Dogecoin node says "main" like Bitcoin Core; its genesis block names it.
    let doge_genesis = Value::String("1a91e3dace36e2be3bf030a65679fe821aa1d6ef92e7c9902eb318182c355691".into());
    let dir = node_dir("dogecoin", "block_without_transactions", &[("getblockchaininfo", main.clone()), ("getblockhash_0", doge_genesis)]);
    assert_eq!(ingest_detected(dir.path(), 2).unwrap().chain, "dogecoin");
    // A Bitcoin Cash node shares Bitcoin's genesis; its software names it.
    let btc_genesis = Value::String("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f".into());
    let bchn = serde_json::json!({"version": 27000000, "subversion": "/Bitcoin Cash Node:27.0.0(EB32.0)/"});
    let extra = [("getblockchaininfo", main.clone()), ("getblockhash_0", btc_genesis.clone()), ("getnetworkinfo", bchn)];
    let dir = node_dir("bitcoin_cash", "block_with_duplicate_txid", &extra);
    assert_eq!(ingest_detected(dir.path(), 91722).unwrap().chain, "bitcoin_cash");
    // Bitcoin SV is refused rather than mixed into Bitcoin's tables.
    let bsv = serde_json::json!({"subversion": "/Bitcoin SV:1.0.16/"});
    let dir = node_dir(
        "bitcoin_cash",
        "block_with_duplicate_txid",
        &[("getblockchaininfo", main.clone()), ("getblockhash_0", btc_genesis.clone()), ("getnetworkinfo", bsv)],
    );
    let err = ingest_detected(dir.path(), 91722).unwrap_err();
    assert!(err.contains("Bitcoin SV") && err.contains("--chain"), "{err}");
    // A Litecoin or Dogecoin test network calls itself "test" too: its genesis is not Bitcoin's.
    let test = serde_json::json!({"chain": "test"});
    let other = Value::String("4966625a4b2851d9fdee139e56211a0d88575f59ed816ff5e6a63deb4e3e29a0".into());
    let dir = node_dir("bitcoin", "block_1", &[("getblockchaininfo", test), ("getblockhash_0", other)]);
    let err = ingest_detected(dir.path(), 1).unwrap_err();
    assert!(err.contains("genesis") && err.contains("--chain"), "{err}");
    // Bitcoin Core itself stays Bitcoin.
    let core = serde_json::json!({"subversion": "/Satoshi:28.1.0/"});
    let dir = node_dir("bitcoin", "block_1", &[("getblockchaininfo", main), ("getblockhash_0", btc_genesis), ("getnetworkinfo", core)]);
    assert_eq!(ingest_detected(dir.path(), 1).unwrap().chain, "bitcoin");
}

#[test]
fn an_unknown_method_reply_names_the_call() {
    let (r, _data) = ingest_recorded(&case_dir("bitcoin", "block_0"), Some(UtxoChain::Bitcoin), 5);
    let err = r.unwrap_err();
    assert!(err.contains("getblockhash") && err.contains("no recording"), "{err}");
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

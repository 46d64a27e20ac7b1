//! The EVM heist scenario (`tools/evm/scenario.mjs`) on a real anvil node: ingest it and check
//! the tables against the scenario's ground truth, against the node's own balances, and field by
//! field against ethereum-etl (PyPI) run on the same chain; and read it again as a node without
//! `eth_getBlockReceipts` and `trace_block` would serve it, which must give the same rows.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tracehound_core::evm::{parse_quantity, U256};
use tracehound_ingest::evm::{ingest_evm, EvmOptions};
use tracehound_tables::export::ExportFormat;
use tracehound_tables::Store;
use tracehound_testing::{table_rows, Anvil, HidingProxy};

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn u(v: &Value) -> U256 {
    s(v).parse::<U256>().unwrap_or_else(|_| panic!("not a decimal: {v}"))
}

/// A multiset of tuples, for comparing transfers regardless of order.
fn bag(rows: impl IntoIterator<Item = Vec<String>>) -> BTreeMap<Vec<String>, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(r).or_default() += 1;
    }
    m
}

#[test]
fn scenario_tables_match_ground_truth_node_balances_and_ethereum_etl() {
    let node = Anvil::start_for_scenario();
    let dir = tempfile::tempdir().unwrap();
    let truth = node.run_scenario(&dir.path().join("ground_truth.json"), &[]);
    let last = truth["scenario_blocks"]["last"].as_u64().unwrap();
    let data = dir.path().join("data");
    let mut store = Store::open_for_write(&data).unwrap();
    let mut opts = EvmOptions::new(node.url.clone());
    opts.chunk_blocks = 10;
    opts.batch_size = 4;
    let r = ingest_evm(&mut store, &opts, &|_| {}).unwrap();
    assert_eq!((r.chain.as_str(), r.chain_id, r.tip), ("anvil", 31337, Some(last)));
    assert_eq!((r.receipts_method.as_str(), r.traces_method.as_str()), ("eth_getBlockReceipts", "trace_block"));
    drop(store);

    // Transactions: every field the ground truth knows.
    let txs = table_rows(&data, "SELECT hash, block_number, transaction_index, transaction_type, from_address, to_address, receipt_contract_address, CAST(value AS VARCHAR) AS value, nonce, receipt_status, receipt_gas_used, CAST(receipt_effective_gas_price AS VARCHAR) AS price FROM transactions ORDER BY block_number, transaction_index");
    let expected = truth["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), expected.len());
    for (got, want) in txs.iter().zip(expected) {
        let ctx = format!("tx {}", want["hash"]);
        assert_eq!(got["hash"], want["hash"], "{ctx}");
        assert_eq!(got["block_number"], want["block"], "{ctx}");
        assert_eq!(got["transaction_index"], want["index"], "{ctx}");
        assert_eq!(got["transaction_type"], want["type"], "{ctx}");
        assert_eq!(got["from_address"], want["from"], "{ctx}");
        assert_eq!(got.get("to_address").cloned().unwrap_or(Value::Null), want["to"], "{ctx}");
        assert_eq!(s(&got.get("receipt_contract_address").cloned().unwrap_or(Value::Null)), s(&want["created"]), "{ctx}");
        assert_eq!(s(&got["value"]), s(&want["value"]), "{ctx}");
        assert_eq!(got["nonce"], want["nonce"], "{ctx}");
        assert_eq!(got["receipt_status"], want["status"], "{ctx}");
        assert_eq!(s(&got["receipt_gas_used"]), s(&want["gas_used"]), "{ctx}");
        assert_eq!(s(&got["price"]), s(&want["effective_gas_price"]), "{ctx}");
    }
    let types: std::collections::BTreeSet<u64> = txs.iter().filter_map(|t| t["transaction_type"].as_u64()).collect();
    assert!(types.is_superset(&[0, 1, 2, 4].into()), "legacy, EIP-2930, EIP-1559 and EIP-7702 transactions: {types:?}");

    // Internal transfers: exactly the frames that stuck, none of the reverted ones.
    let internal = table_rows(
        &data,
        &format!("SELECT transaction_hash, from_address, to_address, amount_raw FROM transfers WHERE kind = 'internal' AND block_number <= {last}"),
    );
    let got = bag(internal.iter().map(|r| vec![s(&r["transaction_hash"]), s(&r["from_address"]), s(&r["to_address"]), s(&r["amount_raw"])]));
    let want = bag(truth["internal_transfers"].as_array().unwrap().iter().map(|t| vec![s(&t["tx"]), s(&t["from"]), s(&t["to"]), s(&t["value"])]));
    assert_eq!(got, want, "internal transfers");
    for r in truth["reverted_internal_transfers"].as_array().unwrap() {
        let n = table_rows(
            &data,
            &format!(
                "SELECT count(*) AS n FROM transfers WHERE transaction_hash = '{}' AND from_address = '{}' AND to_address = '{}' AND amount_raw = '{}' AND kind = 'internal'",
                s(&r["tx"]),
                s(&r["from"]),
                s(&r["to"]),
                s(&r["value"])
            ),
        );
        assert_eq!(n[0]["n"], json!(0), "reverted frame {r} moved nothing");
    }
    for f in truth["failed_transactions"].as_array().unwrap() {
        let n = table_rows(&data, &format!("SELECT count(*) AS n FROM transfers WHERE transaction_hash = '{}'", s(&f["tx"])));
        assert_eq!(n[0]["n"], json!(0), "failed transaction {} moved nothing", f["tx"]);
    }

    // Token transfers: every TUSD Transfer event, exactly.
    let tt = table_rows(
        &data,
        &format!("SELECT transaction_hash, log_index, token_address, from_address, to_address, value FROM token_transfers WHERE block_number <= {last}"),
    );
    let got = bag(tt
        .iter()
        .map(|r| vec![s(&r["transaction_hash"]), s(&r["log_index"]), s(&r["token_address"]), s(&r["from_address"]), s(&r["to_address"]), s(&r["value"])]));
    let want = bag(truth["token_transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| vec![s(&t["tx"]), s(&t["log_index"]), s(&t["token"]), s(&t["from"]), s(&t["to"]), s(&t["value"])]));
    assert_eq!(got, want, "token transfers");

    // Conservation: for every known address, the balance at genesis (asked from the node) plus
    // what `transfers` brought in, less what it sent and the fees it paid, is the ground truth's
    // final balance, in ETH and in TUSD. A transfer missing, doubled or wrongly kept from a
    // reverted frame breaks this.
    let tusd = s(&truth["assets"]["TUSD"]["address"]);
    let flows = table_rows(&data, &format!("SELECT asset, from_address, to_address, amount_raw FROM transfers WHERE block_number <= {last}"));
    let fees = table_rows(
        &data,
        &format!(
            "SELECT from_address, CAST(receipt_gas_used AS DECIMAL(38,0)) * receipt_effective_gas_price AS fee FROM transactions WHERE block_number <= {last}"
        ),
    );
    let mut eth: HashMap<String, (U256, U256)> = HashMap::new();
    let mut tok: HashMap<String, (U256, U256)> = HashMap::new();
    for f in &flows {
        let book = if s(&f["asset"]) == "native" {
            &mut eth
        } else if s(&f["asset"]) == tusd {
            &mut tok
        } else {
            continue;
        };
        let a = u(&f["amount_raw"]);
        if let Some(to) = f.get("to_address") {
            book.entry(s(to)).or_default().0 += a;
        }
        if let Some(from) = f.get("from_address") {
            book.entry(s(from)).or_default().1 += a;
        }
    }
    for f in &fees {
        eth.entry(s(&f["from_address"])).or_default().1 += u(&f["fee"]);
    }
    let mut checked = 0;
    for (addr, b) in truth["final_balances"]["balances"].as_object().unwrap() {
        if truth["addresses"][addr]["actor"] == json!("block_producer") {
            continue; // the coinbase is paid priority fees, which are not transfers
        }
        let genesis = parse_quantity(node.rpc("eth_getBalance", json!([addr, "0x0"])).unwrap().as_str().unwrap()).unwrap();
        let (i, o) = eth.get(addr).copied().unwrap_or_default();
        assert_eq!(genesis + i - o, u(&b["ETH"]), "ETH of {addr} ({})", b["name"]);
        let (i, o) = tok.get(addr).copied().unwrap_or_default();
        assert_eq!(i.checked_sub(o), Some(u(&b["TUSD"])), "TUSD of {addr} ({})", b["name"]);
        checked += 1;
    }
    assert!(checked > 50, "{checked} balances checked");

    // ethereum-etl on the same chain, table by table, field by field.
    let etl = dir.path().join("etl");
    std::fs::create_dir_all(&etl).unwrap();
    let run = |args: &[&str]| tracehound_testing::run_ethereum_etl(&etl, args);
    let end = last.to_string();
    for ext in ["csv", "json"] {
        run(&[
            "export_blocks_and_transactions",
            "-s",
            "0",
            "-e",
            &end,
            "-p",
            &node.url,
            "-w",
            "1",
            "--blocks-output",
            &format!("blocks.{ext}"),
            "--transactions-output",
            &format!("transactions.{ext}"),
        ]);
        run(&["export_traces", "-s", "0", "-e", &end, "-p", &node.url, "-w", "1", "-o", &format!("traces.{ext}")]);
    }
    run(&["extract_csv_column", "-i", "transactions.csv", "-c", "hash", "-o", "tx_hashes.txt"]);
    for ext in ["csv", "json"] {
        run(&[
            "export_receipts_and_logs",
            "-t",
            "tx_hashes.txt",
            "-p",
            &node.url,
            "-w",
            "1",
            "--receipts-output",
            &format!("receipts.{ext}"),
            "--logs-output",
            &format!("logs.{ext}"),
        ]);
    }
    run(&["extract_token_transfers", "-l", "logs.json", "-w", "1", "-o", "token_transfers.json"]);
    run(&["extract_token_transfers", "-l", "logs.csv", "-w", "1", "-o", "token_transfers.csv"]);
    let store = Store::open(&data).unwrap();
    for table in ["blocks", "transactions", "receipts", "logs", "token_transfers", "traces"] {
        compare_csv(&store, table, &etl.join(format!("{table}.csv")));
        if table != "token_transfers" {
            // (from CSV logs, ethereum-etl's JSON writes log_index and block_number as strings)
            compare_json(&store, table, &etl.join(format!("{table}.json")));
        }
    }

    // The fallbacks on the same chain: receipts one transaction at a time, and geth's
    // `callTracer` instead of parity traces. Every table but the traces themselves (whose shape
    // differs between the two tracers) must come out the same, `transfers` included.
    let proxy = HidingProxy::start(&node.url, &["eth_getBlockReceipts", "trace_block"]);
    let fallback = dir.path().join("fallback");
    let mut store = Store::open_for_write(&fallback).unwrap();
    let mut o = opts.clone();
    o.url = proxy.url.clone();
    let r = ingest_evm(&mut store, &o, &|_| {}).unwrap();
    assert_eq!((r.receipts_method.as_str(), r.traces_method.as_str()), ("eth_getTransactionReceipt", "debug_traceBlockByNumber"));
    assert_eq!(r.tip, Some(last));
    drop(store);
    for sql in [
        "SELECT * FROM blocks ORDER BY number",
        "SELECT * FROM transactions ORDER BY block_number, transaction_index",
        "SELECT * FROM logs ORDER BY block_number, log_index",
        "SELECT * FROM token_transfers ORDER BY block_number, log_index",
        "SELECT * FROM transfers ORDER BY block_number, transaction_index, position",
    ] {
        let (direct, through_fallbacks) = (table_rows(&data, sql), table_rows(&fallback, sql));
        assert!(!direct.is_empty(), "{sql}");
        assert_eq!(direct, through_fallbacks, "{sql}");
    }
}

fn ours(store: &Store, table: &str, format: ExportFormat) -> String {
    let mut buf = vec![];
    tracehound_tables::etl_evm::export_ethereum_etl(store, "anvil", table, format, &mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

fn compare_csv(store: &Store, table: &str, theirs: &Path) {
    let read = |text: &str| -> (Vec<String>, Vec<Vec<String>>) {
        let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let header = r.headers().unwrap().iter().map(str::to_string).collect();
        let mut rows: Vec<Vec<String>> = r.records().map(|x| x.unwrap().iter().map(str::to_string).collect()).collect();
        rows.sort();
        (header, rows)
    };
    let theirs_text = std::fs::read_to_string(theirs).unwrap();
    let ours_text = ours(store, table, ExportFormat::Csv);
    let (h1, r1) = read(&ours_text);
    let (h2, r2) = read(&theirs_text);
    assert!(!r2.is_empty(), "ethereum-etl wrote no {table}");
    assert_eq!(h1, h2, "{table}: columns");
    assert_eq!(r1.len(), r2.len(), "{table}: rows");
    for (a, b) in r1.iter().zip(&r2) {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert_eq!(x, y, "{table}: column {} of row {:?}", h1[i], &b[..2]);
        }
    }
    let mut ours_lines: Vec<&str> = ours_text.split("\r\n").collect();
    let mut their_lines: Vec<&str> = theirs_text.split("\r\n").collect();
    ours_lines.sort();
    their_lines.sort();
    assert_eq!(ours_lines, their_lines, "{table}: CSV bytes (line endings, quoting)");
}

fn compare_json(store: &Store, table: &str, theirs: &Path) {
    let theirs_text = std::fs::read_to_string(theirs).unwrap();
    let ours_text = ours(store, table, ExportFormat::Json);
    let mut a: Vec<&str> = ours_text.lines().collect();
    let mut b: Vec<&str> = theirs_text.lines().collect();
    a.sort();
    b.sort();
    assert_eq!(a.len(), b.len(), "{table}: JSON rows");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "{table}: JSON line");
    }
}

/// Transfers imported from an explorer export and the same transfers later ingested from the
/// node: each is kept once (the node's rows win), and re-importing the export adds nothing.
#[test]
fn imported_transfers_give_way_to_the_nodes_rows() {
    use tracehound_ingest::transfers_csv::{import_transfers_csv, CsvImportOptions};
    let node = Anvil::start_for_scenario();
    let dir = tempfile::tempdir().unwrap();
    let truth = node.run_scenario(&dir.path().join("ground_truth.json"), &[]);
    let last = truth["scenario_blocks"]["last"].as_u64().unwrap();
    let mut opts = EvmOptions::new(node.url.clone());
    opts.to = Some(last);
    // The node's own rows, as a reference, and as an explorer export of the same transfers.
    let reference = dir.path().join("reference");
    ingest_evm(&mut Store::open_for_write(&reference).unwrap(), &opts, &|_| {}).unwrap();
    let cols = "transaction_hash, from_address, to_address, asset, token_id, amount_raw, source";
    let node_rows = table_rows(&reference, &format!("SELECT {cols}, block_number, block_timestamp FROM transfers WHERE transaction_hash IS NOT NULL AND from_address IS NOT NULL AND to_address IS NOT NULL"));
    assert!(node_rows.len() > 10, "the scenario moves value: {}", node_rows.len());
    let mut csv = "tx_hash,block_number,timestamp,from,to,asset,token_id,amount\n".to_string();
    for r in &node_rows {
        csv += &format!(
            "{},{},{},{},{},{},{},{}\n",
            s(&r["transaction_hash"]),
            r["block_number"],
            r["block_timestamp"],
            s(&r["from_address"]),
            s(&r["to_address"]),
            s(&r["asset"]),
            s(r.get("token_id").unwrap_or(&Value::Null)),
            s(&r["amount_raw"])
        );
    }
    let export = dir.path().join("export.csv");
    std::fs::write(&export, &csv).unwrap();
    let import_opts = CsvImportOptions { chain: "anvil".into(), decimals: None, keep_good_rows: false };

    // Imported first, then ingested from the node.
    let data = dir.path().join("data");
    let mut store = Store::open_for_write(&data).unwrap();
    let r = import_transfers_csv(&mut store, &export, &import_opts).unwrap();
    assert_eq!((r.rows, r.added, r.from_node), (node_rows.len() as u64, node_rows.len() as i64, 0), "{:?}", r.bad_rows);
    ingest_evm(&mut store, &opts, &|_| {}).unwrap();
    drop(store);
    let all = |d: &Path| {
        bag(table_rows(d, &format!("SELECT {cols} FROM transfers")).iter().map(|r| cols.split(", ").map(|c| s(r.get(c).unwrap_or(&Value::Null))).collect()))
    };
    assert_eq!(all(&data), all(&reference), "each transfer once, from the node");

    // The export again (other bytes): every row is the node's already.
    std::fs::write(&export, csv.replace("tx_hash,", "Tx_Hash,")).unwrap();
    let mut store = Store::open_for_write(&data).unwrap();
    let r = import_transfers_csv(&mut store, &export, &import_opts).unwrap();
    assert_eq!((r.replaced, r.from_node, r.added, r.duplicates), (true, node_rows.len() as u64, 0, 0));
    drop(store);
    assert_eq!(all(&data), all(&reference));
}

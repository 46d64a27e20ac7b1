//! End-to-end tests of `tracehound ingest evm`, `sync evm`, `import transfers` and the
//! ethereum-etl export layout, against a real anvil node running the EVM scenario.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tracehound_testing::{kill_after_tip, manifest_tip, Anvil};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracehound"))
}

fn run(data: &Path, args: &[&str]) -> Output {
    bin().arg("--data-dir").arg(data).args(args).output().unwrap()
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = run(data, args);
    assert!(out.status.success(), "tracehound {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn dump(data: &Path) -> Vec<String> {
    [
        ("blocks", "number"),
        ("transactions", "block_number, transaction_index"),
        ("logs", "block_number, log_index"),
        ("traces", "block_number, trace_id"),
        ("token_transfers", "block_number, log_index"),
        ("transfers", "block_number, transaction_index, position, kind"),
    ]
    .iter()
    .map(|(t, order)| ok(data, &["sql", &format!("SELECT * FROM {t} ORDER BY {order}"), "--format", "csv"]))
    .collect()
}

fn tip(data: &Path) -> Option<u64> {
    manifest_tip(data, "anvil")
}

#[test]
fn evm_ingest_survives_kill_9_and_sync_follows_the_head() {
    let node = Anvil::start_for_scenario();
    let tmp = tempfile::tempdir().unwrap();
    node.run_scenario(&tmp.path().join("truth.json"), &["--bulk-blocks", "400"]);
    let head = u64::from_str_radix(node.rpc("eth_blockNumber", serde_json::json!([])).unwrap().as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let args = ["ingest", "evm", "--rpc", &node.url, "--chunk-blocks", "20", "--batch-size", "5", "--concurrency", "2"];

    let reference = tmp.path().join("reference");
    let started = Instant::now();
    let report = ok(&reference, &args);
    let full = started.elapsed();
    assert!(report.contains("anvil (chain id 31337)"), "{report}");
    assert_eq!(tip(&reference), Some(head));

    // Kills land at different points: right after a commit and a few milliseconds into the next
    // chunk. `--max-rps` slows the victim down (it changes no row), so every kill lands mid-ingest.
    let victim = tmp.path().join("victim");
    let mut partial = std::collections::BTreeSet::new();
    for (at_least, delay_ms) in [(40, 0), (120, 7), (200, 23), (300, 3)] {
        let mut cmd = bin();
        cmd.arg("--data-dir").arg(&victim).args(args).args(["--max-rps", "100"]);
        if let Some(t) = kill_after_tip(&mut cmd, &victim, "anvil", at_least, Duration::from_millis(delay_ms)) {
            if t < head {
                partial.insert(t);
            }
        }
    }
    assert!(partial.len() >= 3, "the kills should land mid-ingest (tips seen: {partial:?}, full run {full:?})");
    ok(&victim, &args);
    assert_eq!(tip(&victim), Some(head));
    assert_eq!(dump(&reference), dump(&victim), "tables after kill -9 and rerun equal an uninterrupted run");

    // sync: follows new blocks with confirmations, growing its newest chunk instead of adding files.
    let synced = tmp.path().join("synced");
    let sync = |rounds: &str| {
        ok(&synced, &["sync", "evm", "--rpc", &node.url, "--confirmations", "2", "--poll", "0.05", "--rounds", rounds, "--chunk-blocks", "1000"])
    };
    sync("1");
    assert_eq!(tip(&synced), Some(head - 2));
    for _ in 0..3 {
        node.rpc("evm_mine", serde_json::json!([])).unwrap();
    }
    sync("2");
    assert_eq!(tip(&synced), Some(head + 1));
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(synced.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["chains"]["anvil"]["chunks"].as_array().unwrap().len(), 1, "one growing chunk of < 1000 blocks");

    // status, SQL and exports.
    let status = ok(&reference, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["chains"]["anvil"]["info"]["kind"], serde_json::json!("evm"));
    let kinds = ok(&reference, &["sql", "SELECT kind, count(*) AS n, sum(amount) AS total FROM transfers GROUP BY kind ORDER BY kind", "--format", "csv"]);
    for k in ["erc20", "internal", "native_tx"] {
        assert!(kinds.contains(k), "{kinds}");
    }
    let out = tmp.path().join("tt.csv");
    ok(&reference, &["export", "token_transfers", "--format", "csv", "--out", out.to_str().unwrap()]);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("token_address,from_address,to_address,value,"), "{}", &text[..80]);
    let receipts = ok(&reference, &["export", "receipts", "--layout", "ethereum-etl", "--format", "csv"]);
    assert!(receipts.starts_with(
        "transaction_hash,transaction_index,block_hash,block_number,cumulative_gas_used,gas_used,contract_address,root,status,effective_gas_price,l1_fee,"
    ));
    let e = run(&reference, &["export", "receipts", "--layout", "ethereum-etl", "--format", "parquet"]);
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("CSV or JSON"));

    // Errors a user sees.
    let e = run(&tmp.path().join("x"), &["ingest", "evm", "--rpc", "http://127.0.0.1:9", "--retries", "0"]);
    assert!(!e.status.success());
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(msg.contains("eth_chainId") && msg.contains("127.0.0.1:9"), "{msg}");
    let e = run(&reference, &["ingest", "evm", "--rpc", &node.url, "--to", "99999999"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("above the node's head"));
    let e = run(&reference, &["cluster"]);
    // On an EVM chain, cluster runs the deposit-address heuristic, which needs labelled exchanges.
    assert!(String::from_utf8_lossy(&e.stderr).contains("labelled as an exchange"), "{}", String::from_utf8_lossy(&e.stderr));
    let e = run(&reference, &["index"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("EVM chain"), "{}", String::from_utf8_lossy(&e.stderr));
    let _ = Duration::ZERO;
}

#[test]
fn import_transfers_from_an_explorer_export() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("export-0x0d04.csv");
    std::fs::write(
        &csv,
        format!(
            "Txhash,Blockno,UnixTimestamp,From,To,Value,ContractAddress,TokenSymbol\n0x{},15012701,1655965417,0xf9fb1c508ff49f78b60d3a96dea99fa5d7f3a8a6,0x0d043128146654c7683fbf30ac98d7b2285ded00,13100,,ETH\n0x{},15012702,1655965500,0xf9fb1c508ff49f78b60d3a96dea99fa5d7f3a8a6,nope,1,,ETH\n",
            "1".repeat(64),
            "2".repeat(64)
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let out = run(&data, &["import", "transfers", csv.to_str().unwrap(), "--chain", "ethereum"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("1 transfers imported into ethereum.transfers"), "{stdout}");
    assert!(stderr.contains("export-0x0d04.csv:3: to \"nope\""), "{stderr}");
    let again = ok(&data, &["import", "transfers", csv.to_str().unwrap(), "--chain", "eth"]);
    assert!(again.contains("already imported"), "{again}");
    let sum = ok(&data, &["sql", "SELECT CAST(sum(amount) AS VARCHAR) AS s, min(source) AS src FROM transfers", "--format", "csv"]);
    assert!(sum.contains("13100000000000000000000,import:export-0x0d04.csv"), "{sum}");
    assert!(ok(&data, &["status"]).contains("imported"));
    let e = run(&data, &["import", "transfers", csv.to_str().unwrap(), "--chain", "bitcoin"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("not an EVM chain name"));
}

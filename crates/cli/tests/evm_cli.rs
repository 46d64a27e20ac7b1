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
    let _ = Duration::ZERO;

    // The transfer index: built from the tables, then unchanged, then extended when blocks arrive
    // (equal byte for byte to a rebuild), and rebuilt when damaged.
    let index = |d: &Path| -> serde_json::Value { serde_json::from_str(&ok(d, &["index", "--json"])).unwrap() };
    let file = |d: &Path| d.join("index/anvil/transfers.thg");
    // `cluster` above built it already; from scratch here.
    let _ = std::fs::remove_file(file(&reference));
    let r = index(&reference);
    assert_eq!(r["action"], "rebuilt", "{r}");
    let movements = r["meta"]["movements"].as_u64().unwrap();
    let n_transfers: u64 =
        ok(&reference, &["sql", "SELECT count(*) FROM transfers WHERE kind <> 'erc721'", "--format", "csv"]).lines().nth(1).unwrap().parse().unwrap();
    let n_fees: u64 =
        ok(&reference, &["sql", "SELECT count(*) FROM transactions WHERE receipt_gas_used > 0", "--format", "csv"]).lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(movements, n_transfers + n_fees, "every transfer and every gas fee is a movement");
    assert_eq!(index(&reference)["action"], "unchanged");
    let grown = tmp.path().join("grown");
    // The first ingest ends on a chunk boundary, so the second only adds chunks (a small last
    // chunk would be rewritten, which the index must treat as a change, not an extension).
    let first_to = (head - 30) / 20 * 20 - 1;
    ok(&grown, &["ingest", "evm", "--rpc", &node.url, "--chunk-blocks", "20", "--to", &first_to.to_string()]);
    assert_eq!(index(&grown)["action"], "rebuilt");
    ok(&grown, &["ingest", "evm", "--rpc", &node.url, "--chunk-blocks", "20", "--to", &head.to_string()]);
    let r = index(&grown);
    assert_eq!(r["action"], "extended", "{r}");
    assert_eq!(r["files_read"], (head - first_to).div_ceil(20), "only the new chunks are read");
    let extended = std::fs::read(file(&grown)).unwrap();
    std::fs::remove_file(file(&grown)).unwrap();
    index(&grown);
    assert!(std::fs::read(file(&grown)).unwrap() == extended, "an extended index equals a rebuilt one");
    assert!(std::fs::read(file(&reference)).unwrap() == extended, "chunking does not change the index");
    let mut damaged = extended.clone();
    damaged[5000] ^= 0xff;
    std::fs::write(file(&grown), &damaged).unwrap();
    let r = index(&grown);
    assert_eq!(r["action"], "rebuilt");
    assert!(r["reason"].as_str().unwrap().contains("checksum"), "{r}");
    assert!(std::fs::read(file(&grown)).unwrap() == extended);
    let text = ok(&grown, &["index"]);
    assert!(text.contains("transfer index unchanged") && text.contains(&format!("{movements} movements")), "{text}");
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
    // A bad row: nothing stored, exit 3; with --keep-good-rows the good row is stored.
    let out = run(&data, &["import", "transfers", csv.to_str().unwrap(), "--chain", "ethereum"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&data, &["import", "transfers", csv.to_str().unwrap(), "--chain", "ethereum", "--keep-good-rows"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("1 rows, 1 added to ethereum.transfers"), "{stdout}");
    assert!(stderr.contains("export-0x0d04.csv:3: to \"nope\""), "{stderr}");
    let again = ok(&data, &["import", "transfers", csv.to_str().unwrap(), "--chain", "eth"]);
    assert!(again.contains("already imported"), "{again}");
    let sum = ok(&data, &["sql", "SELECT CAST(sum(amount) AS VARCHAR) AS s, min(source) AS src FROM transfers", "--format", "csv"]);
    assert!(sum.contains("13100000000000000000000,import:export-0x0d04.csv"), "{sum}");
    assert!(ok(&data, &["status"]).contains("imported"));
    // Explorer exports carry no gas fees: following them changes nothing.
    let trace = ok(&data, &["trace", "ethereum", "--from", "0x0d043128146654c7683fbf30ac98d7b2285ded00", "--json"]);
    assert!(trace.contains("\"seed_amount\"") && trace.contains("\"13100000000000000000000\""), "{trace}");
    assert_eq!(ok(&data, &["trace", "ethereum", "--from", "0x0d043128146654c7683fbf30ac98d7b2285ded00", "--fees", "follow", "--json"]), trace);
    let e = run(&data, &["import", "transfers", csv.to_str().unwrap(), "--chain", "bitcoin"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("not an EVM chain name"));
}

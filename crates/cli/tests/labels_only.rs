//! End-to-end: a data directory with labels and no chain (a compliance user who imports the OFAC
//! lists before ingesting anything). The label table `tags` answers SQL and exports, `labels
//! search` and `address` find the sanctioned addresses, and the incident registry works.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracehound")).arg("--data-dir").arg(data).args(args).output().unwrap()
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = run(data, args);
    assert!(out.status.success(), "tracehound {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json(data: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(data, args)).unwrap()
}

fn ofac(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/labels/ofac").join(file)
}

/// The one value of a one-row, one-column query.
fn scalar(data: &Path, sql: &str) -> String {
    let csv = ok(data, &["sql", sql, "--format", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{sql}: {csv}");
    lines[1].to_string()
}

#[test]
fn labels_sql_address_and_incidents_work_without_chain_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (xbt, eth) = (ofac("sanctioned_addresses_XBT.txt"), ofac("sanctioned_addresses_ETH.txt"));
    let reports = json(&data, &["labels", "import", "ofac", xbt.to_str().unwrap(), eth.to_str().unwrap(), "--json"]);
    let inserted: u64 = reports.as_array().unwrap().iter().map(|r| r["inserted"].as_u64().unwrap()).sum();
    let listed = [&xbt, &eth].iter().map(|f| std::fs::read_to_string(f).unwrap().lines().filter(|l| !l.trim().is_empty()).count() as u64).sum::<u64>();
    assert_eq!(inserted, listed, "one tag per listed address: {reports}");
    let status = ok(&data, &["status"]);
    assert!(!data.join("manifest.json").exists() && status.contains("nothing ingested"), "no chain is stored");
    assert!(status.contains(&format!("labels: {inserted} tags")), "status names the labels it holds: {status}");
    assert_eq!(json(&data, &["status", "--json"])["labels"]["tags"], inserted);

    // SQL over the label table.
    assert_eq!(scalar(&data, "SELECT count(*) AS n FROM tags"), inserted.to_string());
    let btc = "123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX";
    assert!(std::fs::read_to_string(&xbt).unwrap().lines().any(|l| l.trim() == btc), "{btc} is on the XBT list");
    assert_eq!(scalar(&data, &format!("SELECT chain || ' ' || label || ' ' || category FROM tags WHERE address = '{btc}'")), "bitcoin OFAC SDN sanctioned");
    let no_chain = run(&data, &["sql", "SELECT count(*) FROM transactions"]);
    let err = String::from_utf8_lossy(&no_chain.stderr);
    assert!(!no_chain.status.success() && err.contains("no chain is ingested yet") && err.contains("tags"), "{err}");

    // Export of the label table.
    let out = tmp.path().join("tags.csv");
    ok(&data, &["export", "tags", "--format", "csv", "--out", out.to_str().unwrap()]);
    let csv = std::fs::read_to_string(&out).unwrap();
    assert_eq!(csv.lines().count() as u64, inserted + 1, "a header and one row per tag");
    assert!(csv.lines().any(|l| l.starts_with(&format!("bitcoin,address,{btc},OFAC SDN,sanctioned,"))), "{csv}");
    let refused = run(&data, &["export", "transactions", "--format", "csv"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("no chain is ingested") && err.contains("only tags can be exported"), "{err}");

    // `labels search` and `address`, for a bitcoin and an ethereum address (given in its checksum case).
    let found = ok(&data, &["labels", "search", btc]);
    assert!(found.contains(&format!("bitcoin address {btc} \"OFAC SDN\" [sanctioned]")), "{found}");
    let text = ok(&data, &["address", "bitcoin", btc]);
    assert!(text.contains("no chain data of bitcoin is ingested") && text.contains("stored chains: none"), "{text}");
    assert!(text.contains("tag: OFAC SDN [sanctioned]") && text.contains("OFAC SDN list (XBT)"), "{text}");
    let v = json(&data, &["address", "bitcoin", btc, "--json"]);
    assert_eq!(
        (&v["chain_data"], &v["seen"], &v["tags"][0]["category"]),
        (&serde_json::json!(false), &serde_json::Value::Null, &serde_json::json!("sanctioned")),
        "{v}"
    );
    let v = json(&data, &["address", "ethereum", "0x01e2919679362dFBC9ee1644Ba9C6da6D6245BB1", "--json"]);
    assert_eq!((&v["chain_data"], &v["tags"][0]["label"]), (&serde_json::json!(false), &serde_json::json!("OFAC SDN")), "{v}");
    let unknown = ok(&data, &["address", "bitcoin", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"]);
    assert!(unknown.contains("no chain data of bitcoin") && unknown.contains("no tag names it"), "{unknown}");

    // The bundled labels add actors: the table counts every tag of the store.
    ok(&data, &["labels", "import", "--defaults"]);
    let total = json(&data, &["labels", "stats", "--json"])["tags"].as_u64().unwrap();
    assert!(total > inserted);
    assert_eq!(scalar(&data, "SELECT count(*) FROM tags"), total.to_string());
    let lazarus: u64 = scalar(&data, "SELECT count(*) FROM tags WHERE actor = 'lazarusgroup' AND category = 'sanctioned'").parse().unwrap();
    assert!(lazarus > 0);
    let text = ok(&data, &["address", "bitcoin", "134r8iHv69xdT6p5qVKTsHrcUEuBVZAYak"]);
    assert!(text.contains("[sanctioned] actor \"lazarusgroup\"") && text.contains("no chain data of bitcoin"), "{text}");

    // The incident registry needs no chain; tracing one does, and says so.
    let list = ok(&data, &["incident", "list"]);
    assert!(list.lines().any(|l| l.starts_with("ronin_2022 ")) && list.contains("registry version"), "{list}");
    let show = ok(&data, &["incident", "show", "ronin_2022"]);
    assert!(show.contains("Ronin") && show.contains("seeds"), "{show}");
    let stats = json(&data, &["report", "stats", "--by", "year", "--format", "json"]);
    assert!(stats["totals"]["count"].as_u64().unwrap() > 0, "{stats}");
    let traced = run(&data, &["incident", "trace", "ronin_2022"]);
    let err = String::from_utf8_lossy(&traced.stderr);
    assert!(!traced.status.success() && err.contains("tracehound ingest"), "{err}");
}

//! End-to-end tests of the `tracehound` binary: crash safety under `kill -9`, SQL, export,
//! status, and errors a user sees.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tracehound_testing::kill_after_tip;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracehound"))
}

fn run(data: &Path, args: &[&str]) -> Output {
    let out = bin().arg("--data-dir").arg(data).args(args).output().unwrap();
    out
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = run(data, args);
    assert!(out.status.success(), "tracehound {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn simulate(dir: &Path, blocks: u64, txs: u32) {
    let out = bin()
        .args(["simulate", "bitcoin", "--blocks", &blocks.to_string(), "--txs-per-block", &txs.to_string(), "--seed", "21", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn dump(data: &Path) -> Vec<String> {
    let mut all = vec![];
    for (t, order) in [
        ("blocks", "number"),
        ("transactions", "block_number, index"),
        ("inputs", "block_number, transaction_hash, index"),
        ("outputs", "block_number, transaction_hash, index"),
    ] {
        all.push(ok(data, &["sql", &format!("SELECT * FROM {t} ORDER BY {order}"), "--format", "csv"]));
    }
    all
}

fn tip(data: &Path) -> Option<u64> {
    tracehound_testing::manifest_tip(data, "bitcoin_regtest")
}

#[test]
fn kill_9_at_any_moment_then_rerun_gives_exactly_the_same_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    simulate(&sim, 900, 40);
    let args =
        |_: ()| vec!["ingest".to_string(), "bitcoin".into(), "--blocks-dir".into(), sim.to_string_lossy().into_owned(), "--chunk-blocks".into(), "15".into()];
    let reference = tmp.path().join("reference");
    let started = Instant::now();
    ok(&reference, &args(()).iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let full = started.elapsed();
    let final_tip = tip(&reference).unwrap();

    // Kills land right after a commit and a few milliseconds into the next chunk; the tips
    // watched are spread over the run, so every kill lands mid-ingest whatever the machine.
    let victim = tmp.path().join("victim");
    let mut partial_states = std::collections::BTreeSet::new();
    for (fraction, delay_ms) in [(0.1, 0), (0.3, 2), (0.5, 5), (0.7, 1), (0.85, 0)] {
        let at_least = (final_tip as f64 * fraction) as u64;
        let mut cmd = bin();
        cmd.arg("--data-dir").arg(&victim).args(args(()));
        if let Some(t) = kill_after_tip(&mut cmd, &victim, "bitcoin_regtest", at_least, Duration::from_millis(delay_ms)) {
            if t < final_tip {
                partial_states.insert(t);
            }
        }
    }
    assert!(partial_states.len() >= 2, "the kills should land mid-ingest at least twice (tips seen: {partial_states:?}, full run {full:?})");
    ok(&victim, &args(()).iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(tip(&victim), Some(final_tip));
    let (a, b) = (dump(&reference), dump(&victim));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.lines().count(), y.lines().count(), "row counts differ");
        assert!(x == y, "tables differ after kill -9 and rerun");
    }
    // Leftovers of interrupted commits are gone.
    let stray = walk(&victim).into_iter().filter(|p| p.extension().is_some_and(|e| e == "tmp")).count();
    assert_eq!(stray, 0);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn sql_export_and_status_work_on_an_ingested_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    simulate(&sim, 180, 10);
    let data = tmp.path().join("data");
    let report = ok(&data, &["ingest", "bitcoin", "--blocks-dir", sim.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["tip"], 180);
    let again = ok(&data, &["ingest", "bitcoin", "--blocks-dir", sim.to_str().unwrap()]);
    assert!(again.contains("already up to date"), "{again}");

    let top = ok(&data, &["sql", "SELECT block_number, count(*) AS n FROM transactions GROUP BY 1 ORDER BY 1 DESC LIMIT 5"]);
    assert!(top.contains("block_number") && top.contains("| 180"), "{top}");
    let j = ok(&data, &["sql", "SELECT count(*) AS n FROM bitcoin_regtest.blocks", "--json"]);
    assert_eq!(j.trim(), r#"{"n":181}"#);

    for (fmt, file) in [("csv", "t.csv"), ("json", "t.jsonl"), ("parquet", "t.parquet")] {
        let out = tmp.path().join(file);
        let o = run(&data, &["export", "transactions", "--format", fmt, "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(std::fs::metadata(&out).unwrap().len() > 0);
    }
    let n_tx: usize = ok(&data, &["sql", "SELECT count(*) AS n FROM transactions", "--format", "csv"]).lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(std::fs::read_to_string(tmp.path().join("t.jsonl")).unwrap().lines().count(), n_tx);
    assert_eq!(std::fs::read_to_string(tmp.path().join("t.csv")).unwrap().lines().count(), n_tx + 1);
    let outputs_csv = tmp.path().join("o.csv");
    ok(&data, &["export", "outputs", "--format", "csv", "--out", outputs_csv.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&outputs_csv).unwrap().lines().next().unwrap().contains("addresses"));

    // A reader that stops early (`| head -1`): a quiet end by SIGPIPE, no panic message.
    let mut child = bin()
        .arg("--data-dir")
        .arg(&data)
        .args(["sql", "SELECT * FROM outputs", "--format", "csv"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
    assert!(first.contains("addresses"), "{first}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&out.status), Some(13), "ended by SIGPIPE");

    let status: serde_json::Value = serde_json::from_str(&ok(&data, &["status", "--json"])).unwrap();
    let chain = &status["chains"]["bitcoin_regtest"];
    assert_eq!(chain["tip_height"], 181 - 1);
    assert_eq!(chain["tables"]["transactions"]["rows"].as_u64().unwrap() as usize, n_tx);
    assert!(ok(&data, &["status"]).contains("bitcoin_regtest: heights 0..=180"));
}

#[test]
fn errors_are_clear_and_exit_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    let o = run(&empty, &["sql", "SELECT 1"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no data in"));

    let o = run(&empty, &["ingest", "bitcoin", "--blocks-dir", tmp.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no blk*.dat files"), "{}", String::from_utf8_lossy(&o.stderr));

    let sim = tmp.path().join("sim");
    simulate(&sim, 20, 2);
    let data = tmp.path().join("data");
    ok(&data, &["ingest", "bitcoin", "--blocks-dir", sim.to_str().unwrap()]);
    let o = run(&data, &["sql", "SELECT nope FROM transactions"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"));
    // Each cause once, though the errors that carry it also quote it in their own message.
    let o = run(&data, &["sql", "SELECT 1 FROM nosuchtable"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.matches("nosuchtable").count() == 1, "{err}");
    assert!(err.contains("the tables are blocks, inputs, outputs, transactions, bitcoin_regtest.blocks"), "{err}");
    let o = run(&data, &["ingest", "bitcoin", "--blocks-dir", tmp.path().join("missing").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("missing") && err.matches("os error 2").count() == 1, "{err}");
    let o = run(&data, &["export", "nonsense", "--out", tmp.path().join("x").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no table \"nonsense\""));
    let o = run(&data, &["ingest", "bitcoin-rpc", "--rpc", "http://127.0.0.1:9", "--retries", "0", "--chain", "bitcoin"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("RPC getblockcount"), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = Duration::from_secs(0);
}

#[test]
fn demo_runs_end_to_end_and_matches_its_ground_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = ok(&data, &["demo", "--blocks", "300"]);
    assert!(out.contains("The theft transaction"), "{out}");
    assert!(out.contains("(0 sat unaccounted)"), "{out}");
    // The entity part: labels loaded, clusters scored against the simulator's wallets.
    assert!(out.contains("actor lazarusgroup: \"Lazarus Group\", country KP"), "{out}");
    assert!(out.contains("precision 1.000"), "{out}");
    assert!(out.contains("Labels joined with entities in SQL") && out.contains("hot wallet"), "{out}");
    // The tracing part: the heist as an incident, traced, and the HTML report.
    assert!(out.contains("incident demo_heist") && out.contains("still held"), "{out}");
    assert!(out.contains("exchange ") && out.contains("coinjoin "), "{out}");
    let html = std::fs::read_to_string(data.join("report.html")).unwrap();
    assert!(html.matches("<svg").count() >= 3 && html.contains("demo_heist") && html.contains("harmony_2022"));
    simulated_heist_is_kept_out_of_the_statistics(&data, &html);
    // Running it again resumes instead of duplicating.
    let again = ok(&data, &["demo", "--blocks", "300"]);
    assert!(again.contains("already ingested"), "{again}");
    assert!(!again.contains("replacing"), "{again}");

    // A data directory of an earlier demo, whose case was not marked simulated: the demo replaces it.
    let stored = data.join("incidents/demo_heist.yaml");
    std::fs::write(&stored, std::fs::read_to_string(&stored).unwrap().replace("simulated: true\n", "")).unwrap();
    let stats = json(&data, &["report", "stats", "--by", "year", "--format", "json"]);
    assert_eq!(stats["simulated"], serde_json::json!([]), "an unmarked case counts as real: {stats}");
    let again = ok(&data, &["demo", "--blocks", "300"]);
    assert!(again.contains("replacing") && again.contains("earlier demo"), "{again}");
    let stats = json(&data, &["report", "stats", "--by", "year", "--format", "json"]);
    assert_eq!(stats["simulated"], serde_json::json!(["demo_heist"]), "{stats}");
}

/// After the demo: the simulated heist is listed as simulated, left out of `report stats` unless
/// `--include-simulated`, and has a section of its own in the HTML report.
fn simulated_heist_is_kept_out_of_the_statistics(data: &Path, html: &str) {
    let list = ok(data, &["incident", "list"]);
    let row = list.lines().find(|l| l.starts_with("demo_heist ")).unwrap_or_else(|| panic!("{list}"));
    assert!(row.contains(" simulated ") && row.contains("not a real incident"), "{row}");
    assert!(list.lines().find(|l| l.starts_with("harmony_2022 ")).unwrap().contains(" bundled "), "{list}");
    let list = json(data, &["incident", "list", "--json"]);
    let provenance = |id: &str| list.as_array().unwrap().iter().find(|i| i["id"] == id).unwrap()["provenance"].clone();
    assert_eq!((provenance("demo_heist"), provenance("ronin_2022")), (serde_json::json!("simulated"), serde_json::json!("bundled")));

    let stats = json(data, &["report", "stats", "--by", "year", "--format", "json"]);
    assert_eq!(stats["include_simulated"], false);
    assert_eq!(stats["simulated"], serde_json::json!(["demo_heist"]), "the output names what was left out");
    let groups = stats["groups"].as_array().unwrap();
    assert!(groups.iter().all(|g| !g["incidents"].as_array().unwrap().iter().any(|i| i == "demo_heist")), "{stats}");
    let y2022 = groups.iter().find(|g| g["key"] == serde_json::json!(["2022"])).unwrap();
    // The 14 bundled incidents of 2022 (was Ronin + Harmony, 720,000,000), without the demo heist.
    assert_eq!((&y2022["count"], &y2022["usd_reported"]), (&serde_json::json!(14), &serde_json::json!(805_222_860)), "the bundled 2022 incidents only");
    assert_eq!(stats["totals"]["count"], 267, "the 267 bundled incidents (was 12)");
    let by_country = json(data, &["report", "stats", "--by", "country", "--format", "json"]);
    assert!(by_country["groups"].as_array().unwrap().iter().all(|g| g["key"][0] != "(unknown)"), "{by_country}");
    let text = ok(data, &["report", "stats", "--by", "actor"]);
    assert!(!text.contains("simulated attacker") && text.contains("1 simulated case (demo_heist) left out"), "{text}");

    let all = json(data, &["report", "stats", "--by", "year", "--format", "json", "--include-simulated"]);
    assert_eq!(all["include_simulated"], true);
    assert_eq!(all["totals"]["count"], 268, "267 bundled incidents (was 12) + the demo heist");
    assert!(all["groups"].as_array().unwrap().iter().any(|g| g["incidents"].as_array().unwrap().iter().any(|i| i == "demo_heist")), "{all}");

    let section = html.find("<h2>Simulated case: ").unwrap_or_else(|| panic!("no section of the simulated case: {html}"));
    let (real, simulated) = html.split_at(section);
    assert!(real.contains("1 simulated case (demo_heist) left out of the figures"), "{real}");
    let figures = &real[real.find("<h2>Stolen USD").unwrap()..];
    assert!(!figures.contains("demo_heist") && !figures.contains("simulated attacker"), "the real figures know nothing of the demo heist");
    assert!(simulated.contains("not a real incident") && simulated.contains("not counted"), "{simulated}");
    assert!(simulated.contains("Where the funds of the simulated case <code>demo_heist</code> went") && simulated.contains("<svg"), "{simulated}");
}

fn json(data: &Path, args: &[&str]) -> serde_json::Value {
    let s = ok(data, args);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("tracehound {args:?} printed no JSON ({e}): {s}"))
}

fn ground_truth(sim: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(sim.join("ground_truth.json")).unwrap()).unwrap()
}

#[test]
fn entities_from_index_clusters_and_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let (sim, data) = (tmp.path().join("sim"), tmp.path().join("data"));
    simulate(&sim, 320, 30);
    let truth = ground_truth(&sim);

    // Before anything is ingested the commands say what to do.
    let o = run(&data, &["cluster"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("tracehound ingest"), "{}", String::from_utf8_lossy(&o.stderr));
    ok(&data, &["ingest", "bitcoin", "--blocks-dir", sim.to_str().unwrap(), "--to", "250"]);

    let idx = json(&data, &["index", "--json"]);
    assert_eq!(idx["action"], "rebuilt");
    let txs = ok(&data, &["sql", "SELECT count(*) AS n FROM transactions", "--format", "csv"]);
    assert_eq!(idx["meta"]["transactions"].to_string(), txs.lines().nth(1).unwrap());
    assert_eq!(json(&data, &["index", "--json"])["action"], "unchanged");

    let o = run(&data, &["cluster", "--change-heuristics", "fresh,optimal_change"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("unknown change heuristic \"fresh\""));
    let gt = sim.join("ground_truth.json");
    let c = json(&data, &["cluster", "--json", "--evaluate", gt.to_str().unwrap()]);
    assert_eq!(c["ground_truth"]["precision"], 1.0, "{c}");
    assert!(c["report"]["meta"]["clusters"].as_u64().unwrap() < c["report"]["meta"]["addresses"].as_u64().unwrap());
    let rows = c["address_clusters_rows"].as_u64().unwrap();
    assert_eq!(rows, c["report"]["meta"]["addresses"].as_u64().unwrap());
    let q = ok(&data, &["sql", "SELECT count(*) AS n, count(DISTINCT cluster_id) AS c FROM address_clusters", "--format", "csv"]);
    assert_eq!(q.lines().nth(1).unwrap(), format!("{rows},{}", c["report"]["meta"]["clusters"]));

    // Labels: the bundled set, a CSV with a bad line, and a manual tag.
    let d = json(&data, &["labels", "import", "--defaults", "--json"]);
    assert!(d.as_array().unwrap().len() > 10);
    let again = json(&data, &["labels", "import", "--defaults", "--json"]);
    assert!(again.as_array().unwrap().iter().all(|r| r["inserted"] == 0), "importing twice changes nothing");
    let lazarus = json(&data, &["actors", "show", "lazarus", "--json"]);
    assert_eq!((lazarus["actor"]["id"].as_str(), lazarus["actor"]["country"].as_str()), (Some("lazarusgroup"), Some("KP")));
    let hot: Vec<(String, String)> =
        truth["exchange_hot_wallets"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    let csv = tmp.path().join("exchanges.csv");
    std::fs::write(
        &csv,
        format!(
            "address,label,category\n{},{} hot wallet,exchange\nbroken,line,with,too,many\n{},{} hot wallet,exchange\n",
            hot[0].1, hot[0].0, hot[1].1, hot[1].0
        ),
    )
    .unwrap();
    // A file with a bad row is refused whole (exit 3) unless its good rows are to be kept.
    let o = run(&data, &["labels", "import", "csv", csv.to_str().unwrap(), "--source", "test", "--chain", "bitcoin_regtest"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 tags added"), "{}", String::from_utf8_lossy(&o.stdout));
    let o = run(&data, &["labels", "import", "csv", csv.to_str().unwrap(), "--source", "test", "--chain", "bitcoin_regtest", "--keep-good-rows"]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("exchanges.csv:3"), "the bad row is named by file and line: {err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 tags added"), "{}", String::from_utf8_lossy(&o.stdout));

    let heist = &truth["heist"];
    let attacker = truth["wallets"][heist["attacker_wallet"].as_u64().unwrap() as usize]["addresses"][0].as_str().unwrap().to_string();
    let add =
        json(&data, &["labels", "add", "bitcoin_regtest", &attacker, "--label", "Heist attacker", "--actor", "lazarus", "--category", "hacker", "--json"]);
    assert_eq!((add["inserted"].as_bool(), add["actor"].as_str()), (Some(true), Some("lazarusgroup")));
    let o = run(&data, &["labels", "add", "bitcoin_regtest", &attacker, "--label", "x", "--actor", "nosuchactorxyz"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("no actor \"nosuchactorxyz\""));
    let found = json(&data, &["labels", "search", "Heist attacker", "--json"]);
    assert!(found["tags"].as_array().unwrap().iter().any(|t| t["subject"] == attacker.as_str()));
    let tags_sql = ok(&data, &["sql", &format!("SELECT label, actor FROM tags WHERE address = '{attacker}'"), "--format", "csv"]);
    assert!(tags_sql.contains("Heist attacker,lazarusgroup"), "{tags_sql}");

    // An address: activity from the index, its tags, its entity and the entity's tags.
    let a = json(&data, &["address", "bitcoin_regtest", &attacker, "--json"]);
    assert_eq!(a["activity"]["received_sat"], heist["stolen_sat"]);
    assert_eq!(a["tags"][0]["label"], "Heist attacker");
    assert_eq!(a["cluster"]["tags"][0]["actor"], "lazarusgroup");
    // The deposits at an exchange join its hot wallet's entity (the exchange consolidates).
    let deposit = heist["deposits"].as_array().unwrap().iter().find(|d| d["exchange"] == hot[0].0.as_str());
    if let Some(d) = deposit {
        let addr = d["address"].as_str().unwrap();
        let info = json(&data, &["address", "bitcoin_regtest", addr, "--json"]);
        let hot_info = json(&data, &["address", "bitcoin_regtest", &hot[0].1, "--json"]);
        if info["cluster"]["id"] == hot_info["cluster"]["id"] {
            assert!(info["cluster"]["tags"].as_array().unwrap().iter().any(|t| t["label"] == format!("{} hot wallet", hot[0].0)));
            let e = json(&data, &["explain", "bitcoin_regtest", addr, &hot[0].1, "--json"]);
            assert_eq!(e["same_entity"], true);
            assert_eq!(e["steps"][0]["from"], addr);
        }
    }
    let id = a["cluster"]["id"].as_u64().unwrap().to_string();
    let e = json(&data, &["entity", "bitcoin_regtest", &id, "--addresses", "--json"]);
    assert!(e["addresses"].as_array().unwrap().iter().any(|x| x == attacker.as_str()));
    // Two exchanges in one entity are reported as a conflict, not hidden.
    let conflict_csv = tmp.path().join("conflict.csv");
    std::fs::write(&conflict_csv, format!("address,label,category\n{},{} hot wallet,exchange\n", hot[0].1, hot[1].0)).unwrap();
    ok(&data, &["labels", "import", "csv", conflict_csv.to_str().unwrap(), "--source", "conflict", "--chain", "bitcoin_regtest"]);
    let a = json(&data, &["address", "bitcoin_regtest", &hot[0].1, "--json"]);
    let conflicts: Vec<&str> = a["cluster"]["conflicts"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(conflicts.iter().any(|c| c.contains("2 different exchange owners") && c.contains(&hot[0].0) && c.contains(&hot[1].0)), "{a}");

    let o = run(&data, &["address", "bitcoin_regtest", "bcrt1qunknownaddress"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("does not appear"));
    let o = run(&data, &["entity", "bitcoin_regtest", "4294967"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("not a cluster id"));
    let out = tmp.path().join("clusters.csv");
    ok(&data, &["export", "address_clusters", "--format", "csv", "--out", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count() as u64, rows + 1);

    // More blocks arrive: the index is extended and clustering continues where it stopped.
    ok(&data, &["ingest", "bitcoin", "--blocks-dir", sim.to_str().unwrap()]);
    let idx = json(&data, &["index", "--json"]);
    assert_eq!((idx["action"].as_str(), &idx["meta"]["transactions"]), (Some("extended"), &truth["transactions"]), "{idx}");
    let c2 = json(&data, &["cluster", "--json"]);
    assert_eq!(c2["report"]["mode"], "incremental", "{c2}");
}

/// The tables open in DuckDB and Polars (PyPI, installed by `tools/install-test-deps.sh`) and give
/// the same figures as tracehound's own SQL: counts, exact satoshi sums, and the nested
/// `addresses` lists.
#[test]
fn duckdb_and_polars_read_the_tables_and_agree_with_tracehound() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    simulate(&sim, 150, 30);
    let data = tmp.path().join("data");
    ok(&data, &["ingest", "bitcoin", "--blocks-dir", sim.to_str().unwrap(), "--chunk-blocks", "40"]);
    let ours = ok(
        &data,
        &[
            "sql",
            "SELECT (SELECT count(*) FROM blocks) AS blocks, (SELECT count(*) FROM transactions) AS transactions, \
             (SELECT sum(fee) FROM transactions) AS fees, (SELECT count(*) FROM inputs) AS inputs, \
             (SELECT sum(value) FROM outputs) AS output_value, \
             (SELECT count(DISTINCT a) FROM (SELECT unnest(addresses) AS a FROM outputs)) AS addresses",
            "--format",
            "json",
        ],
    );
    let ours: serde_json::Value = serde_json::from_str(ours.lines().next().unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/interop/read_tables.py");
    let out = Command::new("python3").arg(&script).arg(data.join("chains/bitcoin_regtest")).output().expect("python3 runs");
    assert!(out.status.success(), "DuckDB / Polars could not read the tables (run tools/install-test-deps.sh): {}", String::from_utf8_lossy(&out.stderr));
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(ours["transactions"].as_u64().unwrap() > 1000, "{ours}");
    for reader in ["duckdb", "polars"] {
        assert_eq!(theirs[reader], ours, "{reader} reads other figures than tracehound's SQL");
    }
}

//! `tracehound trace` against ground truth: the simulator's Bitcoin heist and the anvil bridge
//! heist. Where the scenario is unambiguous (every coin the attacker moves is stolen), FIFO and
//! haircut must both find exactly where every satoshi and wei went.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tracehound_testing::Anvil;

mod common;
use common::{json, n, ok, run, sql_rows};

#[test]
fn bitcoin_heist_traced_to_exchanges_coinjoins_and_held_outputs_as_the_simulator_says() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    ok(&data, &["demo", "--blocks", "600"]);
    let truth: Value = serde_json::from_str(&std::fs::read_to_string(data.join("demo-chain/ground_truth.json")).unwrap()).unwrap();
    let h = &truth["heist"];
    let seed = format!("{}:0", h["txid"].as_str().unwrap());
    let stolen = h["stolen_sat"].as_u64().unwrap() as u128;
    let coinjoins: BTreeSet<&str> = h["coinjoin_txids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(!coinjoins.is_empty(), "the demo heist goes through CoinJoins");

    // What the trace must find, from the simulator's ledger: deposits and held outputs that are
    // not downstream of a CoinJoin (the trace stops at CoinJoins: they are mixers).
    let spent_by: BTreeMap<String, String> = sql_rows(
        &data,
        &format!(
            "SELECT transaction_hash, spent_transaction_hash FROM inputs WHERE transaction_hash IN ({})",
            h["deposits"].as_array().unwrap().iter().map(|d| format!("'{}'", d["txid"].as_str().unwrap())).collect::<Vec<_>>().join(",")
        ),
    )
    .into_iter()
    .map(|r| (r["transaction_hash"].as_str().unwrap().to_string(), r["spent_transaction_hash"].as_str().unwrap().to_string()))
    .collect();
    let mut by_exchange: BTreeMap<String, u128> = BTreeMap::new();
    for d in h["deposits"].as_array().unwrap() {
        if !coinjoins.contains(spent_by[d["txid"].as_str().unwrap()].as_str()) {
            *by_exchange.entry(format!("{} hot wallet", d["exchange"].as_str().unwrap())).or_default() += d["value_sat"].as_u64().unwrap() as u128;
        }
    }
    let held: BTreeSet<(String, u128)> = h["held"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| !coinjoins.contains(o["txid"].as_str().unwrap()))
        .map(|o| (format!("{}:{}", o["txid"].as_str().unwrap(), o["vout"]), o["value_sat"].as_u64().unwrap() as u128))
        .collect();
    let attacker: Vec<String> = truth["wallets"][h["attacker_wallet"].as_u64().unwrap() as usize]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("'{}'", a.as_str().unwrap()))
        .collect();
    let into_coinjoins: BTreeMap<String, u128> = sql_rows(
        &data,
        &format!(
            "SELECT transaction_hash, CAST(sum(value) AS BIGINT) AS v FROM inputs WHERE transaction_hash IN ({}) AND addresses[1] IN ({}) GROUP BY 1",
            coinjoins.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(","),
            attacker.join(",")
        ),
    )
    .into_iter()
    .map(|r| (format!("CoinJoin {}", r["transaction_hash"].as_str().unwrap()), r["v"].as_u64().unwrap() as u128))
    .collect();

    for model in ["fifo", "haircut"] {
        let t = json(&data, &["trace", "bitcoin_regtest", "--from", &seed, "--model", model, "--json"]);
        let acc = &t["accounting"];
        assert_eq!(n(&t["seed_amount"]), stolen);
        let sinks = |cat: &str| -> BTreeMap<String, u128> {
            acc["sinks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["category"] == cat)
                .map(|s| (s["name"].as_str().unwrap().to_string(), n(&s["amount"])))
                .collect()
        };
        assert_eq!(sinks("exchange"), by_exchange, "{model}: exchanges");
        assert_eq!(sinks("coinjoin"), into_coinjoins, "{model}: CoinJoins");
        let got_held: BTreeSet<(String, u128)> =
            acc["held"].as_array().unwrap().iter().map(|o| (o["output"].as_str().unwrap().to_string(), n(&o["tainted"]))).collect();
        assert_eq!(got_held, held, "{model}: still held, output by output");
        let fees = n(&acc["fees"]);
        assert!(fees > 0 && fees <= h["fees_sat"].as_u64().unwrap() as u128, "{model}: fees {fees}");
        assert_eq!(n(&acc["held_total"]) + fees + by_exchange.values().sum::<u128>() + into_coinjoins.values().sum::<u128>(), stolen, "{model}: every satoshi");
    }
    // Poison taints whole outputs: it reaches at least what haircut does at each exchange.
    let p = json(&data, &["trace", "bitcoin_regtest", "--from", &seed, "--model", "poison", "--json"]);
    for s in p["accounting"]["sinks"].as_array().unwrap().iter().filter(|s| s["category"] == "exchange") {
        assert!(n(&s["amount"]) >= by_exchange.get(s["name"].as_str().unwrap()).copied().unwrap_or(0));
    }

    // Backward from a deposit: every satoshi came from the victim exchange's hot wallet.
    let d = h["deposits"].as_array().unwrap().iter().find(|d| !coinjoins.contains(spent_by[d["txid"].as_str().unwrap()].as_str())).unwrap();
    let from = format!("{}:{}", d["txid"].as_str().unwrap(), d["vout"]);
    for model in ["fifo", "haircut"] {
        let b = json(&data, &["trace", "bitcoin_regtest", "--from", &from, "--model", model, "--direction", "backward", "--json"]);
        let s = &b["accounting"]["sinks"][0];
        assert_eq!(s["name"].as_str().unwrap(), format!("{} hot wallet", h["victim"].as_str().unwrap()), "{model}");
        assert_eq!(n(&s["amount"]), d["value_sat"].as_u64().unwrap() as u128, "{model}");
    }

    // As of the theft's block everything is still held by the thief.
    let until = json(&data, &["trace", "bitcoin_regtest", "--from", &seed, "--until", &h["height"].to_string(), "--json"]);
    assert_eq!(n(&until["accounting"]["held_total"]), stolen);
    // A hop limit and dust: accounted, never lost.
    let short = json(&data, &["trace", "bitcoin_regtest", "--from", &seed, "--max-hops", "2", "--min-amount", "100000000", "--json"]);
    let a = &short["accounting"];
    let total: u128 = a["sinks"].as_array().unwrap().iter().map(|s| n(&s["amount"])).sum::<u128>()
        + ["held_total", "fees", "below_threshold", "hop_limit", "node_limit"].iter().map(|k| n(&a[k])).sum::<u128>();
    assert_eq!(total, stolen);
    assert!(n(&a["hop_limit"]) > 0);

    // The other formats.
    let dot = ok(&data, &["trace", "bitcoin_regtest", "--from", &seed, "--format", "dot"]);
    assert!(dot.starts_with("digraph trace {") && dot.contains("->") && dot.trim_end().ends_with('}'));
    let gml = ok(&data, &["trace", "bitcoin_regtest", "--from", &seed, "--format", "graphml"]);
    assert!(gml.contains("<graphml") && gml.contains("<edge ") && gml.trim_end().ends_with("</graphml>"));
    let csv = ok(&data, &["trace", "bitcoin_regtest", "--from", &seed, "--format", "csv"]);
    assert!(csv.starts_with("hop,tx,height,time,from,to,asset,amount\n1,"));
    let text = ok(&data, &["trace", "bitcoin_regtest", "--from", &seed]);
    assert!(text.contains("reached exchange") && text.contains("still held"), "{text}");
    // Entities as nodes: the demo clustered the chain, so addresses fold into their clusters; the
    // accounting does not change.
    let by_address = json(&data, &["trace", "bitcoin_regtest", "--from", &seed, "--json"]);
    let by_entity = json(&data, &["trace", "bitcoin_regtest", "--from", &seed, "--json", "--nodes", "entity"]);
    assert_eq!(by_entity["accounting"], by_address["accounting"]);
    let count = |t: &Value, k: &str| t[k].as_array().unwrap().len();
    assert!(count(&by_entity, "nodes") <= count(&by_address, "nodes"));
    // Each address node became its cluster's entity (or stayed, alone in its cluster).
    let entity_nodes: BTreeSet<String> = by_entity["nodes"].as_array().unwrap().iter().map(|n| n["address"].as_str().unwrap().to_string()).collect();
    let mut entities = 0;
    for node in by_address["nodes"].as_array().unwrap().iter().take(25) {
        let a = node["address"].as_str().unwrap();
        if a.starts_with('(') {
            continue; // "(no address)"
        }
        let info = json(&data, &["address", "bitcoin_regtest", a, "--json"]);
        let name = if info["cluster"]["size"].as_u64().unwrap() > 1 { format!("entity {}", info["cluster"]["id"]) } else { a.to_string() };
        entities += name.starts_with("entity ") as usize;
        assert!(entity_nodes.contains(&name), "{a} should be node {name}");
    }
    assert!(entities > 0, "some traced addresses belong to multi-address clusters");
    let moved = |t: &Value| t["edges"].as_array().unwrap().iter().filter(|e| e["hop"] == 1).map(|e| n(&e["amount"])).sum::<u128>();
    assert!(moved(&by_entity) <= moved(&by_address));
    // Seeds from a file.
    let seeds = tmp.path().join("seeds.txt");
    std::fs::write(&seeds, format!("# the theft\n{seed}\n")).unwrap();
    let f = json(&data, &["trace", "bitcoin_regtest", "--from", seeds.to_str().unwrap(), "--json"]);
    assert_eq!(n(&f["seed_amount"]), stolen);

    incidents_prices_and_reports(&data, tmp.path(), &by_exchange, stolen);

    // Errors a user sees.
    let bad_vout = format!("{}:99", h["txid"].as_str().unwrap());
    for (args, want) in [
        (vec!["trace", "bitcoin_regtest", "--from", "nope"], "address never seen"),
        (vec!["trace", "bitcoin_regtest", "--from", &seed, "--model", "magic"], "haircut, fifo or poison"),
        (vec!["trace", "bitcoin_regtest", "--from", &seed, "--stop-at", "casinos"], "unknown category"),
        (vec!["trace", "dogecoin", "--from", &seed], "no chain"),
        (vec!["trace", "bitcoin_regtest", "--from", &bad_vout], "has 1 output(s)"),
        (vec!["trace", "bitcoin_regtest", "--from", "0000000000000000000000000000000000000000000000000000000000000001:0"], "not in the ingested data"),
    ] {
        let e = run(&data, &args);
        assert!(!e.status.success());
        let msg = String::from_utf8_lossy(&e.stderr);
        assert!(msg.contains(want), "{args:?}: {msg}");
    }
}

/// The registry, an incident trace with its USD accounting, prices and reports, on the demo chain.
fn incidents_prices_and_reports(data: &Path, tmp: &Path, by_exchange: &BTreeMap<String, u128>, stolen: u128) {
    let list = json(data, &["incident", "list", "--json"]);
    let ids: BTreeSet<&str> = list.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 276, "275 bundled (was 15) + the demo's: {ids:?}");
    assert!(ids.contains("harmony_2022") && ids.contains("demo_heist"));
    let h = json(data, &["incident", "show", "harmony_2022", "--json"]);
    assert_eq!(h["amount_usd"], 100_000_000);
    assert_eq!(h["country"], "KP");

    let r = json(data, &["incident", "trace", "demo_heist", "--json"]);
    let f = &r["flows"][0];
    assert_eq!(n(&f["seed_amount"]), stolen);
    let dest = f["destinations"].as_array().unwrap();
    assert_eq!(dest.iter().map(|d| n(&d["amount"])).sum::<u128>(), stolen, "the accounting covers the loot");
    let exchanges: BTreeMap<String, u128> =
        dest.iter().filter(|d| d["kind"] == "exchange").map(|d| (d["label"].as_str().unwrap().to_string(), n(&d["amount"]))).collect();
    assert_eq!(&exchanges, by_exchange);
    for d in dest {
        let usd = d["usd"].as_f64().unwrap_or_else(|| panic!("2022 is priced: {d}"));
        let btc = n(&d["amount"]) as f64 / 1e8;
        assert!(usd > btc * 15_000.0 && usd < btc * 70_000.0, "{d}: a 2022 BTC price");
    }
    let text = ok(data, &["incident", "trace", "demo_heist"]);
    assert!(text.contains("still held") && text.contains('$'), "{text}");
    let e = run(data, &["incident", "trace", "harmony_2022"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("none of these chains is ingested"), "{}", String::from_utf8_lossy(&e.stderr));
    let e = run(data, &["incident", "show", "harmony"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("did you mean harmony_2022"), "{}", String::from_utf8_lossy(&e.stderr));

    // A user's own case; a bad one names its file and field.
    let case = tmp.join("case.yaml");
    std::fs::write(&case, "id: my_case\nname: A case\ndate: 2022-13-01\nsources: [x]\n").unwrap();
    let e = run(data, &["incident", "add", case.to_str().unwrap()]);
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(!e.status.success() && msg.contains("case.yaml") && msg.contains("date"), "{msg}");
    std::fs::write(&case, "id: my_case\nname: A case\ndate: 2022-03-01\namount_usd: 5000000\nactor: lazarusgroup\ncountry: KP\nsources: [notes]\n").unwrap();
    ok(data, &["incident", "add", case.to_str().unwrap()]);
    ok(data, &["incident", "add", case.to_str().unwrap()]);
    let stats = json(data, &["report", "stats", "--by", "country", "--by", "year", "--format", "json"]);
    let kp2022 = stats["groups"].as_array().unwrap().iter().find(|g| g["key"] == serde_json::json!(["KP", "2022"])).unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(kp2022["usd_reported"], 810_222_860, "the 14 bundled 2022 incidents (805,222,860; was Ronin + Harmony 720M) + my case 5M");
    let csv = ok(data, &["report", "stats", "--by", "actor", "--format", "csv"]);
    assert!(csv.lines().next().unwrap().starts_with("section,actor,count,usd_reported"), "{csv}");
    let e = run(data, &["report", "stats", "--by", "planet"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("--by \"planet\""));

    // Prices: a bad row names file and line and imports nothing; a good file wins over the bundled prices.
    let p = tmp.join("prices.csv");
    std::fs::write(&p, "date,asset,usd\n2022-01-01,BTC,1000\n2022-01-02,BTC,abc\n").unwrap();
    let e = run(data, &["prices", "import", p.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("prices.csv:3"), "{}", String::from_utf8_lossy(&e.stderr));
    std::fs::write(&p, "date,asset,usd\n2022-01-01,USDC,1.0\n").unwrap();
    assert!(ok(data, &["prices", "import", p.to_str().unwrap()]).contains("1 daily prices imported"));

    let html = tmp.join("r.html");
    ok(data, &["report", "stats", "--by", "actor", "--by", "year", "--format", "html", "--out", html.to_str().unwrap(), "--trace", "demo_heist"]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 3, "per year by actor, countries, destinations");
    assert!(page.contains("my_case") && page.contains("Krakenly") && !page.contains("<script"));
}

/// Traces the anvil heist from its seed transactions with both models and compares every flow
/// with the scenario's ground truth.
fn check_evm_flows(data: &Path, truth: &Value) {
    let h = &truth["heist"];
    let token = truth["assets"]["TUSD"]["address"].as_str().unwrap().to_string();
    let flow_name = |truth_flow: &str| match truth_flow {
        "ETH" => "ETH".to_string(),
        "TUSD" => token.clone(),
        _ => format!("ETH from swap of {token}"),
    };
    let seeds: Vec<&str> = h["seed_transactions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for model in ["haircut", "fifo"] {
        let mut args = vec!["trace", "anvil", "--model", model, "--json", "--from"];
        args.extend(&seeds);
        let traces = json(data, &args);
        let traces = traces.as_array().unwrap();
        for (truth_flow, f) in h["flows"].as_object().unwrap() {
            let t = traces
                .iter()
                .find(|t| t["flow"] == flow_name(truth_flow))
                .unwrap_or_else(|| panic!("{model}: no flow {truth_flow} in {:?}", traces.iter().map(|t| &t["flow"]).collect::<Vec<_>>()));
            assert_eq!(n(&t["seed_amount"]), n(&f["total"]), "{model} {truth_flow}: seed");
            let acc = &t["accounting"];
            let mut at_sinks: BTreeMap<(String, String), u128> = BTreeMap::new();
            for s in acc["sinks"].as_array().unwrap() {
                for a in s["addresses"].as_array().unwrap() {
                    *at_sinks.entry((s["category"].as_str().unwrap().to_string(), a["address"].as_str().unwrap().to_string())).or_default() += n(&a["amount"]);
                }
            }
            let mut want_sinks: BTreeMap<(String, String), u128> = BTreeMap::new();
            let mut want_held: BTreeMap<String, u128> = BTreeMap::new();
            for d in f["destinations"].as_array().unwrap() {
                let amount = n(&d["amount"]);
                match d["category"].as_str().unwrap() {
                    "exchange" => *want_sinks.entry(("exchange".into(), d["deposit_address"].as_str().unwrap().into())).or_default() += amount,
                    "mixer" => *want_sinks.entry(("mixing_service".into(), d["address"].as_str().unwrap().into())).or_default() += amount,
                    "swap" => *want_sinks.entry(("swap".into(), d["address"].as_str().unwrap().into())).or_default() += amount,
                    "gas_fees" => assert_eq!(n(&acc["fees"]), amount, "{model} {truth_flow}: gas fees"),
                    "held" if amount > 0 => {
                        want_held.insert(d["address"].as_str().unwrap().into(), amount);
                    }
                    "held" => {}
                    other => panic!("unknown destination {other}"),
                }
            }
            assert_eq!(at_sinks, want_sinks, "{model} {truth_flow}: sinks");
            let held: BTreeMap<String, u128> =
                acc["held"].as_array().unwrap().iter().map(|x| (x["address"].as_str().unwrap().to_string(), n(&x["tainted"]))).collect();
            assert_eq!(held, want_held, "{model} {truth_flow}: still held");
            assert_eq!(n(&acc["below_threshold"]) + n(&acc["hop_limit"]) + n(&acc["node_limit"]), 0);
        }
    }
}

/// With `--fees follow`, the stolen ETH's gas fees split as the chain split them: the base fee is
/// burned (still "fees"), the priority fee is held by the block's fee recipient (anvil's coinbase,
/// the zero address). Everything else is as with `--fees drop`.
fn check_evm_fees_followed(data: &Path, truth: &Value) {
    let h = &truth["heist"];
    let by_tx: BTreeMap<&str, &Value> = truth["transactions"].as_array().unwrap().iter().map(|t| (t["hash"].as_str().unwrap(), t)).collect();
    let gas = h["flows"]["ETH"]["destinations"].as_array().unwrap().iter().find(|d| d["category"] == "gas_fees").unwrap();
    let (mut burnt, mut priority) = (0u128, 0u128);
    for t in gas["txs"].as_array().unwrap() {
        let tx = by_tx[t["tx"].as_str().unwrap()];
        burnt += n(&tx["burnt_fee"]);
        priority += n(&tx["priority_fee"]);
    }
    assert!(burnt > 0 && priority > 0, "the scenario pays both parts");
    let coinbase = truth["blocks"][1]["miner"].as_str().unwrap();
    let seeds: Vec<&str> = h["seed_transactions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for model in ["haircut", "fifo"] {
        let eth_flow = |fees: &str| {
            let mut args = vec!["trace", "anvil", "--model", model, "--fees", fees, "--json", "--from"];
            args.extend(&seeds);
            json(data, &args).as_array().unwrap().iter().find(|t| t["flow"] == "ETH").unwrap().clone()
        };
        let (dropped, followed) = (eth_flow("drop"), eth_flow("follow"));
        let (d, f) = (&dropped["accounting"], &followed["accounting"]);
        assert_eq!(n(&f["fees"]), burnt, "{model}: the base fee is burned");
        let held: BTreeMap<String, u128> =
            f["held"].as_array().unwrap().iter().map(|x| (x["address"].as_str().unwrap().to_string(), n(&x["tainted"]))).collect();
        let mut want: BTreeMap<String, u128> =
            d["held"].as_array().unwrap().iter().map(|x| (x["address"].as_str().unwrap().to_string(), n(&x["tainted"]))).collect();
        want.insert(coinbase.to_string(), priority);
        assert_eq!(held, want, "{model}: the priority fees are held by the coinbase");
        assert_eq!(f["sinks"], d["sinks"], "{model}: sinks unchanged");
        assert!(followed["edges"].as_array().unwrap().iter().any(|e| e["to"] == coinbase), "{model}: an edge to the coinbase");
    }
}

#[test]
fn evm_bridge_heist_traced_as_the_scenario_ground_truth_says() {
    let node = Anvil::start_for_scenario();
    let tmp = tempfile::tempdir().unwrap();
    let truth = node.run_scenario(&tmp.path().join("truth.json"), &[]);
    let data = tmp.path().join("d");
    ok(&data, &["ingest", "evm", "--rpc", &node.url]);
    // What an investigator knows: the exchange's addresses, the mixer, the swap pool.
    let mut csv = String::from("address,label,category\n");
    for (addr, info) in truth["addresses"].as_object().unwrap() {
        let category = match info["role"].as_str().unwrap() {
            "exchange_hot_wallet" | "exchange_deposit_address" => "exchange",
            "mixer" => "mixing_service",
            "swap" => "defi_dex",
            _ => continue,
        };
        csv.push_str(&format!("{addr},{} ({}),{category}\n", info["name"].as_str().unwrap(), info["role"].as_str().unwrap()));
    }
    let labels = tmp.path().join("labels.csv");
    std::fs::write(&labels, csv).unwrap();
    ok(&data, &["labels", "import", "csv", labels.to_str().unwrap(), "--chain", "anvil", "--source", "scenario"]);

    check_evm_flows(&data, &truth);
    check_evm_fees_followed(&data, &truth);
    let h = &truth["heist"];
    let token = truth["assets"]["TUSD"]["address"].as_str().unwrap().to_string();
    // Seeded by the thief's address instead of the exploit transactions: the same ETH flow.
    let loot = h["seed_addresses"][0].as_str().unwrap();
    let by_addr = json(&data, &["trace", "anvil", "--from", loot, "--json"]);
    let eth = by_addr.as_array().unwrap().iter().find(|t| t["flow"] == "ETH").unwrap();
    assert_eq!(n(&eth["seed_amount"]), n(&h["flows"]["ETH"]["total"]));
    let dot = ok(&data, &["trace", "anvil", "--from", loot, "--format", "dot"]);
    assert!(dot.matches("digraph trace").count() == 3, "one graph per flow");
    let e = run(&data, &["trace", "anvil", "--from", "0x1234"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("not an address"));
    // A seed that adds nothing is named, with what to try instead; each seed's part is reported.
    let idle = "0x00000000000000000000000000000000000000aa";
    let out = run(&data, &["trace", "anvil", "--from", loot, idle, "--json"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("seed {idle} received nothing")) && stderr.contains("--seed sent"), "{stderr}");
    let traces: Value = serde_json::from_slice(&out.stdout).unwrap();
    let eth = traces.as_array().unwrap().iter().find(|t| t["flow"] == "ETH").unwrap();
    let parts: Vec<(String, u128)> =
        eth["seed_amounts"].as_array().unwrap().iter().map(|s| (s["seed"].as_str().unwrap().to_string(), n(&s["amount"]))).collect();
    assert_eq!(parts, vec![(format!("{} (received)", loot.to_ascii_lowercase()), n(&h["flows"]["ETH"]["total"]))]);
    // The drained victim: what the bridge sent, forward, equals what the transfers table says it
    // sent (ETH, gas aside), in a flow seeded by "<bridge> (sent)".
    let victim = h["victim_address"].as_str().unwrap().to_ascii_lowercase();
    let sent = json(&data, &["trace", "anvil", "--from", &victim, "--seed", "sent", "--json"]);
    let eth = sent.as_array().unwrap().iter().find(|t| t["flow"] == "ETH").unwrap();
    let by_sql: u128 = sql_rows(
        &data,
        &format!("SELECT CAST(SUM(amount) AS VARCHAR) AS s FROM transfers WHERE from_address = '{victim}' AND asset = 'native' AND to_address IS NOT NULL"),
    )[0]["s"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(by_sql >= n(&h["flows"]["ETH"]["total"]), "the bridge sent at least the stolen ETH");
    assert_eq!(n(&eth["seed_amount"]), by_sql);
    assert_eq!(eth["seed_amounts"][0]["seed"], format!("{victim} (sent)").as_str());
    let e = run(&data, &["trace", "anvil", "--from", &victim, "--seed", "sent", "--direction", "backward"]);
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("--seed sent works forward only"));
    // An address the chain data never saw, but a label names: its labels are shown.
    ok(&data, &["labels", "add", "anvil", idle, "--label", "Idle watch", "--category", "hacker"]);
    let shown = ok(&data, &["address", "anvil", idle]);
    assert!(shown.contains("not seen in the ingested data") && shown.contains("Idle watch"), "{shown}");
    let e = run(&data, &["trace", "anvil", "--from", idle]);
    assert!(
        !e.status.success() && String::from_utf8_lossy(&e.stderr).contains("hint: an address seed takes what it received"),
        "{}",
        String::from_utf8_lossy(&e.stderr)
    );
    // Backward from the thief: everything it received came from the bridge, in both assets.
    // Unlabelled, the bridge is a pool traced further back; labelled, the trace stops there.
    let bridge = h["victim_address"].as_str().unwrap().to_ascii_lowercase();
    let stolen = |asset: &str| n(&h["flows"][asset]["total"]);
    for model in ["haircut", "fifo"] {
        let back = json(&data, &["trace", "anvil", "--from", loot, "--direction", "backward", "--model", model, "--json"]);
        let eth = back.as_array().unwrap().iter().find(|t| t["flow"] == "ETH").unwrap();
        assert_eq!(eth["direction"], "backward");
        assert_eq!(n(&eth["seed_amount"]), stolen("ETH"), "{model}: the thief received the stolen ETH only");
        let first: u128 = eth["edges"].as_array().unwrap().iter().filter(|e| e["hop"] == 1 && e["from"] == bridge.as_str()).map(|e| n(&e["amount"])).sum();
        assert_eq!(first, stolen("ETH"), "{model}: hop 1 is the bridge");
        let a = &eth["accounting"];
        let total = a["sinks"].as_array().unwrap().iter().map(|s| n(&s["amount"])).sum::<u128>()
            + ["below_threshold", "hop_limit", "node_limit", "unresolved"].iter().map(|k| n(&a[k])).sum::<u128>();
        assert_eq!(total, stolen("ETH"), "{model}: backward accounting sums to the seed");
    }
    ok(&data, &["labels", "add", "anvil", &bridge, "--label", "Scenario bridge", "--category", "bridge"]);
    for model in ["haircut", "fifo"] {
        let back = json(&data, &["trace", "anvil", "--from", loot, "--direction", "backward", "--model", model, "--json"]);
        for (flow, asset) in [("ETH".to_string(), "ETH"), (token.clone(), "TUSD")] {
            let t = back.as_array().unwrap().iter().find(|t| t["flow"] == flow.as_str()).unwrap_or_else(|| panic!("{model}: no backward flow {flow}"));
            let s = &t["accounting"]["sinks"][0];
            assert_eq!((s["category"].as_str().unwrap(), n(&s["amount"])), ("bridge", stolen(asset)), "{model} {asset}: all of it came from the bridge");
        }
    }

    // Only the hot wallet labelled: the deposit-address heuristic finds the exchange's deposit
    // addresses (forwarder contracts and swept EOAs), and the traces stop there as before.
    let data = tmp.path().join("d2");
    ok(&data, &["ingest", "evm", "--rpc", &node.url]);
    let e = run(&data, &["cluster"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("no address of anvil is labelled as an exchange"), "{}", String::from_utf8_lossy(&e.stderr));
    let mut csv = String::from("address,label,category\n");
    let mut deposit_truth = BTreeSet::new();
    for (addr, info) in truth["addresses"].as_object().unwrap() {
        match info["role"].as_str().unwrap() {
            "exchange_hot_wallet" => csv.push_str(&format!("{addr},Exchange hot wallet,exchange\n")),
            "mixer" => csv.push_str(&format!("{addr},Mixer,mixing_service\n")),
            "swap" => csv.push_str(&format!("{addr},Swap,defi_dex\n")),
            "exchange_deposit_address" => {
                deposit_truth.insert(addr.clone());
            }
            _ => {}
        }
    }
    std::fs::write(&labels, csv).unwrap();
    ok(&data, &["labels", "import", "csv", labels.to_str().unwrap(), "--chain", "anvil", "--source", "scenario"]);
    let found = json(&data, &["cluster", "--json"]);
    let found: BTreeSet<String> = found["deposit_addresses"].as_array().unwrap().iter().map(|d| d["address"].as_str().unwrap().to_string()).collect();
    assert_eq!(found, deposit_truth, "deposit addresses found = the scenario's");
    check_evm_flows(&data, &truth);

    // Entities: every deposit address joined the hot wallet it forwards to, with the forwarding
    // transaction as evidence.
    let hot = truth["addresses"].as_object().unwrap().iter().find(|(_, i)| i["role"] == "exchange_hot_wallet").unwrap().0.clone();
    let dep = json(&data, &["cluster", "--json"]);
    let first = &dep["deposit_addresses"][0];
    let (d, forwarded_in) = (first["address"].as_str().unwrap(), first["forwarded_in"].as_str().unwrap());
    assert_eq!(dep["clusters"]["deposit_merges"].as_u64().unwrap() as usize, deposit_truth.len());
    let entity = json(&data, &["entity", "anvil", &hot, "--addresses", "--json"]);
    let members: BTreeSet<String> = entity["addresses"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    let mut want = deposit_truth.clone();
    want.insert(hot.clone());
    assert_eq!(members, want, "the exchange's entity = its hot wallet and deposit addresses");
    assert!(entity["assets"].as_array().unwrap().iter().any(|a| a["asset"] == "ETH"), "{entity}");
    let addr = json(&data, &["address", "anvil", d, "--json"]);
    assert_eq!(addr["cluster"]["id"], entity["cluster_id"]);
    assert!(addr["activity"]["movements"].as_u64().unwrap() >= 2);
    let why = json(&data, &["explain", "anvil", d, &hot, "--json"]);
    assert_eq!(why["same_entity"], true);
    assert_eq!(why["steps"][0]["rule"], "deposit_address");
    assert_eq!(why["steps"][0]["transaction"], forwarded_in);
    let n: u64 =
        ok(&data, &["sql", "SELECT count(*) FROM address_clusters WHERE cluster_size > 1", "--format", "csv"]).lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(n as usize, want.len(), "address_clusters holds the entity");
}

//! `tracehound exposure build` and `tracehound screen` on the demo's simulated chain: the heist's
//! deposits are severe with the attacker named as the source, a deposit from before the heist is
//! clean, unknown subjects are "no data", and every address's exposure is what a backward haircut
//! trace from it attributes to each category.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

mod common;
use common::{json, n, ok, run};

/// direct + indirect of `category` received, from a screening result.
fn received(r: &Value, category: &str) -> u128 {
    r["exposures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["category"] == category && x["flow"] == "received")
        .map(|x| n(&x["direct"]) + n(&x["indirect"]))
        .sum()
}

#[test]
fn screening_the_demo_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    ok(&data, &["demo", "--blocks", "400"]);
    let truth: Value = serde_json::from_str(&std::fs::read_to_string(data.join("demo-chain/ground_truth.json")).unwrap()).unwrap();
    let chain = truth["chain"].as_str().unwrap();
    let heist = &truth["heist"];

    // The index is current after the demo; a new horizon rebuilds it and says why.
    let r = json(&data, &["exposure", "build", "--chain", chain, "--json"]);
    assert_eq!(r["action"], "unchanged", "{r}");
    let r = json(&data, &["exposure", "build", "--chain", chain, "--horizon", "1", "--json"]);
    assert_eq!(r["action"], "rebuilt");
    assert_eq!(r["reason"], "the hop horizon changed");
    let r = json(&data, &["exposure", "build", "--chain", chain, "--json"]);
    assert_eq!(r["action"], "rebuilt");

    // Within a small memory limit the build spills and writes the same table.
    let dump = |data: &Path| {
        ok(data, &["sql", "SELECT address, asset, category, flow, CAST(direct AS VARCHAR) AS d, CAST(indirect AS VARCHAR) AS i, CAST(flow_value AS VARCHAR) AS v FROM exposure ORDER BY address, asset, category, flow", "--format", "csv"])
    };
    ok(&data, &["exposure", "build", "--chain", chain, "--horizon", "3"]);
    let unlimited = dump(&data);
    ok(&data, &["exposure", "build", "--chain", chain, "--horizon", "4"]);
    let r = json(&data, &["--memory-limit", "16MiB", "exposure", "build", "--chain", chain, "--horizon", "3", "--json"]);
    assert_eq!(r["action"], "rebuilt");
    assert!(r["memory"]["spilled_bytes"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(dump(&data), unlimited);
    assert!(unlimited.lines().count() > 1000);
    ok(&data, &["exposure", "build", "--chain", chain]);

    // Every deposit of the heist's proceeds at an exchange is severe, with the attacker as source.
    let deposits = heist["deposits"].as_array().unwrap();
    assert!(!deposits.is_empty());
    let attacker: BTreeSet<String> = truth["wallets"][heist["attacker_wallet"].as_u64().unwrap() as usize]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    for d in deposits.iter().take(3) {
        let subject = format!("{}/{}", d["txid"].as_str().unwrap(), d["address"].as_str().unwrap());
        let r = &json(&data, &["screen", chain, &subject, "--json"])[0];
        assert_eq!(r["status"], "screened");
        assert_eq!(r["kind"], "transfer");
        assert_eq!(r["risk"], "severe", "{r:#}");
        assert_eq!(r["score"], 10.0);
        assert_eq!(n(&r["value"]), d["value_sat"].as_u64().unwrap() as u128);
        // Everything deposited came from the theft (the simulator's ledger says so).
        assert_eq!(received(r, "stolen_funds"), n(&r["value"]), "{r:#}");
        let top = &r["reasons"][0];
        assert_eq!(top["severity"], "severe");
        let sources: Vec<&str> = top["sources"].as_array().unwrap().iter().map(|s| s["address"].as_str().unwrap()).collect();
        assert!(!sources.is_empty() && sources.iter().all(|s| attacker.contains(*s)), "sources {sources:?} are the attacker's");
    }

    // Unknown subjects: no data, never low risk; a chain that is not ingested is refused.
    let unknown = json(&data, &["screen", chain, "bcrt1qunknownunknownunknownunknownunknownxyz", "--json"]);
    assert_eq!(unknown[0]["status"], "no_data");
    assert!(unknown[0]["risk"].is_null());
    let text = ok(&data, &["screen", chain, "bcrt1qunknownunknownunknownunknownunknownxyz"]);
    assert!(text.contains("NO DATA"), "{text}");
    let out = run(&data, &["screen", "ethereum", "0x098b716b8aaf21512996dc57eb0615e2383e2f96"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chain \"ethereum\" is not ingested here"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&data, &["screen", chain, "not an address!"]);
    assert!(!out.status.success());

    // A policy with a mistake is refused with the file and rule named; a policy is applied.
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, "name: x\nrules:\n  - {name: r1, category: stolen, exposure: direct, severity: high}\n").unwrap();
    let out = run(
        &data,
        &[
            "screen",
            chain,
            "--policy",
            bad.to_str().unwrap(),
            &format!("{}/{}", deposits[0]["txid"].as_str().unwrap(), deposits[0]["address"].as_str().unwrap()),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml") && err.contains("rule 1 (\"r1\")") && err.contains("\"stolen\""), "{err}");
    let lenient = tmp.path().join("lenient.yaml");
    std::fs::write(&lenient, "name: lenient\nrules:\n  - {name: only-huge-direct, category: stolen_funds, exposure: direct, min_share: 0.9, severity: low}\n")
        .unwrap();
    let subject = format!("{}/{}", deposits[0]["txid"].as_str().unwrap(), deposits[0]["address"].as_str().unwrap());
    let r = &json(&data, &["screen", chain, &subject, "--policy", lenient.to_str().unwrap(), "--json"])[0];
    assert_eq!(r["risk"], "none", "the deposit's exposure is indirect only: {r:#}");

    // The exposure of addresses equals a backward haircut trace's attribution to the same sources.
    let mut addresses: Vec<String> = attacker.iter().take(4).cloned().collect();
    addresses.extend(deposits.iter().take(3).map(|d| d["address"].as_str().unwrap().to_string()));
    let rows =
        ok(&data, &["sql", "SELECT address FROM exposure WHERE category = 'exchange' AND flow = 'received' ORDER BY address LIMIT 4", "--format", "csv"]);
    addresses.extend(rows.lines().skip(1).map(str::to_string));
    for a in &addresses {
        let s = &json(&data, &["screen", chain, a, "--json"])[0];
        let t = json(
            &data,
            &["trace", chain, "--from", a, "--direction", "backward", "--model", "haircut", "--stop-at", "hacker,exchange", "--max-hops", "100000", "--json"],
        );
        let t = if t.is_array() { t[0].clone() } else { t };
        let by = |cat: &str| -> u128 { t["accounting"]["sinks"].as_array().unwrap().iter().filter(|x| x["category"] == cat).map(|x| n(&x["amount"])).sum() };
        let txs: BTreeSet<&str> = t["edges"].as_array().unwrap().iter().map(|e| e["tx"].as_str().unwrap()).collect();
        let tolerance = txs.len() as u128 + 1;
        for (ours, theirs) in [(received(s, "stolen_funds"), by("hacker")), (received(s, "exchange"), by("exchange"))] {
            assert!(ours.abs_diff(theirs) <= tolerance, "{a}: exposure {ours}, trace {theirs} (±{tolerance})\n{s:#}");
        }
    }

    // The SQL tables join with the clusters and the tags.
    let rows = ok(
        &data,
        &[
            "sql",
            "SELECT count(*) AS n FROM exposure e JOIN address_clusters c ON c.address = e.address AND c.chain = e.chain WHERE e.category = 'stolen_funds' AND e.share > 0",
            "--format",
            "csv",
        ],
    );
    let count: u64 = rows.lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(count > 0, "{rows}");
    let rows = ok(&data, &["sql", "SELECT count(*) FROM cluster_exposure WHERE category = 'stolen_funds' AND flow = 'received'", "--format", "csv"]);
    assert!(rows.lines().nth(1).unwrap().trim().parse::<u64>().unwrap() > 0);

    // An entity with an exchange tag and a sanctioned member is sanctioned, whole: funds it paid
    // out are a direct sanctions exposure (severe), never "exchange" exposure.
    let hot = truth["exchange_hot_wallets"].as_object().unwrap().values().next().unwrap().as_str().unwrap();
    let member = ok(
        &data,
        &["sql", &format!("SELECT address FROM address_clusters WHERE cluster_id = (SELECT cluster_id FROM address_clusters WHERE address = '{hot}') AND address <> '{hot}' ORDER BY address LIMIT 1"), "--format", "csv"],
    );
    let member = member.lines().nth(1).expect("the hot wallet's entity has other addresses").trim().to_string();
    ok(&data, &["labels", "add", chain, &member, "--label", "Sanctioned member", "--category", "sanctioned"]);
    let paid =
        ok(&data, &["sql", &format!("SELECT transaction_hash FROM inputs WHERE addresses[1] = '{hot}' ORDER BY block_number DESC LIMIT 1"), "--format", "csv"]);
    let paid = paid.lines().nth(1).expect("the hot wallet paid something").trim().to_string();
    let r = &json(&data, &["screen", chain, &format!("{paid}:0"), hot, "--json"]);
    let out = &r[0];
    assert_eq!(out["risk"], "severe", "{out:#}");
    assert!(received(out, "sanctioned") > 0 && received(out, "exchange") == 0, "{out:#}");
    assert_eq!(r[1]["risk"], "severe");
    assert!(r[1]["reasons"].as_array().unwrap().iter().any(|x| x["rule"] == "sanctions-list"), "{:#}", r[1]);
}

/// On the anvil scenario (a bridge heist laundered through a mixer, a swap and an exchange), each
/// address's exposure per asset is what a backward haircut trace of it attributes to the thief
/// and to the labelled services.
#[test]
fn anvil_exposure_equals_backward_haircut_traces() {
    let node = tracehound_testing::Anvil::start_for_scenario();
    let tmp = tempfile::tempdir().unwrap();
    let truth = node.run_scenario(&tmp.path().join("truth.json"), &[]);
    let data = tmp.path().join("d");
    ok(&data, &["ingest", "evm", "--rpc", &node.url]);
    let thief = truth["heist"]["seed_addresses"][0].as_str().unwrap().to_ascii_lowercase();
    let mut csv = format!("address,label,category\n{thief},bridge thief,hacker\n");
    for (addr, info) in truth["addresses"].as_object().unwrap() {
        let category = match info["role"].as_str().unwrap() {
            "exchange_hot_wallet" | "exchange_deposit_address" => "exchange",
            "mixer" => "mixing_service",
            _ => continue,
        };
        csv.push_str(&format!("{addr},{},{category}\n", info["name"].as_str().unwrap()));
    }
    let labels = tmp.path().join("labels.csv");
    std::fs::write(&labels, csv).unwrap();
    ok(&data, &["labels", "import", "csv", labels.to_str().unwrap(), "--chain", "anvil", "--source", "scenario"]);
    let r = json(&data, &["exposure", "build", "--chain", "anvil", "--json"]);
    assert!(r["entries"].as_u64().unwrap() > 0, "{r}");
    let mut checked = 0;
    let mut exposed = 0;
    for addr in truth["addresses"].as_object().unwrap().keys() {
        let s = &json(&data, &["screen", "anvil", addr, "--json"])[0];
        assert!(s["exposures"].is_array(), "{addr}: {s:#}");
        let out = run(
            &data,
            &[
                "trace",
                "anvil",
                "--from",
                addr,
                "--direction",
                "backward",
                "--model",
                "haircut",
                "--stop-at",
                "hacker,exchange,mixer",
                "--max-hops",
                "100000",
                "--json",
            ],
        );
        if !out.status.success() {
            continue; // received nothing
        }
        let traces: Value = serde_json::from_slice(&out.stdout).unwrap();
        // One flow prints one trace, several an array of them.
        let traces = if traces.is_array() { traces.as_array().unwrap().clone() } else { vec![traces] };
        for t in &traces {
            let asset = t["asset"].as_str().unwrap();
            let by =
                |cat: &str| -> u128 { t["accounting"]["sinks"].as_array().unwrap().iter().filter(|x| x["category"] == cat).map(|x| n(&x["amount"])).sum() };
            let ours = |cat: &str| -> u128 {
                s["exposures"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|x| x["category"] == cat && x["flow"] == "received" && x["asset"].as_str().unwrap().eq_ignore_ascii_case(asset))
                    .map(|x| n(&x["direct"]) + n(&x["indirect"]))
                    .sum()
            };
            let tolerance = t["edges"].as_array().unwrap().len() as u128 + 1;
            for (mine, theirs, what) in [
                (ours("stolen_funds"), by("hacker"), "stolen_funds"),
                (ours("exchange"), by("exchange"), "exchange"),
                (ours("mixing_service"), by("mixing_service"), "mixing_service"),
            ] {
                assert!(mine.abs_diff(theirs) <= tolerance, "{addr} {asset} {what}: exposure {mine}, trace {theirs} (±{tolerance})\n{s:#}");
                exposed += usize::from(theirs > 0);
            }
            checked += 1;
        }
    }
    assert!(checked >= 5 && exposed >= 3, "{checked} flows checked, {exposed} exposures");
}

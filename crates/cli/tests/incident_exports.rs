//! `incident trace` over explorer exports, for every bundled incident with Ethereum attacker
//! addresses.
//!
//! Real exports cannot be downloaded in a test, so for each such incident this writes what
//! Etherscan's "Download CSV Export" gives for the incident's first Ethereum attacker address and
//! for the next hop (normal transactions and ERC-20 token transfers, in the byte layout of the
//! importer's own Etherscan tests): the attacker address receives a known amount of ETH and of
//! USDT, sends it to an intermediate address, which sends part to a labelled exchange deposit
//! address and the rest to a fresh address that keeps it. The exports of all incidents go into
//! one data directory (distinct transaction hashes), and `incident trace <id> --json` must find,
//! to the wei and to the token base unit, what reached the exchange and what is still held, with
//! nothing lost. Any incident that cannot be traced fails the test, by name.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const USDT: &str = "0xdac17f958d2ee523a2206206994597c13d831ec7";
/// The exchange deposit address every incident's funds partly reach (tagged in the test).
const EXCHANGE: &str = "0x00000000000000000000000000000000000e8c01";
const EXCHANGE_LABEL: &str = "Test Exchange deposit";
const WEI: u128 = 1_000_000_000_000_000_000;

fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracehound")).arg("--data-dir").arg(data).args(args).output().unwrap()
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = run(data, args);
    assert!(out.status.success(), "tracehound {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn n(v: &Value) -> u128 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(x) => x.as_u64().unwrap() as u128,
        _ => panic!("not an amount: {v}"),
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Unix time of an incident date (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`; missing parts are the first).
fn unix_of(date: &str) -> u64 {
    let mut parts = date.split('-').map(|p| p.parse::<i64>().unwrap());
    let y = parts.next().expect("a year");
    let m = parts.next().unwrap_or(1);
    let d = parts.next().unwrap_or(1);
    (days_from_civil(y, m, d) * 86_400) as u64
}

fn datetime(unix: u64) -> String {
    let (y, m, d) = civil_from_days((unix / 86_400) as i64);
    let s = unix % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `wei` as Etherscan prints an ETH value: whole coins, a point, the remaining wei.
fn eth(wei: u128) -> String {
    let frac = wei % WEI;
    if frac == 0 {
        (wei / WEI).to_string()
    } else {
        format!("{}.{}", wei / WEI, format!("{frac:018}").trim_end_matches('0'))
    }
}

/// A USDT amount (6 decimals) as Etherscan prints a token value: thousands separated by commas.
fn usdt(units: u128) -> String {
    let whole = (units / 1_000_000).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}.{:06}", units % 1_000_000)
}

/// One movement of the constructed flow.
struct Move {
    hash: String,
    block: u64,
    time: u64,
    from: String,
    to: String,
    amount: u128,
}

const NORMAL_HEADER: &str = "\u{feff}\"Txhash\",\"Blockno\",\"UnixTimestamp\",\"DateTime (UTC)\",\"From\",\"To\",\"ContractAddress\",\"Value_IN(ETH)\",\"Value_OUT(ETH)\",\"CurrentValue @ $1828.62/Eth\",\"TxnFee(ETH)\",\"TxnFee(USD)\",\"Historical $Price/Eth\",\"Status\",\"ErrCode\",\"Method\"\n";
const TOKEN_HEADER: &str = "\"Txhash\",\"Blockno\",\"UnixTimestamp\",\"DateTime (UTC)\",\"From\",\"To\",\"TokenValue\",\"USDValueDayOfTx\",\"ContractAddress\",\"TokenName\",\"TokenSymbol\"\n";

/// Etherscan's normal-transaction export of `of`: the moves in or out of it.
fn normal_export(of: &str, moves: &[&Move]) -> String {
    let mut text = NORMAL_HEADER.to_string();
    for m in moves.iter().filter(|m| m.from == of || m.to == of) {
        let (vin, vout) = if m.to == of { (eth(m.amount), "0".to_string()) } else { ("0".to_string(), eth(m.amount)) };
        writeln!(
            text,
            "\"{}\",\"{}\",\"{}\",\"{}\",\"{}\",\"{}\",\"\",\"{vin}\",\"{vout}\",\"0\",\"0.0021\",\"2.1\",\"1143.39\",\"\",\"\",\"Transfer\"",
            m.hash,
            m.block,
            m.time,
            datetime(m.time),
            m.from,
            m.to
        )
        .unwrap();
    }
    text
}

/// Etherscan's token-transfer export of `of`.
fn token_export(of: &str, moves: &[&Move]) -> String {
    let mut text = TOKEN_HEADER.to_string();
    for m in moves.iter().filter(|m| m.from == of || m.to == of) {
        let v = usdt(m.amount);
        writeln!(
            text,
            "\"{}\",\"{}\",\"{}\",\"{}\",\"{}\",\"{}\",\"{v}\",\"${v}\",\"{USDT}\",\"Tether USD\",\"USDT\"",
            m.hash,
            m.block,
            m.time,
            datetime(m.time),
            m.from,
            m.to
        )
        .unwrap();
    }
    text
}

/// What the exports of one incident put where.
struct Expected {
    id: String,
    seed: String,
    held: String,
    /// (flow asset, amount in, to the exchange, still held)
    flows: Vec<(&'static str, u128, u128, u128)>,
}

#[test]
fn every_incident_with_ethereum_attacker_addresses_traces_over_etherscan_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let exports = tmp.path().join("exports");
    std::fs::create_dir_all(&exports).unwrap();

    // The registry as the CLI gives it: incidents with Ethereum addresses to trace from.
    let list: Value = serde_json::from_str(&ok(&data, &["incident", "list", "--json"])).unwrap();
    let trace_roles = ["attacker", "attacker_contract", "laundering"];
    let mut incidents: Vec<(String, String, Vec<String>)> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["provenance"] == "bundled")
        .map(|i| {
            let seeds = i["seeds"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["chain"] == "ethereum" && s["kind"] == "address" && trace_roles.contains(&s["role"].as_str().unwrap()))
                .map(|s| s["address_or_tx"].as_str().unwrap().to_string())
                .collect();
            (i["date"].as_str().unwrap().to_string(), i["id"].as_str().unwrap().to_string(), seeds)
        })
        .filter(|(_, _, seeds): &(String, String, Vec<String>)| !seeds.is_empty())
        .collect();
    incidents.sort();
    let addresses: usize = incidents.iter().map(|i| i.2.len()).sum();
    assert!(incidents.len() >= 40, "the registry has {} incidents with Ethereum attacker addresses", incidents.len());

    // Each incident's flows, in date order so that blocks and times rise together. ETH: every
    // Ethereum attacker address of the incident receives its part and sends it to one
    // intermediate address; USDT: the first address only.
    let mut files: (Vec<PathBuf>, Vec<PathBuf>) = (vec![], vec![]);
    let mut expected = vec![];
    let mut next_tx = 0u64;
    for (k, (date, id, seeds)) in incidents.iter().enumerate() {
        let k = k as u64;
        let fresh = |role: u64| format!("0x{:040x}", 0xfeed_0000_0000u64 + k * 16 + role);
        let (victim, hop, held) = (fresh(1), fresh(2), fresh(3));
        // Explorers give addresses in lower case, whatever case the registry publishes.
        let mut attackers: Vec<String> = seeds.iter().map(|s| s.to_ascii_lowercase()).collect();
        attackers.sort();
        attackers.dedup();
        let start = unix_of(date) + (k % 40) * 2000;
        let block0 = 1_000_000 + k * 2000;
        let mut step = 0u64;
        let mut m = |from: &str, to: &str, amount: u128| {
            next_tx += 1;
            step += 1;
            Move {
                hash: format!("0x{:064x}", 0xabc0_0000_0000 | next_tx),
                block: block0 + step,
                time: start + step,
                from: from.to_string(),
                to: to.to_string(),
                amount,
            }
        };
        let mut flows = vec![];
        for (token, asset, parts, to_exchange) in [
            (
                false,
                "ETH",
                attackers.iter().enumerate().map(|(j, a)| (a, (100 + k as u128) * WEI + 7 * (j as u128 + 1))).collect::<Vec<_>>(),
                (60 + k as u128) * WEI / 3 + 11,
            ),
            (true, "USDT", vec![(&attackers[0], 2_500_000_000_000 + k as u128 * 1_000_001)], 1_000_000_000_000 + k as u128 * 333),
        ] {
            let stolen: u128 = parts.iter().map(|p| p.1).sum();
            let mut moves: Vec<Move> = parts.iter().map(|(a, v)| m(&victim, a, *v)).collect();
            moves.extend(parts.iter().map(|(a, v)| m(a, &hop, *v)));
            moves.push(m(&hop, EXCHANGE, to_exchange));
            moves.push(m(&hop, &held, stolen - to_exchange));
            flows.push((asset, stolen, to_exchange, stolen - to_exchange));
            // The export of each attacker address and of the next hop: they share the transfers
            // between them.
            let refs: Vec<&Move> = moves.iter().collect();
            for of in parts.iter().map(|p| p.0).chain([&hop]) {
                let (text, kind, list) =
                    if token { (token_export(of, &refs), "tokentxns", &mut files.1) } else { (normal_export(of, &refs), "normal", &mut files.0) };
                let p = exports.join(format!("export-{kind}-{id}-{of}.csv"));
                std::fs::write(&p, text).unwrap();
                list.push(p);
            }
        }
        expected.push(Expected { id: id.clone(), seed: seeds.join(" "), held, flows });
    }
    let paths = |v: &[PathBuf]| v.iter().map(|p| p.to_str().unwrap().to_string()).collect::<Vec<_>>();
    let normal = paths(&files.0);
    let tokens = paths(&files.1);
    let mut args: Vec<&str> = vec!["import", "transfers", "--chain", "ethereum"];
    args.extend(normal.iter().map(String::as_str));
    ok(&data, &args);
    let mut args: Vec<&str> = vec!["import", "transfers", "--chain", "ethereum", "--decimals", "6"];
    args.extend(tokens.iter().map(String::as_str));
    ok(&data, &args);
    ok(&data, &["labels", "import", "--defaults"]);
    ok(&data, &["labels", "add", "ethereum", EXCHANGE, "--label", EXCHANGE_LABEL, "--category", "exchange"]);

    let mut failures: Vec<String> = vec![];
    for e in &expected {
        let out = run(&data, &["incident", "trace", &e.id, "--json"]);
        if !out.status.success() {
            failures.push(format!("{} (seed {}): {}", e.id, e.seed, String::from_utf8_lossy(&out.stderr).trim()));
            continue;
        }
        let t: Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Err(why) = check(&t, e) {
            failures.push(format!("{} (seed {}): {why}", e.id, e.seed));
        }
    }
    assert!(failures.is_empty(), "{} of {} incidents not traced as constructed:\n  {}", failures.len(), expected.len(), failures.join("\n  "));
    eprintln!("{} incidents traced over Etherscan exports ({addresses} Ethereum attacker addresses)", expected.len());
}

/// The accounting of `t` against the constructed flows of one incident.
fn check(t: &Value, e: &Expected) -> Result<(), String> {
    let flows = t["flows"].as_array().ok_or("no flows")?;
    let by_asset: BTreeMap<String, &Value> = flows.iter().map(|f| (f["trace"]["asset"].as_str().unwrap_or_default().to_string(), f)).collect();
    for (asset, stolen, to_exchange, held) in &e.flows {
        let key = if *asset == "ETH" { "ETH".to_string() } else { USDT.to_string() };
        let f =
            by_asset.get(&key).copied().or_else(|| flows.iter().find(|f| f["flow"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(asset)))).ok_or_else(
                || format!("no {asset} flow among {:?}", flows.iter().map(|f| (f["flow"].clone(), f["trace"]["asset"].clone())).collect::<Vec<_>>()),
            )?;
        if n(&f["seed_amount"]) != *stolen {
            return Err(format!("{asset}: seed amount {} instead of {stolen}", f["seed_amount"]));
        }
        let mut sum = 0u128;
        let (mut exchange, mut kept) = (None, None);
        for d in f["destinations"].as_array().unwrap() {
            let a = n(&d["amount"]);
            sum += a;
            match d["kind"].as_str().unwrap() {
                "exchange" if d["label"].as_str().unwrap().contains(EXCHANGE_LABEL) => exchange = Some(a),
                "still_held" => kept = Some(a),
                other => return Err(format!("{asset}: unexpected destination {other} {}: {a}", d["label"])),
            }
        }
        if exchange != Some(*to_exchange) || kept != Some(*held) {
            return Err(format!("{asset}: exchange {exchange:?} held {kept:?}, constructed {to_exchange} and {held}"));
        }
        if sum != *stolen {
            return Err(format!("{asset}: destinations sum to {sum}, not the seed {stolen}"));
        }
        let held_at: Vec<(String, u128)> = f["trace"]["accounting"]["held"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["address"].as_str().unwrap_or_default().to_ascii_lowercase(), n(&h["tainted"])))
            .collect();
        if held_at != vec![(e.held.clone(), *held)] {
            return Err(format!("{asset}: held at {held_at:?}, constructed {} at {}", held, e.held));
        }
    }
    if flows.len() != e.flows.len() {
        return Err(format!("{} flows, constructed {}", flows.len(), e.flows.len()));
    }
    Ok(())
}

/// Figures sources disagree on travel with the incident: `incident show` and its JSON.
#[test]
fn incident_show_lists_the_figures_sources_disagree_on() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let text = ok(&data, &["incident", "show", "kucoin_2020"]);
    assert!(text.contains("USD (reported) $281,000,000"), "{text}");
    assert!(text.contains("other figure: 275,000,000 USD (tayvano README.md@8caa8c00f1f8a8832730cda48d64def4d199237c, dated 2020-09-26)"), "{text}");
    let v: Value = serde_json::from_str(&ok(&data, &["incident", "show", "kucoin_2020", "--json"])).unwrap();
    assert_eq!(v["alternative_figures"][0]["value"], 275_000_000);
    assert_eq!(v["alternative_figures"][0]["unit"], "USD");
    let none = ok(&data, &["incident", "show", "liquid_2021"]);
    assert!(!none.contains("other figure"), "{none}");
}

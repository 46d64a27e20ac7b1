//! Known answers from the real bundled files (`data/incidents/`, `data/prices/`), read by hand from the CSVs,
//! and the user-file workflows (incident add, price import, HTML report) in temporary data directories.

use std::path::Path;
use tracehound_report::{html_report_at, stats, stats_with, Dim, Error, PriceTable, Provenance, Registry, StatsOptions, TraceSummary};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn bundled_incidents_match_the_csv() {
    let r = Registry::bundled();
    let all = r.incidents();
    assert_eq!(all.len(), 15, "15 rows in seed_incidents.csv");
    let aggregates: Vec<&str> = all.iter().filter(|i| i.aggregate).map(|i| i.id.as_str()).collect();
    assert_eq!(aggregates, ["dprk_2021_aggregate", "nis_2017_2022_aggregate", "nis_2022_aggregate"]);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "sorted by id");
    assert!(all.iter().all(|i| i.is_bundled() && i.actor.as_deref() == Some("lazarusgroup") && i.country.as_deref() == Some("KP")));

    let harmony = r.get("harmony_2022").unwrap();
    assert_eq!(harmony.amount_usd, Some(100_000_000));
    assert_eq!(harmony.date, "2022-06-23");
    assert_eq!(harmony.chains, ["ethereum", "bsc"]);
    assert_eq!(harmony.actor_name, "Lazarus Group / APT38 (TraderTraitor)");
    // attacker_addresses.csv: harmony_2022 has 22 attacker, 14 laundering, 4 victim, 2 victim_signer rows.
    assert_eq!(harmony.seeds.len(), 42);
    assert_eq!(harmony.trace_seeds().count(), 36);

    // ronin_2022: 9 rows, all role attacker (6 from GraphSense, 3 from Etherscan via Forta); no laundering rows.
    let ronin = r.get("ronin_2022").unwrap();
    assert_eq!(ronin.seeds.len(), 9);
    assert_eq!(ronin.trace_seeds().count(), 9);
    assert!(ronin.seeds.iter().any(|s| s.address_or_tx == "0x098B716B8Aaf21512996dC57EB0615e2383E2f96" && s.label == "Ronin bridge exploiter"));
    assert_eq!(ronin.amount_native.as_deref(), Some("173,600 ETH + 25.5M USDC"));
    assert_eq!(ronin.amount_usd, Some(620_000_000));

    // bybit_2025: 8 attacker + 4 attacker_contract + 47 laundering (trace seeds) + 1 victim + 3 victim_signer.
    let bybit = r.get("bybit_2025").unwrap();
    assert_eq!(bybit.seeds.len(), 63);
    assert_eq!(bybit.trace_seeds().count(), 59);
    assert_eq!(r.get("stake_2023").unwrap().seeds.len(), 38);
    let kucoin = r.get("kucoin_2020").unwrap();
    assert_eq!(kucoin.seeds.len(), 10);
    assert!(kucoin.seeds.iter().any(|s| s.chain == "bitcoin_sv"));
    assert!(kucoin.chains.contains(&"bitcoin_sv".to_string()));
    assert_eq!(r.get("atomic_wallet_2023").unwrap().seeds.len(), 2);
    assert_eq!(r.get("bithumb_2018_06").unwrap().chains, ["bitcoin", "ripple"], "'others' is not a chain");
    assert!(r.get("bithumb_2017_02").unwrap().seeds.is_empty());
    // Seed groups that are not incidents are not attached anywhere.
    assert!(r.get("ofac_sdn_dprk").is_none());
    assert_eq!(all.iter().map(|i| i.seeds.len()).sum::<usize>(), 239 - 69 - 6);

    let types: Vec<(&str, &str)> = all.iter().map(|i| (i.id.as_str(), i.victim_type.as_str())).collect();
    assert_eq!(
        types,
        [
            ("atomic_wallet_2023", "wallet"),
            ("bithumb_2017_02", "exchange"),
            ("bithumb_2017_06", "exchange"),
            ("bithumb_2018_06", "exchange"),
            ("bithumb_2019_03", "exchange"),
            ("bybit_2025", "exchange"),
            ("dprk_2021_aggregate", "other"),
            ("harmony_2022", "bridge"),
            ("kucoin_2020", "exchange"),
            ("nis_2017_2022_aggregate", "other"),
            ("nis_2022_aggregate", "other"),
            ("ronin_2022", "bridge"),
            ("stake_2023", "casino"),
            ("yapizon_2017_04", "exchange"),
            ("youbit_2017_12", "exchange"),
        ]
    );
}

#[test]
fn registry_version_is_stable() {
    // Pinned on purpose: it changes only when the bundled files or the Incident fields change,
    // and then every stored report's version must be seen to change with it.
    let v = Registry::bundled().version();
    assert_eq!(v.len(), 16);
    assert_eq!(v, Registry::bundled().version());
    assert_eq!(v, REGISTRY_VERSION);
}

// f9cb832822211be5 since incidents carry their `provenance` (bundled / user / simulated).
const REGISTRY_VERSION: &str = "f9cb832822211be5";

#[test]
fn bundled_prices_known_answers() {
    let p = PriceTable::bundled();
    // CBBTCUSD.csv line 1140: 2022-03-23,42940.28; CBETHUSD.csv line 1140: 2022-03-23,3039.17.
    assert_eq!(p.usd_at("BTC", "2022-03-23"), Some((42940.28, "2022-03-23".to_string())));
    assert_eq!(p.usd_at("ETH", "2022-03-23"), Some((3039.17, "2022-03-23".to_string())));
    // Line 1232: 2022-06-23,21121.55 (Harmony).
    assert_eq!(p.usd_at("BTC", "2022-06-23").unwrap().0, 21121.55);
    // 2020-09-04 is "." in both files: the close of 2020-09-03 is used.
    assert_eq!(p.usd_at("ETH", "2020-09-04").unwrap().1, "2020-09-03");
    assert_eq!(p.usd_at("ETH", "2025-02-21"), None, "Bybit 2025 is after the bundled coverage");
    assert_eq!(p.usd_at("BTC", "2017-12-19"), None, "before the bundled coverage");
}

#[test]
fn stats_known_answers() {
    let r = Registry::bundled();
    let t = stats(&r, &PriceTable::bundled(), &[Dim::Country, Dim::Year]);
    assert_eq!(t.registry_version, r.version());
    let g2022 = t.groups.iter().find(|g| g.key == ["KP", "2022"]).unwrap();
    // Non-aggregate 2022 rows: ronin_2022 620,000,000 + harmony_2022 100,000,000; nis_2022_aggregate (626,000,000) excluded.
    assert_eq!(g2022.usd_reported, 720_000_000);
    assert_eq!(g2022.incidents, ["harmony_2022", "ronin_2022"]);
    assert_eq!(g2022.sources.len(), 2);
    // 2017: bithumb 7,000,000 + 7,000,000 + yapizon 4,800,000 + youbit 35,000,000.
    assert_eq!(t.groups.iter().find(|g| g.key == ["KP", "2017"]).unwrap().usd_reported, 53_800_000);
    assert!(t.groups.iter().all(|g| g.key[1] != "2021"), "2021 has only the Chainalysis aggregate");
    // All 12 incidents: the sum of amount_usd of the non-aggregate rows.
    assert_eq!(t.totals.count, 12);
    assert_eq!(t.totals.usd_reported, 2_746_200_000);
    // No bundled amount_native is a plain "<n> <ASSET>" sum of priced assets (Ronin needs USDC).
    assert_eq!(t.totals.usd_revalued, None);
    assert_eq!(t.totals.not_revalued, 12);
    let published: Vec<(&str, Option<u64>)> = t.published.iter().map(|p| (p.id.as_str(), p.usd)).collect();
    assert_eq!(
        published,
        [("nis_2017_2022_aggregate", Some(1_200_000_000)), ("dprk_2021_aggregate", Some(395_000_000)), ("nis_2022_aggregate", Some(626_000_000))]
    );

    let by_type = stats(&r, &PriceTable::bundled(), &[Dim::VictimType]);
    let bridge = by_type.groups.iter().find(|g| g.key == ["bridge"]).unwrap();
    assert_eq!((bridge.count, bridge.usd_reported), (2, 720_000_000));
    let cat = stats(&r, &PriceTable::bundled(), &[Dim::Category]);
    assert_eq!(cat.groups.iter().map(|g| &g.key[0]).collect::<Vec<_>>(), ["bridge", "casino", "exchange", "wallet"]);
    let actor = stats(&r, &PriceTable::bundled(), &[Dim::Actor]);
    assert_eq!(actor.groups.len(), 1);
    assert_eq!(actor.groups[0].usd_reported, 2_746_200_000);
    let none = stats(&r, &PriceTable::bundled(), &[]);
    assert_eq!(none.groups.len(), 1);
    assert!(none.groups[0].key.is_empty());
}

const CASE: &str = "id: acme_2024\nname: ACME exchange hack\ndate: 2023-11-10\nvictim: ACME\namount_native: \"100 BTC\"\namount_usd: 3600000\nactor: lazarusgroup\nactor_name: Lazarus (suspected)\ncountry: KP\nsources: [ACME statement 2023-11-11]\nseeds:\n  - {chain: bitcoin, address: bc1qexampleexampleexample, role: attacker, label: ACME thief}\n";

#[test]
fn user_incidents_add_load_and_collide() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let case = dir.path().join("case.yaml");
    write(&case, CASE);
    let before = Registry::load(&data).unwrap();
    assert_eq!(before.version(), Registry::bundled().version(), "no incidents folder: just the bundled set");

    let added = Registry::add(&data, &case).unwrap();
    let stored = data.join("incidents/acme_2024.yaml");
    assert_eq!(added.origin, stored.display().to_string());
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), CASE);
    let r = Registry::load(&data).unwrap();
    assert_eq!(r.incidents().len(), 16);
    let acme = r.get("acme_2024").unwrap();
    assert_eq!((acme.victim_type.as_str(), acme.trace_seeds().count()), ("exchange", 1));
    assert_ne!(r.version(), before.version());

    // Same file again: a no-op.
    assert_eq!(Registry::add(&data, &case).unwrap().origin, added.origin);
    assert_eq!(std::fs::read_dir(data.join("incidents")).unwrap().count(), 1);

    // A different file with the same id: refused, nothing changed.
    let other = dir.path().join("other.yaml");
    write(&other, &CASE.replace("3600000", "3700000"));
    let e = Registry::add(&data, &other).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: field \"id\": \"acme_2024\" is already taken", other.display())), "{e}");
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), CASE);

    // A bundled id: refused.
    write(&other, &CASE.replace("acme_2024", "ronin_2022"));
    let e = Registry::add(&data, &other).unwrap_err();
    assert!(matches!(&e, Error::Field { field, .. } if field == "id"), "{e}");
    assert!(e.to_string().contains("bundled"));

    // An invalid file: refused with file and field, nothing written.
    write(&other, &CASE.replace("acme_2024", "acme_2025").replace("2023-11-10", "2022-13-01"));
    let e = Registry::add(&data, &other).unwrap_err().to_string();
    assert_eq!(e, format!("{}: field \"date\": \"2022-13-01\" is not a date (YYYY, YYYY-MM or YYYY-MM-DD)", other.display()));
    assert!(!data.join("incidents/acme_2025.yaml").exists());

    // The version does not depend on where the data directory is.
    let data2 = dir.path().join("elsewhere");
    Registry::add(&data2, &case).unwrap();
    assert_eq!(Registry::load(&data2).unwrap().version(), r.version());

    // A file dropped into the folder by hand with a duplicate id is reported on load.
    write(&data.join("incidents/zz_copy.yaml"), CASE);
    let e = Registry::load(&data).unwrap_err().to_string();
    assert!(e.contains("zz_copy.yaml: field \"id\"") && e.contains("ids must be unique"), "{e}");
}

#[test]
fn price_import_and_revaluation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // A generic file: USDC at 1.0 on the Ronin day makes "173,600 ETH + 25.5M USDC" revaluable.
    let generic = dir.path().join("usdc.csv");
    write(&generic, "date,asset,usd\n2022-03-23,USDC,1.0\n2022-03-24,USDC,1.0\n");
    assert_eq!(PriceTable::import(data, &generic, None).unwrap(), 2);
    // A FRED file overriding one bundled BTC day; "." rows are skipped, not errors.
    let fred = dir.path().join("CBBTCUSD.csv");
    write(&fred, "DATE,CBBTCUSD\n2022-03-23,40000.5\n2022-03-24,.\n");
    assert_eq!(PriceTable::import(data, &fred, None).unwrap(), 1);
    let p = PriceTable::load(data).unwrap();
    assert_eq!(p.usd_at("BTC", "2022-03-23").unwrap().0, 40000.5, "user imports win");
    assert_eq!(p.usd_at("BTC", "2022-03-22").unwrap().0, PriceTable::bundled().usd_at("BTC", "2022-03-22").unwrap().0);
    assert_eq!(p.usd_at("USDC", "2022-03-25").unwrap().1, "2022-03-24");

    let t = stats(&Registry::bundled(), &p, &[Dim::Year]);
    let g = t.groups.iter().find(|g| g.key == ["2022"]).unwrap();
    // 173,600 × 3039.17 (ETH close 2022-03-23) + 25,500,000 × 1.0 = 527,599,912 + 25,500,000.
    assert_eq!(g.usd_revalued, Some(553_099_912));
    assert_eq!(g.not_revalued, 1, "harmony_2022 (\"~85,837 ETH equivalent after swaps …\") is not a plain amount");
    assert_eq!(g.revaluations[0].incident, "ronin_2022");

    // A bad row: file:line, and the stored file is unchanged.
    let before = std::fs::read(data.join("prices/prices.csv")).unwrap();
    let bad = dir.path().join("bad.csv");
    write(&bad, "date,asset,usd\n2022-01-01,ETH,3000\n2022-01-02,ETH,abc\n");
    let e = PriceTable::import(data, &bad, None).unwrap_err().to_string();
    assert_eq!(e, format!("{}:3: price \"abc\" is not a positive number of US dollars", bad.display()));
    assert_eq!(std::fs::read(data.join("prices/prices.csv")).unwrap(), before);

    // A two-column file with an explicit asset.
    let two = dir.path().join("sol.csv");
    write(&two, "date,usd\n2023-01-01,10.5\n");
    assert_eq!(PriceTable::import(data, &two, Some("sol")).unwrap(), 1);
    assert_eq!(PriceTable::load(data).unwrap().usd_at("SOL", "2023-01-01").unwrap().0, 10.5);
    assert!(PriceTable::load(data).unwrap().usd_at("USDC", "2022-03-23").is_some(), "earlier imports are kept");
}

#[test]
fn html_report_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::bundled();
    let table = stats(&registry, &PriceTable::bundled(), &[Dim::Year, Dim::Actor]);
    let trace = TraceSummary {
        incident: "ronin_2022".into(),
        unit: "ETH".into(),
        destinations: vec![
            ("Tornado Cash".into(), "mixer".into(), 175_000.0, None),
            ("Binance deposit".into(), "exchange".into(), 3_000.0, Some(9_000_000.0)),
            ("still held".into(), "still_held".into(), 30_000.0, None),
            ("fees".into(), "fees".into(), 1.2, None),
        ],
    };
    let html = html_report_at("DPRK crypto thefts", &table, &registry, Some(&trace), "2026-01-02");
    let path = dir.path().join("report.html");
    std::fs::write(&path, &html).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();

    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 3);
    for g in &table.groups {
        for id in &g.incidents {
            assert!(html.contains(&format!(">{id}<")), "incident {id} listed");
        }
    }
    for p in &table.published {
        assert!(html.contains(&p.id));
    }
    assert!(html.contains(&registry.version()));
    assert!(html.contains("720,000,000"));
    let lower = html.to_lowercase();
    for forbidden in ["<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href=\"http"] {
        assert!(!lower.contains(forbidden), "no external asset or script: {forbidden}");
    }
    // Without a trace summary there are two charts.
    let plain = html_report_at("x", &table, &registry, None, "2026-01-02");
    assert_eq!(plain.matches("<svg").count(), 2);
}

/// A case as `tracehound demo` writes it: on a simulated chain, marked `simulated: true`.
const SIMULATED_CASE: &str = "id: demo_heist\nname: Simulated hot-wallet heist at Krakenly (demo chain)\ndate: 2022-04-02\nvictim: Krakenly\nvictim_type: exchange\nchains: [bitcoin_regtest]\nassets: [BTC]\namount_native: \"12.5 BTC\"\namount_usd: 570000\nactor_name: simulated attacker\nsimulated: true\nsources: [\"tracehound simulate (seed 7)\"]\nseeds:\n  - {chain: bitcoin_regtest, tx: \"4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b\", role: attacker, label: theft transaction}\n";

#[test]
fn simulated_cases_are_left_out_of_statistics_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(&data.join("incidents/demo_heist.yaml"), SIMULATED_CASE);
    let with = Registry::load(&data).unwrap();
    let without = Registry::bundled();
    let sim = with.get("demo_heist").unwrap();
    assert_eq!(sim.provenance, Provenance::Simulated);
    assert!(sim.is_simulated() && !sim.is_bundled());
    assert!(with.incidents().iter().filter(|i| i.id != "demo_heist").all(|i| i.provenance == Provenance::Bundled));
    let prices = PriceTable::bundled();

    // By default the simulated case changes no figure, under any grouping.
    for dims in [vec![Dim::Year], vec![Dim::Country, Dim::Year], vec![Dim::Actor], vec![Dim::VictimType], vec![Dim::Category], vec![]] {
        let a = stats(&with, &prices, &dims);
        let b = stats(&without, &prices, &dims);
        assert_eq!((&a.groups, &a.totals, &a.published), (&b.groups, &b.totals, &b.published), "by {dims:?}");
        assert_eq!(
            (a.include_simulated, a.simulated.as_slice(), a.simulated_left_out()),
            (false, &["demo_heist".to_string()][..], &["demo_heist".to_string()][..])
        );
        assert!(b.simulated.is_empty() && b.simulated_note().is_none());
    }
    let t = stats(&with, &prices, &[Dim::Country, Dim::Year]);
    assert!(t.groups.iter().all(|g| g.key[0] != "(unknown)" && !g.incidents.contains(&"demo_heist".to_string())), "{:?}", t.groups);
    let text = t.to_text();
    assert!(text.contains("1 simulated case (demo_heist) left out of the figures") && text.contains("--include-simulated"), "{text}");
    assert!(t.to_csv().lines().any(|l| l.starts_with("simulated_left_out,,,,,,,,demo_heist,,")), "{}", t.to_csv());
    let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
    assert_eq!((&json["include_simulated"], &json["simulated"]), (&serde_json::json!(false), &serde_json::json!(["demo_heist"])));
    assert!(!t.to_json().contains("simulated attacker"));

    // Asked for, it is counted like any incident.
    let all = StatsOptions { include_simulated: true };
    let t = stats_with(&with, &prices, &[Dim::Country, Dim::Year], all);
    assert!(t.include_simulated && t.simulated_left_out().is_empty());
    assert_eq!(t.totals.count, 13);
    assert_eq!(t.totals.usd_reported, 2_746_200_000 + 570_000);
    let unknown = t.groups.iter().find(|g| g.key == ["(unknown)", "2022"]).unwrap();
    assert_eq!((unknown.count, unknown.usd_reported, unknown.incidents.as_slice()), (1, 570_000, &["demo_heist".to_string()][..]));
    assert!(t.to_text().contains("The figures include 1 simulated case (demo_heist): not a real incident."));
    assert!(t.to_csv().lines().any(|l| l.starts_with("simulated_included,")));
    let by_year = stats_with(&with, &prices, &[Dim::Year], all);
    assert_eq!(by_year.groups.iter().find(|g| g.key == ["2022"]).unwrap().incidents, ["demo_heist", "harmony_2022", "ronin_2022"]);
    assert_eq!(stats_with(&without, &prices, &[Dim::Year], all).groups, stats(&without, &prices, &[Dim::Year]).groups);

    // The HTML report: the charts and tables are those of the real incidents; the simulated case and
    // its trace have a section of their own that says it is not real and not counted.
    let trace = TraceSummary {
        incident: "demo_heist".into(),
        unit: "BTC".into(),
        destinations: vec![("Krakenly".into(), "exchange".into(), 7.5, Some(342_000.0)), ("still held".into(), "still_held".into(), 5.0, None)],
    };
    let table = stats(&with, &prices, &[Dim::Year, Dim::Actor]);
    let html = html_report_at("r", &table, &with, Some(&trace), "2026-01-02");
    let section = html.find("<h2>Simulated case: Simulated hot-wallet heist at Krakenly (demo chain)</h2>").unwrap_or_else(|| panic!("{html}"));
    let (real, simulated) = html.split_at(section);
    assert!(real.contains("1 simulated case (demo_heist) left out of the figures: not a real incident."), "{real}");
    let figures = &real[real.find("<h2>Stolen USD").unwrap()..];
    assert!(
        !figures.contains("demo_heist") && !figures.contains("simulated attacker") && !figures.contains("Krakenly") && !figures.contains("(unknown)"),
        "{figures}"
    );
    assert!(simulated.contains("it is not a real incident and is not counted in any figure or chart above"), "{simulated}");
    assert!(simulated.contains("Where the funds of the simulated case <code>demo_heist</code> went (BTC)") && simulated.contains("<svg"), "{simulated}");
    assert_eq!(html.matches("<svg").count(), 3);
    let plain = html_report_at("r", &stats(&without, &prices, &[Dim::Year, Dim::Actor]), &without, None, "2026-01-02");
    let charts = |h: &str| h[h.find("<h2>Stolen USD").unwrap()..h.find("<h2>Statistics").unwrap()].to_string();
    assert_eq!(charts(&html), charts(&plain), "the charts leave the simulated case out");
    let counted = html_report_at("r", &stats_with(&with, &prices, &[Dim::Year, Dim::Actor], all), &with, None, "2026-01-02");
    assert!(counted.contains("counted in the figures and charts above only because simulated cases were included on request"));
    assert_ne!(charts(&counted), charts(&plain), "included on request, it is charted");
}

//! CSV label lists: Forta's Etherscan lists with their real headers, the incident attacker list, malformed lines.

mod common;

use std::collections::BTreeSet;

use common::{bundled, fresh_store, test_data};
use tracehound_labels::{category_known, CsvImport, SubjectKind};

fn options(source: &str) -> CsvImport {
    CsvImport { source: source.to_string(), ..CsvImport::default() }
}

#[test]
fn forta_etherscan_malicious_labels_all_7780_rows() {
    let (_dir, mut store) = fresh_store();
    let bytes = bundled("forta/etherscan_malicious_labels.csv");
    let report = store.import_csv_bytes("etherscan_malicious_labels.csv", "etherscan_malicious_labels.csv", bytes, &options("Forta")).expect("import");
    assert_eq!(report.errors, vec![]);
    assert_eq!(report.inserted + report.unchanged, 7780, "every row is read (some rows span several lines)");

    // The expected number of distinct tags, computed independently from the file.
    let mut reader = csv::Reader::from_reader(bytes);
    let distinct: BTreeSet<(String, String, String)> =
        reader.records().map(|r| r.expect("row")).map(|r| (r[0].trim().to_ascii_lowercase(), r[1].trim().to_string(), r[2].trim().to_string())).collect();
    assert_eq!(report.inserted, distinct.len() as u64);

    let counts = store.counts().expect("counts");
    assert_eq!(counts.by_source.get("Forta (etherscan-phish-hack-list)"), counts.by_category.get("phishing"));
    assert_eq!(counts.by_category.get("hacker").copied(), Some(139 + 71), "exploit and heist lists");
    let ronin = store.all_tags().expect("tags").into_iter().find(|t| t.label == "Ronin Bridge Exploiter 2").expect("Ronin Bridge Exploiter 2");
    assert_eq!((ronin.chain.as_str(), ronin.category.as_str()), ("ethereum", "hacker"));

    let again = store.import_csv_bytes("etherscan_malicious_labels.csv", "etherscan_malicious_labels.csv", bytes, &options("Forta")).expect("again");
    assert_eq!((again.inserted, again.unchanged), (0, 7780));
}

#[test]
fn forta_phishing_scams_and_malicious_contracts_with_their_headers() {
    let (_dir, mut store) = fresh_store();
    let phishing_path = test_data("forta_phishing_scams_head500.csv");
    let phishing = store.import_csv(&phishing_path, &options("Forta phishing")).expect("phishing");
    assert_eq!((phishing.inserted + phishing.unchanged, phishing.errors.len()), (500, 0));
    let mut reader = csv::Reader::from_path(&phishing_path).expect("read");
    let distinct: BTreeSet<(String, String)> =
        reader.records().map(|r| r.expect("row")).map(|r| (r[0].trim().to_ascii_lowercase(), r[1].trim().to_string())).collect();
    assert_eq!(phishing.inserted, distinct.len() as u64, "repeated (address, tag) pairs are stored once");
    let tag = &store.tags_for("ethereum", &["0x000000000532b45f47779fce440748893b257865".to_string()]).expect("query")[0];
    assert_eq!((tag.label.as_str(), tag.category.as_str(), tag.source.as_str()), ("Fake_Phishing3901", "phishing", "Forta phishing"));

    let path = test_data("forta_malicious_smart_contracts.csv");
    let contracts = store.import_csv(&path, &options("Forta contracts")).expect("contracts");
    assert_eq!(contracts.errors, vec![]);
    let mut reader = csv::Reader::from_path(&path).expect("read");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 753);
    let distinct: BTreeSet<(String, String, String)> = rows
        .iter()
        .map(|r| {
            let label = if r[1].trim().is_empty() { "Forta contracts".to_string() } else { r[1].trim().to_string() };
            (r[0].trim().to_ascii_lowercase(), label, r[5].trim().to_string())
        })
        .collect();
    assert_eq!(contracts.inserted, distinct.len() as u64);
    assert_eq!(contracts.inserted + contracts.unchanged, 753);
    let exploiter = &store.tags_for("ethereum", &["0x04ae3226c80e8c04d35e6e56089345bdd06da6de".to_string()]).expect("query")[0];
    assert_eq!((exploiter.label.as_str(), exploiter.category.as_str()), ("Multichain Exploiter 10", "hacker"));
    assert_eq!(exploiter.source, "Forta contracts (Luabase ethereum.tags table)");

    // The Optimism file has no chain column: the chain comes from the options.
    let optimism = CsvImport { chain: Some("optimism".into()), category: Some("hacker".into()), ..options("Forta optimism") };
    let report = store.import_csv(&test_data("forta_optimism_malicious_smart_contracts.csv"), &optimism).expect("optimism");
    assert_eq!(report.inserted, 1);
    let tags = store.tags_of_kind(SubjectKind::Address, "optimism", "0x4f3a120e72c76c22ae802d129f599bfdbc31cb81").expect("query");
    assert_eq!(tags[0].label, "Wintermute Exploiter Multisig");
}

#[test]
fn malformed_lines_are_reported_and_the_rest_imports() {
    let (dir, mut store) = fresh_store();
    let path = dir.path().join("my_list.csv");
    let content = "Address,Label,Category,Chain\n\
                   0x1111111111111111111111111111111111111111,Alice,exchange,ethereum\n\
                   0x2222222222222222222222222222222222222222,Bob,exchange\n\
                   1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn,\"Carol, multi\nline\",scam,bitcoin\n\
                   ,Nobody,scam,ethereum\n\
                   0x12345,Short,scam,ethereum\n\
                   0x3333333333333333333333333333333333333333,,,bsc\n";
    std::fs::write(&path, content).expect("write");
    let opts = CsvImport { confidence: Some("forensic".into()), ..options("My list") };
    let report = store.import_csv(&path, &opts).expect("import");
    assert_eq!(report.inserted, 3);
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    let shown = path.display();
    assert_eq!(
        errors,
        vec![
            format!("{shown}:3: expected 4 fields as in the header, found 3"),
            format!("{shown}:6: empty address"),
            format!("{shown}:7: \"0x12345\" is not an EVM address (0x + 40 hex digits) as ethereum needs"),
        ]
    );
    let carol = &store.tags_for("bitcoin", &["1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn".to_string()]).expect("query")[0];
    assert_eq!((carol.label.as_str(), carol.category.as_str(), carol.confidence_level), ("Carol, multi\nline", "scam", Some(50)));
    let unlabeled = &store.tags_for("bsc", &["0x3333333333333333333333333333333333333333".to_string()]).expect("query")[0];
    assert_eq!((unlabeled.label.as_str(), unlabeled.category.as_str()), ("My list", "unknown"));

    let again = store.import_csv(&path, &opts).expect("again");
    assert_eq!((again.inserted, again.unchanged, again.errors.len()), (0, 3, 3));
}

#[test]
fn incident_attacker_list_roles_chains_and_actor() {
    let (_dir, mut store) = fresh_store();
    let opts = CsvImport { actor: Some("lazarusgroup".into()), ..options("incidents") };
    let report =
        store.import_csv_bytes("attacker_addresses.csv", "attacker_addresses.csv", bundled("incidents/attacker_addresses.csv"), &opts).expect("import");
    assert_eq!(report.errors, vec![]);
    // 470 rows since the list holds the addresses of every registry incident (was 239 for the 15 seed incidents).
    assert_eq!(report.inserted + report.unchanged, 470);
    let tags = store.all_tags().expect("tags");
    assert!(category_known("victim"));
    let victims: Vec<_> = tags.iter().filter(|t| t.category == "victim").collect();
    assert_eq!(victims.len(), 12, "7 victim + 5 victim_signer rows");
    assert!(victims.iter().all(|t| t.actor.is_none()), "a victim is not the attacker");
    let bybit = tags.iter().find(|t| t.subject == "0x47666fab8bd0ac7003bce3f5c3585383f09486e2").expect("Bybit exploiter");
    assert_eq!((bybit.category.as_str(), bybit.actor.as_deref()), ("hacker", Some("lazarusgroup")));
    let tornado = tags.iter().find(|t| t.label.contains("TORNADO CASH")).expect("Tornado Cash row");
    assert_eq!((tornado.category.as_str(), tornado.actor.as_deref()), ("sanctioned", None), "an SDN entry that is not Lazarus keeps no actor");
    let chains: BTreeSet<&str> = tags.iter().map(|t| t.chain.as_str()).collect();
    assert_eq!(
        chains,
        BTreeSet::from([
            "algorand",
            "arbitrum",
            "avalanche",
            "base",
            "bitcoin",
            "bitcoin_cash",
            "bitcoin_sv",
            "blast",
            "bsc",
            "dogecoin",
            "ethereum",
            "ethereum_classic",
            "litecoin",
            "optimism",
            "polygon",
            "ripple",
            "solana",
            "stellar",
            "tezos",
            "tron",
            "xdag",
            "zcash",
            "zksync"
        ])
    );
    assert!(tags.iter().all(|t| t.source.starts_with("incidents (")));
}

/// The bundled import gives every registry incident's attacker addresses the actor, except the incidents
/// whose attribution is only "suspected" in the incident file (`Attribution: suspected` in the note).
#[test]
fn bundled_incident_list_actor_follows_attribution() {
    let incidents = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/incidents/dprk_incidents_extended.csv")).expect("incident file");
    let mut reader = csv::Reader::from_reader(incidents.as_bytes());
    let suspected: BTreeSet<String> =
        reader.records().map(|r| r.expect("row")).filter(|r| r[10].starts_with("Attribution: suspected")).map(|r| r[0].to_string()).collect();
    let addresses = bundled("incidents/attacker_addresses.csv");
    let mut reader = csv::Reader::from_reader(addresses);
    let with_addresses: BTreeSet<String> = reader.records().map(|r| r.expect("row")[0].to_string()).collect();
    let expected: BTreeSet<String> = suspected.intersection(&with_addresses).cloned().collect();
    let listed: BTreeSet<String> = tracehound_labels::SUSPECTED_ONLY_INCIDENTS.iter().map(|s| s.to_string()).collect();
    assert_eq!(listed, expected);

    let (_dir, mut store) = fresh_store();
    store.import_defaults().expect("defaults");
    let tags = store.all_tags().expect("tags");
    let incident_tags: Vec<_> = tags.iter().filter(|t| t.source.starts_with("tracehound incident attacker list")).collect();
    // Orbit Bridge (suspected): category hacker, source kept, no actor.
    let orbit: Vec<_> = incident_tags.iter().filter(|t| t.label.to_lowercase().contains("orbit")).collect();
    assert!(!orbit.is_empty());
    assert!(orbit.iter().all(|t| t.category == "hacker" && t.actor.is_none()), "{orbit:?}");
    // An address of a researcher-attributed 2024 incident (WazirX) is a Lazarus hacker address.
    let hackers_with_actor = incident_tags.iter().filter(|t| t.category == "hacker" && t.actor.as_deref() == Some("lazarusgroup")).count();
    assert!(hackers_with_actor > 239, "{hackers_with_actor}");
}

//! OFAC importers against real OFAC data (the 55-row extract of the legacy `sdn.csv`, 0xB10C's per-asset lists)
//! and a fixture in OFAC's advanced XML format.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::{bundled, bundled_file_in, fresh_store, test_data};
use tracehound_labels::{chain_for_currency, Error, LabelStore, SubjectKind, Tag};

/// Addresses of the derived answer file that are cut off at the end of a truncated Remarks field.
const TRUNCATED: [(&str, &str); 6] =
    [("30518", "1Gq"), ("33151", "1B64QRxf"), ("33854", "3"), ("36216", "1B11Ezqg3AXj"), ("37070", "3F6bbvS1krsc1qR8FsbTDfYQyvkMm"), ("39585", "1N6XqS")];

/// OFAC lists this TRON address under XBT (WANG Mingming, ent_num 45404); it is stored on `tron`.
const TRON_LISTED_AS_XBT: &str = "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq";

/// One row of `sdn_digital_currency_addresses.csv` (derived from `sdn.csv`: one row per address mention).
struct Expected {
    ent_num: String,
    name: String,
    programs: Vec<String>,
    currency: String,
    address: String,
}

fn expected_addresses() -> Vec<Expected> {
    let mut reader = csv::Reader::from_path(test_data("sdn_digital_currency_addresses.csv")).expect("answer file");
    reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            Expected {
                ent_num: r[0].to_string(),
                name: r[1].to_string(),
                programs: r[3].split("] [").map(str::to_string).collect(),
                currency: r[4].to_string(),
                address: r[5].to_string(),
            }
        })
        .collect()
}

fn expected_chain(e: &Expected) -> String {
    if e.address == TRON_LISTED_AS_XBT {
        "tron".to_string()
    } else {
        chain_for_currency(&e.currency, &e.address)
    }
}

fn tags_of(store: &LabelStore, chain: &str, address: &str) -> Vec<Tag> {
    store.tags_of_kind(SubjectKind::Address, chain, address).expect("query")
}

#[test]
fn sdn_rows_import_every_address_of_the_derived_answer_file() {
    let (dir, mut store) = fresh_store();
    let path = bundled_file_in(dir.path(), "ofac/sdn_digital_currency_rows.csv");
    let report = store.import_ofac(&path).expect("import");
    assert_eq!(report.format, "ofac_sdn_csv");

    let expected = expected_addresses();
    assert_eq!(expected.len(), 294, "294 address mentions");
    assert_eq!(expected.iter().map(|e| e.ent_num.as_str()).collect::<BTreeSet<_>>().len(), 55, "55 SDN entries carry addresses");

    let mut checked = 0;
    for e in &expected {
        let truncated = TRUNCATED.contains(&(e.ent_num.as_str(), e.address.as_str()));
        let chain = expected_chain(e);
        let tags = tags_of(&store, &chain, &e.address);
        if truncated {
            assert!(tags.is_empty(), "truncated address {} of {} must not be stored", e.address, e.ent_num);
            continue;
        }
        let source = format!("OFAC SDN ({})", e.programs.join(", "));
        let tag = tags.iter().find(|t| t.label == e.name && t.source == source).unwrap_or_else(|| {
            panic!("{} {} {} on {chain} not imported with label {:?} and source {source:?}: {tags:?}", e.ent_num, e.currency, e.address, e.name)
        });
        assert_eq!(tag.category, "sanctioned");
        assert_eq!(tag.abuse.as_deref(), Some("sanction"));
        assert_eq!(tag.confidence.as_deref(), Some("authority_data"));
        assert_eq!(tag.actor.as_deref(), Some(format!("ofac-{}", e.ent_num).as_str()));
        assert_eq!(tag.origin_file.as_deref(), Some("sdn_digital_currency_rows.csv"));
        checked += 1;
    }
    assert_eq!(checked, 288);

    // Six addresses cut off by the Remarks limit, and one mention with no address left at all (GRIMM, 39593).
    let shown: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(report.errors.len(), 7, "{shown:#?}");
    assert!(report.errors.iter().all(|e| e.reason.contains("ends mid-address")), "{shown:#?}");
    assert!(shown.iter().any(|s| s.starts_with(&format!("{}:13: SDN entry 30518", path.display())) && s.ends_with("\"XBT 1Gq\"")), "{shown:#?}");
    // 288 distinct mentions; 4 repeat an (address, chain, name, programs) of the same entry (e.g. ETH and USDT).
    assert_eq!(report.inserted + report.unchanged, 288);
    assert_eq!(report.actors_inserted, 55, "every entry has at least one complete address");

    let tron = tags_of(&store, "tron", TRON_LISTED_AS_XBT);
    assert_eq!(tron.len(), 1);
    assert_eq!(tron[0].label, "WANG, Mingming");
}

#[test]
fn lazarus_group_is_dprk3_and_links_to_the_graphsense_actor() {
    // Without the actor pack: a new actor ofac-27307 with country KP and the a.k.a. names.
    let (_dir, mut store) = fresh_store();
    store.import_ofac_bytes("rows.csv", "sdn_digital_currency_rows.csv", bundled("ofac/sdn_digital_currency_rows.csv")).expect("import");
    let lazarus: Vec<Tag> = store.all_tags().expect("tags").into_iter().filter(|t| t.label == "LAZARUS GROUP").collect();
    assert_eq!(lazarus.len(), 8, "sdn.csv shows 8 ETH addresses of LAZARUS GROUP (Remarks are truncated)");
    assert!(lazarus.iter().all(|t| t.source == "OFAC SDN (DPRK3)" && t.chain == "ethereum" && t.category == "sanctioned"));
    assert!(lazarus.iter().any(|t| t.subject == "0x098b716b8aaf21512996dc57eb0615e2383e2f96"));
    let details = store.actor("ofac-27307").expect("query").expect("actor");
    assert_eq!(details.actor.country.as_deref(), Some("KP"));
    assert!(details.actor.aliases.contains(&"HIDDEN COBRA".to_string()));
    assert!(!details.actor.aliases.iter().any(|a| a.starts_with("WHOIS")), "the cut-off alias is not kept");
    assert_eq!(details.tag_count, 8);

    // With the actor pack imported first: LAZARUS GROUP → lazarusgroup, and no ofac-27307.
    let (_dir, mut store) = fresh_store();
    store.import_tagpack_bytes("actors", "graphsense.actorpack.yaml", bundled("graphsense/actors/graphsense.actorpack.yaml")).expect("actors");
    store.import_ofac_bytes("rows.csv", "sdn_digital_currency_rows.csv", bundled("ofac/sdn_digital_currency_rows.csv")).expect("import");
    let lazarus: Vec<Tag> = store.all_tags().expect("tags").into_iter().filter(|t| t.label == "LAZARUS GROUP").collect();
    assert!(lazarus.iter().all(|t| t.actor.as_deref() == Some("lazarusgroup")), "{lazarus:?}");
    assert!(store.actor("ofac-27307").expect("query").is_none());
    // CHATEX matches the GraphSense actor `chatex` the same way; BLENDER.IO matches `blenderio` (label blender.io).
    assert!(store.all_tags().expect("tags").iter().any(|t| t.label == "BLENDER.IO" && t.actor.as_deref() == Some("blenderio")));
}

#[test]
fn legacy_csv_is_latin1_with_crlf_and_ctrl_z() {
    let (dir, mut store) = fresh_store();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"36,\"AEROCARIBBEAN AIRLINES\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n");
    bytes.extend_from_slice(b"90001,\"M\xdcLLER, Jos\xe9\",\"individual\",\"IRAN] [IRGC\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\"Digital Currency Address - XBT 1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn; alt. Digital Currency Address - ETH 0x098B716B8Aaf21512996dC57EB0615e2383E2f96.\"\r\n");
    bytes.extend_from_slice(b"90002,\"SHORT ROW\",-0- \r\n");
    bytes.extend_from_slice(b"90003,\"BAD ETH\",-0- ,\"SDGT\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\"Digital Currency Address - ETH 0x12345; Digital Currency Address - XBT 1Hn9ErTCPRP6j5UDBeuXPGuq5RtRjFJxJQ.\"\r\n");
    bytes.push(0x1a);
    let path = dir.path().join("sdn.csv");
    std::fs::write(&path, &bytes).expect("write");
    let report = store.import_ofac(&path).expect("import");
    assert_eq!(report.inserted, 3);
    let tags = tags_of(&store, "bitcoin", "1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn");
    assert_eq!(tags[0].label, "M\u{dc}LLER, Jos\u{e9}");
    assert_eq!(tags[0].source, "OFAC SDN (IRAN, IRGC)");
    let actor = store.actor("ofac-90001").expect("query").expect("actor");
    assert_eq!(actor.actor.country.as_deref(), Some("IR"));
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].starts_with(&format!("{}:3: expected the 12 columns", path.display())), "{errors:#?}");
    assert!(errors[1].starts_with(&format!("{}:4: ", path.display())) && errors[1].contains("EVM address"), "{errors:#?}");
}

#[test]
fn advanced_xml_fixture_imports_the_same_tags_as_the_csv_facts() {
    let (_dir_xml, mut from_xml) = fresh_store();
    let report = from_xml.import_ofac(&test_data("sdn_advanced_fixture.xml")).expect("import xml");
    assert_eq!(report.format, "ofac_sdn_advanced_xml");
    assert_eq!((report.inserted, report.unchanged, report.errors.len()), (5, 0, 0), "{report:?}");
    assert_eq!(report.actors_inserted, 2, "AEROCARIBBEAN AIRLINES has no address and gets no actor");

    let (_dir_csv, mut from_csv) = fresh_store();
    from_csv.import_ofac_bytes("rows.csv", "sdn_digital_currency_rows.csv", bundled("ofac/sdn_digital_currency_rows.csv")).expect("import csv");
    let key = |t: &Tag| (t.chain.clone(), t.subject.clone(), t.label.clone(), t.source.clone(), t.category.clone(), t.actor.clone());
    let csv_tags: BTreeSet<_> = from_csv.all_tags().expect("tags").iter().map(key).collect();
    let xml_tags: Vec<Tag> = from_xml.all_tags().expect("tags");
    for tag in &xml_tags {
        assert!(csv_tags.contains(&key(tag)), "XML tag {tag:?} is not one of the CSV's");
    }
    let labels: BTreeSet<&str> = xml_tags.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, BTreeSet::from(["LAZARUS GROUP", "TIAN, Yinyin"]));
    assert!(xml_tags.iter().any(|t| t.label == "TIAN, Yinyin" && t.source == "OFAC SDN (DPRK3, CYBER2)" && t.chain == "bitcoin"));

    let lazarus = from_xml.actor("ofac-27307").expect("query").expect("actor");
    assert_eq!(lazarus.actor.aliases, vec!["HIDDEN COBRA".to_string(), "GUARDIANS OF PEACE".to_string()]);
    assert_eq!(lazarus.actor.country.as_deref(), Some("KP"));

    // Importing again changes nothing.
    let again = from_xml.import_ofac(&test_data("sdn_advanced_fixture.xml")).expect("import xml");
    assert_eq!((again.inserted, again.unchanged, again.actors_inserted), (0, 5, 0));
}

#[test]
fn per_asset_lists_and_idempotency() {
    let (dir, mut store) = fresh_store();
    let xbt = bundled_file_in(dir.path(), "ofac/sanctioned_addresses_XBT.txt");
    let eth = bundled_file_in(dir.path(), "ofac/sanctioned_addresses_ETH.txt");
    let first = store.import_ofac(&xbt).expect("xbt");
    assert_eq!((first.format.as_str(), first.inserted, first.unchanged, first.errors.len()), ("ofac_address_list", 435, 0, 0));
    let second = store.import_ofac(&xbt).expect("xbt again");
    assert_eq!((second.inserted, second.unchanged), (0, 435));
    let eth_report = store.import_ofac(&eth).expect("eth");
    assert_eq!(eth_report.inserted, 152);

    let counts = store.counts().expect("counts");
    assert_eq!(counts.by_source.get("OFAC SDN list (XBT)"), Some(&435));
    assert_eq!(counts.by_source.get("OFAC SDN list (ETH)"), Some(&152));
    assert_eq!(counts.by_chain.get("tron"), Some(&1), "the TRON address listed as XBT");
    let tags = tags_of(&store, "ethereum", "0x098B716B8Aaf21512996dC57EB0615e2383E2f96");
    assert_eq!((tags[0].label.as_str(), tags[0].actor.as_deref(), tags[0].category.as_str()), ("OFAC SDN", None, "sanctioned"));

    // The JSON form of the same list: same tags, so nothing new.
    let addresses: Vec<&str> = std::str::from_utf8(bundled("ofac/sanctioned_addresses_XBT.txt")).expect("utf-8").lines().collect();
    let json = dir.path().join("sanctioned_addresses_XBT.json");
    std::fs::write(&json, serde_json::to_string_pretty(&addresses).expect("json")).expect("write");
    let from_json = store.import_ofac(&json).expect("json");
    assert_eq!((from_json.inserted, from_json.unchanged), (0, 435));
    let (_other, mut fresh) = fresh_store();
    assert_eq!(fresh.import_ofac(&json).expect("json").inserted, 435);
}

#[test]
fn a_file_that_is_not_ofac_data_is_an_error_and_stores_nothing() {
    let (dir, mut store) = fresh_store();
    store.import_ofac_bytes("xbt", "sanctioned_addresses_XBT.txt", bundled("ofac/sanctioned_addresses_XBT.txt")).expect("xbt");
    let before = store.counts().expect("counts");
    let audit_before = store.audit_log_len().expect("audit");

    let not_sdn = dir.path().join("sdn.csv");
    std::fs::write(&not_sdn, "a,b,c\n1,2,3\n").expect("write");
    let err = store.import_ofac(&not_sdn).expect_err("not sdn.csv");
    assert!(matches!(&err, Error::Parse { file, .. } if file.ends_with("sdn.csv")), "{err}");

    let broken_xml = dir.path().join("sdn_advanced.xml");
    std::fs::write(&broken_xml, "<Sanctions>\n<DistinctParties>\n</Sanctions>\n").expect("write");
    let err = store.import_ofac(&broken_xml).expect_err("broken xml");
    assert!(err.to_string().starts_with(&format!("{}:3: invalid XML", broken_xml.display())), "{err}");

    let missing = store.import_ofac(&dir.path().join("nope.csv")).expect_err("missing");
    assert!(matches!(missing, Error::Io { .. }));

    assert_eq!(store.counts().expect("counts"), before);
    assert_eq!(store.audit_log_len().expect("audit"), audit_before);
}

#[test]
fn every_address_of_the_lists_is_found_by_tags_for() {
    let (_dir, mut store) = fresh_store();
    store.import_ofac_bytes("xbt", "sanctioned_addresses_XBT.txt", bundled("ofac/sanctioned_addresses_XBT.txt")).expect("xbt");
    let addresses: Vec<String> = std::str::from_utf8(bundled("ofac/sanctioned_addresses_XBT.txt")).expect("utf-8").lines().map(str::to_string).collect();
    let found = store.tags_for("bitcoin", &addresses).expect("query");
    let by_subject: HashMap<&str, usize> = found.iter().fold(HashMap::new(), |mut m, t| {
        *m.entry(t.subject.as_str()).or_default() += 1;
        m
    });
    assert_eq!(by_subject.len(), 434, "all but the TRON address, which is on tron");
    // Bech32 addresses are found whatever their case.
    let upper: Vec<String> = addresses.iter().filter(|a| a.starts_with("bc1")).map(|a| a.to_ascii_uppercase()).collect();
    assert!(!upper.is_empty());
    assert_eq!(store.tags_for("XBT", &upper).expect("query").len(), upper.len());
}

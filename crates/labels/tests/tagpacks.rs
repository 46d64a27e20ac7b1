//! GraphSense TagPacks and the ActorPack (bundled copies of graphsense-tagpacks files).

mod common;

use std::time::Instant;

use common::{bundled, bundled_file_in, fresh_store};
use tracehound_labels::{Error, SubjectKind};

#[test]
fn header_values_apply_to_tags_unless_the_tag_overrides_them() {
    let (dir, mut store) = fresh_store();
    let pack = "%YAML 1.1\n---\ntitle: Test pack\ncreator: Tester\ndescription: inheritance\nlastmod: 2024-01-01\nsource: https://example.org/header\nlabel: Header label\ncategory: exchange\ncurrency: BTC\nconfidence: service_data\nis_cluster_definer: true\nactor: someexchange\ntags:\n- address: 1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn\n- address: '0x098B716B8Aaf21512996dC57EB0615e2383E2f96'\n  currency: ETH\n  label: Tag label\n  source: https://example.org/tag\n  is_cluster_definer: false\n  abuse: scam\n  context: '{\"note\": \"x\"}'\n";
    let path = dir.path().join("test.yaml");
    std::fs::write(&path, pack).expect("write");
    let report = store.import_tagpack(&path).expect("import");
    assert_eq!((report.format.as_str(), report.inserted, report.errors.len()), ("graphsense_tagpack", 2, 0));

    let btc = store.tags_of_kind(SubjectKind::Address, "bitcoin", "1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn").expect("query");
    let btc = &btc[0];
    assert_eq!((btc.label.as_str(), btc.category.as_str(), btc.source.as_str()), ("Header label", "exchange", "https://example.org/header"));
    assert_eq!((btc.actor.as_deref(), btc.confidence.as_deref(), btc.confidence_level), (Some("someexchange"), Some("service_data"), Some(50)));
    assert!(btc.is_cluster_definer);
    assert_eq!((btc.origin_file.as_deref(), btc.author.as_deref()), (Some("test.yaml"), Some("Tester")));

    let eth = store.tags_for("ethereum", &["0x098b716b8aaf21512996dc57eb0615e2383e2f96".to_string()]).expect("query");
    let eth = &eth[0];
    assert_eq!(
        (eth.label.as_str(), eth.source.as_str(), eth.category.as_str(), eth.abuse.as_deref()),
        ("Tag label", "https://example.org/tag", "scam", Some("scam"))
    );
    assert!(!eth.is_cluster_definer);

    // The real ronin_bridge pack: currency, abuse and confidence in the header, labels per tag.
    let ronin = store.import_tagpack(&bundled_file_in(dir.path(), "graphsense/packs/ronin_bridge.yaml")).expect("ronin");
    assert_eq!(ronin.inserted, 6);
    let exploiter = store.tags_of_kind(SubjectKind::Address, "ethereum", "0x098B716B8Aaf21512996dC57EB0615e2383E2f96").expect("query");
    let ronin_tag = exploiter.iter().find(|t| t.origin_file.as_deref() == Some("ronin_bridge.yaml")).expect("ronin tag");
    assert_eq!((ronin_tag.label.as_str(), ronin_tag.category.as_str(), ronin_tag.abuse.as_deref()), ("Ronin bridge exploiter", "theft", Some("service_hack")));
    assert!(ronin_tag.is_cluster_definer);
}

#[test]
fn lazarus_pack_has_21_sanction_tags_of_lazarusgroup() {
    let (_dir, mut store) = fresh_store();
    let report = store.import_tagpack_bytes("lazarus.yaml", "lazarus.yaml", bundled("graphsense/packs/lazarus.yaml")).expect("import");
    assert_eq!((report.inserted, report.unchanged, report.errors.len()), (21, 0, 0));
    let tags = store.all_tags().expect("tags");
    assert_eq!(tags.iter().filter(|t| t.chain == "bitcoin").count(), 20);
    assert_eq!(tags.iter().filter(|t| t.chain == "ethereum").count(), 1);
    for tag in &tags {
        assert_eq!((tag.label.as_str(), tag.category.as_str(), tag.actor.as_deref()), ("Lazarus group", "sanctioned", Some("lazarusgroup")));
        assert_eq!((tag.confidence.as_deref(), tag.confidence_level, tag.abuse.as_deref()), (Some("authority_data"), Some(60), Some("sanction")));
    }
    let again = store.import_tagpack_bytes("lazarus.yaml", "lazarus.yaml", bundled("graphsense/packs/lazarus.yaml")).expect("import");
    assert_eq!((again.inserted, again.unchanged), (0, 21));
}

#[test]
fn actor_pack_imports_quickly_and_resolves_names() {
    let (dir, mut store) = fresh_store();
    let path = bundled_file_in(dir.path(), "graphsense/actors/graphsense.actorpack.yaml");
    let started = Instant::now();
    let report = store.import_tagpack(&path).expect("import");
    let took = started.elapsed();
    println!("actor pack import: {took:?}");
    assert!(took.as_secs_f64() < 5.0, "actor pack took {took:?}");
    assert_eq!((report.format.as_str(), report.inserted, report.actors_inserted, report.errors.len()), ("graphsense_actorpack", 3813, 3813, 0));
    assert_eq!(store.counts().expect("counts").actors, 3813);

    let lazarus = store.actor("lazarusgroup").expect("query").expect("actor");
    assert_eq!(lazarus.actor.label, "Lazarus Group");
    for category in ["sanction", "service_hack"] {
        assert!(lazarus.actor.categories.contains(&category.to_string()), "{:?}", lazarus.actor.categories);
    }
    assert_eq!(lazarus.actor.uri.as_deref(), Some("https://home.treasury.gov/news/press-releases/sm774"));
    assert_eq!(lazarus.actor.country, None, "the pack gives Lazarus Group no jurisdiction");

    for name in ["lazarus", "LAZARUS GROUP", "Lazarus Group", "LazarusGroup"] {
        assert_eq!(store.actor(name).expect("query").map(|d| d.actor.id).as_deref(), Some("lazarusgroup"), "{name}");
    }
    // By alias: actor `0x` has the aliases 0xapi and 0x_api.
    assert_eq!(store.actor("0x_api").expect("query").map(|d| d.actor.id).as_deref(), Some("0x"));
    // First jurisdiction becomes the country.
    let lbank = store.actor("lbank").expect("query").expect("lbank");
    assert_eq!((lbank.actor.country.as_deref(), lbank.actor.jurisdictions.first().map(String::as_str)), (Some("VG"), Some("VG")));
    assert!(store.actor("no such actor qqq").expect("query").is_none());
    let ambiguous = store.actor("swap").expect_err("many actors start with swap");
    assert!(matches!(&ambiguous, Error::AmbiguousActor { candidates, .. } if candidates.len() > 1), "{ambiguous}");

    let again = store.import_tagpack(&path).expect("import");
    assert_eq!((again.inserted, again.unchanged, again.actors_inserted), (0, 3813, 0));
}

#[test]
fn a_tag_without_address_is_reported_and_the_rest_imports() {
    let (dir, mut store) = fresh_store();
    let pack = "title: t\ncreator: c\nsource: https://example.org\ncurrency: ETH\nlabel: L\ntags:\n- address: '0x1111111111111111111111111111111111111111'\n- label: no address here\n- address: '0x2222'\n- address: '0x3333333333333333333333333333333333333333'\n";
    let path = dir.path().join("bad_rows.yaml");
    std::fs::write(&path, pack).expect("write");
    let report = store.import_tagpack(&path).expect("import");
    assert_eq!(report.inserted, 2);
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0], format!("{}:8: tag #2 has no `address`", path.display()));
    assert!(errors[1].starts_with(&format!("{}:9: ", path.display())) && errors[1].contains("EVM address"), "{errors:#?}");
}

#[test]
fn invalid_yaml_leaves_the_store_unchanged() {
    let (dir, mut store) = fresh_store();
    store.import_tagpack_bytes("lazarus.yaml", "lazarus.yaml", bundled("graphsense/packs/lazarus.yaml")).expect("import");
    let before = store.counts().expect("counts");
    let audit_before = store.audit_log_len().expect("audit");

    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, "title: broken\ntags:\n- address: 1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn\n  currency: [BTC\n- address: x\n").expect("write");
    let err = store.import_tagpack(&path).expect_err("invalid YAML");
    match &err {
        Error::Parse { file, line: Some(line), .. } => {
            assert_eq!(file, &path.display().to_string());
            assert!(*line >= 4, "{err}");
        }
        other => panic!("unexpected error {other}"),
    }
    let neither = dir.path().join("neither.yaml");
    std::fs::write(&neither, "title: no tags\n").expect("write");
    assert!(matches!(store.import_tagpack(&neither), Err(Error::Parse { .. })));

    assert_eq!(store.counts().expect("counts"), before);
    assert_eq!(store.audit_log_len().expect("audit"), audit_before);
}

//! The store itself: opening and migrating, the bundled defaults, hand-added tags and actors, lookups and search.

mod common;

use std::time::Instant;

use common::fresh_store;
use tracehound_labels::{Actor, Error, LabelStore, NewTag, SubjectKind, BUNDLED_FILES};

fn lazarus_eth_tag() -> NewTag {
    NewTag {
        chain: "ETH".into(),
        subject: " 0x098B716B8Aaf21512996dC57EB0615e2383E2f96 ".into(),
        label: "Ronin exploiter (my case)".into(),
        category: "service_hack".into(),
        actor: Some("lazarusgroup".into()),
        source: "case 2024-17".into(),
        confidence: Some("forensic_investigation".into()),
        author: Some("analyst".into()),
        ..NewTag::default()
    }
}

#[test]
fn bundled_defaults_import_once_and_link_lazarus() {
    let (_dir, mut store) = fresh_store();
    let started = Instant::now();
    let first = store.import_defaults().expect("defaults");
    println!("import_defaults: {:?}", started.elapsed());
    assert_eq!(first.len(), BUNDLED_FILES.len());
    assert!(first.iter().all(|r| r.file.starts_with("data/labels/")));
    let counts = store.counts().expect("counts");
    println!("defaults: {} tags, {} actors", counts.tags, counts.actors);

    let started = Instant::now();
    let second = store.import_defaults().expect("defaults again");
    println!("import_defaults again: {:?}", started.elapsed());
    assert_eq!(second.iter().map(|r| r.inserted + r.actors_inserted).sum::<u64>(), 0);
    assert_eq!(store.counts().expect("counts"), counts);

    // OFAC's LAZARUS GROUP row links to the GraphSense actor imported before it.
    let ofac_lazarus: Vec<_> = store.all_tags().expect("tags").into_iter().filter(|t| t.label == "LAZARUS GROUP").collect();
    assert_eq!(ofac_lazarus.len(), 8);
    assert!(ofac_lazarus.iter().all(|t| t.actor.as_deref() == Some("lazarusgroup") && t.source == "OFAC SDN (DPRK3)"));
    assert!(store.actor("ofac-27307").expect("query").is_none());

    let details = store.actor("lazarus").expect("query").expect("lazarusgroup");
    assert_eq!(details.actor.id, "lazarusgroup");
    // The actor pack gives Lazarus no jurisdiction; OFAC's DPRK3 program supplies North Korea.
    assert_eq!(details.actor.country.as_deref(), Some("KP"));
    assert!(details.tag_count >= 8 + 21 + 6);
    assert_eq!(details.tag_count, details.tags_by_chain.values().sum::<u64>());
    assert_eq!(details.tag_count, details.tags_by_category.values().sum::<u64>());
    assert_eq!(details.sample_tags.len(), 20);

    assert_eq!(counts.actors, 3813 + 50, "actor pack plus OFAC entries without a GraphSense actor");
    assert_eq!(counts.by_source.get("OFAC SDN list (XBT)"), Some(&435));
    assert_eq!(counts.by_source.get("OFAC SDN list (ETH)"), Some(&152));
    assert_eq!(counts.by_source.get("OFAC SDN (DPRK3)"), Some(&21));
    assert!(counts.by_source.get("Etherscan labels via Forta (etherscan-phish-hack-list)").is_some_and(|&n| n > 7000));
    assert!(counts.by_source.keys().any(|s| s.starts_with("tracehound incident attacker list (")));
    assert_eq!(counts.tags, store.all_tags().expect("tags").len() as u64);
    // An address that is both a Ronin exploiter (GraphSense, Forta, incident list) and OFAC-listed.
    let hits = store.tags_for("ethereum", &["0x098b716b8aaf21512996dc57eb0615e2383e2f96".to_string()]).expect("query");
    let sources: Vec<&str> = hits.iter().map(|t| t.source.as_str()).collect();
    assert!(sources.contains(&"OFAC SDN (DPRK3)") && sources.contains(&"OFAC SDN list (ETH)"), "{sources:?}");
    assert!(hits.windows(2).all(|w| w[0].confidence_level >= w[1].confidence_level), "most confident first");
}

#[test]
fn add_tag_normalizes_deduplicates_and_audits() {
    let (_dir, mut store) = fresh_store();
    let tag = lazarus_eth_tag();
    assert!(store.add_tag(&tag).expect("add"));
    assert!(!store.add_tag(&tag).expect("add again"), "same subject, label and source");
    assert_eq!(store.audit_log_len().expect("audit"), 2, "every add_tag writes an audit row");

    let found = store.tags_for("ethereum", &["0x098B716B8AAF21512996DC57EB0615E2383E2F96".to_string()]).expect("query");
    assert_eq!(found.len(), 1);
    let stored = &found[0];
    assert_eq!((stored.chain.as_str(), stored.subject.as_str()), ("ethereum", "0x098b716b8aaf21512996dc57eb0615e2383e2f96"));
    assert_eq!((stored.category.as_str(), stored.confidence_level, stored.author.as_deref()), ("theft", Some(70), Some("analyst")));
    assert_eq!(stored.origin_file, None);

    let bad = NewTag { subject: "0x098B716B8Aaf21512996dC57EB0615e2383E2f9".into(), ..lazarus_eth_tag() };
    assert!(matches!(store.add_tag(&bad), Err(Error::InvalidTag(_))));
    let no_source = NewTag { source: " ".into(), ..lazarus_eth_tag() };
    assert!(matches!(store.add_tag(&no_source), Err(Error::InvalidTag(_))));

    let cluster = NewTag { subject_kind: SubjectKind::Cluster, chain: "bitcoin".into(), subject: "c-42".into(), ..lazarus_eth_tag() };
    assert!(store.add_tag(&cluster).expect("cluster tag"));
    let tx = NewTag {
        subject_kind: SubjectKind::Transaction,
        chain: "bitcoin".into(),
        subject: "764B60C3D9A2C3C5BB6FE7141D9CA6E6778122DF75F19366A2C5CB948D1D7D84".into(),
        ..lazarus_eth_tag()
    };
    assert!(store.add_tag(&tx).expect("tx tag"));
    assert_eq!(store.tags_of_kind(SubjectKind::Cluster, "bitcoin", "c-42").expect("query").len(), 1);
    let by_tx = store.tags_of_kind(SubjectKind::Transaction, "bitcoin", "764b60c3d9a2c3c5bb6fe7141d9ca6e6778122df75f19366a2c5cb948d1d7d84").expect("query");
    assert_eq!(by_tx.len(), 1);
    assert!(store.tags_for("bitcoin", &["c-42".to_string()]).expect("query").is_empty(), "tags_for only returns address tags");
    let json = serde_json::to_value(&by_tx[0]).expect("serialize");
    assert_eq!(json["subject_kind"], "transaction");
}

#[test]
fn tags_for_many_addresses_uses_chunks() {
    let (_dir, mut store) = fresh_store();
    let mut wanted = Vec::new();
    for i in 0..1200u32 {
        let address = format!("0x{i:040x}");
        if i % 100 == 7 {
            store
                .add_tag(&NewTag { chain: "ethereum".into(), subject: address.clone(), label: format!("t{i}"), source: "s".into(), ..NewTag::default() })
                .expect("add");
        }
        wanted.push(address.to_ascii_uppercase().replacen("0X", "0x", 1));
    }
    let found = store.tags_for("ethereum", &wanted).expect("query");
    assert_eq!(found.len(), 12);
    assert!(found.windows(2).all(|w| w[0].subject <= w[1].subject));
}

#[test]
fn search_finds_actors_first_then_tags() {
    let (_dir, mut store) = fresh_store();
    store
        .upsert_actor(&Actor { id: "lazarusgroup".into(), label: "Lazarus Group".into(), aliases: vec!["Hidden Cobra".into()], ..Actor::default() })
        .expect("actor");
    store.add_tag(&lazarus_eth_tag()).expect("tag");
    let results = store.search("LAZARUS", 10).expect("search");
    assert_eq!(results.actors.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), vec!["lazarusgroup"]);
    assert_eq!(results.tags.len(), 1, "matched by actor");
    assert_eq!(store.search("cobra", 10).expect("search").actors.len(), 1, "matched by alias");
    assert_eq!(store.search("098b716b", 10).expect("search").tags.len(), 1, "matched by subject");
    assert_eq!(store.search("ronin EXPLOITER", 10).expect("search").tags.len(), 1, "matched by label");
    assert_eq!(store.search("   ", 10).expect("search"), Default::default());
    let json = serde_json::to_value(store.search("lazarus", 1).expect("search")).expect("serialize");
    assert_eq!(json["actors"][0]["id"], "lazarusgroup");
}

#[test]
fn upsert_actor_inserts_then_updates() {
    let (_dir, mut store) = fresh_store();
    let mut actor = Actor { id: "acme".into(), label: "ACME".into(), jurisdictions: vec!["kp".into()], ..Actor::default() };
    assert!(store.upsert_actor(&actor).expect("insert"));
    assert_eq!(store.actor("acme").expect("query").expect("acme").actor.country.as_deref(), Some("KP"));
    actor.label = "ACME Corp".into();
    actor.country = Some("RU".into());
    assert!(!store.upsert_actor(&actor).expect("update"));
    let details = store.actor("ACME CORP").expect("query").expect("acme");
    assert_eq!((details.actor.label.as_str(), details.actor.country.as_deref()), ("ACME Corp", Some("RU")));
    assert_eq!(details.tag_count, 0);
    assert!(matches!(store.upsert_actor(&Actor::default()), Err(Error::InvalidActor(_))));
}

#[test]
fn open_creates_wal_database_and_reopens() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("labels.sqlite");
    {
        let mut store = LabelStore::open(&path).expect("open");
        store.add_tag(&lazarus_eth_tag()).expect("add");
        assert_eq!(store.path(), path.display().to_string());
    }
    let store = LabelStore::open(&path).expect("reopen");
    assert_eq!(store.counts().expect("counts").tags, 1);
    drop(store);

    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
    assert_eq!(mode, "wal");
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
    assert_eq!(version, 2);
    let categories: i64 =
        conn.query_row("SELECT count(*) FROM categories WHERE id IN ('sanctioned', 'theft', 'service_hack', 'victim')", [], |r| r.get(0)).expect("n");
    assert_eq!(categories, 4);
    conn.pragma_update(None, "user_version", 99).expect("bump");
    drop(conn);
    assert!(matches!(LabelStore::open(&path), Err(Error::SchemaTooNew { found: 99, .. })));

    let missing = LabelStore::open(&dir.path().join("no/such/dir/labels.sqlite")).expect_err("missing parent");
    assert!(missing.to_string().contains("no/such/dir"), "{missing}");
}

#[test]
fn api_keys_are_stored_by_hash_listed_revoked_and_audited() {
    let (_dir, mut store) = fresh_store();
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let key = store.create_api_key(" alice ", "analyst", hash, "cli (root)").expect("create");
    assert_eq!((key.name.as_str(), key.role.as_str(), key.revoked_at.as_deref()), ("alice", "analyst", None));
    assert_eq!(store.active_api_key(&hash.to_uppercase()).expect("lookup"), Some(key.clone()));
    assert!(store.create_api_key("bob", "analyst", hash, "cli (root)").is_err(), "one key, one row");
    assert!(matches!(store.create_api_key("carol", "owner", &"0".repeat(64), "cli"), Err(Error::InvalidApiKey(_))));
    assert!(matches!(store.create_api_key("dave", "viewer", "th_not_a_hash", "cli"), Err(Error::InvalidApiKey(_))));
    assert!(store.revoke_api_key(key.id, "cli (root)").expect("revoke"));
    assert!(!store.revoke_api_key(key.id, "cli (root)").expect("revoke again"), "revoked once");
    assert_eq!(store.active_api_key(hash).expect("lookup"), None);
    let listed = store.api_keys().expect("list");
    assert!(listed.len() == 1 && listed[0].revoked_at.is_some(), "{listed:?}");
    let audit = store.audit_entries(0, 100).expect("audit");
    let actions: Vec<(&str, Option<&str>)> = audit.iter().map(|e| (e.action.as_str(), e.author.as_deref())).collect();
    assert_eq!(actions, [("create_api_key", Some("cli (root)")), ("revoke_api_key", Some("cli (root)"))]);
    assert_eq!(audit[0].detail["name"], "alice");
    assert_eq!(store.audit_entries(audit[0].id, 100).expect("page").len(), 1, "pages continue after an id");
}

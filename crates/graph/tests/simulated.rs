//! The graph index and clustering on simulated chains, checked against the tables and against
//! the simulator's ground truth (which wallet owns which address, which transactions are CoinJoins).

use std::collections::HashSet;
use std::path::Path;
use tracehound_graph::cluster::{self, ChangeRule, ClusterConfig, Clusters};
use tracehound_graph::index::{self, GraphIndex, NONE, NO_ADDRESS};
use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
use tracehound_simulate::{simulate, GroundTruth, SimConfig};
use tracehound_tables::Store;
use tracehound_testing::table_rows;

fn ingest(sim: &Path, data: &Path, to: Option<u64>) {
    let mut store = Store::open_for_write(data).unwrap();
    let mut opts = BlkOptions::new(sim);
    opts.chunk_blocks = 60;
    opts.to = to;
    ingest_blk_files(&mut store, &opts, &|_| {}).unwrap();
}

fn index(data: &Path) -> (index::UpdateReport, GraphIndex) {
    let store = Store::open(data).unwrap();
    let r = index::update(&store, "bitcoin_regtest", &mut |_| {}).unwrap();
    let idx = GraphIndex::open_current(&store, "bitcoin_regtest").unwrap();
    (r, idx)
}

fn sim(dir: &Path, blocks: u64, seed: u64) -> GroundTruth {
    simulate(&SimConfig { blocks, txs_per_block: 40, seed, ..Default::default() }, &dir.join("sim")).unwrap()
}

fn wallet_of(idx: &GraphIndex, truth: &GroundTruth) -> Vec<Option<u32>> {
    let mut w = vec![None; idx.address_count()];
    for wallet in &truth.wallets {
        for a in &wallet.addresses {
            if let Some(id) = idx.address_id(a) {
                w[id as usize] = Some(wallet.id);
            }
        }
    }
    w
}

#[test]
fn index_matches_the_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let truth = sim(tmp.path(), 300, 11);
    let data = tmp.path().join("data");
    ingest(&tmp.path().join("sim/blocks"), &data, None);
    let (r, idx) = index(&data);
    assert_eq!(r.action, "rebuilt");
    let count = |sql: &str| table_rows(&data, sql)[0]["n"].as_u64().unwrap();
    assert_eq!(idx.tx_count() as u64, count("SELECT count(*) AS n FROM transactions"));
    assert_eq!(idx.tx_count() as u64, truth.transactions);
    assert_eq!(idx.meta().inputs, count("SELECT count(*) AS n FROM inputs"));
    assert_eq!(idx.meta().outputs, count("SELECT count(*) AS n FROM outputs"));
    assert_eq!(idx.address_count() as u64, count("SELECT count(DISTINCT addresses[1]) AS n FROM outputs WHERE array_length(addresses) = 1"));
    assert_eq!(idx.meta().unresolved_inputs, 0);
    // Every non-coinbase input spends exactly one output, and the links agree both ways.
    let resolved = idx.in_prevout().iter().filter(|&&p| p != NONE).count() as u64;
    assert_eq!(resolved, count("SELECT count(*) AS n FROM inputs WHERE spent_transaction_hash IS NOT NULL"));
    for (i, &p) in idx.in_prevout().iter().enumerate() {
        if p != NONE {
            assert_eq!(idx.out_spender()[p as usize], i as u64);
        }
    }
    let spent = idx.out_spender().iter().filter(|&&s| s != NONE).count() as u64;
    assert_eq!(spent, resolved);
    // Values and balances per address agree with SQL over the tables.
    let value: u64 = idx.out_value().iter().sum();
    assert_eq!(value, count("SELECT sum(value) AS n FROM outputs"));
    let theft = truth.heist.as_ref().unwrap();
    let t = idx.tx_id(&theft.txid).expect("theft indexed");
    assert_eq!(idx.tx_hash(t), theft.txid);
    assert_eq!(idx.tx_height()[t as usize] as u64, theft.height);
    let outs = idx.tx_out_start()[t as usize]..idx.tx_out_start()[t as usize + 1];
    assert_eq!(outs.clone().map(|o| idx.out_value()[o as usize]).sum::<u64>(), theft.stolen_sat);
    let hot = truth.exchange_hot_wallets.values().next().unwrap();
    let a = idx.address_id(hot).expect("hot wallet indexed");
    assert_eq!(idx.address(a), hot);
    let sql_balance = count(&format!(
        "SELECT coalesce(sum(o.value), 0) AS n FROM outputs o LEFT JOIN inputs i ON i.spent_transaction_hash = o.transaction_hash AND i.spent_output_index = o.index WHERE o.addresses[1] = '{hot}' AND i.transaction_hash IS NULL"
    ));
    let idx_balance: u64 = idx.outputs_of(a).iter().filter(|&&o| idx.out_spender()[o as usize] == NONE).map(|&o| idx.out_value()[o as usize]).sum();
    assert_eq!(idx_balance, sql_balance);
    assert_eq!(idx.outputs_of(a).len() as u64, count(&format!("SELECT count(*) AS n FROM outputs WHERE addresses[1] = '{hot}'")));
    assert!(idx.outputs_of(a).windows(2).all(|w| w[0] < w[1]), "outputs of an address are in time order");
    assert!(idx.address_id("bcrt1qnotanaddressatall").is_none());
    // Every address and transaction is found by its string, through the sorted ids alone.
    for a in 0..idx.address_count() as u32 {
        assert_eq!(idx.address_id(idx.address(a)), Some(a));
    }
    for t in 0..idx.tx_count() as u32 {
        assert_eq!(idx.tx_id(&idx.tx_hash(t)), Some(t));
    }
    assert!(idx.tx_id(&"ab".repeat(32)).is_none());
    assert!(idx.out_addr().iter().all(|&x| x == NO_ADDRESS || (x as usize) < idx.address_count()));
}

#[test]
fn extending_equals_rebuilding_and_damage_or_reorg_rebuilds() {
    let tmp = tempfile::tempdir().unwrap();
    let truth = sim(tmp.path(), 320, 12);
    let blocks = tmp.path().join("sim/blocks");
    let (inc, full) = (tmp.path().join("inc"), tmp.path().join("full"));
    ingest(&blocks, &inc, Some(170));
    let (r, first) = index(&inc);
    assert_eq!(r.action, "rebuilt");
    let multi = ClusterConfig::default();
    let c1 = cluster::cluster(&inc, &first, &multi, &mut |_, _| {}).unwrap();
    assert_eq!(c1.mode, "full");
    drop(first);
    ingest(&blocks, &inc, None);
    let (r, extended) = index(&inc);
    assert_eq!((r.action, r.meta.tip_height()), ("extended", Some(truth.tip_height)));
    let c2 = cluster::cluster(&inc, &extended, &multi, &mut |_, _| {}).unwrap();
    assert_eq!(c2.mode, "incremental");
    assert!(c2.transactions_processed < extended.tx_count() as u64);

    ingest(&blocks, &full, None);
    let (_, rebuilt) = index(&full);
    cluster::cluster(&full, &rebuilt, &multi, &mut |_, _| {}).unwrap();
    assert_eq!(extended.txid(), rebuilt.txid());
    assert_eq!(extended.tx_in_start(), rebuilt.tx_in_start());
    assert_eq!(extended.out_value(), rebuilt.out_value());
    assert_eq!(extended.out_addr(), rebuilt.out_addr(), "address ids are stable when blocks are appended");
    assert_eq!(extended.out_spender(), rebuilt.out_spender());
    assert_eq!(extended.in_prevout(), rebuilt.in_prevout());
    assert_eq!(extended.addr_outs(), rebuilt.addr_outs());
    let (ci, cf) = (Clusters::open_current(&inc, &extended).unwrap(), Clusters::open_current(&full, &rebuilt).unwrap());
    assert_eq!(ci.cluster_ids(), cf.cluster_ids(), "incremental clustering gives the ids of a full run");
    assert_eq!(ci.merges().len(), cf.merges().len());
    drop((extended, ci));

    // A flipped byte is caught by the checksum: the index is rebuilt, not used.
    let path = index::index_path(&inc, "bitcoin_regtest");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let err = GraphIndex::open(&path).err().expect("damage detected").to_string();
    assert!(err.contains("checksum") && err.contains("graph.thg"), "{err}");
    let (r, again) = index(&inc);
    assert_eq!(r.action, "rebuilt");
    assert!(r.reason.unwrap().contains("checksum"));
    assert_eq!(again.out_addr(), rebuilt.out_addr());
    drop(again);

    // A file that passes the checksum but whose inputs name the wrong transaction is refused:
    // tracing reads `in_tx` / `out_tx` without a search, so they must agree with the ranges.
    for section in ["in_tx", "out_tx"] {
        let good = std::fs::read(&path).unwrap();
        let mut bytes = good.clone();
        let off = section_offset(&bytes, section);
        let first = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap());
        assert_eq!(first, 0, "the first input and output belong to transaction 0");
        bytes[off..off + 4].copy_from_slice(&1u32.to_le_bytes());
        let crc = tracehound_graph::file::file_checksum(&bytes);
        bytes[16..20].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let err = GraphIndex::open(&path).err().unwrap_or_else(|| panic!("{section} inconsistent with the ranges, yet opened")).to_string();
        assert!(err.contains("graph.thg") && err.contains("names another transaction"), "{err}");
        std::fs::write(&path, &good).unwrap();
        GraphIndex::open(&path).unwrap();
    }

    // A rollback (reorg) below the indexed tip: the index is stale until rebuilt.
    let mut store = Store::open_for_write(&inc).unwrap();
    store.rollback("bitcoin_regtest", Some(200)).unwrap();
    drop(store);
    let store = Store::open(&inc).unwrap();
    let stale = GraphIndex::open_current(&store, "bitcoin_regtest").err().expect("stale index refused").to_string();
    assert!(stale.contains("tracehound index"), "{stale}");
    let (r, after) = index(&inc);
    assert_eq!((r.action, r.meta.tip_height()), ("rebuilt", Some(store.chain("bitcoin_regtest").unwrap().tip().unwrap().0)));
    assert!(r.reason.unwrap().contains("reorg"));
    assert!(after.tx_count() < rebuilt.tx_count());
    let stale = Clusters::open_current(&inc, &after).err().expect("stale clusters refused").to_string();
    assert!(stale.contains("tracehound cluster"), "{stale}");
}

/// Byte offset of section `name` in a sectioned file: its header holds, from byte 32, entries of a
/// 24-byte name, an 8-byte offset and an 8-byte length.
fn section_offset(bytes: &[u8], name: &str) -> usize {
    let count = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| 32 + i * 40)
        .find(|&e| bytes[e..e + 24].split(|&b| b == 0).next() == Some(name.as_bytes()))
        .map(|e| u64::from_le_bytes(bytes[e + 24..e + 32].try_into().unwrap()) as usize)
        .unwrap_or_else(|| panic!("no section {name}"))
}

#[test]
fn clusters_against_ground_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let truth = sim(tmp.path(), 500, 13);
    let data = tmp.path().join("data");
    ingest(&tmp.path().join("sim/blocks"), &data, None);
    let (_, idx) = index(&data);
    let wallets = wallet_of(&idx, &truth);
    // Every address belongs to a simulated wallet, except data carriers (witness commitments)
    // and the genesis block's output.
    for (a, w) in wallets.iter().enumerate() {
        let first_height = idx.tx_height()[idx.tx_of_output(idx.outputs_of(a as u32)[0]) as usize];
        assert!(w.is_some() || idx.address(a as u32).starts_with("nonstandard") || first_height == 0, "{}", idx.address(a as u32));
    }

    let r = cluster::cluster(&data, &idx, &ClusterConfig::default(), &mut |_, _| {}).unwrap();
    let c = Clusters::open_current(&data, &idx).unwrap();
    // Every CoinJoin of the simulator is recognised, and none of them merges anything.
    let found: HashSet<String> = c.coinjoins().iter().map(|(t, _)| idx.tx_hash(*t)).collect();
    for cj in &truth.coinjoins {
        let t = idx.tx_id(cj).unwrap() as usize;
        let (i0, i1, o0, o1) = (idx.tx_in_start()[t], idx.tx_in_start()[t + 1], idx.tx_out_start()[t] as usize, idx.tx_out_start()[t + 1] as usize);
        assert!(found.contains(cj), "CoinJoin {cj} not recognised: {} inputs, outputs {:?}", i1 - i0, &idx.out_value()[o0..o1]);
    }
    assert!(!truth.coinjoins.is_empty());
    let cj_txs: HashSet<u32> = c.coinjoins().iter().map(|c| c.0).collect();
    assert!(c.merges().iter().all(|m| !cj_txs.contains(&m.tx)));
    let multi = cluster::pairwise_score(c.cluster_ids(), &wallets);
    assert_eq!(multi.precision, 1.0, "multi-input with CoinJoins skipped never joins two wallets: {multi:?}");
    assert!(multi.recall > 0.05 && multi.recall < 1.0, "{multi:?}");
    assert_eq!(r.meta.multi_input_merges as usize, c.merges().len());
    assert_eq!(r.meta.addresses as usize - r.meta.clusters as usize, c.merges().len(), "each merge joins two clusters");

    // Explanations: a chain of merges, each step a transaction that spends from both addresses.
    let attacker = &truth.wallets[truth.heist.as_ref().unwrap().attacker_wallet as usize];
    let mut explained = 0;
    for m in c.merges().iter().take(200) {
        let far = c.members(c.cluster_of(m.a)).last().copied().unwrap();
        let steps = c.explain(&idx, m.a, far).expect("same cluster");
        if far == m.a {
            assert!(steps.is_empty());
            continue;
        }
        assert_eq!(steps.first().unwrap().from, idx.address(m.a));
        assert_eq!(steps.last().unwrap().to, idx.address(far));
        for w in steps.windows(2) {
            assert_eq!(w[0].to, w[1].from);
        }
        for s in &steps {
            let t = idx.tx_id(&s.transaction).unwrap();
            let ins = idx.tx_in_start()[t as usize]..idx.tx_in_start()[t as usize + 1];
            let spenders: HashSet<&str> = ins.map(|i| idx.address(idx.out_addr()[idx.in_prevout()[i as usize] as usize])).collect();
            assert!(spenders.contains(s.from.as_str()) && spenders.contains(s.to.as_str()) && s.rule == "multi_input", "{s:?}");
        }
        explained += 1;
    }
    assert!(explained > 10);
    let a0 = idx.address_id(&attacker.addresses[0]).unwrap();
    let other_wallet = (0..idx.address_count() as u32).find(|&x| wallets[x as usize] != wallets[a0 as usize]).unwrap();
    assert!(c.explain(&idx, a0, other_wallet).is_none());
    drop(c);

    // Change heuristics trade precision for recall; every rule is measured and reported.
    let all = ClusterConfig { change_rules: ChangeRule::ALL.to_vec() };
    let r = cluster::cluster(&data, &idx, &all, &mut |_, _| {}).unwrap();
    assert_eq!(r.mode, "full");
    let c = Clusters::open_current(&data, &idx).unwrap();
    let with_change = cluster::pairwise_score(c.cluster_ids(), &wallets);
    assert!(r.meta.change_merges > 0);
    assert!(with_change.recall > multi.recall, "{with_change:?} vs {multi:?}");
    // Rules must agree before they merge; a lone rule pointing at the payee costs precision.
    assert!(with_change.precision > 0.9, "{with_change:?}");
    assert!(c.merges().iter().any(|m| m.rule_name().starts_with("change(")));
    eprintln!("multi-input: {multi:?}\nwith change: {with_change:?}");
}

/// Index file bytes after an update of `data` within `limit`, with the report.
fn build_within(data: &Path, limit: Option<u64>) -> (index::UpdateReport, Vec<u8>) {
    let store = Store::open(data).unwrap();
    let r = index::update_within(&store, "bitcoin_regtest", limit, &mut |_| {}).unwrap();
    GraphIndex::open_current(&store, "bitcoin_regtest").unwrap();
    assert!(!data.join("scratch").exists(), "scratch files are removed when the build ends");
    (r, std::fs::read(index::index_path(data, "bitcoin_regtest")).unwrap())
}

#[test]
fn a_tiny_memory_limit_spills_and_writes_the_same_index() {
    let tmp = tempfile::tempdir().unwrap();
    sim(tmp.path(), 320, 13);
    let blocks = tmp.path().join("sim/blocks");
    let data = tmp.path().join("data");
    let path = index::index_path(&data, "bitcoin_regtest");
    ingest(&blocks, &data, Some(170));
    let (_, unlimited) = build_within(&data, None);
    std::fs::remove_file(&path).unwrap();
    // 256 KiB: every map, sort and array spills, and the derived sections take several windows.
    let (r, limited) = build_within(&data, Some(256 << 10));
    assert_eq!(r.action, "rebuilt");
    assert!(r.memory.spilled_bytes > 0, "{:?}", r.memory);
    assert!(limited == unlimited, "the index built within the limit differs from the one built in memory");

    // Extending within the limit gives the bytes of an unlimited rebuild of the same tables.
    ingest(&blocks, &data, None);
    let (r, extended) = build_within(&data, Some(256 << 10));
    assert_eq!(r.action, "extended");
    assert!(r.memory.spilled_bytes > 0);
    std::fs::remove_file(&path).unwrap();
    let (r, rebuilt) = build_within(&data, None);
    assert_eq!((r.action, r.memory.spilled_bytes), ("rebuilt", 0));
    assert!(extended == rebuilt, "the index extended within the limit differs from an unlimited rebuild");
    let idx = GraphIndex::open(&path).unwrap();
    // Within 256 KiB a pass holds 8,192 addresses or 16,384 outputs: the chain needs several.
    assert!(idx.meta().addresses > 2 * 8_192 && idx.meta().outputs > 16_384, "{:?}: the chain must be larger than the windows", idx.meta());
}

#[test]
fn clustering_within_a_tiny_limit_spills_and_writes_the_same_clusters() {
    let tmp = tempfile::tempdir().unwrap();
    sim(tmp.path(), 320, 14);
    let blocks = tmp.path().join("sim/blocks");
    let data = tmp.path().join("data");
    let path = cluster::clusters_path(&data, "bitcoin_regtest");
    let run = |limit: Option<u64>| {
        let store = Store::open(&data).unwrap();
        index::update(&store, "bitcoin_regtest", &mut |_| {}).unwrap();
        let idx = GraphIndex::open_current(&store, "bitcoin_regtest").unwrap();
        let r = cluster::cluster_within(&data, &idx, &ClusterConfig::default(), limit, &mut |_, _| {}).unwrap();
        assert!(!data.join("scratch").exists(), "scratch files are removed when clustering ends");
        (r, std::fs::read(&path).unwrap())
    };
    ingest(&blocks, &data, Some(170));
    let (_, first_unlimited) = run(None);
    std::fs::remove_file(&path).unwrap();
    // 64 KiB less the union-find: the evidence spills and the members take several windows.
    let (r, first_limited) = run(Some(64 << 10));
    assert_eq!(r.mode, "full");
    assert!(r.memory.spilled_bytes > 0, "{:?} {:?}", r.memory, r.meta);
    assert!(first_limited == first_unlimited, "clusters written within the limit differ");
    ingest(&blocks, &data, None);
    let (r, incremental) = run(Some(64 << 10));
    assert_eq!(r.mode, "incremental");
    std::fs::remove_file(&path).unwrap();
    let (r, full) = run(None);
    assert_eq!((r.mode, r.memory.spilled_bytes), ("full", 0));
    assert!(incremental == full, "incremental clustering within the limit differs from a full unlimited run");
    assert!(r.meta.multi_input_merges > 4 * 256 && r.meta.addresses > 4 * 1024, "{:?}: the chain must outgrow the limit", r.meta);
}

#[test]
fn index_files_are_checked_in_full_once_then_trusted_until_they_change() {
    let tmp = tempfile::tempdir().unwrap();
    sim(tmp.path(), 120, 15);
    let data = tmp.path().join("data");
    ingest(&tmp.path().join("sim/blocks"), &data, None);
    let (_, idx) = index(&data);
    drop(idx);
    let path = index::index_path(&data, "bitcoin_regtest");
    let note = tracehound_graph::file::checked_path(&path);
    assert!(note.exists(), "a checked index has its note");
    // Damage the body in place, keeping size, inode and modification time: only a full check
    // can see it. The note makes a plain open trust the file; `verify` reads it all again.
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let len = f.metadata().unwrap().len();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, len / 2).unwrap();
        f.write_all_at(&[b[0] ^ 0x40], len / 2).unwrap();
        f.set_modified(mtime).unwrap();
    }
    GraphIndex::open(&path).expect("trusted: checked since it was written");
    let err = GraphIndex::verify(&path).err().expect("a full check finds the damage").to_string();
    assert!(err.contains("checksum"), "{err}");
    assert!(!note.exists());
    // Any write that changes the modification time is checked again on the next open.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    assert!(GraphIndex::open(&path).is_err());
}

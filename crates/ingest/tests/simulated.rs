//! The simulator's chain read back through the block-file path: counts, best chain, stale
//! blocks, and the heist's ground truth found again with SQL.

use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
use tracehound_simulate::{simulate, SimConfig};
use tracehound_tables::Store;
use tracehound_testing::table_rows;

#[test]
fn simulated_chain_round_trips_with_its_ground_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SimConfig { blocks: 400, txs_per_block: 30, seed: 3, xor: true, stale_every: 50, out_of_order_every: 10, ..Default::default() };
    let truth = simulate(&cfg, &tmp.path().join("sim")).unwrap();
    let heist = truth.heist.clone().expect("a heist in 400 blocks");
    assert_eq!(heist.unaccounted(), 0, "every stolen satoshi is deposited, paid as fee or held");
    assert!(!heist.deposits.is_empty() && !heist.held.is_empty() && !heist.peel_chain_txids.is_empty() && !heist.coinjoin_txids.is_empty(), "{heist:?}");
    assert!(truth.stale_blocks > 0 && truth.out_of_order_blocks > 0);

    let data = tmp.path().join("data");
    let mut store = Store::open_for_write(&data).unwrap();
    let mut opts = BlkOptions::new(tmp.path().join("sim"));
    opts.chunk_blocks = 100;
    let r = ingest_blk_files(&mut store, &opts, &|_| {}).unwrap();
    drop(store);
    assert_eq!(r.stale_blocks, truth.stale_blocks);
    assert_eq!(r.tip, Some(truth.tip_height));
    assert_eq!(r.transactions, truth.transactions);
    assert_eq!(r.unresolved_inputs, 0);
    assert_eq!(table_rows(&data, "SELECT hash FROM blocks ORDER BY number DESC LIMIT 1")[0]["hash"], truth.tip_hash.as_str());
    // No negative fee can exist (u64), and no transaction lacks one when all inputs resolve.
    assert_eq!(table_rows(&data, "SELECT count(*) AS n FROM transactions WHERE fee IS NULL")[0]["n"], 0);
    // Value is conserved: all outputs ever = all coinbase outputs + ... ; per transaction: in = out + fee.
    assert_eq!(table_rows(&data, "SELECT count(*) AS n FROM transactions WHERE NOT is_coinbase AND input_value <> output_value + fee")[0]["n"], 0);

    let theft = &table_rows(&data, &format!("SELECT output_value FROM transactions WHERE hash = '{}'", heist.txid))[0];
    assert_eq!(theft["output_value"], heist.stolen_sat);
    for (exchange, sat) in &heist.deposited_by_exchange {
        let addrs: Vec<String> = heist.deposits.iter().filter(|d| &d.exchange == exchange).map(|d| format!("'{}'", d.address)).collect();
        let got = &table_rows(&data, &format!("SELECT sum(value) AS v FROM outputs WHERE addresses[1] IN ({})", addrs.join(",")))[0];
        assert_eq!(got["v"], *sat, "deposits at {exchange}");
    }
    let attacker: Vec<String> = truth.wallets[heist.attacker_wallet as usize].addresses.iter().map(|a| format!("'{a}'")).collect();
    let held = &table_rows(&data, &format!("SELECT sum(o.value) AS v FROM outputs o LEFT JOIN inputs i ON i.spent_transaction_hash = o.transaction_hash AND i.spent_output_index = o.index WHERE o.addresses[1] IN ({}) AND i.transaction_hash IS NULL", attacker.join(",")))[0];
    assert_eq!(held["v"], heist.held_sat);
}

#[test]
fn same_seed_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SimConfig { blocks: 160, txs_per_block: 10, seed: 5, ..Default::default() };
    simulate(&cfg, &tmp.path().join("a")).unwrap();
    simulate(&cfg, &tmp.path().join("b")).unwrap();
    let a = std::fs::read(tmp.path().join("a/blocks/blk00000.dat")).unwrap();
    let b = std::fs::read(tmp.path().join("b/blocks/blk00000.dat")).unwrap();
    assert!(a == b, "simulation is deterministic");
    let other = simulate(&SimConfig { seed: 6, ..cfg }, &tmp.path().join("c")).unwrap();
    assert_ne!(std::fs::read(tmp.path().join("c/blocks/blk00000.dat")).unwrap(), a);
    assert!(other.transactions > 160);
}

#[test]
fn a_reorg_below_the_stored_tip_rolls_back_to_the_fork_point() {
    let tmp = tempfile::tempdir().unwrap();
    // Same seed, heists at different heights: the chains share blocks 0..=149, then fork.
    let short = SimConfig { blocks: 301, txs_per_block: 8, seed: 9, heist_at: 150, ..Default::default() };
    let long = SimConfig { blocks: 330, heist_at: 200, ..short.clone() };
    let a = simulate(&short, &tmp.path().join("a")).unwrap();
    let b = simulate(&long, &tmp.path().join("b")).unwrap();
    assert_ne!(a.tip_hash, b.tip_hash);
    let ingest = |sim: &str, data: &str| {
        let mut store = Store::open_for_write(tmp.path().join(data)).unwrap();
        let mut opts = BlkOptions::new(tmp.path().join(sim));
        opts.chunk_blocks = 25;
        let mut warnings = vec![];
        let cell = std::cell::RefCell::new(&mut warnings);
        let r = ingest_blk_files(&mut store, &opts, &|e| {
            if let tracehound_ingest::Event::Warning(w) = e {
                cell.borrow_mut().push(w)
            }
        })
        .unwrap();
        (r, warnings)
    };
    ingest("a", "reorged");
    let (r, warnings) = ingest("b", "reorged");
    assert!(warnings.iter().any(|w| w.contains("reorg")), "{warnings:?}");
    assert_eq!(r.resumed_after, Some(149), "rolled back to the last chunk before the fork");
    ingest("b", "fresh");
    for (table, order) in
        [("blocks", "number"), ("transactions", "block_number, index"), ("inputs", "transaction_hash, index"), ("outputs", "transaction_hash, index")]
    {
        let sql = format!("SELECT * FROM {table} ORDER BY {order}");
        assert!(table_rows(&tmp.path().join("reorged"), &sql) == table_rows(&tmp.path().join("fresh"), &sql), "{table} after the reorg");
    }
}

#[test]
fn simulator_output_is_pinned() {
    // The files and ground truth of one seed, pinned: a change to the simulator that alters its
    // output (rather than only its speed) must be deliberate and update these digests.
    use bitcoin::hashes::{sha256, Hash};
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SimConfig { blocks: 300, txs_per_block: 20, seed: 7, ..Default::default() };
    let truth = simulate(&cfg, tmp.path()).unwrap();
    assert_eq!(truth.tip_hash, "3a21334c6b81560d76aee345edbf92ec03e9fd88504bcc6540b4c0b02650845f");
    assert_eq!(truth.transactions, 3676);
    let digest = |f: &str| sha256::Hash::hash(&std::fs::read(tmp.path().join(f)).unwrap()).to_string();
    assert_eq!(digest("blocks/blk00000.dat"), "d141e54e6231b68c712aaf90fc7e98e5dbfdbc600221cc347be059d43fcc9647");
    assert_eq!(digest("ground_truth.json"), "80d5b59583ef80c81b8ccd94a7ec4542d87c4b06c78d13e0540204dd899968fa");
}

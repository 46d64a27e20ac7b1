//! The graph index of real mainnet data (block 702861: 2,500 transactions whose inputs mostly
//! spend outputs of earlier blocks, so they stay unresolved), built in memory and within a budget
//! so small that every structure spills: the same file, and the known answers of the block.

use tracehound_graph::index::{self, GraphIndex, NONE, NO_ADDRESS};
use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
use tracehound_tables::Store;
use tracehound_testing::{table_rows, testdata, write_blk_file};

const MAINNET: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];

#[test]
fn block_702861_indexes_the_same_within_a_tiny_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = std::fs::read(testdata().join("bitcoin/blocks/mainnet_block_000000000000000000000c835b2adcaedc20fdf6ee440009c249452c726dafae.raw")).unwrap();
    write_blk_file(&tmp.path().join("blocks"), MAINNET, &[raw], None);
    let data = tmp.path().join("data");
    let mut store = Store::open_for_write(&data).unwrap();
    ingest_blk_files(&mut store, &BlkOptions::new(tmp.path().join("blocks")), &|_| {}).unwrap();
    drop(store);
    let store = Store::open(&data).unwrap();
    let path = index::index_path(&data, "bitcoin");
    let unlimited = index::update_within(&store, "bitcoin", None, &mut |_| {}).unwrap();
    let want = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let limited = index::update_within(&store, "bitcoin", Some(64 << 10), &mut |_| {}).unwrap();
    assert_eq!(unlimited.memory.spilled_bytes, 0);
    assert!(limited.memory.spilled_bytes > 0, "{:?}", limited.memory);
    assert!(std::fs::read(&path).unwrap() == want, "the index of block 702861 differs when built within 64 KiB");

    let idx = GraphIndex::open_current(&store, "bitcoin").unwrap();
    // Known answers of the block (crates/ingest/tests/blk_files.rs checks them on the tables).
    assert_eq!((idx.tx_count(), idx.meta().inputs, idx.meta().outputs), (2500, 6518, 6015));
    let n = |sql: &str| table_rows(&data, sql)[0]["n"].as_u64().unwrap();
    // Inputs that spend an output of this block resolve; the others are unresolved.
    assert_eq!(idx.meta().unresolved_inputs, n("SELECT count(*) AS n FROM inputs WHERE value IS NULL AND spent_transaction_hash IS NOT NULL"));
    assert_eq!(idx.in_prevout().iter().filter(|&&p| p != NONE).count() as u64, n("SELECT count(*) AS n FROM inputs WHERE value IS NOT NULL"));
    assert_eq!(idx.out_value().iter().sum::<u64>(), n("SELECT sum(value) AS n FROM outputs"));
    let with_address = n("SELECT count(DISTINCT array_to_string(addresses, ',')) AS n FROM outputs WHERE array_length(addresses) > 0");
    assert_eq!(idx.address_count() as u64, with_address);
    for a in 0..idx.address_count() as u32 {
        assert_eq!(idx.address_id(idx.address(a)), Some(a), "{}", idx.address(a));
    }
    assert_eq!(
        idx.out_addr().iter().filter(|&&a| a == NO_ADDRESS).count() as u64,
        n("SELECT count(*) AS n FROM outputs WHERE array_length(addresses) = 0 OR addresses IS NULL")
    );
}

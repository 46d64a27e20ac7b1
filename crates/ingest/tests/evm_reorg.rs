//! Reorgs on a real anvil node: blocks replaced below the stored tip are rolled back to the fork
//! point and read again, and the tables then equal a fresh ingest of the new chain.

use serde_json::{json, Value};
use tracehound_ingest::evm::{ingest_evm, EvmOptions};
use tracehound_tables::Store;
use tracehound_testing::{table_rows, Anvil};

const DEV: [&str; 3] =
    ["0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"];

/// Mines `n` blocks, each with one transfer of `wei` between dev accounts.
fn mine(node: &Anvil, n: u64, wei: u64, time: &mut u64) {
    node.rpc("evm_setAutomine", json!([false])).unwrap();
    for i in 0..n {
        let (from, to) = (DEV[(i % 3) as usize], DEV[((i + 1) % 3) as usize]);
        node.rpc("eth_sendTransaction", json!([{"from": from, "to": to, "value": format!("{wei:#x}")}])).unwrap();
        *time += 12;
        node.rpc("evm_mine", json!([*time])).unwrap();
    }
}

fn options(node: &Anvil) -> EvmOptions {
    let mut o = EvmOptions::new(node.url.clone());
    o.chunk_blocks = 3;
    o.batch_size = 2;
    o
}

fn dump(dir: &std::path::Path) -> Vec<Vec<serde_json::Map<String, Value>>> {
    [
        "SELECT * FROM blocks ORDER BY number",
        "SELECT * FROM transactions ORDER BY block_number, transaction_index",
        "SELECT * FROM transfers ORDER BY block_number, transaction_index, position",
        "SELECT * FROM traces ORDER BY block_number, trace_id",
    ]
    .iter()
    .map(|q| table_rows(dir, q))
    .collect()
}

#[test]
fn reorg_of_depth_four_rolls_back_and_reads_the_new_branch() {
    let node = Anvil::start(&["--timestamp", "1655942400"]);
    let mut time = 1_655_942_400u64;
    mine(&node, 8, 1_000, &mut time);
    let fork = node.rpc("evm_snapshot", json!([])).unwrap();
    let mut time_a = time;
    mine(&node, 4, 2_000, &mut time_a); // branch A: blocks 9..=12
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_for_write(dir.path()).unwrap();
    let r = ingest_evm(&mut store, &options(&node), &|_| {}).unwrap();
    assert_eq!((r.tip, r.blocks, r.transactions), (Some(12), 13, 12));
    let a_hash_10 = table_rows(dir.path(), "SELECT hash FROM blocks WHERE number = 10")[0]["hash"].clone();

    // Branch B replaces blocks 9..=12 and grows to 14, with other amounts and times.
    assert_eq!(node.rpc("evm_revert", json!([fork])).unwrap(), json!(true));
    let mut time_b = time + 5;
    mine(&node, 6, 3_000, &mut time_b);
    let r = ingest_evm(&mut store, &options(&node), &|_| {}).unwrap();
    assert_eq!(r.tip, Some(14));
    assert!(r.blocks >= 6, "at least the replaced and new blocks are read again: {r:?}");
    drop(store);
    let b_hash_10 = table_rows(dir.path(), "SELECT hash FROM blocks WHERE number = 10")[0]["hash"].clone();
    assert_ne!(a_hash_10, b_hash_10);
    let amounts = table_rows(dir.path(), "SELECT block_number, CAST(amount AS VARCHAR) AS amount FROM transfers WHERE block_number > 8 ORDER BY block_number");
    assert_eq!(amounts.len(), 6);
    assert!(amounts.iter().all(|r| r["amount"] == json!("3000")), "only branch B's transfers remain: {amounts:?}");

    // The same as reading branch B into an empty directory.
    let fresh = tempfile::tempdir().unwrap();
    let mut store = Store::open_for_write(fresh.path()).unwrap();
    ingest_evm(&mut store, &options(&node), &|_| {}).unwrap();
    drop(store);
    assert_eq!(dump(dir.path()), dump(fresh.path()));
    // Every stored block links to its parent.
    let links = table_rows(dir.path(), "SELECT count(*) AS n FROM blocks b JOIN blocks p ON b.parent_hash = p.hash AND p.number + 1 = b.number");
    assert_eq!(links[0]["n"], json!(14));
}

#[test]
fn confirmations_hold_back_the_head_and_sync_resumes() {
    let node = Anvil::start(&["--timestamp", "1655942400"]);
    let mut time = 1_655_942_400u64;
    mine(&node, 10, 5, &mut time);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_for_write(dir.path()).unwrap();
    let mut o = options(&node);
    o.confirmations = 3;
    let r = ingest_evm(&mut store, &o, &|_| {}).unwrap();
    assert_eq!(r.tip, Some(7));
    mine(&node, 2, 5, &mut time);
    let r = ingest_evm(&mut store, &o, &|_| {}).unwrap();
    assert_eq!((r.resumed_after, r.tip, r.blocks), (Some(7), Some(9), 2));
    // The chain id and kind are recorded; another node's chain id is refused.
    let info = &store.chain("anvil").unwrap().info;
    assert_eq!(info["chain_id"], json!(31337));
    let other = Anvil::start(&["--chain-id", "1"]);
    let mut o2 = options(&other);
    o2.chain = Some("anvil".into());
    let e = ingest_evm(&mut store, &o2, &|_| {}).unwrap_err().to_string();
    assert!(e.contains("chain id 31337") && e.contains("chain id 1"), "{e}");
}

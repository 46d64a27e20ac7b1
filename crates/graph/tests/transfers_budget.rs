//! The transfer index of an EVM chain built within a tiny memory budget: every structure spills,
//! the derived sections take several windows, and the file is the one an unlimited build writes.

use datafusion::arrow::array::{ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tracehound_graph::index::NO_ADDRESS;
use tracehound_graph::transfers::{self, TransferIndex, TransferUpdate, NO_TX};
use tracehound_tables::Store;

const CHAIN: &str = "ethereum";
const BLOCKS_PER_CHUNK: u64 = 40;

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn address(rng: &mut Rng, pool: u64) -> String {
    let a = rng.below(pool);
    // Some addresses arrive in checksum case: the index stores them lower case.
    let s = format!("0x{:040x}", a.wrapping_mul(0x9E37_79B9_7F4A_7C15) as u128 * 7 + a as u128);
    if a.is_multiple_of(5) {
        s.to_ascii_uppercase().replacen("0X", "0x", 1)
    } else {
        s
    }
}

fn tx_hash(block: u64, index: u64) -> String {
    // Structured hashes (most bytes zero) as well as random-looking ones.
    if index.is_multiple_of(3) {
        format!("0x{:064x}", block << 16 | index)
    } else {
        let mut rng = Rng(block * 1000 + index + 1);
        (0..4).map(|_| format!("{:016x}", rng.next())).fold("0x".to_string(), |s, p| s + &p)
    }
}

/// The `transfers` and `transactions` rows of blocks `first..=last`, transfers in no particular
/// order (the index sorts them).
fn chunk_tables(first: u64, last: u64, seed: u64, pool: u64) -> Vec<(&'static str, Vec<RecordBatch>)> {
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    let tokens = ["0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "0xdac17f958d2ee523a2206206994597c13d831ec7", "0x6b175474e89094c44da98b954eedeac495271d0f"];
    // (block, time, tx, tx index, position, kind, asset, from, to, amount)
    type Transfer = (u64, i64, Option<String>, Option<u32>, u32, &'static str, String, Option<String>, Option<String>, String);
    let mut t: Vec<Transfer> = vec![];
    // (hash, block, time, index, sender, gas used, price)
    let mut x: Vec<(String, u64, i64, u32, String, u64, i128)> = vec![];
    for block in first..=last {
        let time = 1_700_000_000 + block as i64 * 12;
        let txs = 16 + rng.below(12);
        for i in 0..txs {
            let hash = tx_hash(block, i);
            let sender = address(&mut rng, pool);
            // The gas fee (none for a few transactions: a zero price).
            let price = if rng.below(20) == 0 { 0 } else { 1_000_000_000 + rng.below(50_000_000_000) as i128 };
            x.push((hash.clone(), block, time, i as u32, sender.clone(), 21_000 + rng.below(200_000), price));
            let moves = 1 + rng.below(4);
            for position in 0..moves as u32 {
                let (kind, asset) = match rng.below(6) {
                    0..=2 => (if position == 0 { "native_tx" } else { "internal" }, "native".to_string()),
                    3 => ("erc721", tokens[0].to_string()),
                    _ => ("erc20", tokens[rng.below(3) as usize].to_string()),
                };
                let from =
                    if kind == "erc20" && rng.below(30) == 0 { None } else { Some(if position == 0 { sender.clone() } else { address(&mut rng, pool) }) };
                let to = match rng.below(40) {
                    0 => None,
                    1 => from.clone(),
                    _ => Some(address(&mut rng, pool)),
                };
                let amount = match rng.below(50) {
                    0 => "340282366920938463463374607431768211456".to_string(),
                    1 => "not a number".to_string(),
                    2 => (rng.next() as u128 * rng.next() as u128).to_string(),
                    _ => rng.below(1 << 40).to_string(),
                };
                t.push((block, time, Some(hash.clone()), Some(i as u32), position, kind, asset.clone(), from.clone(), to.clone(), amount.clone()));
                // Now and then the same movement twice (two logs alike): both are kept, in order.
                if rng.below(60) == 0 {
                    t.push((block, time, Some(hash.clone()), Some(i as u32), position, kind, asset, from, to, format!("{}", rng.below(1000))));
                }
            }
        }
        // Withdrawals: no transaction.
        for w in 0..rng.below(3) {
            t.push((
                block,
                time,
                None,
                None,
                w as u32,
                "withdrawal",
                "native".into(),
                Some("(withdrawals)".into()),
                Some(address(&mut rng, pool)),
                rng.below(1 << 50).to_string(),
            ));
        }
    }
    // The rows of a chunk in scrambled order.
    for i in (1..t.len()).rev() {
        t.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let s = |v: Vec<Option<String>>| Arc::new(StringArray::from(v)) as ArrayRef;
    let transfers_schema = Arc::new(Schema::new(vec![
        Field::new("block_number", DataType::UInt64, false),
        Field::new("block_timestamp", DataType::Int64, false),
        Field::new("transaction_hash", DataType::Utf8, true),
        Field::new("transaction_index", DataType::UInt32, true),
        Field::new("position", DataType::UInt32, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("asset", DataType::Utf8, false),
        Field::new("from_address", DataType::Utf8, true),
        Field::new("to_address", DataType::Utf8, true),
        Field::new("amount_raw", DataType::Utf8, false),
    ]));
    let transfers = RecordBatch::try_new(
        transfers_schema,
        vec![
            Arc::new(UInt64Array::from(t.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(t.iter().map(|r| r.1).collect::<Vec<_>>())),
            s(t.iter().map(|r| r.2.clone()).collect()),
            Arc::new(UInt32Array::from(t.iter().map(|r| r.3).collect::<Vec<_>>())),
            Arc::new(UInt32Array::from(t.iter().map(|r| r.4).collect::<Vec<_>>())),
            s(t.iter().map(|r| Some(r.5.to_string())).collect()),
            s(t.iter().map(|r| Some(r.6.clone())).collect()),
            s(t.iter().map(|r| r.7.clone()).collect()),
            s(t.iter().map(|r| r.8.clone()).collect()),
            s(t.iter().map(|r| Some(r.9.clone())).collect()),
        ],
    )
    .unwrap();
    let txs_schema = Arc::new(Schema::new(vec![
        Field::new("hash", DataType::Utf8, false),
        Field::new("block_number", DataType::UInt64, false),
        Field::new("block_timestamp", DataType::Int64, false),
        Field::new("transaction_index", DataType::UInt32, false),
        Field::new("from_address", DataType::Utf8, false),
        Field::new("receipt_gas_used", DataType::UInt64, true),
        Field::new("receipt_effective_gas_price", DataType::Decimal128(38, 0), true),
    ]));
    let transactions = RecordBatch::try_new(
        txs_schema,
        vec![
            s(x.iter().map(|r| Some(r.0.clone())).collect()),
            Arc::new(UInt64Array::from(x.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(x.iter().map(|r| r.2).collect::<Vec<_>>())),
            Arc::new(UInt32Array::from(x.iter().map(|r| r.3).collect::<Vec<_>>())),
            s(x.iter().map(|r| Some(r.4.clone())).collect()),
            Arc::new(UInt64Array::from(x.iter().map(|r| r.5).collect::<Vec<_>>())),
            Arc::new(Decimal128Array::from(x.iter().map(|r| r.6).collect::<Vec<_>>()).with_precision_and_scale(38, 0).unwrap()),
        ],
    )
    .unwrap();
    vec![("transfers", vec![transfers]), ("transactions", vec![transactions])]
}

/// Adds chunks of `BLOCKS_PER_CHUNK` blocks, with senders and receivers drawn from 6,000
/// addresses, to the stored chain until it holds `blocks` blocks.
fn ingest(data: &Path, blocks: u64) {
    ingest_with(data, blocks, BLOCKS_PER_CHUNK, 6_000)
}

/// Adds chunks of `per_chunk` blocks, with addresses drawn from `pool`, until the stored chain
/// holds `blocks` blocks.
fn ingest_with(data: &Path, blocks: u64, per_chunk: u64, pool: u64) {
    let mut store = Store::open_for_write(data).unwrap();
    let mut first = store.chain(CHAIN).and_then(|c| c.tip()).map_or(0, |(h, _)| h + 1);
    while first < blocks {
        let last = (first + per_chunk - 1).min(blocks - 1);
        let info = BTreeMap::from([("kind".to_string(), serde_json::json!("evm"))]);
        store.commit_chunk(CHAIN, first, last, &format!("0x{last:064x}"), &chunk_tables(first, last, first + 1, pool), info).unwrap();
        first = last + 1;
    }
}

fn build_within(data: &Path, limit: Option<u64>) -> (TransferUpdate, Vec<u8>) {
    let store = Store::open(data).unwrap();
    let r = transfers::update_within(&store, CHAIN, "ETH", limit, &mut |_| {}).unwrap();
    TransferIndex::open_current(&store, CHAIN).unwrap();
    assert!(!data.join("scratch").exists(), "scratch files are removed when the build ends");
    (r, std::fs::read(transfers::transfers_path(data, CHAIN)).unwrap())
}

/// What the index says agrees with itself: each movement is listed once under its sender and
/// once under its receiver (once for a transfer to oneself), every list in chain order.
fn check_lists(idx: &TransferIndex) {
    let mut listed = vec![0u32; idx.len()];
    for a in 0..idx.address_count() as u32 {
        let mvs = idx.movements_of(a);
        assert!(mvs.windows(2).all(|w| w[0] < w[1]), "the movements of {} are in chain order", idx.address(a));
        for &i in mvs {
            let (from, to, _) = idx.ends(i);
            assert!(from == a || to == a, "movement {i} listed under {} does not touch it", idx.address(a));
            listed[i as usize] += 1;
        }
        assert_eq!(idx.address_id(&idx.address(a).to_ascii_uppercase().replacen("0X", "0x", 1)), Some(a));
    }
    for (i, &n) in listed.iter().enumerate() {
        let (from, to, _) = idx.ends(i as u64);
        assert_eq!(n, if to == NO_ADDRESS || to == from { 1 } else { 2 }, "movement {i}");
    }
    for i in 1..idx.len() as u64 {
        let (a, b) = (idx.movement(i - 1), idx.movement(i));
        assert!((a.block, a.tx_index, a.position) <= (b.block, b.tx_index, b.position), "movements {} and {i} out of order", i - 1);
    }
    for t in 0..idx.meta().transactions as u32 {
        assert_eq!(idx.tx_id(&idx.tx_hash(t)), Some(t));
    }
    assert!((0..idx.len() as u64).any(|i| idx.tx_of(i) == NO_TX), "withdrawals are indexed");
}

#[test]
fn a_tiny_memory_limit_spills_and_writes_the_same_transfer_index() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let path = transfers::transfers_path(&data, CHAIN);
    ingest(&data, 160);
    let (r, unlimited) = build_within(&data, None);
    assert_eq!((r.action, r.memory.spilled_bytes), ("rebuilt", 0));
    std::fs::remove_file(&path).unwrap();
    // 64 KiB: every map, sort and array spills, and the derived sections take several windows.
    let (r, limited) = build_within(&data, Some(64 << 10));
    assert_eq!(r.action, "rebuilt");
    assert!(r.memory.spilled_bytes > 0, "{:?}", r.memory);
    assert!(limited == unlimited, "the transfer index built within the limit differs from the one built in memory");
    check_lists(&TransferIndex::open(&path).unwrap());

    // Extending within the limit gives the bytes of an unlimited rebuild of the same tables.
    ingest(&data, 300);
    let (r, extended) = build_within(&data, Some(64 << 10));
    assert_eq!(r.action, "extended");
    assert!(r.memory.spilled_bytes > 0);
    std::fs::remove_file(&path).unwrap();
    let (r, rebuilt) = build_within(&data, None);
    assert_eq!((r.action, r.memory.spilled_bytes), ("rebuilt", 0));
    assert!(extended == rebuilt, "the transfer index extended within the limit differs from an unlimited rebuild");
    let idx = TransferIndex::open(&path).unwrap();
    check_lists(&idx);
    let m = idx.meta();
    // Within 64 KiB a pass holds 1,024 addresses and 2,048 list places: the chain needs several,
    // and the maps (1,024 entries at the least) spill.
    assert!(m.addresses > 2 * 2_048 && m.transactions > 2 * 1_024 && m.movements > 4 * 4_096 && m.skipped > 0, "{m:?}: the chain must outgrow the limit");
}

/// Writes the data directory of the transfer index benchmark in BENCHMARKS.md:
/// `TRACEHOUND_BENCH_DATA=<dir> cargo test --release --test transfers_budget -- --ignored`
/// (40,000 blocks of about 22 transactions each, addresses drawn from 2 million).
#[test]
#[ignore = "writes a benchmark data directory; run with --ignored and TRACEHOUND_BENCH_DATA"]
fn write_the_benchmark_chain() {
    let Ok(dir) = std::env::var("TRACEHOUND_BENCH_DATA") else { return };
    ingest_with(Path::new(&dir), 40_000, 1_000, 2_000_000);
}

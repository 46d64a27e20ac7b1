//! Block-file ingest under a memory budget: a simulated chain ingested with the whole unspent
//! set in memory and with a map budget so small that most of it is spilled to disk gives the
//! same four tables, byte for byte.

use std::collections::BTreeMap;
use std::path::Path;
use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
use tracehound_ingest::bitcoin::IngestReport;
use tracehound_simulate::{simulate, SimConfig};
use tracehound_tables::Store;
use tracehound_testing::table_rows;

fn ingest(sim: &Path, data: &Path, memory_limit: Option<u64>, utxo_map_bytes: Option<u64>, to: Option<u64>) -> IngestReport {
    let mut store = Store::open_for_write(data).unwrap();
    let mut opts = BlkOptions::new(sim);
    opts.chunk_blocks = 250;
    opts.memory_limit = memory_limit;
    opts.utxo_map_bytes = utxo_map_bytes;
    opts.to = to;
    ingest_blk_files(&mut store, &opts, &|_| {}).unwrap()
}

/// Every Parquet file of the store, by path, with its bytes.
fn parquet_files(data: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![data.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.insert(p.strip_prefix(data).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Counts and sums of every column that input resolution decides, per table.
fn fingerprint(data: &Path) -> Vec<serde_json::Map<String, serde_json::Value>> {
    [
        "SELECT count(*) AS n, sum(number) AS heights, sum(transaction_count) AS txs FROM blocks",
        "SELECT count(*) AS n, count(fee) AS with_fee, sum(fee) AS fees, sum(input_value) AS input_value, sum(output_value) AS output_value FROM transactions",
        "SELECT count(*) AS n, count(value) AS resolved, sum(value) AS value, count(DISTINCT type) AS types, \
         sum(length(array_to_string(addresses, ','))) AS address_chars, sum(required_signatures) AS sigs FROM inputs",
        "SELECT count(*) AS n, sum(value) AS value, sum(length(array_to_string(addresses, ','))) AS address_chars FROM outputs",
    ]
    .iter()
    .map(|q| table_rows(data, q).remove(0))
    .collect()
}

#[test]
fn a_spilled_ingest_writes_the_same_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let cfg = SimConfig { blocks: 1600, txs_per_block: 120, seed: 11, ..Default::default() };
    let t = std::time::Instant::now();
    let truth = simulate(&cfg, &sim).unwrap();
    eprintln!("simulated {} transactions in {:?}", truth.transactions, t.elapsed());
    assert!(truth.transactions > 100_000, "{}", truth.transactions);

    let whole = tmp.path().join("whole");
    let t = std::time::Instant::now();
    let r1 = ingest(&sim, &whole, None, None, None);
    eprintln!("ingested in {:?}", t.elapsed());
    assert!(r1.memory.is_none() && r1.utxos_on_disk == 0);
    assert!(!whole.join("scratch").exists());

    // A 32 MiB limit leaves the map 8 MiB; 1 MiB forces most of the unspent set to disk.
    let spilled = tmp.path().join("spilled");
    let t = std::time::Instant::now();
    let r2 = ingest(&sim, &spilled, Some(32 << 20), Some(1 << 20), None);
    eprintln!("ingested spilling in {:?}: {:?} {} on disk", t.elapsed(), r2.memory, r2.utxos_on_disk);
    let m = r2.memory.clone().expect("a memory report under a limit");
    assert_eq!((m.stage.as_str(), m.memory_limit), ("ingest", 32 << 20));
    assert!(m.spilled_bytes > 0 && m.peak_rss > 0, "{m:?}");
    assert!(r2.utxos_on_disk > r2.utxos / 2, "{} of {} on disk", r2.utxos_on_disk, r2.utxos);
    assert_eq!(r2.utxos, r1.utxos);
    assert_eq!((r2.transactions, r2.inputs, r2.outputs, r2.unresolved_inputs), (r1.transactions, r1.inputs, r1.outputs, 0));
    assert!(!spilled.join("scratch").exists(), "scratch files are removed after the run");

    let (a, b) = (fingerprint(&whole), fingerprint(&spilled));
    assert_eq!(a, b);
    assert_eq!(a[1]["with_fee"], a[1]["n"], "every input resolves: every transaction has a fee");
    let (fa, fb) = (parquet_files(&whole), parquet_files(&spilled));
    assert_eq!(fa.len(), 4 * r1.chunks as usize);
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        assert!(fb[name] == *bytes, "{name} differs");
    }
}

#[test]
fn a_resumed_ingest_rebuilds_a_spilled_map() {
    // On resume, the blocks before the stored tip are read again to rebuild the unspent set: under
    // a tiny budget that rebuild spills too, and the rows after the tip still resolve.
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    simulate(&SimConfig { blocks: 400, txs_per_block: 40, seed: 12, ..Default::default() }, &sim).unwrap();
    let whole = tmp.path().join("whole");
    ingest(&sim, &whole, None, None, None);
    let resumed = tmp.path().join("resumed");
    ingest(&sim, &resumed, Some(16 << 20), Some(256 << 10), Some(250));
    let r = ingest(&sim, &resumed, Some(16 << 20), Some(256 << 10), None);
    assert_eq!(r.resumed_after, Some(250));
    assert!(r.memory.as_ref().unwrap().spilled_bytes > 0 && r.unresolved_inputs == 0);
    assert_eq!(fingerprint(&whole), fingerprint(&resumed));
}

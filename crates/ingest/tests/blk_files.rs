//! Block-file ingest against real mainnet data (block 702861), damaged files, and the newest file
//! ending in a block Bitcoin Core is still writing.

use std::path::{Path, PathBuf};
use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
use tracehound_ingest::Error;
use tracehound_simulate::{simulate, GroundTruth, SimConfig};
use tracehound_tables::Store;
use tracehound_testing::{table_rows, testdata, write_blk_file};

const MAINNET: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];

fn block_702861() -> Vec<u8> {
    std::fs::read(testdata().join("bitcoin/blocks/mainnet_block_000000000000000000000c835b2adcaedc20fdf6ee440009c249452c726dafae.raw")).unwrap()
}

fn ingest(dir: &std::path::Path, data: &std::path::Path, skip_corrupt: bool) -> Result<tracehound_ingest::bitcoin::IngestReport, Error> {
    let mut store = Store::open_for_write(data)?;
    let mut opts = BlkOptions::new(dir);
    opts.skip_corrupt = skip_corrupt;
    ingest_blk_files(&mut store, &opts, &|_| {})
}

fn check_known_answers(data: &std::path::Path) {
    let b = &table_rows(data, "SELECT * FROM blocks")[0];
    assert_eq!(b["hash"], "000000000000000000000c835b2adcaedc20fdf6ee440009c249452c726dafae");
    assert_eq!(b["prev_hash"], "00000000000000000009c3deb8b5e706d7be57a427f4f03f01c49d5219213b5f");
    assert_eq!(b["merkle_root"], "407d72768cec1a244b7599af79f554055c72d6b2356c890f8c25abf797679022");
    assert_eq!(b["number"], 702861, "height from the BIP34 coinbase of a block that is not genesis");
    assert_eq!(b["timestamp"], 1633002641);
    assert_eq!(b["bits"], "170ed0eb");
    assert_eq!(b["nonce"], format!("{:x}", 1104860899u32));
    assert_eq!(b["weight"], 3993054);
    assert_eq!(b["size"], 1381836);
    assert_eq!(b["transaction_count"], 2500);
    let t = &table_rows(
        data,
        "SELECT count(*) AS n, sum(output_value) AS total, sum(input_count) AS inputs, sum(output_count) AS outputs, count(fee) AS with_fee FROM transactions",
    )[0];
    assert_eq!(t["n"], 2500);
    assert_eq!(t["total"], 2_883_682_728_990u64);
    assert_eq!(t["inputs"], 6518);
    assert_eq!(t["outputs"], 6015);
    // Only outputs created in this block can be resolved: count them independently with SQL.
    let in_block = &table_rows(data, "SELECT count(*) AS n FROM inputs WHERE spent_transaction_hash IN (SELECT hash FROM transactions)")[0]["n"];
    assert_eq!(table_rows(data, "SELECT count(*) AS n FROM inputs WHERE value IS NOT NULL")[0]["n"], *in_block);
    let fully_in_block = &table_rows(data, "SELECT count(*) AS n FROM transactions t WHERE NOT is_coinbase AND NOT EXISTS (SELECT 1 FROM inputs i WHERE i.transaction_hash = t.hash AND i.spent_transaction_hash NOT IN (SELECT hash FROM transactions))")[0]["n"];
    assert_eq!(t["with_fee"].as_u64().unwrap(), 1 + fully_in_block.as_u64().unwrap(), "a fee only where every input is resolved");
    assert_eq!(table_rows(data, "SELECT count(*) AS n FROM inputs")[0]["n"], 6518);
    assert_eq!(table_rows(data, "SELECT count(*) AS n FROM outputs")[0]["n"], 6015);
    let unresolved = table_rows(data, "SELECT count(*) AS n FROM inputs WHERE value IS NULL AND spent_transaction_hash IS NOT NULL")[0]["n"].as_u64().unwrap();
    assert_eq!(unresolved + in_block.as_u64().unwrap(), 6517, "every non-coinbase input is either resolved in-block or marked unresolved");
    assert_eq!(table_rows(data, "SELECT output_value FROM transactions WHERE is_coinbase")[0]["output_value"], 629_948_405);
    assert_eq!(
        table_rows(data, "SELECT hash FROM transactions WHERE index = 0")[0]["hash"],
        "764b60c3d9a2c3c5bb6fe7141d9ca6e6778122df75f19366a2c5cb948d1d7d84"
    );
    assert_eq!(
        table_rows(data, "SELECT hash FROM transactions WHERE index = 2499")[0]["hash"],
        "2947daf667b1914a2f060e8cf10267ca1d056f0dab3ccb273da474f063b7f412"
    );
    // Every output has an address-like key and a Core type name.
    assert_eq!(table_rows(data, "SELECT count(*) AS n FROM outputs WHERE cardinality(addresses) = 0")[0]["n"], 0);
    let types: Vec<String> = table_rows(data, "SELECT DISTINCT type FROM outputs ORDER BY 1").iter().map(|r| r["type"].as_str().unwrap().to_string()).collect();
    assert!(
        types.contains(&"witness_v0_keyhash".to_string()) && types.contains(&"scripthash".to_string()) && types.contains(&"nulldata".to_string()),
        "{types:?}"
    );
}

#[test]
fn mainnet_block_702861_gives_the_known_answers() {
    let tmp = tempfile::tempdir().unwrap();
    write_blk_file(&tmp.path().join("blocks"), MAINNET, &[block_702861()], None);
    let r = ingest(tmp.path(), &tmp.path().join("data"), false).unwrap();
    assert_eq!((r.chain.as_str(), r.first, r.tip), ("bitcoin", Some(702861), Some(702861)));
    assert!(r.unresolved_inputs > 6000 && r.unresolved_inputs < 6517, "{}", r.unresolved_inputs);
    check_known_answers(&tmp.path().join("data"));
}

#[test]
fn mainnet_block_702861_gives_the_known_answers_with_its_outputs_spilled() {
    // A map budget of nothing: every output the block makes is written to disk as soon as the
    // next one is recorded, so the in-block spends resolve from run files.
    let tmp = tempfile::tempdir().unwrap();
    write_blk_file(&tmp.path().join("blocks"), MAINNET, &[block_702861()], None);
    let mut store = Store::open_for_write(tmp.path().join("data")).unwrap();
    let mut opts = BlkOptions::new(tmp.path());
    opts.memory_limit = Some(16 << 20);
    opts.utxo_map_bytes = Some(0);
    let r = ingest_blk_files(&mut store, &opts, &|_| {}).unwrap();
    drop(store);
    assert!(r.memory.as_ref().unwrap().spilled_bytes > 0 && r.utxos_on_disk > 0, "{r:?}");
    let unspilled = ingest(tmp.path(), &tmp.path().join("data2"), false).unwrap();
    assert_eq!((r.unresolved_inputs, r.utxos), (unspilled.unresolved_inputs, unspilled.utxos));
    check_known_answers(&tmp.path().join("data"));
}

#[test]
fn xor_obfuscated_files_read_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    write_blk_file(&tmp.path().join("blocks"), MAINNET, &[block_702861()], Some([0x3a, 0x91, 0x07, 0xee, 0x5c, 0x00, 0xd2, 0x48]));
    ingest(&tmp.path().join("blocks"), &tmp.path().join("data"), false).unwrap();
    check_known_answers(&tmp.path().join("data"));
}

#[test]
fn corrupt_records_name_file_and_offset_and_leave_stored_data_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let blocks = tmp.path().join("blocks");
    let good = block_702861();
    write_blk_file(&blocks, MAINNET, std::slice::from_ref(&good), None);
    let data = tmp.path().join("data");
    ingest(&blocks, &data, false).unwrap();
    let manifest_before = std::fs::read(data.join("manifest.json")).unwrap();

    // A second file whose record has a bad magic.
    let mut bad = MAINNET.to_vec();
    bad[0] = 0xde;
    bad.extend_from_slice(&(good.len() as u32).to_le_bytes());
    bad.extend_from_slice(&good);
    std::fs::write(blocks.join("blk00001.dat"), &bad).unwrap();
    let err = ingest(&blocks, &data, false).unwrap_err().to_string();
    assert!(err.contains("blk00001.dat") && err.contains("offset 0") && err.contains("bad magic"), "{err}");
    assert_eq!(std::fs::read(data.join("manifest.json")).unwrap(), manifest_before, "a failed ingest changes nothing stored");

    // A length running past the end of the file (truncated file) that is not the newest file
    // (the newest may end in a block still being written: see the partial-block tests below).
    let mut truncated = MAINNET.to_vec();
    truncated.extend_from_slice(&(good.len() as u32).to_le_bytes());
    truncated.extend_from_slice(&good[..1000]);
    std::fs::write(blocks.join("blk00001.dat"), &truncated).unwrap();
    std::fs::copy(blocks.join("blk00000.dat"), blocks.join("blk00002.dat")).unwrap();
    let err = ingest(&blocks, &data, false).unwrap_err().to_string();
    assert!(err.contains("blk00001.dat") && err.contains("runs past the end"), "{err}");
    // --skip-corrupt goes on with a warning.
    let r = ingest(&blocks, &data, true).unwrap();
    assert_eq!(r.skipped.len(), 1, "{:?}", r.skipped);
    assert_eq!(table_rows(&data, "SELECT count(*) AS n FROM transactions")[0]["n"], 2500);
}

#[test]
fn a_block_that_does_not_decode_is_reported_with_its_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let blocks = tmp.path().join("blocks");
    let mut broken = block_702861();
    broken.truncate(5000); // header fine, transactions cut short: framing consistent, content not
    write_blk_file(&blocks, MAINNET, &[broken], None);
    let err = ingest(&blocks, &tmp.path().join("data"), false).unwrap_err().to_string();
    assert!(err.contains("blk00000.dat at byte offset 0") && err.contains("does not decode"), "{err}");
    let r = ingest(&blocks, &tmp.path().join("data2"), true).unwrap();
    assert_eq!(r.blocks, 0);
    assert!(r.skipped[0].contains("blk00000.dat"), "{:?}", r.skipped);
}

#[test]
fn parse_file_bytes_never_panics_on_prefixes() {
    let mut file = MAINNET.to_vec();
    let good = block_702861();
    file.extend_from_slice(&(good.len() as u32).to_le_bytes());
    file.extend_from_slice(&good);
    for cut in [0, 3, 8, 88, 1000, file.len() - 1] {
        let _ = tracehound_ingest::bitcoin::blkfile::parse_file_bytes(&file[..cut], MAINNET);
    }
    assert_eq!(tracehound_ingest::bitcoin::blkfile::parse_file_bytes(&file, MAINNET).unwrap().len(), 1);
}

/// A simulated regtest chain of several block files under `dir/blocks`, with neither stale nor
/// out-of-order blocks: the last record of the newest file is the tip.
fn simulated_files(dir: &Path, xor: bool) -> (GroundTruth, Vec<PathBuf>) {
    let cfg = SimConfig { blocks: 130, txs_per_block: 8, seed: 17, xor, stale_every: 0, out_of_order_every: 0, max_file_bytes: 24 << 10, ..Default::default() };
    let truth = simulate(&cfg, dir).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("blk"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    (truth, files)
}

/// (offset, length) of every record (magic, length, block) of a block file, read through
/// `xor.dat` when there is one.
fn records(path: &Path) -> Vec<(u64, u64)> {
    let bytes = std::fs::read(path).unwrap();
    let key = std::fs::read(path.with_file_name("xor.dat")).unwrap_or_else(|_| vec![0; 8]);
    let (mut out, mut offset) = (vec![], 0usize);
    while offset + 8 <= bytes.len() {
        let len: [u8; 4] = std::array::from_fn(|i| bytes[offset + 4 + i] ^ key[(offset + 4 + i) % 8]);
        let record = 8 + u32::from_le_bytes(len) as usize;
        out.push((offset as u64, record as u64));
        offset += record;
    }
    out
}

/// Every row of every table, in a fixed order.
fn dump(data: &Path) -> Vec<Vec<serde_json::Map<String, serde_json::Value>>> {
    [
        ("blocks", "number"),
        ("transactions", "block_number, index"),
        ("inputs", "block_number, transaction_hash, index"),
        ("outputs", "block_number, transaction_hash, index"),
    ]
    .iter()
    .map(|(t, order)| table_rows(data, &format!("SELECT * FROM {t} ORDER BY {order}")))
    .collect()
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
}

#[test]
fn a_block_cut_short_at_the_end_of_the_newest_file_is_left_for_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let (truth, files) = simulated_files(&sim, false);
    let newest = files.last().unwrap().clone();
    let name = newest.file_name().unwrap().to_str().unwrap().to_string();
    let whole = std::fs::read(&newest).unwrap();
    let (at, len) = *records(&newest).last().unwrap();
    assert_eq!(at + len, whole.len() as u64);

    let reference = tmp.path().join("reference");
    let r = ingest(&sim, &reference, false).unwrap();
    assert_eq!(r.tip, Some(truth.tip_height));
    assert!(r.partial_tail.is_none());
    let uninterrupted = dump(&reference);

    // Cut inside the 80-byte block header, in the transactions, and one byte short of the end.
    for cut in [at + 8 + 40, at + len / 2, at + len - 1] {
        std::fs::write(&newest, &whole[..cut as usize]).unwrap();
        let data = tmp.path().join(format!("data-{cut}"));
        let r = ingest(&sim, &data, false).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(r.tip, Some(truth.tip_height - 1), "up to the last complete block");
        assert_eq!(r.blocks, truth.tip_height, "heights 0..tip-1");
        assert!(r.skipped.is_empty(), "{:?}", r.skipped);
        let tail = r.partial_tail.clone().expect("the partial block is reported");
        assert_eq!((tail.file.as_path(), tail.offset, tail.bytes), (newest.as_path(), at, cut - at));
        let line = tail.to_string();
        assert!(line.starts_with(&format!("{name}: partial block at offset {at} ")) && line.contains("run again"), "{line}");
        assert_eq!(table_rows(&data, "SELECT max(number) AS n FROM blocks")[0]["n"], truth.tip_height - 1);

        // Bitcoin Core finishes writing the block: the next run picks it up.
        append(&newest, &whole[cut as usize..]);
        let r = ingest(&sim, &data, false).unwrap();
        assert_eq!((r.resumed_after, r.blocks, r.tip), (Some(truth.tip_height - 1), 1, Some(truth.tip_height)));
        assert!(r.partial_tail.is_none());
        assert_eq!(dump(&data), uninterrupted, "cut at {cut}: the tables equal an uninterrupted run's");
    }
}

#[test]
fn a_record_header_cut_short_at_the_end_of_the_newest_file_is_left_for_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let (truth, files) = simulated_files(&sim, true); // XOR-obfuscated, like Core 28+
    let newest = files.last().unwrap().clone();
    let whole = std::fs::read(&newest).unwrap();
    let (at, _) = *records(&newest).last().unwrap();
    for header_bytes in [1u64, 4, 7] {
        std::fs::write(&newest, &whole[..(at + header_bytes) as usize]).unwrap();
        let data = tmp.path().join(format!("data-{header_bytes}"));
        let r = ingest(&sim, &data, false).unwrap_or_else(|e| panic!("{header_bytes} header bytes: {e}"));
        assert_eq!(r.tip, Some(truth.tip_height - 1));
        let tail = r.partial_tail.clone().expect("the partial header is reported");
        assert_eq!((tail.file.as_path(), tail.offset, tail.bytes), (newest.as_path(), at, header_bytes));
        std::fs::write(&newest, &whole).unwrap();
        let r = ingest(&sim, &data, false).unwrap();
        assert_eq!((r.blocks, r.tip, r.partial_tail), (1, Some(truth.tip_height), None));
    }
}

#[test]
fn a_block_cut_short_anywhere_else_is_an_error_naming_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let (_, files) = simulated_files(&sim, false);
    let data = tmp.path().join("data");

    // The last record of an older file cut short: that file is finished, so this is damage.
    let older = &files[files.len() - 2];
    let name = older.file_name().unwrap().to_str().unwrap();
    let whole = std::fs::read(older).unwrap();
    let (at, len) = *records(older).last().unwrap();
    std::fs::write(older, &whole[..(at + len / 2) as usize]).unwrap();
    let err = ingest(&sim, &data, false).unwrap_err().to_string();
    assert!(err.contains(name) && err.contains(&format!("offset {at}:")) && err.contains("runs past the end"), "{err}");
    // So is a record header cut short there (it used to end the file's scan silently).
    std::fs::write(older, &whole[..(at + 5) as usize]).unwrap();
    let err = ingest(&sim, &data, false).unwrap_err().to_string();
    assert!(err.contains(name) && err.contains(&format!("offset {at}:")) && err.contains("cut short"), "{err}");
    assert_eq!(tracehound_testing::manifest_tip(&data, "bitcoin_regtest"), None, "nothing stored");
    std::fs::write(older, &whole).unwrap();

    // In the newest file, a length running past the end of the file from a record that is not
    // the last one: what follows it is more records, not the rest of a block being written.
    let newest = files.last().unwrap();
    let name = newest.file_name().unwrap().to_str().unwrap();
    let whole = std::fs::read(newest).unwrap();
    let (at, _) = records(newest)[0];
    let mut damaged = whole.clone();
    damaged[at as usize + 4..at as usize + 8].copy_from_slice(&(whole.len() as u32).to_le_bytes());
    std::fs::write(newest, &damaged).unwrap();
    let err = ingest(&sim, &data, false).unwrap_err().to_string();
    assert!(err.contains(name) && err.contains(&format!("offset {at}:")) && err.contains("runs past the end"), "{err}");
}

#[test]
fn a_block_cut_short_by_the_preallocated_padding_of_the_newest_file_is_left_for_the_next_run() {
    // Bitcoin Core preallocates block files (zeros on disk, even when the files are obfuscated):
    // the block it is writing ends in zeros, not at the end of the file.
    for xor in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let sim = tmp.path().join("sim");
        let (truth, files) = simulated_files(&sim, xor);
        let newest = files.last().unwrap().clone();
        let (at, len) = *records(&newest).last().unwrap();
        append(&newest, &[0u8; 5000]);
        let whole = std::fs::read(&newest).unwrap();
        let data = tmp.path().join("data");
        let r = ingest(&sim, &tmp.path().join("reference"), false).unwrap_or_else(|e| panic!("xor {xor}: {e}"));
        assert_eq!((r.tip, r.partial_tail), (Some(truth.tip_height), None), "xor {xor}: padding after whole blocks");

        let mut writing = whole.clone();
        writing[(at + len / 2) as usize..(at + len) as usize].fill(0);
        std::fs::write(&newest, &writing).unwrap();
        let r = ingest(&sim, &data, false).unwrap_or_else(|e| panic!("xor {xor}: {e}"));
        assert_eq!(r.tip, Some(truth.tip_height - 1), "xor {xor}");
        let tail = r.partial_tail.expect("the partial block is reported");
        assert_eq!((tail.file.as_path(), tail.offset), (newest.as_path(), at));
        assert!(tail.bytes > 8 && tail.bytes <= len / 2, "{tail:?}");

        std::fs::write(&newest, &whole).unwrap();
        let r = ingest(&sim, &data, false).unwrap();
        assert_eq!((r.blocks, r.tip, r.partial_tail), (1, Some(truth.tip_height), None), "xor {xor}");
        assert_eq!(dump(&data), dump(&tmp.path().join("reference")), "xor {xor}");
    }
}

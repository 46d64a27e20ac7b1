//! Block-file ingest against real mainnet data (block 702861) and damaged files.

use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
use tracehound_ingest::Error;
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

    // A length running past the end of the file (truncated file).
    let mut truncated = MAINNET.to_vec();
    truncated.extend_from_slice(&(good.len() as u32).to_le_bytes());
    truncated.extend_from_slice(&good[..1000]);
    std::fs::write(blocks.join("blk00001.dat"), &truncated).unwrap();
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

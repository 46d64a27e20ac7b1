//! Explorer CSV exports into the `transfers` table: Etherscan-style and plain layouts, bad rows
//! reported with file and line (and the file not stored unless its good rows are to be kept),
//! failed transactions skipped, and idempotent imports: overlapping exports, corrected
//! re-imports, and any set of files in any order any number of times give the same table.
//!
//! The rows are written here in the exact header layouts Etherscan's "Download CSV Export"
//! produces (normal transactions, ERC-20 token transfers); the addresses are real public
//! addresses of the 2022 Harmony Horizon bridge incident, the amounts made up for the test.

use serde_json::json;
use std::path::Path;
use tracehound_ingest::transfers_csv::{import_transfers_csv, CsvImportOptions};
use tracehound_tables::Store;
use tracehound_testing::table_rows;

const BRIDGE: &str = "0xf9fb1c508ff49f78b60d3a96dea99fa5d7f3a8a6";
const EXPLOITER: &str = "0x0d043128146654c7683fbf30ac98d7b2285ded00";
const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn opts() -> CsvImportOptions {
    CsvImportOptions { chain: "ethereum".into(), decimals: None, keep_good_rows: true }
}

#[test]
fn etherscan_exports_import_with_exact_amounts() {
    let dir = tempfile::tempdir().unwrap();
    let normal = write(
        dir.path(),
        "export-normal.csv",
        &format!(
            "\u{feff}\"Txhash\",\"Blockno\",\"UnixTimestamp\",\"DateTime (UTC)\",\"From\",\"To\",\"ContractAddress\",\"Value_IN(ETH)\",\"Value_OUT(ETH)\",\"CurrentValue @ $1828.62/Eth\",\"TxnFee(ETH)\",\"TxnFee(USD)\",\"Historical $Price/Eth\",\"Status\",\"ErrCode\",\"Method\"\n\
             \"0x{a}\",\"15012701\",\"1655965417\",\"2022-06-23 06:23:37\",\"{BRIDGE}\",\"{EXPLOITER}\",\"\",\"13100.000000000000000001\",\"0\",\"0\",\"0.0021\",\"2.1\",\"1143.39\",\"\",\"\",\"Unlock Eth\"\n\
             \"0x{b}\",\"15012800\",\"1655966000\",\"2022-06-23 06:33:20\",\"{EXPLOITER}\",\"{BRIDGE}\",\"\",\"0\",\"1\",\"0\",\"0.0021\",\"2.1\",\"1143.39\",\"Error(0)\",\"Reverted\",\"Transfer\"\n\
             \"0x{c}\",\"not-a-block\",\"1655966100\",\"2022-06-23 06:35:00\",\"{EXPLOITER}\",\"{BRIDGE}\",\"\",\"0\",\"1\",\"0\",\"0.0021\",\"2.1\",\"1143.39\",\"\",\"\",\"Transfer\"\n",
            a = "1".repeat(64),
            b = "2".repeat(64),
            c = "3".repeat(64)
        ),
    );
    let tokens = write(
        dir.path(),
        "export-tokentxns.csv",
        &format!(
            "\"Txhash\",\"Blockno\",\"UnixTimestamp\",\"DateTime (UTC)\",\"From\",\"To\",\"TokenValue\",\"USDValueDayOfTx\",\"ContractAddress\",\"TokenName\",\"TokenSymbol\"\n\
             \"0x{d}\",\"15012702\",\"1655965500\",\"2022-06-23 06:25:00\",\"{BRIDGE}\",\"{EXPLOITER}\",\"41,200,000.123456\",\"$41,200,000.12\",\"{USDC}\",\"USD Coin\",\"USDC\"\n\
             \"0x{e}\",\"15012703\",\"1655965600\",\"2022-06-23 06:26:40\",\"{BRIDGE}\",\"0x1234\",\"5\",\"$5\",\"{USDC}\",\"USD Coin\",\"USDC\"\n",
            d = "4".repeat(64),
            e = "5".repeat(64)
        ),
    );
    let mut store = Store::open_for_write(dir.path().join("data")).unwrap();
    // A file with a bad row is not stored unless its good rows are to be kept.
    let r = import_transfers_csv(&mut store, &normal, &CsvImportOptions { keep_good_rows: false, ..opts() }).unwrap();
    assert_eq!((r.rows, r.failed_skipped, r.stored, r.added), (1, 1, false, 0));
    assert_eq!(r.bad_rows.len(), 1);
    assert!(store.manifest().imports.is_empty());
    let r = import_transfers_csv(&mut store, &normal, &opts()).unwrap();
    assert_eq!((r.rows, r.failed_skipped, r.stored, r.added), (1, 1, true, 1));
    assert_eq!(r.bad_rows.len(), 1);
    assert!(r.bad_rows[0].ends_with("export-normal.csv:4: block \"not-a-block\" is not a number"), "{:?}", r.bad_rows);

    // Token values in whole units need the token's decimals.
    let r = import_transfers_csv(&mut store, &tokens, &opts()).unwrap();
    assert_eq!(r.rows, 0);
    assert_eq!(r.bad_rows.len(), 2);
    assert!(r.bad_rows[0].contains("export-tokentxns.csv:2: a token amount in whole units needs the token's decimals"), "{:?}", r.bad_rows);
    assert!(r.bad_rows[1].contains("export-tokentxns.csv:3: to \"0x1234\""), "{:?}", r.bad_rows);
    // Nothing was stored, so the corrected import of the same file goes through.
    let r = import_transfers_csv(&mut store, &tokens, &CsvImportOptions { decimals: Some(6), ..opts() }).unwrap();
    assert_eq!((r.rows, r.added, r.already_imported), (1, 1, false));
    assert!(r.bad_rows[0].contains("export-tokentxns.csv:3: to \"0x1234\" is not a 0x address"), "{:?}", r.bad_rows);
    drop(store);

    let rows = table_rows(
        &dir.path().join("data"),
        "SELECT kind, asset, asset_symbol, from_address, to_address, CAST(amount AS VARCHAR) AS amount, amount_raw, source, block_timestamp FROM ethereum.transfers ORDER BY block_number",
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["kind"], json!("native_tx"));
    assert_eq!(rows[0]["asset"], json!("native"));
    assert_eq!(rows[0]["amount_raw"], json!("13100000000000000000001"), "exact: 13100 ETH + 1 wei");
    assert_eq!(rows[0]["amount"], rows[0]["amount_raw"]);
    assert_eq!(rows[0]["source"], json!("import:export-normal.csv"));
    assert_eq!(rows[0]["block_timestamp"], json!(1655965417));
    assert_eq!(rows[1]["kind"], json!("erc20"));
    assert_eq!(rows[1]["asset"], json!(USDC));
    assert_eq!(rows[1]["asset_symbol"], json!("USDC"));
    assert_eq!(rows[1]["amount_raw"], json!("41200000123456"));
    assert_eq!(rows[1]["to_address"], json!(EXPLOITER));
}

#[test]
fn plain_layout_and_idempotent_reimport() {
    let dir = tempfile::tempdir().unwrap();
    let plain = write(
        dir.path(),
        "transfers.csv",
        &format!(
            "TX_HASH,block_number,timestamp,from,to,asset,amount\n\
             0x{a},100,2022-06-23T06:23:37Z,{BRIDGE},{EXPLOITER},native,115792089237316195423570985008687907853269984665640564039457584007913129638936\n\
             0x{a},100,2022-06-23T06:23:37Z,{EXPLOITER},{BRIDGE},{USDC},7\n\
             0x{b},101,1655965500,{EXPLOITER},{BRIDGE},native,1.5\n",
            a = "a".repeat(64),
            b = "b".repeat(64)
        ),
    );
    let data = dir.path().join("data");
    let mut store = Store::open_for_write(&data).unwrap();
    let r = import_transfers_csv(&mut store, &plain, &opts()).unwrap();
    assert_eq!(r.rows, 2);
    assert_eq!(r.bad_rows, vec![format!("{}:4: amount: invalid quantity \"1.5\": only decimal digits are allowed", plain.display())]);
    let before = std::fs::read(data.join("manifest.json")).unwrap();
    let again = import_transfers_csv(&mut store, &plain, &opts()).unwrap();
    assert!(again.already_imported);
    assert_eq!(std::fs::read(data.join("manifest.json")).unwrap(), before, "a second import changes nothing");
    drop(store);
    let rows = table_rows(&data, "SELECT position, kind, amount, amount_raw, block_timestamp FROM transfers ORDER BY position");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get("amount"), None, "2^256-1000 does not fit Decimal128(38,0): null");
    assert_eq!(rows[0]["amount_raw"], json!("115792089237316195423570985008687907853269984665640564039457584007913129638936"));
    assert_eq!(rows[0]["block_timestamp"], json!(1655965417));
    assert_eq!((rows[1]["position"].clone(), rows[1]["kind"].clone()), (json!(1), json!("erc20")));
}

#[test]
fn a_header_without_the_needed_columns_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "x.csv", "hash,from,to\n");
    let mut store = Store::open_for_write(dir.path().join("data")).unwrap();
    let e = import_transfers_csv(&mut store, &f, &opts()).unwrap_err().to_string();
    assert!(e.contains("x.csv: line 1") && e.contains("block") && e.contains("amount"), "{e}");
    assert!(store.manifest().imports.is_empty());
}

/// A plain-layout export of `rows` (tx, block, from, to, asset, amount).
fn plain(rows: &[(&str, u64, &str, &str, &str, &str)]) -> String {
    let mut text = "tx_hash,block_number,timestamp,from,to,asset,amount\n".to_string();
    for (tx, block, from, to, asset, amount) in rows {
        text += &format!("{tx},{block},{},{from},{to},{asset},{amount}\n", 1_600_000_000 + block * 12);
    }
    text
}

fn h(n: u8) -> String {
    format!("0x{}", format!("{n:02x}").repeat(32))
}

fn a(n: u8) -> String {
    format!("0x{}", format!("{n:02x}").repeat(20))
}

/// Every transfer as a sorted bag of its columns.
fn transfers(data: &Path) -> Vec<String> {
    let mut rows: Vec<String> = table_rows(data, "SELECT * FROM transfers").into_iter().map(|r| serde_json::Value::Object(r).to_string()).collect();
    rows.sort();
    rows
}

#[test]
fn overlapping_exports_add_each_transfer_once() {
    let dir = tempfile::tempdir().unwrap();
    let (tx1, tx2, tx3) = (h(1), h(2), h(3));
    let (x, y, z, w) = (a(0xa), a(0xb), a(0xc), a(0xd));
    // Address X's export and address Y's export both list X → Y in tx1.
    let of_x = write(dir.path(), "export-x.csv", &plain(&[(&tx1, 10, &x, &y, "native", "5"), (&tx2, 11, &z, &x, "native", "7")]));
    let of_y = write(dir.path(), "export-y.csv", &plain(&[(&tx1, 10, &x, &y, "native", "5"), (&tx3, 12, &y, &w, USDC, "3")]));
    let data = dir.path().join("data");
    let mut store = Store::open_for_write(&data).unwrap();
    let r = import_transfers_csv(&mut store, &of_x, &opts()).unwrap();
    assert_eq!((r.rows, r.added, r.duplicates), (2, 2, 0));
    let r = import_transfers_csv(&mut store, &of_y, &opts()).unwrap();
    assert_eq!((r.rows, r.added, r.duplicates, r.from_node), (2, 1, 1, 0));
    drop(store);
    let rows = table_rows(&data, "SELECT transaction_hash, amount_raw FROM transfers ORDER BY block_number");
    assert_eq!(rows.len(), 3, "{rows:?}");
    let sum = table_rows(&data, "SELECT CAST(SUM(amount) AS VARCHAR) AS s FROM transfers WHERE asset = 'native'");
    assert_eq!(sum[0]["s"], json!("12"), "X → Y moves 5, not 10");
    // Two identical transfers within one transaction are two transfers: an export listing both
    // adds one more where the other files had one.
    let both = write(dir.path(), "export-z.csv", &plain(&[(&tx1, 10, &x, &y, "native", "5"), (&tx1, 10, &x, &y, "native", "5")]));
    let mut store = Store::open_for_write(&data).unwrap();
    let r = import_transfers_csv(&mut store, &both, &opts()).unwrap();
    assert_eq!((r.rows, r.added, r.duplicates), (2, 1, 1));
    drop(store);
    assert_eq!(table_rows(&data, &format!("SELECT position FROM transfers WHERE transaction_hash = '{tx1}' ORDER BY position")).len(), 2);
}

#[test]
fn a_corrected_file_replaces_what_it_added() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (a(0xa), a(0xb));
    let path = dir.path().join("export.csv");
    // First version: a bad amount on line 3, and line 4 says 9 where the chain says 90.
    std::fs::write(&path, plain(&[(&h(1), 10, &x, &y, "native", "5"), (&h(2), 11, &x, &y, "native", "1.5"), (&h(3), 12, &y, &x, "native", "9")])).unwrap();
    let data = dir.path().join("data");
    let mut store = Store::open_for_write(&data).unwrap();
    let r = import_transfers_csv(&mut store, &path, &CsvImportOptions { keep_good_rows: false, ..opts() }).unwrap();
    assert_eq!((r.stored, r.bad_rows.len()), (false, 1));
    let r = import_transfers_csv(&mut store, &path, &opts()).unwrap();
    assert_eq!((r.stored, r.rows, r.added, r.replaced), (true, 2, 2, false));
    // Corrected: every row good, line 4 fixed.
    std::fs::write(&path, plain(&[(&h(1), 10, &x, &y, "native", "5"), (&h(2), 11, &x, &y, "native", "15"), (&h(3), 12, &y, &x, "native", "90")])).unwrap();
    let r = import_transfers_csv(&mut store, &path, &opts()).unwrap();
    assert_eq!((r.stored, r.rows, r.added, r.replaced, r.duplicates), (true, 3, 1, true, 0));
    assert_eq!(store.manifest().imports["ethereum"].len(), 1, "one file, imported once");
    drop(store);
    let rows = table_rows(&data, "SELECT amount_raw FROM transfers ORDER BY block_number");
    let amounts: Vec<_> = rows.iter().map(|r| r["amount_raw"].clone()).collect();
    assert_eq!(amounts, vec![json!("5"), json!("15"), json!("90")]);
}

#[test]
fn two_files_with_the_same_bytes_give_the_same_table_in_either_order() {
    // Found by the property test below: the second file used to be skipped as "already
    // imported", so which file's name a row carried depended on the order of imports.
    let dir = tempfile::tempdir().unwrap();
    let text = plain(&[(&h(3), 102, &a(0x11), &a(0x20), USDC, "2")]);
    let (f0, f1) = (write(dir.path(), "f0.csv", &text), write(dir.path(), "f1.csv", &text));
    // A third file merged after them reads their stored rows back: each must still name its file.
    let f2 = write(dir.path(), "f2.csv", &plain(&[(&h(4), 103, &a(0x11), &a(0x20), "native", "1")]));
    let mut tables = vec![];
    for (name, order) in [("a", [&f0, &f1, &f2]), ("b", [&f1, &f0, &f2])] {
        let data = dir.path().join(name);
        let mut store = Store::open_for_write(&data).unwrap();
        let reports: Vec<_> = order.iter().map(|f| import_transfers_csv(&mut store, f, &opts()).unwrap()).collect();
        assert!(reports.iter().all(|r| r.stored && !r.already_imported), "{reports:?}");
        drop(store);
        tables.push(transfers(&data));
    }
    assert_eq!(tables[0], tables[1]);
    assert!(
        tables[0].iter().any(|r| r.contains("import:f0.csv")) && !tables[0].iter().any(|r| r.contains("import:f1.csv")),
        "the first file by name gives the row: {:?}",
        tables[0]
    );
}

/// A pool of transfers the random files are drawn from: few transactions, so that identical
/// transfers within a transaction occur.
fn pool_row(k: u8) -> (String, u64, String, String, &'static str, String) {
    let tx = k % 4;
    (h(tx + 1), 100 + tx as u64, a(0x10 + (k % 3)), a(0x20 + (k % 2)), if k.is_multiple_of(5) { USDC } else { "native" }, ((k % 3) as u64 + 1).to_string())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
    /// Importing any set of files in any order, any number of times, gives the same `transfers`:
    /// each transfer as many times as the file listing it most often lists it.
    #[test]
    fn imports_in_any_order_and_number_give_the_same_table(
        files in proptest::collection::vec(proptest::collection::vec(0u8..12, 1..6), 1..5),
        order in proptest::collection::vec(0usize..8, 1..10),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(i, ks)| {
                let rows: Vec<_> = ks.iter().map(|&k| pool_row(k)).collect();
                let refs: Vec<_> = rows.iter().map(|(t, b, f, to, asset, amt)| (t.as_str(), *b, f.as_str(), to.as_str(), *asset, amt.as_str())).collect();
                write(dir.path(), &format!("f{i}.csv"), &plain(&refs))
            })
            .collect();
        // Once each, in name order.
        let once = dir.path().join("once");
        let mut store = Store::open_for_write(&once).unwrap();
        for p in &paths {
            import_transfers_csv(&mut store, p, &opts()).unwrap();
        }
        drop(store);
        // In the random order, with repeats, after importing every file once at the end too.
        let shuffled = dir.path().join("shuffled");
        let mut store = Store::open_for_write(&shuffled).unwrap();
        let sequence: Vec<usize> = order.iter().copied().chain(0..paths.len()).collect();
        for &i in sequence.iter().rev() {
            import_transfers_csv(&mut store, &paths[i % paths.len()], &opts()).unwrap();
        }
        drop(store);
        let want = transfers(&once);
        proptest::prop_assert_eq!(&transfers(&shuffled), &want);
        // The expected multiset: per identity, the largest count any one file has.
        let mut most: std::collections::BTreeMap<(String, String, String, String, String), usize> = Default::default();
        for ks in &files {
            let mut here: std::collections::BTreeMap<_, usize> = Default::default();
            for &k in ks {
                let (t, _, f, to, asset, amt) = pool_row(k);
                *here.entry((t, f, to, asset.to_string(), amt)).or_default() += 1;
            }
            for (key, n) in here {
                let m = most.entry(key).or_default();
                *m = (*m).max(n);
            }
        }
        proptest::prop_assert_eq!(want.len(), most.values().sum::<usize>());
    }
}

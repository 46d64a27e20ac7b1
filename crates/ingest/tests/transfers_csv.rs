//! Explorer CSV exports into the `transfers` table: Etherscan-style and plain layouts, bad rows
//! reported with file and line, failed transactions skipped, idempotent re-import.
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
    CsvImportOptions { chain: "ethereum".into(), decimals: None }
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
    let r = import_transfers_csv(&mut store, &normal, &opts()).unwrap();
    assert_eq!((r.rows, r.failed_skipped), (1, 1));
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
    assert_eq!((r.rows, r.already_imported), (1, false));
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

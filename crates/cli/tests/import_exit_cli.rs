//! Imports that meet bad rows: nothing of the file is stored and the exit status is 3, unless
//! `--keep-good-rows` asks to store the good rows (exit 0); overlapping explorer exports add a
//! shared transfer once, and a corrected file replaces what it added.

use std::path::Path;
use std::process::{Command, Output};

fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracehound")).arg("--data-dir").arg(data).args(args).output().unwrap()
}

fn count(data: &Path, sql: &str) -> u64 {
    let out = run(data, &["sql", sql, "--format", "csv"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().nth(1).unwrap().trim().parse().unwrap()
}

const X: &str = "0x0d043128146654c7683fbf30ac98d7b2285ded00";
const Y: &str = "0xf9fb1c508ff49f78b60d3a96dea99fa5d7f3a8a6";

#[test]
fn transfer_imports_with_bad_rows_exit_3_unless_the_good_rows_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let tx = |n: u8| format!("0x{}", format!("{n:02x}").repeat(32));
    let file = tmp.path().join("export.csv");
    let rows = |amount2: &str| {
        format!(
            "tx_hash,block_number,timestamp,from,to,asset,amount\n{},1,1600000000,{X},{Y},native,5\n{},2,1600000012,{Y},{X},native,{amount2}\n",
            tx(1),
            tx(2)
        )
    };
    std::fs::write(&file, rows("1.5")).unwrap();
    let f = file.to_str().unwrap();
    let out = run(&data, &["import", "transfers", f, "--chain", "ethereum"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("export.csv:3: amount") && stderr.contains("--keep-good-rows"), "{stderr}");
    assert!(run(&data, &["sql", "SELECT count(*) FROM transfers"]).status.code() != Some(0), "nothing was stored");
    let out = run(&data, &["import", "transfers", f, "--chain", "ethereum", "--keep-good-rows"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(count(&data, "SELECT count(*) FROM transfers"), 1);
    // Corrected and imported again: replaced, not added twice.
    std::fs::write(&file, rows("15")).unwrap();
    let out = run(&data, &["import", "transfers", f, "--chain", "ethereum"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("replacing its earlier import"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(count(&data, "SELECT count(*) FROM transfers"), 2);
    // Another export that lists the same X → Y transfer adds it once.
    let other = tmp.path().join("export-of-y.csv");
    std::fs::write(&other, format!("tx_hash,block_number,timestamp,from,to,asset,amount\n{},1,1600000000,{X},{Y},native,5\n", tx(1))).unwrap();
    let out = run(&data, &["import", "transfers", other.to_str().unwrap(), "--chain", "ethereum"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 already imported from other files"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(count(&data, "SELECT count(*) FROM transfers"), 2);
}

#[test]
fn label_imports_with_bad_rows_exit_3_unless_the_good_rows_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let file = tmp.path().join("labels.csv");
    std::fs::write(&file, format!("address,label,category\n{X},Harmony exploiter,hacker\nnot-an-address,Broken,hacker\n")).unwrap();
    let f = file.to_str().unwrap();
    let args = ["labels", "import", "csv", f, "--chain", "ethereum", "--source", "test"];
    let out = run(&data, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("labels.csv") && stderr.contains("--keep-good-rows"), "{stderr}");
    let search = run(&data, &["labels", "search", "Harmony exploiter"]);
    assert!(!String::from_utf8_lossy(&search.stdout).contains(X), "nothing of the file was stored");
    let mut keep = args.to_vec();
    keep.push("--keep-good-rows");
    let out = run(&data, &keep);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let search = run(&data, &["labels", "search", "Harmony exploiter"]);
    assert!(String::from_utf8_lossy(&search.stdout).contains(X), "{}", String::from_utf8_lossy(&search.stdout));
}

/// Trace text shows token amounts a person can read; JSON keeps exact base units.
#[test]
fn token_amounts_read_with_symbol_and_decimals() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let usdc = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
    let file = tmp.path().join("usdc.csv");
    let tx = format!("0x{}", "ab".repeat(32));
    std::fs::write(&file, format!("tx_hash,block_number,timestamp,from,to,asset,amount\n{tx},15012702,1655965500,{Y},{X},{usdc},4505835697678\n")).unwrap();
    let out = run(&data, &["import", "transfers", file.to_str().unwrap(), "--chain", "ethereum"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = run(&data, &["trace", "ethereum", "--from", X]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("4,505,835.697678 USDC"), "{stdout}");
    let json = run(&data, &["trace", "ethereum", "--from", X, "--json"]);
    let json = String::from_utf8_lossy(&json.stdout);
    assert!(json.contains("\"4505835697678\"") && !json.contains("4,505,835"), "{json}");
}

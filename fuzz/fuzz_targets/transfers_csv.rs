//! Fuzzes the explorer CSV import: any file gives a report (bad rows with their line) or an
//! error, never a panic, and the rows it accepts are stored and readable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracehound_ingest::transfers_csv::{import_transfers_csv, CsvImportOptions};

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("tracehound-fuzz-csv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("export.csv");
    std::fs::write(&file, data).unwrap();
    let mut store = tracehound_tables::Store::open_for_write(dir.join("data")).unwrap();
    let opts = CsvImportOptions { chain: "ethereum".into(), decimals: Some(6) };
    if let Ok(r) = import_transfers_csv(&mut store, &file, &opts) {
        let stored: u64 = store.manifest().imports.values().flatten().map(|i| i.file.rows).sum();
        assert_eq!(stored, r.rows);
    }
});

//! Fuzzes the label importers (OFAC sdn.csv, sdn_advanced.xml and address lists, GraphSense
//! TagPacks/ActorPacks, CSV label lists): any input gives a report or an error, never a panic,
//! and a file that fails leaves the store as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;
use tracehound_labels::{CsvImport, LabelStore};

fn store() -> &'static Mutex<LabelStore> {
    static STORE: std::sync::OnceLock<Mutex<LabelStore>> = std::sync::OnceLock::new();
    STORE.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("tracehound-fuzz-labels-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Mutex::new(LabelStore::open(&d.join("labels.sqlite")).unwrap())
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let mut s = store().lock().unwrap();
    let before = s.counts().unwrap().tags;
    let r = match kind % 5 {
        0 => s.import_ofac_bytes("sdn.csv", "sdn.csv", body),
        1 => s.import_ofac_bytes("sdn_advanced.xml", "sdn_advanced.xml", body),
        2 => s.import_ofac_bytes("sanctioned_addresses_XBT.txt", "sanctioned_addresses_XBT.txt", body),
        3 => s.import_tagpack_bytes("pack.yaml", "pack.yaml", body),
        _ => {
            let opts = CsvImport { source: "fuzz".into(), category: None, chain: None, actor: None, confidence: None };
            s.import_csv_bytes("labels.csv", "labels.csv", body, &opts)
        }
    };
    if r.is_err() {
        assert_eq!(s.counts().unwrap().tags, before, "a failed import stored something");
    }
});

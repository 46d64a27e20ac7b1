//! Fuzzes the user inputs of the incident registry: an incident YAML file and a price CSV give
//! an incident / a count or an error naming the file, never a panic; a rejected price file
//! leaves the stored prices as they were.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracehound_report::{Incident, PriceTable};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = Incident::from_yaml(text, "case.yaml") {
            assert!(e.to_string().starts_with("case.yaml"), "{e}");
        }
    }
    let dir = std::env::temp_dir().join(format!("tracehound-fuzz-prices-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prices.csv");
    std::fs::write(&file, data).unwrap();
    let before = PriceTable::load(&dir).unwrap().len();
    match PriceTable::import(&dir, &file, None) {
        Ok(_) => {}
        Err(_) => assert_eq!(PriceTable::load(&dir).unwrap().len(), before),
    }
});

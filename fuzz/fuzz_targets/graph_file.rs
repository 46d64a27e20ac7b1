//! Fuzzes the readers of the graph index and clusters files: damaged or crafted files are
//! refused with an error, never a panic. The body checksum is patched to match, so the fuzzer
//! gets past it to the header, section table and array-length checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracehound_graph::{Clusters, GraphIndex};

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.len() >= 4096 {
        let crc = crc32fast::hash(&bytes[4096..]);
        bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    }
    let d = std::env::temp_dir().join(format!("tracehound-fuzz-graph-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("file.bin");
    std::fs::write(&path, &bytes).unwrap();
    let _ = GraphIndex::open(&path);
    let _ = Clusters::open(&path);
});

//! Fuzzes the readers of the graph index, transfer index and clusters files: damaged or crafted files are
//! refused with an error, never a panic. The file checksum is patched to match, so the fuzzer
//! gets past it to the header, section table and array-length checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracehound_graph::{Clusters, GraphIndex, TransferIndex};

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.len() >= 4096 {
        let crc = tracehound_graph::file::file_checksum(&bytes);
        bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    }
    let d = std::env::temp_dir().join(format!("tracehound-fuzz-graph-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("file.bin");
    std::fs::write(&path, &bytes).unwrap();
    let _ = GraphIndex::open(&path);
    let _ = Clusters::open(&path);
    // A transfer index that opens must also read: every accessor stays inside its arrays.
    if let Ok(t) = TransferIndex::open(&path) {
        for i in 0..t.len().min(1000) as u64 {
            let _ = t.movement(i);
        }
        for a in 0..t.address_count().min(1000) as u32 {
            let _ = (t.address(a), t.movements_of(a).len());
        }
    }
});

//! Fuzzes the block-file reader: the in-memory record parser and the real on-disk path
//! (header scan, best-chain selection, block decoding) must return errors, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tracehound_core::UtxoChain;
use tracehound_ingest::bitcoin::blkfile::{parse_file_bytes, BlockFiles};
use tracehound_ingest::bitcoin::chain::best_chain;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("tracehound-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let magic = UtxoChain::BitcoinRegtest.magic().unwrap();
    let _ = parse_file_bytes(data, magic);
    // The first byte picks whether the file is XOR-obfuscated; the rest is the file.
    let (xor, body) = match data.split_first() {
        Some((x, rest)) if x & 1 == 1 && rest.len() > 8 => (Some(&rest[..8]), &rest[8..]),
        Some((_, rest)) => (None, rest),
        None => return,
    };
    let d = dir();
    std::fs::write(d.join("blk00000.dat"), body).unwrap();
    match xor {
        Some(k) => std::fs::write(d.join("xor.dat"), k).unwrap(),
        None => {
            let _ = std::fs::remove_file(d.join("xor.dat"));
        }
    }
    let Ok(mut files) = BlockFiles::open(d, Some(UtxoChain::BitcoinRegtest)) else { return };
    for skip in [false, true] {
        if let Ok(scan) = files.scan(skip) {
            let chain = best_chain(&scan.blocks);
            let mut buf = vec![];
            for b in chain.blocks.iter().take(50) {
                let _ = files.read_block(b.location, &mut buf);
            }
        }
    }
});

//! Fuzzes the EVM row builder with arbitrary node replies (a block, its receipts and traces as
//! JSON): any input gives rows or an error naming the block and field, never a panic, and a
//! block that fails leaves nothing behind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracehound_ingest::evm::rows::{BlockReplies, EvmRowBuilder, Traces};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let block = v.get("block").cloned().unwrap_or(v.clone());
    let receipts = v.get("receipts").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    let traces = match v.get("traces").and_then(|r| r.as_array()).cloned() {
        Some(t) if v.get("geth").is_some() => Traces::Geth(t),
        Some(t) => Traces::Parity(t),
        None => Traces::None,
    };
    let mut b = EvmRowBuilder::new("fuzz");
    if b.push_block(&BlockReplies { block, receipts, traces }).is_err() {
        assert_eq!(b.pending_rows(), 0, "a failed block left rows behind");
    } else {
        b.finish().expect("rows that were accepted fit their schemas");
    }
});

//! Fuzzes the EVM reply types and the row builder with arbitrary node replies (a block, its
//! receipts and traces as JSON): any input gives rows or an error naming the block and field,
//! never a panic, and a block that fails leaves nothing behind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracehound_ingest::evm::replies::{Block, GethTrace, ParityTrace, Receipt};
use tracehound_ingest::evm::rows::{BlockReplies, EvmRowBuilder, Traces};

#[derive(serde::Deserialize)]
struct Replies<'a> {
    #[serde(borrow)]
    block: Block<'a>,
    #[serde(default, borrow)]
    receipts: Vec<Receipt<'a>>,
    #[serde(borrow)]
    traces: Option<Vec<ParityTrace<'a>>>,
    #[serde(borrow)]
    geth: Option<Vec<GethTrace<'a>>>,
}

fuzz_target!(|data: &[u8]| {
    let Ok(r) = serde_json::from_slice::<Replies>(data) else { return };
    let traces = match (r.traces, r.geth) {
        (_, Some(g)) => Traces::Geth(g),
        (Some(t), None) => Traces::Parity(t),
        (None, None) => Traces::None,
    };
    let mut b = EvmRowBuilder::new("fuzz");
    if b.push_block(BlockReplies { block: r.block, receipts: r.receipts, traces }).is_err() {
        assert_eq!(b.pending_rows(), 0, "a failed block left rows behind");
    } else {
        b.finish().expect("rows that were accepted fit their schemas");
    }
});

//! `cargo bench -p tracehound-bench`: Bitcoin `blk*.dat` → tables, tracehound side by side with
//! bitcoin-block-parser 0.5.3 and blocks_iterator 3.0.0 reading the same simulated regtest chain,
//! each resolving every input to the output it spends. See the crate's README.
//!
//! The peers' `bitcoin` types are theirs (re-exported or reached through their own structs);
//! nothing here names tracehound's `bitcoin` dependency.

use std::path::Path;
use std::process::ExitCode;
use tracehound_bench::{Counts, Tool};

fn main() -> ExitCode {
    tracehound_bench::main(&[Tool { name: "bitcoin-block-parser", run: run_bitcoin_block_parser }, Tool { name: "blocks_iterator", run: run_blocks_iterator }])
}

/// bitcoin-block-parser's `UtxoParser`: a first pass over the chain writes a cuckoo filter of the
/// outputs unspent at the tip to `filter_file`; the second parses blocks on a thread pool, in
/// height order, and pairs every input with the `TxOut` it spends. The magic is not checked;
/// the best chain is followed by previous-block hash from the genesis block.
fn run_bitcoin_block_parser(blocks_dir: &Path, scratch: &Path) -> Result<Counts, String> {
    use bitcoin_block_parser::utxos::{UtxoBlock, UtxoParser};

    let dir = blocks_dir.to_str().ok_or("the blocks directory's path is not UTF-8")?;
    let filter = scratch.join("filter.bin");
    let filter = filter.to_str().ok_or("the scratch directory's path is not UTF-8")?;
    // Initial capacity of the filter (it grows); the default, 250 million, is sized for mainnet.
    let estimated_utxos = (tracehound_bench::blk_bytes(blocks_dir)? / 128).max(1 << 16) as usize;
    let per_block = UtxoParser::new(dir, filter)
        .estimated_utxos(estimated_utxos)
        .parse(|block: UtxoBlock| {
            let (mut txs, mut inputs, mut value) = (0u64, 0u64, 0u64);
            for tx in &block.txdata {
                txs += 1;
                if tx.transaction.is_coinbase() {
                    continue;
                }
                for (_input, prevout) in tx.input() {
                    inputs += 1;
                    value += prevout.value.to_sat();
                }
            }
            (txs, inputs, value)
        })
        .map_err(|e| format!("{e:#}"))?;
    let mut counts = Counts::default();
    let mut value = 0u64;
    for (txs, inputs, v) in per_block {
        counts.blocks += 1;
        counts.transactions += txs;
        counts.inputs_resolved += inputs;
        value += v;
    }
    std::hint::black_box(value);
    Ok(counts)
}

/// blocks_iterator: read + detect (regtest magic), reorder by previous-block hash, txids, then the
/// prevout stage with its in-memory UTXO map (`skip_prevout: false`; no `db` feature, so no
/// RocksDB). Blocks come in height order; the last `max_reorg` (6) are held back.
fn run_blocks_iterator(blocks_dir: &Path, _scratch: &Path) -> Result<Counts, String> {
    use blocks_iterator::bitcoin::Network;
    use blocks_iterator::Config;

    let mut config = Config::new(blocks_dir, Network::Regtest);
    config.skip_prevout = false;
    let mut counts = Counts::default();
    let mut value = 0u64;
    for b in blocks_iterator::try_iter(config).map_err(|e| e.to_string())? {
        let block = b.block();
        let prevouts = b.outpoint_values();
        counts.blocks += 1;
        counts.transactions += block.txdata.len() as u64;
        for tx in block.txdata.iter().skip(1) {
            for input in &tx.input {
                if let Some(out) = prevouts.get(&input.previous_output) {
                    counts.inputs_resolved += 1;
                    value += out.value.to_sat();
                }
            }
        }
    }
    std::hint::black_box(value);
    Ok(counts)
}

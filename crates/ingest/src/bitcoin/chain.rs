//! Picks the best chain among the blocks found in the block files: the one with the most
//! cumulative work. Blocks stored out of height order are linked by their previous-block hash;
//! blocks off the best chain (stale forks, orphans) are skipped and counted.

use super::blkfile::IndexedBlock;
use bitcoin::hashes::Hash;
use bitcoin::pow::Work;
use bitcoin::{BlockHash, Target};
use std::collections::HashMap;

/// The best chain, from its first stored block to its tip.
#[derive(Debug)]
pub struct BestChain {
    /// Blocks from root to tip.
    pub blocks: Vec<IndexedBlock>,
    /// True when the first block is the genesis block (its parent is all zeros).
    pub starts_at_genesis: bool,
    /// Blocks found but not on the best chain.
    pub stale: u64,
}

/// Links `blocks` by parent hash and returns the chain with the most work.
pub fn best_chain(blocks: &[IndexedBlock]) -> BestChain {
    let mut by_hash: HashMap<BlockHash, usize> = HashMap::with_capacity(blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        by_hash.entry(b.hash).or_insert(i); // the same block stored twice counts once
    }
    let unique = by_hash.len() as u64;
    let mut work: Vec<Option<Work>> = vec![None; blocks.len()];
    let mut best: Option<(Work, usize)> = None;
    for start in 0..blocks.len() {
        if by_hash[&blocks[start].hash] != start {
            continue;
        }
        // Walk up to an ancestor whose work is known, then fill in downwards.
        let mut path = vec![];
        let mut cur = Some(start);
        while let Some(i) = cur {
            if work[i].is_some() {
                break;
            }
            path.push(i);
            cur = by_hash.get(&blocks[i].prev).copied();
        }
        let mut acc = cur.and_then(|i| work[i]).unwrap_or(Work::from_le_bytes([0; 32]));
        for &i in path.iter().rev() {
            acc = acc + Target::from_compact(blocks[i].bits).to_work();
            work[i] = Some(acc);
        }
        let w = work[start].expect("filled");
        if best.is_none_or(|(bw, _)| w > bw) {
            best = Some((w, start));
        }
    }
    let mut chain = vec![];
    let mut cur = best.map(|(_, i)| i);
    while let Some(i) = cur {
        chain.push(blocks[i]);
        cur = by_hash.get(&blocks[i].prev).copied();
    }
    chain.reverse();
    let starts_at_genesis = chain.first().is_some_and(|b| b.prev == BlockHash::all_zeros());
    BestChain { stale: unique - chain.len() as u64, blocks: chain, starts_at_genesis }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitcoin::blkfile::BlockLocation;
    use bitcoin::CompactTarget;

    fn h(n: u8) -> BlockHash {
        if n == 0 {
            BlockHash::all_zeros()
        } else {
            BlockHash::from_byte_array([n; 32])
        }
    }
    fn b(hash: u8, prev: u8, bits: u32) -> IndexedBlock {
        IndexedBlock {
            hash: h(hash),
            prev: h(prev),
            bits: CompactTarget::from_consensus(bits),
            location: BlockLocation { file: 0, offset: hash as u64, len: 80 },
        }
    }

    #[test]
    fn links_out_of_order_blocks_and_skips_stale_forks() {
        let easy = 0x207fffff;
        // genesis 1 -> 2 -> 3 -> 4, fork 2 -> 5 (stale), stored shuffled, block 3 stored twice.
        let blocks = [b(3, 2, easy), b(1, 0, easy), b(5, 2, easy), b(4, 3, easy), b(2, 1, easy), b(3, 2, easy)];
        let c = best_chain(&blocks);
        assert!(c.starts_at_genesis);
        assert_eq!(c.blocks.iter().map(|b| b.hash).collect::<Vec<_>>(), vec![h(1), h(2), h(3), h(4)]);
        assert_eq!(c.stale, 1);
    }

    #[test]
    fn most_work_wins_over_most_blocks() {
        let (easy, hard) = (0x207fffff, 0x1d00ffff);
        let blocks = [b(1, 0, easy), b(2, 1, easy), b(3, 2, easy), b(4, 1, hard)];
        let c = best_chain(&blocks);
        assert_eq!(c.blocks.iter().map(|b| b.hash).collect::<Vec<_>>(), vec![h(1), h(4)]);
        assert_eq!(c.stale, 2);
    }

    #[test]
    fn pruned_start_is_not_genesis() {
        let easy = 0x207fffff;
        let c = best_chain(&[b(8, 7, easy), b(9, 8, easy)]);
        assert!(!c.starts_at_genesis);
        assert_eq!(c.blocks.len(), 2);
    }
}

//! Picks the best chain among the blocks found in the block files: the one with the most
//! cumulative work. Blocks stored out of height order are linked by their previous-block hash;
//! blocks off the best chain (stale forks, orphans) are skipped and counted.

use super::blkfile::IndexedBlock;
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, CompactTarget, Target};
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

/// Cumulative chain work as little-endian 64-bit limbs (compared from the most significant).
type Work = [u64; 4];

/// The work of one block as Bitcoin Core's `GetBlockProof` counts it: zero for a negative,
/// overflowing or zero target (such headers can only come from damaged or hostile files).
fn block_work(bits: CompactTarget) -> Work {
    let c = bits.to_consensus();
    let exponent = c >> 24;
    let mantissa = c & 0x007f_ffff;
    let negative = c & 0x0080_0000 != 0 && mantissa != 0;
    let overflow = mantissa != 0 && (exponent > 34 || (mantissa > 0xff && exponent > 33) || (mantissa > 0xffff && exponent > 32));
    let target = Target::from_compact(bits);
    if negative || overflow || target == Target::ZERO {
        return [0; 4];
    }
    let bytes = target.to_work().to_le_bytes();
    std::array::from_fn(|i| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes")))
}

/// Adds work, saturating instead of overflowing.
fn add_work(a: Work, b: Work) -> Work {
    let mut out = [0u64; 4];
    let mut carry = false;
    for i in 0..4 {
        let (s1, c1) = a[i].overflowing_add(b[i]);
        let (s2, c2) = s1.overflowing_add(carry as u64);
        out[i] = s2;
        carry = c1 || c2;
    }
    if carry {
        [u64::MAX; 4]
    } else {
        out
    }
}

fn more_work(a: &Work, b: &Work) -> bool {
    a.iter().rev().cmp(b.iter().rev()) == std::cmp::Ordering::Greater
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
        let mut acc = cur.and_then(|i| work[i]).unwrap_or([0; 4]);
        for &i in path.iter().rev() {
            acc = add_work(acc, block_work(blocks[i].bits));
            work[i] = Some(acc);
        }
        let w = work[start].expect("filled");
        if best.is_none_or(|(bw, _)| more_work(&w, &bw)) {
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
    fn hostile_targets_neither_panic_nor_win() {
        // Zero, negative and overflowing compact targets count no work; sums saturate.
        for bits in [0, 0x0180_0001, 0xff7f_ffff, 0x2300_ffff, 0x2101_0000] {
            let c = best_chain(&[b(1, 0, 0x207fffff), b(2, 1, bits), b(3, 2, bits)]);
            // Blocks worth nothing add nothing: the genesis block alone has as much work.
            assert_eq!(c.blocks[0].hash, h(1), "bits {bits:08x}");
        }
        assert_eq!(add_work([u64::MAX; 4], [1, 0, 0, 0]), [u64::MAX; 4]);
        let strong = best_chain(&[b(1, 0, 0x207fffff), b(2, 1, 0x1d00ffff), b(3, 1, 0x207fffff), b(4, 3, 0x207fffff)]);
        assert_eq!(strong.blocks.last().unwrap().hash, h(2));
    }

    #[test]
    fn pruned_start_is_not_genesis() {
        let easy = 0x207fffff;
        let c = best_chain(&[b(8, 7, easy), b(9, 8, easy)]);
        assert!(!c.starts_at_genesis);
        assert_eq!(c.blocks.len(), 2);
    }
}

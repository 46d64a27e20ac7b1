//! The unspent-output map that resolves inputs while ingesting.
//!
//! Memory per unspent output: a 16-byte key (the first 12 bytes of the txid and the output
//! index), an 8-byte value and a 40-byte compact script (standard templates keep only their hash
//! or key; other scripts are boxed), 64 bytes plus one control byte in a hash table kept at most
//! 87.5 % full: about 73-146 bytes per unspent output depending on where the table is in its
//! growth cycle. Memory grows with the unspent set, never with history.
//!
//! The map is split into [`SHARDS`] hash tables by txid bits the tables' own hash does not use.
//! A table that grows copies itself into one twice its size; one big table briefly holds the old
//! and the new copy (1.5× the map, over 100 MB on a 1M-transaction chain), while a shard's growth
//! holds a 64th of that. The shards also grow at different moments, so their spare capacity
//! averages out instead of doubling all at once.

use bitcoin::{OutPoint, Script, ScriptBuf, Txid};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// An output being spent: its value and script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prevout {
    /// Value in satoshi.
    pub value: u64,
    /// The output script.
    pub script: ScriptBuf,
}

/// Where inputs find the outputs they spend.
pub trait PrevoutSource {
    /// Removes and returns the output `outpoint` spends, if known.
    fn spend(&mut self, outpoint: &OutPoint) -> Option<Prevout>;
    /// Records a new output.
    fn add(&mut self, txid: &Txid, vout: u32, value: u64, script: &Script);
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Key([u8; 12], u32);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let lo = u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"));
        state.write_u64(lo ^ (self.1 as u64).rotate_left(29));
    }
}

/// txids are already uniformly random: one multiply spreads them over all 64 bits.
#[derive(Default, Clone, Copy)]
struct TxidHasher(u64);
impl Hasher for TxidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
#[derive(Default, Clone, Copy)]
struct BuildTxidHasher;
impl BuildHasher for BuildTxidHasher {
    type Hasher = TxidHasher;
    fn build_hasher(&self) -> TxidHasher {
        TxidHasher(0)
    }
}

/// An output script in as few bytes as its template allows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CompactScript {
    P2pkh([u8; 20]),
    P2sh([u8; 20]),
    P2wpkh([u8; 20]),
    P2wsh([u8; 32]),
    P2tr([u8; 32]),
    Other(Box<[u8]>),
}

impl CompactScript {
    fn new(s: &Script) -> CompactScript {
        let b = s.as_bytes();
        if s.is_p2pkh() {
            CompactScript::P2pkh(b[3..23].try_into().expect("20"))
        } else if s.is_p2sh() {
            CompactScript::P2sh(b[2..22].try_into().expect("20"))
        } else if s.is_p2wpkh() {
            CompactScript::P2wpkh(b[2..22].try_into().expect("20"))
        } else if s.is_p2wsh() {
            CompactScript::P2wsh(b[2..34].try_into().expect("32"))
        } else if s.is_p2tr() {
            CompactScript::P2tr(b[2..34].try_into().expect("32"))
        } else {
            CompactScript::Other(b.into())
        }
    }

    fn script(&self) -> ScriptBuf {
        let mut v = Vec::with_capacity(35);
        match self {
            CompactScript::P2pkh(h) => {
                v.extend_from_slice(&[0x76, 0xa9, 0x14]);
                v.extend_from_slice(h);
                v.extend_from_slice(&[0x88, 0xac]);
            }
            CompactScript::P2sh(h) => {
                v.extend_from_slice(&[0xa9, 0x14]);
                v.extend_from_slice(h);
                v.push(0x87);
            }
            CompactScript::P2wpkh(h) => {
                v.extend_from_slice(&[0x00, 0x14]);
                v.extend_from_slice(h);
            }
            CompactScript::P2wsh(h) => {
                v.extend_from_slice(&[0x00, 0x20]);
                v.extend_from_slice(h);
            }
            CompactScript::P2tr(h) => {
                v.extend_from_slice(&[0x51, 0x20]);
                v.extend_from_slice(h);
            }
            CompactScript::Other(b) => v.extend_from_slice(b),
        }
        ScriptBuf::from_bytes(v)
    }
}

/// Number of hash tables the map is split into (see the module docs).
pub const SHARDS: usize = 64;

type Shard = HashMap<Key, (u64, CompactScript), BuildTxidHasher>;

/// The unspent outputs of the chain ingested so far.
pub struct UtxoMap {
    shards: Vec<Shard>,
}

impl Default for UtxoMap {
    fn default() -> UtxoMap {
        UtxoMap { shards: (0..SHARDS).map(|_| Shard::default()).collect() }
    }
}

impl UtxoMap {
    /// An empty map.
    pub fn new() -> UtxoMap {
        UtxoMap::default()
    }
    /// Number of unspent outputs held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }
    /// True when no output is held.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(HashMap::is_empty)
    }
    /// Bytes of one table slot (key, value and compact script), without the hash table's spare capacity.
    pub const SLOT_BYTES: usize = std::mem::size_of::<(Key, (u64, CompactScript))>() + 1;

    /// The outpoint's key and the shard that holds it: the shard comes from txid bytes 8..12,
    /// which the key's hash (bytes 0..8 and the index) leaves out.
    fn locate(&mut self, txid: &Txid, vout: u32) -> (Key, &mut Shard) {
        let bytes: &[u8; 32] = txid.as_ref();
        let key = Key(bytes[..12].try_into().expect("12"), vout);
        let shard = u32::from_le_bytes(bytes[8..12].try_into().expect("4")) as usize % SHARDS;
        (key, &mut self.shards[shard])
    }
}

impl PrevoutSource for UtxoMap {
    fn spend(&mut self, outpoint: &OutPoint) -> Option<Prevout> {
        let (key, shard) = self.locate(&outpoint.txid, outpoint.vout);
        shard.remove(&key).map(|(value, script)| Prevout { value, script: script.script() })
    }
    fn add(&mut self, txid: &Txid, vout: u32, value: u64, script: &Script) {
        let (key, shard) = self.locate(txid, vout);
        shard.insert(key, (value, CompactScript::new(script)));
    }
}

// The memory figure in the module docs holds: a slot never grows past 65 bytes.
const _: () = assert!(UtxoMap::SLOT_BYTES <= 65);

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;
    use proptest::prelude::*;

    #[test]
    fn compact_scripts_roundtrip_every_template() {
        let scripts = [
            "76a914b5cd7aaed869cd5ccb45868e8666e7e934a2373688ac",
            "a914748284390f9e263a4b766a75d0633c50426eb87587",
            "0014751e76e8199196d454941c45d1b3a323f1433bd6",
            "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
            "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
            "6a0b68656c6c6f20776f726c64",
            "",
        ];
        let mut m = UtxoMap::new();
        let txid = Txid::from_byte_array([7; 32]);
        for (i, s) in scripts.iter().enumerate() {
            m.add(&txid, i as u32, i as u64 * 1000, &ScriptBuf::from_bytes(hex::decode(s).unwrap()));
        }
        assert_eq!(m.len(), scripts.len());
        for (i, s) in scripts.iter().enumerate() {
            let p = m.spend(&OutPoint { txid, vout: i as u32 }).unwrap();
            assert_eq!((p.value, hex::encode(p.script.as_bytes())), (i as u64 * 1000, s.to_string()));
        }
        assert!(m.spend(&OutPoint { txid, vout: 0 }).is_none(), "an output is spent once");
        assert!(m.is_empty());
    }

    /// An add (txid from a pool, index, value, script) or a spend of an outpoint.
    #[derive(Debug, Clone)]
    enum Op {
        Add(usize, u32, u64, Vec<u8>),
        Spend(usize, u32),
    }

    fn script() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            any::<[u8; 20]>().prop_map(|h| [&[0x76, 0xa9, 0x14][..], &h, &[0x88, 0xac]].concat()),
            any::<[u8; 20]>().prop_map(|h| [&[0xa9, 0x14][..], &h, &[0x87]].concat()),
            any::<[u8; 20]>().prop_map(|h| [&[0x00, 0x14][..], &h].concat()),
            any::<[u8; 32]>().prop_map(|h| [&[0x00, 0x20][..], &h].concat()),
            any::<[u8; 32]>().prop_map(|h| [&[0x51, 0x20][..], &h].concat()),
            proptest::collection::vec(any::<u8>(), 0..80),
        ]
    }

    proptest! {
        /// The sharded map answers every spend exactly as one plain hash map of whole outpoints
        /// does, and holds as many outputs.
        #[test]
        fn sharded_map_agrees_with_a_plain_map(
            txids in proptest::collection::vec(any::<[u8; 32]>(), 1..40),
            ops in proptest::collection::vec(prop_oneof![
                (0..40usize, 0..4u32, any::<u64>(), script()).prop_map(|(t, v, value, s)| Op::Add(t, v, value, s)),
                (0..40usize, 0..4u32).prop_map(|(t, v)| Op::Spend(t, v)),
            ], 0..400),
        ) {
            let txids: Vec<Txid> = txids.iter().map(|b| Txid::from_byte_array(*b)).collect();
            let mut sharded = UtxoMap::new();
            let mut plain: std::collections::HashMap<OutPoint, (u64, Vec<u8>)> = Default::default();
            for op in ops {
                match op {
                    Op::Add(t, vout, value, s) => {
                        let txid = txids[t % txids.len()];
                        sharded.add(&txid, vout, value, Script::from_bytes(&s));
                        plain.insert(OutPoint { txid, vout }, (value, s));
                    }
                    Op::Spend(t, vout) => {
                        let outpoint = OutPoint { txid: txids[t % txids.len()], vout };
                        let got = sharded.spend(&outpoint).map(|p| (p.value, p.script.into_bytes()));
                        prop_assert_eq!(got, plain.remove(&outpoint));
                    }
                }
                prop_assert_eq!(sharded.len(), plain.len());
            }
        }
    }
}

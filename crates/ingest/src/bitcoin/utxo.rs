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

/// An outpoint as the map keys it: the first 12 bytes of the txid and the output index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(pub(crate) [u8; 12], pub(crate) u32);

impl Key {
    pub(crate) fn new(txid: &Txid, vout: u32) -> Key {
        let bytes: &[u8; 32] = txid.as_ref();
        Key(bytes[..12].try_into().expect("12"), vout)
    }

    /// The shard that holds the key: from txid bytes 8..12, which the key's hash (bytes 0..8
    /// and the index) leaves out.
    pub(crate) fn shard(&self) -> usize {
        u32::from_le_bytes(self.0[8..12].try_into().expect("4")) as usize % SHARDS
    }

    /// The order of spill files: shard first, so that a shard's entries can be written alone.
    pub(crate) fn order(&self) -> (u8, [u8; 12], u32) {
        (self.shard() as u8, self.0, self.1)
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let lo = u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"));
        state.write_u64(lo ^ (self.1 as u64).rotate_left(29));
    }
}

/// txids are already uniformly random: one multiply spreads them over all 64 bits.
#[derive(Default, Clone, Copy)]
pub(crate) struct TxidHasher(u64);
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
pub(crate) struct BuildTxidHasher;
impl BuildHasher for BuildTxidHasher {
    type Hasher = TxidHasher;
    fn build_hasher(&self) -> TxidHasher {
        TxidHasher(0)
    }
}

/// An output script in as few bytes as its template allows, with the epoch (insertion order, in
/// steps of [`UtxoMap`]'s epoch counter) the output was recorded in. The epoch sits in what would
/// otherwise be the enum's padding, so it costs no memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CompactScript {
    P2pkh(u32, [u8; 20]),
    P2sh(u32, [u8; 20]),
    P2wpkh(u32, [u8; 20]),
    P2wsh(u32, [u8; 32]),
    P2tr(u32, [u8; 32]),
    Other(u32, Box<[u8]>),
}

impl CompactScript {
    pub(crate) fn new(s: &Script, epoch: u32) -> CompactScript {
        let b = s.as_bytes();
        if s.is_p2pkh() {
            CompactScript::P2pkh(epoch, b[3..23].try_into().expect("20"))
        } else if s.is_p2sh() {
            CompactScript::P2sh(epoch, b[2..22].try_into().expect("20"))
        } else if s.is_p2wpkh() {
            CompactScript::P2wpkh(epoch, b[2..22].try_into().expect("20"))
        } else if s.is_p2wsh() {
            CompactScript::P2wsh(epoch, b[2..34].try_into().expect("32"))
        } else if s.is_p2tr() {
            CompactScript::P2tr(epoch, b[2..34].try_into().expect("32"))
        } else {
            CompactScript::Other(epoch, b.into())
        }
    }

    /// The epoch the output was recorded in.
    pub(crate) fn epoch(&self) -> u32 {
        match self {
            CompactScript::P2pkh(e, _) | CompactScript::P2sh(e, _) | CompactScript::P2wpkh(e, _) => *e,
            CompactScript::P2wsh(e, _) | CompactScript::P2tr(e, _) => *e,
            CompactScript::Other(e, _) => *e,
        }
    }

    /// The template (0-5, the order of the variants) and the bytes that template keeps: how
    /// spill files store a script.
    pub(crate) fn parts(&self) -> (u8, &[u8]) {
        match self {
            CompactScript::P2pkh(_, h) => (0, h),
            CompactScript::P2sh(_, h) => (1, h),
            CompactScript::P2wpkh(_, h) => (2, h),
            CompactScript::P2wsh(_, h) => (3, h),
            CompactScript::P2tr(_, h) => (4, h),
            CompactScript::Other(_, b) => (5, b),
        }
    }

    /// Heap bytes the script holds besides its slot (non-standard scripts only), with the
    /// allocator's rounding.
    pub(crate) fn heap_bytes(&self) -> u64 {
        match self {
            CompactScript::Other(_, b) if !b.is_empty() => (b.len() as u64).div_ceil(16) * 16 + 16,
            _ => 0,
        }
    }

    /// The full script of template `kind` kept as `bytes` (see [`CompactScript::parts`]).
    pub(crate) fn script_of(kind: u8, bytes: &[u8]) -> ScriptBuf {
        let mut v = Vec::with_capacity(35);
        match kind {
            0 => {
                v.extend_from_slice(&[0x76, 0xa9, 0x14]);
                v.extend_from_slice(bytes);
                v.extend_from_slice(&[0x88, 0xac]);
            }
            1 => {
                v.extend_from_slice(&[0xa9, 0x14]);
                v.extend_from_slice(bytes);
                v.push(0x87);
            }
            2 => {
                v.extend_from_slice(&[0x00, 0x14]);
                v.extend_from_slice(bytes);
            }
            3 => {
                v.extend_from_slice(&[0x00, 0x20]);
                v.extend_from_slice(bytes);
            }
            4 => {
                v.extend_from_slice(&[0x51, 0x20]);
                v.extend_from_slice(bytes);
            }
            _ => v.extend_from_slice(bytes),
        }
        ScriptBuf::from_bytes(v)
    }

    fn script(&self) -> ScriptBuf {
        let (kind, bytes) = self.parts();
        CompactScript::script_of(kind, bytes)
    }
}

/// Number of hash tables the map is split into (see the module docs).
pub const SHARDS: usize = 64;

pub(crate) type Shard = HashMap<Key, (u64, CompactScript), BuildTxidHasher>;

/// An empty shard with room for `capacity` entries.
pub(crate) fn shard_with_capacity(capacity: usize) -> Shard {
    Shard::with_capacity_and_hasher(capacity, BuildTxidHasher)
}

/// The unspent outputs of the chain ingested so far.
pub struct UtxoMap {
    pub(crate) shards: Vec<Shard>,
    /// The epoch new outputs are recorded in (see [`CompactScript`]).
    pub(crate) epoch: u32,
}

impl Default for UtxoMap {
    fn default() -> UtxoMap {
        UtxoMap { shards: (0..SHARDS).map(|_| Shard::default()).collect(), epoch: 0 }
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

    /// Removes and returns the entry of `key`.
    pub(crate) fn remove(&mut self, key: &Key) -> Option<(u64, CompactScript)> {
        self.shards[key.shard()].remove(key)
    }

    /// Records an output in the current epoch; returns the entry it replaces and the heap bytes
    /// of the new entry's script.
    pub(crate) fn insert(&mut self, key: Key, value: u64, script: &Script) -> (Option<(u64, CompactScript)>, u64) {
        let compact = CompactScript::new(script, self.epoch);
        let heap = compact.heap_bytes();
        (self.shards[key.shard()].insert(key, (value, compact)), heap)
    }

    /// Whether `key` is held.
    pub(crate) fn contains(&self, key: &Key) -> bool {
        self.shards[key.shard()].contains_key(key)
    }
}

/// A spent entry as the output it was.
pub(crate) fn prevout((value, script): (u64, CompactScript)) -> Prevout {
    Prevout { value, script: script.script() }
}

impl PrevoutSource for UtxoMap {
    fn spend(&mut self, outpoint: &OutPoint) -> Option<Prevout> {
        self.remove(&Key::new(&outpoint.txid, outpoint.vout)).map(prevout)
    }
    fn add(&mut self, txid: &Txid, vout: u32, value: u64, script: &Script) {
        self.insert(Key::new(txid, vout), value, script);
    }
}

// The memory figure in the module docs holds: a slot never grows past 65 bytes.
const _: () = assert!(UtxoMap::SLOT_BYTES <= 65);

#[cfg(test)]
pub(crate) mod tests {
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

    /// Output scripts of every compact template, and any bytes.
    pub(crate) fn script() -> impl Strategy<Value = Vec<u8>> {
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

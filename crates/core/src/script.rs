//! Output script classification and addresses, following Bitcoin Core's `Solver` and the
//! bitcoin-etl / BigQuery `crypto_bitcoin` conventions:
//! P2PK outputs get the P2PKH address of their key; bare multisig gets the P2PKH address of every
//! key; scripts without an address (OP_RETURN, nonstandard) get `nonstandard` + the first 40 hex
//! digits of the script's SHA-256, so every output has a stable address-like key.

use crate::chain::AddressParams;
use bitcoin::hashes::{hash160, sha256, Hash};
use bitcoin::opcodes::all::{OP_CHECKMULTISIG, OP_CHECKSIG, OP_RETURN};
use bitcoin::script::{Instruction, Script};

/// The kind of an output script, named as Bitcoin Core's `scriptPubKey.type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptType {
    /// Pay to public key (`<pubkey> OP_CHECKSIG`).
    PubKey,
    /// Pay to public key hash (P2PKH).
    PubKeyHash,
    /// Pay to script hash (P2SH).
    ScriptHash,
    /// Bare `m`-of-`n` multisig.
    Multisig,
    /// `OP_RETURN` data carrier.
    NullData,
    /// Segwit v0 key hash (P2WPKH).
    WitnessV0KeyHash,
    /// Segwit v0 script hash (P2WSH).
    WitnessV0ScriptHash,
    /// Taproot (P2TR).
    WitnessV1Taproot,
    /// Pay-to-anchor (`OP_1 0x4e73`).
    Anchor,
    /// A witness program of a version or length with no meaning yet.
    WitnessUnknown,
    /// Anything else.
    NonStandard,
}

impl ScriptType {
    /// Every script type, in a fixed order (its position is a stable one-byte code).
    pub const ALL: [ScriptType; 11] = [
        ScriptType::PubKey,
        ScriptType::PubKeyHash,
        ScriptType::ScriptHash,
        ScriptType::Multisig,
        ScriptType::NullData,
        ScriptType::WitnessV0KeyHash,
        ScriptType::WitnessV0ScriptHash,
        ScriptType::WitnessV1Taproot,
        ScriptType::Anchor,
        ScriptType::WitnessUnknown,
        ScriptType::NonStandard,
    ];

    /// The type of Bitcoin Core's name `name`, if it is one.
    pub fn from_name(name: &str) -> Option<ScriptType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Bitcoin Core's name of the type (`pubkeyhash`, `witness_v0_keyhash`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptType::PubKey => "pubkey",
            ScriptType::PubKeyHash => "pubkeyhash",
            ScriptType::ScriptHash => "scripthash",
            ScriptType::Multisig => "multisig",
            ScriptType::NullData => "nulldata",
            ScriptType::WitnessV0KeyHash => "witness_v0_keyhash",
            ScriptType::WitnessV0ScriptHash => "witness_v0_scripthash",
            ScriptType::WitnessV1Taproot => "witness_v1_taproot",
            ScriptType::Anchor => "anchor",
            ScriptType::WitnessUnknown => "witness_unknown",
            ScriptType::NonStandard => "nonstandard",
        }
    }
}

/// What an output script says about who can spend it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptInfo {
    /// Kind of script.
    pub kind: ScriptType,
    /// Addresses in the chain's own encoding (see the module docs for P2PK, multisig, nonstandard).
    pub addresses: Vec<String>,
    /// Signatures needed to spend (`m` of a multisig, 1 for single-key types), unknown for nonstandard.
    pub required_signatures: Option<u32>,
}

/// The kind of an output script and the signatures it needs, without its addresses
/// ([`classify_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptClass {
    /// Kind of script.
    pub kind: ScriptType,
    /// Signatures needed to spend (`m` of a multisig, 1 for single-key types), unknown for nonstandard.
    pub required_signatures: Option<u32>,
}

/// Classifies `script` and derives its addresses with `params`.
pub fn classify(script: &Script, params: &AddressParams) -> ScriptInfo {
    let mut addresses = Vec::with_capacity(1);
    let class = classify_with(script, params, &mut String::new(), |a| addresses.push(a.to_string()));
    ScriptInfo { kind: class.kind, addresses, required_signatures: class.required_signatures }
}

/// Classifies `script` as [`classify`] does, handing each address to `address` as soon as it is
/// written into `scratch`. Ingest reuses one `scratch` for every output, so no address allocates.
pub fn classify_with(script: &Script, params: &AddressParams, scratch: &mut String, address: impl FnMut(&str)) -> ScriptClass {
    let b = script.as_bytes();
    let mut out = AddressOut { scratch, address };
    let single = |kind| ScriptClass { kind, required_signatures: Some(1) };
    let nonstandard = |kind, out: &mut AddressOut<'_, _>| {
        out.emit(|s| write_nonstandard_address(b, s));
        ScriptClass { kind, required_signatures: None }
    };
    if script.is_p2pkh() {
        out.emit(|s| key_hash_address(params, &b[3..23], s));
        return single(ScriptType::PubKeyHash);
    }
    if script.is_p2sh() {
        out.emit(|s| script_hash_address(params, &b[2..22], s));
        return single(ScriptType::ScriptHash);
    }
    if let Some((version, program)) = witness_program(b) {
        let kind = match (version, program.len()) {
            (0, 20) => ScriptType::WitnessV0KeyHash,
            (0, 32) => ScriptType::WitnessV0ScriptHash,
            (0, _) => return nonstandard(ScriptType::NonStandard, &mut out),
            (1, 32) => ScriptType::WitnessV1Taproot,
            (1, 2) if program == [0x4e, 0x73] => ScriptType::Anchor,
            _ => ScriptType::WitnessUnknown,
        };
        let Some(hrp) = params.bech32_hrp.filter(|hrp| segwit_encodable(hrp, version, program)) else {
            return nonstandard(kind, &mut out);
        };
        out.emit(|s| segwit(hrp, version, program, s));
        return single(kind);
    }
    if let Some(pk) = p2pk_key(b) {
        out.emit(|s| key_hash_address(params, hash160::Hash::hash(pk).as_byte_array(), s));
        return single(ScriptType::PubKey);
    }
    if let Some((m, keys)) = multisig(script) {
        for k in keys {
            out.emit(|s| key_hash_address(params, hash160::Hash::hash(k).as_byte_array(), s));
        }
        return ScriptClass { kind: ScriptType::Multisig, required_signatures: Some(m) };
    }
    if b.first() == Some(&OP_RETURN.to_u8()) && Script::from_bytes(&b[1..]).is_push_only() {
        return nonstandard(ScriptType::NullData, &mut out);
    }
    nonstandard(ScriptType::NonStandard, &mut out)
}

/// Where [`classify_with`] writes each address (`scratch`, reused) and whom it hands it to.
struct AddressOut<'a, F: FnMut(&str)> {
    scratch: &'a mut String,
    address: F,
}

impl<F: FnMut(&str)> AddressOut<'_, F> {
    /// Writes one address with `write` and hands it on.
    fn emit(&mut self, write: impl FnOnce(&mut String)) {
        self.scratch.clear();
        write(self.scratch);
        (self.address)(self.scratch);
    }
}

/// bitcoin-etl's address for a script that has none: `nonstandard` + sha256(script)[..20] in hex.
pub fn nonstandard_address(script: &[u8]) -> String {
    let mut s = String::with_capacity(51);
    write_nonstandard_address(script, &mut s);
    s
}

/// Appends [`nonstandard_address`] of `script` to `out`.
fn write_nonstandard_address(script: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let h = sha256::Hash::hash(script);
    out.push_str("nonstandard");
    for byte in &h.as_byte_array()[..20] {
        out.push(HEX[(byte >> 4) as usize] as char);
        out.push(HEX[(byte & 15) as usize] as char);
    }
}

/// The CashAddr spelling (`bitcoincash:q…` / `bitcoincash:p…`) of a Bitcoin Cash address written
/// in the legacy base58 form (`1…` / `3…`), if `legacy` is a valid one.
pub fn legacy_to_cashaddr(legacy: &str) -> Option<String> {
    let bytes = bs58::decode(legacy).into_vec().ok()?;
    if bytes.len() != 25 {
        return None;
    }
    let check = bitcoin::hashes::sha256d::Hash::hash(&bytes[..21]);
    if bytes[21..] != check.as_byte_array()[..4] {
        return None;
    }
    let kind = match bytes[0] {
        0x00 => 0,
        0x05 => 1,
        _ => return None,
    };
    let mut address = String::with_capacity(54);
    cashaddr("bitcoincash", kind, &bytes[1..21], &mut address);
    Some(address)
}

/// Appends the address of a 20-byte public key hash: CashAddr on Bitcoin Cash, base58check elsewhere.
fn key_hash_address(params: &AddressParams, hash: &[u8], out: &mut String) {
    match params.cashaddr_prefix {
        Some(prefix) => cashaddr(prefix, 0, hash, out),
        None => base58(params.pubkey_hash, hash, out),
    }
}

/// Appends the address of a 20-byte script hash: CashAddr on Bitcoin Cash, base58check elsewhere.
fn script_hash_address(params: &AddressParams, hash: &[u8], out: &mut String) {
    match params.cashaddr_prefix {
        Some(prefix) => cashaddr(prefix, 1, hash, out),
        None => base58(params.script_hash, hash, out),
    }
}

/// CashAddr (Bitcoin Cash's address format, spec `cashaddr.md`): `prefix:` then the base32 of
/// a version byte (`kind << 3`, size bits 0 for a 160-bit hash) and the hash, then a 40-bit
/// BCH-code checksum over the prefix and payload. Appended to `out`.
fn cashaddr(prefix: &str, kind: u8, hash: &[u8], out: &mut String) {
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let mut payload = Vec::with_capacity(1 + hash.len());
    payload.push(kind << 3);
    payload.extend_from_slice(hash);
    // 8-bit groups to 5-bit groups, zero-padded at the end.
    let mut data = Vec::with_capacity(payload.len() * 8 / 5 + 9);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in payload {
        acc = (acc << 8) | byte as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            data.push(((acc >> bits) & 31) as u8);
        }
    }
    if bits > 0 {
        data.push(((acc << (5 - bits)) & 31) as u8);
    }
    let mut check_input: Vec<u8> = prefix.bytes().map(|c| c & 31).collect();
    check_input.push(0);
    check_input.extend_from_slice(&data);
    check_input.extend_from_slice(&[0; 8]);
    let checksum = cashaddr_polymod(&check_input);
    out.push_str(prefix);
    out.push(':');
    out.extend(data.iter().map(|&d| CHARSET[d as usize] as char));
    out.extend((0..8).map(|i| CHARSET[((checksum >> (5 * (7 - i))) & 31) as usize] as char));
}

/// The BCH-code checksum of CashAddr over 5-bit `values` (the spec's `PolyMod`).
fn cashaddr_polymod(values: &[u8]) -> u64 {
    const GENERATORS: [u64; 5] = [0x98f2bc8e61, 0x79b76d99e2, 0xf33e5fb3c4, 0xae2eabe2a8, 0x1e4f43e470];
    let mut c: u64 = 1;
    for &d in values {
        let c0 = (c >> 35) as u8;
        c = ((c & 0x07_ffff_ffff) << 5) ^ d as u64;
        for (i, g) in GENERATORS.iter().enumerate() {
            if c0 & (1 << i) != 0 {
                c ^= g;
            }
        }
    }
    c ^ 1
}

/// Base58check of `version ‖ hash`. This runs for every output and every input, so the 25-byte
/// payload is encoded by [`base58_25`] (tested against `bs58`). Appended to `out`.
fn base58(version: u8, hash: &[u8], out: &mut String) {
    let mut payload = [0u8; 25];
    payload[0] = version;
    payload[1..21].copy_from_slice(hash);
    let check = bitcoin::hashes::sha256d::Hash::hash(&payload[..21]);
    payload[21..].copy_from_slice(&check.as_byte_array()[..4]);
    base58_25(&payload, out)
}

/// Base58 (Bitcoin alphabet) of a 25-byte payload. The number is converted from 32-bit words to
/// limbs of 58^5 (which fit 32 bits) with 64-bit arithmetic, then each limb gives five digits:
/// 49 word-limb steps instead of the digit-by-byte loop of a general encoder (`bs58` took 17% of
/// block-file ingest). Appended to `out`.
fn base58_25(payload: &[u8; 25], out: &mut String) {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    const LIMB: u64 = 58 * 58 * 58 * 58 * 58;
    // 200 bits < 7 limbs of log2(58^5) ≈ 29.3 bits.
    let mut limbs = [0u64; 7]; // least significant first
    let mut push = |word: u64| {
        let mut carry = word;
        for l in limbs.iter_mut() {
            let t = (*l << 32) + carry;
            *l = t % LIMB;
            carry = t / LIMB;
        }
        debug_assert_eq!(carry, 0, "200 bits fit 7 limbs");
    };
    push(payload[0] as u64);
    for w in payload[1..].chunks_exact(4) {
        push(u32::from_be_bytes(w.try_into().expect("4 bytes")) as u64);
    }
    let mut digits = [0u8; 35];
    for (k, l) in limbs.iter().enumerate() {
        let mut l = *l;
        for d in 0..5 {
            digits[34 - (k * 5 + d)] = (l % 58) as u8;
            l /= 58;
        }
    }
    let zeros = payload.iter().take_while(|&&b| b == 0).count();
    let first = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
    // Leading zero bytes are '1's; there are never more of them than digits.
    let start = first - zeros.min(first);
    let mut text = [b'1'; 35];
    for (t, &d) in text[first..].iter_mut().zip(&digits[first..]) {
        *t = ALPHABET[d as usize];
    }
    out.push_str(std::str::from_utf8(&text[start..]).expect("base58 is ascii"));
}

/// Whether [`segwit`] can write the address of this witness program: the `bech32` crate's rules
/// (a version up to 16, a program of 2 to 40 bytes, 20 or 32 at version 0, at most 90 characters).
fn segwit_encodable(hrp: &str, version: u8, program: &[u8]) -> bool {
    if !is_simple_hrp(hrp) {
        return segwit_by_crate(hrp, version, program).is_some();
    }
    let data_len = 1 + (program.len() * 8).div_ceil(5);
    (2..=40).contains(&program.len()) && (version != 0 || matches!(program.len(), 20 | 32)) && version <= 16 && hrp.len() + 1 + data_len + 6 <= 90
}

/// A human-readable part of lower-case letters and digits, which [`segwit`] writes out itself.
fn is_simple_hrp(hrp: &str) -> bool {
    !hrp.is_empty() && hrp.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Appends the segwit address (BIP173 bech32 for version 0, BIP350 bech32m above) of a witness
/// program that [`segwit_encodable`] accepts. Written out directly: through the crate's `fmt`
/// writer this was a tenth of block-file ingest.
fn segwit(hrp: &str, version: u8, program: &[u8], out: &mut String) {
    debug_assert!(segwit_encodable(hrp, version, program));
    if !is_simple_hrp(hrp) {
        out.push_str(&segwit_by_crate(hrp, version, program).unwrap_or_default());
        return;
    }
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let mut chk = 1u32;
    for b in hrp.bytes() {
        chk = bech32_step(chk, b >> 5);
    }
    chk = bech32_step(chk, 0);
    for b in hrp.bytes() {
        chk = bech32_step(chk, b & 31);
    }
    // At most 90 characters (checked by `segwit_encodable`), written on the stack then appended.
    let mut text = [0u8; 90];
    text[..hrp.len()].copy_from_slice(hrp.as_bytes());
    text[hrp.len()] = b'1';
    let mut len = hrp.len() + 1;
    let mut push = |d: u8, chk: &mut u32| {
        *chk = bech32_step(*chk, d);
        text[len] = CHARSET[d as usize];
        len += 1;
    };
    push(version, &mut chk);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in program {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            push(((acc >> bits) & 31) as u8, &mut chk);
        }
    }
    if bits > 0 {
        push(((acc << (5 - bits)) & 31) as u8, &mut chk);
    }
    for _ in 0..6 {
        chk = bech32_step(chk, 0);
    }
    chk ^= if version == 0 { 1 } else { 0x2bc8_30a3 };
    for i in 0..6 {
        text[len + i] = CHARSET[((chk >> (5 * (5 - i))) & 31) as usize];
    }
    out.push_str(std::str::from_utf8(&text[..len + 6]).expect("bech32 is ascii"));
}

/// One step of the bech32 checksum (BIP173's `polymod`): the generators that the five bits
/// shifted out select are XORed in, looked up at once from [`BECH32_GEN_XOR`].
fn bech32_step(chk: u32, value: u8) -> u32 {
    (((chk & 0x01ff_ffff) << 5) ^ value as u32) ^ BECH32_GEN_XOR[(chk >> 25) as usize]
}

/// For each value of the five bits a bech32 checksum step shifts out, the XOR of the BIP173
/// generators those bits select.
const BECH32_GEN_XOR: [u32; 32] = {
    const GEN: [u32; 5] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3];
    let mut table = [0u32; 32];
    let mut top = 0;
    while top < 32 {
        let mut i = 0;
        while i < 5 {
            if (top >> i) & 1 == 1 {
                table[top] ^= GEN[i];
            }
            i += 1;
        }
        top += 1;
    }
    table
};

fn segwit_by_crate(hrp: &str, version: u8, program: &[u8]) -> Option<String> {
    use bitcoin::bech32::{hrp as known, segwit, Fe32, Hrp};
    let hrp = match hrp {
        "bc" => known::BC,
        "tb" => known::TB,
        "bcrt" => known::BCRT,
        other => Hrp::parse(other).ok()?,
    };
    segwit::encode(hrp, Fe32::try_from(version).ok()?, program).ok()
}

/// A witness program as BIP141 defines it: a version opcode then one push of 2 to 40 bytes.
fn witness_program(b: &[u8]) -> Option<(u8, &[u8])> {
    if b.len() < 4 || b.len() > 42 || b[1] as usize != b.len() - 2 || !(2..=40).contains(&b[1]) {
        return None;
    }
    let version = match b[0] {
        0x00 => 0,
        0x51..=0x60 => b[0] - 0x50,
        _ => return None,
    };
    Some((version, &b[2..]))
}

/// Public key sizes Bitcoin Core accepts (`CPubKey::ValidSize`).
fn valid_pubkey(k: &[u8]) -> bool {
    match k.first() {
        Some(0x02 | 0x03) => k.len() == 33,
        Some(0x04 | 0x06 | 0x07) => k.len() == 65,
        _ => false,
    }
}

fn p2pk_key(b: &[u8]) -> Option<&[u8]> {
    let n = b.len();
    if (n == 35 && b[0] == 33 || n == 67 && b[0] == 65) && b[n - 1] == OP_CHECKSIG.to_u8() && valid_pubkey(&b[1..n - 1]) {
        Some(&b[1..n - 1])
    } else {
        None
    }
}

fn small_int(i: &Instruction) -> Option<u32> {
    match i {
        Instruction::Op(op) => {
            let v = op.to_u8();
            (0x51..=0x60).contains(&v).then(|| (v - 0x50) as u32)
        }
        _ => None,
    }
}

fn multisig(script: &Script) -> Option<(u32, Vec<&[u8]>)> {
    let ins: Vec<Instruction> = script.instructions().collect::<Result<_, _>>().ok()?;
    if ins.len() < 4 || ins.last() != Some(&Instruction::Op(OP_CHECKMULTISIG)) {
        return None;
    }
    let m = small_int(&ins[0])?;
    let n = small_int(&ins[ins.len() - 2])?;
    let keys: Vec<&[u8]> = ins[1..ins.len() - 2]
        .iter()
        .map(|i| match i {
            Instruction::PushBytes(p) if valid_pubkey(p.as_bytes()) => Some(p.as_bytes()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    (m >= 1 && m <= n && keys.len() == n as usize).then_some((m, keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UtxoChain;
    use bitcoin::ScriptBuf;
    use proptest::prelude::*;

    /// What `write` appends to an empty string.
    fn written(write: impl FnOnce(&mut String)) -> String {
        let mut s = String::new();
        write(&mut s);
        s
    }

    fn base58_25_string(payload: &[u8; 25]) -> String {
        written(|s| base58_25(payload, s))
    }

    /// The segwit address, or `None` where it cannot be encoded (as `segwit_by_crate` answers).
    fn segwit_string(hrp: &str, version: u8, program: &[u8]) -> Option<String> {
        segwit_encodable(hrp, version, program).then(|| written(|s| segwit(hrp, version, program, s)))
    }

    proptest! {
        #[test]
        fn base58_of_25_bytes_agrees_with_bs58(mut payload in proptest::array::uniform25(any::<u8>()), zeros in 0usize..26, ones in 0usize..26) {
            // Leading zero bytes (version 0 addresses start with '1'), and runs of 0xff.
            for b in payload.iter_mut().take(zeros) {
                *b = 0;
            }
            for b in payload.iter_mut().rev().take(ones) {
                *b = 0xff;
            }
            prop_assert_eq!(base58_25_string(&payload), bs58::encode(&payload).into_string());
        }
    }

    proptest! {
        #[test]
        fn segwit_addresses_agree_with_the_bech32_crate(
            hrp in proptest::sample::select(vec!["bc", "tb", "bcrt", "ltc", "tltc", "rltc", "a", "abcdefghij0123456789abcdefghij0123456789abcdefghij"]),
            version in 0u8..17,
            program in proptest::collection::vec(any::<u8>(), 0..42),
        ) {
            prop_assert_eq!(segwit_string(hrp, version, &program), segwit_by_crate(hrp, version, &program));
        }
    }

    /// Scripts of every template `bitcoin::Address::from_script` knows, with random payloads,
    /// and random bytes: 0 P2PKH, 1 P2SH, 2 witness program of any version and length, 3 any.
    fn any_script() -> impl Strategy<Value = ScriptBuf> {
        (0u8..4, 0u8..17, proptest::collection::vec(any::<u8>(), 0..45)).prop_map(|(template, version, bytes)| {
            let mut s = match template {
                0 => vec![0x76, 0xa9, 0x14],
                1 => vec![0xa9, 0x14],
                2 => vec![if version == 0 { 0 } else { 0x50 + version }, bytes.len().clamp(2, 40) as u8],
                _ => vec![],
            };
            let len = match template {
                0 | 1 => 20,
                2 => bytes.len().clamp(2, 40),
                _ => bytes.len(),
            };
            s.extend((0..len).map(|i| bytes.get(i).copied().unwrap_or(i as u8)));
            match template {
                0 => s.extend_from_slice(&[0x88, 0xac]),
                1 => s.push(0x87),
                _ => {}
            }
            ScriptBuf::from_bytes(s)
        })
    }

    proptest! {
        #[test]
        fn addresses_agree_with_the_bitcoin_crate(
            script in any_script(),
            chain in proptest::sample::select(vec![UtxoChain::Bitcoin, UtxoChain::BitcoinTestnet, UtxoChain::BitcoinRegtest]),
        ) {
            let network = match chain {
                UtxoChain::Bitcoin => bitcoin::Network::Bitcoin,
                UtxoChain::BitcoinTestnet => bitcoin::Network::Testnet,
                _ => bitcoin::Network::Regtest,
            };
            let mut scratch = String::from("left over from the previous script");
            let mut streamed = Vec::new();
            let class = classify_with(&script, &chain.address_params(), &mut scratch, |a| streamed.push(a.to_string()));
            let info = classify(&script, &chain.address_params());
            prop_assert_eq!((class.kind, class.required_signatures, &streamed), (info.kind, info.required_signatures, &info.addresses));
            prop_assert!(!info.addresses.is_empty());
            if let Ok(address) = bitcoin::Address::from_script(&script, network) {
                prop_assert_eq!(&info.addresses, &vec![address.to_string()], "{:?}", info.kind);
            } else {
                prop_assert!(info.addresses[0].starts_with("nonstandard"), "{:?} {:?}", info.kind, info.addresses);
            }
        }
    }

    #[test]
    fn segwit_known_answers() {
        // BIP173 and BIP350 test vectors.
        let p2wpkh = hex_bytes("751e76e8199196d454941c45d1b3a323f1433bd6");
        assert_eq!(segwit_string("bc", 0, &p2wpkh).unwrap(), "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4");
        let p2tr = hex_bytes("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798");
        assert_eq!(segwit_string("bc", 1, &p2tr).unwrap(), "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0");
        assert_eq!(segwit_string("bc", 0, &[0; 21]), None, "a version 0 program is 20 or 32 bytes");
    }

    #[test]
    fn base58_known_answers() {
        assert_eq!(base58_25_string(&[0; 25]), "1".repeat(25));
        assert_eq!(base58_25_string(&[0xff; 25]), bs58::encode([0xff; 25]).into_string());
        // The genesis block's coinbase address.
        assert_eq!(written(|s| base58(0, &hex_bytes("62e907b15cbf27d5425399ebf6f0fb50ebb88f18"), s)), "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa");
    }

    fn hex_bytes(h: &str) -> Vec<u8> {
        (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect()
    }

    fn info(hex: &str, chain: UtxoChain) -> ScriptInfo {
        let s = ScriptBuf::from_bytes((0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect());
        classify(&s, &chain.address_params())
    }

    #[test]
    fn p2pk_gets_its_p2pkh_address_like_bitcoin_etl() {
        // Output of block 50001's coinbase (bitcoin-etl expected_transactions.json).
        let i = info(
            "4104c1b5671c8975087cc796d6ea73d2407591528b5c669106f9b6ab6ef6e373a57553e14866aaeffc44a9f58e5ee0c7faa7add7474f0a2c55a22cb40b949fdc933cac",
            UtxoChain::Bitcoin,
        );
        assert_eq!(i.kind, ScriptType::PubKey);
        assert_eq!(i.addresses, ["1PkqKGbNLDdDJGveCcNUMV9CEFH77ADrPQ"]);
        assert_eq!(i.required_signatures, Some(1));
    }

    #[test]
    fn standard_types_encode_in_the_network_format() {
        let i = info("76a914b5cd7aaed869cd5ccb45868e8666e7e934a2373688ac", UtxoChain::Bitcoin);
        assert_eq!((i.kind, i.addresses[0].as_str()), (ScriptType::PubKeyHash, "1HaHTfmvoUW6i6nhJf8jJs6tU4cHNmBQHQ"));
        // BIP173 / BIP350 test vectors.
        let i = info("0014751e76e8199196d454941c45d1b3a323f1433bd6", UtxoChain::Bitcoin);
        assert_eq!((i.kind, i.addresses[0].as_str()), (ScriptType::WitnessV0KeyHash, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"));
        let i = info("00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262", UtxoChain::BitcoinTestnet);
        assert_eq!((i.kind, i.addresses[0].as_str()), (ScriptType::WitnessV0ScriptHash, "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7"));
        let i = info("512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798", UtxoChain::Bitcoin);
        assert_eq!((i.kind, i.addresses[0].as_str()), (ScriptType::WitnessV1Taproot, "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"));
        let i = info("a914748284390f9e263a4b766a75d0633c50426eb87587", UtxoChain::Bitcoin);
        assert_eq!((i.kind, i.addresses[0].as_str()), (ScriptType::ScriptHash, "3CK4fEwbMP7heJarmU4eqA3sMbVJyEnU3V"));
        let i = info("0014751e76e8199196d454941c45d1b3a323f1433bd6", UtxoChain::BitcoinRegtest);
        assert_eq!(i.addresses[0], "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080");
    }

    #[test]
    fn bitcoin_cash_addresses_are_cashaddr() {
        // The coinbase output of BCH block 91722 as a Bitcoin Cash node and bitcoin-etl show it.
        let i = info(
            "4104124b212f5416598a92ccec88819105179dcb2550d571842601492718273fe0f2179a9695096bff94cd99dcccdea7cd9bd943bfca8fea649cac963411979a33e9ac",
            UtxoChain::BitcoinCash,
        );
        assert_eq!((i.kind, i.addresses[0].as_str()), (ScriptType::PubKey, "bitcoincash:qzkddwa6hgh03skr4qsrygk7e087zjydxgqkpjnsw7"));
        // CashAddr specification test vectors (20-byte hashes, P2PKH and P2SH).
        let h = "76a04053bda0a88bda5177b86a15c3b29f559873";
        let i = info(&format!("76a914{h}88ac"), UtxoChain::BitcoinCash);
        assert_eq!(i.addresses[0], "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a");
        let i = info(&format!("a914{h}87"), UtxoChain::BitcoinCash);
        assert_eq!(i.addresses[0], "bitcoincash:ppm2qsznhks23z7629mms6s4cwef74vcwvn0h829pq");
        // The same key hash on Bitcoin is the legacy address the spec pairs it with.
        assert_eq!(info(&format!("76a914{h}88ac"), UtxoChain::Bitcoin).addresses[0], "1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu");
        assert_eq!(legacy_to_cashaddr("1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu").unwrap(), "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a");
        assert_eq!(legacy_to_cashaddr("3CWFddi6m4ndiGyKqzYvsFYagqDLPVMTzC").unwrap(), "bitcoincash:ppm2qsznhks23z7629mms6s4cwef74vcwvn0h829pq");
        assert_eq!(legacy_to_cashaddr("1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggv"), None, "bad checksum");
    }

    #[test]
    fn multisig_lists_each_key_and_m() {
        let k1 = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        let k2 = "02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5";
        let i = info(&format!("5121{k1}21{k2}52ae"), UtxoChain::Bitcoin);
        assert_eq!(i.kind, ScriptType::Multisig);
        assert_eq!(i.required_signatures, Some(1));
        assert_eq!(i.addresses, ["1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH", "1cMh228HTCiwS8ZsaakH8A8wze1JR5ZsP"]);
    }

    #[test]
    fn data_and_garbage_get_nonstandard_keys() {
        let i = info("6a0b68656c6c6f20776f726c64", UtxoChain::Bitcoin);
        assert_eq!(i.kind, ScriptType::NullData);
        assert!(i.addresses[0].starts_with("nonstandard") && i.addresses[0].len() == 51);
        assert_eq!(i.required_signatures, None);
        assert_eq!(info("ff", UtxoChain::Bitcoin).kind, ScriptType::NonStandard);
        assert_eq!(info("", UtxoChain::Bitcoin).kind, ScriptType::NonStandard);
        // A witness v0 program of the wrong length is nonstandard, v2 is unknown.
        assert_eq!(info("0003aabbcc", UtxoChain::Bitcoin).kind, ScriptType::NonStandard);
        assert_eq!(info("5202aabb", UtxoChain::Bitcoin).kind, ScriptType::WitnessUnknown);
        assert_eq!(info("51024e73", UtxoChain::Bitcoin).kind, ScriptType::Anchor);
    }
}

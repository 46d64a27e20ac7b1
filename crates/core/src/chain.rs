//! The UTXO chains tracehound reads, with their network magic and address encodings.

use crate::Error;

/// How a chain writes addresses: base58check version bytes, the bech32 prefix where it has segwit,
/// and the CashAddr prefix on Bitcoin Cash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressParams {
    /// Version byte of pay-to-pubkey-hash addresses.
    pub pubkey_hash: u8,
    /// Version byte of pay-to-script-hash addresses.
    pub script_hash: u8,
    /// Human-readable part of segwit addresses, if the chain has segwit.
    pub bech32_hrp: Option<&'static str>,
    /// CashAddr prefix (Bitcoin Cash), if the chain writes P2PKH/P2SH addresses as CashAddr.
    pub cashaddr_prefix: Option<&'static str>,
}

/// A Bitcoin-like (UTXO) chain. Its name is the schema under which its tables appear in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UtxoChain {
    /// Bitcoin mainnet.
    Bitcoin,
    /// Bitcoin testnet3.
    BitcoinTestnet,
    /// Bitcoin testnet4 (BIP94).
    BitcoinTestnet4,
    /// Bitcoin's default signet.
    BitcoinSignet,
    /// Bitcoin regtest (also what `tracehound simulate` writes).
    BitcoinRegtest,
    /// Litecoin mainnet (JSON-RPC ingest).
    Litecoin,
    /// Dogecoin mainnet (JSON-RPC ingest).
    Dogecoin,
    /// Bitcoin Cash mainnet (JSON-RPC ingest; legacy addresses).
    BitcoinCash,
}

impl UtxoChain {
    /// Every chain, in a stable order.
    pub const ALL: [UtxoChain; 8] = [
        UtxoChain::Bitcoin,
        UtxoChain::BitcoinTestnet,
        UtxoChain::BitcoinTestnet4,
        UtxoChain::BitcoinSignet,
        UtxoChain::BitcoinRegtest,
        UtxoChain::Litecoin,
        UtxoChain::Dogecoin,
        UtxoChain::BitcoinCash,
    ];
    /// The names of [`UtxoChain::ALL`].
    pub const ALL_NAMES: [&'static str; 8] =
        ["bitcoin", "bitcoin_testnet", "bitcoin_testnet4", "bitcoin_signet", "bitcoin_regtest", "litecoin", "dogecoin", "bitcoin_cash"];

    /// The chain's name as used in the data directory and in SQL (`bitcoin`, `bitcoin_regtest`, …).
    pub fn name(self) -> &'static str {
        Self::ALL_NAMES[Self::ALL.iter().position(|c| *c == self).expect("listed")]
    }

    /// Looks a chain up by name; also accepts Bitcoin Core's network names (`main`, `test`, `testnet4`, `signet`, `regtest`).
    pub fn from_name(name: &str) -> Result<Self, Error> {
        let n = name.trim().to_ascii_lowercase().replace('-', "_");
        let alias = match n.as_str() {
            "main" | "mainnet" | "btc" => Some(UtxoChain::Bitcoin),
            "test" | "testnet" | "testnet3" => Some(UtxoChain::BitcoinTestnet),
            "testnet4" => Some(UtxoChain::BitcoinTestnet4),
            "signet" => Some(UtxoChain::BitcoinSignet),
            "regtest" => Some(UtxoChain::BitcoinRegtest),
            "ltc" => Some(UtxoChain::Litecoin),
            "doge" => Some(UtxoChain::Dogecoin),
            "bch" => Some(UtxoChain::BitcoinCash),
            _ => None,
        };
        if let Some(c) = alias {
            return Ok(c);
        }
        Self::ALL.iter().zip(Self::ALL_NAMES).find(|(_, nm)| *nm == n).map(|(c, _)| *c).ok_or_else(|| Error::UnknownChain(name.to_string()))
    }

    /// The 4 bytes that start every block record in this chain's `blk*.dat` files.
    /// `None` for chains whose block files tracehound does not read (use JSON-RPC for them).
    pub fn magic(self) -> Option<[u8; 4]> {
        match self {
            UtxoChain::Bitcoin => Some([0xf9, 0xbe, 0xb4, 0xd9]),
            UtxoChain::BitcoinTestnet => Some([0x0b, 0x11, 0x09, 0x07]),
            UtxoChain::BitcoinTestnet4 => Some([0x1c, 0x16, 0x3f, 0x28]),
            UtxoChain::BitcoinSignet => Some([0x0a, 0x03, 0xcf, 0x40]),
            UtxoChain::BitcoinRegtest => Some([0xfa, 0xbf, 0xb5, 0xda]),
            _ => None,
        }
    }

    /// The Bitcoin chain whose block files start with `magic`, if any.
    pub fn from_magic(magic: [u8; 4]) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.magic() == Some(magic))
    }

    /// Address encoding of the chain.
    pub fn address_params(self) -> AddressParams {
        match self {
            UtxoChain::Bitcoin => AddressParams { pubkey_hash: 0x00, script_hash: 0x05, bech32_hrp: Some("bc"), cashaddr_prefix: None },
            UtxoChain::BitcoinTestnet | UtxoChain::BitcoinTestnet4 | UtxoChain::BitcoinSignet => {
                AddressParams { pubkey_hash: 0x6f, script_hash: 0xc4, bech32_hrp: Some("tb"), cashaddr_prefix: None }
            }
            UtxoChain::BitcoinRegtest => AddressParams { pubkey_hash: 0x6f, script_hash: 0xc4, bech32_hrp: Some("bcrt"), cashaddr_prefix: None },
            UtxoChain::Litecoin => AddressParams { pubkey_hash: 0x30, script_hash: 0x32, bech32_hrp: Some("ltc"), cashaddr_prefix: None },
            UtxoChain::Dogecoin => AddressParams { pubkey_hash: 0x1e, script_hash: 0x16, bech32_hrp: None, cashaddr_prefix: None },
            UtxoChain::BitcoinCash => AddressParams { pubkey_hash: 0x00, script_hash: 0x05, bech32_hrp: None, cashaddr_prefix: Some("bitcoincash") },
        }
    }
}

impl std::fmt::Display for UtxoChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_aliases_resolve() {
        for c in UtxoChain::ALL {
            assert_eq!(UtxoChain::from_name(c.name()).unwrap(), c);
        }
        assert_eq!(UtxoChain::from_name("regtest").unwrap(), UtxoChain::BitcoinRegtest);
        assert_eq!(UtxoChain::from_name("Bitcoin-Testnet4").unwrap(), UtxoChain::BitcoinTestnet4);
        let err = UtxoChain::from_name("ethereum").unwrap_err().to_string();
        assert!(err.contains("bitcoin_regtest"), "{err}");
    }

    #[test]
    fn magic_identifies_network() {
        assert_eq!(UtxoChain::from_magic([0xf9, 0xbe, 0xb4, 0xd9]), Some(UtxoChain::Bitcoin));
        assert_eq!(UtxoChain::from_magic([0x1c, 0x16, 0x3f, 0x28]), Some(UtxoChain::BitcoinTestnet4));
        assert_eq!(UtxoChain::from_magic([0, 0, 0, 0]), None);
    }
}

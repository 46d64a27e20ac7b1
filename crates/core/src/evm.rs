//! EVM chains: names by chain id, and exact quantities (JSON-RPC hex quantities, uint256 words).
//!
//! Wei and token amounts are `U256`; tables store them as exact decimal strings, and as
//! `Decimal128(38, 0)` where the value is below 10^38 (every native balance of every real chain is).

use crate::Error;
pub use alloy_primitives::U256;

/// Chains tracehound names by their EIP-155 chain id. Any other id is stored as `evm_<id>`.
pub const KNOWN_EVM_CHAINS: [(u64, &str); 14] = [
    (1, "ethereum"),
    (10, "optimism"),
    (56, "bsc"),
    (100, "gnosis"),
    (137, "polygon"),
    (250, "fantom"),
    (2020, "ronin"),
    (8453, "base"),
    (42161, "arbitrum"),
    (43114, "avalanche"),
    (31337, "anvil"),
    (17000, "holesky"),
    (11155111, "sepolia"),
    (1666600000, "harmony"),
];

/// The name under which an EVM chain's tables are stored (`ethereum`, `bsc`, …, or `evm_<id>`).
pub fn evm_chain_name(chain_id: u64) -> String {
    KNOWN_EVM_CHAINS.iter().find(|(id, _)| *id == chain_id).map_or_else(|| format!("evm_{chain_id}"), |(_, n)| n.to_string())
}

/// The symbol of a chain's native coin (18 decimals on every EVM chain), for showing amounts of
/// `native` transfers: `ETH` on Ethereum and its rollups and test networks, `BNB`, `POL`, ….
/// `None` for chains tracehound does not name.
pub fn native_symbol(chain_id: u64) -> Option<&'static str> {
    Some(match chain_id {
        1 | 10 | 8453 | 42161 | 31337 | 17000 | 11155111 => "ETH",
        56 => "BNB",
        100 => "xDAI",
        137 => "POL",
        250 => "FTM",
        2020 => "RON",
        43114 => "AVAX",
        1666600000 => "ONE",
        _ => return None,
    })
}

/// Decimals of every EVM chain's native coin (wei per coin = 10^18).
pub const NATIVE_DECIMALS: u32 = 18;

/// The chain id of a name given by [`evm_chain_name`] (also `eth`, `bnb`, `matic`, `arb`, `op`).
pub fn evm_chain_id(name: &str) -> Option<u64> {
    let n = name.trim().to_ascii_lowercase().replace('-', "_");
    let n = match n.as_str() {
        "eth" | "mainnet" => "ethereum",
        "bnb" | "binance" | "binance_smart_chain" => "bsc",
        "matic" => "polygon",
        "arb" | "arbitrum_one" => "arbitrum",
        "op" => "optimism",
        "avax" => "avalanche",
        other => other,
    };
    if let Some(id) = n.strip_prefix("evm_") {
        return id.parse().ok();
    }
    KNOWN_EVM_CHAINS.iter().find(|(_, nm)| *nm == n).map(|(id, _)| *id)
}

fn bad(text: &str, reason: &'static str) -> Error {
    Error::Quantity { text: text.chars().take(80).collect(), reason }
}

/// Parses a JSON-RPC quantity (`0x` + hex digits, at most 64) exactly.
pub fn parse_quantity(text: &str) -> Result<U256, Error> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).ok_or_else(|| bad(text, "a quantity starts with 0x"))?;
    if digits.is_empty() {
        return Err(bad(text, "no hex digits"));
    }
    if digits.len() > 64 {
        return Err(bad(text, "more than 256 bits"));
    }
    U256::from_str_radix(digits, 16).map_err(|_| bad(text, "not hex digits"))
}

/// Parses a JSON-RPC quantity that must fit 64 bits (block numbers, gas, nonces, timestamps).
pub fn parse_quantity_u64(text: &str) -> Result<u64, Error> {
    let v = parse_quantity(text)?;
    u64::try_from(v).map_err(|_| bad(text, "does not fit 64 bits"))
}

/// Reads a big-endian 32-byte ABI word (an ERC-20 `Transfer` value) exactly.
pub fn uint256_word(word: &[u8; 32]) -> U256 {
    U256::from_be_bytes(*word)
}

/// 10^38: values at or above it do not fit `Decimal128(38, 0)`.
pub const DECIMAL128_LIMIT: u128 = 100_000_000_000_000_000_000_000_000_000_000_000_000;

/// The value as a `Decimal128(38, 0)` integer, or `None` when it is 10^38 or more.
pub fn to_decimal128(v: U256) -> Option<i128> {
    u128::try_from(v).ok().filter(|x| *x < DECIMAL128_LIMIT).map(|x| x as i128)
}

/// Parses a decimal integer string (an explorer's amount in base units) exactly.
pub fn parse_decimal_u256(text: &str) -> Result<U256, Error> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(text, "only decimal digits are allowed"));
    }
    U256::from_str_radix(t, 10).map_err(|_| bad(text, "more than 256 bits"))
}

/// Parses a decimal amount in whole units with up to `decimals` fractional digits
/// (`"1.5"` ETH with 18 decimals) into base units, exactly; more decimals than that are refused.
pub fn parse_units(text: &str, decimals: u32) -> Result<U256, Error> {
    let t = text.trim().replace(',', "");
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty() && frac.is_empty() || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad(text, "only digits and one decimal point are allowed"));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > decimals as usize {
        return Err(bad(text, "more decimals than the asset has"));
    }
    let digits = format!("{}{}{}", if whole.is_empty() { "0" } else { whole }, frac, "0".repeat(decimals as usize - frac.len()));
    U256::from_str_radix(&digits, 10).map_err(|_| bad(text, "more than 256 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_chain_id() {
        assert_eq!(evm_chain_name(1), "ethereum");
        assert_eq!(evm_chain_name(31337), "anvil");
        assert_eq!(evm_chain_name(4242), "evm_4242");
        assert_eq!(evm_chain_id("evm_4242"), Some(4242));
        assert_eq!(evm_chain_id("BNB"), Some(56));
        assert_eq!(evm_chain_id("nope"), None);
        for (id, _) in KNOWN_EVM_CHAINS {
            assert!(native_symbol(id).is_some(), "native symbol of chain {id}");
        }
        assert_eq!((native_symbol(56), native_symbol(4242)), (Some("BNB"), None));
    }

    #[test]
    fn quantities_are_exact() {
        assert_eq!(parse_quantity_u64("0x0").unwrap(), 0);
        assert_eq!(parse_quantity_u64("0x1b4").unwrap(), 436);
        assert!(parse_quantity_u64("0x10000000000000000").is_err());
        assert!(parse_quantity("1b4").is_err());
        assert!(parse_quantity("0x").is_err());
        assert!(parse_quantity("0xzz").is_err());
        assert_eq!(parse_quantity(&format!("0x{}", "f".repeat(64))).unwrap(), U256::MAX);
        assert!(parse_quantity(&format!("0x1{}", "0".repeat(64))).is_err());
    }

    /// The ERC-20 value 2^256 − 1 − 999 (data 0xffff…fc18) decodes exactly.
    #[test]
    fn uint256_known_answer() {
        let mut word = [0xffu8; 32];
        word[30] = 0xfc;
        word[31] = 0x18;
        assert_eq!(uint256_word(&word).to_string(), "115792089237316195423570985008687907853269984665640564039457584007913129638936");
        assert_eq!(uint256_word(&word), U256::MAX - U256::from(999));
        assert_eq!(to_decimal128(uint256_word(&word)), None);
    }

    #[test]
    fn decimal128_limit() {
        assert_eq!(to_decimal128(U256::from(DECIMAL128_LIMIT - 1)), Some((DECIMAL128_LIMIT - 1) as i128));
        assert_eq!(to_decimal128(U256::from(DECIMAL128_LIMIT)), None);
    }

    #[test]
    fn units() {
        assert_eq!(parse_units("1.5", 18).unwrap(), U256::from(1_500_000_000_000_000_000u128));
        assert_eq!(parse_units("1,000", 6).unwrap(), U256::from(1_000_000_000u64));
        assert_eq!(parse_units(".25", 2).unwrap(), U256::from(25));
        assert!(parse_units("0.001", 2).is_err());
        assert!(parse_units("-1", 2).is_err());
        assert_eq!(parse_decimal_u256("00042").unwrap(), U256::from(42));
        assert!(parse_decimal_u256("1e18").is_err());
    }
}

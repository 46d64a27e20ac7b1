//! Exact amounts. Coin values are integers of the chain's base unit (satoshi); never floats.
//! [`format_units`] shows any base-unit amount (satoshi, wei, token units up to 2^256 − 1) in
//! whole units for people (`4,505,835.697678`), exactly.

use crate::evm::U256;
use crate::Error;

/// Base units in one coin for Bitcoin-like chains (10^8 satoshi per BTC).
pub const SATS_PER_COIN: u64 = 100_000_000;

/// Parses a decimal coin amount as a node's JSON-RPC writes it (`"50.00000000"`, `0.1`, `21e-8`
/// is refused) into an exact number of satoshi. At most 8 decimals; no sign, no exponent.
pub fn parse_btc(text: &str) -> Result<u64, Error> {
    let bad = |reason| Error::Amount { text: text.to_string(), reason };
    let t = text.trim();
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) => (w, f),
        None => (t, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return Err(bad("empty"));
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("only digits and one decimal point are allowed"));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 8 {
        return Err(bad("more than 8 decimals is not a whole number of satoshi"));
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad("too large"))? };
    let mut frac_sats: u64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad("bad decimals"))? };
    for _ in frac.len()..8 {
        frac_sats *= 10;
    }
    whole.checked_mul(SATS_PER_COIN).and_then(|w| w.checked_add(frac_sats)).ok_or_else(|| bad("too large"))
}

/// Formats satoshi as a decimal coin amount with 8 decimals (`5000000000` → `"50.00000000"`).
pub fn format_btc(sats: u64) -> String {
    format!("{}.{:08}", sats / SATS_PER_COIN, sats % SATS_PER_COIN)
}

/// Shows `amount` base units in whole units of an asset with `decimals` decimals, exactly (integer
/// arithmetic on the decimal digits, never floats): thousands separators (`,`) in the whole part,
/// trailing zeros of the fraction dropped, and no point when nothing is left of it.
///
/// ```
/// use tracehound_core::{amount::format_units, evm::U256};
/// assert_eq!(format_units(U256::from(4_505_835_697_678u64), 6), "4,505,835.697678");
/// assert_eq!(format_units(U256::from(1_500_000_000_000_000_000u128), 18), "1.5");
/// assert_eq!(format_units(U256::from(1_000_000_000u64), 6), "1,000");
/// assert_eq!(format_units(U256::from(1u64), 18), "0.000000000000000001");
/// ```
///
/// `parse_units` ([`crate::evm::parse_units`]) reads the result back to the same amount.
pub fn format_units(amount: U256, decimals: u32) -> String {
    let digits = amount.to_string();
    let decimals = decimals as usize;
    let (whole, frac) = if digits.len() > decimals {
        let (w, f) = digits.split_at(digits.len() - decimals);
        (w.to_string(), f)
    } else {
        ("0".to_string(), digits.as_str())
    };
    let frac = frac.trim_end_matches('0');
    let mut out = group_thousands(&whole);
    if !frac.is_empty() {
        out.push('.');
        // Leading zeros of an amount below 10^-len(digits): 1 unit of 18 decimals is 0.000…001.
        out.extend(std::iter::repeat_n('0', decimals.saturating_sub(digits.len())));
        out.push_str(frac);
    }
    out
}

/// `1234567` → `1,234,567` (a string of ASCII digits).
fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evm::parse_units;

    #[test]
    fn parses_node_amounts_exactly() {
        assert_eq!(parse_btc("50.00000000").unwrap(), 5_000_000_000);
        assert_eq!(parse_btc("0.00000001").unwrap(), 1);
        assert_eq!(parse_btc("20999999.97690000").unwrap(), 2_099_999_997_690_000);
        assert_eq!(parse_btc("0.1").unwrap(), 10_000_000);
        assert_eq!(parse_btc("3").unwrap(), 300_000_000);
        assert_eq!(parse_btc(".5").unwrap(), 50_000_000);
        // 0.1 + 0.2 in floats is not 0.3; in satoshi it is.
        assert_eq!(parse_btc("0.3").unwrap(), parse_btc("0.1").unwrap() + parse_btc("0.2").unwrap());
    }

    #[test]
    fn refuses_inexact_or_malformed_amounts() {
        for bad in ["", ".", "-1", "1e-8", "0.000000001", "1.2.3", "abc", "184467440737.09551616"] {
            assert!(parse_btc(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn format_roundtrips() {
        for v in [0, 1, 99_999_999, 100_000_000, 2_099_999_997_690_000] {
            assert_eq!(parse_btc(&format_btc(v)).unwrap(), v);
        }
    }

    #[test]
    fn formats_token_amounts_exactly() {
        let f = |v: u128, d| format_units(U256::from(v), d);
        // The user's USDC flow: 6 decimals.
        assert_eq!(f(4_505_835_697_678, 6), "4,505,835.697678");
        assert_eq!(f(4_505_835_000_000, 6), "4,505,835");
        assert_eq!(f(4_505_835_100_000, 6), "4,505,835.1");
        assert_eq!(f(999_999, 6), "0.999999");
        assert_eq!(f(1, 6), "0.000001");
        assert_eq!(f(0, 6), "0");
        // 18 decimals: exact where an f64 is not (2^53 + 1 wei, 0.1 + 0.2 ETH).
        assert_eq!(f(9_007_199_254_740_993, 18), "0.009007199254740993");
        assert_eq!(f(300_000_000_000_000_000, 18), "0.3");
        assert_eq!(f(123_456_789_012_345_678_901_234_567, 18), "123,456,789.012345678901234567");
        assert_eq!(f(1_000_000_000_000_000_000_000, 18), "1,000");
        assert_eq!(f(1, 18), "0.000000000000000001");
        // 0 decimals (ERC-721 ids, tokens without decimals): grouped integers.
        assert_eq!(f(0, 0), "0");
        assert_eq!(f(999, 0), "999");
        assert_eq!(f(1_000, 0), "1,000");
        assert_eq!(f(1_234_567, 0), "1,234,567");
        // u128 max and uint256 max.
        assert_eq!(f(u128::MAX, 0), "340,282,366,920,938,463,463,374,607,431,768,211,455");
        assert_eq!(f(u128::MAX, 18), "340,282,366,920,938,463,463.374607431768211455");
        assert_eq!(f(u128::MAX, 38), "3.40282366920938463463374607431768211455");
        assert_eq!(f(u128::MAX, 40), "0.0340282366920938463463374607431768211455");
        assert_eq!(format_units(U256::MAX, 18), "115,792,089,237,316,195,423,570,985,008,687,907,853,269,984,665,640,564,039,457.584007913129639935");
        // Satoshi, as Bitcoin amounts are shown.
        assert_eq!(f(2_099_999_997_690_000, 8), "20,999,999.9769");
    }

    proptest::proptest! {
        /// Whatever the amount and decimals, parsing the text back gives the same amount.
        #[test]
        fn formatted_units_read_back(limbs in proptest::array::uniform4(proptest::num::u64::ANY), shift in 0usize..256, decimals in 0u32..80) {
            let v = U256::from_limbs(limbs) >> shift;
            let text = format_units(v, decimals);
            proptest::prop_assert_eq!(parse_units(&text, decimals).unwrap(), v, "{}", text);
            let trailing_zero = text.contains('.') && text.ends_with('0');
            proptest::prop_assert!(!text.ends_with('.') && !trailing_zero, "{}", text);
        }
    }
}

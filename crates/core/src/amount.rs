//! Exact amounts. Coin values are integers of the chain's base unit (satoshi); never floats.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}

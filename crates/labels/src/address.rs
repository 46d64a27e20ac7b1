//! Address normalization, chain names and currency codes.
//!
//! Labels arrive from many sources that spell the same address and the same chain differently:
//! OFAC writes `XBT`, GraphSense `BTC`, a CSV `bitcoin`; Etherscan writes EVM addresses in lower case,
//! OFAC in EIP-55 mixed case. Everything is brought to one spelling here before it is stored or looked up.

/// The chain names tracehound uses (the schema names under which a chain's tables appear).
pub const KNOWN_CHAINS: [&str; 21] = [
    "bitcoin",
    "bitcoin_testnet",
    "bitcoin_regtest",
    "litecoin",
    "dogecoin",
    "bitcoin_cash",
    "bitcoin_sv",
    "ethereum",
    "bsc",
    "polygon",
    "arbitrum",
    "optimism",
    "tron",
    "zcash",
    "dash",
    "monero",
    "ripple",
    "ethereum_classic",
    "bitcoin_gold",
    "verge",
    "stellar",
];

/// Chains whose addresses are 20-byte EVM accounts written `0x` + 40 hex digits.
const EVM_CHAINS: [&str; 6] = ["ethereum", "bsc", "polygon", "arbitrum", "optimism", "ethereum_classic"];

/// Token codes whose chain is decided by the shape of the address (ERC-20, TRC-20 or Omni).
const TOKEN_CODES: [&str; 9] = ["USDT", "USDC", "DAI", "BUSD", "TUSD", "USDP", "PAX", "PYUSD", "OMNI"];

/// Prefixes of bech32 (segwit) addresses; such addresses are case-insensitive and stored in lower case.
const BECH32_PREFIXES: [&str; 5] = ["bc1", "tb1", "bcrt1", "ltc1", "tltc1"];

/// Whether `text` is an EVM account address: `0x` (or `0X`) followed by exactly 40 hex digits.
pub fn is_evm_address(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 42 && bytes[0] == b'0' && (bytes[1] == b'x' || bytes[1] == b'X') && bytes[2..].iter().all(u8::is_ascii_hexdigit)
}

/// Whether `text` starts like a bech32 segwit address of Bitcoin or Litecoin (any case).
fn has_bech32_prefix(text: &str) -> bool {
    let lower = text.get(..6).unwrap_or(text).to_ascii_lowercase();
    BECH32_PREFIXES.iter().any(|prefix| lower.starts_with(prefix))
}

/// Brings an address to its stored spelling: whitespace trimmed; EVM addresses (`0x` + 40 hex) and
/// bech32 addresses (`bc1…`, `tb1…`, `bcrt1…`, `ltc1…`, `tltc1…`) in lower case; everything else
/// unchanged, because base58 (and most other encodings) are case sensitive. Bitcoin Cash
/// addresses become CashAddr with its `bitcoincash:` prefix, in lower case, as the chain's
/// tables write them (legacy `1…`/`3…` forms are converted).
///
/// ```
/// use tracehound_labels::normalize_address;
/// assert_eq!(normalize_address("ethereum", " 0x098B716B8Aaf21512996dC57EB0615e2383E2f96 "), "0x098b716b8aaf21512996dc57eb0615e2383e2f96");
/// assert_eq!(normalize_address("bitcoin", "BC1QM34LSC65ZPW79LXES69ZKQMK6EE3EWF0J77S3H"), "bc1qm34lsc65zpw79lxes69zkqmk6ee3ewf0j77s3h");
/// assert_eq!(normalize_address("bitcoin", "134r8iHv69xdT6p5qVKTsHrcUEuBVZAYak"), "134r8iHv69xdT6p5qVKTsHrcUEuBVZAYak");
/// let cash = "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a";
/// assert_eq!(normalize_address("bitcoin_cash", "1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu"), cash);
/// assert_eq!(normalize_address("bitcoin_cash", "QPM2QSZNHKS23Z7629MMS6S4CWEF74VCWVY22GDX6A"), cash);
/// assert_eq!(normalize_address("bitcoin_cash", "BitcoinCash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a"), cash);
/// ```
pub fn normalize_address(chain: &str, address: &str) -> String {
    let trimmed = address.trim();
    if chain == "bitcoin_cash" {
        return normalize_bitcoin_cash(trimmed);
    }
    if is_evm_address(trimmed) || has_bech32_prefix(trimmed) {
        trimmed.to_ascii_lowercase()
    } else {
        trimmed.to_string()
    }
}

/// A Bitcoin Cash address in CashAddr with its prefix, lower case; anything unrecognised unchanged.
fn normalize_bitcoin_cash(address: &str) -> String {
    let lower = address.to_ascii_lowercase();
    if lower.starts_with("bitcoincash:") {
        return lower;
    }
    if lower.len() == 42 && (lower.starts_with('q') || lower.starts_with('p')) {
        return format!("bitcoincash:{lower}");
    }
    tracehound_core::script::legacy_to_cashaddr(address).unwrap_or_else(|| address.to_string())
}

/// The tracehound chain of a currency code as OFAC and GraphSense write them (`XBT`, `BTC`, `ETH`, `TRX`, …).
///
/// Stablecoin codes (`USDT`, `USDC`, …) name a token, not a chain, so the address decides:
/// `0x…` → `ethereum`, `T…` of 34 characters → `tron`, `1…`/`3…` → `bitcoin` (Omni layer).
/// Unknown codes come back in lower case, so they still group consistently.
///
/// ```
/// use tracehound_labels::chain_for_currency;
/// assert_eq!(chain_for_currency("XBT", "1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn"), "bitcoin");
/// assert_eq!(chain_for_currency("USDT", "TJ7hhYhVhaxNx6BPyq7yFpqZrQULL3JSdb"), "tron");
/// assert_eq!(chain_for_currency("ADA", "addr1..."), "ada");
/// ```
pub fn chain_for_currency(code: &str, address: &str) -> String {
    let upper = code.trim().to_ascii_uppercase();
    let chain = match upper.as_str() {
        "XBT" | "BTC" => "bitcoin",
        "ETH" => "ethereum",
        "LTC" => "litecoin",
        "BCH" => "bitcoin_cash",
        "BSV" => "bitcoin_sv",
        "TRX" => "tron",
        "ZEC" => "zcash",
        "DASH" => "dash",
        "XMR" => "monero",
        "XRP" => "ripple",
        "ETC" => "ethereum_classic",
        "BTG" => "bitcoin_gold",
        "XVG" => "verge",
        "XLM" => "stellar",
        "BSC" | "BEP20" => "bsc",
        "ARB" => "arbitrum",
        "DOGE" => "dogecoin",
        "MATIC" | "POL" => "polygon",
        "OP" => "optimism",
        code if TOKEN_CODES.contains(&code) => return token_chain(code, address),
        _ => return upper.to_ascii_lowercase(),
    };
    chain.to_string()
}

/// The chain a token transfer address lives on, judged by its shape.
fn token_chain(code: &str, address: &str) -> String {
    let address = address.trim();
    if is_evm_address(address) {
        "ethereum".to_string()
    } else if address.starts_with('T') && address.len() == 34 {
        "tron".to_string()
    } else if address.starts_with('1') || address.starts_with('3') || code == "OMNI" {
        "bitcoin".to_string()
    } else {
        code.to_ascii_lowercase()
    }
}

/// Resolves a chain written by a person or a CSV file (`Bitcoin`, `bitcoin-sv`, `ethereum(usdt)`, `omni-usdt`, `ETH`)
/// to a tracehound chain name. Known chain names pass through; currency codes go through [`chain_for_currency`];
/// anything else comes back trimmed, lower case, with `-` and spaces as `_`.
///
/// ```
/// use tracehound_labels::chain_name;
/// assert_eq!(chain_name("bitcoin-sv", "1abc"), "bitcoin_sv");
/// assert_eq!(chain_name("ethereum(usdt)", "0x0000000000000000000000000000000000000000"), "ethereum");
/// assert_eq!(chain_name("BTC", "1abc"), "bitcoin");
/// ```
pub fn chain_name(input: &str, address: &str) -> String {
    let mut name = input.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    if let Some(open) = name.find('(') {
        name.truncate(open);
        name = name.trim_end_matches('_').to_string();
    }
    if KNOWN_CHAINS.contains(&name.as_str()) {
        return name;
    }
    match name.as_str() {
        "omni" | "omni_usdt" | "omni_layer" => "bitcoin".to_string(),
        "bnb_smart_chain" | "binance_smart_chain" | "bnb_chain" => "bsc".to_string(),
        "polygon_pos" | "matic" => "polygon".to_string(),
        "xrpl" | "xrp_ledger" => "ripple".to_string(),
        "arbitrum_one" => "arbitrum".to_string(),
        "bitcoin_testnet3" | "testnet" => "bitcoin_testnet".to_string(),
        "regtest" => "bitcoin_regtest".to_string(),
        "" => name,
        code => chain_for_currency(code, address),
    }
}

/// Whether `chain` is one of the EVM chains tracehound knows.
pub fn is_evm_chain(chain: &str) -> bool {
    EVM_CHAINS.contains(&chain)
}

/// Base58 alphabet check (Bitcoin's alphabet: no `0`, `O`, `I`, `l`).
fn is_base58(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l'))
}

/// Bech32 data alphabet check, case-insensitive (`1`, `b`, `i`, `o` are not in it).
fn is_bech32_data(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() && !matches!(b.to_ascii_lowercase(), b'1' | b'b' | b'i' | b'o'))
}

/// Whether `text` is a base58 address of 25 to 35 characters starting with one of `first`.
fn is_base58_with(text: &str, first: &[u8]) -> bool {
    (25..=35).contains(&text.len()) && first.contains(&text.as_bytes()[0]) && is_base58(text)
}

/// Whether `text` is a bech32 address with the human-readable part `hrp` (length 14..=90, any single case).
fn is_bech32_with(text: &str, hrp: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let mixed_case = text != lower && text != text.to_ascii_uppercase();
    !mixed_case && (14..=90).contains(&text.len()) && lower.strip_prefix(hrp).and_then(|rest| rest.strip_prefix('1')).is_some_and(is_bech32_data)
}

/// Checks that an address (already normalized) is plausible for its chain; `Err` says why not.
///
/// The checks are about shape, not checksums: EVM chains need `0x` + 40 hex digits; Bitcoin,
/// Litecoin, Dogecoin and Tron need their base58 or bech32 forms; for other chains the address only has to be
/// non-empty, free of whitespace and at most 256 characters.
pub fn check_address(chain: &str, address: &str) -> Result<(), String> {
    if address.is_empty() {
        return Err("empty address".to_string());
    }
    if address.chars().any(char::is_whitespace) {
        return Err(format!("address {address:?} contains whitespace"));
    }
    if address.len() > 256 {
        return Err(format!("address of {} characters is too long", address.len()));
    }
    let ok = match chain {
        c if is_evm_chain(c) => is_evm_address(address),
        "bitcoin" => is_base58_with(address, b"13") || is_bech32_with(address, "bc"),
        "bitcoin_testnet" => is_base58_with(address, b"mn2") || is_bech32_with(address, "tb"),
        "bitcoin_regtest" => is_base58_with(address, b"mn2") || is_bech32_with(address, "bcrt"),
        "litecoin" => is_base58_with(address, b"LM3") || is_bech32_with(address, "ltc"),
        "dogecoin" => is_base58_with(address, b"DA9"),
        "tron" => address.len() == 34 && address.starts_with('T') && is_base58(address),
        _ => true,
    };
    if ok {
        Ok(())
    } else if is_evm_chain(chain) {
        Err(format!("{address:?} is not an EVM address (0x + 40 hex digits) as {chain} needs"))
    } else {
        Err(format!("{address:?} does not look like a {chain} address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_and_bech32_are_lower_cased_base58_is_not() {
        assert_eq!(normalize_address("ethereum", "0X098B716B8Aaf21512996dC57EB0615e2383E2f96"), "0x098b716b8aaf21512996dc57eb0615e2383e2f96");
        assert_eq!(normalize_address("litecoin", "LTC1QABC"), "ltc1qabc");
        assert_eq!(normalize_address("bitcoin_regtest", "\tBCRT1QXYZ\n"), "bcrt1qxyz");
        assert_eq!(normalize_address("bitcoin", "3F2sZ4jbhvDKQdGbHYPC6ZxFXEau2m5Lqj"), "3F2sZ4jbhvDKQdGbHYPC6ZxFXEau2m5Lqj");
        // 0x but not 40 hex digits: not EVM, so left alone.
        assert_eq!(normalize_address("ethereum", "0xABC"), "0xABC");
        assert_eq!(normalize_address("tron", " TJ7hhYhVhaxNx6BPyq7yFpqZrQULL3JSdb "), "TJ7hhYhVhaxNx6BPyq7yFpqZrQULL3JSdb");
    }

    #[test]
    fn currency_codes_map_to_chains() {
        let cases = [
            ("XBT", "bitcoin"),
            ("BTC", "bitcoin"),
            ("ETH", "ethereum"),
            ("LTC", "litecoin"),
            ("BCH", "bitcoin_cash"),
            ("BSV", "bitcoin_sv"),
            ("TRX", "tron"),
            ("ZEC", "zcash"),
            ("DASH", "dash"),
            ("XMR", "monero"),
            ("XRP", "ripple"),
            ("ETC", "ethereum_classic"),
            ("BTG", "bitcoin_gold"),
            ("XVG", "verge"),
            ("XLM", "stellar"),
            ("BSC", "bsc"),
            ("ARB", "arbitrum"),
            ("DOGE", "dogecoin"),
            ("MATIC", "polygon"),
            ("eth", "ethereum"),
        ];
        for (code, chain) in cases {
            assert_eq!(chain_for_currency(code, "whatever"), chain, "{code}");
        }
        assert_eq!(chain_for_currency("USDT", "0x6f1ca141a28907f78ebaa64fb83a9088b02a8352"), "ethereum");
        assert_eq!(chain_for_currency("USDC", "TJ7hhYhVhaxNx6BPyq7yFpqZrQULL3JSdb"), "tron");
        assert_eq!(chain_for_currency("USDT", "1ASkqdo1hvydosVRvRv2j6eNnWpWLHucMX"), "bitcoin");
        assert_eq!(chain_for_currency("USDT", "35hK24tcLEWcgNA4JxpvbkNkoAcDGqQPsP"), "bitcoin");
        assert_eq!(chain_for_currency("Ripple", "r123"), "ripple");
        assert_eq!(chain_for_currency("SOL", "x"), "sol");
    }

    #[test]
    fn chain_names_from_csv_files() {
        assert_eq!(chain_name("Ethereum", ""), "ethereum");
        assert_eq!(chain_name("bitcoin-sv", ""), "bitcoin_sv");
        assert_eq!(chain_name("omni-usdt", "1ASkqdo1hvydosVRvRv2j6eNnWpWLHucMX"), "bitcoin");
        assert_eq!(chain_name("ethereum(usdc)", "0x6f1ca141a28907f78ebaa64fb83a9088b02a8352"), "ethereum");
        assert_eq!(chain_name("XBT", ""), "bitcoin");
        assert_eq!(chain_name("avalanche", ""), "avalanche");
    }

    #[test]
    fn address_shapes() {
        assert!(check_address("ethereum", "0x098b716b8aaf21512996dc57eb0615e2383e2f96").is_ok());
        assert!(check_address("ethereum", "0x098b716b8aaf21512996dc57eb0615e2383e2f9").is_err());
        assert!(check_address("bsc", "1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn").is_err());
        assert!(check_address("bitcoin", "1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn").is_ok());
        assert!(check_address("bitcoin", "bc1qm34lsc65zpw79lxes69zkqmk6ee3ewf0j77s3h").is_ok());
        assert!(check_address("bitcoin", "1Gq").is_err());
        assert!(check_address("bitcoin", "0x098b716b8aaf21512996dc57eb0615e2383e2f96").is_err());
        assert!(check_address("tron", "TJ7hhYhVhaxNx6BPyq7yFpqZrQULL3JSdb").is_ok());
        assert!(check_address("monero", "").is_err());
        assert!(check_address("monero", "4 5").is_err());
        assert!(check_address("eos", "binancecold1").is_ok());
    }
}

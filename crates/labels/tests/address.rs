//! Address normalization and chain names, including a property test that normalizing is idempotent.

use proptest::prelude::*;
use tracehound_labels::{chain_for_currency, chain_name, normalize_address, KNOWN_CHAINS};

#[test]
fn normalization_examples() {
    assert_eq!(normalize_address("ethereum", "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"), "0x098b716b8aaf21512996dc57eb0615e2383e2f96");
    assert_eq!(normalize_address("bitcoin", " bc1QM34LSC65ZPW79LXES69ZKQMK6EE3EWF0J77S3H\n"), "bc1qm34lsc65zpw79lxes69zkqmk6ee3ewf0j77s3h");
    assert_eq!(normalize_address("bitcoin_testnet", "TB1QXYZ"), "tb1qxyz");
    assert_eq!(normalize_address("litecoin", "tltc1QXYZ"), "tltc1qxyz");
    assert_eq!(normalize_address("bitcoin", "3F2sZ4jbhvDKQdGbHYPC6ZxFXEau2m5Lqj"), "3F2sZ4jbhvDKQdGbHYPC6ZxFXEau2m5Lqj");
    assert_eq!(normalize_address("ripple", "rPT1Sjq2YGrBMTttX4GZHjKu9dyfzbpAYe"), "rPT1Sjq2YGrBMTttX4GZHjKu9dyfzbpAYe");
}

#[test]
fn currency_codes_and_tokens() {
    assert_eq!(chain_for_currency("XBT", ""), "bitcoin");
    assert_eq!(chain_for_currency("btc", ""), "bitcoin");
    assert_eq!(chain_for_currency("MATIC", ""), "polygon");
    assert_eq!(chain_for_currency("USDT", "0x6f1ca141a28907f78ebaa64fb83a9088b02a8352"), "ethereum");
    assert_eq!(chain_for_currency("USDT", "TJ7hhYhVhaxNx6BPyq7yFpqZrQULL3JSdb"), "tron");
    assert_eq!(chain_for_currency("USDT", "1ASkqdo1hvydosVRvRv2j6eNnWpWLHucMX"), "bitcoin");
    assert_eq!(chain_for_currency("NEWCOIN", "x"), "newcoin");
    for chain in KNOWN_CHAINS {
        assert_eq!(chain_name(chain, ""), chain);
        assert_eq!(chain_name(&chain.to_ascii_uppercase().replace('_', "-"), ""), chain);
    }
}

proptest! {
    #[test]
    fn normalizing_twice_changes_nothing(chain in "[a-z_]{0,12}", address in "\\PC{0,64}") {
        let once = normalize_address(&chain, &address);
        prop_assert_eq!(normalize_address(&chain, &once), once.clone());
        prop_assert_eq!(once.trim(), once.as_str());
    }

    #[test]
    fn evm_addresses_match_whatever_their_case(hex in "[0-9a-fA-F]{40}") {
        let lower = normalize_address("ethereum", &format!("0x{}", hex.to_ascii_lowercase()));
        prop_assert_eq!(normalize_address("ethereum", &format!("0x{hex}")), lower.clone());
        prop_assert_eq!(normalize_address("ethereum", &format!("0X{}", hex.to_ascii_uppercase())), lower);
    }

    #[test]
    fn base58_is_left_alone(address in "[1-9A-HJ-NP-Za-km-z]{26,34}") {
        prop_assume!(!address.to_ascii_lowercase().starts_with("bc1"));
        prop_assert_eq!(normalize_address("bitcoin", &address), address);
    }
}

//! The category taxonomy and the confidence scale.
//!
//! Category ids follow GraphSense's concept and abuse taxonomies
//! (`graphsense-tagpack-tool`, `src/tagpack/db/concepts.yaml` and `abuses.yaml`) where one exists.
//! GraphSense's abuse `sanction` is stored as `sanctioned`, its `service_hack` as `theft`
//! (the id `service_hack` stays in the taxonomy so such input is recognised).
//!
//! Confidence levels are GraphSense's (`src/tagpack/db/confidence.csv`, graphsense-tagpack-tool
//! commit fcddd3ad04a4a22f008f2ab492160e4b8674dec2): 0–100, higher is more trustworthy.

/// One category of the taxonomy: id, short label, description.
pub const CATEGORIES: [(&str, &str, &str); 31] = [
    ("exchange", "Exchange", "A centralized exchange (CEX) trading crypto assets against each other or fiat money."),
    ("mixing_service", "Mixing service", "A tumbler or mixer that pools and re-distributes funds to obscure their origin."),
    ("coinjoin", "CoinJoin", "Collaborative transactions (Wasabi, Samourai Whirlpool, JoinMarket) that obscure payment flows."),
    ("bridge", "Bridge", "A cross-chain bridge holding or minting assets for another chain."),
    ("defi", "DeFi", "A decentralized-finance protocol (smart contracts)."),
    ("defi_dex", "Decentralized exchange", "A decentralized exchange protocol (AMM, order book)."),
    ("defi_lending", "DeFi lending", "A decentralized lending or borrowing protocol."),
    ("wallet_service", "Wallet service", "A software or web service that holds keys on behalf of its users."),
    ("payment_processor", "Payment processor", "A service that accepts crypto payments on behalf of merchants."),
    ("miner", "Miner", "A miner or mining pool receiving block rewards."),
    ("mining_service", "Mining service", "Cloud mining: mining as a service."),
    ("gambling", "Gambling", "A gambling or betting service."),
    ("market", "Darknet market", "A marketplace, typically on a darknet, selling illicit goods or services."),
    ("ransomware", "Ransomware", "Addresses receiving ransom payments of ransomware."),
    ("scam", "Scam", "A fraudulent scheme (investment fraud, Ponzi, fake giveaway)."),
    ("phishing", "Phishing", "Addresses of phishing campaigns and fake sites."),
    ("hacker", "Hacker", "Addresses controlled by the perpetrators of a hack or exploit."),
    ("theft", "Theft", "Funds stolen in a hack of a service (GraphSense abuse id: service_hack)."),
    ("service_hack", "Service hack", "GraphSense abuse id; same meaning as theft (imported tags are stored as theft)."),
    ("sanctioned", "Sanctioned", "Listed on a sanctions list such as OFAC's SDN list (GraphSense abuse id: sanction)."),
    ("terrorism", "Terrorism", "Financing of terrorism."),
    ("organization", "Organization", "An organization: a company, institution or group."),
    ("user", "User", "A person using crypto-asset services."),
    ("perpetrator", "Perpetrator", "Someone who committed a crime."),
    ("victim", "Victim", "An address of a victim of a hack, theft or scam (not the perpetrator)."),
    ("smart_contract", "Smart contract", "A smart contract account."),
    ("faucet", "Faucet", "A faucet giving out small amounts of coins."),
    ("ico_wallet", "ICO wallet", "A wallet used to collect funds of an initial coin offering."),
    ("donation", "Donation", "An address receiving donations."),
    ("unknown", "Unknown", "Category not known."),
    ("service", "Service", "Some service whose kind is not further specified (GraphSense concept)."),
];

/// GraphSense (and other common) ids that mean one of our categories.
const CATEGORY_ALIASES: [(&str, &str); 9] = [
    ("service_hack", "theft"),
    ("sanction", "sanctioned"),
    ("darknet_market", "market"),
    ("dark_market", "market"),
    ("mixing", "mixing_service"),
    ("mixer", "mixing_service"),
    ("hack", "hacker"),
    ("exploit", "hacker"),
    ("defi_bridge", "bridge"),
];

/// Whether a category string (as given, or after mapping a GraphSense id) is in the taxonomy.
///
/// ```
/// use tracehound_labels::category_known;
/// assert!(category_known("sanctioned"));
/// assert!(category_known("service_hack"));
/// assert!(!category_known("black_list"));
/// ```
pub fn category_known(category: &str) -> bool {
    let canonical = canonical_category(category);
    CATEGORIES.iter().any(|(id, _, _)| *id == canonical)
}

/// The id a category is stored under: trimmed, lower case, GraphSense aliases mapped
/// (`service_hack` → `theft`, `sanction` → `sanctioned`, …). Unknown ids are kept as given (lower case).
pub fn canonical_category(category: &str) -> String {
    let lower = category.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    match CATEGORY_ALIASES.iter().find(|(alias, _)| *alias == lower) {
        Some((_, id)) => (*id).to_string(),
        None if lower.is_empty() => "unknown".to_string(),
        None => lower,
    }
}

/// GraphSense's confidence scale: id and level.
pub const CONFIDENCE_LEVELS: [(&str, i64); 14] = [
    ("override", 100),
    ("ownership", 100),
    ("ledger_immanent", 100),
    ("manual_transaction", 90),
    ("service_api", 70),
    ("forensic_investigation", 70),
    ("authority_data", 60),
    ("trusted_provider", 50),
    ("service_data", 50),
    ("forensic", 50),
    ("untrusted_transaction", 40),
    ("web_crawl", 20),
    ("heuristic", 10),
    ("unknown", 5),
];

/// The level (0–100) of a GraphSense confidence id, `None` for ids not on the scale.
///
/// ```
/// assert_eq!(tracehound_labels::confidence_level("authority_data"), Some(60));
/// assert_eq!(tracehound_labels::confidence_level("gut_feeling"), None);
/// ```
pub fn confidence_level(confidence: &str) -> Option<i64> {
    let lower = confidence.trim().to_ascii_lowercase();
    CONFIDENCE_LEVELS.iter().find(|(id, _)| *id == lower).map(|(_, level)| *level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_map_to_taxonomy_ids() {
        assert_eq!(canonical_category("service_hack"), "theft");
        assert_eq!(canonical_category("Sanction"), "sanctioned");
        assert_eq!(canonical_category("exchange"), "exchange");
        assert_eq!(canonical_category("black_list"), "black_list");
        assert_eq!(canonical_category(""), "unknown");
        for (id, _, _) in CATEGORIES {
            assert!(category_known(id), "{id}");
        }
        for (alias, id) in CATEGORY_ALIASES {
            assert!(category_known(alias) && category_known(id), "{alias}");
        }
    }

    #[test]
    fn required_ids_are_present() {
        let required = [
            "exchange",
            "mixing_service",
            "coinjoin",
            "bridge",
            "defi",
            "defi_dex",
            "defi_lending",
            "wallet_service",
            "payment_processor",
            "miner",
            "mining_service",
            "gambling",
            "market",
            "ransomware",
            "scam",
            "phishing",
            "hacker",
            "theft",
            "service_hack",
            "sanctioned",
            "terrorism",
            "organization",
            "user",
            "perpetrator",
            "smart_contract",
            "faucet",
            "ico_wallet",
            "donation",
            "unknown",
            "victim",
        ];
        for id in required {
            assert!(CATEGORIES.iter().any(|(c, _, _)| *c == id), "{id}");
        }
    }
}

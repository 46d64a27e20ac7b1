//! The risk categories of screening and how the label taxonomy's categories map onto them.

use serde::{Deserialize, Serialize};

/// The risk categories that exposure is measured in, in the order of their ids. A tag's category
/// maps onto at most one of them ([`risk_category_of`]); an address with tags of several risk
/// categories counts as the first one here (a sanctioned exchange is `sanctioned`).
pub const RISK_CATEGORIES: [&str; 11] =
    ["sanctioned", "stolen_funds", "terrorism", "ransomware", "darknet_market", "mixing_service", "scam", "gambling", "bridge", "exchange", "miner"];

/// Index of a risk category in [`RISK_CATEGORIES`].
pub type CategoryId = u8;

/// The risk category a tag of the label taxonomy counts as, if any. Incident addresses (roles
/// attacker, attacker contract, laundering) count as `stolen_funds` too; see the exposure build.
pub fn risk_category_of(tag_category: &str) -> Option<CategoryId> {
    let name = match tag_category {
        "sanctioned" | "sanction" => "sanctioned",
        "theft" | "service_hack" | "hacker" | "perpetrator" => "stolen_funds",
        "terrorism" => "terrorism",
        "ransomware" => "ransomware",
        "market" | "darknet_market" => "darknet_market",
        "mixing_service" | "mixer" => "mixing_service",
        "scam" | "phishing" => "scam",
        "gambling" => "gambling",
        "bridge" => "bridge",
        "exchange" => "exchange",
        "miner" | "mining_service" => "miner",
        _ => return None,
    };
    category_id(name)
}

/// Id of a risk category by name.
pub fn category_id(name: &str) -> Option<CategoryId> {
    RISK_CATEGORIES.iter().position(|c| *c == name).map(|i| i as CategoryId)
}

/// Name of a risk category id.
pub fn category_name(id: CategoryId) -> &'static str {
    RISK_CATEGORIES[id as usize]
}

/// Which side of an address's funds an exposure measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Value received, by where it came from (backward).
    Received,
    /// Value sent, by where it went (forward).
    Sent,
}

impl Flow {
    /// `received` or `sent`.
    pub fn name(self) -> &'static str {
        match self {
            Flow::Received => "received",
            Flow::Sent => "sent",
        }
    }
}

/// Severity of a screening result, from none to severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// No rule fired.
    None,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Severe: block the funds (every sanctions hit).
    Severe,
}

impl Severity {
    /// Name as written in policies and results.
    pub fn name(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Severe => "severe",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taxonomy_maps_onto_risk_categories() {
        assert_eq!(risk_category_of("theft").map(category_name), Some("stolen_funds"));
        assert_eq!(risk_category_of("market").map(category_name), Some("darknet_market"));
        assert_eq!(risk_category_of("defi_dex"), None);
        for (i, c) in RISK_CATEGORIES.iter().enumerate() {
            assert_eq!(category_id(c), Some(i as u8));
        }
        assert!(Severity::Severe > Severity::High && Severity::Low > Severity::None);
    }
}

//! Risk policies: rules of category × kind of exposure × flow × threshold → severity.
//!
//! A policy is a YAML file (the bundled default is `data/policies/default.yaml`):
//!
//! ```yaml
//! name: my-exchange
//! rules:
//!   - name: stolen-funds-indirect
//!     category: stolen_funds   # a risk category (see RISK_CATEGORIES)
//!     exposure: indirect       # tagged (the subject or its entity carries the tag) | direct | indirect | any
//!     flow: received           # received | sent | any (ignored for `tagged`)
//!     min_share: 0.05          # share of the flow's value, 0–1 (default 0: any amount)
//!     min_amount: "1000000"    # base units, decimal string (default 0)
//!     severity: high           # low | medium | high | severe
//! ```
//!
//! A rule fires when the exposure reaches both thresholds. The result's level is the most severe
//! rule that fired; a subject tagged `sanctioned` (itself or its entity) is always `severe`,
//! whatever the policy says (rule `sanctions-list`).

use crate::risk::{category_id, Flow, Severity, RISK_CATEGORIES};
use serde::{Deserialize, Serialize};

/// The bundled default policy.
pub const DEFAULT_POLICY: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/policies/default.yaml"));

/// Which exposure a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposureKind {
    /// The subject (or its entity) carries a tag of the category.
    Tagged,
    /// Value exchanged directly with the category.
    Direct,
    /// Value traced to the category through intermediaries.
    Indirect,
    /// Direct plus indirect.
    Any,
}

/// Which flow a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowSel {
    /// Received from.
    Received,
    /// Sent to.
    Sent,
    /// Either.
    Any,
}

/// One rule of a policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Name, shown in results.
    pub name: String,
    /// Risk category.
    pub category: String,
    /// Kind of exposure.
    pub exposure: ExposureKind,
    /// Flow (default: received).
    #[serde(default = "received")]
    pub flow: FlowSel,
    /// Minimum share of the flow's value, 0–1.
    #[serde(default)]
    pub min_share: f64,
    /// Minimum amount in base units (decimal string).
    #[serde(default)]
    pub min_amount: Option<String>,
    /// Severity when it fires.
    pub severity: Severity,
}

fn received() -> FlowSel {
    FlowSel::Received
}

/// A risk policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Name.
    pub name: String,
    /// Rules.
    pub rules: Vec<Rule>,
    /// Parsed `min_amount` of each rule.
    #[serde(skip)]
    pub min_amounts: Vec<u128>,
}

/// A policy that cannot be used, with the place of the mistake.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {detail}")]
pub struct PolicyError {
    /// File (or `default policy`).
    pub file: String,
    /// What is wrong, naming the rule and field.
    pub detail: String,
}

impl Policy {
    /// The bundled default policy.
    pub fn default_policy() -> Policy {
        Policy::parse("default policy", DEFAULT_POLICY).expect("the bundled policy is valid")
    }

    /// Parses and checks a policy; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let err = |detail: String| PolicyError { file: file.to_string(), detail };
        let mut p: Policy = serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?;
        if p.rules.is_empty() {
            return Err(err("no rules".into()));
        }
        for (k, r) in p.rules.iter().enumerate() {
            let at = format!("rule {} ({:?})", k + 1, r.name);
            if category_id(&r.category).is_none() {
                return Err(err(format!("{at}: category {:?} is not a risk category (known: {})", r.category, RISK_CATEGORIES.join(", "))));
            }
            if !(0.0..=1.0).contains(&r.min_share) {
                return Err(err(format!("{at}: min_share {} must be between 0 and 1", r.min_share)));
            }
            if r.severity == Severity::None {
                return Err(err(format!("{at}: severity none fires nothing; use low, medium, high or severe")));
            }
            let amount = match &r.min_amount {
                None => 0,
                Some(a) => a.parse::<u128>().map_err(|_| err(format!("{at}: min_amount {a:?} is not a whole number of base units")))?,
            };
            p.min_amounts.push(amount);
        }
        Ok(p)
    }
}

/// The exposure of a subject to one category in one flow, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Category id.
    pub category: u8,
    /// Flow.
    pub flow: Flow,
    /// Direct amount.
    pub direct: u128,
    /// Indirect amount.
    pub indirect: u128,
    /// Total value of the flow (the denominator of shares).
    pub value: u128,
}

/// A rule that fired, with the amount and share that made it fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// Index of the rule in the policy.
    pub rule: usize,
    /// Amount that fired it (0 for a tag rule).
    pub amount: u128,
    /// Share that fired it.
    pub share: f64,
    /// Flow it looked at (received for a tag rule).
    pub flow: Flow,
}

impl Policy {
    /// The rules that fire for `measured` and the categories the subject is tagged with.
    pub fn evaluate(&self, measured: &[Measured], tagged: &[u8]) -> Vec<Fired> {
        let mut out = vec![];
        for (k, r) in self.rules.iter().enumerate() {
            let c = category_id(&r.category).expect("checked when parsed");
            if r.exposure == ExposureKind::Tagged {
                if tagged.contains(&c) {
                    out.push(Fired { rule: k, amount: 0, share: 1.0, flow: Flow::Received });
                }
                continue;
            }
            for m in measured.iter().filter(|m| m.category == c) {
                let flow_ok = match r.flow {
                    FlowSel::Any => true,
                    FlowSel::Received => m.flow == Flow::Received,
                    FlowSel::Sent => m.flow == Flow::Sent,
                };
                let amount = match r.exposure {
                    ExposureKind::Direct => m.direct,
                    ExposureKind::Indirect => m.indirect,
                    _ => m.direct + m.indirect,
                };
                let share = if m.value == 0 { 0.0 } else { amount as f64 / m.value as f64 };
                if flow_ok && amount > 0 && amount >= self.min_amounts[k] && share >= r.min_share {
                    out.push(Fired { rule: k, amount, share, flow: m.flow });
                    break;
                }
            }
        }
        out
    }
}

/// The score 0–10 of a severity: none 0, low 2.5, medium 5, high 7.5, severe 10.
pub fn score(level: Severity) -> f64 {
    match level {
        Severity::None => 0.0,
        Severity::Low => 2.5,
        Severity::Medium => 5.0,
        Severity::High => 7.5,
        Severity::Severe => 10.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_parses_and_bad_ones_name_the_rule() {
        let p = Policy::default_policy();
        assert!(p.rules.len() >= 10);
        let e = Policy::parse("p.yaml", "name: x\nrules:\n  - {name: a, category: stolen, exposure: direct, severity: high}\n").unwrap_err();
        assert!(e.to_string().contains("p.yaml: rule 1 (\"a\"): category \"stolen\""), "{e}");
        let e = Policy::parse("p.yaml", "name: x\nrules:\n  - {name: a, category: scam, exposure: direct, severity: high, min_share: 2}\n").unwrap_err();
        assert!(e.to_string().contains("min_share 2"), "{e}");
        let e = Policy::parse("p.yaml", "name: x\nrules:\n  - {name: a, category: scam, exposure: sideways, severity: high}\n").unwrap_err();
        assert!(e.to_string().starts_with("p.yaml: rules[0].exposure"), "{e}");
    }

    #[test]
    fn thresholds_decide_what_fires() {
        let p = Policy::parse(
            "t",
            "name: t\nrules:\n  - {name: big, category: scam, exposure: indirect, min_share: 0.5, severity: high}\n  - {name: any, category: scam, exposure: any, min_amount: \"10\", severity: low}\n  - {name: tag, category: gambling, exposure: tagged, severity: medium}\n",
        )
        .unwrap();
        let scam = category_id("scam").unwrap();
        let m = |direct, indirect| Measured { category: scam, flow: Flow::Received, direct, indirect, value: 100 };
        assert_eq!(p.evaluate(&[m(0, 49)], &[]).iter().map(|f| f.rule).collect::<Vec<_>>(), vec![1]);
        assert_eq!(p.evaluate(&[m(0, 50)], &[]).iter().map(|f| f.rule).collect::<Vec<_>>(), vec![0, 1]);
        assert!(p.evaluate(&[m(5, 4)], &[]).is_empty());
        assert_eq!(p.evaluate(&[], &[category_id("gambling").unwrap()]).len(), 1);
    }
}

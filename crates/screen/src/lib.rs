//! Screening: the exposure index (how much of what each address and cluster received came from,
//! and of what it sent went to, each risk category, directly and through intermediaries, under
//! the haircut model), risk policies, and the results a screening returns.

pub mod exposure;
pub mod index;
pub mod policy;
pub mod result;
pub mod risk;
mod runs;

pub use result::{EntityInfo, ExposureLine, Reason, ScreenResult, SourceEvidence, Status, SubjectKind, TagEvidence};
pub use risk::{Flow, Severity, RISK_CATEGORIES};

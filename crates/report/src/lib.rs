//! The incident registry, daily USD prices, statistics and self-contained HTML reports.
//!
//! The registry is the bundled list of DPRK-attributed thefts (`data/incidents/`, embedded in the
//! binary: 267 thefts 2016–2025, each with its sources and an [`Attribution`] level, and 8 published
//! totals) plus the user's own incidents, one YAML file each in `<data dir>/incidents/`. Prices are
//! the user's imports in `<data dir>/prices/prices.csv` (FRED, CoinMetrics community or
//! `date,asset,usd` CSV; no third-party series is bundled), stablecoins at $1 by definition, and a
//! simulated series for the demo's simulated chain, marked as such wherever it is used. Statistics group the incidents (never the published aggregates)
//! by actor, country, year, victim type or category, and every figure lists the incident ids and
//! sources behind it; each published total is set beside the registry's sum for its years
//! ([`Reproduction`]: the difference, the incidents, reproduced within 10% or not, and why).
//! Simulated cases (the `demo` heist, [`Provenance::Simulated`]) are left out of
//! statistics unless [`StatsOptions::include_simulated`] asks for them. A report records the registry
//! [`Registry::version`] it was computed from.
//!
//! ```
//! use tracehound_report::{stats, Dim, PriceTable, Registry};
//!
//! let registry = Registry::bundled();
//! let prices = PriceTable::bundled();
//! let table = stats(&registry, &prices, &[Dim::Year]);
//! let y2022 = table.groups.iter().find(|g| g.key == ["2022"]).unwrap();
//! assert_eq!(y2022.count, 14);
//! assert_eq!(y2022.usd_reported, 805_222_860); // the NIS and Chainalysis 2022 aggregates are not added
//! let nis = table.reproductions.iter().find(|r| r.aggregate == "nis_2022_aggregate").unwrap();
//! assert_eq!(nis.status, tracehound_report::ReproductionStatus::NotReproduced); // +28.6%
//! let html = tracehound_report::html_report("DPRK thefts", &table, &registry, None);
//! assert!(html.contains("<svg"));
//! ```
//!
//! Nothing here reads the network or any file outside the data directory it is given.

#![warn(missing_docs)]

mod html;
mod incidents;
mod prices;
mod stats;
mod util;

/// `YYYY-MM-DD` (UTC) of a unix time.
pub fn date_of_unix(unix: u64) -> String {
    let (y, m, d) = util::civil_from_days((unix / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Unix time of midnight UTC of a valid date `YYYY-MM-DD` (days per month checked); `None` otherwise or before 1970.
pub fn unix_of_date(s: &str) -> Option<u64> {
    u64::try_from(util::parse_day(s.trim())?.checked_mul(86_400)?).ok()
}

pub use html::{html_report, html_report_at, TraceSummary};
pub use incidents::{
    alternative_figures, derive_attribution, AlternativeFigure, Attribution, Incident, Provenance, PublishedNote, Registry, Seed, SeedKind, TRACE_ROLES,
    VICTIM_TYPES,
};
pub use prices::{PricePoint, PriceTable, MAX_PRICE_AGE_DAYS};
pub use stats::{
    stats, stats_with, Dim, Group, NotRevalued, NotRevaluedCode, Published, Reproduction, ReproductionStatus, Revaluation, RevaluedPart, StatsOptions,
    StatsTable, Totals, REPRODUCTION_TOLERANCE,
};

/// Everything that can go wrong in this crate; each message names the file, and the line or field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A field of an incident file is missing or invalid.
    #[error("{file}: field \"{field}\": {reason}")]
    Field {
        /// The file.
        file: String,
        /// The field (`seeds[2].chain` for nested ones).
        field: String,
        /// What is wrong and, where possible, what is expected.
        reason: String,
    },
    /// A row of a CSV file is invalid.
    #[error("{file}:{line}: {reason}")]
    Row {
        /// The file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A whole file is invalid (not YAML, no usable header, an id already taken, …).
    #[error("{file}: {reason}")]
    File {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

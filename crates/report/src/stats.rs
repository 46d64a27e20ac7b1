//! Statistics over the registry: incidents grouped by actor, country, year, victim type or category.
//!
//! Only incidents are grouped; aggregates (published totals such as the NIS 2017–2022 figure) are
//! listed apart in [`StatsTable::published`] and never added to any sum, since they overlap the incidents.
//!
//! Simulated cases ([`crate::Provenance::Simulated`]: the heist `tracehound demo` registers on its
//! simulated chain, or any YAML file with `simulated: true`) are not real incidents: [`stats`] leaves
//! them out of every group, total and published figure and lists their ids in
//! [`StatsTable::simulated`]; [`stats_with`] and [`StatsOptions::include_simulated`] count them.
//!
//! Two USD figures per group:
//! * `usd_reported`: the sum of `amount_usd` as reported at the time (incidents without one are counted
//!   in `usd_missing`);
//! * `usd_revalued`: the native amount at the day's close, for incidents whose `amount_native` is a plain
//!   sum `<number> <ASSET> [+ <number> <ASSET> …]` (commas, a leading `~`, and `k`/`M`/`B` suffixes allowed),
//!   whose date is a full day, and where every asset has a price within 7 days before that day. Others
//!   are counted in `not_revalued`; `usd_revalued` is `None` when no incident of the group was revalued.

use crate::incidents::{Incident, Registry};
use crate::prices::PriceTable;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A dimension to group incidents by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    /// The actor id (`lazarusgroup`), else the reported attribution, else `(unattributed)`.
    Actor,
    /// The actor's ISO-3166 alpha-2 country, else `(unknown)`.
    Country,
    /// The year of the incident date.
    Year,
    /// `exchange`, `bridge`, `wallet`, `casino`, `defi` or `other`.
    VictimType,
    /// The incident's own `category` when its file sets one, else its victim type.
    Category,
}

impl Dim {
    /// All dimensions.
    pub const ALL: [Dim; 5] = [Dim::Actor, Dim::Country, Dim::Year, Dim::VictimType, Dim::Category];

    /// The name used in output and on the command line (`actor`, `country`, `year`, `victim_type`, `category`).
    pub fn name(self) -> &'static str {
        match self {
            Dim::Actor => "actor",
            Dim::Country => "country",
            Dim::Year => "year",
            Dim::VictimType => "victim_type",
            Dim::Category => "category",
        }
    }

    fn key(self, i: &Incident) -> String {
        match self {
            Dim::Actor => i.actor.clone().or_else(|| Some(i.actor_name.clone()).filter(|n| !n.is_empty())).unwrap_or_else(|| "(unattributed)".into()),
            Dim::Country => i.country.clone().unwrap_or_else(|| "(unknown)".into()),
            Dim::Year => i.year().to_string(),
            Dim::VictimType => i.victim_type.clone(),
            Dim::Category => i.category.clone().unwrap_or_else(|| i.victim_type.clone()),
        }
    }
}

impl std::str::FromStr for Dim {
    type Err = String;

    /// Parses a dimension name (also `victim-type`, `type`).
    fn from_str(s: &str) -> Result<Dim, String> {
        let n = s.trim().to_ascii_lowercase().replace('-', "_");
        match n.as_str() {
            "type" => Ok(Dim::VictimType),
            _ => {
                Dim::ALL.into_iter().find(|d| d.name() == n).ok_or_else(|| format!("{s:?} is not a dimension (one of {})", Dim::ALL.map(Dim::name).join(", ")))
            }
        }
    }
}

/// One priced part of a revalued amount.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevaluedPart {
    /// Asset symbol.
    pub asset: String,
    /// Native amount.
    pub amount: f64,
    /// Close used, USD per unit.
    pub usd_price: f64,
    /// Day of the close used.
    pub price_date: String,
}

/// How one incident was revalued, so the figure can be checked by hand.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Revaluation {
    /// Incident id.
    pub incident: String,
    /// The parts of the native amount and their prices.
    pub parts: Vec<RevaluedPart>,
    /// Sum of amount × price, rounded to whole dollars.
    pub usd: u64,
}

/// One group of incidents and its figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// One value per dimension of [`StatsTable::dims`] (empty with no dimension: everything is one group).
    pub key: Vec<String>,
    /// Number of incidents.
    pub count: usize,
    /// Sum of the reported USD amounts.
    pub usd_reported: u64,
    /// Incidents without a reported USD amount.
    pub usd_missing: usize,
    /// Sum of the revalued amounts, `None` when no incident of the group could be revalued.
    pub usd_revalued: Option<u64>,
    /// Incidents that could not be revalued.
    pub not_revalued: usize,
    /// Ids of the incidents behind the figures.
    pub incidents: Vec<String>,
    /// Sources of those incidents, deduplicated, in incident order.
    pub sources: Vec<String>,
    /// How each revalued incident was priced.
    pub revaluations: Vec<Revaluation>,
}

/// A published aggregate figure, listed as published and never summed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Published {
    /// Registry id (`nis_2022_aggregate`).
    pub id: String,
    /// What the figure covers.
    pub name: String,
    /// Year or year range.
    pub date: String,
    /// Attribution as reported.
    pub actor_name: String,
    /// Actor country.
    pub country: Option<String>,
    /// The published USD figure.
    pub usd: Option<u64>,
    /// Who published it.
    pub sources: Vec<String>,
}

/// Figures over all grouped incidents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Number of incidents.
    pub count: usize,
    /// Sum of reported USD.
    pub usd_reported: u64,
    /// Sum of revalued USD (`None` when nothing could be revalued).
    pub usd_revalued: Option<u64>,
    /// Incidents that could not be revalued.
    pub not_revalued: usize,
}

/// Which incidents [`stats_with`] counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsOptions {
    /// Count simulated cases ([`crate::Provenance::Simulated`]) like real incidents. Off by default:
    /// they are left out of every figure and only listed in [`StatsTable::simulated`].
    pub include_simulated: bool,
}

/// The result of [`stats`]: groups, totals and the published aggregates, with the registry version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsTable {
    /// [`Registry::version`] of the registry the figures come from.
    pub registry_version: String,
    /// The grouping dimensions, in order.
    pub dims: Vec<Dim>,
    /// Groups sorted by key.
    pub groups: Vec<Group>,
    /// Over all groups.
    pub totals: Totals,
    /// Aggregates as published, not summed.
    pub published: Vec<Published>,
    /// Whether the simulated cases are counted in the figures above ([`StatsOptions::include_simulated`]).
    pub include_simulated: bool,
    /// Ids of the registry's simulated cases (not real incidents): left out of every figure above
    /// unless `include_simulated`.
    pub simulated: Vec<String>,
}

/// Groups the real (not simulated) non-aggregate incidents of `registry` by `dims` (see the module
/// docs for the figures); the same as [`stats_with`] with the default [`StatsOptions`].
pub fn stats(registry: &Registry, prices: &PriceTable, dims: &[Dim]) -> StatsTable {
    stats_with(registry, prices, dims, StatsOptions::default())
}

/// Groups the non-aggregate incidents of `registry` by `dims`, simulated cases only with
/// [`StatsOptions::include_simulated`].
pub fn stats_with(registry: &Registry, prices: &PriceTable, dims: &[Dim], options: StatsOptions) -> StatsTable {
    let mut groups: BTreeMap<Vec<String>, Group> = BTreeMap::new();
    let mut published = Vec::new();
    let mut simulated = Vec::new();
    for i in registry.incidents() {
        if i.is_simulated() {
            simulated.push(i.id.clone());
            if !options.include_simulated {
                continue;
            }
        }
        if i.aggregate {
            published.push(Published {
                id: i.id.clone(),
                name: i.name.clone(),
                date: i.date.clone(),
                actor_name: i.actor_name.clone(),
                country: i.country.clone(),
                usd: i.amount_usd,
                sources: i.sources.clone(),
            });
            continue;
        }
        let key: Vec<String> = dims.iter().map(|d| d.key(i)).collect();
        let g = groups.entry(key.clone()).or_insert_with(|| Group {
            key,
            count: 0,
            usd_reported: 0,
            usd_missing: 0,
            usd_revalued: None,
            not_revalued: 0,
            incidents: Vec::new(),
            sources: Vec::new(),
            revaluations: Vec::new(),
        });
        g.count += 1;
        match i.amount_usd {
            Some(usd) => g.usd_reported += usd,
            None => g.usd_missing += 1,
        }
        match revalue(i, prices) {
            Some(r) => {
                g.usd_revalued = Some(g.usd_revalued.unwrap_or(0) + r.usd);
                g.revaluations.push(r);
            }
            None => g.not_revalued += 1,
        }
        g.incidents.push(i.id.clone());
        for s in &i.sources {
            if !g.sources.contains(s) {
                g.sources.push(s.clone());
            }
        }
    }
    let groups: Vec<Group> = groups.into_values().collect();
    let totals = Totals {
        count: groups.iter().map(|g| g.count).sum(),
        usd_reported: groups.iter().map(|g| g.usd_reported).sum(),
        usd_revalued: groups.iter().filter_map(|g| g.usd_revalued).reduce(|a, b| a + b),
        not_revalued: groups.iter().map(|g| g.not_revalued).sum(),
    };
    published.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.id.cmp(&b.id)));
    StatsTable { registry_version: registry.version(), dims: dims.to_vec(), groups, totals, published, include_simulated: options.include_simulated, simulated }
}

/// Parses `"173,600 ETH + 25.5M USDC"` into (amount, ASSET) parts; `None` for anything else.
fn parse_native(text: &str) -> Option<Vec<(f64, String)>> {
    text.split('+')
        .map(|part| {
            let part = part.trim().trim_start_matches('~').trim_start();
            let (num, asset) = part.split_once(char::is_whitespace)?;
            let asset = asset.trim();
            if asset.is_empty() || !asset.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            let (digits, mult) = match num.as_bytes().last()? {
                b'k' | b'K' => (&num[..num.len() - 1], 1e3),
                b'M' => (&num[..num.len() - 1], 1e6),
                b'B' | b'b' => (&num[..num.len() - 1], 1e9),
                _ => (num, 1.0),
            };
            let plain: String = digits.chars().filter(|c| *c != ',').collect();
            if plain.is_empty() || !plain.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return None;
            }
            let v = plain.parse::<f64>().ok()? * mult;
            (v.is_finite() && v > 0.0).then(|| (v, asset.to_ascii_uppercase()))
        })
        .collect()
}

fn revalue(i: &Incident, prices: &PriceTable) -> Option<Revaluation> {
    let parts = parse_native(i.amount_native.as_deref()?)?;
    let mut priced = Vec::with_capacity(parts.len());
    let mut usd = 0.0;
    for (amount, asset) in parts {
        let (usd_price, price_date) = prices.usd_at(&asset, &i.date)?;
        usd += amount * usd_price;
        priced.push(RevaluedPart { asset, amount, usd_price, price_date });
    }
    Some(Revaluation { incident: i.id.clone(), parts: priced, usd: usd.round() as u64 })
}

impl StatsTable {
    /// Ids of the simulated cases left out of the figures (none when they are included).
    pub fn simulated_left_out(&self) -> &[String] {
        if self.include_simulated {
            &[]
        } else {
            &self.simulated
        }
    }

    /// One sentence on the simulated cases (left out, or counted), `None` when the registry has none.
    pub fn simulated_note(&self) -> Option<String> {
        let n = self.simulated.len();
        if n == 0 {
            return None;
        }
        let (cases, not_real) = if n == 1 { ("simulated case", "not a real incident") } else { ("simulated cases", "not real incidents") };
        let ids = self.simulated.join(", ");
        Some(if self.include_simulated {
            format!("The figures include {n} {cases} ({ids}): {not_real}.")
        } else {
            format!("{n} {cases} ({ids}) left out of the figures: {not_real}.")
        })
    }

    /// Pretty-printed JSON of the whole table.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a stats table serializes")
    }

    /// CSV, one row per group, one per published aggregate, then one per simulated case (`section` =
    /// `group` | `published` | `simulated_left_out` | `simulated_included`; a simulated row has only
    /// its id in `incidents`).
    ///
    /// Columns: `section`, one per dimension, `count, usd_reported, usd_missing, usd_revalued,
    /// not_revalued, incidents, sources, registry_version`; lists are joined with ` | `.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["section".to_string()];
        header.extend(self.dims.iter().map(|d| d.name().to_string()));
        header.extend(["count", "usd_reported", "usd_missing", "usd_revalued", "not_revalued", "incidents", "sources", "registry_version"].map(String::from));
        w.write_record(&header).expect("write to memory");
        for g in &self.groups {
            let mut row = vec!["group".to_string()];
            row.extend(g.key.iter().cloned());
            row.extend([
                g.count.to_string(),
                g.usd_reported.to_string(),
                g.usd_missing.to_string(),
                g.usd_revalued.map(|v| v.to_string()).unwrap_or_default(),
                g.not_revalued.to_string(),
                g.incidents.join(" | "),
                g.sources.join(" | "),
                self.registry_version.clone(),
            ]);
            w.write_record(&row).expect("write to memory");
        }
        for p in &self.published {
            let mut row = vec!["published".to_string()];
            row.extend(self.dims.iter().map(|_| String::new()));
            row.extend([
                String::new(),
                p.usd.map(|v| v.to_string()).unwrap_or_default(),
                String::new(),
                String::new(),
                String::new(),
                p.id.clone(),
                p.sources.join(" | "),
                self.registry_version.clone(),
            ]);
            w.write_record(&row).expect("write to memory");
        }
        let section = if self.include_simulated { "simulated_included" } else { "simulated_left_out" };
        for id in &self.simulated {
            let mut row = vec![section.to_string()];
            row.extend(self.dims.iter().map(|_| String::new()));
            row.extend([String::new(), String::new(), String::new(), String::new(), String::new(), id.clone(), String::new(), self.registry_version.clone()]);
            w.write_record(&row).expect("write to memory");
        }
        String::from_utf8(w.into_inner().expect("write to memory")).expect("CSV of UTF-8 strings")
    }

    /// A plain-text table for the terminal.
    pub fn to_text(&self) -> String {
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut header: Vec<String> = self.dims.iter().map(|d| d.name().to_string()).collect();
        header.extend(["incidents", "usd_reported", "usd_revalued", "ids"].map(String::from));
        rows.push(header);
        let revalued = |v: Option<u64>, n: usize| match (v, n) {
            (None, _) => "-".to_string(),
            (Some(v), 0) => group_digits(v),
            (Some(v), n) => format!("{} ({n} not revalued)", group_digits(v)),
        };
        for g in &self.groups {
            let mut r = g.key.clone();
            r.extend([g.count.to_string(), group_digits(g.usd_reported), revalued(g.usd_revalued, g.not_revalued), g.incidents.join(",")]);
            rows.push(r);
        }
        let mut total: Vec<String> = self.dims.iter().map(|_| String::new()).collect();
        if let Some(t) = total.first_mut() {
            *t = "total".into();
        }
        total.extend([
            self.totals.count.to_string(),
            group_digits(self.totals.usd_reported),
            revalued(self.totals.usd_revalued, self.totals.not_revalued),
            String::new(),
        ]);
        rows.push(total);
        let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for (n, r) in rows.iter().enumerate() {
            let last = r.len() - 1;
            for (c, cell) in r.iter().enumerate() {
                let numeric = c >= self.dims.len() && c < last;
                let pad = widths[c] - cell.chars().count();
                let sep = if c == last { "" } else { "  " };
                if numeric {
                    let _ = write!(out, "{}{cell}{sep}", " ".repeat(pad));
                } else if c == last {
                    out.push_str(cell);
                } else {
                    let _ = write!(out, "{cell}{}{sep}", " ".repeat(pad));
                }
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
            if n == 0 || n == rows.len() - 2 {
                out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * last));
                out.push('\n');
            }
        }
        if !self.published.is_empty() {
            out.push_str("\nPublished aggregates (as published; overlap the incidents, never added):\n");
            for p in &self.published {
                let usd = p.usd.map_or_else(|| "-".into(), group_digits);
                let _ = writeln!(out, "  {:<24} {:<10} {:>15}  {}", p.id, p.date, usd, p.name);
            }
        }
        if let Some(note) = self.simulated_note() {
            let hint = match (self.include_simulated, self.simulated.len()) {
                (true, _) => "",
                (false, 1) => " `report stats --include-simulated` counts it.",
                (false, _) => " `report stats --include-simulated` counts them.",
            };
            let _ = writeln!(out, "\n{note}{hint}");
        }
        let _ = writeln!(out, "\nregistry version {}", self.registry_version);
        out
    }
}

/// `1234567` → `1,234,567`.
pub(crate) fn group_digits(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_amounts() {
        assert_eq!(parse_native("173,600 ETH + 25.5M USDC"), Some(vec![(173_600.0, "ETH".into()), (25_500_000.0, "USDC".into())]));
        assert_eq!(parse_native("~3,000,000 EOS + ~20,200,000 XRP").unwrap().len(), 2);
        assert_eq!(parse_native("12.5 btc"), Some(vec![(12.5, "BTC".into())]));
        assert_eq!(parse_native("~85,837 ETH equivalent after swaps"), None);
        assert_eq!(parse_native("17% of exchange assets"), None);
        assert_eq!(parse_native("approx. 35 billion KRW"), None);
        assert_eq!(parse_native(""), None);
    }

    #[test]
    fn dims_parse() {
        assert_eq!("victim-type".parse::<Dim>(), Ok(Dim::VictimType));
        assert_eq!("Year".parse::<Dim>(), Ok(Dim::Year));
        assert!("colour".parse::<Dim>().unwrap_err().contains("actor, country, year, victim_type, category"));
    }

    #[test]
    fn digits_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1_000), "1,000");
        assert_eq!(group_digits(1_500_000_000), "1,500,000,000");
    }

    #[test]
    fn bundled_by_year_excludes_aggregates() {
        let t = stats(&Registry::bundled(), &PriceTable::bundled(), &[Dim::Year]);
        assert_eq!(t.totals.count, 12);
        assert_eq!(t.published.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["nis_2017_2022_aggregate", "dprk_2021_aggregate", "nis_2022_aggregate"]);
        assert!(t.groups.iter().all(|g| g.key[0] != "2021"), "2021 has only the aggregate");
        let text = t.to_text();
        assert!(text.contains("720,000,000"), "{text}");
        let csv = t.to_csv();
        assert!(csv.lines().any(|l| l.starts_with("group,2022,2,720000000,")), "{csv}");
        assert!(csv.lines().any(|l| l.starts_with("published,,,1200000000,")), "{csv}");
        let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        assert_eq!(json["dims"][0], "year");
        assert_eq!(json["registry_version"], t.registry_version);
    }
}

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
//!   Each incident not revalued is listed in [`Group::unrevalued`] with its reason ([`NotRevalued`]):
//!   no amount at all, no asset or chain in the sources (the amount only in USD as reported), assets
//!   named but the amount only in USD, a native amount that is free text, a date that is not a full
//!   day, or no imported price for an asset on that day.

use crate::incidents::{Attribution, Incident, PublishedNote, Registry};
use crate::prices::PriceTable;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A dimension to group incidents by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
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
    /// The attribution level (`government` … `suspected`, see [`Attribution`]), else `(none)`.
    Attribution,
}

impl Dim {
    /// All dimensions.
    pub const ALL: [Dim; 6] = [Dim::Actor, Dim::Country, Dim::Year, Dim::VictimType, Dim::Category, Dim::Attribution];

    /// The name used in output and on the command line (`actor`, `country`, `year`, `victim_type`,
    /// `category`, `attribution`).
    pub fn name(self) -> &'static str {
        match self {
            Dim::Actor => "actor",
            Dim::Country => "country",
            Dim::Year => "year",
            Dim::VictimType => "victim_type",
            Dim::Category => "category",
            Dim::Attribution => "attribution",
        }
    }

    fn key(self, i: &Incident) -> String {
        match self {
            Dim::Actor => i.actor.clone().or_else(|| Some(i.actor_name.clone()).filter(|n| !n.is_empty())).unwrap_or_else(|| "(unattributed)".into()),
            Dim::Country => i.country.clone().unwrap_or_else(|| "(unknown)".into()),
            Dim::Year => i.year().to_string(),
            Dim::VictimType => i.victim_type.clone(),
            Dim::Category => i.category.clone().unwrap_or_else(|| i.victim_type.clone()),
            Dim::Attribution => i.attribution.map_or_else(|| "(none)".to_string(), |a| a.name().to_string()),
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
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Revaluation {
    /// Incident id.
    pub incident: String,
    /// The parts of the native amount and their prices.
    pub parts: Vec<RevaluedPart>,
    /// Sum of amount × price, rounded to whole dollars.
    pub usd: u64,
}

/// Why an incident could not be revalued in USD ([`NotRevalued::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotRevaluedCode {
    /// Neither a native amount nor a USD amount in the sources.
    NoAmount,
    /// No asset or chain in the sources: the amount is only in USD as reported.
    NoAsset,
    /// Assets are named, but the amount is only in USD as reported.
    UsdOnly,
    /// The native amount as reported is free text, not `<number> <ASSET> [+ …]`.
    NativeNotPlain,
    /// The date is a month or a year, not a day.
    DateNotADay,
    /// No imported price for an asset within 7 days before the day.
    NoPrice,
}

/// One incident that could not be revalued in USD, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NotRevalued {
    /// Incident id.
    pub incident: String,
    /// The kind of reason.
    pub code: NotRevaluedCode,
    /// The reason in words, shared by the incidents with the same cause (`no imported price for BTC
    /// within 7 days before the day`).
    pub reason: String,
    /// What in the incident causes it: the native amount as reported, the date, the assets.
    pub detail: String,
}

/// One group of incidents and its figures.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
    /// Each incident that could not be revalued, with its reason (`not_revalued` of them).
    pub unrevalued: Vec<NotRevalued>,
}

/// A published aggregate figure, listed as published and never summed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
    /// The publisher, the years, a revision and the explanation (`data/incidents/published_totals.csv`),
    /// when the project recorded them.
    pub note: Option<PublishedNote>,
}

/// Whether the registry's incidents add up to a published total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReproductionStatus {
    /// The registry's sum for the same years is within [`REPRODUCTION_TOLERANCE`] of the published figure.
    Reproduced,
    /// It is not.
    NotReproduced,
}

impl ReproductionStatus {
    /// `reproduced` or `not reproduced`.
    pub fn text(self) -> &'static str {
        match self {
            ReproductionStatus::Reproduced => "reproduced",
            ReproductionStatus::NotReproduced => "not reproduced",
        }
    }

    fn of(registry: u64, published: u64) -> ReproductionStatus {
        if (registry as f64 - published as f64).abs() <= REPRODUCTION_TOLERANCE * published as f64 {
            ReproductionStatus::Reproduced
        } else {
            ReproductionStatus::NotReproduced
        }
    }
}

/// A published total counts as reproduced when the registry's sum is within this fraction of it (10%).
pub const REPRODUCTION_TOLERANCE: f64 = 0.10;

/// A published total beside the sum of the registry's incidents of the same years (with the same filters).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reproduction {
    /// Aggregate id.
    pub aggregate: String,
    /// Who published it (the note's publisher, else the aggregate's name).
    pub publisher: String,
    /// First and last year covered.
    pub first_year: u16,
    /// Last year covered.
    pub last_year: u16,
    /// The published USD figure.
    pub published_usd: u64,
    /// Incidents the publisher counted, when it says.
    pub published_incidents: Option<u32>,
    /// The sum of the reported USD of the registry's incidents of those years.
    pub registry_usd: u64,
    /// Number of those incidents.
    pub registry_count: usize,
    /// Those without a reported USD figure (counted as 0).
    pub registry_missing_usd: usize,
    /// The incidents behind `registry_usd`, largest reported USD first.
    pub incidents: Vec<String>,
    /// `registry_usd - published_usd`.
    pub difference_usd: i64,
    /// The difference as a percentage of the published figure.
    pub difference_pct: f64,
    /// Within [`REPRODUCTION_TOLERANCE`] or not.
    pub status: ReproductionStatus,
    /// A later figure by the same publisher, and the registry against it.
    pub revised_usd: Option<u64>,
    /// `registry_usd` against `revised_usd`, as a percentage of it.
    pub revised_difference_pct: Option<f64>,
    /// `status` against `revised_usd`.
    pub revised_status: Option<ReproductionStatus>,
    /// Why the registry does or does not add up to the figure (from the note; empty without one).
    pub why: String,
}

impl Reproduction {
    /// One plain sentence: the figures, the difference and whether the registry reproduces the total.
    pub fn sentence(&self) -> String {
        let years = if self.first_year == self.last_year { self.first_year.to_string() } else { format!("{}–{}", self.first_year, self.last_year) };
        let counted = self.published_incidents.map(|n| format!(" over {n} incidents")).unwrap_or_default();
        let missing = match self.registry_missing_usd {
            0 => String::new(),
            n => format!(" ({n} without a public USD figure)"),
        };
        let verdict = match self.status {
            ReproductionStatus::Reproduced => format!("the registry reproduces it (within {:.0}%)", REPRODUCTION_TOLERANCE * 100.0),
            ReproductionStatus::NotReproduced => format!("the registry does NOT reproduce it (more than {:.0}% apart)", REPRODUCTION_TOLERANCE * 100.0),
        };
        let revised = match (self.revised_usd, self.revised_difference_pct, self.revised_status) {
            (Some(r), Some(p), Some(s)) => format!(" Against the revised ${} the registry is {p:+.1}%: {}.", group_digits(r), s.text()),
            _ => String::new(),
        };
        format!(
            "{years}: {} published ${}{counted}; the registry's {} incidents{missing} sum to ${} ({}{}, {:+.1}%): {verdict}.{revised}",
            self.publisher,
            group_digits(self.published_usd),
            self.registry_count,
            group_digits(self.registry_usd),
            if self.difference_usd < 0 { "-$" } else { "+$" },
            group_digits(self.difference_usd.unsigned_abs()),
            self.difference_pct
        )
    }
}

/// Figures over all grouped incidents.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsOptions {
    /// Count simulated cases ([`crate::Provenance::Simulated`]) like real incidents. Off by default:
    /// they are left out of every figure and only listed in [`StatsTable::simulated`].
    pub include_simulated: bool,
    /// Count only incidents attributed at least this strongly (see [`Attribution`]); incidents
    /// without an attribution are then left out. Published aggregates are not filtered.
    pub min_attribution: Option<Attribution>,
    /// Count only incidents (and published aggregates) of this actor id (`lazarusgroup`).
    pub actor: Option<String>,
}

impl StatsOptions {
    fn counts(&self, i: &Incident) -> bool {
        let actor_ok = self.actor.as_deref().is_none_or(|a| i.actor.as_deref() == Some(a));
        let level_ok = i.aggregate || self.min_attribution.is_none_or(|min| i.attribution.is_some_and(|a| a >= min));
        actor_ok && level_ok
    }
}

/// The result of [`stats`]: groups, totals and the published aggregates, with the registry version.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
    /// The weakest attribution counted ([`StatsOptions::min_attribution`]), `None` for all.
    pub min_attribution: Option<Attribution>,
    /// The actor counted ([`StatsOptions::actor`]), `None` for all.
    pub actor: Option<String>,
    /// Incidents left out by `min_attribution` or `actor`.
    pub filtered_out: usize,
    /// Each published total with a USD figure beside the registry's sum for its years.
    pub reproductions: Vec<Reproduction>,
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
    let mut counted: Vec<&Incident> = Vec::new();
    let mut filtered_out = 0;
    for i in registry.incidents() {
        if i.is_simulated() {
            simulated.push(i.id.clone());
            if !options.include_simulated {
                continue;
            }
        }
        if !options.counts(i) {
            filtered_out += usize::from(!i.aggregate);
            continue;
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
                note: registry.published_note(&i.id).cloned(),
            });
            continue;
        }
        counted.push(i);
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
            unrevalued: Vec::new(),
        });
        g.count += 1;
        match i.amount_usd {
            Some(usd) => g.usd_reported += usd,
            None => g.usd_missing += 1,
        }
        match revalue(i, prices) {
            Ok(r) => {
                g.usd_revalued = Some(g.usd_revalued.unwrap_or(0) + r.usd);
                g.revaluations.push(r);
            }
            Err(why) => {
                g.not_revalued += 1;
                g.unrevalued.push(why);
            }
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
    let reproductions = published.iter().filter_map(|p| reproduce(p, &counted)).collect();
    StatsTable {
        registry_version: registry.version(),
        dims: dims.to_vec(),
        groups,
        totals,
        published,
        include_simulated: options.include_simulated,
        simulated,
        min_attribution: options.min_attribution,
        actor: options.actor,
        filtered_out,
        reproductions,
    }
}

/// The published figure `p` beside the sum of the counted incidents of its years.
fn reproduce(p: &Published, counted: &[&Incident]) -> Option<Reproduction> {
    let published_usd = p.usd?;
    let (first_year, last_year) = match &p.note {
        Some(n) => (n.first_year, n.last_year),
        None => PublishedNote::years_of(&p.date)?,
    };
    let mut behind: Vec<&Incident> = counted.iter().copied().filter(|i| i.year().parse::<u16>().is_ok_and(|y| (first_year..=last_year).contains(&y))).collect();
    behind.sort_by(|a, b| b.amount_usd.unwrap_or(0).cmp(&a.amount_usd.unwrap_or(0)).then_with(|| a.id.cmp(&b.id)));
    let registry_usd: u64 = behind.iter().filter_map(|i| i.amount_usd).sum();
    let pct = |published: u64| (registry_usd as f64 - published as f64) * 100.0 / published.max(1) as f64;
    let revised_usd = p.note.as_ref().and_then(|n| n.revised_usd);
    Some(Reproduction {
        aggregate: p.id.clone(),
        publisher: p.note.as_ref().map_or_else(|| p.name.clone(), |n| n.publisher.clone()),
        first_year,
        last_year,
        published_usd,
        published_incidents: p.note.as_ref().and_then(|n| n.incidents_counted),
        registry_usd,
        registry_count: behind.len(),
        registry_missing_usd: behind.iter().filter(|i| i.amount_usd.is_none()).count(),
        incidents: behind.iter().map(|i| i.id.clone()).collect(),
        difference_usd: registry_usd as i64 - published_usd as i64,
        difference_pct: pct(published_usd),
        status: ReproductionStatus::of(registry_usd, published_usd),
        revised_usd,
        revised_difference_pct: revised_usd.map(pct),
        revised_status: revised_usd.map(|r| ReproductionStatus::of(registry_usd, r)),
        why: p.note.as_ref().map(|n| n.why.clone()).unwrap_or_default(),
    })
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

fn revalue(i: &Incident, prices: &PriceTable) -> Result<Revaluation, NotRevalued> {
    let why = |code: NotRevaluedCode, reason: String, detail: String| NotRevalued { incident: i.id.clone(), code, reason, detail };
    let Some(native) = i.amount_native.as_deref() else {
        return Err(match (i.amount_usd, i.assets.is_empty() && i.chains.is_empty()) {
            (None, _) => why(NotRevaluedCode::NoAmount, "no amount in the sources, neither native nor in USD".into(), String::new()),
            (Some(_), true) => why(NotRevaluedCode::NoAsset, "no asset or chain in the sources: amount only in USD as reported".into(), String::new()),
            (Some(_), false) => why(
                NotRevaluedCode::UsdOnly,
                "amount only in USD as reported: the sources name the assets, not how much of each".into(),
                format!("assets {}", i.assets.join(", ")),
            ),
        });
    };
    let Some(parts) = parse_native(native) else {
        return Err(why(NotRevaluedCode::NativeNotPlain, "the native amount as reported is not a plain sum of <number> <ASSET>".into(), native.to_string()));
    };
    if crate::util::parse_day(&i.date).is_none() {
        return Err(why(NotRevaluedCode::DateNotADay, "the date is not a full day, so there is no day's price to take".into(), format!("date {}", i.date)));
    }
    let mut priced = Vec::with_capacity(parts.len());
    let mut missing: Vec<String> = Vec::new();
    let mut usd = 0.0;
    for (amount, asset) in parts {
        match prices.usd_at(&asset, &i.date) {
            Some((usd_price, price_date)) => {
                usd += amount * usd_price;
                priced.push(RevaluedPart { asset, amount, usd_price, price_date });
            }
            None if missing.contains(&asset) => {}
            None => missing.push(asset),
        }
    }
    if !missing.is_empty() {
        return Err(why(
            NotRevaluedCode::NoPrice,
            format!(
                "no imported price for {} within {} days before the day (`tracehound prices import`)",
                missing.join(", "),
                crate::prices::MAX_PRICE_AGE_DAYS
            ),
            format!("{native} on {}", i.date),
        ));
    }
    Ok(Revaluation { incident: i.id.clone(), parts: priced, usd: usd.round() as u64 })
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

    /// One sentence on the filters (`--min-attribution`, `--actor`), `None` without any.
    pub fn filter_note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(min) = self.min_attribution {
            let levels: Vec<&str> = Attribution::ALL.into_iter().filter(|a| *a >= min).map(Attribution::name).collect();
            parts.push(format!("attributed by {}", levels.join(", ")));
        }
        if let Some(actor) = &self.actor {
            parts.push(format!("of actor {actor}"));
        }
        (!parts.is_empty())
            .then(|| format!("Counting only incidents {} ({} left out); published totals are compared with these.", parts.join(" and "), self.filtered_out))
    }

    /// The incidents not revalued in USD, grouped by reason (in the order of [`NotRevaluedCode`]).
    pub fn unrevalued_by_reason(&self) -> Vec<(&str, Vec<&NotRevalued>)> {
        let mut by: BTreeMap<(NotRevaluedCode, &str), Vec<&NotRevalued>> = BTreeMap::new();
        for n in self.groups.iter().flat_map(|g| &g.unrevalued) {
            by.entry((n.code, n.reason.as_str())).or_default().push(n);
        }
        by.into_iter().map(|((_, reason), list)| (reason, list)).collect()
    }

    /// Pretty-printed JSON of the whole table.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a stats table serializes")
    }

    /// CSV, one row per group, one per published aggregate, one per [`Reproduction`] (the registry's
    /// count and sum for the aggregate's years, its incidents, and the sentence in `sources`), then one
    /// per simulated case (`section` = `group` | `published` | `reproduction` | `simulated_left_out` |
    /// `simulated_included`; a simulated row has only its id in `incidents`).
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
        for r in &self.reproductions {
            let mut row = vec!["reproduction".to_string()];
            row.extend(self.dims.iter().map(|_| String::new()));
            row.extend([
                r.registry_count.to_string(),
                r.registry_usd.to_string(),
                r.registry_missing_usd.to_string(),
                String::new(),
                String::new(),
                r.incidents.join(" | "),
                format!("{}: {}", r.aggregate, r.sentence()),
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
        if let Some(filter) = self.filter_note() {
            let _ = writeln!(out, "\n{filter}");
        }
        let unrevalued = self.unrevalued_by_reason();
        if !unrevalued.is_empty() {
            let _ = writeln!(out, "\nNot revalued in USD ({} of {} incidents), by reason:", self.totals.not_revalued, self.totals.count);
            for (reason, list) in unrevalued {
                let ids: Vec<String> =
                    list.iter().map(|n| if n.detail.is_empty() { n.incident.clone() } else { format!("{} ({})", n.incident, n.detail) }).collect();
                let _ = writeln!(out, "  {reason} ({}): {}", list.len(), ids.join(", "));
            }
        }
        if !self.reproductions.is_empty() {
            let _ = writeln!(
                out,
                "\nPublished totals beside the registry (never added to the incidents; reproduced = within {:.0}%):",
                REPRODUCTION_TOLERANCE * 100.0
            );
            for r in &self.reproductions {
                let _ = writeln!(out, "  {} — {}", r.aggregate, r.sentence());
                if !r.why.is_empty() {
                    let _ = writeln!(out, "    why: {}", r.why);
                }
                let shown: Vec<&str> = r.incidents.iter().take(5).map(String::as_str).collect();
                let more = r.incidents.len().saturating_sub(shown.len());
                let _ = writeln!(
                    out,
                    "    incidents (largest first): {}{}",
                    if shown.is_empty() { "none".to_string() } else { shown.join(", ") },
                    if more > 0 { format!(" and {more} more (--format json lists all)") } else { String::new() }
                );
            }
        }
        let without: Vec<&Published> = self.published.iter().filter(|p| p.usd.is_none()).collect();
        if !without.is_empty() {
            out.push_str("\nPublished aggregates without a USD figure:\n");
            for p in without {
                let _ = writeln!(out, "  {:<24} {:<10} {}", p.id, p.date, p.name);
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
        // 267 incidents of dprk_incidents_extended.csv (was 12 of seed_incidents.csv); 8 aggregates (was 3).
        assert_eq!(t.totals.count, 267);
        assert_eq!(t.published.len(), 8);
        assert!(t.published.iter().all(|p| p.id.ends_with("_aggregate") && p.note.is_some()));
        assert!(t.groups.iter().all(|g| g.incidents.iter().all(|i| !i.ends_with("_aggregate"))));
        let text = t.to_text();
        // 2022: 14 incidents, 805,222,860 (was Ronin + Harmony, 720,000,000).
        assert!(text.contains("805,222,860"), "{text}");
        let csv = t.to_csv();
        assert!(csv.lines().any(|l| l.starts_with("group,2022,14,805222860,")), "{csv}");
        assert!(csv.lines().any(|l| l.starts_with("published,,,1200000000,")), "{csv}");
        let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        assert_eq!(json["dims"][0], "year");
        assert_eq!(json["registry_version"], t.registry_version);
    }

    #[test]
    fn reproduction_tolerance_is_ten_percent_either_way() {
        assert_eq!(ReproductionStatus::of(110, 100), ReproductionStatus::Reproduced);
        assert_eq!(ReproductionStatus::of(90, 100), ReproductionStatus::Reproduced);
        assert_eq!(ReproductionStatus::of(111, 100), ReproductionStatus::NotReproduced);
        assert_eq!(ReproductionStatus::of(89, 100), ReproductionStatus::NotReproduced);
    }
}

//! The incident registry: bundled incidents plus the user's own, one YAML file each.
//!
//! # Bundled incidents
//!
//! `data/incidents/dprk_incidents_extended.csv` (275 rows: 267 thefts 2016–2025 and 8 published
//! aggregates) with the seeds of `data/labels/incidents/attacker_addresses.csv` (470 rows, joined on
//! `incident_id`), embedded at compile time; provenance in `data/incidents/SOURCES.md`. The file is a
//! superset of the former 15-row seed file: those rows keep their ids and figures, and a source that
//! later confirmed or contradicted one is appended to its note, so an incident is never listed twice.
//! How the CSV columns become fields:
//!
//! * `victim_type` is derived from the name and victim text by [`derive_victim_type`]: aggregates are
//!   `other` (they mix victims); otherwise the first rule that matches the lower-cased
//!   `name + " " + victim` wins: contains `bridge` → `bridge`; `casino`, `gambling` or `stake.com` →
//!   `casino`; `exchange` or a known exchange name (Bithumb, Youbit, Yapizon, KuCoin, Bybit, Upbit,
//!   Binance, …) → `exchange`; `wallet` → `wallet`; `defi`, `protocol`, `dex`, `lending` → `defi`; else
//!   `other`. Exchanges are tested before `wallet` because exchange thefts are described as
//!   "hot-wallet"/"cold-wallet" hacks.
//! * `actor` is `lazarusgroup` (the label store's actor id, from the GraphSense actor pack) for every
//!   row with `actor_country` KP, i.e. all bundled rows; the reported attribution ("suspected",
//!   "TraderTraitor", …) stays in `actor_name`.
//! * `chains` are lower-cased with `-` → `_` (`bitcoin-sv` → `bitcoin_sv`); the CSV's `others` is not
//!   a chain and is dropped (the amount text still says so). `assets` are kept as written.
//! * `aggregate` is true for ids ending in `_aggregate`: published totals, never summed as incidents.
//! * `sources` is the row's `source_note`: it names the source of every figure, and where sources
//!   disagree (dates, USD, native amounts) it keeps each figure with its source.
//! * `attribution` is derived from the note by [`derive_attribution`] (see [`Attribution`] for the
//!   levels); `attributed_by` keeps the attribution clauses it was read from and
//!   `attribution_disputed` is true when a clause says the attribution is disputed. Aggregates have none.
//!
//! # Users' incidents (`incident add incident.yaml`)
//!
//! One YAML mapping per file, with the field names of [`Incident`]:
//!
//! ```yaml
//! id: acme_exchange_2024          # required, [a-z0-9_]+, not a bundled id
//! name: ACME exchange hot-wallet hack   # required
//! date: 2024-05-01                # required: YYYY, YYYY-MM or YYYY-MM-DD (YYYY/YYYY for aggregates)
//! victim: ACME Ltd                # optional
//! victim_type: exchange           # optional: exchange | bridge | wallet | casino | defi | other
//!                                 #   (derived from name and victim like the bundled rows if absent)
//! category: private_key_compromise # optional: groups Dim::Category (victim_type when absent)
//! chains: [ethereum, bitcoin]     # optional, tracehound chain names
//! assets: [ETH, BTC]              # optional
//! amount_native: "1,200 ETH + 10 BTC"  # optional text as reported; "<number> <ASSET> + …" is re-priced
//! amount_usd: 4500000             # optional integer, USD as reported
//! actor: lazarusgroup             # optional actor id of the label store
//! actor_name: Lazarus Group (suspected)  # optional, as reported
//! country: KP                     # optional ISO-3166 alpha-2
//! attribution: company            # optional: government | sanctions_monitor | company | researcher
//!                                 #   | suspected (without it, `report stats --min-attribution` leaves
//!                                 #   the incident out)
//! attributed_by: ACME's forensic firm   # optional: who attributes it
//! aggregate: false                # optional; default: id ends in _aggregate
//! simulated: false                # optional; true: a case of a simulated chain (the demo's heist),
//!                                 #   listed and traced, left out of statistics unless asked
//! sources:                        # required, at least one (text or URL)
//!   - https://example.org/acme-incident-report
//! seeds:                          # optional
//!   - chain: ethereum
//!     address: "0x47666Fab8bd0Ac7003bce3f5C3585383F09486E2"   # or  tx: <txid>
//!     role: attacker              # attacker | attacker_contract | laundering | victim | …
//!     label: ACME exploiter 1     # optional
//!     source: ACME incident report   # optional
//! ```
//!
//! `origin` is not a YAML field: tracehound sets it to the stored file's path. Unknown fields are errors (a misspelt `amount_usd` must not silently drop a figure). Every error
//! names the file and the field, e.g. `case.yaml: field "date": "2022-13-01" is not a date (YYYY,
//! YYYY-MM or YYYY-MM-DD)`.
//!
//! # Provenance
//!
//! Every incident has a [`Provenance`]: `bundled` (the CSV rows above), `user` (a YAML file) or
//! `simulated` (a YAML file with `simulated: true`, such as the heist `tracehound demo` writes on its
//! simulated chain). Simulated cases are listed, shown and traced like the others, but
//! [`crate::stats`] and the HTML report leave them out of every figure unless asked
//! ([`crate::StatsOptions::include_simulated`]): a made-up theft must not count as a real one.

use crate::util::{check_incident_date, fnv1a64, write_atomic};
use crate::{Error, Result};
use serde::Serialize;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const INCIDENTS_CSV: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/incidents/dprk_incidents_extended.csv"));
const PUBLISHED_TOTALS_CSV: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/incidents/published_totals.csv"));
const ATTACKER_ADDRESSES_CSV: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/labels/incidents/attacker_addresses.csv"));

/// The victim types an incident can have.
pub const VICTIM_TYPES: [&str; 6] = ["exchange", "bridge", "wallet", "casino", "defi", "other"];

/// Seed roles that start a trace (see [`Incident::trace_seeds`]).
pub const TRACE_ROLES: [&str; 3] = ["attacker", "attacker_contract", "laundering"];

/// The label-store actor id given to every DPRK-attributed bundled incident.
const DPRK_ACTOR_ID: &str = "lazarusgroup";

const KNOWN_EXCHANGES: [&str; 22] = [
    "bithumb",
    "youbit",
    "yapizon",
    "kucoin",
    "bybit",
    "upbit",
    "binance",
    "coinbase",
    "kraken",
    "okx",
    "okex",
    "huobi",
    "htx",
    "poloniex",
    "coinex",
    "bitfinex",
    "zaif",
    "coincheck",
    "mt.gox",
    "wazirx",
    "dmm bitcoin",
    "coinsbit",
];

/// Where an incident comes from (see the module docs, "Provenance").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// Ships with tracehound (`data/incidents/`).
    Bundled,
    /// A user's YAML file (`incident add`).
    User,
    /// A YAML file with `simulated: true`: a case on a simulated chain (the demo's heist), not a
    /// real incident; left out of statistics unless asked.
    Simulated,
}

impl Provenance {
    /// `bundled`, `user` or `simulated`, as in JSON and `incident list`.
    pub fn name(self) -> &'static str {
        match self {
            Provenance::Bundled => "bundled",
            Provenance::User => "user",
            Provenance::Simulated => "simulated",
        }
    }
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Who attributes an incident to its actor, from the strongest to the weakest level.
///
/// The order is the strength of the attribution, not of the evidence behind any one figure:
/// `Government` > `SanctionsMonitor` > `Company` > `Researcher` > `Suspected`
/// (`Attribution::Government > Attribution::Suspected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// Media or officials say the actor is suspected; nobody attributes it.
    Suspected,
    /// One or more independent researchers (e.g. one researcher's public tables).
    Researcher,
    /// A blockchain-analytics or incident-response company (Chainalysis, Elliptic, Mandiant).
    Company,
    /// A sanctions-monitoring body of states: the UN Security Council 1718 Panel of Experts, the
    /// Multilateral Sanctions Monitoring Team (MSMT).
    SanctionsMonitor,
    /// A government: a law-enforcement statement, indictment or forfeiture complaint (FBI, DOJ,
    /// national police), or a joint statement of governments.
    Government,
}

impl Attribution {
    /// All levels, strongest first.
    pub const ALL: [Attribution; 5] =
        [Attribution::Government, Attribution::SanctionsMonitor, Attribution::Company, Attribution::Researcher, Attribution::Suspected];

    /// `government`, `sanctions_monitor`, `company`, `researcher` or `suspected`.
    pub fn name(self) -> &'static str {
        match self {
            Attribution::Government => "government",
            Attribution::SanctionsMonitor => "sanctions_monitor",
            Attribution::Company => "company",
            Attribution::Researcher => "researcher",
            Attribution::Suspected => "suspected",
        }
    }
}

impl std::fmt::Display for Attribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Attribution {
    type Err = String;

    /// Parses a level name (`-` or `_`, any case).
    fn from_str(s: &str) -> Result<Attribution, String> {
        let n = s.trim().to_ascii_lowercase().replace('-', "_");
        Attribution::ALL
            .into_iter()
            .find(|a| a.name() == n)
            .ok_or_else(|| format!("{s:?} is not an attribution level (strongest first: {})", Attribution::ALL.map(Attribution::name).join(", ")))
    }
}

const GOVERNMENT_WORDS: [&str; 6] = ["fbi", "doj", "police", "government", "joint statement", "joint release"];
const MONITOR_WORDS: [&str; 3] = ["msmt", "un panel", "s/2019/691"];
const COMPANY_WORDS: [&str; 3] = ["chainalysis", "elliptic", "mandiant"];

fn clause_level(clause: &str) -> Attribution {
    let t = clause.trim().to_lowercase();
    if t.starts_with("researcher") {
        return Attribution::Researcher;
    }
    if t.starts_with("suspected") {
        return Attribution::Suspected;
    }
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if has(&GOVERNMENT_WORDS) {
        Attribution::Government
    } else if has(&MONITOR_WORDS) {
        Attribution::SanctionsMonitor
    } else if has(&COMPANY_WORDS) {
        Attribution::Company
    } else {
        Attribution::Researcher
    }
}

/// The attribution level of a bundled row, read from its source note; also the clauses it was read
/// from and whether one says the attribution is disputed.
///
/// The rule (the same one `data/incidents/check_counts.py` implements independently):
/// * clauses are the text after every `Attribution:` or `Attribution upgraded:` up to the next
///   `". "` (or the end); a note without any clause is read as one clause, up to its `[extended]` part;
/// * a clause that starts with `researcher` or `suspected` is that level; otherwise the strongest
///   party it names: government (FBI, DOJ, police, government, joint statement/release) >
///   sanctions monitor (MSMT, UN Panel, S/2019/691) > company (Chainalysis, Elliptic, Mandiant) >
///   researcher;
/// * the incident's level is the strongest over its clauses; `DISPUTED` in a clause marks it disputed.
pub fn derive_attribution(note: &str) -> (Attribution, String, bool) {
    let mut clauses: Vec<&str> = Vec::new();
    let mut rest = note;
    while let Some(at) = rest.find("Attribution") {
        let after = &rest[at + "Attribution".len()..];
        let body = after.strip_prefix(':').or_else(|| after.strip_prefix(" upgraded:"));
        match body {
            Some(body) => {
                let end = body.find(". ").unwrap_or(body.len());
                clauses.push(body[..end].trim());
                rest = &body[end..];
            }
            None => rest = after,
        }
    }
    if clauses.is_empty() {
        clauses.push(note.split("[extended]").next().unwrap_or(note).trim());
    }
    let level = clauses.iter().map(|c| clause_level(c)).max().unwrap_or(Attribution::Researcher);
    let disputed = clauses.iter().any(|c| c.contains("DISPUTED"));
    (level, clauses.join(" | "), disputed)
}

/// What a seed names: an address or a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeedKind {
    /// An address (`address:` in YAML).
    Address,
    /// A transaction id (`tx:` in YAML).
    Tx,
}

/// An address or transaction tied to an incident, with its role and where it was published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Seed {
    /// tracehound chain name (`bitcoin`, `ethereum`, …).
    pub chain: String,
    /// The address or transaction id, as published.
    pub address_or_tx: String,
    /// Whether `address_or_tx` is an address or a transaction.
    pub kind: SeedKind,
    /// `attacker`, `attacker_contract`, `laundering`, `victim`, `victim_signer`, …
    pub role: String,
    /// A human label ("Ronin bridge exploiter 4").
    pub label: String,
    /// Where the seed was published.
    pub source: String,
}

/// A figure a source gives for an incident that differs from the one the registry uses
/// ([`Incident::amount_usd`]), parsed from the source notes where the note states it explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AlternativeFigure {
    /// The figure, in `unit`.
    pub value: u64,
    /// `USD` (as reported at the time).
    pub unit: String,
    /// Who gives it (`tayvano README.md@8caa8c00… by-year table`).
    pub source: String,
    /// The date the source gives with it, as written (`2018-06-??`).
    pub date: String,
}

/// The figures of the tayvano by-year table rows quoted in `note` (`tayvano README.md@<commit>[ by-year
/// table]: <date>, $<amount>, …`) that differ from `amount_usd`.
pub fn alternative_figures(note: &str, amount_usd: Option<u64>) -> Vec<AlternativeFigure> {
    const KEY: &str = "tayvano README.md@";
    let mut out: Vec<AlternativeFigure> = Vec::new();
    let mut rest = note;
    while let Some(at) = rest.find(KEY) {
        rest = &rest[at + KEY.len()..];
        let commit: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        if commit.len() != 40 {
            continue;
        }
        let after = &rest[40..];
        let (table, after) = match after.strip_prefix(" by-year table") {
            Some(a) => (" by-year table", a),
            None => ("", after),
        };
        let Some(row) = after.strip_prefix(": ") else { continue };
        let Some((date, row)) = row.split_once(", $") else { continue };
        let date_ok = matches!(date.len(), 4 | 7 | 10)
            && date.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'?')
            && date[..4].bytes().all(|b| b.is_ascii_digit());
        if !date_ok {
            continue;
        }
        let digits: String = row.chars().take_while(|c| c.is_ascii_digit() || *c == ',').collect();
        let Ok(value) = digits.replace(',', "").parse::<u64>() else { continue };
        if Some(value) == amount_usd || out.iter().any(|f| f.value == value) {
            continue;
        }
        out.push(AlternativeFigure { value, unit: "USD".into(), source: format!("tayvano README.md@{commit}{table}"), date: date.to_string() });
    }
    out
}

/// One theft (or, with `aggregate`, one published total) with its figures, seeds and sources.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Incident {
    /// Stable id, `[a-z0-9_]+` (`ronin_2022`).
    pub id: String,
    /// Short name.
    pub name: String,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`; `YYYY/YYYY` for multi-year aggregates.
    pub date: String,
    /// Who lost the funds, as reported.
    pub victim: String,
    /// One of [`VICTIM_TYPES`].
    pub victim_type: String,
    /// Optional finer grouping for [`crate::Dim::Category`] (absent for bundled incidents).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// tracehound chain names, lower case.
    pub chains: Vec<String>,
    /// Asset symbols as reported.
    pub assets: Vec<String>,
    /// Amount in native units, as reported (free text).
    pub amount_native: Option<String>,
    /// USD as reported at or near the time of theft.
    pub amount_usd: Option<u64>,
    /// Actor id in the label store (`lazarusgroup`).
    pub actor: Option<String>,
    /// The attribution as reported.
    pub actor_name: String,
    /// ISO-3166 alpha-2 country of the actor.
    pub country: Option<String>,
    /// Who attributes the incident to the actor ([`Attribution`]); `None` for aggregates and for
    /// users' incidents that do not say.
    pub attribution: Option<Attribution>,
    /// The attributing parties as the sources name them (bundled rows: the note's attribution clauses).
    pub attributed_by: String,
    /// A source disputes the attribution (e.g. the MSMT names DPRK and a researcher says "Not DPRK").
    pub attribution_disputed: bool,
    /// A published total, not an incident: listed, never summed.
    pub aggregate: bool,
    /// Addresses and transactions tied to the incident.
    pub seeds: Vec<Seed>,
    /// Source notes and URLs behind the figures.
    pub sources: Vec<String>,
    /// Figures other sources give that differ from `amount_usd`, as the notes state them (bundled
    /// incidents; derived from `sources`, so not part of [`Registry::version`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternative_figures: Vec<AlternativeFigure>,
    /// Bundled, a user's case, or a simulated case (YAML `simulated: true`).
    pub provenance: Provenance,
    /// `bundled`, or the path of the user's YAML file.
    pub origin: String,
}

impl Incident {
    /// The seeds a trace starts from: roles `attacker`, `attacker_contract` and `laundering` ([`TRACE_ROLES`]).
    pub fn trace_seeds(&self) -> impl Iterator<Item = &Seed> {
        self.seeds.iter().filter(|s| TRACE_ROLES.contains(&s.role.as_str()))
    }

    /// The year of the incident (the first year of an aggregate's range).
    pub fn year(&self) -> &str {
        self.date.get(..4).unwrap_or(&self.date)
    }

    /// Whether the incident ships with tracehound (as opposed to a user's file).
    pub fn is_bundled(&self) -> bool {
        self.provenance == Provenance::Bundled
    }

    /// Whether the incident is a case on a simulated chain (YAML `simulated: true`), not a real one.
    pub fn is_simulated(&self) -> bool {
        self.provenance == Provenance::Simulated
    }

    /// Parses and validates a user's incident YAML; `file` names it in errors and becomes `origin`.
    pub fn from_yaml(text: &str, file: &str) -> Result<Incident> {
        let value: Value = serde_yaml_ng::from_str(text).map_err(|e| Error::File { file: file.to_string(), reason: format!("not valid YAML: {e}") })?;
        let map = match value {
            Value::Mapping(m) => m,
            _ => return Err(Error::File { file: file.to_string(), reason: "expected a YAML mapping of incident fields (id, name, date, …)".into() }),
        };
        let f = Fields { file, prefix: String::new(), map: &map };
        f.check_known(&[
            "id",
            "name",
            "date",
            "victim",
            "victim_type",
            "category",
            "chains",
            "assets",
            "amount_native",
            "amount_usd",
            "actor",
            "actor_name",
            "country",
            "attribution",
            "attributed_by",
            "attribution_disputed",
            "aggregate",
            "simulated",
            "seeds",
            "sources",
        ])?;
        let id = f.req_str("id")?;
        if !is_id(&id) {
            return Err(f.err("id", format!("{id:?} must be lower-case letters, digits and _ ([a-z0-9_]+)")));
        }
        let name = f.req_str("name")?;
        let aggregate = f.opt_bool("aggregate")?.unwrap_or_else(|| id.ends_with("_aggregate"));
        let date = f.req_str("date")?;
        check_incident_date(&date, aggregate).map_err(|r| f.err("date", r))?;
        let victim = f.opt_str("victim")?.unwrap_or_default();
        let victim_type = match f.opt_str("victim_type")? {
            Some(t) if VICTIM_TYPES.contains(&t.as_str()) => t,
            Some(t) => return Err(f.err("victim_type", format!("{t:?} is not one of {}", VICTIM_TYPES.join(", ")))),
            None => derive_victim_type(&name, &victim, aggregate).to_string(),
        };
        let category = f.opt_str("category")?;
        if let Some(c) = category.as_deref().filter(|c| c.trim().is_empty()) {
            return Err(f.err("category", format!("{c:?} is empty; leave the field out instead")));
        }
        let mut chains = Vec::new();
        for (i, c) in f.opt_str_list("chains")?.into_iter().enumerate() {
            chains.push(checked_chain(&c).map_err(|r| f.err(&format!("chains[{i}]"), r))?);
        }
        let assets = f.opt_str_list("assets")?;
        let amount_native = f.opt_str("amount_native")?;
        let amount_usd = f.opt_u64("amount_usd")?;
        let actor = f.opt_str("actor")?;
        if let Some(a) = actor.as_deref().filter(|a| a.is_empty() || a.chars().any(char::is_whitespace)) {
            return Err(f.err("actor", format!("{a:?} is not an actor id (the label store's id, e.g. lazarusgroup)")));
        }
        let actor_name = f.opt_str("actor_name")?.unwrap_or_default();
        let country = match f.opt_str("country")? {
            Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) => Some(c.to_ascii_uppercase()),
            Some(c) => return Err(f.err("country", format!("{c:?} is not an ISO-3166 alpha-2 code (e.g. KP)"))),
            None => None,
        };
        let attribution = match f.opt_str("attribution")? {
            Some(a) => Some(a.parse::<Attribution>().map_err(|r| f.err("attribution", r))?),
            None => None,
        };
        let attributed_by = f.opt_str("attributed_by")?.unwrap_or_default();
        let attribution_disputed = f.opt_bool("attribution_disputed")?.unwrap_or(false);
        let sources = f.opt_str_list("sources")?;
        if sources.iter().all(|s| s.trim().is_empty()) {
            return Err(f.err("sources", "at least one source (text or URL) is required: every figure in a report names its sources".into()));
        }
        let seeds = f.seeds()?;
        let provenance = if f.opt_bool("simulated")?.unwrap_or(false) { Provenance::Simulated } else { Provenance::User };
        Ok(Incident {
            id,
            name,
            date,
            victim,
            victim_type,
            category,
            chains,
            assets,
            amount_native,
            amount_usd,
            actor,
            actor_name,
            country,
            attribution,
            attributed_by,
            attribution_disputed,
            aggregate,
            seeds,
            sources,
            alternative_figures: Vec::new(),
            provenance,
            origin: file.to_string(),
        })
    }
}

/// The victim type of a bundled row (rule in the module docs); also the default for users' files.
pub(crate) fn derive_victim_type(name: &str, victim: &str, aggregate: bool) -> &'static str {
    if aggregate {
        return "other";
    }
    let text = format!("{name} {victim}").to_lowercase();
    let has_word = |w: &str| text.split(|c: char| !c.is_alphanumeric()).any(|t| t == w);
    if text.contains("bridge") {
        "bridge"
    } else if text.contains("casino") || text.contains("gambling") || text.contains("stake.com") {
        "casino"
    } else if text.contains("exchange") || KNOWN_EXCHANGES.iter().any(|x| text.contains(x)) {
        "exchange"
    } else if text.contains("wallet") {
        "wallet"
    } else if ["defi", "protocol", "dex", "lending"].iter().any(|w| has_word(w)) {
        "defi"
    } else {
        "other"
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn normalize_chain(c: &str) -> String {
    c.trim().to_lowercase().replace('-', "_")
}

fn checked_chain(c: &str) -> Result<String, String> {
    let n = normalize_chain(c);
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(format!("{c:?} is not a chain name (bitcoin, ethereum, bsc, …)"));
    }
    Ok(n)
}

/// Typed access to one YAML mapping, with errors that name the file and the field.
struct Fields<'a> {
    file: &'a str,
    prefix: String,
    map: &'a serde_yaml_ng::Mapping,
}

impl Fields<'_> {
    fn err(&self, field: &str, reason: String) -> Error {
        Error::Field { file: self.file.to_string(), field: format!("{}{field}", self.prefix), reason }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn check_known(&self, known: &[&str]) -> Result<()> {
        for k in self.map.keys() {
            let name = match k {
                Value::String(s) => s.clone(),
                other => scalar_text(other).unwrap_or_else(|| "?".into()),
            };
            if !known.contains(&name.as_str()) {
                return Err(self.err(&name, format!("unknown field (known fields: {})", known.join(", "))));
            }
        }
        Ok(())
    }

    fn opt_str(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => scalar_text(v).map(Some).ok_or_else(|| self.err(key, format!("expected a text value, found {}", kind(v)))),
        }
    }

    fn req_str(&self, key: &str) -> Result<String> {
        match self.opt_str(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(self.err(key, "is empty".into())),
            None => Err(self.err(key, "is required".into())),
        }
    }

    fn opt_str_list(&self, key: &str) -> Result<Vec<String>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| scalar_text(v).ok_or_else(|| self.err(&format!("{key}[{i}]"), format!("expected a text value, found {}", kind(v)))))
                .collect(),
            Some(v) => scalar_text(v).map(|s| vec![s]).ok_or_else(|| self.err(key, format!("expected a list of text values, found {}", kind(v)))),
        }
    }

    fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(v) => Err(self.err(key, format!("expected a whole number of US dollars without quotes or separators (e.g. 4500000), found {}", describe(v)))),
        }
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(key, format!("expected true or false, found {}", describe(v)))),
        }
    }

    fn seeds(&self) -> Result<Vec<Seed>> {
        let items = match self.get("seeds") {
            None => return Ok(Vec::new()),
            Some(Value::Sequence(items)) => items,
            Some(v) => return Err(self.err("seeds", format!("expected a list of {{chain, address | tx, role, label, source}}, found {}", kind(v)))),
        };
        let mut seeds = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::Mapping(map) = item else {
                return Err(self.err(&format!("seeds[{i}]"), format!("expected a mapping {{chain, address | tx, role, label, source}}, found {}", kind(item))));
            };
            let f = Fields { file: self.file, prefix: format!("{}seeds[{i}].", self.prefix), map };
            f.check_known(&["chain", "address", "tx", "role", "label", "source"])?;
            let chain = checked_chain(&f.req_str("chain")?).map_err(|r| f.err("chain", r))?;
            let (address_or_tx, kind) = match (f.opt_str("address")?, f.opt_str("tx")?) {
                (Some(a), None) if !a.trim().is_empty() => (a.trim().to_string(), SeedKind::Address),
                (None, Some(t)) if !t.trim().is_empty() => (t.trim().to_string(), SeedKind::Tx),
                (Some(_), Some(_)) => return Err(f.err("address", "give either address or tx, not both".into())),
                _ => return Err(f.err("address", "is required (or tx for a transaction)".into())),
            };
            let role = f.req_str("role")?;
            if !is_id(&role) {
                return Err(f.err("role", format!("{role:?} must be lower-case letters, digits and _ (attacker, laundering, victim, …)")));
            }
            let label = f.opt_str("label")?.unwrap_or_default();
            let source = f.opt_str("source")?.unwrap_or_default();
            seeds.push(Seed { chain, address_or_tx, kind, role, label, source });
        }
        Ok(seeds)
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        // An unquoted `date: 2022` or `id: 2024` is a number to YAML; the text is what the user wrote.
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("text {s:?}"),
        Value::Number(n) => format!("the number {n}"),
        other => kind(other).to_string(),
    }
}

/// What the project records about a bundled published aggregate besides its row
/// (`data/incidents/published_totals.csv`): who published it, for which years, how many incidents
/// it counted, a later revision, and why the registry's incidents do or do not add up to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PublishedNote {
    /// Aggregate id (`dprk_2021_aggregate`).
    pub id: String,
    /// Who published the figure.
    pub publisher: String,
    /// First year the figure covers.
    pub first_year: u16,
    /// Last year the figure covers (the same as `first_year` for one year).
    pub last_year: u16,
    /// Incidents the publisher says it counted, when it says.
    pub incidents_counted: Option<u32>,
    /// A later figure for the same period by the same publisher, if one was published.
    pub revised_usd: Option<u64>,
    /// Where the revised figure comes from.
    pub revised_by: String,
    /// Why the registry's incidents reproduce the figure or not (written from the sources).
    pub why: String,
}

impl PublishedNote {
    /// The years of an aggregate without a note, from its date (`2021`, `2017/2022`).
    pub fn years_of(date: &str) -> Option<(u16, u16)> {
        let (a, b) = date.split_once('/').unwrap_or((date, date));
        Some((a.get(..4)?.parse().ok()?, b.get(..4)?.parse().ok()?))
    }
}

/// Bundled incidents and the user's incident files, sorted by id.
#[derive(Debug, Clone)]
pub struct Registry {
    incidents: Vec<Incident>,
    notes: Vec<PublishedNote>,
}

impl Registry {
    /// The incidents that ship with tracehound (`data/incidents/`).
    pub fn bundled() -> Registry {
        let incidents = parse_bundled(INCIDENTS_CSV, ATTACKER_ADDRESSES_CSV).expect("bundled incident files parse (checked by the tests)");
        Registry::from_incidents(incidents)
    }

    fn from_incidents(mut incidents: Vec<Incident>) -> Registry {
        incidents.sort_by(|a, b| a.id.cmp(&b.id));
        let notes = parse_published_notes(PUBLISHED_TOTALS_CSV).expect("bundled published totals parse (checked by the tests)");
        Registry { incidents, notes }
    }

    /// The note of a bundled published aggregate (`data/incidents/published_totals.csv`).
    pub fn published_note(&self, id: &str) -> Option<&PublishedNote> {
        self.notes.iter().find(|n| n.id == id)
    }

    /// The bundled incidents plus every `*.yaml` in `data_dir/incidents/` (a missing folder is empty).
    pub fn load(data_dir: &Path) -> Result<Registry> {
        let mut incidents = Registry::bundled().incidents;
        let mut seen: BTreeMap<String, String> = incidents.iter().map(|i| (i.id.clone(), i.origin.clone())).collect();
        for path in user_files(data_dir)? {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { file: file.clone(), source })?;
            let incident = Incident::from_yaml(&text, &file)?;
            if let Some(other) = seen.get(&incident.id) {
                let reason = if other == "bundled" {
                    format!("{:?} is the id of a bundled incident; choose another id", incident.id)
                } else {
                    format!("{:?} is also the id of {other}; ids must be unique", incident.id)
                };
                return Err(Error::Field { file, field: "id".into(), reason });
            }
            seen.insert(incident.id.clone(), file);
            incidents.push(incident);
        }
        Ok(Registry::from_incidents(incidents))
    }

    /// Validates `yaml_path` and copies it atomically to `data_dir/incidents/<id>.yaml`.
    ///
    /// Adding the same file twice is a no-op; a different file with an id already taken is an error.
    pub fn add(data_dir: &Path, yaml_path: &Path) -> Result<Incident> {
        let file = yaml_path.display().to_string();
        let bytes = std::fs::read(yaml_path).map_err(|source| Error::Io { file: file.clone(), source })?;
        let text = String::from_utf8(bytes).map_err(|_| Error::File { file: file.clone(), reason: "not UTF-8 text".into() })?;
        let mut incident = Incident::from_yaml(&text, &file)?;
        let registry = Registry::load(data_dir)?;
        let target = incidents_dir(data_dir).join(format!("{}.yaml", incident.id));
        let target_name = target.display().to_string();
        if let Some(existing) = registry.get(&incident.id) {
            if existing.is_bundled() {
                return Err(Error::Field { file, field: "id".into(), reason: format!("{:?} is the id of a bundled incident; choose another id", incident.id) });
            }
            let same_file = existing.origin == target_name && std::fs::read(&target).is_ok_and(|b| b == text.as_bytes());
            if same_file {
                return Ok(existing.clone());
            }
            return Err(Error::Field {
                file,
                field: "id".into(),
                reason: format!("{:?} is already taken by {} (a different file); choose another id or edit that file", incident.id, existing.origin),
            });
        }
        write_atomic(&target, text.as_bytes())?;
        incident.origin = target_name;
        Ok(incident)
    }

    /// The incident with this id.
    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.incidents.binary_search_by(|i| i.id.as_str().cmp(id)).ok().map(|k| &self.incidents[k])
    }

    /// All incidents and aggregates, sorted by id.
    pub fn incidents(&self) -> &[Incident] {
        &self.incidents
    }

    /// A stable 16-hex-digit digest of the registry content (FNV-1a 64 of the incidents as JSON).
    ///
    /// Where a user file lives does not change the version; its content does.
    pub fn version(&self) -> String {
        let mut bytes = Vec::new();
        for i in &self.incidents {
            let mut i = i.clone();
            if !i.is_bundled() {
                i.origin = "user".into();
            }
            i.alternative_figures.clear();
            serde_json::to_writer(&mut bytes, &i).expect("an incident serializes");
            bytes.push(b'\n');
        }
        for n in &self.notes {
            serde_json::to_writer(&mut bytes, n).expect("a note serializes");
            bytes.push(b'\n');
        }
        format!("{:016x}", fnv1a64(&bytes))
    }
}

fn incidents_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("incidents")
}

fn user_files(data_dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = incidents_dir(data_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Io { file: dir.display().to_string(), source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| Error::Io { file: dir.display().to_string(), source })?.path();
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden && path.extension().is_some_and(|e| e == "yaml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn csv_err(file: &str, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    Error::Row { file: file.to_string(), line, reason: e.to_string() }
}

/// Column lookup by header name, so a reordered upstream file still reads correctly.
struct Columns(csv::StringRecord);

impl Columns {
    fn index(&self, file: &str, name: &str) -> Result<usize> {
        self.0.iter().position(|h| h.trim() == name).ok_or_else(|| Error::Row {
            file: file.to_string(),
            line: 1,
            reason: format!("no column {name:?} in the header"),
        })
    }
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(';').map(str::trim).filter(|x| !x.is_empty())
}

fn parse_published_notes(text: &str) -> Result<Vec<PublishedNote>> {
    const FILE: &str = "data/incidents/published_totals.csv";
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let h = Columns(rd.headers().map_err(|e| csv_err(FILE, e))?.clone());
    let names = ["id", "publisher", "first_year", "last_year", "incidents_counted", "revised_usd", "revised_by", "why"];
    let mut col = [0usize; 8];
    for (c, n) in col.iter_mut().zip(names) {
        *c = h.index(FILE, n)?;
    }
    let mut out = Vec::new();
    for rec in rd.records() {
        let r = rec.map_err(|e| csv_err(FILE, e))?;
        let line = r.position().map_or(0, |p| p.line());
        let get = |k: usize| r[col[k]].trim().to_string();
        let bad = |reason: String| Error::Row { file: FILE.into(), line, reason };
        let number = |k: usize| -> Result<Option<u64>> {
            let v = get(k);
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<u64>().map(Some).map_err(|_| bad(format!("{} {v:?} is not a whole number", names[k])))
        };
        let year = |k: usize| -> Result<u16> { number(k)?.and_then(|y| u16::try_from(y).ok()).ok_or_else(|| bad(format!("{} is not a year", names[k]))) };
        out.push(PublishedNote {
            id: get(0),
            publisher: get(1),
            first_year: year(2)?,
            last_year: year(3)?,
            incidents_counted: number(4)?.map(|n| n as u32),
            revised_usd: number(5)?,
            revised_by: get(6),
            why: get(7),
        });
    }
    Ok(out)
}

fn parse_bundled(incidents_csv: &str, seeds_csv: &str) -> Result<Vec<Incident>> {
    const SEEDS_FILE: &str = "data/labels/incidents/attacker_addresses.csv";
    const FILE: &str = "data/incidents/dprk_incidents_extended.csv";

    let mut seeds: BTreeMap<String, Vec<Seed>> = BTreeMap::new();
    let mut rd = csv::Reader::from_reader(seeds_csv.as_bytes());
    let h = Columns(rd.headers().map_err(|e| csv_err(SEEDS_FILE, e))?.clone());
    let [c_id, c_chain, c_addr, c_role, c_label, c_source] = ["incident_id", "chain", "address", "role", "label", "source"].map(|n| h.index(SEEDS_FILE, n));
    let (c_id, c_chain, c_addr, c_role, c_label, c_source) = (c_id?, c_chain?, c_addr?, c_role?, c_label?, c_source?);
    for rec in rd.records() {
        let r = rec.map_err(|e| csv_err(SEEDS_FILE, e))?;
        let seed = Seed {
            chain: normalize_chain(&r[c_chain]),
            address_or_tx: r[c_addr].trim().to_string(),
            kind: SeedKind::Address,
            role: r[c_role].trim().to_string(),
            label: r[c_label].trim().to_string(),
            source: r[c_source].trim().to_string(),
        };
        seeds.entry(r[c_id].trim().to_string()).or_default().push(seed);
    }

    let mut rd = csv::Reader::from_reader(incidents_csv.as_bytes());
    let h = Columns(rd.headers().map_err(|e| csv_err(FILE, e))?.clone());
    let names = ["id", "name", "date", "victim", "chain", "asset", "amount_native", "amount_usd", "attributed_actor", "actor_country", "source_note"];
    let mut col = [0usize; 11];
    for (c, n) in col.iter_mut().zip(names) {
        *c = h.index(FILE, n)?;
    }
    let mut out = Vec::new();
    for rec in rd.records() {
        let r = rec.map_err(|e| csv_err(FILE, e))?;
        let line = r.position().map_or(0, |p| p.line());
        let get = |k: usize| r[col[k]].trim().to_string();
        let opt = |k: usize| Some(get(k)).filter(|s| !s.is_empty());
        let id = get(0);
        let aggregate = id.ends_with("_aggregate");
        let bad = |reason: String| Error::Row { file: FILE.into(), line, reason };
        if !is_id(&id) {
            return Err(bad(format!("id {id:?} is not [a-z0-9_]+")));
        }
        let date = get(2);
        check_incident_date(&date, aggregate).map_err(bad)?;
        let amount_usd = match opt(7) {
            None => None,
            Some(s) => Some(s.parse::<u64>().map_err(|_| bad(format!("amount_usd {s:?} is not a whole number")))?),
        };
        let country = opt(9);
        let (name, victim) = (get(1), get(3));
        let note = get(10);
        if note.is_empty() {
            return Err(bad(format!("{id}: no source_note; every bundled figure names its source")));
        }
        let (attribution, attributed_by, attribution_disputed) = if aggregate {
            (None, String::new(), false)
        } else {
            let (level, by, disputed) = derive_attribution(&note);
            (Some(level), by, disputed)
        };
        out.push(Incident {
            victim_type: derive_victim_type(&name, &victim, aggregate).to_string(),
            category: None,
            chains: split_list(&get(4)).filter(|c| !c.eq_ignore_ascii_case("others")).map(normalize_chain).collect(),
            assets: split_list(&get(5)).map(str::to_string).collect(),
            amount_native: opt(6),
            amount_usd,
            actor: (country.as_deref() == Some("KP")).then(|| DPRK_ACTOR_ID.to_string()),
            actor_name: get(8),
            country,
            attribution,
            attributed_by,
            attribution_disputed,
            aggregate,
            seeds: seeds.remove(&id).unwrap_or_default(),
            alternative_figures: alternative_figures(&note, amount_usd),
            sources: vec![note],
            provenance: Provenance::Bundled,
            origin: "bundled".into(),
            id,
            name,
            date,
            victim,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id: acme_2024
name: ACME exchange hot-wallet hack
date: 2024-05-01
victim: ACME Ltd
chains: [ethereum, Bitcoin-SV]
assets: [ETH]
amount_native: "1,200 ETH"
amount_usd: 4500000
actor: lazarusgroup
actor_name: Lazarus Group (suspected)
country: kp
sources: [https://example.org/acme]
seeds:
  - chain: ethereum
    address: "0x47666Fab8bd0Ac7003bce3f5C3585383F09486E2"
    role: attacker
    label: ACME exploiter
  - chain: bitcoin
    tx: 764b60c3d9a2c3c5bb6fe7141d9ca6e6778122df75f19366a2c5cb948d1d7d84
    role: victim
"#;

    #[test]
    fn parses_a_user_incident() {
        let i = Incident::from_yaml(GOOD, "acme.yaml").unwrap();
        assert_eq!(i.id, "acme_2024");
        assert_eq!(i.victim_type, "exchange");
        assert_eq!(i.chains, ["ethereum", "bitcoin_sv"]);
        assert_eq!(i.country.as_deref(), Some("KP"));
        assert_eq!(i.amount_usd, Some(4_500_000));
        assert!(!i.aggregate);
        assert_eq!(i.seeds.len(), 2);
        assert_eq!(i.seeds[1].kind, SeedKind::Tx);
        assert_eq!(i.trace_seeds().count(), 1);
        assert_eq!(i.origin, "acme.yaml");
        assert_eq!(i.provenance, Provenance::User);
        assert!(!i.is_simulated() && !i.is_bundled());
    }

    #[test]
    fn simulated_field() {
        let sim = Incident::from_yaml(&format!("{GOOD}simulated: true\n"), "demo.yaml").unwrap();
        assert_eq!(sim.provenance, Provenance::Simulated);
        assert!(sim.is_simulated());
        assert_eq!(Incident::from_yaml(&format!("{GOOD}simulated: false\n"), "x.yaml").unwrap().provenance, Provenance::User);
        assert_eq!(serde_json::to_value(&sim).unwrap()["provenance"], "simulated");
        assert!(err_of(&format!("{GOOD}simulated: yes please\n")).starts_with(r#"case.yaml: field "simulated": expected true or false"#));
    }

    fn err_of(yaml: &str) -> String {
        Incident::from_yaml(yaml, "case.yaml").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_and_field() {
        let bad_date = GOOD.replace("date: 2024-05-01", "date: 2022-13-01");
        assert_eq!(err_of(&bad_date), r#"case.yaml: field "date": "2022-13-01" is not a date (YYYY, YYYY-MM or YYYY-MM-DD)"#);
        assert!(err_of(&GOOD.replace("id: acme_2024", "id: ACME 2024")).starts_with(r#"case.yaml: field "id": "ACME 2024" must be"#));
        assert!(
            err_of(&GOOD.replace("amount_usd: 4500000", "amount_usd: \"4,500,000\"")).starts_with(r#"case.yaml: field "amount_usd": expected a whole number"#)
        );
        assert!(err_of(&GOOD.replace("amount_usd: 4500000", "amount_usd: 4.5e6")).contains(r#"field "amount_usd""#));
        assert!(err_of(&GOOD.replace("amount_usd:", "amount_usdd:")).starts_with(r#"case.yaml: field "amount_usdd": unknown field"#));
        assert!(err_of(&GOOD.replace("    role: victim\n", "")).starts_with(r#"case.yaml: field "seeds[1].role": is required"#));
        assert!(err_of(&GOOD.replace("country: kp", "country: PRK")).contains(r#"field "country""#));
        assert!(err_of(&GOOD.replace("sources: [https://example.org/acme]", "")).contains(r#"field "sources""#));
        assert!(err_of("- a\n- b\n").starts_with("case.yaml: expected a YAML mapping"));
        assert!(err_of("id: [unclosed\n").starts_with("case.yaml: not valid YAML"));
        let range = GOOD.replace("date: 2024-05-01", "date: 2017/2022");
        assert!(err_of(&range).contains("aggregate"));
        assert!(Incident::from_yaml(&format!("{range}aggregate: true\n"), "x.yaml").unwrap().aggregate);
    }

    #[test]
    fn year_only_dates_may_be_unquoted() {
        let i = Incident::from_yaml(&GOOD.replace("date: 2024-05-01", "date: 2024"), "x.yaml").unwrap();
        assert_eq!(i.date, "2024");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_yaml_is_an_error_not_a_panic(text in "\\PC{0,200}") {
            let _ = Incident::from_yaml(&text, "fuzz.yaml");
        }
    }

    #[test]
    fn the_documented_example_parses() {
        let src = include_str!("incidents.rs");
        let start = src.find("//! ```yaml\n").expect("example in the module docs") + "//! ```yaml\n".len();
        let end = start + src[start..].find("//! ```").unwrap();
        let yaml: String = src[start..end].lines().map(|l| format!("{}\n", l.strip_prefix("//!").unwrap().strip_prefix(' ').unwrap_or(""))).collect();
        let i = Incident::from_yaml(&yaml, "example.yaml").unwrap();
        assert_eq!(i.id, "acme_exchange_2024");
        assert_eq!(i.category.as_deref(), Some("private_key_compromise"));
        assert_eq!(i.seeds.len(), 1);
        assert_eq!(i.amount_usd, Some(4_500_000));
        assert_eq!(i.provenance, Provenance::User);
    }

    /// Reorders the data rows of a CSV text with a seeded shuffle (the header stays first).
    fn shuffled(text: &str, seed: u64) -> String {
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let header = rd.headers().unwrap().clone();
        let mut rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
        let mut state = seed | 1;
        for i in (1..rows.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            rows.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&header).unwrap();
        for r in rows {
            w.write_record(&r).unwrap();
        }
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8))]
        /// The order of the incident rows does not change the registry (its version included); the
        /// seeds of each incident keep the order of the address file.
        #[test]
        fn incident_row_order_does_not_matter(seed in proptest::prelude::any::<u64>()) {
            let bundled = Registry::bundled();
            let reordered = Registry::from_incidents(parse_bundled(&shuffled(INCIDENTS_CSV, seed), ATTACKER_ADDRESSES_CSV).unwrap());
            proptest::prop_assert_eq!(reordered.incidents(), bundled.incidents());
            proptest::prop_assert_eq!(reordered.version(), bundled.version());
        }
    }

    #[test]
    fn attribution_rule() {
        let (level, by, disputed) = derive_attribution("Attribution: researcher (tayvano). tayvano README: $1.");
        assert_eq!((level, by.as_str(), disputed), (Attribution::Researcher, "researcher (tayvano)", false));
        let (level, _, disputed) = derive_attribution("Attribution: MSMT (TraderTraitor) - DISPUTED by researcher (tayvano: 'Not DPRK'). MSMT report.");
        assert_eq!((level, disputed), (Attribution::SanctionsMonitor, true));
        assert_eq!(
            derive_attribution("dn-institute (> $100M; attribution by Elliptic). [extended] Attribution upgraded: FBI 2023-08-22 names it. x").0,
            Attribution::Government
        );
        assert_eq!(
            derive_attribution("UN S/2019/691: ~$7M. [extended] tayvano identifies it in a DOJ complaint.").0,
            Attribution::SanctionsMonitor,
            "the seed note before [extended]"
        );
        assert_eq!(derive_attribution("Attribution: suspected (officials). Chainalysis mentions it.").0, Attribution::Suspected);
        assert_eq!(derive_attribution("Attribution: US-Japan-ROK joint statement + MSMT (CryptoCore). x").0, Attribution::Government);
        assert_eq!(derive_attribution("Attribution: Elliptic ('attributed'). x").0, Attribution::Company);
        assert!(
            Attribution::Government > Attribution::SanctionsMonitor
                && Attribution::Company > Attribution::Researcher
                && Attribution::Researcher > Attribution::Suspected
        );
        assert_eq!("Sanctions-Monitor".parse::<Attribution>(), Ok(Attribution::SanctionsMonitor));
        assert!("un".parse::<Attribution>().unwrap_err().contains("government, sanctions_monitor, company, researcher, suspected"));
    }

    #[test]
    fn victim_type_rule() {
        assert_eq!(derive_victim_type("Ronin bridge hack", "Sky Mavis", false), "bridge");
        assert_eq!(derive_victim_type("Stake.com hot-wallet hack", "Stake.com", false), "casino");
        assert_eq!(derive_victim_type("Atomic Wallet user-wallet drain", "", false), "wallet");
        assert_eq!(derive_victim_type("Bybit ETH cold-wallet (Safe) hack", "Bybit", false), "exchange");
        assert_eq!(derive_victim_type("KuCoin exchange hot-wallet hack", "", false), "exchange");
        assert_eq!(derive_victim_type("Some lending protocol exploit", "", false), "defi");
        assert_eq!(derive_victim_type("Seven attacks", "exchanges", true), "other");
        assert_eq!(derive_victim_type("Phishing", "a person", false), "other");
    }
}

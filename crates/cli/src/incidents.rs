//! `incident`, `prices` and `report`: the incident registry, tracing an incident's stolen funds
//! with a USD accounting, and crime statistics.

use crate::chains::amount_formatter;
use crate::trace::{run_trace, TraceRequest, DEFAULT_STOP_AT};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use tracehound_report::{html_report, stats_with, Attribution, Dim, Incident, PriceTable, Registry, StatsOptions, TraceSummary};
use tracehound_trace::{Limits, Model, Trace};

fn usd(x: Option<f64>) -> String {
    match x {
        Some(v) => format!("${}", group_thousands(v.round() as u64)),
        None => "-".into(),
    }
}

fn group_thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn find<'a>(reg: &'a Registry, id: &str) -> Result<&'a Incident> {
    reg.get(id).with_context(|| {
        let close: Vec<&str> = reg.incidents().iter().map(|i| i.id.as_str()).filter(|x| x.contains(id.split('_').next().unwrap_or(id))).collect();
        format!(
            "no incident {id:?}{}; `tracehound incident list` shows them",
            if close.is_empty() { String::new() } else { format!(" (did you mean {}?)", close.join(", ")) }
        )
    })
}

/// `tracehound incident list`.
pub fn list_cmd(data_dir: &Path, json: bool) -> Result<()> {
    let reg = Registry::load(data_dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(reg.incidents())?);
        return Ok(());
    }
    println!(
        "{:<24} {:<10} {:<40} {:>16} {:<14} {:<17} {:>5}  {:<10} file",
        "id", "date", "name", "USD (reported)", "actor", "attribution", "seeds", "provenance"
    );
    for i in reg.incidents() {
        let name: String = i.name.chars().take(40).collect();
        println!(
            "{:<24} {:<10} {:<40} {:>16} {:<14} {:<17} {:>5}  {:<10} {}{}",
            i.id,
            i.date,
            name,
            usd(i.amount_usd.map(|v| v as f64)),
            i.actor.as_deref().unwrap_or("-"),
            i.attribution.map_or("-", Attribution::name),
            i.trace_seeds().count(),
            i.provenance.name(),
            if i.is_bundled() { "-" } else { i.origin.as_str() },
            if i.aggregate {
                " (aggregate: a published total, not summed)"
            } else if i.is_simulated() {
                " (simulated: not a real incident, left out of statistics)"
            } else {
                ""
            }
        );
    }
    let simulated = reg.incidents().iter().filter(|i| i.is_simulated()).count();
    println!(
        "registry version {} ({} entries{})",
        reg.version(),
        reg.incidents().len(),
        if simulated > 0 { format!(", {simulated} simulated") } else { String::new() }
    );
    Ok(())
}

/// `tracehound incident show <id>`.
pub fn show_cmd(data_dir: &Path, id: &str, json: bool) -> Result<()> {
    let reg = Registry::load(data_dir)?;
    let i = find(&reg, id)?;
    if json {
        println!("{}", serde_json::to_string_pretty(i)?);
        return Ok(());
    }
    println!("{} — {}", i.id, i.name);
    println!("  date {}  victim {} ({})", i.date, i.victim, i.victim_type);
    println!("  chains {}  assets {}", i.chains.join(", "), i.assets.join(", "));
    println!("  amount {}  USD (reported) {}", i.amount_native.as_deref().unwrap_or("-"), usd(i.amount_usd.map(|v| v as f64)));
    for a in &i.alternative_figures {
        println!("    other figure: {} {} ({}, dated {})", group_thousands(a.value), a.unit, a.source, a.date);
    }
    println!("  actor {} ({}), country {}", i.actor.as_deref().unwrap_or("-"), i.actor_name, i.country.as_deref().unwrap_or("-"));
    if let Some(a) = i.attribution {
        println!("  attribution {a}{}: {}", if i.attribution_disputed { " (disputed)" } else { "" }, i.attributed_by);
    }
    println!("  provenance {}{}", i.provenance, if i.is_bundled() { String::new() } else { format!(" ({})", i.origin) });
    if i.aggregate {
        println!("  an aggregate: a published total, never summed with incidents");
    }
    if i.is_simulated() {
        println!("  a simulated case, not a real incident: left out of statistics unless --include-simulated");
    }
    println!("  seeds ({} to trace):", i.trace_seeds().count());
    for s in &i.seeds {
        println!("    {:<9} {:<17} {} {}", s.chain, s.role, s.address_or_tx, s.label);
    }
    println!("  sources:");
    for s in &i.sources {
        println!("    {s}");
    }
    Ok(())
}

/// `tracehound incident add <file.yaml>`.
pub fn add_cmd(data_dir: &Path, file: &Path) -> Result<()> {
    let i = Registry::add(data_dir, file)?;
    println!("incident {} ({}) is in the registry, with {} seeds to trace", i.id, i.name, i.trace_seeds().count());
    Ok(())
}

/// One destination of an incident's funds, valued in USD.
#[derive(Debug, Clone, Serialize)]
pub struct Destination {
    /// exchange, mixing_service, bridge, coinjoin, swap, still_held, fees, below_threshold, hop_limit, node_limit.
    pub kind: String,
    /// The service, or a description.
    pub label: String,
    /// Base units.
    #[serde(with = "tracehound_trace::amount")]
    pub amount: u128,
    /// The same in whole coins, as text.
    pub amount_text: String,
    /// USD at the time of the movements into it (None without a price).
    pub usd: Option<f64>,
}

/// The accounting of one traced flow of an incident.
#[derive(Debug, Clone, Serialize)]
pub struct FlowAccounting {
    /// Chain.
    pub chain: String,
    /// Asset (or the flow's name on account chains).
    pub flow: String,
    /// Amount traced from the incident's seeds.
    #[serde(with = "tracehound_trace::amount")]
    pub seed_amount: u128,
    /// The seed amount as a person reads it (`4,505,835.697678 USDC`).
    pub seed_amount_text: String,
    /// The sum of the destinations as a person reads it (the seed amount but under poison).
    pub total_text: String,
    /// Where it went.
    pub destinations: Vec<Destination>,
    /// The full trace.
    pub trace: Trace,
}

/// `incident trace`: where an incident's stolen funds went, per chain and flow.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentTrace {
    /// Incident id.
    pub incident: String,
    /// Registry version the incident was read from.
    pub registry_version: String,
    /// Seeds not found in the ingested data (skipped).
    pub seeds_not_found: Vec<String>,
    /// The USD figures come from the simulated price series (a case on a simulated chain, such as the
    /// demo's heist), not from market prices.
    pub simulated_prices: bool,
    /// One accounting per chain and flow.
    pub flows: Vec<FlowAccounting>,
}

/// `YYYY-MM-DD` (UTC) of a unix time.
pub fn day(unix: u64) -> String {
    tracehound_report::date_of_unix(unix)
}

fn decimals(asset: &str) -> Option<i32> {
    match asset {
        "BTC" | "BCH" | "LTC" | "DOGE" => Some(8),
        "ETH" | "BNB" | "POL" | "AVAX" | "FTM" | "XDAI" => Some(18),
        _ => None,
    }
}

/// USD of `amount` that reached `address`: at the prices of the days of the movements into it
/// (weighted by their amounts), else at `fallback_day`.
fn value(t: &Trace, prices: &PriceTable, address: Option<&str>, amount: u128, fallback_day: &str) -> Option<f64> {
    let dec = decimals(&t.asset)?;
    let coins = amount as f64 / 10f64.powi(dec);
    let (mut w, mut total) = (0f64, 0f64);
    if let Some(a) = address {
        for e in t.edges.iter().filter(|e| e.to == a) {
            if let Some((p, _)) = prices.usd_at(&t.asset, &day(e.time)) {
                w += e.amount as f64 * p;
                total += e.amount as f64;
            }
        }
    }
    if total > 0.0 {
        return Some(coins * w / total);
    }
    prices.usd_at(&t.asset, fallback_day).map(|(p, _)| coins * p)
}

/// Traces incident `id` over the ingested chains.
pub fn trace_incident(data_dir: &Path, id: &str, model: Model, max_hops: u32) -> Result<IncidentTrace> {
    let reg = Registry::load(data_dir)?;
    let inc = find(&reg, id)?.clone();
    let store = crate::open_existing(data_dir)?;
    let stored = store.manifest().chain_names();
    let mut by_chain: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in inc.trace_seeds() {
        by_chain.entry(s.chain.clone()).or_default().push(s.address_or_tx.clone());
    }
    if by_chain.is_empty() {
        bail!("incident {id} has no seeds to trace (roles attacker, attacker_contract, laundering); add them to its YAML file");
    }
    let chains: Vec<String> = by_chain.keys().filter(|c| stored.contains(*c)).cloned().collect();
    if chains.is_empty() {
        bail!(
            "incident {id} has seeds on {}, and none of these chains is ingested (stored: {})",
            by_chain.keys().cloned().collect::<Vec<_>>().join(", "),
            stored.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    // A simulated case is valued at the simulated series, a real one never is.
    let prices = if inc.is_simulated() { PriceTable::simulated() } else { PriceTable::load(data_dir)? };
    let first_seen = inc.date.clone();
    let mut out = IncidentTrace {
        incident: inc.id.clone(),
        registry_version: reg.version(),
        seeds_not_found: vec![],
        simulated_prices: prices.is_simulated(),
        flows: vec![],
    };
    for chain in chains {
        let req = TraceRequest {
            chain: chain.clone(),
            from: vec![],
            model,
            direction: tracehound_trace::Direction::Forward,
            fees: tracehound_trace::Fees::Drop,
            limits: Limits { max_hops, ..Limits::default() },
            stop_at: crate::trace::parse_stop_at(DEFAULT_STOP_AT)?,
            seed_side: crate::trace::SeedSide::Received,
        };
        // Seeds the data does not hold are reported and skipped, one by one.
        let mut found = vec![];
        for s in &by_chain[&chain] {
            match run_trace(data_dir, &TraceRequest { from: vec![s.clone()], ..req.clone() }) {
                Ok(_) => found.push(s.clone()),
                Err(e) => out.seeds_not_found.push(format!("{chain} {s}: {e}")),
            }
        }
        if found.is_empty() {
            continue;
        }
        let coins = amount_formatter(&store, &chain);
        for t in run_trace(data_dir, &TraceRequest { from: found, ..req })? {
            let fallback = t.edges.first().map(|e| day(e.time)).unwrap_or_else(|| first_seen.clone());
            let mut d = vec![];
            for s in &t.accounting.sinks {
                let usd = if s.addresses.is_empty() {
                    value(&t, &prices, None, s.amount, &fallback)
                } else {
                    s.addresses.iter().map(|a| value(&t, &prices, Some(&a.address), a.amount, &fallback)).sum::<Option<f64>>()
                };
                d.push(Destination {
                    kind: s.sink.category.clone(),
                    label: s.sink.name.clone(),
                    amount: s.amount,
                    amount_text: coins(s.amount, &t.asset),
                    usd,
                });
            }
            if t.accounting.held_total > 0 {
                let usd = t.accounting.held.iter().map(|h| value(&t, &prices, Some(&h.address), h.tainted, &fallback)).sum::<Option<f64>>();
                let n = t.accounting.held.len();
                d.push(Destination {
                    kind: "still_held".into(),
                    label: format!("still held ({n} {})", if t.unit == "sat" { "outputs" } else { "balances" }),
                    amount: t.accounting.held_total,
                    amount_text: coins(t.accounting.held_total, &t.asset),
                    usd,
                });
            }
            let a = &t.accounting;
            for (kind, v) in [("fees", a.fees), ("below_threshold", a.below_threshold), ("hop_limit", a.hop_limit), ("node_limit", a.node_limit)] {
                if v > 0 {
                    d.push(Destination {
                        kind: kind.into(),
                        label: kind.replace('_', " "),
                        amount: v,
                        amount_text: coins(v, &t.asset),
                        usd: value(&t, &prices, None, v, &fallback),
                    });
                }
            }
            out.flows.push(FlowAccounting {
                chain: chain.clone(),
                flow: t.flow.clone().unwrap_or_else(|| t.asset.clone()),
                seed_amount: t.seed_amount,
                seed_amount_text: coins(t.seed_amount, &t.asset),
                total_text: coins(d.iter().map(|x| x.amount).sum(), &t.asset),
                destinations: d,
                trace: t,
            });
        }
    }
    if out.flows.is_empty() {
        bail!("none of the seeds of incident {id} is in the ingested data:\n  {}", out.seeds_not_found.join("\n  "));
    }
    Ok(out)
}

/// Prints an incident trace.
pub fn print_incident_trace(r: &IncidentTrace) {
    println!("incident {} (registry {})", r.incident, r.registry_version);
    if r.simulated_prices {
        println!("  USD at tracehound's simulated price series (made up for the demo), not at market prices");
    }
    for f in &r.flows {
        println!("  {} {}: {} traced ({} forward)", f.chain, f.flow, f.seed_amount_text, f.trace.model);
        for d in &f.destinations {
            let pct = d.amount as f64 * 100.0 / f.seed_amount.max(1) as f64;
            println!("    {:<16} {:<44} {:>26} {:>6.2}% {:>16}", d.kind, d.label.chars().take(44).collect::<String>(), d.amount_text, pct, usd(d.usd));
        }
        println!("    {:<61} {:>26}", "total", f.total_text);
    }
    for s in &r.seeds_not_found {
        println!("  skipped (not in the data): {s}");
    }
}

/// The destinations of an incident trace for the HTML report (the largest flow).
pub fn summary(r: &IncidentTrace) -> Option<TraceSummary> {
    let f = r.flows.iter().max_by_key(|f| f.seed_amount)?;
    let dec = decimals(&f.trace.asset).unwrap_or(0);
    Some(TraceSummary {
        simulated_prices: r.simulated_prices,
        incident: r.incident.clone(),
        unit: f.trace.asset.clone(),
        destinations: f.destinations.iter().map(|d| (d.label.clone(), d.kind.clone(), d.amount as f64 / 10f64.powi(dec), d.usd)).collect(),
    })
}

/// `tracehound prices import`.
pub fn prices_import_cmd(data_dir: &Path, file: &Path, asset: Option<&str>) -> Result<()> {
    let n = tracehound_report::PriceTable::import(data_dir, file, asset)?;
    let t = PriceTable::load(data_dir)?;
    println!("{n} daily prices imported from {}", file.display());
    for (asset, first, last) in t.coverage() {
        println!("  {asset}: {first} … {last}");
    }
    Ok(())
}

/// Output formats of `report stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A plain text table.
    Table,
    /// CSV rows.
    Csv,
    /// JSON with every figure's incidents and sources.
    Json,
    /// A self-contained HTML page with SVG charts.
    Html,
}

/// Which incidents `report stats` counts.
#[derive(Debug, Clone, Default)]
pub struct ReportFilters {
    /// Count simulated cases too.
    pub include_simulated: bool,
    /// `--min-attribution`: the weakest attribution level counted.
    pub min_attribution: Option<String>,
    /// `--actor`: the actor id counted.
    pub actor: Option<String>,
}

/// `tracehound report stats`; simulated cases are counted only with `include_simulated`.
pub fn report_cmd(data_dir: &Path, by: &[String], format: ReportFormat, out: &Path, trace: Option<&str>, include_simulated: bool) -> Result<()> {
    report_cmd_with(data_dir, by, format, out, trace, ReportFilters { include_simulated, ..ReportFilters::default() })
}

/// `tracehound report stats` with `--min-attribution` and `--actor`.
pub fn report_cmd_with(data_dir: &Path, by: &[String], format: ReportFormat, out: &Path, trace: Option<&str>, filters: ReportFilters) -> Result<()> {
    let dims: Vec<Dim> = by.iter().map(|b| b.parse::<Dim>().map_err(|e| anyhow::anyhow!("--by {b:?}: {e}"))).collect::<Result<_>>()?;
    let dims = if dims.is_empty() { vec![Dim::Year] } else { dims };
    let min_attribution = match filters.min_attribution.as_deref() {
        Some(a) => Some(a.parse::<Attribution>().map_err(|e| anyhow::anyhow!("--min-attribution: {e}"))?),
        None => None,
    };
    let reg = Registry::load(data_dir)?;
    if let Some(actor) = filters.actor.as_deref() {
        if !reg.incidents().iter().any(|i| i.actor.as_deref() == Some(actor)) {
            let mut known: Vec<&str> = reg.incidents().iter().filter_map(|i| i.actor.as_deref()).collect();
            known.sort_unstable();
            known.dedup();
            bail!("--actor {actor:?}: no incident of the registry has this actor id (known: {})", known.join(", "));
        }
    }
    let prices = PriceTable::load(data_dir)?;
    let options = StatsOptions { include_simulated: filters.include_simulated, min_attribution, actor: filters.actor };
    let table = stats_with(&reg, &prices, &dims, options);
    let text = match format {
        ReportFormat::Table => table.to_text(),
        ReportFormat::Csv => table.to_csv(),
        ReportFormat::Json => table.to_json(),
        ReportFormat::Html => {
            let traced = match trace {
                Some(id) => Some(trace_incident(data_dir, id, Model::Haircut, 10)?),
                None => None,
            };
            html_report("tracehound: crypto thefts by actor, country and year", &table, &reg, traced.as_ref().and_then(summary).as_ref())
        }
    };
    if out == Path::new("-") {
        print!("{text}");
    } else {
        std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {} ({} bytes)", out.display(), text.len());
    }
    Ok(())
}

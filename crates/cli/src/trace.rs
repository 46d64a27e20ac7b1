//! `tracehound trace`: follow the money from seeds, on a UTXO chain (over the graph index) or an
//! EVM chain (over the `transfers` table), and print the flow graph and the accounting.

use crate::chains::{amount_formatter, ensure_index, ensure_transfer_index, utxo_chain};
use crate::labels::{open_labels, tags_by_address};
use anyhow::{bail, Context, Result};
use datafusion::arrow::array::{Array, AsArray};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use tracehound_graph::index::GraphIndex;
use tracehound_graph::Clusters;
use tracehound_tables::{ChainKind, Store};
use tracehound_trace::{account, utxo, Direction, Fees, Limits, Model, Sink, Trace};

// `incident` prints amounts through this module too.

/// Output formats of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    /// A readable summary: the accounting and the largest flows.
    Text,
    /// Everything: accounting, every still-held output or balance, nodes and edges.
    Json,
    /// The edges: hop, tx, height, time, from, to, asset, amount.
    Csv,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// GraphML (Gephi, yEd).
    Graphml,
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct TraceRequest {
    /// Chain name as stored.
    pub chain: String,
    /// Seeds as given: addresses, `txid:vout`, transaction hashes, or files of them.
    pub from: Vec<String>,
    /// Taint model.
    pub model: Model,
    /// Direction.
    pub direction: Direction,
    /// Fees.
    pub fees: Fees,
    /// Limits.
    pub limits: Limits,
    /// Label categories where the trace stops.
    pub stop_at: Vec<String>,
    /// Which side of an address seed is traced.
    pub seed_side: SeedSide,
}

/// Which side of an address seed a trace takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeedSide {
    /// What the address received in the window (an attacker's loot).
    #[default]
    Received,
    /// What the address sent in the window (a drained victim's loss); forward traces only.
    Sent,
}

impl SeedSide {
    fn name(self) -> &'static str {
        match self {
            SeedSide::Received => "received",
            SeedSide::Sent => "sent",
        }
    }
}

/// The label categories a trace stops at by default.
pub const DEFAULT_STOP_AT: &str = "exchange,mixing_service,bridge,coinjoin";

/// Parses `--stop-at`: categories of the label store, with `mixer` for `mixing_service`; `none`
/// stops nowhere.
pub fn parse_stop_at(s: &str) -> Result<Vec<String>> {
    let known = tracehound_labels::CATEGORIES.iter().map(|c| c.0).collect::<BTreeSet<_>>();
    let mut out = vec![];
    for c in s.split(',').map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()) {
        let c = match c.as_str() {
            "mixer" | "mixers" | "mixing" => "mixing_service".to_string(),
            "exchanges" => "exchange".into(),
            "bridges" => "bridge".into(),
            "none" => continue,
            _ => c,
        };
        if !known.contains(c.as_str()) {
            bail!("--stop-at: unknown category {c:?} (known: {})", known.into_iter().collect::<Vec<_>>().join(", "));
        }
        out.push(c);
    }
    Ok(out)
}

/// Parses `--since`/`--until`: a block height, or a date `YYYY-MM-DD` (UTC; `until` means the end
/// of that day). Returns (height, unix time).
pub fn parse_point(s: &str, end_of_day: bool) -> Result<(Option<u64>, Option<u64>)> {
    if let Ok(h) = s.parse::<u64>() {
        return Ok((Some(h), None));
    }
    let d = tracehound_report::unix_of_date(s).with_context(|| format!("{s:?} is neither a block height nor a date YYYY-MM-DD"))?;
    Ok((None, Some(if end_of_day { d + 86_399 } else { d })))
}

/// Reads seeds: each `--from` value is a seed, or a file of seeds (one per line, `#` comments).
pub fn read_seeds(from: &[String]) -> Result<Vec<String>> {
    let mut out = vec![];
    for f in from {
        let p = Path::new(f);
        if p.is_file() {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading seeds from {}", p.display()))?;
            for line in text.lines() {
                let s = line.split('#').next().unwrap_or("").split(',').next().unwrap_or("").trim();
                if !s.is_empty() {
                    out.push(s.to_string());
                }
            }
        } else {
            out.push(f.trim().to_string());
        }
    }
    if out.is_empty() {
        bail!("no seeds: give --from <address | txid:vout | txid | file>");
    }
    Ok(out)
}

/// Runs a trace from the seeds of `req` as given (see [`read_seeds`] for files of seeds). UTXO
/// chains give one [`Trace`]; EVM chains one per flow (asset).
pub fn run_trace(data_dir: &Path, req: &TraceRequest) -> Result<Vec<Trace>> {
    let store = crate::open_existing(data_dir)?;
    // A chain is there when it was ingested or when only explorer exports were imported into it.
    let stored = store.manifest().chain_names();
    if !stored.contains(&req.chain) {
        bail!("no chain {:?} is stored (stored: {})", req.chain, stored.into_iter().collect::<Vec<_>>().join(", "));
    }
    // Seeds as given: files of seeds are read by the command (`trace_cmd`), never here, so a
    // seed sent to the server cannot name a file.
    let seeds: Vec<String> = req.from.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if seeds.is_empty() {
        bail!("no seeds: give --from <address | txid:vout | txid | file>");
    }
    if req.seed_side == SeedSide::Sent && req.direction == Direction::Backward {
        bail!("--seed sent works forward only: a backward trace starts from what an address received (--seed received)");
    }
    match store.manifest().chain_kind(&req.chain) {
        ChainKind::Evm => trace_evm(data_dir, &store, req, &seeds),
        _ => Ok(vec![trace_utxo(data_dir, &store, req, &seeds)?]),
    }
}

fn trace_utxo(data_dir: &Path, store: &Store, req: &TraceRequest, seeds: &[String]) -> Result<Trace> {
    let chain = utxo_chain(store, Some(&req.chain))?;
    let (idx, _) = ensure_index(store, &chain, true)?;
    let mut parsed = vec![];
    for s in seeds {
        parsed.push(match (utxo_seed(&idx, s)?, req.seed_side) {
            (utxo::Seed::Address(a), SeedSide::Sent) => utxo::Seed::AddressSent(a),
            (seed, _) => seed,
        });
    }
    let sinks = utxo_sinks(data_dir, store, &chain, &idx, &req.stop_at)?;
    let opts = utxo::Options { model: req.model, direction: req.direction, fees: req.fees, limits: req.limits.clone() };
    let t = utxo::trace(utxo::UtxoGraph::of(&idx), &idx, &chain, &parsed, &sinks, &opts).map_err(|e| {
        let other = if req.seed_side == SeedSide::Sent { "--seed received" } else { "--seed sent, or widen --since/--until" };
        anyhow::anyhow!("{e}\nhint: an address seed takes what it {} in the window; try {other}", req.seed_side.name())
    })?;
    warn_idle_seeds(seeds, std::slice::from_ref(&t), req.seed_side);
    Ok(t)
}

/// Warns about each address seed that contributed nothing to `traces`, with what to try instead.
fn warn_idle_seeds(seeds: &[String], traces: &[Trace], side: SeedSide) {
    let contributed: BTreeSet<String> = traces.iter().flat_map(|t| t.seed_amounts.iter().map(|s| s.seed.to_ascii_lowercase())).collect();
    for s in seeds {
        let is_address = !s.contains(':') && s.len() != 64 && s.len() != 66;
        if !is_address || contributed.contains(&format!("{} ({})", s.to_ascii_lowercase(), side.name())) {
            continue;
        }
        let (did, other) = match side {
            SeedSide::Received => ("received nothing", "--seed sent to trace what it sent (a drained victim)"),
            SeedSide::Sent => ("sent nothing", "--seed received to trace what it received"),
        };
        eprintln!("warning: seed {s} {did} in the time window, so it adds nothing to the trace; try {other}, or widen --since/--until");
    }
}

fn utxo_seed(idx: &GraphIndex, s: &str) -> Result<utxo::Seed> {
    if let Some((txid, vout)) = s.split_once(':') {
        let t = idx.tx_id(txid).with_context(|| format!("seed {s}: transaction {txid} is not in the ingested data"))?;
        let vout: u64 = vout.parse().with_context(|| format!("seed {s}: output index {vout:?} is not a number"))?;
        let range = idx.tx_out_start()[t as usize]..idx.tx_out_start()[t as usize + 1];
        if vout >= range.end - range.start {
            bail!("seed {s}: transaction {txid} has {} output(s)", range.end - range.start);
        }
        return Ok(utxo::Seed::Output(range.start + vout));
    }
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let t = idx.tx_id(s).with_context(|| format!("seed {s}: transaction not in the ingested data"))?;
        return Ok(utxo::Seed::Transaction(t));
    }
    let a = idx.address_id(s).with_context(|| format!("seed {s}: address never seen in the ingested data"))?;
    Ok(utxo::Seed::Address(a))
}

/// Sinks of a UTXO chain: addresses tagged with a stop category, extended to their whole cluster
/// when clusters are current (the entity is the service).
fn utxo_sinks(data_dir: &Path, store: &Store, chain: &str, idx: &GraphIndex, stop_at: &[String]) -> Result<utxo::Sinks> {
    let mut sinks = utxo::Sinks { coinjoins: stop_at.iter().any(|c| c == "coinjoin"), ..Default::default() };
    let labels = open_labels(data_dir)?;
    let clusters = Clusters::open_current(store.root(), idx).ok();
    for (addr, tags) in tags_by_address(&labels, chain)? {
        let Some(tag) = tags.iter().find(|t| stop_at.contains(&t.category)) else { continue };
        let Some(a) = idx.address_id(&addr) else { continue };
        let name = tag.actor.clone().map(|a| format!("{} ({a})", tag.label)).unwrap_or_else(|| tag.label.clone());
        let sink = Sink { category: tag.category.clone(), name };
        match &clusters {
            Some(c) => sinks.add(sink, c.members(c.cluster_of(a)).to_vec()),
            None => sinks.add(sink, [a]),
        }
    }
    Ok(sinks)
}

/// Where each transaction's gas fee went: the block's fee recipient, and the part burned (gas used
/// × base fee per gas), from the `transactions` and `blocks` tables.
fn fee_payouts(store: &Store, chain: &str) -> Result<HashMap<String, account::FeePayout>> {
    if !store.chain(chain).is_some_and(|c| c.table_names().iter().any(|t| t == "transactions")) {
        // Imported explorer exports only: they carry no gas fees to route.
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT t.hash, b.miner, CAST(CAST(t.receipt_gas_used AS DECIMAL(38, 0)) * COALESCE(b.base_fee_per_gas, 0) AS VARCHAR) AS burned \
         FROM \"{chain}\".transactions t JOIN \"{chain}\".blocks b ON t.block_number = b.number"
    );
    let batches = crate::block_on(async {
        let ctx = tracehound_tables::sql::session(store, Some(chain)).await?;
        tracehound_tables::sql::query(&ctx, &sql).await
    })
    .with_context(|| format!("reading the gas fees' recipients of {chain}"))?;
    let mut out = HashMap::new();
    for b in &batches {
        let col = |i: usize| datafusion::arrow::compute::cast(b.column(i), &datafusion::arrow::datatypes::DataType::Utf8);
        let (hash, miner, burned) = (col(0)?, col(1)?, col(2)?);
        let (hash, miner, burned) = (hash.as_string::<i32>(), miner.as_string::<i32>(), burned.as_string::<i32>());
        for k in 0..b.num_rows() {
            if hash.is_null(k) || miner.is_null(k) {
                continue;
            }
            let burned: u128 = if burned.is_null(k) {
                0
            } else {
                burned.value(k).parse().with_context(|| format!("{chain}.transactions {}: burned fee {:?}", hash.value(k), burned.value(k)))?
            };
            out.insert(hash.value(k).to_ascii_lowercase(), account::FeePayout { recipient: miner.value(k).to_ascii_lowercase(), burned });
        }
    }
    Ok(out)
}

fn trace_evm(data_dir: &Path, store: &Store, req: &TraceRequest, seeds: &[String]) -> Result<Vec<Trace>> {
    let mut parsed = vec![];
    for s in seeds {
        let l = s.to_ascii_lowercase();
        let hex = l.strip_prefix("0x").unwrap_or("");
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("seed {s}: not an address (0x + 40 hex) or a transaction hash (0x + 64 hex)");
        }
        match hex.len() {
            40 if req.seed_side == SeedSide::Sent => parsed.push(account::Seed::Sent(l)),
            40 => parsed.push(account::Seed::Address(l)),
            64 => parsed.push(account::Seed::Transaction(l)),
            _ => bail!("seed {s}: not an address (0x + 40 hex) or a transaction hash (0x + 64 hex)"),
        }
    }
    let mut movements = ensure_transfer_index(store, &req.chain, true)?.0.movements();
    if req.fees == Fees::Follow {
        movements = account::route_fees(&movements, &fee_payouts(store, &req.chain)?);
    }
    let labels = open_labels(data_dir)?;
    let mut services = account::Services::default();
    for (addr, tags) in tags_by_address(&labels, &req.chain)? {
        if let Some(t) = tags.iter().find(|t| stop_at_has(&req.stop_at, &t.category)) {
            let name = t.actor.clone().map(|a| format!("{} ({a})", t.label)).unwrap_or_else(|| t.label.clone());
            services.sinks.insert(addr.to_ascii_lowercase(), Sink { category: t.category.clone(), name });
        } else if let Some(t) = tags.iter().find(|t| t.category == "defi_dex") {
            services.swaps.insert(addr.to_ascii_lowercase(), t.label.clone());
        }
    }
    let traces = account::trace(&req.chain, &movements, &parsed, &services, req.model, req.direction, &req.limits).map_err(|e| {
        let other = if req.seed_side == SeedSide::Sent { "--seed received" } else { "--seed sent (what it sent: a drained victim's loss)" };
        anyhow::anyhow!("{e}\nhint: an address seed takes what it {} in the window; try {other}, or widen --since/--until", req.seed_side.name())
    })?;
    warn_idle_seeds(seeds, &traces, req.seed_side);
    Ok(traces)
}

fn stop_at_has(stop_at: &[String], category: &str) -> bool {
    stop_at.iter().any(|c| c == category)
}

/// Prints a readable accounting of `t`; `coins` shows an amount of an asset to a person.
pub fn print_text(t: &Trace, out: &mut dyn std::io::Write, coins: &dyn Fn(u128, &str) -> String) -> std::io::Result<()> {
    let a = &t.accounting;
    let pct = |x: u128| if t.seed_amount == 0 { 0.0 } else { x as f64 * 100.0 / t.seed_amount as f64 };
    let flow = t.flow.as_deref().map(|f| format!(" — flow {f}")).unwrap_or_default();
    writeln!(out, "{} {:?} trace on {}{flow}: {} from {} seed(s)", t.model, t.direction, t.chain, coins(t.seed_amount, &t.asset), t.seeds.len())?;
    if t.seed_amounts.len() > 1 {
        for s in &t.seed_amounts {
            writeln!(out, "  seed {:<64} {:>28} {:>6.2}%", s.seed, coins(s.amount, &t.asset), pct(s.amount))?;
        }
    }
    let dest = if t.direction == Direction::Forward { "reached" } else { "came from" };
    for s in &a.sinks {
        writeln!(out, "  {dest} {:<15} {:<40} {:>28} {:>6.2}%", s.sink.category, s.sink.name, coins(s.amount, &t.asset), pct(s.amount))?;
    }
    let rows = [
        ("still held", a.held_total, format!("in {} outputs/balances", a.held.len())),
        ("fees", a.fees, String::new()),
        ("below threshold", a.below_threshold, String::new()),
        ("hop limit", a.hop_limit, format!("after {} hops", t.limits.max_hops)),
        ("node limit", a.node_limit, String::new()),
        ("mined (coinbase)", a.mined, String::new()),
        ("unresolved", a.unresolved, String::new()),
    ];
    for (name, v, note) in rows {
        if v > 0 {
            writeln!(out, "  {name:<56} {:>28} {:>6.2}% {note}", coins(v, &t.asset), pct(v))?;
        }
    }
    writeln!(out, "  {:<56} {:>28} (seed {})", "total", coins(a.total(), &t.asset), coins(t.seed_amount, &t.asset))?;
    for h in a.held.iter().take(10) {
        writeln!(out, "    held by {} {}: {} of {}", h.address, h.output.as_deref().unwrap_or(""), coins(h.tainted, &t.asset), coins(h.value, &h.asset))?;
    }
    if a.held.len() > 10 {
        writeln!(out, "    … {} more (see --format json)", a.held.len() - 10)?;
    }
    writeln!(out, "  flow graph: {} nodes, {} edges (--format json|csv|dot|graphml)", t.nodes.len(), t.edges.len())?;
    Ok(())
}

/// Writes traces in `format` to `out` (a file, or standard output for `-`); text shows amounts with
/// `amounts` (machine formats keep exact base units).
pub fn write_traces(traces: &[Trace], format: TraceFormat, out: &Path, amounts: &dyn Fn(u128, &str) -> String) -> Result<()> {
    let text = match format {
        TraceFormat::Json => {
            let v = if traces.len() == 1 { serde_json::to_value(&traces[0])? } else { serde_json::to_value(traces)? };
            serde_json::to_string_pretty(&v)? + "\n"
        }
        TraceFormat::Csv => {
            let mut s = String::new();
            for (i, t) in traces.iter().enumerate() {
                let csv = tracehound_trace::export::to_csv(t);
                s.push_str(if i == 0 { &csv } else { csv.split_once('\n').map(|x| x.1).unwrap_or("") });
            }
            s
        }
        TraceFormat::Dot => traces.iter().map(tracehound_trace::export::to_dot).collect(),
        TraceFormat::Graphml => traces.iter().map(tracehound_trace::export::to_graphml).collect(),
        TraceFormat::Text => {
            let mut buf = vec![];
            for t in traces {
                print_text(t, &mut buf, amounts)?;
            }
            String::from_utf8(buf)?
        }
    };
    if out == Path::new("-") {
        print!("{text}");
    } else {
        std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

/// `tracehound trace`.
pub fn trace_cmd(data_dir: &Path, req: &TraceRequest, format: TraceFormat, out: &Path, entities: bool) -> Result<()> {
    // A trace holds its frontier and flow graph, not the chain: it has no spill, only a report.
    let meter = tracehound_memory::StageMeter::start("trace", crate::memory_limit());
    let req = TraceRequest { from: read_seeds(&req.from)?, ..req.clone() };
    let mut traces = run_trace(data_dir, &req)?;
    crate::report_stage(&meter.report());
    if entities {
        traces = group_by_entity(data_dir, &req.chain, &traces)?;
    }
    // Token amounts a person can read (`4,505,835.697678 USDC`), from the chain's `tokens` table
    // and the bundled list; every other format keeps exact base units.
    let amounts = amount_formatter(&crate::open_existing(data_dir)?, &req.chain);
    write_traces(&traces, format, out, &amounts)
}

/// The traces' flow graphs with addresses grouped into their clusters (`entity <cluster id>`;
/// addresses alone in their cluster stay as they are).
fn group_by_entity(data_dir: &Path, chain: &str, traces: &[Trace]) -> Result<Vec<Trace>> {
    let store = crate::open_existing(data_dir)?;
    let hint = || format!("--nodes entity needs the clusters of {chain}: run `tracehound cluster --chain {chain}` first");
    let group = |idx: &dyn tracehound_graph::AddressIndex| -> Result<Vec<Trace>> {
        let clusters = Clusters::open_current(store.root(), idx).map_err(|e| anyhow::anyhow!("{e}")).with_context(hint)?;
        let entity_of = |a: &str| {
            let id = idx.address_id(a)?;
            let c = clusters.cluster_of(id);
            (clusters.members(c).len() > 1).then(|| format!("entity {c}"))
        };
        Ok(traces.iter().map(|t| tracehound_trace::group_nodes(t, &entity_of)).collect())
    };
    match store.manifest().chain_kind(chain) {
        ChainKind::Evm => group(&ensure_transfer_index(&store, chain, true)?.0),
        _ => group(&ensure_index(&store, chain, true)?.0),
    }
}

/// `tracehound cluster` on an EVM chain: the deposit-address heuristic. Addresses that forward
/// what they receive to one labelled exchange become tagged as that exchange's deposit addresses
/// (source "deposit-address heuristic", confidence `heuristic`), so traces stop at them.
pub fn deposit_cmd(data_dir: &Path, chain: &str, window: u64, json: bool) -> Result<()> {
    let store = crate::open_existing(data_dir)?;
    let (idx, _) = ensure_transfer_index(&store, chain, json)?;
    let movements = idx.movements();
    let mut labels = open_labels(data_dir)?;
    let mut exchange_of = std::collections::HashMap::new();
    let mut actor_of = std::collections::HashMap::new();
    for (addr, tags) in tags_by_address(&labels, chain)? {
        if let Some(t) = tags.iter().find(|t| t.category == "exchange" && t.source != DEPOSIT_SOURCE) {
            let name = t.actor.clone().unwrap_or_else(|| t.label.clone());
            actor_of.insert(name.clone(), t.actor.clone());
            exchange_of.insert(addr.to_ascii_lowercase(), name);
        }
    }
    if exchange_of.is_empty() {
        bail!("no address of {chain} is labelled as an exchange: label the exchanges' hot wallets first (tracehound labels add {chain} <address> --label ... --category exchange)");
    }
    let found = tracehound_graph::account::deposit_addresses(&movements, &exchange_of, window);
    let mut added = 0;
    for d in &found {
        let tag = tracehound_labels::NewTag {
            subject_kind: tracehound_labels::SubjectKind::Address,
            chain: chain.to_string(),
            subject: d.address.clone(),
            label: format!("{} deposit address", d.exchange),
            category: "exchange".into(),
            actor: actor_of.get(&d.exchange).cloned().flatten(),
            source: DEPOSIT_SOURCE.into(),
            confidence: Some("heuristic".into()),
            author: None,
            abuse: None,
            is_cluster_definer: false,
            origin_file: None,
        };
        if labels.add_tag(&tag)? {
            added += 1;
        }
    }
    crate::labels::write_tags_table(data_dir, &labels)?;
    // Entities: each deposit address joins the exchange address it forwards to.
    let meta = tracehound_graph::account::cluster_deposits(store.root(), &idx, &found)?;
    let clusters = tracehound_graph::Clusters::open_current(store.root(), &idx)?;
    let (rows, _) = tracehound_graph::write_cluster_table(&store, &idx, &clusters)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "chain": chain, "exchanges": exchange_of.len(), "deposit_addresses": found, "tags_added": added,
                "clusters": meta, "address_clusters_rows": rows,
            }))?
        );
        return Ok(());
    }
    println!(
        "{chain}: {} deposit addresses of {} labelled exchange addresses found over {} movements ({added} new tags):",
        found.len(),
        exchange_of.len(),
        movements.len()
    );
    for d in &found {
        println!(
            "  {} -> {} ({}): received in {}, forwarded in {} ({} forwards)",
            d.address, d.forwarded_to, d.exchange, d.received_in, d.forwarded_in, d.forwards
        );
    }
    println!(
        "  entities: {} addresses in {} clusters (largest {}), {} deposit-address merges; table address_clusters: {rows} rows",
        meta.addresses, meta.clusters, meta.largest_cluster, meta.deposit_merges
    );
    Ok(())
}

/// Source of the tags the deposit-address heuristic writes.
pub const DEPOSIT_SOURCE: &str = "deposit-address heuristic (tracehound cluster)";

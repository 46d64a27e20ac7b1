//! `tracehound demo`: a whole investigation on bundled machinery — simulate a chain with a
//! heist, ingest it from its block files, and follow the stolen coins with SQL.

use crate::block_on;
use crate::chains::ensure_index;
use crate::entities::{address_cmd, evaluate_against, explain_cmd};
use crate::labels::{open_labels, write_tags_table};
use crate::progress::IngestProgress;
use anyhow::{Context, Result};
use std::path::Path;
use tracehound_graph::cluster::{self, ClusterConfig, Clusters};
use tracehound_graph::GraphIndex;
use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
use tracehound_tables::format::{write_results, OutputFormat};
use tracehound_tables::sql::{query, session};
use tracehound_tables::Store;

fn values_list(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(a, b)| format!("('{a}', '{b}')")).collect::<Vec<_>>().join(", ")
}

pub fn run(data_dir: &Path, blocks: u64, seed: u64) -> Result<()> {
    let sim_dir = data_dir.join("demo-chain");
    println!("1. Simulating a regtest chain of {blocks} blocks with exchanges, CoinJoins and a heist -> {}", sim_dir.display());
    let cfg = tracehound_simulate::SimConfig { blocks, seed, ..Default::default() };
    let truth = tracehound_simulate::simulate(&cfg, &sim_dir).context("simulating the demo chain")?;
    let heist = truth.heist.clone().context("the demo chain is too short for a heist: use --blocks 150 or more")?;
    println!(
        "   {} transactions, {} stale blocks, heist of {} sat from {} at height {}\n",
        truth.transactions, truth.stale_blocks, heist.stolen_sat, heist.victim, heist.height
    );

    println!("2. Ingesting its blk*.dat files into {}", data_dir.display());
    {
        let mut store = Store::open_for_write(data_dir)?;
        let p = IngestProgress::new();
        let r = ingest_blk_files(&mut store, &BlkOptions::new(sim_dir.join("blocks")), &|e| p.handle(e));
        p.finish();
        let r = r?;
        if r.blocks == 0 {
            println!("   already ingested (tip {})\n", r.tip.unwrap_or(0));
        } else {
            println!(
                "   {} blocks, {} transactions, {} inputs (all resolved: {}), {} outputs, {} stale blocks skipped\n",
                r.blocks,
                r.transactions,
                r.inputs,
                r.unresolved_inputs == 0,
                r.outputs,
                r.stale_blocks
            );
        }
    }

    let store = Store::open(data_dir)?;
    let attacker = &truth.wallets[heist.attacker_wallet as usize];
    let attacker_addrs: Vec<String> = attacker.addresses.iter().map(|a| format!("'{a}'")).collect();
    let mut deposit_pairs: Vec<(String, String)> = heist.deposits.iter().map(|d| (d.address.clone(), d.exchange.clone())).collect();
    deposit_pairs.sort();
    deposit_pairs.dedup();
    let steps = [
        ("3. The chain, from the tables", "SELECT count(*) AS blocks, max(number) AS tip, sum(transaction_count) AS transactions, sum(size) AS bytes FROM blocks".to_string()),
        ("4. The theft transaction", format!("SELECT hash, block_number, input_count, output_count, input_value, output_value, fee FROM transactions WHERE hash = '{}'", heist.txid)),
        ("5. Who took the coins (outputs of the theft)", format!("SELECT index, value, type, addresses FROM outputs WHERE transaction_hash = '{}'", heist.txid)),
        ("6. Where the loot went next (transactions spending it)", format!("SELECT i.transaction_hash AS spending_tx, t.block_number, t.output_count, t.output_value FROM inputs i JOIN transactions t ON t.hash = i.transaction_hash WHERE i.spent_transaction_hash = '{}'", heist.txid)),
        ("7. Stolen coins deposited at exchanges (attacker's deposit addresses)", format!("WITH deposit(address, exchange) AS (VALUES {}) SELECT d.exchange, count(*) AS deposits, sum(o.value) AS sat FROM outputs o JOIN deposit d ON d.address = o.addresses[1] GROUP BY d.exchange ORDER BY sat DESC", values_list(&deposit_pairs))),
        ("8. Stolen coins still held by the attacker (unspent outputs)", format!("SELECT count(*) AS outputs, sum(o.value) AS sat FROM outputs o LEFT JOIN inputs i ON i.spent_transaction_hash = o.transaction_hash AND i.spent_output_index = o.index WHERE o.addresses[1] IN ({}) AND i.transaction_hash IS NULL", attacker_addrs.join(", "))),
    ];
    let mut results = vec![];
    block_on(async {
        let ctx = session(&store, None).await?;
        for (title, sql) in &steps {
            println!("{title}\n   tracehound sql \"{}\"", if sql.len() > 160 { format!("{}…", &sql[..160]) } else { sql.clone() });
            let batches = query(&ctx, sql).await?;
            write_results(&batches, OutputFormat::Table, &mut std::io::stdout())?;
            results.push(batches);
        }
        Ok::<_, tracehound_tables::Error>(())
    })?;
    let deposited: u64 = heist.deposited_by_exchange.values().sum();
    println!(
        "Ground truth of the simulator: stolen {} sat = deposited {} + fees {} + still held {} ({} sat unaccounted).",
        heist.stolen_sat,
        deposited,
        heist.fees_sat,
        heist.held_sat,
        heist.unaccounted()
    );
    println!();
    entities_part(data_dir, &sim_dir, &truth, &heist)?;
    tracing_part(data_dir, &sim_dir, &truth, &heist)?;
    println!("\nExplore further: tracehound --data-dir {} sql \"SELECT type, count(*), sum(value) FROM outputs GROUP BY type\"", data_dir.display());
    Ok(())
}

/// Labels, the graph index, clustering and entities: who is behind the addresses.
fn entities_part(data_dir: &Path, sim_dir: &Path, truth: &tracehound_simulate::GroundTruth, heist: &tracehound_simulate::Heist) -> Result<()> {
    let chain = truth.chain.as_str();
    println!("9. Loading the bundled label set (OFAC SDN addresses, GraphSense TagPacks and actors, incident addresses)");
    let mut labels = open_labels(data_dir)?;
    let reports = labels.import_defaults()?;
    let c = labels.counts()?;
    println!("   {} files read: {} tags and {} actors in the label store", reports.len(), c.tags, c.actors);
    if let Some(l) = labels.actor("lazarus")? {
        println!("   actor {}: \"{}\", country {}, {} tags", l.actor.id, l.actor.label, l.actor.country.as_deref().unwrap_or("-"), l.tag_count);
    }
    // The simulated world's own labels: what an investigator knows of it (exchange hot wallets from
    // their public proof-of-reserves, the attacker address from the victim's incident report).
    let csv = sim_dir.join("known_labels.csv");
    let mut rows = String::from("address,label,category,actor\n");
    for (name, addr) in &truth.exchange_hot_wallets {
        rows.push_str(&format!("{addr},{name} hot wallet,exchange,\n"));
    }
    let attacker = &truth.wallets[heist.attacker_wallet as usize];
    let first_thief = attacker.addresses[0].clone();
    rows.push_str(&format!("{first_thief},{} heist attacker,hacker,lazarusgroup\n", heist.victim));
    std::fs::write(&csv, rows).with_context(|| format!("writing {}", csv.display()))?;
    let opts =
        tracehound_labels::CsvImport { source: "demo incident report".into(), category: None, chain: Some(chain.to_string()), actor: None, confidence: None };
    let r = labels.import_csv(&csv, &opts)?;
    println!("   {} labels of the simulated world from {} ({} already present)", r.inserted, csv.display(), r.unchanged);
    write_tags_table(data_dir, &labels)?;
    drop(labels);

    println!("\n10. Graph index and clustering (multi-input heuristic; CoinJoins recognised and skipped)");
    let store = Store::open(data_dir)?;
    let (idx, ir) = ensure_index(&store, chain, false)?;
    println!("   index {}: {} transactions, {} addresses, {} bytes", ir.action, ir.meta.transactions, ir.meta.addresses, ir.bytes);
    let report = cluster::cluster(store.root(), &idx, &ClusterConfig::default(), &mut |_, _| {})?;
    let clusters = Clusters::open_current(store.root(), &idx)?;
    tracehound_graph::write_cluster_table(&store, &idx, &clusters)?;
    let score = evaluate_against(&sim_dir.join("ground_truth.json"), &idx, &clusters)?;
    println!(
        "   {} addresses in {} entities; {} CoinJoins skipped; against the simulator's wallets: precision {:.3}, recall {:.3}",
        report.meta.addresses,
        report.meta.clusters,
        report.meta.coinjoins.values().sum::<u64>(),
        score.precision,
        score.recall
    );
    drop(clusters);

    println!("\n11. The attacker's address, its entity and the labels on it");
    address_cmd(data_dir, chain, &first_thief, false)?;
    if let Some(d) = heist.deposits.first() {
        println!("\n12. Where the loot was deposited: the deposit address {} and the entity it belongs to", d.address);
        address_cmd(data_dir, chain, &d.address, false)?;
    }
    if let Some(d) = heist.deposits.first() {
        let hot = &truth.exchange_hot_wallets[&d.exchange];
        let idx = GraphIndex::open_current(&store, chain)?;
        let clusters = Clusters::open_current(store.root(), &idx)?;
        let same = |a: &str, b: &str| match (idx.address_id(a), idx.address_id(b)) {
            (Some(a), Some(b)) => clusters.cluster_of(a) == clusters.cluster_of(b),
            _ => false,
        };
        if same(&d.address, hot) {
            println!("\n13. Why is the deposit address {}'s? The merges that join it to the labelled hot wallet", d.exchange);
            explain_cmd(data_dir, chain, &d.address, hot, false)?;
        }
    }
    println!("\n14. Labels joined with entities in SQL");
    let sql = format!(
        "SELECT t.label, t.category, c.cluster_id, c.cluster_size FROM tags t JOIN address_clusters c ON c.address = t.address AND c.chain = t.chain WHERE t.chain = '{chain}' ORDER BY t.label"
    );
    println!("   tracehound sql \"{sql}\"");
    block_on(async {
        let ctx = session(&store, None).await?;
        let batches = query(&ctx, &sql).await?;
        write_results(&batches, OutputFormat::Table, &mut std::io::stdout())
    })?;
    Ok(())
}

/// Tracing and reporting: the heist as an incident, traced to exchanges, CoinJoins and the coins
/// still held, valued in USD, and the HTML report.
fn tracing_part(data_dir: &Path, sim_dir: &Path, truth: &tracehound_simulate::GroundTruth, heist: &tracehound_simulate::Heist) -> Result<()> {
    let chain = truth.chain.as_str();
    let store = Store::open(data_dir)?;
    let idx = GraphIndex::open_current(&store, chain)?;
    let t = idx.tx_id(&heist.txid).context("the theft transaction is indexed")?;
    let date = crate::incidents::day(idx.tx_time()[t as usize] as u64);
    let prices = tracehound_report::PriceTable::simulated();
    let usd = prices.usd_at("BTC", &date).map(|(p, _)| (heist.stolen_sat as f64 / 1e8 * p).round() as u64);
    println!("\n15. The heist as a simulated case of the registry (next to the bundled real ones: `tracehound incident list`; marked `simulated: true`, so statistics leave it out)");
    let yaml = sim_dir.join("demo_heist.yaml");
    let text = format!(
        "id: demo_heist\nname: Simulated hot-wallet heist at {victim} (demo chain)\ndate: {date}\nvictim: {victim}\nvictim_type: exchange\nchains: [{chain}]\nassets: [BTC]\namount_native: \"{btc} BTC\"\n{usd}actor_name: simulated attacker\nsimulated: true\nsources: [\"tracehound simulate (seed {seed}): {gt}\", \"amount_usd at tracehound's simulated BTC price series, not a market price\"]\nseeds:\n  - {{chain: {chain}, tx: \"{txid}\", role: attacker, label: theft transaction, source: simulator ground truth}}\n",
        victim = heist.victim,
        btc = heist.stolen_sat as f64 / 1e8,
        usd = usd.map(|u| format!("amount_usd: {u}\n")).unwrap_or_default(),
        seed = truth.seed,
        gt = sim_dir.join("ground_truth.json").display(),
        txid = heist.txid,
    );
    std::fs::write(&yaml, text).with_context(|| format!("writing {}", yaml.display()))?;
    // A demo of an earlier tracehound registered the heist without `simulated: true`, so statistics
    // counted it as a real theft: that case (ours: id demo_heist, sourced to the simulator) is replaced.
    let registry = tracehound_report::Registry::load(data_dir)?;
    if let Some(old) = registry
        .get("demo_heist")
        .filter(|i| i.provenance == tracehound_report::Provenance::User && i.sources.iter().any(|s| s.starts_with("tracehound simulate")))
    {
        println!("   replacing {}: an earlier demo registered the heist without marking it simulated", old.origin);
        std::fs::remove_file(&old.origin).with_context(|| format!("removing {}", old.origin))?;
    }
    println!("   tracehound incident add {}", yaml.display());
    crate::incidents::add_cmd(data_dir, &yaml)?;

    println!("\n16. Where did the loot go? Haircut taint from the theft, stopping at exchanges (their whole entities) and CoinJoins");
    println!("   tracehound incident trace demo_heist");
    let traced = crate::incidents::trace_incident(data_dir, "demo_heist", tracehound_trace::Model::Haircut, 10)?;
    crate::incidents::print_incident_trace(&traced);
    let deposited: u64 = heist.deposited_by_exchange.values().sum();
    println!(
        "   The simulator's ledger: {} BTC deposited at exchanges in all, part of it after the CoinJoins, where the trace stops ({} CoinJoins); {} BTC held in the end.",
        deposited as f64 / 1e8,
        heist.coinjoin_txids.len(),
        heist.held_sat as f64 / 1e8
    );

    println!("\n17. Crime statistics over the registry's real incidents (the simulated heist is left out), and the report");
    crate::incidents::report_cmd(data_dir, &["country".into(), "year".into()], crate::incidents::ReportFormat::Table, Path::new("-"), None, false)?;
    let report = data_dir.join("report.html");
    crate::incidents::report_cmd(data_dir, &["actor".into(), "year".into()], crate::incidents::ReportFormat::Html, &report, Some("demo_heist"), false)?;
    let report = report.canonicalize().unwrap_or(report);
    println!(
        "\nThe report (charts of stolen USD by year and actor and top countries over the real incidents, and, in a section of its own, where the simulated heist's coins went): {}",
        report.display()
    );
    screen_deposits(data_dir, chain, &idx, heist)
}

/// Step 18: screening deposits at the exchanges, as a compliance team would: one of the heist's
/// deposits (severe), and a deposit made before the heist (clean).
fn screen_deposits(data_dir: &Path, chain: &str, idx: &GraphIndex, heist: &tracehound_simulate::Heist) -> Result<()> {
    println!("\n18. Screening deposits at the exchanges: the exposure index, then one deposit of the heist's proceeds and one made before the heist");
    println!("   tracehound exposure build --chain {chain}");
    crate::screening::exposure_cmd(data_dir, chain, None, false)?;
    let mut subjects = vec![];
    if let Some(d) = heist.deposits.first() {
        subjects.push(format!("{}/{}", d.txid, d.address));
    }
    // An ordinary payment from before the heist: its funds cannot hold stolen coins.
    let before = idx.tx_height().partition_point(|&h| (h as u64) < heist.height.saturating_sub(1));
    if let Some(t) = (0..before as u32).rev().find(|&t| {
        let ins = idx.tx_in_start()[t as usize]..idx.tx_in_start()[t as usize + 1];
        ins.clone().all(|i| idx.in_prevout()[i as usize] != tracehound_graph::index::NONE)
    }) {
        subjects.push(format!("{}:0", idx.tx_hash(t)));
    }
    println!("   tracehound screen {chain} {}", subjects.join(" "));
    let results = crate::screening::screen_items(data_dir, chain, &subjects, None, true)?;
    crate::screening::print_results(&results, &mut std::io::stdout())?;
    println!("\nServe the same answers over HTTP (JSON, OpenAPI at /v1/openapi.json):");
    println!("   tracehound --data-dir {} keys create --role viewer --name demo", data_dir.display());
    println!("   tracehound --data-dir {} serve --listen 127.0.0.1:8080", data_dir.display());
    println!("   curl -H \"X-API-Key: <key>\" http://127.0.0.1:8080/v1/chains/{chain}/screen/<address>");
    Ok(())
}

//! `index`, `cluster`, `address`, `entity` and `explain`: the graph index and the entities built on it.

use crate::chains::{any_chain, bar, coins, ensure_chain_index, ensure_index, ensure_transfer_index, utxo_chain, ChainIndex};
use crate::labels::{open_labels, tags_by_address};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tracehound_graph::cluster::{self, ChangeRule, ClusterConfig, Clusters};
use tracehound_graph::index::{self, GraphIndex, NONE};
use tracehound_graph::transfers::{self, TransferIndex};
use tracehound_graph::AddressIndex;
use tracehound_tables::Store;

// `demo` reaches the graph index through this module.

/// `tracehound index`.
pub fn index_cmd(data_dir: &Path, chain: Option<&str>, verify: bool, json: bool) -> Result<()> {
    let store = crate::open_existing(data_dir)?;
    let chain = any_chain(&store, chain)?;
    if verify {
        // Forget that the files were checked: opening them below checks every byte again, and
        // a damaged index is rebuilt (with the reason), damaged clusters refused.
        let root = store.root();
        let clusters = tracehound_graph::cluster::clusters_path(root, &chain);
        for path in [tracehound_graph::index::index_path(root, &chain), tracehound_graph::transfers::transfers_path(root, &chain), clusters.clone()] {
            let _ = std::fs::remove_file(tracehound_graph::file::checked_path(&path));
        }
        if clusters.exists() {
            Clusters::open(&clusters)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .context("the clusters failed their check: run `tracehound cluster` to rebuild them")?;
        }
    }
    if store.manifest().chain_kind(&chain) == tracehound_tables::ChainKind::Evm {
        let (_, r) = ensure_transfer_index(&store, &chain, json)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&r)?);
            return Ok(());
        }
        let m = &r.meta;
        println!(
            "{chain}: transfer index {} ({} files read); {} movements (transfers and gas fees) of {} assets, {} addresses, {} transactions up to height {}; {} bytes",
            r.action,
            r.files_read,
            m.movements,
            m.assets,
            m.addresses,
            m.transactions,
            m.tip_height().map_or("-".into(), |h| h.to_string()),
            r.bytes
        );
        if let Some(reason) = &r.reason {
            println!("  rebuilt because: {reason}");
        }
        if m.skipped > 0 {
            println!("  {} transfers left out: ERC-721 tokens, and amounts of 2^128 base units or more (spam tokens)", m.skipped);
        }
        return Ok(());
    }
    let chain = utxo_chain(&store, Some(&chain))?;
    let (_, r) = ensure_index(&store, &chain, json)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        let m = &r.meta;
        println!(
            "{chain}: index {} ({} chunks read); {} transactions, {} inputs, {} outputs, {} addresses up to height {}; {} bytes",
            r.action,
            r.chunks_read,
            m.transactions,
            m.inputs,
            m.outputs,
            m.addresses,
            m.tip_height().map_or("-".into(), |h| h.to_string()),
            r.bytes
        );
        if let Some(reason) = &r.reason {
            println!("  rebuilt because: {reason}");
        }
        if m.unresolved_inputs > 0 {
            println!("  {} inputs spend outputs outside the data (pruned): they join no cluster", m.unresolved_inputs);
        }
    }
    Ok(())
}

/// Parses `--change-heuristics`: `none`, `all` or a comma-separated list of rule names.
pub fn parse_change_rules(s: &str) -> Result<Vec<ChangeRule>> {
    match s {
        "none" | "" => Ok(vec![]),
        "all" => Ok(ChangeRule::ALL.to_vec()),
        list => list
            .split(',')
            .map(|n| {
                ChangeRule::from_name(n.trim())
                    .with_context(|| format!("unknown change heuristic {n:?}; use none, all, or some of: {}", ChangeRule::ALL.map(|r| r.as_str()).join(", ")))
            })
            .collect(),
    }
}

/// `tracehound cluster`.
pub fn cluster_cmd(data_dir: &Path, chain: Option<&str>, change: &str, evaluate: Option<&Path>, json: bool) -> Result<()> {
    let store = crate::open_existing(data_dir)?;
    let chain = utxo_chain(&store, chain)?;
    let config = ClusterConfig { change_rules: parse_change_rules(change)? };
    let (idx, _) = ensure_index(&store, &chain, json)?;
    let pb = bar(idx.tx_count() as u64, "transactions clustered");
    let started = std::time::Instant::now();
    let report = cluster::cluster_within(store.root(), &idx, &config, Some(crate::memory_limit()), &mut |done, _| pb.set_position(done));
    pb.finish_and_clear();
    let report = report?;
    crate::report_stage(&report.memory);
    let secs = started.elapsed().as_secs_f64();
    let clusters = Clusters::open_current(store.root(), &idx)?;
    let (rows, _) = tracehound_graph::write_cluster_table(&store, &idx, &clusters)?;
    let score = match evaluate {
        Some(path) => Some(evaluate_against(path, &idx, &clusters)?),
        None => None,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"chain": chain, "report": report, "seconds": secs, "address_clusters_rows": rows, "ground_truth": score}))?
        );
        return Ok(());
    }
    let m = &report.meta;
    let rules: Vec<&str> = config.change_rules.iter().map(|r| r.as_str()).collect();
    println!(
        "{chain}: {} clustering of {} transactions in {:.2} s: {} addresses in {} clusters (largest {}); {} multi-input merges, {} change merges{}",
        report.mode,
        report.transactions_processed,
        secs,
        m.addresses,
        m.clusters,
        m.largest_cluster,
        m.multi_input_merges,
        m.change_merges,
        if rules.is_empty() { " (change heuristics off)".to_string() } else { format!(" (change heuristics: {})", rules.join(", ")) }
    );
    let cj: Vec<String> = m.coinjoins.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!("  CoinJoins recognised and left unmerged: {}", if cj.is_empty() { "none".to_string() } else { cj.join(", ") });
    println!("  table address_clusters: {rows} rows (try: tracehound sql \"SELECT cluster_id, cluster_size FROM address_clusters ORDER BY cluster_size DESC LIMIT 5\")");
    if let Some(s) = score {
        println!("  against the ground truth ({} addresses): pairwise precision {:.4}, recall {:.4}", s.addresses, s.precision, s.recall);
    }
    Ok(())
}

/// Pairwise precision and recall of `clusters` against a simulator's `ground_truth.json`.
pub fn evaluate_against(path: &Path, idx: &GraphIndex, clusters: &Clusters) -> Result<cluster::PairwiseScore> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read ground truth {}", path.display()))?;
    let truth: tracehound_simulate::GroundTruth = serde_json::from_str(&text).with_context(|| format!("{}: not a simulator ground truth", path.display()))?;
    let mut wallet_of = vec![None; idx.address_count()];
    for w in &truth.wallets {
        for a in &w.addresses {
            if let Some(id) = idx.address_id(a) {
                wallet_of[id as usize] = Some(w.id);
            }
        }
    }
    Ok(cluster::pairwise_score(clusters.cluster_ids(), &wallet_of))
}

fn clusters_if_current(store: &Store, idx: &dyn AddressIndex) -> Option<Clusters> {
    Clusters::open_current(store.root(), idx).ok()
}

/// Received, spent and held amounts of an address, from the index.
fn address_flows(idx: &GraphIndex, a: u32) -> serde_json::Value {
    let outs = idx.outputs_of(a);
    let (value, spender) = (idx.out_value(), idx.out_spender());
    let received: u64 = outs.iter().map(|&o| value[o as usize]).sum();
    let unspent: Vec<u64> = outs.iter().copied().filter(|&o| spender[o as usize] == NONE).collect();
    let balance: u64 = unspent.iter().map(|&o| value[o as usize]).sum();
    let mut txs: BTreeSet<u32> = outs.iter().map(|&o| idx.tx_of_output(o)).collect();
    txs.extend(outs.iter().filter(|&&o| spender[o as usize] != NONE).map(|&o| idx.tx_of_input(spender[o as usize])));
    let first = outs.first().map(|&o| idx.tx_of_output(o));
    let last = txs.iter().next_back().copied();
    let seen =
        |t: Option<u32>| t.map(|t| json!({"transaction": idx.tx_hash(t), "block_number": idx.tx_height()[t as usize], "timestamp": idx.tx_time()[t as usize]}));
    json!({
        "type": outs.first().map(|&o| idx.output_type(o).as_str()),
        "outputs": outs.len(),
        "unspent_outputs": unspent.len(),
        "transactions": txs.len(),
        "received_sat": received,
        "sent_sat": received - balance,
        "balance_sat": balance,
        "first_seen": seen(first),
        "last_seen": seen(last),
    })
}

/// Tags of the members of cluster `c`, with the conflicts among them.
pub fn cluster_tags(data_dir: &Path, chain: &str, idx: &dyn AddressIndex, clusters: &Clusters, c: u32) -> Result<serde_json::Value> {
    let labels = open_labels(data_dir)?;
    let by_addr = tags_by_address(&labels, chain)?;
    let mut tags = vec![];
    let mut services: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut actors = BTreeSet::new();
    for (addr, ts) in &by_addr {
        let Some(id) = idx.address_id(addr) else { continue };
        if clusters.cluster_of(id) != c {
            continue;
        }
        for t in ts {
            if let Some(a) = &t.actor {
                actors.insert(a.clone());
            }
            if matches!(t.category.as_str(), "exchange" | "mixing_service" | "bridge" | "wallet_service" | "payment_processor" | "gambling" | "market") {
                services.entry(t.category.clone()).or_default().insert(t.actor.clone().unwrap_or_else(|| t.label.clone()));
            }
            tags.push(json!({"address": addr, "label": t.label, "category": t.category, "actor": t.actor, "source": t.source, "confidence": t.confidence}));
        }
    }
    for t in labels.tags_of_kind(tracehound_labels::SubjectKind::Cluster, chain, &c.to_string())? {
        if let Some(a) = &t.actor {
            actors.insert(a.clone());
        }
        tags.push(json!({"cluster": c, "label": t.label, "category": t.category, "actor": t.actor, "source": t.source, "confidence": t.confidence}));
    }
    let mut conflicts: Vec<String> = services
        .iter()
        .filter(|(_, owners)| owners.len() > 1)
        .map(|(cat, owners)| format!("{} different {cat} owners in one cluster: {}", owners.len(), owners.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect();
    let illicit: BTreeSet<&str> = tags
        .iter()
        .filter_map(|t| t["category"].as_str())
        .filter(|c| matches!(*c, "hacker" | "theft" | "ransomware" | "scam" | "phishing" | "sanctioned" | "perpetrator" | "terrorism"))
        .collect();
    if !services.is_empty() && !illicit.is_empty() {
        conflicts.push(format!(
            "tagged both as a service ({}) and as {}: a service used by criminals, or a wrong merge or label",
            services.keys().cloned().collect::<Vec<_>>().join(", "),
            illicit.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if actors.len() > 1 {
        conflicts.push(format!("{} different actors: {}", actors.len(), actors.iter().cloned().collect::<Vec<_>>().join(", ")));
    }
    Ok(json!({"tags": tags, "actors": actors, "conflicts": conflicts}))
}

/// `tracehound address`. When no chain data of `chain` is stored but labels are (a sanctions list
/// imported before any chain), it shows the address's labels and says that the chain is missing.
pub fn address_cmd(data_dir: &Path, chain: &str, address: &str, json_out: bool) -> Result<()> {
    let store = Store::open(data_dir)?;
    if !store.manifest().chain_names().contains(chain) && crate::labels::labels_path(data_dir).is_file() {
        return show_labels_only(data_dir, &store, chain, address, json_out);
    }
    let store = crate::open_existing(data_dir)?;
    let chain = any_chain(&store, Some(chain))?;
    let idx = ensure_chain_index(&store, &chain, json_out)?;
    let out = address_value(data_dir, &store, &chain, &idx, address)?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print_address(&chain, idx.addresses(), address, &out)
}

fn is_evm(store: &Store, chain: &str) -> bool {
    store.manifest().chain_kind(chain) == tracehound_tables::ChainKind::Evm
}

/// The tags naming `address` on `chain`, most confident first.
fn address_tags(data_dir: &Path, chain: &str, address: &str) -> Result<Vec<serde_json::Value>> {
    let labels = open_labels(data_dir)?;
    Ok(labels
        .tags_for(chain, &[address.to_string()])?
        .into_iter()
        .map(|t| json!({"label": t.label, "category": t.category, "actor": t.actor, "source": t.source, "confidence": t.confidence}))
        .collect())
}

fn print_tags(own: &[serde_json::Value]) {
    for t in own {
        println!(
            "  tag: {} [{}] actor {} (source: {})",
            t["label"].as_str().unwrap_or(""),
            t["category"].as_str().unwrap_or(""),
            t["actor"],
            t["source"].as_str().unwrap_or("")
        );
    }
}

/// `address` on a chain of which no data is stored: its labels only.
fn show_labels_only(data_dir: &Path, store: &Store, chain: &str, address: &str, json_out: bool) -> Result<()> {
    let own = address_tags(data_dir, chain, address)?;
    let stored: Vec<String> = store.manifest().chain_names().into_iter().collect();
    if json_out {
        let out = json!({"chain": chain, "address": address, "chain_data": false, "stored_chains": stored, "seen": null, "tags": own});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{address} on {chain}: no chain data of {chain} is ingested in {} (stored chains: {}), so its activity and entity are unknown; labels only",
        data_dir.display(),
        if stored.is_empty() { "none".to_string() } else { stored.join(", ") }
    );
    print_tags(&own);
    if own.is_empty() {
        println!("  no tag names it");
    }
    Ok(())
}

/// What is known of `address` on `chain`, as `tracehound address --json` prints it: its
/// activity (`seen: false` and its tags only when the data never shows it), tags and cluster.
pub fn address_value(data_dir: &Path, store: &Store, chain: &str, idx: &ChainIndex, address: &str) -> Result<serde_json::Value> {
    let own = address_tags(data_dir, chain, address)?;
    let addresses = idx.addresses();
    let Some(a) = addresses.address_id(address) else {
        return Ok(json!({"chain": chain, "address": address, "seen": false, "tags": own}));
    };
    let flows = match idx {
        ChainIndex::Utxo(i) => address_flows(i, a),
        ChainIndex::Evm(i) => account_activity(i, &[a]),
    };
    let cluster = match clusters_if_current(store, addresses) {
        Some(c) => {
            let id = c.cluster_of(a);
            let t = cluster_tags(data_dir, chain, addresses, &c, id)?;
            json!({"id": id, "size": c.members(id).len(), "heuristics": c.meta().config, "tags": t["tags"], "actors": t["actors"], "conflicts": t["conflicts"]})
        }
        None => serde_json::Value::Null,
    };
    Ok(json!({"chain": chain, "address": address, "address_id": a, "seen": true, "activity": flows, "tags": own, "cluster": cluster}))
}

/// Prints what [`address_value`] found for a person.
fn print_address(chain: &str, idx: &dyn AddressIndex, address: &str, out: &serde_json::Value) -> Result<()> {
    let own = out["tags"].as_array().cloned().unwrap_or_default();
    if out["seen"] == json!(false) {
        let height = idx.chunks().last().map(|c| c.last);
        if own.is_empty() {
            bail!("address {address} does not appear on {chain} (up to height {height:?}) and no tag names it");
        }
        // Known to the labels but not (yet) to the chain data: what is known is still worth showing.
        println!("{address} on {chain}: not seen in the ingested data (up to height {height:?}); labels only");
        print_tags(&own);
        return Ok(());
    }
    let a = &out["address_id"];
    let f = &out["activity"];
    println!("{address} on {chain} (address id {a}{})", f["type"].as_str().map(|t| format!(", {t}")).unwrap_or_default());
    print_activity(f);
    println!(
        "  first seen in block {} ({}), last in block {}",
        f["first_seen"]["block_number"],
        f["first_seen"]["transaction"].as_str().unwrap_or("-"),
        f["last_seen"]["block_number"]
    );
    print_tags(&own);
    match out["cluster"].as_object() {
        None => println!("  not clustered yet: run `tracehound cluster`"),
        Some(c) => {
            println!("  entity: cluster {} with {} addresses (tracehound entity {chain} {})", c["id"], c["size"], c["id"]);
            print_cluster_tags(&out["cluster"]);
        }
    }
    Ok(())
}

/// Prints what [`address_flows`] (BTC) or [`account_activity`] (per asset) found.
fn print_activity(f: &serde_json::Value) {
    match f["assets"].as_array() {
        None => println!(
            "  {} transactions, received {} BTC, sent {} BTC, balance {} BTC",
            f["transactions"],
            btc(&f["received_sat"]),
            btc(&f["sent_sat"]),
            btc(&f["balance_sat"])
        ),
        Some(assets) => {
            println!("  {} transactions, {} movements", f["transactions"], f["movements"]);
            for x in assets {
                let asset = x["asset"].as_str().unwrap_or("");
                let amount = |k: &str| coins(x[k].as_str().unwrap_or("0").parse().unwrap_or(0), asset);
                println!("  {asset}: received {}, sent {}, fees {}, balance {}", amount("received"), amount("sent"), amount("fees"), amount("balance"));
            }
        }
    }
}

/// Received, sent, gas fees paid and balance per asset of `members` together, from the transfer
/// index (movements between members count for neither side). Amounts are decimal strings of base
/// units. A balance that would be negative (funds from before the ingested blocks) is shown as 0.
fn account_activity(idx: &TransferIndex, members: &[u32]) -> serde_json::Value {
    let set: std::collections::HashSet<u32> = members.iter().copied().collect();
    let mut moves: BTreeSet<u64> = BTreeSet::new();
    for &a in members {
        moves.extend(idx.movements_of(a));
    }
    let mut per_asset: BTreeMap<&str, [u128; 3]> = BTreeMap::new();
    let mut txs = BTreeSet::new();
    for &i in &moves {
        let (from, to, asset) = idx.ends(i);
        let (out, into) = (set.contains(&from), to != index::NO_ADDRESS && set.contains(&to));
        let e = per_asset.entry(idx.asset(asset)).or_default();
        let slot = match (out, into, to == index::NO_ADDRESS) {
            (true, _, true) => Some(2),
            (true, false, false) => Some(1),
            (false, true, _) => Some(0),
            _ => None,
        };
        if let Some(k) = slot {
            e[k] = e[k].saturating_add(idx.amount(i));
        }
        let t = idx.tx_of(i);
        if t != transfers::NO_TX {
            txs.insert(t);
        }
    }
    let seen = |i: Option<&u64>| {
        i.map(|&i| {
            let t = idx.tx_of(i);
            json!({"transaction": (t != transfers::NO_TX).then(|| idx.tx_hash(t)), "block_number": idx.block(i)})
        })
    };
    let assets: Vec<serde_json::Value> = per_asset
        .iter()
        .map(|(asset, [received, sent, fees])| {
            json!({"asset": asset, "received": received.to_string(), "sent": sent.to_string(), "fees": fees.to_string(),
                   "balance": received.saturating_sub(sent.saturating_add(*fees)).to_string()})
        })
        .collect();
    json!({"movements": moves.len(), "transactions": txs.len(), "assets": assets, "first_seen": seen(moves.first()), "last_seen": seen(moves.last())})
}

fn btc(v: &serde_json::Value) -> String {
    tracehound_core::amount::format_btc(v.as_u64().unwrap_or(0))
}

fn print_cluster_tags(c: &serde_json::Value) {
    let tags = c["tags"].as_array().cloned().unwrap_or_default();
    let mut by_label: BTreeMap<String, usize> = BTreeMap::new();
    for t in &tags {
        let key = format!(
            "{} [{}]{}",
            t["label"].as_str().unwrap_or(""),
            t["category"].as_str().unwrap_or(""),
            t["actor"].as_str().map(|a| format!(" actor {a}")).unwrap_or_default()
        );
        *by_label.entry(key).or_default() += 1;
    }
    for (label, n) in &by_label {
        println!("    tagged: {label} on {n} member(s)");
    }
    if tags.is_empty() {
        println!("    no member is tagged");
    }
    for c in c["conflicts"].as_array().into_iter().flatten() {
        println!("    CONFLICT: {}", c.as_str().unwrap_or(""));
    }
}

/// `tracehound entity`.
pub fn entity_cmd(data_dir: &Path, chain: &str, id: &str, addresses: bool, limit: usize, json_out: bool) -> Result<()> {
    let store = crate::open_existing(data_dir)?;
    let chain = any_chain(&store, Some(chain))?;
    let idx = ensure_chain_index(&store, &chain, json_out)?;
    let listed = if addresses { Some(limit) } else { None };
    let out = entity_value(data_dir, &store, &chain, &idx, id, listed)?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let (c, size) = (&out["cluster_id"], out["size"].as_u64().unwrap_or(0));
    if out["assets"].is_array() {
        println!("entity {c} on {chain}: {size} addresses");
        print_activity(&out);
    } else {
        println!(
            "entity {c} on {chain}: {size} addresses, {} outputs received {} BTC, holds {} BTC",
            out["outputs"],
            btc(&out["received_sat"]),
            btc(&out["balance_sat"])
        );
    }
    print_cluster_tags(&out);
    if let Some(listed) = out["addresses"].as_array() {
        for a in listed {
            println!("  {}", a.as_str().unwrap_or(""));
        }
        if size > listed.len() as u64 {
            println!("  … {} more (raise --limit)", size - listed.len() as u64);
        }
    }
    Ok(())
}

/// Outputs received, satoshi received and satoshi still held by `members` together.
fn utxo_holdings(idx: &GraphIndex, members: &[u32]) -> serde_json::Value {
    let (value, spender) = (idx.out_value(), idx.out_spender());
    let (mut received, mut balance, mut outputs) = (0u64, 0u64, 0u64);
    for &a in members {
        for &o in idx.outputs_of(a) {
            outputs += 1;
            received += value[o as usize];
            if spender[o as usize] == NONE {
                balance += value[o as usize];
            }
        }
    }
    json!({"outputs": outputs, "received_sat": received, "balance_sat": balance})
}

/// An entity (cluster) as `tracehound entity --json` prints it: size, holdings, its members' tags
/// and their conflicts, and with `list` the first that many member addresses. `id` is a cluster
/// id or any address of the cluster.
pub fn entity_value(data_dir: &Path, store: &Store, chain: &str, idx: &ChainIndex, id: &str, list: Option<usize>) -> Result<serde_json::Value> {
    let addrs = idx.addresses();
    let clusters = Clusters::open_current(store.root(), addrs)?;
    // An address is accepted too: its cluster is shown.
    let c = match id.parse::<u32>() {
        Ok(c) => c,
        Err(_) => clusters.cluster_of(addrs.address_id(id).with_context(|| format!("{id:?} is neither a cluster id nor an address seen on {chain}"))?),
    };
    let members = clusters.members(c);
    if members.is_empty() {
        bail!("{c} is not a cluster id on {chain}: cluster ids are the smallest address id of their cluster (see `tracehound address {chain} <address>`)");
    }
    let held = match idx {
        ChainIndex::Utxo(i) => utxo_holdings(i, members),
        ChainIndex::Evm(i) => account_activity(i, members),
    };
    let t = cluster_tags(data_dir, chain, addrs, &clusters, c)?;
    let listed: Option<Vec<&str>> = list.map(|limit| members.iter().take(limit).map(|&a| addrs.address(a)).collect());
    let mut out = json!({
        "chain": chain, "cluster_id": c, "size": members.len(),
        "heuristics": clusters.meta().config, "tags": t["tags"], "actors": t["actors"], "conflicts": t["conflicts"],
        "addresses": listed,
    });
    for (k, v) in held.as_object().into_iter().flatten() {
        out[k] = v.clone();
    }
    Ok(out)
}

/// `tracehound explain <chain> <a> <b>`.
pub fn explain_cmd(data_dir: &Path, chain: &str, a: &str, b: &str, json_out: bool) -> Result<()> {
    let store = crate::open_existing(data_dir)?;
    let chain = any_chain(&store, Some(chain))?;
    if is_evm(&store, &chain) {
        let (idx, _) = ensure_transfer_index(&store, &chain, json_out)?;
        return explain(&store, &chain, &idx, a, b, json_out);
    }
    let (idx, _) = ensure_index(&store, &chain, json_out)?;
    explain(&store, &chain, &idx, a, b, json_out)
}

fn explain(store: &Store, chain: &str, idx: &dyn AddressIndex, a: &str, b: &str, json_out: bool) -> Result<()> {
    let clusters = Clusters::open_current(store.root(), idx)?;
    let id = |s: &str| idx.address_id(s).with_context(|| format!("address {s} does not appear on {chain}"));
    let (ia, ib) = (id(a)?, id(b)?);
    let Some(steps) = clusters.explain(idx, ia, ib) else {
        if json_out {
            println!("{}", serde_json::to_string_pretty(&json!({"chain": chain, "a": a, "b": b, "same_entity": false, "steps": []}))?);
            return Ok(());
        }
        bail!("{a} (cluster {}) and {b} (cluster {}) are different entities", clusters.cluster_of(ia), clusters.cluster_of(ib));
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&json!({"chain": chain, "a": a, "b": b, "same_entity": true, "steps": steps}))?);
        return Ok(());
    }
    if steps.is_empty() {
        println!("{a} and {b} are the same address");
    }
    println!("{a} and {b} are one entity (cluster {}) through {} merge(s):", clusters.cluster_of(ia), steps.len());
    for (i, s) in steps.iter().enumerate() {
        println!("  {}. {} ~ {}  by {} in tx {} (block {})", i + 1, s.from, s.to, s.rule, s.transaction, s.block_number);
    }
    Ok(())
}

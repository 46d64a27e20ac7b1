//! `tracehound exposure build` and `tracehound screen`: the exposure index of a chain and
//! screening of addresses, outputs, transactions and transfers against a risk policy.
//!
//! The exposure index is derived state, like the graph index: it is rebuilt (with the reason
//! printed) whenever what it was built from changed — the chain's index, the labels and incident
//! addresses, the clusters, the hop horizon — and never used stale.

use crate::chains::{ensure_index, ensure_transfer_index};
use crate::labels::{open_labels, tags_by_address};
use anyhow::{bail, Context, Result};
use datafusion::arrow::array::{ArrayRef, Decimal128Builder, Float64Array, RecordBatch, StringBuilder, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use tracehound_graph::cluster::clusters_path;
use tracehound_graph::{AddressIndex, Clusters, GraphIndex, TransferIndex};
use tracehound_memory::Scratch;
use tracehound_screen::exposure::{self, Budget, Entry, Options, Totals, NO_CATEGORY, TOTAL};
use tracehound_screen::index::{exposure_path, EntryReader, EntryWriter, ExposureIndex, ExposureMeta, EXPOSURE_VERSION};
use tracehound_screen::policy::{score, Measured, Policy};
use tracehound_screen::risk::{category_id, category_name, risk_category_of, RISK_CATEGORIES};
use tracehound_screen::{EntityInfo, ExposureLine, Flow, Reason, ScreenResult, Severity, SourceEvidence, Status, SubjectKind, TagEvidence};
use tracehound_tables::{ChainKind, Store};
use tracehound_trace::{utxo, Direction, Fees, Limits, Model, Sink};

/// The index a chain's exposure is computed over.
pub enum ChainData {
    /// A UTXO chain's graph index.
    Utxo(GraphIndex),
    /// An account chain's transfer index.
    Account(TransferIndex),
}

impl ChainData {
    fn index(&self) -> &dyn AddressIndex {
        match self {
            ChainData::Utxo(g) => g,
            ChainData::Account(t) => t,
        }
    }

    fn asset_name(&self, asset: u32) -> String {
        match self {
            ChainData::Utxo(g) => tracehound_trace::native_symbol(&g.meta().chain).to_string(),
            ChainData::Account(t) => t.asset(asset).to_string(),
        }
    }
}

/// Opens the index of `chain` (bringing it up to date).
fn open_chain(store: &Store, chain: &str, quiet: bool) -> Result<ChainData> {
    let stored = store.manifest().chain_names();
    if !stored.contains(chain) {
        bail!(
            "chain {chain:?} is not ingested here (ingested: {}); screening answers only for ingested chains",
            stored.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(match store.manifest().chain_kind(chain) {
        ChainKind::Utxo => ChainData::Utxo(ensure_index(store, chain, quiet)?.0),
        ChainKind::Evm => ChainData::Account(ensure_transfer_index(store, chain, quiet)?.0),
    })
}

/// Tags of the chain by normalized address, and the sources of exposure (risk category per
/// address id, extended to whole entities when the chain is clustered).
struct Labelled {
    tags: FxHashMap<String, Vec<TagEvidence>>,
    sources: Vec<u8>,
    /// Per entity (cluster id; address id when not clustered): its category and a label of it.
    entity_source: FxHashMap<u32, (u8, String)>,
    digest: String,
    per_category: Vec<(String, u64)>,
}

fn normalize(kind: &ChainData, address: &str) -> String {
    match kind {
        ChainData::Account(_) => address.to_ascii_lowercase(),
        ChainData::Utxo(_) => address.to_string(),
    }
}

fn labelled(data_dir: &Path, chain: &str, data: &ChainData, clusters: Option<&Clusters>) -> Result<Labelled> {
    let labels = open_labels(data_dir)?;
    let mut tags: FxHashMap<String, Vec<TagEvidence>> = FxHashMap::default();
    for (addr, ts) in tags_by_address(&labels, chain)? {
        let list = tags.entry(normalize(data, &addr)).or_default();
        for t in ts {
            list.push(TagEvidence {
                address: addr.clone(),
                label: t.label,
                category: t.category,
                source: t.source,
                confidence: t.confidence_level.unwrap_or(50).clamp(0, 100) as u32,
                actor: t.actor,
            });
        }
    }
    // Addresses of the incident registry (attackers, their contracts, laundering addresses).
    let registry = tracehound_report::Registry::load(data_dir)?;
    for inc in registry.incidents() {
        for s in inc.trace_seeds().filter(|s| s.chain == chain && s.kind == tracehound_report::SeedKind::Address) {
            let key = normalize(data, &s.address_or_tx);
            let list = tags.entry(key).or_default();
            if !list.iter().any(|t| t.category == "theft" && t.label == s.label) {
                list.push(TagEvidence {
                    address: s.address_or_tx.clone(),
                    label: format!("{} ({})", s.label, inc.id),
                    category: "theft".into(),
                    source: s.source.clone(),
                    confidence: 80,
                    actor: inc.actor.clone(),
                });
            }
        }
    }
    let idx = data.index();
    let mut sources = vec![NO_CATEGORY; idx.address_count()];
    let mut pairs: Vec<(u32, u8, &str)> = vec![];
    for (addr, list) in &tags {
        let Some(c) = list.iter().filter_map(|t| risk_category_of(&t.category)).min() else { continue };
        let Some(a) = idx.address_id(addr) else { continue };
        let label = list.iter().find(|t| risk_category_of(&t.category) == Some(c)).map(|t| t.label.as_str()).unwrap_or("");
        pairs.push((a, c, label));
    }
    pairs.sort_unstable();
    // Each entity counts as the most severe category tagged on any of its members; one pass over
    // the addresses then marks every member (an exchange's entity has millions).
    let entity = |a: u32| clusters.map_or(a, |cl| cl.cluster_of(a));
    let mut entity_source: FxHashMap<u32, (u8, String)> = FxHashMap::default();
    for &(a, c, label) in &pairs {
        let e = entity_source.entry(entity(a)).or_insert((c, label.to_string()));
        if c < e.0 {
            *e = (c, label.to_string());
        }
    }
    if !entity_source.is_empty() {
        match clusters {
            Some(cl) => {
                for (a, s) in sources.iter_mut().enumerate() {
                    if let Some((c, _)) = entity_source.get(&cl.cluster_of(a as u32)) {
                        *s = *c;
                    }
                }
            }
            None => {
                for (&a, (c, _)) in &entity_source {
                    sources[a as usize] = *c;
                }
            }
        }
    }
    let mut digest = Sha256::new();
    for &(a, c, _) in &pairs {
        digest.update(a.to_le_bytes());
        digest.update([c]);
    }
    let mut counts = vec![0u64; RISK_CATEGORIES.len()];
    for &c in sources.iter().filter(|&&c| c != NO_CATEGORY) {
        counts[c as usize] += 1;
    }
    let per_category = RISK_CATEGORIES.iter().zip(counts).filter(|x| x.1 > 0).map(|(n, c)| (n.to_string(), c)).collect();
    Ok(Labelled { tags, sources, entity_source, digest: hex::encode(&digest.finalize()[..16]), per_category })
}

/// Identity of the chain index file (size and modification time).
fn file_identity(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| format!("{}:{}.{}", m.len(), m.mtime(), m.mtime_nsec())).unwrap_or_else(|_| "none".into())
}

/// What an exposure build did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExposureReport {
    /// Chain.
    pub chain: String,
    /// `built`, `rebuilt` or `unchanged`.
    pub action: String,
    /// Why it was (re)built.
    pub reason: Option<String>,
    /// Entries (address × asset × category × flow, with the totals).
    pub entries: u64,
    /// Source addresses per risk category.
    pub sources: Vec<(String, u64)>,
    /// Seconds the build took.
    pub seconds: f64,
    /// Bytes of the index file.
    pub bytes: u64,
    /// Memory of the build.
    pub memory: Option<tracehound_memory::StageMemory>,
}

/// Brings the exposure index of `chain` up to date and opens it with everything screening needs.
pub fn ensure_exposure(data_dir: &Path, chain: &str, horizon: Option<u8>, quiet: bool) -> Result<(Screener, ExposureReport)> {
    let store = crate::open_existing(data_dir)?;
    let data = open_chain(&store, chain, quiet)?;
    let clusters = Clusters::open_current(store.root(), data.index()).ok();
    let lab = labelled(data_dir, chain, &data, clusters.as_ref())?;
    // What the index holds (its own meta, read from the opened file: a file renamed over it since
    // does not count), the labels, the clusters file and the horizon.
    let index_meta = match &data {
        ChainData::Utxo(g) => serde_json::to_vec(g.meta())?,
        ChainData::Account(t) => serde_json::to_vec(t.meta())?,
    };
    let clusters_file = if clusters.is_some() { file_identity(&clusters_path(data_dir, chain)) } else { "none".into() };
    if clusters.is_none() && clusters_path(data_dir, chain).exists() && !quiet {
        eprintln!("note: the clusters of {chain} are older than its index: exposure counts each address alone until `tracehound cluster` runs");
    }
    let fingerprint = format!(
        "v{EXPOSURE_VERSION} index {} addresses {} labels {} clusters {} horizon {:?}",
        hex::encode(&Sha256::digest(&index_meta)[..16]),
        data.index().address_count(),
        lab.digest,
        clusters_file,
        horizon
    );
    let path = exposure_path(data_dir, chain);
    let existing = ExposureIndex::open(&path);
    let reason = match &existing {
        Ok(x) if x.meta().fingerprint == fingerprint => None,
        Ok(x) => Some(why_stale(&x.meta().fingerprint, &fingerprint)),
        Err(_) if !path.exists() => Some("no exposure index yet".to_string()),
        Err(e) => Some(format!("the file could not be used ({e})")),
    };
    let mut report = ExposureReport {
        chain: chain.into(),
        action: "unchanged".into(),
        reason: reason.clone(),
        entries: 0,
        sources: lab.per_category.clone(),
        seconds: 0.0,
        bytes: 0,
        memory: None,
    };
    let exposure = match (existing, reason) {
        (Ok(x), None) => x,
        (old, Some(why)) => {
            if !quiet {
                eprintln!("exposure index of {chain}: {} ({why})", if old.is_ok() { "rebuilding" } else { "building" });
            }
            let meter = tracehound_memory::StageMeter::start("exposure", crate::memory_limit());
            let started = std::time::Instant::now();
            let opts = Options { horizon };
            let scratch = tracehound_memory::Scratch::new(data_dir, "exposure").context("creating the exposure build's scratch directory")?;
            let mut writer = EntryWriter::new(scratch.file("entries"), data.index().address_count() as u64)
                .with_context(|| format!("exposure build of {chain}: creating a scratch file in {}", scratch.dir().display()))?;
            let mut failed: Option<std::io::Error> = None;
            let mut emit = |e: Entry| {
                if failed.is_none() {
                    if let Err(err) = writer.push(&e) {
                        failed = Some(err);
                    }
                }
            };
            match &data {
                ChainData::Utxo(g) => {
                    // A quarter of the limit: the pages of the mapped graph index, the writers of
                    // the index and the table, and the entity sums need room besides.
                    let budget = Budget { bytes: meter.limit() / 4, scratch: &scratch };
                    let spilled = exposure::utxo_exposure_within(utxo::UtxoGraph::of(g), &lab.sources, &opts, Some(budget), &mut emit)
                        .with_context(|| format!("exposure build of {chain}: spilling to {}", scratch.dir().display()))?;
                    meter.spilled(spilled);
                }
                ChainData::Account(t) => exposure::account_exposure(t, &lab.sources, &opts).into_iter().for_each(&mut emit),
            }
            if let Some(e) = failed {
                return Err(e).context("writing the exposure entries to scratch");
            }
            let seconds = started.elapsed().as_secs_f64();
            let meta = ExposureMeta {
                chain: chain.into(),
                fingerprint,
                addresses: data.index().address_count() as u64,
                entries: writer.len(),
                horizon,
                sources: lab.per_category.clone(),
                seconds,
            };
            // The tables first, the index last: a crash in between leaves the old index (or none),
            // whose fingerprint no longer matches, so the next run writes both again.
            let fresh = path.with_extension("idx.new");
            let (bytes, entries) = writer.finish(&fresh, &meta).with_context(|| format!("writing {}", fresh.display()))?;
            report.bytes = bytes;
            write_tables(&store, &data, clusters.as_ref(), &entries, &scratch, meter.limit() / 4)?;
            std::fs::rename(&fresh, &path).with_context(|| format!("renaming {} to {}", fresh.display(), path.display()))?;
            report.action = if old.is_ok() { "rebuilt".into() } else { "built".into() };
            report.seconds = seconds;
            report.entries = entries.len();
            drop(entries);
            drop(scratch);
            let memory = meter.report();
            crate::report_stage(&memory);
            report.memory = Some(memory);
            ExposureIndex::open(&path).map_err(|e| anyhow::anyhow!(e))?
        }
        (Err(e), None) => bail!(e),
    };
    report.entries = exposure.meta().entries;
    let screener = Screener::new(data_dir, chain, data, clusters, exposure, lab)?;
    Ok((screener, report))
}

fn why_stale(old: &str, new: &str) -> String {
    let part = |s: &str, key: &str| s.split(key).nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("").to_string();
    if !old.starts_with(&format!("v{EXPOSURE_VERSION} ")) {
        return "its format is older".into();
    }
    if part(old, "index ") != part(new, "index ") || part(old, "addresses ") != part(new, "addresses ") {
        return "the chain's index changed (new blocks, or a rollback)".into();
    }
    if part(old, "labels ") != part(new, "labels ") || part(old, "clusters ") != part(new, "clusters ") {
        return "the labels, incident addresses or clusters changed".into();
    }
    "the hop horizon changed".into()
}

fn decimal(b: &mut Decimal128Builder, v: u128) {
    b.append_value(v.min(i128::MAX as u128) as i128);
}

/// Writes the SQL tables `exposure` (per address) and `cluster_exposure` (per cluster, when the
/// chain is clustered), a block of entries at a time: the entity sums are a [`Totals`] within
/// `budget` bytes that spills to `scratch`, and their entries stream through a scratch file too.
fn write_tables(store: &Store, data: &ChainData, clusters: Option<&Clusters>, entries: &EntryReader, scratch: &Scratch, budget: u64) -> Result<()> {
    let chain = data.index().chain().to_string();
    let mut sums = clusters.map(|_| Totals::new(Some(&Budget { bytes: budget, scratch })));
    write_exposure_table(store, data, "exposure", false, entries, &mut |e| match (&mut sums, clusters) {
        (Some(s), Some(cl)) => s.add_entry(cl.cluster_of(e.address), e),
        _ => Ok(()),
    })?;
    let (Some(sums), Some(_)) = (sums, clusters) else {
        // No entities: no per-entity table (an older one would describe other clusters).
        let old = store.derived_path(Some(&chain), "cluster_exposure");
        if old.exists() {
            std::fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
        }
        return Ok(());
    };
    let mut writer = EntryWriter::new(scratch.file("cluster-entries"), data.index().address_count() as u64)?;
    let mut failed: Option<std::io::Error> = None;
    sums.finish(&mut |e| {
        if failed.is_none() {
            failed = writer.push(&e).err();
        }
    })?;
    if let Some(e) = failed {
        return Err(e).context("writing the entity sums to scratch");
    }
    let reader = writer.into_reader()?;
    write_exposure_table(store, data, "cluster_exposure", true, &reader, &mut |_| Ok(()))
}

/// Writes one exposure table from `entries` (sorted by id: an address id, or a cluster id when
/// `clusters`), batch by batch; `each` sees every entry on the way.
fn write_exposure_table(
    store: &Store,
    data: &ChainData,
    table: &str,
    clusters: bool,
    entries: &EntryReader,
    each: &mut dyn FnMut(&Entry) -> std::io::Result<()>,
) -> Result<()> {
    let idx = data.index();
    let chain = idx.chain().to_string();
    let amount = || DataType::Decimal128(38, 0);
    let id_field = if clusters { Field::new("cluster_id", DataType::UInt32, false) } else { Field::new("address", DataType::Utf8, false) };
    let schema = Arc::new(Schema::new(vec![
        Field::new("chain", DataType::Utf8, false),
        id_field,
        Field::new("asset", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("flow", DataType::Utf8, false),
        Field::new("direct", amount(), false),
        Field::new("indirect", amount(), false),
        Field::new("flow_value", amount(), false),
        Field::new("share", DataType::Float64, false),
    ]));
    let mut assets: FxHashMap<u32, String> = FxHashMap::default();
    // Rows: an id's entries are complete (with its totals, the shares' denominators) when the
    // next id begins, so they are held until then.
    let mut pending: Vec<Entry> = vec![];
    let mut rows: Vec<(Entry, u128)> = vec![];
    let mut next_entry = 0u64;
    let mut done = false;
    let mut failed: Option<std::io::Error> = None;
    const ROWS: usize = 1 << 16;
    let mut batches = std::iter::from_fn(|| loop {
        if rows.len() >= ROWS || (done && !rows.is_empty()) {
            let (mut ch, mut ad, mut asb, mut ca, mut fl) =
                (StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
            let mut ids = vec![];
            let (mut di, mut ind, mut va) = (Decimal128Builder::new(), Decimal128Builder::new(), Decimal128Builder::new());
            let mut share = vec![];
            for (e, total) in rows.drain(..) {
                ch.append_value(&chain);
                if clusters {
                    ids.push(e.address);
                } else {
                    ad.append_value(idx.address(e.address));
                }
                asb.append_value(assets.entry(e.asset).or_insert_with(|| data.asset_name(e.asset)));
                ca.append_value(category_name(e.category));
                fl.append_value(e.flow.name());
                decimal(&mut di, e.direct);
                decimal(&mut ind, e.indirect);
                decimal(&mut va, total);
                share.push(if total == 0 { 0.0 } else { (e.direct + e.indirect) as f64 / total as f64 });
            }
            let id: ArrayRef = if clusters { Arc::new(UInt32Array::from(ids)) } else { Arc::new(ad.finish()) };
            let cols: Vec<ArrayRef> = vec![
                Arc::new(ch.finish()),
                id,
                Arc::new(asb.finish()),
                Arc::new(ca.finish()),
                Arc::new(fl.finish()),
                Arc::new(di.finish().with_precision_and_scale(38, 0).expect("decimal")),
                Arc::new(ind.finish().with_precision_and_scale(38, 0).expect("decimal")),
                Arc::new(va.finish().with_precision_and_scale(38, 0).expect("decimal")),
                Arc::new(Float64Array::from(share)),
            ];
            return Some(RecordBatch::try_new(schema.clone(), cols).expect("columns match the schema"));
        }
        if done || failed.is_some() {
            return None;
        }
        let block = if next_entry < entries.len() {
            match entries.read_block(next_entry, 1 << 14) {
                Ok(b) => b,
                Err(e) => {
                    failed = Some(e);
                    return None;
                }
            }
        } else {
            done = true;
            vec![]
        };
        next_entry += block.len() as u64;
        let flush = |pending: &mut Vec<Entry>, rows: &mut Vec<(Entry, u128)>| {
            let totals: FxHashMap<(u32, Flow), u128> = pending.iter().filter(|e| e.category == TOTAL).map(|e| ((e.asset, e.flow), e.direct)).collect();
            rows.extend(pending.drain(..).filter(|e| e.category != TOTAL).map(|e| (e, totals.get(&(e.asset, e.flow)).copied().unwrap_or(0))));
        };
        for e in block {
            if let Err(err) = each(&e) {
                failed = Some(err);
                return None;
            }
            if pending.last().is_some_and(|p| p.address != e.address) {
                flush(&mut pending, &mut rows);
            }
            pending.push(e);
        }
        if done {
            flush(&mut pending, &mut rows);
        }
    });
    let written = store.write_derived_stream(Some(&chain), table, schema.clone(), &mut batches);
    #[allow(clippy::drop_non_drop)] // ends the closure's borrows of the rows and the error
    drop(batches);
    if let Some(e) = failed {
        return Err(e).with_context(|| format!("writing the {table} table of {chain}"));
    }
    written?;
    Ok(())
}

/// Everything a screening reads, opened once: the chain's index, its clusters, the exposure index,
/// the tags and the policy. A server keeps one per chain and answers from it.
pub struct Screener {
    chain: String,
    data: ChainData,
    clusters: Option<Clusters>,
    exposure: ExposureIndex,
    tags: FxHashMap<String, Vec<TagEvidence>>,
    /// Tags of the other members of each tagged entity.
    entity_tags: FxHashMap<u32, Vec<TagEvidence>>,
    countries: FxHashMap<String, Option<String>>,
    sinks: utxo::Sinks,
    policy: Policy,
}

impl Screener {
    fn new(data_dir: &Path, chain: &str, data: ChainData, clusters: Option<Clusters>, exposure: ExposureIndex, lab: Labelled) -> Result<Screener> {
        let mut entity_tags: FxHashMap<u32, Vec<TagEvidence>> = FxHashMap::default();
        let idx = data.index();
        if let Some(cl) = &clusters {
            for (addr, list) in &lab.tags {
                if let Some(a) = idx.address_id(addr) {
                    entity_tags.entry(cl.cluster_of(a)).or_default().extend(list.iter().cloned());
                }
            }
        }
        // The sinks of funds traces: every source address, as the sink of its entity's category
        // (the same category the exposure pass gave it), named by a label of that category.
        let mut sinks = utxo::Sinks::default();
        if let ChainData::Utxo(_) = &data {
            let mut ids: FxHashMap<Sink, u32> = FxHashMap::default();
            for (a, &c) in lab.sources.iter().enumerate() {
                if c == NO_CATEGORY {
                    continue;
                }
                let key = clusters.as_ref().map_or(a as u32, |cl| cl.cluster_of(a as u32));
                let name = lab.entity_source.get(&key).map(|x| x.1.clone()).unwrap_or_default();
                let sink = Sink { category: category_name(c).into(), name };
                let next = ids.len() as u32;
                let id = *ids.entry(sink.clone()).or_insert_with(|| {
                    sinks.list.push(sink);
                    next
                });
                sinks.by_address.insert(a as u32, id);
            }
        }
        let labels = open_labels(data_dir)?;
        let mut countries = FxHashMap::default();
        for t in lab.tags.values().flatten() {
            if let Some(actor) = &t.actor {
                if !countries.contains_key(actor) {
                    let country = labels.actor(actor)?.and_then(|d| d.actor.country);
                    countries.insert(actor.clone(), country);
                }
            }
        }
        Ok(Screener { chain: chain.into(), data, clusters, exposure, tags: lab.tags, entity_tags, countries, sinks, policy: Policy::default_policy() })
    }

    /// Uses `policy` instead of the bundled default.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Screens one subject: an address, `txid:vout`, a transaction hash, or `tx/address` (a
    /// transfer). Errors only for malformed input; unknown subjects are `no_data`.
    pub fn screen(&self, subject: &str) -> Result<ScreenResult> {
        let s = subject.trim();
        if s.is_empty() {
            bail!("empty subject");
        }
        let hexlen = |x: &str| {
            let h = x.strip_prefix("0x").unwrap_or(x);
            if h.bytes().all(|b| b.is_ascii_hexdigit()) {
                h.len()
            } else {
                0
            }
        };
        if let Some((tx, addr)) = s.split_once('/') {
            if hexlen(tx) != 64 {
                bail!("transfer {s:?}: expected <transaction hash>/<receiving address>");
            }
            return self.screen_funds(s, SubjectKind::Transfer, tx, Some(addr));
        }
        if let Some((tx, vout)) = s.split_once(':') {
            if hexlen(tx) != 64 || vout.parse::<u32>().is_err() {
                bail!("output {s:?}: expected <txid>:<output index>");
            }
            return self.screen_funds(s, SubjectKind::Output, tx, None);
        }
        if hexlen(s) == 64 {
            return self.screen_funds(s, SubjectKind::Transaction, s, None);
        }
        if let ChainData::Account(_) = self.data {
            if hexlen(s) != 40 || !s.starts_with("0x") {
                bail!("{s:?} is not an address of {} (0x and 40 hex digits)", self.chain);
            }
        } else if s.len() < 14 || s.len() > 100 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            bail!("{s:?} is not an address of {}", self.chain);
        }
        Ok(self.screen_address(s))
    }

    fn tags_of(&self, address: &str, id: Option<u32>) -> (Vec<TagEvidence>, Option<EntityInfo>) {
        let mut tags: Vec<TagEvidence> = self.tags.get(&normalize(&self.data, address)).cloned().unwrap_or_default();
        let mut entity = None;
        if let (Some(a), Some(cl)) = (id, &self.clusters) {
            let c = cl.cluster_of(a);
            let others: Vec<TagEvidence> = self
                .entity_tags
                .get(&c)
                .map(|l| l.iter().filter(|t| normalize(&self.data, &t.address) != normalize(&self.data, address)).cloned().collect())
                .unwrap_or_default();
            entity = Some(EntityInfo { cluster_id: c, size: cl.members(c).len() as u64, label: others.first().or(tags.first()).map(|t| t.label.clone()) });
            tags.extend(others);
        }
        (tags, entity)
    }

    fn screen_address(&self, address: &str) -> ScreenResult {
        let id = self.data.index().address_id(&normalize(&self.data, address));
        let (tags, entity) = self.tags_of(address, id);
        let entries = id.map(|a| self.exposure.entries_of(a)).unwrap_or_default();
        let mut result = self.blank(address, SubjectKind::Address, &tags, entity);
        if id.is_none() && tags.is_empty() {
            return result;
        }
        let totals: FxHashMap<(u32, Flow), u128> = entries.iter().filter(|e| e.category == TOTAL).map(|e| ((e.asset, e.flow), e.direct)).collect();
        let native_asset = match &self.data {
            ChainData::Utxo(_) => Some(0),
            ChainData::Account(t) => (0..t.meta().assets as u32).find(|&x| t.asset(x) == tracehound_trace::native_symbol(&self.chain)),
        };
        let native =
            entries.iter().filter(|e| e.category == TOTAL && e.flow == Flow::Received && Some(e.asset) == native_asset).map(|e| e.direct).sum::<u128>();
        result.value = native.to_string();
        let measured: Vec<(u32, Measured)> = entries
            .iter()
            .filter(|e| e.category != TOTAL)
            .map(|e| {
                (
                    e.asset,
                    Measured {
                        category: e.category,
                        flow: e.flow,
                        direct: e.direct,
                        indirect: e.indirect,
                        value: totals.get(&(e.asset, e.flow)).copied().unwrap_or(0),
                    },
                )
            })
            .collect();
        let trace = || id.and_then(|a| self.funds_trace(vec![utxo::Seed::Address(a)]).ok());
        self.finish(&mut result, &measured, &tags, &trace);
        result
    }

    /// Screens the funds of an output, a transaction or a transfer: where they came from, by a
    /// backward haircut trace to the labelled sources (UTXO chains), bounded in size.
    fn screen_funds(&self, subject: &str, kind: SubjectKind, tx: &str, to: Option<&str>) -> Result<ScreenResult> {
        let ChainData::Utxo(g) = &self.data else {
            // Account chains: the transfer's receiver answers (its pool's exposure).
            return Ok(match to {
                Some(addr) => ScreenResult { subject: subject.into(), kind, ..self.screen_address(addr) },
                None => ScreenResult { status: Status::NoData, ..self.blank(subject, kind, &[], None) },
            });
        };
        let tx = tx.strip_prefix("0x").unwrap_or(tx).to_ascii_lowercase();
        let Some(t) = g.tx_id(&tx) else { return Ok(self.blank(subject, kind, &[], None)) };
        let outs = g.tx_out_start()[t as usize]..g.tx_out_start()[t as usize + 1];
        let seeds: Vec<u64> = match (kind, to) {
            (SubjectKind::Output, _) => {
                let vout: u64 = subject.rsplit(':').next().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
                if vout >= outs.end - outs.start {
                    bail!("output {subject:?}: the transaction has {} output(s)", outs.end - outs.start);
                }
                vec![outs.start + vout]
            }
            (_, Some(addr)) => {
                let a = g.address_id(addr);
                outs.filter(|&o| Some(g.out_addr()[o as usize]) == a).collect()
            }
            _ => outs.collect(),
        };
        let payee = seeds.first().map(|&o| g.out_addr()[o as usize]).filter(|&a| a != tracehound_graph::index::NO_ADDRESS);
        let payee_name = payee.map(|a| g.address(a).to_string());
        let (tags, entity) = match (&payee_name, kind) {
            (Some(name), SubjectKind::Output | SubjectKind::Transfer) => self.tags_of(name, payee),
            _ => (vec![], None),
        };
        let mut result = self.blank(subject, kind, &tags, entity);
        if seeds.is_empty() {
            bail!("transfer {subject:?}: the transaction pays nothing to that address");
        }
        let value: u128 = seeds.iter().map(|&o| g.out_value()[o as usize] as u128).sum();
        result.value = value.to_string();
        let trace = self.funds_trace(seeds.iter().map(|&o| utxo::Seed::Output(o)).collect())?;
        let stopped = trace.accounting.node_limit + trace.accounting.hop_limit;
        if stopped > 0 {
            result.notes.push(format!(
                "the trace of these funds stopped at its limits (200,000 outputs, 1,000 hops): {stopped} base units were not followed to their sources"
            ));
        }
        let mut measured = vec![];
        for (c, _) in RISK_CATEGORIES.iter().enumerate() {
            let name = category_name(c as u8);
            let total = trace.accounting.by_category(name);
            if total == 0 {
                continue;
            }
            let sink_addrs: std::collections::BTreeSet<&str> =
                trace.accounting.sinks.iter().filter(|s| s.sink.category == name).flat_map(|s| s.addresses.iter().map(|a| a.address.as_str())).collect();
            let direct: u128 = trace.edges.iter().filter(|e| e.hop == 1 && sink_addrs.contains(e.from.as_str())).map(|e| e.amount).sum::<u128>().min(total);
            measured.push((0, Measured { category: c as u8, flow: Flow::Received, direct, indirect: total - direct, value }));
        }
        let trace = Some(trace);
        self.finish(&mut result, &measured, &tags, &|| trace.clone());
        Ok(result)
    }

    fn funds_trace(&self, seeds: Vec<utxo::Seed>) -> Result<tracehound_trace::Trace> {
        let ChainData::Utxo(g) = &self.data else { bail!("funds traces are for UTXO chains") };
        let limits = Limits { max_hops: 1_000, max_nodes: 200_000, ..Limits::default() };
        let opts = utxo::Options { model: Model::Haircut, direction: Direction::Backward, fees: Fees::Drop, limits };
        Ok(utxo::trace(utxo::UtxoGraph::of(g), g, &self.chain, &seeds, &self.sinks, &opts)?)
    }

    fn blank(&self, subject: &str, kind: SubjectKind, tags: &[TagEvidence], entity: Option<EntityInfo>) -> ScreenResult {
        let actor = tags.iter().find_map(|t| t.actor.clone());
        let country = actor.as_ref().and_then(|a| self.countries.get(a).cloned().flatten());
        ScreenResult {
            chain: self.chain.clone(),
            subject: subject.into(),
            kind,
            status: Status::NoData,
            risk: None,
            score: None,
            value: "0".into(),
            entity,
            tags: tags.to_vec(),
            actor,
            country,
            exposures: vec![],
            reasons: vec![],
            notes: vec![],
        }
    }

    /// Fills the exposures and evaluates the policy. `evidence` makes the backward trace whose
    /// sinks are the top sources of an indirect exposure (only when such a rule fires).
    fn finish(&self, r: &mut ScreenResult, measured: &[(u32, Measured)], tags: &[TagEvidence], evidence: &dyn Fn() -> Option<tracehound_trace::Trace>) {
        r.status = Status::Screened;
        for (asset, m) in measured {
            let total = m.direct + m.indirect;
            r.exposures.push(ExposureLine {
                category: category_name(m.category).into(),
                flow: m.flow,
                asset: self.data.asset_name(*asset),
                direct: m.direct.to_string(),
                indirect: m.indirect.to_string(),
                share: if m.value == 0 { 0.0 } else { total as f64 / m.value as f64 },
            });
        }
        let tagged: Vec<u8> = tags.iter().filter_map(|t| risk_category_of(&t.category)).collect();
        let plain: Vec<Measured> = measured.iter().map(|x| x.1).collect();
        let mut evidence_trace: Option<Option<tracehound_trace::Trace>> = None;
        for f in self.policy.evaluate(&plain, &tagged) {
            let rule = &self.policy.rules[f.rule];
            let c = category_id(&rule.category).expect("checked");
            let rtags: Vec<TagEvidence> = tags.iter().filter(|t| risk_category_of(&t.category) == Some(c)).cloned().collect();
            let mut sources = vec![];
            let message = match rule.exposure {
                tracehound_screen::policy::ExposureKind::Tagged => {
                    format!("tagged {} ({})", rule.category, rtags.iter().map(|t| t.label.as_str()).collect::<Vec<_>>().join(", "))
                }
                _ => {
                    if f.flow == Flow::Received {
                        {
                            let t = evidence_trace.get_or_insert_with(evidence);
                            if let Some(t) = t {
                                let mut s: Vec<SourceEvidence> = t
                                    .accounting
                                    .sinks
                                    .iter()
                                    .filter(|s| s.sink.category == rule.category)
                                    .flat_map(|s| {
                                        s.addresses.iter().map(|a| SourceEvidence {
                                            address: a.address.clone(),
                                            label: s.sink.name.clone(),
                                            amount: a.amount.to_string(),
                                        })
                                    })
                                    .collect();
                                s.sort_by_key(|x| std::cmp::Reverse(x.amount.parse::<u128>().unwrap_or(0)));
                                s.truncate(5);
                                sources = s;
                            }
                        }
                    }
                    format!(
                        "{} {} {}: {} ({:.2}% of the value {})",
                        match rule.exposure {
                            tracehound_screen::policy::ExposureKind::Direct => "direct",
                            tracehound_screen::policy::ExposureKind::Indirect => "indirect",
                            _ => "total",
                        },
                        if f.flow == Flow::Received { "exposure from" } else { "exposure to" },
                        rule.category,
                        f.amount,
                        f.share * 100.0,
                        f.flow.name()
                    )
                }
            };
            r.reasons.push(Reason { rule: rule.name.clone(), severity: rule.severity, message, tags: rtags, sources });
        }
        if tagged.contains(&category_id("sanctioned").expect("a risk category")) {
            let rtags: Vec<TagEvidence> = tags.iter().filter(|t| risk_category_of(&t.category) == category_id("sanctioned")).cloned().collect();
            r.reasons.push(Reason {
                rule: "sanctions-list".into(),
                severity: Severity::Severe,
                message: format!("on a sanctions list: {}", rtags.iter().map(|t| format!("{} ({})", t.label, t.source)).collect::<Vec<_>>().join("; ")),
                tags: rtags,
                sources: vec![],
            });
        }
        r.reasons.sort_by_key(|x| std::cmp::Reverse(x.severity));
        let level = r.reasons.first().map(|x| x.severity).unwrap_or(Severity::None);
        r.risk = Some(level);
        r.score = Some(score(level));
    }
}

/// Screens `items` (addresses, `txid:vout`, transaction hashes, or `tx/address` transfers) on
/// `chain` under `policy` (the bundled default when `None`). Builds or extends the exposure
/// index first when it is stale (printing why on stderr unless `quiet`). Errors name the chain
/// when it is not ingested; unknown subjects are answered with `Status::NoData`, never an error.
pub fn screen_items(data_dir: &Path, chain: &str, items: &[String], policy: Option<&Path>, quiet: bool) -> Result<Vec<ScreenResult>> {
    let (mut screener, _) = ensure_exposure(data_dir, chain, stored_horizon(data_dir, chain), quiet)?;
    if let Some(p) = policy {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading the policy {}", p.display()))?;
        screener.set_policy(Policy::parse(&p.display().to_string(), &text)?);
    }
    items.iter().map(|s| screener.screen(s)).collect()
}

/// The hop horizon the chain's exposure index was last built with (`None`: unlimited, or no
/// index yet): screening keeps it rather than rebuilding with the default.
pub fn stored_horizon(data_dir: &Path, chain: &str) -> Option<u8> {
    ExposureIndex::open(&exposure_path(data_dir, chain)).ok().and_then(|x| x.meta().horizon)
}

/// `tracehound exposure build`.
pub fn exposure_cmd(data_dir: &Path, chain: &str, horizon: Option<u8>, json: bool) -> Result<()> {
    let (_, report) = ensure_exposure(data_dir, chain, horizon, json)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        match &report.reason {
            None => println!("exposure index of {chain} is current ({} entries)", report.entries),
            Some(_) => println!(
                "exposure index of {chain}: {} entries in {:.2} s, {} bytes; sources: {}",
                report.entries,
                report.seconds,
                report.bytes,
                report.sources.iter().map(|(c, n)| format!("{c} {n}")).collect::<Vec<_>>().join(", ")
            ),
        }
    }
    Ok(())
}

/// Prints screening results as a readable list.
pub fn print_results(results: &[ScreenResult], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    for r in results {
        match r.status {
            Status::NoData => writeln!(out, "{}  NO DATA: never seen on {} and not labelled (this is not a low risk)", r.subject, r.chain)?,
            Status::Screened => {
                let level = r.risk.unwrap_or(Severity::None);
                writeln!(
                    out,
                    "{}  {} (score {:.1}){}",
                    r.subject,
                    level.name().to_uppercase(),
                    r.score.unwrap_or(0.0),
                    r.entity.as_ref().map(|e| format!(", entity {} of {} addresses", e.cluster_id, e.size)).unwrap_or_default()
                )?;
                if let Some(a) = &r.actor {
                    writeln!(out, "    actor {a}{}", r.country.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())?;
                }
                for t in r.tags.iter().take(5) {
                    writeln!(out, "    tag {} [{}] from {} (confidence {})", t.label, t.category, t.source, t.confidence)?;
                }
                for x in &r.exposures {
                    writeln!(
                        out,
                        "    {} {} {}: direct {} indirect {} {} ({:.2}%)",
                        x.flow.name(),
                        if x.flow == Flow::Received { "from" } else { "to" },
                        x.category,
                        x.direct,
                        x.indirect,
                        x.asset,
                        x.share * 100.0
                    )?;
                }
                for n in &r.notes {
                    writeln!(out, "    note: {n}")?;
                }
                for reason in &r.reasons {
                    writeln!(out, "    ! {} [{}]: {}", reason.severity.name(), reason.rule, reason.message)?;
                    for s in &reason.sources {
                        writeln!(out, "        from {} ({}): {}", s.address, s.label, s.amount)?;
                    }
                }
            }
        }
    }
    Ok(())
}

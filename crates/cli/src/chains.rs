//! What the chain commands share: which stored chain a command works on, its graph index (UTXO
//! chains) or transfer index (EVM chains) brought up to date on demand with a progress bar, and
//! amounts in whole coins for display. `entities`, `trace` and `incidents` use it; it uses none
//! of them.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tracehound_graph::index::{self, GraphIndex, IndexEvent};
use tracehound_graph::transfers::{self, TransferIndex};
use tracehound_tables::Store;

/// A progress bar of `len` steps labelled `what`.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}").expect("template"));
    b.set_message(what.to_string());
    b
}

/// The chain to work on: `requested`, or the only UTXO chain stored.
pub fn utxo_chain(store: &Store, requested: Option<&str>) -> Result<String> {
    let chain = any_chain(store, requested)?;
    if store.manifest().chain_kind(&chain) == tracehound_tables::ChainKind::Evm {
        bail!("{chain} is an EVM chain: the graph index and clustering read UTXO chains only so far (query its transfers with `tracehound sql`)");
    }
    Ok(chain)
}

/// The chain to work on: `requested`, or the only chain stored.
pub fn any_chain(store: &Store, requested: Option<&str>) -> Result<String> {
    if let Some(c) = requested {
        // Ingested, or holding imported explorer exports only.
        let known: Vec<_> = store.manifest().chain_names().into_iter().collect();
        if !known.iter().any(|k| k == c) {
            bail!("no chain {c:?} is stored (stored: {})", if known.is_empty() { "none".into() } else { known.join(", ") });
        }
        return Ok(c.to_string());
    }
    tracehound_tables::sql::default_chain(store, None)?
        .with_context(|| format!("several chains are stored ({}); give --chain", store.manifest().chains.keys().cloned().collect::<Vec<_>>().join(", ")))
}

/// The progress of an index update as a bar (and a line saying why it is rebuilt, unless
/// `quiet`); call the returned function with `None` to clear the bar.
fn index_progress<'a>(chain: &'a str, what: &'a str, quiet: bool) -> impl FnMut(Option<IndexEvent>) + 'a {
    let mut pb: Option<ProgressBar> = None;
    move |e| match e {
        Some(IndexEvent::Planned { chunks, rebuild }) => {
            if let (Some(r), false) = (&rebuild, quiet) {
                if !r.starts_with("no ") || !r.ends_with(" yet") {
                    eprintln!("rebuilding the {what} of {chain}: {r}");
                }
            }
            pb = Some(bar(chunks as u64, "files indexed"));
        }
        Some(IndexEvent::Chunk { .. }) => {
            if let Some(b) = &pb {
                b.inc(1);
            }
        }
        None => {
            if let Some(b) = pb.take() {
                b.finish_and_clear();
            }
        }
    }
}

/// Index updates of this process, one at a time: two updates of one chain's index would write
/// the same temporary file (the server answers requests on several threads).
static UPDATING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Brings the graph index of `chain` up to date (with a progress bar) and opens it.
pub fn ensure_index(store: &Store, chain: &str, quiet: bool) -> Result<(GraphIndex, index::UpdateReport)> {
    let _one_at_a_time = UPDATING.lock().unwrap_or_else(|e| e.into_inner());
    let mut progress = index_progress(chain, "graph index", quiet);
    let report = index::update_within(store, chain, Some(crate::memory_limit()), &mut |e| progress(Some(e)));
    progress(None);
    let report = report?;
    if report.action != "unchanged" {
        crate::report_stage(&report.memory);
    }
    Ok((GraphIndex::open_current(store, chain)?, report))
}

/// Brings the transfer index of EVM chain `chain` up to date (with a progress bar) and opens it.
pub fn ensure_transfer_index(store: &Store, chain: &str, quiet: bool) -> Result<(TransferIndex, transfers::TransferUpdate)> {
    let _one_at_a_time = UPDATING.lock().unwrap_or_else(|e| e.into_inner());
    let mut progress = index_progress(chain, "transfer index", quiet);
    let report = transfers::update_within(store, chain, tracehound_trace::native_symbol(chain), Some(crate::memory_limit()), &mut |e| progress(Some(e)));
    progress(None);
    let report = report?;
    if report.action != "unchanged" {
        crate::report_stage(&report.memory);
    }
    Ok((TransferIndex::open_current(store, chain)?, report))
}

/// The index of a chain: the graph index of a UTXO chain or the transfer index of an EVM chain.
pub enum ChainIndex {
    /// A UTXO chain's graph index.
    Utxo(GraphIndex),
    /// An EVM chain's transfer index.
    Evm(TransferIndex),
}

impl ChainIndex {
    /// What entities need of either index.
    pub fn addresses(&self) -> &dyn tracehound_graph::AddressIndex {
        match self {
            ChainIndex::Utxo(i) => i,
            ChainIndex::Evm(i) => i,
        }
    }
}

/// Brings the index of `chain`, of whichever kind, up to date and opens it.
pub fn ensure_chain_index(store: &Store, chain: &str, quiet: bool) -> Result<ChainIndex> {
    Ok(match store.manifest().chain_kind(chain) {
        tracehound_tables::ChainKind::Evm => ChainIndex::Evm(ensure_transfer_index(store, chain, quiet)?.0),
        tracehound_tables::ChainKind::Utxo => ChainIndex::Utxo(ensure_index(store, chain, quiet)?.0),
    })
}

/// Amount in whole coins for display (8 decimals for BTC, 18 for ETH; tokens in base units).
pub fn coins(amount: u128, asset: &str) -> String {
    let decimals = match asset {
        "BTC" | "BCH" | "LTC" | "DOGE" => 8,
        "ETH" | "BNB" | "POL" | "AVAX" | "FTM" | "XDAI" => 18,
        _ => return amount.to_string(),
    };
    let d = 10u128.pow(decimals);
    let frac = format!("{:0width$}", amount % d, width = decimals as usize);
    let frac = frac.trim_end_matches('0');
    format!("{}{}{} {asset}", amount / d, if frac.is_empty() { "" } else { "." }, &frac[..frac.len().min(8)])
}

/// How amounts of `chain` read for a person: token amounts with the token's symbol and decimals
/// (the chain's `tokens` table, then the bundled list: `4,505,835.697678 USDC`), native coins
/// with [`coins`]. Machine formats keep exact base units and do not use it.
pub fn amount_formatter(store: &Store, chain: &str) -> impl Fn(u128, &str) -> String {
    let book = match store.manifest().chain_kind(chain) {
        tracehound_tables::ChainKind::Evm => tracehound_ingest::evm::tokens::token_metadata(store, chain).ok(),
        tracehound_tables::ChainKind::Utxo => None,
    };
    move |amount: u128, asset: &str| match &book {
        Some(b) if asset.starts_with("0x") => b.format(asset, tracehound_core::evm::U256::from(amount)),
        _ => coins(amount, asset),
    }
}

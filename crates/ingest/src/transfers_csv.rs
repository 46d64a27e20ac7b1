//! Explorer CSV exports → rows of the `transfers` table.
//!
//! Investigators often hold only an explorer export. Columns are matched by header name
//! (case, spaces and punctuation ignored), so both Etherscan-style exports (`Txhash, Blockno,
//! UnixTimestamp, From, To, Value, ContractAddress, TokenSymbol`, also `Value_IN(ETH)` /
//! `Value_OUT(ETH)` and `TokenValue`) and a plain layout (`tx_hash, block_number, timestamp, from,
//! to, asset, amount`) read. Amounts:
//! * `amount` (or `amount_raw`) is an exact integer of base units (wei, token units);
//! * `value`-like columns are whole units as explorers print them (`1.5` ETH), turned into base
//!   units exactly with the row's `TokenDecimal`/`decimals` column, else 18 for the native coin
//!   (every EVM chain's) and `--decimals` for tokens. In files with ethereum-etl's names
//!   (`from_address`, `to_address`, `value`), `value` is in base units, as ethereum-etl writes it.
//! * `ContractAddress` is the token in token-transfer exports (with `TokenSymbol`/`TokenValue`),
//!   and the created contract in transaction exports (a creation's `To` is empty).
//!
//! A malformed row is reported with file and line; the file is then not stored unless the
//! caller asks to keep its good rows ([`CsvImportOptions::keep_good_rows`]). Rows an explorer
//! marks as failed (`Status` = `Error…`, non-empty `ErrCode`, `isError` = 1) moved nothing and
//! are skipped.
//!
//! Imports are idempotent. Every transfer has an identity: its chain, transaction hash, asset,
//! token id, sender, receiver and amount, and which occurrence of those it is within the
//! transaction (explorer exports carry no log index or trace address, so the node's positions
//! cannot be matched). Each imported file keeps all its good rows; readers see one merged file
//! ([`tracehound_tables::Store::commit_imports`]) holding each transfer once, taken from the
//! first file by name that has it, and none that a node already gave (node rows win). So:
//! * two exports that overlap (address A's and address B's both list A → B) add the shared
//!   transfer once;
//! * importing a file again with other bytes (its bad rows corrected) replaces what it added;
//! * importing the same bytes again changes nothing;
//! * when a node later gives the same block, the imported copy is no longer read
//!   ([`refresh_imported_transfers`]).
//!
//! Importing any set of files in any order, any number of times, gives the same `transfers`.

use crate::evm::rows::{columns, TransferRow};
use crate::Error;
use bitcoin::hashes::{sha256, Hash};
use datafusion::arrow::array::{Array, ArrayRef, BooleanBuilder, StringArray, UInt32Array, UInt64Array};
use datafusion::arrow::compute::{concat_batches, filter_record_batch, take};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tracehound_core::evm::{parse_decimal_u256, parse_units, U256};
use tracehound_tables::{NewImport, Store};

/// What one file's import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CsvImportReport {
    /// The file.
    pub file: String,
    /// Good rows read from the file.
    pub rows: u64,
    /// Rows the import added to `transfers` (fewer than `rows` when other files or a node already
    /// gave some; negative when a corrected file replaced a version with more rows).
    pub added: i64,
    /// Rows of the file that another imported file already gave (each transfer is kept once).
    pub duplicates: u64,
    /// Rows of the file that a node already gave: node rows win over imported ones.
    pub from_node: u64,
    /// The file was imported before with other bytes: this import replaced that one.
    pub replaced: bool,
    /// The rows were stored (false when the file had bad rows and good rows were not to be
    /// kept, or when it had no good row).
    pub stored: bool,
    /// Rows skipped because the explorer marks them failed.
    pub failed_skipped: u64,
    /// Malformed rows, as `file:line: reason`.
    pub bad_rows: Vec<String>,
    /// The same bytes were imported before: nothing changed.
    pub already_imported: bool,
}

/// Options of an explorer CSV import.
#[derive(Debug, Clone, Default)]
pub struct CsvImportOptions {
    /// Chain the rows belong to (`ethereum`, `bsc`, …).
    pub chain: String,
    /// Decimals of `value`-like columns when the file does not say (default 18).
    pub decimals: Option<u32>,
    /// Store the good rows of a file that has bad rows (otherwise nothing of it is stored).
    pub keep_good_rows: bool,
}

fn norm(h: &str) -> String {
    h.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
}

/// Where each field is in the header.
#[derive(Default, Debug)]
struct Columns {
    hash: Option<usize>,
    block: Option<usize>,
    timestamp: Option<usize>,
    datetime: Option<usize>,
    from: Option<usize>,
    to: Option<usize>,
    asset: Option<usize>,
    symbol: Option<usize>,
    amount: Option<usize>,
    value: Vec<usize>,
    decimals: Option<usize>,
    /// `Status` (failed when `0` or an error text) and `isError`/`ErrCode` (failed when set).
    status: Vec<(usize, bool)>,
    token_id: Option<usize>,
    internal: bool,
    /// The file lists token transfers: `ContractAddress` is the token (in transaction exports
    /// it is the contract a transaction created).
    tokens: bool,
    /// ethereum-etl-style names (`from_address`): `value` is in base units.
    base_unit_values: bool,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Columns {
        let mut c = Columns::default();
        for (i, h) in header.iter().enumerate() {
            match norm(h).as_str() {
                "txhash" | "transactionhash" | "hash" | "txid" | "parenttxhash" => c.hash = c.hash.or(Some(i)),
                "blockno" | "blocknumber" | "block" | "blockheight" => c.block = Some(i),
                "unixtimestamp" | "timestamp" | "blocktimestamp" | "timestampunix" => c.timestamp = Some(i),
                "datetimeutc" | "datetime" | "date" => c.datetime = Some(i),
                "from" | "sender" => c.from = Some(i),
                "fromaddress" => {
                    c.from = Some(i);
                    c.base_unit_values = true;
                }
                "to" | "toaddress" | "txto" | "recipient" => c.to = Some(i),
                "contractaddress" => c.asset = c.asset.or(Some(i)),
                "tokenaddress" | "asset" | "token" => {
                    c.asset = Some(i);
                    c.tokens = true;
                }
                "tokensymbol" | "symbol" | "tokenname" | "tokenvalue" => {
                    if norm(h) == "tokenvalue" {
                        c.value.push(i);
                    } else if norm(h) != "tokenname" {
                        c.symbol = Some(i);
                    }
                    c.tokens = true;
                }
                "amount" | "amountraw" | "valueraw" | "rawvalue" => c.amount = Some(i),
                "value" | "valueineth" | "valueouteth" | "quantity" | "valuein" | "valueout" => c.value.push(i),
                "tokendecimal" | "tokendecimals" | "decimals" => c.decimals = Some(i),
                "status" | "receiptstatus" => c.status.push((i, false)),
                "errcode" | "iserror" => c.status.push((i, true)),
                "tokenid" => c.token_id = Some(i),
                "parenttxfrom" => c.internal = true,
                _ => {}
            }
        }
        c
    }

    fn missing(&self) -> Vec<&'static str> {
        let mut m = vec![];
        if self.hash.is_none() {
            m.push("transaction hash (Txhash / tx_hash)");
        }
        if self.block.is_none() {
            m.push("block (Blockno / block_number)");
        }
        if self.timestamp.is_none() && self.datetime.is_none() {
            m.push("time (UnixTimestamp / timestamp / DateTime (UTC))");
        }
        if self.from.is_none() || self.to.is_none() {
            m.push("from and to");
        }
        if self.base_unit_values && self.amount.is_none() && !self.value.is_empty() {
            // ethereum-etl layouts write `value` in base units.
        } else if self.amount.is_none() && self.value.is_empty() {
            m.push("amount (amount in base units, or Value / TokenValue in whole units)");
        }
        m
    }
}

fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p"] {
        if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(d.and_utc().timestamp());
        }
    }
    chrono::DateTime::parse_from_rfc3339(t).map(|d| d.timestamp()).map_err(|_| format!("time {t:?} is neither Unix seconds nor a UTC date-time"))
}

fn address(text: &str, what: &str) -> Result<String, String> {
    let t = text.trim().to_ascii_lowercase();
    if t.len() == 42 && t.starts_with("0x") && t[2..].bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(t)
    } else {
        Err(format!("{what} {text:?} is not a 0x address"))
    }
}

/// Imports one CSV file into `chain`'s `transfers` table.
pub fn import_transfers_csv(store: &mut Store, path: &Path, opts: &CsvImportOptions) -> Result<CsvImportReport, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let sha = sha256::Hash::hash(&bytes).to_string();
    let name = path.display().to_string();
    // A file is known by its absolute path: importing it again replaces what it added.
    let origin = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?.display().to_string();
    let mut report = CsvImportReport { file: name.clone(), ..Default::default() };
    // The same file with the same bytes: nothing to do. (Another file with the same bytes is an
    // import of its own, so which file gives a row never depends on the order of imports.)
    if store
        .manifest()
        .imports
        .get(&opts.chain)
        .is_some_and(|v| v.iter().any(|i| i.table == "transfers" && i.sha256 == sha && (i.origin == origin || i.origin == name)))
    {
        report.already_imported = true;
        return Ok(report);
    }
    let text = String::from_utf8_lossy(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes)).into_owned();
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| Error::Corrupt { file: path.to_path_buf(), offset: 0, reason: format!("header: {e}") })?.clone();
    let mut cols = Columns::from_header(&header);
    if cols.base_unit_values && cols.amount.is_none() && cols.value.len() == 1 {
        cols.amount = cols.value.pop();
    }
    let missing = cols.missing();
    if !missing.is_empty() {
        return Err(Error::Input(format!(
            "{name}: line 1: the header has no column for {} (header: {})",
            missing.join(", "),
            header.iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let source: Arc<str> = format!("import:{}", path.file_name().map_or(name.clone(), |n| n.to_string_lossy().into_owned())).into();
    let chain: Arc<str> = opts.chain.as_str().into();
    let mut rows: Vec<TransferRow> = vec![];
    let mut positions: HashMap<String, u32> = HashMap::new();
    for (i, rec) in reader.records().enumerate() {
        let line = rec.as_ref().ok().and_then(|r| r.position()).map_or(i as u64 + 2, |p| p.line());
        let result = rec.map_err(|e| e.to_string()).and_then(|rec| {
            let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).map(str::trim).unwrap_or_default();
            let failed = cols.status.iter().any(|(c, is_error_flag)| {
                let s = rec.get(*c).unwrap_or_default().trim().to_ascii_lowercase();
                if *is_error_flag {
                    !(s.is_empty() || s == "0")
                } else {
                    s == "0" || s.starts_with("error") || s.starts_with("fail") || s.starts_with("revert")
                }
            });
            if failed {
                return Ok(None);
            }
            let hash = get(cols.hash).to_ascii_lowercase();
            if !(hash.len() == 66 && hash.starts_with("0x") && hash[2..].bytes().all(|b| b.is_ascii_hexdigit())) {
                return Err(format!("transaction hash {hash:?} is not 0x + 64 hex digits"));
            }
            let block: u64 = get(cols.block).parse().map_err(|_| format!("block {:?} is not a number", get(cols.block)))?;
            let ts = if cols.timestamp.is_some() { parse_time(get(cols.timestamp))? } else { parse_time(get(cols.datetime))? };
            let from = address(get(cols.from), "from")?;
            let asset_text = get(cols.asset);
            let native = !cols.tokens && !cols.base_unit_values
                || asset_text.is_empty()
                || ["native", "eth", "bnb", "matic", "pol", "avax", "ftm", "xdai", "ron", "one"].contains(&asset_text.to_ascii_lowercase().as_str());
            // A contract creation in a transaction export: no To, the created contract in ContractAddress.
            let to_text = match get(cols.to) {
                "" if native && !asset_text.is_empty() => asset_text,
                t => t,
            };
            let to = address(to_text, "to")?;
            let asset = if native { "native".to_string() } else { address(asset_text, "contract address")? };
            let token_id = cols.token_id.map(|c| rec.get(c).unwrap_or_default().trim().to_string()).filter(|s| !s.is_empty());
            let amount: U256 = if let Some(c) = cols.amount {
                parse_decimal_u256(rec.get(c).unwrap_or_default()).map_err(|e| format!("amount: {e}"))?
            } else if token_id.is_some() {
                U256::from(1)
            } else {
                let decimals = match cols.decimals.map(|c| rec.get(c).unwrap_or_default().trim()).filter(|s| !s.is_empty()) {
                    Some(d) => d.parse::<u32>().ok().filter(|d| *d <= 77).ok_or_else(|| format!("decimals {d:?} is not a number from 0 to 77"))?,
                    None if native => 18,
                    None => opts.decimals.ok_or("a token amount in whole units needs the token's decimals: add a TokenDecimal column or give --decimals")?,
                };
                // Value_IN / Value_OUT: the one that is not zero.
                let values: Vec<&str> = cols.value.iter().map(|c| rec.get(*c).unwrap_or_default().trim()).filter(|v| !v.is_empty()).collect();
                let mut amount = U256::ZERO;
                for v in values {
                    let a = parse_units(v, decimals).map_err(|e| format!("value: {e}"))?;
                    if !a.is_zero() {
                        amount = a;
                    }
                }
                amount
            };
            let kind = match (native, token_id.is_some(), cols.internal) {
                (true, _, true) => "internal",
                (true, _, false) => "native_tx",
                (false, true, _) => "erc721",
                (false, false, _) => "erc20",
            };
            let pos = positions.entry(hash.clone()).or_default();
            let row = TransferRow {
                chain: chain.clone(),
                block_number: block,
                block_timestamp: ts,
                transaction_hash: Some(hash.clone().into()),
                transaction_index: None,
                position: *pos,
                kind,
                asset: asset.into(),
                asset_symbol: cols.symbol.map(|c| rec.get(c).unwrap_or_default().trim().to_string()).filter(|s| !s.is_empty()),
                token_id,
                from_address: Some(from.into()),
                to_address: Some(to.into()),
                amount: None,
                amount_raw: String::new(),
                source: source.clone(),
            }
            .with_amount(amount);
            *pos += 1;
            Ok(Some(row))
        });
        match result {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => report.failed_skipped += 1,
            Err(reason) => report.bad_rows.push(format!("{name}:{line}: {reason}")),
        }
    }
    rows.sort_by(|a, b| (a.block_number, &a.transaction_hash, a.position).cmp(&(b.block_number, &b.transaction_hash, b.position)));
    report.rows = rows.len() as u64;
    if rows.is_empty() || (!report.bad_rows.is_empty() && !opts.keep_good_rows) {
        // Nothing stored: a corrected file (or the same with other options) can still be imported.
        return Ok(report);
    }
    let batch = columns::transfers(&rows)?;
    let chain = opts.chain.as_str();
    let mut others: Vec<(String, Vec<RecordBatch>)> = vec![];
    for i in store.manifest().imports.get(chain).into_iter().flatten().filter(|i| i.table == "transfers") {
        if i.origin == origin || i.origin == name {
            report.replaced = true;
        } else {
            others.push((i.origin.clone(), read_batches(&store.root().join(&i.file.path))?));
        }
    }
    let rows_before = merged_rows(store, chain);
    let mut with_it = others;
    with_it.push((origin.clone(), vec![batch.clone()]));
    let node = NodeRows::read(store, chain, &with_it)?;
    let without = merge(&node, &with_it[..with_it.len() - 1])?;
    let merged = merge(&node, &with_it)?;
    let mine = &merged.per_file[&origin];
    report.from_node = mine.from_node;
    let gained = merged.batch.num_rows() as u64 - without.batch.num_rows() as u64;
    report.duplicates = report.rows - report.from_node - gained;
    let mut sources: Vec<(String, String)> = store
        .manifest()
        .imports
        .get(chain)
        .into_iter()
        .flatten()
        .filter(|i| i.table == "transfers" && i.origin != origin && i.origin != name)
        .map(|i| (i.origin.clone(), i.sha256.clone()))
        .collect();
    sources.push((origin.clone(), sha.clone()));
    let basis = basis(sources, &node);
    let file = store.commit_imports(chain, "transfers", Some(NewImport { origin: &origin, sha256: &sha, batches: &[batch] }), &[merged.batch], &basis)?;
    report.added = file.rows as i64 - rows_before as i64;
    report.stored = true;
    Ok(report)
}

/// Rows readers see of `chain`'s imported transfers now.
fn merged_rows(store: &Store, chain: &str) -> u64 {
    match store.manifest().merged_imports.get(chain).and_then(|m| m.get("transfers")) {
        Some(f) => f.rows,
        None => store.manifest().imports.get(chain).into_iter().flatten().filter(|i| i.table == "transfers").map(|i| i.file.rows).sum(),
    }
}

/// What the merged file is made from: the imported files (origin and bytes) and the node chunks
/// it was checked against, so it is rewritten only when one of them changes.
fn basis(mut sources: Vec<(String, String)>, node: &NodeRows) -> Vec<String> {
    sources.sort();
    sources.into_iter().map(|(o, sha)| format!("{o}={sha}")).chain(node.chunks.iter().cloned()).collect()
}

/// Brings what readers see of `chain`'s imported transfers up to date with the node's chunks:
/// imported rows a node has since given are no longer read, and rows a rolled-back chunk had are
/// read again. Does nothing (and reads nothing) when the chain has no imports. Returns how many
/// imported rows the node's rows now replace, when anything changed.
pub fn refresh_imported_transfers(store: &mut Store, chain: &str) -> Result<Option<u64>, Error> {
    let files: Vec<(String, Vec<RecordBatch>)> = match store.manifest().imports.get(chain) {
        None => return Ok(None),
        Some(list) => list
            .iter()
            .filter(|i| i.table == "transfers")
            .map(|i| Ok((i.origin.clone(), read_batches(&store.root().join(&i.file.path))?)))
            .collect::<Result<_, Error>>()?,
    };
    if files.is_empty() {
        return Ok(None);
    }
    // Which node chunks matter is known before any is read: when neither they nor the imports
    // changed (the usual case on each commit of an ingest), nothing is read or written.
    let mut node = NodeRows::plan(store, chain, &files);
    let sources =
        store.manifest().imports.get(chain).into_iter().flatten().filter(|i| i.table == "transfers").map(|i| (i.origin.clone(), i.sha256.clone())).collect();
    let basis = basis(sources, &node);
    if store
        .manifest()
        .merged_imports
        .get(chain)
        .and_then(|m| m.get("transfers"))
        .is_some_and(|f| f.path == store.merged_import_path(chain, "transfers", &basis))
    {
        return Ok(None);
    }
    node.load(store)?;
    let merged = merge(&node, &files)?;
    let from_node = merged.per_file.values().map(|c| c.from_node).sum();
    store.commit_imports(chain, "transfers", None, &[merged.batch], &basis)?;
    Ok(Some(from_node))
}

/// Counts of one imported file in a merge.
#[derive(Debug, Default, Clone, Copy)]
struct FileCounts {
    /// Rows a node already gave.
    from_node: u64,
}

/// The rows readers see of a chain's imports.
struct Merged {
    batch: RecordBatch,
    per_file: HashMap<String, FileCounts>,
}

/// The node's transfers of the transactions imported files hold, counted per identity: only
/// those transactions are kept, so the map grows with the imports, not with the chain.
#[derive(Default)]
struct NodeRows {
    /// Node chunks that hold a block of an imported row (`first-last:path`).
    chunks: Vec<String>,
    /// Their files.
    paths: Vec<String>,
    /// Transaction hashes of the imported rows.
    txs: std::collections::HashSet<String>,
    /// Identity → how many times the node's rows have it.
    counts: HashMap<String, u32>,
}

impl NodeRows {
    /// Which node chunks of `chain` hold a block of the imported `files` (nothing read yet).
    fn plan(store: &Store, chain: &str, files: &[(String, Vec<RecordBatch>)]) -> NodeRows {
        let mut blocks: Vec<u64> = vec![];
        let mut txs = std::collections::HashSet::new();
        for b in files.iter().flat_map(|f| &f.1) {
            let col = b.column_by_name("block_number").and_then(|c| c.as_any().downcast_ref::<UInt64Array>()).expect("transfers schema: block_number");
            blocks.extend(col.values().iter().copied());
            let tx = text_column(b, "transaction_hash");
            txs.extend((0..b.num_rows()).filter(|&r| !tx.is_null(r)).map(|r| tx.value(r).to_string()));
        }
        blocks.sort_unstable();
        blocks.dedup();
        let mut node = NodeRows { txs, ..NodeRows::default() };
        for chunk in store.chain(chain).map(|c| c.chunks.as_slice()).unwrap_or_default() {
            let Some(f) = chunk.tables.get("transfers") else { continue };
            let i = blocks.partition_point(|&b| b < chunk.first);
            if blocks.get(i).is_some_and(|&b| b <= chunk.last) {
                node.chunks.push(format!("{}-{}:{}", chunk.first, chunk.last, f.path));
                node.paths.push(f.path.clone());
            }
        }
        node
    }

    /// Reads the planned chunks, keeping the rows of imported transactions.
    fn load(&mut self, store: &Store) -> Result<(), Error> {
        for path in &self.paths {
            for b in read_batches(&store.root().join(path))? {
                let tx = text_column(&b, "transaction_hash");
                for row in (0..b.num_rows()).filter(|&r| !tx.is_null(r) && self.txs.contains(tx.value(r))) {
                    if let Some(id) = identity(&b, row) {
                        *self.counts.entry(id).or_default() += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// [`NodeRows::plan`] and [`NodeRows::load`].
    fn read(store: &Store, chain: &str, files: &[(String, Vec<RecordBatch>)]) -> Result<NodeRows, Error> {
        let mut node = NodeRows::plan(store, chain, files);
        node.load(store)?;
        Ok(node)
    }
}

/// Every row of a Parquet file.
fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let corrupt = |e: &dyn std::fmt::Display| Error::Corrupt { file: path.to_path_buf(), offset: 0, reason: e.to_string() };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(&e))?.build().map_err(|e| corrupt(&e))?;
    reader.map(|b| b.map_err(|e| corrupt(&e))).collect()
}

fn text_column<'b>(b: &'b RecordBatch, name: &str) -> &'b StringArray {
    b.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<StringArray>()).expect("transfers schema: text column")
}

/// The identity of a transfer without its occurrence: transaction, asset, token id, sender,
/// receiver and exact amount.
fn identity(b: &RecordBatch, row: usize) -> Option<String> {
    let get = |name: &str| {
        let c = text_column(b, name);
        if c.is_null(row) {
            ""
        } else {
            c.value(row)
        }
    };
    let tx = get("transaction_hash");
    if tx.is_empty() {
        return None;
    }
    Some(format!("{tx}|{}|{}|{}|{}|{}", get("asset"), get("token_id"), get("from_address"), get("to_address"), get("amount_raw")))
}

/// Merges imported files (origin, rows) into what readers see: each transfer once (the first
/// file by origin that has it gives the row), none that the node's chunks already hold; rows in
/// block and transaction order, positions renumbered within each transaction.
fn merge(node: &NodeRows, files: &[(String, Vec<RecordBatch>)]) -> Result<Merged, Error> {
    let schema = tracehound_tables::evm_schema::transfers();
    let mut order: Vec<&(String, Vec<RecordBatch>)> = files.iter().collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));
    // File by file in origin order: the k-th occurrence of an identity in a file is new when
    // neither the node nor an earlier file had k + 1 of them.
    let mut taken: HashMap<String, u32> = HashMap::new();
    let mut per_file: HashMap<String, FileCounts> = HashMap::new();
    let mut kept: Vec<RecordBatch> = vec![];
    for (origin, batches) in &order {
        let counts = per_file.entry(origin.clone()).or_default();
        let mut seen: HashMap<String, u32> = HashMap::new();
        for b in batches {
            let mut keep = BooleanBuilder::with_capacity(b.num_rows());
            for row in 0..b.num_rows() {
                let Some(id) = identity(b, row) else {
                    keep.append_value(true);
                    continue;
                };
                let k = seen.entry(id.clone()).or_default();
                let occurrence = *k;
                *k += 1;
                if occurrence < node.counts.get(&id).copied().unwrap_or(0) {
                    counts.from_node += 1;
                    keep.append_value(false);
                } else if occurrence < taken.get(&id).copied().unwrap_or(0) {
                    keep.append_value(false);
                } else {
                    taken.insert(id, occurrence + 1);
                    keep.append_value(true);
                }
            }
            kept.push(filter_record_batch(b, &keep.finish()).map_err(|e| Error::Input(format!("merging imported transfers: {e}")))?);
        }
    }
    let all = concat_batches(&schema, &kept).map_err(|e| Error::Input(format!("merging imported transfers: {e}")))?;
    // Block, transaction, then the order the rows had (file by file): positions renumbered.
    let block = all.column_by_name("block_number").and_then(|c| c.as_any().downcast_ref::<UInt64Array>()).expect("block_number");
    let tx = text_column(&all, "transaction_hash");
    let mut idx: Vec<u32> = (0..all.num_rows() as u32).collect();
    let tx_of = |k: u32| if tx.is_null(k as usize) { "" } else { tx.value(k as usize) };
    idx.sort_by(|&a, &b| (block.value(a as usize), tx_of(a), a).cmp(&(block.value(b as usize), tx_of(b), b)));
    let indices = UInt32Array::from(idx);
    let columns: Vec<ArrayRef> = all
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &indices, None))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Input(format!("merging imported transfers: {e}")))?;
    let sorted = RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::Input(format!("merging imported transfers: {e}")))?;
    let tx = text_column(&sorted, "transaction_hash");
    let mut positions = Vec::with_capacity(sorted.num_rows());
    let mut next = 0u32;
    for row in 0..sorted.num_rows() {
        if row == 0 || tx.is_null(row) || tx.is_null(row - 1) || tx.value(row) != tx.value(row - 1) {
            next = 0;
        }
        positions.push(next);
        next += 1;
    }
    let pos_index = schema.index_of("position").expect("transfers schema: position");
    let mut columns = sorted.columns().to_vec();
    columns[pos_index] = Arc::new(UInt32Array::from(positions));
    let batch = RecordBatch::try_new(schema, columns).map_err(|e| Error::Input(format!("merging imported transfers: {e}")))?;
    Ok(Merged { batch, per_file })
}
